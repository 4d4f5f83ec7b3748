//! Installing and upgrading from the update channels: what to take from which channel,
//! downloaded and verified, then applied as one change.

use std::collections::{BTreeMap, BTreeSet};

use modhost_manifest::Version;
use modhost_update::{Release, Source};

use super::download::{download_dir, fetch_package};
use super::offers::{accepted, find_release, offers, remember};
use super::{Checked, OfferStatus, announces, client, updated_from};
use crate::host::Host;
use crate::plan::{self, Mode};
use crate::{Change, Error, Event, Options, Result};

/// `error`'s reasons, each after `context`: a refusal's reasons one by one, without its
/// "nothing was changed" heading, which the caller's own refusal says.
pub(super) fn reasons_in(context: &str, error: Error) -> Vec<String> {
    match error {
        Error::Refused(reasons) | Error::Unmet { reasons, .. } => reasons
            .into_iter()
            .map(|reason| format!("{context}: {reason}"))
            .collect(),
        other => vec![format!("{context}: {other}")],
    }
}

/// See [`Host::install_online`].
pub(crate) fn install_online(
    host: &Host,
    names: &[String],
    options: Options,
) -> Result<Vec<Change>> {
    // Asked once: every name, and every dependency found later, is looked up in it.
    let mut offers = offers(host)?;
    let mut picked = Vec::new();
    let mut left = Vec::new();
    for name in names {
        let (source, release) = find_release(host, &offers, name, true)?;
        warn_newer_aside(host, &offers, &release.rawname, &release.version);
        // What is installed already is left as it is before anything is downloaded.
        if let Some(record) = host.state.module(&release.rawname)?
            && plan::left_as_is(&record, options.reinstall)
            && Version::parse(&record.version)
                .is_ok_and(|current| announces(source.kind, &release.version, &current))
        {
            let mut change = crate::ops::unchanged(&record.rawname, &record.version, None);
            // Left as it is, it still takes the grants asked for with it, as an install
            // from a file does.
            if options.grant {
                change.requests = host.grant(&record.rawname)?;
            }
            left.push(change);
            host.report(Event::Unchanged {
                rawname: record.rawname,
                version: record.version,
                differs: None,
            });
            continue;
        }
        picked.push((source, release));
    }
    if picked.is_empty() {
        remember(host, &accepted(&mut offers))?;
        return Ok(left);
    }
    let (mut changes, _) =
        apply_online(host, picked, Mode::Install, options, Some(&offers), false)?;
    remember(host, &accepted(&mut offers))?;
    changes.extend(left);
    Ok(changes)
}

/// Warns of each version of `rawname` newer than `version` that a channel set aside: an
/// install taking an older one says why it did not take the newest, as `check-online`
/// lists it.
fn warn_newer_aside(host: &Host, offers: &[Checked], rawname: &str, version: &str) {
    let Ok(picked) = Version::parse(version) else {
        return;
    };
    for checked in offers {
        for aside in &checked.report.set_aside {
            if aside.rawname == rawname
                && Version::parse(&aside.version).is_ok_and(|offered| offered > picked)
            {
                host.report(Event::Warning {
                    rawname: rawname.to_owned(),
                    message: format!(
                        "source `{}` offers `{rawname}` {}, set aside: {}; the newest that can \
                         be installed is {version}",
                        checked.report.source, aside.version, aside.reason
                    ),
                });
            }
        }
    }
}

/// See [`Host::upgrade_online`].
pub(crate) fn upgrade_online(
    host: &Host,
    names: &[String],
    options: Options,
) -> Result<Vec<Change>> {
    let mut best: BTreeMap<String, (Version, Source, Release)> = BTreeMap::new();
    let mut reasons = Vec::new();
    let mut downgrades: BTreeMap<String, String> = BTreeMap::new();
    // Newer versions this host cannot take: a named module's refusal says so.
    let mut not_applicable: BTreeMap<String, String> = BTreeMap::new();
    // Newer versions no checksum vouches for: an upgrade that cannot be made, which even
    // `upgradeall` reports as failed, as it would a package that failed to verify.
    let mut unverifiable: BTreeMap<String, String> = BTreeMap::new();
    let mut current = Vec::new();
    // Offers for a module from a source it is not updated from: named in a refusal.
    let mut elsewhere: BTreeMap<String, (String, String)> = BTreeMap::new();
    // Releases newer than installed that a module's own channels set aside, with why:
    // what leaves it as it is must not read as nothing newer being published.
    let mut newer_aside: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let named = !names.is_empty();
    // Said before any channel is asked, as an upgrade from a file says it.
    let missing: Vec<String> = names
        .iter()
        .filter(|name| host.state.module(name).is_ok_and(|r| r.is_none()))
        .map(|name| format!("`{name}` is not installed; install it instead of upgrading"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Refused(missing));
    }
    let targets: Vec<String> = if named {
        names.to_vec()
    } else {
        host.state
            .modules()?
            .into_iter()
            .map(|r| r.rawname)
            .collect()
    };
    // Per module: the errors of its channels, and whether any of them answered.
    let mut failed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut answered: BTreeSet<&str> = BTreeSet::new();
    let mut unchecked = BTreeSet::new();
    // The source each target was installed from, read once, not once per channel.
    let mut bound = Vec::with_capacity(targets.len());
    for name in &targets {
        bound.push((name.as_str(), host.state.module_source(name)?));
    }
    let mut checked = offers(host)?;
    // Nothing to ask at all: said, as `check-online` says it, rather than "nothing to do".
    if checked.is_empty() {
        return Err(Error::Refused(vec![
            "no update sources are configured (and no installed module declares a channel), \
             so nothing can be upgraded online; add a source first"
                .to_owned(),
        ]));
    }
    // Kept only once the upgrade has done what it could: a refused one changes nothing.
    let accepted = accepted(&mut checked);
    for checked in checked {
        let report = checked.report;
        let declared_by = checked.declared_by.as_deref();
        let owners: Vec<&str> = bound
            .iter()
            .filter(|(name, source)| {
                updated_from(name, source.as_deref(), &report.source, declared_by)
            })
            .map(|(name, _)| *name)
            .collect();
        if let Some(error) = report.error {
            // A report's error never names its channel: the report does.
            let error = format!("source `{}`: {error}", report.source);
            if owners.is_empty() {
                tracing::warn!("{error} (skipped: no module to upgrade is updated from it)");
            }
            for owner in owners {
                failed.entry(owner).or_default().push(error.clone());
            }
            continue;
        }
        for aside in &report.set_aside {
            if !owners.contains(&aside.rawname.as_str())
                || (named && !names.contains(&aside.rawname))
            {
                continue;
            }
            let installed = host.state.module(&aside.rawname)?.map(|r| r.version);
            let newer = match (Version::parse(&aside.version), installed.as_deref()) {
                (Ok(offered), Some(installed)) => {
                    Version::parse(installed).is_ok_and(|installed| offered > installed)
                }
                _ => false,
            };
            if newer {
                newer_aside
                    .entry(aside.rawname.clone())
                    .or_default()
                    .push(format!(
                        "source `{}` offers `{}` {}, set aside: {}",
                        report.source, aside.rawname, aside.version, aside.reason
                    ));
            }
        }
        answered.extend(owners);
        for (offer, (source, release)) in report.offers.into_iter().zip(checked.releases) {
            if named && !names.contains(&offer.rawname) {
                continue;
            }
            // Another channel's offer is never installed over a module: a newer one is
            // named in a refusal, the rest says nothing about upgrading it.
            if !offer.own {
                if offer.is_newer() {
                    elsewhere
                        .entry(offer.rawname)
                        .or_insert((report.source.clone(), offer.version));
                }
                continue;
            }
            match offer.status {
                OfferStatus::Upgrade => {
                    let Ok(version) = Version::parse(&offer.version) else {
                        continue;
                    };
                    if best
                        .get(&offer.rawname)
                        .is_none_or(|(known, _, _)| version > *known)
                    {
                        best.insert(offer.rawname, (version, source, release));
                    }
                }
                OfferStatus::Downgrade => {
                    downgrades.insert(
                        offer.rawname.clone(),
                        format!(
                            "`{}` {} is installed; source `{}` offers {}: a downgrade is never installed",
                            offer.rawname,
                            offer.installed.unwrap_or_default(),
                            report.source,
                            offer.version
                        ),
                    );
                }
                OfferStatus::Current => current.push(offer.rawname),
                OfferStatus::Unverifiable => {
                    if let Some(warning) = offer.warnings.into_iter().next() {
                        unverifiable
                            .entry(offer.rawname)
                            .or_insert(format!("source `{}`: {warning}", report.source));
                    }
                }
                OfferStatus::NotApplicable => {
                    if let Some(warning) = offer.warnings.into_iter().next() {
                        not_applicable
                            .entry(offer.rawname)
                            .or_insert(format!("source `{}`: {warning}", report.source));
                    }
                }
                _ => {}
            }
        }
    }
    for name in &targets {
        let errors = failed.remove(name.as_str()).unwrap_or_default();
        let aside = newer_aside.remove(name).unwrap_or_default();
        if best.contains_key(name) || !named {
            for aside in &aside {
                tracing::warn!("{aside}");
            }
        }
        if best.contains_key(name) {
            for error in errors {
                tracing::warn!("`{name}`: {error}; upgrading from the channels that answered");
            }
            continue;
        }
        if !answered.contains(name.as_str()) && !errors.is_empty() {
            if named {
                reasons.extend(errors);
            } else {
                unchecked.extend(errors);
            }
            continue;
        }
        if let Some(reason) = unverifiable.remove(name) {
            if named {
                reasons.push(reason);
            } else {
                unchecked.insert(reason);
            }
            continue;
        }
        // A newer release only another source offers is not taken, and not kept quiet
        // either: the upgrade would otherwise say "nothing to do" beside it.
        let warn_elsewhere = || {
            if let Some((source, version)) =
                elsewhere.get(name).filter(|_| !best.contains_key(name))
            {
                let from = bound
                    .iter()
                    .find(|(bound, _)| bound == name)
                    .and_then(|(_, from)| from.as_deref())
                    .map_or_else(
                        || "no source (it was installed from a file)".to_owned(),
                        |from| format!("source `{from}`"),
                    );
                tracing::warn!(
                    "source `{source}` offers `{name}` {version}, which is updated from {from}: \
                     left as it is, as a module never silently changes source; attaching it to \
                     `{source}` takes the release"
                );
            }
        };
        if !named {
            warn_elsewhere();
            continue;
        }
        if let Some(reason) = not_applicable.remove(name) {
            reasons.push(reason);
            continue;
        }
        // Up to date with what could be installed: a newer release set aside (for another
        // platform, say) is said, and nothing is refused.
        if current.contains(name) && errors.is_empty() && !downgrades.contains_key(name) {
            for aside in &aside {
                tracing::warn!("{aside}");
            }
            warn_elsewhere();
            continue;
        }
        // Else a newer release set aside is why it is not upgraded, whatever older one the
        // channel offers beside it.
        if !aside.is_empty() {
            reasons.extend(aside);
            continue;
        }
        match downgrades.remove(name) {
            Some(downgrade) => reasons.push(downgrade),
            None if current.contains(name) && errors.is_empty() => {}
            None => reasons.push(format!(
                "no upgrade of `{name}` is offered by the channels it is updated from{}{}",
                errors.iter().map(|e| format!("; {e}")).collect::<String>(),
                match elsewhere.get(name) {
                    Some((source, version)) => format!(
                        "; source `{source}` offers {version}, but a module is never \
                         replaced by one from another source"
                    ),
                    None => String::new(),
                }
            )),
        }
    }
    for downgrade in downgrades.values().filter(|_| names.is_empty()) {
        tracing::warn!("{downgrade}");
    }
    if !reasons.is_empty() {
        return Err(Error::Refused(reasons));
    }
    let picked: Vec<_> = best.into_values().map(|(_, s, r)| (s, r)).collect();
    // Named modules are upgraded all together or not at all, as the administrator
    // asked for them together. `upgradeall` upgrades what it can: one server's bad
    // package, like one server being down, must not hold back every other module.
    let changes = if picked.is_empty() {
        Vec::new()
    } else {
        let (changes, failures) = apply_online(host, picked, Mode::Upgrade, options, None, !named)?;
        unchecked.extend(failures);
        changes
    };
    if unchecked.is_empty() || !changes.is_empty() {
        remember(host, &accepted)?;
    }
    if unchecked.is_empty() {
        Ok(changes)
    } else {
        Err(Error::Unchecked {
            done: changes,
            failures: unchecked.into_iter().collect(),
        })
    }
}

/// Downloads and verifies `picked`, then applies them as one change. With `offers`,
/// a module they need that nobody installed comes along from the first channel there
/// offering it; one no channel offers is left to the plan, which names it.
///
/// A package that fails to download or verify fails the whole change, unless
/// `partial`: then it is left out, the others are applied, and each one left out is
/// returned with why.
pub(crate) fn apply_online(
    host: &Host,
    picked: Vec<(Source, Release)>,
    mode: Mode,
    options: Options,
    offers: Option<&[Checked]>,
    partial: bool,
) -> Result<(Vec<Change>, Vec<String>)> {
    // Downloaded before the root's lock is taken, so that a slow server never keeps
    // other changes of the root waiting, and outside staging/, which taking the lock
    // sweeps.
    let downloads = download_dir(&host.layout.root)?;
    let admin: Vec<String> = host.state.sources()?.into_iter().map(|s| s.name).collect();
    let client = client(host)?;
    let installed: BTreeSet<String> = host
        .state
        .modules()?
        .into_iter()
        .map(|r| r.rawname)
        .collect();
    let mut packages = Vec::new();
    // What is applied, as an error names it: `core` 16.0.40 (source `main`).
    let mut applied = Vec::new();
    let mut origin = BTreeMap::new();
    let mut fetched = BTreeSet::new();
    let mut failures = Vec::new();
    let mut weak = BTreeMap::new();
    let mut pending = picked;
    while let Some((source, release)) = pending.pop() {
        if !fetched.insert(release.rawname.clone()) {
            continue;
        }
        host.check_interrupted()?;
        let package = match fetch_package(host, &client, &source, &release, downloads.path()) {
            Ok(package) => package,
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            // Which module, from which source: the download's own error names a URL.
            Err(error) if partial => {
                let context = format!(
                    "source `{}`: `{}` {} was left out",
                    source.name, release.rawname, release.version
                );
                failures.extend(reasons_in(&context, error));
                continue;
            }
            Err(error) => {
                let context = format!(
                    "source `{}`: `{}` {}",
                    source.name, release.rawname, release.version
                );
                return Err(Error::Refused(reasons_in(&context, error)));
            }
        };
        if let Some(warning) = release.weak_checksum_warning() {
            weak.insert(release.rawname.clone(), warning);
        }
        if admin.contains(&source.name) {
            origin.insert(release.rawname.clone(), source.name.clone());
        }
        if let Some(offers) = offers {
            let manifest = crate::packages::read_manifest(&package)?;
            for dependency in plan::required_modules(&manifest) {
                let name = dependency.name.as_str();
                let known = installed.contains(name)
                    || fetched.contains(name)
                    || pending.iter().any(|(_, r)| r.rawname == name);
                if known {
                    continue;
                }
                match find_release(host, offers, name, true) {
                    Ok((source, release)) => {
                        host.report(Event::Requires {
                            rawname: manifest.rawname.clone(),
                            dependency: name.to_owned(),
                            source: source.name.clone(),
                        });
                        pending.push((source, release));
                    }
                    // A dependency waits for the sources ahead as a module asked for does.
                    Err(waits @ Error::SourcesAhead { .. }) => return Err(waits),
                    // Nobody offers it: the plan says what is missing.
                    Err(_) => {}
                }
            }
        }
        applied.push(format!(
            "`{}` {} (source `{}`)",
            release.rawname, release.version, source.name
        ));
        packages.push(package);
    }
    if packages.is_empty() {
        return Ok((Vec::new(), failures));
    }
    let lock = host.lock()?;
    match crate::ops::apply_locked(host, &lock, &packages, mode, options, &origin, None) {
        Ok(mut changes) => {
            for change in &mut changes {
                change.warnings.extend(weak.remove(&change.rawname));
            }
            Ok((changes, failures))
        }
        // What was left out may be why the rest cannot be applied (a dependency's
        // upgrade): the refusal names it too.
        Err(Error::Refused(mut reasons)) if !failures.is_empty() => {
            reasons.extend(failures);
            Err(Error::Refused(reasons))
        }
        Err(Error::Unmet { mut reasons, .. }) if !failures.is_empty() => {
            reasons.extend(failures);
            Err(Error::Refused(reasons))
        }
        Err(error @ (Error::Refused(_) | Error::Unmet { .. })) => Err(error),
        // The error names a module: which version, from which source, is said first.
        Err(error) => Err(Error::Online {
            applying: applied.join(", "),
            source: Box::new(error),
        }),
    }
}
