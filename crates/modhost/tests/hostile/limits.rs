//! Limits the sandbox cannot enforce as stated are refused, naming the limit: a memory cap
//! larger than a sandbox slot, a deadline longer than a day (the longest `Duration` too).

use std::time::Duration;

use modhost::{HookPoint, Host, Limits};

use super::*;

#[test]
fn a_memory_cap_larger_than_a_sandbox_slot_is_refused() {
    let (_root, host) = host();
    host.declare(HookPoint {
        limits: Some(Limits {
            max_memory: 512 << 20,
            ..Limits::default()
        }),
        ..HookPoint::broadcast("echo")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (kind, error) = failure(&host, "echo", "hi");
    assert_eq!(kind, "host");
    assert!(
        error.contains("a memory cap of 512 MiB is larger than the 256 MiB a sandbox can hold"),
        "{error}"
    );
}

#[test]
fn a_deadline_longer_than_a_day_is_refused_and_the_longest_one_panics_nothing() {
    let (_root, host) = host();
    for (hook, limit) in [
        ("echo", Duration::MAX),
        ("count", modhost::MAX_CALL_TIMEOUT + Duration::from_secs(1)),
    ] {
        host.declare(HookPoint {
            limits: Some(Limits {
                call_timeout: limit,
                ..Limits::default()
            }),
            ..HookPoint::broadcast(hook)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let (kind, error) = failure(&host, hook, "hi");
        assert_eq!(kind, "host");
        assert!(
            error.contains("ms is longer than the day a call may run at most"),
            "{error}"
        );
    }
    still_serving(&host, "a deadline too long");
    // In modhost.toml, refused when the root is opened, naming the section.
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        root.path().join("modhost.toml"),
        "[hooks.spin]\ncall_timeout_ms = 100000000000\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let refused = Host::open(root.path())
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains(
            "[hooks.\"spin\"]: a call deadline of 100000000000 ms is longer than the day"
        )),
        "{refused:?}"
    );
}
