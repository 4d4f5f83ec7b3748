//! Builds the [`Manifest`] from the element tree, collecting every problem on the way.

mod capabilities;
mod database;
mod elements;
mod handlers;
mod interface;
mod metadata;
mod requirements;

use crate::model::*;
use crate::xml::{Element, Position};
use crate::{Problem, Version, rawname_problem};

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

impl Parser {
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
        self.check_elements(root);
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
