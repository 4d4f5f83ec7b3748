//! One handler's call: its component loaded (once per snapshot) and checked against its
//! grants, its scope of the dispatch's session, its limits, and whether its module changed
//! under it.

use std::sync::Arc;

use modhost_runtime::{Call, CallContext, LoadedComponent};
use modhost_state::{ModuleRecord, Session};

use super::{Dispatcher, Entry, Failed, FailureKind, Handler, HookPoint, Scope, Shape};
use crate::Result;

impl Dispatcher {
    /// Refuses `entry`'s component if it imports a capability that needs a grant it lacks.
    pub(super) fn check_granted(&self, entry: &Entry, component: &LoadedComponent) -> Result<()> {
        let imports = component.imports(self.runtime.engine());
        match self
            .runtime
            .needing_grant(&imports)
            .into_iter()
            .find(|package| !entry.grants.iter().any(|(key, _)| key == package))
        {
            Some(package) => Err(crate::Error::NotGranted {
                rawname: entry.record.rawname.clone(),
                package,
            }),
            None => Ok(()),
        }
    }

    /// Calls one handler in its own scope of `session`; its changes are kept only if it
    /// succeeds. `None` when its module changed while it ran (see [`Session::as_of`]).
    pub(super) fn call(
        &self,
        point: &HookPoint,
        handler: &Handler,
        payload: &str,
        session: &mut Session,
        scope: &Scope<'_>,
    ) -> Option<std::result::Result<String, Failed>> {
        let entry = &handler.entry;
        if let Err(e) = session.enter_module(&entry.record.found()) {
            return Some(Err((FailureKind::Host, e.to_string())));
        }
        let output = self.call_in_scope(point, handler, payload, session, scope);
        // The module changed under the call: the state refused its statements, or the
        // change removed its files (its component, its /data) while it loaded or ran, and
        // the call failed on that, the host's way or its own (a write to a /data that a
        // disable moved away fails in the module).
        let set_aside = session.scope_changed() || (output.is_err() && self.changed_since(entry));
        let kept = session.leave(output.is_ok() && !set_aside);
        if set_aside {
            return None;
        }
        Some(
            kept.map_err(|e| (FailureKind::Host, e.to_string()))
                .and(output),
        )
    }

    /// Whether `entry`'s module is no longer installed, running, at the version the
    /// dispatch found.
    pub(super) fn changed_since(&self, entry: &Entry) -> bool {
        self.state.module(&entry.record.rawname).is_ok_and(|now| {
            ModuleRecord::change_since(now.as_ref(), &entry.record.found()).is_some()
        })
    }

    /// `entry`'s component, loaded (and compiled, the first time) once per snapshot.
    pub(super) fn component(
        &self,
        entry: &Entry,
    ) -> std::result::Result<Arc<LoadedComponent>, String> {
        entry
            .component
            .get_or_init(|| {
                let path = self
                    .layout
                    .module_dir(&entry.record.rawname, &entry.record.module_dir)
                    .join(&entry.manifest.component);
                let component = self
                    .runtime
                    .load(&path, Some(&entry.record.component_sha256))
                    .map_err(|e| e.to_string())?;
                // A grant withdrawn since install unlinks nothing: the call is refused.
                self.check_granted(entry, &component)
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(component))
            })
            .clone()
    }

    /// Loads `handler`'s component and calls it, in the scope [`Dispatcher::call`] opened.
    pub(super) fn call_in_scope(
        &self,
        point: &HookPoint,
        handler: &Handler,
        payload: &str,
        session: &mut Session,
        scope: &Scope<'_>,
    ) -> std::result::Result<String, Failed> {
        let host = |e: &dyn std::fmt::Display| (FailureKind::Host, e.to_string());
        let entry = &handler.entry;
        let component = self.component(entry).map_err(|e| host(&e))?;
        let mut limits = point.limits.unwrap_or(self.limits);
        // A pipeline handler returns what the handlers before it made with its own part:
        // the output limit bounds its part, so that one module's large part neither fails
        // the next module nor is blamed on it. Only in the application's (and reload's)
        // dispatches: a hook a module fires, with a payload of its choosing, keeps the
        // plain bound, so that its handlers cannot pass megabytes along for the host to
        // hold one copy of per handler.
        if point.shape == Shape::Pipeline && scope.depth == 0 {
            limits.max_output = limits.max_output.saturating_add(payload.len());
        }
        let usual = limits.max_memory;
        if let Some(left) = scope.memory_left {
            // At least a byte: a cap of 0 reads as a mistake, and no instance fits in one.
            limits.max_memory = limits.max_memory.min(left).max(1);
        }
        let context = CallContext {
            rawname: &entry.record.rawname,
            version: &entry.record.version,
            data_dir: &entry.data_dir,
            mounts: &entry.mounts,
            session: std::mem::replace(session, Session::lazy(self.state.clone())),
            limits,
            deadline: scope.deadline,
            fire: self.as_fire(),
            depth: scope.depth,
            disk_quota: self.disk_quota(&entry.record.rawname),
            data: scope.options.data.clone(),
            cancel: scope.options.cancel.clone(),
            logs: scope.logs.clone(),
        };
        let call = Call::Hook {
            handler: &handler.name,
            hook: &point.name,
            payload,
        };
        // An instance made under a cap a firing call cut down is not kept: no other call
        // would take it, and it would hold a place of the warm ones.
        let (result, returned) = if limits.max_memory == usual {
            self.runtime
                .call_warm(&component, &entry.warm, context, &call)
        } else {
            self.runtime.call(&component, context, &call)
        };
        *session = returned;
        result.map(Option::unwrap_or_default).map_err(|e| {
            let kind = FailureKind::of(&e);
            let mut message = e.to_string();
            // The cap it met is not the one its settings give it: said, or the author
            // would look for a setting of that size.
            if kind == FailureKind::OutOfMemory && limits.max_memory < usual {
                message += &format!(
                    " (what the call that fired `{}` left of its own cap of {}: a fired \
                     hook's handlers share their firing call's memory cap)",
                    point.name,
                    crate::error::mebibytes(usual as u64)
                );
            }
            (kind, message)
        })
    }
}
