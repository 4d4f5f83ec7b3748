//! The `voicemail` example module: one mailbox per extension, and its dialplan.

use modhost_sdk::{Module, kv, log};

struct Voicemail;

/// Mailboxes created on install, as `mailbox=owner`.
const DEFAULT_MAILBOXES: &[(&str, &str)] = &[("100", "Reception"), ("101", "Sales")];

impl Module for Voicemail {
    fn install() -> Result<(), String> {
        for (mailbox, owner) in DEFAULT_MAILBOXES {
            kv::set(&format!("mailbox/{mailbox}"), owner)?;
        }
        log::info(
            "voicemail installed",
            &[("mailboxes", &DEFAULT_MAILBOXES.len().to_string())],
        );
        Ok(())
    }

    fn uninstall() -> Result<(), String> {
        let count = kv::keys("mailbox/").len();
        log::info(
            "voicemail uninstalled",
            &[("mailboxes", &count.to_string())],
        );
        Ok(())
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "voicemail_get_config" => {
                let mut conf = String::from(payload);
                conf.push_str("[voicemail]\n");
                for key in kv::keys("mailbox/") {
                    let mailbox = key.trim_start_matches("mailbox/");
                    conf.push_str(&format!(
                        "exten => *{mailbox},1,VoiceMail({mailbox}@default)\n"
                    ));
                }
                Ok(conf)
            }
            "voicemail_route" => {
                // `*NNN` reaches mailbox NNN.
                let mut call: serde_json::Value =
                    serde_json::from_str(payload).map_err(|e| e.to_string())?;
                let to = call["to"].as_str().unwrap_or_default().to_owned();
                if let Some(mailbox) = to.strip_prefix('*')
                    && kv::get(&format!("mailbox/{mailbox}")).is_some()
                {
                    call["action"] = format!("VoiceMail({mailbox}@default)").into();
                }
                Ok(call.to_string())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Voicemail);
