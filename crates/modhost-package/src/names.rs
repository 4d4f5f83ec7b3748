//! The names a package's entries take: each once, each a file or a directory but never
//! both, and no two differing only in case or in Unicode normalisation.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;

use crate::escape::shown_str;

/// What a path is, once an entry or a path below it named it.
struct Node {
    /// A directory (named by a directory entry or as a parent of another entry).
    dir: bool,
    /// Whether an entry of its own named it.
    entry: bool,
}

/// The paths the entries so far named, and their parents.
#[derive(Default)]
pub(crate) struct Names {
    /// Every path, `/`-joined, an entry or a parent of one names.
    nodes: BTreeMap<String, Node>,
    /// Every path in lower case and decomposed (NFD, as macOS stores names), and the path
    /// it is.
    folded: BTreeMap<String, String>,
}

impl Names {
    /// Records the entry at `parts` (shown as `shown`), a directory if `dir`; refuses it,
    /// saying why, when it repeats an entry, makes a file a directory or a directory a
    /// file, or differs from another path only in case.
    pub(crate) fn insert(
        &mut self,
        parts: &[String],
        dir: bool,
        shown: &str,
    ) -> Result<(), String> {
        for end in 1..=parts.len() {
            let path = parts[..end].join("/");
            let last = end == parts.len();
            let is_dir = dir || !last;
            match self.nodes.get_mut(&path) {
                Some(node) if node.dir != is_dir => {
                    return Err(format!(
                        "`{}` is both a file and a directory in the package; keep one of them",
                        shown_str(&path)
                    ));
                }
                Some(node) if last && node.entry => {
                    return Err(format!("duplicate entry `{shown}`"));
                }
                Some(node) => node.entry |= last,
                None => {
                    let folded: String = path.to_lowercase().nfd().collect();
                    if let Some(other) = self.folded.get(&folded) {
                        let how = if other.to_lowercase() == path.to_lowercase() {
                            "differ only in case"
                        } else {
                            "are one name in two Unicode forms (composed and decomposed)"
                        };
                        return Err(format!(
                            "entries `{}` and `{}` {how}, so they cannot both exist on macOS \
                             or Windows filesystems; rename one of them",
                            shown_str(other),
                            shown_str(&path)
                        ));
                    }
                    self.folded.insert(folded, path.clone());
                    self.nodes.insert(
                        path,
                        Node {
                            dir: is_dir,
                            entry: last,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether an entry named `path` (`/`-joined) as a file.
    pub(crate) fn is_file_entry(&self, path: &str) -> bool {
        self.nodes
            .get(path)
            .is_some_and(|node| node.entry && !node.dir)
    }

    /// A file named module.xml in another case, or deeper than it is read: what a package
    /// without a module.xml where it is read most likely meant.
    fn near_manifest(&self) -> Option<&str> {
        self.nodes
            .iter()
            .filter(|(_, node)| !node.dir)
            .map(|(path, _)| path.as_str())
            .find(|path| {
                let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
                name.eq_ignore_ascii_case("module.xml")
                    && (name != "module.xml" || parent.contains('/'))
            })
    }
}

/// What a package's entries lay out, checked entry by entry as they come: each name (no
/// control character, [`Names`]' rules) and the top-level directories. Unpacking and
/// reading only the manifest keep one alike, so that `list --from` never offers a package
/// `install` refuses.
#[derive(Default)]
pub(crate) struct Layout {
    names: Names,
    /// The first two top-level names: two are enough to refuse a second.
    tops: Vec<String>,
}

impl Layout {
    /// Records the entry at `parts` (shown as `shown`), a directory if `dir`: refused,
    /// saying why, as [`Names::insert`] refuses it, or when a name holds a control
    /// character.
    pub(crate) fn admit(&mut self, parts: &[String], dir: bool, shown: &str) -> Result<(), String> {
        let Some(first) = parts.first() else {
            return Ok(());
        };
        if self.tops.len() < 2 && !self.tops.contains(first) {
            self.tops.push(first.clone());
        }
        // A newline or an escape byte in a file name reaches every `ls` and log that
        // shows it: no module needs one.
        if parts.iter().any(|part| part.chars().any(char::is_control)) {
            return Err(format!(
                "entry `{shown}` has a control character in its name; \
                 rename the file and repack the module"
            ));
        }
        self.names.insert(parts, dir, shown)
    }

    /// The module's directory in the archive: none with module.xml at the root
    /// (`root_manifest`), else its one top-level directory; refused when there is none or
    /// more than one.
    pub(crate) fn module_dir(&self, root_manifest: bool) -> Result<Option<String>, String> {
        match self.tops.as_slice() {
            _ if root_manifest => Ok(None),
            [] => Err("the archive is empty".into()),
            [top] => Ok(Some(top.clone())),
            [one, other, ..] => Err(format!(
                "more than one entry at the archive's top level (`{}` and `{}`) and no \
                 `module.xml` at the root: a package holds its module either at its root or \
                 in one top-level directory",
                shown_str(one),
                shown_str(other)
            )),
        }
    }

    /// Whether an entry named `path` (`/`-joined) as a file.
    pub(crate) fn is_file_entry(&self, path: &str) -> bool {
        self.names.is_file_entry(path)
    }

    /// Whether `path` (`/`-joined) is a directory: an entry named so, or one beneath it.
    pub(crate) fn is_dir(&self, path: &str) -> bool {
        self.names.nodes.get(path).is_some_and(|node| node.dir)
    }

    /// The names (`/`-joined) of the files the package holds, in order.
    pub(crate) fn file_entries(&self) -> impl Iterator<Item = &str> {
        self.names
            .nodes
            .iter()
            .filter(|(_, node)| node.entry && !node.dir)
            .map(|(path, _)| path.as_str())
    }

    /// What a refusal for a missing module.xml adds when the package holds one by another
    /// case (`MODULE.XML`) or one level too deep (`acme/acme/module.xml`).
    /// Why no module.xml was found, as reading only the manifest and unpacking both say
    /// it: the archive is empty, it has no one module directory, or neither that
    /// directory nor the root holds one (with [`Layout::manifest_hint`]).
    pub(crate) fn missing_manifest(&self) -> String {
        let top = match self.module_dir(false) {
            Err(problem) => return problem,
            Ok(top) => top.unwrap_or_default(),
        };
        let inside = format!("{top}/module.xml");
        if let Some(dir) = ["module.xml", inside.as_str()]
            .into_iter()
            .find(|path| self.is_dir(path))
        {
            return format!("`{}` is a directory, not a file", shown_str(dir));
        }
        format!(
            "no `module.xml` at the package's root or in its top-level directory `{}/`{}",
            shown_str(&top),
            self.manifest_hint()
        )
    }

    pub(crate) fn manifest_hint(&self) -> String {
        match self.names.near_manifest() {
            Some(near) => format!(
                " (the package holds `{}`: module.xml is read by that name, in lower case, at \
                 the package's root or in its one top-level directory)",
                shown_str(near)
            ),
            None => String::new(),
        }
    }
}
