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

    // Above info, a module's info record is not passed.
    set(Some(keep), MODHOST_LOG_WARN)?;
    uninstall(host, "core")?;
    assert!(
        !records_of("core")
            .iter()
            .any(|(_, message)| message.starts_with("core uninstalled")),
        "{:?}",
        records_of("core")
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
