//! Signed repositories that cannot be frozen, replayed or mixed, keys that rotate, and
//! builds that publish in one step: `repo build` + `repo serve` + the client, over real
//! HTTPS on loopback.

use std::path::{Path, PathBuf};

use modhost_test_support::{Root, arg, package, package_at};

use crate::root;
use crate::updates::{Repo, failed_with, key_id, offers, phonebook_with, report, signed_source};

/// The documents of a release that a replay serves again: the release, the index and
/// their signatures.
const RELEASE_FILES: [&str; 4] = [
    "release.json",
    "release.json.minisig",
    "index.json",
    "index.json.minisig",
];

/// Copies of `files` of `repo`'s public part, as a mirror that kept them would serve.
fn keep(repo: &Repo, files: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .iter()
        .map(|file| {
            let path = repo.public().join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            (path, bytes)
        })
        .collect()
}

/// Serves the `kept` copies again.
fn replay(kept: &[(PathBuf, Vec<u8>)]) {
    for (path, bytes) in kept {
        assert!(std::fs::write(path, bytes).is_ok(), "{path:?}");
    }
}

/// Serves the files `from` of `repo`'s public part in place of the files `to`, as a
/// mirror mixing documents would; the copies of `to` it replaced, to [`replay`].
fn served_as(repo: &Repo, from: &[&str], to: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let (replaced, served) = (keep(repo, to), keep(repo, from));
    for ((path, _), (_, bytes)) in replaced.iter().zip(&served) {
        assert!(std::fs::write(path, bytes).is_ok(), "{path:?}");
    }
    replaced
}

/// The `repo build --json` output's serial.
fn serial(run: &modhost_test_support::Run) -> u64 {
    run.json()["serial"].as_u64().unwrap_or_default()
}

#[test]
fn an_old_release_replayed_after_a_newer_one_is_refused_and_changes_nothing() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core", "phonebook"]);
    let old = keep(&repo, &RELEASE_FILES);
    let old_serial = serde_json::from_slice::<serde_json::Value>(&old[0].1)
        .ok()
        .and_then(|release| release["serial"].as_u64())
        .unwrap_or_default();
    let key = repo.dir.path().join("signing.key");
    let v2 = [package("core"), package_at("phonebook", "2.0.0")];
    let newer = repo.publish_with(&root, &v2, None, &["--json", "--sign", arg(&key)]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "main")["trust"]["serial"].as_u64(),
        Some(serial(&newer)),
        "{reports}"
    );
    let listed = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(
        listed[0]["serial"].as_u64(),
        Some(serial(&newer)),
        "{listed}"
    );

    // A mirror (or an attacker) serves the release before it again, soundly signed.
    replay(&old);
    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "source `main`: release serial {old_serial} is older than serial {}, accepted from \
             this source before: an old release is being replayed",
            serial(&newer)
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("source `main`").count(),
        1,
        "named once: {}",
        run.stderr
    );
    let run = repo.fails(&root, &["check-online"]);
    assert!(
        run.stdout.contains("main: unavailable: release serial ")
            && run
                .stdout
                .contains("(a rollback, by the server or a mirror)"),
        "{}",
        run.stdout
    );
    assert_eq!(root.fingerprint(), before, "the root is as it was");
    assert_eq!(crate::updates::version(&root, "phonebook"), "1.0.0");

    // Moved to a mirror under the same key, the source keeps the serial the key vouched
    // for: the mirror cannot replay the old release either.
    let mirror = repo.url.replace("127.0.0.1", "localhost");
    assert_ne!(mirror, repo.url);
    root.ok(&[
        "source",
        "add",
        "--replace",
        "main",
        &mirror,
        "--public-key",
        &repo.public_key,
    ]);
    let run = repo.fails(&root, &["check-online"]);
    assert!(
        run.stdout.contains(&format!(
            "main: unavailable: release serial {old_serial} is older than serial {}",
            serial(&newer)
        )),
        "{}",
        run.stdout
    );
    // And lists it as the serial it holds to.
    let listed = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(
        listed[0]["serial"].as_u64(),
        Some(serial(&newer)),
        "{listed}"
    );
}

#[test]
fn a_release_past_its_validity_end_is_refused_saying_how_stale() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    let key = repo.dir.path().join("signing.key");
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    repo.publish_with(
        &root,
        &packages,
        None,
        &["--sign", arg(&key), "--valid-for", "1s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "core"]);
    assert!(
        run.stderr.contains("source `main`: the release (serial ")
            && run.stderr.contains(" s ago (valid until ")
            && run.stderr.contains("serving a frozen copy"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    // Rebuilt in time, it is taken again.
    repo.publish(&root, &packages, None);
    repo.ok(&root, &["install", "--online", "core"]);
}

#[test]
fn a_signed_document_served_under_another_name_or_beside_another_signature_is_refused() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let channels = format!(
        "<updateurl publickey=\"{}\">{}/freepbx/phonebook.json</updateurl>",
        repo.public_key, repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, dir.path())),
    ]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let trust = &report(&reports, "phonebook/updateurl")["trust"];
    assert!(
        trust["signed"] == true && trust["signed_at"].is_u64() && trust["valid_until"].is_u64(),
        "a single document says when it was signed: {reports}"
    );

    // core.json and its own signature, served as phonebook.json: mixed and matched.
    let freepbx = repo.public().join("freepbx");
    let phonebook = served_as(
        &repo,
        &["freepbx/core.json", "freepbx/core.json.minisig"],
        &["freepbx/phonebook.json", "freepbx/phonebook.json.minisig"],
    );
    let before = root.fingerprint();
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "phonebook/updateurl",
            "is the signed `freepbx/core.json` served under another name"
        ),
        "{reports}"
    );
    // The right document beside core's signature: a stale signature.
    replay(&phonebook[..1]);
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "phonebook/updateurl",
            "is stale: it was made for `freepbx/core.json`, another document"
        ),
        "{reports}"
    );
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert_eq!(
        run.stderr.matches("source `phonebook/updateurl`").count(),
        1,
        "named once: {}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    replay(&phonebook);
    assert!(freepbx.join("phonebook.json").is_file());
    repo.ok(&root, &["upgrade", "--online", "phonebook"]);
}

/// The `minisign` tool, run in `dir`, succeeding.
fn minisign(args: &[&str], dir: &Path) {
    let run = modhost_test_support::minisign(args, dir);
    assert!(run.status.success(), "minisign {args:?}: {run:?}");
}

#[test]
fn an_a2_document_of_another_module_signed_by_the_minisign_tool_is_refused() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    // A publisher signing with the minisign tool, whose trusted comment names the file
    // (`modsource.json`), not its directory: every module's document claims the same.
    let keys = repo.dir.path();
    minisign(&["-G", "-W", "-p", "tool.pub", "-s", "tool.key"], keys);
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    repo.publish_with(
        &root,
        &packages,
        None,
        &["--sign", arg(&keys.join("tool.key"))],
    );
    for module in ["phonebook", "core"] {
        let document = repo.public().join(format!("a2/{module}/modsource.json"));
        minisign(&["-S", "-s", "tool.key", "-m", arg(&document)], keys);
    }
    let public = std::fs::read_to_string(keys.join("tool.pub")).unwrap_or_default();
    let key = public.lines().nth(1).unwrap_or_default().to_owned();
    let url = format!("{}/a2/phonebook", repo.url);
    root.ok(&[
        "source",
        "add",
        "pb",
        &url,
        "--kind",
        "a2",
        "--public-key",
        &key,
    ]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "pb")["offers"][0]["rawname"],
        "phonebook",
        "{reports}"
    );

    // core's document and its signature served as phonebook's: both are sound.
    let phonebook = served_as(
        &repo,
        &["a2/core/modsource.json", "a2/core/modsource.json.minisig"],
        &[
            "a2/phonebook/modsource.json",
            "a2/phonebook/modsource.json.minisig",
        ],
    );
    let before = root.fingerprint();
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "pb",
            "it offered `phonebook` when first accepted from this location and now offers `core`"
        ),
        "{reports}"
    );
    assert_eq!(root.fingerprint(), before);
    replay(&phonebook);
    repo.ok(&root, &["check-online"]);
}

#[test]
fn a_single_document_older_than_the_one_accepted_is_refused() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let channels = format!(
        "<updateservers><server type=\"extension\" publickey=\"{}\">{}/joomla/phonebook.xml</server></updateservers>",
        repo.public_key, repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, dir.path())),
    ]);
    let old = keep(
        &repo,
        &["joomla/phonebook.xml", "joomla/phonebook.xml.minisig"],
    );
    // Signing times are in seconds: the next build's must be a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0")],
        None,
    );
    repo.ok(&root, &["check-online"]);
    replay(&old);
    let before = root.fingerprint();
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "phonebook/1",
            "an old document is being replayed (a rollback)"
        ),
        "{reports}"
    );
    assert_eq!(root.fingerprint(), before);
}

/// The key ids `source list --json` shows pinned for source `name`, with the id of each
/// one's announced successor.
fn pinned(root: &Root, name: &str) -> Vec<(String, Option<String>)> {
    let listed = root.ok(&["source", "list", "--json"]).json();
    listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == name)
        .flat_map(|s| s["public_keys"].as_array().cloned().unwrap_or_default())
        .map(|k| {
            (
                k["key_id"].as_str().unwrap_or_default().to_owned(),
                k["succeeded_by"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// A phonebook repository signed with key A, and the next key B made beside it.
struct Rotation {
    repo: Repo,
    /// A's secret key file.
    a: PathBuf,
    /// B's secret key file (its public key beside it, in `next.key.pub`).
    b: PathBuf,
    a_id: String,
    b_id: String,
}

fn rotation(root: &Root) -> Rotation {
    let repo = Repo::phonebook(root, "1.0.0");
    let (a, b) = (
        repo.dir.path().join("signing.key"),
        repo.dir.path().join("next.key"),
    );
    let b_public = root.ok(&["repo", "keygen", "--out", arg(&b)]).stdout;
    let (a_id, b_id) = (key_id(&repo.public_key), key_id(b_public.trim()));
    Rotation {
        repo,
        a,
        b,
        a_id,
        b_id,
    }
}

#[test]
fn a_publisher_rotates_its_key_and_clients_follow() {
    let root = root();
    let Rotation {
        repo,
        a,
        b,
        a_id,
        b_id,
    } = rotation(&root);
    // A secret key given for it, or a file that is not there, is said to be so.
    let missing = a.with_extension("nosuch.pub");
    for (given, said) in [
        (
            arg(&a).to_owned(),
            format!(
                "`{}` is a secret key: give its public key, `{}.pub`",
                a.display(),
                a.display()
            ),
        ),
        (
            arg(&missing).to_owned(),
            format!(
                "`{}` is neither a minisign public key nor a file that exists",
                missing.display()
            ),
        ),
    ] {
        let run = root.fails(&["source", "add", "main", &repo.url, "--public-key", &given]);
        assert!(run.stderr.contains(&said), "{given}: {}", run.stderr);
    }
    // Pinned from keygen's minisign .pub file.
    let a_pub = a.with_extension("key.pub");
    root.ok(&[
        "source",
        "add",
        "main",
        &repo.url,
        "--public-key",
        arg(&a_pub),
    ]);
    assert_eq!(pinned(&root, "main"), [(a_id.clone(), None)]);

    // Signed by A, announcing B (given as its .pub file): B is pinned beside A.
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    let b_pub = b.with_extension("key.pub");
    let run = repo.publish_with(
        &root,
        &packages,
        None,
        &["--sign", arg(&a), "--next-key", arg(&b_pub)],
    );
    assert!(
        run.stdout
            .contains(&format!("it announces the next key ID {b_id}")),
        "{}",
        run.stdout
    );
    let text = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        text.contains(&format!("main: signed by key ID {a_id}, release serial "))
            && text.contains(&format!("announces its publisher's next key ID {b_id}")),
        "{text}"
    );
    assert_eq!(
        pinned(&root, "main"),
        [(a_id.clone(), Some(b_id.clone())), (b_id.clone(), None)]
    );
    let list = root.ok(&["source", "list"]).stdout;
    assert!(
        list.contains(&format!(
            "signed by key ID {a_id} (succeeded by {b_id}), {b_id}"
        )),
        "{list}"
    );
    // Pinned again by a configuration tool mid-rotation, or moved to a mirror, the source
    // keeps B beside A: the rotation goes on.
    let mirror = repo.url.replace("127.0.0.1", "localhost");
    for url in [&repo.url, &mirror, &repo.url] {
        root.ok(&[
            "source",
            "add",
            "--replace",
            "main",
            url,
            "--public-key",
            arg(&a_pub),
        ]);
        assert_eq!(
            pinned(&root, "main"),
            [(a_id.clone(), Some(b_id.clone())), (b_id.clone(), None)],
            "{url}"
        );
    }

    // Signed by B alone: accepted, and A is dropped.
    repo.publish_with(&root, &packages, None, &["--sign", arg(&b)]);
    repo.ok(&root, &["install", "--online", "core"]);
    assert_eq!(pinned(&root, "main"), [(b_id.clone(), None)]);

    // Signed by A alone now: refused, naming both keys.
    repo.publish_with(&root, &packages, None, &["--sign", arg(&a)]);
    let before = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "release.json` is signed by key ID {a_id}, not by the pinned key ID {b_id}"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn a_next_key_the_publisher_withdraws_is_unpinned_and_signs_nothing() {
    let root = root();
    let Rotation {
        repo,
        a,
        b,
        a_id,
        b_id,
    } = rotation(&root);
    root.ok(&[
        "source",
        "add",
        "main",
        &repo.url,
        "--public-key",
        &repo.public_key,
    ]);
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    let b_pub = b.with_extension("key.pub");
    repo.publish_with(
        &root,
        &packages,
        None,
        &["--sign", arg(&a), "--next-key", arg(&b_pub)],
    );
    repo.ok(&root, &["check-online"]);
    assert_eq!(
        pinned(&root, "main"),
        [(a_id.clone(), Some(b_id.clone())), (b_id.clone(), None)]
    );

    // The next release, still signed by A, announces nothing: B (a leaked next key, say)
    // is unpinned.
    repo.publish_with(&root, &packages, None, &["--sign", arg(&a)]);
    repo.ok(&root, &["check-online"]);
    assert_eq!(pinned(&root, "main"), [(a_id.clone(), None)]);
    repo.publish_with(&root, &packages, None, &["--sign", arg(&b)]);
    let run = repo.fails(&root, &["install", "--online", "core"]);
    assert!(
        run.stderr.contains(&format!(
            "release.json` is signed by key ID {b_id}, not by the pinned key ID {a_id}"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn unsigned_sources_work_and_are_shown_as_unsigned() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    root.ok(&["source", "add", "main", &repo.url]);
    let list = root.ok(&["source", "list"]).stdout;
    let mut lines = list.lines();
    assert!(
        lines.next().is_some_and(|header| header.starts_with("NAME")
            && header.contains("  KIND  ")
            && header.contains("  LOCATION")
            && header.ends_with("  TRUST"))
            && lines.next().is_some_and(|row| row.starts_with("main  ")
                && row.contains(&format!("  {}  ", repo.url))
                && row.ends_with("  unsigned")),
        "{list}"
    );
    let listed = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(listed[0]["signed"], false, "{listed}");
    let text = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        text.ends_with("main: unsigned: no publisher key is pinned, so only where it is read from (a server's certificate, a directory) vouches for what it offers\n"),
        "{text}"
    );
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "main")["trust"]["signed"],
        false,
        "{reports}"
    );
    repo.ok(&root, &["install", "--online", "core"]);
}

#[test]
fn downloads_while_repo_build_rebuilds_never_miss_a_file() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    let downloads = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let done = std::sync::atomic::AtomicBool::new(false);
    let failures = std::thread::scope(|scope| {
        let downloader = scope.spawn(|| {
            let mut failures = Vec::new();
            let mut count = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || count < 3 {
                let args = repo.trusting(&["download", "phonebook", "--out"]);
                let mut args = args.clone();
                args.push(arg(downloads.path()));
                let run = root.run(&args);
                if !run.success {
                    failures.push(run.stderr);
                }
                count += 1;
            }
            (failures, count)
        });
        // A publisher rebuilding every second, far more often than any does, while
        // downloads run. (A reader that finds a build swapped under it reads again, a
        // few times, pausing longer each time: rebuilds faster than a loaded machine
        // runs a download could outrun that, as no publisher's do.)
        for _ in 0..10 {
            repo.publish(&root, &packages, None);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        downloader
            .join()
            .unwrap_or_else(|_| (vec!["the downloader panicked".into()], 0))
    });
    let (failures, count) = failures;
    assert!(failures.is_empty(), "{count} downloads: {failures:?}");
    assert!(
        Path::new(&downloads.path().join("phonebook-1.0.0.tgz")).is_file(),
        "{count} downloads"
    );
    assert!(offers(&repo, &root, "check-online").contains(&(
        "phonebook".into(),
        "1.0.0".into(),
        "available".into()
    )));
}
