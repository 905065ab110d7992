//! Test support: the real `graphmig` binary, fixture guests, a fresh ArcadeDB
//! database per test, and independent checks of the graph over HTTP.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Where test builds of guests go, shared so the SDK compiles once.
pub fn guest_target_dir() -> PathBuf {
    repo_root().join("target").join("guests")
}

/// The `graphmig` binary under test.
pub fn graphmig() -> Command {
    let mut cmd = Command::cargo_bin("graphmig").expect("graphmig binary is built");
    cmd.env_remove("GRAPHMIG_URI")
        .env_remove("GRAPHMIG_USER")
        .env_remove("GRAPHMIG_DATABASE")
        .env_remove("GRAPHMIG_PASSWORD")
        .env_remove("GRAPHMIG_CONFIG")
        .env("GRAPHMIG_BUILD_TARGET_DIR", guest_target_dir())
        .env("NO_COLOR", "1")
        // A hung run must fail the test rather than the whole suite.
        .timeout(Duration::from_secs(300));
    cmd
}

/// Builds the fixture guests once per test process; returns their folder.
pub fn fixtures() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let project = repo_root().join("tests/fixtures/guests");
        let output = graphmig()
            .current_dir(&project)
            .arg("build")
            .output()
            .expect("run graphmig build");
        assert!(
            output.status.success(),
            "building fixture guests failed:\n{}",
            text(&output)
        );
        project.join("migrations")
    })
}

/// stdout and stderr together, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Settings of the test ArcadeDB server, from the environment `scripts/test.sh` sets.
#[derive(Debug, Clone)]
pub struct Server {
    pub bolt_port: u16,
    pub http_port: u16,
    pub password: String,
}

pub fn server() -> Server {
    let port = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().expect("a port number"))
            .unwrap_or(default)
    };
    Server {
        bolt_port: port("GRAPHMIG_TEST_BOLT_PORT", 7688),
        http_port: port("GRAPHMIG_TEST_HTTP_PORT", 2481),
        password: std::env::var("GRAPHMIG_TEST_PASSWORD")
            .unwrap_or_else(|_| "graphmig-dev-pw".into()),
    }
}

/// A database created for one test and dropped after it.
pub struct Db {
    pub name: String,
    pub server: Server,
}

impl Db {
    /// Creates a new, empty database. Fails loudly when the server is not up.
    pub fn fresh() -> Db {
        Db::fresh_on(server())
    }

    /// A new, empty database on `server`.
    pub fn fresh_on(server: Server) -> Db {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let db = Db { name, server };
        db.admin(&format!("create database {}", db.name))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create a test database on ArcadeDB at 127.0.0.1:{} ({e}).\n\
                     Database tests need the server: run them with scripts/test.sh, which starts it.",
                    db.server.http_port
                )
            });
        db
    }

    fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build()
    }

    fn auth(&self) -> String {
        let token = base64(&format!("root:{}", self.server.password));
        format!("Basic {token}")
    }

    fn admin(&self, command: &str) -> Result<(), String> {
        admin_command(&self.server, command)
    }

    /// Runs Cypher over ArcadeDB's HTTP API (not Bolt, not graphmig) and returns
    /// the result rows.
    pub fn query(&self, cypher: &str) -> Vec<serde_json::Value> {
        let response: serde_json::Value = self
            .agent()
            .post(&format!(
                "http://127.0.0.1:{}/api/v1/command/{}",
                self.server.http_port, self.name
            ))
            .set("Authorization", &self.auth())
            .send_json(serde_json::json!({ "language": "cypher", "command": cypher }))
            .unwrap_or_else(|e| panic!("query {cypher:?} failed: {e}"))
            .into_json()
            .expect("JSON response");
        response["result"].as_array().cloned().unwrap_or_default()
    }

    /// Number of nodes with `label`.
    pub fn count(&self, label: &str) -> i64 {
        let rows = self.query(&format!("MATCH (n:{label}) RETURN count(n) AS n"));
        rows.first()
            .and_then(|r| r["n"].as_i64())
            .unwrap_or_else(|| panic!("no count in {rows:?}"))
    }

    pub fn bolt_uri(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.server.bolt_port)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.admin(&format!("drop database {}", self.name));
    }
}

/// Runs a server command (create database, create user, ...) over ArcadeDB's HTTP
/// API as root.
fn admin_command(server: &Server, command: &str) -> Result<(), String> {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
        .post(&format!(
            "http://127.0.0.1:{}/api/v1/server",
            server.http_port
        ))
        .set(
            "Authorization",
            &format!("Basic {}", base64(&format!("root:{}", server.password))),
        )
        .send_json(serde_json::json!({ "command": command }))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn base64(input: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The password of the tests' migration users (loopback only).
pub const MIGRATION_PASSWORD: &str = "graphmig-migration-test-pw";

/// A user of the server's `graphmig_migration` group (record access and
/// updateSchema, no updateSecurity) on one database only; removed on drop.
pub struct MigrationUser {
    pub name: String,
    server: Server,
}

impl MigrationUser {
    /// Creates the migration user of `db`.
    pub fn for_db(db: &Db) -> MigrationUser {
        let name = format!("m_{}", db.name);
        let command = serde_json::json!({
            "name": name,
            "password": MIGRATION_PASSWORD,
            "databases": { db.name.as_str(): ["graphmig_migration"] },
        });
        db.admin(&format!("create user {command}"))
            .unwrap_or_else(|e| panic!("cannot create migration user {name}: {e}"));
        MigrationUser {
            name,
            server: db.server.clone(),
        }
    }
}

impl Drop for MigrationUser {
    fn drop(&mut self) {
        let _ = admin_command(&self.server, &format!("drop user {}", self.name));
    }
}

/// A user project in a temporary folder, pointed at one test database. Set up as
/// graphmig recommends: history and lock in a database of their own, and
/// migrations connected as a migration user the server limits.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub db: Db,
    /// The history database (`None`: the history shares the target database).
    pub history: Option<Db>,
    /// The migration user (`None`: migrations connect as root).
    pub migration_user: Option<MigrationUser>,
}

impl Project {
    /// A project with `limits` TOML lines (may be empty) and no migrations.
    pub fn new(limits: &str) -> Project {
        Project::on(server(), limits)
    }

    /// [`Project::new`] on `server`.
    pub fn on(server: Server, limits: &str) -> Project {
        let db = Db::fresh_on(server.clone());
        let history = Db::fresh_on(server);
        let user = MigrationUser::for_db(&db);
        Project::with(db, Some(history), Some(user), limits)
    }

    /// A project in the layout of graphmig's first releases: the history in the
    /// target database and migrations connected as root.
    pub fn sharing_history(limits: &str) -> Project {
        Project::with(Db::fresh(), None, None, limits)
    }

    fn with(db: Db, history: Option<Db>, user: Option<MigrationUser>, limits: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations dir");
        let project = Project {
            dir,
            db,
            history,
            migration_user: user,
        };
        project.write_config(&project.db.bolt_uri(), limits);
        project
    }

    /// The database that holds the history and the lock.
    pub fn history_db(&self) -> &Db {
        self.history.as_ref().unwrap_or(&self.db)
    }

    pub fn write_config(&self, uri: &str, limits: &str) {
        let migration_user = self
            .migration_user
            .as_ref()
            .map(|u| format!("migration-user = \"{}\"\n", u.name))
            .unwrap_or_default();
        let history = self
            .history
            .as_ref()
            .map(|h| format!("\n[history]\ndatabase = \"{}\"\n", h.name))
            .unwrap_or_default();
        std::fs::write(
            self.dir.path().join("graphmig.toml"),
            format!(
                "[database]\nuri = \"{uri}\"\nuser = \"root\"\n{migration_user}name = \"{}\"\nconnect-timeout-secs = 5\n{history}\n[limits]\n{limits}\n",
                self.db.name
            ),
        )
        .expect("write graphmig.toml");
    }

    /// Appends TOML (sections after `[limits]`) to the project's configuration.
    pub fn write_extra_config(&self, extra: &str) {
        if extra.is_empty() {
            return;
        }
        let path = self.dir.path().join("graphmig.toml");
        let mut text = std::fs::read_to_string(&path).expect("read config");
        // A table the file already has would clash: its keys go under it.
        let header = extra.lines().next().unwrap_or("");
        let existing = format!("{header}\n");
        if header.starts_with('[') && text.contains(&existing) {
            let rest = &extra[existing.len().min(extra.len())..];
            text = text.replacen(&existing, &format!("{existing}{rest}"), 1);
        } else {
            text.push_str(extra);
        }
        std::fs::write(path, text).expect("write config");
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// Copies fixture `fixture` (e.g. `V2__write_then_fail`) in as `name`.
    pub fn add(&self, fixture: &str, name: &str) -> &Self {
        std::fs::copy(
            fixtures().join(format!("{fixture}.wasm")),
            self.migrations().join(format!("{name}.wasm")),
        )
        .unwrap_or_else(|e| panic!("copy fixture {fixture}: {e}"));
        self
    }

    /// `graphmig ARGS` in the project, with the test password.
    pub fn graphmig(&self, args: &[&str]) -> Output {
        graphmig()
            .current_dir(self.dir.path())
            .env("GRAPHMIG_PASSWORD", &self.db.server.password)
            .env("GRAPHMIG_MIGRATION_PASSWORD", MIGRATION_PASSWORD)
            .args(args)
            .output()
            .expect("run graphmig")
    }

    /// `graphmig status --json`, parsed; version -> state.
    pub fn states(&self) -> Vec<(String, String)> {
        let output = self.graphmig(&["status", "--json"]);
        assert!(output.status.success(), "status failed: {}", text(&output));
        let doc: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("status --json prints JSON");
        doc["migrations"]
            .as_array()
            .expect("migrations array")
            .iter()
            .map(|m| {
                (
                    m["version"].as_str().expect("version").to_string(),
                    m["state"].as_str().expect("state").to_string(),
                )
            })
            .collect()
    }

    /// The ledger's attempts: version, outcome, error.
    pub fn ledger_rows(&self) -> Vec<(String, String, Option<String>)> {
        let conn = rusqlite::Connection::open(self.dir.path().join(".graphmig/ledger.db"))
            .expect("open ledger");
        let mut stmt = conn
            .prepare("SELECT migration, outcome, error FROM attempts ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

pub fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(v, s)| (v.to_string(), s.to_string()))
        .collect()
}

/// Nodes other than graphmig's own (history, lock and commit markers).
pub fn user_nodes(project: &Project) -> i64 {
    let all = project.db.query("MATCH (n) RETURN count(n) AS n")[0]["n"]
        .as_i64()
        .expect("count");
    all - project.db.count("__GraphmigMigration")
        - project.db.count("__GraphmigLock")
        - project.db.count("__GraphmigApplied")
}

/// Prints a table of the hostile suite and appends it to `target/hostile-suite.md`,
/// which `scripts/test.sh` prints at the end.
pub fn write_table(table: &str) {
    eprintln!("\n{table}");
    let path = repo_root().join("target/hostile-suite.md");
    let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
    existing.push_str(table);
    existing.push('\n');
    let _ = std::fs::write(path, existing);
}

/// Whether the server accepts `user` with `password` (over HTTP, on the
/// project's database).
pub fn logs_in(project: &Project, user: &str, password: &str) -> bool {
    ureq::post(&format!(
        "http://127.0.0.1:{}/api/v1/command/{}",
        project.db.server.http_port, project.db.name
    ))
    .set(
        "Authorization",
        &format!("Basic {}", base64(&format!("{user}:{password}"))),
    )
    .send_json(serde_json::json!({ "language": "cypher", "command": "RETURN 1" }))
    .is_ok()
}

/// Runs `graphmig ARGS` in the project and watches its peak resident memory
/// (VmHWM) while it runs; returns the output and the peak in KiB, as last seen.
pub fn graphmig_measuring_peak(project: &Project, args: &[&str]) -> (Output, u64) {
    use std::io::Read;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
        .current_dir(project.dir.path())
        .env_remove("GRAPHMIG_URI")
        .env_remove("GRAPHMIG_USER")
        .env_remove("GRAPHMIG_DATABASE")
        .env("GRAPHMIG_BUILD_TARGET_DIR", guest_target_dir())
        .env("NO_COLOR", "1")
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env("GRAPHMIG_MIGRATION_PASSWORD", MIGRATION_PASSWORD)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn graphmig");
    // Drained while it runs: a child whose output fills a pipe would block.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("graphmig hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    (
        Output {
            status,
            stdout,
            stderr,
        },
        peak,
    )
}

/// `graphmig run` in `project` with the test-only hook that kills the process
/// at `point` (`before-commit`, `after-commit`, `during-compensation`, ...).
pub fn run_crashing_at(project: &Project, point: &str) -> Output {
    graphmig()
        .current_dir(project.dir.path())
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env("GRAPHMIG_MIGRATION_PASSWORD", MIGRATION_PASSWORD)
        .env("GRAPHMIG_TEST_CRASH", point)
        .arg("run")
        .output()
        .expect("run")
}

/// An ArcadeDB server of the test's own (the shared one cannot be killed),
/// started by the project's script on free ports, stopped when dropped.
pub struct PrivateServer {
    instance: String,
    /// GRAPHMIG_BOLT_TLS for the script: Bolt over TLS only.
    tls: bool,
    pub server: crate::support::Server,
}

impl PrivateServer {
    fn script() -> std::path::PathBuf {
        crate::support::repo_root().join("scripts/arcadedb.sh")
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    fn run_script(&self, command: &str) {
        let status = std::process::Command::new(Self::script())
            .args([
                command,
                &self.instance,
                &self.server.bolt_port.to_string(),
                &self.server.http_port.to_string(),
                "graphmig",
            ])
            .env("GRAPHMIG_BOLT_TLS", if self.tls { "1" } else { "" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("scripts/arcadedb.sh");
        assert!(
            status.success(),
            "scripts/arcadedb.sh {command} {} failed",
            self.instance
        );
    }

    pub fn start() -> PrivateServer {
        PrivateServer::start_with(false)
    }

    /// A server that speaks Bolt over TLS only, with a self-signed certificate.
    pub fn start_tls() -> PrivateServer {
        PrivateServer::start_with(true)
    }

    fn start_with(tls: bool) -> PrivateServer {
        let private = PrivateServer {
            tls,
            instance: {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                format!(
                    "private-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                )
            },
            server: crate::support::Server {
                bolt_port: Self::free_port(),
                http_port: Self::free_port(),
                password: crate::support::server().password,
            },
        };
        private.run_script("start");
        private
    }

    /// kill -9 of the server process.
    pub fn kill(&self) {
        let pid =
            std::fs::read_to_string(self.home().join("server.pid")).expect("the server's pid file");
        let killed = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -9 {pid}");
        // Until the process is gone, its ports are still bound.
        while (std::process::Command::new("kill")
            .args(["-0", pid.trim()])
            .status())
        .is_ok_and(|s| s.success())
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts the killed server again on its data.
    pub fn resume(&self) {
        self.run_script("resume");
    }
}

impl PrivateServer {
    /// Where the script keeps the instance (`.dev/instances/NAME`).
    fn home(&self) -> std::path::PathBuf {
        std::env::var("GRAPHMIG_DEV_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| crate::support::repo_root().join(".dev"))
            .join("instances")
            .join(&self.instance)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .args(["stop", &self.instance])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // Its databases go with it: every run of the suite starts new ones.
        let _ = std::fs::remove_dir_all(self.home());
    }
}

/// Starts `graphmig run` in `project` as a child process.
pub fn spawn_run(project: &Project) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
        .current_dir(project.dir.path())
        .env_remove("GRAPHMIG_URI")
        .env_remove("GRAPHMIG_USER")
        .env_remove("GRAPHMIG_DATABASE")
        .env("NO_COLOR", "1")
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn graphmig")
}

/// Runs `graphmig run` until it succeeds (at most `tries` times, a second
/// apart); returns how many runs it took and their outputs.
pub fn run_until_applied(project: &Project, tries: usize) -> (usize, String) {
    let mut outputs = String::new();
    for run in 1..=tries {
        let output = project.graphmig(&["run"]);
        outputs.push_str(&format!("--- run {run}:\n{}\n", text(&output)));
        if output.status.success() {
            return (run, outputs);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    (0, outputs)
}
