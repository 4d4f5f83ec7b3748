//! A guest calling the application's capability against the same guest calling one of
//! modhost's own imports: the cost of linking an application's API into the sandbox.
//!
//! The test guest `caller` makes N host calls in one hook call: `capability` calls
//! `pbx:telephony/calls.channel-state` (the example capability, `examples/pbx/
//! telephony.rs`: a lock and a map lookup); `builtin` makes a trace-level record through
//! `modhost:module/log` (dropped by the host). Each passes a string in and gets nothing
//! back that the guest must allocate. Target: a capability call costs no
//! more than a built-in import call plus 10%. See BENCHMARKS.md.

use std::sync::{Arc, OnceLock};

use divan::Bencher;
use modhost::embed::{Capability, Sandbox};
use modhost::{DispatchOptions, Embedding, Host, Options};
use modhost_test_support::package;
use wasmtime::component::{HasData, Linker};

#[path = "../examples/pbx/telephony.rs"]
#[allow(dead_code)]
mod telephony;

use telephony::pbx::telephony::calls::{self, State};
use telephony::{OnChannel, Switch};

/// `pbx:telephony` with bodies as trivial as the built-in `log` import's: what is left is
/// the cost of a capability call itself.
struct Null;

/// What [`Null`]'s imports see: nothing.
struct NullCalls;

impl HasData for Null {
    type Data<'a> = NullCalls;
}

impl calls::Host for NullCalls {
    fn originate(&mut self, _: String, _: String) -> Result<String, String> {
        Ok("PJSIP/null".to_owned())
    }

    fn hangup(&mut self, _: String) -> Result<(), String> {
        Ok(())
    }

    fn channel_state(&mut self, _: String) -> Result<State, String> {
        Ok(State::Ringing)
    }

    fn current_channel(&mut self) -> Option<String> {
        None
    }
}

impl Capability for Null {
    fn package(&self) -> &str {
        "pbx:telephony"
    }

    fn interfaces(&self) -> Vec<String> {
        vec!["pbx:telephony/calls@1.0.0".to_owned()]
    }

    fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
        calls::add_to_linker::<Sandbox, Null>(linker, |_| NullCalls)
    }
}

fn main() {
    divan::main();
}

/// Host calls per hook call: enough that the dispatch around them is noise.
const CALLS: u32 = 10_000;

/// A host whose application gives `pbx:telephony` (the example switch, or [`Null`]),
/// with `caller` installed and granted.
fn host(null: bool) -> &'static (Host, tempfile::TempDir) {
    static HOSTS: [OnceLock<(Host, tempfile::TempDir)>; 2] = [OnceLock::new(), OnceLock::new()];
    HOSTS[usize::from(null)].get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let capability: Arc<dyn Capability> = if null {
            Arc::new(Null)
        } else {
            Arc::new(Switch::default())
        };
        let host = Embedding::new()
            .capability(capability)
            .open(dir.path())
            .unwrap_or_else(|e| panic!("{e}"));
        let grant = Options {
            grant: true,
            ..Options::default()
        };
        host.install(&[package("caller")], grant)
            .unwrap_or_else(|e| panic!("{e}"));
        (host, dir)
    })
}

fn run(bencher: Bencher, hook: &str, null: bool) {
    let (host, _) = host(null);
    let options = DispatchOptions {
        data: Some(Arc::new(OnChannel("PJSIP/100-1".to_owned()))),
        cancel: None,
    };
    let payload = CALLS.to_string();
    // Warm: the instance and the compiled component, as in a running PBX.
    host.dispatch_with(hook, &payload, &options)
        .unwrap_or_else(|e| panic!("{e}"));
    bencher
        .counter(divan::counter::ItemsCount::new(CALLS))
        .bench(|| {
            let dispatch = host
                .dispatch_with(hook, &payload, &options)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(dispatch.calls[0].ok, "{dispatch:?}");
        });
}

/// 10,000 calls of the example switch's `channel-state` (a lock and a map lookup).
#[divan::bench]
fn capability_call(bencher: Bencher) {
    run(bencher, "capability", false);
}

/// 10,000 calls of a `channel-state` that does nothing: the capability call itself.
#[divan::bench]
fn capability_call_trivial_body(bencher: Bencher) {
    run(bencher, "capability", true);
}

/// 10,000 calls of modhost's own `log` import: the floor a capability is held to.
#[divan::bench]
fn builtin_import_call(bencher: Bencher) {
    run(bencher, "builtin", false);
}
