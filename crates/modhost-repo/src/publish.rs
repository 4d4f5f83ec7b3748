//! The output directory of `repo build`, published in one atomic step. Each build is
//! written into a directory of its own under [`BUILDS`], and [`CURRENT`] — a symbolic
//! link to it — is swapped by a single rename. `public` and `private` are links through
//! `current`, made once: a web server's root stays `OUT/public`, and every request sees
//! the whole of one build or the whole of the next, never a file missing between them.
//! The previous build is kept until the next one, so that a request which resolved
//! `current` just before a swap still finds its file.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use modhost_update::index::MAX_INDEX;
use modhost_update::{Index, RELEASE_DOCUMENT, ReleaseDocument};

use crate::error::{Error, Result, file_error};

use crate::{PRIVATE, PUBLIC};

/// The link to the build being published, swapped by one rename: `current -> builds/SERIAL`.
pub const CURRENT: &str = "current";
/// The directory of the builds, one directory each, named by its release serial.
pub const BUILDS: &str = "builds";

/// What staging directories and retired parts under [`BUILDS`] are named with.
const STAGE_PREFIX: &str = ".build-";
const RETIRED_PREFIX: &str = ".retired-";

/// A build's output directory, its layout checked and locked against another build.
pub(crate) struct Output {
    out: PathBuf,
    builds: PathBuf,
    /// Held until the build is published: two builds into one directory take turns.
    _lock: File,
}

impl Output {
    /// Checks that `out` holds nothing a build would replace but what builds wrote, then
    /// creates `builds/` and takes its lock.
    pub(crate) fn open(out: &Path) -> Result<Output> {
        let made = !out.exists();
        fs_err::create_dir_all(out).map_err(file_error(out))?;
        // `public` is a link through `out`: a web server running as another user must
        // pass through it. One the publisher made is theirs to set.
        if made {
            std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
                .map_err(file_error(out))?;
        }
        check_link(out, CURRENT, None)?;
        for part in [PUBLIC, PRIVATE] {
            check_link(out, part, Some(part))?;
        }
        let builds = out.join(BUILDS);
        match fs_err::symlink_metadata(&builds) {
            Ok(metadata) if !metadata.is_dir() => {
                return Err(foreign(&builds, "it is not a directory"));
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(file_error(&builds)(e)),
            _ => fs_err::create_dir_all(&builds).map_err(file_error(&builds))?,
        }
        // A web server reads the builds as another user, whatever the publisher's umask
        // (077 on hardened hosts) made of them.
        std::fs::set_permissions(&builds, std::fs::Permissions::from_mode(0o755))
            .map_err(file_error(&builds))?;
        let path = builds.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(file_error(&path))?;
        Ok(Output {
            out: out.to_owned(),
            builds,
            _lock: lock,
        })
    }

    /// The serial the next build must pass: the one the published release document
    /// carries, and every build directory's.
    pub(crate) fn last_serial(&self) -> u64 {
        let published = self.last_release().map_or(0, |release| release.serial);
        self.entries()
            .iter()
            .filter_map(|name| name.parse::<u64>().ok())
            .fold(published, u64::max)
    }

    /// The release document published last, if one is there and readable.
    pub(crate) fn last_release(&self) -> Option<ReleaseDocument> {
        fs_err::read(self.out.join(PUBLIC).join(RELEASE_DOCUMENT))
            .ok()
            .and_then(|bytes| ReleaseDocument::parse(&bytes).ok())
    }

    /// A new, empty directory to write a build into, removed unless it is published.
    pub(crate) fn stage(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(STAGE_PREFIX)
            .tempdir_in(&self.builds)
            .map_err(file_error(&self.builds))
    }

    /// Publishes the build written into `stage` as build `serial`: it becomes
    /// `builds/SERIAL`, `current` is swapped to it in one rename, `public` and `private`
    /// are made links through `current` if they are not yet, and builds older than the
    /// one it replaces are removed.
    pub(crate) fn publish(&self, stage: tempfile::TempDir, serial: u64) -> Result<()> {
        let name = serial.to_string();
        let dir = self.builds.join(&name);
        // Web servers read it as another user, whatever the umask made of what was
        // written; the private part inside stays 0700.
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(file_error(stage.path()))?;
        readable_by_all(&stage.path().join(PUBLIC))?;
        fs_err::rename(stage.path(), &dir).map_err(file_error(&dir))?;
        // Renamed away: nothing is left for the guard to remove.
        drop(stage);
        let current = self.out.join(CURRENT);
        let previous = fs_err::read_link(&current)
            .ok()
            .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()));
        let swap = self.out.join(format!(".{CURRENT}-{name}"));
        let linked = symlink(Path::new(BUILDS).join(&name), &swap)
            .and_then(|()| std::fs::rename(&swap, &current));
        if let Err(e) = linked {
            let _ = std::fs::remove_file(&swap);
            return Err(file_error(&current)(e));
        }
        for part in [PUBLIC, PRIVATE] {
            self.link(part)?;
        }
        // A build killed between making its link and renaming it over `current` left the
        // link behind: it names a build that is gone, or soon will be.
        let swaps = format!(".{CURRENT}-");
        for entry in fs_err::read_dir(&self.out).into_iter().flatten().flatten() {
            let stray = entry.file_name().to_string_lossy().starts_with(&swaps);
            if stray && entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for entry in self.entries() {
            let keep = entry == name || Some(&entry) == previous.as_ref();
            let ours = entry.bytes().all(|b| b.is_ascii_digit())
                || entry.starts_with(STAGE_PREFIX)
                || entry.starts_with(RETIRED_PREFIX);
            if ours && !keep {
                let path = self.builds.join(&entry);
                // The build is published: an old one left behind only takes room.
                if let Err(e) = fs_err::remove_dir_all(&path) {
                    tracing::warn!("{e}");
                }
            }
        }
        Ok(())
    }

    /// Makes `out/part` the link `current/part`; a directory of the layout before builds
    /// had directories of their own is moved away (and removed with the old builds).
    fn link(&self, part: &str) -> Result<()> {
        let link = self.out.join(part);
        let target = Path::new(CURRENT).join(part);
        match fs_err::symlink_metadata(&link) {
            Ok(metadata) if metadata.file_type().is_symlink() => return Ok(()),
            Ok(_) => {
                let retired = self.builds.join(format!("{RETIRED_PREFIX}{part}"));
                fs_err::rename(&link, &retired).map_err(file_error(&link))?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(&link)(e)),
        }
        symlink(&target, &link).map_err(file_error(&link))
    }

    /// The names under `builds/`.
    fn entries(&self) -> Vec<String> {
        fs_err::read_dir(&self.builds)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// Makes what a build wrote under `dir` readable by any user (directories 0755, files
/// 0644), as a web server running as another user reads it. A build writes only
/// directories and regular files there; anything else is left as it is, never followed.
fn readable_by_all(dir: &Path) -> Result<()> {
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(file_error(&dir))?;
        for entry in fs_err::read_dir(&dir).map_err(file_error(&dir))? {
            let entry = entry.map_err(file_error(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(file_error(&path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                    .map_err(file_error(&path))?;
            }
        }
    }
    Ok(())
}

/// Refuses `out/name` unless it is missing or what a build made there: the link
/// `current/part` (`builds/SERIAL` for [`CURRENT`] itself, whose `part` is `None`), or for
/// a part, an empty directory or one an earlier build wrote before builds had directories
/// of their own (a modhost `index.json` in `public`, a `groups.toml` in `private`).
fn check_link(out: &Path, name: &str, part: Option<&str>) -> Result<()> {
    let path = out.join(name);
    let metadata = match fs_err::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(file_error(&path)(e)),
    };
    if metadata.file_type().is_symlink() {
        let target = fs_err::read_link(&path).map_err(file_error(&path))?;
        let ours = match part {
            Some(part) => target == Path::new(CURRENT).join(part),
            None => {
                target.parent() == Some(Path::new(BUILDS))
                    && target
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            }
        };
        return if ours {
            Ok(())
        } else {
            Err(foreign(&path, "it is a link to somewhere else"))
        };
    }
    let Some(part) = part.filter(|_| metadata.is_dir()) else {
        return Err(foreign(&path, "it is not a directory"));
    };
    let ours = if part == PUBLIC {
        let index = path.join(modhost_update::index::FILE);
        fs_err::metadata(&index).is_ok_and(|m| m.is_file() && m.len() <= MAX_INDEX)
            && fs_err::read(&index).is_ok_and(|bytes| Index::parse(&bytes).is_ok())
    } else {
        path.join("groups.toml").is_file()
    };
    let empty = fs_err::read_dir(&path)
        .map(|mut entries| entries.next().is_none())
        .map_err(file_error(&path))?;
    if ours || empty {
        Ok(())
    } else {
        Err(foreign(&path, "it holds files"))
    }
}

/// The refusal to replace `path`, which a build did not write.
fn foreign(path: &Path, what: &str) -> Error {
    Error::File {
        path: path.to_owned(),
        message: format!(
            "{what}, not a part `repo build` wrote; it would be replaced whole: move it away \
             or build into another directory"
        ),
    }
}
