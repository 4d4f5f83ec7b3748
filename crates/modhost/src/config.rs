//! The root's `modhost.toml`: the package directory, sandbox limits, and the platform
//! facts that `<depends>` and `<supported>` are checked against.
//!
//! The embedding application declares them ([`crate::Host::with_platform`]); an
//! administrator can also write them in the root's `modhost.toml`:
//!
//! ```toml
//! packages = "/var/lib/modhost-packages"   # where `install NAME` and `upgradeall` look
//!
//! [limits]                     # sandbox limits of every call (defaults: 10 s, 64 MiB, 1 MiB, 256)
//! call_timeout_ms = 2000
//! max_memory_mb = 32             # all of a call's linear memories together; at most 256
//! max_output_kb = 256            # the longest result or error message a handler may return
//! max_resources = 64             # open files, streams… a call may hold at once
//!
//! [hooks."call.route"]          # how a hook point the application does not declare runs
//!                              # (default: broadcast, continue), and the limits of one it
//!                              # declares without limits of its own
//! shape = "pipeline"
//! on_error = "stop"
//! fired_by = "any"               # any module may fire it, though named after module `call`
//! call_timeout_ms = 200
//!
//! [state]
//! max_size_mb = 4096             # the state database's cap (default 1024): modules' stores and tables fill it, not the disk
//! module_quota_mb = 64           # what one module may keep in its store and tables (default 64)
//! [state.quotas]
//! phonebook = 256                # per module, in MiB
//!
//! [data]                       # what a module keeps in /data and the directories it may write
//! module_quota_mb = 256          # bytes of file content (default 256)
//! module_entries = 10000         # files, directories and links (default 10000)
//! [data.quotas]
//! recordings = { mb = 4096, entries = 100000 }   # per module; a key left out keeps the default
//!
//! [cache]                      # compiled code
//! keep_mb = 1024                 # of modules not installed (what `scan` compiled, so that an install after it
//!                                # does not compile again; a version rolled back from; an uninstalled module's;
//!                                # a failed install's), the newest kept up to this (default 512; 0 keeps none)
//!
//! [updates]                    # update channels (defaults: stable, 20 s)
//! stability = "beta"            # offer betas and release candidates too
//! timeout_secs = 5              # how long a silent server is waited for
//!
//! [platform]
//! name = "mypbx"                 # matched against Joomla's <targetplatform name> (default modhost)
//! version = "16.0.40"            # the host application's version (FreePBX: framework)
//! engine = { name = "asterisk", version = "18.2.0" }
//!
//! [platform.php]                 # only for modules that declare PHP dependencies
//! version = "8.2.7"
//! components = { mysqli = "8.2.7", curl = "" }   # "" = present, version unknown
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use modhost_manifest::Version;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod hooks;

pub(crate) use hooks::{HookConfig, LimitsConfig};

/// Facts about the host. A fact left out is *undeclared*: constraints on it are reported
/// as unchecked rather than failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of platform facts (`[platform]` with `name`, `version`, `engine`, `php`)"
)]
pub struct Platform {
    /// The host application's name, matched against Joomla's `<targetplatform name>`;
    /// `modhost` when undeclared.
    pub name: Option<String>,
    /// The host application's version.
    pub version: Option<Version>,
    /// The PBX engine the application drives.
    pub engine: Option<Engine>,
    /// PHP facts, for modules ported from FreePBX that declare them.
    pub php: Option<Php>,
}

/// A PBX engine and its version, e.g. `asterisk 18.2.0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as `engine = { name = \"asterisk\", version = \"18.2.0\" }`"
)]
pub struct Engine {
    /// The engine's name, compared case-insensitively.
    pub name: String,
    /// Its version.
    pub version: Version,
}

/// Declared PHP facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a `[platform.php]` table such as `version = \"8.2.7\"` and `components = { mysqli = \"\" }`"
)]
pub struct Php {
    /// The PHP version.
    pub version: Option<Version>,
    /// Components present, each with its version or `""` when unknown.
    #[serde(default)]
    pub components: BTreeMap<String, String>,
}

/// The root's `modhost.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the tables of modhost.toml")]
pub(crate) struct Config {
    /// The extra CA trusted for update sources.
    pub(crate) ca_cert: Option<std::path::PathBuf>,
    /// The local package directory (`install NAME`, `upgradeall`, `installlocal`).
    pub(crate) packages: Option<std::path::PathBuf>,
    /// The platform facts.
    #[serde(default)]
    pub(crate) platform: Platform,
    /// Sandbox limits for every call.
    #[serde(default)]
    pub(crate) limits: LimitsConfig,
    /// Update channel settings.
    #[serde(default)]
    pub(crate) updates: UpdatesConfig,
    /// The state database's settings.
    #[serde(default)]
    pub(crate) state: StateConfig,
    /// What modules may keep on disk.
    #[serde(default)]
    pub(crate) data: DataConfig,
    /// The compiled-code cache.
    #[serde(default)]
    pub(crate) cache: CacheConfig,
    /// Hook point declarations, by name.
    #[serde(default)]
    pub(crate) hooks: std::collections::BTreeMap<String, HookConfig>,
}

/// `[data]`: what each module may keep in `/data` and the granted directories it may
/// write, together.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[data]` table")]
pub(crate) struct DataConfig {
    /// Bytes of file content, in MiB (default 256).
    module_quota_mb: Option<u64>,
    /// Files, directories and links (default 10,000).
    module_entries: Option<u64>,
    /// Per module: its quota instead of the defaults.
    #[serde(default)]
    quotas: BTreeMap<String, DataQuotaConfig>,
}

/// `[data.quotas]`: one module's disk quota; a key left out keeps the default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as `acme = { mb = 64, entries = 2000 }`"
)]
struct DataQuotaConfig {
    mb: Option<u64>,
    entries: Option<u64>,
}

impl DataConfig {
    /// What `rawname` may keep on disk.
    pub(crate) fn quota_of(&self, rawname: &str) -> modhost_runtime::DiskQuota {
        let own = self.quotas.get(rawname).copied().unwrap_or_default();
        let default = modhost_runtime::DEFAULT_DISK_QUOTA;
        modhost_runtime::DiskQuota {
            bytes: own
                .mb
                .or(self.module_quota_mb)
                .map_or(default.bytes, |mb| mb.saturating_mul(1024 * 1024)),
            entries: own
                .entries
                .or(self.module_entries)
                .unwrap_or(default.entries),
        }
    }
}

/// `[cache]`: the compiled-code cache.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[cache]` table")]
pub(crate) struct CacheConfig {
    /// How much compiled code of components no installed module uses is kept, in MiB
    /// (default 512).
    keep_mb: Option<u64>,
}

impl CacheConfig {
    /// The bound, in bytes.
    pub(crate) fn keep(self) -> u64 {
        self.keep_mb
            .map_or(modhost_runtime::DEFAULT_CACHE_KEEP, |mb| {
                mb.saturating_mul(1024 * 1024)
            })
    }
}

/// `[state]`: the state database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[state]` table")]
pub(crate) struct StateConfig {
    /// The most the database may grow to, in MiB (default 1024): what modules write to
    /// their stores and tables counts against it.
    max_size_mb: Option<u64>,
    /// What one module may keep in its key-value store and tables, in MiB (default 64).
    module_quota_mb: Option<u64>,
    /// Per module, in MiB: its quota instead of `module_quota_mb`.
    #[serde(default)]
    quotas: std::collections::BTreeMap<String, u64>,
}

impl StateConfig {
    /// Each module's quota, in bytes.
    pub(crate) fn quotas(&self) -> modhost_state::Quotas {
        let mib = |mb: u64| mb.saturating_mul(1024 * 1024);
        modhost_state::Quotas {
            default: self
                .module_quota_mb
                .map_or(modhost_state::DEFAULT_MODULE_QUOTA, mib),
            modules: self
                .quotas
                .iter()
                .map(|(module, mb)| (module.clone(), mib(*mb)))
                .collect(),
        }
    }

    /// The cap, in bytes.
    pub(crate) fn max_size(&self) -> u64 {
        self.max_size_mb
            .map_or(modhost_state::DEFAULT_MAX_SIZE, |mb| {
                mb.saturating_mul(1024 * 1024)
            })
    }
}

/// `[updates]`: how update channels are read.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an `[updates]` table")]
pub(crate) struct UpdatesConfig {
    /// The least stable release offered.
    #[serde(default)]
    pub(crate) stability: modhost_update::Stability,
    /// How long a silent server is waited for, in seconds.
    pub(crate) timeout_secs: Option<u64>,
}

/// The most of a `modhost.toml` read: a config is a few KiB, and a link to `/dev/zero`
/// must not hang every command.
const MAX_CONFIG: u64 = 1024 * 1024;

impl Config {
    /// Reads the config file at `path`; an absent file configures nothing.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = match read_bounded(path) {
            Ok(text) => text,
            // Absent is no configuration; a link to nothing is a mistake to say.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::fs::symlink_metadata(path).is_err() =>
            {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: plain(&e.to_string()),
        })?;
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(Error::Config {
                path: path.to_owned(),
                message: problems.join("; "),
            });
        }
        // A relative package directory is the root's, as the file is, not wherever the
        // command happens to run.
        if let (Some(packages), Some(root)) = (&config.packages, path.parent())
            && packages.is_relative()
        {
            config.packages = Some(root.join(packages));
        }
        for (name, hook) in &config.hooks {
            let point = hook.undeclared(name, modhost_runtime::Limits::default());
            if let Some(problem) = point.problem() {
                return Err(Error::Config {
                    path: path.to_owned(),
                    message: format!("[hooks.\"{}\"]: {problem}", crate::shortened(name)),
                });
            }
        }
        // Refused now, not at the first call: a cap the sandbox cannot hold would otherwise
        // fail every call, or be silently cut.
        let hooks = config.hooks.iter().map(|(name, hook)| {
            (
                format!("[hooks.\"{}\"]", crate::shortened(name)),
                hook.limits(),
            )
        });
        let sections = std::iter::once(("[limits]".to_owned(), config.limits.clone())).chain(hooks);
        for (section, limits) in sections {
            limits
                .apply(modhost_runtime::Limits::default())
                .check()
                .map_err(|e| Error::Config {
                    path: path.to_owned(),
                    message: format!("{section}: {e}"),
                })?;
        }
        Ok(config)
    }
}

impl Config {
    /// The modules `[state.quotas]` and `[data.quotas]` name, each with its section.
    pub(crate) fn quota_names(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.state
            .quotas
            .keys()
            .map(|name| ("[state.quotas]", name))
            .chain(self.data.quotas.keys().map(|name| ("[data.quotas]", name)))
    }

    /// Warns of a quota for a module that is not installed while one of a name a letter
    /// or two apart is: a misspelt name leaves the module it meant on the default, with
    /// nothing else to say so. (A quota set ahead for a module not installed yet, and like
    /// none that is, is left to wait for it.)
    pub(crate) fn warn_of_misspelt_quotas(&self, installed: &[String]) {
        for (section, name) in self.quota_names() {
            if installed.contains(name) {
                continue;
            }
            if let Some(meant) = installed
                .iter()
                .find(|module| strsim::damerau_levenshtein(module, name) <= 2)
            {
                tracing::warn!(
                    "modhost.toml's {section} names `{name}`, which is not installed, and \
                     `{meant}` is: if `{meant}` was meant, it runs on the default quota"
                );
            }
        }
    }

    /// What the file sets that could only fail later: zeros that stop every call or
    /// write, and quotas of names that are no module's.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let hooks = self.hooks.iter().map(|(name, hook)| {
            (
                format!("[hooks.\"{}\"]", crate::shortened(name)),
                hook.limits(),
            )
        });
        for (section, limits) in
            std::iter::once(("[limits]".to_owned(), self.limits.clone())).chain(hooks)
        {
            for key in limits.zeros() {
                problems.push(format!(
                    "{section} {key} = 0 would fail every call: leave it out for the default"
                ));
            }
        }
        let zeros = [
            ("[state] max_size_mb", self.state.max_size_mb),
            ("[state] module_quota_mb", self.state.module_quota_mb),
            ("[data] module_quota_mb", self.data.module_quota_mb),
            ("[data] module_entries", self.data.module_entries),
            ("[updates] timeout_secs", self.updates.timeout_secs),
        ];
        for (key, value) in zeros {
            if value == Some(0) {
                problems.push(format!(
                    "{key} = 0 leaves no room at all: leave it out for the default"
                ));
            }
        }
        let named = self.quota_names();
        if self
            .packages
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(
                "packages = \"\" names no directory (it would be the root itself): name the \
                 package directory, or leave it out"
                    .to_owned(),
            );
        }
        let own_zeros = self
            .state
            .quotas
            .iter()
            .filter(|(_, mb)| **mb == 0)
            .map(|(name, _)| format!("[state.quotas] {name}"))
            .chain(self.data.quotas.iter().flat_map(|(name, quota)| {
                [("mb", quota.mb), ("entries", quota.entries)]
                    .into_iter()
                    .filter(|(_, value)| *value == Some(0))
                    .map(move |(key, _)| format!("[data.quotas] {name}.{key}"))
            }));
        for key in own_zeros {
            problems.push(format!(
                "{key} = 0 leaves the module no room at all: leave it out for the default"
            ));
        }
        for (section, name) in named {
            if !modhost_manifest::is_valid_rawname(name) {
                problems.push(format!(
                    "{section} `{}` is not a module's rawname: {}",
                    crate::shortened(name),
                    modhost_manifest::rawname_problem(name).unwrap_or_default()
                ));
            }
        }
        problems
    }
}

/// The text of the regular file at `path`, at most [`MAX_CONFIG`] bytes of it.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(std::io::Error::other(format!(
            "longer than {MAX_CONFIG} bytes: no modhost.toml is"
        )));
    }
    Ok(text)
}

/// A TOML error in an administrator's words: the type a value must have, not the Rust
/// type that holds it.
fn plain(message: &str) -> String {
    let mut plain = message
        .replace(" as i128", " (too large)")
        .replace("expected a map", "expected a table")
        .replace("invalid type: sequence", "invalid type: an array")
        .replace("expected a string", "expected a string in quotes");
    for rust in ["u64", "u32", "u16", "usize", "i64"] {
        plain = plain.replace(
            &format!("expected {rust}"),
            "expected a whole number, 0 or more, written without quotes",
        );
    }
    plain
}
