//! What the application declares and passes: a hook point's shape, failure mode and
//! limits, and the options of one dispatch.

use modhost_runtime::{Cancel, Limits};
use serde::Serialize;

/// How a hook point passes input to its handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Every handler gets the same payload; the caller gets every result.
    Broadcast,
    /// Each handler gets the previous handler's output; the caller gets the last.
    Pipeline,
}

/// What a failing handler does to the rest of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The failure is reported and the next handler runs (fail-open).
    Continue,
    /// The first failure stops the chain (fail-closed).
    Stop,
}

/// A hook point the application declares: its shape, failure mode and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct HookPoint {
    /// The hook point's name, e.g. `get_config` or `call.route`.
    pub name: String,
    /// How input flows.
    pub shape: Shape,
    /// What a failure does.
    pub on_error: OnError,
    /// Limits of each handler call, if not the host's.
    pub limits: Option<Limits>,
}

impl HookPoint {
    /// A broadcast, fail-open hook point with the host's limits: the default for hook
    /// points nobody declared.
    pub fn broadcast(name: &str) -> Self {
        HookPoint {
            name: name.to_owned(),
            shape: Shape::Broadcast,
            on_error: OnError::Continue,
            limits: None,
        }
    }

    /// A pipeline, fail-closed hook point with the host's limits, like `get_config`.
    pub fn pipeline(name: &str) -> Self {
        HookPoint {
            name: name.to_owned(),
            shape: Shape::Pipeline,
            on_error: OnError::Stop,
            limits: None,
        }
    }
}

/// What the application passes with one dispatch.
#[derive(Clone, Default)]
pub struct DispatchOptions {
    /// A value every capability call of the dispatch receives (hooks fired from inside
    /// it included): the channel the call is on, say.
    pub data: Option<modhost_runtime::CallData>,
    /// Cancels the dispatch from another thread ([`crate::Host::cancel_handle`]).
    pub cancel: Option<Cancel>,
}

impl std::fmt::Debug for DispatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchOptions")
            .field("data", &self.data.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}
