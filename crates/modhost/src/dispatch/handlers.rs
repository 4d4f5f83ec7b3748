//! Which handlers a hook point has: a snapshot of the running modules (and the broken
//! ones, whose handlers a dispatch names as left out), kept while the state database's
//! generation stays the same, with each hook point's handlers in priority order.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use modhost_manifest::Manifest;
use modhost_runtime::Warm;

use super::{Dispatcher, Entry, Handler, LeftOut, LeftOutCause};
use crate::Result;

/// What is installed, as of one generation of the state database.
#[derive(Default)]
pub(super) struct Snapshot {
    generation: Option<i64>,
    modules: Vec<Arc<Entry>>,
    /// The broken modules, each with why, and its manifest when it can be read: their
    /// handlers are named as left out of a dispatch.
    broken: Vec<(String, String, Option<Manifest>)>,
    handlers: BTreeMap<String, Arc<Vec<Handler>>>,
}

impl Dispatcher {
    /// The handlers of `hook`, from a snapshot that is current with the state database,
    /// and the generation it is of.
    pub(super) fn handlers(&self, hook: &str) -> Result<(i64, Arc<Vec<Handler>>)> {
        let generation = self.state.generation()?;
        {
            let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
            if snapshot.generation == Some(generation)
                && let Some(handlers) = snapshot.handlers.get(hook)
            {
                return Ok((generation, Arc::clone(handlers)));
            }
        }
        let mut snapshot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        if snapshot.generation != Some(generation) {
            let (modules, broken) = self.modules_now()?;
            *snapshot = Snapshot {
                generation: Some(generation),
                modules,
                broken,
                handlers: BTreeMap::new(),
            };
        }
        let mut handlers: Vec<Handler> = Vec::new();
        for entry in &snapshot.modules {
            for (priority, name) in handlers_in(&entry.manifest, hook) {
                handlers.push(Handler {
                    priority,
                    name: name.clone(),
                    entry: Arc::clone(entry),
                });
            }
        }
        handlers.sort_by(|a, b| {
            (a.priority, &a.entry.record.rawname).cmp(&(b.priority, &b.entry.record.rawname))
        });
        let handlers = Arc::new(handlers);
        snapshot
            .handlers
            .insert(hook.to_owned(), Arc::clone(&handlers));
        Ok((generation, handlers))
    }

    /// The handlers of `hook` that broken modules declare, as of the snapshot the
    /// dispatch ran from: they cannot run, and a dispatch says so rather than leave them
    /// out unsaid. Read from the snapshot, never from the database: a dispatch pays
    /// nothing for it.
    pub(super) fn broken_handlers(&self, hook: &str) -> Vec<LeftOut> {
        let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        let mut left_out = Vec::new();
        for (rawname, reason, manifest) in &snapshot.broken {
            let Some(manifest) = manifest else {
                continue;
            };
            for (priority, handler) in handlers_in(manifest, hook) {
                left_out.push(LeftOut {
                    rawname: rawname.clone(),
                    handler: handler.clone(),
                    priority,
                    cause: LeftOutCause::Broken,
                    why: format!("its module is broken ({reason})"),
                });
            }
        }
        left_out
    }

    /// The broken modules whose module.xml cannot be read, each with why it is broken, as
    /// of the last snapshot: which hooks they handle is not known.
    pub(crate) fn broken_unread(&self) -> Vec<(String, String)> {
        let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        snapshot
            .broken
            .iter()
            .filter(|(_, _, manifest)| manifest.is_none())
            .map(|(rawname, reason, _)| (rawname.clone(), reason.clone()))
            .collect()
    }

    /// A hook point the running modules handle, as of the last snapshot, whose name
    /// differs from `hook` only in case: FreePBX's are camelCase, and easily mistyped.
    pub(crate) fn point_in_other_case(&self, hook: &str) -> Option<String> {
        let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        snapshot.modules.iter().find_map(|entry| {
            let manifest = &entry.manifest;
            manifest
                .methods
                .iter()
                .map(|m| m.hook.clone())
                .chain(manifest.hooks.iter().map(|h| h.point()))
                .find(|point| point != hook && point.eq_ignore_ascii_case(hook))
        })
    }

    /// The running modules as dispatch sees them, and the broken ones, with why.
    #[allow(clippy::type_complexity)]
    fn modules_now(&self) -> Result<(Vec<Arc<Entry>>, Vec<(String, String, Option<Manifest>)>)> {
        let mut entries = Vec::new();
        let mut broken = Vec::new();
        for record in self.state.modules()? {
            if record.status == modhost_state::Status::Broken {
                let reason = record
                    .reason
                    .clone()
                    .unwrap_or_else(|| "its files are gone".to_owned());
                broken.push((record.rawname.clone(), reason, record.parse_manifest().ok()));
                continue;
            }
            if !record.status.runs() {
                continue;
            }
            let manifest = record.parse_manifest()?;
            let grants = self.state.grants(&record.rawname)?;
            let mounts = crate::ops::mounts(grants.clone());
            entries.push(Arc::new(Entry {
                data_dir: self.layout.data_dir(&record.rawname, &record.data_dir),
                record,
                manifest,
                mounts,
                grants,
                component: OnceLock::new(),
                warm: Warm::default(),
            }));
        }
        Ok((entries, broken))
    }
}

/// The handlers `manifest` declares for hook point `hook`, with their priorities: its
/// `<methods>` named so, and its `<hooks>` methods whose [`Hook::point`](modhost_manifest::Hook::point) it is.
fn handlers_in<'m>(manifest: &'m Manifest, hook: &str) -> impl Iterator<Item = (i32, &'m String)> {
    let methods = manifest
        .methods
        .iter()
        .filter(move |m| m.hook == hook)
        .map(|m| (m.priority, &m.handler));
    let hooks = manifest
        .hooks
        .iter()
        .filter(move |h| h.point() == hook)
        .map(|h| (h.priority, &h.handler));
    methods.chain(hooks)
}
