//! The embedding API's error type.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::StagedCall;
use crate::depends::Mend;

mod words;

pub(crate) use words::mebibytes;
pub use words::{held, shortened};
use words::{left_out_message, names, near, reload_failure, unchecked};

/// Why a host operation failed. Every variant names the module or file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the root could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The root's `modhost.toml` is invalid.
    #[error("`{path}`: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The state database failed.
    #[error(transparent)]
    State(modhost_state::Error),
    /// A package was refused.
    #[error(transparent)]
    Package(#[from] modhost_package::Error),
    /// An update source failed, or what it sent was refused.
    #[error(transparent)]
    Update(#[from] modhost_update::Error),
    /// The sandbox failed, or a module's call failed.
    #[error(transparent)]
    Runtime(#[from] modhost_runtime::Error),
    /// A module.xml is invalid; the error names the file and every problem.
    #[error(transparent)]
    InvalidManifest(#[from] modhost_manifest::Error),
    /// An installed module's recorded module.xml no longer parses.
    #[error("installed module `{rawname}`: {source}")]
    Manifest {
        /// The module.
        rawname: String,
        /// The manifest's problems.
        source: modhost_manifest::Error,
    },
    /// Another process is changing the root, and waiting was not allowed
    /// ([`Host::wait_for_lock`](crate::Host::wait_for_lock)).
    #[error(
        "another modhost process is changing this root ({}); try again, or wait for the lock",
        held(lock, *holder)
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// The process holding it, as it wrote itself in the file.
        holder: Option<u32>,
    },
    /// The root's lock file was removed or replaced while a change held it, so another
    /// process may have taken the root meanwhile: the change is not committed.
    #[error(
        "the root's lock file `{}` was removed or replaced while this change held it, so \
         another process may have changed the root meanwhile: nothing was changed; never \
         remove a lock file, a process holding it lets go of it when it ends",
        lock.display()
    )]
    LockLost {
        /// The lock file.
        lock: PathBuf,
    },
    /// A change was asked for on a thread running a dispatch: from an application's
    /// capability a module's handler called. It would wait for that dispatch's own writes.
    #[error(
        "the modules cannot be changed from inside a dispatch (from a callback it made on \
         this thread: a capability a module's handler called, or a log callback): the change \
         would wait for that dispatch's own writes; make it once the dispatch has returned \
         (if no dispatch is under way, an earlier callback on this thread never returned: a \
         PHP fatal error or a longjmp out of it, after which this process must not use \
         modhost again)"
    )]
    InsideDispatch,
    /// An update source of that name exists, and replacing it was not asked for.
    #[error("source `{name}` already exists (`{url}`{}); replace it to change it", if *.signed { ", signed" } else { "" })]
    SourceExists {
        /// The source.
        name: String,
        /// Its URL.
        url: String,
        /// Whether it pins a publisher key.
        signed: bool,
    },
    /// Modules installed from the source are bound to it, and its removal was not forced.
    #[error("{} installed from source `{name}` and updated only from it: without the source, {} no updates from any source until attached to one (even to a new source named `{name}`)",
        names(.modules),
        if .modules.len() == 1 { "it gets" } else { "they get" })]
    SourceInUse {
        /// The source.
        name: String,
        /// The modules installed from it.
        modules: Vec<String>,
    },
    /// The module's module.xml says it may not be uninstalled or disabled
    /// (`<canuninstall>no</canuninstall>`, `<candisable>no</candisable>`), and the change
    /// was not forced.
    #[error(
        "module `{rawname}` says it cannot be {what} (<{element}>no</{element}>); force the change to do it anyway"
    )]
    Protected {
        /// The module.
        rawname: String,
        /// `uninstalled`, `deleted` or `disabled`.
        what: &'static str,
        /// The element that says so.
        element: &'static str,
    },
    /// A lifecycle call's copy of a module's `/data` found the disk full: nothing changed.
    #[error(
        "cannot {operation} `{rawname}`: its /data ({}) is copied for \
         the call, so that a call that fails leaves it as it was, and the disk holding it \
         has no room for the copy (writing `{}` found it full); free some space on it \
         (nothing was changed){}",
        crate::error::mebibytes(*.bytes),
        .path.display(),
        match .operation {
            StagedCall::Uninstall => "; deleting the module runs none of its code and needs no copy",
            StagedCall::Disable => "; disabling it without running its code needs no copy",
            StagedCall::Enable => "",
        }
    )]
    NoRoomForData {
        /// The module.
        rawname: String,
        /// The call the copy was for.
        operation: StagedCall,
        /// What its `/data` holds, in bytes.
        bytes: u64,
        /// The file the copy could not write.
        path: PathBuf,
    },
    /// What was to be a directory of packages is missing or is not a directory.
    #[error("{}", match .is_file {
        true => format!("`{}` is a file, not a directory of packages", .path.display()),
        false => format!("there is no directory `{}`", .path.display()),
    })]
    NotAPackageDir {
        /// The path given.
        path: PathBuf,
        /// Whether it is a file (a package, maybe) rather than missing.
        is_file: bool,
    },
    /// A change needs a package directory, and none was given or configured.
    #[error("no package directory: none was given, and `packages` is not set in modhost.toml")]
    NoPackageDir,
    /// A module imports a capability of the application that needs a grant it lacks.
    #[error(
        "`{rawname}` imports the application's `{package}`, which needs an administrator's grant, and it is not granted"
    )]
    NotGranted {
        /// The module.
        rawname: String,
        /// The capability's WIT package.
        package: String,
    },
    /// The application dispatched a hook point from inside a module's call (a capability
    /// it implements dispatching again) deeper than the hook nesting limit.
    #[error(
        "dispatch of `{hook}` refused: the application started it from inside a module's call (a callback of a capability it gives modules), nested {depth} deep in dispatches running on this thread, past the limit of {limit} nested dispatches"
    )]
    NestedTooDeep {
        /// The hook point.
        hook: String,
        /// How deep it would have run: the dispatches running on the thread already.
        depth: u32,
        /// The limit (`Limits::max_fire_depth`).
        limit: u32,
    },
    /// No root exists where one was to be read.
    #[error("no modhost root at `{}`: nothing was ever installed there", .0.display())]
    NoRoot(PathBuf),
    /// What was to be a root is a directory that is no root but holds a name a root has:
    /// someone else's, which modhost would take for its own.
    #[error(
        "`{}` is not a modhost root (it has no state database, modhost.db), but holds \
         `{entry}` as a root does: restore its modhost.db if it was a root, or give an empty \
         directory or a new path as the root (modhost would take what is there for its own)",
        .path.display()
    )]
    NotARootButHolds {
        /// The directory.
        path: PathBuf,
        /// The name in it that a root has.
        entry: String,
    },
    /// The root's state database holds no table while the root holds modules: it was
    /// emptied, and opening it as a new root would take it for one with no module.
    #[error(
        "the state database `{}` holds no table, but the root holds `{entry}`: its records are \
         lost, and modhost would take the root for one with no module installed; restore the \
         root from a backup, its modhost.db together with its modules/ and data/ (nothing \
         was changed)",
        .path.display()
    )]
    EmptyDatabase {
        /// The database file.
        path: PathBuf,
        /// What the root holds: `modules` or `data`.
        entry: String,
    },
    /// What was to be a root is a file, not a directory.
    #[error("`{}` is a file, not a modhost root (a root is a directory)", .0.display())]
    NotARoot(PathBuf),
    /// The root cannot be written by this process: a host writes to its root even to
    /// read it (it takes the root's lock and repairs what a crash left).
    #[error(
        "the modhost root `{}` cannot be written ({why}); modhost writes to a root even to \
         read it, to take its lock and repair what a crash left",
        .root.display()
    )]
    RootNotWritable {
        /// The root.
        root: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// What was to be a root is a link to nothing.
    #[error(
        "`{}` is a link to `{}`, which does not exist (a file system not mounted?): make or \
         mount it, or give the root's own path",
        .root.display(),
        .target.display()
    )]
    DanglingRoot {
        /// The root asked for.
        root: PathBuf,
        /// Where its link points.
        target: PathBuf,
    },
    /// What was to be a root lies under a file, where no directory can be.
    #[error(
        "`{}` cannot be a modhost root: `{}` is a file, not a directory",
        .root.display(),
        .file.display()
    )]
    UnderAFile {
        /// The root asked for.
        root: PathBuf,
        /// The file on its path.
        file: PathBuf,
    },
    /// A hook point cannot be declared or dispatched as asked.
    #[error("hook point `{}`: {problem}", shortened(name))]
    HookPoint {
        /// The hook point.
        name: String,
        /// Why not.
        problem: String,
    },
    /// The module is neither installed nor offered by the package directory looked in;
    /// why a package of it there is not used, when one is there.
    #[error(
        "module `{rawname}` is not installed, and `{}` {}",
        .dir.display(),
        match .unused {
            None => "holds no package of it".to_owned(),
            Some(why) => format!("holds none of it that can be used: {why}"),
        }
    )]
    NotOffered {
        /// The module.
        rawname: String,
        /// The package directory.
        dir: PathBuf,
        /// Why a package of it there is not used (two of one version that differ).
        unused: Option<String>,
    },
    /// The module is not installed; an installed module whose name is near it, if one
    /// is (a slip of the keyboard).
    #[error("module `{0}` is not installed{near}", near = near(.1.as_deref()))]
    NotInstalled(String, Option<String>),
    /// A module was asked for by something that cannot be a rawname (a path, say).
    #[error(
        "`{}` is not a module's rawname ({}); a package file or module directory is read \
         for its manifest, not looked up as a module",
        shortened(.0),
        modhost_manifest::rawname_rule()
    )]
    NotARawname(String),
    /// A path given for a package, a module directory or a module.xml does not exist.
    #[error("there is no file `{}`", .0.display())]
    NoSuchFile(PathBuf),
    /// A directory given for a module directory has no module.xml.
    #[error("`{}` is a directory without a module.xml, so it is not a module directory", .0.display())]
    NoModuleXml(PathBuf),
    /// What was given as a module.xml, or a module directory's module.xml, is a link, a
    /// directory, a FIFO or a device, none of which is read as one; said in full.
    #[error("{0}")]
    NotAModuleXml(String),
    /// The change was interrupted ([`Host::interruption`](crate::Host::interruption))
    /// before it committed: nothing was changed.
    #[error("interrupted before the change was committed: nothing was changed")]
    Interrupted,
    /// The plan cannot succeed; every reason is listed.
    #[error("nothing was changed:{}", .0.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    Refused(Vec<String>),
    /// A download was refused, or what it fetched did not verify: nothing was kept. Every
    /// reason is listed.
    #[error("nothing was downloaded:{}", .0.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    NotDownloaded(Vec<String>),
    /// The plan can succeed but for requirements not met (`<depends>`, `<supported>`, or
    /// what installed modules require of a module it changes): forcing the change
    /// ([`Options::force`](crate::Options::force), a forced rollback) sets them aside.
    #[error("nothing was changed:{}", .reasons.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    Unmet {
        /// Every requirement not met, in words.
        reasons: Vec<String>,
        /// The steps that would meet some of them (enabling or installing what they
        /// require), for a caller to offer beside forcing.
        mends: BTreeSet<Mend>,
    },
    /// A module not installed is offered by a source, but a source ahead of it could not
    /// be read (down, or what it answered did not verify): a module stays with the source
    /// it is installed from, so it waits for them rather than let whoever made them fail
    /// choose where it comes from.
    #[error(
        "nothing was changed: `{rawname}` is offered by source `{offered_by}`, but a module \
         is installed from the first source that offers it, and a source ahead of it could \
         not be read, so it is not taken from `{offered_by}` until they can be (a source \
         gone for good may be removed; a package downloaded from `{offered_by}` may be \
         installed as a file):{}",
        .ahead.iter().map(|r| format!("\n  - {r}")).collect::<String>()
    )]
    SourcesAhead {
        /// The module.
        rawname: String,
        /// The source that offers it.
        offered_by: String,
        /// Each source ahead that could not be read, and why.
        ahead: Vec<String>,
    },
    /// A change of packages downloaded from the update channels failed as they were
    /// applied: which ones, from where, then why. Nothing was changed.
    #[error("nothing was changed applying {applying}: {source}")]
    Online {
        /// The packages, each with its version and source.
        applying: String,
        /// Why it failed.
        source: Box<Error>,
    },
    /// Some update channels could not be checked; what the others offered was applied.
    #[error("{}", unchecked(.done, .failures))]
    Unchecked {
        /// The changes made from the channels that answered.
        done: Vec<crate::Change>,
        /// Each channel that failed, with its error.
        failures: Vec<String>,
    },
    /// Some packages of a package directory were left out, refused for themselves or as
    /// what they require is not met by what is installed and the other packages; the rest
    /// were applied.
    #[error("{}", left_out_message(.done, .left_out))]
    LeftOut {
        /// The changes made from the other packages.
        done: Vec<crate::Change>,
        /// Each package left out, with why.
        left_out: Vec<String>,
    },
    /// A `get_config` handler failed, so `reload` wrote nothing.
    #[error("nothing was written: {}", reload_failure(.0))]
    Reload(Box<crate::HookCall>),
    /// A broken module has a `get_config` handler (or its module.xml cannot be read to
    /// tell), so `reload` wrote nothing: the configuration would lack its part. Each
    /// module with what is said of it.
    #[error(
        "nothing was written: {}, so the configuration would lack its part; reinstall its \
         version to repair it (its data is kept), or delete it to reload without it",
        .0.iter().map(|(rawname, why)| format!("`{rawname}` {why}")).collect::<Vec<_>>().join("; ")
    )]
    ReloadBroken(Vec<(String, String)>),
    /// The reload was cancelled (it ran inside a call the application cancelled), so it
    /// wrote nothing.
    #[error("nothing was written: the reload was cancelled before every get_config handler ran")]
    ReloadCancelled,
    /// Running modules depend on the module.
    /// [`Options::force`](crate::Options::force) overrides it.
    #[error(
        "module `{rawname}` is required by {}: disable or uninstall {} first",
        .dependents.join(", "),
        if .dependents.len() == 1 { "it" } else { "them" }
    )]
    InUse {
        /// The module.
        rawname: String,
        /// The modules that depend on it.
        dependents: Vec<String>,
    },
    /// A module's data directory kept changing while a change copied it (one of its
    /// handlers still running, in another process): the change is not made, and may be
    /// tried again once the handler has finished.
    #[error(
        "module `{rawname}` changed its data directory while it was being copied, each of \
         the times it was tried (`{}` changed as it was read): one of its handlers is still \
         running; try again once it has finished (nothing was changed)",
        .path.display()
    )]
    DataChanging {
        /// The module.
        rawname: String,
        /// What changed as it was read.
        path: PathBuf,
    },
    /// An installed module's code cannot be loaded here (it imports what this host no
    /// longer provides, its component will not compile, or its module.xml no longer
    /// reads), so a lifecycle call of it cannot run: a change that skips its code still
    /// can.
    #[error("`{rawname}` {version} cannot run its {call}, as its code cannot be loaded: {source}")]
    CannotRun {
        /// The module.
        rawname: String,
        /// Its installed version.
        version: String,
        /// The call, written as `uninstall()`.
        call: String,
        /// Why its code cannot be loaded.
        source: Box<Error>,
    },
}

impl From<modhost_state::Error> for Error {
    /// An installed module's manifest that no longer parses is [`Error::Manifest`]
    /// wherever it was read; every other state error is [`Error::State`].
    fn from(error: modhost_state::Error) -> Self {
        match error {
            modhost_state::Error::Manifest { rawname, source } => {
                Error::Manifest { rawname, source }
            }
            other => Error::State(other),
        }
    }
}

impl Error {
    /// The module.xml problems behind this error, whichever layer met them: a module
    /// directory's, an installed module's, or a package's.
    pub fn manifest(&self) -> Option<&modhost_manifest::Error> {
        match self {
            Error::Online { source, .. } => source.manifest(),
            Error::InvalidManifest(manifest)
            | Error::Manifest {
                source: manifest, ..
            }
            | Error::Package(modhost_package::Error::Manifest {
                source: manifest, ..
            }) => Some(manifest),
            _ => None,
        }
    }

    /// The module call that failed, when the error is a module's call failing (its
    /// `disable()`, say, written as `disable()`): what an administrator may choose to skip.
    pub fn failed_call(&self) -> Option<&str> {
        match self {
            Error::Online { source, .. } => source.failed_call(),
            Error::Runtime(
                modhost_runtime::Error::Trapped { call, .. }
                | modhost_runtime::Error::Failed { call, .. }
                | modhost_runtime::Error::OutputTooLarge { call, .. },
            ) => Some(call),
            Error::CannotRun { call, .. } => Some(call),
            _ => None,
        }
    }

    /// Whether the root, or its state database, stayed locked by someone else, or a
    /// module's running handler kept changing its data under the change: the same change
    /// may succeed if tried again.
    pub fn is_locked(&self) -> bool {
        if let Error::Online { source, .. } = self {
            return source.is_locked();
        }
        matches!(
            self,
            Error::Locked { .. }
                | Error::DataChanging { .. }
                | Error::LockLost { .. }
                | Error::State(modhost_state::Error::Contended { .. })
        )
    }

    /// Whether a change was refused before anything changed: its plan cannot succeed, a
    /// package is refused for what it holds, a module says it cannot be removed or others
    /// depend on it, or a component is one this host does not run (another WIT version, an
    /// import nobody provides); or a dispatch
    /// was refused before any handler ran (nested too deep, or started from inside one).
    pub fn is_refusal(&self) -> bool {
        if let Error::Online { source, .. } | Error::CannotRun { source, .. } = self {
            return source.is_refusal();
        }
        matches!(
            self,
            Error::Refused(_)
                | Error::NotAModuleXml(_)
                | Error::NotDownloaded(_)
                | Error::Unmet { .. }
                | Error::SourcesAhead { .. }
                | Error::NotAPackageDir { .. }
                | Error::Protected { .. }
                | Error::InUse { .. }
                | Error::InsideDispatch
                | Error::NestedTooDeep { .. }
                | Error::Package(
                    modhost_package::Error::Refused { .. }
                        | modhost_package::Error::Manifest { .. }
                )
                | Error::Runtime(
                    modhost_runtime::Error::ApiVersion { .. }
                        | modhost_runtime::Error::Imports { .. }
                        | modhost_runtime::Error::MissingFunctions { .. }
                        | modhost_runtime::Error::Unlinked { .. }
                        | modhost_runtime::Error::MissingExports { .. }
                )
        )
    }
}
