//! What a channel offers but modhost will not take is said, with why: the seed's jBackend
//! feed verbatim (a Joomla platform), a beta, and a release with no checksum, which is
//! shown as unverifiable from the start and never downloaded.

use std::path::Path;

use modhost_test_support::{Root, arg, package};

use crate::root;
use crate::updates::report;

/// The seed's jBackend document, verbatim.
const JBACKEND: &str = r#"<updates> <update> <name>jBackend 3.7.0</name> <description>To update the package you must have a valid subscription</description> <element>pkg_jbackend</element> <type>package</type> <version>3.7.0</version> <client>0</client> <folder></folder> <infourl title="selfget.com website">https://www.selfget.com</infourl> <downloads> <downloadurl type="full" format="zip">https://www.selfget.com/packages/get/release/download/jback_370</downloadurl> </downloads> <tags> <tag>stable</tag> </tags> <maintainer>selfget.com</maintainer> <maintainerurl>https://www.selfget.com</maintainerurl> <targetplatform name="joomla" version="3.[012345678]" /> </update> </updates>"#;

/// One update for this host, as a Joomla server would list it.
fn update(element: &str, version: &str, tag: &str, checksum: &str) -> String {
    format!(
        "<update><name>{element}</name><element>{element}</element><version>{version}</version>\
         <targetplatform name=\"modhost\" version=\".*\"/><tags><tag>{tag}</tag></tags>\
         <downloads><downloadurl type=\"full\" format=\"tgz\">https://127.0.0.1:1/{element}.tgz</downloadurl></downloads>\
         {checksum}</update>"
    )
}

/// A `<sha256>` no package matches: enough for a channel to offer a release as sound.
fn any_sha256() -> String {
    format!("<sha256>{}</sha256>", "0".repeat(64))
}

/// Writes a Joomla feed of `updates` into `dir` and adds it to `root` as source `feed`.
fn add_feed(root: &Root, dir: &Path, updates: &[String]) {
    let feed = dir.join("feed.xml");
    let written = std::fs::write(&feed, format!("<updates>{}</updates>", updates.concat()));
    assert!(written.is_ok(), "{written:?}");
    root.ok(&["source", "add", "feed", arg(&feed), "--kind", "joomla"]);
}

#[test]
fn every_update_set_aside_is_reported_with_why_and_one_without_a_checksum_is_unverifiable() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let jbackend = dir.path().join("jbackend.xml");
    assert!(std::fs::write(&jbackend, JBACKEND).is_ok());
    root.ok(&["source", "add", "jb", arg(&jbackend), "--kind", "joomla"]);

    // The seed's feed offers nothing this host takes: said, not silent.
    let reports = root.ok(&["check-online", "--json"]).json();
    let jb = report(&reports, "jb");
    assert_eq!(jb["offers"], serde_json::json!([]), "{reports}");
    assert_eq!(jb["set_aside"][0]["rawname"], "pkg_jbackend", "{reports}");
    assert_eq!(jb["set_aside"][0]["version"], "3.7.0", "{reports}");
    let reason = jb["set_aside"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(r#"it is for <targetplatform name="joomla" version="3.[012345678]">"#)
            && reason.contains("not this host (modhost"),
        "{reason}"
    );
    let text = root.ok(&["check-online"]).stdout;
    assert!(
        text.contains("jb: pkg_jbackend 3.7.0: set aside: it is for <targetplatform")
            && text.contains("no modules offered (1 set aside, above)"),
        "{text}"
    );

    // A beta and a release with no checksum, beside a sound one.
    let sha = "0".repeat(64);
    let feed = dir.path().join("feed.xml");
    let xml = format!(
        "<updates>{}{}{}</updates>",
        update("core", "17.0.0", "beta", &format!("<sha256>{sha}</sha256>")),
        update("phonebook", "2.0.0", "stable", ""),
        update(
            "voicemail",
            "16.0.12",
            "stable",
            &format!("<sha256>{sha}</sha256>")
        ),
    );
    assert!(std::fs::write(&feed, xml).is_ok());
    root.ok(&["source", "add", "feed", arg(&feed), "--kind", "joomla"]);
    root.ok(&["install", arg(&package("core"))]);
    let reports = root.ok(&["check-online", "--json"]).json();
    let feed_report = report(&reports, "feed");
    assert_eq!(
        feed_report["set_aside"][0]["reason"],
        "it is tagged beta, less stable than the stable releases this host takes",
        "{reports}"
    );
    let offers = feed_report["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let phonebook = offers.iter().find(|o| o["rawname"] == "phonebook");
    let phonebook = phonebook.cloned().unwrap_or_default();
    assert_eq!(phonebook["status"], "unverifiable", "{reports}");
    assert!(
        phonebook["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("no checksum") && w.contains("<sha256>")),
        "{phonebook}"
    );
    let voicemail = offers.iter().find(|o| o["rawname"] == "voicemail");
    assert_eq!(
        voicemail.map(|o| o["status"].clone()),
        Some("available".into())
    );

    // Installing it is refused from the start: nothing is downloaded.
    refused_as_unverifiable(&root, "phonebook");
    let text = root.ok(&["showupgrades"]).stdout;
    assert!(text.contains("set aside: it is tagged beta"), "{text}");
    let reports = root.ok(&["showupgrades", "--json"]).json();
    assert_eq!(
        report(&reports, "feed")["set_aside"][0]["reason"],
        "it is tagged beta, less stable than the stable releases this host takes",
        "{reports}"
    );
}

#[test]
fn a_module_installed_from_a_file_takes_a_sources_updates_once_attached() {
    let root = root();
    let repo = crate::updates::Repo::phonebook(&root, "2.0.0");
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&modhost_test_support::package_at("phonebook", "1.0.0")),
    ]);
    crate::updates::signed_source(&repo, &root);

    // Not silent: the newer version is shown, with the step that takes it.
    let text = repo.ok(&root, &["showupgrades"]).stdout;
    assert!(
        text.contains("main: phonebook 2.0.0 (installed 1.0.0): other-source")
            && text.contains("`modhost source attach phonebook main` makes it so"),
        "{text}"
    );
    let info = root.ok(&["info", "phonebook"]).stdout;
    assert!(
        info.contains("modhost source attach phonebook SOURCE"),
        "{info}"
    );
    // Its module.xml names no channel of its own, and says what it needs and serves.
    for shown in [
        "source       none: installed from a file, and its module.xml names no update channel",
        "depends      core ge 16.0",
        "publisher    modhost",
        "method       ",
    ] {
        assert!(info.contains(shown), "{shown}: {info}");
    }
    repo.ok(&root, &["upgradeall", "--online"]);
    assert_eq!(crate::updates::version(&root, "phonebook"), "1.0.0");

    let run = root.fails(&["source", "attach", "phonebook", "nosuch"]);
    assert!(
        run.stderr.contains("there is no source `nosuch`"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["source", "attach", "voicemail", "main"]);
    assert!(
        run.stderr.contains("`voicemail` is not installed"),
        "{}",
        run.stderr
    );
    let attached = root
        .ok(&["--json", "source", "attach", "phonebook", "main"])
        .json();
    assert_eq!(attached["before"], serde_json::Value::Null, "{attached}");
    assert_eq!(
        root.ok(&["info", "--json", "phonebook"]).json()["source"],
        "main"
    );
    repo.ok(&root, &["upgradeall", "--online"]);
    assert_eq!(crate::updates::version(&root, "phonebook"), "2.0.0");

    // Attached to a source that offers nothing of it, a module is not left silent.
    root.ok(&["install", arg(&package("voicemail"))]);
    root.ok(&["source", "attach", "voicemail", "main"]);
    let text = repo.ok(&root, &["showupgrades"]).stdout;
    assert!(
        text.contains(
            "main: offers no voicemail, which takes its updates from it\n  \
             help: `modhost source attach voicemail SOURCE` takes them from another source\n"
        ),
        "{text}"
    );
    let reports = repo.ok(&root, &["--json", "check-online"]).json();
    assert_eq!(
        reports[0]["not_offered"],
        serde_json::json!(["voicemail"]),
        "{reports}"
    );
}

#[test]
fn a_modules_own_channel_is_named_as_one_when_attached_to_or_removed() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let core = modhost_test_support::repackage(
        &package("core"),
        |xml| {
            xml.replace(
                "</version>",
                "</version><updateurl>https://updates.example.org/core.json</updateurl>",
            )
        },
        &dir.path().join("core-16.0.40.tgz"),
    );
    root.ok(&["install", arg(&core)]);
    let info = root.ok(&["info", "core"]).stdout;
    assert!(
        info.contains(
            "source       none: installed from a file; its module.xml's channels update it"
        ) && info.contains("updateurl    https://updates.example.org/core.json"),
        "{info}"
    );
    for args in [
        &["source", "attach", "core", "core/updateurl"][..],
        &["source", "remove", "core/updateurl"],
    ] {
        let run = root.fails(args);
        assert!(
            run.stderr.contains(
                "`core/updateurl` is module `core`'s own channel, which its module.xml declares"
            ),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_download_that_fails_is_said_with_its_module_and_source() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    add_feed(
        &root,
        dir.path(),
        &[update("core", "16.0.50", "stable", &any_sha256())],
    );
    for json in [false, true] {
        let mut args = vec!["install", "--online", "core"];
        if json {
            args.insert(0, "--json");
        }
        let run = root.fails(&args);
        let error = match json {
            true => run.json()["error"].as_str().unwrap_or_default().to_owned(),
            false => run.stderr,
        };
        assert!(
            error.contains("source `feed`: `core` 16.0.50: ")
                && error.matches("nothing was changed").count() == 1,
            "{error}"
        );
    }
}

#[test]
fn an_unverifiable_release_from_another_source_is_said_and_not_offered_for_attaching() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package("voicemail")),
        arg(&modhost_test_support::package_at("phonebook", "1.0.0")),
    ]);
    let sha = any_sha256();
    add_feed(
        &root,
        dir.path(),
        &[
            update("phonebook", "2.0.0", "stable", ""),
            update("core", "16.0.50", "stable", &sha),
            update("voicemail", "16.0.1", "stable", &sha),
        ],
    );

    let reports = root.ok(&["showupgrades", "--json"]).json();
    let offers = report(&reports, "feed")["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let offer = |name: &str| offers.iter().find(|o| o["rawname"] == name).cloned();
    let phonebook = offer("phonebook").unwrap_or_default();
    assert_eq!(
        (&phonebook["status"], &phonebook["attachable"]),
        (&"unverifiable".into(), &false.into()),
        "{reports}"
    );
    assert!(
        phonebook["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("gives no checksum")),
        "{phonebook}"
    );
    assert_eq!(
        offer("core").map(|o| o["attachable"].clone()),
        Some(true.into()),
        "{reports}"
    );
    let text = root.ok(&["showupgrades"]).stdout;
    assert!(
        text.contains("feed: phonebook 2.0.0 (installed 1.0.0): unverifiable")
            && text.contains("cannot be verified and is never downloaded")
            && !text.contains("source attach phonebook feed")
            && text.contains("`modhost source attach core feed` makes it so")
            && !text.contains("voicemail"),
        "{text}"
    );
    // An older version from a channel the module is not updated from is a downgrade,
    // said by check-online, and no concern of showupgrades.
    let reports = root.ok(&["check-online", "--json"]).json();
    let voicemail = report(&reports, "feed")["offers"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["rawname"] == "voicemail").cloned())
        .unwrap_or_default();
    assert_eq!(
        (&voicemail["status"], &voicemail["own"]),
        (&"downgrade".into(), &false.into()),
        "{reports}"
    );
    // And an upgrade from the module's own channels is not held back by them.
    root.ok(&["upgradeall", "--online"]);
}

#[test]
fn a_release_without_a_checksum_never_hides_a_sound_one_and_older_or_current_ones_are_said() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sha = format!("<sha256>{}</sha256>", "0".repeat(64));
    let feed = dir.path().join("feed.xml");
    let xml = format!(
        "<updates>{}{}{}{}</updates>",
        update("phonebook", "2.0.0", "stable", ""),
        update("phonebook", "1.5.0", "stable", &sha),
        update("voicemail", "16.0.1", "stable", &sha),
        update("core", "16.0.40", "stable", &sha),
    );
    assert!(std::fs::write(&feed, xml).is_ok());
    let jbackend = dir.path().join("jbackend.xml");
    assert!(std::fs::write(&jbackend, JBACKEND).is_ok());
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&package("voicemail")),
        arg(&modhost_test_support::package_at("phonebook", "1.0.0")),
    ]);
    root.ok(&["source", "add", "feed", arg(&feed), "--kind", "joomla"]);
    root.ok(&["source", "add", "jb", arg(&jbackend), "--kind", "joomla"]);
    for module in ["core", "voicemail", "phonebook"] {
        root.ok(&["source", "attach", module, "feed"]);
    }

    // 2.0.0 has no checksum: 1.5.0, which has one, is the upgrade, and 2.0.0 is set
    // aside saying why.
    let reports = root.ok(&["check-online", "--json"]).json();
    let feed_report = report(&reports, "feed");
    let offers = feed_report["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let offer = |name: &str| {
        offers
            .iter()
            .find(|o| o["rawname"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(offer("phonebook")["version"], "1.5.0", "{reports}");
    assert_eq!(offer("phonebook")["status"], "upgrade", "{reports}");
    let aside = feed_report["set_aside"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        aside.iter().any(|a| a["rawname"] == "phonebook"
            && a["version"] == "2.0.0"
            && a["reason"].as_str().is_some_and(|r| r.starts_with(
                "the channel gives no checksum for its package, so it cannot be verified"
            ))),
        "{reports}"
    );

    // `showupgrades` lists the upgrade, says why 2.0.0 is not it, and names the older
    // version offered for voicemail instead of staying silent about it.
    let shown = root.ok(&["showupgrades", "--json"]).json();
    let feed_report = report(&shown, "feed");
    let statuses: Vec<(String, String)> = feed_report["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| (o["rawname"].to_string(), o["status"].to_string()))
        .collect();
    assert!(
        statuses.contains(&("\"phonebook\"".into(), "\"upgrade\"".into()))
            && statuses.contains(&("\"voicemail\"".into(), "\"downgrade\"".into()))
            && !statuses.iter().any(|(name, _)| name == "\"core\""),
        "{shown}"
    );
    let text = root.ok(&["showupgrades"]).stdout;
    assert!(
        text.contains("feed: voicemail 16.0.1 (installed 16.0.12): downgrade")
            && text.contains("feed: phonebook 2.0.0: set aside: the channel gives no checksum"),
        "{text}"
    );

    // The installed version, asked for again, is left as it is before any download.
    let run = root.ok(&["install", "--online", "core"]);
    assert!(
        run.stderr.contains("`core` 16.0.40 is already installed")
            && !run.stderr.contains("Downloading"),
        "{}",
        run.stderr
    );
    let unchanged = root.ok(&["install", "--online", "core", "--json"]).json();
    assert_eq!(
        unchanged,
        serde_json::json!([{"rawname": "core", "action": "unchanged", "from": "16.0.40", "to": "16.0.40"}]),
        "{unchanged}"
    );

    // A module a channel offers only for another platform is named with why.
    let run = root.fails(&["install", "--online", "pkg_jbackend"]);
    assert!(
        run.stderr.contains(
            "source `jb` offers `pkg_jbackend` 3.7.0, set aside: it is for <targetplatform"
        ) && !run.stderr.contains("no source offers"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_package_published_larger_than_a_package_may_be_is_not_applicable_from_the_start() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let document = format!(
        r#"{{"rawname":"phonebook","version":"9.0.0","size":1000000000000000,"sha256":"{}"}}"#,
        "a".repeat(64)
    );
    assert!(std::fs::write(dir.path().join("modsource.json"), document).is_ok());
    root.ok(&["source", "add", "pb", arg(dir.path()), "--kind", "a2"]);
    let reports = root.ok(&["check-online", "--json"]).json();
    let offer = &report(&reports, "pb")["offers"][0];
    assert_eq!(offer["status"], "not-applicable", "{offer}");
    assert!(
        offer["warnings"][0].as_str().is_some_and(|w| w.contains(
            "its package is published as 1000000000000000 bytes, more than the 268435456 a \
             package may be"
        )),
        "{offer}"
    );
    let run = root.fails(&["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("more than the 268435456"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_upgrade_held_back_by_a_newer_release_set_aside_names_it() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The newest release has no checksum; beside it, an older one that has.
    add_feed(
        &root,
        dir.path(),
        &[
            update("core", "16.0.50", "stable", ""),
            update("core", "16.0.1", "stable", &any_sha256()),
        ],
    );
    root.ok(&["install", arg(&package("core"))]);
    root.ok(&["source", "attach", "core", "feed"]);

    let run = root.fails(&["upgrade", "--online", "core"]);
    assert!(
        run.stderr
            .contains("source `feed` offers `core` 16.0.50, set aside: ")
            && run.stderr.contains("no checksum")
            && !run.stderr.contains("downgrade"),
        "{}",
        run.stderr
    );
    let run = root.ok(&["upgradeall", "--online"]);
    assert!(
        run.stderr
            .contains("source `feed` offers `core` 16.0.50, set aside: "),
        "{}",
        run.stderr
    );
    assert_eq!(crate::updates::version(&root, "core"), "16.0.40");

    // Up to date with what could be installed: said, and not refused.
    let feed = format!(
        "<updates>{}{}</updates>",
        update("core", "16.0.50", "stable", ""),
        update("core", "16.0.40", "stable", &any_sha256())
    );
    assert!(std::fs::write(dir.path().join("feed.xml"), feed).is_ok());
    let run = root.ok(&["upgrade", "--online", "core"]);
    assert!(
        run.stderr
            .contains("source `feed` offers `core` 16.0.50, set aside: "),
        "{}",
        run.stderr
    );
    // An install taking an older version than a channel offers says why, too.
    let run = root.ok(&["install", "--online", "core"]);
    assert!(
        run.stderr.contains(
            "source `feed` offers `core` 16.0.50, set aside: the channel gives no checksum"
        ) && run
            .stderr
            .contains("the newest that can be installed is 16.0.40"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_index_or_a2_package_without_a_checksum_is_unverifiable_and_the_rest_still_offered() {
    let root = root();
    let (index, a2) = (tempfile::tempdir(), tempfile::tempdir());
    let (Ok(index), Ok(a2)) = (index, a2) else {
        panic!("tempdir")
    };
    let entry = |rawname: &str, sha256: &str| {
        format!(
            r#"{{"rawname":"{rawname}","name":"{rawname}","version":"9.0.0",
                "file":"{rawname}-9.0.0.tgz","size":10{sha256}}}"#
        )
    };
    let document = format!(
        r#"{{"format":"modhost-index/1","modules":[{},{}]}}"#,
        entry("core", &format!(r#","sha256":"{}""#, "a".repeat(64))),
        entry("phonebook", ""),
    );
    assert!(std::fs::write(index.path().join("index.json"), document).is_ok());
    // Under the name a2 itself gives it.
    assert!(
        std::fs::write(
            a2.path().join("a2modsource.json"),
            r#"{"rawname":"voicemail","version":"9.0.0"}"#
        )
        .is_ok()
    );
    root.ok(&["source", "add", "ix", arg(index.path())]);
    root.ok(&["source", "add", "vm", arg(a2.path()), "--kind", "a2"]);
    let reports = root.ok(&["check-online", "--json"]).json();
    let status = |source: &str, rawname: &str| {
        report(&reports, source)["offers"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["rawname"] == rawname))
            .map(|o| (o["status"].clone(), o["warnings"][0].clone()))
    };
    assert_eq!(
        status("ix", "core").map(|(s, _)| s),
        Some("available".into()),
        "{reports}"
    );
    for (source, rawname) in [("ix", "phonebook"), ("vm", "voicemail")] {
        let Some((status, warning)) = status(source, rawname) else {
            panic!("{source} offers no {rawname}: {reports}");
        };
        assert_eq!(status, "unverifiable", "{reports}");
        assert!(
            warning
                .as_str()
                .is_some_and(|w| w.contains("no checksum") && w.contains("sha256")),
            "{warning}"
        );
    }
    refused_as_unverifiable(&root, "voicemail");
}

/// Asserts that installing `rawname` online is refused as unverifiable before anything
/// is downloaded.
fn refused_as_unverifiable(root: &Root, rawname: &str) {
    let run = root.fails(&["install", "--online", rawname]);
    assert!(
        run.stderr
            .contains("cannot be verified and is never downloaded")
            && !run.stderr.contains("Downloading"),
        "{}",
        run.stderr
    );
}
