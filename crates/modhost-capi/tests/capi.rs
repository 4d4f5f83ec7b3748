//! The C API called as a C application calls it: through its extern functions, with a
//! capability whose functions are one `extern "C"` callback taking JSON.

// Calling the C API is calling `unsafe extern "C"` functions with raw pointers.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{c, check, take};
use modhost_capi::*;
use modhost_test_support::{compiled_artifacts, package, package_at, packages_dir};
use serde_json::Value;

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

unsafe extern "C" {
    /// The C library's `strdup`: callbacks hand back `malloc`ed strings.
    fn strdup(s: *const c_char) -> *mut c_char;
}

/// What the telephony callback was called with: `(function, args, context)`.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, Value, Option<String>)>>);

/// `pbx:telephony/calls` as a C application implements it: originate refuses a callee
/// that is not a number, every new channel rings, and the current channel is the
/// dispatch's context.
unsafe extern "C" fn telephony(
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
            if callee.chars().all(|c| c.is_ascii_digit()) {
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
    let answer = CString::new(answer).unwrap_or_default();
    // SAFETY: `result_json` is writable; `strdup` allocates with `malloc`, as modhost frees.
    unsafe { *result_json = strdup(answer.as_ptr()) };
    status
}

/// The answers a careless C application gives when asked to call `callee`.
fn misbehaving(callee: &str) -> Option<CString> {
    match callee {
        // Latin-1 where UTF-8 belongs.
        "latin1" => CString::new(b"{\"ok\": \"caf\xe9\"}".to_vec()).ok(),
        // 100 000 bytes of something that is not JSON.
        "garbage" => CString::new("<".repeat(100_000)).ok(),
        _ => None,
    }
}

/// How many waits of [`wait`] began: a test cancels once one is under way.
static WAITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `originate` of a callee that never answers: it waits, as a PBX waits for a channel,
/// until the call it serves is to stop (at most 5 s), and notes how long it had left.
fn wait(seen: &Seen, result_json: *mut *mut c_char) -> c_int {
    WAITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let left_at_start = modhost_call_ms_left();
    let started = Instant::now();
    while !modhost_call_stopped() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let left = serde_json::json!({ "at_start": left_at_start, "after": modhost_call_ms_left() });
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
static AGAIN: std::sync::atomic::AtomicPtr<Host> = std::sync::atomic::AtomicPtr::new(null_mut());

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
        (_, _, message) => format!("inner dispatch refused: {}", message.unwrap_or_default()),
    };
    let answer = c(&answer);
    // SAFETY: `result_json` is writable; `strdup` allocates with `malloc`.
    unsafe { *result_json = strdup(answer.as_ptr()) };
    1
}

/// A root opened with `pbx:telephony` from `telephony`, reporting to `seen`.
fn open_with_telephony(root: &Path, seen: &Seen) -> Result<*mut Host, String> {
    open_with_telephony_within(root, seen, 5_000)
}

/// [`open_with_telephony`], each call given `call_timeout_ms`.
fn open_with_telephony_within(
    root: &Path,
    seen: &Seen,
    call_timeout_ms: u64,
) -> Result<*mut Host, String> {
    let all = ["originate", "hangup", "channel-state", "current-channel"];
    open_with_telephony_giving(root, seen, &all, call_timeout_ms)
}

/// [`open_with_telephony`], its interface giving only `functions`.
fn open_with_telephony_giving(
    root: &Path,
    seen: &Seen,
    functions: &[&str],
    call_timeout_ms: u64,
) -> Result<*mut Host, String> {
    let mut capability = null_mut();
    let mut error = null_mut();
    let functions: Vec<CString> = functions.iter().map(|f| c(f)).collect();
    let pointers: Vec<*const c_char> = functions.iter().map(|f| f.as_ptr()).collect();
    let mut host = null_mut();
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
        let root = c(&root.to_string_lossy());
        let opened = modhost_open(
            root.as_ptr(),
            &limits,
            [capability.cast_const()].as_ptr(),
            1,
            &mut host,
            &mut error,
        );
        // The host keeps what it needs: the description is freed at once.
        modhost_capability_free(capability);
        check(opened, error)?;
    }
    Ok(host)
}

/// Installs `rawnames` from the test packages; the changes' JSON.
fn install(host: *const Host, rawnames: &[&str], flags: u32) -> Result<Value, String> {
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
fn dispatch(
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
fn dispatch_cancelled(
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

#[test]
fn a_module_importing_a_function_the_c_capability_lacks_is_refused_before_compiling() -> TestResult
{
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony_giving(root.path(), &seen, &["hangup"], 5_000)?;
    let refused = install(host, &["core", "voicemail", "callback"], MODHOST_GRANT);
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("status 3:")
            && e.contains(
                "from `pbx:telephony/calls@1.0.0`, which the application's capability \
                 does not provide; it provides hangup"
            )
            && e.contains("originate")),
        "{refused:?}"
    );
    // Nothing was compiled for it.
    assert_eq!(compiled_artifacts(root.path()), 0);
    // SAFETY: the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_compiled_module_importing_a_function_the_c_capability_lacks_is_refused_naming_it() -> TestResult
{
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    // SAFETY: the host is not used again.
    unsafe { modhost_close(host) };
    // The same root, its compiled components cached, opened by an application whose
    // capability lacks a function the module imports: its call says which, in our words.
    let host = open_with_telephony_giving(root.path(), &seen, &["hangup"], 5_000)?;
    let left = r#"{"mailbox":"101","from":"2025550101"}"#;
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "from `pbx:telephony/calls@1.0.0`, which the application's capability does not \
             provide; it provides hangup"
        ) && error.contains("originate"),
        "{result}"
    );
    // SAFETY: the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn the_context_reaches_a_hook_fired_from_inside_the_dispatch() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "caller"], MODHOST_GRANT)?;
    let result = dispatch(host, "relay", "", Some("SIP/alice-00000042"), null())?;
    assert_eq!(
        result["calls"][0]["output"], "SIP/alice-00000042",
        "{result}"
    );
    let calls = std::mem::take(&mut *seen.0.lock().map_err(|e| e.to_string())?);
    assert_eq!(
        calls,
        vec![(
            "current-channel".to_owned(),
            serde_json::json!({}),
            Some("SIP/alice-00000042".to_owned())
        )]
    );
    // SAFETY: the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_c_application_revokes_and_grants_a_modules_api_and_reads_its_info() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let left = r#"{"mailbox":"101","from":"2025550101"}"#;
    let rawname = c("callback");
    let mut error = null_mut();

    // SAFETY: live pointers for the call.
    check(
        unsafe { modhost_revoke(host, rawname.as_ptr(), &mut error) },
        error,
    )?;
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    assert!(
        result["calls"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("which needs an administrator's grant")),
        "{result}"
    );

    let mut requests = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe { modhost_grant(host, rawname.as_ptr(), &mut requests, &mut error) };
    check(status, error)?;
    let requests: Value = serde_json::from_str(&take(requests).unwrap_or_default())?;
    assert_eq!(
        requests,
        serde_json::json!([{"package": "pbx:telephony", "needs_grant": true, "granted": true}])
    );
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    assert_eq!(result["calls"][0]["ok"], true, "{result}");

    let mut info = null_mut();
    // SAFETY: live pointers for the call.
    check(
        unsafe { modhost_info(host, rawname.as_ptr(), &mut info, &mut error) },
        error,
    )?;
    let info: Value = serde_json::from_str(&take(info).unwrap_or_default())?;
    let listed = |key: &str, name: &str| {
        info[key]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == name))
    };
    assert!(
        info["rawname"] == "callback"
            && info["status"] == "enabled"
            && listed("imports", "pbx:telephony/calls@1.0.0")
            && listed("exports", "hooks.handle")
            && info.get("refused").is_none(),
        "{info}"
    );
    let nosuch = c("nosuch");
    let mut out = null_mut();
    // SAFETY: live pointers for the calls.
    let (missing, null_out) = unsafe {
        (
            modhost_info(host, nosuch.as_ptr(), &mut out, null_mut()),
            modhost_info(host, rawname.as_ptr(), null_mut(), null_mut()),
        )
    };
    assert_eq!(
        (missing, null_out, out),
        (
            MODHOST_ERROR_NOT_INSTALLED,
            MODHOST_ERROR_ARGUMENT,
            null_mut()
        )
    );
    // SAFETY: the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn one_host_dispatches_from_many_threads_each_with_its_own_context() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "caller"], MODHOST_GRANT)?;
    /// The host, shared with the threads that dispatch on it.
    #[derive(Clone, Copy)]
    struct Shared(*mut Host);
    // SAFETY: a host may be used from several threads at once (modhost.h).
    unsafe impl Send for Shared {}
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let shared = Shared(host);
            std::thread::spawn(move || {
                let shared = shared;
                let mut wrong = Vec::new();
                for call in 0..40 {
                    let channel = format!("PJSIP/{thread}-{call:08}");
                    match dispatch(shared.0, "whoami", "", Some(&channel), null()) {
                        Ok(result) if result["calls"][0]["output"] == channel.as_str() => {}
                        other => wrong.push(format!("{channel}: {other:?}")),
                    }
                }
                wrong
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for thread in threads {
        wrong.extend(thread.join().map_err(|_| "a dispatching thread panicked")?);
    }
    assert!(
        wrong.is_empty(),
        "{} wrong: {:?}",
        wrong.len(),
        wrong.first()
    );
    assert_eq!(seen.0.lock().map_err(|e| e.to_string())?.len(), 8 * 40);
    // SAFETY: every thread is joined; the host is not used again.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_c_application_gives_modules_its_api_as_json_callbacks() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    let changes = install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    assert_eq!(changes.as_array().map(Vec::len), Some(3), "{changes}");

    let left = r#"{"mailbox":"101","from":"2025550101"}"#;
    let result = dispatch(
        host,
        "voicemail.left",
        left,
        Some("PJSIP/2025550101-in"),
        null(),
    )?;
    let call = &result["calls"][0];
    assert_eq!(call["ok"], true, "{result}");
    let output: Value = serde_json::from_str(call["output"].as_str().unwrap_or_default())?;
    assert_eq!(
        output,
        serde_json::json!({
            "channel": "PJSIP/101-00000001",
            "state": "ringing",
            "serving": "PJSIP/2025550101-in",
        })
    );
    let calls = std::mem::take(&mut *seen.0.lock().map_err(|e| e.to_string())?);
    let context = Some("PJSIP/2025550101-in".to_owned());
    assert_eq!(
        calls,
        vec![
            (
                "originate".to_owned(),
                serde_json::json!({"caller": "101", "callee": "2025550101"}),
                context.clone()
            ),
            (
                "channel-state".to_owned(),
                serde_json::json!({"channel": "PJSIP/101-00000001"}),
                context.clone()
            ),
            ("current-channel".to_owned(), serde_json::json!({}), context),
        ]
    );

    // A callback's non-zero answer is the guest's `err(message)` for a result<_, string>:
    // the module handles it (here by failing with it), and the host carries on.
    let result = dispatch(
        host,
        "voicemail.left",
        r#"{"mailbox":"101","from":"x"}"#,
        None,
        null(),
    )?;
    let call = &result["calls"][0];
    assert_eq!(call["kind"], "failed", "{result}");
    assert!(
        call["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot call `x`")),
        "{result}"
    );
    // Without a context, the module hears there is none.
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    let output = result["calls"][0]["output"].as_str().unwrap_or_default();
    assert!(output.contains(r#""serving":"none""#), "{result}");

    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn failures_are_codes_with_a_message_the_caller_frees() -> TestResult {
    let root = tempfile::tempdir()?;
    let mut error = null_mut();
    let mut host = null_mut();
    // SAFETY: NULL where the API takes NULL to be refused; live pointers otherwise.
    unsafe {
        let status = modhost_open(null(), null(), null(), 0, &mut host, &mut error);
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert_eq!(take(error).as_deref(), Some("`root` is NULL"));
        assert!(host.is_null());
        // An empty path would be the current directory: refused, nothing created.
        let status = modhost_open(c("").as_ptr(), null(), null(), 0, &mut host, &mut error);
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(
            take(error).is_some_and(|e| e.starts_with("`root` is empty")),
            "an empty root was not refused"
        );
        assert!(host.is_null());

        let status = modhost_open(
            c(&root.path().to_string_lossy()).as_ptr(),
            null(),
            null(),
            0,
            &mut host,
            null_mut(),
        );
        assert_eq!(status, MODHOST_OK);
    }

    // A module importing an API this host does not give is refused (as any plan that
    // cannot succeed, `MODHOST_ERROR_REFUSED`), naming it.
    let refused = install(host, &["core", "voicemail", "callback"], MODHOST_GRANT);
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("status 3:")
            && e.contains("imports pbx:telephony/calls@1.0.0, which this host does not provide")),
        "{refused:?}"
    );
    install(host, &["core"], 0)?;
    // SAFETY: live pointers for each call.
    unsafe {
        let status = modhost_uninstall(host, c("phonebook").as_ptr(), 0, null_mut(), &mut error);
        assert_eq!(status, MODHOST_ERROR_NOT_INSTALLED);
        assert_eq!(
            take(error).as_deref(),
            Some("module `phonebook` is not installed")
        );
        let status = modhost_declare(host, c("call.route").as_ptr(), 7, 0, 0, &mut error);
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert_eq!(take(error).as_deref(), Some("unknown shape 7"));
        // get_config is what reload builds the configuration from: always fail-closed.
        let status = modhost_declare(
            host,
            c("get_config").as_ptr(),
            MODHOST_SHAPE_BROADCAST,
            MODHOST_ON_ERROR_CONTINUE,
            0,
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(
            take(error).is_some_and(|e| e.contains("get_config is always a fail-closed pipeline")),
            "get_config declared fail-open"
        );
        let status = modhost_declare(
            host,
            c("").as_ptr(),
            MODHOST_SHAPE_BROADCAST,
            MODHOST_ON_ERROR_CONTINUE,
            0,
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert_eq!(
            take(error).as_deref(),
            Some("hook point ``: a hook point needs a name")
        );
        let status = modhost_install(host, null(), null(), 1, 0, null_mut(), &mut error);
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert_eq!(take(error).as_deref(), Some("`packages` is NULL"));
        // An unknown flag is the caller's mistake, whether or not the package exists.
        let nosuch = [c("nosuch")];
        let names = [nosuch[0].as_ptr()];
        let status = modhost_install(
            host,
            null(),
            names.as_ptr(),
            1,
            0x80,
            null_mut(),
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(
            take(error).is_some_and(|e| e.contains("unknown flags 0x80")),
            "not named as a bad flag"
        );
        // A limit of 0 that would fail every call is refused at open, as in modhost.toml,
        // and so is a memory cap larger than a sandbox holds: bad arguments both.
        let other = tempfile::tempdir()?;
        let refused_with = |change: &dyn Fn(&mut Limits)| {
            let mut limits = std::mem::zeroed();
            modhost_limits_default(&mut limits);
            change(&mut limits);
            let (mut refused, mut error) = (null_mut(), null_mut());
            let status = modhost_open(
                c(&other.path().to_string_lossy()).as_ptr(),
                &limits,
                null(),
                0,
                &mut refused,
                &mut error,
            );
            assert_eq!(status, MODHOST_ERROR_ARGUMENT);
            assert!(refused.is_null());
            take(error).unwrap_or_default()
        };
        assert_eq!(
            refused_with(&|limits| limits.call_timeout_ms = 0),
            "`call_timeout_ms` of 0 would fail every call: leave it at its default"
        );
        let said = refused_with(&|limits| limits.max_memory_bytes = 1 << 40);
        assert!(
            said.starts_with("`max_memory_bytes`: a memory cap of "),
            "{said}"
        );
        let said = refused_with(&|limits| limits.max_memory_bytes = 4096);
        assert!(said.contains("under one WebAssembly page"), "{said}");

        let mut modules = null_mut();
        check(modhost_list(host, &mut modules, &mut error), error)?;
        let modules: Value = serde_json::from_str(&take(modules).unwrap_or_default())?;
        assert_eq!(modules[0]["rawname"], "core", "{modules}");
        assert_eq!(modules[0]["status"], "enabled", "{modules}");

        let mut change = null_mut();
        check(
            modhost_uninstall(
                host,
                c("core").as_ptr(),
                MODHOST_FORCE,
                &mut change,
                &mut error,
            ),
            error,
        )?;
        let change: Value = serde_json::from_str(&take(change).unwrap_or_default())?;
        assert_eq!(change["action"], "uninstalled", "{change}");
        modhost_close(host);
    }
    Ok(())
}

#[test]
fn a_declared_pipeline_passes_each_output_on() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    // The test packages hold a broken phonebook 3.0.0 too: name the good one's file.
    let phonebook = package_at("phonebook", "2.0.0");
    install(
        host,
        &["core", "voicemail", &phonebook.to_string_lossy()],
        0,
    )?;
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_declare(
            host,
            c("call.route").as_ptr(),
            MODHOST_SHAPE_PIPELINE,
            MODHOST_ON_ERROR_STOP,
            250,
            &mut error,
        )
    };
    check(status, error)?;
    let call = r#"{"from":"2025550100","to":"100","caller_name":null,"action":null}"#;
    let result = dispatch(host, "call.route", call, None, null())?;
    let output: Value = serde_json::from_str(result["output"].as_str().unwrap_or_default())?;
    assert_eq!(output["action"], "Dial(PJSIP/100)", "{result}");
    assert!(output["caller_name"].is_string(), "{result}");
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_dispatch_is_cancelled_from_another_thread() -> TestResult {
    let root = tempfile::tempdir()?;
    let host = common::open(root.path())?;
    let hostile = package("hostile");
    install(host, &[&hostile.to_string_lossy()], 0)?;
    let (result, went_on) =
        dispatch_cancelled(host, "spin", "", || true, Duration::from_millis(200))?;
    assert_eq!(result["cancelled"], true, "{result}");
    assert_eq!(result["calls"][0]["kind"], "cancelled", "{result}");
    // Its deadline is 10 s away: only the cancellation stopped it.
    assert!(went_on < Duration::from_millis(500), "{result}");
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_waiting_callback_sees_its_call_cancelled_and_its_deadline_pass() -> TestResult {
    assert!(!modhost_call_stopped() && modhost_call_ms_left() == -1);
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony_within(root.path(), &seen, 1_000)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let left = r#"{"mailbox":"101","from":"wait"}"#;

    // The deadline: the callback stops waiting when it passes, and so does the call.
    let started = Instant::now();
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    let took = started.elapsed();
    assert_eq!(result["calls"][0]["kind"], "timeout", "{result}");
    // Without the callback's wait ending, the call would have lasted its 5 s.
    assert!(took < Duration::from_millis(3_000), "{took:?}: {result}");
    let waits = |seen: &Seen| -> Vec<Value> {
        let seen = seen
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter()
            .filter(|(function, _, _)| function == "wait")
            .map(|(_, left, _)| left.clone())
            .collect()
    };
    let waited = waits(&seen);
    let at_start = waited
        .first()
        .map_or(-1, |w| w["at_start"].as_i64().unwrap_or(-1));
    assert!(
        waited.len() == 1 && (1..=1_000).contains(&at_start) && waited[0]["after"] == 0,
        "the callback waits once, and sees the deadline pass: {waited:?}"
    );

    // A cancellation: the callback sees it at once, long before the deadline.
    let waits_before = WAITS.load(std::sync::atomic::Ordering::SeqCst);
    let waiting = move || WAITS.load(std::sync::atomic::Ordering::SeqCst) > waits_before;
    let (result, went_on) = dispatch_cancelled(
        host,
        "voicemail.left",
        left,
        waiting,
        Duration::from_millis(20),
    )?;
    assert_eq!(result["cancelled"], true, "{result}");
    assert!(went_on < Duration::from_millis(200), "{result}");
    assert_eq!(
        waits(&seen).get(1).map(|w| w["after"].clone()),
        Some(0.into())
    );
    // SAFETY: closed once, nothing using it.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_callbacks_bad_answers_fail_its_call_briefly_and_nesting_is_bounded() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let left = |from: &str| format!(r#"{{"mailbox":"101","from":"{from}"}}"#);

    // Bytes that are not UTF-8 are refused, not read with replacement characters.
    let result = dispatch(host, "voicemail.left", &left("latin1"), None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("bytes that are not UTF-8"), "{result}");
    // A long answer that is not JSON is quoted, not copied whole into the message.
    let result = dispatch(host, "voicemail.left", &left("garbage"), None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("which is not JSON") && error.contains("(100000 bytes in all)"),
        "{result}"
    );
    assert!(error.len() < 2_000, "a {}-byte message", error.len());

    // A callback that dispatches again, from inside the module's call, on the same
    // host: each level does it again, until modhost refuses the next level.
    AGAIN.store(host, std::sync::atomic::Ordering::SeqCst);
    let began = Instant::now();
    let result = dispatch(host, "voicemail.left", &left("again"), None, null())?;
    assert!(began.elapsed() < Duration::from_secs(3), "{result}");
    let text = result.to_string();
    assert!(
        text.contains("past the limit of 4 nested dispatches"),
        "{result}"
    );
    assert_eq!(text.matches("inner dispatch").count(), 5, "{result}");
    // The host carries on.
    let result = dispatch(host, "voicemail.left", &left("2025550101"), None, null())?;
    assert_eq!(result["calls"][0]["ok"], true, "{result}");
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn a_thread_with_a_small_stack_installs_and_dispatches() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    /// The host, sent to the thread with the small stack.
    struct Shared(*mut Host);
    // SAFETY: a host may be used from several threads at once (modhost.h).
    unsafe impl Send for Shared {}
    let shared = Shared(host);
    // 64 KiB, far less than loading a component or calling a module takes: modhost runs
    // its work on a stack segment of its own.
    let result = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || {
            let shared = shared;
            install(shared.0, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
            dispatch(
                shared.0,
                "voicemail.left",
                r#"{"mailbox":"101","from":"2025550101"}"#,
                None,
                null(),
            )
        })?
        .join()
        .map_err(|_| "the small thread panicked")??;
    assert_eq!(result["calls"][0]["ok"], true, "{result}");
    // SAFETY: the host, closed once, nothing using it.
    unsafe { modhost_close(host) };
    Ok(())
}
