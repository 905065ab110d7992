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
