//! The disk quota (`[data]`): what a module keeps in `/data` is bounded while its call
//! runs. A write past the quota fails inside the guest with an error it sees (`EDQUOT`
//! from creating a file or setting a length; wasi-libc reports a refused stream write,
//! which is how it writes files, as `EIO`); a call that
//! keeps writing after that ends at its deadline having kept no more; file counts,
//! sparse lengths and far writes count too; one module at its quota leaves the others
//! writing; `info` shows use and quota.

use modhost_test_support::{Root, arg, component, package};

use crate::quota::call;
use crate::root;

const MIB: u64 = 1024 * 1024;

/// filler and hostile installed under `config`.
fn installed(config: &str) -> Root {
    let root = root();
    root.ok(&["install", arg(&package("filler")), arg(&package("hostile"))]);
    root.configure(config);
    root
}

/// What `rawname` keeps under its data directory, in bytes of file length.
fn data_bytes(root: &Root, rawname: &str) -> u64 {
    let info = root.ok(&["info", "--json", rawname]).json();
    info["data_used"].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn a_write_past_the_quota_fails_in_the_guest_and_the_others_keep_writing() {
    let root = installed("[data]\nmodule_quota_mb = 2\n");
    let (ok, report) = call(&root, "fill_data", "", "filler");
    assert!(ok, "{report}");
    let (written, error) = report.split_once(" bytes, then: ").unwrap_or_default();
    let written: u64 = written.parse().unwrap_or(u64::MAX);
    assert!((MIB..=2 * MIB).contains(&written), "{report}");
    assert!(error.contains("I/O error"), "{report}");
    let file = root.installed_dir("filler", "data").join("fill");
    let on_disk = std::fs::metadata(&file).map_or(u64::MAX, |m| m.len());
    assert!(on_disk <= 2 * MIB, "{on_disk} bytes on disk");

    // Another module's quota is its own: hostile still writes its /data.
    let (ok, out) = call(&root, "hoard", "1", "hostile");
    assert!(ok, "{out}");

    // `info` shows use and quota, in text and JSON.
    let info = root.ok(&["info", "--json", "filler"]).json();
    assert_eq!(info["data_quota"].as_u64(), Some(2 * MIB), "{info}");
    assert_eq!(info["data_used"].as_u64(), Some(on_disk), "{info}");
    assert_eq!(info["data_entry_quota"].as_u64(), Some(10_000), "{info}");
    let text = root.ok(&["info", "filler"]).stdout;
    assert!(text.contains("of its 2.0 MiB quota"), "{text}");
}

#[test]
fn calls_at_once_in_several_processes_share_one_quota() {
    let root = installed("[data]\nmodule_quota_mb = 64\n");
    // Three processes, each filling /data until refused: together they keep the quota,
    // give or take what each wrote between two counts of the disk (16 MiB).
    let writers: Vec<_> = (0..3)
        .map(|_| {
            root.command(&["hook", "fill_data", "--json"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for mut writer in writers {
        assert!(writer.wait().is_ok());
    }
    let kept = data_bytes(&root, "filler");
    assert!(
        (60 * MIB..=64 * MIB + 3 * 16 * MIB).contains(&kept),
        "{} MiB kept against a 64 MiB quota",
        kept / MIB
    );
}

#[test]
fn a_call_that_keeps_writing_ends_at_its_deadline_holding_no_more_than_its_quota() {
    let root =
        installed("[data]\nmodule_quota_mb = 3\n\n[hooks.fill_forever]\ncall_timeout_ms = 1500\n");
    let started = std::time::Instant::now();
    let (ok, error) = call(&root, "fill_forever", "", "filler");
    assert!(!ok, "{error}");
    assert!(error.contains("filler"), "{error}");
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    // At most one write of slack: a 64 KiB chunk may land as the quota is counted.
    let kept = data_bytes(&root, "filler");
    assert!(kept <= 3 * MIB + 64 * 1024, "{kept} bytes kept");
    // The module still answers, and its next call is refused the same way.
    let (ok, report) = call(&root, "fill_data", "", "filler");
    assert!(ok && report.starts_with("0 bytes, then: "), "{report}");
    root.ok(&["recover"]);
}

#[test]
fn files_sparse_lengths_and_far_writes_count_against_the_quota() {
    let root = installed("[data]\nmodule_entries = 40\n\n[data.quotas]\nfiller = { mb = 1 }\n");
    let (ok, report) = call(&root, "fill_files", "", "filler");
    assert!(ok, "{report}");
    let (files, error) = report.split_once(" files, then: ").unwrap_or_default();
    let files: u64 = files.parse().unwrap_or(u64::MAX);
    // 40 entries: the directory `many` and 39 files in it.
    assert_eq!(files, 39, "{report}");
    assert!(error.to_lowercase().contains("quota"), "{report}");
    root.ok(&["delete", "filler"]);
    root.ok(&["install", arg(&package("filler"))]);

    let (ok, error) = call(&root, "sparse", &(1u64 << 30).to_string(), "filler");
    assert!(!ok && error.to_lowercase().contains("quota"), "{error}");
    let (ok, out) = call(&root, "sparse", "1000", "filler");
    assert!(ok, "{out}");
    let (ok, error) = call(&root, "pwrite", &(1u64 << 30).to_string(), "filler");
    assert!(!ok && error.contains("I/O error"), "{error}");
    // The module sees only an I/O error; its failure says what it ran into.
    assert!(
        error.contains("(its /data reached its disk quota of 1 MiB or 40 files: a write was refused during the call)"),
        "{error}"
    );
    let (ok, out) = call(&root, "pwrite", "100", "filler");
    assert!(ok, "{out}");
    let kept = data_bytes(&root, "filler");
    assert!(kept <= MIB, "{kept} bytes kept");

    // The per-module setting is this module's alone: hostile keeps the default.
    let info = root.ok(&["info", "--json", "hostile"]).json();
    assert_eq!(info["data_quota"].as_u64(), Some(256 * MIB), "{info}");
    assert_eq!(info["data_entry_quota"].as_u64(), Some(40), "{info}");
}

#[test]
fn a_file_truncated_under_a_writing_descriptor_is_charged_for_what_it_grows_again() {
    let root = installed("[data]\nmodule_quota_mb = 2\n");
    // Each round writes 64 KiB past where the file was truncated: charged as growth, the
    // quota ends it within 2 MiB of length.
    let (ok, report) = call(&root, "truncate_under_stream", "", "filler");
    assert!(ok, "{report}");
    assert!(report.contains(" rounds, then: "), "{report}");
    let file = root.installed_dir("filler", "data").join("under");
    let length = std::fs::metadata(&file).map_or(u64::MAX, |m| m.len());
    assert!(length <= 2 * MIB + 64 * 1024, "{length} bytes long");
    assert!(data_bytes(&root, "filler") <= 2 * MIB + 64 * 1024);
}

#[test]
fn files_removed_while_open_still_count_while_the_call_writes_them() {
    let root = installed("[data]\nmodule_quota_mb = 2\n");
    // No walk of /data sees a file removed while open; the quota counts it as long as it
    // is open, through a stream and at offsets alike.
    for (hook, payload) in [
        ("unlinked_open", "1:64"),
        ("unlinked_open", "4:8"),
        // Held only to read, then removed, or renamed over: held all the same.
        ("held_while_read", "8:1:remove"),
        ("held_while_read", "8:1:rename"),
    ] {
        let (ok, report) = call(&root, hook, payload, "filler");
        assert!(ok, "{hook} {payload}: {report}");
        let written: u64 = report
            .trim_start_matches("wrote ")
            .trim_end_matches(" bytes")
            .parse()
            .unwrap_or(u64::MAX);
        assert!(
            written <= 2 * MIB + 64 * 1024,
            "{hook} {payload}: {written} bytes written past a 2 MiB quota"
        );
    }
    assert_eq!(
        data_bytes(&root, "filler"),
        MIB,
        "only the file renamed into place is left: removed ones hold nothing once closed"
    );
}

#[test]
fn files_written_through_dangling_links_count_as_entries() {
    let root = root();
    root.ok(&["install", arg(&package("linker"))]);
    root.configure("[data]\nmodule_entries = 60\n");
    let before = root.ok(&["info", "--json", "linker"]).json()["data_entries"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let (ok, report) = call(&root, "through_links", "40", "linker");
    assert!(ok && report.starts_with("40 links, "), "{report}");
    assert!(report.contains("Quota exceeded"), "{report}");
    let info = root.ok(&["info", "--json", "linker"]).json();
    let entries = info["data_entries"].as_u64().unwrap_or(u64::MAX);
    assert!(
        before < 60 && entries <= 60,
        "{before} entries before, {entries} after: {report}"
    );
}

#[test]
fn a_granted_directory_the_module_may_write_counts_against_the_same_quota() {
    let root = installed("[data]\nmodule_quota_mb = 1\n");
    let shared = root.path().with_file_name("shared-spool");
    assert!(std::fs::create_dir_all(&shared).is_ok());
    let module = root.path().with_file_name("spooler");
    assert!(std::fs::create_dir_all(&module).is_ok());
    let xml = format!(
        "<module><rawname>spooler</rawname><name>Spooler</name><version>1.0</version>\
         <methods><fill_data>fill_data</fill_data></methods>\
         <capabilities><directory path=\"{}\" access=\"read-write\"/></capabilities></module>",
        shared.display()
    );
    assert!(std::fs::write(module.join("module.xml"), xml).is_ok());
    assert!(std::fs::copy(component("filler"), module.join("module.wasm")).is_ok());
    let package = module.join("spooler-1.0.tgz");
    root.ok(&["pack", arg(&module), "-o", arg(&package)]);
    root.ok(&["install", "--grant", arg(&package)]);

    let (ok, report) = call(&root, "fill_data", &shared.display().to_string(), "spooler");
    assert!(ok, "{report}");
    let kept = std::fs::metadata(shared.join("fill")).map_or(u64::MAX, |m| m.len());
    assert!(
        (MIB / 2..=MIB).contains(&kept),
        "{kept} bytes in the granted directory: {report}"
    );
    let info = root.ok(&["info", "--json", "spooler"]).json();
    assert_eq!(info["data_used"].as_u64(), Some(kept), "{info}");
}

#[test]
fn a_module_cannot_give_its_files_second_names_the_quota_would_not_count() {
    let root = installed("[data]\nmodule_quota_mb = 1\n");
    let (ok, error) = call(&root, "hard_link", "600000", "filler");
    assert!(
        !ok && error.contains("cannot link") && error.contains("not permitted"),
        "{error}"
    );
    assert!(!root.installed_dir("filler", "data").join("link").exists());
    // The upgrade's copy of /data holds the one file, once.
    root.ok(&["install", "--reinstall", arg(&package("filler"))]);
    assert!(data_bytes(&root, "filler") <= MIB);
}

/// A tmpfs of `mib` MiB mounted at a directory while it lives, as a small disk that fills.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounted at `at`, made first; `None` where mounting is not permitted (not root).
    fn mount(at: &std::path::Path, mib: u64) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| SmallDisk(at.to_owned()))
    }

    /// Takes all but `left` bytes of what is free, in a file `name` at its top.
    fn fill_leaving(&self, name: &str, left: u64) {
        let df = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.0)
            .output();
        let free: u64 = df
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|text| text.lines().nth(1).and_then(|l| l.trim().parse().ok()))
            .unwrap_or_else(|| panic!("df could not tell what is free"));
        let taken = std::process::Command::new("fallocate")
            .args(["-l", &free.saturating_sub(left).to_string()])
            .arg(self.0.join(name))
            .status();
        assert!(taken.as_ref().is_ok_and(|s| s.success()), "{taken:?}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_stops_an_uninstall_naming_the_module_and_what_needs_no_room() {
    let root = root();
    // The root on a disk of its own, which can be filled without filling the machine's.
    let Some(disk) = SmallDisk::mount(&root.path(), 64) else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    root.ok(&["install", arg(&package("filler"))]);
    root.configure("[data]\nmodule_quota_mb = 4\n");
    let (ok, report) = call(&root, "fill_data", "", "filler");
    assert!(ok, "{report}");
    // A module writing on a full disk sees an I/O error; the administrator is told.
    disk.fill_leaving("ballast", MIB);
    root.configure("[data]\nmodule_quota_mb = 64\n");
    let run = root.run(&["hook", "fill_data"]);
    assert!(
        run.stderr.contains(
            "the disk holding its /data is full: a write was refused, which the module sees \
             as an I/O error; free some space on it module=filler"
        ),
        "{}",
        run.stderr
    );
    assert!(std::fs::remove_file(root.path().join("ballast")).is_ok());
    disk.fill_leaving("ballast", MIB);
    let before = root.fingerprint();
    // uninstall() runs on a copy of /data, for which there is no room: said as that,
    // naming the module, with what needs none.
    let run = root.fails(&["uninstall", "filler"]);
    assert!(
        run.stderr
            .contains("cannot uninstall `filler`: its /data (")
            && run.stderr.contains("MiB) is copied for the call")
            && run.stderr.contains("has no room for the copy")
            && run.stderr.contains("(nothing was changed)")
            && run
                .stderr
                .contains("`modhost delete` removes it without running its code"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "nothing was changed");
    root.ok(&["delete", "filler"]);
    let listed = root.ok(&["list", "--json"]).json();
    assert_eq!(listed, serde_json::json!([]), "{listed}");
}
