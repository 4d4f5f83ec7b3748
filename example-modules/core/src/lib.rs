//! The `core` example module: seeds the extension list and writes the base dialplan.

use modhost_sdk::{DATA_DIR, Module, kv, log};

struct Core;

/// Extensions created on install, as `number=name`.
const DEFAULT_EXTENSIONS: &[(&str, &str)] = &[("100", "Reception"), ("101", "Sales")];

impl Module for Core {
    fn install() -> Result<(), String> {
        for (number, name) in DEFAULT_EXTENSIONS {
            kv::set(&format!("extension/{number}"), name)?;
        }
        let notice = "This directory belongs to the core module.\n";
        std::fs::write(format!("{DATA_DIR}/README"), notice)
            .map_err(|e| format!("cannot write {DATA_DIR}/README: {e}"))?;
        log::info(
            "core installed",
            &[("extensions", &DEFAULT_EXTENSIONS.len().to_string())],
        );
        Ok(())
    }

    fn uninstall() -> Result<(), String> {
        let count = kv::keys("extension/").len();
        log::info("core uninstalled", &[("extensions", &count.to_string())]);
        Ok(())
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "core_do_get_config" => {
                let mut conf = String::from(payload);
                conf.push_str("[from-internal]\n");
                for key in kv::keys("extension/") {
                    let number = key.trim_start_matches("extension/");
                    conf.push_str(&format!("exten => {number},1,Dial(PJSIP/{number})\n"));
                }
                Ok(conf)
            }
            "core_route" => {
                // Dial the extension, unless a module earlier in the pipeline chose already.
                let mut call: serde_json::Value =
                    serde_json::from_str(payload).map_err(|e| e.to_string())?;
                if call["action"].is_null() {
                    let to = call["to"].as_str().unwrap_or_default().to_owned();
                    call["action"] = match kv::get(&format!("extension/{to}")) {
                        Some(_) => format!("Dial(PJSIP/{to})").into(),
                        None => "Playback(invalid)".into(),
                    };
                }
                Ok(call.to_string())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Core);
