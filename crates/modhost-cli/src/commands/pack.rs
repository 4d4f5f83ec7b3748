//! `pack`: a module directory into a reproducible package.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::escape::{escape, escape_path};
use crate::output::Output;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The module's directory: its module.xml, and the component that `<component>` names
    /// (default `module.wasm`).
    dir: PathBuf,
    /// The package to write, or a directory to write `RAWNAME-VERSION.tgz` into (made if
    /// it ends in `/`); defaults to `RAWNAME-VERSION.tgz` in the current directory.
    #[arg(short, long, value_name = "FILE|DIR")]
    out: Option<PathBuf>,
}

/// Packs the directory and says where the package went.
pub fn run(out: &Output, args: Args) -> Result<()> {
    let xml = args.dir.join("module.xml");
    let manifest = modhost::read_manifest(&xml)?;
    let name = PathBuf::from(format!("{}-{}.tgz", manifest.rawname, manifest.version));
    let file = match args.out {
        Some(dir) if dir.is_dir() => dir.join(name),
        // `-o pkgs/`: a directory, made if it is not there yet.
        Some(dir) if dir.as_os_str().as_encoded_bytes().ends_with(b"/") => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
            dir.join(name)
        }
        Some(file) => file,
        None => name,
    };
    modhost::pack(&xml, &args.dir.join(&manifest.component), &file)?;
    // What install would warn about is said now, while the author is at the file.
    let warnings: Vec<String> = manifest.warnings.iter().map(ToString::to_string).collect();
    let document = serde_json::json!({
        "rawname": manifest.rawname,
        "version": manifest.version,
        "package": file,
        "warnings": warnings,
    });
    out.result(&document, || {
        let mut text = format!(
            "packed {} {} into {} (module.xml and {}; nothing else in the directory)\n",
            escape(&manifest.rawname),
            escape(&manifest.version.to_string()),
            escape_path(&file),
            escape(&manifest.component)
        );
        for warning in &warnings {
            text += &format!("  warning: module.xml:{}\n", escape(warning));
        }
        text
    })
}
