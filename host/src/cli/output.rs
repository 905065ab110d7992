//! How the CLI shows progress, results, tables and errors (JSON when asked).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use graphmig::ledger::{Attempt, Outcome, SqliteLedger};
use graphmig::migration::MigrationId;
use graphmig::reporter::LogLevel;
use graphmig::runner::DryRunMigration;
use graphmig::{
    AppliedSummary, Error, Migration, MigrationFailure, Report, Reporter, State, StatusEntry,
};

/// Set once stdout turned out to be a closed pipe: later output is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stdout. When the reader went away (`graphmig status | head`), the
/// rest of the output is dropped and the command finishes as it would have
/// (a migration under way is not cut short for want of a reader); the exit
/// code is the command's own. `println!` would panic with "Broken pipe".
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Prints progress: a spinner with elapsed time on a terminal, plain lines
/// otherwise, nothing but the final JSON with `--json`.
pub struct ConsoleReporter {
    color: bool,
    json: bool,
    spinner: Mutex<Option<ProgressBar>>,
    /// The bar of the batch being written, by batch id, while it has chunks left.
    batch_bar: Mutex<Option<(String, ProgressBar)>>,
}

impl ConsoleReporter {
    pub fn new(json: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        ConsoleReporter {
            color: terminal && std::env::var_os("NO_COLOR").is_none(),
            json,
            spinner: Mutex::new(None),
            batch_bar: Mutex::new(None),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn line(&self, text: &str) {
        if self.json {
            return;
        }
        let bar = self
            .batch_bar
            .lock()
            .ok()
            .and_then(|b| b.as_ref().map(|(_, bar)| bar.clone()));
        match bar.or_else(|| self.spinner.lock().ok().and_then(|s| s.clone())) {
            Some(spinner) => spinner.println(text),
            None => outln!("{text}"),
        }
    }

    fn stop_spinner(&self) {
        if let Some((_, bar)) = self.batch_bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
        if let Some(spinner) = self.spinner.lock().ok().and_then(|mut s| s.take()) {
            spinner.finish_and_clear();
        }
    }
}

/// Whether `c` would act on a terminal rather than show: control characters
/// (ESC, CR, BS, BEL, newlines, ...) and the bidirectional controls that reorder
/// what is shown around them.
fn is_active(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Guest-supplied text made inert for the terminal: every active character shown
/// escaped (`\u{1b}`), so that a log line, an error or a description can neither
/// move the cursor, recolour the screen nor start a line of its own.
pub(crate) fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_active) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_active(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// As [`inert`], for text of several lines (a stack trace, an error chain): lines
/// stay lines, each after the first behind `  | `, so none passes for one of
/// graphmig's own.
pub(crate) fn inert_block(text: &str) -> String {
    text.split('\n')
        .map(|line| inert(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n  | ")
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
        self.line(&format!("Connected to {target} ({})", inert(agent)));
    }

    fn plan(&self, pending: &[Migration]) {
        self.line(&format!("{} pending migration(s)", pending.len()));
    }

    fn up_to_date(&self, applied: usize) {
        self.line(&format!(
            "Up to date: {applied} migration(s) applied, nothing to do"
        ));
    }

    fn waiting_for_lock(&self, owner: &str) {
        if !self.json {
            eprintln!("Waiting for the lock held by {} ...", inert(owner));
        }
    }

    fn synced(&self, entries: usize) {
        self.line(&format!(
            "Synced {entries} entr{} applied elsewhere from the graph's history",
            if entries == 1 { "y" } else { "ies" }
        ));
    }

    fn resolved_interrupted(&self, description: &str, committed: bool) {
        if !self.json {
            eprintln!(
                "note: the interrupted attempt of `{}` {}",
                inert(description),
                if committed {
                    "had committed (the graph's history says so); recorded as applied"
                } else {
                    "had not committed; recorded as failed and will run again"
                }
            );
        }
    }

    fn audit(&self, line: &str) {
        self.line(&inert_block(line));
    }

    fn warning(&self, message: &str) {
        eprintln!("warning: {}", inert_block(message));
    }

    fn batch_progress(&self, migration: &str, batch: &str, done: u64, total: Option<u64>) {
        if self.json || !std::io::stdout().is_terminal() {
            return;
        }
        let Ok(mut slot) = self.batch_bar.lock() else {
            return;
        };
        if total.is_some_and(|total| done >= total) {
            if let Some((_, bar)) = slot.take() {
                bar.finish_and_clear();
                if let Some(spinner) = self.spinner.lock().ok().and_then(|s| s.clone()) {
                    spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
            }
            return;
        }
        // A batch of several chunks gets a bar with its rate and time left; a
        // guest's writer, whose total is unknown, a counter with its rate.
        let bar = match slot.as_ref() {
            Some((id, bar)) if id == batch => bar.clone(),
            _ => {
                if let Some((_, old)) = slot.take() {
                    old.finish_and_clear();
                }
                let (bar, template) = match total {
                    Some(total) => (
                        ProgressBar::new(total),
                        "{msg} [{bar:30}] {human_pos}/{human_len} rows, {per_sec:0}, ETA {eta}",
                    ),
                    None => (
                        ProgressBar::no_length(),
                        "{spinner} {msg}: {human_pos} rows, {per_sec:0}",
                    ),
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_message(format!("{}: batch {}", inert(migration), inert(batch)));
                if let Some(spinner) = self.spinner.lock().ok().and_then(|s| s.clone()) {
                    spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                }
                *slot = Some((batch.to_string(), bar.clone()));
                bar
            }
        };
        bar.set_position(done);
    }

    fn migration_started(&self, migration: &Migration) {
        if self.json || !std::io::stdout().is_terminal() {
            return;
        }
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("{spinner} Running {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(inert(&migration.label()).into_owned());
        spinner.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.spinner.lock() {
            *slot = Some(spinner);
        }
    }

    fn migration_applied(&self, migration: &Migration, summary: &AppliedSummary) {
        self.stop_spinner();
        self.line(&format!(
            "{} {} {} ({})",
            self.paint("32", "Applied"),
            migration.id(),
            inert(migration.description()),
            step_summary(migration, summary),
        ));
    }

    fn migration_reverted(&self, migration: &Migration, summary: &AppliedSummary) {
        self.stop_spinner();
        self.line(&format!(
            "{} {} {} ({})",
            self.paint("33", "Reverted"),
            migration.id(),
            inert(migration.description()),
            step_summary(migration, summary),
        ));
    }

    fn migration_failed(&self, migration: &Migration, _failure: &MigrationFailure) {
        self.stop_spinner();
        self.line(&format!(
            "{} {} {} (rolled back)",
            self.paint("31", "Failed"),
            migration.id(),
            inert(migration.description())
        ));
    }

    fn guest_log(&self, migration: &str, level: LogLevel, message: &str) {
        if self.json {
            return;
        }
        let text = format!(
            "  [{}] {}: {}",
            inert(migration),
            level.as_str(),
            inert_block(message)
        );
        match self.spinner.lock().ok().and_then(|s| s.clone()) {
            Some(spinner) => spinner.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn building(&self, source: &Path, language: &str) {
        self.line(&format!(
            "Building {} ({language})",
            source.file_name().unwrap_or_default().to_string_lossy()
        ));
    }

    fn built(&self, source: &Path, artifact: &Path, bytes: u64) {
        self.line(&format!(
            "Built {} -> {} ({} KiB)",
            source.file_name().unwrap_or_default().to_string_lossy(),
            artifact.display(),
            bytes.div_ceil(1024)
        ));
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    outln!(
        "{}",
        line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    );
    for row in rows {
        outln!("{}", line(row));
    }
}

pub fn print_status(entries: &[StatusEntry]) {
    if entries.is_empty() {
        outln!("No migrations found.");
        return;
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut state = e.state_text();
            if e.missing {
                state.push_str(" (file missing)");
            } else if e.checksum_changed {
                state.push_str(" (file changed)");
            }
            vec![
                e.id.to_string(),
                inert(&e.description).into_owned(),
                state,
                e.checksum.short().to_string(),
                e.applied_at.clone().unwrap_or_default(),
                e.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "MIGRATION",
            "DESCRIPTION",
            "STATE",
            "CHECKSUM",
            "APPLIED AT",
            "DURATION",
        ],
        &rows,
    );
    for e in entries.iter() {
        match (e.state, &e.error) {
            (State::Failed, Some(error)) => outln!("\n{} failed: {}", e.id, inert_block(error)),
            (State::CompensationPending, Some(note)) => {
                outln!("\n{}: {}", e.id, inert_block(note))
            }
            _ => {}
        }
    }
}

fn id_json(id: &MigrationId) -> serde_json::Value {
    match id {
        MigrationId::Versioned(v) => serde_json::json!(v.as_str()),
        MigrationId::Repeatable(_) => serde_json::json!(id.key()),
    }
}

pub fn print_status_json(entries: &[StatusEntry]) -> anyhow::Result<()> {
    let migrations: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "version": id_json(&e.id),
                "repeatable": matches!(e.id, MigrationId::Repeatable(_)),
                "description": e.description,
                "state": e.state.as_str(),
                "checksum": e.checksum.as_str(),
                "applied_at": e.applied_at,
                "duration_ms": e.duration_ms,
                "fuel_consumed": e.fuel_consumed,
                "statements": e.statements,
                "error": e.error,
                "backfill": e.backfill.map(|(rows, total, chunks)| serde_json::json!({
                    "rows": rows, "total": total, "chunks": chunks,
                })),
                "checksum_changed": e.checksum_changed,
                "missing": e.missing,
            })
        })
        .collect();
    outln!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "migrations": migrations }))?
    );
    Ok(())
}

pub fn print_run_json(report: &Report, error: Option<&Error>) -> anyhow::Result<()> {
    let applied: Vec<_> = report
        .applied
        .iter()
        .map(|a| {
            serde_json::json!({
                "version": id_json(&a.id),
                "description": a.description,
                "checksum": a.checksum.as_str(),
                "duration_ms": a.summary.elapsed.as_millis() as u64,
                "statements": a.summary.statements,
                "fuel_consumed": a.summary.fuel_consumed,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "ok": error.is_none(),
        "applied": applied,
        "synced": report.synced,
        "error": error.map(ToString::to_string),
    });
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub fn print_dry_run(results: &[DryRunMigration], json: bool) -> anyhow::Result<()> {
    if json {
        let migrations: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "version": id_json(&r.id),
                    "description": r.description,
                    "fuel_consumed": r.fuel_consumed,
                    "failure": r.failure,
                    "changes": r.changes.iter().map(|(k, d)| serde_json::json!({"what": k, "delta": d})).collect::<Vec<_>>(),
                    "statements": r.statements.iter().map(|s| serde_json::json!({
                        "seq": s.seq,
                        "query": s.query,
                        "params": s.params,
                        "outcome": s.outcome.as_str(),
                        "rows": s.rows,
                        "counters": s.counters,
                        "duration_us": s.duration_us,
                        "code": s.code,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "dry_run": true, "migrations": migrations })
            )?
        );
        return Ok(());
    }
    if results.is_empty() {
        outln!("Dry run: nothing pending.");
    }
    for r in results {
        outln!(
            "Dry run {} {} ({} fuel)",
            r.id,
            inert(&r.description),
            r.fuel_consumed
        );
        for s in &r.statements {
            let query: String = s.query.split_whitespace().collect::<Vec<_>>().join(" ");
            outln!(
                "  #{} {} ({} row(s), {} us){}  {}",
                s.seq,
                s.outcome.as_str(),
                s.rows,
                s.duration_us,
                s.code
                    .as_ref()
                    .map(|c| format!(" {}", inert(c)))
                    .unwrap_or_default(),
                inert(&query)
            );
            if !s.counters.is_empty() {
                outln!("      would change: {}", s.counters);
            }
        }
        if r.changes.is_empty() {
            outln!("  would change no node or relationship counts");
        }
        for (what, delta) in &r.changes {
            outln!("  would change {what}: {delta:+}");
        }
        if let Some(failure) = &r.failure {
            outln!("  would FAIL: {}", inert_block(&failure.to_string()));
        }
    }
    outln!("Nothing was committed; the ledger is unchanged.");
    Ok(())
}

pub fn print_verify(problems: &[String], json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": problems.is_empty(), "problems": problems })
            )?
        );
    } else if problems.is_empty() {
        outln!("Verified: files, ledger chain and graph history agree");
    } else {
        for p in problems {
            outln!("problem: {}", inert_block(p));
        }
    }
    Ok(())
}

pub fn print_doctor(findings: &[graphmig::doctor::Finding], json: bool) -> anyhow::Result<()> {
    use graphmig::doctor::Guard;
    if json {
        let items: Vec<_> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "check": f.check,
                    "operation": f.operation,
                    "guard": f.guard.as_str(),
                    "detail": f.detail,
                })
            })
            .collect();
        let enforced = findings.iter().all(|f| f.guard == Guard::Server);
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "server_enforced": enforced, "checks": items })
            )?
        );
        return Ok(());
    }
    for f in findings {
        let mark = match f.guard {
            Guard::Server => "ok  ",
            Guard::PolicyOnly => "RISK",
        };
        outln!(
            "{mark} {:<16} {}: {}",
            f.check,
            f.operation,
            f.guard.as_str()
        );
        outln!("     {:<16} {}", "", f.detail);
    }
    let risks = findings
        .iter()
        .filter(|f| f.guard == Guard::PolicyOnly)
        .count();
    if risks == 0 {
        outln!("The server itself refuses every operation checked.");
    } else {
        outln!("{risks} operation(s) rest on graphmig's Cypher policy alone.");
    }
    Ok(())
}

pub fn print_history(
    ledger: &SqliteLedger,
    attempts: &[Attempt],
    verbose: Option<&MigrationId>,
    json: bool,
) -> anyhow::Result<()> {
    let selected: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| verbose.is_none_or(|id| a.migration.as_ref() == Some(id)))
        .collect();
    if json {
        let mut entries = Vec::new();
        for a in &selected {
            let mut entry = serde_json::json!({
                "id": a.id,
                "action": a.action.as_str(),
                "migration": a.migration.as_ref().map(MigrationId::key),
                "description": a.description,
                "checksum": a.checksum.as_str(),
                "chain_seq": a.chain.as_ref().map(|c| c.seq),
                "chain_hash": a.chain.as_ref().map(|c| c.hash.clone()),
                "actor": a.actor,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "duration_ms": a.duration_ms,
                "fuel_consumed": a.fuel_consumed,
                "statements": a.statements,
                "outcome": outcome(a.outcome),
                "error": a.error,
            });
            if verbose.is_some() {
                entry["journal"] = ledger
                    .statements(a.id)?
                    .into_iter()
                    .map(|j| serde_json::json!({
                        "seq": j.seq, "query": j.query, "params": j.params, "duration_us": j.duration_us,
                        "rows": j.rows, "counters": j.counters, "outcome": j.outcome, "code": j.code,
                        "message": j.message,
                    }))
                    .collect();
                entry["logs"] = ledger
                    .logs(a.id)?
                    .into_iter()
                    .map(|(level, message)| serde_json::json!({"level": level, "message": message}))
                    .collect();
                entry["datasets"] = ledger
                    .dataset_reads(a.id)?
                    .into_iter()
                    .map(|(path, sha, bytes)| serde_json::json!({"path": path, "sha256": sha, "bytes": bytes}))
                    .collect();
            }
            entries.push(entry);
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "history": entries }))?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = selected
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.started_at.clone(),
                a.action.as_str().to_string(),
                a.migration
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                inert(&a.description).into_owned(),
                outcome(a.outcome).to_string(),
                a.chain
                    .as_ref()
                    .map(|c| c.seq.to_string())
                    .unwrap_or_default(),
                inert(&a.actor).into_owned(),
                inert(
                    a.error
                        .clone()
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or(""),
                )
                .into_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "#",
            "AT",
            "ACTION",
            "MIGRATION",
            "DESCRIPTION",
            "OUTCOME",
            "CHAIN",
            "BY",
            "NOTE",
        ],
        &rows,
    );
    if verbose.is_some() {
        for a in &selected {
            outln!(
                "\nAttempt #{} ({} {}):",
                a.id,
                a.action.as_str(),
                outcome(a.outcome)
            );
            for j in ledger.statements(a.id)? {
                let query: String = j.query.split_whitespace().collect::<Vec<_>>().join(" ");
                outln!(
                    "  #{} {} {} row(s) {} us  {}",
                    j.seq,
                    j.outcome,
                    j.rows,
                    j.duration_us,
                    inert(&query)
                );
                if !j.params.is_empty() {
                    outln!("      params: {}", inert(&j.params));
                }
                if !j.counters.is_empty() {
                    outln!("      changed: {}", j.counters);
                }
                if let Some(code) = j.code {
                    outln!(
                        "      {}: {}",
                        inert(&code),
                        inert_block(&j.message.unwrap_or_default())
                    );
                }
            }
            for (path, sha, bytes) in ledger.dataset_reads(a.id)? {
                outln!("  read data/{} ({bytes} bytes, sha256 {sha})", inert(&path));
            }
            for (level, message) in ledger.logs(a.id)? {
                outln!("  log {level}: {}", inert_block(&message));
            }
        }
    }
    Ok(())
}

fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "running",
        Outcome::Applied => "applied",
        Outcome::Failed => "failed",
    }
}

pub fn print_error(error: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", inert_block(&error.to_string()));
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {}", inert_block(&cause.to_string()));
    }
}

/// `120 ms, 3 statement(s), 4100 fuel`; Cypher migrations burn no fuel.
fn step_summary(migration: &Migration, summary: &AppliedSummary) -> String {
    let mut text = format!(
        "{}, {} statement(s)",
        human(summary.elapsed),
        summary.statements
    );
    if migration.kind() == graphmig::migration::ArtifactKind::Component {
        text.push_str(&format!(", {} fuel", summary.fuel_consumed));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_act_on_the_terminal_or_forge_a_line() {
        let forged = "ok\r\u{1b}[2K\u{8}\u{7}Applied V9 forged\u{202e}";
        let shown = inert(forged);
        assert!(!shown.chars().any(is_active), "{shown}");
        assert_eq!(
            shown,
            "ok\\r\\u{1b}[2K\\u{8}\\u{7}Applied V9 forged\\u{202e}"
        );
        let block = inert_block("TypeError: x\nApplied V9 forged\n\u{1b}[31m");
        assert!(
            block.lines().skip(1).all(|l| l.starts_with("  | ")),
            "{block}"
        );
        assert!(!block.contains('\u{1b}'));
        assert_eq!(inert("plain ünïcode"), "plain ünïcode");
    }
}
