//! What a module needs: `<depends>`, `<requirements>` and `<supported>`.

use super::{Parser, at};
use crate::model::*;
use crate::xml::Element;
use crate::{Requirement, Version, is_valid_rawname};

impl Parser {
    pub(super) fn requirement(&mut self, element: &Element) -> Option<Requirement> {
        let requirement = Requirement::parse(element.trimmed_text())
            .map_err(|e| self.problem(element.position, format!("<{}>: {e}", element.name)))
            .ok()?;
        self.php_operator(element);
        Some(requirement)
    }

    /// Warns about a dependency read with one of PHP's operators that FreePBX's module
    /// admin does not know (`<version>>=2.10.0</version>`): FreePBX skips such a
    /// dependency, so a module may have been tested without it.
    pub(super) fn php_operator(&mut self, element: &Element) {
        let text = element.trimmed_text();
        if let Some(at) = text.find(['<', '>']) {
            let op: String = text[at..]
                .chars()
                .take_while(|c| matches!(c, '<' | '>' | '='))
                .collect();
            self.warn(
                element.position,
                format!(
                    "<{}> `{text}`: FreePBX's module admin does not know the operator `{op}` \
                     and skips this dependency; modhost checks it",
                    element.name
                ),
            );
        }
    }

    pub(super) fn named(
        &mut self,
        element: &Element,
        rawname_grammar: bool,
    ) -> Option<NamedRequirement> {
        let named = parse_named(element.trimmed_text(), rawname_grammar)
            .map_err(|message| self.problem(element.position, message))
            .ok()?;
        self.php_operator(element);
        Some(named)
    }

    pub(super) fn depends(&mut self, root: &Element) -> Depends {
        let mut depends = Depends::default();
        for element in root
            .children_named("depends")
            .flat_map(|d| d.children.iter())
        {
            match element.name.as_str() {
                "version" => depends.version.extend(self.requirement(element)),
                "module" => depends.modules.extend(self.named(element, true)),
                "engine" => depends.engines.extend(self.named(element, false)),
                "phpversion" => depends.php.version.extend(self.requirement(element)),
                "phpcomponent" => {
                    // Every bad alternative is reported, not only the first.
                    let mut alternatives = Vec::new();
                    let mut valid = true;
                    for part in element.trimmed_text().split("||") {
                        match parse_php_component(part.trim()) {
                            Ok(alternative) => alternatives.push(alternative),
                            Err(message) => {
                                valid = false;
                                self.problem(element.position, message);
                            }
                        }
                    }
                    if valid {
                        self.php_operator(element);
                        depends.php.components.push(alternatives);
                    }
                }
                "file" => depends.files.extend(self.path(element)),
                _ => {
                    self.keep_unknown("module/depends", element);
                    continue;
                }
            }
            self.check_children("module/depends", element, &[]);
        }
        depends
    }

    pub(super) fn path(&mut self, element: &Element) -> Option<String> {
        let path = element.trimmed_text();
        if path.starts_with('/') {
            Some(path.to_owned())
        } else {
            self.problem(
                element.position,
                format!("<{}> `{path}` is not an absolute path", element.name),
            );
            None
        }
    }

    pub(super) fn requirements(&mut self, root: &Element) -> Requirements {
        let mut requirements = Requirements::default();
        for element in root
            .children_named("requirements")
            .flat_map(|r| r.children.iter())
        {
            match element.name.as_str() {
                "file" => requirements.files.extend(self.path(element)),
                "module" => requirements.modules.extend(self.named(element, true)),
                _ => {
                    self.keep_unknown("module/requirements", element);
                    continue;
                }
            }
            self.check_children("module/requirements", element, &[]);
        }
        requirements
    }

    /// `<supported>`. A repeated `<version>` equal to the first is a warning; a different
    /// one is an error, since the lowest supported version cannot be two versions.
    pub(super) fn supported(&mut self, root: &Element) -> Option<Supported> {
        let element = root.child("supported")?;
        self.check_children("module", element, &["version"]);
        let mut versions = element.children_named("version");
        let Some(first) = versions.next() else {
            self.problem(element.position, "<supported> has no <version>");
            return None;
        };
        let version = Version::parse(first.trimmed_text())
            .map_err(|e| self.problem(first.position, format!("<supported>: {e}")))
            .ok();
        for repeat in versions {
            let text = repeat.trimmed_text();
            match Version::parse(text) {
                Err(e) => self.problem(repeat.position, format!("<supported>: {e}")),
                Ok(other) if version.as_ref().is_some_and(|v| *v == other) => self.warn(
                    repeat.position,
                    format!(
                        "<supported> repeats <version> `{text}` (first at {}); the repeat is not needed",
                        at(first.position)
                    ),
                ),
                Ok(_) => self.problem(
                    repeat.position,
                    format!(
                        "<supported> has a second <version> `{text}` besides `{}` (at {}); \
                         the lowest supported version must be one",
                        first.trimmed_text(),
                        at(first.position)
                    ),
                ),
            }
        }
        version.map(|version| Supported { version })
    }
}

/// Parses `name [op version]`, refusing what FreePBX would silently ignore. Module names
/// follow the rawname grammar; engine and PHP component names may also hold `-` and capitals.
fn parse_named(text: &str, rawname_grammar: bool) -> Result<NamedRequirement, String> {
    let (name, rest) = match text.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (text, ""),
    };
    let valid = if rawname_grammar {
        is_valid_rawname(name)
    } else {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !valid {
        return Err(malformed(text));
    }
    named(text, name.to_owned(), rest)
}

/// PHP components whose names hold a space, which FreePBX's `<phpcomponent>` accepts
/// besides the `[a-z0-9_]+` extension names (as it does, case-insensitively).
const SPACED_PHP_COMPONENTS: [&[&str]; 2] = [&["zend", "optimizer"], &["zend", "guard", "loader"]];

/// Parses one `<phpcomponent>` alternative: `name [op version]`, where the name may be
/// one of [`SPACED_PHP_COMPONENTS`], kept as written with single spaces.
fn parse_php_component(text: &str) -> Result<NamedRequirement, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let spaced = SPACED_PHP_COMPONENTS.iter().find(|name| {
        words.len() >= name.len()
            && words
                .iter()
                .zip(name.iter())
                .all(|(word, part)| word.eq_ignore_ascii_case(part))
    });
    match spaced {
        Some(name) => {
            let (name, rest) = words.split_at(name.len());
            named(text, name.join(" "), &rest.join(" "))
        }
        None => parse_named(text, false),
    }
}

/// `name` with the requirement `rest` (`[op] version`, or nothing), read from `text`.
fn named(text: &str, name: String, rest: &str) -> Result<NamedRequirement, String> {
    let requirement = if rest.is_empty() {
        None
    } else {
        Some(Requirement::parse(rest).map_err(|e| format!("{}: {e}", malformed(text)))?)
    };
    Ok(NamedRequirement { name, requirement })
}

/// The message for a dependency that is not `name [op] version`.
fn malformed(text: &str) -> String {
    // A rawname with capitals (`Core ge 16.0`) is the likeliest slip: said as such.
    let capital = text
        .split_whitespace()
        .next()
        .is_some_and(|name| name.bytes().any(|b| b.is_ascii_uppercase()));
    let hint = match capital {
        true => " (a rawname is lower case)",
        false => "",
    };
    format!("dependency '{text}' is not of the form 'name [op] version'{hint}")
}
