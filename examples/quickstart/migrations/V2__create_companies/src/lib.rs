//! V2: companies, one parameterised statement per company.

use graphmig_sdk::{Context, Result, params};

graphmig_sdk::migration! {
    description: "Create companies",
    up: up,
    down: down,
}

const COMPANIES: &[(&str, &str, i64)] = &[
    ("Analytical Engines Ltd", "London", 1834),
    ("Remington Rand", "New York", 1927),
    ("Mathematisch Centrum", "Amsterdam", 1946),
];

fn up(ctx: &Context) -> Result<()> {
    for (name, city, founded) in COMPANIES {
        ctx.run(
            "CREATE (:Company {name: $name, city: $city, founded: $founded})",
            params! { "name" => *name, "city" => *city, "founded" => *founded },
        )?;
    }
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    let names: Vec<&str> = COMPANIES.iter().map(|c| c.0).collect();
    ctx.run(
        "MATCH (c:Company) WHERE c.name IN $names DETACH DELETE c",
        params! { "names" => names },
    )?;
    Ok(())
}
