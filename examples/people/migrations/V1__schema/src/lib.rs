//! V1: unique constraints for people, indexes for names.

use graphmig_sdk::schema::{Constraint, Index};
use graphmig_sdk::{Context, Result};

graphmig_sdk::migration! { description: "Constraints and indexes", up: up, down: down }

fn up(ctx: &Context) -> Result<()> {
    ctx.create_constraint(Constraint::unique("Person", ["email"]))?;
    ctx.create_constraint(Constraint::unique("Person", ["id"]))?;
    ctx.create_index(Index::range("Person", ["name"]))?;
    // A plain index, not a uniqueness constraint: V4 relabels companies, and
    // ArcadeDB checks uniqueness across a relabel as if the node were new.
    ctx.create_index(Index::range("Company", ["name"]))?;
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    for name in ["person_email_unique", "person_id_unique"] {
        ctx.drop_constraint(name)?;
    }
    ctx.drop_index("person_name_range")?;
    ctx.drop_index("company_name_range")?;
    Ok(())
}
