//! FreePBX-style module.xml: the typed model and its parser.
//!
//! [`Manifest::parse`] reads a module.xml into a [`Manifest`], reporting every problem it
//! finds at once, each with its line and column; [`Manifest::parse_bytes`] does the same
//! from the file's bytes, and says where they are not UTF-8, the only encoding accepted.
//!
//! Elements it does not know are kept (in [`Manifest::unknown`]) with a warning rather
//! than an error, so that real FreePBX files, which gain elements over time, load. The one
//! exception is `<capabilities>`: an unknown child there is an error, because it asks for
//! a permission modhost cannot show an administrator or grant safely, and running the
//! module without it would be running it without something it asked for. Failing closed
//! is the safe choice for permission requests.
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

mod model;
mod parse;
pub mod xml;

pub use model::*;
use xml::Position;

/// The default priority of a `<methods>` entry, as in FreePBX.
pub const DEFAULT_PRIORITY: i32 = 500;

/// The component's path inside the package when `<component>` is absent.
pub const DEFAULT_COMPONENT: &str = "module.wasm";

/// Table and column names modules may not declare: modhost's own tables and SQLite's.
pub const RESERVED_PREFIXES: &[&str] = &["modhost_", "sqlite_"];

/// Table names SQLite answers without their being made (its eponymous virtual tables,
/// besides the `pragma_…` ones): a module's table of such a name would stand in for
/// SQLite's in every other module's SQL and in modhost's own (its quotas read `dbstat`).
pub const SQLITE_TABLES: &[&str] = &[
    "dbstat",
    "json_each",
    "json_tree",
    "jsonb_each",
    "jsonb_tree",
    "generate_series",
    "carray",
];

/// Why a module may not name a table `name` (after "reserved: "), if it may not: a name of modhost's or
/// SQLite's own ([`RESERVED_PREFIXES`], [`SQLITE_TABLES`], and `pragma_…`, under which
/// SQLite answers its pragmas as tables). Read in any case, as SQLite reads names.
pub fn reserved_table(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Some(
            "names starting with `modhost_` or `sqlite_` are modhost's and SQLite's own".into(),
        );
    }
    if lower.starts_with("pragma_") {
        return Some("names starting with `pragma_` are SQLite's pragmas, read as tables".into());
    }
    SQLITE_TABLES.contains(&lower.as_str()).then(|| {
        format!(
            "`{lower}` is a table SQLite itself answers, which other modules and modhost \
             read"
        )
    })
}

/// Why a module may not name a column `name` (after "reserved: "), if it may not: modhost keeps
/// columns of its own beside a module's ([`RESERVED_PREFIXES`]). Read in any case, as SQLite reads names.
pub fn reserved_column(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    RESERVED_PREFIXES
        .iter()
        .any(|p| lower.starts_with(p))
        .then_some("names starting with `modhost_` or `sqlite_` are modhost's and SQLite's own")
}

/// The largest module.xml accepted, in bytes; a large core module.xml is about 30 KiB.
pub const MAX_SIZE: usize = 1024 * 1024;

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
    /// The file is not well-formed XML, uses a DTD or custom entities, or (read with
    /// [`Manifest::parse_bytes`]) is not UTF-8.
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

/// Whether `name` follows the rawname grammar `[a-z0-9_]+(-[a-z][a-z0-9_]*)*`: FreePBX's
/// own `asterisk-cli` holds a `-`. One never comes first, where a command line would read
/// the name as an option, and is always followed by a letter, so that a package's file
/// name, `RAWNAME-VERSION.tgz` with a version starting with a digit, tells them apart.
pub fn is_valid_rawname(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= MAX_RAWNAME
        && !name.starts_with('-')
        && bytes.iter().enumerate().all(|(at, &b)| match b {
            b'-' => bytes.get(at + 1).is_some_and(u8::is_ascii_lowercase),
            b => b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
        })
}

/// The longest name a hook point may have: module.xml's are a few words.
pub const MAX_HOOK_NAME: usize = 256;

/// How [`is_valid_rawname`]'s grammar is said in a refusal.
pub const RAWNAME_GRAMMAR: &str =
    "a-z, 0-9, _ and -, where a - is never first and is always followed by a letter";

/// Why `name` is no rawname, said as module.xml's refusal says it (quoting a long name in
/// part); `None` when it is one.
pub fn rawname_problem(name: &str) -> Option<String> {
    if is_valid_rawname(name) {
        return None;
    }
    let shown = match name.len() > MAX_RAWNAME {
        true => format!("{}…", &name[..name.floor_char_boundary(MAX_RAWNAME)]),
        false => name.to_owned(),
    };
    Some(format!("rawname `{shown}` must be {}", rawname_rule()))
}

/// What a rawname must be, said in a refusal: its length and [`RAWNAME_GRAMMAR`].
pub fn rawname_rule() -> String {
    format!("1 to {MAX_RAWNAME} characters of {RAWNAME_GRAMMAR}")
}

/// The module-admin categories: FreePBX's since 2.9, then those of its 2.x releases, which
/// about one real module.xml in ten of its history still names (`Basic` most), and
/// `Dashboard`, FreePBX's own dashboard module's from 13 on; any other is shown as `Other`.
pub const CATEGORIES: &[&str] = &[
    "Admin",
    "Applications",
    "Connectivity",
    "Reports",
    "Settings",
    "Other",
    "Basic",
    "Inbound Call Control",
    "Internal Options & Configuration",
    "Outbound Call Control",
    "System Administration",
    "Third Party Addon",
    "Provisioning",
    "Messaging",
    "Dashboard",
];

/// The repositories FreePBX knows; a module without `<repo>` is `local`.
pub const REPOS: &[&str] = &["standard", "extended", "unsupported", "commercial", "local"];

/// The attributes a `<field>` may carry; others are reported, not silently dropped.
pub const FIELD_ATTRIBUTES: &[&str] = &[
    "name",
    "type",
    "length",
    "default",
    "notnull",
    "primarykey",
    "autoincrement",
    "unique",
    "unsigned",
    "fixed",
    "precision",
    "scale",
    "comment",
];

/// Column types a `<database>` field may have (FreePBX's Doctrine types).
pub const FIELD_TYPES: &[&str] = &[
    "string",
    "text",
    "integer",
    "smallint",
    "bigint",
    "boolean",
    "decimal",
    "float",
    "datetime",
    "datetimetz",
    "date",
    "time",
    "blob",
    "binary",
    "guid",
    "json",
    "array",
    "simple_array",
    "object",
];

/// Kinds of `<key>`. FreePBX's `fulltext` (a MySQL index for word search) is kept as a
/// plain index: SQLite's tables have none.
pub const KEY_TYPES: &[&str] = &["index", "unique", "foreign", "primary", "fulltext"];

/// The attributes a `<key>` may carry, lower-cased as FreePBX reads them; others are
/// reported. A foreign key names its table (`foreigntable`) and, unless they are named as
/// its own, the columns there (`foreigncols`, FreePBX's spelling, or `foreigncolumns`).
pub const KEY_ATTRIBUTES: &[&str] = &[
    "name",
    "type",
    "foreigntable",
    "foreigncols",
    "foreigncolumns",
    "ondelete",
    "onupdate",
];

/// What a foreign key may do when the row it refers to is deleted or updated
/// (`onDelete`, `onUpdate`), as SQL says it, in any case.
pub const FOREIGN_KEY_ACTIONS: &[&str] = &[
    "CASCADE",
    "SET NULL",
    "SET DEFAULT",
    "RESTRICT",
    "NO ACTION",
];

/// The default priority of an `<oobe>` step.
pub const DEFAULT_OOBE_PRIORITY: i32 = 100;

impl Manifest {
    /// Parses a module.xml; `file` names it in error messages. Every problem is reported
    /// at once; warnings (unknown elements, deprecated ones) are kept in the manifest.
    pub fn parse(source: &str, file: &str) -> Result<Self, Error> {
        let mut root = xml::parse(source).map_err(|e| syntax(file, e))?;
        parse::fold_names(&mut root);
        let mut parser = parse::Parser::default();
        let manifest = parser.manifest(&root);
        parser
            .problems
            .sort_by_key(|p| (p.position.line, p.position.column));
        match manifest {
            Some(manifest) if parser.problems.is_empty() => Ok(manifest),
            _ => Err(Error::Invalid {
                file: file.to_owned(),
                problems: parser.problems,
            }),
        }
    }

    /// Parses a module.xml from its bytes, as read from a file: like [`Manifest::parse`],
    /// decoded as [`xml::decode`] reads it (UTF-8, UTF-16, or the encoding the file
    /// declares); bytes that cannot be read are an [`Error::Syntax`] at the line and
    /// column of the first, naming the encoding.
    pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Self, Error> {
        let source = xml::decode(bytes).map_err(|e| syntax(file, e))?;
        Self::parse(&source, file)
    }
}

fn syntax(file: &str, error: xml::SyntaxError) -> Error {
    Error::Syntax {
        file: file.to_owned(),
        problem: Problem {
            position: error.position,
            message: error.message,
        },
    }
}

#[cfg(test)]
mod tests;
