//! Publisher keys and what their signatures prove: minisign's format, with the claims of
//! the trusted comment (which document, which release, when, until when) read, and each
//! way a signature can fail told apart ([`Refusal`]).
//!
//! minisign signs twice: the document's BLAKE2b hash (the "prehashed" signature, or the
//! document itself for a legacy one), then that signature together with the trusted
//! comment. The comment is free text to minisign; `repo build` writes it as minisign's
//! own default does, tab-separated `key:value` fields ([`Claims`]), and adds the
//! release's serial and validity end.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::trust::Refusal;

/// The extension of a document's signature file: minisign's format, so publishers can sign
/// with the `minisign` tool and anyone can check modhost's signatures with it.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// The two bytes that open a legacy signature, made over the document itself (`minisign
/// -S -l`); a prehashed one opens with `ED`.
const LEGACY: [u8; 2] = *b"Ed";

/// A publisher's public key, pinned per source: a minisign public key (the `RW…` line of
/// a `minisign.pub`).
#[derive(Clone)]
pub struct PublicKey {
    key: minisign_verify::PublicKey,
    encoded: String,
    id: [u8; 8],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Parses a minisign public key: its base64 line, or a whole `minisign.pub` (an
    /// untrusted comment line, then the key). As the minisign tool does, the key is the
    /// line after the comment and what follows it is not read, unless it is another key:
    /// which of two was meant cannot be told, so that is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        // A file an editor saved with a byte-order mark, which minisign reads past too.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut line = lines.next().unwrap_or_default();
        if line.starts_with("untrusted comment:") {
            line = lines.next().unwrap_or_default();
        }
        let key = minisign_verify::PublicKey::from_base64(line)
            .map_err(|e| format!("not a minisign public key: {e}"))?;
        if let Some(other) =
            lines.find(|l| *l != line && minisign_verify::PublicKey::from_base64(l).is_ok())
        {
            return Err(format!(
                "not one minisign public key: it holds two, `{line}` and `{other}`; pin \
                 each on its own"
            ));
        }
        // minisign-verify keeps the key id to itself; it is bytes 2..10 of the key.
        let id = STANDARD
            .decode(line)
            .ok()
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.get(2..10)?).ok())
            .ok_or_else(|| "not a minisign public key: no key id".to_owned())?;
        Ok(PublicKey {
            key,
            encoded: line.to_owned(),
            id,
        })
    }

    /// The key's base64 line.
    pub fn encode(&self) -> String {
        self.encoded.clone()
    }

    /// The key's id as minisign shows it (`minisign public key E7620F1842B4E81F`).
    pub fn key_id(&self) -> String {
        key_id(&self.id)
    }
}

/// The `key:value` fields of a trusted comment, separated by tabs, each trimmed; text
/// without a `:` is no field.
fn fields(comment: &str) -> impl Iterator<Item = (&str, &str)> {
    comment
        .split('\t')
        .filter_map(|field| field.split_once(':'))
        .map(|(key, value)| (key.trim(), value.trim()))
}

/// A key id as minisign shows it: its eight bytes as a little-endian number, in hex.
fn key_id(id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

/// What a trusted comment claims, as `key:value` fields separated by tabs: minisign's
/// default comment is `timestamp:SECONDS\tfile:NAME` (the file's name without its
/// directory), and `repo build` writes the document's path from the repository's root,
/// the release serial and the validity end as well. Free text claims nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// When it was signed, in seconds since the epoch (`timestamp:`).
    pub timestamp: Option<u64>,
    /// The document it was made for (`file:`): a path from the repository's root, or
    /// minisign's bare file name.
    pub file: Option<String>,
    /// The release serial it belongs to (`serial:`).
    pub serial: Option<u64>,
    /// Until when the publisher vouches for it, in seconds since the epoch (`expires:`).
    pub expires: Option<u64>,
}

impl Claims {
    /// Reads the fields of `comment`; unknown fields and malformed numbers claim nothing.
    pub fn parse(comment: &str) -> Claims {
        let mut claims = Claims::default();
        for (key, value) in fields(comment) {
            let number = || value.parse::<u64>().ok();
            match key {
                "timestamp" => claims.timestamp = number(),
                "serial" => claims.serial = number(),
                "expires" => claims.expires = number(),
                "file" if !value.is_empty() => claims.file = Some(value.to_owned()),
                _ => {}
            }
        }
        claims
    }

    /// The first field of `comment` that [`Claims::parse`] knows but cannot read — a
    /// `timestamp:`, `serial:` or `expires:` that is not a number — with its value.
    pub fn unreadable(comment: &str) -> Option<(&str, &str)> {
        fields(comment).find(|(key, value)| {
            matches!(*key, "timestamp" | "serial" | "expires") && value.parse::<u64>().is_err()
        })
    }

    /// The first field [`Claims::parse`] knows that `comment` claims more than once.
    pub fn repeated(comment: &str) -> Option<&str> {
        let known: Vec<&str> = fields(comment)
            .map(|(key, _)| key)
            .filter(|key| matches!(*key, "timestamp" | "serial" | "expires" | "file"))
            .collect();
        known
            .iter()
            .enumerate()
            .find(|(i, key)| known[..*i].contains(key))
            .map(|(_, key)| *key)
    }

    /// The trusted comment that claims these fields, in [`Claims::parse`]'s format.
    pub fn to_comment(&self) -> String {
        let mut fields = Vec::new();
        if let Some(timestamp) = self.timestamp {
            fields.push(format!("timestamp:{timestamp}"));
        }
        if let Some(file) = &self.file {
            fields.push(format!("file:{file}"));
        }
        if let Some(serial) = self.serial {
            fields.push(format!("serial:{serial}"));
        }
        if let Some(expires) = self.expires {
            fields.push(format!("expires:{expires}"));
        }
        fields.join("\t")
    }

    /// Whether the `file` claim fits the document at `location` (a URL or a path): the
    /// claimed path ends it, on a `/` boundary. A claim of minisign's bare file name fits
    /// that file in any directory; no claim fits anything. A claim with a query
    /// (`phonebook.json?channel=stable`) fits only that query, so that one channel's
    /// document cannot pass for another's; one without fits the path with any query.
    pub fn names(&self, location: &str) -> bool {
        let Some(file) = &self.file else {
            return true;
        };
        let location = location.split('#').next().unwrap_or_default();
        let (path, query) = location.split_once('?').unwrap_or((location, ""));
        let (file, claimed_query) = match file.split_once('?') {
            Some((file, claimed)) => (file, Some(claimed)),
            None => (file.as_str(), None),
        };
        // The path as minisign's rule has it, on a `/` boundary; the query, when claimed,
        // the whole of the location's.
        let path = unreserved_decoded(path);
        let file = file.trim_start_matches('/');
        let path_fits = path == file || path.ends_with(&format!("/{file}"));
        path_fits
            && claimed_query
                .is_none_or(|claimed| unreserved_decoded(query) == unreserved_decoded(claimed))
    }
}

/// `path` with each percent-encoded unreserved character (letters, digits, `-._~`)
/// decoded: `phone%62ook.json` and `phonebook.json` are one URL (RFC 3986 §6.2.2.2).
/// Anything else stays encoded: a `%2F` is no `/`.
fn unreserved_decoded(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        match byte {
            Some(b) => {
                decoded.push(char::from(b));
                i += 3;
            }
            None => {
                let c = path[i..].chars().next().unwrap_or_default();
                decoded.push(c);
                i += c.len_utf8();
            }
        }
    }
    decoded.into()
}

/// What a verified signature proves: the key that made it, and what its comment claims.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The pinned key that made it.
    pub key: PublicKey,
    /// What its trusted comment claims.
    pub claims: Claims,
}

/// Checks `signature` (the text of a `.minisig` file) over `data`, the document at
/// `document`, against the pinned `keys`; `serial` is the release the document must
/// belong to, when there is one. Only prehashed signatures (minisign's default since
/// 0.8) are accepted. Each failure is a [`Refusal`] of its own: another key, a legacy
/// signature, a stale signature (made for another path or release), a changed document,
/// and — the signature being sound — a document served under another name or from
/// another release.
pub fn verify(
    keys: &[PublicKey],
    document: &str,
    data: &[u8],
    signature: &[u8],
    serial: Option<u64>,
) -> Result<Signed, Refusal> {
    let malformed = |why: &str| Refusal::Malformed {
        document: document.to_owned(),
        why: why.to_owned(),
    };
    if is_web_page(signature) {
        return Err(malformed(&format!(
            "an HTML page ({} bytes) came back in its place: the server answered with an \
             error, fallback or login page where the `.minisig` file should be (is it \
             published beside the document?)",
            signature.len()
        )));
    }
    let text = std::str::from_utf8(signature).map_err(|_| malformed("it is not text"))?;
    let decoded = minisign_verify::Signature::decode(text)
        .map_err(|e| malformed(&format!("it is not a minisign signature ({e})")))?;
    // The algorithm and the key id open the signature's first base64 line.
    let head = text
        .lines()
        .nth(1)
        .and_then(|line| STANDARD.decode(line.trim()).ok())
        .and_then(|bytes| <[u8; 10]>::try_from(bytes.get(..10)?).ok())
        .ok_or_else(|| malformed("it is not a minisign signature"))?;
    let (algorithm, id) = head.split_at(2);
    let id = <[u8; 8]>::try_from(id).map_err(|_| malformed("it has no key id"))?;
    let Some(key) = keys.iter().find(|k| k.id == id) else {
        return Err(Refusal::OtherKey {
            document: document.to_owned(),
            seen: key_id(&id),
            pinned: keys.iter().map(PublicKey::key_id).collect(),
        });
    };
    if algorithm == LEGACY {
        return Err(Refusal::Legacy {
            document: document.to_owned(),
        });
    }
    // Read before it is proven: a failed signature's comment only tells which message
    // fits, and the document is refused whatever it says.
    let claims = Claims::parse(decoded.trusted_comment());
    let mismatch = Mismatch::between(&claims, document, serial);
    let document = document.to_owned();
    if key.key.verify(data, &decoded, false).is_err() {
        if data.starts_with(&[0x1f, 0x8b]) {
            return Err(Refusal::Gzipped {
                document,
                key: key.key_id(),
            });
        }
        if is_web_page(data) {
            return Err(Refusal::WebPage {
                document,
                bytes: data.len(),
            });
        }
        return Err(match mismatch {
            Some(Mismatch::Path(file)) => Refusal::StalePath { document, file },
            Some(Mismatch::Serial { signed, release }) => Refusal::StaleSerial {
                document,
                signed,
                release,
            },
            None => match (serial, claims.timestamp) {
                (None, Some(signed_at)) => Refusal::ChangedOrStale {
                    document,
                    key: key.key_id(),
                    signed_at,
                },
                _ => Refusal::Changed {
                    document,
                    key: key.key_id(),
                },
            },
        });
    }
    // Signed so by its publisher, but read one way by one client and another way by the
    // next: which of the two is meant cannot be told.
    if let Some(field) = Claims::repeated(decoded.trusted_comment()) {
        return Err(Refusal::Malformed {
            document,
            why: format!(
                "its trusted comment claims `{field}:` more than once, so what it claims \
                 cannot be told; re-sign it with one `{field}:`"
            ),
        });
    }
    match mismatch {
        Some(Mismatch::Path(file)) => Err(Refusal::OtherPath { document, file }),
        Some(Mismatch::Serial { signed, release }) => Err(Refusal::OtherRelease {
            document,
            signed,
            release,
        }),
        None => match Claims::unreadable(decoded.trusted_comment()) {
            // Sound, but a freshness claim nobody can read would pass for none at all.
            Some((field, value)) => Err(Refusal::Malformed {
                document,
                why: format!(
                    "its trusted comment claims `{field}:{value}`, which is not a number of \
                     {}; re-sign it with minisign or modhost's repository builder, which write numbers there",
                    if field == "serial" {
                        "releases"
                    } else {
                        "seconds since 1970"
                    }
                ),
            }),
            None => Ok(Signed {
                key: key.clone(),
                claims,
            }),
        },
    }
}

/// How a signature's claims disagree with the document it is checked for.
enum Mismatch {
    /// It was made for the document at this other path.
    Path(String),
    /// It was made for release serial `signed`; the document must belong to `release`.
    Serial {
        /// The serial it claims.
        signed: u64,
        /// The serial of the release being read.
        release: u64,
    },
}

impl Mismatch {
    /// How `claims` disagree with the document at `document` of release `serial`.
    fn between(claims: &Claims, document: &str, serial: Option<u64>) -> Option<Mismatch> {
        if let Some(file) = claims.file.as_ref().filter(|_| !claims.names(document)) {
            return Some(Mismatch::Path(file.clone()));
        }
        match (claims.serial, serial) {
            (Some(signed), Some(release)) if signed != release => {
                Some(Mismatch::Serial { signed, release })
            }
            _ => None,
        }
    }
}

/// Whether `data` is an HTML page: what a failing server or a captive portal sends in
/// place of a document, with status 200. No document modhost reads starts so.
pub(crate) fn is_web_page(data: &[u8]) -> bool {
    let start = data
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(data)
        .trim_ascii_start();
    let head = &start[..start.len().min(16)];
    [&b"<!doctype html"[..], b"<html", b"<head", b"<body"]
        .iter()
        .any(|tag| head.len() >= tag.len() && head[..tag.len()].eq_ignore_ascii_case(tag))
}

#[cfg(test)]
mod tests;
