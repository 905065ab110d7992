//! The hostile-migration suite: migrations that attack the sandbox, each of which
//! must be contained with the right error, leave the graph unchanged and leave the
//! runner healthy for the next migration. Prints a table: attack, expected, got.

use std::fmt::Write as _;
use std::path::Path;

use crate::support::{MIGRATION_PASSWORD, Project, graphmig, text, user_nodes, write_table};

/// What containing an attack looks like.
enum Expect {
    /// Stopped by a limit: exit 4 and this text.
    Limit(&'static str),
    /// Stopped as a trap: exit 1 and this text.
    Trap(&'static str),
    /// The migration ran and every probe reported `contained`.
    Contained,
    /// The migration failed with this text (exit 1).
    Failed(&'static str),
}

impl Expect {
    fn describe(&self) -> String {
        match self {
            Expect::Limit(t) => format!("exit 4, {t}"),
            Expect::Trap(t) => format!("exit 1, {t}"),
            Expect::Contained => "runs; every probe contained".into(),
            Expect::Failed(t) => format!("exit 1, {t}"),
        }
    }
}

struct Attack {
    name: &'static str,
    fixture: &'static str,
    config: &'static str,
    expect: Expect,
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "infinite loop (fuel)",
        fixture: "V4__write_then_spin",
        config: "[limits]\nfuel = 50_000_000\n",
        expect: Expect::Limit("fuel limit exceeded"),
    },
    Attack {
        name: "infinite loop (wall clock)",
        fixture: "V4__write_then_spin",
        config: "[limits]\nfuel = 1_000_000_000_000\ndeadline-secs = 1\n",
        expect: Expect::Limit("deadline limit exceeded"),
    },
    // A Rust guest's stack lives in its linear memory: overflowing it is an
    // out-of-bounds access, which traps like any other.
    Attack {
        name: "deep recursion",
        fixture: "V20__deep_recursion",
        config: "",
        expect: Expect::Trap("trapped"),
    },
    Attack {
        name: "memory bomb",
        fixture: "V6__memory_bomb",
        config: "[limits]\nmemory-mib = 32\n",
        expect: Expect::Limit("memory limit exceeded"),
    },
    Attack {
        name: "16 MiB statement",
        fixture: "V21__huge_statement",
        // Past value-mib (16) too, which would stop it first.
        config: "[limits]\nmemory-mib = 128\nvalue-mib = 64\n",
        expect: Expect::Limit("statement size limit exceeded"),
    },
    Attack {
        name: "statement flood",
        fixture: "V22__statement_flood",
        config: "[limits]\nstatements = 500\n",
        expect: Expect::Limit("statements limit exceeded"),
    },
    Attack {
        name: "a million log lines",
        fixture: "V23__log_flood",
        config: "[limits]\nlog-lines = 1000\n",
        expect: Expect::Limit("log lines limit exceeded"),
    },
    Attack {
        name: "busy-waiting on the clock",
        fixture: "V26__clock_busy_wait",
        config: "[limits]\nfuel = 200_000_000\n",
        expect: Expect::Limit("fuel limit exceeded"),
    },
    Attack {
        name: "files: /etc/passwd, ../, symlinks",
        fixture: "V24__probe_files",
        config: "",
        expect: Expect::Contained,
    },
    Attack {
        name: "environment, arguments, clock, randomness",
        fixture: "V25__probe_environment",
        config: "",
        expect: Expect::Contained,
    },
    Attack {
        name: "network (TCP connect through wasi:sockets)",
        fixture: "V28__network_probe",
        config: "",
        expect: Expect::Contained,
    },
    Attack {
        name: "write in a read-only migration",
        fixture: "V29__try_write",
        config: "[migration.V1]\nallow = [\"read\"]\n",
        expect: Expect::Failed("graphmig.Policy.Write"),
    },
    Attack {
        name: "value trees sharing nodes (2^63 values from 64 nodes)",
        fixture: "V42__shared_value_trees",
        config: "",
        expect: Expect::Failed("is referred to more than once"),
    },
    Attack {
        name: "forbidden Cypher in disguise",
        fixture: "V27__cypher_disguises",
        config: "",
        expect: Expect::Contained,
    },
];

/// Statements the default policy must refuse, one per disguise.
const DISGUISES: &[&str] = &[
    "CREATE DATABASE evil",
    "create database evil",
    "CrEaTe DaTaBaSe evil",
    "CREATE /* looks harmless */ DATABASE evil",
    "CREATE // line comment\nDATABASE evil",
    "CREATE USER mallory SET PASSWORD 'secret123' CHANGE NOT REQUIRED",
    "GRANT ALL ON DATABASE * TO PUBLIC",
    "SHOW USERS",
    "USE system SHOW USERS",
    "CALL dbms.security.createUser('mallory', 'secret123', false)",
    "call DBMS.SECURITY.CREATEUSER('mallory', 'secret123', false)",
    "CALL `dbms`.`security`.`createUser`('mallory', 'secret123', false)",
    "CALL `dbms.security.createUser`('mallory', 'secret123', false)",
    "CALL `\\u0064bms`.security.createUser('mallory', 'secret123', false)",
    "CALL dbms . security . createUser('mallory', 'secret123', false)",
    "CALL dbms.setConfigValue('db.logs.query.enabled', 'OFF')",
    "CALL { CALL dbms.killQueries(['x']) } RETURN 1",
    "CALL apoc.cypher.run('MATCH (n) DETACH DELETE n', {})",
    "RETURN apoc.cypher.runFirstColumnSingle('MATCH (n) DETACH DELETE n', {}) AS x",
    "MATCH (n) WITH n LIMIT 1 CALL apoc.periodic.iterate('MATCH (x) RETURN x', 'DETACH DELETE x', {}) YIELD batches RETURN batches",
    "MATCH (n) RETURN n; MATCH (m) DETACH DELETE m",
    "MATCH (n) RETURN count(n); DROP DATABASE graphmig",
    "LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS r CREATE (:Loaded {v: r[0]})",
    "LOAD CSV FROM 'ht' + 'tp://127.0.0.1:9/x.csv' AS r RETURN r",
    "LOAD CSV FROM '\\u0068ttp://127.0.0.1:9/x.csv' AS r RETURN r",
    "CALL apoc.load.json('http://127.0.0.1:9/x')",
    "CALL apoc.export.csv.all('/tmp/stolen.csv', {})",
    "CALL some.unlisted.procedure()",
];

fn prepare_data(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub")).expect("data dir");
    std::fs::write(data.join("allowed.txt"), "fine\n").expect("allowed.txt");
    std::os::unix::fs::symlink("/", data.join("escape_dir")).expect("symlink dir");
    std::os::unix::fs::symlink("../graphmig.toml", data.join("escape_file")).expect("symlink file");
    std::fs::write(data.join("disguises.txt"), DISGUISES.join("\n----\n")).expect("disguises");
}

fn guest_logs(project: &Project) -> Vec<String> {
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let mut stmt = conn
        .prepare("SELECT message FROM guest_logs ORDER BY attempt_id, seq")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Runs one attack; returns what happened, or why containment failed.
fn run_attack(attack: &Attack) -> Result<String, String> {
    let project = Project::new("");
    project.write_extra_config(attack.config);
    prepare_data(project.dir.path());
    project.add("V1__create_first", "V0_1__baseline");
    let baseline = project.graphmig(&["run"]);
    if !baseline.status.success() {
        return Err(format!("baseline failed: {}", text(&baseline)));
    }
    let nodes_before = user_nodes(&project);

    project.add(attack.fixture, "V1__attack");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    let code = output.status.code();
    let first_error = out
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
        .to_string();
    let got = match &attack.expect {
        Expect::Limit(needle) | Expect::Trap(needle) | Expect::Failed(needle) => {
            let want = match attack.expect {
                Expect::Limit(_) => 4,
                _ => 1,
            };
            if code != Some(want) || !out.contains(needle) {
                return Err(format!(
                    "exit {code:?}, wanted {want} with {needle:?}:\n{out}"
                ));
            }
            let cause = first_error
                .split_once("rolled back: ")
                .map_or(first_error.trim_start_matches("error: "), |(_, cause)| {
                    cause
                });
            let cause = cause
                .rsplit_once("/V1__attack.wasm ")
                .map_or(cause, |(_, rest)| rest);
            format!(
                "exit {want}: {}",
                cause.chars().take(100).collect::<String>()
            )
        }
        Expect::Contained => {
            if code != Some(0) || out.contains("ESCAPED") {
                return Err(format!("not contained (exit {code:?}):\n{out}"));
            }
            let logs = guest_logs(&project);
            let contained = logs
                .iter()
                .filter(|l| l.contains("contained") || l.starts_with("DENIED"))
                .count();
            format!("ran; {contained} probes contained")
        }
    };
    if project.db.count("Doomed") != 0 {
        return Err("the attack's writes are visible".into());
    }
    if attack.fixture != "V27__cypher_disguises" {
        let nodes_after = user_nodes(&project);
        if nodes_before != nodes_after {
            return Err(format!(
                "node count changed from {nodes_before:?} to {nodes_after:?}"
            ));
        }
    } else if project.db.count("First") != 1 || project.db.count("Survivor") != 1 {
        return Err("the disguised statements changed the graph".into());
    }

    // The runner is healthy: with the attack gone (or applied), the next migration runs.
    if !matches!(attack.expect, Expect::Contained) {
        std::fs::remove_file(project.migrations().join("V1__attack.wasm")).expect("remove attack");
    }
    project.add("V1__create_first", "V2__next");
    let next = project.graphmig(&["run"]);
    if !next.status.success() || project.db.count("First") != 2 {
        return Err(format!("the next migration did not apply: {}", text(&next)));
    }
    Ok(got)
}

#[test]
fn hostile_migrations_are_contained() {
    let mut table = String::from("| attack | expected | got |\n|---|---|---|\n");
    let mut failures = Vec::new();
    for attack in ATTACKS {
        let got = match run_attack(attack) {
            Ok(got) => got,
            Err(why) => {
                failures.push(format!("{}: {why}", attack.name));
                "NOT CONTAINED".into()
            }
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} |",
            attack.name,
            attack.expect.describe(),
            got.replace('|', "/")
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}

#[test]
fn value_trees_sharing_nodes_are_refused_in_every_call_before_they_unfold() {
    let project = Project::new("");
    project.add("V42__shared_value_trees", "V1__shared_value_trees");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let logs = guest_logs(&project);
    for probe in ["parameter", "add-property default", "batch row"] {
        assert!(
            logs.iter()
                .any(|l| l.starts_with(&format!("contained {probe}:"))
                    && l.contains("referred to more than once")),
            "{probe}: {logs:?}"
        );
    }
    assert!(logs.iter().all(|l| !l.starts_with("ESCAPED")), "{logs:?}");
    assert_eq!(project.db.count("Shared"), 0);
}

#[test]
fn forbidden_cypher_is_refused_in_every_disguise() {
    let project = Project::new("");
    prepare_data(project.dir.path());
    project.add("V1__create_first", "V1__create_first");
    project.add("V27__cypher_disguises", "V2__disguises");
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    let denied: Vec<String> = guest_logs(&project)
        .into_iter()
        .filter(|l| l.starts_with("DENIED\t"))
        .collect();
    let mut table = String::from("| disguise | expected | got |\n|---|---|---|\n");
    for line in &denied {
        let mut parts = line.splitn(3, '\t');
        let (_, code, statement) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let _ = writeln!(
            table,
            "| `{}` | forbidden | {code} |",
            statement.replace('|', "/")
        );
    }
    write_table(&table);
    assert_eq!(
        denied.len(),
        DISGUISES.len(),
        "every disguise is denied:\n{table}"
    );
    assert!(DISGUISES.len() >= 20);

    // Every denial is journaled, and none reached the database.
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let journaled: i64 = conn
        .query_row("SELECT count(*) FROM statements WHERE outcome = 'denied' AND code LIKE 'graphmig.Policy.%'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(journaled as usize, DISGUISES.len());
    assert_eq!(project.db.count("First"), 1, "no DETACH DELETE got through");
    assert_eq!(project.db.count("Loaded"), 0);
}

#[test]
fn the_password_reaches_no_guest_log_ledger_or_output() {
    let project = Project::new("");
    prepare_data(project.dir.path());
    project.add("V25__probe_environment", "V1__probe_environment");
    project.add("V27__cypher_disguises", "V2__disguises");
    let owner_password = project.db.server.password.clone();
    let output = graphmig()
        .current_dir(project.dir.path())
        .env("GRAPHMIG_PASSWORD", &owner_password)
        .env("GRAPHMIG_MIGRATION_PASSWORD", MIGRATION_PASSWORD)
        .env("GRAPHMIG_LOG", "trace")
        .arg("run")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", text(&output));
    for password in [owner_password.as_str(), MIGRATION_PASSWORD] {
        assert!(
            !text(&output).contains(password),
            "a password is in the output"
        );
        for entry in std::fs::read_dir(project.dir.path().join(".graphmig")).expect("ledger dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                assert!(
                    !bytes
                        .windows(password.len())
                        .any(|w| w == password.as_bytes()),
                    "a password is in {}",
                    path.display()
                );
            }
        }
        assert!(guest_logs(&project).iter().all(|l| !l.contains(password)));
    }

    // A wrong password, the owner's or the migration user's, is named by its
    // variable and not echoed, even with tracing on.
    for (owner, migration, wrong, named) in [
        (
            owner_password.as_str(),
            "wrong-migration-password-9c1e",
            "wrong-migration-password-9c1e",
            ["as the migration user", "GRAPHMIG_MIGRATION_PASSWORD"],
        ),
        (
            "wrong-password-7f3a",
            MIGRATION_PASSWORD,
            "wrong-password-7f3a",
            [
                "authentication failed for user `root`",
                "check GRAPHMIG_USER and GRAPHMIG_PASSWORD",
            ],
        ),
    ] {
        let output = graphmig()
            .current_dir(project.dir.path())
            .env("GRAPHMIG_PASSWORD", owner)
            .env("GRAPHMIG_MIGRATION_PASSWORD", migration)
            .env("GRAPHMIG_LOG", "trace")
            .args(["run"])
            .output()
            .expect("run");
        let out = text(&output);
        assert!(!out.contains(wrong), "{out}");
        assert_eq!(output.status.code(), Some(3), "{out}");
        assert!(named.iter().all(|n| out.contains(n)), "{out}");
    }
}

#[test]
fn randomness_and_clocks_are_repeatable_without_grants() {
    let fingerprint = || {
        let project = Project::new("");
        project.add("V25__probe_environment", "V1__probe_environment");
        assert!(project.graphmig(&["run"]).status.success());
        guest_logs(&project)
            .into_iter()
            .find(|l| l.starts_with("probe randomness"))
            .expect("randomness probe logged")
    };
    assert_eq!(fingerprint(), fingerprint());
}

#[test]
fn granting_the_clock_gives_the_real_time() {
    let project = Project::new("");
    project.write_extra_config("[policy]\ngrants = [\"clock\", \"random\"]\n");
    project.add("V25__probe_environment", "V1__probe_environment");
    let output = project.graphmig(&["run"]);
    // The probe reports the real clock as an escape: here it was granted.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("real wall clock"),
        "{}",
        text(&output)
    );
}

#[test]
fn guest_text_is_inert_on_the_terminal_and_exact_in_json() {
    let project = Project::new("");
    project.add("V44__forge_output", "V1__forge_output");
    let output = project.graphmig(&["run"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let status = project.graphmig(&["status"]);
    let history = project.graphmig(&["history", "--verbose", "V1"]);
    for (what, out) in [
        ("run", text(&output)),
        ("status", text(&status)),
        ("history", text(&history)),
    ] {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{what} shows a raw control character: {out:?}"
        );
        assert!(
            !out.contains('\u{202e}'),
            "{what} shows a bidi override: {out:?}"
        );
        assert!(
            out.lines().all(|l| !l.starts_with("Applied V")),
            "{what} shows a forged result line:\n{out}"
        );
    }
    let json = project.graphmig(&["history", "--verbose", "V1", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(
        doc.to_string().contains("\\u001b[2K"),
        "--json keeps the exact text"
    );
}

/// Runs the query fixture under `limits` on `query`; returns the output and
/// the host's peak resident memory in KiB.
fn run_query_measured(limits: &str, query: &str) -> (std::process::Output, u64) {
    let project = Project::new(limits);
    let data = project.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("query.txt"), query).expect("query");
    project.add("V45__run_dataset_query", "V1__run_dataset_query");
    crate::support::graphmig_measuring_peak(&project, &["run"])
}

/// Runs the query fixture under `limits` on `query`; returns the output.
fn run_query_under(limits: &str, query: &str) -> std::process::Output {
    run_query_measured(limits, query).0
}

#[test]
fn results_are_stopped_at_their_limits_as_they_arrive() {
    // Three million rows against a limit of a thousand: the host stops reading
    // at the first row past it and says how many had come. Its memory stays
    // under the documented bound: the guest's memory limit + 64 MiB + the
    // result limit (before, the whole result was held: 1.7 GiB).
    let (output, peak_kib) = run_query_measured(
        "rows = 1000\nmemory-mib = 64\nresult-mib = 16",
        "UNWIND range(1, 3000000) AS i RETURN i",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(
        out.contains("rows limit exceeded: 1001 rows returned; the limit is 1000"),
        "{out}"
    );
    assert!(peak_kib > 0, "the peak was measured");
    assert!(
        peak_kib < (64 + 64 + 16) * 1024,
        "peak resident memory {peak_kib} KiB"
    );
    // One row of some 20 MB against a result limit of 1 MiB.
    let output = run_query_under(
        "result-mib = 1",
        "UNWIND range(1, 5) AS r RETURN [x IN range(1, 200000) | 'aaaaaaaaaaaaaaaaaaaa'] AS big",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(out.contains("result bytes limit exceeded"), "{out}");
}

#[test]
fn a_result_nesting_thousands_deep_does_not_bring_the_host_down() {
    // A list wrapped in a list 3,000 times overflowed the guest's fiber stack
    // while the host decoded it, aborting graphmig; deeper still, the server
    // itself gives up. Either way the run ends with an exit code of its own.
    for depth in [3_000, 20_000] {
        let output = run_query_under(
            "",
            &format!("RETURN reduce(acc = [], x IN range(1, {depth}) | [acc]) AS deep"),
        );
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "depth {depth}: {:?}\n{}",
            output.status,
            text(&output)
        );
    }
}

#[test]
fn a_parameter_name_given_twice_is_refused() {
    let project = Project::new("");
    project.add("V46__duplicate_parameter", "V1__duplicate_parameter");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        guest_logs(&project)
            .iter()
            .any(|l| l.starts_with("contained: graphmig.DuplicateParameter")),
        "{:?}",
        guest_logs(&project)
    );
}

#[test]
fn what_the_host_keeps_of_guest_text_is_bounded_and_marked() {
    // The log-flood fixture writes a million lines; 64 KiB of log is the budget.
    let project = Project::new("log-kib = 64");
    project.add("V23__log_flood", "V1__log_flood");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(out.contains("log bytes limit exceeded"), "{out}");
    let kept: usize = guest_logs(&project).iter().map(String::len).sum();
    assert!(kept <= 64 * 1024, "{kept} bytes of log kept");
}

#[test]
fn one_call_takes_in_values_only_up_to_its_limits() {
    let project = Project::new("value-nodes = 10");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(out.contains("value nodes limit exceeded"), "{out}");
    assert_eq!(project.db.count("Person"), 0);
}
