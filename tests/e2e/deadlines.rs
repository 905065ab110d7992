//! The deadline holds inside host calls: for each kind of call a guest can make,
//! one that keeps the host busy (a slow statement, a long result, large
//! parameters, a million batch rows, a flood of cheap calls) ends with the
//! deadline error within a second of the deadline, and leaves nothing behind.
//! Prints a table: call, how the migration ended, time past the deadline.

use std::fmt::Write as _;

use crate::support::{Project, text, write_table};

/// Every kind of host call the `context` interface offers (by the name the
/// fixture `V47__deadline_per_call` knows it under).
const CALLS: &[&str] = &[
    "run-cypher (slow statement)",
    "run-cypher (long result)",
    "run-cypher (large parameters)",
    "create-index, drop-index",
    "create-constraint, drop-constraint",
    "schema",
    "rename-label, rename-type, rename-property",
    "add-property, remove-property",
    "begin-batch",
    "batch-create-nodes",
    "batch-merge-nodes",
    "batch-create-relationships",
    "batch-writer write, finish",
    "delete-batch",
    "log",
    "read-dataset",
];

/// The deadline under test; every other limit is set far out of the way, so
/// that only the deadline can end the migration.
const LIMITS: &str = "deadline-secs = 1
fuel = 1_000_000_000_000
statements = 100_000_000
rows = 100_000_000
result-mib = 1_000_000
log-lines = 100_000_000
log-kib = 1_000_000
journal-kib = 1_000_000
batches = 100_000_000
value-nodes = 10_000_000
value-mib = 512
";

/// How long past its deadline a migration may take to stop: the bound.
const GRACE_MS: i64 = 1_000;

/// Runs the fixture making `call`; returns how far past the deadline the step
/// ended (as the ledger recorded it), or why the deadline did not hold.
fn run_call(call: &str) -> Result<i64, String> {
    let project = Project::new(LIMITS);
    let data = project.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("call.txt"), call).expect("call.txt");
    if call == "read-dataset" {
        std::fs::write(data.join("large.bin"), vec![7u8; 64 << 20]).expect("large.bin");
    }
    project.add("V47__deadline_per_call", "V1__deadline");
    let output = project.graphmig(&["run"]);
    let out = text(&output);
    if output.status.code() != Some(4) || !out.contains("deadline limit exceeded") {
        return Err(format!(
            "exit {:?}, wanted 4 with the deadline error:\n{}",
            output.status.code(),
            out.chars().take(4_000).collect::<String>()
        ));
    }
    let outcomes: Vec<String> = project.ledger_rows().into_iter().map(|r| r.1).collect();
    if outcomes.last().map(String::as_str) != Some("failed") {
        return Err(format!("the attempt is recorded {outcomes:?}"));
    }
    // The host says when the step stopped: "stopped 1.04 s after the step began".
    let stopped_s: f64 = out
        .split_once("stopped ")
        .and_then(|(_, rest)| rest.split_once(" s after the step began"))
        .and_then(|(secs, _)| secs.parse().ok())
        .ok_or_else(|| format!("the error does not say when the step stopped:\n{out}"))?;
    let left = project.db.count("Deadline")
        + project.db.count("DeadlineB")
        + project
            .db
            .query("MATCH ()-[r:DEADLINE]->() RETURN count(r) AS n")[0]["n"]
            .as_i64()
            .unwrap_or(0);
    if left != 0 {
        return Err(format!("{left} nodes or relationships were left behind"));
    }
    let past = (stopped_s * 1_000.0) as i64 - 1_000;
    // Not a speed target: the deadline is a promise the host makes, and one it
    // kept only after several seconds is one it did not keep.
    if past > GRACE_MS {
        return Err(format!(
            "the step stopped {stopped_s} s after it began, under a 1 s deadline"
        ));
    }
    Ok(past)
}

#[test]
fn the_deadline_holds_within_a_second_in_every_kind_of_host_call() {
    let mut table =
        String::from("| host call | ended with | past the 1 s deadline |\n|---|---|---|\n");
    let mut failures = Vec::new();
    for call in CALLS {
        let (ended, past) = match run_call(call) {
            Ok(past) => ("deadline error".to_string(), format!("{past} ms")),
            Err(why) => {
                failures.push(format!("{call}: {why}"));
                ("NOT HELD".to_string(), "-".to_string())
            }
        };
        let _ = writeln!(table, "| {call} | {ended} | {past} |");
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}
