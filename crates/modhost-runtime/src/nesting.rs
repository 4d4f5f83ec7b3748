//! How deep a module's directories may nest under `/data` and the host directories it may
//! write. The host walks those trees — counting the quota, copying `/data` at an upgrade,
//! removing it at an uninstall — and a tree nested thousands deep needs a descriptor per
//! level (past the usual limit of 1,024 open files) and memory growing with the square of
//! its depth. A module's `mkdir` or `rename` that would nest a directory deeper fails in
//! the guest with `EDQUOT`, and nothing is left of it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, fstat, openat, statat};

/// The deepest a directory may lie below the directory it was written in.
pub const MAX_DIRECTORY_DEPTH: usize = 64;

/// Where a module's writable trees start, by device and inode.
pub(crate) struct Roots(Vec<(u64, u64)>);

impl Roots {
    /// The roots of `dirs`, as they are now.
    pub(crate) fn of(dirs: &[PathBuf]) -> Self {
        Roots(
            dirs.iter()
                .filter_map(|dir| std::fs::metadata(dir).ok())
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.dev(), m.ino())
                })
                .collect(),
        )
    }

    /// Whether `dir`, or a directory below it, lies deeper than [`MAX_DIRECTORY_DEPTH`]
    /// below a root; also when that cannot be told (no root above it within reach).
    pub(crate) fn too_deep(&self, dir: BorrowedFd<'_>) -> bool {
        match self.depth_of(dir) {
            Some(depth) => deeper_than(dir, MAX_DIRECTORY_DEPTH - depth),
            None => true,
        }
    }

    /// How far below a root `dir` lies, going up through `..` (which, for a directory
    /// open by descriptor, is where it really is, whatever links led to it); `None` past
    /// the limit.
    fn depth_of(&self, dir: BorrowedFd<'_>) -> Option<usize> {
        let mut current = open_dir(dir, ".")?;
        for depth in 0..=MAX_DIRECTORY_DEPTH {
            let stat = fstat(&current).ok()?;
            if self.0.contains(&(stat.st_dev, stat.st_ino)) {
                return Some(depth);
            }
            current = open_dir(&current, "..")?;
        }
        None
    }
}

/// Whether a directory lies more than `levels` below `dir`. One descriptor per level is
/// open at a time, and `levels` is bounded.
fn deeper_than(dir: BorrowedFd<'_>, levels: usize) -> bool {
    let Some(top) = open_dir(dir, ".") else {
        return true;
    };
    let mut stack: Vec<(OwnedFd, Dir)> = Vec::new();
    match Dir::read_from(&top) {
        Ok(listing) => stack.push((top, listing)),
        Err(_) => return true,
    }
    loop {
        // How far below `dir` the entries being listed lie.
        let level = stack.len();
        let Some((fd, listing)) = stack.last_mut() else {
            break;
        };
        let entry = match listing.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Ok(entry)) => entry,
            Some(Err(_)) => return true,
        };
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory),
            _ => false,
        };
        if !is_dir {
            continue;
        }
        if level > levels {
            return true;
        }
        // Gone, or swapped for a link, since it was listed: nothing nests there.
        let Some(child) = open_dir(&*fd, name) else {
            continue;
        };
        match Dir::read_from(&child) {
            Ok(listing) => stack.push((child, listing)),
            Err(_) => return true,
        }
    }
    false
}

/// Opens directory `path` relative to `at`, never through a link.
fn open_dir<P: rustix::path::Arg>(at: impl AsFd, path: P) -> Option<OwnedFd> {
    let flags =
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty()).ok()
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::{MAX_DIRECTORY_DEPTH, Roots};

    #[test]
    fn a_directory_past_the_depth_is_told_from_one_at_it() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        let roots = Roots::of(&[root.path().to_owned()]);
        let mut deepest = root.path().to_owned();
        for _ in 0..MAX_DIRECTORY_DEPTH {
            deepest.push("d");
        }
        std::fs::create_dir_all(&deepest)?;
        let top = std::fs::File::open(root.path().join("d"))?;
        assert!(!roots.too_deep(std::fs::File::open(&deepest)?.as_fd()));
        assert!(!roots.too_deep(top.as_fd()));
        std::fs::create_dir(deepest.join("d"))?;
        assert!(roots.too_deep(std::fs::File::open(deepest.join("d"))?.as_fd()));
        // A subtree that reaches past the depth makes its top too deep as well.
        assert!(roots.too_deep(top.as_fd()));
        // Outside every root: cannot be told, so too deep.
        let elsewhere = tempfile::tempdir()?;
        assert!(roots.too_deep(std::fs::File::open(elsewhere.path())?.as_fd()));
        Ok(())
    }
}
