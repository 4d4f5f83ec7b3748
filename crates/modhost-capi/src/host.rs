//! An open root, from C: opening and closing it, changing its modules, declaring hook
//! points and dispatching. Each function is one call of `modhost::Host`; what it returns
//! crosses as JSON.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int};
use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use modhost::{DispatchOptions, Embedding, HookPoint, OnError, Options, Shape};

use crate::calls::{Calls, Entered};
use crate::cancel::CancelHandle;
use crate::capability::{Capability, Context};
use crate::ffi::{
    Failure, checked_path, guard, opt_path_arg, path_array, put, put_raw, quietly, slice_arg,
    str_arg,
};
use crate::limits::Limits;
use crate::{
    MODHOST_FORCE, MODHOST_GRANT, MODHOST_ON_ERROR_CONTINUE, MODHOST_ON_ERROR_STOP,
    MODHOST_REINSTALL, MODHOST_SHAPE_BROADCAST, MODHOST_SHAPE_PIPELINE,
};

/// An open modhost root. Made by `modhost_open`, freed by `modhost_close`.
///
/// Every function taking a `const modhost_host *` may be called from several threads at
/// once on the same host: dispatches run in parallel, and changes to the root take turns
/// (one process or thread changes a root at a time, and a change waits, without a time
/// limit, for the one before it; readers never wait). Handlers that use the state
/// database take turns at it, each from its first statement (a read too) to its end, so
/// that what one read still holds when it writes: under hundreds of lookups at once, a
/// handler waiting past its deadline fails with kind `busy`. A change also waits, up to 30 s,
/// for a dispatch whose handler has written to finish, then fails with
/// `MODHOST_ERROR_LOCKED` (try again). A change asked for from inside a dispatch on the
/// same thread (from a capability callback) is refused at once, `MODHOST_ERROR_REFUSED`:
/// it would wait for that dispatch.
///
/// wasmtime turns a module's faults into traps with signal handlers (on Linux x86-64
/// SIGSEGV, SIGILL and SIGFPE; on macOS, FreeBSD and 32-bit ARM SIGBUS too) installed
/// when the first host is opened, which pass on signals that
/// are not theirs to the handlers installed before. An application that installs its own
/// handlers for those signals must do it before `modhost_open`, and never after: a
/// handler installed later takes the signals first, and a module's fault then ends the
/// process.
///
/// A host reserves address space for its pool of sandboxes (a few TiB of it, mapped
/// inaccessible until used; memory is only committed as modules use it): a process under
/// `ulimit -v` needs no limit, and valgrind cannot run it. It also takes about 2,000
/// memory mappings, of the 65,530 Linux allows a process by default
/// (`vm.max_map_count`): about 30 hosts fit in one process. Open one host per root and
/// share it between threads. Dispatches beyond the pool (a
/// few hundred handlers running at once) wait for a slot until their deadline, then fail
/// with kind `busy`. A dispatch needs no particular thread stack: a thread with less than
/// 3 MiB left runs the module's call on a stack segment of its own.
///
/// The handle is never freed, only the host in it: a thread that begins a call as
/// another closes the host (an application shutting down) reads a live handle that
/// refuses the call. It is the size of two pointers and a few counters.
pub struct Host {
    /// The open host, read only through a call counted in `calls`, and dropped by
    /// `modhost_close` once none is under way.
    open: UnsafeCell<ManuallyDrop<Box<modhost::Host>>>,
    /// The calls under way, which closing waits for.
    calls: Calls,
}

// SAFETY: `open` is read only from inside a call counted in `calls` (`Calls::enter`), and
// dropped only when none is under way and none can begin (`Calls::close`); what is read,
// `modhost::Host`, is itself shareable (checked below).
unsafe impl Sync for Host {}

// modhost.h promises that a host may be used from several threads at once: this stops
// compiling if `modhost::Host` ever stops being shareable.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<modhost::Host>();
    shareable::<Host>();
};

impl Host {
    fn new(open: modhost::Host) -> Self {
        Self {
            open: UnsafeCell::new(ManuallyDrop::new(Box::new(open))),
            calls: Calls::default(),
        }
    }

    /// The calls under way on it.
    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The open host.
    ///
    /// # Safety
    ///
    /// Only from inside a call counted in [`Host::calls`].
    pub(crate) unsafe fn open(&self) -> &modhost::Host {
        // SAFETY: not dropped while a call is counted in (the caller's contract).
        unsafe { &*self.open.get() }
    }
}

/// Opens the root directory `root`, creating it on first use, and recovers what an
/// interrupted change left.
///
/// `limits`, when not NULL, sets the limits of every call (else the root's `modhost.toml`,
/// else the defaults); a limit of 0 that would fail every call, or a memory cap larger
/// than a sandbox holds (256 MiB) or under one WebAssembly page (64 KiB), is
/// `MODHOST_ERROR_ARGUMENT`. The `n_capabilities` capabilities of `capabilities` are linked
/// into every module that imports one of their interfaces (and is granted it, if it
/// needs a grant), one capability per WIT package; the host keeps what it needs of them
/// and of `limits`, so the caller may free them once this returns.
///
/// On success, `*host` is the open host, which the caller closes with `modhost_close`.
///
/// The root's `modhost.toml` (see the README's "A root") holds what the C API does not
/// take: what modules' `<supported>` and `<depends>` are checked against (`[platform]`:
/// `version = "16.0.40"`, `engine = { name = "asterisk", version = "18.2" }`; without
/// it they are warned about, not checked), quotas, and the package directory that
/// `modhost_install` looks names up in when `from` is NULL.
///
/// A host serves the process that opened it. A process forked from one that used
/// modhost has none of the threads modhost started there (and SQLite's connections are
/// not used across a fork): every call on an inherited host fails saying so, and so does
/// opening a host there. Open hosts only in processes not forked from one that used
/// modhost: each PHP-FPM or prefork worker its own, the master none.
///
/// # Safety
///
/// `root` is a NUL-terminated string; `limits` is NULL or a `modhost_limits`;
/// `capabilities` points to `n_capabilities` live capabilities (or is NULL when it is 0);
/// `host` is valid for one pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_open(
    root: *const c_char,
    limits: *const Limits,
    capabilities: *const *const Capability,
    n_capabilities: usize,
    host: *mut *mut Host,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(host, std::ptr::null_mut());
            if host.is_null() {
                return Err(Failure::argument("`host` is NULL"));
            }
            let root = opt_path_arg(root).ok_or_else(|| Failure::argument("`root` is NULL"))?;
            let root = checked_path(root, "root")?;
            let mut embedding = Embedding::new();
            if let Some(limits) = limits.as_ref() {
                embedding = embedding.limits(limits.to_modhost()?);
            }
            let given = slice_arg(capabilities, n_capabilities, "capabilities")?;
            for (i, capability) in given.iter().enumerate() {
                let capability = capability
                    .as_ref()
                    .ok_or_else(|| Failure::argument(format!("`capabilities[{i}]` is NULL")))?;
                let twice = given[..i]
                    .iter()
                    .filter_map(|earlier| earlier.as_ref())
                    .any(|earlier| earlier.package() == capability.package());
                if twice {
                    return Err(Failure::argument(format!(
                        "`capabilities[{i}]` gives `{}` again: one capability per package",
                        capability.package()
                    )));
                }
                if capability.is_empty() {
                    return Err(Failure::argument(format!(
                        "`capabilities[{i}]` (`{}`) has no interface: give it one with \
                         `modhost_capability_add` first",
                        capability.package()
                    )));
                }
                embedding = embedding.capability(capability.linked());
            }
            let opened = Host::new(embedding.open(root)?);
            put_raw(host, Box::into_raw(Box::new(opened)));
            Ok(())
        })
    }
}

/// Closes `host`, once every call on it under way in other threads has returned: it
/// cancels their dispatches (their handlers stop at once, their writes are rolled back,
/// and each returns `"cancelled": true`), stops a change under way before it commits
/// (it fails, and nothing of it is kept), and waits for them. A call begun meanwhile or
/// after, from inside one of them (a callback dispatching again) or from another thread
/// racing the close, fails with `MODHOST_ERROR_ARGUMENT`: the handle stays valid memory
/// for that, and only the host in it is freed. Closed from inside one of its own calls (a
/// capability callback), it cannot wait for that call: it is then left open, and refuses
/// every call after, until the process ends. Closed again, or by two threads at once, the
/// later close does nothing. In a process forked from the one that opened it, it only
/// lets go of the handle, at once: the host there is the parent's copy, whose calls under
/// way at the fork never end, and nothing of it is freed. NULL is ignored.
///
/// # Safety
///
/// `host` is NULL or a host from `modhost_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_close(host: *mut Host) {
    // SAFETY: made by `Box::into_raw` in `modhost_open`, and never freed.
    let Some(handle) = (unsafe { host.as_ref() }) else {
        return;
    };
    // Entered, to read the host: refused when it is closed or closing already.
    let forked = match Calls::enter(handle) {
        Ok(open) => quietly(true, || open.check_process().is_err()),
        Err(_) => return,
    };
    // What the calls under way run is stopped, so that closing does not wait out their
    // deadlines: dispatches are cancelled, and a change stops before it commits.
    let stop = || {
        // SAFETY: the host is dropped only below, by this thread, once `close` returned
        // true: while `close` runs it is alive, and only read.
        let open = unsafe { &**handle.open.get() };
        open.cancel_dispatches();
        open.interruption().cancel();
    };
    if forked || !quietly(false, || handle.calls().close(stop)) {
        return;
    }
    // SAFETY: no call on it is under way, and none begins (`close` returned true once).
    // Closing ends the host's pool and engine, on a stack segment of its own where the
    // thread's is small.
    quietly((), || {
        modhost::embed::with_stack(|| unsafe {
            ManuallyDrop::drop(&mut *handle.open.get());
        })
    });
}

/// The open host behind `host`.
///
/// # Safety
///
/// `host` is NULL or a host from `modhost_open`.
pub(crate) unsafe fn host_arg<'a>(host: *const Host) -> Result<Entered<'a>, Failure> {
    // SAFETY: the caller's contract.
    let host = unsafe { host.as_ref() }.ok_or_else(|| Failure::argument("`host` is NULL"))?;
    // Entering takes no lock: in a forked child, one a parent's thread held at the fork
    // is held for ever.
    let open = Calls::enter(host)?;
    open.check_process()?;
    Ok(open)
}

/// The options `flags` (`MODHOST_GRANT`, `MODHOST_FORCE`, `MODHOST_REINSTALL`) stand for.
fn options(flags: u32) -> Result<Options, Failure> {
    if flags & !(MODHOST_GRANT | MODHOST_FORCE | MODHOST_REINSTALL) != 0 {
        return Err(Failure::argument(format!("unknown flags {flags:#x}")));
    }
    Ok(Options {
        force: flags & MODHOST_FORCE != 0,
        grant: flags & MODHOST_GRANT != 0,
        reinstall: flags & MODHOST_REINSTALL != 0,
    })
}

/// The body of `modhost_install` and `modhost_upgrade`, which differ only in the verb
/// (`Host::install_from` or `Host::upgrade_from`): the packages `names` resolves to in
/// `from`, installed or upgraded; what was done, as JSON.
///
/// # Safety
///
/// As `modhost_install`.
#[allow(clippy::too_many_arguments)]
unsafe fn change_extern(
    verb: Verb,
    host: *const Host,
    from: *const c_char,
    packages: *const *const c_char,
    n_packages: usize,
    flags: u32,
    changes: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(changes, std::ptr::null_mut());
            let done = change(
                verb,
                &*host_arg(host)?,
                opt_path_arg(from)
                    .map(|from| checked_path(from, "from"))
                    .transpose()?,
                path_array(packages, n_packages, "packages")?,
                flags,
            )?;
            put(changes, done);
            Ok(())
        })
    }
}

/// A change of packages: `Host::install_from` or `Host::upgrade_from`.
type Verb =
    fn(&modhost::Host, &[&Path], Option<&Path>, Options) -> modhost::Result<Vec<modhost::Change>>;

fn change(
    verb: Verb,
    host: &modhost::Host,
    from: Option<&Path>,
    names: Vec<&Path>,
    flags: u32,
) -> Result<String, Failure> {
    // The arguments first: an unknown flag is the caller's mistake whatever the packages.
    let options = options(flags)?;
    let done = verb(host, &names, from, options)?;
    Ok(serde_json::to_string(&done)?)
}

/// Installs the `n_packages` `packages` in one transaction (dependencies first): each a
/// package file's path, or a module's rawname whose newest package in directory `from`
/// (when not NULL; else the root's configured `packages`) is taken. The modules they
/// require that are not installed and that directory holds come along, unless
/// `MODHOST_FORCE` sets dependencies aside. `flags` is 0 or
/// `MODHOST_GRANT` (grant the directories and capabilities the modules ask for),
/// `MODHOST_FORCE` (skip dependency checks) and `MODHOST_REINSTALL` or-ed together.
///
/// On success, `*changes` (when `changes` is not NULL) is a JSON array of what was done,
/// each `{"rawname", "action", "from", "to"}`, with `"requests"` (what its module.xml asks
/// for: a host directory as `{"path", "read_only", "granted"}`, an API of the application's
/// as `{"package", "needs_grant", "granted"}`, with `"provided": false` when this host was
/// not opened with that capability: the module cannot run here, and whether the
/// application that gives it needs a grant is not known) and
/// `"warnings"` (what an administrator should know: module.xml warnings, a weak
/// checksum) when there are any; the caller frees it with `modhost_string_free`. A
/// failure changes nothing.
///
/// # Safety
///
/// `host` is a live host; `from` is NULL or a NUL-terminated string; `packages` points to
/// `n_packages` NUL-terminated strings; `changes` and `error` are NULL or valid for one
/// pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_install(
    host: *const Host,
    from: *const c_char,
    packages: *const *const c_char,
    n_packages: usize,
    flags: u32,
    changes: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        change_extern(
            |host, names, from, options| host.install_from(names, from, options),
            host,
            from,
            packages,
            n_packages,
            flags,
            changes,
            error,
        )
    }
}

/// Upgrades installed modules to the `n_packages` `packages`, as `modhost_install` takes
/// them; the versions replaced are kept for a rollback.
///
/// # Safety
///
/// As `modhost_install`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_upgrade(
    host: *const Host,
    from: *const c_char,
    packages: *const *const c_char,
    n_packages: usize,
    flags: u32,
    changes: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        change_extern(
            |host, names, from, options| host.upgrade_from(names, from, options),
            host,
            from,
            packages,
            n_packages,
            flags,
            changes,
            error,
        )
    }
}

/// Lists the installed modules: on success, `*modules` is a JSON array in rawname order,
/// each `{"rawname", "name", "version", "status", "reason", …}`, which the caller frees
/// with `modhost_string_free`.
///
/// # Safety
///
/// `host` is a live host; `modules` is valid for one pointer write; `error` is NULL or
/// valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_list(
    host: *const Host,
    modules: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(modules, std::ptr::null_mut());
            if modules.is_null() {
                return Err(Failure::argument("`modules` is NULL"));
            }
            let listed = host_arg(host)?.list()?;
            put(modules, serde_json::to_string(&listed)?);
            Ok(())
        })
    }
}

/// Declares how hook point `hook` runs: `shape` is `MODHOST_SHAPE_BROADCAST` (every
/// handler gets the payload) or `MODHOST_SHAPE_PIPELINE` (each gets the previous output);
/// `on_error` is `MODHOST_ON_ERROR_CONTINUE` (fail-open) or `MODHOST_ON_ERROR_STOP`
/// (fail-closed); `timeout_ms`, when not 0, is each handler's deadline (at most a day), replacing the
/// call timeout of the hook point's limits (the other limits stay as they are). With 0,
/// its calls run under the limits the root's `modhost.toml` sets for it
/// (`[hooks."NAME"]`), else the host's (those given to `modhost_open`, else the root's
/// `modhost.toml`'s `[limits]`, else the defaults).
/// Undeclared hook points are broadcast and fail-open, except `get_config`, which is a
/// fail-closed pipeline (what `modhost reload` runs): declaring it otherwise, or a hook
/// point named "", is `MODHOST_ERROR_ARGUMENT`.
///
/// # Safety
///
/// `host` is a live host; `hook` is a NUL-terminated string; `error` is NULL or valid for
/// one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_declare(
    host: *const Host,
    hook: *const c_char,
    shape: u32,
    on_error: u32,
    timeout_ms: u64,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            let host = host_arg(host)?;
            let name = str_arg(hook, "hook")?.to_owned();
            let shape = match shape {
                MODHOST_SHAPE_BROADCAST => Shape::Broadcast,
                MODHOST_SHAPE_PIPELINE => Shape::Pipeline,
                other => return Err(Failure::argument(format!("unknown shape {other}"))),
            };
            let on_error = match on_error {
                MODHOST_ON_ERROR_CONTINUE => OnError::Continue,
                MODHOST_ON_ERROR_STOP => OnError::Stop,
                other => return Err(Failure::argument(format!("unknown on_error {other}"))),
            };
            let limits = (timeout_ms > 0).then(|| modhost::Limits {
                call_timeout: Duration::from_millis(timeout_ms),
                ..host
                    .hook_point(&name)
                    .limits
                    .unwrap_or_else(|| host.limits())
            });
            if let Some(limits) = &limits {
                limits
                    .check()
                    .map_err(|e| Failure::argument(format!("`timeout_ms`: {e}")))?;
            }
            host.declare(HookPoint {
                name,
                shape,
                on_error,
                limits,
            })?;
            Ok(())
        })
    }
}

/// Runs hook point `hook` with `payload` (any UTF-8 text, since modules take it as a WIT
/// string; JSON by convention) through every
/// running module's handler, in priority order, as it is declared. `context`, when not
/// NULL, is passed to every capability callback the dispatch makes (hooks fired from
/// inside it included): the channel the call is on, say. modhost never reads it, so it
/// need not be UTF-8; what a callback answers must be (a failure's message that is not
/// reaches the module with U+FFFD in place of what is not). `cancel`, when not NULL, stops
/// the dispatch when another thread calls `modhost_cancel` on it.
///
/// A handler's failure is not the dispatch's: on success, `*result` is the JSON object
/// `{"calls": [{"rawname", "priority", "handler", "ok", "output" | "error", "kind"}…],
/// "output": …, "stopped_by": …, "cancelled": true, "left_out": [{"rawname", "handler",
/// "priority", "cause", "why"}…]}` (`output` for a pipeline that ran through,
/// `stopped_by` when a fail-closed hook point stopped, `cancelled` only when it was,
/// `left_out` when handlers did not run or were set aside: `cause` is `broken`,
/// `changed`, `stopped` or `cancelled`), which the caller frees with `modhost_string_free`. `kind` is one of `timeout`,
/// `out-of-memory`, `too-many-resources`, `stack-overflow`, `trap`, `failed`,
/// `output-too-large`, `host`, `cancelled` and `busy` (the host was running as many
/// handlers at once as it has room for, or other handlers held the state database, until
/// the handler's deadline). A module
/// uninstalled or disabled while the dispatch runs is left out of it, as if it had not
/// been there, once its handler reaches the state database; one upgraded meanwhile
/// answers as its new version.
///
/// Returns `MODHOST_OK` whatever the handlers did; `MODHOST_ERROR_ARGUMENT`;
/// `MODHOST_ERROR_REFUSED` when no handler ran because the dispatch was nested past
/// `max_fire_depth`; `MODHOST_ERROR_FAILED` when the host cannot dispatch at all (a
/// process forked from the one that opened it, the state database unreadable).
///
/// A capability callback may dispatch again on the same host (from the thread it was
/// called on), up to `max_fire_depth` dispatches deep; such a dispatch ends with the call
/// it runs inside, at its deadline, and when it is cancelled unless given a `cancel` of
/// its own; while the handler it runs inside has written, its handlers' writes wait for
/// the write lock until their deadline. Its writes are its own, as the application's
/// action: kept when it ends, even if the call it runs inside then fails or is cancelled
/// (unlike a hook the module fires, which rolls back with the module's call).
///
/// # Safety
///
/// `host` is a live host; `hook` and `payload` are NUL-terminated strings; `context` is
/// NULL or a NUL-terminated string; `cancel` is NULL or a live cancel handle; `result` is
/// valid for one pointer write; `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_dispatch(
    host: *const Host,
    hook: *const c_char,
    payload: *const c_char,
    context: *const c_char,
    cancel: *const CancelHandle,
    result: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(result, std::ptr::null_mut());
            if result.is_null() {
                return Err(Failure::argument("`result` is NULL"));
            }
            let open = host_arg(host)?;
            let host = &*open;
            let hook = str_arg(hook, "hook")?;
            let payload = str_arg(payload, "payload")?;
            let options = DispatchOptions {
                data: (!context.is_null()).then(|| {
                    Arc::new(Context(CStr::from_ptr(context).to_owned()))
                        as modhost::embed::CallData
                }),
                cancel: cancel.as_ref().map(|handle| handle.0.clone()),
            };
            let dispatch = host.dispatch_with(hook, payload, &options)?;
            put(result, serde_json::to_string(&dispatch)?);
            Ok(())
        })
    }
}
