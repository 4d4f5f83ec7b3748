//! Plans: what a batch of packages does to the root, in which order, and every reason it
//! cannot. Nothing is changed while planning.

use std::collections::{BTreeMap, BTreeSet};

use modhost_manifest::{Manifest, ModuleDependency, Version};
use modhost_state::{ModuleRecord, Status};

use crate::config::Platform;
use crate::depends::{self, Outcome};
use crate::{Error, Result};

/// Whether a batch may only install new modules, only upgrade installed ones, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `install`: new modules, or newer versions of installed ones.
    Install,
    /// `upgrade`: newer versions of installed modules only.
    Upgrade,
}

/// What one package of the batch does.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Installs a module that is not installed.
    Install,
    /// Replaces the installed version, which is kept as the backup.
    Upgrade(Box<ModuleRecord>),
}

/// What a batch does.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The batch's steps, dependencies first: `(index into the batch, step)`.
    pub(crate) steps: Vec<(usize, Step)>,
    /// The batch's modules whose version is installed already and so are left as they
    /// are (indexes into the batch), as apt leaves a package at its newest version.
    pub(crate) unchanged: Vec<usize>,
}

/// Plans `batch` on top of `installed`. Refuses, listing every reason: a module given
/// twice; a version already installed; a downgrade; in upgrade mode, a module that is not
/// installed; a failed constraint of any batch module, or of an installed module whose
/// dependency the batch upgrades (unless `force`); a dependency cycle in the batch.
/// `kept` holds the version each module's last upgrade kept for a rollback, which a
/// downgrade's refusal names.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan(
    batch: &[&Manifest],
    installed: &[ModuleRecord],
    kept: &BTreeMap<String, String>,
    packaged: &BTreeMap<String, depends::Packaged>,
    platform: &Platform,
    mode: Mode,
    force: bool,
    reinstall: bool,
) -> Result<Plan> {
    let mut reasons = Vec::new();
    let mut unchanged = Vec::new();
    let mut in_batch: BTreeMap<&str, usize> = BTreeMap::new();
    let mut given: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (index, manifest) in batch.iter().enumerate() {
        in_batch.insert(&manifest.rawname, index);
        given
            .entry(&manifest.rawname)
            .or_default()
            .push(manifest.version.to_string());
    }
    for (rawname, versions) in given.iter().filter(|(_, v)| v.len() > 1) {
        reasons.push(format!(
            "`{rawname}` is given more than once ({}): give one package of each module",
            versions.join(" and ")
        ));
    }
    let records: BTreeMap<&str, &ModuleRecord> =
        installed.iter().map(|r| (r.rawname.as_str(), r)).collect();
    let mut actions = BTreeMap::new();
    for (index, manifest) in batch.iter().enumerate() {
        let rawname = manifest.rawname.as_str();
        match (records.get(rawname), mode) {
            (None, Mode::Install) => {
                actions.insert(index, Step::Install);
            }
            (None, Mode::Upgrade) => {
                reasons.push(format!(
                    "`{rawname}` is not installed; install it instead of upgrading"
                ));
            }
            (Some(record), _) => match Version::parse(&record.version) {
                Ok(current) if current == manifest.version && !left_as_is(record, reinstall) => {
                    actions.insert(index, Step::Upgrade(Box::new((*record).clone())));
                }
                Ok(current) if current == manifest.version => unchanged.push(index),
                Ok(current) if current > manifest.version => reasons.push(format!(
                    "`{rawname}` {current} is installed; {} would be a downgrade ({})",
                    manifest.version,
                    match kept.get(rawname) {
                        Some(version) =>
                            format!("a rollback returns to {version}, which its last upgrade kept"),
                        None => "and no upgrade kept an earlier version for a rollback".to_owned(),
                    }
                )),
                _ => {
                    actions.insert(index, Step::Upgrade(Box::new((*record).clone())));
                }
            },
        }
    }

    let available = depends::with_planned(installed, packaged, batch);
    let as_is = depends::with_planned(installed, packaged, &[]);
    let mut unmet = Vec::new();
    let mut mends = BTreeSet::new();
    for manifest in batch {
        let report = depends::check(manifest, &available, platform);
        mends.extend(report.mends());
        unmet.extend(report.failures());
    }
    for record in installed
        .iter()
        .filter(|r| r.status.runs() && !in_batch.contains_key(r.rawname.as_str()))
    {
        let dependent = record.parse_manifest()?;
        let upgraded = |name: &str| in_batch.contains_key(name);
        if !required_modules(&dependent).any(|d| upgraded(&d.name)) {
            continue;
        }
        // Only requirements of what the batch brings, and of those only the ones it
        // breaks: a requirement of a module the batch leaves alone, or one an installed
        // module already failed (forced in without it), is not the batch's doing, and
        // would otherwise block even a reinstall. One the batch brings anew is checked.
        let after = depends::check(&dependent, &available, platform);
        let before = depends::check(&dependent, &as_is, platform);
        let breaks = |(now, was): &(&depends::Check, &depends::Check)| {
            let Some(name) = now.constraint.split_whitespace().next() else {
                return false;
            };
            now.kind == "module"
                && now.outcome == Outcome::Failed
                && upgraded(name)
                && (was.outcome != Outcome::Failed || !records.contains_key(name))
        };
        for (check, _) in after.checks.iter().zip(&before.checks).filter(breaks) {
            // Said as the change it is: an upgrade breaks what was met; an install of a
            // module the dependent was forced in without does not meet it either.
            let name = check
                .constraint
                .split_whitespace()
                .next()
                .unwrap_or_default();
            let change = match (records.contains_key(name), in_batch.get(name)) {
                (true, Some(&i)) => format!("upgrading `{name}` to {}", batch[i].version),
                (false, Some(&i)) => format!("installing `{name}` {}", batch[i].version),
                (_, None) => format!("the change to `{name}`"),
            };
            let why = check
                .detail
                .strip_prefix("to be installed ")
                .unwrap_or(&check.detail);
            mends.extend(check.mend);
            unmet.push(format!(
                "installed `{}` {} requires module `{}`, which {change} would not meet: {why}",
                record.rawname, record.version, check.constraint
            ));
        }
    }
    // Forcing sets unmet requirements aside, and nothing else.
    let mut forcible = reasons.is_empty();
    if force {
        for reason in unmet {
            tracing::warn!("forced: ignoring: {reason}");
        }
    } else {
        reasons.extend(unmet);
    }
    // A cycle is named with every other reason, not only once the rest are mended.
    let order = match topological(batch, &in_batch) {
        Err(Error::Refused(cycle)) => {
            reasons.extend(cycle);
            forcible = false;
            Vec::new()
        }
        order => order?,
    };
    if !reasons.is_empty() {
        return Err(if forcible {
            Error::Unmet { reasons, mends }
        } else {
            Error::Refused(reasons)
        });
    }
    Ok(Plan {
        steps: order
            .into_iter()
            .filter_map(|index| actions.remove(&index).map(|action| (index, action)))
            .collect(),
        unchanged,
    })
}

/// The indices of `modules` ordered dependencies-first; a cycle among them is refused.
pub(crate) fn dependencies_first(modules: &[&Manifest]) -> Result<Vec<usize>> {
    let in_batch = modules
        .iter()
        .enumerate()
        .map(|(index, m)| (m.rawname.as_str(), index))
        .collect();
    topological(modules, &in_batch)
}

/// Orders the batch dependencies-first (by rawname among equals, so runs are repeatable).
fn topological(batch: &[&Manifest], in_batch: &BTreeMap<&str, usize>) -> Result<Vec<usize>> {
    let mut order = Vec::with_capacity(batch.len());
    let mut done = BTreeSet::new();
    let mut visiting = Vec::new();
    for &start in in_batch.values() {
        visit(start, batch, in_batch, &mut done, &mut visiting, &mut order)?;
    }
    Ok(order)
}

fn visit(
    index: usize,
    batch: &[&Manifest],
    in_batch: &BTreeMap<&str, usize>,
    done: &mut BTreeSet<usize>,
    visiting: &mut Vec<usize>,
    order: &mut Vec<usize>,
) -> Result<()> {
    if done.contains(&index) {
        return Ok(());
    }
    if let Some(at) = visiting.iter().position(|&i| i == index) {
        let cycle: Vec<&str> = visiting[at..]
            .iter()
            .chain(std::iter::once(&index))
            .map(|&i| batch[i].rawname.as_str())
            .collect();
        return Err(Error::Refused(vec![format!(
            "dependency cycle: {}",
            cycle.join(" -> ")
        )]));
    }
    visiting.push(index);
    for dependency in required_modules(batch[index]) {
        if let Some(&next) = in_batch.get(dependency.name.as_str()) {
            visit(next, batch, in_batch, done, visiting, order)?;
        }
    }
    visiting.pop();
    done.insert(index);
    order.push(index);
    Ok(())
}

/// The modules `manifest` needs installed: `<depends><module>` and the legacy
/// `<requirements><module>`, which FreePBX 2.x modules still use for the same thing.
pub(crate) fn required_modules(manifest: &Manifest) -> impl Iterator<Item = &ModuleDependency> {
    manifest
        .depends
        .modules
        .iter()
        .chain(&manifest.requirements.modules)
}

/// The installed modules whose handlers run and whose module.xml depends on `rawname`.
pub(crate) fn dependents(rawname: &str, installed: &[ModuleRecord]) -> Result<Vec<String>> {
    let mut dependents = Vec::new();
    for record in installed.iter().filter(|r| r.status.runs()) {
        let manifest = record.parse_manifest()?;
        if required_modules(&manifest).any(|d| d.name == rawname) {
            dependents.push(record.rawname.clone());
        }
    }
    Ok(dependents)
}

/// Whether asking again for the version of `record`'s module that is installed leaves it
/// as it is: installing a version again runs its install again only when asked
/// (`reinstall`), and a broken module's own version again repairs it.
pub(crate) fn left_as_is(record: &ModuleRecord, reinstall: bool) -> bool {
    !reinstall && record.status != Status::Broken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(rawname: &str, version: &str, depends: &str) -> Manifest {
        let xml = format!(
            "<module><rawname>{rawname}</rawname><name>{rawname}</name><version>{version}</version>\
             <depends>{depends}</depends></module>"
        );
        Manifest::parse(&xml, "m.xml").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The plan to install `batch` into an empty root.
    fn install(batch: &[&Manifest], force: bool) -> Result<Plan> {
        plan(
            batch,
            &[],
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Platform::default(),
            Mode::Install,
            force,
            false,
        )
    }

    /// The order `install` would take `batch` in (indexes into it).
    fn order(batch: &[&Manifest]) -> Vec<usize> {
        install(batch, false)
            .map(|p| p.steps.into_iter().map(|(i, _)| i).collect())
            .unwrap_or_default()
    }

    fn refusal(batch: &[&Manifest]) -> Vec<String> {
        match install(batch, false) {
            Err(Error::Refused(reasons) | Error::Unmet { reasons, .. }) => reasons,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn orders_dependencies_first_and_names_cycles() {
        let a = manifest("a", "1.0", "<module>b</module>");
        let b = manifest("b", "1.0", "<module>c</module>");
        let c = manifest("c", "1.0", "");
        assert_eq!(order(&[&a, &b, &c]), [2, 1, 0]);

        let x = manifest("x", "1.0", "<module>y</module>");
        let y = manifest("y", "1.0", "<module>z</module>");
        let z = manifest("z", "1.0", "<module>x</module>");
        assert_eq!(
            refusal(&[&x, &y, &z]),
            ["dependency cycle: x -> y -> z -> x"]
        );
        let needy = manifest("needy", "1.0", "<module>missing</module>");
        let reasons = refusal(&[&x, &y, &z, &needy]);
        assert_eq!(reasons.len(), 2, "{reasons:#?}");
        assert!(
            reasons[0].contains("requires module `missing`"),
            "{reasons:#?}"
        );
        assert_eq!(reasons[1], "dependency cycle: x -> y -> z -> x");
    }

    #[test]
    fn every_reason_is_listed_and_force_skips_only_dependencies() {
        let a = manifest(
            "a",
            "1.0",
            "<module>missing</module><module>b ge 2.0</module>",
        );
        let b = manifest("b", "1.0", "");
        let reasons = refusal(&[&a, &b, &b]);
        assert_eq!(reasons.len(), 3, "{reasons:#?}");
        assert!(reasons[0].contains("`b` is given more than once (1.0 and 1.0)"));
        assert!(reasons[1].contains("requires module `missing`: not installed"));
        assert!(reasons[2].contains("requires module `b ge 2.0`: to be installed 1.0 is too old"));
        assert!(
            matches!(install(&[&a, &b], false), Err(Error::Unmet { .. })),
            "only requirements refuse it, which forcing sets aside"
        );
        assert!(
            matches!(install(&[&a, &b, &b], false), Err(Error::Refused(_))),
            "forcing would not mend a duplicate"
        );
        let forced = install(&[&a, &b], true);
        assert!(forced.is_ok(), "{forced:?}");
        let still_refused = install(&[&a, &b, &b], true);
        assert!(
            still_refused.is_err(),
            "a duplicate is not a dependency problem"
        );
    }

    /// The plan to install `batch` (again, with `reinstall`) on top of `installed`.
    fn install_on(
        installed: &[ModuleRecord],
        batch: &[&Manifest],
        reinstall: bool,
    ) -> Result<Plan> {
        plan(
            batch,
            installed,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Platform::default(),
            Mode::Install,
            false,
            reinstall,
        )
    }

    /// An installed record of `manifest`, enabled.
    fn record(manifest: &Manifest, xml: &str) -> ModuleRecord {
        ModuleRecord {
            rawname: manifest.rawname.clone(),
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            status: modhost_state::Status::Enabled,
            reason: None,
            module_dir: "1".into(),
            data_dir: "1".into(),
            component_sha256: "00".into(),
            manifest: xml.into(),
            installed_at: 1,
        }
    }

    #[test]
    fn a_dependent_is_refused_only_what_the_batch_breaks() {
        let xml = |name: &str, version: &str, depends: &str| {
            format!(
                "<module><rawname>{name}</rawname><name>{name}</name><version>{version}</version>\
                 <depends>{depends}</depends></module>"
            )
        };
        // `misc` was forced in without `userman` (15 or later), and needs `core` below 17.
        let core_xml = xml("core", "16.0.1", "");
        let misc_xml = xml(
            "misc",
            "1.0",
            "<module>core lt 17</module><module>userman ge 15</module>",
        );
        let parse = |x: &str| Manifest::parse(x, "m.xml").unwrap_or_else(|e| panic!("{e}"));
        let installed = [
            record(&parse(&core_xml), &core_xml),
            record(&parse(&misc_xml), &misc_xml),
        ];
        let same = parse(&core_xml);
        let reinstalled = install_on(&installed, &[&same], true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reinstalled.steps.len(), 1, "the reinstall is planned");
        let newer = manifest("core", "16.0.2", "");
        assert!(
            install_on(&installed, &[&newer], false).is_ok(),
            "userman was unmet before"
        );
        let breaking = manifest("core", "17.0", "");
        let reasons = match install_on(&installed, &[&breaking], false) {
            Err(Error::Refused(reasons) | Error::Unmet { reasons, .. }) => reasons,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            reasons,
            [
                "installed `misc` 1.0 requires module `core lt 17`, which upgrading `core` to \
                 17.0 would not meet: 17.0 is too new"
            ],
        );
        // What the batch brings anew is checked, though the requirement was unmet before.
        let userman = manifest("userman", "14.0", "");
        let reasons = match install_on(&installed, &[&userman], false) {
            Err(Error::Refused(reasons) | Error::Unmet { reasons, .. }) => reasons,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            reasons,
            [
                "installed `misc` 1.0 requires module `userman ge 15`, which installing \
                 `userman` 14.0 would not meet: 14.0 is too old"
            ],
        );
        // An installed one it already failed is no breakage of the batch's: reinstalled,
        // or upgraded still too old, it is left to the administrator who forced it.
        let userman_xml = xml("userman", "14.0", "");
        let with_userman = [
            installed[0].clone(),
            installed[1].clone(),
            record(&parse(&userman_xml), &userman_xml),
        ];
        let again = parse(&userman_xml);
        assert!(
            install_on(&with_userman, &[&again], true).is_ok(),
            "a reinstall breaks nothing"
        );
        let still_old = manifest("userman", "14.5", "");
        assert!(
            install_on(&with_userman, &[&still_old], false).is_ok(),
            "nor does 14.5"
        );
    }

    #[test]
    fn legacy_requirements_count_as_dependencies() {
        let xml = "<module><rawname>legacy</rawname><name>Legacy</name><version>1.0</version>\
                   <requirements><module>base</module></requirements></module>";
        let legacy = Manifest::parse(xml, "m.xml").unwrap_or_else(|e| panic!("{e}"));
        let base = manifest("base", "1.0", "");
        assert_eq!(order(&[&legacy, &base]), [1, 0], "base is installed first");

        let record = ModuleRecord {
            rawname: "legacy".into(),
            name: "Legacy".into(),
            version: "1.0".into(),
            status: modhost_state::Status::Enabled,
            reason: None,
            module_dir: "1.0-1".into(),
            data_dir: "1".into(),
            component_sha256: "00".into(),
            manifest: xml.into(),
            installed_at: 1,
        };
        assert_eq!(
            dependents("base", &[record]).unwrap_or_default(),
            ["legacy"]
        );
    }

    #[test]
    fn a_downgrade_is_refused_naming_the_version_a_rollback_returns_to() {
        let installed_xml =
            "<module><rawname>pb</rawname><name>pb</name><version>2.0</version></module>";
        let installed = [record(
            &Manifest::parse(installed_xml, "m.xml").unwrap_or_else(|e| panic!("{e}")),
            installed_xml,
        )];
        let older = manifest("pb", "1.0", "");
        let refusal = |kept: &BTreeMap<String, String>| match plan(
            &[&older],
            &installed,
            kept,
            &BTreeMap::new(),
            &Platform::default(),
            Mode::Install,
            true,
            false,
        ) {
            Err(Error::Refused(reasons) | Error::Unmet { reasons, .. }) => reasons.join("\n"),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let kept = BTreeMap::from([("pb".to_owned(), "1.5".to_owned())]);
        assert_eq!(
            refusal(&kept),
            "`pb` 2.0 is installed; 1.0 would be a downgrade (a rollback returns to 1.5, \
             which its last upgrade kept)"
        );
        assert_eq!(
            refusal(&BTreeMap::new()),
            "`pb` 2.0 is installed; 1.0 would be a downgrade (and no upgrade kept an earlier \
             version for a rollback)"
        );
    }
}
