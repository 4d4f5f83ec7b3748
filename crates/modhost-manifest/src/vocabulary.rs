//! The words module.xml's elements and attributes may hold: categories, repos, field and
//! key types, and foreign-key actions.

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
