//! Cancelling a dispatch from another thread: the caller hung up.

use crate::ffi::quietly;
use crate::host::{Host, host_arg};

/// A handle that cancels the dispatches it is passed to, from any thread. Made by
/// `modhost_cancel_handle_new`, freed by `modhost_cancel_handle_free`.
pub struct CancelHandle(pub(crate) modhost::embed::Cancel);

/// A new cancel handle, which the caller frees with `modhost_cancel_handle_free`; NULL
/// when `host` is NULL, closed or being closed, or in a process forked from the one that
/// opened it. It may outlive the host. It is a token, whichever host made it: passed to a
/// dispatch on any host, it cancels that dispatch.
///
/// # Safety
///
/// `host` is NULL or a live host.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_cancel_handle_new(host: *const Host) -> *mut CancelHandle {
    quietly(std::ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        match unsafe { host_arg(host) } {
            Ok(host) => Box::into_raw(Box::new(CancelHandle(host.cancel_handle()))),
            Err(_) => std::ptr::null_mut(),
        }
    })
}

/// Cancels: the handler running in a dispatch given `handle` stops at once, as at its
/// deadline, its writes are rolled back, the handlers after it do not run, and the
/// dispatch's result says `"cancelled": true`. Dispatches given `handle` later are
/// cancelled before they start: use a new handle per call that may be cancelled. Safe from
/// any thread, while the dispatch runs. NULL is ignored.
///
/// # Safety
///
/// `handle` is NULL or a live cancel handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_cancel(handle: *const CancelHandle) {
    quietly((), || {
        // SAFETY: the caller's contract.
        if let Some(handle) = unsafe { handle.as_ref() } {
            handle.0.cancel();
        }
    });
}

/// Frees `handle`; a dispatch it was passed to keeps what it needs. NULL is ignored.
///
/// # Safety
///
/// `handle` is NULL or a handle from `modhost_cancel_handle_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_cancel_handle_free(handle: *mut CancelHandle) {
    if !handle.is_null() {
        // SAFETY: made by `Box::into_raw` in `modhost_cancel_handle_new`, freed once.
        quietly((), || drop(unsafe { Box::from_raw(handle) }));
    }
}
