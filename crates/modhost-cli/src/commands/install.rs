use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Package files (`.tgz`).
    #[arg(required = true, value_name = "PKG")]
    packages: Vec<PathBuf>,
}

pub fn run(root: &Path, out: &Output, args: Args) -> Result<()> {
    let installed = out.open(root)?.install(&args.packages)?;
    out.result(&installed, || {
        installed
            .iter()
            .map(|m| format!("installed {} {}\n", m.rawname, m.version))
            .collect()
    })
}
