//! Recovery: after a crash the state database is consistent by construction (SQLite), so
//! repairing a root means removing the files no record points at and noticing records
//! whose files are gone.

use std::fmt;
use std::path::PathBuf;

use modhost_state::{State, Status};

use crate::Result;
use crate::layout::{self, Layout, io};

/// What a recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Leftover directories (and half-written files) removed.
    pub removed: Vec<PathBuf>,
    /// Modules marked broken, with the reason.
    pub broken: Vec<(String, String)>,
}

impl Recovery {
    /// Whether there was nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.broken.is_empty()
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "removed {} leftover director", self.removed.len())?;
        f.write_str(if self.removed.len() == 1 { "y" } else { "ies" })?;
        for (rawname, reason) in &self.broken {
            write!(f, "; `{rawname}` is broken: {reason}")?;
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
    for entry in fs_err::read_dir(layout.staging()).map_err(io(&layout.staging()))? {
        let path = entry.map_err(io(&layout.staging()))?.path();
        layout::remove_dir(&path)?;
        recovery.removed.push(path);
    }
    for (kind, base) in [("modules", layout.modules()), ("data", layout.data())] {
        for module in fs_err::read_dir(&base).map_err(io(&base))? {
            let module = module.map_err(io(&base))?.path();
            let rawname = module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut kept = 0;
            for dir in fs_err::read_dir(&module).map_err(io(&module))? {
                let dir = dir.map_err(io(&module))?.path();
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if referenced.contains(&(rawname.clone(), kind, name)) {
                    kept += 1;
                } else {
                    layout::remove_dir(&dir)?;
                    recovery.removed.push(dir);
                }
            }
            if kept == 0 {
                layout::remove_dir(&module)?;
            }
        }
    }
    let mut broken = Vec::new();
    for record in state
        .modules()?
        .into_iter()
        .filter(|r| r.status != Status::Broken)
    {
        let module_dir = layout.module_dir(&record.rawname, &record.module_dir);
        let component = record
            .parse_manifest()
            .map(|m| module_dir.join(m.component));
        let reason = match component {
            Err(e) => Some(e.to_string()),
            Ok(path) if !path.is_file() => {
                Some(format!("component `{}` is missing", path.display()))
            }
            Ok(_) if !layout.data_dir(&record.rawname, &record.data_dir).is_dir() => {
                Some("its data directory is missing".to_owned())
            }
            Ok(path) if check == Check::Digest => match modhost_runtime::sha256_of(&path) {
                Ok(found) if found == record.component_sha256 => None,
                Ok(found) => Some(format!(
                    "component `{}` has changed since it was installed (sha256 {found}, recorded {})",
                    path.display(),
                    record.component_sha256
                )),
                Err(e) => Some(e.to_string()),
            },
            Ok(_) => None,
        };
        if let Some(reason) = reason {
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
