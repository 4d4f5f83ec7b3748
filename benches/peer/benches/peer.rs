//! modhost against Extism, side by side in one run: installing (compiling) a module and a
//! warm call of the same handler — `echo`, which returns its input — written with each
//! side's own SDK (`guests/modhost-echo`, a component for wasm32-wasip2;
//! `guests/extism-echo`, an Extism PDK plugin for wasm32-unknown-unknown).
//!
//! `benches/peer/run` builds both guests and runs this; the results and how to read them
//! are in BENCHMARKS.md ("Against Extism").

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use extism::{Manifest, Plugin, PluginBuilder, Wasm};
use modhost::{Host, Options};

fn main() {
    divan::main();
}

/// The payload sizes every call benchmark runs with: a phone number, and a 4 KiB document.
const PAYLOAD_BYTES: [usize; 2] = [10, 4096];

/// `bytes` of payload: a phone number (2025550100), repeated as far as needed.
fn payload(bytes: usize) -> String {
    "2025550100".chars().cycle().take(bytes).collect()
}

/// A built guest: `$var` if set (the `run` script sets it), else where `run` builds it.
fn guest(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/peer")
                .join(default)
        },
        PathBuf::from,
    );
    if !path.is_file() {
        panic!(
            "{} not found: build the guests with benches/peer/run (or set {var})",
            path.display()
        );
    }
    path
}

/// The modhost guest's component.
fn component() -> PathBuf {
    guest(
        "PEER_MODHOST_COMPONENT",
        "wasm32-wasip2/guest/modhost_peer_echo.wasm",
    )
}

/// The Extism guest's plugin.
fn plugin_wasm() -> PathBuf {
    guest(
        "PEER_EXTISM_PLUGIN",
        "wasm32-unknown-unknown/guest/extism_peer_echo.wasm",
    )
}

/// The modhost guest packed as a module (module.xml + component), as it is installed:
/// built once per run, in a directory kept until the process ends.
fn package() -> &'static Path {
    static PACKAGE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, package) = PACKAGE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/modhost-echo/module.xml");
        let package = dir.path().join("peer_echo-1.0.0.tgz");
        modhost::pack(&xml, &component(), &package)
            .unwrap_or_else(|e| panic!("packing the modhost guest: {e}"));
        (dir, package)
    });
    package
}

/// A fresh, empty root with a host open on it (its engine and instance pool ready).
fn fresh_host() -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    let host = Host::open(&dir.path().join("root")).unwrap_or_else(|e| panic!("Host::open: {e}"));
    (dir, host)
}

/// An Extism plugin built the way the benchmark compares: from the file, without WASI
/// (the plugin imports none), and with Extism's compilation cache off, so every build
/// compiles.
fn extism_plugin(wasm: &Path) -> Plugin {
    PluginBuilder::new(Manifest::new([Wasm::file(wasm)]))
        .with_wasi(false)
        .with_cache_disabled()
        .build()
        .unwrap_or_else(|e| panic!("Extism Plugin::new: {e:#}"))
}

/// Installing: from a module on disk to something that can be called. Each iteration
/// starts with nothing compiled.
mod install {
    use super::*;

    /// modhost's compile step alone: `Runtime::load` of the component with its artifact
    /// removed from the cache first — checking its imports, compiling it, writing (and
    /// syncing) the artifact, linking it. The engine and its instance pool are created
    /// once, as a host's are.
    #[divan::bench(sample_size = 1)]
    fn modhost_runtime_load(bencher: Bencher) {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let runtime = modhost_runtime::Runtime::new(cache.path())
            .unwrap_or_else(|e| panic!("Runtime::new: {e}"));
        let component = component();
        let sha256 = modhost_runtime::sha256_of(&component)
            .unwrap_or_else(|e| panic!("hashing the component: {e}"));
        bencher
            .with_inputs(|| {
                runtime
                    .forget(&sha256)
                    .unwrap_or_else(|e| panic!("emptying the cache: {e}"));
            })
            .bench_local_values(|()| {
                let loaded = runtime
                    .load(&component, None)
                    .unwrap_or_else(|e| panic!("Runtime::load: {e}"));
                assert_eq!(loaded.origin(), modhost_runtime::Origin::Compiled);
                loaded
            });
    }

    /// modhost's whole install: `Host::install` of the package into a fresh root whose
    /// host is already open — unpacking and checking the package, compiling the
    /// component, recording the module (enabled) in the state database, running its
    /// `install` lifecycle call in a fresh instance, committing.
    #[divan::bench(sample_size = 1)]
    fn modhost_host_install(bencher: Bencher) {
        let package = package().to_owned();
        bencher
            .with_inputs(fresh_host)
            .bench_local_values(|(dir, host)| {
                host.install(std::slice::from_ref(&package), Options::default())
                    .unwrap_or_else(|e| panic!("Host::install: {e}"));
                (dir, host)
            });
    }

    /// Extism's `Plugin::new` (through `PluginBuilder`, to turn its cache off): a new
    /// engine, its kernel module and the plugin compiled, both linked. Extism instantiates
    /// on the first call, so that is not in here.
    #[divan::bench(sample_size = 1)]
    fn extism_plugin_new(bencher: Bencher) {
        let wasm = plugin_wasm();
        bencher.bench_local(|| extism_plugin(&wasm));
    }
}

/// A warm call: the module installed and called once before measuring, then the same
/// handler called again and again with the same payload. Each call's output is checked
/// for its length (its content once, before measuring). 1000 samples, not divan's 100:
/// a call takes microseconds, and on a shared machine the median needs them.
mod call {
    use super::*;

    /// modhost: `Host::dispatch("echo", payload)` on a root with the one module
    /// installed and enabled — what an application calls.
    #[divan::bench(args = PAYLOAD_BYTES, sample_count = 1000)]
    fn modhost_dispatch(bencher: Bencher, bytes: usize) {
        let (_dir, host) = fresh_host();
        host.install(&[package().to_owned()], Options::default())
            .unwrap_or_else(|e| panic!("Host::install: {e}"));
        let payload = payload(bytes);
        let dispatch = host
            .dispatch("echo", &payload)
            .unwrap_or_else(|e| panic!("Host::dispatch: {e}"));
        let outputs: Vec<_> = dispatch.calls.iter().map(|c| c.output.as_deref()).collect();
        assert_eq!(outputs, [Some(payload.as_str())]);
        bencher.bench_local(|| {
            let dispatch = host
                .dispatch("echo", &payload)
                .unwrap_or_else(|e| panic!("Host::dispatch: {e}"));
            let output = dispatch.calls.first().and_then(|c| c.output.as_ref());
            assert_eq!(output.map(String::len), Some(payload.len()));
        });
    }

    /// Extism: `plugin.call::<&str, &str>("echo", payload)` on a plugin kept alive.
    #[divan::bench(args = PAYLOAD_BYTES, sample_count = 1000)]
    fn extism_call(bencher: Bencher, bytes: usize) {
        let mut plugin = extism_plugin(&plugin_wasm());
        let payload = payload(bytes);
        let output = plugin
            .call::<&str, &str>("echo", &payload)
            .unwrap_or_else(|e| panic!("Extism call: {e:#}"));
        assert_eq!(output, payload);
        bencher.bench_local(|| {
            let output = plugin
                .call::<&str, &str>("echo", &payload)
                .unwrap_or_else(|e| panic!("Extism call: {e:#}"));
            assert_eq!(output.len(), payload.len());
        });
    }

    /// The reference line under modhost: the same component's handler on one instance
    /// kept alive, through plain wasmtime 48 with a default engine and a bare WASI
    /// context — the call alone, with none of a host's work around it.
    #[divan::bench(args = PAYLOAD_BYTES, sample_count = 1000)]
    fn wasmtime_floor(bencher: Bencher, bytes: usize) {
        let (mut store, instance, hooks) = floor::instantiate(&component());
        let payload = payload(bytes);
        let handle = instance
            .get_typed_func::<(&str, &str, &str), (Result<String, String>,)>(&mut store, hooks)
            .unwrap_or_else(|e| panic!("hooks.handle's type: {e:#}"));
        let (output,) = handle
            .call(&mut store, ("echo", "echo", &payload))
            .unwrap_or_else(|e| panic!("plain wasmtime call: {e:#}"));
        assert_eq!(output.as_deref(), Ok(payload.as_str()));
        bencher.bench_local(|| {
            let (output,) = handle
                .call(&mut store, ("echo", "echo", &payload))
                .unwrap_or_else(|e| panic!("plain wasmtime call: {e:#}"));
            assert_eq!(output.map(|o| o.len()), Ok(payload.len()));
        });
    }
}

/// Plain wasmtime 48 running the modhost guest, as `crates/modhost/benches/dispatch.rs`
/// does for its floors.
mod floor {
    use std::path::Path;

    use wasmtime::component::{Component, ComponentExportIndex, Instance, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

    /// A store's data: a bare WASI context, nothing of modhost's.
    pub struct Plain {
        wasi: WasiCtx,
        table: ResourceTable,
    }

    impl WasiView for Plain {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    /// The component compiled by a default engine and instantiated once, and the index of
    /// its `hooks.handle` export; modhost's own imports, which `echo` never calls, trap.
    pub fn instantiate(path: &Path) -> (Store<Plain>, Instance, ComponentExportIndex) {
        let engine = Engine::default();
        let component = Component::from_file(&engine, path)
            .unwrap_or_else(|e| panic!("compiling {}: {e:#}", path.display()));
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .unwrap_or_else(|e| panic!("linking WASI: {e:#}"));
        linker
            .define_unknown_imports_as_traps(&component)
            .unwrap_or_else(|e| panic!("linking the rest: {e:#}"));
        let hooks = component
            .get_export_index(None, "modhost:module/hooks@0.1.0")
            .and_then(|instance| component.get_export_index(Some(&instance), "handle"))
            .unwrap_or_else(|| panic!("the component exports no hooks.handle"));
        let mut store = Store::new(
            &engine,
            Plain {
                wasi: WasiCtxBuilder::new().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = linker
            .instantiate(&mut store, &component)
            .unwrap_or_else(|e| panic!("instantiating: {e:#}"));
        (store, instance, hooks)
    }
}
