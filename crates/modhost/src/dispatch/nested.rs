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
        Err((FailureKind::Timeout, error))
            if depth > 0 && outer.is_some_and(|deadline| Instant::now() >= deadline) =>
        {
            deadline_met_in(handler);
            Err((FailureKind::Timeout, error))
        }
        // Ended otherwise (stopped by its own deadline, or not stopped): what it fired and
        // noted is no concern of the calls above, which go on.
        result if depth > 0 => {
            take_deadline_met();
            result
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn timeout() -> std::result::Result<String, Failed> {
        Err((
            FailureKind::Timeout,
            "stopped after its deadline".to_owned(),
        ))
    }

    #[test]
    fn a_top_level_timeout_names_the_fired_handler_its_deadline_met_and_no_other() {
        let past = Some(Instant::now() - Duration::from_millis(1));
        let ahead = Some(Instant::now() + Duration::from_secs(60));
        let said = |result: std::result::Result<String, Failed>| match result {
            Err((_, error)) => error,
            Ok(output) => output,
        };
        // The firing call's deadline came while H1 ran: the top-level timeout names it.
        let _ = noting_deadline(timeout(), 1, past, || "H1".to_owned());
        assert_eq!(
            said(noting_deadline(timeout(), 0, None, || "H0".to_owned())),
            "stopped after its deadline (the deadline came while H1, fired from it, ran)"
        );
        // H2 met H1's own, shorter deadline; H1 then timed out while H0's was still ahead:
        // H0's later timeout is its own.
        let _ = noting_deadline(timeout(), 2, past, || "H2".to_owned());
        let _ = noting_deadline(timeout(), 1, ahead, || "H1".to_owned());
        assert_eq!(
            said(noting_deadline(timeout(), 0, None, || "H0".to_owned())),
            "stopped after its deadline"
        );
        // And a fired handler that answered takes its own fired ones' notes with it.
        let _ = noting_deadline(timeout(), 2, past, || "H2".to_owned());
        let _ = noting_deadline(Ok("fine".to_owned()), 1, ahead, || "H1".to_owned());
        assert_eq!(take_deadline_met(), None);
    }
}
