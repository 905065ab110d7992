//! V1: unique constraints for people and companies, indexes for names.

use graphmig_sdk::schema::{Constraint, Index};
use graphmig_sdk::{Context, Result};

graphmig_sdk::migration! { description: "Constraints and indexes", up: up, down: down }

fn up(ctx: &Context) -> Result<()> {
    ctx.create_constraint(Constraint::unique("Person", ["email"]))?;
    ctx.create_constraint(Constraint::unique("Person", ["id"]))?;
    ctx.create_constraint(Constraint::unique("Company", ["name"]))?;
    ctx.create_index(Index::range("Person", ["name"]))?;
    ctx.create_index(Index::range("Skill", ["name"]))?;
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    for name in ["person_email_unique", "person_id_unique", "company_name_unique"] {
        ctx.drop_constraint(name)?;
    }
    ctx.drop_index("person_name_range")?;
    ctx.drop_index("skill_name_range")?;
    Ok(())
}
