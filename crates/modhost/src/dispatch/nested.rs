//! How deep the application's own dispatches run on this thread, and where a firing
//! call's deadline met the hooks it fired.

use std::time::Instant;

use super::outcome::{Failed, FailureKind};
use crate::Result;

thread_local! {
    /// How many dispatches the application started on this thread are running: more than
    /// one when a capability it implements dispatches again from inside a module's call.
    static NESTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One running dispatch of the application's on this thread, counted in [`NESTED`] while
/// it lives: an application's capability that dispatches again from a module's call, which
/// dispatches again, is bounded as hooks modules fire are.
pub(super) struct Nested;

/// Whether a dispatch is running on this thread: a change made now would wait for it.
pub(crate) fn inside_dispatch() -> bool {
    NESTED.get() > 0
}

impl Nested {
    pub(super) fn enter(hook: &str, limit: u32) -> Result<Nested> {
        let depth = NESTED.get();
        if depth > limit {
            return Err(crate::Error::NestedTooDeep {
                hook: hook.to_owned(),
                depth,
                limit,
            });
        }
        NESTED.set(depth + 1);
        Ok(Nested)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTED.set(NESTED.get().saturating_sub(1));
    }
}

thread_local! {
    /// The fired handler running when the call that fired it (on this thread) reached its
    /// deadline: the innermost, which the firing call's own timeout then names.
    static DEADLINE_MET_IN: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// A handler's `result` at `depth`, seen against `outer`, the deadline of the call that
/// fired it: a fired handler stopped by that deadline is noted ([`deadline_met_in`]), and
/// a top-level handler's timeout says where in what it fired its deadline came.
pub(super) fn noting_deadline(
    result: std::result::Result<String, Failed>,
    depth: u32,
    outer: Option<Instant>,
    handler: impl FnOnce() -> String,
) -> std::result::Result<String, Failed> {
    match result {
        Err((FailureKind::Timeout, error)) if depth > 0 => {
            if outer.is_some_and(|deadline| Instant::now() >= deadline) {
                deadline_met_in(handler);
            }
            Err((FailureKind::Timeout, error))
        }
        Err((FailureKind::Timeout, error)) => match take_deadline_met() {
            Some(inner) => Err((
                FailureKind::Timeout,
                format!("{error} (the deadline came while {inner}, fired from it, ran)"),
            )),
            None => Err((FailureKind::Timeout, error)),
        },
        other => other,
    }
}

/// Notes that the deadline of the call firing this hook came while `handler` ran, unless
/// a handler deeper down was noted already.
fn deadline_met_in(handler: impl FnOnce() -> String) {
    DEADLINE_MET_IN.with(|met| {
        let mut met = met.borrow_mut();
        if met.is_none() {
            *met = Some(handler());
        }
    });
}

/// Where the deadline of the handler that just ended met the hooks it fired, if it did;
/// forgotten once read.
pub(super) fn take_deadline_met() -> Option<String> {
    DEADLINE_MET_IN.with(|met| met.borrow_mut().take())
}
