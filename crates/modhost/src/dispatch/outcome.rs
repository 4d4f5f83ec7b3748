//! What a dispatch returns: each handler's call, its outcome, and why it failed.

use modhost_runtime::Failure;
use serde::Serialize;

/// Why a handler failed, for an application that treats some failures differently (say,
/// routing a call elsewhere after a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// It ran, or waited, past its deadline.
    Timeout,
    /// It reached its memory cap.
    OutOfMemory,
    /// It tried to hold more open files, streams or other host resources than its limit.
    TooManyResources,
    /// Its stack ran out: deep or endless recursion.
    StackOverflow,
    /// It trapped: a panic, an invalid operation.
    Trap,
    /// It returned an error of its own.
    Failed,
    /// Its result or error message was over the output limit.
    OutputTooLarge,
    /// The host could not run it: its component would not load, or the state database
    /// failed.
    Host,
    /// The application cancelled the dispatch (the caller hung up) while it ran or before
    /// it started.
    Cancelled,
    /// The host was running as many calls at once as it has room for, or other calls held
    /// the state database, until the handler's deadline.
    Busy,
}

impl FailureKind {
    pub(super) fn of(error: &modhost_runtime::Error) -> Self {
        use modhost_runtime::Error;
        match error {
            Error::Trapped { failure, .. } => match failure {
                Failure::Timeout { .. } => FailureKind::Timeout,
                Failure::OutOfMemory { .. } => FailureKind::OutOfMemory,
                Failure::TooManyResources(_) => FailureKind::TooManyResources,
                Failure::StackOverflow(_) => FailureKind::StackOverflow,
                Failure::Trap(_) => FailureKind::Trap,
                Failure::Host(_) => FailureKind::Host,
                Failure::Cancelled { .. } => FailureKind::Cancelled,
                Failure::Busy(_) | Failure::Waited(_) => FailureKind::Busy,
            },
            // Its own report of an allocation refused at the cap is the cap's doing.
            Error::Failed {
                at_memory_cap: true,
                ..
            } => FailureKind::OutOfMemory,
            Error::Failed { .. } => FailureKind::Failed,
            Error::OutputTooLarge { .. } => FailureKind::OutputTooLarge,
            Error::Io { .. }
            | Error::Engine(_)
            | Error::Forked { .. }
            | Error::Capability { .. }
            | Error::CacheFull { .. }
            | Error::Load { .. }
            | Error::ApiVersion { .. }
            | Error::Imports { .. }
            | Error::MissingFunctions { .. }
            | Error::Unlinked { .. }
            | Error::MissingExports { .. }
            | Error::MemoryCapTooLarge { .. }
            | Error::MemoryCapTooSmall { .. }
            | Error::ZeroLimit { .. }
            | Error::TimeoutTooLong { .. }
            | Error::FireDepthTooDeep { .. } => FailureKind::Host,
        }
    }
}

/// A handler's failure: its kind and the message naming the module and the call.
pub(super) type Failed = (FailureKind, String);

/// One handler's call and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookCall {
    /// The module.
    pub rawname: String,
    /// The handler's priority.
    pub priority: i32,
    /// The handler's name.
    pub handler: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Its output, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Its error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure the error is, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
}

/// The result of dispatching a hook point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dispatch {
    /// The calls, in the order they ran.
    pub calls: Vec<HookCall>,
    /// For a pipeline, the last output (the payload itself when nothing handled it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For a fail-closed hook point, the module whose failure stopped the chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// Whether the application cancelled it: the handler running then stopped, and those
    /// after it did not run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// The handlers of the hook point that did not run, or whose result was set aside,
    /// with why: a broken module's, those after a fail-closed chain stopped or the
    /// dispatch was cancelled, one whose module changed while it ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// A handler of a hook point that a dispatch left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// Its module.
    pub rawname: String,
    /// The handler's name.
    pub handler: String,
    /// Its priority.
    pub priority: i32,
    /// Why, in a word.
    pub cause: LeftOutCause,
    /// Why it did not run, or its result was set aside.
    pub why: String,
}

/// Why a dispatch left a handler out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutCause {
    /// Its module is broken: its files are gone or changed.
    Broken,
    /// Its module was disabled, uninstalled or upgraded while it ran.
    Changed,
    /// A fail-closed chain stopped before it.
    Stopped,
    /// The dispatch was cancelled before it.
    Cancelled,
}
