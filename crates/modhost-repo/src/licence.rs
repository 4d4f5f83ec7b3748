//! Licence-gated package groups (jBackend-style): `groups.toml`, and the licence keys
//! derived from each group's secret.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result, file_error};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::build::read_if_present;

/// The fewest random bytes a group's secret must encode: 64 hex digits, or 43 characters
/// of base64.
pub const MIN_SECRET: usize = 32;

/// How to make a secret, for the messages refusing one.
const MAKE_SECRET: &str = "make one with `modhost repo licence-secret` (or `openssl rand -hex 32`)";

/// `groups.toml` beside the packages: licence-gated package groups (jBackend-style).
///
/// ```toml
/// [groups.pro]
/// secret = "65a153f0d1c68f6b8c0c3334585905ef5f2f22c8317b4cfd06e016c3c3775c8f"
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

/// `groups.toml` as written, its fields optional, so that a missing one is reported with
/// the group it is missing from (serde names the field alone).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    #[serde(default)]
    groups: BTreeMap<String, RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    secret: Option<String>,
    modules: Option<Vec<String>>,
}

impl Groups {
    /// The licence key of `email` in group `group` ([`licence_key`] with the group's
    /// secret); `None` when there is no such group.
    pub fn licence_key(&self, group: &str, email: &str) -> Option<String> {
        self.groups
            .get(group)
            .map(|g| licence_key(&g.secret, email))
    }

    /// The licence key of `email` in group `group` of the groups file at `path`, for a
    /// publisher handing keys out: a missing file, an unknown group or an empty address is
    /// an error saying so (where a build takes a missing file for no groups).
    pub fn licence_key_in(path: &Path, group: &str, email: &str) -> Result<String> {
        let refused = |message: String| Error::File {
            path: path.to_owned(),
            message,
        };
        let Some(text) = read_if_present(path)? else {
            return Err(refused(
                "no such file: licence keys come from the `groups.toml` of the directory \
                 `repo build` publishes"
                    .into(),
            ));
        };
        let groups = Groups::parse(path, &text)?;
        if email.trim().is_empty() {
            return Err(refused(
                "the e-mail address is empty: a key is made for one customer's address".into(),
            ));
        }
        groups.licence_key(group, email).ok_or_else(|| {
            let known: Vec<String> = groups.groups.keys().map(|g| format!("`{g}`")).collect();
            refused(match known.is_empty() {
                true => format!("no group `{group}`: the file defines no groups"),
                false => format!("no group `{group}`; its groups are {}", known.join(", ")),
            })
        })
    }

    /// Reads `path`; a missing file means no groups.
    pub fn load(path: &Path) -> Result<Self> {
        match read_if_present(path)? {
            Some(text) => Groups::parse(path, &text),
            None => Ok(Groups::default()),
        }
    }

    /// Parses `text`, the contents of `path`. A group without a secret or modules, or
    /// whose secret is not [`MIN_SECRET`] random bytes in hex or base64, is refused: its
    /// licence keys would be guessable.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self> {
        let refused = |message: String| Error::File {
            path: path.to_owned(),
            message,
        };
        let raw: RawGroups = toml::from_str(text).map_err(|e| refused(e.to_string()))?;
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for (name, group) in raw.groups {
            let Some(secret) = group.secret else {
                return Err(refused(format!(
                    "group `{name}` has no `secret`: add `secret = \"…\"` to `[groups.{name}]`; \
                     {MAKE_SECRET}"
                )));
            };
            let Some(modules) = group.modules else {
                return Err(refused(format!(
                    "group `{name}` has no `modules`: add `modules = [\"RAWNAME\", …]` to \
                     `[groups.{name}]`, the modules whose packages need a licence key"
                )));
            };
            if let Err(weakness) = check_secret(&secret) {
                return Err(refused(format!(
                    "group `{name}`: its secret {weakness}; a licence secret must be at least \
                     {MIN_SECRET} random bytes written as hex (64 digits) or base64 \
                     (43 characters or more): {MAKE_SECRET}"
                )));
            }
            // Keys are derived from the secret alone: groups sharing one would open each
            // other's packages.
            if let Some(other) = groups
                .iter()
                .find(|(_, g)| g.secret == secret)
                .map(|(o, _)| o)
            {
                return Err(refused(format!(
                    "groups `{other}` and `{name}` have the same secret, so a licence key of \
                     either opens the other's packages: give each group its own; {MAKE_SECRET}"
                )));
            }
            // A package is gated by one group: a key of the other would be refused for it.
            if let Some((shared, other)) = modules.iter().find_map(|m| {
                groups
                    .iter()
                    .find(|(_, g)| g.modules.contains(m))
                    .map(|(other, _)| (m, other))
            }) {
                return Err(refused(format!(
                    "module `{shared}` is in groups `{other}` and `{name}`: a module's packages \
                     are gated by one group, whose keys alone open them; name it in one"
                )));
            }
            groups.insert(name, Group { secret, modules });
        }
        Ok(Groups { groups })
    }

    /// The modules the groups of `text` (a `groups.toml`, as an earlier build kept it)
    /// gate, read leniently: what cannot be read gates nothing.
    pub(crate) fn gated_in(text: &str) -> Vec<String> {
        toml::from_str::<RawGroups>(text)
            .map(|raw| {
                raw.groups
                    .into_values()
                    .flat_map(|g| g.modules.unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
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
    hex::encode(licence_mac(secret, email).finalize().into_bytes())
}

/// Whether `key` is [`licence_key`] of `email` for a group with `secret`, compared in
/// constant time: how fast a guess is refused must not tell how much of it is right.
pub fn licence_key_matches(secret: &str, email: &str, key: &str) -> bool {
    let Some(bytes) = unhex(key) else {
        return false;
    };
    licence_mac(secret, email).verify_slice(&bytes).is_ok()
}

/// A new group secret: [`MIN_SECRET`] bytes from the system's random source, as hex.
pub fn generate_secret() -> String {
    loop {
        let mut bytes = [0; MIN_SECRET];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let secret = hex::encode(bytes);
        // Random bytes fail the pattern checks with a negligible chance; never hand out a
        // secret that `groups.toml` would refuse.
        if check_secret(&secret).is_ok() {
            return secret;
        }
    }
}

/// Whether `secret` holds at least [`MIN_SECRET`] bytes that look random: it must be hex
/// or base64 (what tools that make random secrets write), long enough once decoded, and
/// neither repeat a pattern nor use few distinct bytes. Length alone would let
/// `aaaa…` or `passwordpassword…` through, whose licence keys anyone can compute. The
/// `Err` says what is wrong, never the secret.
fn check_secret(secret: &str) -> std::result::Result<(), String> {
    let text = secret.trim();
    // Keys are the HMAC of the secret as written: one a shop computes from the secret
    // without the spaces would not match.
    if text != secret {
        return Err(
            "has spaces or a line break around it: remove them (keys are computed \
                    from the secret exactly as written)"
                .into(),
        );
    }
    let bytes = if text.bytes().all(|b| b.is_ascii_hexdigit()) {
        if text.len() < 2 * MIN_SECRET {
            return Err(format!(
                "is {} hex digits ({} bytes)",
                text.len(),
                text.len() / 2
            ));
        }
        unhex(text).ok_or_else(|| "has an odd number of hex digits".to_owned())?
    } else {
        let decoded = unbase64(text).ok_or_else(|| {
            "is neither hex nor base64 (a passphrase is far less random than it is long)".to_owned()
        })?;
        if decoded.len() < MIN_SECRET {
            return Err(format!(
                "is {} characters of base64 ({} bytes)",
                text.len(),
                decoded.len()
            ));
        }
        // A repeated block is said to be one (below), words or not.
        if reads_as_words(text) && !looks_patterned(&decoded) {
            return Err(
                "reads as words, not base64 of random bytes: it is all letters, mostly of one \
                 case (a passphrase is far less random than it is long)"
                    .into(),
            );
        }
        decoded
    };
    if looks_patterned(&bytes) {
        return Err("is not random: its bytes repeat or follow a pattern".into());
    }
    // Hex or base64 of a sentence: random bytes are all printable ASCII about once in
    // 10^14.
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(
            "decodes to text, not random bytes (a passphrase is far less random than it is long)"
                .into(),
        );
    }
    Ok(())
}

/// Whether base64 `text` reads as words run together (`thequickbrownfox…`,
/// `OurPbxSecret…`), whose decoded bytes look random though the words are not: letters
/// only, and mostly of one case. Base64 of random bytes is letters only about once in
/// 9,000, and of those, mostly of one case (seven in ten or more) about once in 250.
fn reads_as_words(text: &str) -> bool {
    let text = text.trim_end_matches('=');
    if !text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    let upper = text.bytes().filter(u8::is_ascii_uppercase).count();
    let minority = upper.min(text.len() - upper);
    10 * minority <= 3 * text.len()
}

/// The fewest distinct bytes the [`MIN_SECRET`] bytes of a secret must have: 32 random
/// bytes have about 30; fewer than 16 happens by chance less often than once in 2^60.
const MIN_DISTINCT_BYTES: usize = 16;
/// The fewest distinct steps from one byte to the next: random bytes have about 29 too;
/// a counting or alternating run has one or two. Kept low so that a hand-typed but
/// irregular hex string still passes.
const MIN_DISTINCT_STEPS: usize = 8;

/// Whether `bytes` are obviously not random: few distinct values (`0000…`, `abab…`), a
/// counting or otherwise regular run (`00 01 02 …`), or a block repeated
/// (`password` ×4).
fn looks_patterned(bytes: &[u8]) -> bool {
    let distinct = |values: &mut dyn Iterator<Item = u8>| {
        let mut seen = [false; 256];
        values.for_each(|v| seen[usize::from(v)] = true);
        seen.iter().filter(|&&s| s).count()
    };
    let steps = &mut bytes.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let repeats =
        (1..=bytes.len() / 2).any(|period| bytes.iter().zip(&bytes[period..]).all(|(a, b)| a == b));
    distinct(&mut bytes.iter().copied()) < MIN_DISTINCT_BYTES
        || distinct(steps) < MIN_DISTINCT_STEPS
        || repeats
}

/// The bytes of base64 `text`, standard or URL-safe, padded or not.
fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::alphabet;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&alphabet::URL_SAFE, config);
    standard
        .decode(text)
        .or_else(|_| url_safe.decode(text))
        .ok()
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
    hex::decode(text).ok()
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
        .map_err(|e| match e.kind() {
            // A secret is never written over: the one there may be all that signs or
            // gates what is published.
            std::io::ErrorKind::AlreadyExists => crate::Error::File {
                path: path.to_owned(),
                message: "exists already, and a secret is never written over: choose \
                          another file, or move this one away first"
                    .into(),
            },
            // What is missing is the directory it would go in, not the file.
            std::io::ErrorKind::NotFound => crate::Error::File {
                path: path.to_owned(),
                message: format!(
                    "cannot be written: its directory `{}` does not exist",
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .display()
                ),
            },
            _ => file_error(path)(e),
        })?;
    // The mode given to open is masked by the umask; an odd one could leave it unreadable.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(file_error(path))
}

#[cfg(test)]
mod tests;
