//! Large data migrations: `CALL { ... } IN TRANSACTIONS` in auto-commit, and
//! `.cypher` files in per-statement mode that resume at the failed statement.

use crate::support::{Project, text};

fn write(project: &Project, name: &str, body: &str) {
    std::fs::write(project.migrations().join(name), body).expect("write migration");
}

#[test]
fn call_in_transactions_runs_in_auto_commit_and_is_journaled() {
    let project = Project::new("");
    write(
        &project,
        "V1__chunked.cypher",
        "UNWIND range(1, 1000) AS i\nCALL { WITH i CREATE (:Chunked {i: i}) } IN TRANSACTIONS OF 100 ROWS;\n",
    );
    // A dry run does not run it: it would commit.
    let dry = project.graphmig(&["run", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert_eq!(project.db.count("Chunked"), 0);

    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(project.db.count("Chunked"), 1000);
    let history = project.graphmig(&["history", "--verbose", "V1"]);
    let out = text(&history);
    assert!(out.contains("auto-commit"), "{out}");
    assert!(out.contains("+1000 node(s)"), "{out}");

    // ArcadeDB accepts ON ERROR CONTINUE but stops at the first error anyway:
    // graphmig refuses the form instead of passing it through.
    write(
        &project,
        "V2__continue.cypher",
        "UNWIND [1, 0, 2] AS z\nCALL { WITH z CREATE (:Continued {v: 10 / z}) } IN TRANSACTIONS OF 1 ROWS ON ERROR CONTINUE;\n",
    );
    let refused = project.graphmig(&["run"]);
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(out.contains("graphmig.Unsupported"), "{out}");
    assert!(out.contains("ON ERROR CONTINUE"), "{out}");
    assert!(out.contains("batch operations"), "{out}");
    assert_eq!(project.db.count("Continued"), 0);

    // A form graphmig's reader does not know is refused, typed, with what to write.
    write(
        &project,
        "V2__continue.cypher",
        "UNWIND [1, 2] AS z\nCALL { WITH z CREATE (:Continued {v: z}) } IN TRANSACTIONS OF 1 ROWS ON ERROR FAIL REPORT STATUS AS s\nRETURN s;\n",
    );
    let refused = project.graphmig(&["run"]);
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(out.contains("graphmig.Unsupported"), "{out}");
    assert!(out.contains("leave `REPORT STATUS` out"), "{out}");
    assert!(out.contains("V2__continue.cypher:1"), "{out}");
    assert_eq!(project.db.count("Continued"), 0);

    // What committed before a failure stays, and the error says so.
    write(
        &project,
        "V2__continue.cypher",
        "UNWIND [1, 0, 2] AS z\nCALL { WITH z CREATE (:Continued {v: 10 / z}) } IN TRANSACTIONS OF 1 ROWS;\n",
    );
    let failed = project.graphmig(&["run"]);
    let out = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(out.contains("committed before the failure stay"), "{out}");
    assert_eq!(project.db.count("Continued"), 1);
}

#[test]
fn per_statement_mode_resumes_at_the_failed_statement_and_refuses_edits_before_it() {
    let project = Project::new("");
    let file = |third: &str, first: &str| {
        format!(
            "// graphmig: transaction = per-statement\n{first};\nCREATE (:Step {{n: 2}});\n{third};\nCREATE (:Step {{n: 4}});\n"
        )
    };
    let first = "CREATE (:Step {n: 1})";
    write(
        &project,
        "V1__steps.cypher",
        &file("UNWIND [0] AS z CREATE (:Step {n: 10 / z})", first),
    );
    let failed = project.graphmig(&["run"]);
    let out = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(out.contains("V1__steps.cypher:4"), "{out}");
    assert!(out.contains("resumes at statement 3"), "{out}");
    // The two statements before it committed, each with its marker.
    assert_eq!(project.db.count("Step"), 2);
    assert_eq!(project.db.count("__GraphmigProgress"), 2);

    // An edit to a committed statement is refused, naming it; nothing runs.
    write(
        &project,
        "V1__steps.cypher",
        &file("CREATE (:Step {n: 3})", "CREATE (:Step {n: 100})"),
    );
    let edited = project.graphmig(&["run"]);
    let out = text(&edited);
    assert_eq!(edited.status.code(), Some(1), "{out}");
    assert!(out.contains("graphmig.EditedStatement"), "{out}");
    assert!(out.contains("V1__steps.cypher:2"), "{out}");
    assert_eq!(project.db.count("Step"), 2);

    // The failed statement fixed, the run resumes there: 1 and 2 are not run
    // again, 3 and 4 are, and the markers go with the history entry.
    write(
        &project,
        "V1__steps.cypher",
        &file("CREATE (:Step {n: 3})", first),
    );
    let resumed = project.graphmig(&["run"]);
    let out = text(&resumed);
    assert!(resumed.status.success(), "{out}");
    let ns: Vec<i64> = project
        .db
        .query("MATCH (s:Step) RETURN s.n AS n ORDER BY n")
        .iter()
        .filter_map(|r| r["n"].as_i64())
        .collect();
    assert_eq!(ns, [1, 2, 3, 4]);
    assert_eq!(project.db.count("__GraphmigProgress"), 0);
    let history = text(&project.graphmig(&["history", "--verbose", "V1"]));
    assert!(
        history.contains("committed by an earlier attempt"),
        "{history}"
    );
    let status = text(&project.graphmig(&["status"]));
    assert!(status.contains("applied"), "{status}");
}

#[test]
fn the_transaction_mode_can_be_set_in_the_config_for_one_migration() {
    let project = Project::new("");
    project.write_extra_config("[migration.V1]\ntransaction = \"per-statement\"\n");
    write(
        &project,
        "V1__steps.cypher",
        "CREATE (:Step {n: 1});\nUNWIND [0] AS z CREATE (:Step {n: 10 / z});\n",
    );
    let failed = project.graphmig(&["run"]);
    let out = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(out.contains("resumes at statement 2"), "{out}");
    assert_eq!(project.db.count("Step"), 1);

    let config = project.dir.path().join("graphmig.toml");
    let text_of = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text_of.replace(
            "transaction = \"per-statement\"",
            "transaction = \"sometimes\"",
        ),
    )
    .expect("config");
    let refused = project.graphmig(&["status"]);
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(out.contains("use per-migration or per-statement"), "{out}");
}
