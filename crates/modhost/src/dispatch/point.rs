//! What the application declares and passes: a hook point's shape, failure mode and
//! limits, and the options of one dispatch.

use modhost_runtime::{Cancel, Limits};
use serde::Serialize;

/// The hook point `reload` runs to build the configuration.
pub(crate) const GET_CONFIG: &str = "get_config";

/// Why a hook point named `` cannot be declared or dispatched.
const NO_NAME: &str = "a hook point needs a name";

/// Why `name` cannot name a hook point, if it cannot: empty, or longer than module.xml
/// lets a hook point's name be.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some(NO_NAME);
    }
    (name.len() > modhost_manifest::MAX_HOOK_NAME)
        .then_some("a hook point's name is at most 256 bytes long")
}

/// The module hook point `hook` is named after (`userman` of `userman.delUser`): only
/// that module fires it, as FreePBX runs a module's hooks only when that module calls
/// them, so that no other can make `userman.delUser`'s listeners act on a user it names.
/// A hook point the application declares is the application's, whatever its name.
pub(crate) fn named_after(hook: &str) -> Option<&str> {
    let (prefix, _) = hook.split_once('.')?;
    modhost_manifest::is_valid_rawname(prefix).then_some(prefix)
}

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

    /// How hook point `name` runs when the application does not declare it: `get_config`
    /// as a [`HookPoint::pipeline`], any other as a [`HookPoint::broadcast`].
    pub fn undeclared(name: &str) -> Self {
        if name == GET_CONFIG {
            HookPoint::pipeline(name)
        } else {
            HookPoint::broadcast(name)
        }
    }

    /// Why this declaration cannot stand, if it cannot: a hook point needs a name, and
    /// `get_config` is always a fail-closed pipeline — `reload` builds one configuration
    /// from it and must not write one that a failed handler left out of.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if let Some(problem) = name_problem(&self.name) {
            return Some(problem);
        }
        (self.name == GET_CONFIG && (self.shape, self.on_error) != (Shape::Pipeline, OnError::Stop))
            .then_some(
                "get_config is always a fail-closed pipeline (reload builds one configuration \
                 from it, and must not write one a handler failed to add to); only its limits \
                 can be declared",
            )
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
