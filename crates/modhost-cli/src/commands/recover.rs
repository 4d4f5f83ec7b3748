use anyhow::Result;

use crate::Context;
use crate::escape::escape;

pub fn run(ctx: &Context) -> Result<()> {
    let recovery = ctx.open()?.recover()?;
    ctx.out.result(&recovery, || {
        if recovery.is_empty() {
            "nothing to recover\n".to_owned()
        } else {
            format!("recovered: {}\n", escape(&recovery.to_string()))
        }
    })
}
