//! Migrations that fail: nothing of theirs survives, the ledger says so, and nothing
//! after them runs.

use crate::support::{Project, states, text};

/// V1 succeeds, V2 is the fixture under test, V3 must never run.
fn chain_around(fixture: &str, limits: &str) -> Project {
    let project = Project::new(limits);
    project
        .add("V1__create_first", "V1__create_first")
        .add(
            fixture,
            &format!("V2__{}", fixture.split_once("__").expect("name").1),
        )
        .add("V5__create_later", "V3__create_later");
    project
}

fn assert_failed_cleanly(
    project: &Project,
    output: &std::process::Output,
    code: i32,
    expect: &[&str],
) {
    let out = text(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code, output:\n{out}"
    );
    assert!(out.contains("V2"), "the failing migration is named:\n{out}");
    for needle in expect {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(out.contains("rolled back"), "says it rolled back:\n{out}");
    assert_eq!(project.db.count("First"), 1, "V1 stays applied");
    assert_eq!(
        project.db.count("Doomed"),
        0,
        "none of V2's writes are visible"
    );
    assert_eq!(
        project
            .db
            .query("MATCH (f:First) WHERE f.touched = true RETURN f")
            .len(),
        0,
        "V2's update of existing data is rolled back too"
    );
    assert_eq!(project.db.count("Later"), 0, "V3 did not run");
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "failed"), ("3", "pending")])
    );
    let rows = project.ledger_rows();
    let v2 = rows
        .iter()
        .find(|r| r.0 == "2")
        .expect("V2 has a ledger row");
    assert_eq!(v2.1, "failed");
    let error = v2.2.as_deref().unwrap_or_default();
    for needle in expect {
        assert!(
            error.contains(needle),
            "ledger error {error:?} lacks {needle:?}"
        );
    }
    assert!(rows.iter().all(|r| r.0 != "3"), "V3 was never attempted");
}

#[test]
fn guest_error_rolls_back_and_stops_the_chain() {
    let project = chain_around("V2__write_then_fail", "");
    let output = project.graphmig(&["run"]);
    assert_failed_cleanly(&project, &output, 1, &["deliberate failure after writing"]);
}

#[test]
fn guest_panic_is_a_trap_with_the_panic_message() {
    let project = chain_around("V3__write_then_panic", "");
    let output = project.graphmig(&["run"]);
    assert_failed_cleanly(
        &project,
        &output,
        1,
        &["trapped", "guest panicked on purpose"],
    );
}

#[test]
fn running_out_of_fuel_is_a_limit_and_rolls_back() {
    let project = chain_around("V4__write_then_spin", "fuel = 50_000_000");
    let output = project.graphmig(&["run"]);
    assert_failed_cleanly(&project, &output, 4, &["fuel limit exceeded"]);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit_and_rolls_back() {
    let project = chain_around("V6__memory_bomb", "memory-mib = 32");
    let output = project.graphmig(&["run"]);
    assert_failed_cleanly(&project, &output, 4, &["memory limit exceeded", "32 MiB"]);
}

#[test]
fn a_failed_statement_fails_the_migration_even_if_the_guest_ignores_it() {
    let project = chain_around("V8__swallow_error", "");
    let output = project.graphmig(&["run"]);
    assert_failed_cleanly(
        &project,
        &output,
        1,
        &["THIS IS NOT CYPHER", "statement #2"],
    );
}

#[test]
fn a_fixed_migration_applies_on_the_next_run() {
    let project = chain_around("V2__write_then_fail", "");
    assert_eq!(project.graphmig(&["run"]).status.code(), Some(1));
    // The author fixes V2; the next run applies it and then V3.
    std::fs::remove_file(project.migrations().join("V2__write_then_fail.wasm")).expect("remove");
    project.add("V1__create_first", "V2__create_first_again");
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.db.count("First"), 2);
    assert_eq!(project.db.count("Later"), 1);
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "applied"), ("3", "applied")])
    );
}

#[test]
fn cypher_values_of_every_kind_survive_the_round_trip() {
    let project = Project::new("");
    project.add("V9__values_roundtrip", "V1__values_roundtrip");
    let output = project.graphmig(&["run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        project.db.count("Probe"),
        0,
        "the fixture cleans up after itself"
    );
}

#[test]
fn a_constraint_violation_fails_the_migration_with_the_servers_code() {
    let project = Project::new("");
    project
        .add("V31__unique_constraint", "V1__unique_constraint")
        .add("V32__duplicate_keys", "V2__duplicate_keys");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("V2") && out.contains("ConstraintValidationFailed"),
        "{out}"
    );
    assert_eq!(project.db.count("Account"), 0, "neither duplicate survives");
    assert_eq!(
        project.states(),
        states(&[("1", "applied"), ("2", "failed")])
    );
}

fn schema_names(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = project
        .db
        .query("SHOW CONSTRAINTS")
        .into_iter()
        .chain(project.db.query("SHOW INDEXES"))
        .filter_map(|row| row["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn typed_schema_operations_run_on_arcadedb() {
    let project = Project::new("");
    project.add("V34__schema_ops", "V1__schema_ops");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("arcadedb does not support full-text indexes on nodes"),
        "{out}"
    );
    let names = schema_names(&project);
    for name in [
        "person_email_unique",
        "person_first_last_unique",
        "person_tenant_id_key",
        "person_name_exists",
        "works_at_since_exists",
        "person_born_type_integer",
        "works_at_contract_unique",
        "person_full_name",
        "works_at_role_range",
        "person_bio_text",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "person_city_range"),
        "dropped: {names:?}"
    );

    // Down drops them all again.
    let down = project.graphmig(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    let left: Vec<String> = schema_names(&project)
        .into_iter()
        .filter(|n| !n.starts_with("graphmig_") && !n.contains("__Graphmig"))
        .collect();
    assert!(left.is_empty(), "schema left behind: {left:?}");
}

#[test]
fn a_failed_migration_undoes_its_schema_changes() {
    let project = Project::new("");
    project
        .add("V31__unique_constraint", "V1__unique_constraint")
        .add("V35__schema_then_fail", "V2__schema_then_fail");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("3 schema change(s) undone"), "{out}");
    let names = schema_names(&project);
    assert!(
        names.iter().any(|n| n == "account_email"),
        "the dropped constraint is back: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("sf_")),
        "created ones are gone: {names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.to_ascii_lowercase().contains("invoice")),
        "no residue: {names:?}"
    );
    assert_eq!(project.db.count("Doomed"), 0);
    let conn =
        rusqlite::Connection::open(project.dir.path().join(".graphmig/ledger.db")).expect("ledger");
    let undone: i64 = conn
        .query_row(
            "SELECT count(*) FROM schema_ops WHERE outcome = 'undone'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(undone, 3, "the ledger says what was undone");
}
