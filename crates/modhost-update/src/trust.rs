//! How far a source can be trusted: what the host last accepted from it ([`Seen`]), what
//! a check established ([`Trust`]), and each reason a signed source's answer is refused
//! ([`Refusal`]), in words an administrator can act on.

use serde::Serialize;

/// What the host last accepted from a channel, kept between checks so that an older copy
/// is refused (a rollback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// The highest release serial accepted: a modhost repository's `release.json`.
    pub serial: Option<u64>,
    /// The latest signing time accepted, from a signature's `timestamp:` claim: how a
    /// single-document channel (FreePBX, Joomla, a2) shows it is no older copy.
    pub signed_at: Option<u64>,
}

/// What a check of a channel established about its answer: shown beside its offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trust {
    /// Whether a pinned key signed it; unsigned, only HTTPS and checksums vouch for it.
    pub signed: bool,
    /// The id of the key that signed it, as minisign shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The serial of the release document it came with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// When it was signed, in seconds since the epoch, when the signature says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
    /// Until when its publisher vouches for it, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
    /// The key the release announces as its publisher's next one, as its base64 line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_key: Option<String>,
}

impl Trust {
    /// A few words on it: `unsigned`, or who signed, and what says it is current.
    pub fn describe(&self) -> String {
        let Some(key) = self.key_id.as_deref().filter(|_| self.signed) else {
            return "unsigned: no publisher key is pinned, so only where it is read from (a server's certificate, a directory) vouches for what it offers".to_owned();
        };
        let mut text = format!("signed by key ID {key}");
        match (self.serial, self.signed_at) {
            (Some(serial), signed_at) => {
                text += &format!(", release serial {serial}");
                if let Some(at) = signed_at {
                    text += &format!(" built {}", utc(at));
                }
            }
            (None, Some(at)) => text += &format!(" at {}", utc(at)),
            (None, None) => {
                text += ", with no freshness claim (its signature names no signing time)";
            }
        }
        if let Some(until) = self.valid_until {
            text += &format!(", valid until {}", utc(until));
        }
        if let Some(next) = &self.next_key {
            let id = crate::PublicKey::parse(next).map_or_else(|_| next.clone(), |k| k.key_id());
            text += &format!("; announces its publisher's next key ID {id}");
        }
        text
    }
}

/// Why a signed source's answer is refused. Each names the document it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The source is signed, and a document's signature cannot be fetched.
    #[error("the source is signed but the signature of `{document}` cannot be fetched: {why}")]
    Unsigned {
        /// The document.
        document: String,
        /// Why not.
        why: String,
    },
    /// The signature file is not a minisign signature.
    #[error("the signature of `{document}` is not valid: {why}")]
    Malformed {
        /// The document.
        document: String,
        /// What is wrong with it.
        why: String,
    },
    /// Signed by a key that is not pinned.
    #[error("`{document}` is signed by key ID {seen}, {}", pinned_text(.pinned))]
    OtherKey {
        /// The document.
        document: String,
        /// The id of the key that signed it.
        seen: String,
        /// The ids of the keys pinned.
        pinned: Vec<String>,
    },
    /// A legacy signature: over the document itself, not its hash.
    #[error(
        "`{document}` has a legacy minisign signature (made with `minisign -S -l`), which is \
         not accepted: re-sign it with `minisign -S` (without -l) or `modhost repo build --sign`"
    )]
    Legacy {
        /// The document.
        document: String,
    },
    /// The signature is the pinned key's, and the document is not what it signed.
    #[error(
        "`{document}` was changed after it was signed: its signature by key ID {key} does not \
         match its content"
    )]
    Changed {
        /// The document.
        document: String,
        /// The id of the key whose signature it is.
        key: String,
    },
    /// The document arrived as gzip data its server did not declare: what was signed is
    /// the text, and the bytes are its compressed form.
    #[error(
        "`{document}` arrived as gzip data (its first bytes are 1f 8b) without a \
         `Content-Encoding: gzip` header, so it is not the text its signature by key ID {key} \
         covers: the server compresses it without saying so (nginx: a `.gz` file served in \
         place of the document, or a `default_type` for gzip); serve the file as it is"
    )]
    Gzipped {
        /// The document.
        document: String,
        /// The id of the key whose signature it is.
        key: String,
    },
    /// What came back is a web page, not the document: a server's error or login page
    /// served with status 200.
    #[error(
        "`{document}` came back as an HTML page ({bytes} bytes), not the document its \
         signature covers: the server answered with an error or login page; check that it \
         serves the file itself"
    )]
    WebPage {
        /// The document.
        document: String,
        /// How long the page was.
        bytes: usize,
    },
    /// The signature is the pinned key's, made at a time it names, and the document is not
    /// what it signed; with no release to say which copy is current, a changed document
    /// and a stale signature look alike.
    #[error(
        "`{document}` was changed after it was signed, or the signature beside it was made \
         for another copy of it: its signature by key ID {key}, made at {}, does not match \
         its content", utc(*.signed_at)
    )]
    ChangedOrStale {
        /// The document.
        document: String,
        /// The id of the key whose signature it is.
        key: String,
        /// When its signature says it was made.
        signed_at: u64,
    },
    /// The signature beside the document was made for another document.
    #[error("the signature of `{document}` is stale: it was made for `{file}`, another document")]
    StalePath {
        /// The document.
        document: String,
        /// The path its signature claims.
        file: String,
    },
    /// The signature beside the document was made for another release.
    #[error(
        "the signature of `{document}` is stale: it was made for release serial {signed}, and \
         the release is serial {release}"
    )]
    StaleSerial {
        /// The document.
        document: String,
        /// The serial its signature claims.
        signed: u64,
        /// The serial of the release read.
        release: u64,
    },
    /// A soundly signed document served under another path than the one it was signed for.
    #[error(
        "`{document}` is the signed `{file}` served under another name: its signature was \
         made for that path (documents were mixed and matched)"
    )]
    OtherPath {
        /// The document asked for.
        document: String,
        /// The path it was signed for.
        file: String,
    },
    /// A soundly signed document of another release than the one read.
    #[error(
        "`{document}` belongs to release serial {signed}, not to release serial {release}: \
         documents of different releases were mixed and matched"
    )]
    OtherRelease {
        /// The document.
        document: String,
        /// The serial it was signed for.
        signed: u64,
        /// The serial of the release read.
        release: u64,
    },
    /// A document that is not the one the release names.
    #[error(
        "`{document}` is not the document release serial {serial} names ({found}{}): documents \
         of different releases were mixed and matched", named_text(.named)
    )]
    MixAndMatch {
        /// The document.
        document: String,
        /// The release's serial.
        serial: u64,
        /// The document's size and SHA-256 as received.
        found: String,
        /// Its size and SHA-256 as the release names them, if it names it.
        named: Option<String>,
    },
    /// A release older than one accepted before.
    #[error(
        "release serial {serial} is older than serial {accepted}, accepted from this source \
         before: an old release is being replayed (a rollback, by the server or a mirror), \
         and nothing from it is trusted"
    )]
    Rollback {
        /// The serial received.
        serial: u64,
        /// The highest serial accepted before.
        accepted: u64,
    },
    /// A document signed before the one accepted last from the same channel.
    #[error(
        "`{document}` was signed at {}, before the copy signed at {} that was accepted from \
         this channel: an old document is being replayed (a rollback), and nothing from it is \
         trusted", utc(*.signed_at), utc(*.accepted)
    )]
    Replayed {
        /// The document.
        document: String,
        /// When it was signed.
        signed_at: u64,
        /// When the one accepted last was signed.
        accepted: u64,
    },
    /// A document signed in the same second as the one accepted last from the same
    /// channel, by an older build: its signature claims a lower serial.
    #[error(
        "`{document}` was signed in the same second as the copy accepted from this channel, \
         but by an older build (serial {serial}, before {accepted}): an old document is being \
         replayed (a rollback), and nothing from it is trusted"
    )]
    OlderBuild {
        /// The document.
        document: String,
        /// The build serial its signature claims.
        serial: u64,
        /// The highest serial accepted from the channel before.
        accepted: u64,
    },
    /// A document whose signature names no signing time, from a channel that accepted a
    /// dated one: it may be any older copy, replayed.
    #[error(
        "`{document}`'s signature names no signing time, but this channel accepted a copy \
         signed at {}: an undated document could be an old one replayed (a rollback), and \
         nothing from it is trusted; its publisher should sign with a timestamp \
         (`minisign -S` without `-t`, or `modhost repo build --sign`)", utc(*.accepted)
    )]
    Undated {
        /// The document.
        document: String,
        /// When the one accepted last was signed.
        accepted: u64,
    },
    /// A release or document past the end of its validity.
    #[error(
        "{what} expired {} ago (valid until {}): the server or a mirror is serving a frozen \
         copy, or its publisher has not rebuilt it in time; nothing from it is trusted",
        span(.now.saturating_sub(*.valid_until)), utc(*.valid_until)
    )]
    Expired {
        /// What expired: `the release (serial N)` or a document.
        what: String,
        /// Its validity end.
        valid_until: u64,
        /// The time of the check.
        now: u64,
    },
    /// A release built, or a document signed, more than [`MAX_CLOCK_SKEW`] after now:
    /// accepted, its time would be kept as the last accepted, and every genuine later
    /// document would look older than it.
    #[error(
        "{what} was {how} {} in the future (at {}): check the publisher's clock (or this \
         host's); nothing from it is trusted",
        span(.at.saturating_sub(*.now)), utc(*.at)
    )]
    Future {
        /// What is dated ahead: `the release (serial N)` or a document's signature.
        what: String,
        /// What the time it claims is of: `built` (a release) or `signed` (a signature).
        how: &'static str,
        /// The time it claims.
        at: u64,
        /// The time of the check.
        now: u64,
    },
    /// A release document accepted before, missing now.
    #[error(
        "`{document}` is missing, but this source published release serial {accepted} before: \
         nothing says its documents are current, so none is trusted"
    )]
    Withdrawn {
        /// The release document's location.
        document: String,
        /// The serial accepted last.
        accepted: u64,
    },
    /// A release document that cannot be read.
    #[error("`{document}` is not a valid release document: {why}")]
    Invalid {
        /// The document.
        document: String,
        /// What is wrong.
        why: String,
    },
}

impl Refusal {
    /// Whether a client reading while its publisher swaps in a new build could see this:
    /// a document and its signature, or the release and a document, read from two
    /// builds. Read again, such a source answers one build whole.
    pub fn torn(&self) -> bool {
        matches!(
            self,
            Refusal::Changed { .. }
                | Refusal::ChangedOrStale { .. }
                | Refusal::StaleSerial { .. }
                | Refusal::OtherRelease { .. }
                | Refusal::MixAndMatch { .. }
        )
    }
}

/// "not by the pinned key ID …", for [`Refusal::OtherKey`].
fn pinned_text(pinned: &[String]) -> String {
    match pinned {
        [] => "and no key is pinned".to_owned(),
        [one] => format!("not by the pinned key ID {one}"),
        many => format!("not by any of the pinned key IDs {}", many.join(", ")),
    }
}

/// ", the release names …", for [`Refusal::MixAndMatch`].
fn named_text(named: &Option<String>) -> String {
    match named {
        Some(named) => format!("; the release names {named}"),
        None => "; the release does not name it".to_owned(),
    }
}

/// How far ahead of this host's clock a release's build time or a signature's signing
/// time may be: clocks drift, but a time further ahead would lock the source out once
/// kept ([`Refusal::Future`]).
pub const MAX_CLOCK_SKEW: u64 = 86_400;

/// The time now, in seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `seconds` since the epoch as a UTC date and time: `2026-12-04 12:47:50 UTC`.
pub fn utc(seconds: u64) -> String {
    let days = seconds / 86_400;
    let second = seconds % 86_400;
    // Howard Hinnant's days-to-civil, on days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second / 3600,
        second % 3600 / 60,
        second % 60
    )
}

/// A length of time in its two largest units: `3 days 4 h`, `2 h 5 min`, `42 s`.
pub fn span(seconds: u64) -> String {
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    let day_word = if days == 1 { "day" } else { "days" };
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{minutes} min {secs} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} {day_word} {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates_and_spans() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_633_700_835), "2021-10-08 13:47:15 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(span(42), "42 s");
        assert_eq!(span(125), "2 min 5 s");
        assert_eq!(span(7500), "2 h 5 min");
        assert_eq!(span(86_400 + 3600), "1 day 1 h");
        assert_eq!(span(3 * 86_400), "3 days 0 h");
    }

    #[test]
    fn a_refusal_says_what_it_is_about_once() {
        let refused = Refusal::OtherKey {
            document: "index.json".into(),
            seen: "AAAA".into(),
            pinned: vec!["BBBB".into()],
        };
        assert_eq!(
            refused.to_string(),
            "`index.json` is signed by key ID AAAA, not by the pinned key ID BBBB"
        );
        let expired = Refusal::Expired {
            what: "the release (serial 7)".into(),
            valid_until: 1_000_000,
            now: 1_000_000 + 2 * 86_400 + 3 * 3600,
        };
        assert!(
            expired
                .to_string()
                .starts_with("the release (serial 7) expired 2 days 3 h ago (valid until 1970-01-12 13:46:40 UTC)"),
            "{expired}"
        );
    }

    #[test]
    fn trust_describes_who_signed_and_what_says_it_is_current() {
        assert_eq!(
            Trust::default().describe(),
            "unsigned: no publisher key is pinned, so only where it is read from (a server's certificate, a directory) vouches for what it offers"
        );
        let trust = Trust {
            signed: true,
            key_id: Some("E7620F1842B4E81F".into()),
            serial: Some(17),
            signed_at: Some(0),
            valid_until: Some(86_400),
            next_key: None,
        };
        assert_eq!(
            trust.describe(),
            "signed by key ID E7620F1842B4E81F, release serial 17 built 1970-01-01 00:00:00 UTC, \
             valid until 1970-01-02 00:00:00 UTC"
        );
        let bare = Trust {
            serial: None,
            signed_at: None,
            valid_until: None,
            ..trust
        };
        assert!(
            bare.describe()
                .ends_with("no freshness claim (its signature names no signing time)")
        );
    }
}
