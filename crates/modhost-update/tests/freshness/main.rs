//! Signed sources over real HTTPS on loopback: the release document read first, and each
//! way an attacker (or a stale mirror) can freeze, replay or mix what a publisher signed
//! refused with its own message.

#[path = "../common/mod.rs"]
mod common;
mod single;

use common::{Signer, Site, Tls};
use modhost_update::release_document::{Document, RELEASE_FORMAT};
use modhost_update::{
    Answer, Claims, Error, Kind, Location, PublicKey, Refusal, ReleaseDocument, Seen, Source,
    Target,
};
use single::{freepbx, freepbx_document};

/// Now, in seconds since the epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An index offering core at `version`.
fn index(version: &str) -> Vec<u8> {
    format!(
        r#"{{"format":"modhost-index/1","modules":[{{"rawname":"core","name":"Core","version":"{version}","file":"core-{version}.tgz","size":1,"sha256":"{}"}}]}}"#,
        "a".repeat(64)
    )
    .into_bytes()
}

/// `repo build`'s trusted comment for the document at `path` of release `serial`.
fn comment(path: &str, serial: u64, valid_until: u64) -> String {
    comment_at(path, serial, valid_until, now())
}

/// [`comment`], signed at `timestamp` (as `repo build` signs at its build's time).
fn comment_at(path: &str, serial: u64, valid_until: u64, timestamp: u64) -> String {
    Claims {
        timestamp: Some(timestamp),
        file: Some(path.to_owned()),
        serial: Some(serial),
        expires: Some(valid_until),
    }
    .to_comment()
}

/// A repository as `repo build` signs one, of core at `version`, release `serial`.
#[derive(Clone)]
struct Published {
    release: Vec<u8>,
    release_sig: String,
    index: Vec<u8>,
    index_sig: String,
}

impl Published {
    fn new(signer: &Signer, serial: u64, version: &str, valid_until: u64) -> Published {
        Published::announcing(signer, serial, version, valid_until, None)
    }

    fn announcing(
        signer: &Signer,
        serial: u64,
        version: &str,
        valid_until: u64,
        next: Option<&PublicKey>,
    ) -> Published {
        let index = index(version);
        let built = now();
        let release = ReleaseDocument {
            format: RELEASE_FORMAT.into(),
            serial,
            built,
            valid_until,
            documents: vec![Document::of("index.json", &index)],
            next_key: next.map(PublicKey::encode),
        };
        let release = serde_json::to_vec(&release).unwrap_or_default();
        Published {
            release_sig: signer.sign(
                &release,
                &comment_at("release.json", serial, valid_until, built),
            ),
            release,
            index_sig: signer.sign(
                &index,
                &comment_at("index.json", serial, valid_until, built),
            ),
            index,
        }
    }

    /// Serves it all on `site`.
    fn serve(&self, site: &Site) {
        site.put("release.json", self.release.clone());
        site.put("release.json.minisig", self.release_sig.clone());
        site.put("index.json", self.index.clone());
        site.put("index.json.minisig", self.index_sig.clone());
    }
}

fn source(site: &Site, keys: &[PublicKey], seen: Seen) -> Source {
    Source {
        name: "main".into(),
        kind: Kind::Index,
        location: Location::Url(site.url.clone()),
        public_keys: keys.to_vec(),
        seen,
        extra_query: None,
    }
}

fn check(tls: &Tls, source: &Source) -> Result<Answer, Error> {
    tls.client().check(source, None, &Target::default())
}

/// Why `source`'s check was refused.
fn refusal(tls: &Tls, source: &Source) -> Refusal {
    match check(tls, source) {
        Err(Error::Refused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_old_release_replayed_after_a_newer_one_is_refused_as_a_rollback() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let week = now() + 7 * 86_400;
    let old = Published::new(&signer, 100, "1.0.0", week);
    Published::new(&signer, 101, "2.0.0", week).serve(&site);
    let first = check(&tls, &source(&site, &[signer.public()], Seen::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.seen.serial, Some(101));
    assert_eq!(first.releases[0].version, "2.0.0");
    assert_eq!(first.trust.serial, Some(101));

    // A mirror (or an attacker) serves the older release, soundly signed as it was.
    old.serve(&site);
    let source = source(&site, &[signer.public()], first.seen);
    let refused = check(&tls, &source).map(|_| ()).unwrap_err_text();
    assert_eq!(
        refused,
        "source `main`: release serial 100 is older than serial 101, accepted from this source \
         before: an old release is being replayed (a rollback, by the server or a mirror), and \
         nothing from it is trusted"
    );
    // Having accepted a release, the source may not drop it to escape the check.
    site.remove("release.json");
    assert!(
        matches!(
            refusal(&tls, &source),
            Refusal::Withdrawn { accepted: 101, .. }
        ),
        "a withdrawn release document"
    );
}

#[test]
fn a_release_kept_from_a_new_host_cannot_later_bring_an_older_one_back() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let old = dated(&signer, 100, now() - 60);
    // The newer build's index, its release document kept back by a mirror: the index is
    // taken on its own signature, dated now.
    let newer = Published::new(&signer, 101, "2.0.0", now() + 7 * 86_400);
    site.put("index.json", newer.index.clone());
    site.put("index.json.minisig", newer.index_sig.clone());
    let first = check(&tls, &source(&site, &[signer.public()], Seen::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.releases[0].version, "2.0.0");
    // Then the older build, whole: its release was built before what was accepted.
    old.serve(&site);
    let source = source(&site, &[signer.public()], first.seen);
    assert!(
        matches!(refusal(&tls, &source), Refusal::Replayed { document, .. } if document.ends_with("release.json")),
        "an older release after a newer index"
    );
    // The newer build whole is taken.
    newer.serve(&site);
    let answer = check(&tls, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.seen.serial, Some(101));
}

#[test]
fn a_release_past_its_validity_end_is_refused_saying_how_stale() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    Published::new(&signer, 7, "1.0.0", now() - 3 * 3600 - 60).serve(&site);
    let refused = refusal(&tls, &source(&site, &[signer.public()], Seen::default()));
    let text = refused.to_string();
    assert!(
        matches!(refused, Refusal::Expired { .. })
            && text.starts_with("the release (serial 7) expired 3 h 1 min ago (valid until ")
            && text.contains("a frozen copy"),
        "{text}"
    );
}

#[test]
fn documents_of_different_releases_are_never_mixed() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let week = now() + 7 * 86_400;
    let (old, new) = (
        Published::new(&signer, 100, "1.0.0", week),
        Published::new(&signer, 101, "2.0.0", week),
    );
    let source = source(&site, &[signer.public()], Seen::default());

    // The new release beside the old index and its own sound signature.
    new.serve(&site);
    site.put("index.json", old.index.clone());
    site.put("index.json.minisig", old.index_sig.clone());
    let refused = refusal(&tls, &source);
    assert!(
        matches!(
            refused,
            Refusal::OtherRelease {
                signed: 100,
                release: 101,
                ..
            }
        ),
        "{refused}"
    );

    // The new index with the old index's signature beside it: a stale signature.
    site.put("index.json", new.index.clone());
    let refused = refusal(&tls, &source);
    assert!(
        matches!(
            refused,
            Refusal::StaleSerial {
                signed: 100,
                release: 101,
                ..
            }
        ) && refused
            .to_string()
            .contains("is stale: it was made for release serial 100"),
        "{refused}"
    );

    // An index signed for this very serial, but not the one the release names.
    let other = index("3.0.0");
    site.put("index.json", other.clone());
    site.put(
        "index.json.minisig",
        signer.sign(&other, &comment("index.json", 101, week)),
    );
    let refused = refusal(&tls, &source);
    assert!(
        matches!(refused, Refusal::MixAndMatch { serial: 101, .. })
            && refused
                .to_string()
                .contains("is not the document release serial 101 names"),
        "{refused}"
    );
}

#[test]
fn each_way_a_signature_fails_has_its_own_message() {
    let (tls, signer, other) = (Tls::new(), Signer::new(1), Signer::new(2));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "2.0.0");
    let claims = comment("freepbx/phonebook.json", 5, now() + 3600);
    site.put("freepbx/phonebook.json", document.clone());
    let source = freepbx(&site, &signer, Seen::default());
    let doc = format!("`{}/freepbx/phonebook.json`", site.url);

    // Changed after signing; with no release to say which copy is current, a stale
    // signature for another copy looks the same, and the message says both.
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign(&freepbx_document("phonebook", "1.0.0"), &claims),
    );
    let refused = refusal(&tls, &source).to_string();
    assert!(
        refused.starts_with(&format!(
            "{doc} was changed after it was signed, or the signature beside it was made for \
             another copy of it: its signature by key ID {}, made at ",
            signer.public().key_id()
        )) && refused.ends_with("does not match its content"),
        "{refused}"
    );
    // A legacy signature, saying how to sign again.
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign_legacy(&document, &claims),
    );
    let refused = refusal(&tls, &source).to_string();
    assert!(
        refused.starts_with(&format!("{doc} has a legacy minisign signature"))
            && refused.contains(
                "re-sign it with `minisign -S` (without -l) or `modhost repo build --sign`"
            ),
        "{refused}"
    );
    // Another publisher's key: both ids named.
    site.put(
        "freepbx/phonebook.json.minisig",
        other.sign(&document, &claims),
    );
    assert_eq!(
        refusal(&tls, &source).to_string(),
        format!(
            "{doc} is signed by key ID {}, not by the pinned key ID {}",
            other.public().key_id(),
            signer.public().key_id()
        )
    );
    // Either of two pinned keys will do.
    let both = Source {
        public_keys: vec![signer.public(), other.public()],
        ..source.clone()
    };
    assert!(check(&tls, &both).is_ok());
    // No signature at all.
    site.remove("freepbx/phonebook.json.minisig");
    assert!(matches!(refusal(&tls, &source), Refusal::Unsigned { .. }));
    // A whole error names its source once.
    let whole = check(&tls, &source).map(|_| ()).unwrap_err_text();
    assert!(
        whole.starts_with("source `phonebook/updateurl`: the source is signed but")
            && whole.matches("source `").count() == 1,
        "{whole}"
    );
}

#[test]
fn a_signature_with_a_free_text_comment_makes_no_freshness_claim_and_never_follows_a_dated_one() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "2.0.0");
    site.put("freepbx/phonebook.json", document.clone());
    // As `minisign -S -t 'released by ACME'` writes it.
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign(&document, "released by ACME"),
    );
    // After a dated copy, an undated one could be any older copy: refused.
    let dated = Seen {
        serial: None,
        signed_at: Some(now()),
    };
    let refused = check(&tls, &freepbx(&site, &signer, dated));
    assert!(
        refused.as_ref().is_err_and(|e| {
            let e = e.to_string();
            e.contains(
                "signature names no signing time, but this channel accepted a copy signed at",
            ) && e.contains("(a rollback)")
        }),
        "{refused:?}"
    );
    let accepted = Seen::default();
    let answer = check(&tls, &freepbx(&site, &signer, accepted)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer.seen, accepted,
        "nothing newer claimed, nothing forgotten"
    );
    assert!(
        answer
            .trust
            .describe()
            .ends_with("with no freshness claim (its signature names no signing time)"),
        "{}",
        answer.trust.describe()
    );
}

#[test]
fn a_release_announces_the_next_key_and_a_release_signed_by_it_is_accepted() {
    let (tls, current, next) = (Tls::new(), Signer::new(1), Signer::new(2));
    let site = Site::new(&tls);
    let week = now() + 7 * 86_400;
    Published::announcing(&current, 10, "1.0.0", week, Some(&next.public())).serve(&site);
    let answer = check(&tls, &source(&site, &[current.public()], Seen::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.signed_by, Some(current.public()));
    assert_eq!(answer.next_key, Some(next.public()));
    assert!(
        answer.trust.describe().ends_with(&format!(
            "announces its publisher's next key ID {}",
            next.public().key_id()
        )),
        "{}",
        answer.trust.describe()
    );
    // Signed by the next key, with both pinned (as the host pins them): accepted.
    Published::new(&next, 11, "2.0.0", week).serve(&site);
    let both = source(&site, &[current.public(), next.public()], answer.seen);
    let answer = check(&tls, &both).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.signed_by, Some(next.public()));
    assert_eq!(answer.next_key, None);
}

/// A release `serial` built at `built`, signed by `signer` as `repo build` signs it, of
/// core 1.0.0, valid for a week.
fn dated(signer: &Signer, serial: u64, built: u64) -> Published {
    let week = now() + 7 * 86_400;
    let index = index("1.0.0");
    let release = ReleaseDocument {
        format: RELEASE_FORMAT.into(),
        serial,
        built,
        valid_until: week,
        documents: vec![Document::of("index.json", &index)],
        next_key: None,
    };
    let release = serde_json::to_vec(&release).unwrap_or_default();
    Published {
        release_sig: signer.sign(&release, &comment("release.json", serial, week)),
        release,
        index_sig: signer.sign(&index, &comment("index.json", serial, week)),
        index,
    }
}

#[test]
fn a_release_built_far_ahead_or_with_a_serial_past_what_is_kept_is_refused() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let source = source(&site, &[signer.public()], Seen::default());
    for built in [now() + 3 * 86_400 + 60, u64::MAX] {
        dated(&signer, 100, built).serve(&site);
        let refused = refusal(&tls, &source);
        assert!(
            matches!(&refused, Refusal::Future { at, .. } if *at == built),
            "{refused:?}"
        );
        let text = refused.to_string();
        assert!(
            text.starts_with("the release (serial 100) was built ")
                && text.contains("in the future")
                && text.contains("check the publisher's clock"),
            "{text}"
        );
    }
    // u64::MAX seconds from now, in days: the day it was refused lies between these.
    let days = || (u64::MAX - now()) / 86_400;
    let before = days();
    let refused = refusal(&tls, &source).to_string();
    let after = days();
    assert!(
        [before, after]
            .iter()
            .any(|days| refused.contains(&format!("was built {days} days "))),
        "{refused}"
    );
    dated(&signer, 100, now() + 3 * 86_400 + 60).serve(&site);
    assert!(
        refusal(&tls, &source)
            .to_string()
            .contains(" built 3 days 0 h in the future")
    );
    // A serial no client can keep.
    dated(&signer, u64::MAX, now()).serve(&site);
    let refused = refusal(&tls, &source);
    assert!(
        matches!(&refused, Refusal::Invalid { why, .. }
            if why == "its serial 18446744073709551615 is above 9223372036854775807, the \
                       largest serial a client keeps"),
        "{refused:?}"
    );
    // A serial far ahead of the clock (serials are build times): kept, it would lock every
    // later release out.
    for serial in [i64::MAX as u64, 4_102_444_800] {
        dated(&signer, serial, now()).serve(&site);
        let refused = refusal(&tls, &source);
        assert!(
            matches!(&refused, Refusal::Invalid { why, .. }
                if why.starts_with(&format!("its serial {serial} is ahead of this host's clock"))
                    && why.contains("a day read as seconds (a serial is its build's time")
                    && !why.contains("  ")),
            "{refused:?}"
        );
    }
    // Clocks drift: an hour ahead is accepted, and kept.
    let serial = now() + 3600;
    dated(&signer, serial, now() + 3600).serve(&site);
    let answer = check(&tls, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.seen.serial, Some(serial));
}

#[test]
fn a_slow_source_that_looks_mid_publish_is_not_read_again_and_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = mid_publish(&tls, &signer);
    let mixed = source(&site, &[signer.public()], Seen::default());
    // The same files, each answered after 1.6 s: two of them take longer than the
    // client's timeout, as no publish race does, and each leaves it 1.4 s to spare.
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reads);
    let slow = tls.scripted(move |request| {
        std::thread::sleep(Duration::from_millis(1600));
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let path = path.trim_start_matches('/');
        if path == "release.json" {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        common::answer("200 OK", &site.get(path))
    });
    let client = modhost_update::Client::new(Some(&tls.file("ca.pem")), Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{e}"));
    let slow_source = Source {
        location: Location::Url(slow),
        ..mixed
    };
    let refused = client.check(&slow_source, None, &Target::default());
    assert!(
        matches!(&refused, Err(Error::Refused { refusal, .. }) if refusal.torn()),
        "{refused:?}"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 1, "read once, not five times");
}

/// A site serving release 11 beside release 10's signature of its release document, as
/// a reader may find it while the publisher swaps one build for the next.
fn mid_publish(tls: &Tls, signer: &Signer) -> Site {
    let site = Site::new(tls);
    let week = now() + 7 * 86_400;
    let old = Published::new(signer, 10, "1.0.0", week);
    Published::new(signer, 11, "2.0.0", week).serve(&site);
    site.put("release.json.minisig", old.release_sig);
    site
}

/// The text of an error, for a check expected to fail.
trait ErrText {
    fn unwrap_err_text(self) -> String;
}

impl ErrText for Result<(), Error> {
    fn unwrap_err_text(self) -> String {
        match self {
            Err(e) => e.to_string(),
            Ok(()) => panic!("expected an error"),
        }
    }
}

/// Serves `document` as `freepbx/phonebook.json`, signed by `signer` at `timestamp` for
/// that path, as the minisign tool or `repo build` signs a single document.
fn put_signed_at(site: &Site, signer: &Signer, document: &[u8], timestamp: u64) {
    let claims = Claims {
        timestamp: Some(timestamp),
        file: Some("phonebook.json".into()),
        ..Claims::default()
    };
    site.put("freepbx/phonebook.json", document.to_vec());
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign(document, &claims.to_comment()),
    );
}

#[test]
fn a_release_documents_signature_from_another_build_is_named_stale() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = mid_publish(&tls, &signer);
    let refused = refusal(&tls, &source(&site, &[signer.public()], Seen::default()));
    assert_eq!(
        refused.to_string(),
        format!(
            "the signature of `{}/release.json` is stale: it was made for release serial 10, \
             and the release is serial 11",
            site.url
        )
    );
    assert!(refused.torn(), "read again, a publisher's swap is over");
}

#[test]
fn a_release_or_a_document_whose_signature_ends_sooner_than_the_release_expires_then() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let valid_until = now() + 7 * 86_400;
    let published = Published::new(&signer, 7, "1.0.0", valid_until);
    let built = ReleaseDocument::parse(&published.release)
        .map(|r| r.built)
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = [signer.public()];
    let seen = Seen::default();
    let expired = now() - 3600 - 30;
    // The release's own signature ends before the release says it does.
    Published {
        release_sig: signer.sign(
            &published.release,
            &comment_at("release.json", 7, expired, built),
        ),
        ..published.clone()
    }
    .serve(&site);
    let refused = refusal(&tls, &source(&site, &keys, seen));
    assert!(
        matches!(refused, Refusal::Expired { valid_until, .. } if valid_until == expired)
            && refused
                .to_string()
                .starts_with("the release (serial 7) expired 1 h"),
        "{refused}"
    );
    // A document the release names, whose own signature ended already: it is not taken
    // for as long as the release lasts.
    Published {
        index_sig: signer.sign(
            &published.index,
            &comment_at("index.json", 7, expired, built),
        ),
        ..published.clone()
    }
    .serve(&site);
    let refused = refusal(&tls, &source(&site, &keys, seen));
    assert!(
        matches!(refused, Refusal::Expired { .. })
            && refused.to_string().starts_with(&format!(
                "the signature of `{}/index.json` expired 1 h",
                site.url
            )),
        "{refused}"
    );
    published.serve(&site);
    let answer = check(&tls, &source(&site, &keys, seen)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.trust.valid_until, Some(valid_until));
}
