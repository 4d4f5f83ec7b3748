//! A guest calling the application's capability against the same guest calling one of
//! modhost's own imports: the cost of linking an application's API into the sandbox.
//!
//! The test guest `caller` makes N host calls in one hook call: `capability` calls
//! `pbx:telephony/calls.current-channel` (the example capability, `examples/pbx/
//! telephony.rs`, which reads the dispatch's value); `builtin` makes a trace-level record
//! through `modhost:module/log` (dropped by the host). Target: a capability call costs no
//! more than a built-in import call plus 10%. See BENCHMARKS.md.

use std::sync::{Arc, OnceLock};

use divan::Bencher;
use modhost::embed::Capability;
use modhost::{DispatchOptions, Embedding, Host, Options};
use modhost_test_support::package;

#[path = "../examples/pbx/telephony.rs"]
#[allow(dead_code)]
mod telephony;

use telephony::{OnChannel, Switch};

fn main() {
    divan::main();
}

/// Host calls per hook call: enough that the dispatch around them is noise.
const CALLS: u32 = 10_000;

/// A host whose application gives `pbx:telephony`, with `caller` installed and granted.
fn host() -> &'static (Host, tempfile::TempDir) {
    static HOST: OnceLock<(Host, tempfile::TempDir)> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let host = Embedding::new()
            .capability(Arc::new(Switch::default()) as Arc<dyn Capability>)
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

fn run(bencher: Bencher, hook: &str) {
    let (host, _) = host();
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

/// 10,000 calls of the application's `current-channel`.
#[divan::bench]
fn capability_call(bencher: Bencher) {
    run(bencher, "capability");
}

/// 10,000 calls of modhost's own `log` import: the floor a capability is held to.
#[divan::bench]
fn builtin_import_call(bencher: Bencher) {
    run(bencher, "builtin");
}
