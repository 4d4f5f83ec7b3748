//! Signatures as the minisign tool and `repo build` make them, and each way one fails.

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
    // A page where the signature should be (a fallback to index.html) is said as one.
    let fallback = verify(
        &[tool_key()],
        "https://h/a/test",
        b"{}",
        b"<!doctype html><html><body>Not here</body></html>",
        None,
    );
    let said = fallback.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        said.contains("the signature of `https://h/a/test` is not valid: an HTML page (")
            && said.contains("where the `.minisig` file should be"),
        "{said}"
    );
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
