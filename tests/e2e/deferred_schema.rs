//! Backfill, then constraint, in one migration: schema steps after the
//! migration's writes run once those committed, after the data was checked
//! against them in the open transaction; data that breaks one rolls back.

use crate::support::{Project, run_crashing_at, states, text};

fn constraint_names(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = project
        .db
        .query("SHOW CONSTRAINTS")
        .into_iter()
        .filter_map(|row| row["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The ledger's schema steps of the latest attempt: `(statement, outcome)`.
fn schema_ops(project: &Project) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db"))
        .expect("open ledger");
    let mut stmt = conn
        .prepare(
            "SELECT statement, outcome FROM schema_ops WHERE attempt_id = \
             (SELECT max(attempt_id) FROM schema_ops) ORDER BY seq",
        )
        .expect("schema_ops");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

const PEOPLE: &str = "UNWIND range(1, 300) AS i CREATE (:Person {id: i, email: 'p' + toString(i) + '@example.org'});\n";
const UNIQUE_EMAIL: &str =
    "CREATE CONSTRAINT person_email FOR (p:Person) REQUIRE p.email IS UNIQUE;\n";

#[test]
fn a_constraint_after_the_writes_is_created_once_they_committed() {
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__people_then_email.cypher"),
        format!("{PEOPLE}{UNIQUE_EMAIL}"),
    )
    .expect("V1");
    // A backfill (chunks committed on their own) then a constraint on what it wrote.
    std::fs::write(
        project.migrations().join("V2__handles_then_key.cypher"),
        "// graphmig: backfill label = Person, key = id, chunk-size = 50\n\
         UNWIND $batch AS k MATCH (p:Person {id: k}) SET p.handle = 'h' + toString(k);\n\
         CREATE CONSTRAINT person_handle FOR (p:Person) REQUIRE p.handle IS UNIQUE;\n",
    )
    .expect("V2");

    // The dry run checks the data against the constraints too, and changes nothing.
    let dry = project.graphmig(&["run", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert_eq!(project.db.count("Person"), 0);

    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert_eq!(project.db.count("Person"), 300);
    assert_eq!(
        constraint_names(&project),
        ["person_email", "person_handle"]
    );
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied")])
    );
    // The ledger keeps the order: the step ran after the data, as deferred.
    let ops = schema_ops(&project);
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(ops[0].0.contains("person_handle"), "{ops:?}");
    assert_eq!(ops[0].1, "applied");
    let history = text(&project.graphmig(&["history", "--verbose", "V1"]));
    assert!(history.contains("deferred"), "{history}");
    // The constraint holds: a duplicate is refused by the server.
    let dup = project.graphmig(&[
        "run-cypher",
        "CREATE (:Person {id: 999, email: 'p1@example.org'})",
    ]);
    assert!(!dup.status.success(), "{}", text(&dup));
}

#[test]
fn data_that_breaks_the_deferred_constraint_rolls_back_and_is_named() {
    let project = Project::new("");
    std::fs::write(
        project
            .migrations()
            .join("V1__people_with_a_duplicate.cypher"),
        format!(
            "{PEOPLE}CREATE (:Person {{id: 1000, email: 'p7@example.org'}}), \
             (:Person {{id: 1001, email: 'p7@example.org'}});\n{UNIQUE_EMAIL}"
        ),
    )
    .expect("V1");
    let dry = project.graphmig(&["run", "--dry-run"]);
    let out = text(&dry);
    assert!(!dry.status.success(), "{out}");
    assert!(out.contains("\"p7@example.org\" (3 times)"), "{out}");

    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("graphmig.ConstraintViolated"), "{out}");
    assert!(out.contains("\"p7@example.org\" (3 times)"), "{out}");
    assert!(
        out.contains("V1__people_with_a_duplicate.cypher:3"),
        "{out}"
    );
    // Nothing half-applied: no data, no constraint, the migration failed.
    assert_eq!(project.db.count("Person"), 0);
    assert!(constraint_names(&project).is_empty());
    assert_eq!(project.states(), states(&[("1", "failed")]));

    // A node key names the elements that lack a property, too.
    std::fs::write(
        project
            .migrations()
            .join("V1__people_with_a_duplicate.cypher"),
        format!(
            "{PEOPLE}CREATE (:Person {{id: 1000}});\n\
             CREATE CONSTRAINT person_key FOR (p:Person) REQUIRE (p.id, p.email) IS NODE KEY;\n"
        ),
    )
    .expect("V1 edited");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(
        out.contains("1 :Person nodes lack one of `id`, `email`"),
        "{out}"
    );
    assert_eq!(project.db.count("Person"), 0);

    // A property-type constraint after writes cannot be checked: refused.
    std::fs::write(
        project
            .migrations()
            .join("V1__people_with_a_duplicate.cypher"),
        format!("{PEOPLE}CREATE CONSTRAINT age FOR (p:Person) REQUIRE p.age IS :: INTEGER;\n"),
    )
    .expect("V1 edited");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("graphmig.DeferredSchema"), "{out}");
    assert_eq!(project.db.count("Person"), 0);
}

#[test]
fn a_runner_killed_between_the_data_and_the_deferred_constraint_is_finished_by_the_next() {
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__people_then_email.cypher"),
        format!("{PEOPLE}{UNIQUE_EMAIL}"),
    )
    .expect("V1");
    let crashed = run_crashing_at(&project, "before-deferred-schema");
    assert!(!crashed.status.success(), "{}", text(&crashed));
    // The data committed, the constraint did not run, nothing is recorded yet.
    assert_eq!(project.db.count("Person"), 300);
    assert!(constraint_names(&project).is_empty());

    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(out.contains("deferred schema step"), "{out}");
    assert_eq!(constraint_names(&project), ["person_email"]);
    // Applied once: the data was not written again.
    assert_eq!(project.db.count("Person"), 300);
    assert_eq!(project.states(), states(&[("1", "applied")]));
    assert_eq!(project.history_db().count("__GraphmigAttempt"), 0);
}

#[test]
fn in_per_statement_mode_a_constraint_runs_in_its_place_and_resumes_there() {
    // Each statement commits before the next: nothing waits, and a constraint
    // the data breaks is where the next run resumes.
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__people_then_email.cypher"),
        format!(
            "// graphmig: transaction = per-statement\n{PEOPLE}\
             CREATE (:Person {{id: 1000, email: 'p7@example.org'}});\n{UNIQUE_EMAIL}"
        ),
    )
    .expect("V1");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("resumes at statement 3"), "{out}");
    assert!(out.contains("graphmig.ConstraintViolated"), "{out}");
    assert!(
        out.contains("p7@example.org"),
        "the duplicate is named: {out}"
    );
    assert_eq!(project.db.count("Person"), 301, "statements 1 and 2 stay");
    assert!(constraint_names(&project).is_empty(), "{out}");

    project.db.query("MATCH (p:Person {id: 1000}) DELETE p");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert_eq!(constraint_names(&project), ["person_email"]);
    assert_eq!(project.db.count("Person"), 300);
    assert_eq!(project.states(), states(&[("1", "applied")]));
}

#[test]
fn a_constraint_the_server_refuses_leaves_nothing_of_itself_behind() {
    // Data that was there before the migration: the constraint runs in its
    // place, the server refuses it, and (ArcadeDB) keeps a property type of
    // it, which graphmig drops again.
    let project = Project::new("");
    project.db.query(
        "CREATE (:Person {id: 1, email: 'same@example.org'}), \
         (:Person {id: 2, email: 'same@example.org'})",
    );
    std::fs::write(
        project.migrations().join("V1__email_unique.cypher"),
        UNIQUE_EMAIL,
    )
    .expect("V1");
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("person_email"), "{out}");
    assert!(constraint_names(&project).is_empty(), "{out}");
    assert_eq!(project.states(), states(&[("1", "failed")]));

    // Fixed data, and the same migration applies.
    project.db.query("MATCH (p:Person {id: 2}) DELETE p");
    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(constraint_names(&project), ["person_email"]);
}
