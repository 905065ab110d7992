//! How the CLI shows progress, results, status tables and errors.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use graphmig::reporter::LogLevel;
use graphmig::{AppliedSummary, Migration, MigrationFailure, Reporter, State, StatusEntry};

/// Prints progress lines: to stdout for results, stderr for guest logs.
pub struct ConsoleReporter {
    color: bool,
}

impl ConsoleReporter {
    pub fn new() -> Self {
        ConsoleReporter {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn human(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl Reporter for ConsoleReporter {
    fn connected(&self, target: &str, agent: &str) {
        println!("Connected to {target} ({agent})");
    }

    fn plan(&self, pending: &[Migration]) {
        println!("{} pending migration(s)", pending.len());
    }

    fn up_to_date(&self, applied: usize) {
        println!("Up to date: {applied} migration(s) applied, nothing to do");
    }

    fn retrying_interrupted(&self, migration: &Migration) {
        eprintln!(
            "warning: the last attempt of {} never finished; it was not committed by this ledger's record and is run again",
            migration.label()
        );
    }

    fn migration_started(&self, migration: &Migration) {
        if std::io::stdout().is_terminal() {
            print!("Applying {} ...\r", migration.label());
            let _ = std::io::stdout().flush();
        }
    }

    fn migration_applied(&self, migration: &Migration, summary: &AppliedSummary) {
        println!(
            "{} V{} {} ({}, {} statement(s), {} fuel)",
            self.paint("32", "Applied"),
            migration.version(),
            migration.description(),
            human(summary.elapsed),
            summary.statements,
            summary.fuel_consumed
        );
    }

    fn migration_failed(&self, migration: &Migration, _failure: &MigrationFailure) {
        println!(
            "{} V{} {} (rolled back)",
            self.paint("31", "Failed"),
            migration.version(),
            migration.description()
        );
    }

    fn guest_log(&self, migration: &str, level: LogLevel, message: &str) {
        eprintln!("  [{migration}] {}: {message}", level.as_str());
    }

    fn built(&self, source: &Path, artifact: &Path, bytes: u64) {
        println!(
            "Built {} -> {} ({} KiB)",
            source.file_name().unwrap_or_default().to_string_lossy(),
            artifact.display(),
            bytes.div_ceil(1024)
        );
    }
}

pub fn print_status(entries: &[StatusEntry]) {
    if entries.is_empty() {
        println!("No migrations found.");
        return;
    }
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let mut state = e.state.as_str().to_string();
            if e.missing {
                state.push_str(" (file missing)");
            } else if e.checksum_changed {
                state.push_str(" (file changed)");
            }
            [
                format!("V{}", e.version),
                e.description.clone(),
                state,
                e.checksum.short().to_string(),
                e.applied_at.clone().unwrap_or_default(),
                e.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            ]
        })
        .collect();
    let headers = [
        "VERSION",
        "DESCRIPTION",
        "STATE",
        "CHECKSUM",
        "APPLIED AT",
        "DURATION",
    ];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&headers.map(String::from)));
    for row in &rows {
        println!("{}", line(row));
    }
    for e in entries.iter().filter(|e| e.state == State::Failed) {
        if let Some(error) = &e.error {
            println!("\nV{} failed: {error}", e.version);
        }
    }
}

pub fn print_status_json(entries: &[StatusEntry]) -> anyhow::Result<()> {
    let migrations: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "version": e.version.as_str(),
                "description": e.description,
                "state": e.state.as_str(),
                "checksum": e.checksum.as_str(),
                "applied_at": e.applied_at,
                "duration_ms": e.duration_ms,
                "fuel_consumed": e.fuel_consumed,
                "statements": e.statements,
                "error": e.error,
                "checksum_changed": e.checksum_changed,
                "missing": e.missing,
            })
        })
        .collect();
    let doc = serde_json::json!({ "migrations": migrations });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub fn print_error(error: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}
