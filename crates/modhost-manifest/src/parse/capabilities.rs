//! What a module asks of the host: `<capabilities>`, interfaces and directories.

use super::Parser;
use crate::model::*;
use crate::xml::Element;

impl Parser {
    pub(super) fn capabilities(&mut self, root: &Element) -> Vec<Capability> {
        let mut capabilities = Vec::new();
        for element in root
            .children_named("capabilities")
            .flat_map(|c| c.children.iter())
        {
            if element.name == "import" {
                self.check_children("module/capabilities", element, &[]);
                self.unused_attributes(element, &["package"]);
                match element.attribute("package") {
                    Some(package) if is_wit_package(package) => {
                        capabilities.push(Capability::Import {
                            package: package.to_owned(),
                        });
                    }
                    Some(package) => self.problem(
                        element.position,
                        format!(
                            "package `{package}` is not a WIT package name (namespace:package, \
                             lower-case words joined by `-`)"
                        ),
                    ),
                    None => self.problem(element.position, "<import> has no package"),
                }
                continue;
            }
            if element.name != "directory" {
                // Unlike other unknown elements this is an error: a request modhost does
                // not understand cannot be shown to an administrator or granted safely,
                // and ignoring it would run the module without something it asked for.
                self.problem(
                    element.position,
                    format!(
                        "unknown capability <{}>: modhost cannot grant a permission it does \
                         not understand, so the module is refused (known: <directory>, <import>)",
                        element.name
                    ),
                );
                continue;
            }
            self.check_children("module/capabilities", element, &[]);
            // A misspelt `access` leaves the directory read-only: said, not silently.
            self.unused_attributes(element, &["path", "access"]);
            let access = match element.attribute("access").unwrap_or("read-only") {
                "read-only" => Some(Access::ReadOnly),
                "read-write" => Some(Access::ReadWrite),
                other => {
                    self.problem(
                        element.position,
                        format!("access `{other}` is not read-only or read-write"),
                    );
                    None
                }
            };
            let path = match element.attribute("path") {
                Some(path) if path.starts_with('/') && !path.split('/').any(|p| p == "..") => {
                    Some(path)
                }
                Some(path) => {
                    self.problem(
                        element.position,
                        format!("directory `{path}` is not an absolute path without `..`"),
                    );
                    None
                }
                None => {
                    self.problem(element.position, "<directory> has no path");
                    None
                }
            };
            if let (Some(path), Some(access)) = (path, access) {
                capabilities.push(Capability::Directory {
                    path: path.to_owned(),
                    access,
                });
            }
        }
        capabilities
    }
}

/// Whether `text` is a WIT package name without a version: `namespace:package`, each
/// part lower-case words of letters and digits joined by `-`.
fn is_wit_package(text: &str) -> bool {
    let word = |part: &str| {
        !part.is_empty()
            && part.split('-').all(|w| {
                w.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
    };
    text.split_once(':')
        .is_some_and(|(namespace, package)| word(namespace) && word(package))
}
