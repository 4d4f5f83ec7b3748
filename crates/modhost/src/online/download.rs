//! Downloads: a module's newest verified package from the channels, a package by URL
//! and checksum, and the hidden work directories downloads are made in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modhost_update::{Client, Digests, Location, Release, Source};

use super::offers::{accepted, find_release, offers, remember};
use super::{announces, client};
use crate::host::Host;
use crate::lock::{Holder, RootLock};
use crate::{Error, Event, Result};

/// See [`Host::download`].
pub(crate) fn download(host: &Host, rawname: &str, dir: &Path) -> Result<PathBuf> {
    // Said before any source is asked.
    check_out_dir(dir)?;
    // Only a file is written: any source will do, even for an installed module.
    let mut checked = offers(host)?;
    let (source, release) =
        find_release(host, &checked, rawname, false).map_err(|error| match error {
            Error::Refused(reasons) => Error::NotDownloaded(reasons),
            error => error,
        })?;
    let work = download_dir(dir)?;
    // Which module, from which source: the download's own error names a URL.
    let path =
        fetch_package(host, &client(host)?, &source, &release, work.path()).map_err(|error| {
            let context = format!(
                "source `{}`: `{}` {}",
                source.name, release.rawname, release.version
            );
            match error {
                Error::Interrupted => error,
                error => Error::NotDownloaded(super::apply::reasons_in(&context, error)),
            }
        })?;
    let kept = keep_package(&path, dir)?;
    remember(host, &accepted(&mut checked))?;
    Ok(kept)
}

/// See [`Host::download_url`].
pub(crate) fn download_url(host: &Host, url: &str, sha256: &str, dir: &Path) -> Result<PathBuf> {
    let mut digests = Digests {
        given: true,
        ..Digests::default()
    };
    digests
        .set("sha256", sha256)
        .map_err(|e| Error::NotDownloaded(vec![e]))?;
    let location = Location::parse(url).map_err(|e| match e {
        // A one-off download has no source to keep a key: said in its own words.
        modhost_update::Error::Secret { location, name } => Error::NotDownloaded(vec![format!(
            "`{location}`: it holds `{name}=` (in its query, or its path's parameters), a secret that would be shown and logged \
             with the URL: a package behind a download key comes from its update source (the \
             server added as a source, the key stored as its download key, the module then \
             downloaded by name)"
        )]),
        e => e.into(),
    })?;
    let name = location.file_name().unwrap_or_default();
    let release = Release {
        rawname: name.clone(),
        name,
        version: String::new(),
        location,
        document: None,
        size: None,
        digests,
        gated: false,
        supported: None,
    };
    check_out_dir(dir)?;
    let work = download_dir(dir)?;
    let path = work.path().join("download");
    client(host)?
        .download(&release, None, &path, &mut |_, _| {})
        .map_err(|e| match e {
            modhost_update::Error::Stopped { .. } => Error::Interrupted,
            e => Error::NotDownloaded(vec![e.to_string()]),
        })?;
    keep_package(&path, dir)
}

/// Moves a verified download into `dir` under its manifest's name, with the
/// extension of its format.
fn keep_package(path: &Path, dir: &Path) -> Result<PathBuf> {
    let manifest = modhost_package::read_manifest(path, &Default::default())?;
    let target =
        dir.join(modhost_package::format(path)?.file_name(&manifest.rawname, &manifest.version));
    // Readable by others, as a package is wherever it is published or kept.
    crate::layout::set_mode(path, crate::layout::PUBLIC_FILE)?;
    fs_err::rename(path, &target).map_err(crate::layout::io(&target))?;
    Ok(target)
}

/// Downloads `release` into `dir` with progress events, and checks that the package
/// is the module and version the channel announced.
pub(crate) fn fetch_package(
    host: &Host,
    client: &Client,
    source: &Source,
    release: &Release,
    dir: &Path,
) -> Result<PathBuf> {
    host.report(Event::Downloading {
        rawname: release.rawname.clone(),
        version: release.version.clone(),
        source: source.name.clone(),
    });
    let path =
        dir.join(modhost_package::Format::GzipTar.file_name(&release.rawname, &release.version));
    let mut progress = |received, total| {
        host.report(Event::Progress {
            rawname: release.rawname.clone(),
            received,
            total,
        })
    };
    let key = source.key_for(&release.location);
    let withheld = key.is_none() && source.extra_query.is_some();
    if withheld {
        host.report(Event::Warning {
            rawname: release.rawname.clone(),
            message: format!("source `{}`: {}", source.name, elsewhere(&release.location)),
        });
    }
    if let Err(error) = client.download(release, key, &path, &mut progress) {
        // Whether the key the source has is right or wrong, it was not sent: that is why.
        return Err(match error.key_refusal().filter(|_| withheld) {
            Some(said) => Error::Refused(vec![format!(
                "`{}`: that server turned the download down ({said}), and {}: a key goes \
                 only to its source's own server. Ask the publisher to serve the package from \
                 the source's server, or add its server as a source of its own with the key",
                release.location,
                elsewhere(&release.location),
            )]),
            None => match error {
                modhost_update::Error::Stopped { .. } => Error::Interrupted,
                error => error.into(),
            },
        });
    }
    // Named by where it came from: the file it was downloaded to is gone by the time
    // the message is read.
    let manifest = modhost_package::read_manifest(&path, &Default::default())
        .map_err(|e| Error::Refused(vec![format!("`{}`: {}", release.location, e.problem())]))?;
    if manifest.rawname != release.rawname
        || !announces(source.kind, &release.version, &manifest.version)
    {
        return Err(Error::Refused(vec![format!(
            "`{}`: the package holds `{}` {}, not what the source announced",
            release.location, manifest.rawname, manifest.version
        )]));
    }
    // Accepted, since FreePBX servers publish nothing stronger, but not silently.
    if let Some(message) = release.weak_checksum_warning() {
        host.report(Event::Warning {
            rawname: release.rawname.clone(),
            message,
        });
    }
    host.report(Event::Verified {
        rawname: release.rawname.clone(),
        bytes: fs_err::metadata(&path).map(|m| m.len()).unwrap_or(0),
    });
    Ok(path)
}

/// Why a source's download key is not sent to `location`, where its package is: on
/// another server, or at a location that does not parse (shown escaped).
fn elsewhere(location: &Location) -> String {
    match location.origin() {
        Some((scheme, host, port)) => format!(
            "the package is at `{scheme}://{host}:{port}`, another server than the source's, \
             so the source's download key is not sent there"
        ),
        None => format!(
            "the package's location \"{}\" cannot be parsed, so the source's download key \
             is not sent there",
            location.to_string().escape_debug()
        ),
    }
}

/// A hidden work directory inside `dir` for downloads: the root's staging area is swept
/// by other processes' recovery, and the same file system lets a verified package be
/// renamed into place. It is removed when dropped; one an
/// interrupted download left behind is removed by the next download into `dir`.
pub(crate) fn download_dir(dir: &Path) -> Result<DownloadDir> {
    clear_stale_downloads(dir);
    let work = tempfile::Builder::new()
        .prefix(DOWNLOAD_PREFIX)
        .tempdir_in(dir)
        .map_err(crate::layout::io(dir))?;
    let held = RootLock::acquire(
        &work.path().join(DOWNLOAD_LOCK),
        Holder::Unnamed,
        None,
        |_| {},
    )?;
    Ok(DownloadDir { work, _held: held })
}

/// Refuses `dir` for downloads unless it is an existing directory, saying which it is not.
fn check_out_dir(dir: &Path) -> Result<()> {
    let problem = match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("there is no such directory"),
        Ok(meta) if !meta.is_dir() => Some("it is a file, not a directory"),
        _ => None,
    };
    if let Some(problem) = problem {
        return Err(Error::Io {
            path: dir.to_owned(),
            source: std::io::Error::other(format!(
                "{problem}: a package is downloaded into an existing directory, named after \
                 its module and version"
            )),
        });
    }
    Ok(())
}

/// A download's work directory, and the lock that tells other downloads it is in use.
pub(crate) struct DownloadDir {
    work: tempfile::TempDir,
    _held: RootLock,
}

impl DownloadDir {
    /// Where downloads go.
    pub(crate) fn path(&self) -> &Path {
        self.work.path()
    }
}

/// The prefix of the directories downloads are made in.
const DOWNLOAD_PREFIX: &str = ".modhost-download-";
/// The lock file a download holds inside its directory while it runs.
const DOWNLOAD_LOCK: &str = ".lock";
/// How old a download directory must be before another download takes it for left
/// behind: long enough for its own download to have taken its lock.
const DOWNLOAD_GRACE: Duration = Duration::from_secs(10);

/// Removes from `dir`, best effort, the download directories interrupted downloads left
/// (their process killed before it could): a directory (never a link) named as
/// [`download_dir`] names them, older than [`DOWNLOAD_GRACE`], whose lock nobody holds.
pub(crate) fn clear_stale_downloads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let candidate = entry
            .file_name()
            .to_string_lossy()
            .starts_with(DOWNLOAD_PREFIX)
            && std::fs::symlink_metadata(&path).is_ok_and(|m| {
                m.file_type().is_dir()
                    && m.modified()
                        .ok()
                        .and_then(|at| at.elapsed().ok())
                        .is_some_and(|age| age > DOWNLOAD_GRACE)
            });
        if !candidate {
            continue;
        }
        let Ok(Some(_free)) = RootLock::try_acquire(&path.join(DOWNLOAD_LOCK), Holder::Unnamed)
        else {
            continue;
        };
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::debug!("cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A download directory in `dir` named `name`, last changed an hour ago.
    fn left_behind(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let aged = std::fs::create_dir(&path)
            .and_then(|()| std::fs::File::open(&path))
            .and_then(|d| d.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)));
        assert!(aged.is_ok(), "{aged:?}");
        path
    }

    #[test]
    fn a_package_elsewhere_is_named_by_its_origin_or_as_not_parsing() {
        let at = |url: &str| elsewhere(&Location::Url(url.into()));
        assert_eq!(
            at("https://CDN.example.org/p/x.tgz"),
            "the package is at `https://cdn.example.org:443`, another server than the \
             source's, so the source's download key is not sent there"
        );
        for (url, shown) in [
            ("https://a\\b/x.tgz", "https://a\\\\b/x.tgz"),
            ("https://a\0b/x.tgz", "https://a\\0b/x.tgz"),
            ("https://a\x1b[31mb/x.tgz", "https://a\\u{1b}[31mb/x.tgz"),
        ] {
            assert_eq!(
                at(url),
                format!(
                    "the package's location \"{shown}\" cannot be parsed, so the source's \
                     download key is not sent there"
                )
            );
        }
    }

    #[test]
    fn a_download_directory_an_interrupted_download_left_is_removed_by_the_next() {
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = out.path();
        let stale = left_behind(dir, ".modhost-download-stale");
        // Another download's, under way: its lock is held.
        let running = left_behind(dir, ".modhost-download-running");
        let held = RootLock::try_acquire(&running.join(DOWNLOAD_LOCK), Holder::Unnamed);
        assert!(matches!(held, Ok(Some(_))));
        // A link named like one is never followed, nor removed.
        let elsewhere = left_behind(dir, "elsewhere");
        let link = dir.join(".modhost-download-link");
        assert!(std::os::unix::fs::symlink(&elsewhere, &link).is_ok());
        let kept = left_behind(dir, "modhost-download-not-hidden");

        let work = download_dir(dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!stale.exists(), "the stale directory is left");
        for path in [&running, &elsewhere, &link, &kept] {
            assert!(path.exists(), "{} removed", path.display());
        }
        let own = work.path().to_owned();
        assert!(own.is_dir());
        // A second download at once leaves the first one's directory alone.
        let second = download_dir(dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(own.is_dir());
        drop((work, second));
        assert!(!own.exists(), "a finished download leaves its directory");
    }
}
