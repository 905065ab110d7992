//! The floor of the peer comparison (`benches/peer/compare.sh`): a chain of `.cypher`
//! files sent straight through neo4rs, each statement in its own transaction, with no
//! checks, ledger, history or lock. What graphmig takes beyond this is its own cost.
//!
//! Usage: `floor CHAIN_DIR`, with `GRAPHMIG_URI`, `GRAPHMIG_USER`, `GRAPHMIG_PASSWORD`
//! and `GRAPHMIG_DATABASE` set (the names graphmig reads, so the script sets them
//! once). Prints the elapsed seconds.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use neo4rs::{ConfigBuilder, Graph, query};

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` appends `--bench`; take the first argument that is not a flag.
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .context("usage: floor CHAIN_DIR")?;
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let database = env("GRAPHMIG_DATABASE")?;
    let started = Instant::now();

    // The files in name order: the chain's names are zero-padded, so this is
    // version order, and the floor needs no version parsing.
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "cypher"));
    files.sort();
    if files.is_empty() {
        bail!("no .cypher files in {dir}");
    }

    let config = ConfigBuilder::default()
        .uri(env("GRAPHMIG_URI")?)
        .user(env("GRAPHMIG_USER")?)
        .password(env("GRAPHMIG_PASSWORD")?)
        .db(database.as_str())
        .build()?;
    let graph = Graph::connect(config)?;

    let mut count = 0;
    for file in &files {
        for statement in split(&std::fs::read_to_string(file)?) {
            // One explicit transaction per statement, naming the database: what
            // graphmig does at the least (its schema steps run on their own too),
            // and ArcadeDB's auto-commit statements are not atomic.
            let mut txn = graph.start_txn_on(database.as_str()).await?;
            txn.run(query(&statement))
                .await
                .with_context(|| format!("{}: {statement}", file.display()))?;
            txn.commit().await?;
            count += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("floor: {count} statements from {} files", files.len());
    println!("{seconds:.3}");
    Ok(())
}

/// Splits a file into statements at a `;` that ends a line. The chain has no
/// comments and no `;` inside strings, so nothing more is needed.
fn split(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        match line.strip_suffix(';') {
            Some(last) => {
                current.push_str(last);
                let statement = current.trim();
                if !statement.is_empty() {
                    statements.push(statement.to_string());
                }
                current.clear();
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_string());
    }
    statements
}
