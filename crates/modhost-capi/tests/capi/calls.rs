//! Modules calling the application's API: refused before compiling, the context, grants.

use std::ptr::{null, null_mut};

use modhost_capi::*;
use modhost_test_support::compiled_artifacts;
use serde_json::Value;

use crate::TestResult;
use crate::common::{c, check, take};
use crate::telephony::*;

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
            && e.contains("originate")
            // Named inside its package, not where it was unpacked.
            && e.contains("callback-1.0.0.tgz/callback/module.wasm")
            && !e.contains("staging")),
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
    // Without MODHOST_GRANT, the module that needs the grant is refused with its own code,
    // and nothing of the three is installed.
    let refused = install(host, &["core", "voicemail", "callback"], 0);
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("status 5:")
            && e.contains("`callback` imports the application's `pbx:telephony`")),
        "{refused:?}"
    );
    let mut modules = null_mut();
    let mut error = null_mut();
    // SAFETY: live pointers for the call.
    check(
        unsafe { modhost_list(host, &mut modules, &mut error) },
        error,
    )?;
    assert_eq!(take(modules).as_deref(), Some("[]"));

    install(host, &["core", "voicemail", "callback"], MODHOST_GRANT)?;
    let left = r#"{"mailbox":"101","from":"2025550101"}"#;
    let rawname = c("callback");

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
    // the module handles it (here by failing with it), and the host carries on. A blank
    // message says as little as none: the guest hears the code instead.
    for (from, said) in [
        ("x", "cannot call `x`"),
        (
            "blank",
            "`pbx:telephony/calls@1.0.0#originate` failed with code 1, saying nothing more",
        ),
        // A message that is not UTF-8 still reaches the module, what is not replaced.
        ("latin1err", "no answer from Jos\u{fffd}"),
    ] {
        let left = format!(r#"{{"mailbox":"101","from":"{from}"}}"#);
        let result = dispatch(host, "voicemail.left", &left, None, null())?;
        let call = &result["calls"][0];
        assert!(
            call["kind"] == "failed" && call["error"].as_str().is_some_and(|e| e.contains(said)),
            "{result}"
        );
    }
    // Without a context, the module hears there is none.
    let result = dispatch(host, "voicemail.left", left, None, null())?;
    let output = result["calls"][0]["output"].as_str().unwrap_or_default();
    assert!(output.contains(r#""serving":"none""#), "{result}");

    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}
