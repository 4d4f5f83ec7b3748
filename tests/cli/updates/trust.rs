//! What a download must pass: checksums, signatures, https only, certificates, pinned keys.

use modhost_test_support::tls::generate;
use modhost_test_support::{arg, package, package_at};

use super::{Repo, failed_with, key_id, offers, phonebook_with, report, signed_source, version};
use crate::root;

#[test]
fn an_update_is_found_verified_and_installed_and_a_downgrade_is_reported_not_installed() {
    let root = root();
    let v1 = [package("core"), package_at("phonebook", "1.0.0")];
    let repo = Repo::serve(&root, &v1, None);
    let minisign_pub =
        std::fs::read_to_string(repo.dir.path().join("signing.key.pub")).unwrap_or_default();
    assert_eq!(
        minisign_pub.lines().nth(1),
        Some(repo.public_key.as_str()),
        "keygen writes a minisign.pub: {minisign_pub}"
    );
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    assert!(
        offers(&repo, &root, "showupgrades").is_empty(),
        "no update yet"
    );

    repo.publish(
        &root,
        &[
            package("core"),
            package_at("phonebook", "1.0.0"),
            package_at("phonebook", "2.0.0"),
        ],
        None,
    );
    assert_eq!(
        offers(&repo, &root, "showupgrades"),
        [("phonebook".into(), "2.0.0".into(), "upgrade".into())]
    );
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{}",
        run.stdout
    );
    let size = std::fs::metadata(repo.public().join("packages/phonebook-2.0.0.tgz"))
        .map(|m| m.len())
        .unwrap_or_default();
    assert!(
        run.stderr
            .contains(" Downloading phonebook 2.0.0 from main\n")
            && run
                .stderr
                .contains(&format!("    Verified phonebook ({size} bytes)\n")),
        "the download's status lines: {}",
        run.stderr
    );
    let lookup = root
        .ok(&["hook", "lookup", "--payload", "2025550100", "--json"])
        .json();
    assert_eq!(lookup[0]["output"], "Alice Example <+12025550100>");

    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        None,
    );
    assert!(offers(&repo, &root, "check-online").contains(&(
        "phonebook".into(),
        "1.0.0".into(),
        "downgrade".into()
    )));
    let refused = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(refused.stderr.contains("`phonebook` 2.0.0 is installed; source `main` offers 1.0.0: a downgrade is never installed"), "{}", refused.stderr);
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert_eq!(run.stdout, "nothing to do\n");
    assert!(
        run.stderr.contains(
            "`phonebook` 2.0.0 is installed; source `main` offers 1.0.0: a downgrade is never \
             installed"
        ),
        "upgradeall warns of the downgrade it skips: {}",
        run.stderr
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

#[test]
fn bad_checksums_and_signatures_are_refused_and_the_root_is_unchanged() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core"]);
    let before = root.fingerprint();

    let package_file = repo.public().join("packages/phonebook-1.0.0.tgz");
    let original = std::fs::read(&package_file).unwrap_or_default();
    let mut tampered = original.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 0xff;
    }
    assert!(std::fs::write(&package_file, &tampered).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("does not match the published")
            && run.stderr.contains("the package was discarded"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    // One byte more than the signed index says: a size mismatch, caught before any checksum.
    let mut longer = original.clone();
    longer.push(0);
    assert!(std::fs::write(&package_file, &longer).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    let published = original.len();
    assert!(
        run.stderr.contains(&format!(
            "more than {published} bytes sent or announced, {published} published; the package was discarded"
        )),
        "{}",
        run.stderr
    );
    assert!(std::fs::write(&package_file, &original).is_ok());

    let index = repo.public().join("index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_default();
    assert!(std::fs::write(&index, text.replace("\"1.0.0\"", "\"1.0.1\"")).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "source `main`: `{}/index.json` was changed after it was signed: its signature by \
             key ID {} does not match its content",
            repo.url,
            key_id(&repo.public_key)
        )),
        "{}",
        run.stderr
    );
    assert!(std::fs::write(&index, &text).is_ok());
    // Soundly signed, but by another publisher than the one pinned.
    let other = repo.dir.path().join("other.key");
    let other_key = root.ok(&["repo", "keygen", "--out", arg(&other)]).stdout;
    let pin = |key: &str| {
        root.ok(&[
            "source",
            "add",
            "--replace",
            "main",
            &repo.url,
            "--public-key",
            key,
        ])
    };
    pin(other_key.trim());
    let pinned_other = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "is signed by key ID {}, not by the pinned key ID {}",
            key_id(&repo.public_key),
            key_id(&other_key)
        )),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), pinned_other);
    pin(&repo.public_key);
    // Pinning other keys starts the source afresh, forgetting the serial the old ones
    // vouched for (how a source locked out by a far-future release recovers): the root is
    // compared from here.
    let before = root.fingerprint();
    assert!(std::fs::remove_file(repo.public().join("index.json.minisig")).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the source is signed but the signature of"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn plain_http_is_refused() {
    let root = root();
    // Where every plain-HTTP URL below points: nothing may ever connect to it.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://127.0.0.1:{}",
        plain.local_addr().map(|a| a.port()).unwrap_or(1)
    );
    let run = root.fails(&["source", "add", "main", &url]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&[
        "download",
        &format!("{url}/phonebook-2.0.0.tgz"),
        "--sha256",
        &"0".repeat(64),
        "--out",
        arg(out.path()),
    ]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );

    let channels = format!(
        "<updateurl>{url}/freepbx/phonebook.json</updateurl>\
         <updateservers><server type=\"extension\">{url}/joomla/phonebook.xml</server></updateservers>"
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, out.path())),
    ]);
    let reports = root.fails(&["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert!(
            failed_with(&reports, channel, "plain HTTP is refused"),
            "{reports}"
        );
    }
    let run = root.fails(&["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );
    assert!(plain.set_nonblocking(true).is_ok());
    assert!(plain.accept().is_err(), "a plain-HTTP URL was contacted");
}

#[test]
fn certificates_are_checked_against_the_public_roots_plus_every_ca_given() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core")], None);
    root.ok(&["source", "add", "main", &repo.url]);
    let reports = root.fails(&["check-online", "--json"]).json();
    assert!(
        failed_with(&reports, "main", "certificate"),
        "a private CA is not trusted unless given: {reports}"
    );
    // The library names its setting; the CLI adds its own flag.
    let run = root.fails(&["check-online"]);
    assert!(
        run.stdout.contains("ca_cert in modhost.toml") && run.stderr.contains("--ca-cert FILE"),
        "{run:?}"
    );

    // A bundle whose first certificate is another CA: every one in it is trusted.
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other = generate(other.path());
    let bundle = repo.dir.path().join("bundle.pem");
    let pem = [&other.ca, &repo.tls.ca]
        .map(|ca| std::fs::read_to_string(ca).unwrap_or_default())
        .concat();
    assert!(std::fs::write(&bundle, pem).is_ok());
    let run = root.ok(&["--ca-cert", arg(&bundle), "check-online"]);
    assert!(run.stdout.contains("main: core 16.0.40"), "{}", run.stdout);
    root.configure(&format!("ca_cert = '{}'\n", bundle.display()));
    let run = root.ok(&["check-online"]);
    assert!(run.stdout.contains("main: core 16.0.40"), "{}", run.stdout);
}

#[test]
fn a_module_can_pin_its_publishers_key_for_its_own_channels() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let channels = format!(
        "<updateurl publickey=\"{key}\">{url}/freepbx/phonebook.json</updateurl>\
         <updateservers><server type=\"extension\" publickey=\"{key}\">{url}/joomla/phonebook.xml</server></updateservers>",
        key = repo.public_key,
        url = repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, dir.path())),
    ]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert_eq!(
            report(&reports, channel)["offers"][0]["status"],
            "upgrade",
            "{reports}"
        );
    }

    // A document changed after signing (here: a mirror serving a doctored copy) is refused.
    for doc in ["freepbx/phonebook.json", "joomla/phonebook.xml"] {
        let path = repo.public().join(doc);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(std::fs::write(&path, text.replace("2.0.0", "2.0.1")).is_ok());
    }
    let before = root.fingerprint();
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert!(
            failed_with(&reports, channel, "was changed after it was signed"),
            "{reports}"
        );
    }
    let run = repo.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr.contains("nothing was upgraded")
            && run.stderr.contains(&format!(
                "source `phonebook/1`: `{}/joomla/phonebook.xml` was changed after it was signed",
                repo.url
            )),
        "a module none of whose channels can be trusted is reported: {run:?}"
    );
    assert_eq!(root.fingerprint(), before);
}
