//! Host memory under attack: for every way a guest can hand the host large
//! data (log lines, batch names, refused statements, parameters at the caps, a
//! huge error, value trees that share nodes, results past their limits), the
//! host's peak resident memory, measured while it runs, stays under the bound
//! the README's threat model documents: the guest's memory limit + 64 MiB + the
//! result limit. What it keeps (ledger, output) stays bounded too. Prints a
//! table: attack, how it ended, peak, bound.

use std::fmt::Write as _;

use crate::support::{Project, graphmig_measuring_peak, text, write_table};

const MEMORY_MIB: u64 = 256;
const RESULT_MIB: u64 = 64;

/// The documented bound, in KiB.
const BOUND_KIB: u64 = (MEMORY_MIB + 64 + RESULT_MIB) * 1024;

struct Flood {
    /// What the fixture `V48__keep_flood` is told to do (or a query for
    /// `V45__run_dataset_query`, or a fixture of its own).
    name: &'static str,
    fixture: &'static str,
    /// Exit codes that count as contained.
    exits: &'static [i32],
}

const FLOODS: &[Flood] = &[
    Flood {
        name: "log lines of 100 MiB",
        fixture: "V48__keep_flood",
        exits: &[4],
    },
    Flood {
        name: "log lines of 8 KiB",
        fixture: "V48__keep_flood",
        exits: &[4],
    },
    Flood {
        name: "batch names of 1 MiB",
        fixture: "V48__keep_flood",
        exits: &[4],
    },
    Flood {
        name: "refused statements with a 4 MiB parameter name",
        fixture: "V48__keep_flood",
        exits: &[0, 4],
    },
    Flood {
        name: "refused statements naming a 1 MB procedure",
        fixture: "V48__keep_flood",
        exits: &[0],
    },
    Flood {
        name: "parameters at the value caps",
        fixture: "V48__keep_flood",
        exits: &[0],
    },
    Flood {
        name: "an error of 100 MiB",
        fixture: "V48__keep_flood",
        exits: &[4],
    },
    Flood {
        name: "value trees sharing nodes",
        fixture: "V42__shared_value_trees",
        exits: &[1],
    },
    Flood {
        name: "UNWIND range(1, 6000000) AS i RETURN i",
        fixture: "V45__run_dataset_query",
        exits: &[4],
    },
    Flood {
        name: "RETURN range(1, 6000000) AS big",
        fixture: "V45__run_dataset_query",
        exits: &[4],
    },
    // The driver buffers a whole batch of records (one PULL) before the host
    // sees the first: 200 rows of 60,000 integers would be 3.4 GB decoded.
    Flood {
        name: "UNWIND range(1, 200) AS i RETURN range(1, 60000) AS row",
        fixture: "V45__run_dataset_query",
        exits: &[4],
    },
];

/// Runs one flood; returns how it ended and the peak, or why it was not contained.
fn run_flood(flood: &Flood) -> Result<(String, u64), String> {
    let project = Project::new(&format!(
        "memory-mib = {MEMORY_MIB}\nresult-mib = {RESULT_MIB}\n"
    ));
    let data = project.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("flood.txt"), flood.name).expect("flood.txt");
    std::fs::write(data.join("query.txt"), flood.name).expect("query.txt");
    project.add(flood.fixture, "V1__flood");
    let (output, peak_kib) = graphmig_measuring_peak(&project, &["run"]);
    let out = text(&output);
    let code = output.status.code().unwrap_or(-1);
    if !flood.exits.contains(&code) {
        return Err(format!(
            "exit {code}, wanted one of {:?}:\n{}",
            flood.exits,
            out.chars().take(2_000).collect::<String>()
        ));
    }
    if peak_kib == 0 || peak_kib > BOUND_KIB {
        return Err(format!(
            "peak resident memory {peak_kib} KiB; the bound is {BOUND_KIB} KiB"
        ));
    }
    // What is printed and kept is bounded too: the ledger holds at most the log
    // and journal budgets (16 MiB each) and some slack; the output is short.
    let ledger = std::fs::metadata(project.dir.path().join(".graphmig/ledger.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    if ledger > 40 << 20 {
        return Err(format!("the ledger grew to {ledger} bytes"));
    }
    // Guest log lines are shown as they come: up to log-kib (8 MiB) of them.
    if out.len() > 10 << 20 {
        return Err(format!("{} bytes of output", out.len()));
    }
    let status = project.graphmig(&["status"]);
    if text(&status).len() > 1 << 20 {
        return Err(format!("`status` printed {} bytes", text(&status).len()));
    }
    let first_error = out
        .lines()
        .find(|l| l.starts_with("error:"))
        .map(|l| {
            l.split_once("rolled back: ")
                .map_or(l, |(_, cause)| cause)
                .chars()
                .take(80)
                .collect::<String>()
        })
        .unwrap_or_else(|| "applied".into());
    Ok((format!("exit {code}: {first_error}"), peak_kib))
}

#[test]
fn host_memory_stays_under_its_documented_bound_for_every_flood() {
    let mut table = format!(
        "| flood (memory-mib = {MEMORY_MIB}, result-mib = {RESULT_MIB}) | ended | peak RSS | bound |\n|---|---|---|---|\n"
    );
    let mut failures = Vec::new();
    for flood in FLOODS {
        let (ended, peak) = match run_flood(flood) {
            Ok((ended, peak)) => (ended, format!("{} MiB", peak / 1024)),
            Err(why) => {
                failures.push(format!("{}: {why}", flood.name));
                ("NOT CONTAINED".into(), "-".into())
            }
        };
        let _ = writeln!(
            table,
            "| {} | {} | {peak} | {} MiB |",
            flood.name,
            ended.replace('|', "/"),
            BOUND_KIB / 1024
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}
