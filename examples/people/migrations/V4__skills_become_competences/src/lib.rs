//! V4: the `Skill` label becomes `Competence`.

use graphmig_sdk::{Context, Result};

graphmig_sdk::migration! { description: "Skills become competences", up: up, down: down }

fn up(ctx: &Context) -> Result<()> {
    let n = ctx.rename_label("Skill", "Competence")?;
    ctx.info(format!("relabelled {n} skills"));
    Ok(())
}

fn down(ctx: &Context) -> Result<()> {
    ctx.rename_label("Competence", "Skill")?;
    Ok(())
}
