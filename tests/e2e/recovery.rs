//! Recovery driven by the graph: an attempt that committed part of its work on
//! its own (batch chunks, refactoring chunks) and never finished is undone by
//! the next runner from its intent in the history database, even when the
//! killed runner's ledger is gone; `status` shows such an attempt as
//! `compensation pending` until then.

use crate::support::{Project, run_crashing_at, states, text};

/// Intents left in the history database.
fn intents(project: &Project) -> i64 {
    project.history_db().count("__GraphmigAttempt")
}

/// Nodes and relationships still carrying a refactoring's tag.
fn refactor_tags(project: &Project) -> i64 {
    let tagged = |pattern: &str| {
        project.db.query(&format!(
            "MATCH {pattern} WHERE any(k IN keys(x) WHERE k STARTS WITH '_graphmig_r') RETURN count(x) AS n"
        ))[0]["n"]
            .as_i64()
            .unwrap_or(-1)
    };
    tagged("(x)") + tagged("()-[x]->()")
}

/// Kills the runner (as kill -9 would) once `fixture`'s work committed on its
/// own and just before its commit, removes its workspace (the ledger with it),
/// and runs again as a runner on another machine would.
fn killed_then_rerun_without_ledger(project: &Project) -> String {
    let crashed = run_crashing_at(project, "before-commit");
    assert!(!crashed.status.success(), "{}", text(&crashed));
    assert!(
        intents(project) > 0,
        "the attempt was in the graph before its effects"
    );
    std::fs::remove_dir_all(project.dir.path().join(".graphmig")).expect("remove the workspace");
    assert!(project.graphmig(&["unlock"]).status.success());
    let rerun = project.graphmig(&["run"]);
    let out = text(&rerun);
    assert!(rerun.status.success(), "{out}");
    out
}

#[test]
fn a_killed_attempt_whose_ledger_is_gone_has_its_batches_deleted_from_the_graph() {
    let project = Project::new("");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    let out = killed_then_rerun_without_ledger(&project);
    assert!(out.contains("never committed: compensated"), "{out}");
    assert_eq!(project.db.count("Person"), 12, "applied once, not twice");
    assert_eq!(
        project.db.query("MATCH ()-[w:WORKS_AT]->() RETURN w").len(),
        12
    );
    assert_eq!(intents(&project), 0, "no intent left");
    assert_eq!(project.states(), states(&[("1", "applied")]));
    let verify = project.graphmig(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn a_killed_refactoring_is_walked_back_from_the_graph_and_leaves_no_tags() {
    let project = Project::new("");
    project.add("V39__refactor_data", "V1__refactor_data");
    assert!(project.graphmig(&["run"]).status.success());
    project.add("V38__refactorings", "V2__refactorings");
    let out = killed_then_rerun_without_ledger(&project);
    assert!(out.contains("never committed: compensated"), "{out}");
    assert_eq!(project.db.count("New"), 5, "renamed once");
    assert_eq!(project.db.count("Old"), 0);
    assert_eq!(refactor_tags(&project), 0, "no refactoring tag left");
    assert_eq!(intents(&project), 0, "no intent left");
}

#[test]
fn an_attempt_left_in_the_graph_is_pending_while_locked_and_finished_by_the_next_command() {
    let project = Project::new("");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    // What a runner that died on another machine leaves: a batch chunk that
    // committed, and the attempt's intent.
    let key = "0123456789abcdef0123456789abcdef";
    project.db.query(&format!(
        "UNWIND range(1, 7) AS i CREATE (:Person {{name: 'leftover ' + toString(i), _graphmig_batch: '{key}-1'}})"
    ));
    let target = format!(
        "{}/{}",
        project.db.bolt_uri().trim_start_matches("bolt://"),
        project.db.name
    );
    project.history_db().query(&format!(
        "CREATE (:__GraphmigAttempt {{key: '{key}', target: '{target}', migration: '1', description: 'batch ingest', checksum: '', action: 'up', runner: 'ci@elsewhere', started_at: '2026-12-01T00:00:00Z', refactor_undo: [], refactor_finalize: [], schema_undo: []}})"
    ));
    // While another runner holds the lock, it may be at work on the attempt:
    // status shows it and leaves it.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    project.history_db().query(&format!(
        "CREATE (:__GraphmigLock {{id: 'graphmig', owner: 'ci@elsewhere:1/abc', acquired_at: {now_ms}, expires_at: {}, generation: 1}})",
        now_ms + 120_000
    ));
    let status = project.graphmig(&["status"]);
    let shown = text(&status);
    assert!(shown.contains("compensation pending"), "{shown}");
    assert!(shown.contains("ci@elsewhere"), "{shown}");
    assert_eq!(
        project.db.count("Person"),
        7,
        "left alone under a held lock"
    );

    // With the lock free, the next command that connects finishes it first:
    // here `status`; then `run` applies.
    assert!(project.graphmig(&["unlock"]).status.success());
    let status = project.graphmig(&["status"]);
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    assert!(
        shown.contains("never committed: compensated: 7 nodes"),
        "{shown}"
    );
    assert!(!shown.contains("compensation pending"), "{shown}");
    assert_eq!(project.db.count("Person"), 0, "the leftovers went");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert_eq!(project.db.count("Person"), 12, "the run applied");
    assert_eq!(intents(&project), 0);
    let history = project.graphmig(&["history"]);
    assert!(text(&history).contains("repair"), "{}", text(&history));
}

#[test]
fn a_runner_killed_while_it_cleans_up_a_failed_migration_leaves_the_rest_to_the_next() {
    let project = Project::new("");
    project.add("V37__batch_then_fail", "V1__batch_then_fail");
    let crashed = run_crashing_at(&project, "during-compensation");
    assert!(!crashed.status.success(), "{}", text(&crashed));
    assert_eq!(
        project.db.count("Ghost"),
        7,
        "killed before its batch was deleted"
    );
    assert_eq!(intents(&project), 1, "the intent outlives the runner");
    std::fs::remove_dir_all(project.dir.path().join(".graphmig")).expect("remove the workspace");
    assert!(project.graphmig(&["unlock"]).status.success());
    // The next run finishes the clean-up first, then runs the migration, which
    // fails again and cleans up after itself.
    let rerun = project.graphmig(&["run"]);
    let out = text(&rerun);
    assert_eq!(rerun.status.code(), Some(1), "{out}");
    assert!(
        out.contains("never committed: compensated: 7 nodes"),
        "{out}"
    );
    assert!(out.contains("failed and was rolled back"), "{out}");
    assert_eq!(
        project.db.count("Ghost"),
        0,
        "nothing of either attempt is left"
    );
    assert_eq!(intents(&project), 0);
}
