//! The `callback` example module: when the application says a voicemail was left
//! (`voicemail.left`, payload `{"mailbox": "101", "from": "2025550101"}`), it originates a
//! call from the mailbox's extension to the caller through the application's
//! `pbx:telephony` API, and reports the new channel and the call it serves.

use modhost_sdk::{Module, log};

/// Bindings to the application's `pbx:telephony` API (generated, so undocumented).
#[allow(missing_docs)]
mod telephony {
    wit_bindgen::generate!({
        path: "../../examples/wit",
        world: "telephony",
    });
}

use telephony::pbx::telephony::calls;

struct Callback;

impl Module for Callback {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "callback_voicemail_left" => {
                let left: serde_json::Value =
                    serde_json::from_str(payload).map_err(|e| format!("not JSON: {e}"))?;
                let mailbox = left["mailbox"].as_str().ok_or("no mailbox")?;
                let from = left["from"].as_str().ok_or("no caller")?;
                let channel = calls::originate(mailbox, from)?;
                let state = match calls::channel_state(&channel)? {
                    calls::State::Down => "down",
                    calls::State::Ringing => "ringing",
                    calls::State::Up => "up",
                };
                let serving = calls::current_channel().unwrap_or_else(|| "none".to_owned());
                log::info("calling back", &[("channel", &channel), ("to", from)]);
                Ok(serde_json::json!({
                    "channel": channel,
                    "state": state,
                    "serving": serving,
                })
                .to_string())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Callback);
