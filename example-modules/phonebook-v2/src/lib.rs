//! The `phonebook` example module, version 2: adds an `e164` column, which `upgrade()`
//! fills from the 1.x numbers, and answers lookups in either form.

// The dialplan and call routing are the same as version 1's.
#[path = "../../phonebook/src/handlers.rs"]
mod handlers;

use modhost_sdk::{Module, db, kv, log};

struct Phonebook;

const ENTRIES: &[(&str, &str)] = &[
    ("Alice Example", "2025550100"),
    ("Bob Example", "2025550101"),
];

impl Module for Phonebook {
    fn install() -> Result<(), String> {
        for (name, number) in ENTRIES {
            db::execute(
                "INSERT INTO phonebook_entries (name, number, e164) VALUES (?1, ?2, '+1' || ?2)",
                &[db::text(*name), db::text(*number)],
            )?;
        }
        kv::set("schema", "2")
    }

    fn upgrade(from_version: &str) -> Result<(), String> {
        if from_version.starts_with("1.") {
            let migrated = db::execute(
                "UPDATE phonebook_entries SET e164 = '+1' || number WHERE e164 = ''",
                &[],
            )?;
            log::info(
                "phonebook migrated",
                &[("from", from_version), ("entries", &migrated.to_string())],
            );
        }
        kv::set("schema", "2")
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "phonebook_lookup" => {
                let rows = db::query(
                    "SELECT name, e164 FROM phonebook_entries WHERE number = ?1 OR e164 = ?1",
                    &[db::text(payload)],
                )?;
                let found = rows.rows.first().map(|row| {
                    let field = |i: usize| row.get(i).and_then(db::as_text).unwrap_or("");
                    format!("{} <{}>", field(0), field(1))
                });
                Ok(found.unwrap_or_else(|| "unknown".to_owned()))
            }
            "phonebook_get_config" => handlers::dialplan(payload),
            "phonebook_route" => handlers::route(payload),
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Phonebook);
