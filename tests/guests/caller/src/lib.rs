//! Test guest: `capability N` calls the application's `pbx:telephony` `channel-state`
//! N times (on a channel it originates first); `builtin N` makes N trace-level log records
//! through modhost's own `log` import (which the host drops past its per-call limit, as
//! cheaply as it can). Both are one host call each, with a string going in and nothing
//! the guest must allocate coming back. `relay` fires hook `whoami`, whose handler
//! answers the channel the application passed with the dispatch (`current-channel`): the
//! value reaches hooks fired from inside a dispatch too.

use modhost_sdk::bindings::modhost::module::{log, types};
use modhost_sdk::{Module, dispatch};

/// Bindings to the application's `pbx:telephony` API (generated, so undocumented).
#[allow(missing_docs)]
mod telephony {
    wit_bindgen::generate!({
        path: "../../../examples/wit",
        world: "telephony",
    });
}

use telephony::pbx::telephony::calls;

struct Caller;

impl Module for Caller {
    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        let times: u32 = payload.parse().unwrap_or(1);
        match handler {
            "capability" => {
                let channel = calls::originate("100", "200")?;
                let mut ringing = 0u32;
                for _ in 0..times {
                    if calls::channel_state(&channel)? == calls::State::Ringing {
                        ringing += 1;
                    }
                }
                Ok(ringing.to_string())
            }
            "builtin" => {
                for _ in 0..times {
                    log::log(types::Level::Trace, "x", &[]);
                }
                Ok(times.to_string())
            }
            "relay" => {
                let outcomes = dispatch::fire("whoami", "")?;
                let answers: Vec<String> = outcomes
                    .into_iter()
                    .map(|o| match o.ok {
                        true => o.output,
                        false => format!("error: {}", o.output),
                    })
                    .collect();
                Ok(answers.join(","))
            }
            "whoami" => Ok(calls::current_channel().unwrap_or_else(|| "none".to_owned())),
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Caller);
