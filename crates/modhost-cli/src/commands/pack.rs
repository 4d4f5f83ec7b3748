//! `pack`: a module directory into a reproducible package.

use std::path::PathBuf;

use anyhow::Result;
use modhost::PackTo;

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
    let to = match args.out.as_deref() {
        None => PackTo::Here,
        // `-o pkgs/`: a directory, made if it is not there yet.
        Some(dir) if dir.is_dir() || dir.as_os_str().as_encoded_bytes().ends_with(b"/") => {
            PackTo::Dir(dir)
        }
        Some(file) => PackTo::File(file),
    };
    // What install would refuse in milliseconds (a core module, another WIT version, an
    // import this host does not give) is said now too: read from the component, never
    // compiled. One no host runs is not packed; one made for an application that gives
    // more is. Where no scratch host can be made (no temporary directory), the check is
    // left out.
    let checked = modhost::Host::open_scratch()
        .and_then(|host| host.component_imports(&args.dir))
        .ok()
        .flatten();
    if let Some(modhost::ComponentImports {
        refused: Some(why),
        by_any_host: true,
        ..
    }) = &checked
    {
        anyhow::bail!("nothing was packed: no host can run this component: {why}");
    }
    let packed = modhost::pack_module(&args.dir, to)?;
    let refused = checked.and_then(|component| component.refused);
    let mut document = serde_json::to_value(&packed)?;
    if let (Some(refused), Some(object)) = (&refused, document.as_object_mut()) {
        object.insert("refused".into(), refused.clone().into());
    }
    out.result(&document, || {
        let mut text = format!(
            "packed {} {} into {} (module.xml and {} only: the rest of the directory is left out)\n",
            escape(&packed.rawname),
            escape(&packed.version),
            escape_path(&packed.package),
            escape(&packed.component)
        );
        // What install would warn about is said now, while the author is at the file.
        for warning in &packed.warnings {
            text += &format!("  warning: module.xml:{}\n", escape(warning));
        }
        if let Some(stale) = &packed.stale {
            text += &format!("  warning: {}\n", escape(stale));
        }
        if let Some(refused) = &refused {
            text += &format!(
                "  warning: modhost's command line would not install it (a newer modhost, or \
                 an application giving modules capabilities of its own, may): {}\n",
                escape(refused)
            );
        }
        text
    })
}
