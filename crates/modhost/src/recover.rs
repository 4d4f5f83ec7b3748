//! Recovery: after a crash the state database is consistent by construction (SQLite), so
//! repairing a root means removing the files no record points at and noticing records
//! whose files are gone.

use std::fmt;
use std::path::{Path, PathBuf};

use modhost_state::{ModuleRecord, State, Status};

use crate::Result;
use crate::layout::{self, Layout};

/// What a recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Leftover directories (and half-written files) removed.
    pub removed: Vec<PathBuf>,
    /// Modules marked broken, with the reason.
    pub broken: Vec<(String, String)>,
    /// Leftover directories that could not be removed, with why: they take room, and
    /// nothing else (every later recovery tries again).
    pub stuck: Vec<(PathBuf, String)>,
}

impl Recovery {
    /// Whether there was nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.broken.is_empty() && self.stuck.is_empty()
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "removed {} leftover director", self.removed.len())?;
        f.write_str(if self.removed.len() == 1 { "y" } else { "ies" })?;
        for (rawname, reason) in &self.broken {
            write!(f, "; `{rawname}` is broken: {reason}")?;
        }
        for (path, reason) in &self.stuck {
            write!(
                f,
                "; cannot remove leftover `{}` ({reason}): no module uses it; remove it as a \
                 user allowed to",
                path.display()
            )?;
        }
        Ok(())
    }
}

/// How long a file written under a partial name may go untouched before it counts as
/// one a crash left: others are being written, by a compile or a reload in another
/// process, which take seconds at most.
const PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes from `dirs` the files a crash left half-written under a partial name (see
/// [`modhost_runtime::PARTIAL`]), recording them in `recovery`. Best effort: what cannot
/// be read or removed is left for the next recovery.
fn sweep_partial(dirs: &[PathBuf], recovery: &mut Recovery) {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        // Only a partial name is looked at further: the cache holds many other files.
        let partial = entries.flatten().filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(modhost_runtime::PARTIAL))
        });
        for entry in partial {
            let stale = entry
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_file)
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= PARTIAL_AGE);
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                recovery.removed.push(entry.path());
            }
        }
    }
}

/// How closely recovery looks at installed components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// That they exist: cheap enough for every time a root is opened.
    Present,
    /// That they still have the digest recorded at install: on demand (`modhost recover`).
    Digest,
}

/// Repairs the root. The caller holds the root's lock.
pub(crate) fn run(layout: &Layout, state: &State, check: Check) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    // Online installs download beside the root's directories, outside its lock: what an
    // interrupted one left goes once no process holds it.
    crate::online::clear_stale_downloads(&layout.root);
    sweep_partial(&[layout.cache(), layout.root.join("etc")], &mut recovery);
    let referenced = state.referenced_dirs()?;
    // A leftover that cannot be removed (made by another user, say) is reported and
    // left: it takes room and nothing else, and must never keep the modules from being
    // listed, changed or dispatched to.
    let remove = |path: PathBuf, recovery: &mut Recovery| match layout::remove_dir(&path) {
        Ok(()) => recovery.removed.push(path),
        Err(e) => {
            let reason = error_reason(&e);
            tracing::warn!("cannot remove leftover `{}`: {reason}", path.display());
            recovery.stuck.push((path, reason));
        }
    };
    for path in entries(&layout.staging(), &mut recovery) {
        remove(path, &mut recovery);
    }
    for (kind, base) in [("modules", layout.modules()), ("data", layout.data())] {
        for module in entries(&base, &mut recovery) {
            let rawname = module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut kept = 0;
            for dir in entries(&module, &mut recovery) {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if referenced.contains(&(rawname.clone(), kind, name)) {
                    kept += 1;
                } else {
                    remove(dir, &mut recovery);
                }
            }
            if kept == 0 && std::fs::read_dir(&module).is_ok_and(|mut d| d.next().is_none()) {
                remove(module, &mut recovery);
            }
        }
    }
    let mut broken = Vec::new();
    for record in state
        .modules()?
        .into_iter()
        .filter(|r| r.status != Status::Broken)
    {
        if let Some(reason) = unusable(layout, &record, check) {
            broken.push((record.rawname, reason));
        }
    }
    if !broken.is_empty() {
        let mut txn = state.begin()?;
        for (rawname, reason) in &broken {
            txn.set_status(rawname, Status::Broken, Some(reason))?;
        }
        txn.commit()?;
    }
    recovery.broken = broken;
    Ok(recovery)
}

/// Why the installed (or backed-up) version `record` cannot run as recorded: its
/// manifest, component or data directory is gone (or, checked for its `Digest`, its
/// component changed); `None` when it can.
pub(crate) fn unusable(layout: &Layout, record: &ModuleRecord, check: Check) -> Option<String> {
    let module_dir = layout.module_dir(&record.rawname, &record.module_dir);
    let component = match record.parse_manifest() {
        Ok(manifest) => module_dir.join(manifest.component),
        Err(e) => return Some(e.to_string()),
    };
    let data_dir = layout.data_dir(&record.rawname, &record.data_dir);
    if !component.is_file() {
        Some(format!("component `{}` is missing", component.display()))
    } else if !data_dir.is_dir() {
        Some(format!(
            "its data directory `{}` is missing",
            data_dir.display()
        ))
    } else if check == Check::Digest {
        match modhost_runtime::sha256_of(&component) {
            Ok(found) if found == record.component_sha256 => None,
            Ok(found) => Some(format!(
                "component `{}` has changed since it was installed (sha256 {found}, recorded {})",
                component.display(),
                record.component_sha256
            )),
            Err(e) => Some(e.to_string()),
        }
    } else {
        None
    }
}

/// The entries of `dir`; one that cannot be read is reported in `recovery` as stuck.
fn entries(dir: &Path, recovery: &mut Recovery) -> Vec<PathBuf> {
    let read = std::fs::read_dir(dir).and_then(|d| {
        d.map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
    });
    match read {
        Ok(paths) => paths,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!("cannot read `{}`: {e}", dir.display());
            recovery.stuck.push((dir.to_owned(), e.to_string()));
            Vec::new()
        }
    }
}

/// What went wrong removing a leftover, without its path (said beside it).
fn error_reason(error: &crate::Error) -> String {
    match error {
        crate::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
