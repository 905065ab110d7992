//! V3: `born` becomes `birth_year` on every person.

use graphmig_sdk::{Context, Result};

graphmig_sdk::migration! { description: "Rename born to birth_year", up: up, down: down }

fn up(ctx: &Context) -> Result<()> {
    let n = ctx.rename_node_property("Person", "born", "birth_year")?;
    ctx.info(format!("renamed the property on {n} people"));
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    ctx.rename_node_property("Person", "birth_year", "born")?;
    Ok(())
}
