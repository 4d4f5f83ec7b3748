//! Grants: the host directories a module asks for in `<capabilities>` exist in its
//! sandbox only once an administrator grants them, and never wider than it asks.

use std::path::Path;

use modhost_manifest::{Access, Capability, Manifest};
use modhost_state::Txn;

use super::Transaction;
use crate::host::Host;
use crate::{Error, Event, Request, Result};

/// Grants installed module `rawname` every directory its module.xml asks for.
pub(crate) fn grant(host: &Host, rawname: &str) -> Result<Vec<Request>> {
    let lock = host.lock()?;
    let manifest = host.installed(rawname)?.parse_manifest()?;
    let mut tx = Transaction::new(host, &lock, "grant");
    let granted = requests(host, tx.state()?, &manifest, true)?;
    tx.commit()?;
    Ok(granted)
}

/// Withdraws every grant of installed module `rawname`.
pub(crate) fn revoke(host: &Host, rawname: &str) -> Result<()> {
    let lock = host.lock()?;
    host.installed(rawname)?;
    let mut tx = Transaction::new(host, &lock, "revoke");
    tx.state()?.revoke(rawname)?;
    tx.commit()
}

/// Refuses a directory grant that would reach modhost's own root (its state database
/// and its cache of compiled components, which the host loads as native code) or
/// hide the module's `/data`. A safety check: `--force` does not override it.
fn refuse_unsafe_grant(host: &Host, rawname: &str, path: &str) -> Result<()> {
    let requested = Path::new(path);
    let requested = requested
        .canonicalize()
        .unwrap_or_else(|_| requested.to_owned());
    let root = host
        .layout
        .root
        .canonicalize()
        .unwrap_or_else(|_| host.layout.root.clone());
    let reason = if requested.starts_with(&root) || root.starts_with(&requested) {
        Some(format!("it overlaps modhost's root `{}`", root.display()))
    } else if Path::new(path).starts_with(modhost_runtime::GUEST_DATA_DIR) {
        Some(format!(
            "`{}` is where the module's own data is",
            modhost_runtime::GUEST_DATA_DIR
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::Refused(vec![format!(
            "`{rawname}` asks for the directory `{path}`, which is never granted: {reason}"
        )])),
        None => Ok(()),
    }
}

/// Shows what `manifest` asks for and, if `grant`, grants it inside `txn`. Grants of an
/// earlier version that `manifest` no longer asks for are taken back first; those it
/// still asks for stay, and show as granted.
pub(crate) fn requests(
    host: &Host,
    txn: &mut Txn,
    manifest: &Manifest,
    grant: bool,
) -> Result<Vec<Request>> {
    narrow_grants(host, txn, manifest)?;
    let kept = txn.grants(&manifest.rawname)?;
    let mut requests = Vec::new();
    for capability in &manifest.capabilities {
        let Capability::Directory { path, access } = capability;
        let read_only = *access == Access::ReadOnly;
        if grant {
            refuse_unsafe_grant(host, &manifest.rawname, path)?;
            txn.grant(&manifest.rawname, path, read_only)?;
        }
        let granted = grant || kept.iter().any(|(kept, _)| kept == path);
        host.report(Event::Requests {
            rawname: manifest.rawname.clone(),
            capability: format!(
                "{} access to `{path}`",
                if read_only { "read-only" } else { "read-write" }
            ),
            granted,
        });
        requests.push(Request {
            path: path.clone(),
            read_only,
            granted,
        });
    }
    Ok(requests)
}

/// Keeps only the grants `manifest` still asks for, and none wider than it asks: a new
/// (or rolled-back-to) version never inherits access its module.xml does not request.
pub(crate) fn narrow_grants(host: &Host, txn: &mut Txn, manifest: &Manifest) -> Result<()> {
    let granted = txn.grants(&manifest.rawname)?;
    let kept: Vec<(String, bool)> = granted
        .iter()
        .filter_map(|(path, read_only)| {
            manifest.capabilities.iter().find_map(|capability| {
                let Capability::Directory {
                    path: asked,
                    access,
                } = capability;
                (asked == path).then(|| {
                    let asks_read_only = *access == Access::ReadOnly;
                    (path.clone(), *read_only || asks_read_only)
                })
            })
        })
        .collect();
    if kept == granted {
        return Ok(());
    }
    txn.revoke(&manifest.rawname)?;
    for (path, read_only) in &kept {
        txn.grant(&manifest.rawname, path, *read_only)?;
    }
    for (path, read_only) in granted.iter().filter(|g| !kept.contains(g)) {
        let narrowed = kept.iter().any(|(kept, _)| kept == path);
        host.report(Event::Revoked {
            rawname: manifest.rawname.clone(),
            capability: match (narrowed, read_only) {
                (true, _) => format!("write access to `{path}`"),
                (false, true) => format!("read-only access to `{path}`"),
                (false, false) => format!("read-write access to `{path}`"),
            },
        });
    }
    Ok(())
}
