//! Test guest: every handler writes its key-value store and its table, so that a test can
//! tell whether another module's misbehaviour took these writes with it.

use modhost_sdk::{Module, db, kv};

struct Steady;

impl Module for Steady {
    fn handle(handler: &str, _hook: &str, payload: &str) -> Result<String, String> {
        kv::set(handler, payload)?;
        db::execute(
            "INSERT INTO steady_notes (note) VALUES (?)",
            &[db::text(handler)],
        )?;
        Ok(format!("{handler} kept"))
    }
}

modhost_sdk::export_module!(Steady);
