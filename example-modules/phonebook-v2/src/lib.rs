//! The `phonebook` example module, version 2: adds an `e164` column, which `upgrade()`
//! fills from the 1.x numbers, and answers lookups in either form.

use modhost_sdk::{Module, db, kv, log};

struct Phonebook;

impl Module for Phonebook {
    fn install() -> Result<(), String> {
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
            "phonebook_get_config" => {
                let rows = db::query(
                    "SELECT count(*) FROM phonebook_entries WHERE e164 != ''",
                    &[],
                )?;
                let count = rows
                    .rows
                    .first()
                    .and_then(|row| row.first())
                    .and_then(db::as_integer);
                Ok(format!(
                    "{payload}; phonebook: {} E.164 entries\n",
                    count.unwrap_or(0)
                ))
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Phonebook);
