//! Why `list` shows a running module with a reason beside its status: this host cannot
//! run its component, or the other modules do not meet its requirements.

use std::collections::BTreeMap;

use modhost_state::ModuleRecord;

use crate::depends;
use crate::host::Host;

impl Host {
    /// For each running module of `installed` whose requirements the others do not meet
    /// (forced in, or a module it requires forced out or disabled since), what is unmet,
    /// said short for a line of `list`.
    pub(crate) fn unmet(&self, installed: &[ModuleRecord]) -> BTreeMap<String, String> {
        let nothing_packaged = BTreeMap::new();
        let available = depends::available(installed, &nothing_packaged);
        installed
            .iter()
            .filter(|record| record.status.runs())
            .filter_map(|record| {
                let manifest = record.parse_manifest().ok()?;
                let report = depends::check(&manifest, &available, &self.platform);
                let failed: Vec<String> = report
                    .checks
                    .iter()
                    .filter(|check| check.outcome == depends::Outcome::Failed)
                    .map(|check| format!("{} `{}`: {}", check.kind, check.constraint, check.detail))
                    .collect();
                (!failed.is_empty()).then(|| {
                    (
                        record.rawname.clone(),
                        format!("requirements not met: {}", failed.join("; ")),
                    )
                })
            })
            .collect()
    }

    /// Why this host would not run installed module `record`'s component, said short for
    /// a line of `list` (`info` says it in full); `None` when it would, or when its
    /// component cannot be read (a call says why).
    pub(crate) fn not_run_here(&self, record: &ModuleRecord) -> Option<String> {
        let manifest = record.parse_manifest().ok()?;
        let component = self.installed_component(record, &manifest);
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
