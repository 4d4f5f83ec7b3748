//! `pbx:telephony` as a C application gives it — one callback taking JSON — and the
//! calls the tests make through the C API around it.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use modhost_capi::*;
use modhost_test_support::packages_dir;
use serde_json::Value;

use crate::common::{c, check, take};

unsafe extern "C" {
    /// The C library's `strdup`: callbacks hand back `malloc`ed strings.
    pub(crate) fn strdup(s: *const c_char) -> *mut c_char;
}

/// What the telephony callback was called with: `(function, args, context)`.
#[derive(Default)]
pub(crate) struct Seen(pub(crate) Mutex<Vec<(String, Value, Option<String>)>>);

/// `pbx:telephony/calls` as a C application implements it: originate refuses a callee
/// that is not a number, every new channel rings, and the current channel is the
/// dispatch's context.
pub(crate) unsafe extern "C" fn telephony(
    user_data: *mut c_void,
    function: *const c_char,
    args_json: *const c_char,
    context: *const c_char,
    result_json: *mut *mut c_char,
) -> c_int {
    // SAFETY: modhost passes the `Seen` given with the callback and NUL-terminated strings
    // (context may be NULL).
    let (seen, function, args, context) = unsafe {
        (
            &*user_data.cast::<Seen>(),
            CStr::from_ptr(function).to_string_lossy().into_owned(),
            CStr::from_ptr(args_json).to_string_lossy().into_owned(),
            (!context.is_null()).then(|| CStr::from_ptr(context).to_string_lossy().into_owned()),
        )
    };
    let args: Value = serde_json::from_str(&args).unwrap_or_default();
    let callee = args["callee"].as_str().unwrap_or_default();
    if function == "originate"
        && let Some(answer) = misbehaving(callee)
    {
        // SAFETY: `result_json` is writable; `strdup` allocates with `malloc`.
        unsafe { *result_json = strdup(answer.as_ptr()) };
        return 0;
    }
    if function == "originate" && callee == "again" {
        return again(args_json, result_json);
    }
    if function == "originate" && callee == "wait" {
        return wait(seen, result_json);
    }
    let (status, answer) = match function.as_str() {
        "originate" => {
            let callee = args["callee"].as_str().unwrap_or_default();
            if callee == "blank" {
                (1, "  ".to_owned())
            } else if callee == "longerr" {
                // A failure's message one byte longer than one may be.
                (1, "x".repeat(MODHOST_MAX_ERROR_BYTES + 1))
            } else if callee == "latin1err" {
                // Marked here, said in Latin-1 below, as a PBX's caller names often are.
                (1, "no answer from Jos\u{e9}".to_owned())
            } else if callee.chars().all(|c| c.is_ascii_digit()) {
                let channel = format!("PJSIP/{}-00000001", args["caller"].as_str().unwrap_or(""));
                (0, serde_json::json!({ "ok": channel }).to_string())
            } else {
                (1, format!("cannot call `{callee}`"))
            }
        }
        "channel-state" => (0, r#"{"ok":"ringing"}"#.to_owned()),
        "current-channel" => (0, serde_json::json!(context).to_string()),
        _ => (1, format!("no function `{function}`")),
    };
    seen.0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((function, args, context));
    let answer = match answer.strip_suffix('\u{e9}') {
        Some(name) if status != 0 => [name.as_bytes(), b"\xe9"].concat(),
        _ => answer.into_bytes(),
    };
    let answer = CString::new(answer).unwrap_or_default();
    // SAFETY: `result_json` is writable; `modhost_string_new` allocates with `malloc`, as
    // modhost frees.
    unsafe { *result_json = modhost_string_new(answer.as_ptr()) };
    status
}

/// The answers a careless C application gives when asked to call `callee`.
fn misbehaving(callee: &str) -> Option<CString> {
    match callee {
        // Latin-1 where UTF-8 belongs.
        "latin1" => CString::new(b"{\"ok\": \"caf\xe9\"}".to_vec()).ok(),
        // An error that is not the string the WIT says.
        "errnum" => CString::new(r#"{"err": 5}"#).ok(),
        // 100 000 bytes of something that is not JSON.
        "garbage" => CString::new("<".repeat(100_000)).ok(),
        // One byte more than an answer may hold.
        "huge" => CString::new(format!(
            r#"{{"ok":"{}"}}"#,
            "x".repeat(MODHOST_MAX_ANSWER_BYTES - 8)
        ))
        .ok(),
        _ => None,
    }
}

/// `originate` of a callee that never answers: it waits, as a PBX waits for a channel,
/// until the call it serves is to stop (at most 5 s), and notes how long it had left.
fn wait(seen: &Seen, result_json: *mut *mut c_char) -> c_int {
    seen.0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(("waiting".to_owned(), Value::Null, None));
    let left_at_start = modhost_call_ms_left();
    let started = Instant::now();
    // Whether 0 ms were ever said to be left of a call not yet stopped.
    let mut none_left_running = false;
    loop {
        // In this order: once none is left, the call must be stopped already.
        let none_left = modhost_call_ms_left() == 0;
        let stopped = modhost_call_stopped();
        none_left_running |= none_left && !stopped;
        if stopped || started.elapsed() >= Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let left = serde_json::json!({
        "at_start": left_at_start,
        "after": modhost_call_ms_left(),
        "none_left_running": none_left_running,
    });
    seen.0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(("wait".to_owned(), left, None));
    let answer = c("no answer");
    // SAFETY: `result_json` is writable; `strdup` allocates with `malloc`.
    unsafe { *result_json = strdup(answer.as_ptr()) };
    1
}

/// The host the re-entering callback dispatches on.
pub(crate) static AGAIN: std::sync::atomic::AtomicPtr<Host> =
    std::sync::atomic::AtomicPtr::new(null_mut());

/// `originate` that, before answering, leaves another voicemail on the same host from
/// inside the module's call, which calls back again: a loop only modhost can stop.
fn again(args_json: *const c_char, result_json: *mut *mut c_char) -> c_int {
    let host = AGAIN.load(std::sync::atomic::Ordering::SeqCst);
    let left = c(r#"{"mailbox":"101","from":"again"}"#);
    let mut result = null_mut();
    let mut error = null_mut();
    // SAFETY: the host outlives every dispatch on it; live pointers for the call.
    let status = unsafe {
        modhost_dispatch(
            host,
            c("voicemail.left").as_ptr(),
            left.as_ptr(),
            null(),
            null(),
            &mut result,
            &mut error,
        )
    };
    let _ = args_json;
    let answer = match (status, take(result), take(error)) {
        (MODHOST_OK, Some(result), _) => format!("inner dispatch: {result}"),
        (status, _, message) => format!(
            "inner dispatch refused (status {status}): {}",
            message.unwrap_or_default()
        ),
    };
    let answer = c(&answer);
    // SAFETY: `result_json` is writable; `strdup` allocates with `malloc`.
    unsafe { *result_json = strdup(answer.as_ptr()) };
    1
}

/// A root opened with `pbx:telephony` from `telephony`, reporting to `seen`.
pub(crate) fn open_with_telephony(root: &Path, seen: &Seen) -> Result<*mut Host, String> {
    open_with_telephony_within(root, seen, 5_000)
}

/// [`open_with_telephony`], each call given `call_timeout_ms`.
pub(crate) fn open_with_telephony_within(
    root: &Path,
    seen: &Seen,
    call_timeout_ms: u64,
) -> Result<*mut Host, String> {
    let all = ["originate", "hangup", "channel-state", "current-channel"];
    open_with_telephony_giving(root, seen, &all, call_timeout_ms)
}

/// [`open_with_telephony`], its interface giving only `functions`.
pub(crate) fn open_with_telephony_giving(
    root: &Path,
    seen: &Seen,
    functions: &[&str],
    call_timeout_ms: u64,
) -> Result<*mut Host, String> {
    let mut capability = null_mut();
    let mut error = null_mut();
    let functions: Vec<CString> = functions.iter().map(|f| c(f)).collect();
    let pointers: Vec<*const c_char> = functions.iter().map(|f| f.as_ptr()).collect();
    // SAFETY: live pointers for the duration of each call; `seen` outlives the host.
    unsafe {
        check(
            modhost_capability_new(
                c("pbx:telephony").as_ptr(),
                true,
                &mut capability,
                &mut error,
            ),
            error,
        )?;
        check(
            modhost_capability_add(
                capability,
                c("pbx:telephony/calls@1.0.0").as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                Some(telephony),
                std::ptr::from_ref(seen).cast_mut().cast(),
                &mut error,
            ),
            error,
        )?;
        let mut limits = std::mem::zeroed();
        modhost_limits_default(&mut limits);
        limits.call_timeout_ms = call_timeout_ms;
        open_giving(root, capability, &limits)
    }
}

/// A root opened with `capability` (freed once the host has what it needs) and `limits`
/// (NULL: the defaults).
///
/// # Safety
///
/// `capability` is a live capability, `limits` NULL or live.
pub(crate) unsafe fn open_giving(
    root: &Path,
    capability: *mut Capability,
    limits: *const Limits,
) -> Result<*mut Host, String> {
    let (mut host, mut error) = (null_mut(), null_mut());
    let root = c(&root.to_string_lossy());
    // SAFETY: the caller's contract, and live pointers for the call.
    unsafe {
        let opened = modhost_open(
            root.as_ptr(),
            limits,
            [capability.cast_const()].as_ptr(),
            1,
            &mut host,
            &mut error,
        );
        modhost_capability_free(capability);
        check(opened, error)?;
    }
    Ok(host)
}

/// Installs `rawnames` from the test packages; the changes' JSON.
pub(crate) fn install(host: *const Host, rawnames: &[&str], flags: u32) -> Result<Value, String> {
    let names: Vec<CString> = rawnames.iter().map(|n| c(n)).collect();
    let pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let from = c(&packages_dir().to_string_lossy());
    let mut changes = null_mut();
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_install(
            host,
            from.as_ptr(),
            pointers.as_ptr(),
            pointers.len(),
            flags,
            &mut changes,
            &mut error,
        )
    };
    check(status, error)?;
    serde_json::from_str(&take(changes).unwrap_or_default()).map_err(|e| e.to_string())
}

/// Dispatches `hook`; the result's JSON.
pub(crate) fn dispatch(
    host: *const Host,
    hook: &str,
    payload: &str,
    context: Option<&str>,
    cancel: *const CancelHandle,
) -> Result<Value, String> {
    let context = context.map(c);
    let mut result = null_mut();
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_dispatch(
            host,
            c(hook).as_ptr(),
            c(payload).as_ptr(),
            context.as_ref().map_or(null(), |c| c.as_ptr()),
            cancel,
            &mut result,
            &mut error,
        )
    };
    check(status, error)?;
    serde_json::from_str(&take(result).unwrap_or_default()).map_err(|e| e.to_string())
}

/// Dispatches `hook` with `payload` on `host` and cancels it from another thread once
/// `ready` says so (at most 10 s on), then `after` more; the result, and how long the
/// dispatch went on after the cancel.
pub(crate) fn dispatch_cancelled(
    host: *const Host,
    hook: &str,
    payload: &str,
    ready: impl Fn() -> bool + Send + 'static,
    after: Duration,
) -> Result<(Value, Duration), String> {
    // SAFETY: a live host.
    let handle = unsafe { modhost_cancel_handle_new(host) };
    if handle.is_null() {
        return Err("no cancel handle".into());
    }
    /// The handle, sent to the thread that cancels.
    struct Shared(*mut CancelHandle);
    // SAFETY: a cancel handle may be cancelled from any thread (modhost.h).
    unsafe impl Send for Shared {}
    let shared = Shared(handle);
    let canceller = std::thread::spawn(move || {
        let shared = shared;
        let started = Instant::now();
        while !ready() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(after);
        // SAFETY: the handle is freed only after this thread is joined.
        unsafe { modhost_cancel(shared.0) };
        Instant::now()
    });
    let result = dispatch(host, hook, payload, None, handle);
    let ended = Instant::now();
    let cancelled_at = canceller.join().map_err(|_| "the canceller panicked");
    // SAFETY: made above, freed once, nothing using it.
    unsafe { modhost_cancel_handle_free(handle) };
    Ok((result?, ended.saturating_duration_since(cancelled_at?)))
}
