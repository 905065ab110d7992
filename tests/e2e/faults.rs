//! Fault injection: the network fails at chosen moments between graphmig and
//! ArcadeDB, through a TCP proxy of the test's own on 127.0.0.1 that watches the
//! Bolt stream for COMMIT. After each fault, plain `graphmig run` must converge:
//! the graph equals that of a fault-free run (census of labels, types,
//! constraints; no intent or tag left), `status` says applied and `verify` is
//! clean. Prints a table: fault, point, runs needed, result.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    PrivateServer, Project, run_until_applied, spawn_run, states, text, write_table,
};

/// A Bolt COMMIT message, as one chunk: size 2, struct of no fields tagged 0x12,
/// end of message.
const COMMIT: [u8; 6] = [0x00, 0x02, 0xB0, 0x12, 0x00, 0x00];

/// What the proxy does at the `at`-th COMMIT sent on the migration user's
/// connections.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Forwards the COMMIT, then cuts every connection and refuses new ones
    /// for `for_`: the database "went away" in the middle of the migration.
    CutAfter { at: usize, for_: Duration },
    /// Forwards the COMMIT and drops the server's answer, then closes that
    /// connection: the commit happened, the runner never hears of it.
    DropCommitAnswer { at: usize },
    /// Forwards the COMMIT, then every connection, old and new, stalls for
    /// `for_` (nothing forwarded, nothing closed); then they are closed.
    Stall { at: usize, for_: Duration },
}

struct ProxyState {
    upstream: u16,
    migration_user: Vec<u8>,
    fault: Mutex<Option<Fault>>,
    commits: AtomicUsize,
    refuse_until: Mutex<Option<Instant>>,
    stalled: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

/// A TCP proxy in front of the test database's Bolt port.
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Proxy {
    fn start(upstream: u16, migration_user: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(ProxyState {
            upstream,
            migration_user: migration_user.as_bytes().to_vec(),
            fault: Mutex::new(None),
            commits: AtomicUsize::new(0),
            refuse_until: Mutex::new(None),
            stalled: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let refusing = shared
                    .refuse_until
                    .lock()
                    .expect("proxy state")
                    .is_some_and(|until| Instant::now() < until);
                if refusing {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstream)) else {
                    continue;
                };
                Proxy::pump(shared.clone(), client, server);
            }
        });
        Proxy { port, state }
    }

    fn arm(&self, fault: Fault) {
        self.state.commits.store(0, Ordering::SeqCst);
        *self.state.fault.lock().expect("proxy state") = Some(fault);
    }

    /// Whether the armed fault happened (it is disarmed when it does).
    fn fired(&self) -> bool {
        self.state.fault.lock().expect("proxy state").is_none()
    }

    fn uri(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.port)
    }

    fn cut_all(state: &ProxyState) {
        for stream in state.open.lock().expect("proxy state").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn pump(state: Arc<ProxyState>, client: TcpStream, server: TcpStream) {
        {
            let mut open = state.open.lock().expect("proxy state");
            open.push(client.try_clone().expect("clone"));
            open.push(server.try_clone().expect("clone"));
        }
        let mute = Arc::new(AtomicBool::new(false));
        // Server to client, unless muted.
        {
            let (mut from, mut to, mute, stall_state) = (
                server.try_clone().expect("clone"),
                client.try_clone().expect("clone"),
                mute.clone(),
                state.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if stall_then_give_up(&stall_state) {
                        break;
                    }
                    if !mute.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
            });
        }
        // Client to server, watching for the migration user and its COMMITs.
        std::thread::spawn(move || {
            let (mut from, mut to) = (client, server);
            let mut seen = Vec::new();
            let mut is_migration_user = false;
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || stall_then_give_up(&state) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if !is_migration_user && seen.len() < 4096 {
                    seen.extend_from_slice(&buf[..n]);
                    is_migration_user = contains(&seen, &state.migration_user);
                }
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&buf[..n]);
                if is_migration_user && contains(&window, &COMMIT) {
                    let count = state.commits.fetch_add(1, Ordering::SeqCst) + 1;
                    let fault = *state.fault.lock().expect("proxy state");
                    match fault {
                        Some(Fault::CutAfter { at, for_ }) if count == at => {
                            *state.fault.lock().expect("proxy state") = None;
                            // Let the commit land, then the database "goes away".
                            std::thread::sleep(Duration::from_millis(200));
                            *state.refuse_until.lock().expect("proxy state") =
                                Some(Instant::now() + for_);
                            Proxy::cut_all(&state);
                            return;
                        }
                        Some(Fault::DropCommitAnswer { at }) if count == at => {
                            *state.fault.lock().expect("proxy state") = None;
                            mute.store(true, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(500));
                            let _ = from.shutdown(Shutdown::Both);
                            let _ = to.shutdown(Shutdown::Both);
                            return;
                        }
                        Some(Fault::Stall { at, for_ }) if count == at => {
                            *state.fault.lock().expect("proxy state") = None;
                            std::thread::sleep(Duration::from_millis(200));
                            state.stalled.store(true, Ordering::SeqCst);
                            let ending = state.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(for_);
                                Proxy::cut_all(&ending);
                                ending.stalled.store(false, Ordering::SeqCst);
                            });
                        }
                        _ => {}
                    }
                }
                tail = window[window.len().saturating_sub(COMMIT.len() - 1)..].to_vec();
            }
            let _ = to.shutdown(Shutdown::Both);
        });
    }
}

/// While the proxy stalls, holds the caller (nothing is forwarded, nothing
/// closed); returns whether the connection was stalled, and is to be dropped.
fn stall_then_give_up(state: &ProxyState) -> bool {
    if !state.stalled.load(Ordering::SeqCst) {
        return false;
    }
    while state.stalled.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// What `project`'s graph holds that a migration could have changed, and
/// graphmig's leftovers ([`census_of`]).
fn census(project: &Project) -> (Vec<String>, i64) {
    census_of(&project.db, project.history_db())
}

/// Whether `project` ended as a fault-free run does: the same census (`want`),
/// no intent or tag left, `status` applied, `verify` clean, one `up` entry in
/// the history. `outputs` goes into the reason when it did not.
fn converged_as(project: &Project, want: &[String], outputs: &str) -> Result<(), String> {
    let (got, leftovers) = census(project);
    if got != want {
        return Err(format!(
            "the graph differs from a fault-free run:\n  want {want:?}\n  got  {got:?}\n{outputs}"
        ));
    }
    if leftovers != 0 {
        return Err(format!("{leftovers} intents or tags left\n{outputs}"));
    }
    if project.states() != states(&[("1", "applied")]) {
        return Err(format!("status says {:?}", project.states()));
    }
    let verify = project.graphmig(&["verify"]);
    if !verify.status.success() {
        return Err(format!("verify: {}", text(&verify)));
    }
    let history = project
        .history_db()
        .query("MATCH (h:__GraphmigMigration) WHERE h.action = 'up' RETURN h.attempt AS a");
    if history.len() != 1 {
        return Err(format!("{} `up` history entries, not one", history.len()));
    }
    Ok(())
}

/// A project whose configuration points at `proxy`, with a short lock lease
/// (a runner cut off from the database cannot release its lock) and small
/// batch chunks (so that a fault lands in the middle of an ingest).
fn project_behind(proxy_port: Option<u16>, fixture: &str) -> (Project, Option<Proxy>) {
    let project = Project::new("");
    let proxy = proxy_port.map(|upstream| {
        let user = project
            .migration_user
            .as_ref()
            .expect("the secure layout has a migration user")
            .name
            .clone();
        Proxy::start(upstream, &user)
    });
    if let Some(proxy) = &proxy {
        project.write_config(&proxy.uri(), "");
    }
    configure(&project, fixture);
    (project, proxy)
}

/// The fault suite's settings, and `fixture` as the project's one migration.
fn configure(project: &Project, fixture: &str) {
    // A short deadline and grace, so that a stall shows graphmig giving up by
    // itself.
    project.write_extra_config("[limits]\ndeadline-secs = 5\n");
    project.write_extra_config("[database]\ngrace-secs = 2\n");
    project.write_extra_config("\n[lock]\nttl-secs = 3\n\n[batches]\nchunk-size = 250\n");
    project.add(fixture, "V1__fixture");
}

struct Case {
    fault: &'static str,
    point: &'static str,
    fixture: &'static str,
    inject: Fault,
}

const CASES: &[Case] = &[
    Case {
        fault: "database unreachable for 4 s (connections cut, then refused)",
        point: "after the 5th batch chunk of the ingest",
        fixture: "V49__keyed_ingest",
        inject: Fault::CutAfter {
            at: 5,
            for_: Duration::from_secs(4),
        },
    },
    Case {
        fault: "every connection stalls for 30 s (nothing forwarded, nothing closed)",
        point: "after the 5th batch chunk of the ingest",
        fixture: "V49__keyed_ingest",
        inject: Fault::Stall {
            at: 5,
            for_: Duration::from_secs(30),
        },
    },
    Case {
        fault: "answer to COMMIT lost",
        point: "the migration's own commit (no batches)",
        fixture: "V1__create_first",
        inject: Fault::DropCommitAnswer { at: 1 },
    },
];

/// Runs one case: the fault-free census first, then the faulted project.
fn run_case(case: &Case) -> Result<(usize, String), String> {
    let upstream = crate::support::server().bolt_port;
    let (clean, _) = project_behind(None, case.fixture);
    let applied = clean.graphmig(&["run"]);
    if !applied.status.success() {
        return Err(format!("the fault-free run failed: {}", text(&applied)));
    }
    let (want, _) = census(&clean);

    let (project, proxy) = project_behind(Some(upstream), case.fixture);
    let proxy = proxy.expect("proxy");
    proxy.arm(case.inject);
    let started = Instant::now();
    let first = project.graphmig(&["run"]);
    let first_took = started.elapsed();
    // Under a stall, graphmig gives up by itself (deadline, then the grace for
    // each wait that follows), while the connections still hang.
    if let Fault::Stall { .. } = case.inject
        && !proxy.state.stalled.load(Ordering::SeqCst)
    {
        return Err(format!(
            "the first run only ended when the stall did ({:.1} s):\n{}",
            first_took.as_secs_f64(),
            text(&first)
        ));
    }
    let first_out = format!(
        "{}(first run: {:.1} s)\n",
        text(&first),
        first_took.as_secs_f64()
    );
    let (runs, outputs) = if first.status.success() {
        (1, first_out.clone())
    } else {
        let (more, outputs) = run_until_applied(&project, 40);
        if more == 0 {
            return Err(format!("never converged:\n{first_out}\n{outputs}"));
        }
        (more + 1, format!("{first_out}\n{outputs}"))
    };
    if !proxy.fired() {
        return Err(format!("the fault never happened:\n{first_out}"));
    }
    // A stall shorter than the grace may end with the clean-up done at once;
    // a cut-off database cannot.
    if let Fault::CutAfter { .. } = case.inject
        && !first_out.contains("(the next `graphmig run` finishes it)")
    {
        return Err(format!(
            "the failed run did not say that the clean-up is left to the next run:\n{first_out}"
        ));
    }
    converged_as(&project, &want, &outputs)?;
    Ok((runs, first_out))
}

#[test]
fn every_fault_converges_to_the_graph_of_a_fault_free_run() {
    let mut table = String::from("| fault | point | runs needed | result |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    for case in CASES {
        let (runs, result) = match run_case(case) {
            Ok((runs, first)) => {
                let said = first
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .map(|l| {
                        let said = l.split_once(".wasm) ").map_or(l, |(_, rest)| rest);
                        said.chars().take(110).collect::<String>()
                    })
                    .unwrap_or_else(|| "applied at once".into());
                let took = first
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("(first run: "))
                    .unwrap_or(")")
                    .trim_end_matches(')');
                (
                    runs.to_string(),
                    format!("converged; the first run ended after {took}: {said}"),
                )
            }
            Err(why) => {
                failures.push(format!("{} / {}: {why}", case.fault, case.point));
                ("-".into(), "DID NOT CONVERGE".into())
            }
        };
        let _ = writeln!(
            table,
            "| {} | {} | {runs} | {} |",
            case.fault,
            case.point,
            result.replace('|', "/")
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}

/// Sends `signal` to the runner once the ingest's first chunks committed, then
/// runs again until applied; returns the runs needed, or why it did not converge.
fn signal_mid_ingest(signal: &str) -> Result<usize, String> {
    let (clean, _) = project_behind(None, "V49__keyed_ingest");
    if !clean.graphmig(&["run"]).status.success() {
        return Err("the fault-free run failed".into());
    }
    let (want, _) = census(&clean);
    let (project, _) = project_behind(None, "V49__keyed_ingest");
    let mut child = spawn_run(&project);
    let deadline = Instant::now() + Duration::from_secs(120);
    while project.db.count("Member") < 500 {
        if Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the ingest never got under way".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    if !sent.success() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("kill -{signal} failed"));
    }
    let status = child.wait().expect("wait");
    if status.success() {
        return Err(format!("the run survived SIG{signal} and succeeded"));
    }
    // INT and TERM stop graphmig cleanly: rolled back, cleaned up, unlocked.
    if signal != "KILL" {
        if status.code() != Some(130) {
            return Err(format!(
                "SIG{signal} ended the run with {status}, not exit 130"
            ));
        }
        let left = (
            project.db.count("Member"),
            project.history_db().count("__GraphmigAttempt"),
            project.history_db().count("__GraphmigLock"),
        );
        if left != (0, 0, 0) {
            return Err(format!(
                "after SIG{signal}: {} members, {} intents, {} locks left",
                left.0, left.1, left.2
            ));
        }
    }
    let (runs, outputs) = run_until_applied(&project, 15);
    if runs == 0 {
        return Err(format!("never converged:\n{outputs}"));
    }
    converged_as(&project, &want, &outputs)?;
    Ok(runs)
}

#[test]
fn a_runner_stopped_by_any_signal_mid_ingest_converges() {
    let mut table = String::from(
        "| signal to the runner | point | runs needed after | result |\n|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for signal in ["INT", "TERM", "KILL"] {
        let (runs, result) = match signal_mid_ingest(signal) {
            Ok(runs) => (
                runs.to_string(),
                if signal == "KILL" {
                    "killed; converged on the next run".to_string()
                } else {
                    "exit 130, rolled back, cleaned up and unlocked; converged".to_string()
                },
            ),
            Err(why) => {
                failures.push(format!("SIG{signal}: {why}"));
                ("-".into(), "DID NOT CONVERGE".into())
            }
        };
        let _ = writeln!(
            table,
            "| SIG{signal} | during the batch ingest (500 members in) | {runs} | {result} |"
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}

#[test]
fn of_two_racing_runners_the_survivor_finishes_what_the_killed_one_began() {
    let (clean, _) = project_behind(None, "V49__keyed_ingest");
    assert!(clean.graphmig(&["run"]).status.success());
    let (want, _) = census(&clean);

    let (project, _) = project_behind(None, "V49__keyed_ingest");
    let mut first = spawn_run(&project);
    let deadline = Instant::now() + Duration::from_secs(120);
    while project.db.count("Member") < 500 {
        assert!(Instant::now() < deadline, "the ingest never got under way");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second runner waits for the lock the first holds; then the first dies.
    let second = std::thread::spawn({
        let dir = project.dir.path().to_path_buf();
        let password = project.db.server.password.clone();
        move || {
            crate::support::graphmig()
                .current_dir(dir)
                .env("GRAPHMIG_PASSWORD", password)
                .env(
                    "GRAPHMIG_MIGRATION_PASSWORD",
                    crate::support::MIGRATION_PASSWORD,
                )
                .arg("run")
                .output()
                .expect("second runner")
        }
    });
    first.kill().expect("kill the first runner");
    let _ = first.wait();
    let second = second.join().expect("second runner thread");
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    // Killed mid-ingest, the first attempt is compensated; killed a moment
    // later, it had committed and is recorded as applied. Never both.
    assert!(
        out.contains("never committed: compensated") || out.contains("had committed"),
        "{out}"
    );
    if let Err(why) = converged_as(&project, &want, &out) {
        panic!("{why}");
    }
}

#[test]
fn a_database_killed_mid_ingest_and_started_again_converges() {
    let (clean, _) = project_behind(None, "V49__keyed_ingest");
    assert!(clean.graphmig(&["run"]).status.success());
    let (want, _) = census(&clean);

    let private = PrivateServer::start();
    let project = Project::on(private.server.clone(), "");
    configure(&project, "V49__keyed_ingest");
    let mut runner = spawn_run(&project);
    let deadline = Instant::now() + Duration::from_secs(120);
    while project.db.count("Member") < 500 {
        assert!(Instant::now() < deadline, "the ingest never got under way");
        std::thread::sleep(Duration::from_millis(20));
    }
    private.kill();
    let status = runner.wait().expect("wait for the runner");
    assert!(!status.success(), "the run survived its database");
    private.resume();
    let (runs, outputs) = run_until_applied(&project, 15);
    assert!(runs > 0, "never converged:\n{outputs}");
    if let Err(why) = converged_as(&project, &want, &outputs) {
        panic!("{why}");
    }
    write_table(&format!(
        "| fault | point | runs needed | result |\n|---|---|---|---|\n| database killed (kill -9) and started again | during the batch ingest (500 members in) | {runs} | converged |\n"
    ));
}

/// The people example's configuration for a project in `dir` against `db`
/// (owner login, history beside the data, as `tests/e2e/people.rs` runs it).
fn people_config(dir: &std::path::Path, db: &crate::support::Db) {
    let example = crate::support::repo_root().join("examples/people");
    std::fs::write(
        dir.join("graphmig.toml"),
        format!(
            "[database]\nuri = \"{}\"\nuser = \"root\"\nname = \"{}\"\n[migrations]\ndir = \"{}\"\n[datasets]\ndir = \"{}\"\n[batches]\nchunk-size = 1000\n[lock]\nttl-secs = 3\n",
            db.bolt_uri(),
            db.name,
            example.join("migrations").display(),
            example.join("data").display()
        ),
    )
    .expect("config");
}

/// What a graph holds that a migration could have changed: user labels,
/// relationship types and property keys with counts, constraint and index
/// names of `db`; and graphmig's leftovers, which must be none: intents in
/// `history` (the history database, or `db` itself) and refactoring tags.
fn census_of(db: &crate::support::Db, history: &crate::support::Db) -> (Vec<String>, i64) {
    let mut census = Vec::new();
    for (query, what) in [
        (
            "MATCH (n) UNWIND labels(n) AS x WITH x, count(*) AS c WHERE NOT x STARTS WITH '__Graphmig' RETURN x, c ORDER BY x",
            "label",
        ),
        (
            "MATCH ()-[r]->() WITH type(r) AS x, count(*) AS c RETURN x, c ORDER BY x",
            "type",
        ),
        (
            "MATCH (n) WHERE NOT any(l IN labels(n) WHERE l STARTS WITH '__Graphmig') UNWIND keys(n) AS x WITH x, count(*) AS c RETURN x, c ORDER BY x",
            "key",
        ),
        (
            "MATCH ()-[r]->() UNWIND keys(r) AS x WITH x, count(*) AS c RETURN x, c ORDER BY x",
            "rel key",
        ),
        (
            "SHOW CONSTRAINTS YIELD name RETURN name AS x, 1 AS c ORDER BY x",
            "constraint",
        ),
        (
            "SHOW INDEXES YIELD name RETURN name AS x, 1 AS c ORDER BY x",
            "index",
        ),
    ] {
        for row in db.query(query) {
            census.push(format!(
                "{what} {}={}",
                row["x"].as_str().unwrap_or(""),
                row["c"]
            ));
        }
    }
    let leftovers = history.count("__GraphmigAttempt")
        + db.query("MATCH (n) WHERE any(k IN keys(n) WHERE k STARTS WITH '_graphmig_r') RETURN count(n) AS n")[0]["n"]
            .as_i64()
            .unwrap_or(-1);
    (census, leftovers)
}

#[test]
fn the_database_or_the_runner_killed_at_each_point_of_the_people_example_converges() {
    let build = crate::support::graphmig()
        .current_dir(crate::support::repo_root().join("examples/people"))
        .arg("build")
        .output()
        .expect("build");
    assert!(build.status.success(), "{}", text(&build));
    let clean_db = crate::support::Db::fresh();
    let clean_dir = tempfile::tempdir().expect("tempdir");
    people_config(clean_dir.path(), &clean_db);
    let run_in = |dir: &std::path::Path, db: &crate::support::Db| {
        crate::support::graphmig()
            .current_dir(dir)
            .env("GRAPHMIG_PASSWORD", &db.server.password)
            .arg("run")
            .output()
            .expect("graphmig")
    };
    assert!(run_in(clean_dir.path(), &clean_db).status.success());
    let (want, _) = census_of(&clean_db, &clean_db);

    // Where to kill: a query that counts progress, and the count to wait for.
    let points = [
        (
            "during the CSV ingest (V2)",
            "MATCH (p:Person) RETURN count(p) AS n",
            2_000,
        ),
        (
            "during the property rename (V3)",
            "MATCH (p:Person) WHERE p.birth_year IS NOT NULL RETURN count(p) AS n",
            1,
        ),
    ];
    let mut table = String::from("| fault | point | runs needed | result |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    for (point, progress, at, victim) in points.iter().flat_map(|&(point, progress, at)| {
        [
            ("database", point, progress, at),
            ("runner", point, progress, at),
        ]
        .map(|(victim, point, progress, at)| (point, progress, at, victim))
    }) {
        let private = PrivateServer::start();
        let db = crate::support::Db::fresh_on(private.server.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        people_config(dir.path(), &db);
        let mut runner = std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
            .current_dir(dir.path())
            .env("GRAPHMIG_PASSWORD", &db.server.password)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn graphmig");
        let deadline = Instant::now() + Duration::from_secs(120);
        while db.query(progress)[0]["n"].as_i64().unwrap_or(0) < at {
            if Instant::now() > deadline || runner.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = db.query(progress)[0]["n"].as_i64().unwrap_or(0);
        if victim == "database" {
            private.kill();
            let _ = runner.wait();
            private.resume();
        } else {
            runner.kill().expect("kill -9 the runner");
            let _ = runner.wait();
        }
        let mut runs = 0;
        for attempt in 1..=10 {
            if run_in(dir.path(), &db).status.success() {
                runs = attempt;
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let (got, leftovers) = census_of(&db, &db);
        let result = if runs == 0 {
            "DID NOT CONVERGE".to_string()
        } else if got != want || leftovers != 0 {
            format!("DIFFERS: {leftovers} leftovers")
        } else {
            "converged: the graph of a fault-free run".to_string()
        };
        if !result.starts_with("converged") {
            failures.push(format!(
                "{point}: {result}\n  want {want:?}\n  got  {got:?}"
            ));
        }
        let _ = writeln!(
            table,
            "| {victim} killed (kill -9){} | {point}: {seen} of 10,000 seen | {runs} | {result} |",
            if victim == "database" {
                ", started again"
            } else {
                ""
            }
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}

/// Runs `fixture` on a server of the test's own, pausing the runner at `point`
/// (a crash point), kills the database there, lets the runner go on against the
/// dead server, starts the database again and runs until applied (or, for a
/// migration that always fails, once more). Returns the project, for checks.
fn database_killed_at(
    point: &str,
    fixture: &str,
    tries: usize,
) -> (PrivateServer, Project, String) {
    let private = PrivateServer::start();
    let project = Project::on(private.server.clone(), "");
    configure(&project, fixture);
    let pause = project.dir.path().join("pause");
    std::fs::write(&pause, "").expect("pause file");
    let mut runner = std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
        .current_dir(project.dir.path())
        .env("NO_COLOR", "1")
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .env("GRAPHMIG_TEST_PAUSE", point)
        .env("GRAPHMIG_TEST_PAUSE_FILE", &pause)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn graphmig");
    let reached = pause.with_extension("reached");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reached.exists() {
        assert!(
            Instant::now() < deadline,
            "the runner never reached {point}"
        );
        assert!(
            runner.try_wait().expect("wait").is_none(),
            "the runner ended before {point}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    private.kill();
    std::fs::remove_file(&pause).expect("let the runner go on");
    let _ = runner.wait();
    private.resume();
    let (_, outputs) = run_until_applied(&project, tries);
    (private, project, outputs)
}

#[test]
fn the_database_killed_between_commit_and_ledger_and_during_compensation_converges() {
    let mut table = String::from("| fault | point | result |\n|---|---|---|\n");
    let mut failures = Vec::new();

    // Between the commit and the ledger's update: the migration committed; the
    // runner's bookkeeping after it meets a dead database.
    let (clean, _) = project_behind(None, "V49__keyed_ingest");
    assert!(clean.graphmig(&["run"]).status.success());
    let (want, _) = census(&clean);
    let (_server, project, outputs) = database_killed_at("after-commit", "V49__keyed_ingest", 10);
    let result = converged_as(&project, &want, &outputs);
    let _ = writeln!(
        table,
        "| database killed (kill -9), started again | between the commit and the ledger's update | {} |",
        result.as_ref().map_or(
            "DID NOT CONVERGE",
            |()| "converged: applied once, the graph of a fault-free run"
        )
    );
    if let Err(why) = result {
        failures.push(format!("after-commit: {why}"));
    }

    // During the clean-up of a failed migration: the next run finishes it from
    // the intent, then runs the migration (which fails again, cleaning up).
    let (_server, project, outputs) =
        database_killed_at("during-compensation", "V37__batch_then_fail", 2);
    let left = (
        project.db.count("Ghost"),
        project.history_db().count("__GraphmigAttempt"),
    );
    let result = if left == (0, 0) && outputs.contains("never committed: compensated") {
        "converged: the killed clean-up finished, nothing of either attempt left".to_string()
    } else {
        failures.push(format!(
            "during-compensation: {} ghosts and {} intents left\n{outputs}",
            left.0, left.1
        ));
        "DID NOT CONVERGE".to_string()
    };
    let _ = writeln!(
        table,
        "| database killed (kill -9), started again | while a failed migration is cleaned up | {result} |"
    );
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}
