use std::path::Path;

use anyhow::Result;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The module's rawname.
    rawname: String,
}

pub fn run(root: &Path, out: &Output, args: Args) -> Result<()> {
    out.open(root)?.uninstall(&args.rawname)?;
    let document = serde_json::json!({ "rawname": args.rawname, "uninstalled": true });
    out.result(&document, || format!("uninstalled {}\n", args.rawname))
}
