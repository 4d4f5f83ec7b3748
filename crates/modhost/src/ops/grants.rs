//! Grants: the host directories a module asks for in `<capabilities>` exist in its
//! sandbox only once an administrator grants them, and never wider than it asks; the
//! application's capabilities that need a grant are linked for it only once granted.

use std::path::Path;

use modhost_manifest::{Capability, Manifest};
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

/// What `path` is when it is no directory to grant, in words: not there, a file, or out
/// of this user's reach.
fn not_a_directory(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => None,
        Ok(_) => Some("it is not a directory".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("it does not exist".to_owned()),
        Err(e) => Some(format!(
            "it cannot be reached ({})",
            modhost_update::plain_io(&e)
        )),
    }
}

/// Refuses a directory grant that is no directory on this machine (a grant of nothing
/// would leave the module's sandbox without it), that would reach modhost's own root
/// (its state database and its cache of compiled components, which the host loads as
/// native code) or hide the module's `/data`. A safety check: forcing does not override
/// it.
fn refuse_unsafe_grant(host: &Host, rawname: &str, path: &str) -> Result<()> {
    // The runtime keeps every sandbox out of the root (see `Runtime::protecting`): the
    // same test refuses the grant up front, in words.
    let root = host
        .layout
        .root
        .canonicalize()
        .unwrap_or_else(|_| host.layout.root.clone());
    let asks = format!("`{rawname}` asks for the directory `{path}`");
    let refusal = if host.runtime.reaches_protected(Path::new(path)).is_some() {
        format!(
            "{asks}, which is never granted: it overlaps modhost's root `{}`",
            root.display()
        )
    } else if Path::new(path).starts_with(modhost_runtime::GUEST_DATA_DIR) {
        format!(
            "{asks}, which is never granted: `{}` is where the module's own data is",
            modhost_runtime::GUEST_DATA_DIR
        )
    } else if let Some(what) = not_a_directory(Path::new(path)) {
        format!("{asks}, which cannot be granted yet: {what}; create it, then grant it")
    } else if let Some(link) = modhost_runtime::link_on_path(Path::new(path)) {
        // A sandbox is given a granted directory only through real directories: a link
        // on the way could be re-pointed (by a module that may write beside it) to lead
        // anywhere.
        let real = Path::new(path)
            .canonicalize()
            .map(|real| format!(" (`{}`)", real.display()))
            .unwrap_or_default();
        format!(
            "{asks}, which is reached through the link `{}`: a granted directory is \
             reached only through real directories; ask for its real path{real}",
            link.display()
        )
    } else {
        return Ok(());
    };
    Err(Error::Refused(vec![refusal]))
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
        let key = capability.grant_key();
        let read_only = capability.read_only();
        if grant {
            if let Capability::Directory { path, .. } = capability {
                refuse_unsafe_grant(host, &manifest.rawname, path)?;
            }
            txn.grant(&manifest.rawname, key, read_only)?;
        }
        let granted = grant || kept.iter().any(|(kept, _)| kept == key);
        let request = match capability {
            Capability::Directory { path, .. } => Request::Directory {
                path: path.clone(),
                read_only,
                granted,
            },
            Capability::Import { package } => Request::Import {
                package: package.clone(),
                needs_grant: host.runtime.grant_needed(package),
                provided: host.runtime.provides(package),
                granted,
            },
        };
        // An API the application gives without a grant is not waiting for one.
        if !matches!(
            request,
            Request::Import {
                needs_grant: false,
                provided: true,
                granted: false,
                ..
            }
        ) {
            host.report(Event::Requests {
                rawname: manifest.rawname.clone(),
                capability: capability.describe(),
                granted,
            });
        }
        requests.push(request);
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
                (capability.grant_key() == path)
                    .then(|| (path.clone(), *read_only || capability.read_only()))
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
                (false, false) if !path.starts_with('/') => {
                    format!("the application's `{path}`")
                }
                (false, false) => format!("read-write access to `{path}`"),
            },
        });
    }
    Ok(())
}

/// The host directories among `grants` (a module's, as `(key, read_only)`), as mounts;
/// the rest are grants of the application's capabilities. (The runtime leaves out one
/// that now leads into the root, each time it makes a sandbox.)
pub(crate) fn mounts(grants: Vec<(String, bool)>) -> Vec<modhost_runtime::Mount> {
    grants
        .into_iter()
        .filter(|(key, _)| key.starts_with('/'))
        .map(|(path, read_only)| modhost_runtime::Mount {
            path: path.into(),
            read_only,
        })
        .collect()
}

/// Refuses `rawname`'s component if it imports a capability that needs a grant and
/// `granted` (its grant keys) lacks it, or its module.xml does not ask for it.
pub(crate) fn check_imports_granted(
    host: &Host,
    manifest: &Manifest,
    imports: &[String],
    granted: &[(String, bool)],
) -> Result<()> {
    for package in host.runtime.needing_grant(imports) {
        let asked = manifest
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Import { package: p } if *p == package));
        if !asked {
            return Err(Error::Refused(vec![format!(
                "`{}` imports the application's `{package}`, but its module.xml does not ask \
                 for it: add <capabilities><import package=\"{package}\"/></capabilities>",
                manifest.rawname
            )]));
        }
        if !granted.iter().any(|(key, _)| *key == package) {
            return Err(Error::NotGranted {
                rawname: manifest.rawname.clone(),
                package,
            });
        }
    }
    Ok(())
}
