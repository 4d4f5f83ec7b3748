//! Two processes on one root never interleave changes; readers are never blocked.

use std::fs::File;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use modhost_test_support::{Root, arg, package};

use crate::root;

fn hold_lock(root: &Root) -> File {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.path().join("lock"));
    let Ok(lock) = lock else { panic!("{lock:?}") };
    assert!(lock.lock().is_ok());
    lock
}

#[test]
fn a_second_writer_waits_saying_so_or_fails_with_no_wait_and_readers_go_on() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let lock = hold_lock(&root);

    let refused = root.fails(&["--no-wait", "install", arg(&package("voicemail"))]);
    assert!(
        refused
            .stderr
            .contains("another modhost process is changing this root"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("help: without --no-wait, modhost waits for the lock"),
        "the CLI names its own flag: {}",
        refused.stderr
    );
    let listed = root.ok(&["list", "--json"]).json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "readers are not blocked"
    );

    // In JSON mode too: stdout stays one JSON document, stderr says why nothing happens.
    let mut waiting = root
        .command(&["--json", "install", arg(&package("voicemail"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(child) = waiting.as_mut() else {
        panic!("{waiting:?}")
    };
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().is_ok_and(|s| s.is_none()),
        "the second writer waits for the lock"
    );
    drop(lock);
    let output = waiting.and_then(|c| c.wait_with_output());
    let Ok(output) = output else {
        panic!("{output:?}")
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Waiting for another modhost process to finish"),
        "{stderr}"
    );
    let changes: Result<serde_json::Value, _> = serde_json::from_slice(&output.stdout);
    assert!(
        changes
            .as_ref()
            .is_ok_and(|c| c[0]["rawname"] == "voicemail"),
        "{changes:?}"
    );
    assert_eq!(
        root.ok(&["list", "--json"]).json().as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn the_lock_names_the_process_holding_it() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let lock = hold_lock(&root);
    assert!(lock.set_len(0).is_ok());
    assert!((&lock).write_all(b"4242\n").is_ok());
    let refused = root.fails(&["--no-wait", "install", arg(&package("voicemail"))]);
    assert!(
        refused
            .stderr
            .contains("another modhost process is changing this root (process 4242 holds lock"),
        "{}",
        refused.stderr
    );
}

#[test]
fn concurrent_changes_are_serialised_and_all_land() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let spawn = |args: &[&str]| {
        root.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
    };
    let children = [
        spawn(&["install", arg(&package("voicemail"))]),
        spawn(&[
            "install",
            arg(&modhost_test_support::package_at("phonebook", "1.0.0")),
        ]),
        spawn(&["list"]),
    ];
    for child in children {
        let output = child.and_then(|c| c.wait_with_output());
        assert!(
            output.as_ref().is_ok_and(|o| o.status.success()),
            "{output:?}"
        );
    }
    let names: Vec<String> = root
        .ok(&["list", "--json"])
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["rawname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["core", "phonebook", "voicemail"]);
    assert_eq!(
        root.ok(&["recover", "--json"]).json()["removed"],
        serde_json::json!([])
    );
}

#[test]
fn a_call_that_waited_out_another_processs_write_names_that_process() {
    let root = root();
    root.configure(
        "[hooks.note_then_spin]\ncall_timeout_ms = 6000\n\n[hooks.hog]\ncall_timeout_ms = 400\n",
    );
    root.ok(&["install", arg(&package("hostile"))]);
    // One process's handler writes, then spins to its deadline, holding the write lock.
    let mut holding = root
        .command(&["hook", "note_then_spin", "--payload", "x"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(holder) = holding.as_mut() else {
        panic!("{holding:?}")
    };
    let pid = holder.id();
    // Another's handler waits for it until its own deadline, then is told who held it.
    let mut waited = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(150));
        let calls = root.run(&["hook", "hog", "--json"]).json();
        let error = calls[0]["error"].as_str().unwrap_or_default().to_owned();
        if error.contains("stayed locked by process") {
            waited = Some(error);
            break;
        }
    }
    let _ = holder.kill();
    let _ = holder.wait();
    let error = waited.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "stayed locked by process {pid} (`modhost`), writing to it"
        )),
        "{error}"
    );
}

#[test]
fn ctrl_c_stops_a_change_waiting_for_the_lock_with_nothing_changed() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let before = root.fingerprint();
    // Another change holds the root's lock: here, this test's own hold on its file.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(root.path().join("lock"));
    let Ok(lock) = lock else { panic!("{lock:?}") };
    assert!(lock.try_lock().is_ok());
    // Said once the change runs, with its handler of Ctrl-C in place.
    let run = crate::interrupted(&root, &["install", arg(&package("voicemail"))], "Waiting");
    run.assert_stopped(std::time::Duration::from_secs(5));
    // And so do `kill` and a closed terminal or SSH session.
    let voicemail = package("voicemail");
    for signal in ["TERM", "HUP"] {
        let args = ["install", arg(&voicemail)];
        let run = crate::interrupted_by(&root, &args, "Waiting", signal);
        run.assert_stopped(std::time::Duration::from_secs(5));
    }
    drop(lock);
    assert_eq!(root.fingerprint(), before, "nothing was changed");
}
