//! PAX extended headers: a global one (`git archive` writes one) is metadata, refused
//! only when it would change which entries other readers see; a per-entry one must not
//! make GNU tar read the entry otherwise than modhost does.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, classify, refused};
use crate::escape::shown_str;

/// The largest PAX global header accepted: `git archive` writes one of about 50 bytes
/// (the commit id as a `comment`).
const MAX_PAX_GLOBAL: u64 = 64 * 1024;

/// PAX records that, in a global header, would change which entries other readers see:
/// GNU tar applies them to every entry that follows, the tar crate ignores them. A package
/// must not tell two stories, so a global header setting one is refused.
const PAX_GLOBAL_REFUSED: [&str; 3] = ["path", "linkpath", "size"];

/// The prefix of the PAX keys GNU tar's sparse formats (0.0, 0.1 and 1.0, written by
/// `tar --sparse --format=pax`) use: GNU tar renames and reshapes such an entry (its
/// real name in `GNU.sparse.name`, its real size in `GNU.sparse.realsize`), the tar crate
/// does not.
const SPARSE: &str = "GNU.sparse.";

/// The refusal of an entry that holds a sparse file.
fn sparse(package: &Path, shown: &str, key: &str, header: &str) -> Error {
    refused(
        package,
        format!(
            "entry `{shown}` holds a sparse file ({header} sets `{key}`), which GNU tar and \
             modhost would unpack differently; repack the module with `tar` without `--sparse`"
        ),
    )
}

/// Checks a PAX global header (`git archive` starts with one, `pax_global_header`):
/// metadata, not a file, so it is skipped unless it could change how others read the
/// archive. Its bytes are read through the budget like every other byte.
pub(crate) fn check_pax_global(
    package: &Path,
    shown: &str,
    entry: &mut impl Read,
) -> Result<(), Error> {
    let mut records = Vec::new();
    Read::by_ref(entry)
        .take(MAX_PAX_GLOBAL + 1)
        .read_to_end(&mut records)
        .map_err(|e| classify(package, "cannot read the archive".into(), e))?;
    if records.len() as u64 > MAX_PAX_GLOBAL {
        return Err(refused(
            package,
            format!("PAX global header `{shown}` is larger than {MAX_PAX_GLOBAL} bytes"),
        ));
    }
    for record in tar::PaxExtensions::new(&records) {
        let record = record
            .map_err(|_| refused(package, format!("PAX global header `{shown}` is malformed")))?;
        let key = shown_str(&String::from_utf8_lossy(record.key_bytes()));
        if PAX_GLOBAL_REFUSED.contains(&key.as_str()) || key.starts_with(SPARSE) {
            return Err(refused(
                package,
                format!(
                    "PAX global header `{shown}` sets `{key}` for every entry; only a per-entry header may"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the PAX header of `entry`, if it has one: one that makes it a sparse file
/// (any `GNU.sparse.*` key) is refused.
pub(crate) fn check_pax_entry<R: Read>(
    package: &Path,
    shown: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<(), Error> {
    let extensions = entry.pax_extensions().map_err(|e| {
        classify(
            package,
            format!("cannot read the PAX header of `{shown}`"),
            e,
        )
    })?;
    for record in extensions.into_iter().flatten() {
        let record = record.map_err(|_| {
            refused(
                package,
                format!("the PAX header of entry `{shown}` is malformed"),
            )
        })?;
        let key = shown_str(&String::from_utf8_lossy(record.key_bytes()));
        if key.starts_with(SPARSE) {
            return Err(sparse(package, shown, &key, "its PAX header"));
        }
    }
    Ok(())
}
