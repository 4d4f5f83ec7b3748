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

/// Recovers the root (making an empty one when there was none, and saying so).
pub fn run(ctx: &Context, args: Args) -> Result<()> {
    // Said when there was no root: a mistyped `--root` must not read as a healthy root.
    let made = !modhost::Host::is_root(ctx.root());
    let recovery = ctx.open()?.recover_with(modhost::RecoverOptions {
        remove_unclaimed: args.remove_unclaimed,
    })?;
    if made {
        // On stderr: the JSON stays the recovery report.
        eprintln!(
            "note: there was no root at `{}`: made an empty one",
            escape(&ctx.root().display().to_string())
        );
    }
    if !recovery.unclaimed.is_empty() && !args.remove_unclaimed {
        eprintln!("note: `modhost recover --remove-unclaimed` removes them");
    }
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
