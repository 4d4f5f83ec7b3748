//! The embedding API's error type.

use std::path::PathBuf;

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
    State(#[from] modhost_state::Error),
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
    /// Another process is changing the root, and waiting was not allowed.
    #[error(
        "another modhost process is changing this root (lock `{0}` is held); try again, or wait without --no-wait"
    )]
    Locked(PathBuf),
    /// The module is not installed.
    #[error("module `{0}` is not installed")]
    NotInstalled(String),
    /// The plan cannot succeed; every reason is listed.
    #[error("nothing was changed:{}", .0.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    Refused(Vec<String>),
    /// Some update channels could not be checked; what the others offered was applied.
    #[error("{}", unchecked(.done, .failures))]
    Unchecked {
        /// The changes made from the channels that answered.
        done: Vec<crate::Change>,
        /// Each channel that failed, with its error.
        failures: Vec<String>,
    },
    /// A `get_config` handler failed, so `reload` wrote nothing.
    #[error("nothing was written: {}", reload_failure(.0))]
    Reload(Box<crate::HookCall>),
    /// Running modules depend on the module.
    #[error("module `{rawname}` is required by {}: disable or uninstall them first (or use --force)", .dependents.join(", "))]
    InUse {
        /// The module.
        rawname: String,
        /// The modules that depend on it.
        dependents: Vec<String>,
    },
}

/// [`Error::Reload`]'s message: the handler and its error, which names the module.
fn reload_failure(call: &crate::HookCall) -> String {
    format!(
        "get_config handler `{}` (priority {}) failed: {}",
        call.handler,
        call.priority,
        call.error.as_deref().unwrap_or("no message")
    )
}

/// [`Error::Unchecked`]'s message: what was upgraded, then every channel that failed.
fn unchecked(done: &[crate::Change], failures: &[String]) -> String {
    let upgraded = if done.is_empty() {
        "nothing was upgraded".to_owned()
    } else {
        let changes: Vec<String> = done
            .iter()
            .map(|c| format!("`{}` to {}", c.rawname, c.to.as_deref().unwrap_or("?")))
            .collect();
        format!("upgraded {}", changes.join(", "))
    };
    let failures: String = failures.iter().map(|f| format!("\n  - {f}")).collect();
    format!(
        "{upgraded}; these channels could not be checked, so their modules may be out of date:{failures}"
    )
}
