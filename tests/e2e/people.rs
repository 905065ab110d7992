//! The people example: constraints and indexes, a 10,000-row CSV ingest through
//! batches, a property rename, a label rename, and all the way down again.

use crate::support::{Db, graphmig, repo_root, text};

#[test]
fn the_people_example_applies_and_reverts_to_an_empty_graph() {
    let example = repo_root().join("examples/people");
    let build = graphmig()
        .current_dir(&example)
        .arg("build")
        .output()
        .expect("build");
    assert!(build.status.success(), "{}", text(&build));

    let db = Db::fresh();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("graphmig.toml"),
        format!(
            "[database]\nuri = \"{}\"\nuser = \"root\"\nname = \"{}\"\n[migrations]\ndir = \"{}\"\n[datasets]\ndir = \"{}\"\n[batches]\nchunk-size = 2000\n",
            db.bolt_uri(),
            db.name,
            example.join("migrations").display(),
            example.join("data").display()
        ),
    )
    .expect("config");
    let graphmig_in = |args: &[&str]| {
        graphmig()
            .current_dir(dir.path())
            .env("GRAPHMIG_PASSWORD", &db.server.password)
            .args(args)
            .output()
            .expect("graphmig")
    };

    let run = graphmig_in(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(db.count("Person"), 10_000);
    assert_eq!(db.count("Company"), 25);
    assert_eq!(db.count("Competence"), 8);
    assert_eq!(db.count("Skill"), 0);
    assert_eq!(
        db.query("MATCH (:Person)-[k:KNOWS]->(:Competence) WITH count(k) AS n RETURN n")[0]["n"],
        10_000
    );
    assert_eq!(
        db.query("MATCH (:Person)-[w:WORKS_AT]->() WITH count(w) AS n RETURN n")[0]["n"],
        10_000
    );
    assert_eq!(
        db.query("MATCH (p:Person) WHERE p.birth_year IS NOT NULL AND p.born IS NULL WITH count(p) AS n RETURN n")[0]["n"],
        10_000
    );
    let conn = rusqlite::Connection::open(dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let (path, bytes): (String, i64) = conn
        .query_row("SELECT path, bytes FROM dataset_reads", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("the CSV read is recorded");
    assert_eq!(path, "people.csv");
    assert!(bytes > 100_000);

    let down = graphmig_in(&["down", "--target", "0"]);
    assert!(down.status.success(), "{}", text(&down));
    let left = db.query("MATCH (n) WHERE NOT n:__GraphmigMigration WITH count(n) AS n RETURN n");
    assert_eq!(left[0]["n"], 0, "an empty graph");
    let names: Vec<String> = db
        .query("SHOW CONSTRAINTS")
        .into_iter()
        .chain(db.query("SHOW INDEXES"))
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .filter(|n| !n.starts_with("graphmig_") && !n.starts_with("__Graphmig"))
        .collect();
    assert!(names.is_empty(), "the chain left schema behind: {names:?}");
}
