//! Hook dispatch: a hook point's handlers across the running modules, in priority order.

use modhost_runtime::Call;
use serde::Serialize;

use crate::{Host, Result, plan};

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
}

/// `(priority, rawname, handler)` for every running module's handler of `hook`: its
/// `<methods>` named `hook`, and its `<hooks>` entries whose `TARGET.callingMethod` is `hook`.
pub(crate) fn handlers(host: &Host, hook: &str) -> Result<Vec<(i32, String, String)>> {
    let mut handlers = Vec::new();
    for record in host
        .state
        .modules()?
        .into_iter()
        .filter(|r| r.status.runs())
    {
        let manifest = plan::manifest_of(&record)?;
        for method in manifest.methods.iter().filter(|m| m.hook == hook) {
            handlers.push((
                method.priority,
                record.rawname.clone(),
                method.handler.clone(),
            ));
        }
        for entry in manifest
            .hooks
            .iter()
            .filter(|h| format!("{}.{}", h.target, h.hook) == hook)
        {
            handlers.push((
                entry.priority,
                record.rawname.clone(),
                entry.handler.clone(),
            ));
        }
    }
    handlers.sort();
    Ok(handlers)
}

/// Calls each handler with the same payload; failures are reported and skipped.
pub(crate) fn broadcast(host: &Host, hook: &str, payload: &str) -> Result<Vec<HookCall>> {
    let mut calls = Vec::new();
    for (priority, rawname, handler) in handlers(host, hook)? {
        let record = host.installed(&rawname)?;
        let component = host.component(&record)?;
        let call = Call::Hook {
            handler: handler.clone(),
            hook: hook.to_owned(),
            payload: payload.to_owned(),
        };
        let context = modhost_runtime::CallContext {
            rawname: rawname.clone(),
            version: record.version.clone(),
            data_dir: host.layout.data_dir(&rawname, &record.data_dir),
            txn: host.state.begin()?,
        };
        let (result, txn) = host.runtime.call(&component, context, &call);
        let (ok, output, error) = match result {
            Ok(output) => {
                txn.commit()?;
                (true, output, None)
            }
            Err(e) => (false, None, Some(e.to_string())),
        };
        calls.push(HookCall {
            rawname,
            priority,
            handler,
            ok,
            output,
            error,
        });
    }
    Ok(calls)
}
