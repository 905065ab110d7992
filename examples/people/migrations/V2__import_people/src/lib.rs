//! V2: imports data/people.csv (10,000 rows) through tracked batches: people,
//! the companies and skills they name, who works where and who knows what.

use graphmig_sdk::{Context, Endpoint, Error, Params, Result, params};

// No down step: `graphmig down` reverts this migration by deleting its batches.
graphmig_sdk::migration! { description: "Import people from CSV", up: up }

fn up(ctx: &Context) -> Result<()> {
    let csv = ctx.read_dataset_text("people.csv")?;
    let mut people = Vec::new();
    let mut companies = Vec::new();
    let mut jobs = Vec::new();
    let mut skills = Vec::new();
    let mut knows = Vec::new();
    for (line, record) in csv.lines().enumerate().skip(1) {
        let fields: Vec<&str> = record.split(',').collect();
        let [id, name, email, born, company, skill] = fields[..] else {
            return Err(Error::msg(format!("people.csv line {}: expected 6 fields", line + 1)));
        };
        let id: i64 = id.parse().map_err(|_| Error::msg(format!("line {}: bad id", line + 1)))?;
        let born: i64 = born.parse().map_err(|_| Error::msg(format!("line {}: bad year", line + 1)))?;
        people.push(params! { "id" => id, "name" => name, "email" => email, "born" => born });
        companies.push(company.to_string());
        jobs.push(params! { "person" => id, "company" => company });
        skills.push(skill.to_string());
        knows.push(params! { "person" => id, "skill" => skill });
    }
    companies.sort();
    companies.dedup();
    skills.sort();
    skills.dedup();

    let created = ctx.begin_batch("people").create_nodes("Person", people)?;
    let merged = ctx
        .begin_batch("companies")
        .merge_nodes("Company", &["name"], companies.iter().map(|c| params! { "name" => c.as_str() }))?;
    let linked = ctx.begin_batch("jobs").create_relationships(
        "WORKS_AT",
        &Endpoint::new("Person", "id", "person"),
        &Endpoint::new("Company", "name", "company"),
        jobs.into_iter().collect::<Vec<Params>>(),
    )?;
    let learned = ctx
        .begin_batch("skills")
        .create_nodes("Skill", skills.iter().map(|s| params! { "name" => s.as_str() }))?;
    let known = ctx.begin_batch("knows").create_relationships(
        "KNOWS",
        &Endpoint::new("Person", "id", "person"),
        &Endpoint::new("Skill", "name", "skill"),
        knows,
    )?;
    ctx.info(format!(
        "imported {created} people, {merged} companies, {linked} jobs, {learned} skills, {known} skill links"
    ));
    Ok(())
}
