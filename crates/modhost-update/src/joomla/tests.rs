//! Joomla update documents: what is offered, what is set aside and why, and what is
//! refused.

use super::*;

/// A target platform that fits every modhost host.
const ANY: &str = r#"<targetplatform name="modhost" version=".*"/>"#;

fn target(stability: Stability) -> Target {
    Target {
        platform: "modhost".into(),
        version: "1.4.0".into(),
        stability,
        php: None,
    }
}

fn update(version: &str, tag: &str, platform: &str) -> String {
    format!(
        "<update><name>Phonebook</name><element>phonebook</element><type>module</type>\
         <version>{version}</version><downloads><downloadurl type=\"full\" format=\"tgz\">\
         pb-{version}.tgz</downloadurl></downloads><tags><tag>{tag}</tag></tags>{platform}\
         <sha256>{}</sha256></update>",
        "a".repeat(64)
    )
}

/// `xml` read as phonebook's update document by a host taking `stability`, for the
/// module `rawname` (or any).
fn read(
    xml: &[u8],
    rawname: Option<&str>,
    stability: Stability,
) -> Result<(Vec<Release>, Vec<SetAside>), String> {
    let doc = Location::Url("https://h/joomla/phonebook.xml".into());
    parse(xml, &doc, rawname, &target(stability))
}

/// The locations offered for the update whose `<downloads>` are `downloads`.
fn downloads(downloads: &str) -> Result<Vec<Location>, String> {
    let xml = format!(
        "<updates><update><element>phonebook</element><version>2.0.0</version>\
         <downloads>{downloads}</downloads>{ANY}</update></updates>"
    );
    read(xml.as_bytes(), Some("phonebook"), Stability::Stable)
        .map(|(r, _)| r.into_iter().map(|r| r.location).collect())
}

#[test]
fn a_feed_of_several_mebibytes_is_read_as_any_channel_document() {
    // Some 3.2 MiB and 84,000 elements: past a module.xml's bounds, within a
    // document's.
    let filler = "<infourl>https://example.org/changelog</infourl>".repeat(16);
    let updates: String = (0..3000)
        .map(|i| {
            update(&format!("1.0.{i}"), "stable", ANY)
                .replace("</update>", &format!("{filler}</update>"))
        })
        .collect();
    let xml = format!("<updates>{updates}</updates>");
    assert!(xml.len() > 3 << 20, "{}", xml.len());
    let found = read(xml.as_bytes(), Some("phonebook"), Stability::Stable);
    assert_eq!(found.map(|(r, _)| r.len()), Ok(3000));
}

#[test]
fn a_feed_in_another_encoding_is_read_as_it_declares_itself() {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><updates>{}</updates>",
        update("2.0.0", "stable", ANY).replace("Phonebook", "T\u{e9}l\u{e9}phone")
    );
    let latin1: Vec<u8> = xml.chars().map(|c| c as u8).collect();
    let found = read(&latin1, Some("phonebook"), Stability::Stable);
    assert_eq!(found.map(|(r, _)| r.len()), Ok(1));
    let undeclared = b"<updates><update><name>T\xe9l</name></update></updates>";
    let found = read(undeclared, None, Stability::Stable);
    assert_eq!(
        found.err().as_deref(),
        Some(
            "the update XML cannot be read at 1:25: byte 0xE9 is not UTF-8, and the document \
             declares no other encoding (convert the file to UTF-8, or declare its encoding)"
        )
    );
}

#[test]
fn a_collection_is_said_to_be_one_with_the_documents_it_lists() {
    let xml = r#"<extensionset name="Extensions" description="All">
        <extension name="Phonebook" element="phonebook" type="module" version="2.0.0"
          detailsurl="https://h/joomla/phonebook.xml"/>
        <extension name="Other" element="other" type="module" version="1.0"
          detailsurl="https://h/joomla/other.xml"/></extensionset>"#;
    let doc = Location::Url("https://h/joomla/list.xml".into());
    let read = parse(
        xml.as_bytes(),
        &doc,
        Some("phonebook"),
        &target(Stability::Stable),
    );
    assert_eq!(
        read.err().as_deref(),
        Some(
            "the document is a Joomla collection (<extensionset>), which lists other update \
             documents: give the source an extension's own document, its `detailsurl` \
             (here: https://h/joomla/phonebook.xml)"
        )
    );
}

#[test]
fn a_gzip_tar_is_preferred_then_a_zip() {
    let url = |path: &str| Location::Url(format!("https://h/joomla/{path}"));
    let zip = r#"<downloadurl type="full" format="zip">pb.zip</downloadurl>"#;
    let tgz = r#"<downloadurl type="full" format="tgz">pb.tgz</downloadurl>"#;
    let upgrade = r#"<downloadurl type="upgrade" format="tgz">pb-up.tgz</downloadurl>"#;
    let tar = r#"<downloadurl type="full" format="tar">pb.tar</downloadurl>"#;
    assert_eq!(downloads(zip), Ok(vec![url("pb.zip")]));
    assert_eq!(downloads(&format!("{zip}{tgz}")), Ok(vec![url("pb.tgz")]));
    assert_eq!(downloads(&format!("{tgz}{zip}")), Ok(vec![url("pb.tgz")]));
    assert_eq!(
        downloads("<downloadurl>pb-plain</downloadurl>"),
        Ok(vec![url("pb-plain")])
    );
    assert_eq!(
        downloads(&format!("{upgrade}{tar}{zip}")),
        Ok(vec![url("pb.zip")])
    );
    assert_eq!(downloads(&format!("{upgrade}{tar}")), Ok(vec![]));
    // Joomla's own name for a gzip tar, and the spellings packages go by, in any case.
    for format in ["gz", "GZ", "tar.gz"] {
        let gz = format!(r#"<downloadurl type="full" format="{format}">pb.tgz</downloadurl>"#);
        assert_eq!(downloads(&format!("{zip}{gz}")), Ok(vec![url("pb.tgz")]));
    }
}

/// Our platform's element, for the versions `pattern` matches.
fn ours(pattern: &str) -> String {
    format!(r#"<targetplatform name="modhost" version="{pattern}"/>"#)
}

/// A document offering 2.0.0, stable, for our platform's versions `pattern` matches.
fn offering_for(pattern: &str) -> String {
    format!(
        "<updates>{}</updates>",
        update("2.0.0", "stable", &ours(pattern))
    )
}

fn offered(xml: &str, stability: Stability) -> Result<Vec<String>, String> {
    read(xml.as_bytes(), Some("phonebook"), stability)
        .map(|(r, _)| r.into_iter().map(|r| r.version).collect())
}

#[test]
fn what_is_not_offered_is_set_aside_with_why() {
    let xml = |platform: &str, tag: &str, download: &str| {
        format!(
            "<updates><update><element>phonebook</element><version>2.0.0</version>\
             {platform}<tags><tag>{tag}</tag></tags>\
             <downloads>{download}</downloads></update></updates>"
        )
    };
    let tgz = "<downloadurl type=\"full\" format=\"tgz\">https://h/p.tgz</downloadurl>";
    let aside = |text: String| {
        read(text.as_bytes(), None, Stability::Stable)
            .map(|(offered, aside)| (offered.len(), aside))
    };
    let joomla = r#"<targetplatform name="joomla" version="[345]"/>"#;
    let found = aside(xml(joomla, "stable", tgz));
    assert!(
        found.as_ref().is_ok_and(|(offered, aside)| *offered == 0
            && aside[0].rawname == "phonebook"
            && aside[0].version == "2.0.0"
            && aside[0]
                .reason
                .contains(r#"<targetplatform name="joomla" version="[345]">"#)
            && aside[0].reason.contains(
                "not this host (modhost 1.4.0; a host that is \
                 that platform says so in modhost.toml's [platform] name and version)"
            )),
        "{found:?}"
    );
    let ours = r#"<targetplatform name="modhost" version=".*"/>"#;
    let found = aside(xml(ours, "beta", tgz));
    assert!(
        found.as_ref().is_ok_and(|(_, aside)| aside[0].reason
            == "it is tagged beta, less stable than the stable releases this host takes"),
        "{found:?}"
    );
    let found = aside(xml(
        ours,
        "stable",
        "<downloadurl type=\"upgrade\">https://h/p</downloadurl>",
    ));
    assert!(
        found
            .as_ref()
            .is_ok_and(|(_, aside)| aside[0].reason.contains("no full download")),
        "{found:?}"
    );
}

/// The reasons a host on `version` of our platform, with PHP `php`, sets `xml`'s updates
/// aside for, and the versions it is offered.
fn judged(xml: &str, version: &str, php: Option<&str>) -> (Vec<String>, Vec<String>) {
    let doc = Location::Url("https://h/joomla/phonebook.xml".into());
    let target = Target {
        version: version.into(),
        php: php.and_then(|v| modhost_manifest::Version::parse(v).ok()),
        ..target(Stability::Stable)
    };
    match parse(xml.as_bytes(), &doc, Some("phonebook"), &target) {
        Ok((offered, aside)) => (
            offered.into_iter().map(|r| r.version).collect(),
            aside.into_iter().map(|a| a.reason).collect(),
        ),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_last_target_platform_is_the_one_read_as_joomla_reads_it() {
    // A generator that writes one line per platform version: Joomla's adapter keeps the
    // last, and so does modhost, saying so when it sets the update aside.
    let both = format!("{}{}", ours("1\\."), ours("2\\."));
    let xml = format!("<updates>{}</updates>", update("2.0.0", "stable", &both));
    assert_eq!(judged(&xml, "2.1.0", None), (vec!["2.0.0".into()], vec![]));
    let (offered, aside) = judged(&xml, "1.4.0", None);
    assert!(offered.is_empty(), "{offered:?}");
    assert_eq!(
        aside,
        vec![
            "it is for <targetplatform name=\"modhost\" version=\"2\\.\"> (the last of its 2 \
             <targetplatform>s, the one Joomla reads), not this host's version (modhost 1.4.0)"
                .to_owned()
        ]
    );
    // Our platform at another version: no advice to declare what is declared.
    let xml = offering_for("3\\.");
    let (_, aside) = judged(&xml, "1.4.0", None);
    assert_eq!(
        aside,
        vec![
            "it is for <targetplatform name=\"modhost\" version=\"3\\.\">, not this host's \
             version (modhost 1.4.0)"
                .to_owned()
        ]
    );
    // Our platform, of a version not declared: how to declare it.
    let (_, aside) = judged(&xml, "", None);
    assert!(
        aside.len() == 1
            && aside[0].ends_with(
                "not this host (modhost of undeclared version; a host says its version in \
             modhost.toml's [platform] version)"
            ),
        "{aside:?}"
    );
}

#[test]
fn an_update_needing_a_newer_php_than_the_host_declares_is_set_aside() {
    let xml = format!(
        "<updates>{}</updates>",
        update("2.0.0", "stable", ANY)
            .replace("</update>", "<php_minimum>8.1</php_minimum></update>")
    );
    let (offered, aside) = judged(&xml, "1.4.0", Some("7.4.33"));
    assert!(offered.is_empty(), "{offered:?}");
    assert_eq!(
        aside,
        vec![
            "it needs PHP 8.1 or newer (its <php_minimum>), and this host's PHP is 7.4.33"
                .to_owned()
        ]
    );
    // A PHP as new, or newer, or none declared (a host that runs no PHP): offered.
    for php in [Some("8.1.0"), Some("8.3.2"), None] {
        assert_eq!(
            judged(&xml, "1.4.0", php),
            (vec!["2.0.0".into()], vec![]),
            "{php:?}"
        );
    }
}

#[test]
fn platform_and_stability_choose_what_is_offered() {
    let ours = r#"<targetplatform name="modhost" version="1\.[0-4]"/>"#;
    let xml = format!(
        "<updates>{}{}{}{}</updates>",
        update("2.0.0", "stable", ours),
        update("3.0.0beta1", "beta", ours),
        update(
            "4.0.0",
            "stable",
            r#"<targetplatform name="modhost" version="2\."/>"#
        ),
        update(
            "5.0.0",
            "stable",
            r#"<targetplatform name="joomla" version=".*"/>"#
        ),
    );
    assert_eq!(offered(&xml, Stability::Stable), Ok(vec!["2.0.0".into()]));
    assert_eq!(
        offered(&xml, Stability::Beta),
        Ok(vec!["2.0.0".into(), "3.0.0beta1".into()])
    );
}

#[test]
fn hostile_documents_are_refused() {
    let bomb = "<!DOCTYPE updates [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\
                <updates>&b;</updates>";
    let refused = offered(bomb, Stability::Stable);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("DOCTYPE")
            && e.contains("in an update document")
            && !e.contains("module.xml")),
        "{refused:?}"
    );
    assert!(offered("{\"json\": true}", Stability::Stable).is_err());
    assert!(offered("<html><body/></html>", Stability::Stable).is_err());
    let long = offering_for(&"(a*)*".repeat(100));
    assert!(offered(&long, Stability::Stable).is_err());
    // Short, and too large compiled: said in words, not the regex crate's.
    let complex = offering_for(r"\w{1000}");
    let refused = offered(&complex, Stability::Stable);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("is too complex to match")),
        "{refused:?}"
    );
    // Each compile is bounded, and so is how many distinct ones a document asks for.
    let many: String = (0..40)
        .map(|i| {
            update(
                &format!("2.0.{i}"),
                "stable",
                &ours(&format!(r"(1|{i})\..*")),
            )
        })
        .collect();
    let parsed = read(
        format!("<updates>{many}</updates>").as_bytes(),
        Some("phonebook"),
        Stability::Stable,
    );
    let Ok((offered_many, set_aside)) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(offered_many.len(), 32);
    assert_eq!(set_aside.len(), 8);
    assert!(
        set_aside.iter().all(|s| s
            .reason
            .contains("more than 32 different target platform patterns")),
        "{set_aside:?}"
    );
    let bad_version = format!("<updates>{}</updates>", update("2.x", "stable", ANY));
    assert!(offered(&bad_version, Stability::Stable).is_err());
    // A pattern that does not parse is said on one line, what is wrong with it named.
    let unclosed = offering_for("[");
    let refused = offered(&unclosed, Stability::Stable);
    assert!(
        refused.as_ref().is_err_and(|e| e
            .contains("the target platform pattern `[` is invalid: unclosed character class")
            && !e.contains('\n')),
        "{refused:?}"
    );
}

#[test]
fn a_malformed_update_is_skipped_and_the_rest_offered() {
    let bad_digest = update("3.0.0", "stable", ANY).replace(&"a".repeat(64), "not-hex");
    let bad_pattern = update("4.0.0", "stable", &ours(&"(a*)*".repeat(100)));
    let xml = format!(
        "<updates>{}{}{}{}</updates>",
        update("2.x", "stable", ANY),
        update("2.0.0", "stable", ANY),
        bad_digest,
        bad_pattern,
    );
    assert_eq!(offered(&xml, Stability::Stable), Ok(vec!["2.0.0".into()]));
    // What was skipped is set aside, each saying what is wrong with it.
    let aside = read(xml.as_bytes(), None, Stability::Stable)
        .map(|(_, aside)| aside)
        .unwrap_or_default();
    let reasons: Vec<(&str, bool)> = aside
        .iter()
        .map(|a| {
            (
                a.version.as_str(),
                a.reason.starts_with("it is malformed: <update> at line 1:"),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![("2.x", true), ("3.0.0", true), ("4.0.0", true)],
        "{aside:?}"
    );
    // An empty checksum is none: the update is offered, and unverifiable.
    let empty = update("5.0.0", "stable", ANY).replace(&"a".repeat(64), "");
    let stable = |updates: String| {
        read(
            format!("<updates>{updates}</updates>").as_bytes(),
            None,
            Stability::Stable,
        )
    };
    let found = stable(empty);
    assert!(
        found
            .as_ref()
            .is_ok_and(|(offered, _)| offered.len() == 1 && offered[0].digests.is_empty()),
        "{found:?}"
    );
    // Two different checksums for one download: set aside, naming them; the same one
    // written twice is one checksum.
    let sum = format!("<sha256>{}</sha256>", "a".repeat(64));
    let twice = update("6.0.0", "stable", ANY).replace(&sum, &format!("{sum}{sum}"));
    let conflicting = update("7.0.0", "stable", ANY)
        .replace(&sum, &format!("{sum}<sha256>{}</sha256>", "b".repeat(64)));
    let found = stable(format!("{twice}{conflicting}"));
    assert!(
        found
            .as_ref()
            .is_ok_and(|(offered, aside)| offered.len() == 1
                && offered[0].version == "6.0.0"
                && aside.len() == 1
                && aside[0].version == "7.0.0"
                && aside[0].reason.contains("two different <sha256> checksums")),
        "{found:?}"
    );
    // Bad entries only: the feed is broken, not empty, and says why.
    let xml = format!(
        "<updates>{bad_digest}{}</updates>",
        update("2.x", "stable", ANY)
    );
    let refused = offered(&xml, Stability::Stable);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("line 1") && e.contains("sha256")),
        "{refused:?}"
    );
    // A sound entry ruled out by its tag is not a broken feed.
    let xml = format!(
        "<updates>{bad_digest}{}</updates>",
        update("3.1.0beta1", "beta", ANY)
    );
    assert_eq!(offered(&xml, Stability::Stable), Ok(vec![]));
}

#[test]
fn an_update_naming_no_target_platform_is_skipped() {
    let xml = format!(
        "<updates>{}{}</updates>",
        update("3.0.0", "stable", ""),
        update("2.0.0", "stable", ANY)
    );
    assert_eq!(offered(&xml, Stability::Stable), Ok(vec!["2.0.0".into()]));
    // Only such updates: the feed says nothing for this host, and is refused saying why.
    let xml = format!("<updates>{}</updates>", update("3.0.0", "stable", ""));
    let refused = offered(&xml, Stability::Stable);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("no <targetplatform>")),
        "{refused:?}"
    );
}

#[test]
fn element_names_are_read_in_any_case_as_joomlas_updater_reads_them() {
    // PHP's XML parser folds element names before Joomla's updater compares them.
    let xml = update("2.0.0", "stable", ANY)
        .replace("<update>", "<UPDATE>")
        .replace("</update>", "</UPDATE>")
        .replace("<version>", "<Version>")
        .replace("</version>", "</Version>")
        .replace("<downloads>", "<Downloads>")
        .replace("</downloads>", "</Downloads>")
        .replace("<sha256>", "<SHA256>")
        .replace("</sha256>", "</SHA256>");
    let found = read(
        format!("<Updates>{xml}</Updates>").as_bytes(),
        None,
        Stability::Stable,
    );
    assert!(
        found.as_ref().is_ok_and(|(offered, aside)| aside.is_empty()
            && offered.len() == 1
            && offered[0].version == "2.0.0"
            && !offered[0].digests.is_empty()),
        "{found:?}"
    );
}

#[test]
fn a_version_offered_twice_is_kept_once_when_alike_and_set_aside_when_not() {
    // Feeds list a version once per platform version they support, all alike.
    let alike = format!(
        "<updates>{}{}{}</updates>",
        update("2.0.0", "stable", ANY),
        update("2.0.0", "stable", &ours("1\\..*")),
        update("1.0.0", "stable", ANY)
    );
    assert_eq!(
        offered(&alike, Stability::Stable),
        Ok(vec!["2.0.0".to_owned(), "1.0.0".to_owned()])
    );
    // One differing (another checksum, added by whoever could add it): neither is taken.
    let other = update("2.0.0", "stable", ANY).replace(&"a".repeat(64), &"b".repeat(64));
    let differing = format!(
        "<updates>{}{other}{}{}</updates>",
        update("2.0.0", "stable", ANY),
        update("2.0.0", "stable", ANY),
        update("1.0.0", "stable", ANY)
    );
    let found = read(differing.as_bytes(), Some("phonebook"), Stability::Stable);
    assert!(
        found
            .as_ref()
            .is_ok_and(|(offered, aside)| offered.len() == 1
                && offered[0].version == "1.0.0"
                && aside.len() == 1
                && aside[0].version == "2.0.0"
                && aside[0]
                    .reason
                    .contains("offered twice, with different packages")),
        "{found:?}"
    );
}

#[test]
fn an_update_naming_two_versions_or_two_elements_is_malformed_and_set_aside() {
    let two_versions = update("2.0.0", "stable", ANY).replace(
        "<version>2.0.0</version>",
        "<version>2.0.0</version><version>9.0.0</version>",
    );
    let two_elements = update("3.0.0", "stable", ANY).replace(
        "<element>phonebook</element>",
        "<element>phonebook</element><element>core</element>",
    );
    // The same value twice says one thing: it is taken.
    let repeated = update("4.0.0", "stable", ANY).replace(
        "<version>4.0.0</version>",
        "<version>4.0.0</version><version> 4.0.0 </version>",
    );
    let xml = format!("<updates>{two_versions}{two_elements}{repeated}</updates>");
    let found = read(xml.as_bytes(), None, Stability::Stable);
    let Ok((offered, aside)) = &found else {
        panic!("{found:?}");
    };
    let offered: Vec<&str> = offered.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(offered, ["4.0.0"]);
    let reasons: Vec<(&str, &str)> = aside
        .iter()
        .map(|a| (a.version.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "2.0.0",
                "it is malformed: <update> at line 1: it names two different <version>s"
            ),
            (
                "3.0.0",
                "it is malformed: <update> at line 1: it names two different <element>s"
            ),
        ]
    );
}

#[test]
fn an_html_page_in_the_feeds_place_is_said_to_be_one() {
    let page = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head></html>";
    let said = read(page.as_bytes(), None, Stability::Stable)
        .err()
        .unwrap_or_default();
    assert!(
        said.starts_with(&format!(
            "an HTML page ({} bytes), not update XML",
            page.len()
        )),
        "{said}"
    );
}

#[test]
fn a_json_document_in_the_feeds_place_names_the_kinds_that_read_json() {
    for json in [r#"{"rawname":"core","version":"16.0.40"}"#, "\u{feff} [1]"] {
        let said = read(json.as_bytes(), None, Stability::Stable)
            .err()
            .unwrap_or_default();
        assert_eq!(
            said,
            "JSON, not update XML (FreePBX updateurl JSON is read by a source of kind \
             `freepbx`, an a2 repository's by kind `a2`)"
        );
    }
}
