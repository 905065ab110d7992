//! V4: the `Company` label becomes `Organisation`.

use graphmig_sdk::{Context, Result};

graphmig_sdk::migration! { description: "Companies become organisations", up: up, down: down }

fn up(ctx: &Context) -> Result<()> {
    let n = ctx.rename_label("Company", "Organisation")?;
    ctx.info(format!("relabelled {n} companies"));
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    ctx.rename_label("Organisation", "Company")?;
    Ok(())
}
