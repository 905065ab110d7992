//! Bad artifacts, bad chains and unreachable databases: clear errors, nothing lost.

use std::time::{Duration, Instant};

use crate::support::{Project, fixtures, graphmig, text};

#[test]
fn a_corrupt_wasm_file_is_named_and_nothing_runs() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    std::fs::write(
        project.migrations().join("V2__corrupt.wasm"),
        b"\0asm garbage",
    )
    .expect("write");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("V2__corrupt.wasm") && out.contains("not a valid WebAssembly component"),
        "{out}"
    );
    assert_eq!(
        project.db.count("First"),
        0,
        "artifacts are checked before anything runs"
    );
}

#[test]
fn a_component_of_another_world_is_refused_by_name() {
    let project = Project::new("");
    project.add("V7__wrong_world", "V1__wrong_world");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("V1__wrong_world.wasm"), "{out}");
    assert!(
        out.contains("another world") && out.contains("graphmig:migration/lifecycle@0.1.0"),
        "{out}"
    );
}

#[test]
fn a_component_importing_an_unserved_interface_is_refused_before_it_runs() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    // A component asking for outgoing HTTP (and nothing else): graphmig serves
    // no such interface, so it must be named and refused before anything runs.
    let bytes =
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#)
            .expect("valid component text");
    std::fs::write(project.migrations().join("V2__phone_home.wasm"), bytes).expect("write");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("V2__phone_home.wasm") && out.contains("wasi:http/outgoing-handler@0.2.0"),
        "{out}"
    );
    assert_eq!(project.db.count("First"), 0, "nothing ran");
}

#[test]
fn duplicate_versions_name_both_files() {
    let project = Project::new("");
    project
        .add("V1__create_first", "V1__create_first")
        .add("V5__create_later", "V01__create_later");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.contains("V1__create_first.wasm") && out.contains("V01__create_later.wasm"),
        "{out}"
    );
}

#[test]
fn a_changed_applied_migration_is_refused_with_both_checksums() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    assert!(project.graphmig(&["run"]).status.success());
    project.add("V5__create_later", "V1__create_first");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(6), "verify problems: {out}");
    assert!(
        out.contains("changed since it was applied") && out.contains("graphmig repair"),
        "{out}"
    );
    let recorded = project.ledger_rows();
    assert_eq!(recorded.len(), 1, "nothing new was attempted");
}

#[test]
fn an_unreachable_database_fails_fast_and_clearly() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    project.write_config("bolt://127.0.0.1:1", "");
    let started = Instant::now();
    let output = graphmig()
        .current_dir(project.dir.path())
        .env("GRAPHMIG_PASSWORD", "whatever-it-is")
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .arg("run")
        .timeout(Duration::from_secs(15))
        .output()
        .expect("run");
    let out = text(&output);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{out} (after {:?})",
        started.elapsed()
    );
    assert!(
        out.contains("cannot connect to bolt://127.0.0.1:1"),
        "{out}"
    );
}

#[test]
fn a_wrong_password_fails_within_seconds_without_echoing_it() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    let wrong = "not-the-password-42";
    let output = graphmig()
        .current_dir(project.dir.path())
        .env("GRAPHMIG_PASSWORD", wrong)
        .env(
            "GRAPHMIG_MIGRATION_PASSWORD",
            crate::support::MIGRATION_PASSWORD,
        )
        .arg("run")
        .timeout(Duration::from_secs(15))
        .output()
        .expect("run");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(
        out.contains("cannot connect") && out.contains("root"),
        "{out}"
    );
    assert!(
        !out.contains(wrong),
        "the password leaked into the output:\n{out}"
    );
    assert_eq!(project.db.count("First"), 0);
}

#[test]
fn a_missing_config_and_a_password_in_the_file_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = graphmig()
        .current_dir(dir.path())
        .arg("status")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("no graphmig.toml"),
        "{}",
        text(&output)
    );

    std::fs::write(
        dir.path().join("graphmig.toml"),
        "[database]\nname = \"x\"\npassword = \"secret\"\n",
    )
    .expect("write");
    let output = graphmig()
        .current_dir(dir.path())
        .arg("status")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("GRAPHMIG_PASSWORD"),
        "{}",
        text(&output)
    );
}

#[test]
fn fixture_guests_are_real_components() {
    // Guards the other tests: a fixture that silently failed to build would make
    // them pass for the wrong reason.
    let wasm = std::fs::read(fixtures().join("V1__create_first.wasm")).expect("fixture");
    assert_eq!(&wasm[..4], b"\0asm");
    assert_eq!(
        wasm[4..8],
        [0x0d, 0x00, 0x01, 0x00],
        "a component, not a core module"
    );
}

#[test]
fn a_corrupt_compiled_cache_entry_is_rebuilt_not_loaded() {
    let project = Project::new("");
    project.add("V1__create_first", "V1__create_first");
    assert!(
        project.graphmig(&["run", "--dry-run"]).status.success(),
        "fills the cache"
    );
    let cache = project.dir.path().join(".graphmig/cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "one compiled component: {entries:?}");
    let mut bytes = std::fs::read(&entries[0]).expect("entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5A;
    std::fs::write(&entries[0], &bytes).expect("corrupt it");

    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.db.count("First"), 1);
    assert_ne!(
        std::fs::read(&entries[0]).expect("entry"),
        bytes,
        "rewritten"
    );
}

#[test]
fn a_missing_history_database_is_named_with_the_way_out() {
    let project = Project::sharing_history("");
    project.write_extra_config("[history]\ndatabase = \"no_such_history\"\n");
    project.add("V1__create_first", "V1__create_first");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(
        out.contains("history database `no_such_history` does not exist")
            && out.contains("remove `[history] database`"),
        "{out}"
    );
    assert_eq!(project.db.count("First"), 0, "nothing ran");
}
