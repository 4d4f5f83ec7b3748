//! The C API of modhost, for applications not written in Rust (Asterisk and FreeSWITCH
//! are C, FreePBX is PHP): a shared and a static library, `libmodhost_capi`, and its
//! header, `include/modhost.h`, written from this source by cbindgen (the `header` test
//! fails when the committed one is stale; `MODHOST_BLESS=1` rewrites it).
//!
//! Shaped after wasmtime's and Extism's C APIs: opaque handles made and freed by the
//! library; every fallible function returns a status code and, through a last
//! `char **error`, a message the caller frees; host functions are callbacks with a
//! `user_data` pointer; a cancel handle made from the host stops a call from another
//! thread. Values cross as JSON text, so that a C or PHP application needs no structs
//! beyond the limits.
//!
//! # Map
//!
//! - `host.rs`: `modhost_open` and `modhost_close`, installing and upgrading packages,
//!   the list, hook points (`modhost_declare`, `modhost_dispatch`) and cancel handles.
//! - `modules.rs`: one installed module's verbs (uninstall, enable, disable, rollback,
//!   grant, revoke), its info, and `modhost_reload`.
//! - `capability.rs`: capabilities from C callbacks, linked with wasmtime's dynamic API,
//!   and what a callback asks of the call it serves (`modhost_call_stopped`).
//! - `calls.rs`: the calls under way on a host, so that `modhost_close` waits for them.
//! - `limits.rs`: `modhost_limits`, the sandbox limits of a host's calls, as C sets them.
//! - `json.rs`: WIT values as JSON and back.
//! - `log.rs`: log records (modules' and modhost's own) to the application's callback.
//! - `malloced.rs`: strings allocated with `malloc` (callbacks' answers, `modhost_string_new`).
//! - `ffi.rs`: the boundary — no panic crosses it, strings and errors cross one way.

// Every extern function dereferences the raw pointers C gives it: each is `unsafe` with its
// contract in `# Safety`, and each block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int};

mod calls;
mod cancel;
mod capability;
mod ffi;
mod host;
mod json;
mod limits;
mod log;
mod malloced;
mod modules;
mod serving;

pub use cancel::{
    CancelHandle, modhost_cancel, modhost_cancel_handle_free, modhost_cancel_handle_new,
};
pub use capability::{
    Callback, Capability, modhost_capability_add, modhost_capability_free, modhost_capability_new,
};
pub use host::{
    Host, modhost_close, modhost_declare, modhost_dispatch, modhost_install, modhost_list,
    modhost_open, modhost_upgrade,
};
pub use limits::{Limits, modhost_limits_default};
pub use log::{
    LogCallback, MODHOST_LOG_DEBUG, MODHOST_LOG_ERROR, MODHOST_LOG_INFO, MODHOST_LOG_TRACE,
    MODHOST_LOG_WARN, modhost_set_log,
};
pub use malloced::modhost_string_new;
pub use modules::{
    modhost_disable, modhost_enable, modhost_grant, modhost_info, modhost_reload, modhost_revoke,
    modhost_rollback, modhost_uninstall,
};
pub use serving::{modhost_call_ms_left, modhost_call_stopped};

/// Success.
pub const MODHOST_OK: c_int = 0;
/// A bad argument: a NULL where a value is required, a string that is not UTF-8 (paths
/// are the system's bytes, any but NUL), an empty path or one longer than the system opens, a rawname outside module.xml's
/// grammar, a hook point name over 256 bytes, an unknown flag, shape or failure mode.
/// Nothing was done.
pub const MODHOST_ERROR_ARGUMENT: c_int = 1;
/// The operation failed; the message says why (a package refused, a state database
/// error, a module's `install()` failing…). A failed change changes nothing.
pub const MODHOST_ERROR_FAILED: c_int = 2;
/// A change was refused before anything changed: its plan cannot succeed (every reason
/// is in the message: a package file or directory missing, say), a package is refused for what it
/// holds (no archive, a bad module.xml, an unsafe entry), a module says it cannot be
/// removed, others depend on it, or its component is one this host does not run (another
/// WIT version, an import nobody provides).
pub const MODHOST_ERROR_REFUSED: c_int = 3;
/// The module named is not installed.
pub const MODHOST_ERROR_NOT_INSTALLED: c_int = 4;
/// A module imports a capability that needs an administrator's grant, and it was not
/// given (`MODHOST_GRANT`).
pub const MODHOST_ERROR_NOT_GRANTED: c_int = 5;
/// The state database stayed locked, for the 30 s a change waits, by a dispatch whose
/// handler wrote (or another process's change), or the module kept changing its data
/// directory while the change copied it (one of its handlers still running): try again.
/// (A change waits without a time limit for another thread's or process's change to end.)
pub const MODHOST_ERROR_LOCKED: c_int = 6;
/// modhost panicked: a bug, stopped at the boundary. The host may still be used.
pub const MODHOST_ERROR_PANIC: c_int = 99;

/// The most bytes a capability callback's answer may hold (16 MiB): a longer one fails
/// the module's call unread, as a module's own output past its limit does.
pub const MODHOST_MAX_ANSWER_BYTES: usize = 16_777_216;

/// The most bytes a capability callback's failure message may hold (64 KiB): a module
/// gets it as its `err`, and would pass on a longer one as its own error, where its
/// output limit would blame the module. A longer one fails the module's call as the
/// application's failure (kind `host`).
pub const MODHOST_MAX_ERROR_BYTES: usize = 65_536;

/// Install flag: grant the host directories and capabilities the modules ask for.
pub const MODHOST_GRANT: u32 = 1;
/// Change flag: skip dependency checks (never safety checks); uninstall a module others
/// depend on or that says it cannot be removed.
pub const MODHOST_FORCE: u32 = 2;
/// Install flag: install a module's installed version again, running its `upgrade()`.
pub const MODHOST_REINSTALL: u32 = 4;
/// Uninstall and disable flag: run none of the module's code — for a module whose
/// `uninstall()` or `disable()` keeps failing or never returns, or whose component this
/// application can no longer run (it imports a capability no longer registered).
/// Uninstalling removes its data as ever; disabling keeps it as it is.
pub const MODHOST_SKIP_CODE: u32 = 8;

/// Hook point shape: every handler gets the same payload.
pub const MODHOST_SHAPE_BROADCAST: u32 = 0;
/// Hook point shape: each handler gets the previous handler's output.
pub const MODHOST_SHAPE_PIPELINE: u32 = 1;
/// Hook point failure mode: a failing handler is reported and the next one runs.
pub const MODHOST_ON_ERROR_CONTINUE: u32 = 0;
/// Hook point failure mode: the first failure stops the chain.
pub const MODHOST_ON_ERROR_STOP: u32 = 1;

/// Frees a string modhost returned (a result, a message). NULL is ignored.
///
/// # Safety
///
/// `string` is NULL or a string modhost returned, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_string_free(string: *mut c_char) {
    if !string.is_null() {
        // SAFETY: made by `CString::into_raw` in `ffi::into_c`, freed once.
        ffi::quietly((), || drop(unsafe { CString::from_raw(string) }));
    }
}
