use std::path::PathBuf;

use anyhow::Result;

use crate::escape::{escape, escape_path};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The module's directory: its module.xml, and the component that `<component>` names
    /// (default `module.wasm`).
    dir: PathBuf,
    /// The package to write; defaults to `RAWNAME-VERSION.tgz` in the current directory.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let xml = args.dir.join("module.xml");
    let manifest = modhost::read_manifest(&xml)?;
    let file = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}.tgz", manifest.rawname, manifest.version)));
    modhost::pack(&xml, &args.dir.join(&manifest.component), &file)?;
    let document = serde_json::json!({
        "rawname": manifest.rawname,
        "version": manifest.version,
        "package": file,
    });
    out.result(&document, || {
        format!(
            "packed {} {} into {} (module.xml and {}; nothing else in the directory)\n",
            escape(&manifest.rawname),
            escape(&manifest.version.to_string()),
            escape_path(&file),
            escape(&manifest.component)
        )
    })
}
