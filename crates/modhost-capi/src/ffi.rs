//! The boundary's own rules, in one place: every extern function runs its body through
//! [`guard`], which stops panics and turns failures into a status code and a message the
//! caller frees; strings cross through [`str_arg`] and [`put`].

use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{
    MODHOST_ERROR_ARGUMENT, MODHOST_ERROR_FAILED, MODHOST_ERROR_LOCKED, MODHOST_ERROR_NOT_GRANTED,
    MODHOST_ERROR_NOT_INSTALLED, MODHOST_ERROR_PANIC, MODHOST_ERROR_REFUSED, MODHOST_OK,
};

/// Why a call failed: its status code and message.
pub(crate) struct Failure {
    code: c_int,
    message: String,
}

impl Failure {
    /// A bad argument: a NULL where a value is required, a string that is not UTF-8, a
    /// number the function does not take.
    pub(crate) fn argument(message: impl Into<String>) -> Self {
        Failure {
            code: MODHOST_ERROR_ARGUMENT,
            message: message.into(),
        }
    }

    /// A failure of the operation itself.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: MODHOST_ERROR_FAILED,
            message: message.into(),
        }
    }
}

impl From<modhost::Error> for Failure {
    fn from(error: modhost::Error) -> Self {
        use modhost::Error;
        let code = match &error {
            locked if locked.is_locked() => MODHOST_ERROR_LOCKED,
            refused if refused.is_refusal() => MODHOST_ERROR_REFUSED,
            Error::NotInstalled(..) | Error::NotOffered { .. } => MODHOST_ERROR_NOT_INSTALLED,
            Error::NotGranted { .. } => MODHOST_ERROR_NOT_GRANTED,
            Error::HookPoint { .. } => MODHOST_ERROR_ARGUMENT,
            _ => MODHOST_ERROR_FAILED,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(error: serde_json::Error) -> Self {
        Failure {
            code: MODHOST_ERROR_FAILED,
            message: format!("cannot write the result as JSON: {error}"),
        }
    }
}

/// Runs `body`, the whole of an extern function: `MODHOST_OK`, or its failure's code with
/// the message in `*error` (when `error` is not NULL), or `MODHOST_ERROR_PANIC` when it
/// panicked — a panic never unwinds into C.
///
/// # Safety
///
/// `error` is NULL or valid for one pointer write.
pub(crate) unsafe fn guard(
    error: *mut *mut c_char,
    body: impl FnOnce() -> Result<(), Failure>,
) -> c_int {
    // The caller may pass an uninitialised pointer: it is NULL unless a message is written.
    // SAFETY: the caller's contract.
    unsafe { put_raw(error, std::ptr::null_mut()) };
    // Every call may load or compile a component or call a module, which a C
    // application's thread may not have the stack for.
    let failure = match modhost::embed::with_stack(|| catch_unwind(AssertUnwindSafe(body))) {
        Ok(Ok(())) => return MODHOST_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => Failure {
            code: MODHOST_ERROR_PANIC,
            message: format!("modhost panicked (a bug): {}", panic_message(&*panic)),
        },
    };
    // SAFETY: as above.
    unsafe { put(error, failure.message) };
    failure.code
}

/// Runs `body` for a function that cannot report a failure (a constructor returning NULL,
/// a free): a panic is stopped and gives `fallback`.
pub(crate) fn quietly<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// The UTF-8 string argument `name` at `ptr`; refused when NULL or not UTF-8.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: the caller's contract.
    unsafe { opt_str_arg(ptr, name) }?.ok_or_else(|| Failure::argument(format!("`{name}` is NULL")))
}

/// The UTF-8 string argument `name` at `ptr`, or `None` for NULL; refused when not UTF-8.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(Some)
        .map_err(|e| Failure::argument(format!("`{name}` is not UTF-8: {e}")))
}

/// The path argument `name` at `ptr`, or `None` for NULL: any bytes, as a Unix path may
/// hold.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn opt_path_arg<'a>(ptr: *const c_char) -> Option<&'a std::path::Path> {
    use std::os::unix::ffi::OsStrExt;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    Some(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// The `count` items of the array `ptr`, argument `name`: empty for a `count` of 0;
/// refused when `ptr` is NULL or `count` is more items than memory can hold (a length
/// mistaken for another, or -1), which no array can be.
///
/// # Safety
///
/// `ptr` is NULL or points to `count` readable items.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    count: usize,
    name: &str,
) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::argument(format!("`{name}` is NULL")));
    }
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Failure::argument(format!(
            "`{name}` cannot hold {count} items: the count is wrong"
        )));
    }
    // SAFETY: `count` readable items, by the caller's contract; their size fits `isize`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// The `count` pointers of the array `ptr`, argument `name`, each read by `each` with
/// its own argument name (`name[i]`).
///
/// # Safety
///
/// `ptr` is NULL (with `count` 0) or points to `count` readable pointers.
unsafe fn array<T>(
    ptr: *const *const c_char,
    count: usize,
    name: &str,
    each: impl Fn(*const c_char, String) -> Result<T, Failure>,
) -> Result<Vec<T>, Failure> {
    // SAFETY: the caller's contract.
    let items = unsafe { slice_arg(ptr, count, name) }?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| each(*item, format!("{name}[{i}]")))
        .collect()
}

/// The `count` strings of the array `ptr`, argument `name`.
///
/// # Safety
///
/// `ptr` is NULL (with `count` 0) or points to `count` pointers, each as for [`str_arg`].
pub(crate) unsafe fn str_array<'a>(
    ptr: *const *const c_char,
    count: usize,
    name: &str,
) -> Result<Vec<&'a str>, Failure> {
    // SAFETY: each is a string as for `str_arg`, by the caller's contract.
    unsafe { array(ptr, count, name, |item, named| str_arg(item, &named)) }
}

/// The longest path Linux opens (`PATH_MAX`, its terminating NUL included).
const PATH_MAX: usize = 4096;

/// `path`, argument `name`, refused when empty (it would be the current directory) or
/// longer than the system opens (said by its length, not repeated in full).
pub(crate) fn checked_path<'a>(
    path: &'a std::path::Path,
    name: &str,
) -> Result<&'a std::path::Path, Failure> {
    let length = path.as_os_str().len();
    if length == 0 {
        return Err(Failure::argument(format!(
            "`{name}` is empty: an empty path would be the current directory"
        )));
    }
    if length >= PATH_MAX {
        return Err(Failure::argument(format!(
            "`{name}` is {length} bytes long, longer than any path the system opens ({} bytes)",
            PATH_MAX - 1
        )));
    }
    Ok(path)
}

/// The `count` paths of the array `ptr`, argument `name`: any bytes, as for
/// [`opt_path_arg`], none NULL.
///
/// # Safety
///
/// `ptr` is NULL (with `count` 0) or points to `count` pointers, each NULL or a
/// NUL-terminated string valid for `'a`.
pub(crate) unsafe fn path_array<'a>(
    ptr: *const *const c_char,
    count: usize,
    name: &str,
) -> Result<Vec<&'a std::path::Path>, Failure> {
    // SAFETY: each is NULL or a string as for `opt_path_arg`, by the caller's contract.
    unsafe {
        array(ptr, count, name, |item, named| {
            let path = opt_path_arg(item)
                .ok_or_else(|| Failure::argument(format!("`{named}` is NULL")))?;
            checked_path(path, &named)
        })
    }
}

/// `text` as a string the caller frees with `modhost_string_free`. A NUL inside (a module's
/// message may hold one) would cut the string short in C: it is written `\0`.
pub(crate) fn into_c(text: String) -> *mut c_char {
    let text = match CString::new(text) {
        Ok(text) => text,
        Err(e) => {
            let escaped = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\\0");
            CString::new(escaped).unwrap_or_default()
        }
    };
    text.into_raw()
}

/// Writes `text` to `*out` as a string the caller frees, unless `out` is NULL (the caller
/// did not want it).
///
/// # Safety
///
/// `out` is NULL or valid for one pointer write.
pub(crate) unsafe fn put(out: *mut *mut c_char, text: String) {
    if !out.is_null() {
        // SAFETY: the caller's contract.
        unsafe { put_raw(out, into_c(text)) };
    }
}

/// Writes `value` to `*out` unless `out` is NULL.
///
/// # Safety
///
/// `out` is NULL or valid for one write of a `T`.
pub(crate) unsafe fn put_raw<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: the caller's contract; `write` does not drop what was there, which may
        // be uninitialised.
        unsafe { out.write(value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message `error` points at, freed.
    fn message(error: *mut c_char) -> Option<String> {
        // SAFETY: NULL, or a string `guard` made with `CString::into_raw`, taken once.
        (!error.is_null()).then(|| {
            unsafe { CString::from_raw(error) }
                .to_string_lossy()
                .into_owned()
        })
    }

    #[test]
    fn a_panic_stops_at_the_boundary_as_a_code_and_its_message() {
        let mut error = std::ptr::null_mut();
        // SAFETY: `error` is writable.
        let code = unsafe { guard(&mut error, || panic!("a bug")) };
        assert_eq!(code, MODHOST_ERROR_PANIC);
        assert_eq!(
            message(error).as_deref(),
            Some("modhost panicked (a bug): a bug")
        );

        let number = 7;
        // SAFETY: `error` is writable.
        let code = unsafe { guard(&mut error, || panic!("bug {number}")) };
        assert_eq!(code, MODHOST_ERROR_PANIC);
        assert_eq!(
            message(error).as_deref(),
            Some("modhost panicked (a bug): bug 7")
        );

        // With no place for the message, the code alone.
        // SAFETY: NULL is allowed.
        let code = unsafe { guard(std::ptr::null_mut(), || panic!("unseen")) };
        assert_eq!(code, MODHOST_ERROR_PANIC);
        assert_eq!(quietly(3, || panic!("in a free")), 3);
    }

    #[test]
    fn success_leaves_no_message_even_over_an_uninitialised_pointer() {
        let mut error = std::ptr::dangling_mut::<c_char>();
        // SAFETY: `error` is writable.
        let code = unsafe { guard(&mut error, || Ok(())) };
        assert_eq!(code, MODHOST_OK);
        assert!(error.is_null());
    }

    #[test]
    fn a_nul_inside_a_message_is_written_not_cut_at() {
        let text = message(into_c("before\0after".to_owned()));
        assert_eq!(text.as_deref(), Some("before\\0after"));
    }
}
