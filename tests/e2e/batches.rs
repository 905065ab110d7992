//! Tracked batches: chunked, tagged, counted, deleted exactly, and deleted again
//! when their migration fails.

use crate::support::{Project, states, text};

/// One text column of the ledger's rows that `sql` selects, in its order.
fn journal_column(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The batch-ingest fixture in chunks of 5, with the company it merges into
/// already there (batches commit on their own, so they see only committed data).
fn batch_ingest_project() -> Project {
    let project = Project::new("");
    project.write_extra_config("[batches]\nchunk-size = 5\n");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    project
}

#[test]
fn batches_ingest_in_chunks_and_record_what_they_wrote() {
    let project = batch_ingest_project();
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.db.count("Person"), 12);
    assert_eq!(project.db.count("Company"), 3);
    assert_eq!(
        project.db.query("MATCH ()-[w:WORKS_AT]->() RETURN w").len(),
        12
    );
    // Rows with the same fields as their chunk travel as lists, the others as
    // maps; either way each node gets exactly its row's fields.
    let people = project
        .db
        .query("MATCH (p:Person) RETURN p.id AS id, p.name AS name, p.email AS email ORDER BY id");
    for person in &people {
        let id = person["id"].as_i64().expect("id");
        assert_eq!(person["name"], format!("person {id}"), "{person:?}");
        if id % 3 == 0 {
            assert_eq!(person["email"], format!("p{id}@example.com"), "{person:?}");
        } else {
            assert!(person["email"].is_null(), "{person:?}");
        }
    }
    let jobs = project.db.query(
        "MATCH (p:Person)-[w:WORKS_AT]->(c:Company) RETURN p.id AS id, c.name AS company, w.since AS since, w.person AS person, w.company AS key ORDER BY id",
    );
    for job in &jobs {
        let id = job["id"].as_i64().expect("id");
        assert_eq!(job["since"], 2000 + id, "{job:?}");
        let company = if id % 2 == 0 { "Acme" } else { "Globex" };
        assert_eq!(job["company"], company, "{job:?}");
        assert!(
            job["person"].is_null() && job["key"].is_null(),
            "the endpoint fields are not the relationship's: {job:?}"
        );
    }
    let untagged = project.db.query(
        "MATCH (c:Company {name: 'Acme'}) RETURN c._graphmig_batch AS tag, c.listed AS listed",
    );
    assert!(
        untagged[0]["tag"].is_null(),
        "a merged existing node is not the batch's: {untagged:?}"
    );
    assert_eq!(
        untagged[0]["listed"], true,
        "but it got the row's properties"
    );
    assert_eq!(
        project.db.count("Temp"),
        1,
        "delete-batch removed exactly the batch's nodes"
    );

    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let mut stmt = conn
        .prepare("SELECT name, nodes, relationships FROM batches ORDER BY name")
        .expect("prepare");
    let rows: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        [
            ("companies".to_string(), 2, 0),
            ("jobs".to_string(), 0, 12),
            ("people".to_string(), 12, 0),
            ("temp".to_string(), 2, 0),
        ]
    );
    let forms = journal_column(
        &conn,
        "SELECT params FROM statements WHERE query LIKE 'UNWIND $rows AS row CREATE (n:`Person`%' ORDER BY seq",
    );
    assert_eq!(forms.len(), 3, "12 rows in chunks of 5");
    assert_eq!(
        forms,
        [
            "rows: list(5) of maps, batch: string",
            "rows: list(5) of maps, batch: string",
            "rows: list(2) of lists, batch: string",
        ],
        "a chunk whose rows differ goes as maps, a uniform one as lists"
    );
}

#[test]
fn a_failed_migration_deletes_its_batches() {
    let project = Project::new("");
    project.add("V37__batch_then_fail", "V1__batch_then_fail");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("batch `ghosts` deleted"), "{out}");
    assert_eq!(project.db.count("Ghost"), 0);
    assert_eq!(project.states(), states(&[("1", "failed")]));
}

#[test]
fn a_failed_chunk_of_a_streamed_batch_fails_the_migration_even_if_the_guest_ignores_it() {
    let project = Project::new("");
    project.write_extra_config("[batches]\nchunk-size = 5\n");
    project.add("V41__batch_stream_fails", "V1__batch_stream_fails");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("UNWIND $rows AS row CREATE (n:`Ghost`"),
        "the failing chunk is named: {out}"
    );
    assert!(out.contains("batch `ghosts` deleted"), "{out}");
    assert_eq!(
        project.db.count("Ghost"),
        0,
        "the five committed chunks went"
    );
    assert_eq!(project.states(), states(&[("1", "failed")]));

    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let outcomes = journal_column(
        &conn,
        "SELECT outcome FROM statements WHERE query LIKE 'UNWIND%' ORDER BY seq",
    );
    assert_eq!(
        outcomes,
        ["ok", "ok", "ok", "ok", "ok", "error"],
        "five chunks committed, the sixth failed, nothing was sent after it"
    );
}

#[test]
fn refactorings_commit_in_chunks_and_are_walked_back_on_failure() {
    let project = Project::new("");
    project.write_extra_config("[batches]\nchunk-size = 2\n");
    project
        .add("V39__refactor_data", "V1__refactor_data")
        .add("V38__refactorings", "V2__refactorings");
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.db.count("New"), 5);
    assert_eq!(project.db.count("Old"), 0);
    assert_eq!(project.db.query("MATCH ()-[k:KNOWS]->() RETURN k").len(), 5);
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let chunks: i64 = conn
        .query_row(
            "SELECT count(*) FROM statements WHERE query LIKE 'MATCH (x:`Old`) WITH x LIMIT 2 %'",
            [],
            |r| r.get(0),
        )
        .expect("chunks");
    assert_eq!(chunks, 3, "5 nodes in chunks of 2");

    project.add("V40__refactor_then_fail", "V3__refactor_then_fail");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("5 refactoring(s) undone"), "{out}");
    assert_eq!(project.db.count("New"), 5, "label back");
    assert_eq!(project.db.count("Renamed"), 0);
    assert_eq!(
        project
            .db
            .query("MATCH (n:New) WHERE n.score = 0.5 AND n.i IS NOT NULL AND n.z IS NULL RETURN n")
            .len(),
        5
    );
    assert_eq!(
        project.db.query("MATCH ()-[k:KNOWS]->() RETURN k").len(),
        5,
        "type back"
    );
    let tags = project.db.query("MATCH (n) RETURN keys(n) AS k");
    assert!(
        !format!("{tags:?}").contains("_graphmig_r"),
        "no tags left: {tags:?}"
    );
}

/// Records what the runner tells about batch progress.
#[derive(Default)]
struct ProgressLog(std::sync::Mutex<Vec<(String, u64, Option<u64>)>>);

impl graphmig::Reporter for ProgressLog {
    fn batch_progress(&self, _migration: &str, batch: &str, done: u64, total: Option<u64>) {
        self.0
            .lock()
            .expect("log")
            .push((batch.to_string(), done, total));
    }
}

#[test]
fn a_streamed_batch_of_known_size_reports_progress_against_its_total() {
    let project = batch_ingest_project();
    let mut config =
        graphmig::Config::load(&project.dir.path().join("graphmig.toml")).expect("config");
    config.database.password = graphmig::config::Secret::new(project.db.server.password.as_str());
    if let Some(user) = config.database.migration_user.as_mut() {
        user.password = graphmig::config::Secret::new(crate::support::MIGRATION_PASSWORD);
    }
    let log = std::sync::Arc::new(ProgressLog::default());
    let runner = graphmig::Runner::new(config, log.clone());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(runner.run(&graphmig::RunOptions::default()))
        .expect("run");
    let people: Vec<(u64, Option<u64>)> = log
        .0
        .lock()
        .expect("log")
        .iter()
        .filter(|(batch, _, _)| batch == "people")
        .map(|(_, done, total)| (*done, *total))
        .collect();
    // The Rust SDK knows the iterator's exact size (12 rows) and says so, so the
    // bar starts from zero with a total: 12 rows in chunks of 5.
    assert_eq!(
        people,
        [
            (0, Some(12)),
            (5, Some(12)),
            (10, Some(12)),
            (12, Some(12)),
            (12, Some(12))
        ]
    );
}

/// The log lines of the newest attempt.
fn last_logs(project: &Project) -> Vec<String> {
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    journal_column(
        &conn,
        "SELECT message FROM guest_logs WHERE attempt_id = (SELECT max(attempt_id) FROM guest_logs) ORDER BY seq",
    )
}

#[test]
fn delete_batch_reaches_another_migrations_batch_only_when_granted() {
    let project = batch_ingest_project();
    assert!(project.graphmig(&["run"]).status.success());
    let ledger =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let batch = journal_column(
        &ledger,
        // The relationships' batch: its deletion leaves no node dangling.
        "SELECT batch_id FROM batches WHERE outcome = 'kept' AND relationships > 0 ORDER BY rowid LIMIT 1",
    )
    .remove(0);
    let data = project.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("batch.txt"), &batch).expect("batch id");
    let works_at = || project.db.query("MATCH ()-[w:WORKS_AT]->() RETURN w").len();
    let before = works_at();
    project.write_extra_config(
        "[migration.V3]\nallow = [\"read\"]\n[migration.V4]\ngrants = [\"delete-batches\"]\n",
    );

    // Without a grant, and in a read-only migration, the deletion is refused.
    for (version, code) in [
        ("V2", "graphmig.Policy.DeleteBatch"),
        ("V3", "graphmig.Policy.Write"),
    ] {
        project.add(
            "V43__delete_earlier_batch",
            &format!("{version}__delete_earlier_batch"),
        );
        let output = project.graphmig(&["run"]);
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(
            last_logs(&project),
            [format!("refused {code}")],
            "{version}"
        );
        assert_eq!(works_at(), before, "{version}: nothing deleted");
    }

    // With the grant it happens, and stays done although the migration then fails:
    // the earlier batch's record says so.
    std::fs::write(data.join("fail"), "").expect("fail switch");
    project.add("V43__delete_earlier_batch", "V4__delete_earlier_batch");
    let output = project.graphmig(&["run"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        last_logs(&project)[0].starts_with("deleted "),
        "{:?}",
        last_logs(&project)
    );
    assert!(works_at() < before);
    let outcome = journal_column(
        &ledger,
        &format!("SELECT outcome FROM batches WHERE batch_id = '{batch}' ORDER BY rowid LIMIT 1"),
    );
    assert!(outcome[0].starts_with("deleted by attempt"), "{outcome:?}");
}
