//! The `phonebook` example module, version 1: entries in its own table, filled by
//! `install()` and read by its `lookup` hook handler.

use modhost_sdk::db;
use modhost_sdk::{Module, log};

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
                let rows = db::query(
                    "SELECT name FROM phonebook_entries WHERE number = ?1",
                    &[db::text(payload)],
                )?;
                let name = rows
                    .rows
                    .first()
                    .and_then(|row| row.first())
                    .and_then(db::as_text);
                Ok(name.unwrap_or("unknown").to_owned())
            }
            "phonebook_get_config" => {
                // Name known callers before anything else in the dialplan runs.
                let rows = db::query(
                    "SELECT number, name FROM phonebook_entries ORDER BY number",
                    &[],
                )?;
                let mut conf = format!("{payload}[phonebook-lookup]\n");
                for row in &rows.rows {
                    let field = |i: usize| row.get(i).and_then(db::as_text).unwrap_or("");
                    conf.push_str(&format!(
                        "exten => {},1,Set(CALLERID(name)={})\n",
                        field(0),
                        field(1)
                    ));
                }
                Ok(conf)
            }
            "phonebook_route" => {
                // Name the caller for the rest of the pipeline.
                let mut call: serde_json::Value =
                    serde_json::from_str(payload).map_err(|e| e.to_string())?;
                let from = call["from"].as_str().unwrap_or_default().to_owned();
                let rows = db::query(
                    "SELECT name FROM phonebook_entries WHERE number = ?1",
                    &[db::text(from)],
                )?;
                if let Some(name) = rows
                    .rows
                    .first()
                    .and_then(|row| row.first())
                    .and_then(db::as_text)
                {
                    call["caller_name"] = name.into();
                }
                Ok(call.to_string())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Phonebook);
