//! The quickstart example, built and applied as a user would.

use crate::support::{Db, graphmig, repo_root, text};

#[test]
fn quickstart_builds_applies_and_a_second_run_applies_nothing() {
    let example = repo_root().join("examples/quickstart");
    let build = graphmig()
        .current_dir(&example)
        .arg("build")
        .output()
        .expect("graphmig build");
    assert!(build.status.success(), "build failed: {}", text(&build));
    for name in [
        "V1__create_people",
        "V2__create_companies",
        "V3__link_employees",
    ] {
        assert!(
            example
                .join("migrations")
                .join(format!("{name}.wasm"))
                .is_file(),
            "{name}.wasm was not built"
        );
    }

    // The example's own graphmig.toml names the demo database; the test points the
    // same project at a fresh database and a private ledger through the environment
    // and a config file of its own.
    let db = Db::fresh();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("graphmig.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nuri = \"{}\"\nuser = \"root\"\nname = \"{}\"\n[migrations]\ndir = \"{}\"\n",
            db.bolt_uri(),
            db.name,
            example.join("migrations").display()
        ),
    )
    .expect("write config");
    let run = || {
        graphmig()
            .current_dir(dir.path())
            .env("GRAPHMIG_PASSWORD", &db.server.password)
            .arg("run")
            .output()
            .expect("graphmig run")
    };

    let first = run();
    assert!(first.status.success(), "run failed: {}", text(&first));
    let out = text(&first);
    for line in [
        "Applied V1 create people",
        "Applied V2 create companies",
        "Applied V3 link employees",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    assert_eq!(db.count("Person"), 4);
    assert_eq!(db.count("Company"), 3);
    let jobs = db.query(
        "MATCH (p:Person)-[w:WORKS_AT]->(c:Company) RETURN p.name AS person, c.name AS company, w.since AS since ORDER BY since",
    );
    let jobs: Vec<(String, String, i64)> = jobs
        .iter()
        .map(|r| {
            (
                r["person"].as_str().expect("person").to_string(),
                r["company"].as_str().expect("company").to_string(),
                r["since"].as_i64().expect("since"),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("Ada Lovelace".into(), "Analytical Engines Ltd".into(), 1842),
            ("Grace Hopper".into(), "Remington Rand".into(), 1949),
            (
                "Edsger Dijkstra".into(),
                "Mathematisch Centrum".into(),
                1952
            ),
        ]
    );
    let born: Vec<i64> = db
        .query("MATCH (p:Person) RETURN p.born AS born ORDER BY born")
        .iter()
        .map(|r| r["born"].as_i64().expect("born is an integer"))
        .collect();
    assert_eq!(born, [1815, 1906, 1912, 1930]);

    let second = run();
    assert!(
        second.status.success(),
        "second run failed: {}",
        text(&second)
    );
    assert!(
        text(&second).contains("nothing to do") && !text(&second).contains("Applied"),
        "second run applied something:\n{}",
        text(&second)
    );
    assert_eq!(db.count("Person"), 4, "a second run must not write again");

    let status = graphmig()
        .current_dir(dir.path())
        .args(["status", "--json"])
        .output()
        .expect("status");
    assert!(status.status.success(), "{}", text(&status));
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let migrations = doc["migrations"].as_array().expect("array");
    assert_eq!(migrations.len(), 3);
    for m in migrations {
        assert_eq!(m["state"], "applied", "{m}");
        assert_eq!(m["checksum"].as_str().map(str::len), Some(64), "{m}");
        assert!(
            m["description"].is_string() && m["version"].is_string(),
            "{m}"
        );
        assert!(
            m["applied_at"].is_string() && m["duration_ms"].is_u64(),
            "{m}"
        );
    }

    let ledger =
        rusqlite::Connection::open(dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let (rows, fuel, statements): (i64, i64, i64) = ledger
        .query_row(
            "SELECT count(*), min(fuel_consumed), sum(statements) FROM attempts WHERE outcome = 'applied' AND action = 'up'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("ledger query");
    assert_eq!(rows, 3);
    assert!(fuel > 0, "fuel is recorded");
    assert_eq!(statements, 2 + 3 + 4, "every statement is counted");
}
