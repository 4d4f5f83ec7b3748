//! The `phonebook` example module, version 1: entries in its own table, filled by
//! `install()` and read by its `lookup` hook handler.

mod handlers;

use modhost_sdk::{Module, db, log};

struct Phonebook;

const ENTRIES: &[(&str, &str)] = &[
    ("Alice Example", "2025550100"),
    ("Bob Example", "2025550101"),
];

impl Module for Phonebook {
    fn install() -> Result<(), String> {
        for (name, number) in ENTRIES {
            db::execute(
                "INSERT INTO phonebook_entries (name, number) VALUES (?1, ?2)",
                &[db::text(*name), db::text(*number)],
            )?;
        }
        log::info(
            "phonebook installed",
            &[("entries", &ENTRIES.len().to_string())],
        );
        Ok(())
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "phonebook_lookup" => {
                Ok(handlers::name_of(payload)?.unwrap_or_else(|| "unknown".into()))
            }
            "phonebook_get_config" => handlers::dialplan(payload),
            "phonebook_route" => handlers::route(payload),
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Phonebook);
