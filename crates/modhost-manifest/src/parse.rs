//! Builds the [`Manifest`] from the element tree, collecting every problem on the way.

use std::collections::{BTreeMap, HashSet};

use crate::model::*;
use crate::xml::{Element, Position};
use crate::{
    CATEGORIES, DEFAULT_COMPONENT, DEFAULT_OOBE_PRIORITY, DEFAULT_PRIORITY, FIELD_ATTRIBUTES,
    FIELD_TYPES, FOREIGN_KEY_ACTIONS, KEY_ATTRIBUTES, KEY_TYPES, MAX_HOOK_NAME, Problem, REPOS,
    Requirement, Version, is_valid_rawname, rawname_problem,
};

/// Whether an element may repeat.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occurs {
    Once,
    Many,
}
use Occurs::{Many, Once};

/// What a known element of `<module>` holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Text only: a child element in it is unknown.
    Text,
    /// Child elements, which its own reader checks.
    Elements,
}
use Holds::{Elements, Text};

/// Elements read from `<module>`, whether each may repeat and what it holds; anything
/// else is kept in [`Manifest::unknown`].
const ELEMENTS: &[(&str, Occurs, Holds)] = &[
    ("rawname", Once, Text),
    ("repo", Once, Text),
    ("name", Once, Text),
    ("version", Once, Text),
    ("type", Once, Text),
    ("category", Once, Text),
    ("publisher", Once, Text),
    ("oldpublisher", Once, Text),
    ("description", Once, Text),
    ("changelog", Once, Text),
    ("attention", Once, Text),
    ("info", Once, Text),
    ("license", Once, Text),
    ("licenselink", Once, Text),
    ("location", Once, Text),
    ("md5sum", Once, Text),
    ("sha1", Once, Text),
    ("sha1sum", Once, Text),
    ("menuitems", Many, Elements),
    ("depends", Many, Elements),
    ("requirements", Many, Elements),
    ("supported", Once, Elements),
    ("popovers", Many, Elements),
    ("oobe", Once, Elements),
    ("commercial", Once, Elements),
    ("fileinclude", Many, Elements),
    ("console", Many, Elements),
    ("database", Many, Elements),
    ("hooks", Many, Elements),
    ("methods", Many, Elements),
    ("updateurl", Once, Text),
    ("component", Once, Text),
    ("updateservers", Many, Elements),
    ("capabilities", Many, Elements),
    ("canuninstall", Once, Text),
    ("candisable", Once, Text),
    ("more-info", Once, Text),
    ("modtype", Once, Text),
    ("bugfix", Many, Text),
];

/// How often `name` may occur and what it holds, if it is a known element.
fn known(name: &str) -> Option<(Occurs, Holds)> {
    ELEMENTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, o, h)| (*o, *h))
}

/// Collects problems while building the model, so that all of them are reported.
#[derive(Default)]
pub(crate) struct Parser {
    pub(crate) problems: Vec<Problem>,
    warnings: Vec<Problem>,
    unknown: Vec<Unknown>,
}

/// The most handlers one module gives one hook point.
pub(crate) const MAX_HANDLERS: usize = 16;

/// The most tables one module declares. FreePBX's core, among the largest, declares about
/// 40; each table is a b-tree the module's quota measures one at a time.
pub(crate) const MAX_TABLES: usize = 256;

/// The most fields one table declares (SQLite's own limit is 2,000 columns).
pub(crate) const MAX_FIELDS: usize = 256;

/// The most indexes one module's tables make: its `<key>`s and `unique` fields. Each is a
/// b-tree measured as a table is, and read by every statement the module runs.
pub(crate) const MAX_INDEXES: usize = 512;

/// The handlers given so far, by hook point.
#[derive(Default)]
struct Handlers(std::collections::BTreeMap<String, std::collections::BTreeMap<String, i32>>);

/// `element` and everything under it, as written.
fn unknown(parent: &str, element: &Element) -> Unknown {
    let path = format!("{parent}/{}", element.name);
    Unknown {
        children: element
            .children
            .iter()
            .map(|child| unknown(&path, child))
            .collect(),
        parent: parent.to_owned(),
        name: element.name.clone(),
        attributes: element.attributes.iter().cloned().collect(),
        text: element.trimmed_text().to_owned(),
    }
}

impl Parser {
    /// Keeps an element modhost does not understand, with a warning: FreePBX adds
    /// elements over time, and a module using a newer one must still load.
    fn keep_unknown(&mut self, parent: &str, element: &Element) {
        let path = format!("{parent}/{}", element.name);
        self.warn(
            element.position,
            format!(
                "unknown element <{}> in <{}> is kept but not used (`{}`)",
                element.name,
                parent.rsplit('/').next().unwrap_or(parent),
                path.strip_prefix("module/").unwrap_or(&path)
            ),
        );
        self.unknown.push(unknown(parent, element));
    }

    /// Checks the children of `element` (which stands in `parent`): those named in
    /// `text` must hold text only, and any other is kept as unknown. Unknown elements
    /// are kept at every level, not only under `<module>`.
    fn check_children(&mut self, parent: &str, element: &Element, text: &[&str]) {
        let path = format!("{parent}/{}", element.name);
        for child in &element.children {
            if text.contains(&child.name.as_str()) {
                self.check_children(&path, child, &[]);
            } else {
                self.keep_unknown(&path, child);
            }
        }
    }

    fn problem(&mut self, position: Position, message: impl Into<String>) {
        self.problems.push(Problem {
            position,
            message: bounded(message.into()),
        });
    }

    /// Warns that update channel `url`, declared by `element`, is never checked unless it
    /// is an `https://` URL: modhost fetches nothing else for a module.
    fn warn_unless_https(&mut self, position: Position, element: &str, url: &str) {
        if !url.to_ascii_lowercase().starts_with("https://") {
            self.warn(
                position,
                format!(
                    "{element} `{url}` is not an https:// URL: modhost never checks it for \
                     updates"
                ),
            );
        }
    }

    fn warn(&mut self, position: Position, message: impl Into<String>) {
        self.warnings.push(Problem {
            position,
            message: bounded(message.into()),
        });
    }

    /// The trimmed text of the first child `name`, if present and not empty (`<info/>`).
    fn text(&self, parent: &Element, name: &str) -> Option<String> {
        parent
            .child(name)
            .map(|e| e.trimmed_text().to_owned())
            .filter(|t| !t.is_empty())
    }

    /// The trimmed text of the required child `name`, or a problem.
    fn required(&mut self, parent: &Element, name: &str) -> Option<String> {
        match parent.child(name) {
            None => {
                self.problem(parent.position, format!("<{name}> is missing"));
                None
            }
            Some(element) if element.trimmed_text().is_empty() => {
                self.problem(element.position, format!("<{name}> is empty"));
                None
            }
            Some(element) => Some(element.trimmed_text().to_owned()),
        }
    }

    /// An integer attribute, or `default` when absent; a problem when not an integer.
    fn integer(&mut self, element: &Element, attribute: &str, default: i32) -> i32 {
        match element.attribute(attribute) {
            None => default,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                // A number too large to be a priority is said to be one.
                let integer = text.trim().parse::<i128>().is_ok();
                let why = match integer {
                    true => format!("is out of range ({} to {})", i32::MIN, i32::MAX),
                    false => "is not an integer".to_owned(),
                };
                self.problem(
                    element.position,
                    format!("{attribute} `{text}` of <{}> {why}", element.name),
                );
                default
            }),
        }
    }

    /// A boolean attribute of a `<database>` field, as FreePBX's schema migration reads
    /// it: only `true` (in any case) is true; `false`, `no` and `0` are false, and so are
    /// `yes` and `1` (warned about: the author likely meant true); anything else is a
    /// problem, taken as `default`, which it also is when absent.
    fn boolean(&mut self, element: &Element, attribute: &str, default: bool) -> bool {
        match element
            .attribute(attribute)
            .map(|t| t.trim().to_ascii_lowercase())
        {
            None => default,
            Some(text) => match text.as_str() {
                "true" => true,
                "false" | "no" | "0" => false,
                "yes" | "1" => {
                    self.warn(
                        element.position,
                        format!(
                            "{attribute} `{text}` of <{}> is read as false, as FreePBX reads \
                             every value but `true`: write `true` if true is meant",
                            element.name
                        ),
                    );
                    false
                }
                _ => {
                    self.problem(
                        element.position,
                        format!(
                            "{attribute} `{text}` of <{}> is not true or false",
                            element.name
                        ),
                    );
                    default
                }
            },
        }
    }

    /// A non-negative integer attribute, if present.
    fn unsigned(&mut self, element: &Element, attribute: &str) -> Option<u32> {
        let text = element.attribute(attribute)?;
        text.trim()
            .parse()
            .map_err(|_| {
                self.problem(
                    element.position,
                    format!(
                        "{attribute} `{text}` of <{}> is not a non-negative integer",
                        element.name
                    ),
                )
            })
            .ok()
    }

    fn requirement(&mut self, element: &Element) -> Option<Requirement> {
        let requirement = Requirement::parse(element.trimmed_text())
            .map_err(|e| self.problem(element.position, format!("<{}>: {e}", element.name)))
            .ok()?;
        self.php_operator(element);
        Some(requirement)
    }

    /// Warns about a dependency read with one of PHP's operators that FreePBX's module
    /// admin does not know (`<version>>=2.10.0</version>`): FreePBX skips such a
    /// dependency, so a module may have been tested without it.
    fn php_operator(&mut self, element: &Element) {
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

    pub(crate) fn manifest(&mut self, root: &Element) -> Option<Manifest> {
        if root.name != "module" {
            self.problem(
                root.position,
                format!("the root element is <{}>, expected <module>", root.name),
            );
            return None;
        }
        let pruned = self.without_empty_repeats(root);
        let root = pruned.as_ref().unwrap_or(root);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for child in &root.children {
            *counts.entry(child.name.as_str()).or_default() += 1;
            match known(&child.name) {
                None => self.keep_unknown("module", child),
                Some((_, Text)) => self.check_children("module", child, &[]),
                Some((_, Elements)) => {}
            }
        }
        for (name, count) in counts {
            if count > 1 && known(name).is_some_and(|(occurs, _)| occurs == Once) {
                self.repeated(root, name, count);
            }
        }
        let rawname = self.required(root, "rawname");
        if let (Some(name), Some(element)) = (&rawname, root.child("rawname"))
            && let Some(problem) = rawname_problem(name)
        {
            self.problem(element.position, problem);
        }
        let name = self.required(root, "name");
        let version = self.required(root, "version").and_then(|text| {
            let position = root
                .child("version")
                .map(|e| e.position)
                .unwrap_or_default();
            Version::parse(&text)
                .map_err(|e| self.problem(position, e.to_string()))
                .ok()
        });
        let repo = self.repo(root);
        let kind = self.text(root, "type");
        if let (Some(kind), Some(element)) = (&kind, root.child("type")) {
            self.warn(
                element.position,
                format!("<type>{kind}</type> is deprecated; use <category>"),
            );
        }
        let category = self.category(root);
        let md5sum = self.checksum(root, &["md5sum"], 32, true);
        let sha1 = self.checksum(root, &["sha1", "sha1sum"], 40, false);
        let depends = self.depends(root);
        let requirements = self.requirements(root);
        let supported = self.supported(root);
        let menuitems = self.menuitems(root, &category);
        let popovers = self.popovers(root);
        let oobe = root.child("oobe").and_then(|e| self.oobe(e));
        let commercial = root.child("commercial").map(|e| self.commercial(e));
        let fileinclude = self.fileinclude(root);
        let console = self.console(root);
        let database = self.database(root);
        let mut handlers = Handlers::default();
        // `<methods>` first: its `pri` is FreePBX's own way to order a hook point's
        // handlers, and of a handler named in both, the first named is kept.
        let methods = self.methods(root, &mut handlers);
        let hooks = self.hooks(root, &mut handlers);
        let updateurl = self.text(root, "updateurl");
        if let (Some(url), Some(element)) = (&updateurl, root.child("updateurl")) {
            self.warn_unless_https(element.position, "<updateurl>", url);
        }
        let updateurl_publickey = root
            .child("updateurl")
            .and_then(|u| u.attribute("publickey"))
            .map(str::to_owned);
        let component = self.component(root);
        let updateservers = self.updateservers(root);
        let capabilities = self.capabilities(root);
        let canuninstall = self.yes_no(root, "canuninstall");
        let candisable = self.yes_no(root, "candisable");
        // Found reader by reader, warnings are reported in the file's order.
        self.warnings
            .sort_by_key(|w| (w.position.line, w.position.column));
        Some(Manifest {
            rawname: rawname?,
            repo,
            name: name?,
            version: version?,
            kind,
            category,
            publisher: self.text(root, "publisher"),
            oldpublisher: self.text(root, "oldpublisher"),
            description: self.text(root, "description"),
            changelog: self.text(root, "changelog"),
            attention: self.text(root, "attention"),
            info: self.text(root, "info"),
            license: self.text(root, "license"),
            licenselink: self.text(root, "licenselink"),
            location: self.text(root, "location"),
            md5sum,
            sha1,
            menuitems,
            depends,
            requirements,
            supported,
            popovers,
            oobe,
            commercial,
            fileinclude,
            console,
            database,
            hooks,
            methods,
            updateurl,
            updateurl_publickey,
            component,
            updateservers,
            capabilities,
            canuninstall,
            candisable,
            more_info: self.text(root, "more-info"),
            modtype: self.text(root, "modtype"),
            bugfix: root
                .children_named("bugfix")
                .map(|e| Bugfix {
                    id: e.attribute("id").map(str::to_owned),
                    text: e.trimmed_text().to_owned(),
                })
                .filter(|b| b.id.is_some() || !b.text.is_empty())
                .collect(),
            unknown: std::mem::take(&mut self.unknown),
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// `root` without the empty repeats of an element that may appear once, when one of
    /// its repeats has content (bulkhandler 13.0.21 has `<description/>`, then its
    /// description): the one with content is read, and each empty one is warned about.
    /// `None` when there are none to leave out.
    fn without_empty_repeats(&mut self, root: &Element) -> Option<Element> {
        let empty = |e: &Element| {
            e.trimmed_text().is_empty() && e.children.is_empty() && e.attributes.is_empty()
        };
        let left_out: Vec<usize> = root
            .children
            .iter()
            .enumerate()
            .filter(|(_, child)| {
                empty(child)
                    && known(&child.name).is_some_and(|(occurs, _)| occurs == Once)
                    && root.children_named(&child.name).any(|other| !empty(other))
            })
            .map(|(index, _)| index)
            .collect();
        if left_out.is_empty() {
            return None;
        }
        for &index in &left_out {
            let child = &root.children[index];
            self.warn(
                child.position,
                format!(
                    "an empty <{}/> beside another <{0}> with content is left out",
                    child.name
                ),
            );
        }
        let mut pruned = root.clone();
        let mut index = 0;
        pruned.children.retain(|_| {
            index += 1;
            !left_out.contains(&(index - 1))
        });
        Some(pruned)
    }

    /// An element that may appear once appears `count` times. Repeats with the same
    /// content as the first are a warning (old FreePBX releases repeat `<supported>` and
    /// `<publisher>`, and FreePBX loads them): the first is read. A repeat that differs is
    /// an error, since which one is meant cannot be told.
    fn repeated(&mut self, root: &Element, name: &str, count: usize) {
        let mut all = root.children_named(name);
        let Some(first) = all.next() else { return };
        let repeats: Vec<&Element> = all.collect();
        match repeats.iter().find(|repeat| !same_content(first, repeat)) {
            Some(differs) => self.problem(
                differs.position,
                format!("<{name}> appears {count} times; it may appear once"),
            ),
            None => {
                for repeat in repeats {
                    self.warn(
                        repeat.position,
                        format!(
                            "<{name}> repeats the one at {} with the same content; one is enough",
                            at(first.position)
                        ),
                    );
                }
            }
        }
    }

    fn repo(&mut self, root: &Element) -> String {
        match (self.text(root, "repo"), root.child("repo")) {
            (Some(repo), Some(element)) => {
                if !REPOS.contains(&repo.as_str()) {
                    self.warn(
                        element.position,
                        format!(
                            "unknown repo `{repo}` (expected one of {})",
                            REPOS.join(", ")
                        ),
                    );
                }
                repo
            }
            _ => "local".to_owned(),
        }
    }

    fn category(&mut self, root: &Element) -> String {
        match (self.text(root, "category"), root.child("category")) {
            (Some(category), Some(element)) => {
                match CATEGORIES
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(&category))
                {
                    Some(known) => (*known).to_owned(),
                    None => {
                        self.warn(
                            element.position,
                            format!("unknown category `{category}` is shown as Other"),
                        );
                        "Other".to_owned()
                    }
                }
            }
            _ => "Other".to_owned(),
        }
    }

    /// The checksum written under any of `names` (spellings of one element, such as
    /// `<sha1>` and `<sha1sum>`), lower-cased. Two spellings with the same value are a
    /// warning (one is redundant); with different values they are an error, because a
    /// package cannot match both and choosing one would hide a broken file.
    ///
    /// With `placeholders`, a value that is not hexadecimal at all is a placeholder, not a
    /// checksum: real FreePBX files write `<md5sum>compatibility</md5sum>` (every firewall
    /// 16 and 17 release), `x` or `junk`, and FreePBX loads them. It is warned about and
    /// taken as absent. Hexadecimal digits of the wrong length stay an error: that is a
    /// damaged checksum no package can match.
    fn checksum(
        &mut self,
        root: &Element,
        names: &[&str],
        hex_len: usize,
        placeholders: bool,
    ) -> Option<String> {
        let mut found: Vec<(&Element, String)> = Vec::new();
        for element in names.iter().filter_map(|name| root.child(name)) {
            let text = element.trimmed_text().to_ascii_lowercase();
            if text.is_empty() {
                continue;
            }
            if placeholders && !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.warn(
                    element.position,
                    format!(
                        "<{}> `{}` is not a checksum ({hex_len} hexadecimal digits); it is \
                         taken as absent (FreePBX loads such files)",
                        element.name,
                        element.trimmed_text()
                    ),
                );
                continue;
            }
            found.push((element, text));
        }
        // The one written first is the reference; a later one is what gets reported.
        found.sort_by_key(|(element, _)| (element.position.line, element.position.column));
        for (element, text) in &found {
            if text.len() != hex_len || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.problem(
                    element.position,
                    format!(
                        "<{}> `{text}` is not {hex_len} hexadecimal digits",
                        element.name
                    ),
                );
            }
        }
        let ((first, value), rest) = found.split_first()?;
        for (element, text) in rest {
            if text == value {
                self.warn(
                    element.position,
                    format!(
                        "<{}> repeats <{}> (at {}); one of them is enough",
                        element.name,
                        first.name,
                        at(first.position)
                    ),
                );
            } else {
                self.problem(
                    element.position,
                    format!(
                        "<{}> `{text}` differs from <{}> `{value}` (at {}); a package cannot match both",
                        element.name,
                        first.name,
                        at(first.position)
                    ),
                );
            }
        }
        Some(value.clone())
    }

    fn named(&mut self, element: &Element, rawname_grammar: bool) -> Option<NamedRequirement> {
        let named = parse_named(element.trimmed_text(), rawname_grammar)
            .map_err(|message| self.problem(element.position, message))
            .ok()?;
        self.php_operator(element);
        Some(named)
    }

    fn depends(&mut self, root: &Element) -> Depends {
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

    fn path(&mut self, element: &Element) -> Option<String> {
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

    fn requirements(&mut self, root: &Element) -> Requirements {
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
    fn supported(&mut self, root: &Element) -> Option<Supported> {
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

    /// A `yes`/`no` element such as `<canuninstall>`, `yes` when absent; anything else is
    /// warned about and taken as `yes`, which refuses nothing.
    fn yes_no(&mut self, root: &Element, name: &str) -> bool {
        let (Some(text), Some(element)) = (self.text(root, name), root.child(name)) else {
            return true;
        };
        match text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => {
                self.warn(
                    element.position,
                    format!("<{name}>{text}</{name}> is neither yes nor no; taken as yes"),
                );
                true
            }
        }
    }

    /// The `sort` of menu item `element`, `text`: an integer, kept within -10 to 10 as
    /// FreePBX's module admin keeps it (said as a warning).
    fn menu_sort(&mut self, element: &Element, text: &str) -> Option<i32> {
        let Ok(sort) = text.trim().parse::<i64>() else {
            self.problem(
                element.position,
                format!(
                    "sort `{text}` of menu item <{}> is not an integer from -10 to 10",
                    element.name
                ),
            );
            return None;
        };
        let kept = sort.clamp(-10, 10);
        if kept != sort {
            self.warn(
                element.position,
                format!(
                    "sort `{text}` of menu item <{}> is outside -10 to 10: it is {kept}, as \
                     FreePBX keeps it",
                    element.name
                ),
            );
        }
        i32::try_from(kept).ok()
    }

    /// The `<menuitems>`; one without a `category`, or with an empty one, is in the
    /// module's `category`, where FreePBX's menu shows it.
    fn menuitems(&mut self, root: &Element, category: &str) -> Vec<MenuItem> {
        let mut items = Vec::new();
        for element in root
            .children_named("menuitems")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/menuitems", element, &[]);
            let sort = element
                .attribute("sort")
                .and_then(|text| self.menu_sort(element, text));
            items.push(MenuItem {
                key: element.name.clone(),
                label: element.trimmed_text().to_owned(),
                category: Some(
                    element
                        .attribute("category")
                        .filter(|c| !c.trim().is_empty())
                        .unwrap_or(category)
                        .to_owned(),
                ),
                sort,
                attributes: element.attributes.iter().cloned().collect(),
            });
        }
        items
    }

    fn popovers(&mut self, root: &Element) -> Vec<Popover> {
        let mut popovers = Vec::new();
        for element in root
            .children_named("popovers")
            .flat_map(|p| p.children.iter())
        {
            // A popover's children are its parameters, whatever their names: text only.
            let path = format!("module/popovers/{}", element.name);
            for param in &element.children {
                self.check_children(&path, param, &[]);
            }
            popovers.push(Popover {
                name: element.name.clone(),
                params: element
                    .children
                    .iter()
                    .map(|param| (param.name.clone(), param.trimmed_text().to_owned()))
                    .collect(),
            });
        }
        popovers
    }

    fn oobe(&mut self, element: &Element) -> Option<Oobe> {
        self.check_children("module", element, &["method"]);
        let method = element
            .attribute("method")
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .or_else(|| self.text(element, "method"));
        let priority = self.integer(element, "priority", DEFAULT_OOBE_PRIORITY);
        match method {
            Some(method) => Some(Oobe { method, priority }),
            None => {
                self.problem(element.position, "<oobe> names no method");
                None
            }
        }
    }

    fn commercial(&mut self, element: &Element) -> Commercial {
        self.check_children("module", element, &["type", "link"]);
        let kind = self
            .text(element, "type")
            .unwrap_or_else(|| "paid".to_owned());
        if !["free", "paid", "upgradeable"].contains(&kind.as_str()) {
            self.warn(
                element.position,
                format!("commercial type `{kind}` is not free, paid or upgradeable"),
            );
        }
        Commercial {
            kind,
            link: self.text(element, "link"),
        }
    }

    fn fileinclude(&mut self, root: &Element) -> Vec<FileInclude> {
        let mut includes = Vec::new();
        for element in root
            .children_named("fileinclude")
            .flat_map(|f| f.children.iter())
        {
            self.check_children("module/fileinclude", element, &[]);
            includes.push(FileInclude {
                stage: element.name.clone(),
                path: element.trimmed_text().to_owned(),
            });
        }
        includes
    }

    fn console(&mut self, root: &Element) -> Vec<ConsoleCommand> {
        let mut commands = Vec::new();
        for element in root
            .children_named("console")
            .flat_map(|c| c.children.iter())
        {
            if element.name != "command" {
                self.keep_unknown("module/console", element);
                continue;
            }
            self.check_children("module/console", element, &["name", "alias", "class"]);
            match self.text(element, "name") {
                Some(name) => commands.push(ConsoleCommand {
                    name,
                    aliases: element
                        .children_named("alias")
                        .map(|a| a.trimmed_text().to_owned())
                        .filter(|a| !a.is_empty())
                        .collect(),
                    class: self.text(element, "class"),
                }),
                None => self.problem(element.position, "<console><command> has no <name>"),
            }
        }
        commands
    }

    fn database(&mut self, root: &Element) -> Database {
        let mut tables = Vec::new();
        // SQLite does not tell `calls` from `CALLS`, so neither does this check.
        let mut declared = Declared::default();
        for database in root.children_named("database") {
            // FreePBX migrates the tables of one `<database>` together, keyed by name, so
            // there a later table of the same name wins. It reads only the first
            // `<database>`, so a table repeated from another one stays an error.
            let mut here: HashSet<&str> = HashSet::new();
            for element in &database.children {
                if element.name != "table" {
                    self.keep_unknown("module/database", element);
                    continue;
                }
                let name = self.name_attribute(element);
                if let Some((name, why)) = name
                    .as_deref()
                    .and_then(|n| crate::reserved_table(n).map(|why| (n, why)))
                {
                    self.problem(
                        element.position,
                        format!("table `{name}`: the table name is reserved: {why}"),
                    );
                }
                let again = name.as_ref().is_some_and(|name| {
                    let later_wins = here.contains(&name.as_str());
                    self.declare(
                        &mut declared,
                        "table",
                        name,
                        element.position,
                        "",
                        later_wins,
                    )
                });
                here.extend(identifier_attribute(element));
                // A table with a bad name is still checked whole, so that every problem in
                // it is reported now rather than after the name is fixed.
                let table = self.table(element);
                if let Some(name) = name {
                    replace_or_push(&mut tables, Table { name, ..table }, again, |t| &t.name);
                }
                if tables.len() == MAX_TABLES + 1 {
                    self.problem(
                        element.position,
                        format!("more than {MAX_TABLES} tables are declared"),
                    );
                }
            }
        }
        let indexes: usize = tables
            .iter()
            .map(|t| t.keys.len() + t.fields.iter().filter(|f| f.unique).count())
            .sum();
        if indexes > MAX_INDEXES {
            self.problem(
                root.child("database").map_or(root.position, |d| d.position),
                format!(
                    "the tables declare {indexes} indexes (keys and unique fields); at most \
                     {MAX_INDEXES} are allowed"
                ),
            );
        }
        Database { tables }
    }

    /// Reports `name` if `declared` already holds it, ignoring case; records it otherwise.
    /// `of` says where the name lives (" of table `t`") for the message.
    ///
    /// With `later_wins`, the same name spelled the same way is a warning and `true` is
    /// returned: the later definition replaces the earlier, as FreePBX's migration keys
    /// tables and fields by name (core 14.0.1 to 16.0.30 declare `outbound_routes`
    /// twice, and `mohclass` twice in `incoming`). A name differing only in case stays an
    /// error: FreePBX would keep both, and SQLite cannot.
    fn declare(
        &mut self,
        declared: &mut Declared,
        what: &str,
        name: &str,
        position: Position,
        of: &str,
        later_wins: bool,
    ) -> bool {
        let folded = name.to_ascii_lowercase();
        match declared.get(&folded) {
            Some((first, at_first)) if later_wins && first == name => {
                let message = format!(
                    "{what} `{name}`{of} is declared at {} and again at {}; the later \
                     definition is used, as FreePBX uses it",
                    at(*at_first),
                    at(position)
                );
                self.warn(position, message);
                true
            }
            Some((first, at_first)) => {
                let spelled = if first == name {
                    String::new()
                } else {
                    format!(" as `{first}`; SQLite ignores case in names")
                };
                let message = format!(
                    "{what} `{name}`{of} is already declared (at {}{spelled})",
                    at(*at_first)
                );
                self.problem(position, message);
                false
            }
            None => {
                declared.insert(folded, (name.to_owned(), position));
                false
            }
        }
    }

    /// The fields and keys of `<table>`, checked against each other; the name is the
    /// caller's.
    fn table(&mut self, element: &Element) -> Table {
        let label = label(element, "table");
        // Every `<field>`'s name as written, even one with a bad type or a bad name: a key
        // naming it is then not reported as well, since fixing the field fixes both.
        let field_names: HashSet<String> = element
            .children_named("field")
            .filter_map(|f| f.attribute("name"))
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let of = format!(" of {label}");
        let mut fields_declared = Declared::default();
        let mut keys_declared = Declared::default();
        let mut table = Table {
            name: String::new(),
            fields: Vec::new(),
            keys: Vec::new(),
        };
        for child in &element.children {
            match child.name.as_str() {
                "field" => {
                    self.check_children("module/database/table", child, &[]);
                    let again = identifier_attribute(child).is_some_and(|name| {
                        self.declare(
                            &mut fields_declared,
                            "field",
                            name,
                            child.position,
                            &of,
                            true,
                        )
                    });
                    if let Some(field) = self.field(child) {
                        replace_or_push(&mut table.fields, field, again, |f| &f.name);
                        if table.fields.len() == MAX_FIELDS + 1 {
                            self.problem(
                                child.position,
                                format!("{label} declares more than {MAX_FIELDS} fields"),
                            );
                        }
                    }
                }
                "key" => {
                    self.check_children("module/database/table", child, &["column"]);
                    // A key becomes one SQLite index named after the module, table and key:
                    // a second key of the same name, in any case, would be the same index.
                    // Unlike a table or field, a repeated key stays an error.
                    if let Some(name) = identifier_attribute(child) {
                        self.declare(&mut keys_declared, "key", name, child.position, &of, false);
                    }
                    table.keys.extend(self.key(child, &field_names, &label));
                }
                _ => self.keep_unknown("module/database/table", child),
            }
        }
        // Only when there is no `<field>` at all: bad fields are already reported.
        if element.child("field").is_none() {
            self.problem(element.position, format!("{label} has no fields"));
        }
        self.check_primary_keys(element, &label, &table);
        // SQLite numbers a lone INTEGER primary key itself, and nothing else.
        if table.fields.iter().filter(|f| f.primarykey).count() > 1 {
            for field in table.fields.iter().filter(|f| f.autoincrement) {
                self.warn(
                    element.position,
                    format!(
                        "{label}: `autoincrement` of field `{}` is not used: SQLite numbers \
                         rows only for a primary key of one integer field, and this one has \
                         several",
                        field.name
                    ),
                );
            }
        }
        table
    }

    /// A table has one primary key: given by its fields' `primaryKey` or by one
    /// `<key type="primary">`. Two that differ are a problem (FreePBX's migration, through
    /// Doctrine, refuses the table too); the same one twice, a warning.
    fn check_primary_keys(&mut self, element: &Element, label: &str, table: &Table) {
        let folded = |names: &mut dyn Iterator<Item = &String>| {
            let mut names: Vec<String> = names.map(|n| n.to_ascii_lowercase()).collect();
            names.sort();
            names
        };
        let mut declared: Vec<(String, Vec<String>)> = Vec::new();
        let flagged = folded(
            &mut table
                .fields
                .iter()
                .filter(|f| f.primarykey)
                .map(|f| &f.name),
        );
        if !flagged.is_empty() {
            declared.push(("its fields' `primaryKey`".to_owned(), flagged));
        }
        for key in table.keys.iter().filter(|k| k.kind == "primary") {
            declared.push((
                format!("key `{}`", key.name),
                folded(&mut key.columns.iter()),
            ));
        }
        let Some(((first, columns), rest)) = declared.split_first() else {
            return;
        };
        for (other, others) in rest {
            let (what, same) = (
                format!("{label} declares its primary key twice"),
                others == columns,
            );
            let message = format!(
                "{what}: {first} gives ({}) and {other} gives ({})",
                columns.join(", "),
                others.join(", ")
            );
            if same {
                self.warn(element.position, format!("{message}; one is enough"));
            } else {
                self.problem(
                    element.position,
                    format!("{message}; a table has one primary key: keep one of them"),
                );
            }
        }
    }

    /// The `name` attribute, which must be an SQL identifier.
    fn name_attribute(&mut self, element: &Element) -> Option<String> {
        match element.attribute("name").map(str::trim) {
            Some(name) if is_identifier(name) => Some(name.to_owned()),
            Some(name) => {
                self.problem(
                    element.position,
                    format!(
                        "<{}> name `{name}` is not an identifier (letters, digits, _)",
                        element.name
                    ),
                );
                None
            }
            None => {
                self.problem(element.position, format!("<{}> has no name", element.name));
                None
            }
        }
    }

    /// One `<field>`. Every attribute is checked even when the name or type is bad, so
    /// that all of its problems are reported together.
    fn field(&mut self, element: &Element) -> Option<Field> {
        let element = &lowercase_attributes(element);
        let label = label(element, "field");
        let name = self.name_attribute(element);
        if let Some(why) = name.as_deref().and_then(crate::reserved_column) {
            self.problem(
                element.position,
                format!("{label}: the column name is reserved: {why}"),
            );
        }
        let kind = match element
            .attribute("type")
            .map(|t| t.trim().to_ascii_lowercase())
        {
            Some(kind) if FIELD_TYPES.contains(&kind.as_str()) => Some(kind),
            Some(kind) if !kind.is_empty() => {
                self.problem(
                    element.position,
                    format!(
                        "{label} has unknown type `{kind}` (expected one of {})",
                        FIELD_TYPES.join(", ")
                    ),
                );
                None
            }
            _ => {
                self.problem(
                    element.position,
                    format!(
                        "{label} has no type (expected one of {})",
                        FIELD_TYPES.join(", ")
                    ),
                );
                None
            }
        };
        for (attribute, _) in &element.attributes {
            if !FIELD_ATTRIBUTES.contains(&attribute.as_str()) {
                self.warn(
                    element.position,
                    format!("{label}: unknown attribute `{attribute}` is not used"),
                );
            }
        }
        let length = self.unsigned(element, "length");
        let notnull = self.boolean(element, "notnull", true);
        let primarykey = self.boolean(element, "primarykey", false);
        let autoincrement = self.boolean(element, "autoincrement", false);
        let unique = self.boolean(element, "unique", false);
        let unsigned = self.boolean(element, "unsigned", false);
        let fixed = self.boolean(element, "fixed", false);
        let precision = self.unsigned(element, "precision");
        let scale = self.unsigned(element, "scale");
        let default = element.attribute("default").map(str::to_owned);
        if let (Some(kind), Some(default)) = (&kind, &default) {
            self.check_default(element, &label, kind, default);
        }
        Some(Field {
            name: name?,
            kind: kind?,
            length,
            default,
            notnull,
            primarykey,
            autoincrement,
            unique,
            unsigned,
            fixed,
            precision,
            scale,
            comment: element.attribute("comment").map(str::to_owned),
        })
    }

    /// Warns of a field's `default` that its column keeps otherwise than a FreePBX module
    /// (on MySQL, through Doctrine) expects: every default is kept as the text written,
    /// so a number field's default that is no number, a boolean's `true`, or a date's
    /// `CURRENT_TIMESTAMP` (kept as that word, not the time of the insert) is said.
    fn check_default(&mut self, element: &Element, label: &str, kind: &str, default: &str) {
        let numeric = matches!(
            kind,
            "integer" | "smallint" | "bigint" | "decimal" | "float"
        );
        let number = default.trim().parse::<f64>().is_ok();
        let why = match kind {
            "boolean" if !matches!(default.trim(), "0" | "1") => {
                "a boolean is stored as 0 or 1: write the default as one of them"
            }
            "datetime" | "datetimetz" | "date" | "time"
                if default.trim().to_ascii_uppercase().starts_with("CURRENT_") =>
            {
                "it is kept as that text, not the time of the insert: write the time in \
                 the INSERT"
            }
            _ if numeric && !number => "it is not a number, and is kept as text",
            _ => return,
        };
        self.warn(
            element.position,
            format!("{label}: default `{default}` of a {kind} field: {why}"),
        );
    }

    /// One `<key>` of `table` (its label), whose columns must be among `fields` (the
    /// table's field names, lower-cased: SQLite's column names ignore case).
    fn key(&mut self, element: &Element, fields: &HashSet<String>, table: &str) -> Option<Key> {
        let element = &lowercase_attributes(element);
        let label = label(element, "key");
        let name = self.name_attribute(element);
        let kind = element
            .attribute("type")
            .unwrap_or("index")
            .trim()
            .to_ascii_lowercase();
        let known_kind = KEY_TYPES.contains(&kind.as_str());
        if !known_kind {
            self.problem(
                element.position,
                format!(
                    "{label} has unknown type `{kind}` (expected one of {})",
                    KEY_TYPES.join(", ")
                ),
            );
        }
        let mut columns = Vec::new();
        for column in element.children_named("column") {
            match column.attribute("name").map(str::trim) {
                Some(name) if !name.is_empty() => {
                    if !fields.contains(&name.to_ascii_lowercase()) {
                        self.problem(
                            column.position,
                            format!(
                                "{label} names column `{name}`, which is not a field of {table}"
                            ),
                        );
                    }
                    columns.push(name.to_owned());
                }
                _ => self.problem(column.position, format!("<column> of {label} has no name")),
            }
        }
        if element.child("column").is_none() {
            self.problem(element.position, format!("{label} has no <column name>"));
        }
        if !known_kind {
            return None;
        }
        let kind = if kind == "fulltext" {
            self.warn(
                element.position,
                format!(
                    "{label} is a full-text index, which SQLite's tables do not have: it is \
                     kept as a plain index"
                ),
            );
            "index".to_owned()
        } else {
            kind
        };
        let attributes = self.key_attributes(element, &label, &kind, columns.len())?;
        Some(Key {
            name: name?,
            kind,
            columns,
            attributes,
        })
    }

    /// The attributes of `<key>` `element` (its label, of `kind`, over `columns`
    /// columns) beyond its name and type: a foreign key's target, as `foreigntable` and
    /// `foreigncolumns` whichever spelling named the columns, and its actions in capitals.
    /// What cannot be used is a warning, never a refusal (a module installed by an older
    /// modhost, whose manifest is read again, must still load): an attribute no key reads,
    /// a foreign key's on another kind, an action SQL does not have (left out); a foreign
    /// key naming no table or target columns that do not pair with its own (`None`: the
    /// key is not created, as SQLite could never check it).
    fn key_attributes(
        &mut self,
        element: &Element,
        label: &str,
        kind: &str,
        columns: usize,
    ) -> Option<BTreeMap<String, String>> {
        let mut attributes = BTreeMap::new();
        let mut usable = true;
        for (attribute, value) in &element.attributes {
            let attribute = attribute.as_str();
            if attribute == "name" || attribute == "type" {
                continue;
            }
            if !KEY_ATTRIBUTES.contains(&attribute) {
                self.warn(
                    element.position,
                    format!("{label}: unknown attribute `{attribute}` is not used"),
                );
                continue;
            }
            if kind != "foreign" {
                self.warn(
                    element.position,
                    format!("{label}: `{attribute}` is not used by a key of type `{kind}`"),
                );
                continue;
            }
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            match attribute {
                "ondelete" | "onupdate" => {
                    let action = value.to_ascii_uppercase();
                    if FOREIGN_KEY_ACTIONS.contains(&action.as_str()) {
                        attributes.insert(attribute.to_owned(), action);
                    } else {
                        self.warn(
                            element.position,
                            format!(
                                "{label}: `{attribute}` is `{value}`, which is not used \
                                 (expected one of {})",
                                FOREIGN_KEY_ACTIONS.join(", ")
                            ),
                        );
                    }
                }
                "foreigncols" | "foreigncolumns" => {
                    if attributes.contains_key("foreigncolumns") {
                        self.warn(
                            element.position,
                            format!("{label} names its target columns twice: the first is used"),
                        );
                        continue;
                    }
                    let named: Vec<&str> = value.split(',').map(str::trim).collect();
                    if named.len() != columns || named.iter().any(|c| c.is_empty()) {
                        self.warn(
                            element.position,
                            format!(
                                "{label} is not created: its target columns `{value}` do not \
                                 pair with its {columns} own"
                            ),
                        );
                        usable = false;
                    }
                    attributes.insert("foreigncolumns".to_owned(), named.join(","));
                }
                _ => {
                    attributes.insert(attribute.to_owned(), value);
                }
            }
        }
        if kind == "foreign" && !attributes.contains_key("foreigntable") {
            self.warn(
                element.position,
                format!("{label} is not created: a foreign key must name its `foreigntable`"),
            );
            usable = false;
        }
        usable.then_some(attributes)
    }

    /// Whether `handler` of hook point `hook`, at `position`, is taken: a handler named
    /// again runs once (a warning), and a module gives one hook point at most
    /// [`MAX_HANDLERS`] handlers (a problem), since every one is a call of its own.
    fn handler_taken(
        &mut self,
        handlers: &mut Handlers,
        position: Position,
        hook: String,
        handler: &str,
        priority: i32,
    ) -> bool {
        // Names reach logs, terminals and the module's own dispatch: a control character
        // in one (`&#x1b;` written in) is nothing a module's code could mean.
        for (what, name) in [("handler", handler), ("hook point", hook.as_str())] {
            if let Some(c) = name.chars().find(|c| c.is_control()) {
                self.problem(
                    position,
                    format!(
                        "{what} `{}` holds the control character U+{:04X}: a {what}'s name is \
                         printable text",
                        name.escape_debug(),
                        u32::from(c)
                    ),
                );
                return false;
            }
        }
        if hook.len() > MAX_HOOK_NAME {
            let shown = &hook[..hook.floor_char_boundary(64)];
            self.problem(
                position,
                format!(
                    "hook point `{shown}…` is {} bytes long: a hook point's name is at most \
                     {MAX_HOOK_NAME}",
                    hook.len()
                ),
            );
            return false;
        }
        let taken = handlers.0.entry(hook).or_default();
        if let Some(kept) = taken.get(handler) {
            self.warn(
                position,
                format!(
                    "handler `{handler}` is named again for this hook point: it runs once, at \
                     priority {kept} as first named (not at {priority})"
                ),
            );
            return false;
        }
        if taken.len() == MAX_HANDLERS {
            self.problem(
                position,
                format!(
                    "more than {MAX_HANDLERS} handlers for one hook point: each is a call, and \
                     one module's calls at a hook point are bounded"
                ),
            );
            return false;
        }
        taken.insert(handler.to_owned(), priority);
        true
    }

    fn hooks(&mut self, root: &Element, handlers: &mut Handlers) -> Vec<Hook> {
        let mut hooks = Vec::new();
        for target in root.children_named("hooks").flat_map(|h| h.children.iter()) {
            // A priority on the target applies to each of its methods that gives none.
            let inherited = self.integer(target, "priority", DEFAULT_PRIORITY);
            let target_name = self.hook_target(target);
            // Part of the hook point's name (`framework.Start.preAsteriskHooks`): a PHP
            // class name, without its namespace (given apart, in `namespace`).
            let target_class = target.attribute("class").map(str::trim);
            if let Some(class) = target_class.filter(|c| !is_identifier(c)) {
                self.problem(
                    target.position,
                    format!(
                        "<hooks><{}> class `{class}` is not a class name (letters, digits, _)",
                        target.name
                    ),
                );
            }
            let target_class = target_class.map(str::to_owned);
            for method in &target.children {
                let parent = format!("module/hooks/{}", target.name);
                if method.name != "method" {
                    self.keep_unknown(&parent, method);
                    continue;
                }
                self.check_children(&parent, method, &[]);
                // Each of these is checked, so that all of a method's problems show at once.
                let hook = method
                    .attribute("callingMethod")
                    .map(str::trim)
                    .filter(|h| !h.is_empty());
                if hook.is_none() {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> has no callingMethod", target.name),
                    );
                }
                let handler = method.trimmed_text();
                if handler.is_empty() {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> names no handler", target.name),
                    );
                }
                let priority = self.integer(method, "priority", inherited);
                let Some(hook) = hook.filter(|_| !handler.is_empty()) else {
                    continue;
                };
                let entry = Hook {
                    target: target_name.clone(),
                    hook: hook.to_owned(),
                    handler: handler.to_owned(),
                    priority,
                    target_class: target_class.clone(),
                    target_namespace: target.attribute("namespace").map(str::to_owned),
                    class: method.attribute("class").map(str::to_owned),
                    namespace: method.attribute("namespace").map(str::to_owned),
                };
                if self.handler_taken(handlers, method.position, entry.point(), handler, priority) {
                    hooks.push(entry);
                }
            }
        }
        hooks
    }

    /// The module a `<hooks>` target element names. FreePBX finds the target by its
    /// class, so real files spell the element as the class is spelt (firewall's
    /// `<Backup class="Backup">`): a name that is a rawname once lower-cased is read so,
    /// with a warning, and hooks into that module's hook points.
    fn hook_target(&mut self, target: &Element) -> String {
        let lower = target.name.to_ascii_lowercase();
        if lower != target.name && is_valid_rawname(&lower) {
            self.warn(
                target.position,
                format!(
                    "the hook target <{}> is read as module `{lower}`: rawnames are lower case",
                    target.name
                ),
            );
            return lower;
        }
        target.name.clone()
    }

    fn methods(&mut self, root: &Element, handlers: &mut Handlers) -> Vec<Method> {
        let mut methods = Vec::new();
        for element in root
            .children_named("methods")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/methods", element, &[]);
            // A `priority="50"` guessed for `pri` would leave the handler at the default.
            self.unused_attributes(element, &["pri"]);
            let handler = element.trimmed_text();
            let priority = self.integer(element, "pri", DEFAULT_PRIORITY);
            if handler.is_empty() {
                self.problem(
                    element.position,
                    format!("<{}> names no handler", element.name),
                );
                continue;
            }
            if !self.handler_taken(
                handlers,
                element.position,
                element.name.clone(),
                handler,
                priority,
            ) {
                continue;
            }
            if let Some(meant) = mistyped_hook_point(&element.name) {
                self.warn(
                    element.position,
                    format!(
                        "<{}> {meant}: as written, its handler runs only when something fires \
                         a hook point of that name",
                        element.name
                    ),
                );
            }
            methods.push(Method {
                hook: element.name.clone(),
                handler: handler.to_owned(),
                priority,
            });
        }
        methods
    }

    fn component(&mut self, root: &Element) -> String {
        let position = root
            .child("component")
            .map(|e| e.position)
            .unwrap_or_default();
        let Some(component) = self.text(root, "component") else {
            if root.child("component").is_some() {
                self.problem(
                    position,
                    format!(
                        "<component> is empty: name the component, or leave the element out \
                         for `{DEFAULT_COMPONENT}`"
                    ),
                );
            }
            return DEFAULT_COMPONENT.to_owned();
        };
        let problem = if component.contains('\\') {
            Some("separates its path with `\\`: use `/`")
        } else if component.starts_with('/')
            || !component
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
        {
            Some("is not a relative path inside the package")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.problem(position, format!("<component> `{component}` {problem}"));
        }
        component
    }

    fn updateservers(&mut self, root: &Element) -> Vec<UpdateServer> {
        let mut servers = Vec::new();
        for element in root
            .children_named("updateservers")
            .flat_map(|u| u.children.iter())
        {
            if element.name != "server" {
                self.keep_unknown("module/updateservers", element);
                continue;
            }
            self.check_children("module/updateservers", element, &[]);
            let url = element.trimmed_text();
            let priority = self.integer(element, "priority", 1);
            if url.is_empty() {
                self.problem(element.position, "<server> has no URL");
                continue;
            }
            self.warn_unless_https(element.position, "<server>", url);
            servers.push(UpdateServer {
                kind: element.attribute("type").unwrap_or("extension").to_owned(),
                priority,
                name: element.attribute("name").map(str::to_owned),
                url: url.to_owned(),
                publickey: element.attribute("publickey").map(str::to_owned),
            });
        }
        servers
    }

    /// Warns of each attribute of `element` that is not one of `known` (in any case, as
    /// FreePBX reads them).
    fn unused_attributes(&mut self, element: &Element, known: &[&str]) {
        for (attribute, _) in &element.attributes {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(attribute)) {
                self.warn(
                    element.position,
                    format!(
                        "<{}>: unknown attribute `{attribute}` is not used (known: {})",
                        element.name,
                        known.join(", ")
                    ),
                );
            }
        }
    }

    fn capabilities(&mut self, root: &Element) -> Vec<Capability> {
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

/// The longest message about a document kept whole.
const MAX_MESSAGE: usize = 320;

/// `message` whole when short, else its start and its end with what lies between left out:
/// messages quote the document, and a hostile one's kilobytes must not fill the terminal,
/// while the start (what is wrong) and the end (why) stay readable.
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let head = message.floor_char_boundary(MAX_MESSAGE * 2 / 3);
    let tail = message.ceil_char_boundary(message.len() - MAX_MESSAGE / 4);
    format!(
        "{}… ({} bytes left out) …{}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

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

/// Lower-cases the element names of a module.xml, as FreePBX's module reader (its
/// `xml2Array`) does before it reads any: `<Depends>`, `<CanUninstall>` and `<MODULE>`
/// mean what they say there. Not the names that are names rather than structure: a
/// `<methods>` entry's (a hook point, `userman.delUser`, whose case modhost keeps) and a
/// `<hooks>` target's (read as a rawname, with a warning, by `hook_target`); nor inside
/// `<database>`, which FreePBX's migration reads apart, names as written.
pub(crate) fn fold_names(element: &mut Element) {
    element.name.make_ascii_lowercase();
    let names = matches!(element.name.as_str(), "methods" | "hooks");
    for child in &mut element.children {
        if child.name.eq_ignore_ascii_case("database") {
            continue;
        }
        if names {
            child.children.iter_mut().for_each(fold_names);
        } else {
            fold_names(child);
        }
    }
}

/// Letters, digits and `_`, not starting with a digit: safe to quote as an SQL name.
fn is_identifier(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Names already declared in one scope, lower-cased, with the name as first written and
/// where.
type Declared = BTreeMap<String, (String, Position)>;

/// `element` with its attribute names in lower case, as FreePBX reads a `<database>`'s
/// (its migration lower-cases them first): real files write `primaryKey="true"`,
/// `autoIncrement="true"` and `notNull="false"`, and mean them. Values keep their case.
fn lowercase_attributes(element: &Element) -> Element {
    Element {
        attributes: element
            .attributes
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
        ..element.clone()
    }
}

/// Pushes `item`, or, when it declares `name` `again`, puts it in the place of the
/// earlier one of that name: PHP's keyed arrays keep a key where it was first set.
fn replace_or_push<T>(items: &mut Vec<T>, item: T, again: bool, name: fn(&T) -> &String) {
    // Searched only for a name declared again: thousands of distinct ones stay linear.
    let earlier = again
        .then(|| {
            items
                .iter()
                .position(|earlier| name(earlier) == name(&item))
        })
        .flatten();
    match earlier {
        Some(index) => items[index] = item,
        None => items.push(item),
    }
}

/// Whether `a` and `b` say the same: names, attributes, trimmed text and children alike.
fn same_content(a: &Element, b: &Element) -> bool {
    a.name == b.name
        && a.attributes == b.attributes
        && a.trimmed_text() == b.trimmed_text()
        && a.children.len() == b.children.len()
        && a.children
            .iter()
            .zip(&b.children)
            .all(|(x, y)| same_content(x, y))
}

/// `line:column`, for messages that point at a second place.
fn at(position: Position) -> String {
    format!("{}:{}", position.line, position.column)
}

/// How a message names `element`: "table `calls`" from its `name` as written, valid or
/// not, or "<table>" when it has none.
fn label(element: &Element, what: &str) -> String {
    match element.attribute("name").map(str::trim) {
        Some(name) if !name.is_empty() => format!("{what} `{name}`"),
        _ => format!("<{what}>"),
    }
}

/// The `name` attribute of `element` if it is a valid identifier; bad names are reported
/// by [`Parser::name_attribute`].
fn identifier_attribute(element: &Element) -> Option<&str> {
    element
        .attribute("name")
        .map(str::trim)
        .filter(|name| is_identifier(name))
}

/// What a `<methods>` child named `name` was likely meant as, when it looks like a slip:
/// `get_config` mistyped (which `reload` runs, and nothing else would) — another case or
/// separator, a letter left out or added, letters swapped — or module.xml's own elements
/// put inside `<methods>`. A name one letter off another way (`set_config`) may be an
/// application's own hook point, and is not warned about.
fn mistyped_hook_point(name: &str) -> Option<String> {
    const GET_CONFIG: &str = "get_config";
    if ["hooks", "methods", "depends", "database"].contains(&name) {
        return Some(format!(
            "is read as a hook point named `{name}`: <{name}> belongs beside <methods>, not \
             inside it"
        ));
    }
    let letters = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|c| !matches!(c, '_' | '-' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let (typed, meant) = (letters(name), letters(GET_CONFIG));
    let sorted = |mut chars: Vec<char>| {
        chars.sort_unstable();
        chars
    };
    let one_off = |long: &[char], short: &[char]| {
        long.len() == short.len() + 1
            && (0..long.len()).any(|i| long[..i] == short[..i] && long[i + 1..] == short[i..])
    };
    let slip = typed == meant
        || sorted(typed.clone()) == sorted(meant.clone())
        || one_off(&typed, &meant)
        || one_off(&meant, &typed);
    (name != GET_CONFIG && slip)
        .then(|| format!("is not `{GET_CONFIG}`, the hook point `reload` runs"))
}
