//! V3: links people to companies, reading typed rows back to check its work.

use graphmig_sdk::{Context, Error, Result, params};

graphmig_sdk::migration! {
    description: "Link employees to companies",
    up: up,
    down: down,
}

const JOBS: &[(&str, &str, i64)] = &[
    ("ada@example.org", "Analytical Engines Ltd", 1842),
    ("grace@example.org", "Remington Rand", 1949),
    ("edsger@example.org", "Mathematisch Centrum", 1952),
];

fn up(ctx: &Context) -> Result<()> {
    for (email, company, since) in JOBS {
        ctx.run(
            "MATCH (p:Person {email: $email}), (c:Company {name: $company})
             CREATE (p)-[:WORKS_AT {since: $since}]->(c)",
            params! { "email" => *email, "company" => *company, "since" => *since },
        )?;
    }
    let result = ctx.run(
        "MATCH (p:Person)-[w:WORKS_AT]->(c:Company) RETURN p.name AS person, c.name AS company, w.since AS since",
        params! {},
    )?;
    if result.len() != JOBS.len() {
        return Err(Error::msg(format!(
            "expected {} WORKS_AT relationships, found {}",
            JOBS.len(),
            result.len()
        )));
    }
    for row in result {
        let person: String = row.get("person")?;
        let company: String = row.get("company")?;
        let since: i64 = row.get("since")?;
        ctx.info(format!("{person} works at {company} since {since}"));
    }
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    ctx.run("MATCH (:Person)-[w:WORKS_AT]->(:Company) DELETE w", params! {})?;
    Ok(())
}
