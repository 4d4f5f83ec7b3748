//! Hooks a module fires from inside a call: the runtime hands them, with the call's
//! session, to the host, which runs their handlers.

use std::time::Instant;

use modhost_state::Session;

/// A hook fired by a module from inside a call.
#[derive(Debug)]
pub struct FireRequest<'a> {
    /// The module that fired it.
    pub caller: &'a str,
    /// The hook point.
    pub hook: &'a str,
    /// The payload.
    pub payload: &'a str,
    /// How deep the handlers will run: 1 for a hook fired by a top-level call.
    pub depth: u32,
    /// The firing call's deadline, which the handlers share.
    pub deadline: Instant,
    /// What the firing call's memory cap leaves, in bytes: a handler's memories may hold
    /// no more, so that a call's memories and those of what it fires stay within its cap.
    pub memory_left: usize,
    /// The application's value for the dispatch, which the handlers' capabilities see too.
    pub data: Option<crate::CallData>,
    /// The dispatch's cancellation, which stops the handlers too.
    pub cancel: Option<crate::Cancel>,
    /// What each module logged in the dispatch so far, which the handlers count on.
    pub logs: std::sync::Arc<crate::LogLedger>,
}

/// Each fired handler's module and result, in the order they ran.
pub type Fired = Vec<(String, Result<String, String>)>;

/// Runs the handlers of a hook a module fires. The host implements it; the runtime
/// lends it the firing call's session and gets it back.
pub trait Fire: Send + Sync {
    /// Runs `request`'s handlers inside `session`; returns each `(module, result)` in
    /// order, or why the hook could not be fired.
    fn fire(&self, request: FireRequest<'_>, session: Session) -> (Result<Fired, String>, Session);
}
