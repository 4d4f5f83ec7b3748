//! A handler whose write statement runs past its deadline: SQLite rolls back the whole
//! transaction it interrupts, which must undo that handler's writes alone.

use modhost_test_support::{Root, arg, package};
use serde_json::Value;

use crate::root;

/// A short deadline for the runaway; the well-behaved handlers finish far within it.
const LIMITS: &str = "[hooks.race]\ncall_timeout_ms = 1000\n\n\
                      [hooks.race_closed]\ncall_timeout_ms = 1000\non_error = \"stop\"\n\n\
                      [hooks.race_inner]\ncall_timeout_ms = 1000\n";

fn racing() -> Root {
    let root = root();
    root.configure(LIMITS);
    root.ok(&["install", arg(&package("steady")), arg(&package("hostile"))]);
    root
}

/// `(rawname, handler, ok)` of each call, and the error of the failed one.
fn outcome(dispatch: &Value) -> (Vec<(String, String, bool)>, String) {
    let calls = dispatch.as_array().cloned().unwrap_or_default();
    let ran = calls
        .iter()
        .map(|c| {
            (
                c["rawname"].as_str().unwrap_or_default().to_owned(),
                c["handler"].as_str().unwrap_or_default().to_owned(),
                c["ok"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let error = calls
        .iter()
        .find_map(|c| c["error"].as_str())
        .unwrap_or_default()
        .to_owned();
    (ran, error)
}

fn notes(root: &Root) -> Vec<Value> {
    let rows = root
        .ok(&["rows", "--json", "steady", "steady_notes"])
        .json();
    rows["rows"].as_array().cloned().unwrap_or_default()
}

fn call(rawname: &str, handler: &str, ok: bool) -> (String, String, bool) {
    (rawname.to_owned(), handler.to_owned(), ok)
}

#[test]
fn a_runaway_write_in_a_fail_open_dispatch_undoes_only_its_own_writes() {
    let root = racing();
    let dispatch = root
        .fails(&["hook", "race", "--payload", "p", "--json"])
        .json();
    let (ran, error) = outcome(&dispatch);
    assert_eq!(
        ran,
        [
            call("steady", "before", true),
            call("hostile", "runaway", false),
            call("steady", "after", true),
        ],
        "{dispatch}"
    );
    assert!(
        error.contains("hostile") && !error.contains("SQL") && !error.contains("transaction is"),
        "the module that ran past its deadline is named, in modhost's words: {error}"
    );
    let kv = root.ok(&["kv", "steady", "--json"]).json();
    assert_eq!(
        (&kv["before"], &kv["after"]),
        (&"p".into(), &"p".into()),
        "{kv}"
    );
    assert_eq!(notes(&root).len(), 2, "both of steady's rows are kept");
    let hostile = root.ok(&["kv", "hostile", "--json"]).json();
    assert_eq!(
        hostile["runaway"],
        Value::Null,
        "the runaway's own write is undone"
    );
    // Nothing is left half done: the next dispatch and a change both work.
    root.fails(&["hook", "race", "--payload", "q", "--json"]);
    assert_eq!(notes(&root).len(), 4);
    root.ok(&["recover"]);
    // SQLite finds the database whole (the dump checks its integrity).
    root.state_dump();
    root.ok(&["uninstall", "hostile"]);
}

#[test]
fn a_runaway_write_in_a_fail_closed_dispatch_fails_it_naming_the_module() {
    let root = racing();
    let run = root.fails(&["hook", "race_closed", "--payload", "p", "--json"]);
    let dispatch = run.json();
    let (ran, error) = outcome(&dispatch);
    assert_eq!(
        ran,
        [
            call("steady", "before", true),
            call("hostile", "runaway", false),
        ],
        "the dispatch stops at the runaway: {dispatch}"
    );
    assert!(
        error.contains("hostile") && !error.contains("SQL"),
        "{error}"
    );
    let kv = root.ok(&["kv", "steady", "--json"]).json();
    assert_eq!(
        kv["before"],
        Value::from("p"),
        "what ran before keeps its writes: {kv}"
    );
    assert_eq!(notes(&root).len(), 1);
    root.ok(&["recover"]);
    // SQLite finds the database whole (the dump checks its integrity).
    root.state_dump();
}

#[test]
fn a_runaway_write_in_a_fired_hook_fails_the_call_that_fired_it_naming_the_module() {
    let root = racing();
    for (hook, relay) in [("race_outer", "relay"), ("race_outer_quiet", "relay_quiet")] {
        let dispatch = root
            .fails(&["hook", hook, "--payload", "p", "--json"])
            .json();
        let (ran, error) = outcome(&dispatch);
        assert_eq!(
            ran,
            [call("steady", relay, false), call("steady", "after", true)],
            "{dispatch}"
        );
        // The caller's writes, and those of the handlers it fired, went with the
        // runaway's transaction: the caller fails, saying whose statement it was.
        assert!(
            error.contains("module `hostile`")
                && !error.contains("SQL logic")
                && !error.contains("transaction is"),
            "{hook}: {error}"
        );
        let kv = root.ok(&["kv", "steady", "--json"]).json();
        assert_eq!(
            (&kv[relay], &kv["before"], &kv["after"]),
            (&Value::Null, &Value::Null, &"p".into()),
            "{hook}: the next handler keeps its writes: {kv}"
        );
        assert_eq!(
            notes(&root).iter().filter(|n| n[1] == "after").count(),
            if relay == "relay" { 1 } else { 2 }
        );
    }
    assert_eq!(notes(&root).len(), 2);
    root.ok(&["recover"]);
    // SQLite finds the database whole (the dump checks its integrity).
    root.state_dump();
}
