//! A hostile module in the embedding application's own process: every misbehaviour ends in a
//! typed failure within the call's limits, and the same `Host` — its warm instances, its
//! pooled slots, its file descriptors — goes on serving the other modules and the hostile
//! one.

use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
mod common;
mod compile;
mod granted;
mod limits;

use modhost::{HookPoint, Host, Limits};

/// The deadline of the hook points that only a deadline can stop.
const SHORT: Duration = Duration::from_millis(300);

/// A host in a fresh root with core, phonebook 1.0.0 and hostile installed, with the
/// limits the CLI tests use.
fn host() -> (tempfile::TempDir, Host) {
    let limits = Limits {
        call_timeout: Duration::from_secs(1),
        max_memory: 32 << 20,
        ..Limits::default()
    };
    let (root, host) = common::with_hostile(limits);
    for name in ["spin", "sleep"] {
        host.declare(HookPoint {
            limits: Some(Limits {
                call_timeout: SHORT,
                ..limits
            }),
            ..HookPoint::broadcast(name)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    (root, host)
}

/// Dispatches `hook` and returns hostile's failure: its kind as the JSON output names it,
/// and its message.
fn failure(host: &Host, hook: &str, payload: &str) -> (String, String) {
    let dispatch = host
        .dispatch(hook, payload)
        .unwrap_or_else(|e| panic!("{hook}: {e}"));
    let call = dispatch
        .calls
        .iter()
        .find(|c| c.rawname == "hostile")
        .unwrap_or_else(|| panic!("{hook}: hostile did not run: {dispatch:?}"));
    assert!(!call.ok, "{hook} succeeded: {call:?}");
    let json = serde_json::to_value(call).unwrap_or_default();
    let kind = json["kind"].as_str().unwrap_or_default().to_owned();
    (kind, call.error.clone().unwrap_or_default())
}

/// Fails the test unless both modules answer `lookup` as usual.
fn still_serving(host: &Host, after: &str) {
    let lookup = host
        .dispatch("lookup", "2025550100")
        .unwrap_or_else(|e| panic!("after {after}: {e}"));
    let outputs: Vec<(&str, Option<&str>)> = lookup
        .calls
        .iter()
        .map(|c| (c.rawname.as_str(), c.output.as_deref()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("phonebook", Some("Alice Example")),
            ("hostile", Some("2025550100"))
        ],
        "after {after}"
    );
}

/// The process's open file descriptors on files named `name` under `root`.
fn open_descriptors(root: &std::path::Path, name: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap_or_else(|e| panic!("/proc/self/fd: {e}"))
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(root) && target.ends_with(name))
        .count()
}

#[test]
fn every_misbehaviour_fails_with_its_kind_and_the_same_host_carries_on() {
    let (_root, host) = host();
    still_serving(&host, "install");
    let cases = [
        (
            "spin",
            "",
            "timeout",
            "was stopped after its 300ms deadline",
        ),
        (
            "sleep",
            "",
            "timeout",
            "was stopped after its 300ms deadline",
        ),
        ("grow", "", "out-of-memory", "memory cap of 32 MiB"),
        (
            "recurse",
            "",
            "stack-overflow",
            "modhost_guest_hostile::recurse",
        ),
        ("crash", "", "trap", "hostile module crashed on purpose"),
        (
            "hoard",
            "1000",
            "too-many-resources",
            "holding its limit of 256 open files",
        ),
        (
            "bloat",
            "ok:2000000",
            "output-too-large",
            "returned 2000000 bytes, over the output limit of 1 MiB",
        ),
        (
            "bloat",
            "err:2000000",
            "output-too-large",
            "failed with an error message of 2000000 bytes, over the output limit of 1 MiB",
        ),
        ("bloat", "err:10", "failed", "failed: xxxxxxxxxx"),
        // 80 MiB of log fields from one MiB of memory: past what its memory holds.
        ("alias", "40", "trap", "too much data is being copied"),
    ];
    for (hook, payload, kind, expected) in cases {
        let started = Instant::now();
        let (found, error) = failure(&host, hook, payload);
        // Generous for a loaded machine; a deadline that did not hold would take a day.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{hook}: took {:?}",
            started.elapsed()
        );
        assert_eq!(found, kind, "{hook} {payload}: {error}");
        assert!(
            error.contains(expected) && error.contains("module `hostile` 0.1.0"),
            "{hook} {payload}: expected `{expected}` in: {error}"
        );
        still_serving(&host, hook);
        // Whatever a failed call wrote (crash sets a key before it panics) was undone.
        let kv = host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}"));
        assert!(kv.is_empty(), "{hook}: {kv:?}");
    }
    // A deadline's report, as a trap's, ends with what the module last wrote to stderr:
    // an author's trace of where it was when it never returned.
    let (_, error) = failure(&host, "spin", "the slow path");
    assert!(
        error.contains(
            "was stopped after its 300ms deadline\nguest stderr:\n  spinning on \"the slow path\""
        ),
        "{error}"
    );
}

#[test]
fn a_deadline_stops_a_sleeping_module_promptly() {
    let (_root, host) = host();
    let started = Instant::now();
    let (kind, _) = failure(&host, "sleep", "");
    assert_eq!(kind, "timeout");
    assert!(
        started.elapsed() < SHORT + Duration::from_secs(3),
        "stopped at its deadline, not long after: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_module_that_exits_instead_of_returning_is_told_so_and_the_host_goes_on() {
    let (_root, host) = host();
    let (kind, error) = failure(&host, "exit", "");
    assert_eq!(kind, "trap", "{error}");
    assert!(
        error.contains("exited (failing) instead of returning")
            && error.contains("not its status")
            && error.contains("leaving with status 3"),
        "{error}"
    );
    still_serving(&host, "an exit");
}

#[test]
fn memory_and_output_within_their_limits_are_fine() {
    let (_root, host) = host();
    let dispatch = host
        .dispatch("grow", "12")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dispatch.calls[0].output.as_deref(),
        Some("held 12 MiB"),
        "{dispatch:?}"
    );
    let dispatch = host
        .dispatch("bloat", "ok:1048576")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dispatch.calls[0].output.as_ref().map(String::len),
        Some(1 << 20)
    );
}

#[test]
fn a_module_cannot_keep_descriptors_open_between_calls() {
    let (root, host) = host();
    still_serving(&host, "install");
    for i in 0..20 {
        let dispatch = host
            .dispatch("hoard", "100")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(dispatch.calls[0].ok, "hoard #{i}: {dispatch:?}");
    }
    // 2000 descriptors were opened and never closed by the module; the host closes them
    // with the instance instead of keeping it warm.
    assert_eq!(open_descriptors(root.path(), "hoard"), 0);
    still_serving(&host, "hoarding");
}

#[test]
fn a_well_behaved_instance_is_kept_warm_and_a_hoarding_one_is_not() {
    let (_root, host) = host();
    let count = |host: &Host| {
        let dispatch = host.dispatch("count", "").unwrap_or_else(|e| panic!("{e}"));
        dispatch.calls[0].output.clone().unwrap_or_default()
    };
    assert_eq!(count(&host), "1");
    assert_eq!(count(&host), "2", "the instance was kept for the next call");
    let hoard = host
        .dispatch("hoard", "100")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hoard.calls[0].ok, "{hoard:?}");
    assert_eq!(
        count(&host),
        "1",
        "the hoarding instance was dropped: a fresh one counts"
    );
}

#[test]
fn escapes_and_floods_are_contained_and_leave_the_state_as_it_was() {
    let (root, host) = host();
    let ok_output = |hook: &str, payload: &str| {
        let dispatch = host
            .dispatch(hook, payload)
            .unwrap_or_else(|e| panic!("{hook}: {e}"));
        let call = dispatch.calls.iter().find(|c| c.rawname == "hostile");
        match call {
            Some(call) if call.ok => call.output.clone().unwrap_or_default(),
            other => panic!("{hook}: {other:?}"),
        }
    };
    let escape = ok_output("escape", "");
    for line in escape.lines() {
        let allowed = line.starts_with("write /data/inside");
        assert_eq!(line.ends_with(": allowed"), allowed, "{escape}");
    }
    still_serving(&host, "escape");

    // A symbolic link planted in the data directory leads nowhere outside it.
    let data = std::fs::read_dir(root.path().join("data/hostile"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("inside").exists())
        .unwrap_or_else(|| panic!("hostile's data directory"));
    std::os::unix::fs::symlink("/etc", data.join("link")).unwrap_or_else(|e| panic!("{e}"));
    let (kind, error) = failure(&host, "read", "/data/link/passwd");
    assert_eq!(kind, "failed", "{error}");
    assert!(error.contains("cannot read /data/link/passwd"), "{error}");
    still_serving(&host, "a symlink escape");

    // A hundred thousand log calls take a while in a debug build; only the log is bounded.
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: Duration::from_secs(120),
            ..Limits::default()
        }),
        ..HookPoint::broadcast("flood")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok_output("flood", ""), "flooded");
    still_serving(&host, "flood");
    // A megabyte to stderr: its end is kept for a trap report, the rest dropped, and
    // printing never fails the module (Rust's `eprintln!` would panic if it did).
    assert_eq!(ok_output("shout", ""), "shouted");
    still_serving(&host, "shout");

    let kv = host.kv_entries("hostile").unwrap_or_else(|e| panic!("{e}"));
    assert!(kv.is_empty(), "nothing reached the state: {kv:?}");
}

/// Installs module `rawname`: hostile's component under a module.xml whose `<methods>`
/// are `methods`. Returns the directory it was packed in, for the test to remove.
fn install_hostile_as(
    root: &tempfile::TempDir,
    host: &Host,
    rawname: &str,
    methods: &str,
) -> std::path::PathBuf {
    let dir = root.path().with_extension(rawname);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let xml = format!(
        "<module><rawname>{rawname}</rawname><name>{rawname}</name><version>1.0</version>\
         <methods>{methods}</methods></module>"
    );
    std::fs::write(dir.join("module.xml"), xml).unwrap_or_else(|e| panic!("{e}"));
    let package = dir.join(format!("{rawname}.tgz"));
    modhost::pack(
        &dir.join("module.xml"),
        &modhost_test_support::component("hostile"),
        &package,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package], modhost::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn a_modules_handlers_of_one_hook_point_share_one_deadline() {
    let (root, host) = host();
    // A module giving `slow` two handlers that each run until stopped.
    let dir = install_hostile_as(
        &root,
        &host,
        "twice",
        "<slow pri=\"1\">spin</slow><slow pri=\"2\">sleep</slow>",
    );
    let deadline = Duration::from_secs(3);
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: deadline,
            ..host.limits()
        }),
        ..HookPoint::broadcast("slow")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Loaded once before, so that what is measured is the calls.
    let _ = host.dispatch("slow", "");
    let started = Instant::now();
    let dispatch = host.dispatch("slow", "").unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    let kinds: Vec<String> = dispatch
        .calls
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or_default()["kind"].to_string())
        .collect();
    assert_eq!(kinds, ["\"timeout\"", "\"timeout\""], "{dispatch:?}");
    assert!(
        // Two deadlines would be 6 s.
        took < deadline * 5 / 3,
        "two handlers of one module took {took:?} against one {deadline:?} deadline"
    );
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn hooks_fired_past_the_deadline_start_nothing_so_a_fan_ends_with_its_call() {
    let (root, host) = host();
    // A module giving `fan` sixteen handlers, each firing `fan` again, then spinning:
    // four levels of it are 65,536 calls, were each given its start after the deadline.
    let methods: String = (0..16)
        .map(|n| format!("<fan pri=\"{n}\">fan{n}</fan>"))
        .collect();
    let dir = install_hostile_as(&root, &host, "fan", &methods);
    let deadline = Duration::from_millis(500);
    host.declare(HookPoint {
        limits: Some(Limits {
            call_timeout: deadline,
            max_fire_depth: 4,
            ..host.limits()
        }),
        ..HookPoint::broadcast("fan")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let dispatch = host.dispatch("fan", "").unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    assert!(
        dispatch
            .calls
            .iter()
            .all(|c| { serde_json::to_value(c).unwrap_or_default()["kind"] == "timeout" }),
        "{dispatch:?}"
    );
    // The first call's timeout says which of the handlers it fired its deadline met.
    let first = dispatch.calls[0].error.as_deref().unwrap_or_default();
    assert!(
        first.contains("(the deadline came while `fan`'s handler `fan")
            && first.ends_with("for hook `fan`, fired from it, ran)"),
        "{first}"
    );
    // The module's sixteen handlers share one 500 ms; what they fired after it passed
    // started nothing. Given a tick each, they took minutes.
    assert!(
        took < Duration::from_secs(5),
        "a fan of fired hooks took {took:?} against a {deadline:?} deadline"
    );
    still_serving(&host, "a fan of fired hooks");
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn what_a_call_fires_shares_the_calls_memory_cap() {
    let (_root, host) = host();
    // Holding nothing, a call leaves the hook it fires all of its 32 MiB cap but what it
    // uses itself.
    let dispatch = host
        .dispatch("hold_and_fire", "0:grow:20")
        .unwrap_or_else(|e| panic!("{e}"));
    let output = dispatch.calls[0].output.clone().unwrap_or_default();
    assert_eq!(output, "hostile: ok held 20 MiB", "{dispatch:?}");
    // Holding 20 MiB, it leaves less than 20.
    let dispatch = host
        .dispatch("hold_and_fire", "20:grow:20")
        .unwrap_or_else(|e| panic!("{e}"));
    let output = dispatch.calls[0].output.clone().unwrap_or_default();
    assert!(dispatch.calls[0].ok, "{dispatch:?}");
    assert!(
        output.starts_with("hostile: failed") && output.contains("memory cap"),
        "the fired handler got a cap of its own: {output}"
    );
    // Said as what the firing call left, not as a setting of that size.
    assert!(
        output.contains("(what the call that fired `grow` left of its own cap of 32.0 MiB"),
        "{output}"
    );
    still_serving(&host, "nested growth");
}

#[test]
fn a_module_fires_only_its_own_hook_points_and_those_named_after_no_module_or_declared() {
    let (root, host) = host();
    // `userman`'s listener, a module firing userman's hook point, and userman itself.
    let dirs = [
        install_hostile_as(
            &root,
            &host,
            "listener",
            "<userman.delUser>echo</userman.delUser>",
        ),
        install_hostile_as(&root, &host, "rogue", "<spoof>refire</spoof>"),
        install_hostile_as(&root, &host, "userman", "<relay>refire</relay>"),
    ];
    let spoofed = host
        .dispatch("spoof", "1:userman.delUser:user 1")
        .unwrap_or_else(|e| panic!("{e}"));
    let error = spoofed.calls[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("hook `userman.delUser` is module `userman`'s: `rogue` may not fire it"),
        "{spoofed:?}"
    );
    let relayed = host
        .dispatch("relay", "1:userman.delUser:user 1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(relayed.calls[0].error.is_none(), "{relayed:?}");
    // Named after a module not installed, it is that name's all the same: a module
    // installed later does not find its hook points fired by others before.
    let absent = host
        .dispatch("spoof", "1:billing.charge:x")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        absent.calls[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("is module `billing`'s")),
        "{absent:?}"
    );
    // One without a module's name, and one the application declares, anyone fires.
    host.declare(HookPoint::broadcast("call.route"))
        .unwrap_or_else(|e| panic!("{e}"));
    for open in ["1:unheard:x", "1:call.route:x"] {
        let fired = host
            .dispatch("spoof", open)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(fired.calls[0].error.is_none(), "{open}: {fired:?}");
    }
    // A name no hook point has is refused, as the application's dispatch refuses it.
    let fired = host
        .dispatch("spoof", "1::x")
        .unwrap_or_else(|e| panic!("{e}"));
    let error = fired.calls[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("hook `` fired by `rogue`: a hook point needs a name; not fired"),
        "{fired:?}"
    );
    // Tuning a module's hook point in modhost.toml leaves it to its owner; only
    // `fired_by = "any"` opens it. And the configuration is built by the host alone.
    let tuned = |extra: &str| {
        std::fs::write(
            root.path().join("modhost.toml"),
            format!("[hooks.\"userman.delUser\"]\ncall_timeout_ms = 3000\n{extra}"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"))
    };
    let fired = |host: &Host, payload: &str| {
        let dispatch = host
            .dispatch("spoof", payload)
            .unwrap_or_else(|e| panic!("{e}"));
        dispatch.calls[0].error.clone()
    };
    let error = fired(&tuned(""), "1:userman.delUser:user 1").unwrap_or_default();
    assert!(error.contains("`rogue` may not fire it"), "{error}");
    assert_eq!(
        fired(&tuned("fired_by = \"any\""), "1:userman.delUser:user 1"),
        None
    );
    let error = fired(&tuned("fired_by = \"any\""), "1:get_config:").unwrap_or_default();
    assert!(
        error.contains("hook `get_config` builds the configuration, which only the host runs"),
        "{error}"
    );
    for dir in dirs {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn in_the_configuration_a_module_is_bounded_by_its_own_part_and_cannot_forge_the_header() {
    // A root of its own: the hostile module's get_config handler fails on purpose.
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    // Two modules each adding 600 KiB under a 1 MiB output limit: each part is within
    // it, though the second returns more than a MiB with the first's.
    let dirs = [
        install_hostile_as(
            &root,
            &host,
            "pad",
            "<get_config pri=\"1\">pad600</get_config>",
        ),
        install_hostile_as(
            &root,
            &host,
            "vic",
            "<get_config pri=\"900\">pad600</get_config>",
        ),
    ];
    let reload = host.reload().unwrap_or_else(|e| panic!("{e}"));
    assert!(reload.bytes > 1200 * 1024, "{reload:?}");
    // One adding more than the limit is the one refused, by name.
    let big = install_hostile_as(
        &root,
        &host,
        "big",
        "<get_config pri=\"950\">pad1100</get_config>",
    );
    let error = reload_error(&host);
    assert!(error.contains("module `big`"), "{error}");
    host.uninstall("big", false)
        .unwrap_or_else(|e| panic!("{e}"));
    // A module replacing everything before it still writes under the host's header.
    let usurp = install_hostile_as(
        &root,
        &host,
        "usurp",
        "<get_config pri=\"999\">usurp</get_config>",
    );
    host.reload().unwrap_or_else(|e| panic!("{e}"));
    let written = std::fs::read_to_string(host.configuration()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        written.starts_with("; Generated by modhost's reload") && written.contains("usurp"),
        "{}",
        &written[..200.min(written.len())]
    );
    host.uninstall("usurp", false)
        .unwrap_or_else(|e| panic!("{e}"));
    // A control byte in a part is refused naming its module; nothing is written.
    let bell = install_hostile_as(
        &root,
        &host,
        "bell",
        "<get_config pri=\"950\">bell</get_config>",
    );
    let error = reload_error(&host);
    assert!(
        error.contains("module `bell` returned a configuration holding the control byte 0x07"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(host.configuration()).unwrap_or_default(),
        written
    );
    for dir in dirs.into_iter().chain([big, usurp, bell]) {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_pipeline_a_module_fires_keeps_each_handlers_output_within_the_plain_bound() {
    let (root, host) = host();
    host.declare(HookPoint::pipeline("relay"))
        .unwrap_or_else(|e| panic!("{e}"));
    // Two handlers passing their input on, fired with 700 KiB: the second returns more
    // than the 1 MiB bound, which a module's own fire does not raise by its input.
    let dirs = [
        install_hostile_as(&root, &host, "passer", "<relay pri=\"1\">pad400</relay>"),
        install_hostile_as(&root, &host, "sender", "<send>pipe</send>"),
    ];
    let sent = host
        .dispatch("send", "relay:700")
        .unwrap_or_else(|e| panic!("{e}"));
    let said = sent.calls[0].output.clone().unwrap_or_default();
    assert!(
        said.contains("passer: failed: ") && said.contains("over the output limit of 1 MiB"),
        "{sent:?}"
    );
    // The application's own dispatch of it bounds the part the handler adds.
    let payload = "x".repeat(700 * 1024);
    let direct = host
        .dispatch("relay", &payload)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(direct.calls[0].ok, "{:?}", direct.calls[0].error);
    for dir in dirs {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Why `host`'s reload wrote nothing; a panic when it wrote.
fn reload_error(host: &Host) -> String {
    match host.reload() {
        Ok(reload) => panic!("it wrote {reload:?}"),
        Err(e) => e.to_string(),
    }
}
