//! Licence-gated package groups (jBackend-style): `groups.toml`, and the licence keys
//! derived from each group's secret.

use std::collections::BTreeMap;
use std::path::Path;

use hmac::{Hmac, Mac};
use modhost_update::{Error, Result, file_error, hex};
use serde::Deserialize;
use sha2::Sha256;

use crate::build::read_if_present;

/// The fewest characters a group's secret may have: 32 random bytes written as hex are 64.
pub const MIN_SECRET: usize = 32;

/// `groups.toml` beside the packages: licence-gated package groups (jBackend-style).
///
/// ```toml
/// [groups.pro]
/// secret = "0f6c0c9f3e5b2a7d8e1f4a6b9c2d5e8f1a3b6c9d2e5f8a1b4c7d0e3f6a9b2c5d"
/// modules = ["phonebook"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    /// The groups, by name.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
}

/// One licence group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The secret licence keys are derived from; never published.
    pub secret: String,
    /// The modules whose packages need a key.
    pub modules: Vec<String>,
}

impl Groups {
    /// Reads `path`; a missing file means no groups.
    pub fn load(path: &Path) -> Result<Self> {
        match read_if_present(path)? {
            Some(text) => Groups::parse(path, &text),
            None => Ok(Groups::default()),
        }
    }

    /// Parses `text`, the contents of `path`. A group whose secret is shorter than
    /// [`MIN_SECRET`] is refused: its licence keys would be guessable.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self> {
        let refused = |message: String| Error::File {
            path: path.to_owned(),
            message,
        };
        let groups: Groups = toml::from_str(text).map_err(|e| refused(e.to_string()))?;
        for (name, group) in &groups.groups {
            let length = group.secret.trim().len();
            if length < MIN_SECRET {
                return Err(refused(format!(
                    "group `{name}`: its secret is {length} characters; a licence secret needs \
                     at least {MIN_SECRET} (say, 64 hex digits from `openssl rand -hex 32`)"
                )));
            }
        }
        Ok(groups)
    }

    /// The group `rawname` belongs to, if any.
    pub fn group_of(&self, rawname: &str) -> Option<(&str, &Group)> {
        self.groups
            .iter()
            .find(|(_, g)| g.modules.iter().any(|m| m == rawname))
            .map(|(name, g)| (name.as_str(), g))
    }
}

/// The licence key of `email` for a group with `secret`: HMAC-SHA256, hex.
pub fn licence_key(secret: &str, email: &str) -> String {
    hex(&licence_mac(secret, email).finalize().into_bytes())
}

/// Whether `key` is [`licence_key`] of `email` for a group with `secret`, compared in
/// constant time: how fast a guess is refused must not tell how much of it is right.
pub fn licence_key_matches(secret: &str, email: &str, key: &str) -> bool {
    let Some(bytes) = unhex(key) else {
        return false;
    };
    licence_mac(secret, email).verify_slice(&bytes).is_ok()
}

fn licence_mac(secret: &str, email: &str) -> Hmac<Sha256> {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(email.trim().to_ascii_lowercase().as_bytes());
    mac
}

/// The bytes of hex `text`, if it is hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// Creates `path` readable by its owner alone, whatever the umask: the private part,
/// which holds the groups' secrets.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)))
        .map_err(file_error(path))
}

/// Writes `path` (a new file) readable by its owner alone, whatever the umask, for secrets.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error(path))?;
    // The mode given to open is masked by the umask; an odd one could leave it unreadable.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(file_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_keys_depend_on_secret_and_email_only() {
        let key = licence_key("s3cret", "Admin@Example.org");
        assert_eq!(key, licence_key("s3cret", " admin@example.org "));
        assert_ne!(key, licence_key("s3cret", "other@example.org"));
        assert_ne!(key, licence_key("other", "admin@example.org"));
        assert_eq!(key.len(), 64);
    }

    #[test]
    fn a_licence_key_matches_only_its_email_and_secret() {
        let key = licence_key("s3cret", "admin@example.org");
        assert!(licence_key_matches("s3cret", "Admin@Example.org", &key));
        assert!(licence_key_matches(
            "s3cret",
            "admin@example.org",
            &key.to_ascii_uppercase()
        ));
        let mut wrong = key.clone();
        wrong.replace_range(63.., if key.ends_with('0') { "1" } else { "0" });
        for (secret, email, key) in [
            ("s3cret", "admin@example.org", wrong.as_str()),
            ("s3cret", "admin@example.org", &key[..62]),
            ("s3cret", "admin@example.org", ""),
            ("s3cret", "admin@example.org", "zz"),
            ("s3cret", "admin@example.org", &format!("+{}", &key[1..])),
            ("s3cret", "other@example.org", key.as_str()),
            ("other", "admin@example.org", key.as_str()),
        ] {
            assert!(!licence_key_matches(secret, email, key), "{key}");
        }
    }

    #[test]
    fn a_weak_group_secret_is_refused() {
        let path = Path::new("groups.toml");
        let weak = "[groups.pro]\nsecret = \"s3cret\"\nmodules = [\"phonebook\"]\n";
        let message = Groups::parse(path, weak)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("group `pro`: its secret is 6 characters")
                && message.contains("at least 32"),
            "{message}"
        );
        let strong = weak.replace("s3cret", &"ab".repeat(32));
        assert!(Groups::parse(path, &strong).is_ok());
    }
}
