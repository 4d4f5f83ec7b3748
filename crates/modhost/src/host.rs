//! [`Host`]: a root, opened — its configuration, the root lock, recovery, and the entry to
//! hook dispatch. What it does to modules is in `ops/` and `online/`; what it reads in
//! `query.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use modhost_runtime::{Cancel, Capability, Limits, Runtime};
use modhost_state::{ModuleRecord, State};

use crate::config::{self, Platform};
use crate::dispatch::{Dispatch, DispatchOptions, Dispatcher, HookPoint};
use crate::embedding::Embedding;
use crate::event::{Event, Reporter, Silent};
use crate::layout::Layout;
use crate::lock::{Holder, RootLock, RootUse};
use crate::made::{Made, holds_nothing};
use crate::recover::{self, RecoverOptions, Recovery};
use crate::{Error, Result};

mod settings;

/// A modhost root, opened.
///
/// A host may be shared between threads: dispatches run in parallel, and changes take
/// turns, ahead of dispatches that have not begun writing. A change asked for from inside
/// a dispatch on the same thread (from a capability a module's handler called) is refused
/// with [`Error::InsideDispatch`](crate::Error::InsideDispatch): it would wait for that
/// dispatch.
pub struct Host {
    pub(crate) layout: Layout,
    pub(crate) platform: Platform,
    pub(crate) packages: Option<PathBuf>,
    pub(crate) state: State,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) reporter: Box<dyn Reporter>,
    wait_for_lock: bool,
    /// The extra CA trusted for update sources ([`Host::with_ca_cert`], or `ca_cert` in
    /// modhost.toml).
    pub(crate) ca_cert: Option<PathBuf>,
    /// How update channels are read (`[updates]` in modhost.toml).
    pub(crate) updates: config::UpdatesConfig,
    /// What `modhost.toml` says of each hook point, laid over the application's
    /// declarations.
    hooks: std::collections::BTreeMap<String, config::HookConfig>,
    /// How much compiled code of modules not installed is kept (`[cache]`).
    pub(crate) cache_keep: u64,
    /// What opening the root repaired, so that [`Host::recover`] can report it too.
    recovered_at_open: Recovery,
    /// The unreadable packages already warned about.
    pub(crate) skipped: crate::packages::Skipped,
    /// Whether a change of this host compiled a component that loaded: a root opening
    /// made is then kept for that code when the change fails after.
    pub(crate) compiled: std::sync::atomic::AtomicBool,
    /// Cancelled to stop this host's changes: see [`Host::interruption`].
    pub(crate) interrupted: Cancel,
    /// The throwaway root of [`Host::open_scratch`], removed with the host.
    _scratch: Option<tempfile::TempDir>,
    /// What opening made where there was no root: see [`Host::discard_if_unused`].
    made: Option<Made>,
    /// This host's hold on the root, which no other host's removal of it breaks; taken
    /// out only by [`Host::discard_if_unused`], to outlast the rest of the host.
    in_use: Option<RootUse>,
}

/// A host closed, not killed, with the root it made still undecided (no change kept it,
/// none took it away: a read, an application that only dispatched) leaves the root as
/// it is: the record of its making is for a process killed before it decided.
impl Drop for Host {
    fn drop(&mut self) {
        self.keep_made();
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("root", &self.layout.root)
            .finish()
    }
}

impl Host {
    /// Opens the root at `root`, creating it on first use, with the sandbox limits of its
    /// `modhost.toml` (or the defaults).
    pub fn open(root: &Path) -> Result<Self> {
        Embedding::new().open(root)
    }

    /// Opens the root at `root` with the given sandbox limits.
    pub fn open_with(root: &Path, limits: Limits) -> Result<Self> {
        Embedding::new().limits(limits).open(root)
    }

    /// Opens the root at `root` only if one exists there: what reads a root (listing,
    /// inspecting) must not leave an empty one behind a mistyped path.
    pub fn open_existing(root: &Path) -> Result<Self> {
        not_a_file(root)?;
        Made::clear_abandoned(root)?;
        if !Layout::exists(root) {
            // A directory holding a root's names without its database is said to be so,
            // as a change there is told, not taken for a mistyped path.
            if let Some(entry) = Made::held_name(root) {
                return Err(Error::NotARootButHolds {
                    path: root.to_owned(),
                    entry,
                });
            }
            return Err(Error::NoRoot(root.to_owned()));
        }
        Embedding::new().open(root)
    }

    /// Whether this is a throwaway host ([`Host::open_scratch`]): what it makes goes with
    /// it, so nothing is worth keeping.
    pub(crate) fn is_scratch(&self) -> bool {
        self._scratch.is_some()
    }

    /// Fails, saying why, in a process forked from the one that opened the host: it has
    /// none of the host's threads, and may hold for ever a lock one of them held at the
    /// fork, so every call on the host there fails before touching any.
    pub fn check_process(&self) -> Result<()> {
        Ok(self.runtime.same_process()?)
    }

    /// Whether a root is at `root`: its state database is there, or an administrator's
    /// `modhost.toml`, ready for the first change.
    pub fn is_root(root: &Path) -> bool {
        Layout::exists(root)
    }

    /// A host on a throwaway root with nothing installed, removed when the host is
    /// dropped: for what needs no root, such as describing a directory of packages or
    /// downloading a package by URL.
    pub fn open_scratch() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("modhost-scratch-")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut host = Embedding::new().open(dir.path())?;
        host._scratch = Some(dir);
        Ok(host)
    }

    /// A handle that stops this host's changes (the administrator's Ctrl-C): cancelled
    /// from any thread, the change running ends at its next step — a module's lifecycle
    /// call at once, as a cancelled dispatch's handler; a compile under way once it ends;
    /// a wait for the lock at once — with [`Error::Interrupted`](crate::Error::Interrupted),
    /// leaving the root as it was; so does every later change of this host. A change
    /// past its commit is done, and stays done.
    pub fn interruption(&self) -> Cancel {
        self.interrupted.clone()
    }

    /// Whether [`Host::interruption`] was cancelled.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.is_cancelled()
    }

    /// [`Error::Interrupted`](crate::Error::Interrupted) once [`Host::interruption`] was
    /// cancelled: a change looks between its steps.
    pub(crate) fn check_interrupted(&self) -> Result<()> {
        if self.is_interrupted() {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    /// Closes the host and, when opening it made its root and nothing was kept there
    /// since (no module, no source, no compiled code), removes what opening made: a change that failed,
    /// given a mistyped root, leaves no empty root behind. Only what opening made goes: a
    /// directory that was there before (someone's, given as the root by mistake) is kept
    /// with everything it held. A root another host has open (in this process or
    /// another), or whose lock another process holds, is kept. Returns whether it was
    /// removed.
    pub fn discard_if_unused(mut self) -> Result<bool> {
        let sole = self.in_use.as_ref().is_some_and(RootUse::sole);
        if self.made.is_none() || self._scratch.is_some() || !sole {
            return Ok(false);
        }
        let Some(lock) = RootLock::try_acquire(&self.layout.lock(), Holder::Named)? else {
            return Ok(false);
        };
        if !self.state.modules()?.is_empty() || !self.state.sources()?.is_empty() {
            self.keep_made();
            return Ok(false);
        }
        // Code this host compiled and loaded for a change that failed afterwards (an
        // install() that raised) is kept for trying again, as in any root: a component
        // that loads was not given to a mistyped root, and a Python module's takes minutes.
        // A change interrupted was not wanted, code and all.
        if self.compiled.load(std::sync::atomic::Ordering::Relaxed) && !self.is_interrupted() {
            self.keep_made();
            return Ok(false);
        }
        let root = self.layout.root.clone();
        let made = self.made.take();
        // The database and everything else the host has open are closed first; the
        // holds are let go of after the files are gone.
        let holds = (self.in_use.take(), lock);
        drop(self);
        if let Some(made) = made {
            made.remove(&root)?;
        }
        drop(holds);
        Ok(true)
    }

    pub(crate) fn open_inner(root: &Path, embedding: Embedding) -> Result<Self> {
        let Embedding {
            limits,
            capabilities,
        } = embedding;
        modhost_runtime::not_forked()?;
        not_a_file(root)?;
        Made::clear_abandoned(root)?;
        // A root removed while this host opened it (a failed change's, made at the same
        // moment) is made again; twice is more than a race.
        let (made, layout, in_use) = {
            let mut attempts = 0;
            loop {
                let made = Made::before_opening(root)?;
                // The root's users are held before its other directories are made: one
                // who finds them and no database yet knows the root is being made.
                let in_use = Layout::create_root(root)
                    .and_then(|()| RootUse::take(&Layout::users_of(root)))
                    .inspect_err(|_| forget(root, made))?;
                match in_use {
                    Some(in_use) => {
                        // Written down at once, while the users are held (so no other
                        // opener takes the root for abandoned): a process killed from
                        // here on, before any change begins, leaves a record from which
                        // the next opener takes away what was made.
                        if let Some(made) = made {
                            made.record(root);
                        }
                        let layout = Layout::create(root).inspect_err(|_| forget(root, made))?;
                        break (made, layout, in_use);
                    }
                    None if attempts < 2 => attempts += 1,
                    None => {
                        return Err(Error::Io {
                            path: Layout::users_of(root),
                            source: std::io::Error::other(
                                "the root was removed while it was opened",
                            ),
                        });
                    }
                }
            }
        };
        // Opening that fails once it made the root (a modhost.toml that cannot be read,
        // say) takes away what it made: the directory is then as it was, not refused
        // forever for holding a root's names.
        Self::assemble(layout, limits, capabilities, made, in_use).inspect_err(|_| {
            // Only while the state database holds nothing (not made, or made and never
            // written, on a full disk say): once it holds its tables, another process may
            // have opened the root and kept something in it, and the root is whole enough
            // for the next opener to take. Held while the files go, as a failed change's
            // discarding holds it.
            let database = Layout::database_of(root);
            if let Ok(Some(users)) = RootUse::take(&Layout::users_of(root))
                && users.sole()
                && holds_nothing(&database)
            {
                forget(root, made);
                drop(users);
            }
        })
    }

    /// Says that the root, if opening made it, is kept: a change committed in it.
    pub(crate) fn keep_made(&self) {
        if self.made.is_some() {
            Made::kept(&self.layout.root);
        }
    }

    /// The host on the root `layout` opening made ready, which `in_use` holds.
    fn assemble(
        layout: Layout,
        limits: Option<Limits>,
        capabilities: Vec<Arc<dyn Capability>>,
        made: Option<Made>,
        in_use: RootUse,
    ) -> Result<Self> {
        let config = config::Config::load(&layout.config())?;
        let limits = limits.unwrap_or_else(|| config.limits.apply(Limits::default()));
        // Before the state database is made: an engine this process cannot have (under
        // `ulimit -v`, or valgrind) then leaves no root behind.
        let runtime = Arc::new(
            Runtime::with_capabilities(&layout.cache(), capabilities)?.protecting(&layout.root),
        );
        let state = State::open_capped(&layout.database(), config.state.max_size())?
            .with_quotas(config.state.quotas());
        // Only said, and only when it can be read: nothing else of opening waits on it.
        if config.quota_names().next().is_some()
            && let Ok(records) = state.modules()
        {
            let installed: Vec<String> = records.into_iter().map(|r| r.rawname).collect();
            config.warn_of_misspelt_quotas(&installed);
        }
        let dispatcher = Dispatcher::new(
            Arc::clone(&runtime),
            state.clone(),
            layout.clone(),
            limits,
            config.data.clone(),
        );
        for (point, open) in config.hook_points(limits) {
            dispatcher.declare(point, open);
        }
        let hooks = config.hooks;
        let interrupted = runtime.cancel_handle();
        let mut host = Host {
            layout,
            platform: config.platform,
            packages: config.packages,
            state,
            runtime,
            dispatcher,
            reporter: Box::new(Silent),
            wait_for_lock: true,
            ca_cert: config.ca_cert.clone(),
            updates: config.updates,
            hooks,
            cache_keep: config.cache.keep(),
            recovered_at_open: Recovery::default(),
            skipped: Default::default(),
            compiled: Default::default(),
            interrupted,
            _scratch: None,
            made,
            in_use: Some(in_use),
        };
        host.recovered_at_open = match RootLock::try_acquire(&host.layout.lock(), Holder::Named)? {
            Some(_lock) => recover::run(
                &host.layout,
                &host.state,
                recover::Check::Present,
                RecoverOptions::default(),
            )?,
            None => Recovery::default(),
        };
        Ok(host)
    }

    /// The package directory `from`, else the configured one; refused when neither is.
    pub(crate) fn package_dir_or(&self, from: Option<&Path>) -> Result<PathBuf> {
        from.or(self.packages.as_deref())
            .map(Path::to_owned)
            .ok_or(Error::NoPackageDir)
    }

    /// The record of installed module `rawname`; refused when it is not installed.
    pub(crate) fn installed(&self, rawname: &str) -> Result<ModuleRecord> {
        self.state
            .module(rawname)?
            .ok_or_else(|| Error::NotInstalled(rawname.to_owned(), self.installed_near(rawname)))
    }

    /// Tells the reporter.
    pub(crate) fn report(&self, event: Event) {
        self.reporter.report(event);
    }

    /// Takes the root's lock and sweeps leftovers of interrupted changes.
    pub(crate) fn lock(&self) -> Result<RootLock> {
        if crate::dispatch::inside_dispatch() {
            return Err(Error::InsideDispatch);
        }
        let lock = self.acquire()?;
        self.check_interrupted()?;
        self.recover_locked(recover::Check::Present, RecoverOptions::default())?;
        Ok(lock)
    }

    fn acquire(&self) -> Result<RootLock> {
        // Refused before waiting: in a process forked while this one held the lock, the
        // wait would be for the parent's change, and then nothing could run.
        self.check_process()?;
        let path = self.layout.lock();
        let stopped = || self.is_interrupted();
        let wait = self.wait_for_lock.then_some(&stopped as &dyn Fn() -> bool);
        RootLock::acquire(&path, Holder::Named, wait, |holder| {
            self.report(Event::Waiting {
                lock: path.clone(),
                holder,
            });
        })
    }

    /// Repairs the root after a crash: removes what the interrupted change made or
    /// replaced that no record points at, and marks modules whose files are gone as
    /// broken. Includes what opening the root repaired.
    pub fn recover(&self) -> Result<Recovery> {
        self.recover_with(RecoverOptions::default())
    }

    /// [`Host::recover`], as `options` say.
    pub fn recover_with(&self, options: RecoverOptions) -> Result<Recovery> {
        let _lock = self.acquire()?;
        // A root recovering made is kept: what it made is what was asked for.
        self.keep_made();
        let mut recovery = self.recovered_at_open.clone();
        let now = self.recover_locked(recover::Check::Digest, options)?;
        recovery.removed.extend(now.removed);
        recovery.broken.extend(now.broken);
        // What is stuck, unreadable or unclaimed now is the whole of it: the open's would
        // say it twice.
        recovery.stuck = now.stuck;
        recovery.unreadable = now.unreadable;
        recovery.unclaimed = now.unclaimed;
        Ok(recovery)
    }

    fn recover_locked(&self, check: recover::Check, options: RecoverOptions) -> Result<Recovery> {
        let recovery = recover::run(&self.layout, &self.state, check, options)?;
        // What could not be removed or read is warned about as it is found; only a repair
        // is an event of the change.
        if recovery.repaired() {
            self.report(Event::Recovered {
                summary: recovery.to_string(),
            });
        }
        Ok(recovery)
    }

    /// Declares how hook point `point.name` runs: its shape, failure mode and limits.
    /// Undeclared hook points are broadcast and fail-open; `get_config` is a fail-closed
    /// pipeline, and only its limits can be declared. A declaration without limits of its
    /// own (`limits: None`) runs under those the root's `modhost.toml` sets for the hook
    /// point (`[hooks."NAME"]`), else the host's; limits it gives win, as those given to
    /// [`Embedding::limits`] win over `[limits]`.
    pub fn declare(&self, point: HookPoint) -> Result<()> {
        self.check_process()?;
        if let Some(problem) = point.problem() {
            return Err(Error::HookPoint {
                name: point.name,
                problem: problem.to_owned(),
            });
        }
        let point = match self.hooks.get(&point.name) {
            Some(configured) => configured.declared(point, self.limits()),
            None => point,
        };
        // The application's own hook point: any module may fire it.
        self.dispatcher.declare(point, true);
        Ok(())
    }

    /// The limits every call runs under unless its hook point sets its own: those given
    /// when the root was opened, else its `modhost.toml`'s, else the defaults.
    pub fn limits(&self) -> Limits {
        self.dispatcher.limits()
    }

    /// How hook point `hook` runs.
    pub fn hook_point(&self, hook: &str) -> HookPoint {
        self.dispatcher.point(hook)
    }

    /// Runs hook point `hook` with `payload`: every running module's handler (its
    /// `<methods>` named `hook`, its `<hooks>` entries whose `TARGET.callingMethod` (or
    /// `TARGET.Class.callingMethod`: [`modhost_manifest::Hook::point`]) is `hook`), in
    /// priority order — lower first, then by rawname. A `<hooks>` entry is qualified by
    /// its target module, as in FreePBX, where it belongs to that module's method:
    /// `userman.delUser`, never any hook point that happens to be named `delUser`.
    /// Safe to call from many threads at once.
    pub fn dispatch(&self, hook: &str, payload: &str) -> Result<Dispatch> {
        self.dispatch_with(hook, payload, &DispatchOptions::default())
    }

    /// Runs hook point `hook` like [`Host::dispatch`], with a value for the application's
    /// capabilities and a handle that cancels it from another thread.
    pub fn dispatch_with(
        &self,
        hook: &str,
        payload: &str,
        options: &DispatchOptions,
    ) -> Result<Dispatch> {
        self.check_process()?;
        self.dispatch_as(&self.hook_point(hook), payload, options)
    }

    /// Runs hook point `point.name` shaped as `point` says, for this dispatch only,
    /// whatever is declared for it: how an administrator tries a hook point fail-open, or
    /// `get_config` as a broadcast, to see every handler's answer. (`reload` runs
    /// `get_config` as a fail-closed pipeline whatever a dispatch did.)
    pub fn dispatch_as(
        &self,
        point: &HookPoint,
        payload: &str,
        options: &DispatchOptions,
    ) -> Result<Dispatch> {
        if let Some(problem) = crate::dispatch::name_problem(&point.name) {
            return Err(Error::HookPoint {
                name: point.name.clone(),
                problem: problem.to_owned(),
            });
        }
        self.dispatcher.dispatch_as(point, payload, options)
    }

    /// A new handle to cancel the dispatches it is passed to ([`DispatchOptions::cancel`]).
    pub fn cancel_handle(&self) -> Cancel {
        self.runtime.cancel_handle()
    }

    /// Cancels every dispatch running on this host now, as an application shutting down
    /// does rather than wait out their deadlines: each stops as its own cancel handle
    /// would stop it (its handler at once, its writes rolled back, the handlers after it
    /// left out, its result `cancelled`). Dispatches begun later run as usual. Returns
    /// how many were cancelled.
    pub fn cancel_dispatches(&self) -> usize {
        self.dispatcher.cancel_all()
    }

    /// The WIT packages a module's component may import here, with their versions: WASI,
    /// `modhost:module` and the application's capabilities.
    pub fn offered_imports(&self) -> Vec<String> {
        self.runtime.offered()
    }
}

/// Takes away what opening `root` made, when it made anything; what cannot be removed
/// stays, as the directory's leftovers, for the next open to find.
fn forget(root: &Path, made: Option<Made>) {
    if let Some(made) = made {
        let _ = made.remove(root);
    }
}

/// Refuses a root path that names a file: a root is a directory.
fn not_a_file(root: &Path) -> Result<()> {
    if std::fs::metadata(root).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::NotARoot(root.to_owned()));
    }
    // A link to nothing (a file system not mounted, a target moved away) is said to be
    // one: nothing can be made at the root, and nothing was ever installed through it.
    if std::fs::symlink_metadata(root).is_ok_and(|m| m.is_symlink())
        && std::fs::metadata(root).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(Error::DanglingRoot {
            root: root.to_owned(),
            target: std::fs::read_link(root).unwrap_or_default(),
        });
    }
    // A file on the way (`notes.txt/root`) is named, not left to the system's "not a
    // directory" about the path as a whole.
    if let Some(file) = root
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
    {
        return Err(Error::UnderAFile {
            root: root.to_owned(),
            file: file.to_owned(),
        });
    }
    Ok(())
}
