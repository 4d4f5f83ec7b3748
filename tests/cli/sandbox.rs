//! Hooks in priority order, `reload`, and a sandbox that contains a hostile module.

use std::path::{Path, PathBuf};

use modhost_test_support::{Root, arg, compiled_artifacts, component, package, package_at};
use serde_json::Value;

use crate::root;

/// Short limits. The flood's 100 000 host calls must finish even on a slow, loaded machine:
/// the test is about the log bound, not the deadline.
const LIMITS: &str = "[limits]\ncall_timeout_ms = 1000\nmax_memory_mb = 32\n\n\
                      [hooks.spin]\ncall_timeout_ms = 300\n\n\
                      [hooks.sleep]\ncall_timeout_ms = 300\n\n\
                      [hooks.flood]\ncall_timeout_ms = 120000\n";

/// core, voicemail and phonebook 1.0.0, with short limits; `hostile` too if asked.
fn pbx(hostile: bool) -> Root {
    let root = root();
    root.configure(LIMITS);
    let mut install = vec![
        arg(&package("core")).to_owned(),
        arg(&package("voicemail")).to_owned(),
        arg(&package_at("phonebook", "1.0.0")).to_owned(),
    ];
    if hostile {
        install.push(arg(&package("hostile")).to_owned());
    }
    let mut args = vec!["install"];
    args.extend(install.iter().map(String::as_str));
    root.ok(&args);
    root
}

fn hook(root: &Root, name: &str, payload: &str) -> Vec<Value> {
    let run = root.run(&["hook", name, "--payload", payload, "--json"]);
    run.json().as_array().cloned().unwrap_or_default()
}

fn error_of(calls: &[Value], rawname: &str) -> String {
    calls
        .iter()
        .find(|c| c["rawname"] == rawname)
        .and_then(|c| c["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn reload_runs_get_config_in_priority_order_and_is_byte_identical_across_runs() {
    let root = pbx(false);
    let run = root.ok(&["reload"]);
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("get_config"))
        .collect();
    assert_eq!(
        order,
        [
            "get_config  pri  100  phonebook",
            "get_config  pri  480  core",
            "get_config  pri  500  voicemail"
        ]
    );
    let conf = root.path().join("etc/extensions_modhost.conf");
    let first = std::fs::read_to_string(&conf).unwrap_or_default();
    let phonebook =
        first.find("[phonebook-lookup]\nexten => 2025550100,1,Set(CALLERID(name)=Alice Example)");
    let core = first.find("[from-internal]");
    let voicemail = first.find("[voicemail]");
    assert!(
        phonebook < core && core < voicemail && phonebook.is_some(),
        "sections in priority order:\n{first}"
    );
    assert!(
        first.contains("exten => 100,1,Dial(PJSIP/100)")
            && first.contains("exten => *101,1,VoiceMail(101@default)")
    );
    // In JSON, each handler is an object naming its module, handler and priority.
    let json = root.ok(&["reload", "--json"]).json();
    assert_eq!(
        json["handlers"][0],
        serde_json::json!({"rawname": "phonebook", "handler": "phonebook_get_config", "priority": 100}),
        "{json}"
    );
    assert_eq!(json["handlers"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap_or_default(),
        first,
        "byte-identical"
    );
    // A change leaves the configuration to the next reload, and says so.
    let run = root.ok(&["disable", "voicemail"]);
    assert!(
        run.stderr.contains(
            "still holds what the modules built before this change: `modhost reload` rebuilds it"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap_or_default(), first);
    root.ok(&["reload"]);
    assert!(
        !std::fs::read_to_string(&conf)
            .unwrap_or_default()
            .contains("[voicemail]")
    );
}

#[test]
fn a_fail_closed_pipeline_stops_at_the_first_failure_and_reload_writes_nothing() {
    let root = pbx(false);
    root.ok(&["reload"]);
    let conf = root.path().join("etc/extensions_modhost.conf");
    let before = std::fs::read(&conf).unwrap_or_default();
    root.ok(&["install", arg(&package("hostile"))]);
    let run = root.fails(&["reload"]);
    assert!(
        run.stderr.contains(
            "nothing was written: get_config handler `crash` (priority 490) failed: module `hostile` 0.1.0"
        ),
        "{}",
        run.stderr
    );
    let failed = root.fails(&["reload", "--json"]).json();
    assert_eq!(
        (&failed["call"]["rawname"], &failed["call"]["kind"]),
        (&Value::from("hostile"), &Value::from("trap")),
        "{failed}"
    );
    // get_config builds one file: it cannot be made fail-open or a broadcast.
    root.configure(&format!(
        "{LIMITS}\n[hooks.get_config]\non_error = \"continue\"\n"
    ));
    let run = root.fails(&["reload"]);
    assert!(
        run.stderr
            .contains("get_config is always a fail-closed pipeline"),
        "{}",
        run.stderr
    );
    root.configure(LIMITS);
    assert_eq!(
        std::fs::read(&conf).unwrap_or_default(),
        before,
        "the old configuration is intact"
    );

    let calls = hook(&root, "get_config", "");
    let ran: Vec<&str> = calls.iter().filter_map(|c| c["rawname"].as_str()).collect();
    assert_eq!(
        ran,
        ["phonebook", "core", "hostile"],
        "voicemail never ran after the failure"
    );
    let calls: Vec<Value> = root
        .fails(&[
            "hook",
            "get_config",
            "--shape",
            "broadcast",
            "--on-error",
            "continue",
            "--json",
        ])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default();
    let outcomes: Vec<(&str, bool)> = calls
        .iter()
        .map(|c| (c["rawname"].as_str().unwrap_or(""), c["ok"] == true))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("phonebook", true),
            ("core", true),
            ("hostile", false),
            ("voicemail", true)
        ]
    );
    assert_eq!(
        calls[3]["output"],
        "[voicemail]\nexten => *100,1,VoiceMail(100@default)\nexten => *101,1,VoiceMail(101@default)\n",
        "broadcast: same payload for all"
    );
}

#[test]
fn every_hostile_behaviour_is_contained_and_the_host_carries_on() {
    let root = pbx(true);
    let before = root.fingerprint();
    let cases = [
        ("spin", "was stopped after its 300ms deadline"),
        ("sleep", "was stopped after its 300ms deadline"),
        ("grow", "trapped: out of memory at its memory cap of 32 MiB"),
        ("recurse", "ran out of stack (deep or endless recursion)"),
        ("crash", "hostile module crashed on purpose"),
    ];
    for (hook_name, expected) in cases {
        let started = std::time::Instant::now();
        let calls = hook(&root, hook_name, "");
        // A whole run of the binary on a loaded machine, against a guest asleep for a day.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{hook_name}: took {:?}",
            started.elapsed()
        );
        let error = error_of(&calls, "hostile");
        assert!(
            error.contains(expected),
            "{hook_name}: expected `{expected}` in: {error}"
        );
        assert!(
            error.contains("module `hostile` 0.1.0"),
            "{hook_name}: names the module and version: {error}"
        );
        assert!(
            error.contains(&format!("handler `{hook_name}` for hook `{hook_name}`")),
            "{hook_name}: names the call: {error}"
        );
        assert_eq!(root.fingerprint(), before, "{hook_name}: state unchanged");
        let lookup = hook(&root, "lookup", "2025550100");
        assert_eq!(
            lookup[0]["output"], "Alice Example",
            "{hook_name}: other modules keep working"
        );
        assert_eq!(
            lookup[1]["output"], "2025550100",
            "{hook_name}: and so does the hostile one"
        );
    }
    // Stopped at its deadline in its own code, it is told where: its frames, as a trap's.
    let spin = error_of(&hook(&root, "spin", ""), "hostile");
    assert!(
        spin.contains("guest stderr:")
            && spin.contains("spinning on")
            && spin.contains("wasm backtrace (")
            && spin.contains("modhost_guest_hostile"),
        "{spin}"
    );
    // Recursing, its repeated frame is said once with how often, not eight times over.
    let recurse = error_of(&hook(&root, "recurse", ""), "hostile");
    assert!(
        recurse.contains("(the frame above ") && recurse.contains(" more times)"),
        "{recurse}"
    );
    // Asleep, where it slept.
    let sleep = error_of(&hook(&root, "sleep", ""), "hostile");
    assert!(
        sleep.contains("clock_nanosleep")
            && sleep.contains("Hostile as modhost_sdk::Module>::handle"),
        "{sleep}"
    );
    let recurse = hook(&root, "recurse", "");
    let hostile = recurse.iter().find(|c| c["rawname"] == "hostile");
    assert_eq!(
        hostile.map(|c| &c["kind"]),
        Some(&serde_json::json!("stack-overflow")),
        "{recurse:?}"
    );
    assert!(
        error_of(&recurse, "hostile").contains("modhost_guest_hostile::recurse"),
        "with the guest backtrace"
    );
    let crash = error_of(&hook(&root, "crash", ""), "hostile");
    assert!(
        crash.contains("wasm backtrace"),
        "a trap carries the guest backtrace: {crash}"
    );
    assert!(crash.contains("hostile"), "{crash}");
}

#[test]
fn a_trap_shows_the_guests_stderr_first_then_the_authors_own_frames() {
    let root = pbx(true);
    let crash = error_of(&hook(&root, "crash", ""), "hostile");
    let panic = crash.find("hostile module crashed on purpose");
    let trace = crash.find("wasm backtrace");
    assert!(
        panic.is_some() && trace.is_some() && panic < trace,
        "the panic message comes before the backtrace: {crash}"
    );
    assert!(
        crash.contains("panicked at tests/guests/hostile/src/lib.rs:"),
        "it points at the author's file and line: {crash}"
    );
    assert!(
        !crash.contains("RUST_BACKTRACE"),
        "no advice a sandboxed module cannot follow: {crash}"
    );
    assert!(
        crash.contains("<modhost_guest_hostile::Hostile as modhost_sdk::Module>::handle"),
        "the author's frame, demangled: {crash}"
    );
    assert!(
        !crash.contains("std::panicking") && !crash.contains("_RN"),
        "Rust's own frames are left out, nothing is left mangled: {crash}"
    );
    assert!(
        crash.contains("the language runtime's and the bindings' left out"),
        "says frames were left out: {crash}"
    );

    // The whole backtrace is in the log at debug level: the module's, never the host's
    // own Rust stack, even where Rust developers ask for backtraces.
    let mut run = root.command(&["hook", "crash"]);
    run.env("MODHOST_LOG", "modhost::module=debug")
        .env("RUST_BACKTRACE", "1");
    let run = Root::output(&mut run);
    assert!(
        run.stderr.contains("rust_panic") && !run.stderr.contains("modhost_runtime::"),
        "{}",
        run.stderr
    );

    // What a call that succeeds writes to stderr reaches the log at debug level.
    let mut run = root.command(&["hook", "warn", "--payload", "disk nearly full"]);
    run.env("MODHOST_LOG", "modhost::module=debug");
    let run = Root::output(&mut run);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("careful: disk nearly full") && run.stderr.contains("module=hostile"),
        "{}",
        run.stderr
    );
    let quiet = root.run(&["hook", "warn", "--payload", "disk nearly full"]);
    assert!(
        !quiet.stderr.contains("careful"),
        "not at the default level: {}",
        quiet.stderr
    );
}

#[test]
fn limits_configured_for_a_hook_point_are_the_ones_enforced() {
    let root = pbx(true);
    let output = |calls: &[Value]| calls[0]["output"].as_str().unwrap_or_default().to_owned();
    assert_eq!(output(&hook(&root, "grow", "12")), "held 12 MiB");
    assert_eq!(output(&hook(&root, "bloat", "ok:2048")).len(), 2048);
    assert_eq!(
        output(&hook(&root, "hoard", "100")),
        "holding 100 more descriptors"
    );

    root.configure(&format!(
        "{LIMITS}\n[hooks.grow]\nmax_memory_mb = 8\n\n[hooks.bloat]\nmax_output_kb = 1\n\n\
         [hooks.hoard]\nmax_resources = 32\n\n[hooks.remember]\nmax_kv_value_kb = 1\n\n\
         [hooks.loopback]\nmax_fire_depth = 2\n"
    ));
    let big = "x".repeat(2048);
    let cases = [
        (
            "grow",
            "12",
            "trapped: out of memory at its memory cap of 8 MiB",
        ),
        (
            "bloat",
            "ok:2048",
            "returned 2048 bytes, over the output limit of 1024 bytes",
        ),
        ("hoard", "100", "holding its limit of 32 open files"),
        (
            "remember",
            big.as_str(),
            "failed: value is 2048 bytes; the limit is 1024",
        ),
    ];
    for (hook_name, payload, expected) in cases {
        let calls = hook(&root, hook_name, payload);
        let error = error_of(&calls, "hostile");
        assert!(error.contains(expected), "{hook_name}: {error}");
    }
    let calls = hook(&root, "loopback", "0");
    let output = calls[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(
            "stopped at depth 2: hook `loopback` fired by `hostile` would nest deeper than 2 \
             levels"
        ),
        "{output}"
    );
    // A limit met is named by the setting that raises it.
    let run = root.fails(&["hook", "bloat", "--payload", "ok:2048"]);
    assert!(
        run.stderr.contains(
            "help: raise `max_output_kb` in the root's modhost.toml, under [limits] or \
             [hooks.\"bloat\"] for this hook point alone"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_memory_cap_the_sandbox_cannot_hold_is_refused_when_the_config_is_read() {
    let root = pbx(false);
    root.configure("[limits]\nmax_memory_mb = 32\n\n[hooks.lookup]\nmax_memory_mb = 512\n");
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains(
            "modhost.toml`: [hooks.\"lookup\"]: a memory cap of 512 MiB is larger than the \
             256 MiB a sandbox can hold"
        ),
        "{}",
        run.stderr
    );
    // A misspelt limit is refused, not ignored.
    root.configure("[hooks.lookup]\nmax_memroy_mb = 8\n");
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains("unknown field `max_memroy_mb`"),
        "{}",
        run.stderr
    );
    // A value of the wrong type is told as what it must be, in the file's terms.
    for (config, expected) in [
        (
            "[limits]\ncall_timeout_ms = \"2000\"\n",
            "expected a whole number, 0 or more, written without quotes",
        ),
        (
            "[platform]\nengine = \"asterisk 18.2\"\n",
            "expected a table such as `engine = { name = \"asterisk\"",
        ),
        (
            "[data.quotas]\nlookup = \"big\"\n",
            "expected a table such as `acme = { mb = 64",
        ),
        ("[platform]\nversion = 16\n", "expected a string in quotes"),
        ("hooks = 3\n", "expected a table"),
        (
            "[hooks.lookup]\nshape = 5\n",
            "`shape = 5`: it is \"broadcast\" or \"pipeline\"",
        ),
        (
            "[limits]\ncall_timeout_ms = 99999999999999999999999\n",
            "(too large)",
        ),
    ] {
        root.configure(config);
        let run = root.fails(&["list"]);
        assert!(
            run.stderr.contains(expected)
                && !run.stderr.contains("u64")
                && !run.stderr.contains("struct"),
            "{config}: {}",
            run.stderr
        );
    }
}

#[test]
fn files_outside_the_data_directory_do_not_exist_for_a_module() {
    let root = pbx(true);
    // Whatever the machine had there before, the module changed nothing.
    let escaped = || {
        std::fs::symlink_metadata("/tmp/escaped")
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let before = escaped();
    let calls = hook(&root, "escape", "");
    let report = calls[0]["output"].as_str().unwrap_or_default();
    for line in [
        "read /etc/passwd: denied",
        "read /data/../../etc/passwd: denied",
        "write /tmp/escaped: denied",
        "list /: denied",
    ] {
        assert!(report.contains(line), "`{line}` in:\n{report}");
    }
    assert!(report.contains("write /data/inside: allowed"), "{report}");
    assert_eq!(escaped(), before);
}

#[test]
fn a_log_flood_is_bounded() {
    let root = pbx(true);
    let run = root.ok(&["hook", "flood"]);
    let logged = run
        .stderr
        .lines()
        .filter(|l| l.contains("flood i="))
        .count();
    assert_eq!(logged, 1000, "records beyond the limit are dropped");
    assert!(
        run.stderr
            .contains("99000 log records over the limit of 1000 were dropped"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(400)..]
    );
}

#[test]
fn a_module_cannot_nest_directories_deeper_than_the_host_walks() {
    let root = pbx(true);
    let calls = hook(&root, "nest", "");
    let output = calls[0]["output"].as_str().unwrap_or_default();
    // /data/nest is one level down: 64 levels in all, and the tree moved into the deepest
    // is moved back.
    assert_eq!(
        output,
        "made 64, stopped by QuotaExceeded; moving a tree in: QuotaExceeded; tree kept: true",
        "{calls:?}"
    );
    // Holding every handle the sandbox allows leaves the host its own way to look.
    root.ok(&["uninstall", "hostile"]);
    root.ok(&["install", arg(&package("hostile"))]);
    // The most handles a call may hold besides the ones it starts with: the first count
    // whose call is not stopped for holding too many.
    let full = (200..=256)
        .rev()
        .map(|count| hook(&root, "nest", &format!("hold:{count}")))
        .find(|calls| calls[0]["kind"] != "too-many-resources")
        .unwrap_or_default();
    let output = full[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.starts_with("made 64, stopped by QuotaExceeded"),
        "{full:?}"
    );
    // What it made is the host's to walk, copy and remove like any other tree.
    root.ok(&["upgrade", arg(&package("hostile")), "--reinstall"]);
    root.ok(&["uninstall", "hostile"]);
    assert!(!root.path().join("data/hostile").exists());
}

#[test]
fn a_module_firing_its_own_handler_again_and_again_logs_no_more_than_one_call_may() {
    let root = pbx(true);
    let run = root.ok(&["hook", "refire", "--payload", "4:chatter:600"]);
    let logged = run
        .stderr
        .lines()
        .filter(|l| l.contains("chatter i="))
        .count();
    assert_eq!(logged, 1000, "the dispatch's calls share one log budget");
    assert!(
        run.stderr
            .contains("log records over the limit of 1000 were dropped"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(400)..]
    );
    // A dispatch of its own starts a budget of its own.
    let again = root.ok(&["hook", "chatter", "--payload", "10"]);
    assert_eq!(again.stderr.matches("chatter i=").count(), 10);
}

#[test]
fn a_module_firing_a_hook_that_calls_back_into_it_stops_at_the_depth_limit() {
    let root = pbx(true);
    let calls = hook(&root, "loopback", "0");
    let output = calls[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(
            "stopped at depth 4: hook `loopback` fired by `hostile` would nest deeper than 4 levels"
        ),
        "{output}"
    );
    let kv = root.ok(&["kv", "--json", "hostile"]).json();
    let depths: Vec<&String> = kv
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        depths,
        ["depth/0", "depth/1", "depth/2", "depth/3", "depth/4"],
        "nested calls share the transaction"
    );
}

#[test]
fn a_handlers_writes_commit_only_when_it_succeeds() {
    let root = pbx(true);
    let calls = hook(&root, "remember", "kept");
    assert_eq!(calls[0]["ok"], true);
    assert_eq!(
        root.ok(&["kv", "--json", "hostile"]).json(),
        serde_json::json!({"remembered": "kept"})
    );
}

#[test]
fn a_directory_exists_in_the_sandbox_only_once_granted() {
    let root = pbx(false);
    let (shared, read) = shared_secret(&root);
    let package = granted(&root, "1.0", &[(&shared, "read-only")]);

    let run = root.ok(&["install", arg(&package)]);
    assert!(
        run.stderr.contains(&format!(
            "granted: read-only access to `{}` (not granted",
            shared.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(read(&root)["ok"], false, "not granted: not there");
    let asked = format!("read-only access to `{}`", shared.display());
    let info = root.ok(&["info", "granted"]).stdout;
    assert!(info.contains(&format!("{asked} (not granted)")), "{info}");
    let run = root.ok(&["grant", "granted"]);
    assert_eq!(run.stdout, "granted 1 capability to granted\n");
    assert_eq!(read(&root)["output"], "s3cret");
    let info = root.ok(&["info", "granted"]).stdout;
    assert!(info.contains(&format!("{asked} (granted)")), "{info}");
    let info = root.ok(&["info", "--json", "granted"]).json();
    assert_eq!(
        info["grants"],
        serde_json::json!([{"path": arg(&shared), "read_only": true}])
    );
    root.ok(&["revoke", "granted"]);
    assert_eq!(read(&root)["ok"], false);
    // Installing the installed version again with `--grant` leaves the module as it is
    // and grants what it asks for.
    let run = root.ok(&["install", "--grant", arg(&package)]);
    assert_eq!(run.stdout, "granted granted 1.0\n");
    assert_eq!(read(&root)["output"], "s3cret");
    root.ok(&["revoke", "granted"]);

    root.ok(&["uninstall", "granted"]);
    let run = root.ok(&["install", "--grant", arg(&package)]);
    assert!(
        run.stderr.contains("Granted granted: read-only access"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&root)["output"], "s3cret");

    // A script sees the request, and whether it was granted, in the one JSON document.
    root.ok(&["uninstall", "granted"]);
    let installed = root.ok(&["install", "--json", arg(&package)]).json();
    assert_eq!(
        installed[0]["requests"],
        serde_json::json!([{"path": arg(&shared), "read_only": true, "granted": false}]),
        "{installed}"
    );
}

#[test]
fn a_granted_directory_gone_missing_leaves_only_its_module_without_it() {
    let root = pbx(false);
    let (shared, read) = shared_secret(&root);
    let package = granted(&root, "1.0", &[(&shared, "read-write")]);
    root.ok(&["install", "--grant", arg(&package)]);
    assert_eq!(read(&root)["output"], "s3cret");
    assert!(std::fs::remove_dir_all(&shared).is_ok());
    // The module runs without it, told why; the others, and reload, are not held up.
    let secret = shared.join("secret.txt");
    let run = root.run(&["hook", "read", "--payload", arg(&secret), "--json"]);
    let calls = run.json();
    assert_eq!(calls[0]["ok"], false, "{calls}");
    assert!(
        run.stderr.contains("granted directory cannot be opened")
            && run.stderr.contains("or revoke the module's grant of it"),
        "{}",
        run.stderr
    );
    root.ok(&["reload"]);
    root.ok(&["hook", "lookup", "--payload", "2025550100"]);
    // `info` says it is gone, not merely granted.
    let info = root.ok(&["info", "granted"]).stdout;
    assert!(info.contains("(granted, but gone since"), "{info}");
    let info = root.ok(&["info", "--json", "granted"]).json();
    assert_eq!(info["grants"][0]["missing"], true, "{info}");
    // A file where the directory was is no directory either.
    assert!(std::fs::write(&shared, "a file").is_ok());
    root.ok(&["reload"]);
    // Granting what is not a directory is refused, saying what it is; the module can still
    // be disabled and uninstalled (its disable() and uninstall() run without it).
    let run = root.fails(&["grant", "granted"]);
    assert!(
        run.stderr
            .contains(&format!("asks for the directory `{}`", shared.display()))
            && run
                .stderr
                .contains("it is not a directory; create it, then grant it"),
        "{}",
        run.stderr
    );
    assert!(std::fs::remove_file(&shared).is_ok());
    let run = root.fails(&["grant", "granted"]);
    assert!(run.stderr.contains("it does not exist"), "{}", run.stderr);
    // Replaced by a link into the root, it is left out too: the root is never granted.
    assert!(std::os::unix::fs::symlink(root.path(), &shared).is_ok());
    let inside = shared.join("modhost.db");
    let run = root.run(&["hook", "read", "--payload", arg(&inside), "--json"]);
    assert_eq!(run.json()[0]["ok"], false, "{}", run.stdout);
    assert!(
        run.stderr.contains("now leads into or holds"),
        "{}",
        run.stderr
    );
    assert!(std::fs::remove_file(&shared).is_ok());
    root.ok(&["disable", "granted"]);
    root.ok(&["uninstall", "granted"]);
    let run = root.fails(&["install", "--grant", arg(&package)]);
    assert!(run.stderr.contains("it does not exist"), "{}", run.stderr);
}

/// A directory beside `root` holding `secret.txt`, and what the `granted` module's `read`
/// handler makes of that file: its call's result.
fn shared_secret(root: &Root) -> (PathBuf, impl Fn(&Root) -> Value) {
    let shared = root.path().with_file_name("shared");
    assert!(
        std::fs::create_dir_all(&shared).is_ok()
            && std::fs::write(shared.join("secret.txt"), "s3cret").is_ok()
    );
    let secret = shared.join("secret.txt");
    let read = move |root: &Root| {
        hook(root, "read", arg(&secret))
            .first()
            .cloned()
            .unwrap_or_default()
    };
    (shared, read)
}

/// A package of module `granted` at `version`, the `hostile` component asking for the
/// host directories `asks` (path, access).
fn granted(root: &Root, version: &str, asks: &[(&Path, &str)]) -> PathBuf {
    let module = root.path().with_file_name(format!("granted-{version}"));
    assert!(std::fs::create_dir_all(&module).is_ok());
    let capabilities: String = asks
        .iter()
        .map(|(path, access)| {
            format!(
                "<directory path=\"{}\" access=\"{access}\"/>",
                path.display()
            )
        })
        .collect();
    let xml = format!(
        "<module><rawname>granted</rawname><name>Granted</name><version>{version}</version>\
         <methods><read>read</read></methods>\
         <capabilities>{capabilities}</capabilities></module>"
    );
    assert!(std::fs::write(module.join("module.xml"), xml).is_ok());
    assert!(std::fs::copy(component("hostile"), module.join("module.wasm")).is_ok());
    let package = module.join(format!("granted-{version}.tgz"));
    root.ok(&["pack", arg(&module), "-o", arg(&package)]);
    package
}

#[test]
fn a_grant_lasts_only_while_the_installed_version_asks_for_it() {
    let root = pbx(false);
    let (shared, read) = shared_secret(&root);

    root.ok(&[
        "install",
        "--grant",
        arg(&granted(&root, "1.0", &[(&shared, "read-write")])),
    ]);
    assert_eq!(read(&root)["output"], "s3cret");

    let run = root.ok(&[
        "upgrade",
        arg(&granted(&root, "2.0", &[(&shared, "read-only")])),
    ]);
    assert!(
        run.stderr.contains(&format!(
            "Revoked granted: write access to `{}`",
            shared.display()
        )),
        "a version that asks for less gets less: {}",
        run.stderr
    );
    assert_eq!(read(&root)["output"], "s3cret", "reading is still granted");

    let run = root.ok(&["upgrade", arg(&granted(&root, "3.0", &[]))]);
    assert!(
        run.stderr.contains(&format!(
            "Revoked granted: read-only access to `{}`",
            shared.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(read(&root)["ok"], false, "3.0 does not ask: not there");

    root.ok(&["rollback", "granted"]);
    assert_eq!(
        read(&root)["ok"],
        false,
        "rolling back does not bring back a grant that was taken back"
    );
}

#[test]
fn a_component_built_against_another_wit_version_is_refused_naming_both() {
    let root = pbx(false);
    let before = root.fingerprint();
    let compiled = compiled_artifacts(&root.path());
    let run = root.fails(&["install", arg(&package("future_api"))]);
    assert!(
        run.stderr.contains(
            "is built against modhost:module@0.9.0; this host supports modhost:module@0.1.0"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    // Refused from its import section, before seconds of compiling.
    assert_eq!(compiled_artifacts(&root.path()), compiled);
    // Given as a module directory, it is refused from its component before it is packed,
    // naming the directory's component.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let untarred = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(package("future_api"))
        .arg("-C")
        .arg(dir.path())
        .status();
    assert!(untarred.is_ok_and(|s| s.success()));
    let module_dir = dir.path().join("future_api");
    let run = root.fails(&["install", arg(&module_dir)]);
    assert!(
        run.stderr.contains(&format!(
            "`{}` is built against modhost:module@0.9.0",
            module_dir.join("module.wasm").display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert_eq!(compiled_artifacts(&root.path()), compiled);
    // Packing it says so while the author is at it (a package for another host is still
    // made).
    let run = root.ok(&[
        "pack",
        arg(&module_dir),
        "-o",
        arg(&dir.path().join("out.tgz")),
    ]);
    assert!(
        run.stdout
            .contains("warning: modhost's command line would not install it")
            && run.stdout.contains("modhost:module@0.9.0"),
        "{}",
        run.stdout
    );
    // `manifest` says so too, and exits non-zero; a sound package shows its imports.
    let run = root.fails(&["manifest", arg(&package("future_api"))]);
    assert!(
        run.stdout.contains("cannot be installed here: ")
            && run.stdout.contains("modhost:module@0.9.0"),
        "{}",
        run.stdout
    );
    let described = root
        .ok(&["--json", "manifest", arg(&package("core"))])
        .json();
    assert!(
        described["imports"].as_array().is_some_and(|i| i
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.starts_with("wasi:")))),
        "{described}"
    );
    assert!(described.get("refused").is_none(), "{described}");
    // A module author can ask the host which versions it runs.
    let version = root.ok(&["--version"]).stdout;
    assert!(
        version.contains("runs components built against modhost:module@0.1.0"),
        "{version}"
    );
}

#[test]
fn a_fail_open_hook_shows_every_call_but_exits_non_zero_when_a_handler_failed() {
    let root = pbx(true);
    let fail_open = ["--shape", "broadcast", "--on-error", "continue"];
    let run = root.fails(&[&["hook", "get_config"][..], &fail_open].concat());
    let shown: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" (pri "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(
        shown,
        ["phonebook", "core", "hostile", "voicemail"],
        "every call, the failed one included, and the chain went on:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("hostile (pri 490) failed: "),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: hook `get_config`: 1 of 4 handlers failed"),
        "{}",
        run.stderr
    );

    let run = root.fails(&[&["hook", "get_config", "--json"][..], &fail_open].concat());
    let outcomes: Vec<(String, bool)> = run
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["rawname"].as_str().unwrap_or("").to_owned(),
                c["ok"] == true,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("phonebook".to_owned(), true),
            ("core".to_owned(), true),
            ("hostile".to_owned(), false),
            ("voicemail".to_owned(), true)
        ],
        "stdout is still the one JSON array of every call"
    );

    // Only a failure makes the exit status non-zero: the same modules succeed on `lookup`.
    let run = root.ok(&["hook", "lookup", "--payload", "2025550100", "--json"]);
    assert_eq!(run.json().as_array().map(Vec::len), Some(2));
}

#[test]
fn a_module_filling_its_store_hits_the_state_cap_and_nothing_is_lost() {
    let root = pbx(true);
    // A cap just above what is there: the flood fills it in a few writes.
    let used = std::fs::metadata(root.path().join("modhost.db"))
        .map(|m| m.len())
        .unwrap_or_default();
    let cap_mb = used / (1024 * 1024) + 2;
    root.configure(&format!("{LIMITS}\n[state]\nmax_size_mb = {cap_mb}\n"));
    let before = root.fingerprint();
    let calls = root.fails(&["hook", "hog", "--json"]).json();
    let hog = calls
        .as_array()
        .and_then(|c| c.iter().find(|c| c["rawname"] == "hostile"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        hog["kind"], "failed",
        "an error the module got and passed on: {hog}"
    );
    assert!(
        hog["error"]
            .as_str()
            .is_some_and(|e| e.contains("is full") && e.contains("[state] max_size_mb")),
        "{hog}"
    );
    assert_eq!(root.fingerprint(), before, "its writes were undone");
    let lookup = hook(&root, "lookup", "2025550100");
    assert_eq!(lookup[0]["output"], "Alice Example", "the others carry on");
}

#[test]
fn what_a_module_prints_is_logged_under_its_name_and_bounded() {
    let root = pbx(true);
    // Ten thousand lines take a moment: on a loaded machine, more than the suite's second.
    root.configure(&format!(
        "{LIMITS}\n[hooks.print]\ncall_timeout_ms = 30000\n"
    ));
    let run = root.run(&["hook", "print", "--payload", "2"]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("line 0 from stdout")
            && run.stderr.contains("line 1 from stdout")
            && run.stderr.contains("module=hostile"),
        "{}",
        run.stderr
    );
    // Each line as it ends, among the module's log records in the order it wrote them.
    let at = |text: &str| run.stderr.find(text).unwrap_or(usize::MAX);
    assert!(
        at("before printing") < at("line 0 from stdout")
            && at("line 1 from stdout") < at("after printing")
            && at("after printing") < usize::MAX,
        "{}",
        run.stderr
    );
    // A line left without its end (`print!`) is logged when the call ends.
    let run = root.run(&["hook", "print.partial", "--payload", "a partial line"]);
    assert!(
        run.success
            && run
                .stderr
                .contains("a partial line with no end of line module=hostile stdout=true"),
        "{}",
        run.stderr
    );
    // Past 64 KiB a call's output is dropped and counted; printing never fails the call.
    let run = root.run(&["hook", "print", "--payload", "10000", "--json"]);
    assert_eq!(run.json()[0]["output"], "printed 10000", "{}", run.stderr);
    assert!(
        // 10,000 lines of `line {i} from stdout\n`: 218,890 bytes, all but 64 KiB dropped.
        run.stderr
            .contains("153354 bytes printed past the 65536-byte limit of a call were dropped")
            // And every line not logged is counted once, kept or dropped.
            && run
                .stderr
                .contains("9000 printed lines were not logged (a call logs at most 1000 lines and 65536 bytes of what it prints)"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(300)..]
    );
}
