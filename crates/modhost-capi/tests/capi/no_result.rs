//! A callback for a WIT function with no result answers nothing, or JSON's null: any other
//! answer is the callback's mistake, and fails the call as a wrong answer does.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{null, null_mut};

use modhost_capi::*;
use modhost_test_support::package;

use crate::TestResult;
use crate::common::{c, check};
use crate::telephony::{dispatch, install, open_giving, strdup};

/// `test:notes` `note(text)`: answers as its text says — `nothing` with NULL, `fail`
/// with code 7 and NULL, else with the text itself (`null`, `"extra"`, `{`).
unsafe extern "C" fn note(
    _user_data: *mut c_void,
    _function: *const c_char,
    args_json: *const c_char,
    _context: *const c_char,
    result_json: *mut *mut c_char,
) -> c_int {
    // SAFETY: a string valid during the call.
    let args = unsafe { CStr::from_ptr(args_json) }.to_string_lossy();
    let text = serde_json::from_str::<serde_json::Value>(&args)
        .ok()
        .and_then(|args| args["text"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if text == "fail" {
        return 7;
    }
    if text != "nothing" {
        let answer = c(&text);
        // SAFETY: `*result_json` is writable; strdup's copy is freed by modhost.
        unsafe { *result_json = strdup(answer.as_ptr()) };
    }
    0
}

fn open_with_notes(root: &std::path::Path) -> Result<*mut Host, String> {
    let (mut capability, mut error) = (null_mut(), null_mut());
    let functions = [c("note")];
    let pointers: Vec<*const c_char> = functions.iter().map(|f| f.as_ptr()).collect();
    // SAFETY: live pointers for each call.
    unsafe {
        check(
            modhost_capability_new(c("test:notes").as_ptr(), false, &mut capability, &mut error),
            error,
        )?;
        check(
            modhost_capability_add(
                capability,
                c("test:notes/notes@1.0.0").as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                Some(note),
                null_mut(),
                &mut error,
            ),
            error,
        )?;
        open_giving(root, capability, null())
    }
}

#[test]
fn an_answer_to_a_function_without_a_result_is_nothing_or_null() -> TestResult {
    let root = tempfile::tempdir()?;
    let host = open_with_notes(root.path())?;
    install(host, &[&package("noter").to_string_lossy()], 0)?;
    for (text, ok) in [
        ("nothing", true),
        ("null", true),
        (" null ", true),
        ("\"extra\"", false),
        ("{", false),
    ] {
        let result = dispatch(host, "note", text, None, null())?;
        let call = &result["calls"][0];
        assert_eq!(call["ok"], ok, "{text}: {result}");
        if ok {
            assert_eq!(call["output"], "noted", "{text}: {result}");
        } else {
            let error = call["error"].as_str().unwrap_or_default();
            assert!(
                call["kind"] == "host"
                    && error.contains(&format!(
                        "`test:notes/notes@1.0.0#note` has no result, and answered `{text}`"
                    )),
                "{text}: {result}"
            );
        }
    }
    // A failure without a message is said once, with its code.
    let result = dispatch(host, "note", "fail", None, null())?;
    let error = result["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`test:notes/notes@1.0.0#note` failed with code 7, saying nothing more")
            && error.matches("#note").count() == 1,
        "{result}"
    );
    // SAFETY: the host, closed once.
    unsafe { modhost_close(host) };
    Ok(())
}
