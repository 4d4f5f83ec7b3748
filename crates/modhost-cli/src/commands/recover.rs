//! `recover`: finishes or undoes what an interrupted change left.

use anyhow::Result;

use crate::Context;
use crate::escape::escape;

/// Arguments of `recover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove the directories under modules/ and data/ that no record names and no
    /// interrupted change made (kept otherwise: a modhost.db restored from a backup
    /// leaves the files of what it does not name so).
    #[arg(long)]
    remove_unclaimed: bool,
}

/// Recovers the root; a root that is not there has nothing to recover, and is not made.
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let recovery = ctx.open_existing()?.recover_with(modhost::RecoverOptions {
        remove_unclaimed: args.remove_unclaimed,
    })?;
    ctx.out.result(&recovery, || {
        if recovery.is_empty() {
            "nothing to recover\n".to_owned()
        } else if recovery.repaired() {
            format!("recovered: {}\n", escape(&recovery.to_string()))
        } else {
            // Only what stays (a leftover that cannot go, a directory it keeps): said as
            // such, not as a repair made at every run.
            format!("nothing recovered: {}\n", escape(&recovery.to_string()))
        }
    })
}
