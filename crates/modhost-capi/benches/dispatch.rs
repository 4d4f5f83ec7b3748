//! A dispatch through the C API against the same dispatch in Rust, in one run: what the
//! boundary adds (reading the C strings, the panic guard, the result as JSON in a string
//! the caller frees). Both hosts open the same root, whose one module is the test guest
//! `hostile`, whose `echo` handler returns its payload. See BENCHMARKS.md.

// The C API is `unsafe extern "C"` functions over raw pointers.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use divan::Bencher;
use modhost::{Host, Options};
use modhost_capi::{MODHOST_OK, modhost_dispatch, modhost_open, modhost_string_free};
use modhost_test_support::package;

fn main() {
    divan::main();
}

/// A root with the `hostile` module installed, made once.
fn root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let host = Host::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        host.install(&[package("hostile")], Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    })
    .path()
}

/// The floor: `Host::dispatch` in Rust, cache warm.
#[divan::bench]
fn rust(bencher: Bencher) {
    let host = Host::open(root()).unwrap_or_else(|e| panic!("{e}"));
    host.dispatch("echo", "x").unwrap_or_else(|e| panic!("{e}"));
    bencher.bench_local(|| {
        let dispatch = host.dispatch("echo", "x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dispatch.calls.len(), 1);
    });
}

/// `modhost_dispatch` as a C application calls it, result read and freed.
#[divan::bench]
fn c_api(bencher: Bencher) {
    bench_c(bencher, None);
}

/// The same, with a context string for capabilities (copied into the dispatch's value).
#[divan::bench]
fn c_api_with_context(bencher: Bencher) {
    bench_c(bencher, Some(c("PJSIP/2025550100-00000001")));
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_c(bencher: Bencher, context: Option<CString>) {
    let root = c(&root().to_string_lossy());
    let (hook, payload) = (c("echo"), c("x"));
    let context = context.as_ref().map_or(null(), |c| c.as_ptr());
    let mut host = null_mut();
    // SAFETY: live strings; `host` is written once.
    let status = unsafe { modhost_open(root.as_ptr(), null(), null(), 0, &mut host, null_mut()) };
    assert_eq!(status, MODHOST_OK);
    let dispatch = || {
        let mut result: *mut c_char = null_mut();
        // SAFETY: a live host and strings; the result is freed once.
        unsafe {
            let status = modhost_dispatch(
                host,
                hook.as_ptr(),
                payload.as_ptr(),
                context,
                null(),
                &mut result,
                null_mut(),
            );
            assert_eq!(status, MODHOST_OK);
            modhost_string_free(result);
        }
    };
    dispatch();
    bencher.bench_local(dispatch);
    // SAFETY: closed once, after the last dispatch.
    unsafe { modhost_capi::modhost_close(host) };
}
