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
mod tests {
    use super::*;

    /// The `minisign` tool's key and its signature over `test` (minisign-verify's own
    /// example): a default trusted comment, as the tool writes it.
    const TOOL_KEY: &str = "untrusted comment: minisign public key E7620F1842B4E81F\n\
         RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n";
    const TOOL_SIGNATURE: &str = "untrusted comment: signature from minisign secret key\n\
        RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/\
        z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=\n\
        trusted comment: timestamp:1633700835\tfile:test\tprehashed\n\
        wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==\n";

    fn tool_key() -> PublicKey {
        PublicKey::parse(TOOL_KEY).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_public_key_file_is_read_as_the_minisign_tool_reads_it() {
        let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        // What follows the key is not read; a stray line is no reason to refuse it.
        for text in [
            key.to_owned(),
            format!("  {key}  \n"),
            TOOL_KEY.to_owned(),
            format!("{TOOL_KEY}trusted comment: pasted by mistake\n"),
        ] {
            let parsed = PublicKey::parse(&text).map(|k| k.encode());
            assert_eq!(parsed.as_deref(), Ok(key), "{text:?}");
        }
        let other = "RWRsVdpn+Dj1V0yV6VdHDmbrF0wqzrbGp0TMNdpV0SzXHEwAFn3n2tlC";
        assert!(PublicKey::parse(other).is_ok());
        let two = format!("{TOOL_KEY}{other}\n");
        assert_eq!(
            PublicKey::parse(&two).map(|k| k.encode()),
            Err(format!(
                "not one minisign public key: it holds two, `{key}` and `{other}`; pin each \
                 on its own"
            ))
        );
        assert!(PublicKey::parse("untrusted comment: nothing after it\n").is_err());
        // The same key twice (a file concatenated with itself) is one key.
        let twice = format!("{TOOL_KEY}{TOOL_KEY}");
        assert_eq!(
            PublicKey::parse(&twice).map(|k| k.encode()).as_deref(),
            Ok(key)
        );
    }

    #[test]
    fn signatures_made_by_the_minisign_tool_verify_with_their_claims() {
        let key = tool_key();
        assert_eq!(key.key_id(), "E7620F1842B4E81F", "minisign's own way");
        let signed = verify(
            std::slice::from_ref(&key),
            "https://h/a/test",
            b"test",
            TOOL_SIGNATURE.as_bytes(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signed.claims.timestamp, Some(1_633_700_835));
        assert_eq!(signed.claims.file.as_deref(), Some("test"));
        let changed = verify(
            &[key],
            "https://h/a/test",
            b"tesT",
            TOOL_SIGNATURE.as_bytes(),
            None,
        );
        assert!(
            matches!(changed, Err(Refusal::ChangedOrStale { ref key, signed_at: 1_633_700_835, .. }) if key == "E7620F1842B4E81F"),
            "{changed:?}"
        );
    }

    #[test]
    fn an_error_page_in_place_of_a_signed_document_is_named_as_one() {
        for page in [
            &b"<html><body>Service down</body></html>"[..],
            b"\xef\xbb\xbf\n  <!DOCTYPE HTML PUBLIC>",
        ] {
            let refused = verify(
                &[tool_key()],
                "https://h/a/test",
                page,
                TOOL_SIGNATURE.as_bytes(),
                None,
            );
            assert!(
                matches!(&refused, Err(Refusal::WebPage { bytes, .. }) if *bytes == page.len()),
                "{refused:?}"
            );
            let said = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(said.contains("came back as an HTML page"), "{said}");
        }
        // A document that merely holds markup is judged as a document.
        let changed = verify(
            &[tool_key()],
            "https://h/a/test",
            b"{\"html\": \"<html>\"}",
            TOOL_SIGNATURE.as_bytes(),
            None,
        );
        assert!(
            matches!(changed, Err(Refusal::ChangedOrStale { .. })),
            "{changed:?}"
        );
    }

    #[test]
    fn a_document_a_server_gzipped_without_saying_so_is_named_as_such() {
        use std::io::Write as _;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let written = gzip.write_all(b"test");
        assert!(written.is_ok(), "{written:?}");
        let gzipped = gzip.finish().unwrap_or_default();
        let refused = verify(
            &[tool_key()],
            "https://h/a/test",
            &gzipped,
            TOOL_SIGNATURE.as_bytes(),
            None,
        );
        let message = refused.as_ref().map_err(ToString::to_string).err();
        assert!(
            matches!(refused, Err(Refusal::Gzipped { .. }))
                && message.is_some_and(|m| m.contains("without a `Content-Encoding: gzip` header")),
            "{refused:?}"
        );
    }

    /// A key of the `minisign` tool (0.11), and its signatures of [`PHONEBOOK`] as
    /// `minisign -S`, `minisign -S -t 'released by ACME'` and `minisign -S -l` wrote them.
    const TOOL_011_KEY: &str = "untrusted comment: minisign public key A4A8B923D29717AB\n\
         RWSrF5fSI7mopJONlIqiQjCbT5awV9fargFK5qa7HO8qzLMtHcAXoa7z\n";
    const PHONEBOOK: &[u8] = br#"{"rawname":"phonebook"}"#;
    const TOOL_011_DEFAULT: &str = "untrusted comment: signature from minisign secret key\n\
        RUSrF5fSI7mopJGkAU144+97b9QstIbrPNE5SXHYN3SRDU17itw2TDn61O2CFmHjRr/V9kgtTyXvrFLGCVOOn4sUq0MDkaAkUgM=\n\
        trusted comment: timestamp:1796391400\tfile:phonebook.json\thashed\n\
        1OlhQOEET68fNCk8wKZBSCHHc1Y/ztP8tpMhHZU2O79Qd/ID/MPCRWzpwtjsHD1ttNE0mCXnMp/hHbelXvVyAQ==\n";
    const TOOL_011_FREE_TEXT: &str = "untrusted comment: signature from minisign secret key\n\
        RUSrF5fSI7mopJGkAU144+97b9QstIbrPNE5SXHYN3SRDU17itw2TDn61O2CFmHjRr/V9kgtTyXvrFLGCVOOn4sUq0MDkaAkUgM=\n\
        trusted comment: released by ACME\n\
        AeL6bHaOwsngwIi2TEdwYyv1pSJ8iHGpkEruv4CnBarev243p8b1Hn5JJhzcwwXa4slYovMamrT+OXKxQojaAQ==\n";
    const TOOL_011_LEGACY: &str = "untrusted comment: signature from minisign secret key\n\
        RWSrF5fSI7mopIHfx2fw2/pWAaDAuMWJLo7gt+GnyAX2ZFgzH8yCYuUlEfNSO4e9++EIORaeHE2zlUWlTsrrPHfV1w/H4OSxWwU=\n\
        trusted comment: timestamp:1796391400\tfile:phonebook.json\n\
        8TnD/tSNEEVRlF6eIpZSIeMaYB+WFxXoJUmh//e6q7VHoT7jMXw2nfE1t1Ebwz2QT8VD/+b/mLzSu1+oSiQyAQ==\n";

    #[test]
    fn what_the_minisign_tool_writes_is_read_as_it_means_it() {
        let key = PublicKey::parse(TOOL_011_KEY).unwrap_or_else(|e| panic!("{e}"));
        let doc = "https://pbx.example/freepbx/phonebook.json";
        let check = |signature: &str| {
            verify(
                std::slice::from_ref(&key),
                doc,
                PHONEBOOK,
                signature.as_bytes(),
                None,
            )
        };
        // Its default comment: a signing time, and the file's bare name.
        let signed = check(TOOL_011_DEFAULT).map(|s| s.claims);
        assert_eq!(
            signed,
            Ok(Claims {
                timestamp: Some(1_796_391_400),
                file: Some("phonebook.json".into()),
                ..Claims::default()
            })
        );
        let elsewhere = verify(
            std::slice::from_ref(&key),
            "https://pbx.example/freepbx/core.json",
            PHONEBOOK,
            TOOL_011_DEFAULT.as_bytes(),
            None,
        );
        assert!(
            matches!(elsewhere, Err(Refusal::OtherPath { .. })),
            "{elsewhere:?}"
        );
        // Free text: sound, and claiming nothing.
        assert_eq!(
            check(TOOL_011_FREE_TEXT).map(|s| s.claims),
            Ok(Claims::default())
        );
        // `-l`: refused, saying how to sign again.
        let legacy = check(TOOL_011_LEGACY);
        assert!(matches!(legacy, Err(Refusal::Legacy { .. })), "{legacy:?}");
    }

    #[test]
    fn a_file_claim_fits_its_path_on_a_slash_boundary() {
        let claims = |file: &str| Claims {
            file: Some(file.to_owned()),
            ..Claims::default()
        };
        let doc = "https://h/repo/freepbx/phonebook.json";
        assert!(claims("freepbx/phonebook.json").names(doc));
        assert!(claims("phonebook.json").names(doc), "minisign's bare name");
        assert!(!claims("freepbx/core.json").names(doc));
        assert!(!claims("book.json").names(doc));
        assert!(!claims("a2/freepbx/phonebook.json").names(doc));
        assert!(Claims::default().names(doc), "free text claims nothing");
        assert!(claims("index.json").names("/srv/repo/index.json"));
        // One URL, however its unreserved characters are written; `%2F` is no `/`.
        assert!(claims("freepbx/phonebook.json").names("https://h/freepbx/phone%62ook.json"));
        assert!(!claims("freepbx/phonebook.json").names("https://h/freepbx%2Fphonebook.json"));
        assert!(!claims("phonebook.json").names("https://h/phone%zzbook.json"));
        // A channel chosen by its query: a claim of that query fits it and no other; a
        // claim of the path alone fits the path with any query.
        let stable = "https://h/freepbx/phonebook.json?channel=stable";
        assert!(claims("freepbx/phonebook.json?channel=stable").names(stable));
        assert!(claims("phonebook.json?channel=stable").names(&format!("{stable}#top")));
        assert!(!claims("freepbx/phonebook.json?channel=beta").names(stable));
        assert!(!claims("freepbx/phonebook.json?channel=stable").names(doc));
        assert!(claims("freepbx/phonebook.json").names(stable));
        // A claimed query is the location's whole query, not a suffix across its `/`s.
        assert!(
            !claims("phonebook.json?channel=stable")
                .names("https://h/other.php?u=/phonebook.json?channel=stable")
        );
        assert!(!claims("phonebook.json?channel=stable").names(&format!("{stable}&x=1")));
    }

    #[test]
    fn claims_read_back_as_written_and_free_text_claims_nothing() {
        let claims = Claims {
            timestamp: Some(1_700_000_000),
            file: Some("freepbx/core.json".into()),
            serial: Some(17),
            expires: Some(1_700_604_800),
        };
        assert_eq!(
            claims.to_comment(),
            "timestamp:1700000000\tfile:freepbx/core.json\tserial:17\texpires:1700604800"
        );
        assert_eq!(Claims::parse(&claims.to_comment()), claims);
        assert_eq!(Claims::parse("signed by ACME, build 42"), Claims::default());
        assert_eq!(Claims::parse("timestamp:soon\tfile:"), Claims::default());
        assert_eq!(Claims::unreadable(&claims.to_comment()), None);
        assert_eq!(Claims::unreadable("signed by ACME, build 42"), None);
        assert_eq!(
            Claims::unreadable("file:a.json\ttimestamp: 2026-12-05 \tserial:x"),
            Some(("timestamp", "2026-12-05"))
        );
        assert_eq!(
            Claims::unreadable("serial:-1\ttimestamp:1"),
            Some(("serial", "-1"))
        );
        assert_eq!(Claims::repeated(&claims.to_comment()), None);
        assert_eq!(
            Claims::repeated("file:a.json\ttimestamp:1\tnote:x\tnote:y\tfile:b.json"),
            Some("file")
        );
    }

    #[test]
    fn a_signature_by_an_unpinned_key_names_both_ids() {
        let other = PublicKey::parse("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")
            .map(|k| k.id)
            .unwrap_or_default();
        assert_eq!(key_id(&other), "E7620F1842B4E81F");
        let refused = verify(&[], "doc", b"test", TOOL_SIGNATURE.as_bytes(), None);
        assert!(
            matches!(&refused, Err(Refusal::OtherKey { seen, pinned, .. })
                if seen == "E7620F1842B4E81F" && pinned.is_empty()),
            "{refused:?}"
        );
        let garbage = verify(&[tool_key()], "doc", b"test", b"garbage", None);
        assert!(
            matches!(garbage, Err(Refusal::Malformed { .. })),
            "{garbage:?}"
        );
    }
}
