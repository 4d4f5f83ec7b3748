//! Test guest: `note` passes its payload to the application's `test:notes` `note`, a
//! function with no result, and answers `noted` once it returns.

use modhost_sdk::Module;

/// Bindings to the application's `test:notes` API (generated, so undocumented).
#[allow(missing_docs)]
mod notes {
    wit_bindgen::generate!({
        inline: r#"
            package test:notes@1.0.0;

            interface notes {
                note: func(text: string);
            }

            world noter {
                import notes;
            }
        "#,
    });
}

struct Noter;

impl Module for Noter {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            "note" => {
                notes::test::notes::notes::note(payload);
                Ok("noted".to_owned())
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Noter);
