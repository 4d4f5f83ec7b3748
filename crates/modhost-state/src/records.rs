//! What the state database records about an installed module: its status, its record,
//! and the backup an upgrade keeps of the version it replaced.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use modhost_manifest::Manifest;
use serde::Serialize;

use crate::{Error, Result};

/// The state of an installed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Not installed, though the package directory holds a package of it. Never stored:
    /// a module without a record has this status.
    NotInstalled,
    /// Installed and taking part in hook points.
    Enabled,
    /// Installed but switched off by an administrator.
    Disabled,
    /// A newer version is available locally and should be applied.
    NeedsUpgrade,
    /// Recorded, but its files are missing or cannot be loaded.
    Broken,
}

impl Status {
    /// The stored, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotInstalled => "not-installed",
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::NeedsUpgrade => "needs-upgrade",
            Status::Broken => "broken",
        }
    }

    /// Whether the module's handlers run.
    pub fn runs(self) -> bool {
        matches!(self, Status::Enabled | Status::NeedsUpgrade)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a stored status: `not-installed` is never stored, so it is refused.
impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enabled" => Ok(Status::Enabled),
            "disabled" => Ok(Status::Disabled),
            "needs-upgrade" => Ok(Status::NeedsUpgrade),
            "broken" => Ok(Status::Broken),
            other => Err(format!("unknown module status `{other}`")),
        }
    }
}

/// What the state database records about an installed module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleRecord {
    /// The module's unique id.
    pub rawname: String,
    /// Its display name.
    pub name: String,
    /// The installed version, as module.xml writes it.
    pub version: String,
    /// Its state.
    pub status: Status,
    /// Why it is in that state, when that needs saying.
    pub reason: Option<String>,
    /// The directory under `modules/RAWNAME/` holding this version's files.
    pub module_dir: String,
    /// The directory under `data/RAWNAME/` that is the module's `/data`.
    pub data_dir: String,
    /// SHA-256 of the component, hex: the key of its compiled artifact.
    pub component_sha256: String,
    /// The installed module.xml, verbatim.
    #[serde(skip)]
    pub manifest: String,
    /// When it was installed, in seconds since the Unix epoch.
    pub installed_at: i64,
}

/// A running module as a call found it: its version's files and its `/data`. A record
/// that later differs in either, or no longer runs, is no longer the module the call
/// began on (see [`ModuleRecord::change_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The module.
    pub rawname: String,
    /// Its version's directory under `modules/RAWNAME/`.
    pub module_dir: String,
    /// Its `/data` under `data/RAWNAME/`.
    pub data_dir: String,
}

impl ModuleRecord {
    /// The module as a call finds it now.
    pub fn found(&self) -> Found {
        Found {
            rawname: self.rawname.clone(),
            module_dir: self.module_dir.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    /// What happened to a module as `found`, given its record now (`None`: not
    /// installed): `uninstalled`, `replaced by another version`, `disabled`, `disabled and
    /// enabled again` (its `/data` was replaced, the one the call had swept away), or
    /// nothing.
    pub fn change_since(now: Option<&ModuleRecord>, found: &Found) -> Option<&'static str> {
        match now {
            None => Some("uninstalled"),
            Some(record) if record.module_dir != found.module_dir => {
                Some("replaced by another version")
            }
            Some(record) if !record.status.runs() => Some("disabled"),
            Some(record) if record.data_dir != found.data_dir => Some("disabled and enabled again"),
            Some(_) => None,
        }
    }

    /// Its recorded module.xml, parsed: the one way an installed module's manifest is
    /// read, by every caller, so that one that no longer parses is always the same error
    /// naming the module.
    pub fn parse_manifest(&self) -> Result<Manifest> {
        let name = format!("{}/module.xml", self.rawname);
        Manifest::parse(&self.manifest, &name).map_err(|source| Error::Manifest {
            rawname: self.rawname.clone(),
            source,
        })
    }
}

/// The previous version of a module, kept by an upgrade so it can be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The module as it was before the upgrade.
    pub record: ModuleRecord,
    /// Its key-value store as it was.
    pub kv: BTreeMap<String, String>,
    /// Its tables as they were: table → the copy holding its rows.
    pub tables: BTreeMap<String, String>,
}
