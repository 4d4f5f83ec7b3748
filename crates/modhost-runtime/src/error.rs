//! How the sandbox fails: the error of every operation, and how a call was stopped.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::{POOL_MEMORY, SUPPORTED_API_VERSIONS};

/// A sandbox failure, naming the module and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the runtime could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A capability an application gives cannot be offered to modules as it is.
    #[error("capability `{package}` is refused: {problem}")]
    Capability {
        /// The capability's package, as it names it.
        package: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The disk holding the compiled-code cache has no room for a compiled component.
    #[error(
        "`{}`: the disk holding the compiled-code cache is full; free some space on it \
         (nothing was changed)",
        .path.display()
    )]
    CacheFull {
        /// The cache directory.
        path: PathBuf,
    },
    /// This process was forked from one that used modhost: it has none of the threads
    /// that one started, so nothing of modhost runs here.
    #[error(
        "process {first}, which forked this one, used modhost: a forked process (this is \
         {now}) has none of the threads it started, so modhost cannot run here; open modhost \
         only in processes not forked from one that used it (each PHP-FPM or prefork worker \
         its own, the master none)"
    )]
    Forked {
        /// The process that used modhost first.
        first: u32,
        /// This process.
        now: u32,
    },
    /// wasmtime could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The file is not a component that this host can run.
    #[error("`{path}` is not a loadable modhost:module@{} component: {message}", SUPPORTED_API_VERSIONS.join(", "))]
    Load {
        /// The component file.
        path: PathBuf,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component targets a version of the WIT contract this host does not run.
    #[error("`{path}` is built against modhost:module@{found}; this host supports modhost:module@{}: rebuild it against the host's `wit/` (what `modhost new` writes)", SUPPORTED_API_VERSIONS.join(", @"))]
    ApiVersion {
        /// The component file.
        path: PathBuf,
        /// The version it targets.
        found: String,
    },
    /// The component imports interfaces this host neither has nor was given by the
    /// application.
    #[error("`{path}` imports {}, which this host does not provide; it provides {}", .unknown.join(", "), .offered.join(", "))]
    Imports {
        /// The component file.
        path: PathBuf,
        /// The imports nobody provides.
        unknown: Vec<String>,
        /// The packages the host offers, with their versions; of a package an unknown
        /// import belongs to, its interfaces.
        offered: Vec<String>,
    },
    /// The component imports functions of an application's interface that the
    /// application's capability does not provide.
    #[error(
        "`{path}` imports {} from `{interface}`, which the application's capability does not \
         provide; it provides {}",
        .missing.join(", "),
        if .provided.is_empty() { "none of its functions".to_owned() } else { .provided.join(", ") }
    )]
    MissingFunctions {
        /// The component file.
        path: PathBuf,
        /// The interface, `namespace:package/interface@version`.
        interface: String,
        /// The functions imported that it lacks.
        missing: Vec<String>,
        /// The functions it provides.
        provided: Vec<String>,
    },
    /// The component imports an interface of an application's capability that the
    /// capability did not fully link (it lists no functions, so this is found only when
    /// the compiled component is linked): the application's lack, not the package's.
    #[error(
        "`{path}` imports `{interface}`, which the application's capability does not fully \
         provide here ({message}); the application must link every function of it, or list \
         its functions (`Capability::functions`), so that install refuses such a module \
         before compiling it"
    )]
    Unlinked {
        /// The component file.
        path: PathBuf,
        /// The interface, `namespace:package/interface@version`.
        interface: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component does not export what every module exports.
    #[error(
        "`{}` does not export modhost:module's {}: a module exports both `lifecycle` and \
         `hooks` (the Rust SDK's `export_module!`, a Python module's `Lifecycle` and `Hooks` \
         classes, the JS SDK's `defineModule`)",
        .path.display(),
        .missing.join(" and ")
    )]
    MissingExports {
        /// The component file.
        path: PathBuf,
        /// The interfaces it does not export.
        missing: Vec<String>,
    },
    /// The module's call trapped, ran out of time or memory, or could not start.
    #[error("module `{module}` {version}: {call} {failure}")]
    Trapped {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that failed.
        call: String,
        /// What happened, with the guest backtrace when there is one.
        failure: Failure,
    },
    /// A limit of 0 that would fail every call was asked for.
    #[error("a `{limit}` of 0 would fail every call: leave it at its default")]
    ZeroLimit {
        /// The limit's field name.
        limit: &'static str,
    },
    /// A call deadline longer than [`MAX_CALL_TIMEOUT`](crate::MAX_CALL_TIMEOUT) was
    /// asked for.
    #[error(
        "a call deadline of {} ms is longer than the day a call may run at most",
        .limit.as_millis()
    )]
    TimeoutTooLong {
        /// The deadline asked for.
        limit: std::time::Duration,
    },
    /// A fire depth deeper than a dispatch may nest was asked for.
    #[error(
        "a `max_fire_depth` of {depth} is deeper than the {} levels hooks may nest (each holds a sandbox of its own while the ones inside it run)",
        crate::MAX_FIRE_DEPTH
    )]
    FireDepthTooDeep {
        /// The depth asked for.
        depth: u32,
    },
    /// A memory cap larger than the sandbox's memory slots was asked for.
    #[error("a memory cap of {} is larger than the {} a sandbox can hold", bytes(*.cap), bytes(POOL_MEMORY))]
    MemoryCapTooLarge {
        /// The cap asked for, in bytes.
        cap: usize,
    },
    /// A memory cap under one WebAssembly page was asked for: no component with a memory
    /// could run.
    #[error("a memory cap of {} is under one WebAssembly page ({}): no module could run", bytes(*.cap), bytes(crate::limits::WASM_PAGE))]
    MemoryCapTooSmall {
        /// The cap asked for, in bytes.
        cap: usize,
    },
    /// The module's call returned a result or error message over the output limit; it was
    /// dropped.
    #[error(
        "module `{module}` {version}: {call} {} {size} bytes, over the output limit of {}",
        if *.failed { "failed with an error message of" } else { "returned" },
        bytes(*.limit)
    )]
    OutputTooLarge {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that returned it.
        call: String,
        /// How long the result or error message was, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
        /// Whether it was an error message, not a result.
        failed: bool,
    },
    /// The module's call returned an error.
    #[error("module `{module}` {version}: {call} failed: {message}")]
    Failed {
        /// The module's rawname.
        module: String,
        /// The module's version.
        version: String,
        /// The call that failed.
        call: String,
        /// The module's own message.
        message: String,
        /// Whether its memory reached its cap during the call and its report speaks of
        /// memory: the failure is then the guest's own report of an allocation refused
        /// (a Python `MemoryError`, a JS "out of memory").
        at_memory_cap: bool,
    },
}

impl Error {
    /// Whether every host refuses the component so: it is no component (a core module,
    /// bytes that are not WebAssembly, code too costly to compile) or lacks the exports
    /// every module has. (An import nobody provides here may be an application's
    /// capability; another WIT version, a newer modhost's.)
    pub fn refused_by_any_host(&self) -> bool {
        matches!(self, Error::Load { .. } | Error::MissingExports { .. })
    }

    /// The same error naming the component `path` instead (where it sits inside its
    /// package, say, rather than where it was unpacked); others as they are.
    pub fn naming_component(self, path: PathBuf) -> Self {
        match self {
            Error::Load { message, .. } => Error::Load { path, message },
            Error::ApiVersion { found, .. } => Error::ApiVersion { path, found },
            Error::Imports {
                unknown, offered, ..
            } => Error::Imports {
                path,
                unknown,
                offered,
            },
            Error::MissingFunctions {
                interface,
                missing,
                provided,
                ..
            } => Error::MissingFunctions {
                path,
                interface,
                missing,
                provided,
            },
            Error::MissingExports { missing, .. } => Error::MissingExports { path, missing },
            Error::Unlinked {
                interface, message, ..
            } => Error::Unlinked {
                path,
                interface,
                message,
            },
            other => other,
        }
    }
}

/// How a call was stopped by the sandbox.
#[derive(Debug)]
pub enum Failure {
    /// It ran, or waited, past its deadline.
    Timeout {
        /// The deadline.
        limit: Duration,
        /// The end of what the guest wrote to stderr, as a report shows it (empty when
        /// it wrote nothing): an author's last words before the loop that never ended;
        /// then, when the deadline interrupted the author's own code, its frames of the
        /// backtrace: where that loop is.
        stderr: String,
    },
    /// Its memories together would have grown past its cap; the text includes the backtrace
    /// of what asked for the memory.
    OutOfMemory {
        /// The cap, in bytes.
        cap: usize,
        /// The trap, with the backtrace.
        trap: String,
    },
    /// It tried to hold more host resources (open files, streams…) than its limit.
    TooManyResources(usize),
    /// Its stack ran out (deep or endless recursion); the text includes the backtrace.
    StackOverflow(String),
    /// It trapped; the text includes the backtrace.
    Trap(String),
    /// The host failed it: the state database could not serve one of its statements
    /// (say, the write lock stayed taken past its deadline). Not the module's fault.
    Host(String),
    /// The application cancelled it (the caller hung up). Not the module's fault.
    Cancelled {
        /// The end of what the guest wrote to stderr, as a report shows it (empty when it
        /// wrote nothing): what it was doing when the call was stopped.
        stderr: String,
    },
    /// No pooled instance slot came free before its deadline: the host was running as
    /// many calls at once as its pool holds (the number). Not the module's fault.
    Busy(u32),
    /// The state database stayed taken by other calls' (or another process's) writes
    /// until its deadline: handlers using the state take turns. Not the module's fault.
    Waited(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout { limit, stderr } => {
                write!(f, "was stopped after its {limit:?} deadline{stderr}")
            }
            Failure::OutOfMemory { cap, trap } => {
                write!(
                    f,
                    "trapped: out of memory at its memory cap of {}",
                    bytes(*cap)
                )?;
                // The trap's own first words say the cap again: only what follows is new.
                let said = crate::limiter::MemoryCapReached { cap: *cap }.to_string();
                let rest = trap.strip_prefix(&said).unwrap_or(trap);
                let rest = rest.trim_start_matches([':', ' ', '\n']);
                if rest.is_empty() {
                    Ok(())
                } else {
                    write!(f, ": {rest}")
                }
            }
            Failure::TooManyResources(limit) => write!(
                f,
                "was stopped holding its limit of {limit} open files, streams and other host resources"
            ),
            Failure::StackOverflow(text) => {
                write!(f, "ran out of stack (deep or endless recursion): {text}")
            }
            Failure::Trap(text) => write!(f, "trapped: {text}"),
            Failure::Host(text) => write!(f, "was stopped by the host: {text}"),
            Failure::Cancelled { stderr } => write!(f, "was cancelled by the application{stderr}"),
            Failure::Busy(slots) => write!(
                f,
                "did not start: the host was running as many calls at once as it has room \
                 for ({slots} instances) until this call's deadline"
            ),
            Failure::Waited(text) => write!(f, "waited in vain: {text}"),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `bytes` in MiB when it is a whole number of them, else in bytes.
pub(crate) fn bytes(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_memory_names_the_cap_once() {
        let failure = |trap: &str| {
            Failure::OutOfMemory {
                cap: 64 << 20,
                trap: trap.to_owned(),
            }
            .to_string()
        };
        assert_eq!(
            failure("its memory cap of 64 MiB was reached\nwasm backtrace:\n  0: grow"),
            "trapped: out of memory at its memory cap of 64 MiB: wasm backtrace:\n  0: grow"
        );
        assert_eq!(
            failure("its memory cap of 64 MiB was reached"),
            "trapped: out of memory at its memory cap of 64 MiB"
        );
        assert_eq!(
            failure("memory.grow failed"),
            "trapped: out of memory at its memory cap of 64 MiB: memory.grow failed"
        );
    }
}
