//! A module's own channels (FreePBX updateurl, Joomla servers) and a2 sources.

use modhost_test_support::{Root, arg, package, package_at, repackage};

use super::{
    PRO_GROUP, Repo, at_version, failed_with, phonebook_with, report, signed_source, version,
};
use crate::root;

#[test]
fn a_module_updateurl_is_followed_and_its_md5_is_verified() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let updateurl = format!("<updateurl>{}/freepbx/phonebook.json</updateurl>", repo.url);
    let v1 = phonebook_with(&updateurl, dir.path());
    root.ok(&["install", arg(&package("core")), arg(&v1)]);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["name"], "phonebook/updateurl", "{sources}");
    assert_eq!(sources[0]["kind"], "freepbx");
    assert_eq!(sources[0]["declared_by"], "phonebook");

    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    assert_eq!(
        (&offer["version"], &offer["status"]),
        (&"2.0.0".into(), &"upgrade".into()),
        "{reports}"
    );

    // FreePBX publishes only an md5sum: modhost checks it, unlike FreePBX, and every
    // other checksum the document gives.
    let json_file = repo.public().join("freepbx/phonebook.json");
    let original = std::fs::read_to_string(&json_file).unwrap_or_default();
    let original: serde_json::Value = serde_json::from_str(&original).unwrap_or_default();
    // Writes the document with `fields` set (null: removed); its text.
    let publish = |fields: &[(&str, serde_json::Value)]| {
        let mut doc = original.clone();
        if let Some(doc) = doc.as_object_mut() {
            for (name, value) in fields {
                match value {
                    serde_json::Value::Null => doc.remove(*name),
                    value => doc.insert((*name).to_owned(), value.clone()),
                };
            }
        }
        let text = doc.to_string();
        assert!(std::fs::write(&json_file, &text).is_ok());
        text
    };
    let null = serde_json::Value::Null;
    // The configuration below changes and comes back to this.
    root.configure("");
    let before = root.fingerprint();
    for (fields, refusal) in [
        (
            vec![
                ("sha256", null.clone()),
                ("sha1sum", null.clone()),
                ("md5sum", "0123456789abcdef0123456789abcdef".into()),
            ],
            "MD5 ",
        ),
        (
            vec![("sha256", null.clone()), ("sha1sum", "0".repeat(40).into())],
            "SHA-1 ",
        ),
        (
            vec![
                ("sha256", null.clone()),
                ("sha1sum", null.clone()),
                ("md5sum", null.clone()),
            ],
            "gives no checksum for its package, so it cannot be verified and is never downloaded",
        ),
    ] {
        publish(&fields);
        let run = repo.fails(&root, &["upgradeall", "--online"]);
        // Refused at the download, or, with no checksum at all, before it.
        let discarded =
            run.stderr.contains("the package was discarded") || !run.stderr.contains("Downloading");
        assert!(
            run.stderr.contains(refusal) && discarded && !run.stderr.contains("Verified"),
            "{refusal}: {}",
            run.stderr
        );
        assert_eq!(root.fingerprint(), before);
    }

    // A document announcing a version its package is not: refused, naming the module and
    // source once each, and what the package holds.
    publish(&[("version", "2.0.1".into())]);
    let run = repo.fails(&root, &["upgradeall", "--online"]);
    let refusal = run
        .stderr
        .lines()
        .find(|l| l.contains("not what the source announced"))
        .unwrap_or_default();
    assert!(
        refusal.contains("source `phonebook/updateurl`: `phonebook` 2.0.1 was left out: `")
            && refusal
                .ends_with("the package holds `phonebook` 2.0.0, not what the source announced")
            && refusal.matches("phonebook/updateurl").count() == 1,
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);

    // A SHA-1 alone is accepted, with a warning on the offer.
    publish(&[("sha256", null.clone()), ("md5sum", null.clone())]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    assert!(
        offer["warnings"][0]
            .as_str()
            .is_some_and(|w| w
                .starts_with("`phonebook` 2.0.0: only a SHA-1 checksum vouches for this package")),
        "{reports}"
    );

    // A release for a newer host than this one is reported, not offered.
    publish(&[("supported", serde_json::json!({ "version": "99.0" }))]);
    root.configure("[platform]\nversion = \"16.0\"\n");
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    let why = "`phonebook` 2.0.0 supports the host application from 99.0; this one is 16.0";
    assert!(
        offer["status"] == "not-applicable"
            && offer["warnings"][0]
                .as_str()
                .is_some_and(|w| w.starts_with(why)),
        "{reports}"
    );
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(run.stderr.contains(why), "{}", run.stderr);
    assert_eq!(
        repo.ok(&root, &["upgradeall", "--online"]).stdout,
        "nothing to do\n"
    );
    root.configure("");
    assert_eq!(root.fingerprint(), before);

    // MD5 alone: a signed source must give sha256, which its signature then covers...
    let md5_only = publish(&[("sha256", null.clone()), ("sha1sum", null.clone())]);
    let key = std::fs::read_to_string(repo.dir.path().join("signing.key")).unwrap_or_default();
    let key = modhost_repo::SecretKey::parse(&key).unwrap_or_else(|e| panic!("{e}"));
    let signature = repo.public().join("freepbx/phonebook.json.minisig");
    let claims = modhost_update::Claims {
        file: Some("freepbx/phonebook.json".into()),
        ..Default::default()
    };
    assert!(std::fs::write(&signature, key.sign(md5_only.as_bytes(), &claims)).is_ok());
    let url = format!("{}/freepbx/phonebook.json", repo.url);
    root.ok(&[
        "source",
        "add",
        "pbx",
        &url,
        "--kind",
        "freepbx",
        "--public-key",
        &repo.public_key,
    ]);
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "pbx",
            "the source is signed, but its document gives no sha256 for `phonebook` 2.0.0"
        ),
        "{reports}"
    );
    root.ok(&["source", "remove", "pbx"]);

    // ...while an unsigned one is taken on its MD5, with a warning in every output.
    let warning = "only an MD5 checksum vouches for this package; ask its publisher for \
                   sha256 or a signature";
    let text = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        text.contains(&format!(
            "phonebook/updateurl: phonebook 2.0.0 (installed 1.0.0): upgrade\n  warning: \
             `phonebook` 2.0.0: {warning}\n"
        )),
        "{text}"
    );
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/updateurl")["offers"][0]["warnings"][0],
        format!("`phonebook` 2.0.0: {warning}"),
        "{reports}"
    );
    // A script finds it in the change's record.
    let changes = repo.ok(&root, &["upgradeall", "--online", "--json"]).json();
    assert_eq!(
        (&changes[0]["action"], &changes[0]["warnings"]),
        (
            &serde_json::json!("upgraded"),
            &serde_json::json!([warning])
        ),
        "{changes}"
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

#[test]
fn joomla_servers_are_chosen_by_priority_platform_and_stability_and_take_download_keys() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let beta = repackage(
        &package_at("phonebook", "2.0.0"),
        |xml| xml.replace("<version>2.0.0</version>", "<version>3.0.0beta1</version>"),
        &dir.path().join("phonebook-3.0.0beta1.tgz"),
    );
    let repo = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), beta],
        Some(PRO_GROUP),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let servers = format!(
        "<updateservers>\
           <server type=\"extension\" priority=\"2\" name=\"Mirror\">https://127.0.0.1:{closed}/pb.xml</server>\
           <server type=\"extension\" priority=\"1\" name=\"Main\">{}/joomla/phonebook.xml</server>\
         </updateservers>",
        repo.url
    );
    let v1 = phonebook_with(&servers, dir.path());
    root.ok(&["install", arg(&package("core")), arg(&v1)]);
    let names: Vec<_> = root
        .ok(&["source", "list", "--json"])
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["phonebook/2", "phonebook/1"], "priority order");

    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        report(&reports, "phonebook/1")["error"].is_string(),
        "{reports}"
    );
    let offers = &report(&reports, "phonebook/2")["offers"];
    assert_eq!(
        offers[0]["version"], "2.0.0",
        "stable only by default: {reports}"
    );

    root.configure("[updates]\nstability = \"beta\"\n");
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/2")["offers"][0]["version"],
        "3.0.0beta1"
    );
    root.configure("[platform]\nname = \"otherpbx\"\n");
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/2")["offers"],
        serde_json::json!([])
    );
    root.configure("");

    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr
            .contains("the server refused: a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    let key = repo.licence_key(&root, "a@example.org");
    let keyed = |has: bool| {
        let sources = root.ok(&["source", "list", "--json"]).json();
        let channel = sources
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == "phonebook/2"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(channel["has_key"], has, "{sources}");
    };
    let store = || {
        root.ok(&[
            "source",
            "key",
            "phonebook/2",
            &format!("email=a%40example.org&key={}", key.trim()),
        ])
    };
    // A module's channel's key is forgotten as a source's is.
    store();
    keyed(true);
    root.ok(&["source", "key", "--clear", "phonebook/2"]);
    keyed(false);
    store();
    keyed(true);
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("phonebook/1") && !run.stderr.contains(key.trim()),
        "{}",
        run.stderr
    );
}

#[test]
fn a_joomla_server_answering_an_entity_bomb_affects_only_its_module() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let servers = format!(
        "<updateservers><server type=\"extension\" name=\"Main\">{}/joomla/phonebook.xml</server></updateservers>",
        repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&servers, dir.path())),
    ]);
    signed_source(&repo, &root);
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE updates [<!ENTITY a \"aaaaaaaaaa\">\
                <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\
                <updates><update><name>&c;</name></update></updates>";
    assert!(std::fs::write(repo.public().join("joomla/phonebook.xml"), bomb).is_ok());
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "phonebook/1",
            "a DOCTYPE is not allowed in an update document"
        ),
        "{reports}"
    );
    assert!(report(&reports, "main")["error"].is_null(), "{reports}");
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn a2_sources_and_local_directories_are_sources_too() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    // A relative directory, as an administrator types it from inside the repository's parent.
    let added = Root::output(
        root.command(&[
            "source",
            "add",
            "local",
            "out/public",
            "--public-key",
            &repo.public_key,
        ])
        .current_dir(repo.dir.path()),
    );
    assert!(added.success, "{}", added.stderr);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["url"], arg(&repo.public()), "{sources}");
    repo.ok(&root, &["install", "--online", "core"]);
    assert_eq!(version(&root, "core"), "16.0.40");
    root.ok(&["source", "remove", "--force", "local"]);

    repo.add_a2_source(&root, "pb", "phonebook");
    let payload = repo.public().join("a2/phonebook/1.0.0.tgz");
    let original = std::fs::read(&payload).unwrap_or_default();
    let mut tampered = original.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 1;
    }
    assert!(std::fs::write(&payload, &tampered).is_ok());
    let before = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    assert_eq!(root.fingerprint(), before);
    assert!(std::fs::write(&payload, &original).is_ok());
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");

    let url = format!("{}/packages/core-16.0.40.tgz", repo.url);
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let refused = repo.fails(&root, &["download", &url, "--out", arg(out.path())]);
    assert!(refused.stderr.contains("--sha256"), "{}", refused.stderr);
    let wrong = repo.fails(
        &root,
        &[
            "download",
            &url,
            "--sha256",
            &"0".repeat(64),
            "--out",
            arg(out.path()),
        ],
    );
    // The checksum was the administrator's, not a channel's: said as given.
    assert!(
        wrong
            .stderr
            .contains(&format!("does not match the given {}", "0".repeat(64))),
        "{}",
        wrong.stderr
    );
    let index = std::fs::read_to_string(repo.public().join("index.json")).unwrap_or_default();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap_or_default();
    let sha = index["modules"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    repo.ok(
        &root,
        &["download", &url, "--sha256", &sha, "--out", arg(out.path())],
    );
    let kept = out.path().join("core-16.0.40.tgz");
    let mode = std::fs::metadata(&kept).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(mode.ok(), Some(0o644), "a package others may read");
    // `--out` names a directory; a file's name, new or not, is said to be no directory.
    for (out, said) in [
        (kept.clone(), "it is a file, not a directory"),
        (out.path().join("new.tgz"), "there is no such directory"),
    ] {
        let run = repo.fails(
            &root,
            &["download", &url, "--sha256", &sha, "--out", arg(&out)],
        );
        assert!(
            run.stderr.contains(said) && !run.stderr.contains(".modhost-download"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn joomla_the_highest_version_across_servers_wins_and_a_tie_goes_to_priority() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = Repo::phonebook(&root, "2.0.0");
    // The second server lists only 2.0.0, from a package of its own that is missing: a
    // download from it fails, naming it.
    let feed = repo.public().join("joomla/phonebook.xml");
    let only_v2 = std::fs::read_to_string(&feed)
        .unwrap_or_default()
        .replace("phonebook-2.0.0.tgz", "mirror-2.0.0.tgz");
    assert!(only_v2.contains("mirror-2.0.0.tgz"), "{only_v2}");
    let mirror = repo.public().join("joomla/mirror.xml");
    assert!(std::fs::write(&mirror, &only_v2).is_ok());
    // Listed first with the lower priority: priority decides, not the order of the list.
    let servers = format!(
        "<updateservers>\
           <server type=\"extension\" priority=\"2\">{url}/joomla/phonebook.xml</server>\
           <server type=\"extension\" priority=\"1\">{url}/joomla/mirror.xml</server>\
         </updateservers>",
        url = repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&servers, dir.path())),
    ]);
    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains(" Downloading phonebook 2.0.0 from phonebook/2\n")
            && run
                .stderr
                .contains("mirror-2.0.0.tgz`: the server refused: no such file (error 404)"),
        "a tie goes to the server of priority 1: {}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);

    let v3 = at_version(&package_at("phonebook", "2.0.0"), "3.0.0", dir.path());
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), v3],
        None,
    );
    assert!(std::fs::write(&mirror, &only_v2).is_ok());
    let run = repo.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 3.0.0")
            && run
                .stderr
                .contains(" Downloading phonebook 3.0.0 from phonebook/1\n"),
        "the highest version wins whatever its server's priority: {run:?}"
    );
}
