//! Log records handed to the application's callback: modules' with their rawname,
//! modhost's own without, at the level set, until the callback is taken away.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::null_mut;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use modhost_capi::*;

use crate::TestResult;
use crate::common::{self, check, take};
use crate::telephony::install;

/// Held by each test that sets the process's one callback, so that they take turns.
static TURN: Mutex<()> = Mutex::new(());

/// Each record passed: its level, module and message.
static RECORDS: Mutex<Vec<(c_int, Option<String>, String)>> = Mutex::new(Vec::new());
/// What `user_data` is set to, and must come back as.
static MARK: u8 = 7;

unsafe extern "C" fn keep(
    user_data: *mut c_void,
    level: c_int,
    module: *const c_char,
    message: *const c_char,
) {
    assert_eq!(user_data.cast_const(), (&raw const MARK).cast::<c_void>());
    // SAFETY: NULL or a string valid during the call, as the header says.
    let module = (!module.is_null()).then(|| {
        unsafe { CStr::from_ptr(module) }
            .to_string_lossy()
            .into_owned()
    });
    // SAFETY: a string valid during the call.
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    let mut records = RECORDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    records.push((level, module, message));
}

/// How many calls of [`slow`] are under way.
static SLOW: AtomicUsize = AtomicUsize::new(0);

/// A callback that takes its time, as one writing to a slow disk does.
unsafe extern "C" fn slow(_: *mut c_void, _: c_int, _: *const c_char, _: *const c_char) {
    SLOW.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(100));
    SLOW.fetch_sub(1, Ordering::SeqCst);
}

fn set(callback: LogCallback, level: c_int) -> Result<(), String> {
    let mut error = null_mut();
    // SAFETY: a callback as the header describes it, and a user_data that lives forever.
    let status = unsafe {
        modhost_set_log(
            callback,
            (&raw const MARK).cast_mut().cast::<c_void>(),
            level,
            &mut error,
        )
    };
    check(status, error)
}

fn records_of(module: &str) -> Vec<(c_int, String)> {
    let records = RECORDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    records
        .iter()
        .filter(|(_, m, _)| m.as_deref() == Some(module))
        .map(|(level, _, message)| (*level, message.clone()))
        .collect()
}

fn uninstall(host: *const Host, rawname: &str) -> Result<(), String> {
    let (mut change, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_uninstall(
            host,
            common::c(rawname).as_ptr(),
            0,
            &mut change,
            &mut error,
        )
    };
    take(change);
    check(status, error)
}

#[test]
fn module_and_modhost_records_reach_the_callback_at_the_level_set() -> TestResult {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tempfile::tempdir()?;
    let host = common::open(root.path())?;
    set(Some(keep), MODHOST_LOG_INFO)?;
    install(host, &["core"], 0)?;
    let core = records_of("core");
    assert!(
        core.iter()
            .any(|(level, message)| *level == MODHOST_LOG_INFO
                && message.starts_with("core installed extensions=")),
        "{core:?}"
    );
    // modhost's own records come without a module (parallel tests add theirs: any will do).
    assert!(
        RECORDS
            .lock()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|(_, module, _)| module.is_none()),
    );

    // Above info, a module's info record is not passed. (Tests running beside this one
    // uninstall a `core` of their own: only what came once the level was set counts.)
    set(Some(keep), MODHOST_LOG_WARN)?;
    let before = records_of("core").len();
    uninstall(host, "core")?;
    let after = records_of("core").split_off(before);
    assert!(
        !after
            .iter()
            .any(|(_, message)| message.starts_with("core uninstalled")),
        "{after:?}"
    );

    // A level outside the five is refused, and changes nothing.
    let mut error = null_mut();
    // SAFETY: a NULL callback and an error pointer.
    let status = unsafe { modhost_set_log(None, null_mut(), 6, &mut error) };
    assert_eq!(status, MODHOST_ERROR_ARGUMENT);
    assert!(take(error).is_some_and(|e| e.contains("`level` is 6")));

    // Replaced while a call of the old one is under way on another thread: it returns once
    // that call is over, so the old one's user_data may be freed then.
    set(Some(slow), MODHOST_LOG_INFO)?;
    let host_for = host as usize;
    let installing =
        std::thread::spawn(move || install(host_for as *const Host, &["voicemail"], 0));
    while SLOW.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    set(Some(keep), MODHOST_LOG_INFO)?;
    assert_eq!(
        SLOW.load(Ordering::SeqCst),
        0,
        "the old callback is still running"
    );
    installing.join().map_err(|_| "install panicked")??;

    // Taken away: nothing more is passed.
    set(None, MODHOST_LOG_TRACE)?;
    let before = RECORDS.lock().map_err(|e| e.to_string())?.len();
    install(host, &["core"], 0)?;
    assert_eq!(RECORDS.lock().map_err(|e| e.to_string())?.len(), before);
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

/// Whether a call of [`first`] is under way, and whether it may go on.
static IN_FIRST: AtomicUsize = AtomicUsize::new(0);
static RELEASE_FIRST: AtomicUsize = AtomicUsize::new(0);
/// How many calls of [`second`] are under way, and how many there were when `first`'s
/// own `modhost_set_log` returned (`usize::MAX` until then).
static IN_SECOND: AtomicUsize = AtomicUsize::new(0);
static SECOND_AT_RETURN: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The message of a record passed, when it is one this test made.
fn ours(message: *const c_char) -> Option<String> {
    // SAFETY: a string valid during the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    text.starts_with("race-").then(|| text.into_owned())
}

unsafe extern "C" fn ignore(_: *mut c_void, _: c_int, _: *const c_char, _: *const c_char) {}

/// Waits inside its call until released, then sets another callback from inside it.
unsafe extern "C" fn first(_: *mut c_void, _: c_int, _: *const c_char, message: *const c_char) {
    if ours(message).as_deref() != Some("race-first") {
        return;
    }
    IN_FIRST.store(1, Ordering::SeqCst);
    while RELEASE_FIRST.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = set(Some(ignore), MODHOST_LOG_INFO);
    SECOND_AT_RETURN.store(IN_SECOND.load(Ordering::SeqCst), Ordering::SeqCst);
    IN_FIRST.store(0, Ordering::SeqCst);
}

/// Takes its time, as [`slow`] does.
unsafe extern "C" fn second(_: *mut c_void, _: c_int, _: *const c_char, message: *const c_char) {
    if ours(message).as_deref() != Some("race-second") {
        return;
    }
    IN_SECOND.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(300));
    IN_SECOND.fetch_sub(1, Ordering::SeqCst);
}

#[test]
fn set_from_inside_a_callback_waits_for_the_calls_of_the_one_it_replaces() -> TestResult {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    set(Some(first), MODHOST_LOG_INFO)?;
    let inside_first = std::thread::spawn(|| tracing::info!(target: "modhost_test", "race-first"));
    while IN_FIRST.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Replaced by `second` from another thread: that call waits for `first`'s.
    let replacing = std::thread::spawn(|| set(Some(second), MODHOST_LOG_INFO));
    // A thread inside `second` once it is set.
    let inside_second = std::thread::spawn(|| {
        while IN_SECOND.load(Ordering::SeqCst) == 0 && RELEASE_FIRST.load(Ordering::SeqCst) == 0 {
            tracing::info!(target: "modhost_test", "race-second");
        }
    });
    while IN_SECOND.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // `first`, still in its call, replaces `second`: it returns only once the call of
    // `second` under way on the other thread is over.
    RELEASE_FIRST.store(1, Ordering::SeqCst);
    inside_first.join().map_err(|_| "first panicked")?;
    replacing.join().map_err(|_| "set panicked")??;
    inside_second.join().map_err(|_| "second panicked")?;
    assert_eq!(
        SECOND_AT_RETURN.load(Ordering::SeqCst),
        0,
        "returned while the callback it replaced was still running"
    );
    set(None, 0)?;
    Ok(())
}
