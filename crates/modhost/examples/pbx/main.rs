//! A tiny PBX application that embeds modhost.
//!
//! It gives modules its own API, `pbx:telephony` (`telephony.rs`), installs the example
//! modules into a fresh root (granting `callback` the API it asks for), declares its
//! `call.route` hook point (a fail-closed pipeline with a tight deadline), and routes
//! simulated incoming calls from several threads at once: each call's JSON goes through
//! the modules' handlers in priority order — phonebook names the caller, voicemail takes
//! `*` numbers, core dials extensions — and the application acts on the answer. When a
//! call reaches voicemail, it tells the modules (`voicemail.left`, with the call's channel)
//! and `callback` originates a call back through the PBX's API.
//!
//! ```sh
//! cargo xtask modules                                  # build the example packages
//! cargo run -p modhost --example pbx -- target/modules
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use modhost::{DispatchOptions, Embedding, HookPoint, Host, Limits, OnError, Options, Shape};

mod telephony;

use telephony::{OnChannel, Switch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let packages = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/modules".to_owned()),
    );
    let root = tempfile::tempdir()?;
    let switch = Arc::new(Switch::default());
    let host = Embedding::new()
        .capability(Arc::clone(&switch) as Arc<dyn modhost::embed::Capability>)
        .open(root.path())?;

    let wanted = ["core", "voicemail", "phonebook", "callback"].map(String::from);
    let found = host.resolve_packages(&wanted, Some(&packages))?;
    let grant = Options {
        grant: true,
        ..Options::default()
    };
    for change in host.install(&found, grant)? {
        println!(
            "{} {} {}",
            change.action,
            change.rawname,
            change.to.unwrap_or_default()
        );
    }

    host.declare(HookPoint {
        name: "call.route".to_owned(),
        shape: Shape::Pipeline,
        on_error: OnError::Stop,
        limits: Some(Limits {
            call_timeout: Duration::from_secs(2),
            ..Limits::default()
        }),
    })?;

    let host = Arc::new(host);
    let calls = [
        ("2025550100", "100"),
        ("2025550101", "*101"),
        ("2025559999", "101"),
        ("2025550100", "555"),
    ];
    let threads: Vec<_> = calls
        .into_iter()
        .map(|(from, to)| {
            let host = Arc::clone(&host);
            std::thread::spawn(move || route(&host, from, to))
        })
        .collect();
    for thread in threads {
        match thread.join() {
            Ok(Ok(line)) => println!("{line}"),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a routing thread panicked".into()),
        }
    }
    let channels = switch.channels();
    println!("channels: {channels:?}");
    // The voicemail left for *101 must have made `callback` originate through the
    // application's API: without it the example showed nothing of capabilities.
    if channels.is_empty() {
        return Err("`callback` originated no call through pbx:telephony".into());
    }
    Ok(())
}

/// Routes one call through the modules and says what the PBX does with it.
fn route(
    host: &Host,
    from: &str,
    to: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let payload =
        serde_json::json!({ "from": from, "to": to, "caller_name": null, "action": null });
    let dispatch = host.dispatch("call.route", &payload.to_string())?;
    if let Some(rawname) = dispatch.stopped_by {
        return Ok(format!(
            "call {from} -> {to}: rejected, `{rawname}` failed; playing an apology"
        ));
    }
    let answer: serde_json::Value = serde_json::from_str(&dispatch.output.unwrap_or_default())?;
    let caller = answer["caller_name"].as_str().unwrap_or("unknown caller");
    let action = answer["action"].as_str().unwrap_or("Hangup()");
    let mut after = String::new();
    if let Some(mailbox) = action
        .strip_prefix("VoiceMail(")
        .and_then(|rest| rest.split('@').next())
    {
        // The modules hear about the message, on the caller's channel.
        let options = DispatchOptions {
            data: Some(Arc::new(OnChannel(format!("PJSIP/{from}-incoming")))),
            cancel: None,
        };
        let left = serde_json::json!({ "mailbox": mailbox, "from": from });
        let told = host.dispatch_with("voicemail.left", &left.to_string(), &options)?;
        for call in told.calls {
            after += &format!(
                "\n  voicemail.left -> {}: {}",
                call.rawname,
                call.output.or(call.error).unwrap_or_default()
            );
        }
    }
    let path: Vec<String> = dispatch
        .calls
        .iter()
        .map(|c| format!("{}@{}", c.rawname, c.priority))
        .collect();
    Ok(format!(
        "call from {caller} <{from}> to {to}: {action}   (via {}){after}",
        path.join(" -> ")
    ))
}
