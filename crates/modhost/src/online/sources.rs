//! Which channels there are: the administrator's sources, stored in the state, and the
//! channels installed modules declare; adding and removing them (their keys: keys.rs).

use modhost_manifest::Manifest;
use modhost_state::{ModuleRecord, PinnedKey, SourceRecord};
use modhost_update::{Kind, Location, PublicKey, Seen, Source};

use super::{Channel, KeyInfo, SourceInfo};
use crate::host::Host;
use crate::ops::Transaction;
use crate::{Error, Result};

/// Every channel: the administrator's sources by name, then the channels declared by
/// modules installed from a file (a module from a source is updated from it alone),
/// a module's update servers in priority order.
pub(crate) fn channels(host: &Host) -> Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for record in host.state.sources()? {
        let kind = Kind::parse(&record.kind);
        let seen = seen(host, &record.name, &record.url)?;
        let offered = host
            .state
            .seen(&record.name)?
            .filter(|seen| seen.url == record.url)
            .and_then(|seen| seen.module);
        let source = match kind {
            Some(kind) => admin_source(&record, kind, seen),
            None => Err(format!(
                "its stored kind `{}` is not one this modhost reads ({})",
                record.kind,
                Kind::names()
            )),
        };
        channels.push(Channel {
            name: record.name.clone(),
            declared_by: None,
            source,
            url: record.url.clone(),
            public_keys: record.public_keys.clone(),
            kind,
            seen,
            offered,
        });
    }
    for module in host.state.modules()? {
        if host.state.module_source(&module.rawname)?.is_some() {
            continue;
        }
        let manifest = match module.parse_manifest() {
            Ok(manifest) => manifest,
            Err(e) => {
                // Its channels cannot be known: a failing channel in its name says so
                // wherever channels are checked, rather than the module going unchecked.
                channels.push(Channel {
                    name: format!("{}/module.xml", module.rawname),
                    declared_by: Some(module.rawname.clone()),
                    source: Err(format!("the channels it declares cannot be read: {e}")),
                    url: String::new(),
                    public_keys: Vec::new(),
                    kind: None,
                    seen: Seen::default(),
                    offered: None,
                });
                continue;
            }
        };
        let mut declared = Vec::new();
        if let Some(url) = &manifest.updateurl {
            declared.push((
                "updateurl".to_owned(),
                Kind::Freepbx,
                url.clone(),
                manifest.updateurl_publickey.clone(),
            ));
        }
        let mut servers: Vec<_> = manifest.updateservers.iter().enumerate().collect();
        servers.sort_by_key(|(i, s)| (s.priority, *i));
        for (i, server) in servers {
            declared.push((
                (i + 1).to_string(),
                Kind::Joomla,
                server.url.clone(),
                server.publickey.clone(),
            ));
        }
        for (suffix, kind, written, key) in declared {
            let name = format!("{}/{suffix}", module.rawname);
            // The module's text as it may be shown (a secret that refuses it as a source,
            // a fragment never sent, left out), and as it is compared and kept; read as
            // it is written.
            let url = modhost_update::shown_url(&written);
            let extra_query = channel_key(host, &name, &url)?;
            let seen = seen(host, &name, &url)?;
            let mut source = declared_source(&name, kind, &written, key.as_deref(), extra_query);
            if let Ok(source) = &mut source {
                source.seen = seen;
            }
            channels.push(Channel {
                name,
                declared_by: Some(module.rawname.clone()),
                source,
                url,
                public_keys: key.as_deref().map(PinnedKey::new).into_iter().collect(),
                kind: Some(kind),
                seen,
                offered: None,
            });
        }
    }
    Ok(channels)
}

/// What was last accepted from channel `name` at `url`: nothing, when what was accepted
/// came from another URL (a source replaced, or a module's channel moved) — another
/// server's serials and times say nothing of this one's.
fn seen(host: &Host, name: &str, url: &str) -> Result<Seen> {
    Ok(match host.state.seen(name)? {
        Some(seen) if seen.url == url => Seen {
            serial: seen.serial,
            signed_at: seen.signed_at,
        },
        _ => Seen::default(),
    })
}

/// The download key stored for module channel `name`, if it was stored for `url`. The
/// name is a position in a module.xml, which another module.xml of the same rawname
/// may give to another server: a key stored for one URL is never sent to another, and
/// the administrator is told it was left out.
pub(crate) fn channel_key(host: &Host, name: &str, url: &str) -> Result<Option<String>> {
    let Some(stored) = host.state.channel_key(name)? else {
        return Ok(None);
    };
    if stored.url.as_deref() == Some(url) {
        return Ok(Some(stored.extra_query));
    }
    let stored_for = match &stored.url {
        Some(other) => format!("`{other}`"),
        None => "a URL not recorded (it was stored by an older modhost)".to_owned(),
    };
    tracing::warn!(
        "channel `{name}`: its download key was stored for {stored_for}, not `{url}`, so \
         it is not sent; if `{url}` is its publisher's, store the key again for this \
         channel"
    );
    Ok(None)
}

/// See [`Host::add_source`].
pub(crate) fn add_source(
    host: &Host,
    name: &str,
    kind: Kind,
    location: &str,
    public_key: Option<&str>,
    replace: bool,
) -> Result<()> {
    let keys: Vec<&str> = public_key.into_iter().collect();
    add_source_pinned(host, name, kind, location, &keys, replace).map(|_| ())
}

/// See [`Host::add_source_pinned`].
pub(crate) fn add_source_pinned(
    host: &Host,
    name: &str,
    kind: Kind,
    location: &str,
    public_keys: &[&str],
    replace: bool,
) -> Result<bool> {
    let parsed = Location::parse(location)?;
    // A source's location is kept without a trailing `/`: for a document (FreePBX JSON,
    // Joomla XML) that may be another URL to its server, which is said.
    if let Location::Url(url) = &parsed
        && kind.document_beneath().is_none()
        && location.trim().ends_with('/')
    {
        tracing::warn!(
            "source `{name}`: the `/` that ends its location is left out: `{url}` is the \
             document read, and `{url}.minisig` its signature"
        );
    }
    if let Location::Path(path) = &parsed
        && !path.exists()
    {
        return Err(Error::Refused(vec![format!(
            "source `{name}`: `{}` does not exist",
            path.display()
        )]));
    }
    // A directory of packages is what `--from` and `packages` read, not a source: a
    // source's directory holds the document `repo build` writes beside them.
    if let (Location::Path(path), Some(document)) = (&parsed, kind.document_beneath())
        && path.is_dir()
        && !path.join(document).exists()
        && modhost_package::package_files(path).is_ok_and(|found| !found.is_empty())
    {
        return Err(Error::Refused(vec![format!(
            "source `{name}`: `{}` holds packages but no `{document}`, so it is a package \
             directory, not an update source: install from it as a package directory (the \
             root's `packages` setting), or publish it as a source with `modhost repo build` \
             and add what that writes",
            path.display()
        )]));
    }
    if !modhost_manifest::is_valid_rawname(name) {
        return Err(Error::Refused(vec![format!(
            "source name `{name}` must be {}",
            modhost_manifest::rawname_rule()
        )]));
    }
    // `…/repo/index.json` would be read as `…/repo/index.json/index.json`, and so would
    // the `release.json` beside it.
    let trimmed = location.trim().trim_end_matches('/');
    let beside = (kind == Kind::Index).then_some(modhost_update::RELEASE_DOCUMENT);
    if let Some(document) = kind.document_beneath().into_iter().chain(beside).find(|d| {
        trimmed
            .strip_suffix(d)
            .is_some_and(|parent| parent.ends_with('/'))
    }) && let Some(parent) = trimmed.strip_suffix(document)
    {
        return Err(Error::Refused(vec![format!(
            "source `{name}`: `{trimmed}` names the {kind} source's `{document}`; give the \
             location that holds it, `{parent}`"
        )]));
    }
    // A repository is a directory: a location naming a document is one of the
    // one-document kinds, which the index kind (the default) would read beneath it.
    let lower = trimmed.to_ascii_lowercase();
    let document = [(".json", Kind::Freepbx), (".xml", Kind::Joomla)]
        .into_iter()
        .find(|(suffix, _)| lower.ends_with(suffix));
    if let (Kind::Index, Some((_, meant))) = (kind, document) {
        return Err(Error::Refused(vec![format!(
            "source `{name}`: `{trimmed}` names a document, and an {kind} source is the \
             directory a repository's `index.json` is in; a single {} document is a source \
             of kind `{meant}`",
            document_words(meant)
        )]));
    }
    // A document of the other one-document kind, by its name: warned of, as a server may
    // name a document as it likes, and said when it is read too.
    if let (Kind::Freepbx | Kind::Joomla, Some((suffix, meant))) = (kind, document)
        && meant != kind
    {
        tracing::warn!(
            "source `{name}`: `{trimmed}` is named as a {suffix} document, which a {kind} \
             source does not read; a {} document is a source of kind `{meant}`",
            document_words(meant)
        );
    }
    let mut pinned: Vec<PinnedKey> = Vec::new();
    for key in public_keys {
        let key = PublicKey::parse(key)
            .map_err(|e| Error::Refused(vec![format!("source `{name}`: {e}")]))?
            .encode();
        if pinned.iter().all(|p| p.key != key) {
            pinned.push(PinnedKey::new(&key));
        }
    }
    let lock = host.lock()?;
    // A URL is kept as it is requested (a Unicode host in punycode, a space encoded).
    let url = match parsed {
        Location::Url(url) => url,
        Location::Path(_) => location.trim().trim_end_matches('/').to_owned(),
    };
    let existing = host.state.sources()?.into_iter().find(|s| s.name == name);
    // A key no longer pinned starts the source afresh, as TUF's recovery from a
    // publisher's key loss does: what it vouched for (a serial, a signing time) may be
    // what locks the source out, a release dated far ahead by a compromised key. Keys
    // only added keep it: the old ones still vouch, and forgetting would let a mirror
    // replay an older release they signed while a rotation is being prepared.
    // The keys compared are those pinned in their own right: a next key a release
    // announced is pinned beside them by the source itself, and pinning the same keys
    // again (as configuration tools do, mid-rotation) keeps what they vouched for.
    let repinned = existing.as_ref().is_some_and(|existing| {
        let keys = |pinned: &[PinnedKey]| {
            let mut keys: Vec<String> = pinned
                .iter()
                .filter(|p| !pinned.iter().any(|q| q.successor.as_ref() == Some(&p.key)))
                .map(|p| p.key.clone())
                .collect();
            keys.sort();
            keys
        };
        let now = keys(&pinned);
        keys(&existing.public_keys)
            .iter()
            .any(|key| !now.contains(key))
    });
    // A repository moved to a mirror under the same keys keeps what they vouched for: the
    // serial accepted is the publisher's, not the server's, and forgetting it would let
    // the mirror replay an older release. (A one-module document's serials are its
    // server's own: another URL starts afresh.)
    let moved = match &existing {
        Some(existing)
            if !repinned
                && !pinned.is_empty()
                && existing.url != url
                && kind == Kind::Index
                && existing.kind == Kind::Index.as_str() =>
        {
            host.state
                .seen(name)?
                .filter(|seen| seen.url == existing.url)
        }
        _ => None,
    };
    // Keys pinned again keep the rotation their publisher announced under them: the next
    // key stays pinned beside them, so that a configuration tool pinning the same keys
    // mid-rotation (or a move to a mirror) does not lock the source out when it comes.
    if let Some(existing) = existing.as_ref().filter(|_| !repinned) {
        for key in &mut pinned {
            if let Some(before) = existing.public_keys.iter().find(|p| p.key == key.key) {
                key.successor.clone_from(&before.successor);
            }
        }
        let next: Vec<PinnedKey> = existing
            .public_keys
            .iter()
            .filter(|p| pinned.iter().any(|k| k.successor.as_ref() == Some(&p.key)))
            .filter(|p| pinned.iter().all(|k| k.key != p.key))
            .cloned()
            .collect();
        pinned.extend(next);
    }
    let replaced = existing.is_some();
    // What the replacement drops, said once it is done.
    let mut said = Vec::new();
    let extra_query = match existing {
        Some(existing) if !replace => {
            return Err(Error::SourceExists {
                name: name.to_owned(),
                url: existing.url,
                signed: !existing.public_keys.is_empty(),
            });
        }
        Some(existing) => {
            if !existing.public_keys.is_empty() && pinned.is_empty() {
                said.push(format!(
                    "source `{name}` is no longer signed: it was replaced without a public key"
                ));
            }
            // A key is its server's: kept for another address on the same origin, not
            // taken to another server.
            let origin = |at: &str| modhost_update::Location::parse(at).ok()?.origin();
            let same_server = existing.url == url
                || origin(&existing.url).is_some_and(|o| Some(o) == origin(&url));
            if existing.extra_query.is_some() && !same_server {
                said.push(format!(
                    "source `{name}`'s download key was for `{}`, another server than `{url}`, \
                     so it is not kept: set the new server's key for it",
                    existing.url
                ));
            }
            existing.extra_query.filter(|_| same_server)
        }
        None => None,
    };
    let mut tx = Transaction::new(host, &lock, "source");
    let txn = tx.state()?;
    if repinned {
        txn.reset_seen(name, &url)?;
    } else if let Some(seen) = moved {
        txn.set_seen(
            name,
            &modhost_state::SeenRecord {
                url: url.clone(),
                ..seen
            },
        )?;
    }
    txn.put_source(&SourceRecord {
        name: name.to_owned(),
        url,
        kind: kind.as_str().to_owned(),
        public_keys: pinned,
        extra_query,
    })?;
    tx.commit()?;
    for warning in said {
        tracing::warn!("{warning}");
    }
    Ok(replaced)
}

/// See [`Host::remove_source`].
pub(crate) fn remove_source(host: &Host, name: &str, force: bool) -> Result<()> {
    let lock = host.lock()?;
    let mut bound = Vec::new();
    for record in host.state.modules()? {
        if host.state.module_source(&record.rawname)?.as_deref() == Some(name) {
            bound.push(record.rawname);
        }
    }
    if !bound.is_empty() && !force {
        return Err(Error::SourceInUse {
            name: name.to_owned(),
            modules: bound,
        });
    }
    let mut tx = Transaction::new(host, &lock, "source");
    if !tx.state()?.remove_source(name)? {
        return Err(Error::Refused(vec![no_source(host, name)?]));
    }
    tx.commit()?;
    Ok(())
}

/// Why `name` is no administrator's source: a module's own channel (which its module.xml
/// declares, updates it while it is installed from a file, and goes with it), or nothing.
fn no_source(host: &Host, name: &str) -> Result<String> {
    let declared = channels(host)?
        .into_iter()
        .find(|c| c.name == name)
        .and_then(|c| c.declared_by);
    Ok(match declared {
        Some(module) => format!(
            "`{name}` is module `{module}`'s own channel, which its module.xml declares: it \
             updates `{module}` while it is installed from a file, needs no attaching, and \
             goes when `{module}` does"
        ),
        None => format!("there is no source `{name}`"),
    })
}

/// See [`Host::attach_source`].
pub(crate) fn attach_source(host: &Host, rawname: &str, source: &str) -> Result<Option<String>> {
    let lock = host.lock()?;
    host.installed(rawname)?;
    if !host.state.sources()?.iter().any(|s| s.name == source) {
        return Err(Error::Refused(vec![no_source(host, source)?]));
    }
    let before = host.state.module_source(rawname)?;
    let mut tx = Transaction::new(host, &lock, "source");
    tx.state()?.set_module_source(rawname, source)?;
    tx.commit()?;
    Ok(before)
}

/// See [`Host::sources`].
pub(crate) fn sources(host: &Host) -> Result<Vec<SourceInfo>> {
    let mut infos = Vec::new();
    for channel in channels(host)? {
        let has_key = match &channel.source {
            Ok(source) => source.extra_query.is_some(),
            Err(_) => false,
        };
        infos.push(SourceInfo {
            name: channel.name,
            kind: channel.kind,
            url: channel.url,
            signed: !channel.public_keys.is_empty(),
            public_keys: channel.public_keys.iter().map(KeyInfo::of).collect(),
            serial: channel.seen.serial,
            signed_at: channel.seen.signed_at,
            has_key,
            declared_by: channel.declared_by,
        });
    }
    Ok(infos)
}

/// Whether `new`, a module's next version, pins no publisher key for its update
/// channels where `old` pinned one: what they offer would then go unverified, unsaid.
pub(crate) fn unpins(old: &Manifest, new: &Manifest) -> bool {
    let pins = |m: &Manifest| {
        m.updateurl_publickey.is_some() || m.updateservers.iter().any(|s| s.publickey.is_some())
    };
    pins(old) && !pins(new)
}

/// Warns, as `previous` is replaced by `manifest`, when [`unpins`] says so.
pub(crate) fn warn_if_unpinned(previous: &ModuleRecord, manifest: &Manifest) {
    if previous
        .parse_manifest()
        .is_ok_and(|old| unpins(&old, manifest))
    {
        tracing::warn!(
            module = %manifest.rawname,
            "{} {} pins no publisher key for its update channels, where {} did: what they \
             offer is no longer verified (pin one with a source of the administrator's, or \
             ask the publisher to put its publickey back)",
            manifest.rawname,
            manifest.version,
            previous.version
        );
    }
}

/// The client's view of a channel a module declares, or why it cannot be used: it must be
/// HTTPS, and a key the module pins must parse.
fn declared_source(
    name: &str,
    kind: Kind,
    url: &str,
    key: Option<&str>,
    extra_query: Option<String>,
) -> std::result::Result<Source, String> {
    let public_key = match key {
        Some(key) => {
            Some(PublicKey::parse(key).map_err(|e| format!("the module's publickey: {e}"))?)
        }
        None => None,
    };
    match Location::parse(url) {
        Ok(location @ Location::Url(_)) => Ok(Source {
            name: name.to_owned(),
            kind,
            location,
            public_keys: public_key.into_iter().collect(),
            seen: Seen::default(),
            extra_query,
        }),
        Ok(Location::Path(_)) => Err(format!(
            "`{url}`: a module may only declare https:// update channels"
        )),
        // Plain HTTP is said as such; anything else not https:// is refused as a module's
        // channel: "absolute paths are sources" is an administrator's rule, not a module's.
        Err(e @ modhost_update::Error::PlainHttp(_)) => Err(e.to_string()),
        Err(_) if !url.trim().to_ascii_lowercase().starts_with("https://") => Err(format!(
            "`{}`: a module may only declare https:// update channels",
            url.split(['?', '#']).next().unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The client's view of an administrator's source, with what was last accepted from it,
/// or why it cannot be used.
fn admin_source(
    record: &SourceRecord,
    kind: Kind,
    seen: Seen,
) -> std::result::Result<Source, String> {
    let public_keys = record
        .public_keys
        .iter()
        .map(|pinned| PublicKey::parse(&pinned.key).map_err(|e| format!("a pinned key: {e}")))
        .collect::<std::result::Result<_, _>>()?;
    Ok(Source {
        name: record.name.clone(),
        kind,
        location: Location::parse(&record.url).map_err(|e| e.to_string())?,
        public_keys,
        seen,
        extra_query: record.extra_query.clone(),
    })
}

/// What a one-document kind's document is called, as its publishers call it.
fn document_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Joomla => "Joomla update XML",
        _ => "FreePBX updateurl JSON",
    }
}

#[cfg(test)]
mod tests;
