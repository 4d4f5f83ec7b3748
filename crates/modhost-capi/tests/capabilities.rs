//! A capability's names, checked as the application gives them: WIT package, interface
//! and function names, no function or interface twice, nothing in modhost's or WASI's
//! namespaces — each refused with MODHOST_ERROR_ARGUMENT, before any host is opened.

// Calling the C API is calling `unsafe extern "C"` functions with raw pointers.
#![allow(unsafe_code)]

mod common;

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

use common::{c, check};
use modhost_capi::*;

unsafe extern "C" fn answer_nothing(
    _: *mut c_void,
    _: *const c_char,
    _: *const c_char,
    _: *const c_char,
    _: *mut *mut c_char,
) -> c_int {
    0
}

/// A new capability of `package`, or the status and message.
fn new(package: &str) -> Result<*mut Capability, String> {
    let (mut capability, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status =
        unsafe { modhost_capability_new(c(package).as_ptr(), false, &mut capability, &mut error) };
    check(status, error).map(|()| capability)
}

/// Adds `interface` with `functions` to `capability`.
fn add(capability: *mut Capability, interface: &str, functions: &[&str]) -> Result<(), String> {
    let names: Vec<_> = functions.iter().map(|f| c(f)).collect();
    let pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_capability_add(
            capability,
            c(interface).as_ptr(),
            pointers.as_ptr(),
            pointers.len(),
            Some(answer_nothing),
            null_mut(),
            &mut error,
        )
    };
    check(status, error)
}

/// Asserts `result` is MODHOST_ERROR_ARGUMENT with `words` in its message.
fn refused<T: std::fmt::Debug>(result: Result<T, String>, words: &str) {
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.starts_with("status 1:") && e.contains(words)),
        "{result:?}"
    );
}

#[test]
fn package_interface_and_function_names_are_wit_names_given_once() -> Result<(), String> {
    for package in [
        "a:b/x@1.0.0",
        "a:b:c",
        "pbx",
        "pbx:",
        "has space:x",
        "pbx:tele_phony",
    ] {
        refused(new(package), "is not a WIT package name");
    }
    refused(new("modhost:module"), "modhost's own");
    refused(new("wasi:cli"), "WASI's");
    // Names differing only in case are one name to the component model, and module.xml
    // names packages in lower case: one with a capital could never be asked for.
    refused(new("MODHOST:module"), "modhost's own");
    refused(new("PBX:telephony"), "lower-case words joined by `-`");

    let capability = new("pbx:telephony")?;
    // Each said for what is wrong with it.
    for (interface, said) in [
        (
            "pbx:telephony/calls",
            "`pbx:telephony/calls` has no version",
        ),
        (
            "pbx:telephony/calls@banana",
            "`banana` is not a semver version",
        ),
        (
            "pbx:telephony/has space@1.0.0",
            "`has space` is not a WIT interface name",
        ),
        (
            "pbx:other/calls@1.0.0",
            "`pbx:other/calls@1.0.0` is not an interface of `pbx:telephony`",
        ),
        (
            "pbx:telephony/@1.0.0",
            "`pbx:telephony/@1.0.0` names no interface",
        ),
    ] {
        refused(add(capability, interface, &["originate"]), said);
    }
    refused(
        add(capability, "pbx:telephony/calls@1.0.0", &[""]),
        "is not a WIT function name",
    );
    refused(
        add(capability, "pbx:telephony/calls@1.0.0", &["has space"]),
        "is not a WIT function name",
    );
    refused(
        add(
            capability,
            "pbx:telephony/calls@1.0.0",
            &["originate", "hangup", "originate"],
        ),
        "names function `originate` twice",
    );
    add(
        capability,
        "pbx:telephony/calls@1.0.0",
        &["originate", "channel-state", "get-HTTP"],
    )?;
    for again in ["pbx:telephony/calls@1.0.0", "pbx:telephony/calls@1.1.0"] {
        refused(
            add(capability, again, &["hangup"]),
            "`pbx:telephony/calls@1.0.0` is added already",
        );
    }
    add(capability, "pbx:telephony/lines@1.0.0", &["hangup"])?;

    // One capability per package at open.
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let both = [capability.cast_const(), capability.cast_const()];
    let (mut host, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_open(
            c(&root.path().to_string_lossy()).as_ptr(),
            std::ptr::null(),
            both.as_ptr(),
            2,
            &mut host,
            &mut error,
        )
    };
    refused(
        check(status, error),
        "`capabilities[1]` gives `pbx:telephony` again",
    );
    assert!(host.is_null());
    // A count no array can hold (-1 as a size_t) is refused, not read.
    let one = [c("hangup")];
    let names = [one[0].as_ptr()];
    // SAFETY: the counts are refused before the arrays are read.
    let (opened, added) = unsafe {
        (
            modhost_open(
                c(&root.path().to_string_lossy()).as_ptr(),
                std::ptr::null(),
                both.as_ptr(),
                usize::MAX,
                &mut host,
                &mut error,
            ),
            {
                let mut added_error = null_mut();
                let status = modhost_capability_add(
                    capability,
                    c("pbx:telephony/trunks@1.0.0").as_ptr(),
                    names.as_ptr(),
                    usize::MAX,
                    Some(answer_nothing),
                    null_mut(),
                    &mut added_error,
                );
                check(status, added_error)
            },
        )
    };
    refused(check(opened, error), "`capabilities` cannot hold");
    refused(added, "`functions` cannot hold");
    assert!(host.is_null());
    // SAFETY: made above, freed once.
    unsafe { modhost_capability_free(capability) };
    Ok(())
}
