//! V5 (Rust): checks that every earlier step of the chain happened, and fails
//! loudly, naming what is missing, if one did not.

use graphmig_sdk::{Context, Error, Result, params};

graphmig_sdk::migration! { description: "Verify the chain", up: up, down: down }

/// One check: a query counting what is wrong, and what that means.
const CHECKS: &[(&str, &str)] = &[
    (
        "MATCH (p:Person) WHERE NOT (p)-[:LIVES_IN]->(:City) WITH count(p) AS n RETURN n",
        "people without a LIVES_IN city (V4, Go)",
    ),
    (
        "MATCH (p:Person) WHERE p.city IS NOT NULL WITH count(p) AS n RETURN n",
        "people still holding a city property (V4, Go)",
    ),
    (
        "MATCH (p:Person) WHERE p.generation IS NULL WITH count(p) AS n RETURN n",
        "people without a generation (V3, Python)",
    ),
];

fn up(ctx: &Context) -> Result<()> {
    let dataset = ctx.read_dataset_text("people.json")?;
    let expected = dataset.matches("\"id\":").count() as i64;
    let people: i64 = ctx.scalar(
        "MATCH (p:Person) WITH count(p) AS n RETURN n",
        params! {},
        "n",
    )?;
    let mut problems = Vec::new();
    if people != expected {
        problems.push(format!(
            "{people} people in the graph, {expected} in people.json (V2, JavaScript)"
        ));
    }
    let friendships: i64 = ctx.scalar(
        "MATCH (:Person)-[f:FRIEND_OF]->(:Person) WITH count(f) AS n RETURN n",
        params! {},
        "n",
    )?;
    if friendships == 0 {
        problems.push("no FRIEND_OF relationships (V2, JavaScript)".into());
    }
    for (query, meaning) in CHECKS {
        let wrong: i64 = ctx.scalar(query, params! {}, "n")?;
        if wrong > 0 {
            problems.push(format!("{wrong} {meaning}"));
        }
    }
    if !problems.is_empty() {
        return Err(Error::msg(format!(
            "the chain is incomplete: {}",
            problems.join("; ")
        )));
    }
    ctx.info(format!(
        "verified {people} people and {friendships} friendships"
    ));
    Ok(())
}

/// Verification changes nothing, so reverting it has nothing to undo.
fn down(_ctx: &Context) -> Result<()> {
    Ok(())
}
