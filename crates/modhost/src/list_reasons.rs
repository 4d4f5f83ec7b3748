//! Why `list` shows a running module with a reason beside its status: this host cannot
//! run its component, or the other modules do not meet its requirements.

use std::collections::BTreeMap;

use modhost_manifest::Manifest;
use modhost_state::ModuleRecord;

use crate::depends;
use crate::host::Host;

impl Host {
    /// Gives each running module of `installed` without a reason the one `list` shows:
    /// this host cannot run its component, or the others do not meet its requirements
    /// (forced in, or a module it requires forced out or disabled since). Each module.xml
    /// is read once.
    pub(crate) fn give_list_reasons(&self, installed: &mut [ModuleRecord]) {
        let reasons: Vec<Option<String>> = {
            let nothing_packaged = BTreeMap::new();
            let available = depends::available(installed, &nothing_packaged);
            installed
                .iter()
                .map(|record| {
                    if !record.status.runs() || record.reason.is_some() {
                        return None;
                    }
                    let manifest = record.parse_manifest().ok()?;
                    self.not_run_here(record, &manifest)
                        .or_else(|| unmet(&manifest, &available, &self.platform))
                })
                .collect()
        };
        for (record, reason) in installed.iter_mut().zip(reasons) {
            if reason.is_some() {
                record.reason = reason;
            }
        }
    }

    /// Why this host would not run installed module `record`'s component (its module.xml
    /// `manifest`), said short for a line of `list` (`info` says it in full); `None` when
    /// it would, or when its component cannot be read (a call says why).
    fn not_run_here(&self, record: &ModuleRecord, manifest: &Manifest) -> Option<String> {
        let component = self.installed_component(record, manifest);
        let bytes = std::fs::read(&component).ok()?;
        let names = modhost_runtime::top_level(&bytes).ok()?;
        let refused = self.runtime.check_links(&component, &bytes, &names).err()?;
        Some(match refused {
            modhost_runtime::Error::Imports { unknown, .. } => format!(
                "this host cannot run it: it imports {}, which this host does not provide",
                unknown.join(", ")
            ),
            modhost_runtime::Error::MissingFunctions {
                interface, missing, ..
            } => format!(
                "this host cannot run it: it imports {} from `{interface}`, which this host's \
                 capability does not provide",
                missing.join(", ")
            ),
            other => format!("this host cannot run it: {other}"),
        })
    }
}

/// What of `manifest`'s requirements `available` does not meet, said short for a line of
/// `list`; `None` when all are met.
fn unmet(
    manifest: &Manifest,
    available: &BTreeMap<&str, depends::Available<'_>>,
    platform: &crate::Platform,
) -> Option<String> {
    let failed: Vec<String> = depends::check(manifest, available, platform)
        .checks
        .iter()
        .filter(|check| check.outcome == depends::Outcome::Failed)
        .map(|check| format!("{} `{}`: {}", check.kind, check.constraint, check.detail))
        .collect();
    (!failed.is_empty()).then(|| format!("requirements not met: {}", failed.join("; ")))
}
