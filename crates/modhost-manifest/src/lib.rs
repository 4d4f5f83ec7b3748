//! FreePBX-style module.xml: the typed model and its parser.
//!
//! [`Manifest::parse`] reads a module.xml into a [`Manifest`], reporting every problem it
//! finds at once, each with its line and column; elements it does not know are kept as
//! warnings rather than errors, so real FreePBX files load.
//!
//! ```
//! use modhost_manifest::Manifest;
//!
//! let xml = r#"<module>
//!     <rawname>voicemail</rawname>
//!     <name>Voicemail</name>
//!     <version>16.0.12</version>
//!     <depends><module>core ge 16.0</module></depends>
//! </module>"#;
//! let manifest = Manifest::parse(xml, "module.xml")?;
//! assert_eq!(manifest.rawname, "voicemail");
//! assert_eq!(manifest.depends.modules[0].name, "core");
//! # Ok::<(), modhost_manifest::Error>(())
//! ```

use std::fmt;

use serde::Serialize;

pub use modhost_version::{Op, Requirement, Version};

pub mod xml;

use xml::{Element, Position};

/// The default priority of a `<methods>` entry, as in FreePBX.
pub const DEFAULT_PRIORITY: i32 = 500;

/// The component's path inside the package when `<component>` is absent.
pub const DEFAULT_COMPONENT: &str = "module.wasm";

/// The longest rawname accepted.
const MAX_RAWNAME: usize = 64;

/// One problem found in a module.xml, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the file the problem is.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.position.line, self.position.column, self.message
        )
    }
}

/// Why a module.xml could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The file is not well-formed XML, or uses a DTD or custom entities.
    #[error("{file}:{}:{}: {}", .problem.position.line, .problem.position.column, .problem.message)]
    Syntax {
        /// The file, as the caller named it.
        file: String,
        /// The syntax error.
        problem: Problem,
    },
    /// The XML is well-formed but breaks module.xml's rules; every problem is listed.
    #[error("{file} is not a valid module.xml:{}", list(.problems, .file))]
    Invalid {
        /// The file, as the caller named it.
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem], file: &str) -> String {
    problems.iter().map(|p| format!("\n  {file}:{p}")).collect()
}

/// A module's description: what module.xml says.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The unique id, `[a-z0-9_]+`.
    pub rawname: String,
    /// The display name.
    pub name: String,
    /// The module's version.
    pub version: Version,
    /// The module-admin category; `Other` when absent.
    pub category: String,
    /// A description for administrators.
    pub description: String,
    /// What the module needs to work.
    pub depends: Depends,
    /// The module's handlers for hook points (`<methods>`), in file order.
    pub methods: Vec<Method>,
    /// The component's path inside the package.
    pub component: String,
    /// Problems that do not stop the module from loading, such as unknown elements.
    pub warnings: Vec<Problem>,
}

/// The `<depends>` constraints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Depends {
    /// `<module>` entries: other modules that must be installed and enabled.
    pub modules: Vec<ModuleDependency>,
}

/// One `<depends><module>` entry: `name [op version]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleDependency {
    /// The rawname of the required module.
    pub name: String,
    /// The version it must have, if any.
    #[serde(flatten)]
    pub requirement: Option<Requirement>,
}

impl fmt::Display for ModuleDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.requirement {
            Some(requirement) => write!(f, "{} {requirement}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One `<methods>` entry: the module's `handler` takes part in hook point `hook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Method {
    /// The hook point, e.g. `get_config`.
    pub hook: String,
    /// The handler name passed to the module's hook entry point.
    pub handler: String,
    /// Lower runs earlier; [`DEFAULT_PRIORITY`] when absent.
    pub priority: i32,
}

/// Whether `name` follows the rawname grammar `[a-z0-9_]+`.
pub fn is_valid_rawname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RAWNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Elements this version of modhost reads or knows to be harmless metadata.
const KNOWN: &[&str] = &[
    "rawname",
    "repo",
    "name",
    "version",
    "type",
    "category",
    "publisher",
    "description",
    "changelog",
    "info",
    "license",
    "licenselink",
    "location",
    "md5sum",
    "sha1",
    "sha1sum",
    "menuitems",
    "depends",
    "requirements",
    "supported",
    "popovers",
    "oobe",
    "commercial",
    "fileinclude",
    "console",
    "database",
    "hooks",
    "methods",
    "updateurl",
    "component",
    "updateservers",
    "capabilities",
];

impl Manifest {
    /// Parses a module.xml; `file` names it in error messages.
    pub fn parse(source: &str, file: &str) -> Result<Self, Error> {
        let root = xml::parse(source).map_err(|e| Error::Syntax {
            file: file.to_owned(),
            problem: Problem {
                position: e.position,
                message: e.message,
            },
        })?;
        let mut parser = Parser::default();
        let manifest = parser.manifest(&root);
        match manifest {
            Some(manifest) if parser.problems.is_empty() => Ok(manifest),
            _ => Err(Error::Invalid {
                file: file.to_owned(),
                problems: parser.problems,
            }),
        }
    }
}

/// Collects problems while building the model, so that all of them are reported.
#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Parser {
    fn problem(&mut self, position: Position, message: impl Into<String>) {
        self.problems.push(Problem {
            position,
            message: message.into(),
        });
    }

    fn warn(&mut self, position: Position, message: impl Into<String>) {
        self.warnings.push(Problem {
            position,
            message: message.into(),
        });
    }

    /// The trimmed text of the required child `name`, or a problem.
    fn required<'a>(&mut self, root: &'a Element, name: &str) -> Option<&'a str> {
        match root.child(name).map(|e| (e, e.trimmed_text())) {
            None => {
                self.problem(root.position, format!("<{name}> is missing"));
                None
            }
            Some((element, "")) => {
                self.problem(element.position, format!("<{name}> is empty"));
                None
            }
            Some((_, text)) => Some(text),
        }
    }

    fn manifest(&mut self, root: &Element) -> Option<Manifest> {
        if root.name != "module" {
            self.problem(
                root.position,
                format!("the root element is <{}>, expected <module>", root.name),
            );
            return None;
        }
        for child in &root.children {
            if !KNOWN.contains(&child.name.as_str()) {
                self.warn(
                    child.position,
                    format!("unknown element <{}> is ignored", child.name),
                );
            }
        }
        let rawname = self.required(root, "rawname").map(str::to_owned);
        if let (Some(name), Some(element)) = (&rawname, root.child("rawname"))
            && !is_valid_rawname(name)
        {
            self.problem(
                element.position,
                format!("rawname `{name}` must be 1 to {MAX_RAWNAME} characters of a-z, 0-9 and _"),
            );
        }
        let name = self.required(root, "name").map(str::to_owned);
        let version = self.required(root, "version").and_then(|text| {
            let position = root
                .child("version")
                .map(|e| e.position)
                .unwrap_or_default();
            Version::parse(text)
                .map_err(|e| self.problem(position, e.to_string()))
                .ok()
        });
        let depends = self.depends(root);
        let methods = self.methods(root);
        let text = |name: &str| root.child(name).map(|e| e.trimmed_text().to_owned());
        let component = text("component").unwrap_or_else(|| DEFAULT_COMPONENT.to_owned());
        Some(Manifest {
            rawname: rawname?,
            name: name?,
            version: version?,
            category: text("category").unwrap_or_else(|| "Other".to_owned()),
            description: text("description").unwrap_or_default(),
            depends,
            methods,
            component,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn depends(&mut self, root: &Element) -> Depends {
        let mut depends = Depends::default();
        for element in root
            .children_named("depends")
            .flat_map(|d| d.children_named("module"))
        {
            match parse_module_dependency(element.trimmed_text()) {
                Ok(dependency) => depends.modules.push(dependency),
                Err(message) => self.problem(element.position, message),
            }
        }
        depends
    }

    fn methods(&mut self, root: &Element) -> Vec<Method> {
        let mut methods = Vec::new();
        for element in root
            .children_named("methods")
            .flat_map(|m| m.children.iter())
        {
            let handler = element.trimmed_text();
            if handler.is_empty() {
                self.problem(
                    element.position,
                    format!("<{}> names no handler", element.name),
                );
                continue;
            }
            let priority = match element.attribute("pri") {
                None => DEFAULT_PRIORITY,
                Some(text) => match text.trim().parse() {
                    Ok(priority) => priority,
                    Err(_) => {
                        self.problem(
                            element.position,
                            format!("priority `{text}` of <{}> is not an integer", element.name),
                        );
                        continue;
                    }
                },
            };
            methods.push(Method {
                hook: element.name.clone(),
                handler: handler.to_owned(),
                priority,
            });
        }
        methods
    }
}

/// Parses `name [op version]`, refusing what FreePBX would silently ignore.
fn parse_module_dependency(text: &str) -> Result<ModuleDependency, String> {
    let malformed = || format!("dependency '{text}' is not of the form 'name [op] version'");
    let (name, rest) = match text.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (text, ""),
    };
    if !is_valid_rawname(name) {
        return Err(malformed());
    }
    let requirement = if rest.is_empty() {
        None
    } else {
        Some(Requirement::parse(rest).map_err(|e| format!("{}: {e}", malformed()))?)
    };
    Ok(ModuleDependency {
        name: name.to_owned(),
        requirement,
    })
}

#[cfg(test)]
mod tests;
