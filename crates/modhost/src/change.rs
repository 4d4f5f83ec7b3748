//! What a change did to each module, and how a change may proceed.

use std::fmt;

use serde::Serialize;

/// How a change may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip dependency checks (never safety checks).
    pub force: bool,
    /// Grant the capabilities the modules ask for.
    pub grant: bool,
    /// Install a module's installed version again, running its `upgrade()` from that
    /// version; without it such a module is left as it is.
    pub reinstall: bool,
}

/// How [`Host::disable_with`](crate::Host::disable_with) proceeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisableOptions {
    /// Disable the module even while running modules depend on it.
    pub force: bool,
    /// Run none of the module's code: its `disable()` is skipped, its data kept as it is.
    pub skip_code: bool,
}

/// What a change did to one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The module.
    pub rawname: String,
    /// What was done to it.
    pub action: Action,
    /// The version before, if there was one.
    pub from: Option<String>,
    /// The version after, if the module is still installed.
    pub to: Option<String>,
    /// The host directories its module.xml asks for (installs and upgrades), each with
    /// whether it is granted now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
    /// What the change accepted but an administrator should know (module.xml warnings,
    /// platform facts nobody declared, a package only a weak checksum vouched for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Change {
    /// A change of `action` to `rawname` that asked for nothing and warned of nothing.
    pub(crate) fn plain(
        rawname: &str,
        action: Action,
        from: Option<String>,
        to: Option<String>,
    ) -> Self {
        Change {
            rawname: rawname.to_owned(),
            action,
            from,
            to,
            requests: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// What a change did to a module; shown (and serialised) as `installed`, `rolled-back`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Installed where it was not.
    Installed,
    /// Its installed version installed again (which repairs a broken module).
    Reinstalled,
    /// Replaced by a newer version; the old one is kept for a rollback.
    Upgraded,
    /// Removed after its `uninstall()` ran.
    Uninstalled,
    /// Removed without running any of its code.
    Deleted,
    /// Enabled.
    Enabled,
    /// Disabled.
    Disabled,
    /// Returned to the version its last upgrade replaced.
    RolledBack,
    /// Left as it was: that version was installed already, or the module was already
    /// enabled (or disabled). Nothing of it ran.
    Unchanged,
}

impl Action {
    /// The action's name, as `list`-style output and JSON show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Installed => "installed",
            Action::Reinstalled => "reinstalled",
            Action::Upgraded => "upgraded",
            Action::Uninstalled => "uninstalled",
            Action::Deleted => "deleted",
            Action::Enabled => "enabled",
            Action::Disabled => "disabled",
            Action::RolledBack => "rolled-back",
            Action::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a module asks for in `<capabilities>`: a host directory or an API of the
/// application's. In JSON, a directory has `path` and `read_only`, an API `package` and
/// `needs_grant`; both have `granted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Request {
    /// `<directory>`: a host directory.
    Directory {
        /// The directory.
        path: String,
        /// Whether the module asks only to read it.
        read_only: bool,
        /// Whether the administrator granted it: until then it does not exist in the
        /// sandbox.
        granted: bool,
    },
    /// `<import>`: a WIT package of the application's capabilities.
    Import {
        /// The package, `namespace:package`.
        package: String,
        /// Whether the application requires the administrator's grant for it; when it
        /// does not, the module reaches it granted or not.
        needs_grant: bool,
        /// Whether the application that opened this host gives it: when it does not (a
        /// root shared with one that does), the module cannot run here, granted or not,
        /// and whether that one needs a grant is not known here. Said in JSON only when
        /// it is not given.
        #[serde(skip_serializing_if = "crate::change::is_true")]
        provided: bool,
        /// Whether the administrator granted it.
        granted: bool,
    },
}

/// Whether `value` is true: a field said only when it is false.
fn is_true(value: &bool) -> bool {
    *value
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn an_action_serialises_as_it_displays() {
        for action in [Action::Installed, Action::Reinstalled, Action::RolledBack] {
            let json = serde_json::to_string(&action).unwrap_or_default();
            assert_eq!(json, format!("\"{action}\""));
        }
    }
}

/// A lifecycle call that works on a copy of the module's `/data`, which replaces the
/// original only if the change commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedCall {
    /// `enable()`.
    Enable,
    /// `disable()`.
    Disable,
    /// `uninstall()`.
    Uninstall,
}

impl StagedCall {
    /// The operation's name, as its fault points and messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            StagedCall::Enable => "enable",
            StagedCall::Disable => "disable",
            StagedCall::Uninstall => "uninstall",
        }
    }
}

impl std::fmt::Display for StagedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
