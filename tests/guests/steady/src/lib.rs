//! Test guest: every handler writes its key-value store and its table, so that a test can
//! tell whether another module's misbehaviour took these writes with it.

use modhost_sdk::{Module, db, dispatch, kv};

struct Steady;

impl Module for Steady {
    fn handle(handler: &str, _hook: &str, payload: &str) -> Result<String, String> {
        kv::set(handler, payload)?;
        db::execute(
            "INSERT INTO steady_notes (note) VALUES (?)",
            &[db::text(handler)],
        )?;
        match handler {
            // Writes, then fires `race_inner`, failing as the fire does.
            "relay" => {
                dispatch::fire("race_inner", payload).map(|o| format!("relayed to {}", o.len()))
            }
            // The same, but goes on as if the fire had gone well.
            "relay_quiet" => {
                let _ = dispatch::fire("race_inner", payload);
                Ok("relayed".to_owned())
            }
            _ => Ok(format!("{handler} kept")),
        }
    }
}

modhost_sdk::export_module!(Steady);
