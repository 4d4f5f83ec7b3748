//! What the channels offer: each asked in parallel, its newest release of each module
//! compared with what is installed and with the host's platform.

use std::collections::BTreeMap;

use modhost_manifest::Version;
use modhost_state::SeenRecord;
use modhost_update::{Answer, Kind, Release, Seen, SetAside, Source};

use super::sources::channels;
use super::{
    Channel, Checked, Offer, OfferStatus, PARALLEL_CHECKS, SourceReport, announces, client, target,
};
use crate::event::Event;
use crate::host::Host;
use crate::lock::{Holder, RootLock};
use crate::ops::Transaction;
use crate::{Error, Result};

/// See [`Host::check_online`].
pub(crate) fn check_online(host: &Host) -> Result<Vec<SourceReport>> {
    let mut checked = offers(host)?;
    remember(host, &accepted(&mut checked))?;
    Ok(checked.into_iter().map(|checked| checked.report).collect())
}

/// See [`Host::check_upgrades`].
pub(crate) fn check_upgrades(host: &Host) -> Result<Vec<SourceReport>> {
    let mut reports = check_online(host)?;
    for report in &mut reports {
        report.offers.retain(Offer::concerns_upgrades);
    }
    Ok(reports)
}

/// What the channels of `checked` answered that is to be kept, once what they were
/// asked for has succeeded: taken out of them.
pub(crate) fn accepted(checked: &mut [Checked]) -> Vec<Accepted> {
    checked
        .iter_mut()
        .filter_map(|c| c.accepted.take())
        .collect()
}

/// Each channel's report with the releases behind its offers. Nothing is kept of what
/// they answered: that is [`remember`]ed once what they were asked for has succeeded, so
/// that a refused change leaves the root as it was.
pub(crate) fn offers(host: &Host) -> Result<Vec<Checked>> {
    let client = client(host)?;
    let target = target(host);
    let channels = channels(host)?;
    // Channels are asked in parallel, so a slow server costs one timeout, not one per
    // channel behind it.
    let mut answers = Vec::with_capacity(channels.len());
    for batch in channels.chunks(PARALLEL_CHECKS) {
        std::thread::scope(|scope| {
            let asked: Vec<_> = batch
                .iter()
                .map(|channel| {
                    // The report names the channel: its error need not again.
                    scope.spawn(|| match &channel.source {
                        Ok(source) => client
                            .check(source, channel.declared_by.as_deref(), &target)
                            .map_err(|e| e.reason()),
                        Err(error) => Err(error.clone()),
                    })
                })
                .collect();
            for handle in asked {
                answers.push(
                    handle
                        .join()
                        .unwrap_or_else(|_| Err("checking the source panicked".into())),
                );
            }
        });
    }
    // Each installed module and the source it is updated from, read once for every
    // channel's report of the modules it should offer and does not.
    let mut updated_from = Vec::new();
    for record in host.state.modules()? {
        let from = host.state.module_source(&record.rawname)?;
        updated_from.push((record.rawname, from));
    }
    let mut reports = Vec::new();
    for (channel, answer) in channels.into_iter().zip(answers) {
        let only = channel
            .declared_by
            .clone()
            .or_else(|| channel.offered.clone());
        let failed = |error: String| Checked {
            report: SourceReport {
                source: channel.name.clone(),
                error: Some(error),
                trust: None,
                offers: Vec::new(),
                set_aside: Vec::new(),
                not_offered: Vec::new(),
            },
            declared_by: channel.declared_by.clone(),
            releases: Vec::new(),
            accepted: None,
            only: only.clone(),
        };
        let (source, answer) = match (&channel.source, answer) {
            (Ok(source), Ok(answer)) => (source, answer),
            (_, Err(error)) => {
                reports.push(failed(error));
                continue;
            }
            (Err(error), _) => {
                reports.push(failed(error.clone()));
                continue;
            }
        };
        // An administrator's source of one module's document offers that module for as
        // long as it has its URL: another module's document in its place (signed by the
        // same publisher, with a signature naming only its file, as the minisign tool's
        // does) would otherwise stop the first module's updates without a word.
        let single = channel.declared_by.is_none() && channel.kind.is_some_and(Kind::one_module);
        let offering = answer
            .releases
            .iter()
            .map(|r| r.rawname.clone())
            .chain(answer.set_aside.iter().map(|a| a.rawname.clone()))
            .next()
            .filter(|_| single);
        if let (Some(was), Some(now)) = (&channel.offered, &offering)
            && was != now
        {
            reports.push(failed(format!(
                "it offered `{was}` when first accepted from this location and now offers \
                 `{now}`: another module's document served in its place, or the source \
                 changed what it is for; nothing of it is taken (if `{now}` is meant, \
                 remove the source and add it again)"
            )));
            continue;
        }
        let first = offering.filter(|_| channel.offered.is_none());
        let accepted = Accepted::of(&channel, &answer, first);
        let Answer {
            releases,
            trust,
            set_aside,
            ..
        } = answer;
        // Each module's releases, newest first: the newest that could be installed is
        // offered, and every newer one that could not is set aside with why, so a
        // release without a checksum never hides a verifiable one below it.
        let mut by_module: BTreeMap<String, Vec<(Version, Release)>> = BTreeMap::new();
        for release in releases {
            let Ok(version) = Version::parse(&release.version) else {
                continue;
            };
            by_module
                .entry(release.rawname.clone())
                .or_default()
                .push((version, release));
        }
        let mut set_aside = set_aside;
        let mut offers = Vec::new();
        let mut releases = Vec::new();
        for (rawname, mut candidates) in by_module {
            candidates.sort_by(|a, b| b.0.cmp(&a.0));
            let installed = host.state.module(&rawname)?;
            let from = host.state.module_source(&rawname)?;
            let own = super::updated_from(
                &rawname,
                from.as_deref(),
                &channel.name,
                channel.declared_by.as_deref(),
            );
            let mut judged: Vec<(Offer, Release)> = candidates
                .into_iter()
                .map(|(offered, release)| {
                    let offer = judge(host, source, &release, offered, installed.as_ref(), own);
                    (offer, release)
                })
                .collect();
            let usable = judged
                .iter()
                .position(|(offer, _)| {
                    !matches!(
                        offer.status,
                        OfferStatus::Unverifiable | OfferStatus::NotApplicable
                    )
                })
                .unwrap_or(0);
            for (skipped, _) in judged.drain(..usable) {
                // The warning names the module and version, which a set-aside entry has.
                let named = format!("`{}` {}: ", skipped.rawname, skipped.version);
                let reason = skipped.warnings.into_iter().next().unwrap_or_default();
                set_aside.push(SetAside {
                    reason: reason.strip_prefix(&named).unwrap_or(&reason).to_owned(),
                    rawname: skipped.rawname,
                    version: skipped.version,
                });
            }
            if let Some((offer, release)) = judged.into_iter().next() {
                offers.push(offer);
                releases.push((source.clone(), release));
            }
        }
        let named = |rawname: &str| {
            offers.iter().any(|o| o.rawname == rawname)
                || set_aside.iter().any(|a| a.rawname == rawname)
        };
        let not_offered = updated_from
            .iter()
            .filter(|(rawname, from)| {
                super::updated_from(
                    rawname,
                    from.as_deref(),
                    &channel.name,
                    channel.declared_by.as_deref(),
                )
            })
            .filter(|(rawname, _)| !named(rawname))
            .map(|(rawname, _)| rawname.clone())
            .collect();
        reports.push(Checked {
            report: SourceReport {
                source: channel.name.clone(),
                error: None,
                trust: Some(trust),
                offers,
                set_aside,
                not_offered,
            },
            declared_by: channel.declared_by.clone(),
            releases,
            accepted,
            only,
        });
    }
    Ok(reports)
}

/// How one release of a channel relates to this host: what is installed, whether it is
/// the module's own channel, whether it could be verified and suits this host.
fn judge(
    host: &Host,
    source: &Source,
    release: &Release,
    offered: Version,
    installed: Option<&modhost_state::ModuleRecord>,
    own: bool,
) -> Offer {
    let mut warnings = Vec::new();
    // Related to the installed version whichever channel offers it; only a newer version
    // from a channel the module is not updated from is told apart, as another source's.
    let mut status = match installed {
        None => OfferStatus::Available,
        Some(record) => match Version::parse(&record.version) {
            Ok(current) if announces(source.kind, &release.version, &current) => {
                OfferStatus::Current
            }
            Ok(current) if offered > current && own => OfferStatus::Upgrade,
            Ok(current) if offered > current => OfferStatus::OtherSource,
            _ => OfferStatus::Downgrade,
        },
    };
    // Only what would be installed is held back, or would be once the module is attached
    // to this source: the rest is not offered anyway.
    let attaching = status == OfferStatus::OtherSource;
    let mut attachable = attaching;
    if attaching || matches!(status, OfferStatus::Available | OfferStatus::Upgrade) {
        let held = if release.digests.is_empty() {
            Some((
                OfferStatus::Unverifiable,
                format!(
                    "`{}` {}: the channel gives no checksum for its package, so it \
                     cannot be verified and is never downloaded ({})",
                    release.rawname,
                    release.version,
                    checksum_fields(source.kind)
                ),
            ))
        } else {
            unsupported(host, release)
                .or_else(|| oversized(release))
                .map(|why| (OfferStatus::NotApplicable, why))
        };
        if let Some((held, why)) = held {
            // Attaching the module to this source would not help.
            attachable = false;
            status = held;
            warnings.push(why);
        }
        // Said of what would be downloaded only: an installed version's weak checksum
        // promises nothing more now.
        warnings.extend(
            release
                .weak_checksum_warning()
                .map(|w| format!("`{}` {}: {w}", release.rawname, release.version)),
        );
    }
    Offer {
        rawname: release.rawname.clone(),
        version: release.version.clone(),
        installed: installed.map(|r| r.version.clone()),
        status,
        gated: release.gated,
        key_given: source.key_for(&release.location).is_some(),
        own: installed.is_none() || own,
        attachable,
        warnings,
    }
}

/// Why `release` is never downloaded for its published size, if it is larger than a
/// package may be ([`modhost_update::MAX_PACKAGE`]).
fn oversized(release: &Release) -> Option<String> {
    let size = release
        .size
        .filter(|&size| size > modhost_update::MAX_PACKAGE)?;
    Some(format!(
        "`{}` {}: its package is published as {size} bytes, more than the {} a package may \
         be, so it is never downloaded",
        release.rawname,
        release.version,
        modhost_update::MAX_PACKAGE
    ))
}

/// What a channel's accepted answer changes in what is kept of it: what was accepted
/// (for the next check to refuse an older copy), and for an administrator's source, the
/// keys it pins when its release announced a next key or was signed by one.
pub(crate) struct Accepted {
    name: String,
    url: String,
    /// The keys the channel pinned when it was checked: an administrator who re-pinned
    /// or removed the source since has the last word.
    pinned: Vec<modhost_state::PinnedKey>,
    seen: Option<Seen>,
    /// The key that signed and the next key it announces, if any: the source's keys
    /// follow them ([`modhost_state::Txn::follow_keys`]).
    keys: Option<(String, Option<String>)>,
    /// The module a source of one module's document offers, first seen now.
    module: Option<String>,
}

impl Accepted {
    /// What `answer` changes of `channel`, if anything; `module` is the module it offers
    /// when that is to be recorded.
    fn of(channel: &Channel, answer: &Answer, module: Option<String>) -> Option<Accepted> {
        // Only an administrator's source follows its publisher's keys: a module's own
        // channel keeps the key its module.xml pins.
        let signer = answer
            .signed_by
            .as_ref()
            .map(|k| k.encode())
            .filter(|_| channel.declared_by.is_none());
        let next = answer.next_key.as_ref().map(|k| k.encode());
        let keys = signer.and_then(|signer| {
            let pinned = channel.public_keys.iter().find(|p| p.key == signer);
            let succeeds = channel
                .public_keys
                .iter()
                .any(|p| p.successor.as_ref() == Some(&signer));
            let announced = pinned.and_then(|p| p.successor.clone());
            (succeeds || announced != next).then_some((signer, next))
        });
        let seen = (answer.seen != channel.seen).then_some(answer.seen);
        (seen.is_some() || keys.is_some() || module.is_some()).then(|| Accepted {
            name: channel.name.clone(),
            url: channel.url.clone(),
            pinned: channel.public_keys.clone(),
            seen,
            keys,
            module,
        })
    }
}

/// Keeps what the channels' accepted answers change. A check only reads the root, and
/// must not wait for a change another process is making: when the root is locked, this
/// is left for the next check, which compares against what was kept before.
pub(crate) fn remember(host: &Host, accepted: &[Accepted]) -> Result<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    let Some(lock) = RootLock::try_acquire(&host.layout.lock(), Holder::Named)? else {
        tracing::debug!("the root is locked: what the channels answered is kept next time");
        return Ok(());
    };
    let mut tx = Transaction::bookkeeping(host, &lock, "source");
    // Read once the root is locked: what the channels are now, which no change can move
    // before this one commits.
    let now = channels(host)?;
    let txn = tx.state()?;
    for change in accepted {
        let unchanged = now.iter().any(|c| {
            c.name == change.name && c.url == change.url && c.public_keys == change.pinned
        });
        if !unchanged {
            tracing::debug!(
                source = %change.name,
                "the source changed while it was checked: what it answered is not kept"
            );
            continue;
        }
        if change.seen.is_some() || change.module.is_some() {
            // What is not new is written as unknown, which keeps what is stored.
            let seen = change.seen.unwrap_or_default();
            txn.set_seen(
                &change.name,
                &SeenRecord {
                    url: change.url.clone(),
                    serial: seen.serial,
                    signed_at: seen.signed_at,
                    module: change.module.clone(),
                },
            )?;
        }
        if let Some((signer, next)) = &change.keys {
            txn.follow_keys(&change.name, signer, next.as_deref())?;
        }
    }
    tx.commit()
}

/// Why `release` does not suit this host, if it does not: it states a least supported
/// host version (FreePBX `supported.version`) above the root's `[platform] version`. As
/// at install, an undeclared host version is not held against it.
pub(crate) fn unsupported(host: &Host, release: &Release) -> Option<String> {
    let supported = Version::parse(release.supported.as_deref()?).ok()?;
    let host = host.platform.version.as_ref()?;
    (*host < supported).then(|| {
        format!(
            "`{}` {} supports the host application from {supported}; this one is {host} \
             ([platform] version): not applicable",
            release.rawname, release.version
        )
    })
}

/// The first channel in `offers` offering `rawname`, with its release. With
/// `own_only`, an installed module is taken only from its own channels: the source it
/// was installed from, or for one installed from a file, the channels its module.xml
/// declares.
pub(crate) fn find_release(
    host: &Host,
    offers: &[Checked],
    rawname: &str,
    own_only: bool,
) -> Result<(Source, Release)> {
    let mut reasons = Vec::new();
    // Of them, those of channels that may offer `rawname` (not a channel that can offer
    // only another module): what an install waits for.
    let mut ahead = Vec::new();
    let mut elsewhere = None;
    // Offers this host cannot take: named when nothing else is found.
    let mut not_applicable = Vec::new();
    for checked in offers {
        let report = &checked.report;
        if let Some(error) = &report.error {
            let reason = format!("source `{}`: {error}", report.source);
            if checked.only.as_deref().is_none_or(|only| only == rawname) {
                ahead.push(reason.clone());
            }
            reasons.push(reason);
            continue;
        }
        for (offer, found) in report.offers.iter().zip(&checked.releases) {
            if offer.rawname != rawname {
                continue;
            }
            if own_only && !offer.own {
                elsewhere.get_or_insert((report.source.clone(), offer.version.clone()));
                continue;
            }
            if matches!(
                offer.status,
                OfferStatus::NotApplicable | OfferStatus::Unverifiable
            ) {
                not_applicable.extend(
                    offer
                        .warnings
                        .first()
                        .map(|w| format!("source `{}`: {w}", report.source)),
                );
                continue;
            }
            // A source ahead of this one did not answer, or answered what did not verify:
            // it may offer the module, and a module stays with the source it is installed
            // from. Whoever can make that source fail (a hostile network, a tampered
            // mirror) must not choose where the module comes from: an install waits for
            // it. A download binds nothing, and only says so.
            if !ahead.is_empty() && host.state.module(rawname)?.is_none() {
                if own_only {
                    return Err(Error::SourcesAhead {
                        rawname: rawname.to_owned(),
                        offered_by: report.source.clone(),
                        ahead,
                    });
                }
                host.report(Event::Warning {
                    rawname: rawname.to_owned(),
                    message: format!(
                        "{}; `{rawname}` is downloaded from source `{}`, the first that \
                         answered offering it",
                        ahead.join("; "),
                        report.source
                    ),
                });
            }
            return Ok(found.clone());
        }
    }
    // What the channels offered but set aside (another platform, less stable, no
    // package modhost unpacks): why is the answer, not "nobody offers it".
    if not_applicable.is_empty() && elsewhere.is_none() {
        for checked in offers {
            let report = &checked.report;
            not_applicable.extend(
                report
                    .set_aside
                    .iter()
                    .filter(|aside| aside.rawname == rawname)
                    .map(|aside| {
                        format!(
                            "source `{}` offers `{rawname}` {}, set aside: {}",
                            report.source, aside.version, aside.reason
                        )
                    }),
            );
        }
    }
    if !not_applicable.is_empty() {
        reasons.extend(not_applicable);
        return Err(Error::Refused(reasons));
    }
    reasons.push(match elsewhere {
        Some((other, version)) => {
            let from = match host.state.module_source(rawname)? {
                Some(source) => format!("source `{source}`"),
                None => "a file, and is updated only from the channels its module.xml declares"
                    .to_owned(),
            };
            format!(
                "`{rawname}` is installed from {from}; source `{other}` offers {version}, \
                 but a module is never replaced by one from another source"
            )
        }
        // Nothing to ask at all: say so, as `check-online` does, rather than blame sources.
        None if offers.is_empty() => format!(
            "no update sources are configured (and no installed module declares a channel), \
             so nothing offers `{rawname}`; add a source first"
        ),
        // The sources that failed are listed above: what is said is of the others.
        None => match offers.iter().filter(|c| c.report.error.is_some()).count() {
            0 => format!("no source offers `{rawname}`"),
            failed if failed == offers.len() => format!(
                "no source could be read, so none was found to offer `{rawname}`: try again \
                 when the failures above are mended"
            ),
            failed => format!(
                "no source that answered offers `{rawname}`; {failed} of {} could not be \
                 read, and may",
                offers.len()
            ),
        },
    });
    Err(Error::Refused(reasons))
}

/// Where a channel of `kind` states a package's checksum, for a message about one that
/// does not.
fn checksum_fields(kind: modhost_update::Kind) -> &'static str {
    match kind {
        modhost_update::Kind::Joomla => "a Joomla <update> needs <sha256> (or <sha384>, <sha512>)",
        modhost_update::Kind::Freepbx => {
            "FreePBX JSON needs `sha256` (or the legacy `sha1sum`, `md5sum`)"
        }
        modhost_update::Kind::A2 => "an a2 index needs its `sha256`",
        modhost_update::Kind::Index => "a modhost index gives `sha256` for every package",
    }
}

#[cfg(test)]
mod tests;
