//! Strings allocated with the C library's `malloc`: a capability callback's answer, which
//! modhost takes and frees, and `modhost_string_new` for applications whose own strings
//! come from another allocator.

use std::ffi::{CStr, c_char, c_void};

use crate::MODHOST_MAX_ANSWER_BYTES;
use crate::ffi::quietly;

unsafe extern "C" {
    /// The C library's `malloc` and `free`: callbacks' answers are allocated with the one
    /// and freed with the other.
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// A copy of `text` allocated with the C library's `malloc`, as a capability callback's
/// `*result_json` must be: for an application whose own strings come from another
/// allocator (PHP's `FFI::new`, whose memory `free` must never see, or a custom
/// `malloc`). NULL when `text` is NULL or memory runs out. Only a callback's answer is
/// freed by modhost; any other copy is the caller's to free with `free`.
///
/// # Safety
///
/// `text` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_string_new(text: *const c_char) -> *mut c_char {
    quietly(std::ptr::null_mut(), || {
        if text.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: NUL-terminated, by the caller's contract.
        let bytes = unsafe { CStr::from_ptr(text) }.to_bytes_with_nul();
        // SAFETY: any size may be asked for; NULL is checked.
        let copy = unsafe { malloc(bytes.len()) }.cast::<u8>();
        if !copy.is_null() {
            // SAFETY: `copy` holds `bytes.len()` bytes, and is not `bytes`.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len()) };
        }
        copy.cast()
    })
}

/// Why a callback's answer cannot be taken.
pub(crate) enum Unreadable {
    /// It is not UTF-8 text; its length, and the text with what is not UTF-8 replaced
    /// (`U+FFFD`), for where a failure's message is better said so than lost.
    NotText(usize, String),
    /// It is longer than [`MODHOST_MAX_ANSWER_BYTES`]; its length.
    TooLong(usize),
}

/// The string at `ptr`, freed with `free`; `None` for NULL. Refused, rather than copied
/// whole, when it is longer than a module could be given, and when it is not UTF-8 (the
/// refusal carries it with replacement characters, for the caller to use where it may).
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string allocated with `malloc`, not used after.
pub(crate) unsafe fn take_malloced(ptr: *mut c_char) -> Result<Option<String>, Unreadable> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    let text = if bytes.len() > MODHOST_MAX_ANSWER_BYTES {
        Err(Unreadable::TooLong(bytes.len()))
    } else {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Unreadable::NotText(bytes.len(), String::from_utf8_lossy(bytes).into()))
    };
    // SAFETY: allocated with `malloc`, by the caller's contract, and not used again.
    unsafe { free(ptr.cast()) };
    text.map(Some)
}
