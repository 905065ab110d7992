//! V1: the first people, created from a parameter list in one statement.

use graphmig_sdk::{Context, Result, Value, params};

graphmig_sdk::migration! {
    description: "Create the first people",
    up: up,
    down: down,
}

struct Person {
    name: &'static str,
    born: i64,
    email: &'static str,
}

const PEOPLE: &[Person] = &[
    Person { name: "Ada Lovelace", born: 1815, email: "ada@example.org" },
    Person { name: "Grace Hopper", born: 1906, email: "grace@example.org" },
    Person { name: "Alan Turing", born: 1912, email: "alan@example.org" },
    Person { name: "Edsger Dijkstra", born: 1930, email: "edsger@example.org" },
];

fn up(ctx: &Context) -> Result<()> {
    let rows: Vec<Value> = PEOPLE
        .iter()
        .map(|p| params! { "name" => p.name, "born" => p.born, "email" => p.email }.into())
        .collect();
    ctx.run(
        "UNWIND $people AS p CREATE (:Person {name: p.name, born: p.born, email: p.email})",
        params! { "people" => rows },
    )?;
    let count: i64 = ctx.scalar("MATCH (p:Person) RETURN count(p) AS n", params! {}, "n")?;
    ctx.info(format!("{count} people in the graph"));
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    let emails: Vec<&str> = PEOPLE.iter().map(|p| p.email).collect();
    ctx.run(
        "MATCH (p:Person) WHERE p.email IN $emails DETACH DELETE p",
        params! { "emails" => emails },
    )?;
    Ok(())
}
