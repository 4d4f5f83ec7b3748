//! The repository index: every package a modhost repository offers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::messages::clipped;
use crate::release::SetAside;

/// The format tag every index carries.
pub const FORMAT: &str = "modhost-index/1";

/// The index's file name, at the top of a repository.
pub const FILE: &str = "index.json";

/// The largest index accepted.
pub const MAX_INDEX: u64 = 4 * 1024 * 1024;

/// What a repository offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always [`FORMAT`].
    pub format: String,
    /// Every package, newest first per module.
    pub modules: Vec<Entry>,
    /// The entries beside them that could not be read or are unsafe, set aside with why:
    /// never written, only read.
    #[serde(skip)]
    pub malformed: Vec<SetAside>,
}

/// One package in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The module's rawname.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The package's version.
    pub version: String,
    /// The package's path under `packages/`.
    pub file: String,
    /// The package's size in bytes.
    pub size: u64,
    /// The package's SHA-256, hex; empty when the index gives none, which leaves the
    /// package unverifiable: offered, never downloaded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The licence group whose key a download needs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Entry {
    /// What is wrong with this entry, naming it, if anything is.
    fn problem(&self) -> Option<String> {
        let rawname = clipped(&self.rawname);
        if let Some(problem) = modhost_manifest::rawname_problem(&self.rawname) {
            return Some(format!("`{rawname}` has no valid rawname: {problem}"));
        }
        if let Err(e) = modhost_manifest::Version::parse(&self.version) {
            return Some(format!("for `{rawname}`: {e}"));
        }
        let safe_file = !self.file.is_empty()
            && self
                .file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
            && !self.file.starts_with('.');
        if !safe_file {
            return Some(format!(
                "for `{rawname}` names its package `{}`: a plain file name is needed \
                 (letters, digits, `.`, `_`, `-` and `+`, as a version has them, not \
                 starting with `.`)",
                clipped(&self.file)
            ));
        }
        let hex = self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !self.sha256.is_empty() && !hex {
            return Some(format!(
                "for `{rawname}` has a sha256 of `{}`, not 64 hex digits",
                clipped(&self.sha256)
            ));
        }
        None
    }
}

impl Index {
    /// Parses and checks an index: the format tag, rawnames, versions, file names. What
    /// is wrong is said naming the entry and the field.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let invalid = |e: String| format!("the index is not valid: {e}");
        let fields = json::object(bytes).map_err(invalid)?;
        let format = json::required(&fields, "format").map_err(invalid)?;
        if format != FORMAT {
            return Err(format!(
                "the index format is `{}`, expected `{FORMAT}`",
                clipped(&format)
            ));
        }
        let listed = match fields.get("modules") {
            Some(Value::Array(listed)) => listed,
            Some(other) => {
                return Err(invalid(format!(
                    "`modules`: expected an array, found {}",
                    json::kind(other)
                )));
            }
            None => return Err(invalid("`modules` is missing".to_owned())),
        };
        let mut modules = Vec::with_capacity(listed.len());
        let mut malformed = Vec::new();
        for (number, listed) in listed.iter().enumerate() {
            let field = |name: &str| {
                listed
                    .get(name)
                    .and_then(Value::as_str)
                    .map(|text| clipped(text).into_owned())
                    .unwrap_or_default()
            };
            let problem = match Entry::read(listed) {
                Err(e) => {
                    let rawname = field("rawname");
                    let named = match rawname.is_empty() {
                        true => String::new(),
                        false => format!(" (`{rawname}`)"),
                    };
                    invalid(format!("entry {}{named}: {e}", number + 1))
                }
                Ok(entry) => match entry.problem() {
                    Some(problem) => format!("the index's entry {problem}"),
                    None => {
                        modules.push(entry);
                        continue;
                    }
                },
            };
            malformed.push(SetAside {
                rawname: field("rawname"),
                version: field("version"),
                reason: format!("it is malformed: {problem}"),
            });
        }
        // Beside sound entries, a malformed one is set aside, saying what is wrong with
        // it, as a Joomla feed's is: one bad entry does not take the others' updates.
        if modules.is_empty()
            && let Some(first) = malformed.first()
        {
            let reason = &first.reason;
            return Err(reason
                .strip_prefix("it is malformed: ")
                .unwrap_or(reason)
                .to_owned());
        }
        Ok(Index {
            format,
            modules,
            malformed,
        })
    }
}

impl Entry {
    /// One entry of `modules`, each field named when it cannot be read.
    fn read(value: &Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err(format!("expected an object, found {}", json::kind(value)));
        };
        Ok(Entry {
            rawname: json::required(fields, "rawname")?,
            name: json::required(fields, "name")?,
            version: json::required(fields, "version")?,
            file: json::required(fields, "file")?,
            size: json::bytes(fields, "size")?.ok_or("`size` is missing")?,
            sha256: json::text(fields, "sha256")?.unwrap_or_default(),
            group: json::text(fields, "group")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_with_unsafe_entries_is_refused() {
        let entry = |file: &str, rawname: &str| {
            format!(
                r#"{{"format":"{FORMAT}","modules":[{{"rawname":"{rawname}","name":"x","version":"1.0","file":"{file}","size":1,"sha256":"{}"}}]}}"#,
                "a".repeat(64)
            )
        };
        assert!(Index::parse(entry("core-1.0.tgz", "core").as_bytes()).is_ok());
        for (file, rawname) in [
            ("../x.tgz", "core"),
            ("a/b.tgz", "core"),
            ("x.tgz", "Core"),
            (".hidden", "core"),
        ] {
            assert!(
                Index::parse(entry(file, rawname).as_bytes()).is_err(),
                "{file} {rawname}"
            );
        }
        assert!(Index::parse(b"<html>").is_err());
    }

    #[test]
    fn a_malformed_entry_beside_sound_ones_is_set_aside_alone() {
        let sha = "a".repeat(64);
        let json = serde_json::json!({
            "format": FORMAT,
            "modules": [
                {"rawname": "core", "name": "Core", "version": "1.0", "file": "core-1.0.tgz",
                 "size": 1, "sha256": sha},
                {"rawname": "pb", "name": "Pb", "version": "2.0", "file": "../pb.tgz",
                 "size": 1, "sha256": sha},
                {"rawname": "vm", "name": "Vm", "version": "3.0", "size": 1},
            ],
        });
        let index = Index::parse(json.to_string().as_bytes());
        let Ok(index) = index else {
            panic!("{index:?}")
        };
        assert_eq!(index.modules.len(), 1);
        let aside: Vec<(&str, &str, bool)> = index
            .malformed
            .iter()
            .map(|a| {
                (
                    a.rawname.as_str(),
                    a.version.as_str(),
                    a.reason.starts_with("it is malformed: "),
                )
            })
            .collect();
        assert_eq!(aside, [("pb", "2.0", true), ("vm", "3.0", true)]);
        assert!(
            index.malformed[0]
                .reason
                .contains("names its package `../pb.tgz`")
        );
        assert!(index.malformed[1].reason.contains("`file` is missing"));
    }

    #[test]
    fn an_invalid_entry_is_refused_naming_its_field_and_quoting_little_of_it() {
        let refused = |rawname: &str, version: &str, file: &str, sha256: &str| {
            let json = serde_json::json!({
                "format": FORMAT,
                "modules": [{"rawname": rawname, "name": "x", "version": version,
                             "file": file, "size": 1, "sha256": sha256}],
            });
            Index::parse(json.to_string().as_bytes())
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        let sha = "a".repeat(64);
        let long = "9".repeat(200_000);
        for (said, expected) in [
            (
                refused("Core", "1.0", "c.tgz", &sha),
                "`Core` has no valid rawname",
            ),
            (
                refused("core", &long, "c.tgz", &sha),
                "it is longer than 64 characters",
            ),
            (
                refused("core", "1.0", "../c.tgz", &sha),
                "names its package `../c.tgz`",
            ),
            (
                refused("core", "1.0", "c.tgz", &"z".repeat(64)),
                "not 64 hex digits",
            ),
        ] {
            assert!(said.contains(expected), "{said}");
            assert!(said.len() < 400, "{} bytes: {}", said.len(), &said[..200]);
        }
    }

    #[test]
    fn a_field_that_cannot_be_read_is_named_with_its_entry() {
        let with = |entry: &str| {
            let text = format!(r#"{{"format":"{FORMAT}","modules":[{entry}]}}"#);
            Index::parse(text.as_bytes()).map(|i| i.modules.len())
        };
        let sha = "a".repeat(64);
        let good = format!(
            r#"{{"rawname":"core","name":"Core","version":"1.0","file":"c.tgz","size":5,"sha256":"{sha}"}}"#
        );
        // A byte-order mark before it, and a size written as text, are read.
        let text = format!("\u{feff}{{\"format\":\"{FORMAT}\",\"modules\":[{good}]}}");
        assert_eq!(
            Index::parse(text.as_bytes()).map(|i| i.modules.len()),
            Ok(1)
        );
        assert_eq!(with(&good.replace("\"size\":5", "\"size\":\"5\"")), Ok(1));
        // No checksum is no error: the package is offered as unverifiable.
        let unsummed = good.replace(&format!(",\"sha256\":\"{sha}\""), "");
        assert_eq!(with(&unsummed), Ok(1));
        assert_eq!(with(&good.replace(&sha, "")), Ok(1));
        assert!(with(&good.replace(&sha, "abc")).is_err_and(|e| e.contains("not 64 hex digits")));
        for (entry, expected) in [
            (
                good.replace("\"size\":5", "\"size\":\"five\""),
                "the index is not valid: entry 1 (`core`): `size`: expected a number of bytes, \
                 found `five`",
            ),
            (
                good.replace("\"name\":\"Core\"", "\"name\":[\"Core\"]"),
                "the index is not valid: entry 1 (`core`): `name`: expected a string, found an \
                 array",
            ),
            (
                "7".to_owned(),
                "the index is not valid: entry 1: expected an object, found a number",
            ),
        ] {
            assert_eq!(with(&entry), Err(expected.to_owned()));
        }
        assert_eq!(
            Index::parse(b"[]"),
            Err("the index is not valid: an array, not an object".to_owned())
        );
    }
}
