//! `graphmig down`: reverting newest first, rollback policies, and re-applying.

use crate::support::{Project, states, text};

#[test]
fn down_refuses_irreversible_migrations_unless_forced() {
    let project = Project::new("");
    project
        .add("V1__create_first", "V1__create_first")
        .add("V33__irreversible", "V2__irreversible");
    assert!(project.graphmig(&["run"]).status.success());

    let refused = project.graphmig(&["down", "--target", "0"]);
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(
        out.contains("V2 irreversible") && out.contains("irreversible") && out.contains("--force"),
        "{out}"
    );
    assert_eq!(project.db.count("First"), 1, "nothing was reverted");
    assert_eq!(project.db.count("Permanent"), 1);

    let forced = project.graphmig(&["down", "--target", "0", "--force"]);
    let out = text(&forced);
    assert!(forced.status.success(), "{out}");
    let (v2, v1) = (
        out.find("Reverted V2").expect("V2"),
        out.find("Reverted V1").expect("V1"),
    );
    assert!(v2 < v1, "newest first: {out}");
    assert_eq!(project.db.count("First"), 0);
    assert_eq!(project.db.count("Permanent"), 0);
    assert_eq!(
        project.states(),
        states(&[("1", "pending"), ("2", "pending")])
    );
    assert!(project.graphmig(&["verify"]).status.success());

    // Reverted migrations apply again.
    assert!(project.graphmig(&["run"]).status.success());
    assert_eq!(project.db.count("First"), 1);
    assert_eq!(project.db.count("Permanent"), 1);
}

#[test]
fn down_without_a_target_reverts_only_the_latest() {
    let project = Project::new("");
    project
        .add("V1__create_first", "V1__create_first")
        .add("V1__create_first", "V2__create_first_again");
    assert!(project.graphmig(&["run"]).status.success());
    let output = project.graphmig(&["down"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "pending")])
    );
}

#[test]
fn a_migration_without_down_or_batches_cannot_be_reverted() {
    let project = Project::new("");
    project.add("V5__create_later", "V1__create_later");
    assert!(project.graphmig(&["run"]).status.success());
    let output = project.graphmig(&["down"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("has no down step and wrote no tracked batches"),
        "{out}"
    );
    assert_eq!(project.db.count("Later"), 1);
    assert_eq!(project.states(), states(&[("1", "applied")]));
}

#[test]
fn a_migration_without_down_is_reverted_by_deleting_its_batches() {
    let project = Project::new("");
    project
        .db
        .query("CREATE (:Company {name: 'Acme', founded: 1900})");
    project.add("V36__batch_ingest", "V1__batch_ingest");
    assert!(project.graphmig(&["run"]).status.success());
    assert_eq!(project.db.count("Person"), 12);
    let output = project.graphmig(&["down"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert_eq!(project.db.count("Person"), 0, "the people batch is gone");
    assert_eq!(
        project.db.query("MATCH ()-[w:WORKS_AT]->() RETURN w").len(),
        0
    );
    assert_eq!(
        project.db.count("Company"),
        1,
        "Acme was not the batch's: it stays"
    );
    assert_eq!(project.states(), states(&[("1", "pending")]));
    let history = project.graphmig(&["history"]);
    assert!(
        text(&history).contains("reverted by deleting its batches"),
        "{}",
        text(&history)
    );
}
