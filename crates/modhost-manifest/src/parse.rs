//! Builds the [`Manifest`] from the element tree, collecting every problem on the way.

use std::collections::BTreeMap;

use crate::model::*;
use crate::xml::{Element, Position};
use crate::{
    CATEGORIES, DEFAULT_COMPONENT, DEFAULT_OOBE_PRIORITY, DEFAULT_PRIORITY, FIELD_ATTRIBUTES,
    FIELD_TYPES, KEY_TYPES, MAX_RAWNAME, Problem, REPOS, Requirement, Version, is_valid_rawname,
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
    ("description", Once, Text),
    ("changelog", Once, Text),
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
            message: message.into(),
        });
    }

    fn warn(&mut self, position: Position, message: impl Into<String>) {
        self.warnings.push(Problem {
            position,
            message: message.into(),
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
                self.problem(
                    element.position,
                    format!(
                        "{attribute} `{text}` of <{}> is not an integer",
                        element.name
                    ),
                );
                default
            }),
        }
    }

    /// A boolean attribute (`true/false`, `yes/no`, `1/0`), or `default` when absent.
    fn boolean(&mut self, element: &Element, attribute: &str, default: bool) -> bool {
        match element
            .attribute(attribute)
            .map(|t| t.trim().to_ascii_lowercase())
        {
            None => default,
            Some(text) => match text.as_str() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
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
        Requirement::parse(element.trimmed_text())
            .map_err(|e| self.problem(element.position, format!("<{}>: {e}", element.name)))
            .ok()
    }

    pub(crate) fn manifest(&mut self, root: &Element) -> Option<Manifest> {
        if root.name != "module" {
            self.problem(
                root.position,
                format!("the root element is <{}>, expected <module>", root.name),
            );
            return None;
        }
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
                let position = root
                    .children_named(name)
                    .nth(1)
                    .map_or(root.position, |e| e.position);
                self.problem(
                    position,
                    format!("<{name}> appears {count} times; it may appear once"),
                );
            }
        }
        let rawname = self.required(root, "rawname");
        if let (Some(name), Some(element)) = (&rawname, root.child("rawname"))
            && !is_valid_rawname(name)
        {
            self.problem(
                element.position,
                format!("rawname `{name}` must be 1 to {MAX_RAWNAME} characters of a-z, 0-9 and _"),
            );
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
        let md5sum = self.checksum(root, &["md5sum"], 32);
        let sha1 = self.checksum(root, &["sha1", "sha1sum"], 40);
        let depends = self.depends(root);
        let requirements = self.requirements(root);
        let supported = self.supported(root);
        let menuitems = self.menuitems(root);
        let popovers = self.popovers(root);
        let oobe = root.child("oobe").and_then(|e| self.oobe(e));
        let commercial = root.child("commercial").map(|e| self.commercial(e));
        let fileinclude = self.fileinclude(root);
        let console = self.console(root);
        let database = self.database(root);
        let hooks = self.hooks(root);
        let methods = self.methods(root);
        let updateurl = self.text(root, "updateurl");
        let updateurl_publickey = root
            .child("updateurl")
            .and_then(|u| u.attribute("publickey"))
            .map(str::to_owned);
        let component = self.component(root);
        let updateservers = self.updateservers(root);
        let capabilities = self.capabilities(root);
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
            description: self.text(root, "description"),
            changelog: self.text(root, "changelog"),
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
            unknown: std::mem::take(&mut self.unknown),
            warnings: std::mem::take(&mut self.warnings),
        })
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

    fn checksum(&mut self, root: &Element, names: &[&str], hex_len: usize) -> Option<String> {
        let element = names.iter().find_map(|name| root.child(name))?;
        let text = element.trimmed_text().to_ascii_lowercase();
        if text.is_empty() {
            return None;
        }
        if text.len() != hex_len || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.problem(
                element.position,
                format!(
                    "<{}> `{text}` is not {hex_len} hexadecimal digits",
                    element.name
                ),
            );
        }
        Some(text)
    }

    fn named(&mut self, element: &Element, rawname_grammar: bool) -> Option<NamedRequirement> {
        parse_named(element.trimmed_text(), rawname_grammar)
            .map_err(|message| self.problem(element.position, message))
            .ok()
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
                    let alternatives: Vec<_> = element
                        .trimmed_text()
                        .split("||")
                        .map(|part| parse_php_component(part.trim()))
                        .collect();
                    match alternatives.into_iter().collect::<Result<Vec<_>, _>>() {
                        Ok(all) => depends.php.components.push(all),
                        Err(message) => self.problem(element.position, message),
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

    fn supported(&mut self, root: &Element) -> Option<Supported> {
        let element = root.child("supported")?;
        self.check_children("module", element, &["version"]);
        let Some(version) = element.child("version") else {
            self.problem(element.position, "<supported> has no <version>");
            return None;
        };
        Version::parse(version.trimmed_text())
            .map(|version| Supported { version })
            .map_err(|e| self.problem(version.position, format!("<supported>: {e}")))
            .ok()
    }

    fn menuitems(&mut self, root: &Element) -> Vec<MenuItem> {
        let mut items = Vec::new();
        for element in root
            .children_named("menuitems")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/menuitems", element, &[]);
            let sort =
                element
                    .attribute("sort")
                    .and_then(|text| match text.trim().parse::<i32>() {
                        Ok(sort) if (-10..=10).contains(&sort) => Some(sort),
                        _ => {
                            self.problem(
                            element.position,
                            format!(
                                "sort `{text}` of menu item <{}> is not an integer from -10 to 10",
                                element.name
                            ),
                        );
                            None
                        }
                    });
            items.push(MenuItem {
                key: element.name.clone(),
                label: element.trimmed_text().to_owned(),
                category: element.attribute("category").map(str::to_owned),
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
            .map(str::to_owned)
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
        for element in root
            .children_named("database")
            .flat_map(|d| d.children.iter())
        {
            if element.name != "table" {
                self.keep_unknown("module/database", element);
                continue;
            }
            let Some(name) = self.name_attribute(element) else {
                continue;
            };
            let mut table = Table {
                name,
                fields: Vec::new(),
                keys: Vec::new(),
            };
            for child in &element.children {
                match child.name.as_str() {
                    "field" => {
                        self.check_children("module/database/table", child, &[]);
                        table.fields.extend(self.field(child));
                    }
                    "key" => {
                        self.check_children("module/database/table", child, &["column"]);
                        table.keys.extend(self.key(child));
                    }
                    _ => self.keep_unknown("module/database/table", child),
                }
            }
            if table.fields.is_empty() {
                self.problem(
                    element.position,
                    format!("table `{}` has no fields", table.name),
                );
            }
            tables.push(table);
        }
        Database { tables }
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

    fn field(&mut self, element: &Element) -> Option<Field> {
        let name = self.name_attribute(element)?;
        let kind = element
            .attribute("type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !FIELD_TYPES.contains(&kind.as_str()) {
            self.problem(
                element.position,
                format!(
                    "field `{name}` has unknown type `{kind}` (expected one of {})",
                    FIELD_TYPES.join(", ")
                ),
            );
            return None;
        }
        for (attribute, _) in &element.attributes {
            if !FIELD_ATTRIBUTES.contains(&attribute.as_str()) {
                self.warn(
                    element.position,
                    format!("field `{name}`: unknown attribute `{attribute}` is not used"),
                );
            }
        }
        Some(Field {
            length: self.unsigned(element, "length"),
            default: element.attribute("default").map(str::to_owned),
            notnull: self.boolean(element, "notnull", true),
            primarykey: self.boolean(element, "primarykey", false),
            autoincrement: self.boolean(element, "autoincrement", false),
            unique: self.boolean(element, "unique", false),
            unsigned: self.boolean(element, "unsigned", false),
            fixed: self.boolean(element, "fixed", false),
            precision: self.unsigned(element, "precision"),
            scale: self.unsigned(element, "scale"),
            comment: element.attribute("comment").map(str::to_owned),
            name,
            kind,
        })
    }

    fn key(&mut self, element: &Element) -> Option<Key> {
        let name = self.name_attribute(element)?;
        let kind = element
            .attribute("type")
            .unwrap_or("index")
            .trim()
            .to_ascii_lowercase();
        if !KEY_TYPES.contains(&kind.as_str()) {
            self.problem(
                element.position,
                format!(
                    "key `{name}` has unknown type `{kind}` (expected one of {})",
                    KEY_TYPES.join(", ")
                ),
            );
            return None;
        }
        let columns: Vec<String> = element
            .children_named("column")
            .filter_map(|c| c.attribute("name").map(|n| n.trim().to_owned()))
            .collect();
        if columns.is_empty() {
            self.problem(
                element.position,
                format!("key `{name}` has no <column name>"),
            );
        }
        Some(Key {
            name,
            kind,
            columns,
            attributes: element
                .attributes
                .iter()
                .filter(|(k, _)| k != "name" && k != "type")
                .cloned()
                .collect(),
        })
    }

    fn hooks(&mut self, root: &Element) -> Vec<Hook> {
        let mut hooks = Vec::new();
        for target in root.children_named("hooks").flat_map(|h| h.children.iter()) {
            for method in &target.children {
                let parent = format!("module/hooks/{}", target.name);
                if method.name != "method" {
                    self.keep_unknown(&parent, method);
                    continue;
                }
                self.check_children(&parent, method, &[]);
                let handler = method.trimmed_text();
                let Some(hook) = method.attribute("callingMethod") else {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> has no callingMethod", target.name),
                    );
                    continue;
                };
                if handler.is_empty() {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> names no handler", target.name),
                    );
                    continue;
                }
                hooks.push(Hook {
                    target: target.name.clone(),
                    hook: hook.to_owned(),
                    handler: handler.to_owned(),
                    priority: self.integer(method, "priority", DEFAULT_PRIORITY),
                    target_class: target.attribute("class").map(str::to_owned),
                    target_namespace: target.attribute("namespace").map(str::to_owned),
                    class: method.attribute("class").map(str::to_owned),
                    namespace: method.attribute("namespace").map(str::to_owned),
                });
            }
        }
        hooks
    }

    fn methods(&mut self, root: &Element) -> Vec<Method> {
        let mut methods = Vec::new();
        for element in root
            .children_named("methods")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/methods", element, &[]);
            let handler = element.trimmed_text();
            if handler.is_empty() {
                self.problem(
                    element.position,
                    format!("<{}> names no handler", element.name),
                );
                continue;
            }
            methods.push(Method {
                hook: element.name.clone(),
                handler: handler.to_owned(),
                priority: self.integer(element, "pri", DEFAULT_PRIORITY),
            });
        }
        methods
    }

    fn component(&mut self, root: &Element) -> String {
        let Some(component) = self.text(root, "component") else {
            return DEFAULT_COMPONENT.to_owned();
        };
        let safe = !component.starts_with('/')
            && component
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !safe {
            let position = root
                .child("component")
                .map(|e| e.position)
                .unwrap_or_default();
            self.problem(
                position,
                format!("<component> `{component}` is not a relative path inside the package"),
            );
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
            if url.is_empty() {
                self.problem(element.position, "<server> has no URL");
                continue;
            }
            servers.push(UpdateServer {
                kind: element.attribute("type").unwrap_or("extension").to_owned(),
                priority: self.integer(element, "priority", 1),
                name: element.attribute("name").map(str::to_owned),
                url: url.to_owned(),
                publickey: element.attribute("publickey").map(str::to_owned),
            });
        }
        servers
    }

    fn capabilities(&mut self, root: &Element) -> Vec<Capability> {
        let mut capabilities = Vec::new();
        for element in root
            .children_named("capabilities")
            .flat_map(|c| c.children.iter())
        {
            if element.name != "directory" {
                self.problem(
                    element.position,
                    format!("unknown capability <{}>", element.name),
                );
                continue;
            }
            self.check_children("module/capabilities", element, &[]);
            let access = match element.attribute("access").unwrap_or("read-only") {
                "read-only" => Access::ReadOnly,
                "read-write" => Access::ReadWrite,
                other => {
                    self.problem(
                        element.position,
                        format!("access `{other}` is not read-only or read-write"),
                    );
                    continue;
                }
            };
            match element.attribute("path") {
                Some(path) if path.starts_with('/') && !path.split('/').any(|p| p == "..") => {
                    capabilities.push(Capability::Directory {
                        path: path.to_owned(),
                        access,
                    });
                }
                Some(path) => self.problem(
                    element.position,
                    format!("directory `{path}` is not an absolute path without `..`"),
                ),
                None => self.problem(element.position, "<directory> has no path"),
            }
        }
        capabilities
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

fn malformed(text: &str) -> String {
    format!("dependency '{text}' is not of the form 'name [op] version'")
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
