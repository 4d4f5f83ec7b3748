//! What the channels offer: each asked in parallel, its newest release of each module
//! compared with what is installed and with the host's platform.

use std::collections::BTreeMap;

use modhost_manifest::Version;
use modhost_update::{Release, Source};

use super::sources::channels;
use super::{Checked, Offer, OfferStatus, PARALLEL_CHECKS, SourceReport, client, target};
use crate::host::Host;
use crate::{Error, Result};

/// See [`Host::check_online`].
pub(crate) fn check_online(host: &Host) -> Result<Vec<SourceReport>> {
    Ok(offers(host)?
        .into_iter()
        .map(|checked| checked.report)
        .collect())
}

/// Each channel's report with the releases behind its offers.
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
                    scope.spawn(|| match &channel.source {
                        Ok(source) => client
                            .releases(source, channel.declared_by.as_deref(), &target)
                            .map_err(|e| e.to_string()),
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
    let mut reports = Vec::new();
    for (channel, answer) in channels.into_iter().zip(answers) {
        let failed = |error: String| Checked {
            report: SourceReport {
                source: channel.name.clone(),
                error: Some(error),
                offers: Vec::new(),
            },
            declared_by: channel.declared_by.clone(),
            releases: Vec::new(),
        };
        let (source, releases) = match (&channel.source, answer) {
            (Ok(source), Ok(releases)) => (source, releases),
            (_, Err(error)) => {
                reports.push(failed(error));
                continue;
            }
            (Err(error), _) => {
                reports.push(failed(error.clone()));
                continue;
            }
        };
        let mut newest: BTreeMap<String, (Version, Release)> = BTreeMap::new();
        for release in releases {
            let Ok(version) = Version::parse(&release.version) else {
                continue;
            };
            if newest
                .get(&release.rawname)
                .is_none_or(|(known, _)| version > *known)
            {
                newest.insert(release.rawname.clone(), (version, release));
            }
        }
        let mut offers = Vec::new();
        let mut releases = Vec::new();
        for (offered, release) in newest.into_values() {
            let installed = host.state.module(&release.rawname)?;
            let from = host.state.module_source(&release.rawname)?;
            let own = match &channel.declared_by {
                Some(_) => from.is_none(),
                None => from.as_deref() == Some(channel.name.as_str()),
            };
            let mut warnings = Vec::new();
            let mut status = match &installed {
                None => OfferStatus::Available,
                Some(_) if !own => OfferStatus::OtherSource,
                Some(record) => match Version::parse(&record.version) {
                    Ok(current) if offered > current => OfferStatus::Upgrade,
                    Ok(current) if offered == current => OfferStatus::Current,
                    _ => OfferStatus::Downgrade,
                },
            };
            // Only what would be installed is held back: the rest is not offered anyway.
            if matches!(status, OfferStatus::Available | OfferStatus::Upgrade)
                && let Some(why) = unsupported(host, &release)
            {
                status = OfferStatus::NotApplicable;
                warnings.push(why);
            }
            warnings.extend(
                release
                    .weak_checksum_warning()
                    .map(|w| format!("`{}` {}: {w}", release.rawname, release.version)),
            );
            offers.push(Offer {
                rawname: release.rawname.clone(),
                version: release.version.clone(),
                installed: installed.map(|r| r.version),
                status,
                gated: release.gated,
                warnings,
            });
            releases.push((source.clone(), release));
        }
        reports.push(Checked {
            report: SourceReport {
                source: channel.name.clone(),
                error: None,
                offers,
            },
            declared_by: channel.declared_by.clone(),
            releases,
        });
    }
    Ok(reports)
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
    let mut elsewhere = None;
    // Offers this host cannot take: named when nothing else is found.
    let mut not_applicable = Vec::new();
    for checked in offers {
        let report = &checked.report;
        if let Some(error) = &report.error {
            reasons.push(format!("source `{}`: {error}", report.source));
            continue;
        }
        for (offer, found) in report.offers.iter().zip(&checked.releases) {
            if offer.rawname != rawname {
                continue;
            }
            if own_only && offer.status == OfferStatus::OtherSource {
                elsewhere.get_or_insert((report.source.clone(), offer.version.clone()));
                continue;
            }
            if offer.status == OfferStatus::NotApplicable {
                not_applicable.extend(
                    offer
                        .warnings
                        .first()
                        .map(|w| format!("source `{}`: {w}", report.source)),
                );
                continue;
            }
            return Ok(found.clone());
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
        None => format!("no source offers `{rawname}`"),
    });
    Err(Error::Refused(reasons))
}
