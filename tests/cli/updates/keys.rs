//! Licence-gated packages and download keys: the right key needed, and never shown or
//! sent elsewhere.

use std::io::Write;
use std::process::Stdio;

use modhost_test_support::{Root, arg, package, package_at};

use super::{PRO_GROUP, Repo, gated_phonebook, phonebook_with, signed_source, version};
use crate::root;

#[test]
fn a_licence_gated_package_needs_the_right_key() {
    let root = root();
    let repo = gated_phonebook(&root);
    repo.ok(&root, &["install", "--online", "core"]);
    let offered = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        offered.contains("phonebook 1.0.0 (installed -): available (licence key needed"),
        "{offered}"
    );

    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the server refused: a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: if the server wants a download or licence key, give it to the source"),
        "{}",
        run.stderr
    );
    // A key that would make every download URL invalid is refused when stored, and the
    // refusal does not repeat it.
    let run = root.fails(&[
        "source",
        "key",
        "main",
        "email=admin@example.org&key=sp ace7q",
    ]);
    assert!(
        run.stderr.contains("a space") && !run.stderr.contains("sp ace7q"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["source", "key", "main", "key=frag#ment7q"]);
    assert!(run.stderr.contains("`#`"), "{}", run.stderr);
    // A plus-addressed e-mail written as typed reaches the server with a space: said.
    let run = root.ok(&["source", "key", "main", "email=a+b@example.org&key=pl4s7q"]);
    assert!(
        run.stderr
            .contains("holds `+`, which servers read as a space")
            && !run.stderr.contains("pl4s7q"),
        "{}",
        run.stderr
    );

    let wrong = "wr0ngK3y7f3a9c";
    root.ok(&[
        "source",
        "key",
        "main",
        &format!("email=admin%40example.org&key={wrong}"),
    ]);
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the licence key is not valid for this e-mail address (error 403)"),
        "{}",
        run.stderr
    );
    let json = repo.fails(&root, &["--json", "install", "--online", "phonebook"]);
    assert!(
        json.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("(error 403)")),
        "{}",
        json.stdout
    );
    let list = root.ok(&["source", "list"]);
    let list_json = root.ok(&["source", "list", "--json"]);
    assert_eq!(list_json.json()[0]["has_key"], true, "{}", list_json.stdout);
    never_shows(wrong, &[&run, &json, &list, &list_json]);

    let key = repo.licence_key(&root, "admin@example.org");
    root.ok(&[
        "source",
        "key",
        "main",
        &format!("email=admin%40example.org&key={}", key.trim()),
    ]);
    // Told apart from one still needing it, in text and JSON.
    let offered = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        offered.contains("phonebook 1.0.0 (installed -): available (licence key given)"),
        "{offered}"
    );
    let offered = repo.ok(&root, &["--json", "check-online"]).json();
    let phonebook = offered[0]["offers"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["rawname"] == "phonebook"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&phonebook["gated"], &phonebook["key_given"]),
        (&true.into(), &true.into()),
        "{offered}"
    );
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    let list = root.ok(&["source", "list"]).stdout;
    assert!(
        list.contains("download key set") && !list.contains(key.trim()),
        "{list}"
    );
    // A key forgotten (leaked, expired): the downloads go without it, and are refused.
    let out = root.path().with_file_name("downloaded");
    assert!(std::fs::create_dir_all(&out).is_ok());
    repo.ok(&root, &["download", "phonebook", "--out", arg(&out)]);
    let cleared = root.ok(&["source", "key", "--clear", "main"]);
    assert!(cleared.stdout.contains("forgot the download key of main"));
    assert_eq!(
        root.ok(&["source", "list", "--json"]).json()[0]["has_key"],
        false
    );
    let run = repo.fails(&root, &["download", "phonebook", "--out", arg(&out)]);
    assert!(
        run.stderr
            .contains("a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    let again = root.ok(&["source", "key", "--clear", "main"]);
    assert!(again.stdout.contains("main had no download key"));
    root.ok(&[
        "source",
        "key",
        "main",
        &format!("email=admin%40example.org&key={}", key.trim()),
    ]);
    // Replaced by another address on the same server, the source keeps its key; moved to
    // another server, it does not, and says so.
    let has_key = || root.ok(&["source", "list", "--json"]).json()[0]["has_key"] == true;
    let mirror = format!("{}/mirror", repo.url);
    root.ok(&["source", "add", "--replace", "main", &mirror]);
    assert!(has_key(), "a key kept on its own server");
    let other = repo.url.replace("127.0.0.1", "localhost");
    let run = root.ok(&["source", "add", "--replace", "main", &other]);
    assert!(
        !has_key() && run.stderr.contains("so it is not kept"),
        "{}",
        run.stderr
    );
}

/// Fails unless `secret` is absent from every output of `runs` in every encoding a log
/// or a JSON document might give it: as is, percent-encoded, JSON-escaped, hex, base64.
fn never_shows(secret: &str, runs: &[&modhost_test_support::Run]) {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let percent: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let base64 = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bits: Vec<u8> = secret
            .bytes()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect();
        // Whole 6-bit groups only: the tail's encoding depends on what follows the secret.
        bits.chunks_exact(6)
            .map(|group| {
                let index = group
                    .iter()
                    .fold(0usize, |n, bit| n * 2 + usize::from(*bit));
                char::from(ALPHABET[index])
            })
            .collect::<String>()
    };
    let json = serde_json::to_string(secret).unwrap_or_default();
    for run in runs {
        for output in [&run.stdout, &run.stderr] {
            let lower = output.to_ascii_lowercase();
            for encoded in [secret, &hex, &percent, &base64, json.trim_matches('"')] {
                assert!(
                    !output.contains(encoded) && !lower.contains(&encoded.to_ascii_lowercase()),
                    "the download key shows (as `{encoded}`):\n{output}"
                );
            }
        }
    }
}

#[test]
fn a_refusal_answered_with_status_200_is_shown_as_the_servers_message() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    // jBackend (seed 003) may send its JSON refusal with status 200, in place of the package.
    // Its message is the server's text: escape sequences in it must not reach the terminal.
    let refusal = r#"{ "status": "ko", "error_code": "REL_ENS", "error_description": "\u001b[2J\u001b]0;owned\u0007Email not\u001b[8m specified" }"#;
    assert!(std::fs::write(repo.public().join("packages/phonebook-1.0.0.tgz"), refusal).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the server refused: Email not specified (error REL_ENS)")
            && !run.stderr.contains('\u{1b}')
            && !run.stderr.contains("owned"),
        "{:?}",
        run.stderr
    );
}

/// Stores `query` as the download key of `source`, read from standard input (`-`), so
/// that it never shows in the process list.
fn store_key(root: &Root, source: &str, query: &str) {
    let mut child = root
        .command(&["source", "key", source, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        assert!(writeln!(stdin, "{query}").is_ok());
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_download_key_never_shows_even_in_trace_logs() {
    let root = root();
    let repo = gated_phonebook(&root);
    let key = repo.licence_key(&root, "admin@example.org");
    store_key(
        &root,
        "main",
        &format!("email=admin%40example.org&key={key}"),
    );
    for filter in ["trace", "ureq::run=trace,ureq_proto=trace,rustls=trace"] {
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let run = Root::output(
            root.command(&repo.trusting(&["download", "phonebook", "--out", arg(out.path())]))
                .env("MODHOST_LOG", filter),
        );
        assert!(run.success, "{}", run.stderr);
        assert!(out.path().join("phonebook-1.0.0.tgz").is_file());
        for output in [&run.stdout, &run.stderr] {
            assert!(
                !output.contains(&key),
                "MODHOST_LOG={filter}: the key shows:\n{output}"
            );
        }
    }
}

#[test]
fn a_download_key_stored_for_one_server_never_goes_to_another() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // B gates phonebook 2.0.0; the key below is valid there, so only its absence can
    // make B refuse.
    let b = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0")],
        Some(PRO_GROUP),
    );
    let key = b.licence_key(&root, "a@example.org");
    let query = format!("email=a%40example.org&key={}", key.trim());
    let server = |url: &str| {
        format!("<updateservers><server type=\"extension\">{url}</server></updateservers>")
    };
    // A: where the key was stored for; nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let a = format!("https://127.0.0.1:{closed}/pb.xml");
    let from_a = dir.path().join("a");
    assert!(std::fs::create_dir_all(&from_a).is_ok());
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&server(&a), &from_a)),
    ]);
    store_key(&root, "phonebook/1", &query);
    root.ok(&["uninstall", "phonebook"]);

    // Another phonebook, whose first server is B: same channel name, another server.
    let b_feed = format!("{}/joomla/phonebook.xml", b.url);
    root.ok(&[
        "install",
        arg(&phonebook_with(&server(&b_feed), dir.path())),
    ]);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["has_key"], false, "{sources}");
    let before = root.fingerprint();
    let run = b.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("a licence key for the `pro` package group is required")
            && run.stderr.contains(&format!(
                "channel `phonebook/1`: its download key was stored for `{a}`, not `{b_feed}`, \
                 so it is not sent"
            )),
        "B never received the key: {}",
        run.stderr
    );
    never_shows(key.trim(), &[&run]);
    assert_eq!(root.fingerprint(), before);

    // Stored for B, the same key is B's to receive.
    store_key(&root, "phonebook/1", &query);
    let run = b.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{run:?}"
    );
}

#[test]
fn a_key_not_sent_to_a_package_on_another_server_is_named_as_why_it_was_refused() {
    let root = root();
    let gated = [package("core"), package_at("phonebook", "1.0.0")];
    let repo = Repo::serve(&root, &gated, Some(PRO_GROUP));
    // The same server under another name: another origin, as far as a key goes. FreePBX
    // documents name their packages by absolute URL, under the base URL.
    let elsewhere = repo.url.replace("127.0.0.1", "localhost");
    let key = repo.dir.path().join("signing.key");
    repo.publish_with(
        &root,
        &gated,
        Some(PRO_GROUP),
        &["--sign", arg(&key), "--base-url", &elsewhere],
    );
    let document = format!("{}/freepbx/phonebook.json", repo.url);
    root.ok(&[
        "source",
        "add",
        "pb",
        &document,
        "--kind",
        "freepbx",
        "--public-key",
        &repo.public_key,
    ]);
    let licence = repo.licence_key(&root, "a@example.org");
    let query = format!("email=a%40example.org&key={}", licence.trim());
    store_key(&root, "pb", &query);
    root.ok(&["install", arg(&package("core"))]);
    let before = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("that server turned the download down (\"a licence key for the `pro` package group is required")
            && run.stderr.contains(&format!(
                "the package is at `{elsewhere}`, another server than the source's"
            ))
            && !run.stderr.contains("give it to the source"),
        "{}",
        run.stderr
    );
    never_shows(licence.trim(), &[&run]);
    assert_eq!(root.fingerprint(), before);
}
