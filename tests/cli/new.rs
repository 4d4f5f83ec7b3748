//! From nothing to an installed module, as a new author goes: `modhost new`, `cd`,
//! `./build.sh`, `modhost install`, `modhost hook` — in Rust and in Python, with the real
//! toolchains (cargo for wasm32-wasip2; componentize-py, pinned, from PyPI).

use std::path::{Path, PathBuf};
use std::process::Command;

use modhost_test_support::{Root, arg};

use crate::root;

/// Runs `./build.sh` in `dir` with this build's `modhost` for packing.
fn build(dir: &Path, envs: &[(&str, PathBuf)]) {
    let mut command = Command::new(dir.join("build.sh"));
    command
        .current_dir(dir)
        .env("MODHOST", env!("CARGO_BIN_EXE_modhost"));
    for (key, value) in envs {
        command.env(key, value);
    }
    let run = Root::output(&mut command);
    assert!(
        run.success,
        "build.sh failed:\n{}\n{}",
        run.stdout, run.stderr
    );
}

/// `modhost new NAME --lang LANG` in a fresh directory; the module's directory.
fn new(root: &Root, name: &str, lang: &str) -> PathBuf {
    let parent = root.path().with_file_name(format!("authoring-{lang}"));
    assert!(std::fs::create_dir_all(&parent).is_ok());
    let dir = parent.join(name);
    let run = root.ok(&["new", name, "--lang", lang, "--dir", arg(&dir)]);
    assert!(run.stdout.contains("./build.sh"), "{}", run.stdout);
    dir
}

/// Installs, says hello, reloads and reads back what the hello handler wrote.
fn hello_round_trip(root: &Root, package: &Path, name: &str) {
    root.ok(&["install", arg(package)]);
    let calls = root
        .ok(&[
            "hook",
            &format!("{name}.hello"),
            "--payload",
            "world",
            "--json",
        ])
        .json();
    assert_eq!(calls[0]["output"], "Hello, world!", "{calls}");
    root.ok(&["reload"]);
    let conf = std::fs::read_to_string(root.path().join("etc/extensions_modhost.conf"))
        .unwrap_or_default();
    assert!(conf.contains(&format!("; {name}")), "{conf}");
    let kv = root.ok(&["kv", "--json", name]).json();
    assert_eq!(kv["greeting"], "Hello", "{kv}");
    let rows = root
        .ok(&["rows", "--json", name, &format!("{name}_greetings")])
        .json();
    assert_eq!(rows["rows"][0][1], "world", "{rows}");
}

#[test]
fn a_rust_module_from_nothing_to_installed_in_five_commands() {
    let root = root();
    let dir = new(&root, "hello_rust", "rust");
    // The workspace's target directory keeps the SDK's dependencies built between runs.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/new-modules");
    build(&dir, &[("CARGO_TARGET_DIR", target)]);
    hello_round_trip(&root, &dir.join("hello_rust-0.1.0.tgz"), "hello_rust");
    root.ok(&["uninstall", "hello_rust"]);
}

/// Whether componentize-py is on PATH; the suite's script puts it there and asks for it.
fn componentize_py() -> bool {
    let found = Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).trim()
                == format!("componentize-py {}", modhost::COMPONENTIZE_PY_VERSION)
        });
    if !found && std::env::var_os("MODHOST_REQUIRE_PYTHON").is_some() {
        panic!(
            "componentize-py {} is not on PATH (scripts/componentize-py.sh installs it)",
            modhost::COMPONENTIZE_PY_VERSION
        );
    }
    found
}

#[test]
fn a_python_module_installs_runs_upgrades_and_fails_with_its_traceback() {
    if !componentize_py() {
        eprintln!(
            "skipped: componentize-py {} is not on PATH (run scripts/test)",
            modhost::COMPONENTIZE_PY_VERSION
        );
        return;
    }
    let root = root();
    let dir = new(&root, "hello_py", "python");
    // A handler that raises what any Python code may raise.
    let app = std::fs::read_to_string(dir.join("app.py")).unwrap_or_default();
    // And one that stops the interpreter itself, which no Python code can catch: a trap.
    let app = app.replace(
        "\n\nLifecycle, Hooks",
        "\n    @handler(\"hello_py_boom\")\n    def boom(self, hook: str, payload: str) -> str:\n        \
         return str(int(payload))\n\n    @handler(\"hello_py_abort\")\n    \
         def abort(self, hook: str, payload: str) -> str:\n        \
         import os, sys, traceback\n        traceback.print_stack(file=sys.stderr)\n        \
         print(\"giving up: \" + payload, file=sys.stderr)\n        os.abort()\n\n\nLifecycle, Hooks",
    );
    assert!(std::fs::write(dir.join("app.py"), app).is_ok());
    let xml = std::fs::read_to_string(dir.join("module.xml")).unwrap_or_default();
    let xml = xml.replace(
        "</methods>",
        "\t<hello_py.boom>hello_py_boom</hello_py.boom>\n\t\
         <hello_py.abort>hello_py_abort</hello_py.abort>\n\t</methods>",
    );
    assert!(std::fs::write(dir.join("module.xml"), &xml).is_ok());
    build(&dir, &[]);
    hello_round_trip(&root, &dir.join("hello_py-0.1.0.tgz"), "hello_py");

    // `info` says what it reaches and offers, and what componentize-py adds.
    let info = root.ok(&["info", "hello_py"]).stdout;
    assert!(
        info.contains("exports.init")
            && info.contains("componentize-py's own")
            && info.contains("hooks.handle")
            && info.contains("network switched off"),
        "{info}"
    );

    // Any exception becomes the call's error, with the Python traceback: no trap.
    let calls = root
        .run(&[
            "hook",
            "hello_py.boom",
            "--payload",
            "not a number",
            "--json",
        ])
        .json();
    let error = calls[0]["error"].as_str().unwrap_or_default();
    assert_eq!(calls[0]["kind"], "failed", "{calls}");
    assert!(
        error.contains("ValueError: invalid literal for int()")
            && error.contains("app.py")
            && error.contains("Traceback"),
        "{error}"
    );

    // A trap shows what Python wrote to stderr first, pointing at app.py, then the frames.
    let calls = root
        .run(&["hook", "hello_py.abort", "--payload", "now", "--json"])
        .json();
    let error = calls[0]["error"].as_str().unwrap_or_default();
    assert_eq!(calls[0]["kind"], "trap", "{calls}");
    let stderr = error.find("giving up: now");
    let frames = error.find("wasm backtrace");
    assert!(
        error.contains("app.py") && stderr.is_some() && frames.is_some() && stderr < frames,
        "{error}"
    );

    // An upgrade keeps the store and the rows, and the code (the same component) is not
    // compiled again.
    let xml = xml.replace("<version>0.1.0</version>", "<version>0.2.0</version>");
    assert!(std::fs::write(dir.join("module.xml"), xml).is_ok());
    let v2 = dir.join("hello_py-0.2.0.tgz");
    root.ok(&["pack", arg(&dir), "-o", arg(&v2)]);
    root.ok(&["upgrade", arg(&v2)]);
    let info = root.ok(&["info", "--json", "hello_py"]).json();
    assert_eq!(info["version"], "0.2.0", "{info}");
    assert_eq!(
        root.ok(&["kv", "--json", "hello_py"]).json()["greeting"],
        "Hello"
    );
    root.ok(&["uninstall", "hello_py"]);
    assert!(
        root.ok(&["list", "--json"])
            .json()
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}
