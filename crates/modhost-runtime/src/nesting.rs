//! How deep a module's directories may nest under `/data` and the host directories it may
//! write. The host walks those trees — counting the quota, copying `/data` at an upgrade,
//! removing it at an uninstall — and a tree nested thousands deep needs a descriptor per
//! level (past the usual limit of 1,024 open files) and memory growing with the square of
//! its depth. Paths stay shorter than the system's `PATH_MAX` too: an administrator's
//! tools (`cp -a`, `rsync`, a backup) cannot copy a file with a longer one. A module's
//! `mkdir` or `rename` that would nest a directory deeper or longer fails in the guest
//! with `EDQUOT`, and nothing is left of it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, fstat, openat, statat};

/// The deepest a directory may lie below the directory it was written in.
pub const MAX_DIRECTORY_DEPTH: usize = 64;

/// The longest path a module's directory may have, from `/`: a file of the longest name
/// (255 bytes) in it still has a path shorter than Linux's `PATH_MAX` (4,096 bytes, its
/// terminating NUL included).
const MAX_DIRECTORY_PATH: usize = 4096 - 1 - 256;

/// Where a module's writable trees start, by device and inode.
pub(crate) struct Roots(Vec<(u64, u64)>);

impl Roots {
    /// The roots that are these directories (device and inode).
    pub(crate) fn of(ids: impl IntoIterator<Item = (u64, u64)>) -> Self {
        Roots(ids.into_iter().collect())
    }

    /// Whether `dir`, or a directory below it, lies deeper than [`MAX_DIRECTORY_DEPTH`]
    /// below a root; also when that cannot be told (no root above it within reach).
    /// Also when `dir`, or a directory below it, has a path longer than
    /// [`MAX_DIRECTORY_PATH`].
    pub(crate) fn too_deep(&self, dir: BorrowedFd<'_>) -> bool {
        let (Some(depth), Some(length)) = (self.depth_of(dir), path_length(dir)) else {
            return true;
        };
        match MAX_DIRECTORY_PATH.checked_sub(length) {
            Some(room) => deeper_than(dir, MAX_DIRECTORY_DEPTH - depth, room),
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

/// The length of the path of directory `dir` from `/`, as the system tells it; `None`
/// when it is too long to be told. 0 when it cannot be asked (no `/proc`): the depth
/// still bounds it then.
fn path_length(dir: BorrowedFd<'_>) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
    match rustix::fs::readlink(link, Vec::new()) {
        Ok(path) => Some(path.as_bytes().len()),
        Err(rustix::io::Errno::NAMETOOLONG) => None,
        Err(_) => Some(0),
    }
}

/// Whether a directory lies more than `levels` below `dir`, or its path is more than
/// `room` bytes longer than `dir`'s. One descriptor per level is open at a time, and
/// `levels` is bounded.
fn deeper_than(dir: BorrowedFd<'_>, levels: usize, room: usize) -> bool {
    let Some(top) = open_dir(dir, ".") else {
        return true;
    };
    // Each directory being listed, and how much longer its path is than `dir`'s.
    let mut stack: Vec<(OwnedFd, Dir, usize)> = Vec::new();
    match Dir::read_from(&top) {
        Ok(listing) => stack.push((top, listing, 0)),
        Err(_) => return true,
    }
    loop {
        // How far below `dir` the entries being listed lie.
        let level = stack.len();
        let Some((fd, listing, longer)) = stack.last_mut() else {
            break;
        };
        let longer = *longer;
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
        let child_longer = longer + 1 + name.to_bytes().len();
        if level > levels || child_longer > room {
            return true;
        }
        // Gone, or swapped for a link, since it was listed: nothing nests there.
        let Some(child) = open_dir(&*fd, name) else {
            continue;
        };
        match Dir::read_from(&child) {
            Ok(listing) => stack.push((child, listing, child_longer)),
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
        let roots = Roots::of(crate::disk::id_of(root.path()));
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

    #[test]
    fn a_directory_whose_path_would_pass_path_max_is_too_deep() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        let roots = Roots::of(crate::disk::id_of(root.path()));
        let name = "n".repeat(250);
        let mut path = root.path().to_owned();
        // Made by descriptor, as a module's `mkdirat` makes it: no path is ever that long.
        let mut dir = std::fs::File::open(root.path())?;
        let mut made = 0;
        loop {
            rustix::fs::mkdirat(&dir, name.as_str(), rustix::fs::Mode::from_raw_mode(0o700))?;
            dir = rustix::fs::openat(
                &dir,
                name.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )?
            .into();
            path.push(&name);
            made += 1;
            if roots.too_deep(dir.as_fd()) {
                break;
            }
            assert!(made < MAX_DIRECTORY_DEPTH, "never too long");
        }
        let length = path.as_os_str().len();
        assert!(
            length > super::MAX_DIRECTORY_PATH && length - 251 <= super::MAX_DIRECTORY_PATH,
            "too deep at {length} bytes"
        );
        // And so is the top of the subtree that reaches past it.
        let top = std::fs::File::open(root.path().join(&name))?;
        assert!(roots.too_deep(top.as_fd()));
        Ok(())
    }
}
