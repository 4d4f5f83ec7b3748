//! Packages from a slow or a trickling server: downloaded before the root's lock is taken,
//! so that other changes of the root never wait for a server, and given up on when the
//! server sends slower than the floor, or stopped at once by Ctrl-C, leaving the root as it
//! was.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modhost_test_support::tls::{TlsFiles, generate, serve};
use modhost_test_support::{Root, arg, package, package_at};
use sha2::{Digest, Sha256};

use crate::root;

/// A Joomla feed in `dir` offering phonebook 1.0.0 from `url`/phonebook.tgz with the
/// checksum of `bytes`, added to `root` as source `slow`.
fn feed(root: &Root, dir: &Path, url: &str, bytes: &[u8]) {
    let sha: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let xml = format!(
        "<updates><update><name>phonebook</name><element>phonebook</element>\
         <version>1.0.0</version><targetplatform name=\"modhost\" version=\".*\"/>\
         <tags><tag>stable</tag></tags><downloads><downloadurl type=\"full\" format=\"tgz\">\
         {url}/phonebook.tgz</downloadurl></downloads><sha256>{sha}</sha256></update></updates>"
    );
    let path = dir.join("feed.xml");
    assert!(std::fs::write(&path, xml).is_ok());
    root.ok(&["source", "add", "slow", arg(&path), "--kind", "joomla"]);
}

/// Serves the package `bytes` with `tls`, writing `chunk` bytes every `pause`; its URL,
/// and a flag set once the package was asked for.
fn slow_server(
    tls: &TlsFiles,
    bytes: Vec<u8>,
    chunk: usize,
    pause: Duration,
) -> (String, Arc<AtomicBool>) {
    let asked = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&asked);
    let url = serve(tls.server_config(), move |_, out| {
        seen.store(true, Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        for part in bytes.chunks(chunk) {
            if out.write_all(part).and_then(|()| out.flush()).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    });
    (url, asked)
}

/// `install --online phonebook` into `root`, trusting `tls`'s CA, expected to fail.
fn install_online(root: &Root, tls: &TlsFiles) -> modhost_test_support::Run {
    root.fails(&[
        "--ca-cert",
        arg(&tls.ca),
        "install",
        "--online",
        "phonebook",
    ])
}

#[test]
fn a_slow_download_never_keeps_other_changes_of_the_root_waiting() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tls = generate(dir.path());
    let bytes = std::fs::read(package_at("phonebook", "1.0.0")).unwrap_or_default();
    // Well above the floor, and still long enough (six seconds) for another change to
    // start and take the lock on a loaded machine.
    let chunk = bytes.len().div_ceil(20);
    let (url, asked) = slow_server(&tls, bytes.clone(), chunk, Duration::from_millis(300));
    feed(&root, dir.path(), &url, &bytes);

    let mut online = root
        .command(&[
            "--ca-cert",
            arg(&tls.ca),
            "install",
            "--online",
            "phonebook",
        ])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let waiting = Instant::now();
    while !asked.load(Ordering::SeqCst) {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "never downloaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While phonebook downloads, another change of the root goes through at once.
    root.ok(&["--no-wait", "install", arg(&package("voicemail"))]);
    let finished = online.wait();
    assert!(finished.is_ok_and(|s| s.success()));
    let list = root.ok(&["list"]).stdout;
    assert!(
        list.contains("phonebook") && list.contains("voicemail"),
        "{list}"
    );
}

#[test]
fn a_package_trickled_below_the_floor_is_given_up_on_and_the_root_is_unchanged() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    root.configure("[updates]\ntimeout_secs = 1\n");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tls = generate(dir.path());
    let bytes = std::fs::read(package_at("phonebook", "1.0.0")).unwrap_or_default();
    // Never silent for a second, and far too slow: 50 bytes a second.
    let (url, _) = slow_server(&tls, bytes.clone(), 1, Duration::from_millis(20));
    feed(&root, dir.path(), &url, &bytes);
    let before = root.fingerprint();
    let started = Instant::now();
    let run = install_online(&root, &tls);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr
            .contains("slower than the 1024 bytes a second a transfer needs"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn recover_removes_what_an_interrupted_online_install_left() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    // A download directory a killed install left, a minute old, its lock free.
    let left = root.path().join(".modhost-download-killed");
    assert!(std::fs::create_dir(&left).is_ok());
    assert!(std::fs::write(left.join("phonebook-1.0.0.tgz"), b"half").is_ok());
    let minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    let aged = std::fs::File::open(&left).and_then(|dir| dir.set_modified(minute_ago));
    assert!(aged.is_ok(), "{aged:?}");
    root.ok(&["recover"]);
    assert!(
        !left.exists(),
        "the interrupted download's directory is left"
    );
}

#[test]
fn a_download_that_is_no_package_is_named_by_its_url_and_source() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tls = generate(dir.path());
    // What the feed's checksum says, and no package at all.
    let bytes = b"<html>maintenance</html>".to_vec();
    let (url, _) = slow_server(&tls, bytes.clone(), 1 << 20, Duration::ZERO);
    feed(&root, dir.path(), &url, &bytes);
    let before = root.fingerprint();
    let run = install_online(&root, &tls);
    assert!(
        run.stderr.contains("source `slow`: `phonebook` ")
            && run
                .stderr
                .contains(&format!("`{url}/phonebook.tgz`: it is "))
            && !run.stderr.contains(".modhost-download-"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    // A download alone says the same, with the module and the source it came from.
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&[
        "--ca-cert",
        arg(&tls.ca),
        "download",
        "phonebook",
        "--out",
        arg(out.path()),
    ]);
    assert!(
        run.stderr.contains("source `slow`: `phonebook` ")
            && run
                .stderr
                .contains(&format!("`{url}/phonebook.tgz`: it is "))
            && run.stderr.matches("`slow`").count() == 1,
        "{}",
        run.stderr
    );
    // A download changes nothing, whatever befalls it: what it says is that nothing was
    // downloaded.
    assert!(
        run.stderr.contains("nothing was downloaded:") && !run.stderr.contains("changed"),
        "{}",
        run.stderr
    );
}

#[test]
fn ctrl_c_stops_a_download_at_once_and_the_root_is_unchanged() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tls = generate(dir.path());
    let bytes = std::fs::read(package_at("phonebook", "1.0.0")).unwrap_or_default();
    // 2 KiB a second: fast enough to go on, and half a minute for the package.
    let (url, _) = slow_server(&tls, bytes.clone(), 200, Duration::from_millis(100));
    feed(&root, dir.path(), &url, &bytes);
    let before = root.fingerprint();
    let ca = arg(&tls.ca);
    let stopped = crate::interrupted(
        &root,
        &["--ca-cert", ca, "install", "--online", "phonebook"],
        "Downloading",
    );
    stopped.assert_stopped(Duration::from_secs(5));
    assert_eq!(root.fingerprint(), before);
}
