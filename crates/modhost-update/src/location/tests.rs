//! Locations as administrators, modules and documents give them.

use super::*;

fn url(text: &str) -> Location {
    Location::Url(text.to_owned())
}

#[test]
fn a_url_is_shown_without_credentials_or_a_query_holding_a_secret() {
    for (text, shown) in [
        ("https://user:s3cret@h/u?key=abc", "https://…@h/u?…"),
        ("https://h/u?v=1&dlid=abc", "https://h/u?…"),
        ("https://h/pkg;key=abc/x.json", "https://h/pkg;…"),
        ("https://h/a;v=1", "https://h/a;v=1"),
        ("https://h/u.json#key=abc", "https://h/u.json"),
        ("https://h/u?v=1", "https://h/u?v=1"),
        ("https://h/u", "https://h/u"),
    ] {
        assert_eq!(shown_url(text), shown, "{text}");
    }
}

#[test]
fn an_origin_is_scheme_host_and_port_with_the_default_filled_in() {
    let origin = |text: &str| url(text).origin();
    assert_eq!(
        origin("https://Repo.Example.org/a/b.json?x=1"),
        Some(("https".into(), "repo.example.org".into(), 443))
    );
    assert_eq!(
        origin("https://repo.example.org:443/pkg.tgz"),
        origin("https://repo.example.org/other")
    );
    assert_ne!(
        origin("https://repo.example.org:8443/pkg.tgz"),
        origin("https://repo.example.org/pkg.tgz")
    );
    assert_ne!(
        origin("https://repo.example.org.evil.test/pkg.tgz"),
        origin("https://repo.example.org/pkg.tgz")
    );
    assert_eq!(Location::Path("/srv/repo".into()).origin(), None);
}

#[test]
fn a_source_url_carrying_a_secret_in_its_query_is_refused_without_showing_it() {
    for text in [
        "https://pbx.example/a2/voicemail?email=a%40b.c&key=883c0ffee",
        "https://pbx.example/joomla.xml?DLID=abc123",
        "https://pbx.example/joomla.xml?download_id=abc123",
        "https://pbx.example/repo?channel=stable;token=t0k",
        // Named as the server reads it.
        "https://pbx.example/x?k%65y=883c0ffee",
        "https://pbx.example/x?%44LID=abc123",
        // A path's parameters, which some servers read as a query.
        "https://pbx.example/;key=883c0ffee",
        "https://pbx.example/repo;v=1;token=t0k/index.json",
        // Every spelling of a password, a key, a signature or a credential.
        "https://pbx.example/?pass=883c0ffee",
        "https://pbx.example/?pwd=883c0ffee",
        "https://pbx.example/?licensekey=883c0ffee",
        "https://pbx.example/?License_Key=883c0ffee",
        "https://pbx.example/?X-Amz-Signature=883c0ffee",
        "https://pbx.example/?auth=883c0ffee",
        "https://pbx.example/?sig=883c0ffee",
        "https://pbx.example/?api.key=883c0ffee",
    ] {
        let refused = Location::parse(text).map_err(|e| e.to_string());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("give the source a download key")
                    && !e.contains("883c0ffee")
                    && !e.contains("abc123")
                    && !e.contains("t0k")),
            "{refused:?}"
        );
    }
    // A query that names no secret (a channel, a format) is the source's own.
    assert!(Location::parse("https://pbx.example/update.php?channel=stable&keyring=x").is_ok());
    // A fragment, never sent, is not kept either.
    assert_eq!(
        Location::parse("https://pbx.example/u.php?channel=stable#key=883c0ffee").ok(),
        Some(url("https://pbx.example/u.php?channel=stable"))
    );
}

#[test]
fn a_source_url_is_written_as_it_will_be_requested_or_refused_now() {
    assert_eq!(
        Location::parse("https://bücher.example/pl ain/").ok(),
        Some(url("https://xn--bcher-kva.example/pl%20ain"))
    );
    assert_eq!(
        Location::parse("https://Repo.Example.org").ok(),
        Some(url("https://repo.example.org"))
    );
    for unusable in ["https://", "https://h.example:99999/x", "https://[::1/x"] {
        let refused = Location::parse(unusable).map_err(|e| e.to_string());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("it is not a valid URL")),
            "{unusable}: {refused:?}"
        );
    }
}

#[test]
fn a_reference_resolves_against_the_documents_path_not_its_query() {
    let document = url("https://h.example/a2/modsource.json?token=ab/cd#top");
    assert_eq!(
        document.resolve("1.0.tgz").ok(),
        Some(url("https://h.example/a2/1.0.tgz"))
    );
    assert_eq!(
        document.resolve("../pkg/1.0.tgz?v=2#x").ok(),
        Some(url("https://h.example/pkg/1.0.tgz?v=2"))
    );
    assert_eq!(
        url("https://h.example?x=/y/z").resolve("a.tgz").ok(),
        Some(url("https://h.example/a.tgz"))
    );
}

#[test]
fn a_name_joins_the_path_and_the_query_stays_the_query() {
    assert_eq!(
        url("https://h.example/a2/?token=t#top").join("index.json"),
        url("https://h.example/a2/index.json?token=t")
    );
    assert_eq!(
        url("https://h.example/a2").join("index.json"),
        url("https://h.example/a2/index.json")
    );
    assert_eq!(
        Location::Path("/srv/repo".into()).join("index.json"),
        Location::Path("/srv/repo/index.json".into())
    );
}

#[test]
fn a_signature_is_beside_its_document_before_any_query() {
    assert_eq!(
        url("https://h.example/update.php?channel=stable#top").signature(),
        url("https://h.example/update.php.minisig?channel=stable")
    );
    assert_eq!(
        url("https://h.example/pb.json").signature(),
        url("https://h.example/pb.json.minisig")
    );
    assert_eq!(
        Location::Path("/srv/pb.json".into()).signature(),
        Location::Path("/srv/pb.json.minisig".into())
    );
}

#[test]
fn a_location_longer_than_any_server_takes_is_refused_quoting_its_start() {
    let long = format!("https://h.example/{}", "a".repeat(200_000));
    for refused in [
        Location::parse(&long),
        url("https://h.example/x.json").resolve(&long),
        url("https://h.example/x.json").resolve(&"b".repeat(10_000)),
    ] {
        let message = refused
            .map(|l| l.to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            message.contains("more than the 8192 any server takes"),
            "{message:.200}"
        );
        assert!(message.len() < 300, "{} bytes", message.len());
    }
}

#[test]
fn a_location_no_request_can_be_made_for_is_refused_and_a_space_encoded() {
    let doc = url("https://h.example/joomla/pb.xml");
    for (reference, why) in [
        ("https://", "it is not a valid URL (empty host)"),
        (
            "https://[::1/p.tgz",
            "it is not a valid URL (invalid IPv6 address)",
        ),
        (
            "https://h.example:99999/p.tgz",
            "it is not a valid URL (invalid port number)",
        ),
    ] {
        let refused = doc.resolve(reference).map_err(|e| e.to_string());
        assert!(
            refused.as_ref().is_err_and(|e| e.ends_with(why)),
            "{reference}: {refused:?}"
        );
    }
    assert_eq!(
        doc.resolve("https://h.example/packages/phone book.tgz")
            .ok(),
        Some(url("https://h.example/packages/phone%20book.tgz"))
    );
    assert_eq!(
        doc.resolve("../packages/phone book.tgz").ok(),
        Some(url("https://h.example/packages/phone%20book.tgz"))
    );
}

#[test]
fn credentials_in_a_url_are_refused_and_never_shown() {
    for refused in [
        Location::parse("https://admin:S3cret@repo.example/a2/pb"),
        url("https://repo.example/x.json").resolve("https://u:S3cret@cdn.example/pb.tgz"),
    ] {
        let message = refused
            .map(|l| l.to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(message.contains("credentials"), "{message}");
        assert!(
            !message.contains("S3cret") && !message.contains("admin"),
            "{message}"
        );
        assert!(message.contains("https://…@"), "{message}");
    }
    // An `@` in the path or the query is no credential.
    assert!(Location::parse("https://repo.example/~a@b/x?mail=a@b.example").is_ok());
}

#[test]
fn references_resolve_against_the_document_and_never_leave_the_web() {
    let doc = url("https://h.example:8443/repo/joomla/pb.xml");
    assert_eq!(
        doc.resolve("../packages/pb-2.0.tgz").ok(),
        Some(url("https://h.example:8443/repo/packages/pb-2.0.tgz"))
    );
    assert_eq!(
        doc.resolve("../../../../x.tgz").ok(),
        Some(url("https://h.example:8443/x.tgz"))
    );
    assert_eq!(
        doc.resolve("https://cdn.example/pb.tgz").ok(),
        Some(url("https://cdn.example/pb.tgz"))
    );
    for refused in ["http://h/pb.tgz", "/etc/passwd", "file:///etc/passwd", ""] {
        assert!(doc.resolve(refused).is_err(), "{refused}");
    }
    // Each refusal says what the location is, not that it is plain HTTP.
    for (refused, why) in [
        ("//cdn.example/pb.tgz", "without its scheme"),
        ("/pb.tgz", "a path from the server's root"),
        ("ftp://h/pb.tgz", "only https:// locations"),
        ("", "empty"),
    ] {
        let error = doc.resolve(refused).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains(why) && !e.contains("plain HTTP")),
            "{refused}: {error:?}"
        );
    }
    let local = Location::Path(PathBuf::from("/srv/repo/a2/pb/modsource.json"));
    assert_eq!(
        local.resolve("2.0.tgz").ok(),
        Some(Location::Path(PathBuf::from("/srv/repo/a2/pb/2.0.tgz")))
    );
}

#[test]
fn only_https_and_absolute_paths_are_sources() {
    assert!(matches!(
        Location::parse("https://h/repo/"),
        Ok(Location::Url(u)) if u == "https://h/repo"
    ));
    assert!(matches!(
        Location::parse("/srv/repo"),
        Ok(Location::Path(_))
    ));
    assert!(matches!(
        Location::parse("http://h/repo"),
        Err(Error::PlainHttp(_))
    ));
    assert!(Location::parse("repo").is_err());
    let file = Location::parse("file:///etc/passwd")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        file,
        Err("`file:///etc/passwd`: only https:// URLs and absolute paths are sources".into())
    );
}
