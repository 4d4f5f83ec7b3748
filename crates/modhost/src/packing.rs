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
        rawname: manifest.rawname,
        version: manifest.version.to_string(),
        component: manifest.component,
        package,
        warnings: manifest.warnings.iter().map(ToString::to_string).collect(),
    })
}
