//! Hook dispatch: a hook point's handlers across the running modules, in priority order.
//!
//! What is installed is cached — each running module's handlers, grants and prepared
//! component — and rebuilt only when the state database's generation moves, so a dispatch
//! costs one small query plus the calls themselves. A dispatch opens a transaction only if
//! a handler touches its store; each handler runs in its own savepoint, so a failing
//! handler's changes are undone alone, and what a handler kept is committed when it
//! returns (`Session::checkpoint`), so that a later handler's runaway statement, which
//! SQLite answers by rolling back the whole transaction, undoes nothing but its own. A
//! fail-closed dispatch that stops at a failure so keeps what the handlers before it wrote.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use modhost_manifest::Manifest;
use modhost_runtime::{DiskQuota, Fire, Limits, LoadedComponent, LogLedger, Mount, Runtime, Warm};
use modhost_state::{ModuleRecord, Session, State};

use crate::Result;
use crate::config::DataConfig;
use crate::layout::Layout;

mod call;
mod fired;
mod handlers;
mod nested;
mod under_way;
pub(crate) use nested::inside_dispatch;
mod outcome;
mod point;

use handlers::Snapshot;
use nested::Nested;
use outcome::Failed;
pub use outcome::{Dispatch, FailureKind, HookCall, LeftOut, LeftOutCause};
pub(crate) use point::name_problem;
pub use point::{DispatchOptions, HookPoint, OnError, Shape};

/// Where in a dispatch a handler runs: how deep in fired hooks, under which deadline, and
/// with the application's options.
struct Scope<'a> {
    depth: u32,
    deadline: Option<Instant>,
    /// What the firing call's memory cap leaves, for a fired hook's handlers.
    memory_left: Option<usize>,
    options: &'a DispatchOptions,
    /// What each module logged in the dispatch, for a fired hook's handlers.
    logs: Option<Arc<LogLedger>>,
}

/// An installed, running module as dispatch sees it.
struct Entry {
    record: ModuleRecord,
    manifest: Manifest,
    /// The host directory mounted as the module's `/data`.
    data_dir: PathBuf,
    mounts: Vec<Mount>,
    /// Its grants, as `(key, read_only)`: directories and the application's capabilities.
    grants: Vec<(String, bool)>,
    /// Its compiled component, once loaded, and whether every capability it imports is
    /// granted.
    component: OnceLock<std::result::Result<Arc<LoadedComponent>, String>>,
    /// Instances kept between this module's hook calls; dropped with the snapshot.
    warm: Warm,
}

/// One handler of a hook point.
#[derive(Clone)]
struct Handler {
    priority: i32,
    name: String,
    entry: Arc<Entry>,
}

impl Handler {
    /// This handler, left out of a dispatch for `cause`, as `why` says.
    fn left_out(&self, cause: LeftOutCause, why: &str) -> LeftOut {
        LeftOut {
            rawname: self.entry.record.rawname.clone(),
            handler: self.name.clone(),
            priority: self.priority,
            cause,
            why: why.to_owned(),
        }
    }
}

/// Why the handlers after a cancellation did not run.
const CANCELLED_BEFORE: &str = "the dispatch was cancelled before it";

/// Why the handlers after `rawname`'s failure in a fail-closed chain did not run.
fn stopped_by_failure(rawname: &str) -> String {
    format!("the chain stopped at `{rawname}`'s failure")
}

/// Runs hook points; shared by the host and by modules firing hooks.
pub(crate) struct Dispatcher {
    runtime: Arc<Runtime>,
    state: State,
    layout: Layout,
    limits: Limits,
    data: DataConfig,
    points: RwLock<BTreeMap<String, HookPoint>>,
    /// The hook points any module may fire though they are named after one: those the
    /// application declares, and those modhost.toml opens (`fired_by = "any"`).
    open: RwLock<BTreeSet<String>>,
    snapshot: RwLock<Snapshot>,
    /// The application's dispatches running now, which [`Dispatcher::cancel_all`] stops.
    under_way: under_way::UnderWay,
    this: Weak<Dispatcher>,
}

impl Dispatcher {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        state: State,
        layout: Layout,
        limits: Limits,
        data: DataConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Dispatcher {
            runtime,
            state,
            layout,
            limits,
            data,
            points: RwLock::new(BTreeMap::from([(
                point::GET_CONFIG.to_owned(),
                HookPoint::undeclared(point::GET_CONFIG),
            )])),
            open: RwLock::default(),
            snapshot: RwLock::default(),
            under_way: under_way::UnderWay::default(),
            this: this.clone(),
        })
    }

    /// Cancels every dispatch of the application's running now (and the hooks they fire):
    /// each stops as its own cancel handle would stop it. Returns how many.
    pub(crate) fn cancel_all(&self) -> usize {
        self.under_way.cancel_all()
    }

    /// Where hooks fired by modules go.
    pub(crate) fn as_fire(&self) -> Option<Arc<dyn Fire>> {
        self.this.upgrade().map(|this| this as Arc<dyn Fire>)
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// What `rawname` may keep on disk.
    pub(crate) fn disk_quota(&self, rawname: &str) -> DiskQuota {
        self.data.quota_of(rawname)
    }

    /// Declares how `point` runs, and, when `open`, that any module may fire it.
    pub(crate) fn declare(&self, point: HookPoint, open: bool) {
        if open {
            let mut opened = self.open.write().unwrap_or_else(|e| e.into_inner());
            opened.insert(point.name.clone());
        }
        let mut points = self.points.write().unwrap_or_else(|e| e.into_inner());
        points.insert(point.name.clone(), point);
    }

    pub(crate) fn point(&self, hook: &str) -> HookPoint {
        let points = self.points.read().unwrap_or_else(|e| e.into_inner());
        points
            .get(hook)
            .cloned()
            .unwrap_or_else(|| HookPoint::undeclared(hook))
    }

    /// Runs hook point `point.name` from the application, shaped as `point` says: its own
    /// session, committed at the end.
    pub(crate) fn dispatch_as(
        &self,
        point: &HookPoint,
        payload: &str,
        options: &DispatchOptions,
    ) -> Result<Dispatch> {
        // Loading a component and calling it both need more stack than an application's
        // thread may have.
        modhost_runtime::with_stack(|| self.dispatch_on_stack(point, payload, options))
    }

    fn dispatch_on_stack(
        &self,
        point: &HookPoint,
        payload: &str,
        options: &DispatchOptions,
    ) -> Result<Dispatch> {
        // A forked child has none of the runtime's threads: no handler could run, and a
        // dispatch of nothing but failures would read, to a caller checking only the
        // result, as one that ran.
        self.runtime.same_process()?;
        let _nested = Nested::enter(&point.name, self.limits.max_fire_depth)?;
        let (generation, handlers) = self.handlers(&point.name)?;
        // As of the same snapshot as the handlers that run.
        let broken = self.broken_handlers(&point.name);
        let mut session = Session::lazy(self.state.clone()).as_of(generation);
        // Started by an application's capability from inside a module's call on this
        // thread: it ends with that call, at its deadline or when it is cancelled.
        let outer = modhost_runtime::running_call();
        let inherited;
        let options = match (&outer, &options.cancel) {
            (Some((_, Some(cancel))), None) => {
                inherited = DispatchOptions {
                    data: options.data.clone(),
                    cancel: Some(cancel.clone()),
                };
                &inherited
            }
            // The application's own dispatch gets a cancellation when it brings none, so
            // that `cancel_all` can stop it.
            (None, None) => {
                inherited = DispatchOptions {
                    data: options.data.clone(),
                    cancel: Some(self.runtime.cancel_handle()),
                };
                &inherited
            }
            _ => options,
        };
        let _under_way = options
            .cancel
            .clone()
            .filter(|_| outer.is_none())
            .map(|cancel| self.under_way.enter(cancel));
        let scope = Scope {
            depth: 0,
            deadline: outer.as_ref().map(|(deadline, _)| *deadline),
            memory_left: None,
            options,
            logs: None,
        };
        // A fail-closed chain with a broken module's handler in it cannot be whole: it runs
        // up to that handler's place and stops there, as at a handler that failed.
        let broken_at = broken
            .iter()
            .filter(|_| point.on_error == OnError::Stop)
            .min_by(|a, b| (a.priority, &a.rawname).cmp(&(b.priority, &b.rawname)))
            .map(|first| (first.priority, first.rawname.clone()));
        // The handlers are in (priority, rawname) order: split where the broken one stands.
        let split = broken_at
            .as_ref()
            .map_or(handlers.len(), |(priority, rawname)| {
                handlers.partition_point(|h| {
                    (h.priority, &h.entry.record.rawname) < (*priority, rawname)
                })
            });
        let (before, after) = handlers.split_at(split);
        let mut result = self.run(point, before, payload, &mut session, &scope);
        session.commit()?;
        if let Some((_, rawname)) = broken_at {
            stop_at_broken(&mut result, &rawname, after);
        }
        result.left_out.extend(broken);
        Ok(result)
    }

    /// Runs `handlers` inside `session`, each in its own scope.
    fn run(
        &self,
        point: &HookPoint,
        handlers: &[Handler],
        payload: &str,
        session: &mut Session,
        scope: &Scope<'_>,
    ) -> Dispatch {
        let mut dispatch = Dispatch {
            calls: Vec::with_capacity(handlers.len()),
            output: None,
            stopped_by: None,
            cancelled: false,
            left_out: Vec::new(),
        };
        // Only a pipeline replaces its input; a broadcast passes the payload as it came.
        let mut input = Cow::Borrowed(payload);
        // A module's handlers of this hook point share one call's time: however many it
        // declares, its calls together take no longer than one may. Time spent in other
        // modules' handlers between them is not theirs.
        let mut time_left: BTreeMap<String, Duration> = BTreeMap::new();
        let timeout = point.limits.unwrap_or(self.limits).call_timeout;
        let mut queue: VecDeque<Handler> = handlers.iter().cloned().collect();
        // Modules upgraded under the dispatch, whose new version's handlers ran instead.
        let mut rerun = BTreeSet::new();
        let cancelled = || {
            scope
                .options
                .cancel
                .as_ref()
                .is_some_and(modhost_runtime::Cancel::is_cancelled)
        };
        while let Some(handler) = queue.pop_front() {
            // Cancelled before it started: left out, as the handlers after it are, not
            // reported as a call that never ran.
            if cancelled() {
                queue.push_front(handler);
                dispatch.cancelled = true;
                dispatch.left_out.extend(
                    queue
                        .drain(..)
                        .map(|h| h.left_out(LeftOutCause::Cancelled, CANCELLED_BEFORE)),
                );
                break;
            }
            // Loaded first (a failure is the call's to report): compiling a component is
            // not its module's time.
            let _ = self.component(&handler.entry);
            let left = time_left
                .entry(handler.entry.record.rawname.clone())
                .or_insert(timeout);
            let started = Instant::now();
            // The sandbox refuses a deadline past a day; bounded here first, so that the
            // longest `Duration` reaches that refusal instead of overflowing the clock.
            let own = started + (*left).min(modhost_runtime::MAX_CALL_TIMEOUT);
            let outer_deadline = scope.deadline;
            let scope = &Scope {
                depth: scope.depth,
                deadline: Some(scope.deadline.map_or(own, |outer| outer.min(own))),
                memory_left: scope.memory_left,
                options: scope.options,
                logs: scope.logs.clone(),
            };
            if scope.depth == 0 {
                nested::take_deadline_met();
            }
            let called = self.call(point, &handler, &input, session, scope);
            *left = left.saturating_sub(started.elapsed());
            let called = called.map(|result| {
                nested::noting_deadline(result, scope.depth, outer_deadline, || {
                    format!(
                        "`{}`'s handler `{}` for hook `{}`",
                        handler.entry.record.rawname, handler.name, point.name
                    )
                })
            });
            let Some(mut result) = called else {
                // Its module was uninstalled, disabled or upgraded while it ran: the
                // dispatch goes on as if the module had not been there, or, upgraded,
                // with its new version's handlers in their place.
                tracing::info!(
                    module = %handler.entry.record.rawname,
                    hook = %point.name,
                    "the module changed during the dispatch; its handler's result is set aside"
                );
                let set_aside = handler.left_out(
                    LeftOutCause::Changed,
                    "its module was disabled, uninstalled or changed again while it ran: its \
                     result is set aside",
                );
                let mut rerun_here = false;
                if scope.depth == 0 {
                    // The transaction was opened for a handler that may not run in it;
                    // the next handler begins its own.
                    let _ = session.checkpoint();
                    // The session stays as of the dispatch's start: every other module's
                    // handler is still checked against what changed, and the new
                    // version's pass, their files being the current record's.
                    let rawname = &handler.entry.record.rawname;
                    if rerun.insert(rawname.clone())
                        && let Ok((_, fresh)) = self.handlers(&point.name)
                    {
                        // Its handlers that already answered at the old version are not
                        // run again: the new version's take up from where it was.
                        let answered = dispatch
                            .calls
                            .iter()
                            .filter(|c| c.rawname == *rawname)
                            .count();
                        queue.retain(|h| h.entry.record.rawname != *rawname);
                        let mine: Vec<&Handler> = fresh
                            .iter()
                            .filter(|h| h.entry.record.rawname == *rawname)
                            .skip(answered)
                            .collect();
                        rerun_here = !mine.is_empty();
                        for again in mine.into_iter().rev() {
                            queue.push_front(again.clone());
                        }
                        time_left.remove(rawname);
                    }
                }
                // Upgraded, its new version answers in its place: nothing is left out.
                if !rerun_here {
                    dispatch.left_out.push(set_aside);
                }
                continue;
            };
            if scope.depth == 0 {
                // Each handler of a dispatch the application runs keeps its writes alone:
                // a later handler whose statement runs past its deadline makes SQLite roll
                // back the whole transaction, which must not take these with it.
                let lost = session.lost();
                let lost_by = session.lost_by().map(str::to_owned);
                let cause = session.lost_cause().map(str::to_owned);
                let kept = session.checkpoint();
                if result.is_ok() {
                    if lost {
                        // Its own statements' errors it was told of; a hook it fired, or a
                        // limit SQLite meets mid-statement, can end the transaction too.
                        let rawname = &handler.entry.record.rawname;
                        let timed_out = scope.deadline.is_some_and(|d| Instant::now() >= d);
                        let (kind, why) = match lost_by.filter(|by| by != rawname) {
                            // Its writes went with another's: its own deadline was not
                            // the cause.
                            Some(by) => (
                                FailureKind::Failed,
                                format!(
                                    "a statement of module `{by}`, in a hook this call \
                                     fired, ran past its deadline or met a limit, which \
                                     SQLite answers by undoing the whole transaction"
                                ),
                            ),
                            None if timed_out => (
                                FailureKind::Timeout,
                                "a statement ran past the deadline".to_owned(),
                            ),
                            None => (
                                FailureKind::Failed,
                                match cause {
                                    Some(cause) => format!(
                                        "a statement failed ({cause}), which SQLite answers \
                                         by undoing the whole transaction"
                                    ),
                                    None => "a statement met a limit (the state's size cap, \
                                             the module's quota, SQLite's memory) that \
                                             SQLite answers by undoing the whole transaction"
                                        .to_owned(),
                                },
                            ),
                        };
                        result = Err((
                            kind,
                            format!("`{rawname}`: its writes were rolled back: {why}"),
                        ));
                    } else if let Err(e) = kept {
                        result = Err((
                            FailureKind::Host,
                            format!(
                                "`{}`: its writes could not be kept: {e}",
                                handler.entry.record.rawname
                            ),
                        ));
                    }
                }
            }
            let rawname = handler.entry.record.rawname.clone();
            let (ok, output, error, kind) = match result {
                Ok(output) => (true, Some(output), None, None),
                Err((kind, error)) => (false, None, Some(error), Some(kind)),
            };
            if let (Shape::Pipeline, Some(output)) = (point.shape, &output) {
                input = Cow::Owned(output.clone());
            }
            dispatch.calls.push(HookCall {
                rawname: rawname.clone(),
                priority: handler.priority,
                handler: handler.name.clone(),
                ok,
                output,
                error,
                kind,
            });
            let (cause, why) = if kind == Some(FailureKind::Cancelled) {
                dispatch.cancelled = true;
                (LeftOutCause::Cancelled, CANCELLED_BEFORE.to_owned())
            } else if !ok && point.on_error == OnError::Stop {
                dispatch.stopped_by = Some(rawname.clone());
                (LeftOutCause::Stopped, stopped_by_failure(&rawname))
            } else {
                continue;
            };
            dispatch
                .left_out
                .extend(queue.drain(..).map(|h| h.left_out(cause, &why)));
            break;
        }
        // Cancelled with no handler to stop (none declared, or every one set aside): still
        // cancelled, and a pipeline gives no output, as when a handler was stopped.
        if dispatch.calls.is_empty() && cancelled() {
            dispatch.cancelled = true;
        }
        if point.shape == Shape::Pipeline && dispatch.stopped_by.is_none() && !dispatch.cancelled {
            dispatch.output = Some(input.into_owned());
        }
        dispatch
    }
}

/// Ends `dispatch`, of a fail-closed chain that stopped short of `rawname`'s broken
/// handlers, there: stopped by that module unless something before it already stopped
/// the chain, with the handlers `after` it left out for the same reason.
fn stop_at_broken(dispatch: &mut Dispatch, rawname: &str, after: &[Handler]) {
    let (cause, why) = match (&dispatch.stopped_by, dispatch.cancelled) {
        (_, true) => (LeftOutCause::Cancelled, CANCELLED_BEFORE.to_owned()),
        (Some(by), false) => (LeftOutCause::Stopped, stopped_by_failure(by)),
        (None, false) => {
            dispatch.stopped_by = Some(rawname.to_owned());
            dispatch.output = None;
            (
                LeftOutCause::Stopped,
                format!("the chain stopped at `{rawname}`, whose module is broken"),
            )
        }
    };
    dispatch
        .left_out
        .extend(after.iter().map(|h| h.left_out(cause, &why)));
}
