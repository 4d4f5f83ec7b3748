//! The modhost side of the peer benchmark: one hook handler, `echo`, that returns its
//! payload — the same work as the Extism plugin's `echo` export, so the two hosts are
//! measured on equal guests.

use modhost_sdk::Module;

struct Echo;

impl Module for Echo {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "echo" => Ok(payload.to_owned()),
            _ => Err(format!("no handler `{handler}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Echo);
