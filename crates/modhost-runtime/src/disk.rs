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

fn id(fd: &OwnedFd) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
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
    /// The budget of `rawname`, over the directories it may write.
    pub(crate) fn new(rawname: &str, dirs: Vec<Writable>) -> Arc<Self> {
        Arc::new(Budget {
            rawname: rawname.to_owned(),
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
        for (dir, pinned) in &self.dirs {
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
                    tracing::warn!(module = %self.rawname, error = %e, "cannot count the module's disk use; its write is refused");
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
mod tests {
    use super::*;

    /// `dir` as a sandbox that opened it now gives it.
    fn writable(dir: &Path) -> Vec<Writable> {
        vec![(dir.to_owned(), id_of(dir))]
    }

    #[test]
    fn counts_files_and_entries_without_following_links() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("big"), vec![0u8; 10_000])?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/a"), b"12345")?;
        std::fs::write(dir.path().join("b"), b"123")?;
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out"))?;
        std::os::unix::fs::symlink(outside.path().join("big"), dir.path().join("big"))?;
        let usage = disk_usage(&[dir.path().to_owned(), dir.path().join("missing")])?;
        assert_eq!(
            usage,
            DiskUsage {
                bytes: 8,
                entries: 5
            }
        );
        Ok(())
    }

    #[test]
    fn a_charge_past_the_quota_is_refused_and_a_recount_sees_the_disk() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a"), vec![0u8; 600])?;
        let budget = Budget::new("m", writable(dir.path()));
        budget.begin(DiskQuota {
            bytes: 1000,
            entries: 2,
        });
        assert!(budget.charge(400, 0).is_ok());
        assert!(budget.charge(1, 0).is_err());
        assert!(budget.charge(0, 1).is_ok());
        assert!(budget.charge(0, 1).is_err());
        std::fs::remove_file(dir.path().join("a"))?;
        budget.may_have_shrunk();
        assert!(budget.charge(1000, 2).is_ok());
        Ok(())
    }

    #[test]
    fn a_directory_swapped_for_a_link_or_another_refuses_writes() -> std::io::Result<()> {
        let top = tempfile::tempdir()?;
        let granted = top.path().join("granted");
        std::fs::create_dir(&granted)?;
        let quota = DiskQuota {
            bytes: 1 << 20,
            entries: 100,
        };
        let budget = Budget::new("m", writable(&granted));
        budget.begin(quota);
        assert!(budget.charge(10, 1).is_ok());
        // Moved aside, with a link to a directory elsewhere in its place: what the module
        // writes in the directory it holds would go uncounted.
        std::fs::rename(&granted, top.path().join("aside"))?;
        std::os::unix::fs::symlink(top.path().join("aside"), &granted)?;
        budget.may_have_shrunk();
        assert!(budget.charge(1 << 20, 1).is_err());
        // And another real directory in its place.
        std::fs::remove_file(&granted)?;
        std::fs::create_dir(&granted)?;
        assert!(budget.count().is_err());
        Ok(())
    }

    #[test]
    fn entries_another_process_adds_are_seen_within_a_recount() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let quota = DiskQuota {
            bytes: 1 << 30,
            entries: 600,
        };
        // This process's budget counts the directory at its first write.
        let here = Budget::new("m", writable(dir.path()));
        let _turn = here.begin(quota);
        let mut made = 0;
        let mut make = |at: &std::path::Path| {
            made += 1;
            std::fs::write(at.join(format!("{made}")), b"")
        };
        assert!(here.charge(0, 1).is_ok());
        make(dir.path())?;
        // Another process's calls of the module add 500 entries meanwhile.
        for _ in 0..500 {
            make(dir.path())?;
        }
        while here.charge(0, 1).is_ok() {
            make(dir.path())?;
        }
        let kept = disk_usage(&[dir.path().to_owned()])?.entries;
        // Not the other process's 500 on top of a whole quota of its own: within one
        // recount of the quota.
        assert!(
            kept <= quota.entries + RECOUNT_EVERY_ENTRIES && kept < quota.entries + 500,
            "{kept} entries under a quota of {}",
            quota.entries
        );
        Ok(())
    }

    #[test]
    fn processes_writing_at_once_pass_the_quota_together_by_little() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let quota = DiskQuota {
            bytes: 1 << 20,
            entries: 1000,
        };
        // Eight processes' budgets of one module, each with calls under way, writing
        // 64 KiB files in turn until each is refused.
        let processes: Vec<_> = (0..8)
            .map(|_| Budget::new("m", writable(dir.path())))
            .collect();
        let _turns: Vec<_> = processes.iter().map(|b| b.begin(quota)).collect();
        let mut refused = vec![false; processes.len()];
        let mut n = 0;
        while refused.contains(&false) {
            for (budget, refused) in processes.iter().zip(&mut refused) {
                if *refused || budget.charge(64 << 10, 1).is_err() {
                    *refused = true;
                    continue;
                }
                n += 1;
                std::fs::write(dir.path().join(n.to_string()), vec![0u8; 64 << 10])?;
            }
        }
        // Each counting only its own writes between counts 16 MiB apart, each would have
        // written a whole quota: eight of them.
        let kept = disk_usage(&[dir.path().to_owned()])?.bytes;
        assert!(
            kept <= quota.bytes + 8 * (64 << 10),
            "{kept} bytes under a quota of {}",
            quota.bytes
        );
        Ok(())
    }

    #[test]
    fn room_another_process_freed_is_seen_at_the_next_refusal() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let budget = Budget::new("m", writable(dir.path()));
        let _turn = budget.begin(DiskQuota {
            bytes: 1 << 20,
            entries: 100,
        });
        let mut n = 0;
        while budget.charge(256 << 10, 1).is_ok() {
            n += 1;
            std::fs::File::create(dir.path().join(n.to_string()))?.set_len(256 << 10)?;
        }
        // Another process (or an administrator) removes files; this one's calls are
        // still under way, and it never saw the removal, and made a directory since.
        std::fs::remove_file(dir.path().join("1"))?;
        assert!(budget.charge(0, 1).is_ok());
        std::fs::create_dir(dir.path().join("d"))?;
        assert!(
            budget.charge(256 << 10, 1).is_ok(),
            "the room freed elsewhere is seen"
        );
        Ok(())
    }

    #[test]
    fn a_process_that_begins_writing_later_is_seen_in_time() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let quota = DiskQuota {
            bytes: 16 << 20,
            entries: 1000,
        };
        let mut n = 0;
        let mut write = |budget: &Budget| -> std::io::Result<bool> {
            if budget.charge(1 << 20, 1).is_err() {
                return Ok(false);
            }
            n += 1;
            std::fs::File::create(dir.path().join(n.to_string()))?.set_len(1 << 20)?;
            Ok(true)
        };
        // One process writes half the quota alone; another then begins, and writes until
        // refused; then the first goes on.
        let first = Budget::new("m", writable(dir.path()));
        let _first = first.begin(quota);
        for _ in 0..8 {
            assert!(write(&first)?);
        }
        let second = Budget::new("m", writable(dir.path()));
        let _second = second.begin(quota);
        while write(&second)? {}
        while write(&first)? {}
        // Counting every 16 MiB, the first would have gone on to a whole quota of its own.
        let kept = disk_usage(&[dir.path().to_owned()])?.bytes;
        assert!(
            kept <= quota.bytes + quota.bytes / 4,
            "{kept} bytes under a quota of {}",
            quota.bytes
        );
        Ok(())
    }

    #[test]
    fn a_module_writing_far_from_its_quota_walks_its_files_now_and_then() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let budget = Budget::new("m", writable(dir.path()));
        let quota = DiskQuota {
            bytes: 256 << 20,
            entries: 10_000,
        };
        let _turn = budget.begin(quota);
        // 64 files of 1 MiB, a quarter of the quota: counted every sixteenth of the room.
        for n in 0..64 {
            assert!(budget.charge(1 << 20, 1).is_ok(), "write {n} refused");
            std::fs::File::create(dir.path().join(n.to_string()))?.set_len(1 << 20)?;
        }
        let walks = budget.walks.load(std::sync::atomic::Ordering::SeqCst);
        assert!(walks <= 8, "{walks} walks of the files for 64 writes");
        Ok(())
    }

    #[test]
    fn removals_do_not_each_walk_the_files_and_a_refusal_sees_what_they_freed()
    -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let budget = Budget::new("m", writable(dir.path()));
        let quota = 100;
        let _turn = budget.begin(DiskQuota {
            bytes: 1 << 30,
            entries: quota,
        });
        // A module that writes a file, then removes it, a thousand times over: counted
        // as if nothing was removed, it would pass its quota of a hundred entries every
        // hundred writes, and each refusal counts again and finds the room.
        let writes = 1_000;
        for n in 0..writes {
            let file = dir.path().join(n.to_string());
            assert!(budget.charge(0, 1).is_ok(), "write {n} refused");
            std::fs::write(&file, b"x")?;
            std::fs::remove_file(&file)?;
            budget.may_have_shrunk();
        }
        // A walk at each refusal, and one every few entries near the quota, where
        // another process's writes must be seen in time: not one at each write.
        let walks = budget.walks.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            walks <= 1 + writes / quota + writes / MIN_RECOUNT_ENTRIES,
            "{walks} walks of the files for {writes} writes"
        );
        Ok(())
    }
}
