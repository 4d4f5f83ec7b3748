//! The `{name}` modhost module.

use modhost_sdk::{Module, db, kv, log};

struct {type_name};

impl Module for {type_name} {
    fn install() -> Result<(), String> {
        kv::set("greeting", "Hello")?;
        log::info("{name} installed", &[]);
        Ok(())
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            // `get_config` is a pipeline: add this module's part to what came before.
            "{name}_get_config" => Ok(format!("{payload}; {name}\n")),
            "{name}_hello" => {
                let greeting = kv::get("greeting").unwrap_or_else(|| "Hello".to_owned());
                db::execute(
                    "INSERT INTO {name}_greetings (who) VALUES (?1)",
                    &[db::Value::Text(payload.to_owned())],
                )?;
                log::info("greeted", &[("who", payload)]);
                Ok(format!("{greeting}, {payload}!"))
            }
            // module.xml names a handler this match lacks: a typo on one side.
            other => Err(format!(
                "no handler `{other}` for hook `{hook}` in src/lib.rs's match: module.xml's \
                 <methods> or <hooks> and the match must name it alike"
            )),
        }
    }
}

modhost_sdk::export_module!({type_name});
