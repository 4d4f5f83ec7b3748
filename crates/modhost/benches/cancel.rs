//! How soon a dispatch stops once the application cancels it from another thread (the
//! caller hung up), against the floor of any such hand-over: a thread spinning on an
//! atomic flag, stopped and joined the same way.
//!
//! Each sample starts a dispatch of the test guest `hostile`'s `note_then_spin` (a
//! key-value write, then a loop only a limit stops) on a thread of its own and lets it
//! spin; what is timed is `cancel()` and joining that thread, which returns once the
//! dispatch has stopped the handler, rolled its write back and returned; and the same for
//! `sleep`, a handler waiting in WASI. Target (issue 18): within a millisecond. See
//! BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use divan::Bencher;
use modhost::embed::Cancel;
use modhost::{Dispatch, DispatchOptions, Host, Options};
use modhost_test_support::package;

fn main() {
    divan::main();
}

/// How long a handler spins before it is cancelled: well past its start.
const SPINNING: Duration = Duration::from_millis(20);

/// A host with `hostile` installed, its component compiled and an instance warm.
fn host() -> &'static (Host, tempfile::TempDir) {
    static HOST: std::sync::OnceLock<(Host, tempfile::TempDir)> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        host.install(&[package("hostile")], Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        (host, dir)
    })
}

/// A dispatch of `hook` running on its own thread, and its cancel handle.
fn running(host: &'static Host, hook: &'static str) -> (Cancel, JoinHandle<Dispatch>) {
    let cancel = host.cancel_handle();
    let options = DispatchOptions {
        data: None,
        cancel: Some(cancel.clone()),
    };
    let running = std::thread::spawn(move || {
        host.dispatch_with(hook, "kept?", &options)
            .unwrap_or_else(|e| panic!("{e}"))
    });
    std::thread::sleep(SPINNING);
    (cancel, running)
}

/// Cancels a dispatch of `hook` and joins it, timing both.
fn cancel_one(bencher: Bencher, hook: &'static str) {
    let (host, _) = host();
    bencher
        .with_inputs(|| running(host, hook))
        .bench_values(|(cancel, running)| {
            cancel.cancel();
            let dispatch = running
                .join()
                .unwrap_or_else(|_| panic!("dispatch panicked"));
            assert!(dispatch.cancelled, "{dispatch:?}");
        });
}

/// `cancel()` to the dispatch's return, joined: the handler runs WebAssembly.
#[divan::bench(sample_count = 60, sample_size = 1)]
fn cancel_a_spinning_handler(bencher: Bencher) {
    cancel_one(bencher, "note_then_spin");
}

/// The same for a handler waiting in WASI (`std::thread::sleep`, a clock pollable).
#[divan::bench(sample_count = 60, sample_size = 1)]
fn cancel_a_sleeping_handler(bencher: Bencher) {
    cancel_one(bencher, "sleep");
}

/// The floor: a thread spinning on an atomic flag, set and joined the same way.
#[divan::bench(sample_count = 60, sample_size = 1)]
fn floor_stop_a_spinning_thread(bencher: Bencher) {
    bencher
        .with_inputs(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let running = std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            std::thread::sleep(SPINNING);
            (stop, running)
        })
        .bench_values(|(stop, running)| {
            stop.store(true, Ordering::Relaxed);
            running.join().unwrap_or_else(|_| panic!("thread panicked"));
        });
}
