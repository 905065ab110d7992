//! Polyglot chains: the five-language example applied and reverted, each
//! language's failure reported in its own words and rolled back, Cypher errors
//! with file and line, scaffolds of every language that build and run, and a
//! backfill through every SDK.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::support::{Db, Project, graphmig, repo_root, text};

/// Compiled components shared by these tests: a JavaScript or Python guest takes
/// seconds to compile, and the cache is keyed by content, so sharing is safe.
fn shared_cache() -> PathBuf {
    repo_root().join("target/graphmig-test-cache")
}

fn build(project: &Path) -> Output {
    graphmig()
        .current_dir(project)
        .env("GRAPHMIG_CACHE_DIR", shared_cache())
        .arg("build")
        .output()
        .expect("graphmig build")
}

/// Builds the failing fixtures once; returns their migrations folder.
fn failing_fixtures() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let project = repo_root().join("tests/fixtures/polyglot");
        let output = build(&project);
        assert!(
            output.status.success(),
            "building the polyglot fixtures failed:\n{}",
            text(&output)
        );
        project.join("migrations")
    })
}

fn graphmig_in(dir: &Path, db: &Db, args: &[&str]) -> Output {
    graphmig()
        .current_dir(dir)
        .env("GRAPHMIG_PASSWORD", &db.server.password)
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .env("GRAPHMIG_CACHE_DIR", shared_cache())
        .args(args)
        .output()
        .expect("graphmig")
}

fn count(db: &Db, query: &str) -> i64 {
    db.query(query)[0]["n"].as_i64().unwrap_or(-1)
}

#[test]
fn the_polyglot_chain_applies_in_five_languages_and_reverts() {
    let example = repo_root().join("examples/polyglot");
    let built = build(&example);
    assert!(built.status.success(), "{}", text(&built));
    for name in [
        "V2__Import_people",
        "V3__Backfill_generations",
        "V4__Cities_from_properties",
        "V5__Verify",
    ] {
        assert!(
            example.join(format!("migrations/{name}.wasm")).is_file(),
            "{name} was not built"
        );
    }

    let db = Db::fresh();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("graphmig.toml"),
        format!(
            "[database]\nuri = \"{}\"\nuser = \"root\"\nname = \"{}\"\n[migrations]\ndir = \"{}\"\n[datasets]\ndir = \"{}\"\n",
            db.bolt_uri(),
            db.name,
            example.join("migrations").display(),
            example.join("data").display()
        ),
    )
    .expect("config");

    let run = graphmig_in(dir.path(), &db, &["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    for applied in [
        "V1 Schema",
        "V2 Import people",
        "V3 Backfill generations",
        "V4 Cities from properties",
        "V5 Verify",
    ] {
        assert!(
            out.contains(&format!("Applied {applied}")),
            "{applied} missing:\n{out}"
        );
    }
    // Each language's own log line reached the operator.
    assert!(out.contains("imported 200 people"), "{out}");
    assert!(out.contains("generations: "), "{out}");
    assert!(out.contains("8 cities, 200 people moved in"), "{out}");
    assert!(out.contains("verified 200 people"), "{out}");
    assert_eq!(db.count("Person"), 200);
    assert_eq!(db.count("City"), 8);
    assert_eq!(
        count(
            &db,
            "MATCH (:Person)-[r:LIVES_IN]->(:City) WITH count(r) AS n RETURN n"
        ),
        200
    );
    assert_eq!(
        count(
            &db,
            "MATCH (p:Person) WHERE p.city IS NULL AND p.generation IS NOT NULL WITH count(p) AS n RETURN n"
        ),
        200
    );
    assert!(
        count(
            &db,
            "MATCH (:Person)-[f:FRIEND_OF]->(:Person) WITH count(f) AS n RETURN n"
        ) > 400
    );

    let down = graphmig_in(dir.path(), &db, &["down", "--target", "0"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        count(
            &db,
            "MATCH (n) WHERE NOT n:__GraphmigMigration WITH count(n) AS n RETURN n"
        ),
        0,
        "down leaves an empty graph"
    );
    let schema: Vec<String> = db
        .query("SHOW CONSTRAINTS")
        .into_iter()
        .chain(db.query("SHOW INDEXES"))
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .filter(|n| ["person_id", "city_name", "person_name"].contains(&n.as_str()))
        .collect();
    assert!(schema.is_empty(), "V1's undo script left {schema:?}");

    // And up again, from the same components: the chain is repeatable.
    let again = graphmig_in(dir.path(), &db, &["run"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(db.count("City"), 8);
}

/// Runs one failing fixture alone and returns the output.
fn run_failing(fixture: &str) -> (Output, Project) {
    let project = Project::new("");
    let source = failing_fixtures().join(fixture);
    let name = source.file_name().expect("name").to_owned();
    std::fs::copy(&source, project.migrations().join(name)).expect("copy fixture");
    let output = graphmig_in(project.dir.path(), &project.db, &["run"]);
    (output, project)
}

#[test]
fn each_language_fails_in_its_own_words_and_rolls_back() {
    let cases = [
        (
            "V1__js_throws.wasm",
            "js",
            "TypeError: no people found in JavaScript",
        ),
        (
            "V2__python_raises.wasm",
            "python",
            "ValueError: no people found in Python",
        ),
        ("V3__go_panics.wasm", "go", "panic: no people found in Go"),
        ("V4__rust_fails.wasm", "rust", "no people found in Rust"),
    ];
    for (fixture, language, message) in cases {
        let (output, project) = run_failing(fixture);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(1), "{language}: {out}");
        assert!(
            out.contains(message),
            "{language}: expected `{message}` in:\n{out}"
        );
        assert!(out.contains("rolled back"), "{language}: {out}");
        assert_eq!(
            project.db.count("Written"),
            0,
            "{language}: the write before the failure was rolled back"
        );
        if language == "python" {
            // 2,500 rows streamed from a generator, a thousand per write.
            assert!(
                out.contains("batch `echoes` deleted (2500 written)"),
                "python: {out}"
            );
        }
        assert_eq!(project.db.count("Echo"), 0, "{language}: the batch is gone");
        let status = graphmig_in(project.dir.path(), &project.db, &["status"]);
        assert!(
            text(&status).contains("failed"),
            "{language}: {}",
            text(&status)
        );
    }
}

#[test]
fn a_cypher_syntax_error_names_the_file_line_and_statement_and_rolls_back() {
    let (output, project) = run_failing("V5__bad_syntax.cypher");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("V5__bad_syntax.cypher:5"),
        "file and line: {out}"
    );
    assert!(out.contains("statement #2"), "{out}");
    // Lines after an error's first are marked, so none passes for graphmig's own.
    assert!(
        out.contains("MATCH (w:Written\n  |   SET w.checked = true"),
        "the statement: {out}"
    );
    assert_eq!(
        project.db.count("Written"),
        0,
        "statement #1 was rolled back"
    );
}

#[test]
fn cypher_migrations_are_checksummed_and_policed_like_components() {
    let project = Project::new("");
    let file = project.migrations().join("V1__Admin.cypher");
    std::fs::write(&file, "CREATE (:Ok);\nCREATE DATABASE other;\n").expect("write");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("graphmig.Policy.Admin"), "{out}");
    assert!(out.contains("V1__Admin.cypher:2"), "{out}");
    assert_eq!(project.db.count("Ok"), 0);

    std::fs::write(&file, "CREATE (:Ok);\n").expect("write");
    assert!(project.graphmig(&["run"]).status.success());
    std::fs::write(&file, "CREATE (:Ok);\nCREATE (:Sneaky);\n").expect("tamper");
    let verify = project.graphmig(&["verify"]);
    assert_eq!(verify.status.code(), Some(6), "{}", text(&verify));
    assert!(text(&verify).contains("V1"), "{}", text(&verify));
}

#[test]
fn init_and_new_scaffold_a_working_migration_in_every_language() {
    let db = Db::fresh();
    // `init` keeps the history in a database of its own.
    let history = Db::fresh();
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("project");
    let init = graphmig().arg("init").arg(&project).output().expect("init");
    assert!(init.status.success(), "{}", text(&init));
    for path in ["graphmig.toml", "migrations", "data", ".gitignore"] {
        assert!(project.join(path).exists(), "init made no {path}");
    }
    let again = graphmig().arg("init").arg(&project).output().expect("init");
    assert_eq!(
        again.status.code(),
        Some(2),
        "init never overwrites a project"
    );

    for (description, lang) in [
        ("Cypher start", "cypher"),
        ("Rust step", "rust"),
        ("JS step", "js"),
        ("Python step", "python"),
        ("Go step", "go"),
    ] {
        let new = graphmig()
            .current_dir(&project)
            .args(["new", description, "--lang", lang])
            .output()
            .expect("new");
        assert!(new.status.success(), "{lang}: {}", text(&new));
    }
    let names: Vec<String> = std::fs::read_dir(project.join("migrations"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "V1__Cypher_start.cypher",
        "U1__Cypher_start.cypher",
        "V2__Rust_step",
        "V3__JS_step",
        "V4__Python_step",
        "V5__Go_step",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let built = build(&project);
    assert!(built.status.success(), "{}", text(&built));
    let env_db = |args: &[&str]| {
        graphmig()
            .current_dir(&project)
            .env("GRAPHMIG_URI", db.bolt_uri())
            .env("GRAPHMIG_USER", "root")
            .env("GRAPHMIG_DATABASE", &db.name)
            .env("GRAPHMIG_HISTORY_DATABASE", &history.name)
            .env("GRAPHMIG_PASSWORD", &db.server.password)
            .env("GRAPHMIG_CACHE_DIR", shared_cache())
            .args(args)
            .output()
            .expect("graphmig")
    };
    let run = env_db(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(db.count("Example"), 5, "each scaffold's up marks the graph");
    let down = env_db(&["down", "--target", "0"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        db.count("Example"),
        0,
        "each scaffold's down removes its mark"
    );

    // A second build changes nothing: rebuilding an applied migration would
    // change its checksum.
    let rebuilt = build(&project);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let verify = env_db(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn a_missing_toolchain_is_named_with_the_command_that_installs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("graphmig.toml"),
        "[database]\nname = \"x\"\n",
    )
    .expect("config");
    let folder = dir.path().join("migrations/V1__js");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join("migration.js"), "export function up(ctx) {}\n").expect("write");
    let output = graphmig()
        .current_dir(dir.path())
        .env("PATH", "/usr/bin:/bin")
        .arg("build")
        .output()
        .expect("build");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("componentize-js"), "{out}");
    assert!(
        out.contains("npm install -g @bytecodealliance/componentize-js@0.23.0"),
        "{out}"
    );

    let run = graphmig()
        .current_dir(dir.path())
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        text(&run).contains("run `graphmig build` first"),
        "{}",
        text(&run)
    );
}

#[test]
fn every_language_backfills_through_its_sdk() {
    for fixture in [
        "V6__js_backfill.wasm",
        "V7__python_backfill.wasm",
        "V8__go_backfill.wasm",
    ] {
        let project = Project::new("");
        project
            .db
            .query("UNWIND range(1, 3000) AS i CREATE (:Item {id: i})");
        let source = failing_fixtures().join(fixture);
        std::fs::copy(&source, project.migrations().join(fixture)).expect("copy fixture");
        let output = graphmig_in(project.dir.path(), &project.db, &["run"]);
        let out = text(&output);
        assert!(output.status.success(), "{fixture}:\n{out}");
        assert!(
            out.contains("backfill: 3000 rows in 3 chunks of 3000"),
            "{fixture}:\n{out}"
        );
        assert_eq!(
            count(
                &project.db,
                "MATCH (n:Item) WHERE n.visits = 1 RETURN count(n) AS n"
            ),
            3000,
            "{fixture}"
        );
    }
}
