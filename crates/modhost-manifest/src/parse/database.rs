//! The tables a module owns: `<database>`, its `<table>`s, fields and keys.

use std::collections::{BTreeMap, HashSet};

use super::{
    MAX_FIELDS, MAX_INDEXES, MAX_TABLES, Parser, at, identifier_attribute, is_identifier, label,
    lowercase_attributes, replace_or_push,
};
use crate::model::*;
use crate::xml::{Element, Position};
use crate::{FIELD_ATTRIBUTES, FIELD_TYPES, FOREIGN_KEY_ACTIONS, KEY_ATTRIBUTES, KEY_TYPES};

/// Names already declared in one scope, lower-cased, with the name as first written and
/// where.
type Declared = BTreeMap<String, (String, Position)>;

impl Parser {
    pub(super) fn database(&mut self, root: &Element) -> Database {
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
    pub(super) fn declare(
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
    pub(super) fn table(&mut self, element: &Element) -> Table {
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
    pub(super) fn check_primary_keys(&mut self, element: &Element, label: &str, table: &Table) {
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
    pub(super) fn name_attribute(&mut self, element: &Element) -> Option<String> {
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
    pub(super) fn field(&mut self, element: &Element) -> Option<Field> {
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
    pub(super) fn check_default(
        &mut self,
        element: &Element,
        label: &str,
        kind: &str,
        default: &str,
    ) {
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
    pub(super) fn key(
        &mut self,
        element: &Element,
        fields: &HashSet<String>,
        table: &str,
    ) -> Option<Key> {
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
    pub(super) fn key_attributes(
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
}
