//! Install time, beside the floor of compiling the same component with plain wasmtime:
//! a fresh root (nothing cached) installing the Rust example `core` and a Python module
//! made by `modhost new --lang python` (about 19 MB, nearly all CPython); installing a
//! package a scan compiled already; and refusing a component built against a
//! `modhost:module` version this host does not run, which must not compile anything.
//!
//! The Python module is built once, at the start, with the pinned componentize-py: from
//! PATH, else from the virtualenv `scripts/test` makes under `target/`. Without it the
//! Python benchmarks say so and measure nothing. See BENCHMARKS.md for results.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use divan::Bencher;
use modhost::{Host, Lang, Options};
use modhost_test_support::{component, package};

fn main() {
    divan::main();
}

/// A directory of its own, kept until the end of the run.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")))
        .path()
}

/// componentize-py at the version `modhost new` pins, if it can be found: on PATH, or
/// in the virtualenv (whose directory then goes on PATH).
fn componentize_py() -> Option<PathBuf> {
    let version = format!("componentize-py {}", modhost::COMPONENTIZE_PY_VERSION);
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../target/componentize-py-{}/bin/componentize-py",
        modhost::COMPONENTIZE_PY_VERSION
    ));
    [PathBuf::from("componentize-py"), venv]
        .into_iter()
        .find(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == version)
        })
}

/// The Python module's package and component, built once.
fn python() -> Option<&'static (PathBuf, PathBuf)> {
    static BUILT: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let Some(tool) = componentize_py() else {
                eprintln!(
                    "componentize-py {} not found (scripts/test installs it): Python benchmarks skipped",
                    modhost::COMPONENTIZE_PY_VERSION
                );
                return None;
            };
            let dir = scratch().join("bench_py");
            modhost::new_module(&dir, "bench_py", Lang::Python)
                .unwrap_or_else(|e| panic!("{e}"));
            // The module's own build.sh, as an author runs it, with the tool found above
            // first on PATH; it packs with `$MODHOST`, which the benchmark does itself.
            let path = std::env::var_os("PATH").unwrap_or_default();
            let tool_dir = tool.parent().filter(|d| !d.as_os_str().is_empty());
            let path = std::env::join_paths(
                tool_dir
                    .map(Path::to_owned)
                    .into_iter()
                    .chain(std::env::split_paths(&path)),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let built = Command::new(dir.join("build.sh"))
                .env("PATH", path)
                .env("MODHOST", "true")
                .status()
                .unwrap_or_else(|e| panic!("build.sh: {e}"));
            assert!(built.success(), "build.sh failed");
            let wasm = dir.join("module.wasm");
            let packed = scratch().join("bench_py.tgz");
            modhost::pack(&dir.join("module.xml"), &wasm, &packed)
                .unwrap_or_else(|e| panic!("{e}"));
            let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
            eprintln!(
                "python module: component {} bytes, package {} bytes; rust `core`: component {} bytes, package {} bytes",
                size(&wasm),
                size(&packed),
                size(&component("core")),
                size(&package("core")),
            );
            Some((packed, wasm))
        })
        .as_ref()
}

/// A fresh, empty root of its own (nothing compiled), and where it is.
fn fresh_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(scratch()).unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("root");
    (dir, root)
}

/// Opens `root` and installs `packages`: what `modhost install` does.
fn install(root: &Path, packages: &[PathBuf]) -> Host {
    let host = Host::open(root).unwrap_or_else(|e| panic!("{e}"));
    host.install(packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    host
}

/// Installing into a fresh root, compiling the component on every core.
mod install_fresh {
    use super::*;

    /// The Rust example `core` (a stripped component of about 165 KB).
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn rust_core(bencher: Bencher) {
        let packages = [package("core")];
        bencher
            .with_inputs(fresh_root)
            .bench_local_values(|(dir, root)| (install(&root, &packages), dir));
    }

    /// The Python module.
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn python(bencher: Bencher) {
        let Some((package, _)) = super::python() else {
            return;
        };
        let packages = [package.clone()];
        bencher
            .with_inputs(fresh_root)
            .bench_local_values(|(dir, root)| (install(&root, &packages), dir));
    }
}

/// Installing a package that `scan` compiled already: its code is mapped, not compiled.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn install_after_scan_python(bencher: Bencher) {
    let Some((package, _)) = python() else {
        return;
    };
    let packages = [package.clone()];
    let offered = scratch().join("offered");
    std::fs::create_dir_all(&offered).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(package, offered.join("bench_py.tgz")).unwrap_or_else(|e| panic!("{e}"));
    bencher
        .with_inputs(|| {
            let (dir, root) = fresh_root();
            let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
            host.scan(&offered).unwrap_or_else(|e| panic!("{e}"));
            (dir, root)
        })
        .bench_local_values(|(dir, root)| (install(&root, &packages), dir));
}

/// The floor under an install: plain wasmtime compiling the same component, on every
/// core, with nothing else (no unpacking, checks, state database or artifact file).
mod plain_wasmtime_compile {
    use super::*;
    use wasmtime::component::Component;
    use wasmtime::{Config, Engine};

    fn engine() -> Engine {
        let mut config = Config::new();
        config.parallel_compilation(true);
        Engine::new(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The Rust example `core`.
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn rust_core(bencher: Bencher) {
        let engine = engine();
        let bytes = std::fs::read(component("core")).unwrap_or_else(|e| panic!("{e}"));
        bencher.bench_local(|| Component::from_binary(&engine, &bytes).map(drop));
    }

    /// The Python module.
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn python(bencher: Bencher) {
        let Some((_, wasm)) = super::python() else {
            return;
        };
        let engine = engine();
        let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{e}"));
        bencher.bench_local(|| Component::from_binary(&engine, &bytes).map(drop));
    }
}

/// A component built against a `modhost:module` version this host does not run, refused
/// from its import section before anything is compiled.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn refuse_wrong_api_version(bencher: Bencher) {
    let packages = [package("future_api")];
    bencher
        .with_inputs(fresh_root)
        .bench_local_values(|(dir, root)| {
            let host = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
            let refused = host.install(&packages, Options::default());
            assert!(refused.is_err(), "future_api must be refused");
            (host, dir)
        });
}
