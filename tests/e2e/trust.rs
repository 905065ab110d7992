//! A chain you can trust: crash recovery, concurrent runners, the lease lock,
//! verify, dry runs, baseline, repair, repeatable and out-of-order migrations.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Project, run_crashing_at, states, text};

fn history_nodes(project: &Project, key: &str) -> usize {
    project
        .history_db()
        .query(&format!(
            "MATCH (h:__GraphmigMigration) WHERE h.key = '{key}' RETURN h.seq AS seq"
        ))
        .len()
}

fn ledger_value(project: &Project, sql: &str) -> String {
    let path = project.dir.path().join(".graphmig/ledger.db");
    if !path.exists() {
        return "no ledger yet".into();
    }
    let Ok(conn) = rusqlite::Connection::open(path) else {
        return "ledger busy".into();
    };
    conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|e| format!("error: {e}"))
}

fn set_mode(project: &Project, mode: &str) {
    std::fs::create_dir_all(project.dir.path().join("data")).expect("data");
    std::fs::write(project.dir.path().join("data/mode.txt"), mode).expect("mode");
}

#[test]
fn a_runner_killed_mid_migration_is_recovered_and_its_lock_taken_over() {
    let project = Project::new("fuel = 1_000_000_000_000\ndeadline-secs = 120\n");
    project.write_extra_config("[lock]\nttl-secs = 2\nwait-secs = 30\n");
    project.add("V30__slow_once", "V1__slow_once");
    project.add("V5__create_later", "V2__create_later");
    set_mode(&project, "slow");

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
        .current_dir(project.dir.path())
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = ledger_value(
            &project,
            "SELECT count(*) FROM attempts WHERE outcome = 'running'",
        );
        if running == "Integer(1)" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runner never started V1: {running}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert_eq!(
        project.history_db().count("__GraphmigLock"),
        1,
        "the killed runner's lock is left behind"
    );

    set_mode(&project, "fast");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("had not committed"),
        "the interrupted attempt is settled: {out}"
    );
    assert_eq!(project.db.count("SlowDone"), 1, "applied exactly once");
    assert_eq!(project.db.count("Later"), 1);
    assert_eq!(history_nodes(&project, "1"), 1);
    assert_eq!(
        project.history_db().count("__GraphmigLock"),
        0,
        "released after the run"
    );
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied")])
    );
    assert_eq!(
        ledger_value(
            &project,
            "SELECT count(*) FROM attempts WHERE migration = '1' AND outcome = 'failed' AND error LIKE 'interrupted%'"
        ),
        "Integer(1)",
        "no record is lost: the killed attempt stays in the ledger"
    );
}

#[test]
fn a_crash_between_commit_and_ledger_is_resolved_from_the_graph() {
    let project = Project::new("");
    project.write_extra_config("[lock]\nttl-secs = 1\n");
    project.add("V1__create_first", "V1__create_first");
    let crashed = run_crashing_at(&project, "after-commit");
    assert!(!crashed.status.success(), "the process aborted");
    assert_eq!(project.db.count("First"), 1, "the migration committed");
    assert_eq!(
        ledger_value(
            &project,
            "SELECT outcome FROM attempts WHERE migration = '1'"
        ),
        "Text(\"running\")"
    );

    // While the dead runner's lease runs, status leaves the attempt alone.
    let early = project.graphmig(&["status"]);
    assert!(text(&early).contains("interrupted"), "{}", text(&early));
    std::thread::sleep(Duration::from_millis(1500));
    // Once it expired, `status` settles it from the graph's history: applied, not
    // to be re-run.
    let status = project.graphmig(&["status"]);
    assert!(text(&status).contains("had committed"), "{}", text(&status));
    assert_eq!(project.states(), states(&[("1", "applied")]));
    let rerun = project.graphmig(&["run"]);
    assert!(
        rerun.status.success() && text(&rerun).contains("nothing to do"),
        "{}",
        text(&rerun)
    );
    assert_eq!(project.db.count("First"), 1, "never applied twice");
}

#[test]
fn a_crash_before_commit_leaves_nothing_and_runs_again() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    let crashed = run_crashing_at(&project, "before-commit");
    assert!(!crashed.status.success());
    assert_eq!(project.db.count("First"), 0);
    // The crashed runner's lock stays until it expires or is removed.
    let unlock = project.graphmig(&["unlock"]);
    assert!(
        text(&unlock).contains("Removed the lock"),
        "{}",
        text(&unlock)
    );
    let rerun = project.graphmig(&["run"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(project.db.count("First"), 1);
    assert_eq!(history_nodes(&project, "1"), 1);
    let audit = ledger_value(
        &project,
        "SELECT error FROM attempts WHERE action = 'unlock'",
    );
    assert!(audit.contains("removed the lock of"), "{audit}");
}

#[test]
fn concurrent_runners_apply_each_migration_exactly_once() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    project.add("V5__create_later", "V2__create_later");
    // A second runner elsewhere: its own folder and ledger, the same migrations
    // and database.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        project.dir.path().join("graphmig.toml"),
        other.path().join("graphmig.toml"),
    )
    .expect("config");
    std::fs::create_dir(other.path().join("migrations")).expect("dir");
    for name in ["V1__create_first.wasm", "V2__create_later.wasm"] {
        std::fs::copy(
            project.migrations().join(name),
            other.path().join("migrations").join(name),
        )
        .expect("copy");
    }
    let spawn = |dir: &std::path::Path| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
            .current_dir(dir)
            .env("GRAPHMIG_PASSWORD", &project.db.server.password)
            .env(
                "GRAPHMIG_MIGRATION_PASSWORD",
                crate::support::MIGRATION_PASSWORD,
            )
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(project.dir.path()), spawn(other.path()));
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert_eq!(project.db.count("First"), 1);
    assert_eq!(project.db.count("Later"), 1);
    assert_eq!(history_nodes(&project, "1"), 1);
    assert_eq!(history_nodes(&project, "2"), 1);
    let applied = [&a, &b]
        .iter()
        .map(|o| text(o).matches("Applied V").count())
        .sum::<usize>();
    assert_eq!(
        applied,
        2,
        "two applies between them:\n{}\n{}",
        text(&a),
        text(&b)
    );
}

#[test]
fn a_held_lock_makes_run_wait_then_fail_clearly() {
    let project = Project::new("");
    project.write_extra_config("[lock]\nwait-secs = 1\n");
    project.add("V1__create_first", "V1__create_first");
    assert!(
        project.graphmig(&["run"]).status.success(),
        "creates the schema"
    );
    project.history_db().query(
        "CREATE (:__GraphmigLock {id: 'graphmig', owner: 'mallory@elsewhere:42/x', acquired_at: 1000, expires_at: 99999999999999, generation: 7})",
    );
    project.add("V5__create_later", "V2__create_later");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(7), "{out}");
    assert!(
        out.contains("locked by mallory@elsewhere:42/x since 1970-01-01T00:00:01Z"),
        "{out}"
    );
    assert_eq!(project.db.count("Later"), 0);
}

#[test]
fn dry_run_executes_the_guests_but_changes_neither_graph_nor_ledger() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    assert!(project.graphmig(&["run"]).status.success());
    project.add("V5__create_later", "V2__create_later");
    let ledger = project.dir.path().join(".graphmig/ledger.db");
    let ledger_before = std::fs::read(&ledger).expect("ledger");
    let history_before = project.history_db().count("__GraphmigMigration");

    let output = project.graphmig(&["run", "--dry-run"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("CREATE (:Later)") && out.contains("would change (:Later): +1"),
        "{out}"
    );
    assert!(out.contains("fuel"), "{out}");

    let json = project.graphmig(&["run", "--dry-run", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        doc["migrations"][0]["statements"][0]["query"],
        "CREATE (:Later)"
    );
    assert_eq!(doc["migrations"][0]["changes"][0]["delta"], 1);

    assert_eq!(project.db.count("Later"), 0, "the graph did not change");
    assert_eq!(
        project.history_db().count("__GraphmigMigration"),
        history_before
    );
    assert_eq!(
        std::fs::read(&ledger).expect("ledger"),
        ledger_before,
        "the ledger did not change"
    );
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "pending")])
    );
}

#[test]
fn verify_finds_tampered_files_ledgers_and_histories() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    project.add("V5__create_later", "V2__create_later");
    assert!(project.graphmig(&["run"]).status.success());
    let ok = project.graphmig(&["verify"]);
    assert!(ok.status.success(), "{}", text(&ok));

    // A tampered artifact: named, both checksums, the way out; run refuses.
    project.add("V5__create_later", "V1__create_first");
    let output = project.graphmig(&["verify", "--json"]);
    assert_eq!(output.status.code(), Some(6));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let problem = doc["problems"][0].as_str().expect("problem");
    assert!(
        problem.contains("V1__create_first.wasm") && problem.contains("graphmig repair"),
        "{problem}"
    );
    assert_eq!(project.graphmig(&["run"]).status.code(), Some(6));

    // Repair accepts it, as an audit entry in ledger and graph.
    let repair = project.graphmig(&["repair"]);
    assert!(repair.status.success(), "{}", text(&repair));
    assert!(project.graphmig(&["verify"]).status.success());
    assert_eq!(
        project
            .history_db()
            .query("MATCH (h:__GraphmigMigration {action: 'repair'}) RETURN h.key AS k")
            .len(),
        1
    );

    // A hand-edited ledger breaks the chain.
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    conn.execute(
        "UPDATE attempts SET checksum = 'beef' WHERE migration = '2' AND action = 'up'",
        [],
    )
    .expect("tamper");
    let output = project.graphmig(&["verify"]);
    assert_eq!(output.status.code(), Some(6));
    assert!(
        text(&output).contains("breaks the hash chain"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_ledger_that_lags_the_graph_is_reported_and_synced() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    assert!(project.graphmig(&["run"]).status.success());
    // Another machine: fresh ledger, same database.
    std::fs::remove_dir_all(project.dir.path().join(".graphmig")).expect("drop ledger");
    assert_eq!(
        project.states(),
        states(&[("1", "applied")]),
        "status reads the graph's history"
    );
    let output = project.graphmig(&["verify"]);
    assert_eq!(output.status.code(), Some(6));
    assert!(
        text(&output).contains("lags the graph"),
        "{}",
        text(&output)
    );
    let sync = project.graphmig(&["sync"]);
    assert!(text(&sync).contains("Synced 1 entry"), "{}", text(&sync));
    assert!(project.graphmig(&["verify"]).status.success());
    assert_eq!(project.states(), states(&[("1", "applied")]));
}

#[test]
fn baseline_adopts_an_existing_graph() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    project.add("V1__create_first", "V2__create_first_again");
    project.add("V5__create_later", "V3__create_later");
    let output = project.graphmig(&["baseline", "--version", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied"), ("3", "pending")])
    );
    assert!(project.graphmig(&["run"]).status.success());
    assert_eq!(
        project.db.count("First"),
        0,
        "baselined migrations never ran"
    );
    assert_eq!(project.db.count("Later"), 1);
    let history = project.graphmig(&["history", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&history.stdout).expect("JSON");
    let actions: Vec<&str> = doc["history"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["baseline", "baseline", "up"]);
}

#[test]
fn repeatable_migrations_run_after_versioned_ones_and_again_when_changed() {
    let project = Project::new("");
    project.add("V5__create_later", "R__refresh");
    project.add("V1__create_first", "V1__create_first");
    let first = project.graphmig(&["run"]);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    let (v1, r) = (
        out.find("Applied V1").expect("V1"),
        out.find("Applied R__refresh").expect("R"),
    );
    assert!(v1 < r, "versioned first: {out}");
    assert!(text(&project.graphmig(&["run"])).contains("nothing to do"));
    assert_eq!(project.db.count("Later"), 1);

    project.add("V29__try_write", "R__refresh");
    let again = project.graphmig(&["run"]);
    assert!(
        again.status.success() && text(&again).contains("Applied R__refresh"),
        "{}",
        text(&again)
    );
}

#[test]
fn out_of_order_versions_need_to_be_asked_for() {
    let project = Project::new("");
    project.add("V5__create_later", "V2__create_later");
    assert!(project.graphmig(&["run"]).status.success());
    project.add("V1__create_first", "V1__create_first");
    let output = project.graphmig(&["run"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--out-of-order"));
    let output = project.graphmig(&["run", "--out-of-order"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.db.count("First"), 1);
}

#[test]
fn history_verbose_shows_the_journal() {
    let project = Project::new("");
    project.add("V9__values_roundtrip", "V1__values_roundtrip");
    assert!(project.graphmig(&["run"]).status.success());
    let output = project.graphmig(&["history", "--verbose", "V1"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("RETURN $v AS v") && out.contains("params: v: map(7)"),
        "{out}"
    );
    assert!(out.contains("MATCH (p:Probe) DELETE p"), "{out}");
    assert!(
        out.contains("changed: -1 node(s)"),
        "counters are journaled: {out}"
    );
}

#[test]
fn history_in_a_database_of_its_own_is_recovered_from_markers() {
    let project = Project::new("");
    let history_db = project
        .history
        .as_ref()
        .expect("a history database of its own");
    project.add("V1__create_first", "V1__create_first");
    assert!(project.graphmig(&["run"]).status.success());
    assert_eq!(
        history_db.count("__GraphmigMigration"),
        1,
        "the history lives in its own database"
    );
    assert_eq!(project.db.count("__GraphmigMigration"), 0);
    assert_eq!(
        project.db.count("__GraphmigApplied"),
        1,
        "a marker commits with the data"
    );

    // Killed after the data committed but before its history entry was written.
    project.add("V5__create_later", "V2__create_later");
    let crashed = run_crashing_at(&project, "after-data-commit");
    assert!(!crashed.status.success());
    assert_eq!(project.db.count("Later"), 1);
    assert_eq!(history_db.count("__GraphmigMigration"), 1);

    assert!(project.graphmig(&["unlock"]).status.success());
    let rerun = project.graphmig(&["run"]);
    let out = text(&rerun);
    assert!(
        rerun.status.success() && out.contains("had committed"),
        "{out}"
    );
    assert_eq!(project.db.count("Later"), 1, "not applied twice");
    assert_eq!(
        history_db.count("__GraphmigMigration"),
        2,
        "the missing entry was recorded"
    );
    assert!(project.graphmig(&["verify"]).status.success());
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied")])
    );
}

#[test]
fn dry_run_records_schema_statements_without_executing_them() {
    let project = Project::new("");
    project.add("V31__unique_constraint", "V1__unique_constraint");
    let output = project.graphmig(&["run", "--dry-run"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("graphmig.DryRun") && out.contains("CREATE CONSTRAINT account_email"),
        "{out}"
    );
    let constraints = project.db.query("SHOW CONSTRAINTS");
    assert!(
        !format!("{constraints:?}").contains("account_email"),
        "a dry run must not create schema: {constraints:?}"
    );
}

#[test]
fn batches_of_a_crashed_attempt_are_deleted_before_it_runs_again() {
    let project = Project::new("");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    let crashed = run_crashing_at(&project, "before-commit");
    assert!(!crashed.status.success());
    assert_eq!(
        project.db.count("Person"),
        12,
        "the batch chunks had committed"
    );

    assert!(project.graphmig(&["unlock"]).status.success());
    let rerun = project.graphmig(&["run"]);
    let out = text(&rerun);
    assert!(rerun.status.success(), "{out}");
    assert!(out.contains("had written through batches"), "{out}");
    assert_eq!(project.db.count("Person"), 12, "applied once, not twice");
    assert_eq!(
        project.db.query("MATCH ()-[w:WORKS_AT]->() RETURN w").len(),
        12
    );
}

/// Appends built on the head the runner remembers (one statement, no read of
/// the head) still chain correctly and still check the lock: after a take-over
/// the next append fails and leaves nothing behind.
#[test]
fn an_append_on_the_remembered_head_still_checks_the_lock() {
    use graphmig::config::{DatabaseSettings, Secret};
    use graphmig::graph::history::HistoryDraft;
    use graphmig::graph::lock::LockSettings;
    use graphmig::ledger::Action;
    use std::sync::Arc;

    let db = crate::support::Db::fresh();
    let settings = DatabaseSettings {
        uri: db.bolt_uri(),
        user: "root".into(),
        password: Secret::new(db.server.password.as_str()),
        migration_user: None,
        database: db.name.clone(),
        connect_timeout: Duration::from_secs(10),
        history_database: None,
        dialect: None,
        read_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(30),
    };
    let draft = |key: &str| HistoryDraft {
        action: Action::Up,
        key: key.into(),
        description: format!("step {key}"),
        checksum: graphmig::Checksum::of(key.as_bytes()),
        attempt_key: format!("attempt-{key}"),
        applied_at: "2026-11-22T00:00:00Z".into(),
        applied_by: "test".into(),
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let graph = Arc::new(
            graphmig::GraphDb::connect(&settings)
                .await
                .expect("connect"),
        );
        graph.ensure_history_schema().await.expect("history schema");
        let lock = graph
            .acquire_lock("tester", LockSettings::default(), &|_| {})
            .await
            .expect("lock");
        let fence = lock.fence().clone();

        let mut links = Vec::new();
        for key in ["1", "2"] {
            let mut txn = graph.begin().await.expect("begin");
            let entry = txn
                .append_history(&fence, &draft(key))
                .await
                .expect("append");
            txn.commit().await.expect("commit");
            fence.head.committed(&entry.chain);
            links.push(entry);
        }
        assert_eq!(links[1].chain.seq, 2);
        assert_eq!(
            links[1].previous, links[0].chain.hash,
            "the remembered head is the real one"
        );
        let history = graph.read_history().await.expect("history");
        assert_eq!(
            history.iter().map(|e| e.chain.clone()).collect::<Vec<_>>(),
            links.iter().map(|e| e.chain.clone()).collect::<Vec<_>>()
        );

        db.query("MATCH (l:__GraphmigLock) SET l.generation = l.generation + 1");
        let mut txn = graph.begin().await.expect("begin");
        let error = txn
            .append_history(&fence, &draft("3"))
            .await
            .expect_err("the lock was taken over");
        assert_eq!(error.code, "graphmig.LockLost", "{error:?}");
        let _ = txn.rollback().await;
    });
    assert_eq!(db.count("__GraphmigMigration"), 2, "nothing was appended");
}

#[test]
fn a_dropped_history_constraint_is_created_again() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    let constraints = || {
        let mut names: Vec<String> = project
            .history_db()
            .query("SHOW CONSTRAINTS")
            .iter()
            .filter_map(|row| row["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    assert!(project.graphmig(&["run"]).status.success());
    let both = ["graphmig_history_seq", "graphmig_lock_id"];
    assert_eq!(constraints(), both);
    // Later runs find both listed and create nothing; a missing one is noticed.
    project
        .history_db()
        .query("DROP CONSTRAINT graphmig_history_seq");
    assert_eq!(constraints(), ["graphmig_lock_id"]);
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(constraints(), both);
}

#[test]
fn forged_and_rewritten_history_is_a_verify_problem_that_repair_sets_aside() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    project.add("V5__create_later", "V2__create_later");
    assert!(project.graphmig(&["run"]).status.success());
    let history = project.history_db();

    // Every stored field is in the chain hash: a rewritten description is found.
    history.query("MATCH (h:__GraphmigMigration {seq: 1}) SET h.description = 'innocent'");
    let output = project.graphmig(&["verify"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(6), "{out}");
    assert!(
        out.contains("history node 1") && out.contains("breaks the hash chain"),
        "{out}"
    );
    history.query("MATCH (h:__GraphmigMigration {seq: 1}) SET h.description = 'create first'");
    let restored = project.graphmig(&["verify"]);
    assert!(restored.status.success(), "{}", text(&restored));

    // So is a rewrite that drops the entry to the old format.
    history.query("MATCH (h:__GraphmigMigration {seq: 2}) REMOVE h.format");
    let output = project.graphmig(&["verify"]);
    assert_eq!(output.status.code(), Some(6), "{}", text(&output));
    history.query("MATCH (h:__GraphmigMigration {seq: 2}) SET h.format = 2");

    // A forged, malformed entry: every command that reads the history reports it
    // as a problem (exit 6), naming the node and the way out; none fails with a
    // database error.
    history.query("CREATE (:__GraphmigMigration {seq: 'three', chain_hash: 'x', action: 'up'})");
    for args in [&["verify"][..], &["run"][..], &["status"][..]] {
        let output = project.graphmig(args);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(6), "{args:?}: {out}");
        assert!(
            out.contains("is not an entry graphmig wrote") && out.contains("graphmig repair"),
            "{args:?}: {out}"
        );
    }
    // A well-formed forged entry at the end of the chain.
    history.query(
        "CREATE (:__GraphmigMigration {seq: 3, chain_hash: 'f00d', previous: 'x', action: 'up', key: '9', version: '9', description: 'forged', checksum: 'ab', attempt: 'forged-attempt', applied_at: 'now', applied_by: 'mallory', format: 2})",
    );
    let repair = project.graphmig(&["repair"]);
    let out = text(&repair);
    assert!(repair.status.success(), "{out}");
    assert!(out.contains("set aside 2 history node(s)"), "{out}");
    assert_eq!(
        history.count("__GraphmigSetAside"),
        2,
        "the evidence is kept"
    );
    let verify = project.graphmig(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied")])
    );
}

#[test]
fn batch_tags_no_attempt_made_are_a_verify_problem() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    assert!(project.graphmig(&["run"]).status.success());
    project
        .db
        .query("CREATE (:Claimed {_graphmig_batch: 'forged-batch-1'}), (:Claimed {_graphmig_batch: 'forged-batch-1'})");
    let output = project.graphmig(&["verify"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(6), "{out}");
    assert!(
        out.contains("2 node(s) carry the batch tag `forged-batch-1`, which no attempt made"),
        "{out}"
    );
}
