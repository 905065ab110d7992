//! What the CLI prints and how it ends when nobody reads it: a closed pipe.

use std::process::Stdio;

use crate::support::{MIGRATION_PASSWORD, Project, text};

/// Runs `graphmig args` with its stdout a pipe whose reader is gone before
/// the first line, as in `graphmig status | head -0` or quitting `less`.
fn with_stdout_closed(project: &Project, args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("graphmig"))
        .current_dir(project.dir.path())
        .env_remove("GRAPHMIG_URI")
        .env_remove("GRAPHMIG_CONFIG")
        .env("GRAPHMIG_PASSWORD", &project.db.server.password)
        .env("GRAPHMIG_MIGRATION_PASSWORD", MIGRATION_PASSWORD)
        .env("NO_COLOR", "1")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn graphmig");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for graphmig")
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__one.cypher"),
        "CREATE (:Piped {n: 1});\n",
    )
    .expect("V1");
    std::fs::write(
        project.migrations().join("V2__two.cypher"),
        "CREATE (:Piped {n: 2});\n",
    )
    .expect("V2");
    // Even `run`: the migrations apply in full although nobody reads.
    let run = with_stdout_closed(&project, &["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(project.db.count("Piped"), 2);
    for args in [
        &["status"][..],
        &["history"],
        &["history", "--verbose", "V1"],
        &["status", "--json"],
    ] {
        let output = with_stdout_closed(&project, args);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(
        project.states(),
        crate::support::states(&[("1", "applied"), ("2", "applied")])
    );
}

#[test]
fn init_adds_the_local_state_to_a_gitignore_that_is_there() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("existing");
    std::fs::create_dir(&project).expect("mkdir");
    // No newline at the end: the added line must not run into the last one.
    std::fs::write(project.join(".gitignore"), "target/\n*.log").expect("gitignore");
    let init = crate::support::graphmig()
        .arg("init")
        .arg(&project)
        .output()
        .expect("init");
    let out = text(&init);
    assert!(init.status.success(), "{out}");
    assert!(out.contains("Added .graphmig/ to"), "{out}");
    let ignore = std::fs::read_to_string(project.join(".gitignore")).expect("read");
    assert!(ignore.starts_with("target/\n*.log\n"), "{ignore}");
    assert_eq!(ignore.lines().filter(|l| *l == ".graphmig/").count(), 1);

    // One that ignores it already is left as it is.
    let other = root.path().join("ignoring");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join(".gitignore"), "/.graphmig\n").expect("gitignore");
    let init = crate::support::graphmig()
        .arg("init")
        .arg(&other)
        .output()
        .expect("init");
    assert!(init.status.success(), "{}", text(&init));
    assert!(!text(&init).contains("Added"), "{}", text(&init));
    assert_eq!(
        std::fs::read_to_string(other.join(".gitignore")).expect("read"),
        "/.graphmig\n"
    );
}

#[test]
fn the_names_users_of_other_tools_reach_for_are_aliases() {
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__one.cypher"),
        "CREATE (:Aliased {n: 1});\n",
    )
    .expect("V1");
    std::fs::write(
        project.migrations().join("U1__one.cypher"),
        "MATCH (a:Aliased {n: 1}) DELETE a;\n",
    )
    .expect("U1");
    let migrate = project.graphmig(&["migrate"]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert_eq!(project.db.count("Aliased"), 1);
    let info = project.graphmig(&["info"]);
    assert!(info.status.success(), "{}", text(&info));
    assert!(text(&info).contains("applied"), "{}", text(&info));
    let validate = project.graphmig(&["validate"]);
    assert!(validate.status.success(), "{}", text(&validate));
    let undo = project.graphmig(&["undo"]);
    assert!(undo.status.success(), "{}", text(&undo));
    assert_eq!(project.db.count("Aliased"), 0);
    let help = text(
        &crate::support::graphmig()
            .arg("--help")
            .output()
            .expect("help"),
    );
    for alias in ["migrate", "info", "validate", "undo"] {
        assert!(help.contains(alias), "{help}");
    }
}
