//! What a granted directory may hold that a module never opens: a FIFO (whose open would
//! block the host's thread past any deadline) and a socket, refused at once.

use std::path::Path;
use std::sync::mpsc;

use modhost::Options;
use modhost_test_support::{package, repackage};

use super::*;

/// Hostile reinstalled with read-write access to `shared`, granted.
fn granted_hostile(host: &Host, shared: &Path, scratch: &Path) {
    let xml = |text: &str| {
        text.replace(
            "</module>",
            &format!(
                "<capabilities><directory path=\"{}\" access=\"read-write\"/></capabilities></module>",
                shared.display()
            ),
        )
    };
    let granted = repackage(&package("hostile"), xml, &scratch.join("hostile.tgz"));
    let options = Options {
        force: false,
        grant: true,
        reinstall: true,
    };
    host.install(&[granted], options)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_fifo_or_a_socket_in_a_granted_directory_is_refused_not_waited_on() {
    let (_root, host) = host();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shared = scratch.path().join("spool");
    std::fs::create_dir(&shared).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(shared.join("note.txt"), "a plain file").unwrap_or_else(|e| panic!("{e}"));
    let made = std::process::Command::new("mkfifo")
        .arg(shared.join("fifo"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo");
    let _socket = std::os::unix::net::UnixListener::bind(shared.join("socket"))
        .unwrap_or_else(|e| panic!("{e}"));
    granted_hostile(&host, &shared, scratch.path());

    let read = |name: &str| {
        let dispatch = host
            .dispatch("read", &shared.join(name).display().to_string())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        dispatch
            .calls
            .into_iter()
            .find(|c| c.rawname == "hostile")
            .unwrap_or_else(|| panic!("{name}: hostile did not run"))
    };
    let note = read("note.txt");
    assert_eq!(note.output.as_deref(), Some("a plain file"), "{note:?}");

    // Read on another thread: were the open to block, the test unblocks it (and fails)
    // rather than hang.
    let (sent, received) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = sent.send(read("fifo"));
        });
        let call = match received.recv_timeout(Duration::from_secs(30)) {
            Ok(call) => call,
            Err(_) => {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .open(shared.join("fifo"));
                panic!("opening the FIFO blocked the call past its deadline");
            }
        };
        let error = call.error.clone().unwrap_or_default();
        assert!(
            !call.ok && error.contains("cannot read") && error.contains("not permitted"),
            "{call:?}"
        );
    });
    let socket = read("socket");
    let error = socket.error.clone().unwrap_or_default();
    assert!(!socket.ok && error.contains("not permitted"), "{socket:?}");
    still_serving(&host, "a FIFO and a socket refused");
}
