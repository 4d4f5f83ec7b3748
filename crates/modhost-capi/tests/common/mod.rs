//! What the tests of the C API share: strings across the boundary, statuses as results.

#![allow(dead_code, reason = "each test file uses its own part of it")]

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::Path;
use std::ptr::{null, null_mut};

use modhost_capi::{Host, MODHOST_OK, modhost_open, modhost_string_free};

/// A string modhost returned, freed.
pub fn take(string: *mut c_char) -> Option<String> {
    if string.is_null() {
        return None;
    }
    // SAFETY: a string modhost returned, read then freed once.
    let text = unsafe { CStr::from_ptr(string) }
        .to_string_lossy()
        .into_owned();
    unsafe { modhost_string_free(string) };
    Some(text)
}

/// Turns a status and its message into a `Result`.
pub fn check(status: c_int, error: *mut c_char) -> Result<(), String> {
    match (status, take(error)) {
        (MODHOST_OK, None) => Ok(()),
        (status, message) => Err(format!("status {status}: {message:?}")),
    }
}

/// `text` as a C string.
pub fn c(text: &str) -> CString {
    CString::new(text).unwrap_or_default()
}

/// A host opened on `root` with the defaults and no capabilities.
pub fn open(root: &Path) -> Result<*mut Host, String> {
    let (mut host, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    // The path's bytes as they are: a Unix path need not be UTF-8.
    let root = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str()))
        .map_err(|e| e.to_string())?;
    let status = unsafe { modhost_open(root.as_ptr(), null(), null(), 0, &mut host, &mut error) };
    check(status, error).map(|()| host)
}
