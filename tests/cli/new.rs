//! From nothing to an installed module, as a new author goes: `modhost new`, `cd`,
//! `./build.sh`, `modhost install`, `modhost hook` — in Rust and in Python, with the real
//! toolchains (cargo for wasm32-wasip2; componentize-py, pinned, from PyPI).

use std::path::{Path, PathBuf};
use std::process::Command;

use modhost_test_support::{Root, arg};

use crate::root;

/// Runs `./build.sh` in `dir` with this build's `modhost` for packing, and `envs`.
fn run_build(dir: &Path, envs: &[(&str, &std::ffi::OsStr)]) -> modhost_test_support::Run {
    let mut command = Command::new(dir.join("build.sh"));
    command
        .current_dir(dir)
        .env("MODHOST", env!("CARGO_BIN_EXE_modhost"));
    for (key, value) in envs {
        command.env(key, value);
    }
    Root::output(&mut command)
}

/// [`run_build`], which must succeed; what it said on stderr.
fn build(dir: &Path, envs: &[(&str, PathBuf)]) -> String {
    let envs: Vec<(&str, &std::ffi::OsStr)> =
        envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let run = run_build(dir, &envs);
    assert!(
        run.success,
        "build.sh failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stderr
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
    // The lock's packages, in any order (cargo sorts them by name, the module's too).
    let locked = || {
        let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap_or_default();
        let mut packages: Vec<String> = lock.split("\n\n").map(str::to_owned).collect();
        packages.sort();
        packages
    };
    let before = locked();
    build(&dir, &[("CARGO_TARGET_DIR", target.clone())]);
    // Every dependency was pinned already: the build resolved nothing anew.
    assert!(
        before.iter().any(|p| p.contains("name = \"wit-bindgen\"")),
        "{before:?}"
    );
    assert_eq!(locked(), before);
    hello_round_trip(&root, &dir.join("hello_rust-0.1.0.tgz"), "hello_rust");
    root.ok(&["uninstall", "hello_rust"]);

    // A copy of the module, changed, built into the same target directory, and then the
    // original built again: each package holds its own directory's code, although cargo
    // names both crates, and both SDKs, alike.
    let copy = dir.with_file_name("hello_rust_copy");
    let copied = Command::new("cp").arg("-a").arg(&dir).arg(&copy).status();
    assert!(copied.is_ok_and(|s| s.success()));
    let source = copy.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap_or_default();
    assert!(code.contains("{payload}!\")"), "{code}");
    assert!(std::fs::write(&source, code.replace("{payload}!\")", "{payload}!!\")")).is_ok());
    build(&copy, &[("CARGO_TARGET_DIR", target.clone())]);
    build(&dir, &[("CARGO_TARGET_DIR", target)]);
    for (built, said) in [(&dir, "Hello, world!"), (&copy, "Hello, world!!")] {
        root.ok(&["install", arg(&built.join("hello_rust-0.1.0.tgz"))]);
        let calls = root
            .ok(&["hook", "hello_rust.hello", "--payload", "world", "--json"])
            .json();
        assert_eq!(calls[0]["output"], said, "{}: {calls}", built.display());
        root.ok(&["uninstall", "hello_rust"]);
    }
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
fn the_python_sdk_and_a_new_modules_app_type_check_under_mypy_strict() {
    if !componentize_py() {
        eprintln!("skipped: componentize-py is not on PATH (run scripts/test)");
        return;
    }
    let root = root();
    // Named as its exports are too: the module's class is not one of them.
    for name in ["typed_py", "lifecycle", "hooks"] {
        let dir = new(&root, name, "python");
        // The bindings the SDK imports, as componentize-py generates them when it builds.
        let bindings = dir.join("bindings");
        let generated = Root::output(
            Command::new("componentize-py")
                .args(["-d", "wit", "-w", "module", "bindings"])
                .arg(&bindings)
                .current_dir(&dir),
        );
        assert!(generated.success, "{}", generated.stderr);
        let path = std::env::join_paths([bindings, dir.join("sdk")]).unwrap_or_default();
        let checked = Root::output(
            Command::new("python3")
                .args(["-m", "mypy", "--strict", "sdk/modhost_sdk", "app.py"])
                .env("MYPYPATH", path)
                .current_dir(&dir),
        );
        assert!(
            checked.success && checked.stdout.contains("Success: no issues found"),
            "{name}: {}\n{}",
            checked.stdout,
            checked.stderr
        );
    }
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
    // And the mistakes a new author makes, which the SDK turns into errors at their line;
    // rows read back, print(), and an upgrade() that raises while `refuse_upgrade` is set.
    let app = app
        .replace("\n\nLifecycle, Hooks", MISTAKES)
        .replace(
            "from modhost_sdk import ",
            "import json\nimport logging\nimport tempfile\nfrom modhost_sdk import HostError, ",
        )
        .replace(
            "    @handler(\"hello_py_get_config\")",
            "    def upgrade(self, previous: str) -> None:\n        \
             if kv.get(\"refuse_upgrade\"):\n            \
             raise ValueError(\"not from \" + previous)\n\n    \
             @handler(\"hello_py_rows\")\n    \
             def rows(self, hook: str, payload: str) -> str:\n        \
             print(\"printed\", payload)\n        \
             logging.warning(\"warned through logging %s\", payload)\n        \
             if payload == \"refuse\":\n            kv.set(\"refuse_upgrade\", \"yes\")\n        \
             elif payload == \"allow\":\n            kv.delete(\"refuse_upgrade\")\n        \
             return json.dumps(db.query(\"SELECT id, who FROM hello_py_greetings ORDER BY id\"))\n\n    \
             @handler(\"hello_py_get_config\")",
        );
    assert!(std::fs::write(dir.join("app.py"), app).is_ok());
    let xml = std::fs::read_to_string(dir.join("module.xml")).unwrap_or_default();
    let xml = xml.replace(
        "</methods>",
        "\t<hello_py.boom>hello_py_boom</hello_py.boom>\n\t\
         <hello_py.abort>hello_py_abort</hello_py.abort>\n\t\
         <hello_py.mistake>hello_py_mistake</hello_py.mistake>\n\t\
         <hello_py.spin>hello_py_mistake</hello_py.spin>\n\t\
         <hello_py.caught>hello_py_caught</hello_py.caught>\n\t\
         <hello_py.later>hello_py_later</hello_py.later>\n\t\
         <hello_py.rows>hello_py_rows</hello_py.rows>\n\t</methods>",
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

    // db.query's rows are dicts; print() and log fields reach the log.
    let mut run = root.command(&["hook", "hello_py.rows", "--payload", "refuse", "--json"]);
    run.env("MODHOST_LOG", "modhost::module=debug");
    let run = Root::output(&mut run);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.json()[0]["output"],
        r#"[{"id": 1, "who": "world"}]"#,
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("printed refuse") && run.stderr.contains("module=hello_py"),
        "{}",
        run.stderr
    );
    // Python's logging reaches the module's log at its level, not stderr's debug.
    assert!(
        run.stderr.lines().any(|line| line.contains("WARN")
            && line.contains("warned through logging refuse")
            && !line.contains("stderr=true")),
        "{}",
        run.stderr
    );
    let mut run = root.command(&["hook", "hello_py.hello", "--payload", "log"]);
    run.env("MODHOST_LOG", "modhost::module=debug");
    let run = Root::output(&mut run);
    assert!(
        run.stderr.contains("greeted") && run.stderr.contains("who=log"),
        "{}",
        run.stderr
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
            && error.contains("File \"app.py\", line ")
            && !error.contains("/0/")
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
        error.contains("app.py")
            && stderr.is_some()
            && frames.is_some()
            && stderr < frames
            && !error.contains("[modhost]"),
        "{error}"
    );

    // Mistakes fail the call at the author's line, naming what was wrong: never a trap.
    // The handler's frame in the traceback: `File "…/app.py", line 45, in mistake`.
    const IN_MISTAKE: &str = ", in mistake";
    let mistake = |payload: &str| {
        let calls = root
            .run(&["hook", "hello_py.mistake", "--payload", payload, "--json"])
            .json();
        assert_eq!(calls[0]["kind"], "failed", "{payload}: {calls}");
        calls[0]["error"].as_str().unwrap_or_default().to_owned()
    };
    for (payload, expected, line) in [
        (
            "none",
            "handler `hello_py_mistake` returned None: return a str (did it forget `return`?)",
            "HelloPy.mistake (",
        ),
        (
            "dict",
            "handler `hello_py_mistake` returned dict: return a str (json.dumps for structured data)",
            "HelloPy.mistake (",
        ),
        (
            "kv",
            "TypeError: kv.set: `value` must be a str, not int",
            IN_MISTAKE,
        ),
        (
            "log",
            "TypeError: log.info: `message` must be a str",
            IN_MISTAKE,
        ),
        (
            "db",
            "OverflowError: db.execute: parameter ?1 = 18446744073709551616",
            IN_MISTAKE,
        ),
        ("host", "HostError: no such table: nosuch", IN_MISTAKE),
        // A module's exception class whose __str__ fails, a message of 20,000 characters
        // (cut, so that the frames still fit), a chained cause (its frames as written).
        ("badstr", "ApiError: <exception str() failed>", IN_MISTAKE),
        ("long", "ValueError: unexpected rows: xxx", IN_MISTAKE),
        (
            "chain",
            "The above exception was the direct cause of the following exception",
            IN_MISTAKE,
        ),
        // `message` is a field like any other: the handler goes on, and returns nothing.
        (
            "field",
            "handler `hello_py_mistake` returned None",
            "HelloPy.mistake (",
        ),
        // Text no UTF-8 string can carry fails at the author's line, naming it: no trap.
        (
            "surrogate",
            "handler `hello_py_mistake` returned a str that is not valid Unicode text: \
             a lone surrogate '\\udcff' at index 7",
            "HelloPy.mistake (",
        ),
        (
            "kvsurrogate",
            "ValueError: kv.set: `value` is not valid Unicode text: a lone surrogate",
            IN_MISTAKE,
        ),
        (
            "lazy",
            "componentize-py bundles only the modules imported when the component is built: \
             import `decimal` at the top of app.py",
            IN_MISTAKE,
        ),
        // The cap met and the refusal handled: a later failure is the module's own, not
        // the cap's (`mistake` asserts the kind `failed`).
        ("handled", "ValueError: no rows to read", IN_MISTAKE),
    ] {
        let error = mistake(payload);
        assert!(
            error.contains(expected)
                && !error.contains("its memory reached its cap")
                && error.contains(line)
                && error.contains("app.py")
                && !error.contains("/0/")
                && error.len() < 6000,
            "{payload}: {error}"
        );
    }
    // A loop stopped at its deadline is said to be in the author's handler, where the
    // interpreter's frames name nothing of it; the SDK's mark is not shown as stderr.
    root.configure("[hooks.\"hello_py.spin\"]\ncall_timeout_ms = 800\n");
    let calls = root
        .run(&["hook", "hello_py.spin", "--payload", "spin", "--json"])
        .json();
    let error = calls[0]["error"].as_str().unwrap_or_default();
    assert!(
        calls[0]["kind"] == "timeout"
            && error
                .contains("was stopped after its 800ms deadline in HelloPy.mistake (app.py, line ")
            && !error.contains("[modhost]"),
        "{calls}"
    );
    // componentize-py's `Err` raised with a value that is not a str: said as Python shows
    // it, never a trap as the WIT's string error is lowered.
    let error = mistake("err");
    assert!(error.contains("42"), "{error}");
    // An async handler is refused: none of its code would run.
    let calls = root
        .run(&["hook", "hello_py.later", "--payload", "x", "--json"])
        .json();
    let error = calls[0]["error"].as_str().unwrap_or_default();
    assert!(
        calls[0]["kind"] == "failed"
            && error.contains(
                "TypeError: handler `hello_py_later` returned a coroutine: modhost does not \
                 wait for it, so none of its code ran"
            )
            && error.contains("— HelloPy.later (app.py, line "),
        "{calls}"
    );
    // Caught, they are ordinary exceptions; a handler name used twice is refused.
    let calls = root
        .ok(&["hook", "hello_py.caught", "--payload", "x", "--json"])
        .json();
    assert_eq!(
        calls[0]["output"],
        "TypeError: kv.set: `key` must be a str, not int (5)\n\
         HostError: no such table: nosuch (a module reaches only the tables its module.xml's <database> declares)\n\
         TypeError: Dup: methods `a` and `b` are both marked @handler('dup'); \
         a handler name may be used once\n\
         TypeError: at its line; a handler is called with (self, hook, payload); write \
         `def sig(self, hook: str, payload: str) -> str`\n\
         TypeError: at its line; modhost calls `upgrade` with (self, from_version); write \
         `def upgrade(self, from_version: str) -> None`\n\
         TypeError: at its line; modhost calls no method `instal`: did you mean `install`? \
         (name a helper otherwise)\n\
         MemoryError\n\
         RecursionError\n\
         socket.create_connection: no network\n\
         tempfile: kept a moment",
        "{calls}"
    );

    // An upgrade keeps the store and the rows, and the code (the same component: build.sh
    // keeps module.wasm while no source changed) is not compiled again. build.sh packs
    // under the version module.xml says.
    let xml = xml.replace("<version>0.1.0</version>", "<version>0.2.0</version>");
    assert!(std::fs::write(dir.join("module.xml"), xml).is_ok());
    let built = std::fs::read(dir.join("module.wasm")).unwrap_or_default();
    let stamp = || std::fs::read_to_string(dir.join(".module.wasm.inputs")).unwrap_or_default();
    let inputs = stamp();
    // Touched without a change (a checkout, an editor's save): kept, and not told as stale.
    let touched = std::fs::File::options()
        .append(true)
        .open(dir.join("app.py"))
        .and_then(|app| app.set_modified(std::time::SystemTime::now()));
    assert!(touched.is_ok(), "{touched:?}");
    let said = build(&dir, &[]);
    assert!(
        std::fs::read(dir.join("module.wasm")).is_ok_and(|again| again == built),
        "module.wasm was built again though no source changed"
    );
    assert!(
        said.contains("module.wasm is up to date") && !said.contains("is older than"),
        "{said}"
    );
    assert_eq!(stamp(), inputs);
    // The bindings the README's mypy recipe writes for a type checker are no source.
    let bindings = dir.join("bindings/module");
    assert!(
        std::fs::create_dir_all(&bindings)
            .and_then(|()| std::fs::write(bindings.join("__init__.py"), "x = 1\n"))
            .is_ok()
    );
    let said = build(&dir, &[]);
    assert!(said.contains("module.wasm is up to date"), "{said}");
    assert!(std::fs::remove_dir_all(dir.join("bindings")).is_ok());
    let v2 = dir.join("hello_py-0.2.0.tgz");
    // An upgrade() that raises fails the upgrade with its traceback, and changes nothing.
    let before = root.fingerprint();
    let run = root.fails(&["upgrade", arg(&v2)]);
    assert!(
        run.stderr.contains("ValueError: not from 0.1.0")
            && run.stderr.contains("app.py")
            && run.stderr.contains("in upgrade"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    root.ok(&["hook", "hello_py.rows", "--payload", "allow"]);
    let run = root.ok(&["upgrade", arg(&v2)]);
    assert!(!run.stderr.contains("Compiled"), "{}", run.stderr);
    let info = root.ok(&["info", "--json", "hello_py"]).json();
    assert_eq!(info["version"], "0.2.0", "{info}");
    assert_eq!(
        root.ok(&["kv", "--json", "hello_py"]).json()["greeting"],
        "Hello"
    );
    let rows = root
        .ok(&["rows", "--json", "hello_py", "hello_py_greetings"])
        .json();
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(2), "{rows}");
    root.ok(&["uninstall", "hello_py"]);
    assert!(
        root.ok(&["list", "--json"])
            .json()
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // A source changed (the SDK's, here) is built again.
    let sdk = dir.join("sdk/modhost_sdk/__init__.py");
    let edited = std::fs::read_to_string(&sdk).unwrap_or_default() + "\n# edited\n";
    assert!(std::fs::write(&sdk, edited).is_ok());
    build(&dir, &[]);
    assert_ne!(stamp(), inputs, "the changed SDK was not built again");
}

/// Handlers making the mistakes a new Python author makes, added to the template's app.py.
const MISTAKES: &str = r#"
    @handler("hello_py_mistake")
    def mistake(self, hook: str, payload: str) -> str:
        if payload == "dict":
            return {"a": 1}  # type: ignore[return-value]
        elif payload == "spin":
            while True:
                pass
        elif payload == "kv":
            kv.set("k", 5)  # type: ignore[arg-type]
        elif payload == "log":
            log.info(12345, n=5, none=None)  # type: ignore[arg-type]
        elif payload == "db":
            db.execute("INSERT INTO hello_py_greetings (who) VALUES (?1)", 2**64)
        elif payload == "host":
            db.execute("INSERT INTO nosuch VALUES (1)")
        elif payload == "lazy":
            import decimal
            return str(decimal.Decimal("1.5"))
        elif payload == "badstr":
            class ApiError(Exception):
                def __str__(self) -> str:
                    return self.reason  # type: ignore[attr-defined]
            raise ApiError()
        elif payload == "long":
            raise ValueError("unexpected rows: " + "x" * 20000)
        elif payload == "chain":
            try:
                int("x")
            except ValueError as cause:
                raise RuntimeError("could not parse") from cause
        elif payload == "field":
            log.info("a field called message", message="fine")
        elif payload == "surrogate":
            return b"caller \xff".decode("utf-8", "surrogateescape")
        elif payload == "kvsurrogate":
            kv.set("k", "\udc80")
        elif payload == "err":
            from componentize_py_types import Err
            raise Err(42)
        elif payload == "handled":
            # Refused at the cap, handled, and a failure of another kind after.
            try:
                bytearray(1 << 30)
            except MemoryError:
                pass
            raise ValueError("no rows to read")
        payload += "; and forgot to return it"

    @handler("hello_py_later")  # type: ignore[arg-type]
    async def later(self, hook: str, payload: str) -> str:
        return payload

    @handler("hello_py_caught")
    def caught(self, hook: str, payload: str) -> str:
        seen = []
        log.info("fields become text", n=5, none=None, raw=b"x")
        try:
            kv.set(5, "v")  # type: ignore[arg-type]
        except TypeError as error:
            seen.append(f"TypeError: {error}")
        try:
            db.query("SELECT * FROM nosuch")
        except HostError as error:
            seen.append(f"HostError: {error.message}")
        try:
            class Dup(Module):
                @handler("dup")
                def a(self, hook: str, payload: str) -> str:
                    return "a"

                @handler("dup")
                def b(self, hook: str, payload: str) -> str:
                    return "b"
        except TypeError as error:
            seen.append(f"TypeError: {error}")
        # A handler that cannot take (hook, payload) is refused with the class, at its line.
        try:
            class Sig(Module):
                @handler("sig")
                def sig(self, payload: str) -> str:
                    return payload
        except TypeError as error:
            said = str(error)
            at = "at its line; " if "Sig.sig (app.py, line " in said else ""
            seen.append(f"TypeError: {at}{said[said.find('a handler is called'):]}")
        # So is a lifecycle method that cannot take what modhost gives it.
        try:
            class Life(Module):
                def upgrade(self) -> None:  # type: ignore[override]
                    pass
        except TypeError as error:
            said = str(error)
            at = "at its line; " if "Life.upgrade (app.py, line " in said else ""
            seen.append(f"TypeError: {at}{said[said.find('modhost calls'):]}")
        # A lifecycle method misspelled would never run: refused, naming the one meant.
        try:
            class Typo(Module):
                def instal(self) -> None:
                    pass
        except TypeError as error:
            said = str(error)
            at = "at its line; " if "Typo.instal (app.py, line " in said else ""
            seen.append(f"TypeError: {at}{said[said.find('modhost calls'):]}")
        # Past the memory cap, an allocation fails as Python's do: a MemoryError to catch.
        try:
            bytearray(1 << 30)
        except MemoryError:
            seen.append("MemoryError")
        # Recursion through C (here __getattr__) meets Python's own limit first.
        class Deep:
            def __getattr__(self, name: str) -> str:
                return str(getattr(self, name + "x"))
        try:
            Deep().a
        except RecursionError:
            seen.append("RecursionError")
        # The network is refused, saying so, however it is reached.
        import socket
        try:
            socket.create_connection(("127.0.0.1", 80))
        except PermissionError as error:
            seen.append(str(error).split(": modhost modules have no network")[0] + ": no network")
        # A temporary file is made where a module may write.
        with tempfile.TemporaryFile() as scratch:
            scratch.write(b"kept a moment")
            scratch.seek(0)
            seen.append("tempfile: " + scratch.read().decode())
        # A message, or a log field, with a lone surrogate is sent escaped.
        log.info("escaped", raw=b"\xff".decode("utf-8", "surrogateescape"))
        return "\n".join(seen)


Lifecycle, Hooks"#;

/// Whether componentize-js is on PATH; the suite's script puts it there and asks for it.
fn componentize_js() -> bool {
    let found = Command::new("componentize-js")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).trim() == modhost::COMPONENTIZE_JS_VERSION
        });
    if !found && std::env::var_os("MODHOST_REQUIRE_JS").is_some() {
        panic!(
            "componentize-js {} is not on PATH (scripts/componentize-js.sh installs it)",
            modhost::COMPONENTIZE_JS_VERSION
        );
    }
    found
}

/// An `upgrade` that is `async` when armed (through `hello_js.arm`), as an author may write
/// a migration.
const JS_UPGRADE: &str = "  upgrade(fromVersion) {
    if (kv.get('async_upgrade') === 'yes') return (async () => kv.set('migrated', 'never'))();
  },

  // Named as module.xml";

/// Handlers making the mistakes a new JavaScript author makes, added to the template's
/// app.js, and one throwing from deeper in the author's code.
const JS_HANDLERS: &str = r#"
    hello_js_boom(hook, payload) {
      return deeper(payload);
    },

    hello_js_mistake(hook, payload) {
      if (payload === 'object') return { a: 1 };
      if (payload === 'spin') for (;;) {}
      if (payload === 'fetch') fetch('https://example.com/');
      if (payload === 'cause') throw new Error('outer', { cause: new RangeError('inner') });
      if (payload === 'thrown') throw { code: 7, why: 'an object' };
      if (payload === 'kv') kv.set('k', 5);
      if (payload === 'db') db.execute('INSERT INTO hello_js_greetings (who) VALUES (?1)', 2n ** 64n);
      if (payload === 'host') db.execute('INSERT INTO nosuch VALUES (1)');
      if (payload === 'nan') db.execute('INSERT INTO hello_js_greetings (who) VALUES (?1)', NaN);
      if (payload === 'surrogate') kv.set('k\uD800', 'v');
      if (payload === 'lone') return 'a\uDC00b';
      if (payload === 'getter') {
        class ApiError extends Error {
          get message() { throw new Error('no message'); }
        }
        throw new ApiError();
      }
      if (payload === 'cycle') {
        const error = new Error('round');
        error.cause = error;
        throw error;
      }
      if (payload === 'hungry') {
        const kept = [];
        for (;;) kept.push(new Array(1e6).fill(kept.length));
      }
      if (payload === 'recurse') {
        const down = (n) => down(n + 1) + 1;
        down(0);
      }
      payload += '; and forgot to return it';
    },

    async hello_js_later(hook, payload) {
      throw new Error('after an await, which modhost would never see');
    },

    hello_js_arm(hook, payload) {
      kv.set('async_upgrade', payload);
      return payload;
    },

    hello_js_caught(hook, payload) {
      const seen = [];
      log.info('fields', { when: new Date(0), list: [1, 2], big: 2n ** 70n });
      seen.push(JSON.stringify(db.query('SELECT ?1 AS r, ?2 AS i', 1e20, 2 ** 40)));
      // Whole numbers past 2^53 are integers still, as exact as JavaScript holds them.
      const [{ t, n }] = db.query('SELECT typeof(?1) AS t, ?1 AS n', 2 ** 60);
      seen.push(`${t} ${typeof n} ${n}`);
      try {
        kv.set(5, 'v');
      } catch (error) {
        seen.push(`${error.name}: ${error.message}`);
      }
      try {
        db.query('SELECT * FROM nosuch');
      } catch (error) {
        seen.push(`${error instanceof HostError}: ${error.message}`);
      }
      // A blob read back binds again as it came.
      const [{ b }] = db.query('SELECT ?1 AS b', new Uint8Array([1, 2, 255]));
      seen.push(JSON.stringify(db.query('SELECT hex(?1) AS h', b)));
      const rows = db.query('SELECT id, who FROM hello_js_greetings ORDER BY id');
      seen.push(JSON.stringify(rows));
      return seen.join('\n');
    },
  },
});

function deeper(payload) {
  throw new TypeError(`not a number: ${payload}`);
}
"#;

#[test]
fn a_javascript_module_installs_runs_upgrades_and_fails_with_its_stack() {
    if !componentize_js() {
        eprintln!(
            "skipped: componentize-js {} is not on PATH (run scripts/test)",
            modhost::COMPONENTIZE_JS_VERSION
        );
        return;
    }
    let root = root();
    let dir = new(&root, "hello_js", "js");
    let app = std::fs::read_to_string(dir.join("app.js")).unwrap_or_default();
    let app = app
        .replace("\n  },\n});\n", JS_HANDLERS)
        .replace("  // Named as module.xml", JS_UPGRADE)
        .replace(
            "import { defineModule,",
            "import { HostError, defineModule,",
        );
    assert!(std::fs::write(dir.join("app.js"), app).is_ok());
    let xml = std::fs::read_to_string(dir.join("module.xml")).unwrap_or_default();
    let xml = xml.replace(
        "</methods>",
        "\t<hello_js.boom>hello_js_boom</hello_js.boom>\n\t\
         <hello_js.mistake>hello_js_mistake</hello_js.mistake>\n\t\
         <hello_js.spin>hello_js_mistake</hello_js.spin>\n\t\
         <hello_js.caught>hello_js_caught</hello_js.caught>\n\t\
         <hello_js.later>hello_js_later</hello_js.later>\n\t\
         <hello_js.arm>hello_js_arm</hello_js.arm>\n\t</methods>",
    );
    assert!(std::fs::write(dir.join("module.xml"), &xml).is_ok());
    build(&dir, &[]);
    hello_round_trip(&root, &dir.join("hello_js-0.1.0.tgz"), "hello_js");

    // What the author's code throws fails the call with the author's frames: never a trap.
    let call = |hook: &str, payload: &str| {
        let calls = root
            .run(&[
                "hook",
                &format!("hello_js.{hook}"),
                "--payload",
                payload,
                "--json",
            ])
            .json();
        (
            calls[0]["kind"].as_str().unwrap_or_default().to_owned(),
            calls[0]["error"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // A loop stopped at its deadline is said to be in the author's handler.
    root.configure("[hooks.\"hello_js.spin\"]\ncall_timeout_ms = 800\n");
    let (kind, error) = call("spin", "spin");
    assert!(
        kind == "timeout"
            && error.contains("was stopped after its 800ms deadline in handlers.hello_js_mistake")
            && !error.contains("[modhost]"),
        "{kind}: {error}"
    );
    let (kind, error) = call("boom", "x");
    assert_eq!(kind, "failed", "{error}");
    assert!(
        error.contains("failed: TypeError: not a number: x\ndeeper@app.js:")
            && error.contains("hello_js_boom@app.js:")
            && !error.contains("initializer.js")
            && !error.contains("modhost_sdk.js"),
        "{error}"
    );
    for (payload, expected) in [
        (
            "none",
            "handler `hello_js_mistake` returned undefined: return a string (did it forget `return`?)",
        ),
        (
            "object",
            "handler `hello_js_mistake` returned an object: return a string (JSON.stringify structured data)",
        ),
        (
            "kv",
            "TypeError: kv.set: `value` must be a string, not a number",
        ),
        (
            "db",
            "RangeError: db: parameter ?1 = 18446744073709551616 does not fit SQLite's 64-bit integers",
        ),
        (
            "host",
            "HostError: no such table: nosuch (a module reaches only the tables its module.xml's <database> declares)\nhello_js_mistake@app.js:",
        ),
        (
            "nan",
            "RangeError: db: parameter ?1 is NaN, which SQLite stores as NULL: bind null if \
             that is meant",
        ),
        (
            "surrogate",
            "TypeError: kv.set: `key` holds a lone surrogate (\\ud800) at index 1, which is \
             no Unicode text",
        ),
        (
            "lone",
            "TypeError: handler `hello_js_mistake`'s result holds a lone surrogate (\\udc00) \
             at index 1, which is no Unicode text",
        ),
        ("fetch", "TypeError: fetch: modhost modules have no network"),
        ("cause", "Error: outer\nhello_js_mistake@app.js:"),
        (
            "thrown",
            "threw an object, not an Error (throw an Error to see where): \
             {\"code\":7,\"why\":\"an object\"}",
        ),
        // A message getter that throws, a cause that is the error itself: still errors.
        (
            "getter",
            "Error: (its message cannot be read)\nApiError@app.js:",
        ),
        ("cycle", "Error: round\nhello_js_mistake@app.js:"),
        // The engine out of memory at the module's cap: said so, not blamed on a throw.
        (
            "hungry",
            "ran out of memory (its memory reached its cap of ",
        ),
    ] {
        let (kind, error) = call("mistake", payload);
        // Out of memory at its cap is the cap's doing, whoever says it: its own kind,
        // for which `hook` says which limit to raise.
        let expected_kind = match payload {
            "hungry" => "out-of-memory",
            _ => "failed",
        };
        assert_eq!(kind, expected_kind, "{payload}: {error}");
        assert!(
            error.contains(&format!("failed: {expected}")),
            "{payload}: {error}"
        );
    }
    // A runaway recursion's frames are said once, with how often they came.
    let (kind, error) = call("mistake", "recurse");
    assert!(
        kind == "failed"
            && error.contains("recursion")
            && error.contains("more times]")
            && error.lines().count() < 20,
        "{error}"
    );
    let (_, error) = call("mistake", "cause");
    assert!(
        error.contains("\nCaused by: RangeError: inner\n"),
        "{error}"
    );
    // An async handler is refused: modhost would never see what it does after an await.
    let (kind, error) = call("later", "x");
    assert_eq!(kind, "failed", "{error}");
    assert!(
        error.contains(
            "handler `hello_js_later` returned a Promise: modhost does not wait for it: make it \
             synchronous, without async/await"
        ),
        "{error}"
    );
    // Caught, they are ordinary exceptions; rows come back as objects.
    let calls = root
        .ok(&["hook", "hello_js.caught", "--payload", "x", "--json"])
        .json();
    assert_eq!(
        calls[0]["output"],
        "[{\"r\":100000000000000000000,\"i\":1099511627776}]\n\
         integer bigint 1152921504606846976\n\
         TypeError: kv.set: `key` must be a string, not a number\n\
         true: no such table: nosuch (a module reaches only the tables its module.xml's <database> declares)\n\
         [{\"h\":\"0102FF\"}]\n\
         [{\"id\":1,\"who\":\"world\"}]",
        "{calls}"
    );

    // An async migration is refused, and the upgrade undone; a synchronous one keeps the
    // store and the rows.
    let xml = xml.replace("<version>0.1.0</version>", "<version>0.2.0</version>");
    assert!(std::fs::write(dir.join("module.xml"), xml).is_ok());
    root.ok(&["pack", arg(&dir), "--out", arg(&dir)]);
    let v2 = dir.join("hello_js-0.2.0.tgz");
    root.ok(&["hook", "hello_js.arm", "--payload", "yes"]);
    let refused = root.fails(&["upgrade", arg(&v2)]);
    assert!(
        refused
            .stderr
            .contains("upgrade() returned a Promise: modhost does not wait for it"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        root.ok(&["info", "--json", "hello_js"]).json()["version"],
        "0.1.0"
    );
    root.ok(&["hook", "hello_js.arm", "--payload", "no"]);
    root.ok(&["upgrade", arg(&v2)]);
    let info = root.ok(&["info", "--json", "hello_js"]).json();
    assert_eq!(info["version"], "0.2.0", "{info}");
    assert_eq!(
        root.ok(&["kv", "--json", "hello_js"]).json()["greeting"],
        "Hello"
    );
    root.ok(&["uninstall", "hello_js"]);
}

#[test]
fn a_build_script_without_modhost_to_pack_with_says_so_before_building() {
    let root = root();
    for lang in ["rust", "python", "js"] {
        let dir = new(&root, "nopath", lang);
        let run = run_build(&dir, &[("MODHOST", "/nowhere/modhost".as_ref())]);
        assert!(
            !run.success
                && run
                    .stderr
                    .contains("build.sh: `/nowhere/modhost` is not on PATH")
                && run.stderr.contains("set MODHOST=/path/to/modhost"),
            "{lang}: {}",
            run.stderr
        );
        assert!(!dir.join("module.wasm").exists(), "{lang}: built anyway");
    }
}

/// `app`'s source in `dir` without the `broken` text appended to it.
fn source_again(dir: &Path, app: &str, broken: &str) -> String {
    let source = std::fs::read_to_string(dir.join(app)).unwrap_or_default();
    source
        .strip_suffix(broken)
        .map_or(source.clone(), str::to_owned)
}

#[test]
fn a_syntax_error_is_said_with_its_line_before_anything_is_built() {
    let root = root();
    let cases = [
        (
            "python",
            "app.py",
            "\ndef broken(:\n",
            "SyntaxError",
            componentize_py(),
        ),
        (
            "js",
            "app.js",
            "\nconst = 1;\n",
            "SyntaxError",
            componentize_js(),
        ),
    ];
    for (lang, app, broken, said, tool) in cases {
        if !tool {
            eprintln!("skipped {lang}: its componentize tool is not on PATH");
            continue;
        }
        let dir = new(&root, "typo", lang);
        let source = std::fs::read_to_string(dir.join(app)).unwrap_or_default();
        let lines = source.lines().count();
        assert!(std::fs::write(dir.join(app), source + broken).is_ok());
        let run = run_build(&dir, &[]);
        assert!(
            !run.success
                && run.stderr.contains(said)
                && run.stderr.contains(app)
                && run.stderr.contains(&format!("{}", lines + 2))
                && run.stderr.lines().count() < 12,
            "{lang}: {}",
            run.stderr
        );
        assert!(!dir.join("module.wasm").exists(), "{lang}: built anyway");
        // The host called from the top level, which runs at build time: said as that,
        // naming the call, not as the tool's wasm backtrace.
        let top_level = match lang {
            "python" => "\nkv.get('x')\n",
            _ => "\nkv.get('x');\n",
        };
        let called = source_again(&dir, app, broken) + top_level;
        assert!(std::fs::write(dir.join(app), called).is_ok());
        let run = run_build(&dir, &[]);
        assert!(
            !run.success
                && run.stderr.contains(&format!(
                    "build.sh: {app} calls the host (modhost:module/kv@0.1.0#get) from its top level"
                ))
                && !run.stderr.contains("wasm backtrace"),
            "{lang}: {}",
            run.stderr
        );
        assert!(std::fs::write(dir.join(app), source_again(&dir, app, top_level)).is_ok());
        if lang == "js" {
            // What componentize-js says of a file it calls source.js, and of a package it
            // cannot follow, said of app.js, with what to write.
            let source = source_again(&dir, app, top_level);
            let unexported = source.replacen(
                "export const { lifecycle, hooks }",
                "const { lifecycle, hooks }",
                1,
            );
            let package = format!("import leftPad from 'left-pad';\n{source}");
            // A key misspelled, whose handlers would never run: refused at build time.
            let misspelled = source.replacen("  handlers: {", "  handler: {", 1);
            for (changed, said) in [
                (
                    misspelled,
                    "defineModule: `handler` is not something modhost reads: did you mean \
                     `handlers`?",
                ),
                (
                    unexported,
                    "build.sh: app.js must export `lifecycle` and `hooks`",
                ),
                (
                    package,
                    "build.sh: app.js imports `left-pad`, a package: componentize-js follows only relative imports",
                ),
            ] {
                assert!(changed != source && std::fs::write(dir.join(app), changed).is_ok());
                let run = run_build(&dir, &[]);
                assert!(
                    !run.success && run.stderr.contains(said) && !run.stderr.contains("source.js"),
                    "{}",
                    run.stderr
                );
            }
            assert!(std::fs::write(dir.join(app), source).is_ok());
        }
        if lang == "python" {
            // Syntax the bundled CPython (3.14) takes and an older python3 here refuses
            // (PEP 758): built, whichever Python checked it first.
            let newer = "\ndef both() -> None:\n    try:\n        pass\n    \
                         except ValueError, KeyError:\n        pass\n";
            assert!(std::fs::write(dir.join(app), source_again(&dir, app, broken) + newer).is_ok());
            build(&dir, &[]);
            assert!(dir.join("module.wasm").exists());
            // A top level that fails as componentize-py runs it: Python's traceback alone,
            // naming app.py as the author knows it (not where the tool mounted it, `/0/`).
            let source = source_again(&dir, app, newer);
            let lines = source.lines().count();
            let missing = "\nimport nosuchthing\n";
            assert!(std::fs::write(dir.join(app), source.clone() + missing).is_ok());
            let run = run_build(&dir, &[]);
            assert!(
                !run.success
                    && run.stderr.contains(&format!(
                        "Traceback (most recent call last):\n  File \"app.py\", line {}, in <module>",
                        lines + 2
                    ))
                    && run.stderr.contains("No module named 'nosuchthing'")
                    && run.stderr.contains(
                        "build.sh: `nosuchthing` is in neither app.py's directory, sdk/ nor \
                         deps/: a pure-Python package from PyPI goes in deps/ (`python3 -m pip \
                         install --target deps nosuchthing`"
                    )
                    && !run.stderr.contains("/0/")
                    && !run.stderr.contains("AssertionError"),
                "{}",
                run.stderr
            );
            // In deps/, as pip puts a pure-Python package there, it is built in.
            let lib = dir.join("deps/nosuchthing");
            assert!(std::fs::create_dir_all(&lib).is_ok());
            assert!(std::fs::write(lib.join("__init__.py"), "GREETING = 'hi'\n").is_ok());
            let run = run_build(&dir, &[]);
            assert!(run.success, "{}", run.stderr);
            // `@handler` without its name: said with what to write.
            let bare = source.replacen("@handler(\"typo_hello\")", "@handler", 1);
            assert!(bare != source && std::fs::write(dir.join(app), bare).is_ok());
            let run = run_build(&dir, &[]);
            assert!(
                !run.success
                    && run.stderr.contains(
                        "@handler needs the handler's name, as module.xml's <methods> or \
                         <hooks> names it: write @handler(\"NAME\") above `def hello`"
                    ),
                "{}",
                run.stderr
            );
            assert!(std::fs::write(dir.join(app), source).is_ok());
            // Exported under other names: componentize-py's words, then what to write,
            // without its own Rust backtrace.
            let source = std::fs::read_to_string(dir.join(app)).unwrap_or_default();
            let renamed = source.replace("Lifecycle, Hooks = ", "Life, Hook = ");
            assert!(renamed != source && std::fs::write(dir.join(app), renamed).is_ok());
            let run = run_build(&dir, &[("RUST_BACKTRACE", "1".as_ref())]);
            assert!(
                !run.success
                    && run
                        .stderr
                        .contains("end it with `Lifecycle, Hooks = YourModule.exports()`")
                    && !run.stderr.contains("stack backtrace"),
                "{}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_javascript_module_builds_with_the_tool_its_package_json_pins_when_none_is_on_path() {
    if !componentize_js() {
        eprintln!("skipped: componentize-js is not on PATH (run scripts/test)");
        return;
    }
    let root = root();
    let dir = new(&root, "pinned_js", "js");
    // PATH as a new author's: node and npm, and no componentize-js anywhere on it.
    let path = std::env::var("PATH").unwrap_or_default();
    let path: Vec<&str> = path
        .split(':')
        .filter(|p| !Path::new(p).join("componentize-js").exists())
        .collect();
    let stderr = build(&dir, &[("PATH", PathBuf::from(path.join(":")))]);
    assert!(
        dir.join("node_modules/.bin/componentize-js").exists(),
        "npm did not install the pinned tool: {stderr}"
    );
    assert!(dir.join("pinned_js-0.1.0.tgz").is_file(), "{stderr}");
}

#[test]
fn a_module_written_where_the_command_runs_is_built_without_changing_directory() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut here = root.command(&["new", "here", "--lang", "rust", "--dir", "."]);
    here.current_dir(dir.path());
    let run = Root::output(&mut here);
    assert!(
        run.success && run.stdout.contains("Next:\n  ./build.sh\n") && !run.stdout.contains("cd "),
        "{}",
        run.stdout
    );
    // Elsewhere, the step to get there comes first.
    let run = root.ok(&[
        "new",
        "there",
        "--lang",
        "rust",
        "--dir",
        arg(&dir.path().join("there")),
    ]);
    assert!(run.stdout.contains("Next:\n  cd "), "{}", run.stdout);
}
