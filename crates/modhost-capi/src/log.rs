//! Where log records go: what modules log and print, and modhost's own records, handed to
//! the one callback an application sets with `modhost_set_log` (as Extism's
//! `extism_log_custom` hands them to a drain). A Rust application reads the same records
//! through its own `tracing` subscriber; a C or PHP one has no other way to see them.

use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::ffi::{Failure, guard};

/// An error: a record a module logged at `error`. (A handler's failure is in its
/// dispatch's result, `"ok": false` with its `"error"`, not logged.)
pub const MODHOST_LOG_ERROR: c_int = 1;
/// A warning: a module past its log budget, a component that cannot be cached.
pub const MODHOST_LOG_WARN: c_int = 2;
/// What modules log at `info` and print on stdout; modhost's own progress.
pub const MODHOST_LOG_INFO: c_int = 3;
/// Details: what a module wrote on stderr, a trap's whole backtrace.
pub const MODHOST_LOG_DEBUG: c_int = 4;
/// Everything, modules' `trace` records included.
pub const MODHOST_LOG_TRACE: c_int = 5;

/// Receives one log record.
///
/// - `user_data`: as given to `modhost_set_log`.
/// - `level`: `MODHOST_LOG_ERROR` to `MODHOST_LOG_TRACE`.
/// - `module`: the rawname of the module whose record (or printed line) it is, or NULL for
///   modhost's own.
/// - `message`: one record: its text, then each field as ` name=value` (a line a module
///   printed has ` stdout=true`). A module's text is its own: show it as untrusted.
///
/// Both strings are NUL-terminated, UTF-8, and valid only until the callback returns. It
/// is called on whichever thread made the record, often several at once, so it must be
/// safe to call from any thread; it should return promptly (a module's call waits for
/// it). Records made by modhost functions the callback itself calls are not passed to it.
/// It should not dispatch: a module's record is made inside the module's call, which may
/// hold the state database for its writes, so a dispatch from the callback may wait for
/// that call's deadline, and the call with it. Hand such work to another thread. Like a
/// capability callback it must return: nothing may be thrown or `longjmp` out of it (see
/// `modhost_callback`).
pub type LogCallback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: c_int,
        module: *const c_char,
        message: *const c_char,
    ),
>;

/// Where records go now.
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char),
    user_data: *mut c_void,
    /// The process that set it: in a process forked from that one, the threads that were
    /// inside its callback at the fork are not there to return from it.
    pid: u32,
}

// SAFETY: `modhost_set_log`'s contract: the callback may be called from any thread, with
// its `user_data`.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

/// The callback set, if any; taken out (an `Arc`) before it is called, so that a callback
/// setting another never waits for itself.
static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);
/// The process that set the callback now set (0: none set): the slot is taken only
/// briefly in it, and may be held for ever in a process forked from it.
static SET_BY: AtomicU32 = AtomicU32::new(0);
/// The most detailed level passed on (0: none).
static LEVEL: AtomicI32 = AtomicI32::new(0);
/// Whether this library's subscriber became the process's, or why not.
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

thread_local! {
    /// The sink whose callback this thread is inside, if any: what modhost functions it
    /// calls log is not passed to it again, and a `modhost_set_log` it calls waits for
    /// every call of the sink it replaces but its own.
    static IN_CALLBACK: std::cell::Cell<*const Sink> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Sends every log record at `level` or more severe (`MODHOST_LOG_ERROR` …
/// `MODHOST_LOG_TRACE`) to `callback` with `user_data`, from now on and for every host in
/// the process; a NULL callback (or a `level` of 0) stops them. Of the libraries modhost
/// uses, only wasmtime's warnings and errors are passed: below them, and from its HTTPS
/// client and TLS, records may show URLs with download keys.
///
/// In a process forked from one that set a callback, NULL stops the records at once, and
/// the calls of the callback under way at the fork (on threads this process does not
/// have) are not waited for; setting a callback there fails if one of the parent's
/// threads was taking the callback at the fork.
///
/// Without it, records are dropped. It sets the process's `tracing` subscriber, once: it
/// fails (`MODHOST_ERROR_FAILED`) in a process that already has one (a Rust application
/// linking the library, which reads the records through its own).
///
/// When it returns, no call of the callback set before is under way on any other thread:
/// its `user_data` may be freed, its code unloaded. (Called from inside that callback, it
/// does not wait for the call it is in.) The callback stays set until then, across
/// whatever the application does meanwhile: one that goes away first (a PHP closure,
/// freed when its request ends while the php-fpm worker goes on) must be unset with NULL
/// before it does, or the next record calls freed code.
///
/// # Safety
///
/// `callback`, when not NULL, is as `modhost_log_callback` says, and `user_data` is valid
/// for it until another call of `modhost_set_log` returns. `error` is NULL or valid for one
/// pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_set_log(
    callback: LogCallback,
    user_data: *mut c_void,
    level: c_int,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            if !(0..=MODHOST_LOG_TRACE).contains(&level) {
                return Err(Failure::argument(format!(
                    "`level` is {level}: it is 0 (none) or MODHOST_LOG_ERROR (1) to \
                     MODHOST_LOG_TRACE (5)"
                )));
            }
            INSTALLED
                .get_or_init(|| {
                    // Not `log`'s records too (what `try_init` would add): cranelift
                    // logs every function it compiles through `log`, and its calls
                    // would all be asked here.
                    tracing::subscriber::set_global_default(
                        tracing_subscriber::registry().with(Forward),
                    )
                    .map_err(|e| e.to_string())
                })
                .clone()
                .map_err(|e| {
                    Failure::failed(format!(
                        "this process already has a tracing subscriber, which gets modhost's \
                         records: {e}"
                    ))
                })?;
            let sink = callback.map(|callback| {
                Arc::new(Sink {
                    callback,
                    user_data,
                    pid: std::process::id(),
                })
            });
            let level = if sink.is_some() { level } else { 0 };
            if sink.is_none() {
                // First: records stop here even where the slot below cannot be had.
                LEVEL.store(0, Ordering::Relaxed);
            }
            let Some(mut slot) = slot() else {
                // Only in a process forked while a thread of its parent was taking the
                // callback: that thread is not here to let go of it.
                return match sink {
                    None => Ok(()),
                    Some(_) => Err(Failure::failed(
                        "this process was forked while another thread of its parent was \
                         taking the log callback: no callback can be set here (records \
                         stay off; NULL is accepted)",
                    )),
                };
            };
            SET_BY.store(sink.as_ref().map_or(0, |s| s.pid), Ordering::Relaxed);
            let before = std::mem::replace(&mut *slot, sink);
            drop(slot);
            LEVEL.store(level, Ordering::Relaxed);
            if let Some(before) = before {
                finished(&before);
            }
            Ok(())
        })
    }
}

/// The slot of the callback, to replace it; `None` in a process forked while a thread
/// of its parent held it, which no thread here will ever let go of. Held only for a
/// clone or a swap, so waited for only that long.
fn slot() -> Option<std::sync::RwLockWriteGuard<'static, Option<Arc<Sink>>>> {
    let set_by = SET_BY.load(Ordering::Relaxed);
    if set_by == 0 || set_by == std::process::id() {
        return Some(
            SINK.write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }
    let started = std::time::Instant::now();
    loop {
        match SINK.try_write() {
            Ok(slot) => return Some(slot),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if started.elapsed() > std::time::Duration::from_secs(1) {
                    return None;
                }
                std::thread::yield_now();
            }
        }
    }
}

/// Waits until no thread but this one is in a call of `sink`'s callback: each call holds
/// a clone of it (and this thread's own, when it is inside a call of this very sink,
/// holds another; inside another sink's, it holds none of this one). In a process forked
/// from the one that set it, the calls under way at the fork are on threads this process
/// does not have: they never end, and are not waited for.
fn finished(sink: &Arc<Sink>) {
    if sink.pid != std::process::id() {
        return;
    }
    let inside = IN_CALLBACK.with(std::cell::Cell::get) == Arc::as_ptr(sink);
    let own = 1 + usize::from(inside);
    while Arc::strong_count(sink) > own {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The layer that passes records on.
struct Forward;

/// `level` as the header numbers it.
fn number(level: Level) -> c_int {
    match level {
        Level::ERROR => MODHOST_LOG_ERROR,
        Level::WARN => MODHOST_LOG_WARN,
        Level::INFO => MODHOST_LOG_INFO,
        Level::DEBUG => MODHOST_LOG_DEBUG,
        Level::TRACE => MODHOST_LOG_TRACE,
    }
}

/// Whether a record of `metadata` is passed on at the level set now.
fn wanted(metadata: &Metadata<'_>) -> bool {
    let level = number(*metadata.level());
    let ours = metadata.target().starts_with("modhost");
    level <= LEVEL.load(Ordering::Relaxed) && (ours || level <= MODHOST_LOG_WARN)
}

impl<S: Subscriber> Layer<S> for Forward {
    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Another library's detail is never passed, whatever the level: said once, so that
        // compiling (cranelift's many trace records) costs nothing here. The rest is asked
        // at every record, since the level may change at any time.
        let ours = metadata.target().starts_with("modhost");
        if !ours && *metadata.level() > Level::WARN {
            return tracing::subscriber::Interest::never();
        }
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        wanted(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !wanted(event.metadata()) || !IN_CALLBACK.with(std::cell::Cell::get).is_null() {
            return;
        }
        let Some(sink) = SINK
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        let mut record = Record::default();
        event.record(&mut record);
        let message = text(&(record.message + &record.fields));
        let module = record.module.as_deref().map(text);
        IN_CALLBACK.with(|c| c.set(Arc::as_ptr(&sink)));
        // SAFETY: `modhost_set_log`'s contract; both strings live until it returns.
        unsafe {
            (sink.callback)(
                sink.user_data,
                number(*event.metadata().level()),
                module.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
                message.as_ptr(),
            );
        }
        IN_CALLBACK.with(|c| c.set(std::ptr::null()));
    }
}

/// `text` as a C string: a NUL inside (a module's own text may hold one) is shown as `\0`.
fn text(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// One record's parts: its message, the module it is of, and its other fields.
#[derive(Default)]
struct Record {
    message: String,
    module: Option<String>,
    fields: String,
}

impl Visit for Record {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "module" => self.module = Some(value.to_owned()),
            // Metadata the `log` bridge records.
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}
