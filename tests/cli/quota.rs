//! The state database's cap (`[state] max_size_mb`), end to end: a burst of one statement
//! through `db.execute` and through `db.query` stops at it; a module that fills it gets
//! an error it can handle and keeps what fitted; once it is uninstalled, its pages go back
//! to the disk and the other modules write again.
//!
//! The bound: modules never grow `modhost.db` past the cap plus its slack (a quarter of
//! the cap, at most 2 MiB): the one write that began below the cap may finish past it,
//! and nothing goes further, within a statement or across statements.

use modhost_test_support::{Root, arg, package};
use serde_json::Value;

use crate::root;

const MIB: u64 = 1024 * 1024;

/// filler and hostile installed, under a cap 2 MiB above what the root holds; the cap.
fn capped() -> (Root, u64) {
    let root = root();
    root.ok(&["install", arg(&package("filler")), arg(&package("hostile"))]);
    let cap = (size(&root) / MIB + 2) * MIB;
    root.configure(&format!("[state]\nmax_size_mb = {}\n", cap / MIB));
    (root, cap)
}

/// The database file, once the command that wrote it has exited (its WAL checkpointed).
fn size(root: &Root) -> u64 {
    std::fs::metadata(root.path().join("modhost.db")).map_or(u64::MAX, |m| m.len())
}

/// The most modules may grow the file to: the cap and its slack.
fn ceiling(cap: u64) -> u64 {
    cap + (cap / 4).min(2 * MIB)
}

/// `(ok, output or error)` of `rawname`'s call at hook point `hook`.
pub(crate) fn call(root: &Root, hook: &str, payload: &str, rawname: &str) -> (bool, String) {
    let run = root.run(&["hook", hook, "--payload", payload, "--json"]);
    let calls = run.json();
    let found = calls
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["rawname"] == rawname))
        .cloned()
        .unwrap_or(Value::Null);
    let ok = found["ok"] == true;
    let text = if ok {
        &found["output"]
    } else {
        &found["error"]
    };
    (ok, text.as_str().unwrap_or_default().to_owned())
}

/// The root is sound: recovery passes, and SQLite reads every table of the database.
fn sound(root: &Root) {
    root.ok(&["recover"]);
    let dump = root.state_dump();
    assert!(dump.contains("modhost_modules"), "{dump}");
}

#[test]
fn a_burst_of_one_statement_through_execute_or_query_stops_at_the_cap() {
    let (root, cap) = capped();
    for hook in ["burst_execute", "burst_query"] {
        // 100 rows of 64 KiB: 6.4 MiB from one statement.
        let (ok, error) = call(&root, hook, "100:65536", "filler");
        assert!(!ok && error.contains("full"), "{hook}: {error}");
        let size = size(&root);
        assert!(size <= ceiling(cap), "{hook}: {size} bytes, cap {cap}");
    }
    // What fits still goes through both routes.
    assert_eq!(
        call(&root, "burst_execute", "4:1000", "filler"),
        (true, "4 rows".to_owned())
    );
    assert_eq!(
        call(&root, "burst_query", "4:1000", "filler"),
        (true, "4 ids".to_owned())
    );
    sound(&root);
}

#[test]
fn a_module_that_filled_the_cap_and_was_uninstalled_leaves_room_for_the_others() {
    let (root, cap) = capped();
    let (ok, flood) = call(&root, "kv_flood", "", "filler");
    assert!(
        ok && flood.contains("is full") && flood.contains("[state] max_size_mb"),
        "an error the module handled, naming the cap: {flood}"
    );
    let full = size(&root);
    assert!(
        full > cap / 2 && full <= ceiling(cap),
        "kept what fitted: {full} bytes, cap {cap}"
    );
    let (ok, error) = call(&root, "small_write", "", "filler");
    assert!(!ok && error.contains("is full"), "{error}");
    let (ok, error) = call(&root, "remember", "before", "hostile");
    assert!(!ok && error.contains("is full"), "{error}");

    root.ok(&["uninstall", "filler"]);
    let after = size(&root);
    assert!(
        after < full / 2,
        "its pages went back: {after} of {full} bytes"
    );
    assert_eq!(
        call(&root, "remember", "after", "hostile"),
        (true, "after".to_owned())
    );
    sound(&root);
}

#[test]
fn a_module_at_its_own_quota_is_refused_while_another_keeps_writing() {
    let root = root();
    root.configure(
        "[state]\nmodule_quota_mb = 1\n[state.quotas]\nsteady = 4\n\n\
         [hooks.race]\ncall_timeout_ms = 1000\n",
    );
    root.ok(&["install", arg(&package("hostile")), arg(&package("steady"))]);
    let (ok, error) = call(&root, "hog", "", "hostile");
    assert!(
        !ok && error.contains("module `hostile` would go past its quota in the state")
            && error.contains("[state.quotas] hostile"),
        "an error the module got and passed on: {error}"
    );
    // The refusal was the module's to handle (it passed it on), not a trap.
    let calls = root.run(&["hook", "hog", "--json"]).json();
    assert_eq!(calls[0]["kind"], "failed", "{calls}");
    let info = root.ok(&["info", "--json", "hostile"]).json();
    let used = info["state_used"].as_u64().unwrap_or(u64::MAX);
    assert_eq!(info["state_quota"], MIB, "{info}");
    assert!(used <= MIB, "{used} bytes kept");
    let text = root.ok(&["info", "hostile"]).stdout;
    assert!(text.contains("of its 1.0 MiB quota"), "{text}");
    // Another module, under its own quota, writes on.
    root.run(&["hook", "race", "--payload", "p"]);
    let kv = root.ok(&["kv", "steady", "--json"]).json();
    assert_eq!(
        (&kv["before"], &kv["after"]),
        (&"p".into(), &"p".into()),
        "{kv}"
    );
    assert_eq!(
        root.ok(&["info", "--json", "steady"]).json()["state_quota"],
        4 * MIB
    );
}
