//! Joomla update servers (seed 003): `<updates><update>…</update></updates>`, filtered by
//! target platform and stability.

use modhost_manifest::xml::{self, Element};
use regex::RegexBuilder;

use crate::Location;
use crate::index::MAX_INDEX;
use crate::release::valid_release;
use crate::release::{Digests, Release, SetAside, Stability, Target};

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
    if crate::signature::is_web_page(bytes) {
        return Err(format!(
            "an HTML page ({} bytes), not update XML: the server answered with an error, \
             maintenance or login page in the document's place",
            bytes.len()
        ));
    }
    if matches!(crate::json::first_byte(bytes), Some(b'{' | b'[')) {
        return Err(
            "JSON, not update XML (FreePBX updateurl JSON is read by a source of \
                    kind `freepbx`, an a2 repository's by kind `a2`)"
                .to_owned(),
        );
    }
    let text = xml::decode_within(bytes, BOUNDS.max_size).map_err(|e| {
        format!(
            "the update XML cannot be read at {}:{}: {}",
            e.position.line, e.position.column, e.message
        )
    })?;
    let mut root = xml::parse_within(&text, BOUNDS).map_err(|e| {
        format!(
            "the update XML is malformed at {}:{}: {}",
            e.position.line,
            e.position.column,
            in_update_document(&e.message)
        )
    })?;
    // Joomla's updater reads element names folded to one case: `<Update>` is `<update>`.
    root.lowercase_names();
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
    let releases = once_each(releases, &mut set_aside);
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

/// `releases` with each module's version once. A feed may list a version once per
/// platform version it supports, all alike: one is kept. Two that differ (another
/// package, size or checksum) are both set aside: which one the publisher meant cannot be
/// told, and taking the first would let whoever added the other decide.
fn once_each(releases: Vec<Release>, set_aside: &mut Vec<SetAside>) -> Vec<Release> {
    let same = |a: &Release, b: &Release| {
        a.location == b.location && a.size == b.size && a.digests == b.digests
    };
    // Where each module's version stands in `kept`: `None` once two that differ were seen.
    let mut at: std::collections::HashMap<(String, String), Option<usize>> = Default::default();
    let mut kept: Vec<Option<Release>> = Vec::new();
    for release in releases {
        let key = (release.rawname.clone(), release.version.clone());
        match at.get(&key).copied() {
            None => {
                at.insert(key, Some(kept.len()));
                kept.push(Some(release));
            }
            Some(None) => {}
            Some(Some(index)) => {
                if kept[index]
                    .as_ref()
                    .is_some_and(|first| same(first, &release))
                {
                    continue;
                }
                kept[index] = None;
                at.insert(key.clone(), None);
                set_aside.push(SetAside {
                    rawname: key.0,
                    version: key.1,
                    reason: "it is offered twice, with different packages or checksums: \
                             which one is the release cannot be told"
                        .into(),
                });
            }
        }
    }
    kept.into_iter().flatten().collect()
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
    for name in ["element", "version"] {
        // Two different values: which one the publisher meant is unknowable, and taking
        // the first would let whoever added the other decide.
        if update
            .children_named(name)
            .any(|other| other.trimmed_text() != field(name))
        {
            return Err(format!("it names two different <{name}>s"));
        }
    }
    valid_release(field("element"), field("version"))?;
    if !platform_matches(update, target, patterns)? {
        return Ok(Err(not_for_this_host(update, target)));
    }
    if let Some(reason) = php_too_old(update, target) {
        return Ok(Err(reason));
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

/// The `format`s of a `<downloadurl>` that name a gzip tar: Joomla's own (`gz`) and
/// the spellings packages go by.
const GZIP_TAR: [&str; 3] = ["gz", "tgz", "tar.gz"];

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
    let format = |d: &Element| d.attribute("format").unwrap_or("gz").to_ascii_lowercase();
    let gzip_tar = full
        .iter()
        .copied()
        .find(|d| GZIP_TAR.contains(&format(d).as_str()));
    gzip_tar.or_else(|| full.iter().copied().find(|d| format(d) == "zip"))
}

/// The `<targetplatform>` Joomla reads of `update`: the last one, each replacing the one
/// before as Joomla's update adapter reads them.
fn target_platform(update: &Element) -> Option<&Element> {
    update.children_named("targetplatform").last()
}

/// Why `update`, whose `<targetplatform>` does not match, is not for this host: what it
/// is for and what this host is, and the fix only where it may be this host's to make
/// (another platform named, or a version not declared).
fn not_for_this_host(update: &Element, target: &Target) -> String {
    let platform = target_platform(update);
    let attribute = |name| platform.and_then(|p| p.attribute(name)).unwrap_or("");
    let written = format!(
        "<targetplatform name=\"{}\" version=\"{}\">",
        attribute("name"),
        attribute("version")
    );
    let same_platform = attribute("name").eq_ignore_ascii_case(&target.platform);
    let host = match (same_platform, target.version.is_empty()) {
        (true, true) => format!(
            "this host ({} of undeclared version; a host says its version in modhost.toml's \
             [platform] version)",
            target.platform
        ),
        (true, false) => format!(
            "this host's version ({} {})",
            target.platform, target.version
        ),
        (false, _) => format!(
            "this host ({} {}; a host that is that platform says so in modhost.toml's \
             [platform] name and version)",
            target.platform,
            match target.version.is_empty() {
                true => "of undeclared version",
                false => &target.version,
            }
        ),
    };
    let others = update.children_named("targetplatform").count();
    let last = match others {
        1 => String::new(),
        n => format!(" (the last of its {n} <targetplatform>s, the one Joomla reads)"),
    };
    format!("it is for {written}{last}, not {host}")
}

/// Why `update` is not for this host's PHP, when the host declares its PHP version and
/// the update's `<php_minimum>` is newer, as Joomla refuses it for the PHP it runs on.
/// An update whose minimum is not a version is left to its install, which checks its
/// module.xml.
fn php_too_old(update: &Element, target: &Target) -> Option<String> {
    let host = target.php.as_ref()?;
    let minimum = update.child("php_minimum")?.trimmed_text();
    let needed = modhost_manifest::Version::parse(minimum).ok()?;
    (needed > *host).then(|| {
        format!(
            "it needs PHP {minimum} or newer (its <php_minimum>), and this host's PHP is {host}"
        )
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
    let Some(platform) = target_platform(update) else {
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
mod tests;
