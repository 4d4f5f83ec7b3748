//! Failures as codes with a message the caller frees; pipelines; bad callback answers.

use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

use modhost_capi::*;
use modhost_test_support::package_at;
use serde_json::Value;

use crate::TestResult;
use crate::common::{c, check, take};
use crate::telephony::*;

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
        // A package directory that is not there is refused, as a missing package file is:
        // nothing was done.
        let status = modhost_install(
            host,
            c("/nonexistent/modhost-packages").as_ptr(),
            names.as_ptr(),
            1,
            0,
            null_mut(),
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_REFUSED);
        assert!(
            take(error).is_some_and(
                |e| e.contains("there is no directory `/nonexistent/modhost-packages`")
            ),
            "a missing package directory is not named"
        );
        // What cannot be a name or a path is the caller's mistake, said without repeating
        // megabytes of it.
        let huge = "x".repeat(10 << 20);
        let mut info = null_mut();
        for rawname in [huge.as_str(), "Core", "../core"] {
            let status = modhost_info(host, c(rawname).as_ptr(), &mut info, &mut error);
            assert_eq!(status, MODHOST_ERROR_ARGUMENT);
            let said = take(error).unwrap_or_default();
            assert!(
                said.starts_with("`rawname`: rawname `") && said.contains("must be 1 to 64"),
                "{}",
                modhost::shortened(&said)
            );
            assert!(said.len() < 1024, "{} bytes said", said.len());
        }
        let status = modhost_declare(
            host,
            c(&huge).as_ptr(),
            MODHOST_SHAPE_BROADCAST,
            MODHOST_ON_ERROR_CONTINUE,
            0,
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        let said = take(error).unwrap_or_default();
        assert!(
            said.ends_with(
                "(10485760 bytes in all)`: a hook point's name is at most 256 bytes long"
            ),
            "{}",
            modhost::shortened(&said)
        );
        for (path, words) in [
            (String::new(), "`packages[0]` is empty".to_owned()),
            (
                huge.clone(),
                "`packages[0]` is 10485760 bytes long, longer than any path".to_owned(),
            ),
        ] {
            let path = c(&path);
            let paths = [path.as_ptr()];
            let status =
                modhost_install(host, null(), paths.as_ptr(), 1, 0, null_mut(), &mut error);
            assert_eq!(status, MODHOST_ERROR_ARGUMENT);
            let said = take(error).unwrap_or_default();
            assert!(said.starts_with(&words), "{}", modhost::shortened(&said));
        }

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
        // Each level of nesting holds a sandbox: a depth past what a dispatch holds.
        let said = refused_with(&|limits| limits.max_fire_depth = u32::MAX);
        assert!(
            said.starts_with(
                "`max_fire_depth`: a `max_fire_depth` of 4294967295 is deeper than the 32 levels"
            ),
            "{said}"
        );

        // The longest deadline C can write is no deadline in practice: refused, naming
        // the field, as is a hook point's.
        let said = refused_with(&|limits| limits.call_timeout_ms = u64::MAX);
        assert_eq!(
            said,
            "`call_timeout_ms`: a call deadline of 18446744073709551615 ms is longer than \
             the day a call may run at most"
        );
        let mut error = null_mut();
        let status = modhost_declare(
            host,
            c("pbx.forever").as_ptr(),
            MODHOST_SHAPE_BROADCAST,
            MODHOST_ON_ERROR_CONTINUE,
            u64::MAX,
            &mut error,
        );
        let said = take(error).unwrap_or_default();
        assert_eq!(status, MODHOST_ERROR_ARGUMENT, "{said}");
        assert!(
            said.contains("longer than the day a call may run"),
            "{said}"
        );

        // A capability with no interface gives modules nothing: a bad argument too.
        let mut empty = null_mut();
        check(
            modhost_capability_new(c("pbx:empty").as_ptr(), false, &mut empty, &mut error),
            error,
        )?;
        let given = [empty.cast_const()];
        let mut refused = null_mut();
        let status = modhost_open(
            c(&other.path().to_string_lossy()).as_ptr(),
            null(),
            given.as_ptr(),
            1,
            &mut refused,
            &mut error,
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert_eq!(
            take(error).unwrap_or_default(),
            "`capabilities[0]` (`pbx:empty`) has no interface: give it one with \
             `modhost_capability_add` first"
        );
        modhost_capability_free(empty);

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
    // An answer past the limit is refused unread.
    let result = dispatch(host, "voicemail.left", &left("huge"), None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("answered with 16777217 bytes, more than the 16777216 an answer may hold"),
        "{result}"
    );
    // So is a failure's message past its limit: the application's, not the module's to
    // pass on and be blamed for as output past its own limit.
    let result = dispatch(host, "voicemail.left", &left("longerr"), None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "failed with a message of 65537 bytes, more than the 65536 a failure's message may hold"
        ) && error.len() < 2_000,
        "{result}"
    );
    // A wrong value is named by where it stands.
    let result = dispatch(host, "voicemail.left", &left("errnum"), None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("returned `err`: `5`, which is not a string"),
        "{result}"
    );
    // Each is the application's failure, not the module's.
    for from in ["latin1", "garbage", "huge", "longerr", "errnum"] {
        let result = dispatch(host, "voicemail.left", &left(from), None, null())?;
        assert_eq!(result["calls"][0]["kind"], "host", "{from}: {result}");
    }

    // A callback that dispatches again, from inside the module's call, on the same
    // host: each level does it again, until modhost refuses the next level.
    AGAIN.store(host, std::sync::atomic::Ordering::SeqCst);
    let began = Instant::now();
    let result = dispatch(host, "voicemail.left", &left("again"), None, null())?;
    assert!(began.elapsed() < Duration::from_secs(3), "{result}");
    let text = result.to_string();
    assert!(
        text.contains("refused (status 3): dispatch of `voicemail.left` refused")
            && text.contains("from inside a module's call (a callback of a capability")
            && text.contains("nested 5 deep in dispatches running on this thread, past the limit of 4 nested dispatches"),
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
fn a_package_path_may_be_any_bytes_as_a_unix_path_may() -> TestResult {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir()?;
    let host = crate::common::open(root.path())?;
    // A Latin-1 directory name, as an old system's locale writes it.
    let dir = tempfile::tempdir()?;
    let latin1 = dir.path().join(std::ffi::OsStr::from_bytes(b"m\xf3dulos"));
    std::fs::create_dir(&latin1)?;
    let package = latin1.join("core.tgz");
    std::fs::copy(modhost_test_support::package("core"), &package)?;
    let path = std::ffi::CString::new(package.as_os_str().as_bytes())?;
    let (mut changes, mut error) = (null_mut(), null_mut());
    // SAFETY: live pointers for the call.
    let status = unsafe {
        modhost_install(
            host,
            null(),
            [path.as_ptr()].as_ptr(),
            1,
            0,
            &mut changes,
            &mut error,
        )
    };
    check(status, error)?;
    let changes: Value = serde_json::from_str(&take(changes).unwrap_or_default())?;
    assert_eq!(changes[0]["rawname"], "core", "{changes}");
    // A file that is no package is refused for what it holds, as a missing one is.
    let junk = latin1.join("junk.tgz");
    std::fs::write(&junk, b"not a package")?;
    for path in [junk.clone(), latin1.join("missing.tgz")] {
        let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
        let mut error = null_mut();
        // SAFETY: live pointers for the call.
        let status = unsafe {
            modhost_install(
                host,
                null(),
                [path.as_ptr()].as_ptr(),
                1,
                0,
                null_mut(),
                &mut error,
            )
        };
        let message = take(error).unwrap_or_default();
        assert_eq!(status, MODHOST_ERROR_REFUSED, "{message}");
    }
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}

#[test]
fn string_new_copies_with_the_c_librarys_malloc() {
    unsafe extern "C" {
        fn free(ptr: *mut std::ffi::c_void);
    }
    // SAFETY: NULL is allowed.
    assert!(unsafe { modhost_string_new(null()) }.is_null());
    let text = c("{\"ok\":\"PJSIP/101\"}");
    // SAFETY: a NUL-terminated string.
    let copy = unsafe { modhost_string_new(text.as_ptr()) };
    assert!(!copy.is_null());
    assert_ne!(copy.cast_const(), text.as_ptr());
    // SAFETY: the copy is NUL-terminated, and `malloc`'s to free.
    unsafe {
        assert_eq!(std::ffi::CStr::from_ptr(copy), text.as_c_str());
        free(copy.cast());
    }
}

#[test]
fn every_out_pointer_is_left_null_on_failure() -> TestResult {
    let root = tempfile::tempdir()?;
    // What a caller's variable held before the call: never freed, only compared.
    fn stale<T>() -> *mut T {
        std::ptr::dangling_mut()
    }
    let mut error = null_mut();
    let mut host: *mut Host = stale();
    let mut capability: *mut Capability = stale();
    // SAFETY: refused arguments; the out-pointers are written, never read.
    unsafe {
        let status = modhost_open(null(), null(), null(), 0, &mut host, null_mut());
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(host.is_null());
        let status =
            modhost_capability_new(c("no package").as_ptr(), false, &mut capability, null_mut());
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(capability.is_null());
    }
    let host = crate::common::open(root.path())?;
    let missing = c(&root.path().join("nosuch.tgz").to_string_lossy());
    let rawname = c("nosuch");
    // SAFETY: live pointers for each call; the out-pointers are written, never read.
    unsafe {
        let mut changes: *mut std::ffi::c_char = stale();
        let status = modhost_install(
            host,
            null(),
            [missing.as_ptr()].as_ptr(),
            1,
            0,
            &mut changes,
            &mut error,
        );
        assert_ne!(status, MODHOST_OK);
        assert!(changes.is_null() && !error.is_null());
        take(error);
        let mut change: *mut std::ffi::c_char = stale();
        let status = modhost_uninstall(host, rawname.as_ptr(), 0, &mut change, null_mut());
        assert_eq!(status, MODHOST_ERROR_NOT_INSTALLED);
        assert!(change.is_null());
        let mut info: *mut std::ffi::c_char = stale();
        let status = modhost_info(host, rawname.as_ptr(), &mut info, null_mut());
        assert_eq!(status, MODHOST_ERROR_NOT_INSTALLED);
        assert!(info.is_null());
        let mut result: *mut std::ffi::c_char = stale();
        let status = modhost_dispatch(
            host,
            null(),
            null(),
            null(),
            null(),
            &mut result,
            null_mut(),
        );
        assert_eq!(status, MODHOST_ERROR_ARGUMENT);
        assert!(result.is_null());
        modhost_close(host);
    }
    Ok(())
}

#[test]
fn a_module_whose_capability_is_gone_is_disabled_and_removed_without_its_code() -> TestResult {
    let root = tempfile::tempdir()?;
    let seen = Seen::default();
    let host = open_with_telephony(root.path(), &seen)?;
    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    // The application no longer gives `pbx:telephony`: the module's own calls cannot run,
    // and say so; skipping its code, it is disabled (its data kept) and removed.
    let host = crate::common::open(root.path())?;
    type Verb = unsafe extern "C" fn(
        *const Host,
        *const std::ffi::c_char,
        u32,
        *mut *mut std::ffi::c_char,
        *mut *mut std::ffi::c_char,
    ) -> i32;
    let change = |verb: Verb, flags| {
        let (mut change, mut error) = (null_mut(), null_mut());
        // SAFETY: live pointers for the call.
        let status = unsafe { verb(host, c("callback").as_ptr(), flags, &mut change, &mut error) };
        check(status, error)?;
        serde_json::from_str::<Value>(&take(change).unwrap_or_default()).map_err(|e| e.to_string())
    };
    for verb in [modhost_uninstall as Verb, modhost_disable] {
        let refused = change(verb, MODHOST_FORCE);
        assert!(
            refused.as_ref().is_err_and(|e| e.starts_with("status 3:")
                && e.contains("`callback` 1.0.0 cannot run its ")
                && e.contains("imports pbx:telephony/calls@1.0.0")),
            "{refused:?}"
        );
    }
    let disabled = change(modhost_disable, MODHOST_SKIP_CODE)?;
    assert_eq!(disabled["action"], "disabled", "{disabled}");
    let rolled = change(modhost_rollback, MODHOST_SKIP_CODE);
    assert!(
        rolled
            .as_ref()
            .is_err_and(|e| e.starts_with("status 1:") && e.contains("unknown flags 0x8")),
        "rollback runs no lifecycle call to skip: {rolled:?}"
    );
    let removed = change(modhost_uninstall, MODHOST_SKIP_CODE)?;
    assert_eq!(removed["action"], "deleted", "{removed}");
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}
