//! Dispatch speed against the plain-wasmtime floor, and opening a populated root.
//!
//! Every module is a copy of the same component (the test guest `hostile`, whose `echo`
//! handler returns its payload) under its own rawname, so the numbers measure the host,
//! not the guests. See BENCHMARKS.md for results and how to run them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use modhost::{Host, Options};
use modhost_test_support::component;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

fn main() {
    divan::main();
}

/// A root with `count` installed `echo` modules, built once per count.
fn root(count: usize) -> &'static Path {
    static ROOTS: OnceLock<Vec<(usize, tempfile::TempDir)>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| [1, 10, 100].into_iter().map(|n| (n, populate(n))).collect());
    match roots.iter().find(|(n, _)| *n == count) {
        Some((_, dir)) => dir.path(),
        None => panic!("no root with {count} modules"),
    }
}

fn populate(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let packages: Vec<PathBuf> = (0..count)
        .map(|i| {
            let module = dir.path().join(format!("src-{i}"));
            std::fs::create_dir_all(&module).unwrap_or_else(|e| panic!("{e}"));
            let xml = format!(
                "<module><rawname>bench_{i:03}</rawname><name>Bench {i}</name><version>1.0</version>\
                 <methods><echo>echo</echo></methods></module>"
            );
            std::fs::write(module.join("module.xml"), xml).unwrap_or_else(|e| panic!("{e}"));
            let package = dir.path().join(format!("bench_{i:03}.tgz"));
            modhost::pack(&module.join("module.xml"), &component("hostile"), &package).unwrap_or_else(|e| panic!("{e}"));
            package
        })
        .collect();
    let host = Host::open(&dir.path().join("root")).unwrap_or_else(|e| panic!("{e}"));
    host.install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn host(count: usize) -> Host {
    let host = Host::open(&root(count).join("root")).unwrap_or_else(|e| panic!("{e}"));
    // Warm the cache of handlers and prepared components, as a running PBX has it.
    host.dispatch("echo", "x").unwrap_or_else(|e| panic!("{e}"));
    host
}

/// One hook point dispatched across 1, 10 and 100 modules.
#[divan::bench(args = [1, 10, 100])]
fn dispatch(bencher: Bencher, modules: usize) {
    let host = host(modules);
    bencher.bench_local(|| {
        let dispatch = host.dispatch("echo", "x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dispatch.calls.len(), modules);
    });
}

struct Plain {
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

/// The floor: the same handler of the same component through plain wasmtime — an
/// `InstancePre` prepared once, then per call a store, an instance and the call.
#[divan::bench]
fn plain_wasmtime_floor(bencher: Bencher) {
    let (engine, pre, hooks) = echo();
    bencher.bench_local(|| call_echo(&engine, &pre, &hooks));
}

/// The `hostile` component compiled by a default engine and prepared once.
fn echo() -> (
    Engine,
    wasmtime::component::InstancePre<Plain>,
    wasmtime::component::ComponentExportIndex,
) {
    let engine = Engine::default();
    let bytes = std::fs::read(component("hostile")).unwrap_or_else(|e| panic!("{e}"));
    let component = Component::from_binary(&engine, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let (pre, hooks) = prepare(&wasi_linker(&engine), &component);
    (engine, pre, hooks)
}

/// A linker with WASI, as any wasmtime embedder of these components sets up.
fn wasi_linker(engine: &Engine) -> Linker<Plain> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap_or_else(|e| panic!("{e}"));
    linker
}

/// The component prepared once: modhost's own imports trap (`echo` never calls them), and
/// the index of its `hooks.handle` export.
fn prepare(
    linker: &Linker<Plain>,
    component: &Component,
) -> (
    wasmtime::component::InstancePre<Plain>,
    wasmtime::component::ComponentExportIndex,
) {
    let mut linker = linker.clone();
    linker
        .define_unknown_imports_as_traps(component)
        .unwrap_or_else(|e| panic!("{e}"));
    let pre = linker
        .instantiate_pre(component)
        .unwrap_or_else(|e| panic!("{e}"));
    let hooks = component
        .get_export_index(None, "modhost:module/hooks@0.1.0")
        .and_then(|instance| component.get_export_index(Some(&instance), "handle"))
        .unwrap_or_else(|| panic!("no hooks.handle export"));
    (pre, hooks)
}

/// The `echo` handler's typed function.
type Echo = wasmtime::component::TypedFunc<
    (&'static str, &'static str, &'static str),
    (Result<String, String>,),
>;

/// A fresh store and instance, and the instance's `echo` handler.
fn instantiate(
    engine: &Engine,
    pre: &wasmtime::component::InstancePre<Plain>,
    hooks: &wasmtime::component::ComponentExportIndex,
) -> (Store<Plain>, Echo) {
    let mut store = store(engine);
    let instance = pre
        .instantiate(&mut store)
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = instance
        .get_typed_func(&mut store, hooks)
        .unwrap_or_else(|e| panic!("{e}"));
    (store, handle)
}

/// One call of the `echo` handler.
fn echo_call(store: &mut Store<Plain>, handle: &Echo) {
    let (output,) = handle
        .call(store, ("echo", "echo", "x"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.as_deref(), Ok("x"));
}

/// One call of the `echo` handler in a fresh store and instance, as plain wasmtime does it.
fn call_echo(
    engine: &Engine,
    pre: &wasmtime::component::InstancePre<Plain>,
    hooks: &wasmtime::component::ComponentExportIndex,
) {
    let (mut store, handle) = instantiate(engine, pre, hooks);
    echo_call(&mut store, &handle);
}

/// The warm floor: the same handler called again and again on one instance kept alive,
/// as modhost now runs hook handlers — the cost of the call alone.
#[divan::bench]
fn plain_wasmtime_warm_floor(bencher: Bencher) {
    let (engine, pre, hooks) = echo();
    let (mut store, handle) = instantiate(&engine, &pre, &hooks);
    bencher.bench_local(|| echo_call(&mut store, &handle));
}

/// The warm floor on modhost's own engine: the same kept instance and call, on the engine
/// configuration the sandbox needs (epoch interruption with a deadline set per call, the
/// pooling allocator, backtrace details, the stack cap). Against this floor a dispatch's
/// extra cost is the host's own work; against the default engine's, it also includes the
/// price of the sandbox's configuration.
#[divan::bench]
fn plain_wasmtime_warm_floor_sandboxed(bencher: Bencher) {
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = modhost_runtime::Runtime::new(cache.path()).unwrap_or_else(|e| panic!("{e}"));
    let engine = runtime.engine();
    let bytes = std::fs::read(component("hostile")).unwrap_or_else(|e| panic!("{e}"));
    let component = Component::from_binary(engine, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let (pre, hooks) = prepare(&wasi_linker(engine), &component);
    let mut store = store(engine);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(1_000);
    let instance = pre
        .instantiate(&mut store)
        .unwrap_or_else(|e| panic!("{e}"));
    let handle: Echo = instance
        .get_typed_func(&mut store, hooks)
        .unwrap_or_else(|e| panic!("{e}"));
    bencher.bench_local(|| {
        store.set_epoch_deadline(1_000);
        echo_call(&mut store, &handle);
    });
}

fn store(engine: &Engine) -> Store<Plain> {
    Store::new(
        engine,
        Plain {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        },
    )
}

/// The floor for 100 modules: the handler of 100 distinct copies of the component (as
/// 100 installed modules are), each instantiated and called once, in plain wasmtime.
#[divan::bench]
fn plain_wasmtime_floor_100_components(bencher: Bencher) {
    let engine = Engine::default();
    let prepared = hundred_copies(&engine);
    bencher.bench_local(|| {
        for (pre, hooks) in &prepared {
            call_echo(&engine, pre, hooks);
        }
    });
}

/// The warm floor for 100 modules: 100 distinct copies of the component, each with an
/// instance kept alive, each called once — the calls alone, with 100 memories to touch.
#[divan::bench]
fn plain_wasmtime_warm_floor_100_components(bencher: Bencher) {
    let engine = Engine::default();
    let mut warm: Vec<_> = hundred_copies(&engine)
        .iter()
        .map(|(pre, hooks)| instantiate(&engine, pre, hooks))
        .collect();
    bencher.bench_local(|| {
        for (store, handle) in &mut warm {
            echo_call(store, handle);
        }
    });
}

/// 100 distinct copies of the `hostile` component, each prepared, as 100 installed
/// modules are: each has its own code and memory image.
fn hundred_copies(
    engine: &Engine,
) -> Vec<(
    wasmtime::component::InstancePre<Plain>,
    wasmtime::component::ComponentExportIndex,
)> {
    let bytes = std::fs::read(component("hostile")).unwrap_or_else(|e| panic!("{e}"));
    let compiled = Component::from_binary(engine, &bytes)
        .and_then(|c| c.serialize())
        .unwrap_or_else(|e| panic!("{e}"));
    let linker = wasi_linker(engine);
    (0..100)
        .map(|_| {
            // SAFETY: the bytes come from `serialize` on this very engine, just above.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize(engine, &compiled) }
                .unwrap_or_else(|e| panic!("{e}"));
            prepare(&linker, &component)
        })
        .collect()
}

/// Opening a root with 100 installed modules (engine, state, recovery check).
#[divan::bench]
fn open_host_with_100_modules(bencher: Bencher) {
    let path = root(100).join("root");
    bencher.bench_local(|| Host::open(&path).unwrap_or_else(|e| panic!("{e}")));
}
