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

/// The most directory entries looked at for [`stale_component`].
const SOURCES_LOOKED_AT: usize = 2048;

/// How deep under the module directory sources are looked for.
const SOURCE_DEPTH: usize = 6;

/// Whether a file of this name is source a component is built from: code in the
/// languages `modhost new` writes (and their helper modules anywhere under the
/// directory), the WIT contract, and Cargo's manifest.
fn is_source(name: &str) -> bool {
    name == "Cargo.toml"
        || Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "rs" | "py" | "js" | "mjs" | "wit"))
}

/// The directory of a Python module's generated bindings, which the README's type-check
/// recipe writes (`componentize-py … bindings bindings`) and `build.sh` leaves out too.
const GENERATED_BINDINGS: &str = "bindings";

/// Whether a directory of this name holds what a build made or fetched, not sources.
fn is_built(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "target" | "node_modules" | "__pycache__")
}

/// Says so when the component `component` of module directory `dir` is older than a
/// source in it (`app.py`, `helpers/util.py`, `src/handlers/mod.rs`, `Cargo.toml`,
/// `wit/module.wit`, …; not what builds made, under `target/`, `.venv/`, `node_modules/`
/// or the top-level `bindings/`): a source edited and the build forgotten, which would pack or install
/// the code as it was. Links are not followed, and a bounded number of entries is read.
pub(crate) fn stale_component(dir: &Path, component: &str) -> Option<String> {
    let modified = |path: &Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
    };
    let built = modified(&dir.join(component))?;
    let mut sources = Vec::new();
    let mut pending = vec![(dir.to_owned(), 0)];
    let mut looked_at = 0;
    while let Some((at, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            looked_at += 1;
            if looked_at > SOURCES_LOOKED_AT {
                break;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match entry.file_type() {
                Ok(kind)
                    if kind.is_dir()
                        && depth < SOURCE_DEPTH
                        && !is_built(&name)
                        && !(depth == 0 && name == GENERATED_BINDINGS) =>
                {
                    pending.push((entry.path(), depth + 1));
                }
                Ok(kind) if kind.is_file() && is_source(&name) => sources.push(entry.path()),
                _ => {}
            }
        }
    }
    sources.sort();
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use super::stale_component;

    /// Writes `path` under `dir`, modified `age` seconds after the epoch's 1,700,000,000.
    fn write(dir: &Path, path: &str, age: u64) {
        let path = dir.join(path);
        let written = std::fs::create_dir_all(path.parent().unwrap_or(dir))
            .and_then(|()| std::fs::write(&path, "x"))
            .and_then(|()| std::fs::File::options().write(true).open(&path))
            .and_then(|file| {
                file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + age))
            });
        assert!(written.is_ok(), "{written:?}");
    }

    #[test]
    fn a_source_anywhere_in_the_module_newer_than_its_component_is_named_but_not_what_builds_made()
    {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = dir.path();
        write(dir, "module.wasm", 100);
        write(dir, "src/lib.rs", 50);
        write(dir, "app.py", 50);
        // What builds and tools write, however new, is no source.
        for made in [
            "target/wasm32-wasip2/release/build/out.rs",
            ".venv/lib/python3.12/site-packages/x.py",
            "node_modules/pkg/index.js",
            "__pycache__/app.py",
            "bindings/wit_world/__init__.py",
            "notes.txt",
        ] {
            write(dir, made, 200);
        }
        assert_eq!(stale_component(dir, "module.wasm"), None);
        for source in [
            "src/handlers/mod.rs",
            "Cargo.toml",
            "lib/util.py",
            "lib/util.js",
            "lib/bindings/util.py",
            "wit/module.wit",
        ] {
            write(dir, source, 200);
            let said = stale_component(dir, "module.wasm").unwrap_or_default();
            assert!(
                said.starts_with(&format!("`module.wasm` is older than `{source}`")),
                "{source}: {said}"
            );
            write(dir, source, 50);
        }
    }
}
