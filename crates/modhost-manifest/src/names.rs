//! What a rawname, a table and a column may be called.

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

/// The longest rawname accepted.
const MAX_RAWNAME: usize = 64;

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
