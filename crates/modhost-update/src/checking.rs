//! One check of a source ([`Client::check`]): a signed repository's release document
//! first, then each document, verified against the keys the source pins and what was
//! last accepted from it; and what the check found ([`Answer`]).

use crate::client::Client;
use crate::index::MAX_INDEX;
use crate::release::{Release, SetAside};
use crate::release_document::{RELEASE_DOCUMENT, ReleaseDocument};
use crate::signature::{Claims, PublicKey, Signed, verify};
use crate::source::Source;
use crate::trust::{MAX_CLOCK_SKEW, Refusal, Seen, Trust, now};
use crate::{Error, Location, Result};

/// The largest signature file read: a minisign signature is a few hundred bytes.
const MAX_SIGNATURE: u64 = 4096;

/// What a check of a source found ([`Client::check`]): its releases, and what vouches
/// for them.
#[derive(Debug, Clone)]
pub struct Answer {
    /// What the source offers.
    pub releases: Vec<Release>,
    /// What it offers that is set aside (another platform, less stable than asked for,
    /// no package modhost unpacks), with why.
    pub set_aside: Vec<SetAside>,
    /// Who signed it, and what says it is current.
    pub trust: Trust,
    /// What to keep as last accepted from the source, for the next check to compare.
    pub seen: Seen,
    /// The pinned key that signed it.
    pub signed_by: Option<PublicKey>,
    /// The next key its release announces, signed by a pinned one: to pin beside it.
    pub next_key: Option<PublicKey>,
}

/// One check of a signed source in progress: the release document read, and what the
/// signatures so far established.
pub(crate) struct Checking<'a> {
    client: &'a Client,
    source: &'a Source,
    /// The time of the check.
    now: u64,
    /// The release document, once read and verified.
    release: Option<ReleaseDocument>,
    answer: Answer,
}

impl<'a> Checking<'a> {
    /// A check of `source` with `client`, begun now.
    pub(crate) fn new(client: &'a Client, source: &'a Source) -> Self {
        Checking {
            client,
            source,
            now: now(),
            release: None,
            answer: Answer {
                releases: Vec::new(),
                set_aside: Vec::new(),
                trust: Trust::default(),
                seen: source.seen,
                signed_by: None,
                next_key: None,
            },
        }
    }

    /// The answer, with `releases`.
    pub(crate) fn answer(mut self, releases: Vec<Release>, set_aside: Vec<SetAside>) -> Answer {
        self.answer.releases = releases;
        self.answer.set_aside = set_aside;
        self.answer
    }

    /// `refusal`, as this source's error.
    fn refused(&self, refusal: Refusal) -> Error {
        Error::Refused {
            source_name: self.source.name.clone(),
            refusal,
        }
    }

    /// Fetches the signature of the document at `location` and checks it against the
    /// pinned keys, for the release `serial` when there is one.
    fn verify(&self, location: &Location, bytes: &[u8], serial: Option<u64>) -> Result<Signed> {
        let sig = location.signature();
        let shown = location.to_string();
        let signature = self
            .client
            .fetch_document(&sig, MAX_SIGNATURE)
            .map_err(|e| {
                self.refused(Refusal::Unsigned {
                    document: shown.clone(),
                    why: e.to_string(),
                })
            })?;
        let signed = verify(&self.source.public_keys, &shown, bytes, &signature, serial)
            .map_err(|refusal| self.refused(refusal))?;
        if let Some(at) = signed.claims.timestamp {
            self.not_ahead(format!("`{shown}`"), "signed", at)?;
        }
        Ok(signed)
    }

    /// Refuses the signature of the document `shown` when the validity end it claims is
    /// past: a freeze.
    fn signature_current(&self, shown: &str, claims: &Claims) -> Result<()> {
        match claims.expires.filter(|e| self.now > *e) {
            Some(expires) => Err(self.refused(Refusal::Expired {
                what: format!("the signature of `{shown}`"),
                valid_until: expires,
                now: self.now,
            })),
            None => Ok(()),
        }
    }

    /// Refuses `what`, `how` (built, signed) at `at`, when that is more than
    /// [`MAX_CLOCK_SKEW`] ahead of the check's time.
    fn not_ahead(&self, what: String, how: &'static str, at: u64) -> Result<()> {
        if at > self.now.saturating_add(MAX_CLOCK_SKEW) {
            return Err(self.refused(Refusal::Future {
                what,
                how,
                at,
                now: self.now,
            }));
        }
        Ok(())
    }

    /// Reads and verifies a signed repository's release document, when it has one: its
    /// signature, its serial against the last accepted, its validity end against now.
    /// Having had one, the source may not drop it.
    pub(crate) fn release_document(&mut self) -> Result<()> {
        if !self.source.signed() {
            return Ok(());
        }
        let location = self.source.location.join(RELEASE_DOCUMENT);
        let shown = location.to_string();
        let Some(bytes) = self.client.fetch_optional(&location, MAX_INDEX)? else {
            return match self.source.seen.serial {
                Some(accepted) => Err(self.refused(Refusal::Withdrawn {
                    document: shown,
                    accepted,
                })),
                None => Ok(()),
            };
        };
        // The serial the document says it is, unproven: a signature claiming another one
        // is a stale signature from another build, not a changed document.
        let says = ReleaseDocument::parse(&bytes).ok().map(|r| r.serial);
        let signed = self.verify(&location, &bytes, says)?;
        let invalid = |why: String| Refusal::Invalid {
            document: shown.clone(),
            why,
        };
        let release = ReleaseDocument::parse(&bytes).map_err(|why| self.refused(invalid(why)))?;
        if let Some(claimed) = signed.claims.serial.filter(|s| *s != release.serial) {
            return Err(self.refused(invalid(format!(
                "its signature claims serial {claimed}, and it says serial {}",
                release.serial
            ))));
        }
        // A signature that ends sooner than the release says it does ends it then: the
        // earlier end holds.
        let valid_until = signed
            .claims
            .expires
            .map_or(release.valid_until, |e| e.min(release.valid_until));
        self.not_ahead(
            format!("the release (serial {})", release.serial),
            "built",
            release.built,
        )?;
        // A serial is a build time (or one more than the last build's): one far ahead of
        // the clock, once kept, would lock every genuine later release out.
        if release.serial > self.now.saturating_add(MAX_CLOCK_SKEW) {
            return Err(self.refused(invalid(format!(
                "its serial {} is ahead of this host's clock by more than a day read as \
                 seconds (a serial is its build's time, or one more than the last build's): \
                 kept, it would make every later release look like a replay",
                release.serial
            ))));
        }
        if let Some(accepted) = self.source.seen.serial.filter(|a| release.serial < *a) {
            return Err(self.refused(Refusal::Rollback {
                serial: release.serial,
                accepted,
            }));
        }
        // Documents accepted while the release was kept from this host (no serial was
        // then) were signed at a time: a release built before it is older than they are.
        if let Some(accepted) = self.source.seen.signed_at.filter(|a| release.built < *a) {
            return Err(self.refused(Refusal::Replayed {
                document: shown,
                signed_at: release.built,
                accepted,
            }));
        }
        if self.now > valid_until {
            return Err(self.refused(Refusal::Expired {
                what: format!("the release (serial {})", release.serial),
                valid_until,
                now: self.now,
            }));
        }
        let next_key = match &release.next_key {
            Some(next) => Some(PublicKey::parse(next).map_err(|why| self.refused(invalid(why)))?),
            None => None,
        };
        let answer = &mut self.answer;
        answer.trust = Trust {
            signed: true,
            key_id: Some(signed.key.key_id()),
            serial: Some(release.serial),
            signed_at: Some(release.built),
            valid_until: Some(valid_until),
            next_key: release.next_key.clone(),
        };
        answer.seen.serial = Some(release.serial);
        answer.next_key = next_key.filter(|next| *next != signed.key);
        answer.signed_by = Some(signed.key);
        self.release = Some(release);
        Ok(())
    }

    /// Fetches the document at `location` and, the source being signed, verifies it (see
    /// [`Checking::verified`]); with where it was found: where the server redirected the
    /// request, or `location`.
    pub(crate) fn document(
        &mut self,
        location: &Location,
        named: Option<&str>,
    ) -> Result<(Vec<u8>, Location)> {
        let (bytes, found) = self.client.fetch_document_at(location, MAX_INDEX)?;
        self.verified(location, named, bytes)
            .map(|bytes| (bytes, found))
    }

    /// `bytes`, the document at `location`, verified: against the release when there is
    /// one (which names it as `named`, its path from the repository's root), else by its
    /// own signature's claims — a signing time older than the last accepted is a
    /// rollback, and a validity end past is a freeze.
    fn verified(
        &mut self,
        location: &Location,
        named: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>> {
        if !self.source.signed() {
            return Ok(bytes);
        }
        let serial = self.release.as_ref().map(|r| r.serial);
        let signed = self.verify(location, &bytes, serial)?;
        let shown = location.to_string();
        if let (Some(release), Some(path)) = (&self.release, named) {
            release
                .check(path, &shown, &bytes)
                .map_err(|refusal| self.refused(refusal))?;
            // The release vouches for it until its own end, unless its signature ends
            // sooner: the earlier end holds.
            self.signature_current(&shown, &signed.claims)?;
            return Ok(bytes);
        }
        let claims = &signed.claims;
        match (claims.timestamp, self.source.seen.signed_at) {
            (Some(signed_at), Some(accepted)) if signed_at < accepted => {
                return Err(self.refused(Refusal::Replayed {
                    document: shown,
                    signed_at,
                    accepted,
                }));
            }
            (None, Some(accepted)) => {
                return Err(self.refused(Refusal::Undated {
                    document: shown,
                    accepted,
                }));
            }
            _ => {}
        }
        // A one-document channel's builds signed within one second share their time; the
        // serial its signature claims tells the older one. An index without a release has
        // no serial of its own to keep: the serial accepted is the release's.
        let one_document = named.is_none();
        if let (true, Some(signed_at), Some(serial), Some(accepted)) = (
            one_document,
            claims.timestamp,
            claims.serial,
            self.source.seen.serial,
        ) && Some(signed_at) == self.source.seen.signed_at
            && serial < accepted
        {
            return Err(self.refused(Refusal::OlderBuild {
                document: shown,
                serial,
                accepted,
            }));
        }
        // Bounded as a release's validity is: a signature valid for ever would let a
        // mirror serve the document for ever. Without a signing time, from now (and the
        // clock's leeway).
        let from = claims
            .timestamp
            .unwrap_or_else(|| self.now.saturating_add(crate::MAX_CLOCK_SKEW));
        if let Some(expires) = claims.expires
            && expires.saturating_sub(from) > crate::release_document::MAX_VALIDITY
        {
            return Err(self.refused(Refusal::Malformed {
                document: shown,
                why: format!(
                    "it claims to be valid for {} days from its signing, longer than the {} \
                     a signature may be",
                    expires.saturating_sub(from) / 86_400,
                    crate::release_document::MAX_VALIDITY / 86_400
                ),
            }));
        }
        self.signature_current(&shown, claims)?;
        let answer = &mut self.answer;
        answer.trust = Trust {
            signed: true,
            key_id: Some(signed.key.key_id()),
            serial: None,
            signed_at: claims.timestamp,
            valid_until: claims.expires,
            next_key: None,
        };
        // The serial tells builds of one second apart: a later second's build starts
        // afresh (a publisher's serials may restart), the same second's keeps the highest.
        let later = claims.timestamp > answer.seen.signed_at;
        answer.seen.signed_at = claims.timestamp.max(answer.seen.signed_at);
        if one_document {
            answer.seen.serial = match (later, claims.serial) {
                (true, Some(serial)) => Some(serial),
                _ => claims.serial.max(answer.seen.serial),
            };
        }
        answer.signed_by = Some(signed.key);
        Ok(bytes)
    }
}
