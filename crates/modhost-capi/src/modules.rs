//! What is done to one installed module — uninstall, enable, disable, rollback — and
//! `modhost_reload`, which rebuilds the configuration from the modules running.

use std::ffi::{c_char, c_int};

use crate::MODHOST_FORCE;
use crate::ffi::{Failure, guard, put, put_raw, str_arg};
use crate::host::{Host, host_arg};

/// A verb of one installed module, as `modhost::Host` has it: `force` is `MODHOST_FORCE`.
type ModuleVerb = fn(&modhost::Host, &str, bool) -> modhost::Result<modhost::Change>;

/// Runs `verb` on module `rawname`: the body every module verb of the C API shares.
///
/// # Safety
///
/// As each of them.
unsafe fn module_extern(
    verb: ModuleVerb,
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(change, std::ptr::null_mut());
            let host = &host_arg(host)?.host;
            let rawname = str_arg(rawname, "rawname")?;
            if flags & !MODHOST_FORCE != 0 {
                return Err(Failure::argument(format!("unknown flags {flags:#x}")));
            }
            if rawname.is_empty() {
                return Err(Failure::argument("`rawname` is empty"));
            }
            let done = verb(host, rawname, flags & MODHOST_FORCE != 0)?;
            put(change, serde_json::to_string(&done)?);
            Ok(())
        })
    }
}

/// Uninstalls module `rawname`, running its `uninstall()`. `flags` is 0 or
/// `MODHOST_FORCE` (even when others depend on it, or its module.xml says it cannot be
/// uninstalled).
///
/// On success, `*change` (when `change` is not NULL) is the JSON object of what was done,
/// which the caller frees with `modhost_string_free`.
///
/// # Safety
///
/// `host` is a live host; `rawname` is a NUL-terminated string; `change` and `error` are
/// NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_uninstall(
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        module_extern(
            modhost::Host::uninstall,
            host,
            rawname,
            flags,
            change,
            error,
        )
    }
}

/// Enables module `rawname`, running its `enable()`. `flags` is 0 or `MODHOST_FORCE`
/// (even when what it requires is not running). `*change` as `modhost_uninstall` gives it.
///
/// # Safety
///
/// As `modhost_uninstall`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_enable(
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { module_extern(modhost::Host::enable, host, rawname, flags, change, error) }
}

/// Disables module `rawname`, running its `disable()`; its data is kept. `flags` is 0 or
/// `MODHOST_FORCE` (even while running modules depend on it, or its module.xml says it
/// cannot be disabled). `*change` as `modhost_uninstall` gives it.
///
/// # Safety
///
/// As `modhost_uninstall`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_disable(
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { module_extern(modhost::Host::disable, host, rawname, flags, change, error) }
}

/// Rolls module `rawname` back to the version its last upgrade replaced, with the data
/// it had then. `flags` is 0 or `MODHOST_FORCE` (even when running modules need the
/// version it leaves). `*change` as `modhost_uninstall` gives it.
///
/// # Safety
///
/// As `modhost_uninstall`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_rollback(
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { module_extern(modhost::Host::rollback, host, rawname, flags, change, error) }
}

/// Runs `get_config` across the running modules, a fail-closed pipeline in priority
/// order, and writes what it builds to `etc/extensions_modhost.conf` in the root,
/// atomically: what an application does after its modules change, as FreePBX's "Apply
/// Config". A failing handler writes nothing (`MODHOST_ERROR_FAILED`, naming it).
///
/// On success, `*reload` (when `reload` is not NULL) is the JSON object
/// `{"path", "handlers": [{"rawname", "handler", "priority"}, …], "bytes"}`, which the
/// caller frees with `modhost_string_free`.
///
/// # Safety
///
/// `host` is a live host; `reload` and `error` are NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_reload(
    host: *const Host,
    reload: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(reload, std::ptr::null_mut());
            let written = host_arg(host)?.host.reload()?;
            put(reload, serde_json::to_string(&written)?);
            Ok(())
        })
    }
}
