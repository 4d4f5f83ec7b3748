//! What a build says to its publisher beside what it published: the mistakes a build
//! cannot refuse (a licence group naming no package, a paid module turned public, a
//! document no client reads, packages only modhost's clients unpack, a next key withdrawn).

use std::collections::BTreeSet;

use modhost_update::index::{Entry, MAX_INDEX};
use modhost_update::release_document::Document;

use crate::licence::Groups;

/// The warnings of a build of `modules` under `groups`, the previous build having gated
/// `gated_before`, that wrote `documents`.
pub(crate) fn warnings(
    modules: &[Entry],
    groups: &Groups,
    gated_before: &[String],
    documents: &[Document],
) -> Vec<String> {
    let offered: BTreeSet<&str> = modules.iter().map(|e| e.rawname.as_str()).collect();
    let ungated = gated_before
        .iter()
        .filter(|m| offered.contains(m.as_str()) && groups.group_of(m).is_none())
        .map(|m| {
            format!(
                "`{m}` was licence-gated in the previous build and is public in this one: \
                 if it is still sold, put groups.toml (with the same secret, or the keys \
                 issued stop working) back in the package directory and build again"
            )
        });
    let unknown = groups
        .groups
        .iter()
        .flat_map(|(name, g)| g.modules.iter().map(move |m| (name, m)))
        .filter(|(_, m)| !offered.contains(m.as_str()))
        .map(|(name, m)| {
            format!(
                "group `{name}` names `{m}`, which no package here is: nothing of it is gated \
                 (a misspelt name leaves the module meant public)"
            )
        });
    // Clients read no document past MAX_INDEX: one larger is published for nobody.
    let oversized = documents.iter().filter(|d| d.size > MAX_INDEX).map(|d| {
        format!(
            "`{}` is {} bytes, more than the {MAX_INDEX} a client reads: it cannot be \
                 used (fewer versions, or shorter descriptions, make it smaller)",
            d.path, d.size
        )
    });
    // FreePBX's module admin unpacks a gzip tar only (`tar zxf`): a module published only
    // as zips is modhost's clients' alone, however its FreePBX document names it.
    let zipped_only = offered
        .iter()
        .filter(|rawname| {
            modules
                .iter()
                .filter(|e| e.rawname == **rawname)
                .all(|e| e.file.ends_with(".zip"))
        })
        .map(|rawname| {
            format!(
                "`{rawname}` is published as zips only: `freepbx/{rawname}.json` names one, \
                 which FreePBX's own module admin does not unpack (it takes a gzip tar, as \
                 `modhost pack` writes)"
            )
        });
    ungated
        .chain(unknown)
        .chain(oversized)
        .chain(zipped_only)
        .collect()
}

/// The warning for a next key the previous release announced that this one, signed by
/// `signer` and announcing `next`, neither signs with nor announces: clients that pinned
/// it beside the current key drop it, so a rotation to it stops half-way.
pub(crate) fn rotation(
    announced_before: Option<&str>,
    signer: Option<&str>,
    next: Option<&str>,
) -> Option<String> {
    let before = announced_before?;
    if signer == Some(before) || next == Some(before) {
        return None;
    }
    let id =
        modhost_update::PublicKey::parse(before).map_or_else(|_| before.to_owned(), |k| k.key_id());
    let instead = match next {
        Some(_) => "announces another next key",
        None => "announces no next key",
    };
    Some(format!(
        "the previous release announced next key {id}, and this one {instead} and is not \
         signed by it: clients that pinned it drop it (announce it again to keep the \
         rotation going, or sign with it to complete it)"
    ))
}
