//! `modhost pack`: a module directory into a package, named as package directories and
//! repositories name them.

use std::path::{Path, PathBuf};

use modhost_package::Format;
use serde::Serialize;

use crate::{Error, Result, read_manifest};

/// A module directory packed: what it holds and where its package went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packed {
    /// The module.
    pub rawname: String,
    /// Its version.
    pub version: String,
    /// The component packed beside module.xml (`<component>`, `module.wasm` by default).
    #[serde(skip)]
    pub component: String,
    /// The package written.
    pub package: PathBuf,
    /// What module.xml's reading warned of, as an install would.
    pub warnings: Vec<String>,
    /// Why the component looks older than the code it is built from, when it does (a
    /// source file or module.xml newer than it): the package then holds the code as it
    /// was last built.
    pub stale: Option<String>,
}

/// Where a package goes when asked to go to `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackTo<'a> {
    /// `RAWNAME-VERSION.tgz` in the current directory.
    Here,
    /// `RAWNAME-VERSION.tgz` in this directory, made if it is not there yet.
    Dir(&'a Path),
    /// This file.
    File(&'a Path),
}

/// Packs the module directory `dir` (its module.xml and the component `<component>`
/// names, nothing else) into a reproducible gzipped tar at `to`.
pub fn pack_module(dir: &Path, to: PackTo<'_>) -> Result<Packed> {
    if !dir.is_dir() && dir.exists() {
        let holder = dir.parent().filter(|p| !p.as_os_str().is_empty());
        return Err(Error::Refused(vec![format!(
            "`{}` is a file: give the module's directory, the one holding module.xml and its \
             component{}",
            dir.display(),
            holder.map_or_else(String::new, |p| format!(" (`{}`)", p.display()))
        )]));
    }
    let manifest = read_manifest(dir)?;
    let name = Format::GzipTar.file_name(&manifest.rawname, &manifest.version);
    let package = match to {
        PackTo::Here => PathBuf::from(name),
        PackTo::Dir(out) => {
            fs_err::create_dir_all(out).map_err(crate::layout::io(out))?;
            out.join(name)
        }
        PackTo::File(file) => file.to_owned(),
    };
    modhost_package::pack(
        &dir.join("module.xml"),
        &dir.join(&manifest.component),
        &package,
    )?;
    Ok(Packed {
        stale: stale_component(dir, &manifest.component),
        rawname: manifest.rawname,
        version: manifest.version.to_string(),
        component: manifest.component,
        package,
        warnings: manifest.warnings.iter().map(ToString::to_string).collect(),
    })
}

/// The most files under `src/` looked at for [`stale_component`].
const SOURCES_LOOKED_AT: usize = 256;

/// Says so when the component `component` of module directory `dir` is older than a
/// source beside it, as `modhost new` lays them out (`app.py`, `app.js`, `src/*.rs`): a
/// source edited and the build forgotten, which would pack or install the code as it
/// was. Links are not followed; nothing else is looked at.
pub(crate) fn stale_component(dir: &Path, component: &str) -> Option<String> {
    let modified = |path: &Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
    };
    let built = modified(&dir.join(component))?;
    let mut sources = vec![dir.join("app.py"), dir.join("app.js")];
    if let Ok(entries) = std::fs::read_dir(dir.join("src")) {
        sources.extend(
            entries
                .flatten()
                .take(SOURCES_LOOKED_AT)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "rs")),
        );
    }
    let newer = sources
        .iter()
        .find(|source| modified(source).is_some_and(|changed| changed > built))?;
    let shown = newer.strip_prefix(dir).unwrap_or(newer);
    Some(format!(
        "`{component}` is older than `{}`: it holds the code as last built; build it again \
         first (`./build.sh` in a directory `modhost new` made)",
        shown.display()
    ))
}
