//! One installed module's verbs from C — upgrade, rollback, disable, enable, uninstall —
//! and the reload an application runs after them.

// Calling the C API is calling `unsafe extern "C"` functions with raw pointers.
#![allow(unsafe_code)]

mod common;

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use common::{c, check, take};
use modhost_capi::*;
use modhost_test_support::{package, package_at};
use serde_json::Value;

type Verb = unsafe extern "C" fn(
    *const Host,
    *const c_char,
    u32,
    *mut *mut c_char,
    *mut *mut c_char,
) -> i32;

/// Runs `verb` on `rawname`: the change's JSON, or the status and message.
fn run(verb: Verb, host: *const Host, rawname: &str, flags: u32) -> Result<Value, String> {
    let (mut change, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status = unsafe { verb(host, c(rawname).as_ptr(), flags, &mut change, &mut error) };
    check(status, error)?;
    serde_json::from_str(&take(change).unwrap_or_default()).map_err(|e| e.to_string())
}

/// Installs (or upgrades, with `upgrade`) the packages at `paths`.
fn apply(host: *const Host, paths: &[std::path::PathBuf], upgrade: bool) -> Result<(), String> {
    let names: Vec<_> = paths.iter().map(|p| c(&p.to_string_lossy())).collect();
    let pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let verb = if upgrade {
        modhost_upgrade
    } else {
        modhost_install
    };
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        verb(
            host,
            null(),
            pointers.as_ptr(),
            pointers.len(),
            0,
            null_mut(),
            &mut error,
        )
    };
    check(status, error)
}

/// The reload's JSON, or the status and message.
fn reload(host: *const Host) -> Result<Value, String> {
    let (mut written, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status = unsafe { modhost_reload(host, &mut written, &mut error) };
    check(status, error)?;
    serde_json::from_str(&take(written).unwrap_or_default()).map_err(|e| e.to_string())
}

#[test]
fn an_application_upgrades_rolls_back_disables_enables_reloads_and_uninstalls() -> Result<(), String>
{
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // A root whose name is not UTF-8 (Latin-1 `é`), as a Unix path may be.
    let root = dir
        .path()
        .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9"));
    let host = common::open(&root)?;
    apply(
        host,
        &[package("core"), package_at("phonebook", "1.0.0")],
        false,
    )?;
    apply(host, &[package_at("phonebook", "2.0.0")], true)?;

    let back = run(modhost_rollback, host, "phonebook", 0)?;
    assert_eq!(
        (back["action"].as_str(), back["to"].as_str()),
        (Some("rolled-back"), Some("1.0.0")),
        "{back}"
    );

    // core is required by phonebook: refused without MODHOST_FORCE, naming it.
    let refused = run(modhost_disable, host, "core", 0);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.starts_with("status 3:") && e.contains("phonebook")),
        "{refused:?}"
    );
    let disabled = run(modhost_disable, host, "phonebook", 0)?;
    assert_eq!(disabled["action"], "disabled", "{disabled}");
    let written = reload(host)?;
    let handlers: Vec<&str> = written["handlers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["rawname"].as_str())
        .collect();
    assert_eq!(
        handlers,
        ["core"],
        "a disabled module adds nothing: {written}"
    );
    let conf = std::fs::read_to_string(root.join("etc/extensions_modhost.conf"))
        .map_err(|e| e.to_string())?;
    assert!(!conf.contains("[phonebook-lookup]"), "{conf}");

    let enabled = run(modhost_enable, host, "phonebook", 0)?;
    assert_eq!(enabled["action"], "enabled", "{enabled}");
    let written = reload(host)?;
    assert_eq!(
        written["handlers"].as_array().map(Vec::len),
        Some(2),
        "{written}"
    );

    let gone = run(modhost_uninstall, host, "phonebook", 0)?;
    assert_eq!(gone["action"], "uninstalled", "{gone}");
    for verb in [
        modhost_enable,
        modhost_disable,
        modhost_rollback,
        modhost_uninstall,
    ] {
        let missing = run(verb, host, "phonebook", 0);
        assert!(
            missing.as_ref().is_err_and(|e| e.starts_with("status 4:")),
            "{missing:?}"
        );
        let empty = run(verb, host, "", 0);
        assert!(
            empty
                .as_ref()
                .is_err_and(|e| e.starts_with("status 1:") && e.contains("`rawname` is empty")),
            "{empty:?}"
        );
        let flagged = run(verb, host, "core", 0x40);
        assert!(
            flagged
                .as_ref()
                .is_err_and(|e| e.contains("unknown flags 0x40")),
            "{flagged:?}"
        );
    }
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}
