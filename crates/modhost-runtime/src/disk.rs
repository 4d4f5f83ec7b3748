//! What a module may keep on disk: a byte and an entry quota over its `/data` and the host
//! directories it may write, counted without following a link, and charged while a call
//! runs so that a write past it fails inside the guest (`EDQUOT`), not after the call.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, openat, statat};
use rustix::io::Errno;

/// What one module may keep in `/data` and its writable granted directories together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskQuota {
    /// Bytes of file content (a sparse file counts at its full length).
    pub bytes: u64,
    /// Files, directories and links.
    pub entries: u64,
}

/// The default quota: 256 MiB in 10,000 entries.
pub const DEFAULT_DISK_QUOTA: DiskQuota = DiskQuota {
    bytes: 256 << 20,
    entries: 10_000,
};

impl Default for DiskQuota {
    fn default() -> Self {
        DEFAULT_DISK_QUOTA
    }
}

/// What a module keeps on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes of file content.
    pub bytes: u64,
    /// Files, directories and links (the directories themselves not counted).
    pub entries: u64,
}

/// Adds up what is kept under each of `dirs`, never following a link: a link counts as an
/// entry, what it points at does not. A directory that does not exist, or is a link
/// itself, holds nothing.
pub fn disk_usage(dirs: &[PathBuf]) -> std::io::Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    for dir in dirs {
        add_dir(dir, None, &mut usage)?;
    }
    Ok(usage)
}

/// A directory a module may write, and which directory it was (device and inode) when its
/// sandbox opened it, if it could be told.
pub(crate) type Writable = (PathBuf, Option<(u64, u64)>);

/// The device and inode of directory `path`, not following a link in its place.
pub(crate) fn id_of(path: &Path) -> Option<(u64, u64)> {
    let fd = open_dir(rustix::fs::CWD, path.as_os_str()).ok()?;
    id(&fd)
}

/// The device and inode of the file open as `fd`.
pub(crate) fn id(fd: impl AsFd) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
}

/// Of `dirs`, those a count walks: a directory granted twice (`/k` and `/k/`, one
/// directory) or inside another the module may write (`/h` and `/h/sub`) is counted once,
/// with the one holding it.
fn walked_once(dirs: &[Writable]) -> Vec<Writable> {
    let inside = |dir: &Path, other: &Path| dir.starts_with(other) && dir != other;
    dirs.iter()
        .enumerate()
        .filter(|(at, (dir, pinned))| {
            let again = dirs[..*at]
                .iter()
                .any(|(_, other_pin)| pinned.is_some() && other_pin == pinned);
            !again && !dirs.iter().any(|(other, _)| inside(dir, other))
        })
        .map(|(_, writable)| writable.clone())
        .collect()
}

/// Adds what is kept under `dir`. When it was `pinned` to a directory, a path that leads to
/// another one now (swapped for a link or another directory while sandboxes held the
/// first) is an error: what the module writes there would not be counted.
fn add_dir(dir: &Path, pinned: Option<(u64, u64)>, usage: &mut DiskUsage) -> std::io::Result<()> {
    let moved = || {
        std::io::Error::other(format!(
            "`{}` is no longer the directory the module's sandbox was given",
            dir.display()
        ))
    };
    match open_dir(rustix::fs::CWD, dir.as_os_str()) {
        Ok(fd) if pinned.is_some() && id(&fd) != pinned => Err(moved()),
        Ok(fd) => add_tree(fd, usage),
        Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) if pinned.is_some() => Err(moved()),
        Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Adds the tree open as `fd`: every call is relative to a directory's descriptor, and
/// each directory is opened with `O_NOFOLLOW`, so a directory swapped for a link while the
/// walk runs is not followed. Depth first, one directory per level open at a time: a
/// directory of thousands of directories holds no descriptor for each.
fn add_tree(fd: OwnedFd, usage: &mut DiskUsage) -> std::io::Result<()> {
    let listing = Dir::read_from(&fd)?;
    let mut stack = vec![(fd, listing)];
    while let Some((fd, listing)) = stack.last_mut() {
        let Some(entry) = listing.next() else {
            stack.pop();
            continue;
        };
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let stat = match statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed since it was listed: it holds nothing now.
            Err(Errno::NOENT) => continue,
            Err(errno) => return Err(errno.into()),
        };
        usage.entries += 1;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {
                usage.bytes = usage
                    .bytes
                    .saturating_add(u64::try_from(stat.st_size).unwrap_or(0));
            }
            FileType::Directory => match open_dir(&*fd, OsStr::from_bytes(name.to_bytes())) {
                Ok(child) => {
                    let listing = Dir::read_from(&child)?;
                    stack.push((child, listing));
                }
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                Err(errno) => return Err(errno.into()),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Opens directory `path` relative to `at`, refusing a link in its place.
fn open_dir(at: impl AsFd, path: &OsStr) -> rustix::io::Result<OwnedFd> {
    let flags =
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty())
}

/// A write refused by the quota: the guest sees `EDQUOT`.
#[derive(Debug, thiserror::Error)]
#[error("the module's disk quota is used up")]
pub(crate) struct OverQuota;

/// A module's account of its disk, shared by all its sandboxes ([`Budgets`]): counted at
/// the first write once its calls begin (most calls write nothing, and pay nothing), then
/// charged as calls grow files and add entries — calls at once charge the same account.
/// Shared with the file streams a call opens, which outlive one import.
pub(crate) struct Budget {
    rawname: String,
    dirs: Vec<Writable>,
    /// Those of `dirs` a count walks: each once (see [`walked_once`]).
    walked: Vec<Writable>,
    account: Mutex<Account>,
    /// How many times something may have shrunk (see [`Budget::counts`]).
    shrinks: std::sync::atomic::AtomicU64,
    /// The files the module's calls have opened, while they are open: one removed while
    /// open still holds its bytes, which no walk of the directories sees.
    open: Mutex<HashMap<usize, Weak<std::fs::File>>>,
    /// How many times the directories were walked.
    #[cfg(test)]
    walks: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Account {
    quota: DiskQuota,
    /// `None` until counted in these calls, and again every so often.
    used: Option<DiskUsage>,
    /// Whether these calls have been refused a write already (logged once).
    refused: bool,
    /// Whether these calls could not count the module's files already (logged once).
    uncounted: bool,
    /// Whether these calls found the disk full already (logged once).
    full: bool,
    /// The module's calls under way: they share the account, so that calls at once
    /// cannot each write up to the quota.
    calls: usize,
    /// The bytes charged since `used` was last counted from the disk.
    since_count: u64,
    /// The entries charged since then.
    entries_since_count: u64,
    /// Whether something may have shrunk since `used` was counted (a removal, a
    /// truncation, a failed write): `used` may then be above what is on disk, and is
    /// counted again before a write is refused for it.
    stale: bool,
    /// What the quota left when `used` was last counted.
    room: DiskUsage,
}

impl Account {
    /// How many bytes and entries may be charged before what is on disk is counted again:
    /// a sixteenth of the room left at the last count (at most every [`RECOUNT_EVERY`]).
    /// Other processes may write the module's files too, and no process can tell for how
    /// long it is alone: so that processes at once pass the quota together by little more
    /// than the last of those slices, not each by a whole one, the slices shrink as the
    /// room does, and a write near the quota looks at the disk first.
    fn recount_every(&self) -> (u64, u64) {
        // At least the fewest slices, whatever the room: processes at once pass the
        // quota together by at most one of those each.
        (
            (self.room.bytes / SHARES).clamp(MIN_RECOUNT, RECOUNT_EVERY),
            (self.room.entries / SHARES).clamp(MIN_RECOUNT_ENTRIES, RECOUNT_EVERY_ENTRIES),
        )
    }
}

/// How many bytes are charged between two counts of what is on disk.
const RECOUNT_EVERY: u64 = 16 << 20;
/// How many entries are charged between two counts of what is on disk.
const RECOUNT_EVERY_ENTRIES: u64 = 256;
/// Into how many slices the room left is cut while other processes may write too.
const SHARES: u64 = 16;
/// The fewest bytes charged between two counts: a walk of the files per small write
/// would cost more than the little it could let past the quota.
const MIN_RECOUNT: u64 = 64 << 10;
/// The fewest entries charged between two counts.
const MIN_RECOUNT_ENTRIES: u64 = 8;

impl Budget {
    /// Says, once for these calls, that the disk holding the module's directories is
    /// full: the module sees only an I/O error (wasi-libc's for a refused stream write), and
    /// the administrator is the one who can free space.
    pub(crate) fn disk_full(&self) {
        let mut account = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        if !account.full {
            tracing::warn!(
                target: "modhost::module",
                module = %self.rawname,
                "the disk holding its /data is full: a write was refused, which the module \
                 sees as an I/O error; free some space on it"
            );
        }
        account.full = true;
    }

    /// Why the module's calls under way were refused a write, if they were: its quota
    /// used up, or its disk full. Said with a call's failure, since the module itself
    /// sees only an I/O error.
    pub(crate) fn refusal(&self) -> Option<String> {
        let account = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        if account.refused {
            Some(format!(
                "its /data reached its disk quota of {} or {} files: a write was refused \
                 during the call",
                crate::error::bytes(usize::try_from(account.quota.bytes).unwrap_or(usize::MAX)),
                account.quota.entries
            ))
        } else if account.full {
            Some("the disk holding its /data is full: a write was refused during the call".into())
        } else {
            None
        }
    }

    /// The budget of `rawname`, over the directories it may write.
    pub(crate) fn new(rawname: &str, dirs: Vec<Writable>) -> Arc<Self> {
        Arc::new(Budget {
            rawname: rawname.to_owned(),
            walked: walked_once(&dirs),
            dirs,
            account: Mutex::default(),
            shrinks: Default::default(),
            open: Mutex::default(),
            #[cfg(test)]
            walks: Default::default(),
        })
    }

    /// Notes that a call holds `file` open (read, written or both), so that its bytes are
    /// counted for as long as it is open, removed or not.
    pub(crate) fn holds(&self, file: &Arc<std::fs::File>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let key = Arc::as_ptr(file) as usize;
        if open.get(&key).is_some_and(|held| held.strong_count() > 0) {
            return;
        }
        // The files closed since are let go of now and then, not at every new one: the
        // map stays within twice what the sandbox's table lets a call hold open.
        if open.len() >= 64 && open.len().is_power_of_two() {
            open.retain(|_, file| file.strong_count() > 0);
        }
        open.insert(key, Arc::downgrade(file));
    }

    /// What is on disk under the module's directories, and in the files it still has open
    /// that were removed from them (each once, however many descriptors hold it).
    fn count(&self) -> std::io::Result<DiskUsage> {
        #[cfg(test)]
        self.walks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut used = DiskUsage::default();
        for (dir, pinned) in &self.walked {
            add_dir(dir, *pinned, &mut used)?;
        }
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut removed = std::collections::HashSet::new();
        for file in open.values().filter_map(Weak::upgrade) {
            if let Ok(stat) = rustix::fs::fstat(&*file)
                && stat.st_nlink == 0
                && removed.insert((stat.st_dev, stat.st_ino))
            {
                used.bytes = used
                    .bytes
                    .saturating_add(u64::try_from(stat.st_size).unwrap_or(0));
            }
        }
        Ok(used)
    }

    /// Where the module's writable trees start, for how deep its directories nest.
    pub(crate) fn roots(&self) -> crate::nesting::Roots {
        crate::nesting::Roots::of(
            self.dirs
                .iter()
                .filter_map(|(dir, pinned)| pinned.or_else(|| id_of(dir))),
        )
    }

    fn account(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a call under `quota`. When no other call of the module is under way, what
    /// is on disk is counted again at the first write, since the host may have changed
    /// it; else the calls under way go on charging what they counted.
    pub(crate) fn begin(self: &Arc<Self>, quota: DiskQuota) -> CallTurn {
        let mut account = self.account();
        if account.calls == 0 {
            account.used = None;
            account.refused = false;
            account.uncounted = false;
        }
        account.quota = quota;
        account.calls += 1;
        CallTurn(Arc::clone(self))
    }

    /// Charges `bytes` of growth and `entries` new entries, or refuses them if they would
    /// take the module past its quota.
    pub(crate) fn charge(&self, bytes: u64, entries: u64) -> Result<(), OverQuota> {
        if bytes == 0 && entries == 0 {
            return Ok(());
        }
        let mut account = self.account();
        // Another process's calls of the module write beside these: counted again every
        // so often, so that together they pass the quota by little.
        let (every, every_entries) = account.recount_every();
        let due = account.since_count.saturating_add(bytes) > every
            || account.entries_since_count.saturating_add(entries) > every_entries;
        let quota = account.quota;
        let past = |used: DiskUsage| {
            used.bytes.saturating_add(bytes) > quota.bytes
                || used.entries.saturating_add(entries) > quota.entries
        };
        // Counted from the disk when not yet counted, when a slice of the room is used up,
        // and before a refusal when something may have shrunk or the refusal rests on the
        // last count more than on what was charged since (fewer bytes than this write
        // asks: counting again loses less than it could free): what this or another
        // process freed meanwhile is then seen. A walk of the module's files costs as many
        // of them as it has, so removals and truncations do not each ask for one.
        let settled = account.since_count == 0 || account.since_count < bytes;
        let (used, counted) = match account.used {
            Some(used) if !(due || (settled || account.stale) && past(used)) => (used, false),
            _ => match self.count() {
                Ok(used) => (used, true),
                Err(e) => {
                    // Once per call: a module that took its directory away would otherwise
                    // have a line logged for every write it tries.
                    if !account.uncounted {
                        tracing::warn!(module = %self.rawname, error = %e, "cannot count the module's disk use; its write is refused");
                    }
                    account.uncounted = true;
                    return Err(OverQuota);
                }
            },
        };
        if counted {
            account.stale = false;
            account.room = DiskUsage {
                bytes: quota.bytes.saturating_sub(used.bytes),
                entries: quota.entries.saturating_sub(used.entries),
            };
            account.since_count = 0;
            account.entries_since_count = 0;
        }
        if past(used) {
            if !account.refused {
                tracing::warn!(
                    module = %self.rawname,
                    bytes = used.bytes,
                    entries = used.entries,
                    asked_bytes = bytes,
                    asked_entries = entries,
                    quota_bytes = quota.bytes,
                    quota_entries = quota.entries,
                    "a write would take the module past its disk quota; refused"
                );
            }
            account.refused = true;
            account.used = Some(used);
            return Err(OverQuota);
        }
        account.since_count = account.since_count.saturating_add(bytes);
        account.entries_since_count = account.entries_since_count.saturating_add(entries);
        account.used = Some(DiskUsage {
            bytes: used.bytes.saturating_add(bytes),
            entries: used.entries.saturating_add(entries),
        });
        Ok(())
    }

    /// Refuses when what is on disk is past the quota now, counted afresh (what other
    /// modules wrote into directories this one may write too is never charged to it, but
    /// counts).
    pub(crate) fn within_quota(&self) -> Result<(), OverQuota> {
        let quota = self.account().quota;
        match self.count() {
            Ok(used) if used.bytes <= quota.bytes && used.entries <= quota.entries => Ok(()),
            Ok(_) => Err(OverQuota),
            Err(e) => {
                let mut account = self.account();
                if !account.uncounted {
                    tracing::warn!(module = %self.rawname, error = %e, "cannot count the module's disk use; refused");
                }
                account.uncounted = true;
                Err(OverQuota)
            }
        }
    }

    /// Notes that something may have shrunk, or failed half-way: the count may be above
    /// what is on disk (it is taken again before any write is refused), and what a stream
    /// remembers of its file's size may be out of date.
    pub(crate) fn may_have_shrunk(&self) {
        self.account().stale = true;
        self.shrinks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many times [`Budget::may_have_shrunk`] was called: what a stream remembers of
    /// a file is stale once it grows.
    pub(crate) fn counts(&self) -> u64 {
        self.shrinks.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A call's turn at its module's [`Budget`], ended when dropped, however the call ends.
pub(crate) struct CallTurn(Arc<Budget>);

impl Drop for CallTurn {
    fn drop(&mut self) {
        let mut account = self.0.account();
        account.calls = account.calls.saturating_sub(1);
    }
}

/// Each module's [`Budget`], for its sandboxes to share: keyed by the module and the
/// directories it may write, held while any sandbox of it lives.
#[derive(Default)]
pub(crate) struct Budgets(Mutex<HashMap<BudgetKey, Weak<Budget>>>);

/// A module and the directories it may write: a sandbox given other directories at the
/// same paths (one was replaced since) has a budget of its own.
type BudgetKey = (String, Vec<Writable>);

impl Budgets {
    /// The budget of `rawname` over `dirs`, made if no sandbox holds it now.
    pub(crate) fn of(&self, rawname: &str, dirs: Vec<Writable>) -> Arc<Budget> {
        let mut budgets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        budgets.retain(|_, budget| budget.strong_count() > 0);
        let key = (rawname.to_owned(), dirs);
        if let Some(budget) = budgets.get(&key).and_then(Weak::upgrade) {
            return budget;
        }
        let budget = Budget::new(rawname, key.1.clone());
        budgets.insert(key, Arc::downgrade(&budget));
        budget
    }
}

#[cfg(test)]
mod tests;
