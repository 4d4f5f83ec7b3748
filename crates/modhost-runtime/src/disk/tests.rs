//! The disk quota: counted without following links, charged while calls write, counted
//! again as other processes write, and refused once a directory leads elsewhere.

use super::*;

/// `dir` as a sandbox that opened it now gives it.
fn writable(dir: &Path) -> Vec<Writable> {
    vec![(dir.to_owned(), id_of(dir))]
}

/// One MiB and 100 entries.
const QUOTA: DiskQuota = DiskQuota {
    bytes: 1 << 20,
    entries: 100,
};

/// A directory `granted` made in `top`, and module `m`'s budget over it.
fn granted(top: &Path) -> std::io::Result<(PathBuf, std::sync::Arc<Budget>)> {
    let granted = top.join("granted");
    std::fs::create_dir(&granted)?;
    let budget = Budget::new("m", writable(&granted));
    Ok((granted, budget))
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
    let (granted, budget) = granted(top.path())?;
    budget.begin(QUOTA);
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
fn removals_do_not_each_walk_the_files_and_a_refusal_sees_what_they_freed() -> std::io::Result<()> {
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

#[test]
fn a_directory_given_twice_or_inside_another_is_counted_once() -> std::io::Result<()> {
    let top = tempfile::tempdir()?;
    let sub = top.path().join("sub");
    std::fs::create_dir(&sub)?;
    std::fs::write(sub.join("f"), vec![0u8; 100])?;
    let dirs = vec![
        (top.path().to_owned(), id_of(top.path())),
        (sub.clone(), id_of(&sub)),
        (sub.join("."), id_of(&sub)),
    ];
    let budget = Budget::new("m", dirs);
    // `sub` (an entry) and `f`, once.
    assert_eq!(
        budget.count()?,
        DiskUsage {
            bytes: 100,
            entries: 2
        }
    );
    Ok(())
}

#[test]
fn past_its_quota_by_what_others_wrote_a_module_is_refused_what_is_not_a_write()
-> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let budget = Budget::new("m", writable(dir.path()));
    budget.begin(DiskQuota {
        bytes: 1000,
        entries: 10,
    });
    assert!(budget.within_quota().is_ok());
    // Another module sharing the directory wrote into it: nothing charged this one.
    std::fs::write(dir.path().join("theirs"), vec![0u8; 2000])?;
    assert!(budget.within_quota().is_err());
    std::fs::remove_file(dir.path().join("theirs"))?;
    assert!(budget.within_quota().is_ok());
    Ok(())
}

#[test]
fn a_directory_that_cannot_be_counted_is_logged_once_per_call_however_many_writes_it_refuses()
-> std::io::Result<()> {
    let top = tempfile::tempdir()?;
    let (granted, budget) = granted(top.path())?;
    let sink = modhost_test_support::log::Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || -> std::io::Result<()> {
        let call = budget.begin(QUOTA);
        std::fs::rename(&granted, top.path().join("aside"))?;
        for _ in 0..50 {
            budget.may_have_shrunk();
            assert!(budget.charge(10, 1).is_err());
            assert!(budget.within_quota().is_err());
        }
        drop(call);
        // The next call says so again.
        let _call = budget.begin(QUOTA);
        assert!(budget.charge(10, 1).is_err());
        Ok(())
    })?;
    let log = sink.text();
    assert_eq!(
        log.matches("cannot count the module's disk use").count(),
        2,
        "{log}"
    );
    Ok(())
}
