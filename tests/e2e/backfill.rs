//! Backfills: the host pages through nodes by key and commits each chunk with
//! its checkpoint; a run killed part-way (the runner or the database) is
//! finished by the next with every node written exactly once.

use std::time::{Duration, Instant};

use crate::support::{Db, PrivateServer, Project, run_until_applied, spawn_run, text};

/// `count` `Item` nodes with ids 1..=count (every `skip_every`-th marked
/// `skip`), and an index on the id.
fn seed(db: &Db, count: u64, skip_every: u64) {
    db.query("CREATE INDEX item_id IF NOT EXISTS FOR (n:Item) ON (n.id)");
    let mut start = 1;
    while start <= count {
        let end = (start + 49_999).min(count);
        db.query(&format!(
            "UNWIND range({start}, {end}) AS i CREATE (:Item {{id: i}})"
        ));
        start = end + 1;
    }
    if skip_every > 0 {
        db.query(&format!(
            "MATCH (n:Item) WHERE n.id % {skip_every} = 0 SET n.skip = true"
        ));
    }
}

/// How many `Item`s have each number of visits, as `(visits, count)`.
fn visits(db: &Db) -> Vec<(i64, i64)> {
    db.query(
        "MATCH (n:Item) WHERE n.skip IS NULL \
         RETURN coalesce(n.visits, 0) AS visits, count(n) AS n ORDER BY visits",
    )
    .iter()
    .map(|r| {
        (
            r["visits"].as_i64().unwrap_or(-1),
            r["n"].as_i64().unwrap_or(-1),
        )
    })
    .collect()
}

/// The checkpoint in the target database: chunks committed so far (0 if none).
fn chunks_committed(db: &Db) -> i64 {
    db.query("MATCH (b:__GraphmigBackfill) RETURN b.chunks AS chunks")
        .first()
        .and_then(|r| r["chunks"].as_i64())
        .unwrap_or(0)
}

/// The ledger's copy of the checkpoints: `(rows, chunks, done)`.
fn ledger_backfills(project: &Project) -> Vec<(i64, i64, bool)> {
    let conn = rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db"))
        .expect("open ledger");
    let mut stmt = conn
        .prepare("SELECT rows, chunks, done FROM backfills ORDER BY name")
        .expect("backfills table");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

const VISIT: &str =
    "UNWIND $batch AS k MATCH (n:Item {id: k}) SET n.visits = coalesce(n.visits, 0) + 1";

fn write_backfill(project: &Project, chunk: Option<u32>) {
    let size = chunk
        .map(|c| format!(", chunk-size = {c}"))
        .unwrap_or_default();
    std::fs::write(
        project.migrations().join("V1__visit_items.cypher"),
        format!(
            "// graphmig: backfill label = Item, key = id{size}, where = n.skip IS NULL\n{VISIT};\n"
        ),
    )
    .expect("V1");
}

#[test]
fn a_backfill_of_200000_nodes_commits_in_checkpointed_chunks() {
    let project = Project::new("");
    seed(&project.db, 200_000, 0);
    write_backfill(&project, Some(5_000));

    // A dry run writes the first chunk in its rolled-back transaction and
    // estimates the rest.
    let dry = project.graphmig(&["run", "--dry-run"]);
    let out = text(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(
        out.contains("the first chunk wrote 5000 node(s); about 200000 in 40 chunk(s)"),
        "{out}"
    );
    assert_eq!(visits(&project.db), [(0, 200_000)]);

    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert_eq!(visits(&project.db), [(1, 200_000)], "every node once");
    // 40 chunks of 5,000 and the ledger's copy of the checkpoint says so.
    assert_eq!(ledger_backfills(&project), [(200_000, 40, true)]);
    // The checkpoints went with the transaction that recorded the migration.
    assert_eq!(chunks_committed(&project.db), 0);
    assert_eq!(project.history_db().count("__GraphmigBackfill"), 0);
    let history = text(&project.graphmig(&["history", "--verbose", "V1"]));
    assert!(
        history.contains("chunk 40: 5000 key(s) up to 200000"),
        "{history}"
    );
}

#[test]
fn throttling_sets_the_chunks_and_the_component_sdk_backfills_with_a_filter() {
    // The project's [backfill] chunk-size governs a backfill that names none.
    let project = Project::new("");
    project.write_extra_config(
        "[backfill]\nchunk-size = 700\ndelay-ms = 1\nmax-rows-per-sec = 1000000\n",
    );
    seed(&project.db, 7_000, 0);
    write_backfill(&project, None);
    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(visits(&project.db), [(1, 7_000)]);
    assert_eq!(ledger_backfills(&project), [(7_000, 10, true)]);

    // Through the Rust SDK: 5,000 items, every tenth skipped by the filter,
    // chunks of 1,000 named by the component.
    let project = Project::new("");
    seed(&project.db, 5_000, 10);
    project.add("V50__backfill", "V1__backfill");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("backfill: 4500 rows in 5 chunks (resumed after 0) of 4500"),
        "{out}"
    );
    assert_eq!(visits(&project.db), [(1, 4_500)]);
    assert_eq!(
        project
            .db
            .query("MATCH (n:Item) WHERE n.skip AND n.visits IS NOT NULL RETURN count(n) AS n")[0]
            ["n"]
            .as_i64(),
        Some(0)
    );
}

/// Starts the backfill, waits until `chunks` of it committed, then calls
/// `fault`; returns once the runner has exited.
fn interrupt_after(project: &Project, chunks: i64, fault: impl FnOnce(&mut std::process::Child)) {
    let mut runner = spawn_run(project);
    let deadline = Instant::now() + Duration::from_secs(120);
    while chunks_committed(&project.db) < chunks {
        assert!(
            Instant::now() < deadline,
            "the backfill never got under way"
        );
        if let Ok(Some(status)) = runner.try_wait() {
            panic!("the run ended ({status}) before {chunks} chunks committed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    fault(&mut runner);
    let _ = runner.wait();
}

#[test]
fn a_runner_killed_mid_backfill_is_resumed_without_redoing_a_chunk() {
    let project = Project::new("");
    seed(&project.db, 60_000, 0);
    write_backfill(&project, Some(1_000));
    interrupt_after(&project, 5, |runner| {
        let _ = runner.kill();
    });
    let before = chunks_committed(&project.db);
    assert!(
        (5..60).contains(&before),
        "{before} chunks committed before the kill"
    );
    // Some nodes are done, none twice, the rest not yet.
    let partial = visits(&project.db);
    assert!(partial.iter().all(|(v, _)| *v <= 1), "{partial:?}");

    // `status` shows how far it got, from the checkpoint in the graph.
    let status = text(&project.graphmig(&["status"]));
    let percent = before * 100 / 60;
    assert!(
        status.contains(&format!("in progress ({percent} %, chunk {before})")),
        "{status}"
    );

    // A write edited since is refused rather than resumed.
    std::fs::write(
        project.migrations().join("V1__visit_items.cypher"),
        format!("// graphmig: backfill label = Item, key = id, chunk-size = 1000, where = n.skip IS NULL\n{VISIT}, n.edited = true;\n"),
    )
    .expect("edit");
    let (runs, outputs) = run_until_applied(&project, 1);
    assert_eq!(runs, 0, "{outputs}");
    assert!(outputs.contains("graphmig.EditedBackfill"), "{outputs}");

    write_backfill(&project, Some(1_000));
    let (runs, outputs) = run_until_applied(&project, 40);
    assert!(runs > 0, "never finished:\n{outputs}");
    assert!(
        outputs.contains(&format!("resumes after chunk {before}")),
        "{outputs}"
    );
    assert_eq!(
        visits(&project.db),
        [(1, 60_000)],
        "every node exactly once"
    );
    assert_eq!(ledger_backfills(&project), [(60_000, 60, true)]);
}

#[test]
fn a_database_killed_mid_backfill_and_started_again_is_finished_exactly_once() {
    let private = PrivateServer::start();
    let project = Project::on(private.server.clone(), "");
    seed(&project.db, 60_000, 0);
    write_backfill(&project, Some(1_000));
    interrupt_after(&project, 5, |_| private.kill());
    private.resume();
    let (runs, outputs) = run_until_applied(&project, 40);
    assert!(runs > 0, "never finished:\n{outputs}");
    assert_eq!(
        visits(&project.db),
        [(1, 60_000)],
        "every node exactly once"
    );
    assert_eq!(chunks_committed(&project.db), 0);
}

#[test]
fn a_backfill_finished_by_a_failed_attempt_is_not_run_again_and_its_checkpoint_goes() {
    let project = Project::new("");
    seed(&project.db, 3_000, 0);
    let file = |after: &str| {
        format!(
            "// graphmig: backfill label = Item, key = id, chunk-size = 1000\n{VISIT};\n{after};\n"
        )
    };
    let path = project.migrations().join("V1__visit_then_more.cypher");
    std::fs::write(&path, file("UNWIND [0] AS z CREATE (:After {v: 1 / z})")).expect("V1");
    let failed = project.graphmig(&["run"]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    // The backfill's chunks committed and stay; the migration failed after it.
    assert_eq!(visits(&project.db), [(1, 3_000)]);
    assert_eq!(chunks_committed(&project.db), 3);

    std::fs::write(&path, file("CREATE (:After {v: 1})")).expect("V1");
    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(visits(&project.db), [(1, 3_000)], "not run a second time");
    assert_eq!(project.db.count("After"), 1);
    assert_eq!(project.db.count("__GraphmigBackfill"), 0);
}
