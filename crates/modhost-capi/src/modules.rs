//! What is done to one installed module — uninstall, enable, disable, rollback, grant,
//! revoke — and asked of it (`modhost_info`), and `modhost_reload`, which rebuilds the
//! configuration from the modules running.

use std::ffi::{c_char, c_int};

use crate::ffi::{Failure, guard, put, put_raw, str_arg};
use crate::host::{Host, host_arg};
use crate::{MODHOST_FORCE, MODHOST_SKIP_CODE};

/// Runs `body` on module `rawname` and writes what it returns, as JSON, to `*out` (when
/// `out` is not NULL): the body every function of one module shares.
///
/// # Safety
///
/// As each of them.
unsafe fn on_module<T: serde::Serialize>(
    host: *const Host,
    rawname: *const c_char,
    out: *mut *mut c_char,
    error: *mut *mut c_char,
    body: impl FnOnce(&modhost::Host, &str) -> Result<T, Failure>,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(out, std::ptr::null_mut());
            let open = host_arg(host)?;
            let host = &*open;
            let rawname = str_arg(rawname, "rawname")?;
            if rawname.is_empty() {
                return Err(Failure::argument("`rawname` is empty"));
            }
            if let Some(problem) = modhost::manifest::rawname_problem(rawname) {
                return Err(Failure::argument(format!("`rawname`: {problem}")));
            }
            let done = body(host, rawname)?;
            put(out, serde_json::to_string(&done)?);
            Ok(())
        })
    }
}

/// Runs `verb` on module `rawname` with `flags`, of which it allows those in `allowed`.
///
/// # Safety
///
/// As each verb.
unsafe fn module_extern(
    verb: impl FnOnce(&modhost::Host, &str, u32) -> modhost::Result<modhost::Change>,
    allowed: u32,
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        on_module(host, rawname, change, error, |host, rawname| {
            if flags & !allowed != 0 {
                return Err(Failure::argument(format!("unknown flags {flags:#x}")));
            }
            Ok(verb(host, rawname, flags)?)
        })
    }
}

/// Whether `flags` hold `MODHOST_FORCE`.
fn forced(flags: u32) -> bool {
    flags & MODHOST_FORCE != 0
}

/// Runs `verb`, whose one flag is `MODHOST_FORCE`, as [`module_extern`] does.
///
/// # Safety
///
/// As each verb.
unsafe fn forced_only(
    verb: fn(&modhost::Host, &str, bool) -> modhost::Result<modhost::Change>,
    host: *const Host,
    rawname: *const c_char,
    flags: u32,
    change: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    let verb = move |host: &modhost::Host, rawname: &str, flags| verb(host, rawname, forced(flags));
    // SAFETY: the caller's contract.
    unsafe { module_extern(verb, MODHOST_FORCE, host, rawname, flags, change, error) }
}

/// Uninstalls module `rawname`, running its `uninstall()`. `flags` is 0, or any of
/// `MODHOST_FORCE` (even when others depend on it, or its module.xml says it cannot be
/// uninstalled) and `MODHOST_SKIP_CODE` (without running its `uninstall()`: the change's
/// `action` is then `"deleted"`) or-ed together. A module whose component cannot be loaded
/// (it imports a capability the application no longer registers) fails with
/// `MODHOST_ERROR_REFUSED` unless its code is skipped.
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
            |host, rawname, flags| match flags & MODHOST_SKIP_CODE {
                0 => host.uninstall(rawname, forced(flags)),
                _ => host.delete(rawname, forced(flags)),
            },
            MODHOST_FORCE | MODHOST_SKIP_CODE,
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
    unsafe { forced_only(modhost::Host::enable, host, rawname, flags, change, error) }
}

/// Disables module `rawname`, running its `disable()`; its data is kept. `flags` is 0, or
/// any of `MODHOST_FORCE` (even while running modules depend on it, or its module.xml says
/// it cannot be disabled) and `MODHOST_SKIP_CODE` (without running its `disable()`) or-ed
/// together. A module whose component cannot be loaded fails with
/// `MODHOST_ERROR_REFUSED` unless its code is skipped. `*change` as `modhost_uninstall`
/// gives it.
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
    unsafe {
        module_extern(
            |host, rawname, flags| {
                let options = modhost::DisableOptions {
                    force: forced(flags),
                    skip_code: flags & MODHOST_SKIP_CODE != 0,
                };
                host.disable_with(rawname, options)
            },
            MODHOST_FORCE | MODHOST_SKIP_CODE,
            host,
            rawname,
            flags,
            change,
            error,
        )
    }
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
    unsafe { forced_only(modhost::Host::rollback, host, rawname, flags, change, error) }
}

/// Grants installed module `rawname` what its module.xml's `<capabilities>` ask for: the
/// host directories and the application's capabilities (as `MODHOST_GRANT` does at
/// install, and `modhost grant` on the command line): for a module installed without it,
/// or whose grants were revoked.
///
/// On success, `*requests` (when `requests` is not NULL) is the JSON array of what it asks
/// for, each with whether it is now granted, which the caller frees with
/// `modhost_string_free`.
///
/// # Safety
///
/// `host` is a live host; `rawname` is a NUL-terminated string; `requests` and `error`
/// are NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_grant(
    host: *const Host,
    rawname: *const c_char,
    requests: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        on_module(host, rawname, requests, error, |host, rawname| {
            Ok(host.grant(rawname)?)
        })
    }
}

/// Withdraws every grant of installed module `rawname`: its directories are no longer
/// mounted, and a module that imports a capability needing a grant no longer runs at
/// all (each of its calls fails, naming the capability, as its install would have been
/// refused), until `modhost_grant`. It takes effect for the module's calls that start after it returns:
/// one already running keeps what it was given until it ends (at its deadline at the
/// latest); cancel its dispatch to stop it sooner.
///
/// # Safety
///
/// `host` is a live host; `rawname` is a NUL-terminated string; `error` is NULL or valid
/// for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_revoke(
    host: *const Host,
    rawname: *const c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        on_module(
            host,
            rawname,
            std::ptr::null_mut(),
            error,
            |host, rawname| Ok(host.revoke(rawname)?),
        )
    }
}

/// What is known of installed module `rawname`, as `modhost info --json` shows it: its
/// record, module.xml, tables, grants, what it keeps and may keep, its component's
/// imports and exports, and `refused` when this host would not run its component.
///
/// On success, `*info` is that JSON object, which the caller frees with
/// `modhost_string_free`.
///
/// # Safety
///
/// `host` is a live host; `rawname` is a NUL-terminated string; `info` is valid for one
/// pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_info(
    host: *const Host,
    rawname: *const c_char,
    info: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        on_module(host, rawname, info, error, |host, rawname| {
            if info.is_null() {
                return Err(Failure::argument("`info` is NULL"));
            }
            Ok(host.info(rawname)?)
        })
    }
}

/// Runs `get_config` across the running modules, a fail-closed pipeline in priority
/// order, and writes what it builds to `etc/extensions_modhost.conf` in the root,
/// atomically: what an application does after its modules change, as FreePBX's "Apply
/// Config". A failing handler writes nothing (`MODHOST_ERROR_FAILED`, naming it), and so
/// does a broken module with a `get_config` handler, whose part would be missing.
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
            let written = host_arg(host)?.reload()?;
            put(reload, serde_json::to_string(&written)?);
            Ok(())
        })
    }
}
