//! Whether this process may write a root, said when it may not: a read-only file system,
//! or a root that belongs to another user (an administrator's `sudo` in a service's root
//! leaves files the service cannot change).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::Error;

/// Says why a root could not be opened when it is that this process may not write it:
/// a read-only file system, or a root that belongs to another user.
pub(crate) fn not_writable(root: &Path, error: Error) -> Error {
    let (path, source) = match &error {
        Error::Io { path, source } if path.starts_with(root) => (path, source),
        Error::State(modhost_state::Error::Io { path, source }) if path.starts_with(root) => {
            (path, source)
        }
        _ => return error,
    };
    // A file in the root the user may not write (`modhost.db` left read-only) is named.
    let file = match path.strip_prefix(root) {
        Ok(inside) if !inside.as_os_str().is_empty() => format!("`{}`: ", inside.display()),
        _ => String::new(),
    };
    use rustix::io::Errno;
    let why = match Errno::from_io_error(source) {
        Some(Errno::ROFS) => "it is on a read-only file system: remount it read-write, or copy \
                              the root to a writable place to look at it"
            .to_owned(),
        Some(Errno::ACCESS | Errno::PERM) => match std::fs::metadata(root) {
            Ok(metadata) if metadata.uid() != rustix::process::geteuid().as_raw() => format!(
                "it belongs to {}, and this is {}: run modhost as its owner",
                user(metadata.uid()),
                user(rustix::process::geteuid().as_raw())
            ),
            _ => format!("{file}{source}: let this user write it, or run modhost as one who may"),
        },
        _ => return error,
    };
    Error::RootNotWritable {
        root: root.to_owned(),
        why,
    }
}

/// Warns when the superuser opens a root another user owns: what it makes there would
/// belong to the superuser, and the owner's own modhost could not change it afterwards.
pub(crate) fn warn_if_another_users(root: &Path) {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    if let Ok(metadata) = std::fs::metadata(root)
        && metadata.uid() != 0
    {
        tracing::warn!(
            "running as root in the modhost root `{}`, which belongs to {}: what this run \
             makes will belong to root, and modhost run as its owner will not be able to \
             change it; run modhost as its owner",
            root.display(),
            user(metadata.uid())
        );
    }
}

/// User `uid`, by name when the system's user list has it.
fn user(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|users| {
            users.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
            })
        });
    match name {
        Some(name) => format!("user `{name}` (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_on_a_read_only_file_system_is_named_so() {
        let root = Path::new("/srv/modhost");
        let error = Error::Io {
            path: root.join("users"),
            source: std::io::Error::from_raw_os_error(30),
        };
        let said = not_writable(root, error).to_string();
        assert!(
            said.starts_with(
                "the modhost root `/srv/modhost` cannot be written (it is on a read-only file system: remount it read-write"
            ),
            "{said}"
        );
        // Elsewhere than the root, or another failure, is left as it is.
        let elsewhere = Error::Io {
            path: Path::new("/etc/x").to_owned(),
            source: std::io::Error::from_raw_os_error(30),
        };
        assert!(matches!(not_writable(root, elsewhere), Error::Io { .. }));
        let missing = Error::Io {
            path: root.join("users"),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert!(matches!(not_writable(root, missing), Error::Io { .. }));
    }

    #[test]
    fn a_file_of_ones_own_root_one_may_not_write_is_named() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let error = Error::Io {
            path: root.path().join("modhost.db"),
            source: std::io::Error::from_raw_os_error(13),
        };
        let said = not_writable(root.path(), error).to_string();
        assert!(
            said.contains("cannot be written (`modhost.db`: Permission denied"),
            "{said}"
        );
    }
}
