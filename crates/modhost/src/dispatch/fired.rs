//! Hooks a module fires from inside its call: refused past the call's deadline, deeper
//! than the nesting allows, or named after another module; else run within what the
//! firing call has left of its deadline and memory, with its outcomes returned to it.

use std::time::Instant;

use modhost_runtime::{Fire, FireRequest, Fired};
use modhost_state::Session;

use super::{DispatchOptions, Dispatcher, Scope, point};

impl Fire for Dispatcher {
    fn fire(
        &self,
        request: FireRequest<'_>,
        mut session: Session,
    ) -> (std::result::Result<Fired, String>, Session) {
        // A name no application's dispatch takes (empty, too long, not text a hook point
        // is named with) is refused to a module too, as no hook point's.
        if let Some(problem) = point::name_problem(request.hook) {
            let refusal = format!(
                "hook `{}` fired by `{}`: {problem}; not fired",
                crate::shortened(request.hook),
                request.caller
            );
            return (Err(refusal), session);
        }
        // The configuration is built by the host alone: a module firing it would read
        // every other module's part, and run their handlers on a payload of its choice.
        if request.hook == point::GET_CONFIG {
            let refusal = format!(
                "hook `{}` builds the configuration, which only the host runs: `{}` may \
                 not fire it; not fired",
                request.hook, request.caller
            );
            return (Err(refusal), session);
        }
        if Instant::now() >= request.deadline {
            let refusal = format!(
                "hook `{}` fired by `{}` after its deadline passed; not fired",
                request.hook, request.caller
            );
            return (Err(refusal), session);
        }
        let point = self.point(request.hook);
        let max_depth = point.limits.unwrap_or(self.limits).max_fire_depth;
        if request.depth > max_depth {
            let refusal = format!(
                "hook `{}` fired by `{}` would nest deeper than {max_depth} levels; not fired",
                request.hook, request.caller
            );
            return (Err(refusal), session);
        }
        let handlers = match self.handlers(request.hook) {
            Ok((_, handlers)) => handlers,
            Err(e) => return (Err(e.to_string()), session),
        };
        let open = || {
            let open = self.open.read().unwrap_or_else(|e| e.into_inner());
            open.contains(request.hook)
        };
        if let Some(owner) =
            point::named_after(request.hook).filter(|owner| *owner != request.caller && !open())
        {
            let refusal = format!(
                "hook `{}` is module `{owner}`'s: `{}` may not fire it (a module fires the \
                 hook points named after it, those the application declares or modhost.toml \
                 opens with `fired_by = \"any\"`, and those without a module's name); not \
                 fired",
                request.hook, request.caller
            );
            return (Err(refusal), session);
        }
        let options = DispatchOptions {
            data: request.data,
            cancel: request.cancel,
        };
        let scope = Scope {
            depth: request.depth,
            deadline: Some(request.deadline),
            memory_left: Some(request.memory_left),
            options: &options,
            logs: Some(request.logs),
        };
        let dispatch = self.run(&point, &handlers, request.payload, &mut session, &scope);
        // Cancelled before any handler ran: said as that, not as a hook nobody handles,
        // which a module could take for consent.
        if dispatch.cancelled && dispatch.calls.is_empty() && !dispatch.left_out.is_empty() {
            let refusal = format!(
                "hook `{}` fired by `{}`: the call was cancelled before any handler ran",
                request.hook, request.caller
            );
            return (Err(refusal), session);
        }
        let outcomes = dispatch
            .calls
            .into_iter()
            .map(|call| {
                let result = match call.error {
                    Some(error) => Err(error),
                    None => Ok(call.output.unwrap_or_default()),
                };
                (call.rawname, result)
            })
            .collect();
        (Ok(outcomes), session)
    }
}
