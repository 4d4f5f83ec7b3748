//! A tar entry's headers, checked so that GNU tar, bsdtar and Python's tarfile read the
//! same entry modhost reads (a package must not tell a reviewer's `tar -x` one story and
//! modhost another): a PAX global header (`git archive` writes one) is metadata, refused
//! only when it would change which entries other readers see; a per-entry one may set a
//! key once, in a well-formed value, and a name it sets must be the name the entry is read
//! by (not one a GNU long name gave it); a ustar header must be of version `00`, or some
//! readers join its name prefix and others do not.

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

/// How to repack a module without sparse files, with the tools that make them.
pub(crate) const NOT_SPARSE: &str = "repack the module without sparse files: GNU tar without `--sparse`, bsdtar with \
     `--no-read-sparse`";

/// The refusal of an entry that holds a sparse file; `real` is the name GNU tar would
/// give it, when its header says.
fn sparse(package: &Path, shown: &str, real: Option<&str>, key: &str, header: &str) -> Error {
    let real = real
        .filter(|real| *real != shown)
        .map(|real| format!(" (`{real}` to GNU tar and bsdtar)"))
        .unwrap_or_default();
    refused(
        package,
        format!(
            "entry `{shown}`{real} holds a sparse file ({header} sets `{key}`), which GNU tar \
             and modhost would unpack differently; {NOT_SPARSE}"
        ),
    )
}

/// Checks a PAX global header (`git archive` starts with one, `pax_global_header`):
/// metadata, not a file, so it is skipped unless it could change how others read the
/// archive. Its bytes are read through the budget like every other byte.
pub(crate) fn check_pax_global<R: Read>(
    package: &Path,
    shown: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<(), Error> {
    // A per-entry PAX header before it: the tar crate spends it on the global header, GNU
    // tar keeps it for the entry after (renaming a file `module.xml`, say).
    if entry.path_bytes() != entry.header().path_bytes() {
        let named = crate::escape::shown(&entry.header().path_bytes());
        return Err(refused(
            package,
            format!(
                "a per-entry PAX header (naming `{shown}`) comes before the PAX global \
                 header `{named}`, and tar readers apply it to different entries"
            ),
        ));
    }
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

/// The magic of a POSIX ustar header, and the only version readers agree on when the
/// header's name has a prefix.
const USTAR: (&[u8], &[u8]) = (b"ustar\0", b"00");

/// The magic and version of a GNU header, whose prefix bytes hold times and sparse maps.
const GNU: (&[u8], &[u8]) = (b"ustar ", b" \0");

/// Checks `entry`'s headers: its ustar version when its name has a prefix (see
/// [`USTAR`]), a GNU header's empty prefix (see [`GNU`]), a directory's size, then its PAX
/// header, if it has one. Refused: a sparse file (any `GNU.sparse.*` key), a key set twice (GNU tar
/// takes the last, the tar crate the first), a `size` that is not a decimal number (GNU
/// tar stops on it, the tar crate falls back to the header's), and a `path` other than
/// the name the entry is read by (a GNU long name beside it wins in the tar crate, the
/// PAX name in GNU tar).
pub(crate) fn check_entry_headers<R: Read>(
    package: &Path,
    shown: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<(), Error> {
    let header = entry.header().as_bytes();
    let (magic, version, prefix) = (&header[257..263], &header[263..265], &header[345..500]);
    // GNU headers keep times where ustar keeps the prefix: GNU tar and bsdtar ignore it
    // there, Python's tarfile joins it to the name.
    let sparse = entry.header().entry_type() == tar::EntryType::GNUSparse;
    if magic == GNU.0 && version == GNU.1 && !sparse && prefix.iter().any(|&b| b != 0) {
        return Err(refused(
            package,
            format!(
                "entry `{shown}` has a GNU header whose name-prefix bytes are not empty: \
                 some readers would join them to its name and others not (GNU tar fills \
                 them only in an incremental archive); repack the module with `tar -czf`, \
                 without `-g`"
            ),
        ));
    }
    if magic == USTAR.0 && version != USTAR.1 && prefix.iter().any(|&b| b != 0) {
        return Err(refused(
            package,
            format!(
                "entry `{shown}` has a ustar header of version `{}`, not `00`: some readers \
                 would join its name prefix and others not; repack the module with `tar`",
                shown_str(&String::from_utf8_lossy(version))
            ),
        ));
    }
    // GNU tar and Python's tarfile read what follows a directory's header as the next
    // header, whatever size it declares; the tar crate skips that many bytes: entries a
    // reviewer's `tar -x` sees that modhost would not, or the other way round.
    // An old tar's directory is a file whose name ends in `/`, read as one alike.
    let kind = entry.header().entry_type();
    let directory = kind.is_dir() || (kind.is_file() && entry.path_bytes().ends_with(b"/"));
    if directory && entry.size() != 0 {
        return Err(refused(
            package,
            format!(
                "entry `{shown}` is a directory that declares {} bytes of content, which \
                 tar tools read as the entries after it: repack the module with `tar`",
                entry.size()
            ),
        ));
    }
    check_pax_entry(package, shown, entry)
}

/// The PAX half of [`check_entry_headers`].
fn check_pax_entry<R: Read>(
    package: &Path,
    shown: &str,
    entry: &mut tar::Entry<'_, R>,
) -> Result<(), Error> {
    let read_as = entry.path_bytes().into_owned();
    let extensions = entry.pax_extensions().map_err(|e| {
        classify(
            package,
            format!("cannot read the PAX header of `{shown}`"),
            e,
        )
    })?;
    let malformed = || {
        refused(
            package,
            format!("the PAX header of entry `{shown}` is malformed"),
        )
    };
    let records = extensions
        .into_iter()
        .flatten()
        .map(|record| record.map_err(|_| malformed()))
        .collect::<Result<Vec<_>, _>>()?;
    // A sparse file is refused under the name the tools that made it show.
    let real = records
        .iter()
        .find(|r| r.key_bytes() == b"GNU.sparse.name")
        .map(|r| crate::escape::shown(r.value_bytes()));
    let mut keys = std::collections::BTreeSet::new();
    for record in records {
        let key = shown_str(&String::from_utf8_lossy(record.key_bytes()));
        if key.starts_with(SPARSE) {
            return Err(sparse(
                package,
                shown,
                real.as_deref(),
                &key,
                "its PAX header",
            ));
        }
        let value = record.value_bytes();
        let problem = match key.as_str() {
            _ if !keys.insert(record.key_bytes().to_vec()) => "sets it twice",
            "size" if value.is_empty() || !value.iter().all(u8::is_ascii_digit) => {
                "sets it to no decimal number"
            }
            "size" if std::str::from_utf8(value).is_ok_and(|v| v.parse::<u64>().is_err()) => {
                "sets it to a number too large for any file"
            }
            "path" if value != read_as.as_slice() => {
                "names the entry otherwise than its GNU long name does"
            }
            _ => continue,
        };
        return Err(refused(
            package,
            format!(
                "the PAX header of entry `{shown}` {problem} (`{key}`): GNU tar and modhost \
                 would read the entry differently; repack the module with `tar`"
            ),
        ));
    }
    Ok(())
}
