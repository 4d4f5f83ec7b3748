//! The single-document channels (FreePBX JSON here) with a pinned key: the signing time
//! in the trusted comment, and documents signed before the one accepted or far ahead.

use super::*;

/// A FreePBX channel at `site`'s `freepbx/phonebook.json`, pinned to `signer`.
pub(super) fn freepbx(site: &Site, signer: &Signer, seen: Seen) -> Source {
    Source {
        name: "phonebook/updateurl".into(),
        kind: Kind::Freepbx,
        location: Location::Url(format!("{}/freepbx/phonebook.json", site.url)),
        public_keys: vec![signer.public()],
        seen,
        extra_query: None,
    }
}

pub(super) fn freepbx_document(rawname: &str, version: &str) -> Vec<u8> {
    format!(
        r#"{{"rawname":"{rawname}","version":"{version}","location":"../packages/{rawname}.tgz","sha256":"{}"}}"#,
        "a".repeat(64)
    )
    .into_bytes()
}

#[test]
fn a_signed_document_served_under_another_name_or_beside_another_signature_is_refused() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let week = now() + 7 * 86_400;
    let (core, phonebook) = (
        freepbx_document("core", "16.0.40"),
        freepbx_document("phonebook", "2.0.0"),
    );
    let core_sig = signer.sign(&core, &comment("freepbx/core.json", 5, week));
    let phonebook_sig = signer.sign(&phonebook, &comment("freepbx/phonebook.json", 5, week));
    let source = freepbx(&site, &signer, Seen::default());

    // core.json and its signature, served as phonebook.json: both sound, and mixed.
    site.put("freepbx/phonebook.json", core.clone());
    site.put("freepbx/phonebook.json.minisig", core_sig.clone());
    let refused = refusal(&tls, &source);
    assert_eq!(
        refused.to_string(),
        format!(
            "`{}/freepbx/phonebook.json` is the signed `freepbx/core.json` served under another \
             name: its signature was made for that path (documents were mixed and matched)",
            site.url
        )
    );
    // The right document, beside the signature of another one.
    site.put("freepbx/phonebook.json", phonebook.clone());
    let refused = refusal(&tls, &source);
    assert!(
        matches!(&refused, Refusal::StalePath { file, .. } if file == "freepbx/core.json"),
        "{refused}"
    );
    // The right pair.
    site.put("freepbx/phonebook.json.minisig", phonebook_sig);
    let answer = check(&tls, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.releases[0].rawname, "phonebook");
    assert!(answer.seen.signed_at.is_some() && answer.trust.serial.is_none());
}

#[test]
fn a_single_document_signed_before_the_one_accepted_is_refused_as_a_rollback() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "1.0.0");
    let signed_at = now() - 86_400;
    put_signed_at(&site, &signer, &document, signed_at);
    let accepted = Seen {
        serial: None,
        signed_at: Some(signed_at + 60),
    };
    let refused = refusal(&tls, &freepbx(&site, &signer, accepted));
    assert!(
        matches!(refused, Refusal::Replayed { .. })
            && refused
                .to_string()
                .contains("an old document is being replayed"),
        "{refused}"
    );
    // As old as the one accepted is the same document again: accepted.
    let same = Seen {
        serial: None,
        signed_at: Some(signed_at),
    };
    let answer = check(&tls, &freepbx(&site, &signer, same)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.seen.signed_at, Some(signed_at));
}

#[test]
fn a_single_document_of_an_older_build_signed_in_the_same_second_is_refused() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "1.0.0");
    let signed_at = now() - 60;
    let put = |serial: u64| {
        let claims = Claims {
            timestamp: Some(signed_at),
            file: Some("freepbx/phonebook.json".into()),
            serial: Some(serial),
            expires: None,
        };
        site.put("freepbx/phonebook.json", document.clone());
        site.put(
            "freepbx/phonebook.json.minisig",
            signer.sign(&document, &claims.to_comment()),
        );
    };
    // Build 8 is accepted, and what was accepted is kept: its time and its serial.
    put(8);
    let answer =
        check(&tls, &freepbx(&site, &signer, Seen::default())).unwrap_or_else(|e| panic!("{e}"));
    let accepted = answer.seen;
    assert_eq!(
        (accepted.signed_at, accepted.serial),
        (Some(signed_at), Some(8))
    );
    // Build 7, signed in the same second, replayed after it.
    put(7);
    let refused = refusal(&tls, &freepbx(&site, &signer, accepted));
    assert!(
        matches!(
            refused,
            Refusal::OlderBuild {
                serial: 7,
                accepted: 8,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains(
            "was signed in the same second as the copy accepted from this channel, but by an \
             older build (serial 7, before 8)"
        ),
        "{refused}"
    );
    // The same build again, and a newer one of the same second, are accepted.
    for serial in [8, 9] {
        put(serial);
        let answer = check(&tls, &freepbx(&site, &signer, accepted))
            .unwrap_or_else(|e| panic!("serial {serial}: {e}"));
        assert_eq!(answer.seen.serial, Some(serial));
    }
    // A later second's build brings its own serial, though lower (serials may restart):
    // read again, it is the same build, not an older one.
    let later = Seen {
        serial: Some(9),
        signed_at: Some(signed_at - 10),
    };
    put(1);
    let answer = check(&tls, &freepbx(&site, &signer, later)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (answer.seen.signed_at, answer.seen.serial),
        (Some(signed_at), Some(1))
    );
    check(&tls, &freepbx(&site, &signer, answer.seen)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_single_document_signed_far_ahead_is_refused_and_not_kept() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "1.0.0");
    let sign = |timestamp: u64| put_signed_at(&site, &signer, &document, timestamp);
    let accepted = Seen {
        serial: None,
        signed_at: Some(now() - 60),
    };
    let source = freepbx(&site, &signer, accepted);
    for ahead in [u64::MAX, now() + 2 * 86_400 + 60] {
        sign(ahead);
        let refused = refusal(&tls, &source);
        assert!(
            matches!(&refused, Refusal::Future { at, .. } if *at == ahead),
            "{refused:?}"
        );
        assert!(
            refused.to_string().starts_with(&format!(
                "`{}/freepbx/phonebook.json` was signed ",
                site.url
            )),
            "{refused}"
        );
    }
    // The genuine next document is accepted: nothing of the refused one was kept.
    let signed_at = now();
    sign(signed_at);
    let answer = check(&tls, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.seen.signed_at, Some(signed_at));
}

#[test]
fn a_single_document_claiming_to_be_valid_longer_than_a_release_may_is_refused() {
    let (tls, signer) = (Tls::new(), Signer::new(1));
    let site = Site::new(&tls);
    let document = freepbx_document("phonebook", "1.0.0");
    let signed_at = now() - 60;
    let put = |expires: u64| {
        let claims = Claims {
            timestamp: Some(signed_at),
            file: Some("freepbx/phonebook.json".into()),
            serial: None,
            expires: Some(expires),
        };
        site.put("freepbx/phonebook.json", document.clone());
        site.put(
            "freepbx/phonebook.json.minisig",
            signer.sign(&document, &claims.to_comment()),
        );
    };
    let source = freepbx(&site, &signer, Seen::default());
    put(9_999_999_999);
    let refused = refusal(&tls, &source);
    assert!(
        refused
            .to_string()
            .contains("days from its signing, longer than the 366 a signature may be"),
        "{refused}"
    );
    // Without a signing time, the validity runs from now, bounded all the same.
    let undated = Claims {
        timestamp: None,
        file: Some("freepbx/phonebook.json".into()),
        serial: None,
        expires: Some(9_999_999_999),
    };
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign(&document, &undated.to_comment()),
    );
    let refused = refusal(&tls, &source);
    assert!(
        refused
            .to_string()
            .contains("longer than the 366 a signature may be"),
        "{refused}"
    );
    // Two claims of one field: which one is meant cannot be told.
    let twice =
        format!("timestamp:{signed_at}\tfile:freepbx/phonebook.json\tfile:freepbx/core.json");
    site.put(
        "freepbx/phonebook.json.minisig",
        signer.sign(&document, &twice),
    );
    let refused = refusal(&tls, &source);
    assert!(
        refused
            .to_string()
            .contains("its trusted comment claims `file:` more than once"),
        "{refused}"
    );
    // A year is what a release may claim, and so may a single document.
    put(signed_at + 365 * 86_400);
    let answer = check(&tls, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.trust.valid_until, Some(signed_at + 365 * 86_400));
}
