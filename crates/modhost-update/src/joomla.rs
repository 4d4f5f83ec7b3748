//! Joomla update servers (seed 003): `<updates><update>…</update></updates>`, filtered by
//! target platform and stability.

use modhost_manifest::xml::{self, Element};
use regex::RegexBuilder;

use crate::index::MAX_INDEX;
use crate::release::{Digests, Release, SetAside, Stability, Target};
use crate::{Location, valid_release};

/// How large an update XML is read: as large as any channel document, and as many
/// elements as that many bytes could sensibly hold (an `<update>` is some 20 elements in
/// a kibibyte or more).
const BOUNDS: xml::Bounds = xml::Bounds {
    max_size: MAX_INDEX as usize,
    max_elements: 100_000,
};

/// Each `<targetplatform version>` pattern of a document, and whether it matches.
type Patterns = std::collections::HashMap<String, Result<bool, String>>;

/// The longest `<targetplatform version>` pattern accepted: it is remote data.
const MAX_PATTERN: usize = 256;
/// The compiled pattern's size bound, so a hostile pattern cannot take memory or time.
const PATTERN_SIZE: usize = 64 * 1024;
/// The most distinct patterns one document may have compiled: a feed has one or two.
const MAX_PATTERNS: usize = 32;

/// What a server's document offers `target`: every `<update>` for `rawname` (any element
/// when `None`) whose platform matches and whose tag is stable enough, and the others set
/// aside with why. As in Joomla, a
/// malformed `<update>` is skipped (with a warning) and the rest still offered; but a
/// document that is not an `<updates>` list, or whose every `<update>` considered is
/// malformed, is refused: a broken feed must not read as one offering nothing.
pub(crate) fn parse(
    bytes: &[u8],
    doc: &Location,
    rawname: Option<&str>,
    target: &Target,
) -> Result<(Vec<Release>, Vec<SetAside>), String> {
    let text = xml::decode_within(bytes, BOUNDS.max_size).map_err(|e| {
        format!(
            "the update XML cannot be read at {}:{}: {}",
            e.position.line, e.position.column, e.message
        )
    })?;
    let root = xml::parse_within(&text, BOUNDS).map_err(|e| {
        format!(
            "the update XML is malformed at {}:{}: {}",
            e.position.line,
            e.position.column,
            in_update_document(&e.message)
        )
    })?;
    if root.name == "extensionset" {
        // A collection server's list: each extension's own document is its `detailsurl`.
        let details: Vec<&str> = root
            .children_named("extension")
            .filter(|e| rawname.is_none_or(|r| e.attribute("element") == Some(r)))
            .filter_map(|e| e.attribute("detailsurl"))
            .take(3)
            .collect();
        let named = match details.as_slice() {
            [] => String::new(),
            urls => format!(" (here: {})", urls.join(", ")),
        };
        return Err(format!(
            "the document is a Joomla collection (<extensionset>), which lists other update \
             documents: give the source an extension's own document, its `detailsurl`{named}"
        ));
    }
    if root.name != "updates" {
        return Err(format!(
            "the document is <{}>, not a Joomla <updates> list",
            root.name
        ));
    }
    let (mut releases, mut set_aside) = (Vec::new(), Vec::new());
    let (mut sound, mut problems) = (0_usize, Vec::new());
    let mut patterns = Patterns::new();
    for update in root.children_named("update") {
        let element = update.child("element").map_or("", Element::trimmed_text);
        if rawname.is_some_and(|r| r != element) {
            continue;
        }
        match release(update, doc, target, &mut patterns) {
            Ok(Ok(offered)) => {
                sound += 1;
                releases.push(offered);
            }
            Ok(Err(reason)) => {
                sound += 1;
                let field = |name: &str| update.child(name).map_or("", Element::trimmed_text);
                set_aside.push(SetAside {
                    rawname: element.to_owned(),
                    version: field("version").to_owned(),
                    reason,
                });
            }
            Err(message) => problems.push((
                update,
                format!("<update> at line {}: {message}", update.position.line),
            )),
        }
    }
    if sound == 0
        && let Some((_, problem)) = problems.first()
    {
        return Err(problem.clone());
    }
    // Beside sound ones, a malformed update is set aside, saying what is wrong with it:
    // nothing a channel offers is dropped silently.
    for (update, problem) in problems {
        let field = |name: &str| update.child(name).map_or("", Element::trimmed_text);
        set_aside.push(SetAside {
            rawname: field("element").to_owned(),
            version: field("version").to_owned(),
            reason: format!("it is malformed: {problem}"),
        });
    }
    Ok((releases, set_aside))
}

/// The XML reader's `message`, which speaks of the module.xml it usually reads, about an
/// update document instead: an administrator told of a DOCTYPE "in module.xml" would look
/// for the fault in the wrong file.
fn in_update_document(message: &str) -> String {
    message.replace("module.xml", "an update document")
}

/// What one `<update>` offers `target`: its release, or why it is set aside (its
/// platform or stability rule it out, or it has no download modhost unpacks); an error
/// when it is malformed.
fn release(
    update: &Element,
    doc: &Location,
    target: &Target,
    patterns: &mut Patterns,
) -> Result<Result<Release, String>, String> {
    let field = |name: &str| update.child(name).map_or("", Element::trimmed_text);
    valid_release(field("element"), field("version"))?;
    if !platform_matches(update, target, patterns)? {
        let platform = update.child("targetplatform");
        let attribute = |name| platform.and_then(|p| p.attribute(name)).unwrap_or("");
        return Ok(Err(format!(
            "it is for <targetplatform name=\"{}\" version=\"{}\">, not this host ({} {}; \
             a host that is that platform says so in modhost.toml's [platform] name and \
             version)",
            attribute("name"),
            attribute("version"),
            target.platform,
            if target.version.is_empty() {
                "of undeclared version"
            } else {
                &target.version
            }
        )));
    }
    let tagged = stability(update);
    if tagged < target.stability {
        return Ok(Err(format!(
            "it is tagged {}, less stable than the {} releases this host takes",
            tagged.tag(),
            target.stability.tag()
        )));
    }
    let Some(url) = download(update) else {
        return Ok(Err(
            "it has no full download as a gzip tar or a zip, which modhost unpacks".to_owned(),
        ));
    };
    let mut digests = Digests::default();
    for algorithm in ["sha256", "sha384", "sha512"] {
        // An empty element is no checksum, as an absent one: the update is unverifiable.
        let mut values = update
            .children_named(algorithm)
            .map(Element::trimmed_text)
            .filter(|v| !v.is_empty());
        if let Some(value) = values.next() {
            // Two different checksums for one download: which one the publisher meant
            // is unknowable, so neither is taken on trust.
            if values.any(|other| !other.eq_ignore_ascii_case(value)) {
                return Err(format!("it names two different <{algorithm}> checksums"));
            }
            digests.set(algorithm, value)?;
        }
    }
    Ok(Ok(Release {
        rawname: field("element").to_owned(),
        name: field("name").to_owned(),
        version: field("version").to_owned(),
        location: doc.resolve(url.trimmed_text()).map_err(|e| e.to_string())?,
        document: Some(doc.clone()),
        size: None,
        digests,
        gated: false,
        supported: None,
    }))
}

/// The full download an update offers in a format modhost unpacks: a gzip tar when
/// there is one (the format modhost itself packs), else a zip. An untyped or
/// unformatted `<downloadurl>` counts as a full gzip tar.
fn download(update: &Element) -> Option<&Element> {
    let full: Vec<&Element> = update
        .child("downloads")
        .into_iter()
        .flat_map(|d| d.children_named("downloadurl"))
        .filter(|d| d.attribute("type").is_none_or(|t| t == "full"))
        .collect();
    ["tgz", "zip"].into_iter().find_map(|format| {
        full.iter()
            .copied()
            .find(|d| d.attribute("format").unwrap_or("tgz") == format)
    })
}

/// Joomla's rule: the update names a `<targetplatform>`, the name matches and `^(?:version)` matches the host's version. The
/// pattern is compiled with bounded size; the `regex` crate matches in linear time.
fn platform_matches(
    update: &Element,
    target: &Target,
    patterns: &mut Patterns,
) -> Result<bool, String> {
    // Joomla skips such an update too: with no platform named, nothing says it fits this
    // host rather than another application sharing the update server.
    let Some(platform) = update.child("targetplatform") else {
        return Err("it has no <targetplatform>, so nothing says it is meant for this host".into());
    };
    let name = platform.attribute("name").unwrap_or("");
    if !name.eq_ignore_ascii_case(&target.platform) {
        return Ok(false);
    }
    let pattern = platform.attribute("version").unwrap_or(".*");
    if pattern.len() > MAX_PATTERN {
        return Err(format!(
            "the target platform pattern is longer than {MAX_PATTERN} characters"
        ));
    }
    // A feed names the same pattern in each of its updates: compiled once per document.
    // Each compile is bounded, and so is how many a document asks for: thousands of
    // distinct ones would take a minute of compiling after the download's time limits.
    if patterns.len() >= MAX_PATTERNS && !patterns.contains_key(pattern) {
        return Err(format!(
            "the document names more than {MAX_PATTERNS} different target platform patterns"
        ));
    }
    patterns
        .entry(pattern.to_owned())
        .or_insert_with(|| version_matches(pattern, target))
        .clone()
}

/// Whether `pattern`, a `<targetplatform version>`, matches the host's version.
fn version_matches(pattern: &str, target: &Target) -> Result<bool, String> {
    let regex = RegexBuilder::new(&format!("^(?:{pattern})"))
        .size_limit(PATTERN_SIZE)
        .dfa_size_limit(PATTERN_SIZE)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the target platform pattern `{pattern}` is too complex to match (it would \
                 take more than the {limit} bytes a pattern may)"
            ),
            // The regex crate draws the pattern over several lines with a caret under
            // the fault; a message is one line: its `error:` line says what is wrong.
            e => {
                let text = e.to_string();
                let why = text
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("error:"))
                    .map_or_else(
                        || text.split_whitespace().collect::<Vec<_>>().join(" "),
                        |w| w.trim().to_owned(),
                    );
                format!("the target platform pattern `{pattern}` is invalid: {why}")
            }
        })?;
    Ok(regex.is_match(&target.version))
}

/// The most stable of an update's tags; untagged updates are stable, as in Joomla.
fn stability(update: &Element) -> Stability {
    let tags: Vec<_> = update
        .child("tags")
        .into_iter()
        .flat_map(|t| t.children_named("tag"))
        .filter_map(|t| Stability::from_tag(t.trimmed_text()))
        .collect();
    tags.into_iter().max().unwrap_or(Stability::Stable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target platform that fits every modhost host.
    const ANY: &str = r#"<targetplatform name="modhost" version=".*"/>"#;

    fn target(stability: Stability) -> Target {
        Target {
            platform: "modhost".into(),
            version: "1.4.0".into(),
            stability,
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

    /// The locations offered for the update whose `<downloads>` are `downloads`.
    fn downloads(downloads: &str) -> Result<Vec<Location>, String> {
        let xml = format!(
            "<updates><update><element>phonebook</element><version>2.0.0</version>\
             <downloads>{downloads}</downloads>{ANY}</update></updates>"
        );
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        parse(
            xml.as_bytes(),
            &doc,
            Some("phonebook"),
            &target(Stability::Stable),
        )
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
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        let read = parse(
            xml.as_bytes(),
            &doc,
            Some("phonebook"),
            &target(Stability::Stable),
        );
        assert_eq!(read.map(|(r, _)| r.len()), Ok(3000));
    }

    #[test]
    fn a_feed_in_another_encoding_is_read_as_it_declares_itself() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><updates>{}</updates>",
            update("2.0.0", "stable", ANY).replace("Phonebook", "T\u{e9}l\u{e9}phone")
        );
        let latin1: Vec<u8> = xml.chars().map(|c| c as u8).collect();
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        let read = parse(&latin1, &doc, Some("phonebook"), &target(Stability::Stable));
        assert_eq!(read.map(|(r, _)| r.len()), Ok(1));
        let undeclared = b"<updates><update><name>T\xe9l</name></update></updates>";
        let read = parse(undeclared, &doc, None, &target(Stability::Stable));
        assert_eq!(
            read.err().as_deref(),
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
    }

    fn offered(xml: &str, stability: Stability) -> Result<Vec<String>, String> {
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        parse(xml.as_bytes(), &doc, Some("phonebook"), &target(stability))
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
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        let aside = |text: String| {
            parse(text.as_bytes(), &doc, None, &target(Stability::Stable))
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
        let long = format!(
            "<updates>{}</updates>",
            update(
                "2.0.0",
                "stable",
                &format!(
                    r#"<targetplatform name="modhost" version="{}"/>"#,
                    "(a*)*".repeat(100)
                )
            )
        );
        assert!(offered(&long, Stability::Stable).is_err());
        // Short, and too large compiled: said in words, not the regex crate's.
        let complex = format!(
            "<updates>{}</updates>",
            update(
                "2.0.0",
                "stable",
                r#"<targetplatform name="modhost" version="\w{1000}"/>"#
            )
        );
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
                    &format!(r#"<targetplatform name="modhost" version="(1|{i})\..*"/>"#),
                )
            })
            .collect();
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        let parsed = parse(
            format!("<updates>{many}</updates>").as_bytes(),
            &doc,
            Some("phonebook"),
            &target(Stability::Stable),
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
        let unclosed = format!(
            "<updates>{}</updates>",
            update(
                "2.0.0",
                "stable",
                r#"<targetplatform name="modhost" version="["/>"#
            )
        );
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
        let bad_pattern = update(
            "4.0.0",
            "stable",
            &format!(
                r#"<targetplatform name="modhost" version="{}"/>"#,
                "(a*)*".repeat(100)
            ),
        );
        let xml = format!(
            "<updates>{}{}{}{}</updates>",
            update("2.x", "stable", ANY),
            update("2.0.0", "stable", ANY),
            bad_digest,
            bad_pattern,
        );
        assert_eq!(offered(&xml, Stability::Stable), Ok(vec!["2.0.0".into()]));
        // What was skipped is set aside, each saying what is wrong with it.
        let doc = Location::Url("https://h/joomla/phonebook.xml".into());
        let aside = parse(xml.as_bytes(), &doc, None, &target(Stability::Stable))
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
            parse(
                format!("<updates>{updates}</updates>").as_bytes(),
                &doc,
                None,
                &target(Stability::Stable),
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
}
