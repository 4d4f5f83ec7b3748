//! The typed model of module.xml: one type per element of FreePBX's format (seed 001,
//! DESIGN.md §2) plus modhost's additions (`component`, `updateservers`, `capabilities`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::{Problem, Requirement, Version};

/// A module's description: everything module.xml says.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The unique id: lower-case letters, digits, `_` and `-` ([`crate::is_valid_rawname`]).
    pub rawname: String,
    /// The repository the module comes from: `standard`, `extended`, `unsupported`,
    /// `commercial`, or `local` when absent.
    pub repo: String,
    /// The display name.
    pub name: String,
    /// The module's version.
    pub version: Version,
    /// The deprecated FreePBX 2.9 placement (`setup`/`tool`), kept as written.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The module-admin category; `Other` when absent or unknown.
    pub category: String,
    /// Who publishes the module.
    pub publisher: Option<String>,
    /// Who published it before (`<oldpublisher>`, written when a module changed hands),
    /// kept as written.
    pub oldpublisher: Option<String>,
    /// A description for administrators.
    pub description: Option<String>,
    /// What changed, release by release.
    pub changelog: Option<String>,
    /// What its publisher wants an administrator to read before installing it
    /// (`<attention>`, which FreePBX's module admin shows in a warning box).
    pub attention: Option<String>,
    /// A link to more information.
    pub info: Option<String>,
    /// The licence's name.
    pub license: Option<String>,
    /// A link to the licence's text.
    pub licenselink: Option<String>,
    /// Where a repository serves the package.
    pub location: Option<String>,
    /// The package's MD5, hex (legacy repository metadata).
    pub md5sum: Option<String>,
    /// The package's SHA-1, hex, from `<sha1>` or `<sha1sum>` (legacy repository metadata).
    pub sha1: Option<String>,
    /// Entries the module adds to the application's menu.
    pub menuitems: Vec<MenuItem>,
    /// What the module needs to work.
    pub depends: Depends,
    /// The FreePBX 2.x form of `depends`, kept apart because old files use both.
    pub requirements: Requirements,
    /// The lowest host version the module supports.
    pub supported: Option<Supported>,
    /// Pages the module offers as pop-over dialogs.
    pub popovers: Vec<Popover>,
    /// The module's out-of-box-experience step.
    pub oobe: Option<Oobe>,
    /// How the module is sold, for commercial modules.
    pub commercial: Option<Commercial>,
    /// Files the host includes around installation.
    pub fileinclude: Vec<FileInclude>,
    /// Console commands the module provides.
    pub console: Vec<ConsoleCommand>,
    /// Tables the module owns, created before `install()`.
    pub database: Database,
    /// The module's handlers on other modules' hook points (`<hooks>`).
    pub hooks: Vec<Hook>,
    /// The module's handlers for prioritised hook points (`<methods>`), in file order.
    pub methods: Vec<Method>,
    /// An HTTPS URL describing the newest release (FreePBX third-party hosting).
    pub updateurl: Option<String>,
    /// The publisher's minisign public key for `updateurl` (its `publickey` attribute, a
    /// modhost addition): the JSON must then be signed with it.
    pub updateurl_publickey: Option<String>,
    /// The component's path inside the package.
    pub component: String,
    /// Joomla-style update servers.
    pub updateservers: Vec<UpdateServer>,
    /// What the module asks for beyond its sandbox; granted only by an administrator.
    pub capabilities: Vec<Capability>,
    /// Whether it may be uninstalled (`<canuninstall>no</canuninstall>`, as FreePBX's
    /// framework and core say): refused unless forced.
    pub canuninstall: bool,
    /// Whether it may be disabled (`<candisable>no</candisable>`): refused unless forced.
    pub candisable: bool,
    /// Where to read more about it (`<more-info>`, a URL).
    #[serde(rename = "more-info")]
    pub more_info: Option<String>,
    /// FreePBX's module type (`<modtype>`), kept as written.
    pub modtype: Option<String>,
    /// The issues a release fixes (`<bugfix id="…">`, which may repeat), as written.
    pub bugfix: Vec<Bugfix>,
    /// Elements modhost does not know, kept as written.
    pub unknown: Vec<Unknown>,
    /// Problems that do not stop the module from loading.
    pub warnings: Vec<Problem>,
}

/// The `<depends>` constraints. All must hold, except `engines`, of which one must.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Depends {
    /// Constraints on the host application's version (FreePBX: framework).
    pub version: Vec<Requirement>,
    /// Other modules that must be installed and enabled.
    pub modules: Vec<ModuleDependency>,
    /// PBX engines the module runs on; any one suffices.
    pub engines: Vec<EngineDependency>,
    /// Files that must exist.
    pub files: Vec<String>,
    /// PHP facts the embedding application may declare.
    pub php: PhpDepends,
}

impl Depends {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self == &Depends::default()
    }
}

/// `<phpversion>` and `<phpcomponent>` constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PhpDepends {
    /// Constraints on the PHP version.
    pub version: Vec<Requirement>,
    /// Components that must be present; each entry lists alternatives (`a||b`).
    pub components: Vec<Vec<NamedRequirement>>,
}

/// One issue a release fixes: `<bugfix id="FD7-23">https://issues.freepbx.org/browse/FD7-23</bugfix>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bugfix {
    /// The id, by which FreePBX looks it up (`id`).
    pub id: Option<String>,
    /// The element's text: a link to the issue, or a sentence.
    pub text: String,
}

/// A named thing with an optional version constraint: `name [op version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRequirement {
    /// The name.
    pub name: String,
    /// The version it must have, if any.
    pub requirement: Option<Requirement>,
}

/// Always `{"name", "op", "version"}`, with `null`s for an unconstrained name, so that
/// readers of `manifest --json` meet one shape.
impl Serialize for NamedRequirement {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("NamedRequirement", 3)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("op", &self.requirement.as_ref().map(|r| r.op))?;
        out.serialize_field("version", &self.requirement.as_ref().map(|r| &r.version))?;
        out.end()
    }
}

impl fmt::Display for NamedRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.requirement {
            Some(requirement) => write!(f, "{} {requirement}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One `<depends><module>` entry: `rawname [op version]`.
pub type ModuleDependency = NamedRequirement;

/// One `<depends><engine>` entry: `engine [op version]`, e.g. `asterisk ge 18`.
pub type EngineDependency = NamedRequirement;

/// The legacy `<requirements>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requirements {
    /// Files that must exist.
    pub files: Vec<String>,
    /// Modules that must be installed.
    pub modules: Vec<ModuleDependency>,
}

/// `<supported>`: the lowest host version the module supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Supported {
    /// The version.
    pub version: Version,
}

/// One `<methods>` entry: the module's `handler` takes part in hook point `hook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Method {
    /// The hook point, e.g. `get_config`.
    pub hook: String,
    /// The handler name passed to the module's hook entry point.
    pub handler: String,
    /// Lower runs earlier; [`crate::DEFAULT_PRIORITY`] when absent.
    pub priority: i32,
}

/// One `<hooks>` entry: `handler` runs when module `target` fires hook point `hook`
/// (FreePBX's `callingMethod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// The module whose hook point this is.
    pub target: String,
    /// The hook point (`callingMethod`).
    pub hook: String,
    /// The handler name passed to the module's hook entry point.
    pub handler: String,
    /// Lower runs earlier; [`crate::DEFAULT_PRIORITY`] when absent.
    pub priority: i32,
    /// The target's class (`<TARGET class>`).
    pub target_class: Option<String>,
    /// The target's namespace (`<TARGET namespace>`).
    pub target_namespace: Option<String>,
    /// The handler's class (`<method class>`).
    pub class: Option<String>,
    /// The handler's namespace (`<method namespace>`).
    pub namespace: Option<String>,
}

impl Hook {
    /// The hook point this entry runs on, keyed as FreePBX keys a hook: by the calling
    /// class and method.
    ///
    /// - A target naming a module's class in `FreePBX\modules` is that module's
    ///   (`<userman class="Certman" namespace="FreePBX\modules">` hooks `certman.…`,
    ///   where FreePBX looks the class up, whatever the element says), and one in
    ///   `FreePBX\modules\Dashboard` a class of module `dashboard`.
    /// - Otherwise `TARGET.callingMethod`, or `TARGET.Class.callingMethod` when the class
    ///   is not the target module's own: `<framework class="Start">` and
    ///   `<framework class="Stop">` hooking `preAsteriskHooks` are two hook points.
    pub fn point(&self) -> String {
        let class = self
            .target_class
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let namespace: Vec<&str> = self
            .target_namespace
            .as_deref()
            .map(|n| n.trim().trim_matches('\\'))
            .filter(|n| !n.is_empty())
            .map(|n| n.split('\\').collect())
            .unwrap_or_default();
        let modules = namespace.len() >= 2
            && namespace[0].eq_ignore_ascii_case("FreePBX")
            && namespace[1].eq_ignore_ascii_case("modules");
        let target = match (modules, namespace.get(2), class) {
            (true, Some(module), _) if namespace.len() == 3 => module.to_ascii_lowercase(),
            (true, None, Some(class)) => class.to_ascii_lowercase(),
            _ => self.target.clone(),
        };
        match class {
            Some(class) if !class.eq_ignore_ascii_case(&target) => {
                format!("{target}.{class}.{}", self.hook)
            }
            _ => format!("{target}.{}", self.hook),
        }
    }
}

/// `<database>`: the tables the module owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Database {
    /// The tables, in file order.
    pub tables: Vec<Table>,
}

/// One `<table>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Its columns.
    pub fields: Vec<Field>,
    /// Its indexes and constraints.
    pub keys: Vec<Key>,
}

/// One `<field>` (a column), with every attribute FreePBX's schema format gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The column's name.
    pub name: String,
    /// Its type, one of [`crate::FIELD_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Maximum length, for strings and binaries.
    pub length: Option<u32>,
    /// Default value.
    pub default: Option<String>,
    /// Whether NULL is refused; FreePBX's default is `true`.
    pub notnull: bool,
    /// Part of the primary key.
    pub primarykey: bool,
    /// Filled from a sequence.
    pub autoincrement: bool,
    /// Values must be unique.
    pub unique: bool,
    /// Unsigned integer.
    pub unsigned: bool,
    /// Fixed-length string.
    pub fixed: bool,
    /// Total digits, for decimals.
    pub precision: Option<u32>,
    /// Digits after the point, for decimals.
    pub scale: Option<u32>,
    /// A comment stored with the column.
    pub comment: Option<String>,
}

/// One `<key>`: an index or constraint over columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    /// The key's name.
    pub name: String,
    /// `index`, `unique` or `foreign`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The columns, in order.
    pub columns: Vec<String>,
    /// Other attributes (for foreign keys: the referenced table and columns, actions).
    pub attributes: BTreeMap<String, String>,
}

/// One `<menuitems>` entry: `<KEY attrs…>Label</KEY>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MenuItem {
    /// The item's key (the element's name), also its page name.
    pub key: String,
    /// The label shown in the menu.
    pub label: String,
    /// The menu category: the item's own `category`, else the module's, as FreePBX's
    /// menu files it.
    pub category: Option<String>,
    /// Position among its siblings, −10 to 10.
    pub sort: Option<i32>,
    /// Every attribute as written (`type`, `href`, `target`, `access`, `hidden`,
    /// `requires_auth`, `display`, `needsenginedb`…).
    pub attributes: BTreeMap<String, String>,
}

/// One `<popovers>` entry: a page and the request parameters that open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Popover {
    /// The page (the element's name).
    pub name: String,
    /// Its parameters, child name → text.
    pub params: BTreeMap<String, String>,
}

/// `<oobe>`: the module's out-of-box-experience step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Oobe {
    /// The method to call.
    pub method: String,
    /// Lower runs earlier; 100 when absent.
    pub priority: i32,
}

/// `<commercial>`: how a commercial module is obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commercial {
    /// `free`, `paid` or `upgradeable`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A protocol-relative link (`//…`) to the store page.
    pub link: Option<String>,
}

/// One `<fileinclude>` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInclude {
    /// When it applies (the element's name, e.g. `install`).
    pub stage: String,
    /// The file.
    pub path: String,
}

/// One `<console><command>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleCommand {
    /// The command's name.
    pub name: String,
    /// Other names for it.
    pub aliases: Vec<String>,
    /// The class implementing it, if given.
    pub class: Option<String>,
}

/// One `<updateservers><server>`: a Joomla-style update server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateServer {
    /// The server's format, e.g. `extension`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lower is asked first; 1 when absent.
    pub priority: i32,
    /// A display name.
    pub name: Option<String>,
    /// The server's URL.
    pub url: String,
    /// The publisher's minisign public key (`publickey`, a modhost addition): the
    /// server's XML must then be signed with it.
    pub publickey: Option<String>,
}

/// One `<capabilities>` entry: something beyond the sandbox the module asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Capability {
    /// `<directory path access>`: a host directory mounted into the sandbox.
    Directory {
        /// The host path.
        path: String,
        /// `read-only` or `read-write`.
        access: Access,
    },
    /// `<import package>`: a WIT package the embedding application provides (say
    /// `pbx:telephony`), which the module's component imports.
    Import {
        /// `namespace:package`.
        package: String,
    },
}

impl Capability {
    /// What an administrator's grant of it is recorded under: the directory's path, or
    /// the package's name (which, having no leading `/`, is never a path).
    pub fn grant_key(&self) -> &str {
        match self {
            Capability::Directory { path, .. } => path,
            Capability::Import { package } => package,
        }
    }

    /// Whether it asks only to read.
    pub fn read_only(&self) -> bool {
        matches!(
            self,
            Capability::Directory {
                access: Access::ReadOnly,
                ..
            }
        )
    }

    /// What it asks for, in words: `read-write access to `/var/spool``, or
    /// `the application's `pbx:telephony``.
    pub fn describe(&self) -> String {
        match self {
            Capability::Directory { path, access } => format!(
                "{} access to `{path}`",
                match access {
                    Access::ReadOnly => "read-only",
                    Access::ReadWrite => "read-write",
                }
            ),
            Capability::Import { package } => format!("the application's `{package}`"),
        }
    }
}

/// How a granted directory may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// An element modhost does not know, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    /// Where it stood: its ancestors' names, such as `module/depends`.
    pub parent: String,
    /// Its name.
    pub name: String,
    /// Its attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Its own text, trimmed.
    pub text: String,
    /// Its child elements.
    pub children: Vec<Unknown>,
}
