//! Why a package is refused, and the helpers that build the refusals.

use std::io;
use std::path::{Path, PathBuf};

use crate::budget::{Exceeded, Limits};
use crate::escape::shown_path;
use crate::fault::{Fault, find};

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The package could not be read or the staging directory written.
    #[error("{} `{}`: {context}: {source}", noun(package), shown_path(package))]
    Io {
        /// The package file.
        package: PathBuf,
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The package's content breaks a rule.
    #[error("{} `{}`: {problem}", noun(package), shown_path(package))]
    Refused {
        /// The package file.
        package: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The package's module.xml is invalid.
    #[error("{} `{}`: {source}", noun(package), shown_path(package))]
    Manifest {
        /// The package file.
        package: PathBuf,
        /// The manifest's problems.
        source: modhost_manifest::Error,
    },
}

impl Error {
    /// What is wrong, without the package's path: for a message that names the package
    /// otherwise (where it was downloaded from, rather than the temporary file).
    pub fn problem(&self) -> String {
        match self {
            Error::Io {
                context, source, ..
            } => format!("{context}: {source}"),
            Error::Refused { problem, .. } => problem.clone(),
            Error::Manifest { source, .. } => source.to_string(),
        }
    }
}

impl Error {
    /// The same error naming `package`: for a package made from what the user gave (a
    /// module directory packed into a temporary file), so that messages name that.
    pub fn naming(self, package: &Path) -> Error {
        let package = package.to_owned();
        match self {
            Error::Io {
                context, source, ..
            } => Error::Io {
                package,
                context,
                source,
            },
            Error::Refused { problem, .. } => Error::Refused { package, problem },
            Error::Manifest { source, .. } => Error::Manifest { package, source },
        }
    }
}

/// The refusal of `package` for `problem`.
pub(crate) fn refused(package: &Path, problem: String) -> Error {
    Error::Refused {
        package: package.to_owned(),
        problem,
    }
}

/// The refusal of a package with more entries than `limits` allow.
pub(crate) fn too_many_entries(package: &Path, limits: &Limits) -> Error {
    refused(package, format!("more than {} entries", limits.max_entries))
}

/// What `package` is called in a message: a module directory (which a newcomer installs
/// or packs as it is), else a package. Never follows a link: one is called a package.
fn noun(package: &Path) -> &'static str {
    match std::fs::symlink_metadata(package) {
        Ok(meta) if meta.is_dir() => "module directory",
        _ => "package",
    }
}

/// An I/O error while reading `package`; the budget's refusal and a fault in the
/// stream (see [`Fault`]) are refusals.
pub(crate) fn classify(package: &Path, context: String, source: io::Error) -> Error {
    if let Some(exceeded) = find::<Exceeded>(&source) {
        return refused(package, exceeded.to_string());
    }
    classify_faults(package, context, source)
}

/// [`classify`], naming `what` was being read (an entry, quoted, or "the package") when
/// the budget ran out.
pub(crate) fn classify_at(package: &Path, context: String, what: &str, source: io::Error) -> Error {
    if let Some(exceeded) = find::<Exceeded>(&source) {
        return refused(package, exceeded.explain(what));
    }
    classify_faults(package, context, source)
}

/// Whether `error` is, or wraps (as readers wrap what the file gave them), an error of
/// the operating system's: a disk or a permission failing, not an archive's bytes.
fn from_the_system(error: &io::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = current {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            if io.raw_os_error().is_some() {
                return true;
            }
            current = io.get_ref().map(|e| e as _);
            continue;
        }
        current = inner.source();
    }
    false
}

fn classify_faults(package: &Path, context: String, source: io::Error) -> Error {
    match find::<Fault>(&source) {
        Some(fault) => refused(package, fault.to_string()),
        // No error of the system's but the tar or zip reader's own: what it read breaks
        // the format. Said as what it means, the reader's words kept for whoever repairs it.
        None if !from_the_system(&source) => refused(
            package,
            format!(
                "{context}: the archive is damaged ({}); download or copy it again, or \
                 repack the module",
                crate::escape::shown_str(&source.to_string())
            ),
        ),
        // The staging disk full reads as the package's fault in the system's words.
        None if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) =>
        {
            Error::Io {
                package: package.to_owned(),
                context,
                source: io::Error::new(
                    source.kind(),
                    "the disk it is unpacked to (the root's) is full; free some space on it: \
                     the package is not at fault",
                ),
            }
        }
        None => Error::Io {
            package: package.to_owned(),
            context,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_error_stays_an_io_error_and_a_readers_complaint_is_damage() {
        let package = Path::new("p.tgz");
        let failed = io::Error::from_raw_os_error(5);
        assert!(matches!(
            classify(package, "cannot read the archive".into(), failed),
            Error::Io { .. }
        ));
        // Wrapped, as readers wrap what the file gave them.
        let wrapped = io::Error::other(io::Error::from_raw_os_error(5));
        assert!(matches!(
            classify(package, "cannot read the archive".into(), wrapped),
            Error::Io { .. }
        ));
        let damaged = io::Error::other("archive header checksum mismatch");
        let refused = classify(package, "cannot read the archive".into(), damaged);
        assert!(
            refused
                .to_string()
                .contains("the archive is damaged (archive header checksum"),
            "{refused}"
        );
    }

    #[test]
    fn a_module_directory_is_called_one_and_a_file_or_link_a_package() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let said = |path: &Path| refused(path, "x".into()).to_string();
        assert!(
            said(dir.path()).starts_with("module directory `"),
            "{}",
            said(dir.path())
        );
        let file = dir.path().join("p.tgz");
        let link = dir.path().join("link");
        let made = std::fs::write(&file, b"x")
            .and_then(|()| std::os::unix::fs::symlink(dir.path(), &link));
        assert!(made.is_ok(), "{made:?}");
        assert!(said(&file).starts_with("package `"), "{}", said(&file));
        assert!(said(&link).starts_with("package `"), "{}", said(&link));
    }

    #[test]
    fn a_full_disk_is_said_to_be_the_disks_not_the_packages() {
        let full = classify_at(
            Path::new("p.tgz"),
            "cannot unpack `m/module.wasm`".to_owned(),
            "`m/module.wasm`",
            io::Error::from_raw_os_error(28),
        );
        let said = full.to_string();
        assert!(
            matches!(full, Error::Io { .. })
                && said.contains("the disk it is unpacked to (the root's) is full")
                && said.contains("the package is not at fault")
                && !said.contains("os error"),
            "{said}"
        );
    }
}
