//! Several sources at once: each failure its own, no module switching source, applying
//! what verified.

use modhost_test_support::{arg, package, package_at};

use super::{Repo, at_version, failed_with, phonebook_with, report, signed_source, version};
use crate::root;

#[test]
fn a_secret_in_a_modules_update_url_is_never_listed() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let declaring = phonebook_with(
        "<updateurl>https://user:s3cret@example.invalid/u.json?key=k3y</updateurl>",
        dir.path(),
    );
    root.ok(&["install", arg(&package("core")), arg(&declaring)]);
    for args in [&["source", "list"][..], &["source", "list", "--json"]] {
        let listed = root.ok(args).stdout;
        assert!(
            listed.contains("phonebook/updateurl")
                && listed.contains("https://…@example.invalid/u.json?…")
                && !listed.contains("s3cret")
                && !listed.contains("k3y"),
            "{args:?}: {listed}"
        );
    }
}

#[test]
fn a_source_that_is_down_or_answers_garbage_affects_only_itself() {
    let root = root();
    let good = Repo::phonebook(&root, "1.0.0");
    let garbage = Repo::serve_as(&root, &[package("voicemail")], None, Some(&good));
    assert!(
        std::fs::write(
            garbage.public().join("index.json"),
            "<!DOCTYPE html><html>oops</html>"
        )
        .is_ok()
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    signed_source(&good, &root);
    // Both sort ahead of `main`.
    let add_failing = || {
        let down = format!("https://127.0.0.1:{closed}");
        root.ok(&["source", "add", "down", &down]);
        root.ok(&["source", "add", "junk", &garbage.url]);
    };
    add_failing();

    let out = root.path().join("dl");
    assert!(std::fs::create_dir(&out).is_ok());
    let run = good.fails(&root, &["check-online", "--json"]);
    let reports = run.json();
    assert!(report(&reports, "down")["error"].is_string(), "{reports}");
    assert!(
        failed_with(&reports, "junk", "the index is not valid"),
        "{reports}"
    );
    assert_eq!(
        report(&reports, "main")["offers"].as_array().map(Vec::len),
        Some(2),
        "{reports}"
    );

    // Sources ahead of `main` that could not be read may offer them too, and a module
    // stays with the source it is installed from: it waits for them, not left to whoever
    // took a server down or answered garbage. A download binds nothing, and only says so.
    let run = good.fails(&root, &["install", "--online", "core", "phonebook"]);
    assert!(
        run.stderr
            .contains("`core` is offered by source `main`, but a module is installed")
            && run.stderr.contains("\n  - source `down`: ")
            && run.stderr.contains("\n  - source `junk`: ")
            && run.stderr.contains("the index is not valid"),
        "{}",
        run.stderr
    );
    assert!(!root.ok(&["list"]).stdout.contains("core"));
    let run = good.ok(&root, &["download", "core", "--out", arg(&out)]);
    assert!(
        run.stderr
            .contains("`core` is downloaded from source `main`, the first that answered"),
        "{}",
        run.stderr
    );
    // Once they are set aside, it comes from `main`, and stays with it when they are back.
    root.ok(&["source", "remove", "down"]);
    root.ok(&["source", "remove", "junk"]);
    good.ok(&root, &["install", "--online", "core", "phonebook"]);
    assert_eq!(version(&root, "core"), "16.0.40");
    add_failing();
    // Not installed: said before any source is asked, whichever of them fail.
    let other = good.fails(&root, &["upgrade", "--online", "voicemail"]);
    assert!(
        other
            .stderr
            .contains("`voicemail` is not installed; install it instead of upgrading"),
        "{}",
        other.stderr
    );

    good.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0")],
        None,
    );
    let run = good.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0")
            && run.stderr.contains("source `down`: ")
            && run
                .stderr
                .contains("skipped: no module to upgrade is updated from it"),
        "{run:?}"
    );

    // A repository's (or an a2 channel's) own document given for its location is said,
    // with the location to give.
    for (kind, document) in [
        ("index", "index.json"),
        ("index", "release.json"),
        ("a2", "modsource.json"),
    ] {
        let run = root.fails(&[
            "source",
            "add",
            "wrong",
            "--kind",
            kind,
            &format!("https://127.0.0.1:{closed}/repo/{document}"),
        ]);
        assert!(
            run.stderr.contains(&format!(
                "names the {kind} source's `{document}`; give the location that holds it, \
                 `https://127.0.0.1:{closed}/repo/`"
            )),
            "{}",
            run.stderr
        );
    }

    // A single document given as an index source (the default kind): the kind it is.
    for (document, kind) in [
        ("freepbx/phonebook.json", "freepbx"),
        ("joomla/phonebook.XML", "joomla"),
    ] {
        let location = format!("https://127.0.0.1:{closed}/{document}");
        let run = root.fails(&["source", "add", "wrong", &location]);
        assert!(
            run.stderr.contains(&format!(
                "`{location}` names a document, and an index source is the directory a \
                 repository's `index.json` is in;"
            )) && run
                .stderr
                .contains(&format!("is a source of kind `{kind}`")),
            "{}",
            run.stderr
        );
    }

    // One document kind given the other's document: added, with a warning naming the
    // kind it looks like (a server may name its documents as it likes).
    for (document, given, meant) in [
        ("joomla/phonebook.xml", "freepbx", "joomla"),
        ("freepbx/phonebook.json", "joomla", "freepbx"),
    ] {
        let location = format!("https://127.0.0.1:{closed}/{document}");
        let run = root.ok(&["source", "add", given, &location, "--kind", given]);
        assert!(
            run.stderr.contains(&format!(
                "`{location}` is named as a .{} document, which a {given} source does not read",
                &document[document.len() - 4..].trim_start_matches('.')
            )) && run
                .stderr
                .contains(&format!("is a source of kind `{meant}`")),
            "{}",
            run.stderr
        );
        root.ok(&["source", "remove", given]);
    }

    // A source is not silently redefined (which would drop its signing key)...
    let down = format!("https://127.0.0.1:{closed}");
    let run = root.fails(&["source", "add", "main", &down]);
    assert!(
        run.stderr.contains("source `main` already exists")
            && run.stderr.contains("signed")
            && run.stderr.contains("--replace"),
        "{}",
        run.stderr
    );
    // ...nor removed from under the modules installed from it.
    let run = root.fails(&["source", "remove", "main"]);
    assert!(
        run.stderr
            .contains("`core`, `phonebook` are installed from source `main`")
            && run.stderr.contains("they get no updates from any source")
            && run.stderr.matches("anyway").count() == 1
            && run
                .stderr
                .contains("help: --force removes the source anyway"),
        "{}",
        run.stderr
    );

    // The source a named module is updated from being down does stop its upgrade, and
    // `upgradeall` fails naming it.
    let replaced = root.ok(&["source", "add", "--replace", "main", &down]);
    assert_eq!(replaced.stdout, "replaced source main\n");
    let run = good.fails(&root, &["upgrade", "--online", "core"]);
    assert!(run.stderr.contains("source `main`: "), "{}", run.stderr);
    let run = good.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr
            .contains("nothing was upgraded; these channels could not be checked")
            && run.stderr.contains("source `main`: "),
        "{}",
        run.stderr
    );
}

#[test]
fn a_downloaded_upgrade_that_fails_as_it_is_applied_names_its_version_and_source() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core", "phonebook"]);
    // A release whose upgrade() fails: downloaded and verified, refused as it is applied.
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "3.0.0")],
        None,
    );
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("nothing was changed applying `phonebook` 3.0.0 (source `main`): ")
            && run.stderr.contains("upgrade failed on purpose"),
        "{}",
        run.stderr
    );
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn a_silent_server_is_given_up_on_and_the_others_are_checked() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core")], None);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent.local_addr().map(|a| a.port()).unwrap_or(1);
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    // Long enough for the working server to answer on a loaded 2-core machine.
    root.configure("[updates]\ntimeout_secs = 4\n");
    root.ok(&["source", "add", "main", &repo.url]);
    root.ok(&[
        "source",
        "add",
        "silent",
        &format!("https://127.0.0.1:{port}"),
    ]);
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(&reports, "silent", "timeout") || failed_with(&reports, "silent", "timed out"),
        "{reports}"
    );
    assert_eq!(
        report(&reports, "main")["offers"][0]["rawname"],
        "core",
        "{reports}"
    );
}

#[test]
fn a_module_from_one_source_is_never_replaced_from_another() {
    let root = root();
    // Installed from `b`; `a` sorts first, so taking the first channel that offers the
    // module would take `a`'s.
    let b = Repo::phonebook(&root, "1.0.0");
    let a = Repo::serve_as(&root, &[package_at("phonebook", "2.0.0")], None, Some(&b));
    root.ok(&["source", "add", "b", &b.url, "--public-key", &b.public_key]);
    b.ok(&root, &["install", "--online", "core", "phonebook"]);
    root.ok(&["source", "add", "a", &a.url, "--public-key", &a.public_key]);

    let reports = a.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "a")["offers"][0];
    assert_eq!(
        (&offer["version"], &offer["status"]),
        (&"2.0.0".into(), &"other-source".into()),
        "{reports}"
    );
    let run = a.ok(&root, &["upgradeall", "--online"]);
    assert_eq!(run.stdout, "nothing to do\n");
    // Left as it is, and said: "nothing to do" alone would read as nothing newer.
    assert!(
        run.stderr.contains(
            "source `a` offers `phonebook` 2.0.0, which is updated from source `b`: left as it is"
        ),
        "{}",
        run.stderr
    );
    let run = a.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert_eq!(
        run.stdout, "nothing to do\n",
        "its own source has nothing newer; a's 2.0.0 is not a candidate"
    );
    // Named, it is said as `upgradeall` says it.
    assert!(
        run.stderr.contains(
            "source `a` offers `phonebook` 2.0.0, which is updated from source `b`: left as it is"
        ),
        "{}",
        run.stderr
    );
    let before = root.fingerprint();
    let run = a.ok(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("`phonebook` 1.0.0 is already installed"),
        "its own source offers only the installed version:\n{}",
        run.stderr
    );
    b.publish(&root, &[package("core")], None);
    let run = a.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(
            "`phonebook` is installed from source `b`; source `a` offers 2.0.0, \
             but a module is never replaced by one from another source"
        ),
        "{}",
        run.stderr
    );
    let run = a.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(
            "no upgrade of `phonebook` is offered by the channels it is updated from; \
             source `a` offers 2.0.0, but a module is never replaced by one from another source"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert_eq!(version(&root, "phonebook"), "1.0.0");

    // Removed by force, `b` leaves its modules bound to no source: a new source of that
    // name, another server with another key, does not find them waiting for it.
    root.ok(&["source", "remove", "--force", "b"]);
    root.ok(&["source", "add", "b", &a.url, "--public-key", &a.public_key]);
    let run = a.ok(&root, &["upgradeall", "--online"]);
    assert!(
        run.stdout == "nothing to do\n"
            && run
                .stderr
                .contains("which is updated from no source (it was installed from a file)"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    assert!(root.ok(&["info", "--json", "phonebook"]).json()["source"].is_null());
}

#[test]
fn install_online_brings_the_modules_a_module_requires_from_the_sources() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core"), package("voicemail")], None);
    signed_source(&repo, &root);
    let run = repo.ok(&root, &["install", "--online", "voicemail"]);
    assert!(
        run.stderr
            .contains("Adding core from main: voicemail requires it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("installed core 16.0.40") && run.stdout.contains("installed voicemail"),
        "dependencies first, in one change: {}",
        run.stdout
    );
    let sources = root.ok(&["info", "--json", "core"]).json()["source"].clone();
    assert_eq!(sources, "main", "and it is updated from that source");

    let other = crate::root();
    let only_voicemail = Repo::serve(&other, &[package("voicemail")], None);
    signed_source(&only_voicemail, &other);
    let before = other.fingerprint();
    let run = only_voicemail.fails(&other, &["install", "--online", "voicemail"]);
    assert!(
        run.stderr
            .contains("requires module `core ge 16.0`: not installed"),
        "a module no source offers is named: {}",
        run.stderr
    );
    assert_eq!(other.fingerprint(), before);
}

#[test]
fn upgradeall_applies_what_verifies_while_an_explicit_upgrade_is_all_or_nothing() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = Repo::serve(
        &root,
        &[
            package("core"),
            package_at("phonebook", "1.0.0"),
            package("voicemail"),
        ],
        None,
    );
    // Two sources on one server: phonebook's and voicemail's a2 channels.
    repo.add_a2_source(&root, "pb", "phonebook");
    repo.add_a2_source(&root, "vm", "voicemail");
    root.ok(&["install", arg(&package("core"))]);
    repo.ok(&root, &["install", "--online", "phonebook", "voicemail"]);

    let voicemail = at_version(&package("voicemail"), "16.0.13", dir.path());
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), voicemail],
        None,
    );
    let payload = repo.public().join("a2/voicemail/16.0.13.tgz");
    let mut tampered = std::fs::read(&payload).unwrap_or_default();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 1;
    }
    assert!(std::fs::write(&payload, &tampered).is_ok());

    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook", "voicemail"]);
    assert!(
        run.stderr.contains("a2/voicemail/16.0.13.tgz`: SHA-256 "),
        "{}",
        run.stderr
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "nothing of the named set was applied"
    );

    let run = repo.fails(&root, &["--json", "upgradeall", "--online"]);
    let report = run.json();
    assert_eq!(
        report["changes"],
        serde_json::json!([{
            "rawname": "phonebook", "action": "upgraded", "from": "1.0.0", "to": "2.0.0"
        }]),
        "{report}"
    );
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    assert!(
        failures.len() == 1
            && failures[0].as_str().is_some_and(|f| {
                f.starts_with("source `vm`: `voicemail` 16.0.13 was left out: ")
                    && f.contains("SHA-256 ")
            }),
        "{report}"
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
    assert_eq!(version(&root, "voicemail"), "16.0.12");
}

#[test]
fn installing_the_installed_version_online_with_grant_grants_what_it_asks() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap_or_else(|e| panic!("{e}"));
    let asking = phonebook_with(
        &format!(
            "<capabilities><directory path=\"{}\" access=\"read-only\"/></capabilities>",
            shared.display()
        ),
        dir.path(),
    );
    let repo = Repo::serve(&root, &[package("core"), asking], None);
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core", "phonebook"]);
    let info = root.ok(&["info", "phonebook"]).stdout;
    assert!(info.contains("(not granted)"), "{info}");
    // Asked for again with its grants, the installed version is left as it is and granted.
    let run = repo.ok(&root, &["install", "--online", "--grant", "phonebook"]);
    assert_eq!(run.stdout, "granted phonebook 1.0.0\n", "{}", run.stderr);
    let info = root.ok(&["info", "phonebook"]).stdout;
    assert!(
        info.contains(&format!(
            "read-only access to `{}` (granted)",
            shared.display()
        )),
        "{info}"
    );
}

#[test]
fn a_one_module_channel_that_cannot_be_read_holds_back_only_its_module() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    // A FreePBX document offers phonebook alone; `0pb` sorts ahead of `main`.
    let document = format!("{}/freepbx/phonebook.json", repo.url);
    let one = [
        "source",
        "add",
        "0pb",
        &document,
        "--kind",
        "freepbx",
        "--public-key",
        &repo.public_key,
    ];
    root.ok(&one);
    signed_source(&repo, &root);
    repo.ok(&root, &["check-online"]);
    assert!(std::fs::remove_file(repo.public().join("freepbx/phonebook.json")).is_ok());
    // Down, it can offer nothing but phonebook: core is not held back by it...
    let run = repo.ok(&root, &["install", "--online", "core"]);
    assert!(!run.stderr.contains("0pb"), "{}", run.stderr);
    // ...and phonebook is.
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("`phonebook` is offered by source `main`, but a module is installed")
            && run.stderr.contains("\n  - source `0pb`: "),
        "{}",
        run.stderr
    );
}

#[test]
fn a_documents_trailing_slash_left_out_is_said() {
    let root = root();
    let run = root.ok(&[
        "source",
        "add",
        "fp",
        "https://example.invalid/upd/phonebook/",
        "--kind",
        "freepbx",
    ]);
    assert!(
        run.stderr.contains(
            "source `fp`: the `/` that ends its location is left out: \
             `https://example.invalid/upd/phonebook` is the document read"
        ),
        "{}",
        run.stderr
    );
    // A repository's location is a directory: its `/` says nothing.
    let run = root.ok(&["source", "add", "repo", "https://example.invalid/repo/"]);
    assert!(!run.stderr.contains("left out"), "{}", run.stderr);
}

#[test]
fn a_module_no_source_offers_is_said_apart_from_sources_that_could_not_be_read() {
    let root = root();
    let dir = root.path().join("sources");
    let (broken, empty) = (dir.join("broken"), dir.join("empty"));
    for (at, index) in [
        (&broken, "<!DOCTYPE html><html>oops</html>"),
        (&empty, r#"{"format":"modhost-index/1","modules":[]}"#),
    ] {
        assert!(std::fs::create_dir_all(at).is_ok());
        assert!(std::fs::write(at.join("index.json"), index).is_ok());
    }
    root.ok(&["source", "add", "broken", arg(&broken)]);
    let run = root.fails(&["install", "--online", "voicemail"]);
    assert!(
        run.stderr.contains("\n  - source `broken`: ")
            && run.stderr.contains(
                "no source could be read, so none was found to offer `voicemail`: try again \
                 when the failures above are mended"
            ),
        "{}",
        run.stderr
    );
    root.ok(&["source", "add", "empty", arg(&empty)]);
    let run = root.fails(&["install", "--online", "voicemail"]);
    assert!(
        run.stderr.contains(
            "no source that answered offers `voicemail`; 1 of 2 could not be read, and may"
        ),
        "{}",
        run.stderr
    );
    root.ok(&["source", "remove", "broken"]);
    let run = root.fails(&["install", "--online", "voicemail"]);
    assert!(
        run.stderr.contains("no source offers `voicemail`")
            && !run.stderr.contains("could not be read"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_proxy_the_environment_names_is_gone_through_and_named_when_it_fails() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let checked = |no_proxy: Option<&str>| {
        let args = repo.trusting(&["check-online"]);
        let mut command = root.command(&args);
        for name in [
            "ALL_PROXY",
            "all_proxy",
            "http_proxy",
            "HTTP_PROXY",
            "no_proxy",
        ] {
            command.env_remove(name);
        }
        command.env("HTTPS_PROXY", format!("http://127.0.0.1:{closed}"));
        match no_proxy {
            Some(hosts) => command.env("NO_PROXY", hosts),
            None => command.env_remove("NO_PROXY"),
        };
        modhost_test_support::Root::output(&mut command)
    };
    let run = checked(None);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !run.success
            && said.contains("the proxy refused the connection")
            && said.contains(&format!("through the proxy at `127.0.0.1:{closed}`"))
            && !said.contains("the server refused"),
        "{said}"
    );
    // A host NO_PROXY names is reached directly.
    let host = repo
        .url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let run = checked(Some(&host));
    assert!(run.success, "{}{}", run.stdout, run.stderr);
}
