//! Recovery: after a crash the state database is consistent by construction (SQLite), so
//! repairing a root means removing the leftovers the interrupted change listed in its
//! intent (see [`crate::intent`]) that no record points at, and noticing records whose
//! files are gone.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use modhost_state::{ModuleRecord, State, Status};

use crate::Result;
use crate::intent::{self, Kind, Listed, Role};
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
    /// Directories of the root that could not be read, with why: what they hold was
    /// neither swept nor judged.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Directories under `modules/` and `data/` that no record names and no interrupted
    /// change made: kept (a database restored apart from them leaves them so).
    pub unclaimed: Vec<PathBuf>,
}

impl Recovery {
    /// Whether there was nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.broken.is_empty()
            && self.stuck.is_empty()
            && self.unreadable.is_empty()
            && self.unclaimed.is_empty()
    }

    /// Whether it changed anything: removed a leftover or marked a module broken.
    pub fn repaired(&self) -> bool {
        !self.removed.is_empty() || !self.broken.is_empty()
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = Vec::new();
        if !self.removed.is_empty() {
            let n = self.removed.len();
            said.push(format!(
                "removed {n} leftover director{}",
                if n == 1 { "y" } else { "ies" }
            ));
        }
        for (rawname, reason) in &self.broken {
            said.push(format!("`{rawname}` is broken: {reason}"));
        }
        for (path, reason) in &self.stuck {
            said.push(format!(
                "cannot remove leftover `{}` ({reason}): no module uses it; remove it as a \
                 user allowed to",
                path.display()
            ));
        }
        for (path, reason) in &self.unreadable {
            said.push(format!(
                "cannot read `{}` ({reason}): what it holds was not looked at",
                path.display()
            ));
        }
        if !self.unclaimed.is_empty() {
            const SHOWN: usize = 3;
            let n = self.unclaimed.len();
            let mut paths: Vec<String> = self
                .unclaimed
                .iter()
                .take(SHOWN)
                .map(|path| format!("`{}`", path.display()))
                .collect();
            if n > SHOWN {
                paths.push(format!("{} more", n - SHOWN));
            }
            said.push(format!(
                "kept {n} director{} that no record names and no interrupted change made \
                 ({}): was modhost.db restored apart from modules/ and data/? a recovery \
                 told to remove unclaimed directories removes them, if nothing needs them",
                if n == 1 { "y" } else { "ies" },
                paths.join(", ")
            ));
        }
        f.write_str(&said.join("; "))
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

/// How [`Host::recover_with`](crate::Host::recover_with) proceeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Remove the directories under `modules/` and `data/` that no record names and no
    /// interrupted change made, which recovery otherwise keeps: for an administrator who
    /// has made sure nothing needs them (no backup of the state database names them).
    pub remove_unclaimed: bool,
}

/// How closely recovery looks at installed components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// That they exist: cheap enough for every time a root is opened.
    Present,
    /// That they still have the digest recorded at install: on demand (`modhost recover`).
    Digest,
}

/// Repairs the root, removing what no record names and no change made only as
/// `options` say. The caller holds the root's lock.
pub(crate) fn run(
    layout: &Layout,
    state: &State,
    check: Check,
    options: RecoverOptions,
) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    // Online installs download beside the root's directories, outside its lock: what an
    // interrupted one left goes once no process holds it.
    crate::online::clear_stale_downloads(&layout.root);
    sweep_partial(&[layout.cache(), layout.root.join("etc")], &mut recovery);
    let referenced = state.referenced_dirs()?;
    let named = |listed: &Listed| match &listed.dir {
        Some(dir) => referenced.contains(&(listed.rawname.clone(), listed.kind, dir.clone())),
        None => referenced
            .iter()
            .any(|(name, kind, _)| *name == listed.rawname && *kind == listed.kind),
    };
    // Said once per process: a host opened by every worker of an application would say
    // it again at each.
    let warn_once = |what: String| {
        static SAID: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
        let mut said = SAID
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if said.insert(what.clone()) {
            tracing::warn!("{what}");
        }
    };
    // A leftover that cannot be removed (made by another user, say) is reported and
    // left: it takes room and nothing else, and must never keep the modules from being
    // listed, changed or dispatched to.
    let remove = |path: PathBuf, recovery: &mut Recovery| match layout::remove_dir(&path) {
        Ok(()) => {
            recovery.removed.push(path);
            true
        }
        Err(e) => {
            let reason = error_reason(&e);
            warn_once(format!(
                "cannot remove leftover `{}`: {reason}",
                path.display()
            ));
            recovery.stuck.push((path, reason));
            false
        }
    };
    // What an interrupted change listed and no record names is its leftover. An intent
    // whose leftovers cannot all go stays, listing only those, for the next recovery to
    // try again; one that cannot be read now stays as it is.
    let mut intents_kept = BTreeSet::new();
    let staged = entries(&layout.staging(), &mut recovery);
    let noted = state.noted_intent()?;
    for path in staged.iter().filter(|path| is_intent(path)) {
        let said = match intent::read(path) {
            Ok(said) => said,
            // Not a file modhost writes (a link, a FIFO): swept below, unread.
            Err(_) if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) => continue,
            Err(e) => {
                recovery.unreadable.push((path.clone(), error_reason(&e)));
                intents_kept.insert(path.clone());
                continue;
            }
        };
        // How far the change went, the database says (see `crate::intent`): which of
        // what it listed are leftovers, if it can tell.
        let noted_it = noted.is_some() && noted == intent::id_of(path);
        let replaced: fn(&Listed) -> bool = |listed| listed.role == Role::Replaced;
        let made: fn(&Listed) -> bool = |listed| listed.role == Role::Made;
        let leftover: Option<fn(&Listed) -> bool> = match said.kind {
            Some(Kind::Leftovers) => Some(|_| true),
            Some(Kind::After(_)) if noted_it => Some(replaced),
            // The database from just before the change: restored after its commit (which
            // the intent says), or as the crash left it.
            Some(Kind::After(before)) if noted == before => {
                Some(if said.committed { replaced } else { made })
            }
            // No first line modhost writes whole (a crash cut it short before anything
            // it would list was made): swept below, as any other leftover of staging/.
            None => continue,
            Some(Kind::After(_)) => None,
        };
        let Some(leftover) = leftover else {
            // A database from another time (restored apart from the root's directories)
            // cannot tell: nothing is swept, and the intent stays for the database it
            // belongs to, unless what no record names is to go anyway.
            if !options.remove_unclaimed {
                intents_kept.insert(path.clone());
            }
            continue;
        };
        let mut removed = Vec::new();
        let mut left = Vec::new();
        for listed in said.listed.iter().filter(|l| leftover(l) && !named(l)) {
            let dir = listed.path(layout);
            // Never through a link in a module's place (said below), and only what is
            // there counts as removed.
            let beyond_a_link = listed.dir.is_some()
                && dir
                    .parent()
                    .and_then(|module| std::fs::symlink_metadata(module).ok())
                    .is_some_and(|m| m.is_symlink());
            if beyond_a_link || std::fs::symlink_metadata(&dir).is_err() {
                continue;
            }
            if remove(dir.clone(), &mut recovery) {
                removed.push(dir);
            } else {
                left.push(dir);
            }
        }
        layout::sync_parents(removed.iter());
        if !left.is_empty() {
            intents_kept.insert(path.clone());
            if let Err(e) = intent::keep_only(path, &layout.root, Role::Made, &left) {
                warn_once(e.to_string());
            }
        }
    }
    for path in staged {
        if !intents_kept.contains(&path) {
            remove(path, &mut recovery);
        }
    }
    for (kind, base) in [("modules", layout.modules()), ("data", layout.data())] {
        for module in entries(&base, &mut recovery) {
            let rawname = module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A link here is never followed: what it leads to is not the root's to sweep.
            // A module's own is left, and said (its changes are refused until a directory
            // is back in its place); any other link goes, as a link.
            if std::fs::symlink_metadata(&module).is_ok_and(|m| m.is_symlink()) {
                if referenced.iter().any(|(name, _, _)| *name == rawname) {
                    warn_once(format!(
                        "`{}` is a link, which modhost never follows: `{rawname}` cannot be \
                         changed until a directory is back in its place (to keep it on \
                         another disk, mount that disk there)",
                        module.display()
                    ));
                } else {
                    remove(module, &mut recovery);
                }
                continue;
            }
            for dir in entries(&module, &mut recovery) {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // A leftover that could not be removed is said as one already.
                let stuck = recovery.stuck.iter().any(|(path, _)| dir.starts_with(path));
                if stuck || referenced.contains(&(rawname.clone(), kind, name)) {
                    continue;
                }
                if options.remove_unclaimed {
                    remove(dir, &mut recovery);
                } else {
                    recovery.unclaimed.push(dir);
                }
            }
            // An empty one holds nothing to lose.
            if std::fs::read_dir(&module).is_ok_and(|mut d| d.next().is_none()) {
                remove(module, &mut recovery);
            }
        }
    }
    // Kept, and said whatever the command: no change of this root listed them, so they
    // are not a crash's; a database restored apart from the root's directories (from
    // another time, or another root) leaves them so.
    if let Some(first) = recovery.unclaimed.first() {
        let n = recovery.unclaimed.len();
        warn_once(format!(
            "found {n} director{} under modules/ and data/ that no record of the state \
             database names and no interrupted change made (the first: `{}`): a modhost.db \
             restored apart from the root's modules/ and data/ leaves them so, and restoring \
             them together mends it (a crash of a modhost that kept no intents does too); \
             they are left as they are, unless a recovery is told to remove unclaimed \
             directories, if nothing needs them",
            if n == 1 { "y" } else { "ies" },
            first.display()
        ));
    }
    for (path, reason) in &recovery.unreadable {
        warn_once(format!("cannot read `{}`: {reason}", path.display()));
    }
    let mut broken = Vec::new();
    for record in state
        .modules()?
        .into_iter()
        .filter(|r| r.status != Status::Broken)
    {
        // Only what is known to be gone or changed marks a module broken, a status that
        // stays: a file that cannot be looked at now (a permission, a disk's error) may
        // be back once that is mended.
        match unusable(layout, &record, check) {
            Ok(None) => {}
            Ok(Some(reason)) => broken.push((record.rawname, reason)),
            Err(reason) => warn_once(format!(
                "cannot check module `{}`'s files: {reason}",
                record.rawname
            )),
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
/// component changed); `Ok(None)` when it can, `Err` when that cannot be told (a file
/// that cannot be looked at).
pub(crate) fn unusable(
    layout: &Layout,
    record: &ModuleRecord,
    check: Check,
) -> std::result::Result<Option<String>, String> {
    let module_dir = layout.module_dir(&record.rawname, &record.module_dir);
    let component = match record.parse_manifest() {
        Ok(manifest) => module_dir.join(manifest.component),
        Err(e) => return Ok(Some(e.to_string())),
    };
    let data_dir = layout.data_dir(&record.rawname, &record.data_dir);
    // Followed, as the sandbox follows them: a data directory an administrator moved
    // and linked back is there.
    let there = |path: &Path, is: fn(&std::fs::Metadata) -> bool| match std::fs::metadata(path) {
        Ok(metadata) => Ok(is(&metadata)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("`{}`: {e}", path.display())),
    };
    if !there(&component, std::fs::Metadata::is_file)? {
        return Ok(Some(format!(
            "component `{}` is missing",
            component.display()
        )));
    }
    if !there(&data_dir, std::fs::Metadata::is_dir)? {
        return Ok(Some(format!(
            "its data directory `{}` is missing",
            data_dir.display()
        )));
    }
    if check == Check::Present {
        return Ok(None);
    }
    match modhost_runtime::sha256_of(&component) {
        Ok(found) if found == record.component_sha256 => Ok(None),
        Ok(found) => Ok(Some(format!(
            "component `{}` has changed since it was installed (sha256 {found}, recorded {})",
            component.display(),
            record.component_sha256
        ))),
        Err(e) => Err(e.to_string()),
    }
}

/// Why the backup `record` cannot be rolled back to, if it cannot: [`unusable`], with a
/// backup that cannot be looked at counted as one that cannot be used.
pub(crate) fn backup_unusable(
    layout: &Layout,
    record: &ModuleRecord,
    check: Check,
) -> Option<String> {
    unusable(layout, record, check)
        .unwrap_or_else(|unreadable| Some(format!("it cannot be checked: {unreadable}")))
}

/// Whether `path`, in `staging/`, is a change's intent.
fn is_intent(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(intent::PREFIX))
}

/// The entries of `dir`; one that cannot be read is reported in `recovery`.
fn entries(dir: &Path, recovery: &mut Recovery) -> Vec<PathBuf> {
    let read = std::fs::read_dir(dir).and_then(|d| {
        d.map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
    });
    match read {
        Ok(paths) => paths,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            recovery.unreadable.push((dir.to_owned(), e.to_string()));
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
