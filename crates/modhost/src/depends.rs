//! Evaluates a module's `<depends>`, `<requirements>` and `<supported>` against the
//! installed modules and the host's [`Platform`], one [`Check`] per constraint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use modhost_manifest::{Manifest, NamedRequirement, Op, Requirement, Version};
use modhost_state::{ModuleRecord, Status};
use serde::Serialize;

use crate::config::Platform;

/// How one constraint fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It holds.
    Ok,
    /// It does not hold.
    Failed,
    /// It concerns a platform fact the host has not declared.
    Unchecked,
}

/// The one step that meets a failed requirement on another module, where there is one:
/// what a caller can offer to do, or tell its user to do, beside forcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mend {
    /// The module required is installed but disabled: enabling it meets the requirement.
    Enable,
    /// The module required is not installed: installing it (from its package) meets it.
    Install,
}

/// One constraint and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The element it comes from: `version`, `module`, `engine`, `phpversion`,
    /// `phpcomponent`, `file` or `supported`.
    pub kind: &'static str,
    /// The constraint as written, e.g. `core ge 16.0`.
    pub constraint: String,
    /// Whether it holds.
    pub outcome: Outcome,
    /// What was found, e.g. `installed 16.0.40` or `disabled`.
    pub detail: String,
    /// For a failed requirement on another module, the step that meets it.
    #[serde(skip)]
    pub mend: Option<Mend>,
}

/// Every check of one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyReport {
    /// The module.
    pub rawname: String,
    /// Its version.
    pub version: String,
    /// Whether no check failed.
    pub satisfied: bool,
    /// The checks, in module.xml order.
    pub checks: Vec<Check>,
}

impl DependencyReport {
    /// One sentence per failed check, naming the module, the constraint and what was found.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .map(|c| {
                // `<supported>` names no thing required, but the host's version.
                let what = match c.kind {
                    "supported" => "a host application version (its <supported>)",
                    kind => kind,
                };
                format!(
                    "`{}` {} requires {what} `{}`: {}",
                    self.rawname, self.version, c.constraint, c.detail
                )
            })
            .collect()
    }

    /// The steps that meet its failed requirements, where a step does.
    pub fn mends(&self) -> impl Iterator<Item = Mend> + '_ {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .filter_map(|c| c.mend)
    }
}

/// What a required module can be found as.
pub(crate) enum Available<'a> {
    /// Recorded in the state database.
    Installed(&'a ModuleRecord),
    /// Part of the batch being installed.
    Planned(&'a Manifest),
    /// Not installed; what the package directory holds of it.
    Packaged(&'a Packaged),
}

/// What the package directory holds of a module nobody installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packaged {
    /// A readable package of this version.
    Version(Version),
    /// No readable package, but one that cannot be read is named as this module's: what
    /// that package is and why it cannot be read.
    Unreadable(String),
    /// Nothing of it.
    Nothing,
}

/// The modules a check can find: every installed one, and what the package directory
/// holds of the missing ones (see [`missing`]).
pub(crate) fn available<'a>(
    installed: &'a [ModuleRecord],
    packaged: &'a BTreeMap<String, Packaged>,
) -> BTreeMap<&'a str, Available<'a>> {
    let mut available: BTreeMap<&str, Available<'_>> = packaged
        .iter()
        .map(|(name, packaged)| (name.as_str(), Available::Packaged(packaged)))
        .collect();
    available.extend(
        installed
            .iter()
            .map(|r| (r.rawname.as_str(), Available::Installed(r))),
    );
    available
}

/// The modules `manifests` require that are neither installed nor among them: only for
/// these does a refusal need to look into the package directory.
pub(crate) fn missing(manifests: &[&Manifest], installed: &[ModuleRecord]) -> BTreeSet<String> {
    manifests
        .iter()
        .flat_map(|m| m.depends.modules.iter().chain(&m.requirements.modules))
        .map(|d| d.name.as_str())
        .filter(|name| {
            // Checked against the application's version when not there as a module: no
            // need to look for it in the package directory.
            *name != FRAMEWORK
                && !installed.iter().any(|r| r.rawname == *name)
                && !manifests.iter().any(|m| m.rawname == *name)
        })
        .map(str::to_owned)
        .collect()
}

/// The modules a check of a batch can find: what [`available`] gives, and `planned`.
pub(crate) fn with_planned<'a>(
    installed: &'a [ModuleRecord],
    packaged: &'a BTreeMap<String, Packaged>,
    planned: &[&'a Manifest],
) -> BTreeMap<&'a str, Available<'a>> {
    let mut modules = available(installed, packaged);
    modules.extend(
        planned
            .iter()
            .map(|m| (m.rawname.as_str(), Available::Planned(m))),
    );
    modules
}

/// Those of `candidates` that can be installed together, as one install of them all
/// resolves them: a candidate whose requirements fail even with every other planned
/// drops out, and the check repeats until none does.
pub(crate) fn satisfiable<'a>(
    mut candidates: Vec<&'a Manifest>,
    installed: &'a [ModuleRecord],
    platform: &Platform,
) -> Vec<&'a Manifest> {
    loop {
        let before = candidates.len();
        let none = BTreeMap::new();
        let modules = with_planned(installed, &none, &candidates);
        let kept: Vec<&Manifest> = candidates
            .iter()
            .copied()
            .filter(|m| check(m, &modules, platform).satisfied)
            .collect();
        candidates = kept;
        if candidates.len() == before {
            return candidates;
        }
    }
}

/// Checks `manifest` against `modules` (installed or planned, by rawname) and `platform`.
pub(crate) fn check(
    manifest: &Manifest,
    modules: &BTreeMap<&str, Available<'_>>,
    platform: &Platform,
) -> DependencyReport {
    let mut checks = Vec::new();
    let depends = &manifest.depends;
    for requirement in &depends.version {
        checks.push(versioned(
            "version",
            requirement,
            platform.version.as_ref(),
            "the host application's version",
        ));
    }
    for dependency in depends.modules.iter().chain(&manifest.requirements.modules) {
        checks.push(match platform_module(dependency, modules) {
            Some(requirement) => Check {
                constraint: dependency.to_string(),
                ..versioned(
                    "module",
                    &requirement,
                    platform.version.as_ref(),
                    "the host application's version (FreePBX's framework)",
                )
            },
            None => module(dependency, modules),
        });
    }
    if !depends.engines.is_empty() {
        checks.push(engines(&depends.engines, platform));
    }
    for requirement in &depends.php.version {
        let declared = platform.php.as_ref().and_then(|php| php.version.as_ref());
        checks.push(versioned(
            "phpversion",
            requirement,
            declared,
            "the PHP version",
        ));
    }
    for alternatives in &depends.php.components {
        checks.push(php_component(alternatives, platform));
    }
    for file in depends.files.iter().chain(&manifest.requirements.files) {
        let exists = Path::new(file).exists();
        checks.push(Check {
            kind: "file",
            constraint: file.clone(),
            outcome: if exists { Outcome::Ok } else { Outcome::Failed },
            detail: if exists {
                "exists".into()
            } else {
                "does not exist".into()
            },
            mend: None,
        });
    }
    if let Some(supported) = &manifest.supported {
        let requirement = Requirement {
            op: Op::Ge,
            version: supported.version.clone(),
        };
        checks.push(versioned(
            "supported",
            &requirement,
            platform.version.as_ref(),
            "the host application's version",
        ));
    }
    DependencyReport {
        rawname: manifest.rawname.clone(),
        version: manifest.version.to_string(),
        satisfied: checks.iter().all(|c| c.outcome != Outcome::Failed),
        checks,
    }
}

/// FreePBX's `framework`: the host application itself, which every FreePBX system has
/// and no modhost root installs as a module. A dependency on it (over a thousand real
/// module.xml files have `<module>framework ge 13.0.1</module>`) is on the host
/// application's version, `[platform] version`, unless a module of that name is there.
pub(crate) const FRAMEWORK: &str = "framework";

/// The requirement `dependency` puts on the host application, when it names
/// [`FRAMEWORK`] and no module of that name is installed or planned.
fn platform_module(
    dependency: &NamedRequirement,
    modules: &BTreeMap<&str, Available<'_>>,
) -> Option<Requirement> {
    // A framework package in the package directory (FreePBX mirrors carry one) is PHP
    // for FreePBX, not a module this host would install: only one installed or planned
    // stands for the application.
    let absent = matches!(modules.get(FRAMEWORK), None | Some(Available::Packaged(_)));
    if dependency.name != FRAMEWORK || !absent {
        return None;
    }
    Some(dependency.requirement.clone().unwrap_or(Requirement {
        op: Op::Ge,
        version: Version::parse("0").ok()?,
    }))
}

/// A `[op] version` constraint on a platform fact that may be undeclared.
fn versioned(
    kind: &'static str,
    requirement: &Requirement,
    declared: Option<&Version>,
    fact: &str,
) -> Check {
    let (outcome, detail) = match declared {
        None => (Outcome::Unchecked, format!("{fact} is not declared")),
        Some(version) if requirement.matches(version) => {
            (Outcome::Ok, format!("{fact} is {version}"))
        }
        Some(version) => (
            Outcome::Failed,
            format!("{fact} is {version} ({})", direction(requirement)),
        ),
    };
    Check {
        kind,
        constraint: requirement.to_string(),
        outcome,
        detail,
        mend: None,
    }
}

/// Why a version failed its requirement, in words.
fn direction(requirement: &Requirement) -> &'static str {
    match requirement.op {
        Op::Ge | Op::Gt => "too old",
        Op::Le | Op::Lt => "too new",
        Op::Eq => "not the required version",
        Op::Ne => "the excluded version",
    }
}

fn module(dependency: &NamedRequirement, modules: &BTreeMap<&str, Available<'_>>) -> Check {
    // The step that meets it, should it fail for the module's absence or state.
    let mut mend = None;
    let found = match modules.get(dependency.name.as_str()) {
        None => {
            mend = Some(Mend::Install);
            Err("not installed".to_owned())
        }
        Some(Available::Planned(manifest)) => Ok((manifest.version.clone(), "to be installed")),
        Some(Available::Packaged(Packaged::Version(version))) => {
            mend = Some(Mend::Install);
            Err(match &dependency.requirement {
                Some(requirement) if !requirement.matches(version) => format!(
                    "not installed, and the package directory's {version} is {}",
                    direction(requirement)
                ),
                _ => format!(
                    "not installed ({version} is in the package directory: install it first, or with this module)"
                ),
            })
        }
        Some(Available::Packaged(Packaged::Unreadable(why))) => {
            mend = Some(Mend::Install);
            Err(format!("not installed, and {why}"))
        }
        Some(Available::Packaged(Packaged::Nothing)) => {
            mend = Some(Mend::Install);
            Err("not present at all: neither installed nor in the package directory".to_owned())
        }
        Some(Available::Installed(record)) => match record.status {
            // Whatever runs meets it at its installed version: one a scan marked
            // needs-upgrade too, as the dispatcher runs it. (FreePBX's own status of that
            // name means disabled until upgraded; modhost's does not.)
            status if status.runs() => Version::parse(&record.version)
                .map(|v| (v, "installed"))
                .map_err(|e| format!("its installed version is unreadable: {e}")),
            Status::Broken => Err(format!(
                "installed {} but broken ({})",
                record.version,
                record.reason.as_deref().unwrap_or("no reason recorded")
            )),
            status => {
                mend = (status == Status::Disabled).then_some(Mend::Enable);
                Err(format!("installed {} but {status}", record.version))
            }
        },
    };
    let (outcome, detail) = match found {
        Err(detail) => (Outcome::Failed, detail),
        Ok((version, how)) => match &dependency.requirement {
            Some(requirement) if !requirement.matches(&version) => (
                Outcome::Failed,
                format!("{how} {version} is {}", direction(requirement)),
            ),
            _ => (Outcome::Ok, format!("{how} {version}")),
        },
    };
    Check {
        kind: "module",
        constraint: dependency.to_string(),
        outcome,
        detail,
        mend: mend.filter(|_| outcome == Outcome::Failed),
    }
}

/// `<engine>` entries are alternatives: one match suffices.
fn engines(engines: &[NamedRequirement], platform: &Platform) -> Check {
    let constraint = engines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let (outcome, detail) = match &platform.engine {
        None => (Outcome::Unchecked, "the engine is not declared".to_owned()),
        Some(engine) => {
            let matches = engines.iter().any(|e| {
                e.name.eq_ignore_ascii_case(&engine.name)
                    && e.requirement
                        .as_ref()
                        .is_none_or(|r| r.matches(&engine.version))
            });
            let detail = format!("the engine is {} {}", engine.name, engine.version);
            (
                if matches {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                },
                detail,
            )
        }
    };
    Check {
        kind: "engine",
        constraint,
        outcome,
        detail,
        mend: None,
    }
}

/// `<phpcomponent>a||b</phpcomponent>`: one of the alternatives must be declared present.
fn php_component(alternatives: &[NamedRequirement], platform: &Platform) -> Check {
    let constraint = alternatives
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" || ");
    let (outcome, detail) = match &platform.php {
        None => (Outcome::Unchecked, "PHP facts are not declared".to_owned()),
        Some(php) => {
            // PHP's extension names are case-insensitive (`extension_loaded('PDO')`).
            let present = alternatives.iter().find(|alternative| {
                php.components
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&alternative.name))
                    .is_some_and(|(_, version)| match &alternative.requirement {
                        None => true,
                        Some(requirement) => {
                            Version::parse(version).is_ok_and(|v| requirement.matches(&v))
                        }
                    })
            });
            // Declared, but at a version none of the alternatives takes: say which.
            let mismatched = || {
                alternatives.iter().find_map(|alternative| {
                    let (name, version) = php
                        .components
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(&alternative.name))?;
                    let requirement = alternative.requirement.as_ref()?;
                    Some(match Version::parse(version) {
                        Ok(_) => format!(
                            "{name} {version} is declared, which is {}",
                            direction(requirement)
                        ),
                        Err(_) if version.is_empty() => format!(
                            "{name} is declared without a version, so `{alternative}` cannot \
                             be checked against it"
                        ),
                        Err(_) => format!(
                            "{name} is declared as `{version}`, which is no version to check \
                             `{alternative}` against"
                        ),
                    })
                })
            };
            match present {
                Some(found) => (Outcome::Ok, format!("{} is present", found.name)),
                None => (
                    Outcome::Failed,
                    mismatched().unwrap_or_else(|| "no matching component is declared".to_owned()),
                ),
            }
        }
    };
    Check {
        kind: "phpcomponent",
        constraint,
        outcome,
        detail,
        mend: None,
    }
}

#[cfg(test)]
mod tests;
