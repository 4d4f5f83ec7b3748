use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The module's rawname.
    rawname: String,
}

pub fn run(root: &Path, out: &Output, args: Args) -> Result<()> {
    let entries = out.open(root)?.kv_entries(&args.rawname)?;
    let document: BTreeMap<_, _> = entries.iter().cloned().collect();
    out.result(&document, || {
        entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    })
}
