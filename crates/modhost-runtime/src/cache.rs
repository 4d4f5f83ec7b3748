//! Compiled components, kept on disk: [`Runtime::load`] maps an artifact compiled earlier
//! or compiles the component and stores one, and [`Runtime::trim`] bounds what is kept of
//! components nothing installed uses.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::Pre;
use crate::imports::export_name;
use crate::version::check_api_version;
use crate::{Error, Result, Runtime};

/// The start of the name of a file written under another name first and renamed into
/// place: one a crash left is recognised by it, and removed by `recover`.
pub const PARTIAL: &str = ".modhost-partial-";

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was compiled now, and the artifact was stored for next time.
    Compiled,
    /// It was mapped from an artifact compiled earlier.
    Cached,
}

/// A component ready to instantiate: compiled, linked, and type-checked against the WIT.
pub struct LoadedComponent {
    pub(crate) pre: Pre,
    sha256: String,
    origin: Origin,
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("sha256", &self.sha256)
            .field("origin", &self.origin)
            .finish()
    }
}

impl LoadedComponent {
    /// SHA-256 of the component file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether it was compiled now or mapped from the cache.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The names of the interfaces the component imports.
    pub fn imports(&self, engine: &Engine) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The functions the component exports, named as [`crate::exported_functions`]
    /// names them (e.g. `lifecycle.install`, `hooks.handle`).
    pub fn exports(&self, engine: &Engine) -> Vec<String> {
        use wasmtime::component::types::ComponentItem;
        let component = self.pre.instance_pre().component();
        let mut names = Vec::new();
        for (interface, item) in component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    for (function, item) in instance.exports(engine) {
                        if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                            names.push(export_name(interface, Some(function)));
                        }
                    }
                }
                ComponentItem::ComponentFunc(_) => names.push(export_name(interface, None)),
                _ => {}
            }
        }
        names
    }
}

/// The functions each of `imports` (top-level instance imports of `component`) asks
/// for, read from its compiled type.
fn imported_functions(
    engine: &Engine,
    component: &Component,
    imports: &[&str],
) -> Vec<(String, Vec<String>)> {
    use wasmtime::component::types::ComponentItem;
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| imports.contains(name))
        .filter_map(|(name, item)| match item.ty {
            ComponentItem::ComponentInstance(instance) => Some((
                name.to_owned(),
                instance
                    .exports(engine)
                    .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(function, _)| function.to_owned())
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

impl Runtime {
    /// Loads the component at `path`, mapping its compiled artifact if one exists and
    /// compiling (and storing) it otherwise. `sha256` may pass a digest already known
    /// (recorded at install) to skip reading the file.
    pub fn load(&self, path: &Path, sha256: Option<&str>) -> Result<LoadedComponent> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let (sha256, bytes) = match sha256 {
            Some(known) => (known.to_owned(), None),
            None => {
                let bytes = fs_err::read(path).map_err(io)?;
                (hex::encode(Sha256::digest(&bytes)), Some(bytes))
            }
        };
        let artifact = self
            .cache_dir
            .join(format!("{sha256}-{}.cwasm", self.compat));
        let cached = if artifact.is_file() {
            match self.map_artifact(&artifact) {
                Ok(component) => Some(component),
                // The process's want, not the artifact's fault: compiling would meet it too.
                Err(e) if crate::runtime::out_of_memory(&e) => return Err(load_failure(path, e)),
                Err(e) => {
                    tracing::warn!(artifact = %artifact.display(), "discarding unusable compiled component: {e}");
                    None
                }
            }
        } else {
            None
        };
        let (component, origin) = match cached {
            Some(component) => {
                tracing::debug!(artifact = %artifact.display(), "loaded precompiled component");
                // Compiled under another host, perhaps: one whose application gave an API
                // this one does not is refused naming it, not in the linker's words.
                let kind = component.component_type();
                let names = crate::TopLevel {
                    imports: kind
                        .imports(&self.engine)
                        .map(|(n, _)| n.to_owned())
                        .collect(),
                    exports: kind
                        .exports(&self.engine)
                        .map(|(n, _)| n.to_owned())
                        .collect(),
                };
                self.check_top_level(path, &names)?;
                self.check_functions(path, &names, |imports| {
                    Some(imported_functions(&self.engine, &component, imports))
                })?;
                (component, Origin::Cached)
            }
            None => {
                let bytes = match bytes {
                    Some(bytes) => bytes,
                    None => {
                        // Compiled code is cached under the recorded digest: a file that no
                        // longer has it must not be compiled and trusted under that name.
                        let bytes = fs_err::read(path).map_err(io)?;
                        let found = hex::encode(Sha256::digest(&bytes));
                        if found != sha256 {
                            return Err(Error::Load {
                                path: path.to_owned(),
                                message: format!(
                                    "it has changed since it was installed (sha256 {found}, recorded {sha256})"
                                ),
                            });
                        }
                        bytes
                    }
                };
                // Seconds or minutes of compiling are not spent on a component that could
                // not be linked here.
                self.check_imports(path, &bytes)?;
                tracing::info!(component = %path.display(), "compiling component");
                let component = Component::from_binary(&self.engine, &bytes)
                    .map_err(|e| load_failure(path, e))?;
                self.store_artifact(&component, &artifact)?;
                (component, Origin::Compiled)
            }
        };
        let api_version = check_api_version(&self.engine, &component, path)?;
        let load_err = |e: wasmtime::Error| load_failure(path, e);
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| self.unlinked(path, &e).unwrap_or_else(|| load_err(e)))?;
        let pre = Pre::new(api_version, instance_pre).map_err(load_err)?;
        Ok(LoadedComponent {
            pre,
            sha256,
            origin,
        })
    }

    /// The linking failure `error` as the application's, when it is an implementation
    /// missing from an interface of one of its capabilities (a function of another type,
    /// from a package built against another WIT, stays the package's).
    fn unlinked(&self, path: &Path, error: &wasmtime::Error) -> Option<Error> {
        let message = format!("{error:#}");
        let missing = message.contains("implementation is missing")
            || message.contains("matching implementation was not found");
        if !missing {
            return None;
        }
        let interface = self
            .capabilities
            .iter()
            .flat_map(|capability| capability.interfaces())
            .find(|interface| message.contains(&format!("`{interface}`")))?;
        Some(Error::Unlinked {
            path: path.to_owned(),
            interface,
            message,
        })
    }

    /// Maps an artifact this runtime wrote earlier.
    #[allow(unsafe_code)]
    fn map_artifact(&self, artifact: &Path) -> wasmtime::Result<Component> {
        // SAFETY: the artifact lives in the root's cache directory, which only modhost
        // writes, always atomically (temp file + rename) and always with bytes produced by
        // `Component::serialize`; wasmtime also checks that it was compiled by a
        // compatible engine before using it.
        unsafe { Component::deserialize_file(&self.engine, artifact) }
    }

    /// Writes the artifact beside its final name and renames it into place, so a reader
    /// never sees a partial file.
    fn store_artifact(&self, component: &Component, artifact: &Path) -> Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| Error::Engine(format!("cannot serialize a compiled component: {e}")))?;
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Error::CacheFull {
                    path: self.cache_dir.clone(),
                }
            }
            _ => Error::Io {
                path: artifact.to_owned(),
                source,
            },
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(PARTIAL)
            .tempfile_in(&self.cache_dir)
            .map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(artifact).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// How much compiled code of components nothing installed uses (what `scan` compiled, so
/// that installing after it compiles nothing) the cache keeps by default, in bytes.
pub const DEFAULT_CACHE_KEEP: u64 = 512 * 1024 * 1024;

impl Runtime {
    /// Bounds the cache: artifacts of the components in `in_use` stay; those of another
    /// engine go (they can never be mapped here); of the rest, the newest are kept while
    /// they total at most `keep` bytes, and older ones go. Links and other non-files are
    /// removed, never followed.
    pub fn trim(&self, in_use: &BTreeSet<String>, keep: u64) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        let suffix = format!("-{}.cwasm", self.compat);
        let mut unclaimed = Vec::new();
        for entry in fs_err::read_dir(&self.cache_dir).map_err(io(&self.cache_dir))? {
            let entry = entry.map_err(io(&self.cache_dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((digest, _)) = name.split_once('-') else {
                continue;
            };
            if !name.ends_with(".cwasm") || in_use.contains(digest) {
                continue;
            }
            let meta = fs_err::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_file() && name.ends_with(&suffix) {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                unclaimed.push((modified, meta.len(), path));
            } else {
                remove(&path).map_err(io(&path))?;
            }
        }
        unclaimed.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
        let mut total = 0u64;
        for (_, len, path) in unclaimed {
            total = total.saturating_add(len);
            if total > keep {
                remove(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}

/// Removes `path`, which may already be gone.
fn remove(path: &Path) -> std::io::Result<()> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The lower-case hex sha256 of the file at `path`, as components are recorded.
pub fn sha256_of(path: &Path) -> Result<String> {
    let bytes = fs_err::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Why the component at `path` could not be loaded: the component's fault, or the
/// process's when the system refused memory (too many hosts open, say).
fn load_failure(path: &Path, error: wasmtime::Error) -> Error {
    if crate::runtime::out_of_memory(&error) {
        return Error::Engine(format!(
            "the system refused memory loading `{}`: {error:#} ({})",
            path.display(),
            crate::runtime::mappings_hint()
        ));
    }
    Error::Load {
        path: path.to_owned(),
        message: format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// Writes a fake artifact of `len` bytes, `age` seconds old.
    fn artifact(dir: &Path, name: &str, len: usize, age: u64) -> std::path::PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).and_then(|f| {
            f.set_len(len as u64)?;
            f.set_modified(SystemTime::now() - Duration::from_secs(age))
        });
        assert!(file.is_ok(), "{file:?}");
        path
    }

    #[test]
    fn trim_keeps_what_is_used_and_the_newest_within_the_bound() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = Runtime::new(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let name = |digest: &str| format!("{digest}-{}.cwasm", runtime.compat);
        let used = artifact(dir.path(), &name("used"), 4000, 1000);
        let newest = artifact(dir.path(), &name("newest"), 600, 100);
        let newer = artifact(dir.path(), &name("newer"), 400, 200);
        let oldest = artifact(dir.path(), &name("oldest"), 100, 300);
        let other_engine = artifact(dir.path(), "newer-0123456789abcdef.cwasm", 10, 0);
        let outside = artifact(dir.path(), "outside", 10, 0);
        let link = dir.path().join(name("link"));
        assert!(std::os::unix::fs::symlink(&outside, &link).is_ok());

        let in_use = BTreeSet::from(["used".to_owned()]);
        assert!(runtime.trim(&in_use, 1000).is_ok());
        assert!(used.exists(), "in use, whatever its size");
        assert!(newest.exists() && newer.exists(), "the newest 1000 bytes");
        assert!(!oldest.exists(), "past the bound");
        assert!(
            !other_engine.exists(),
            "another engine's code is never mapped here"
        );
        assert!(link.symlink_metadata().is_err(), "a link is removed");
        assert!(outside.exists(), "not followed");

        assert!(runtime.trim(&in_use, 0).is_ok());
        assert!(used.exists() && !newest.exists() && !newer.exists());
    }

    #[test]
    fn memory_the_system_refuses_is_the_processs_fault_not_the_components() {
        let path = Path::new("m.wasm");
        let refused = wasmtime::Error::from(std::io::Error::from_raw_os_error(12))
            .context("unable to make memory executable");
        match load_failure(path, refused) {
            Error::Engine(message) => assert!(
                message.starts_with("the system refused memory loading `m.wasm`: ")
                    && message.contains("vm.max_map_count")
                    && message.contains("hosts are open in this process"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        let invalid = wasmtime::Error::msg("invalid leading byte in type definition");
        assert!(matches!(load_failure(path, invalid), Error::Load { .. }));
    }
}
