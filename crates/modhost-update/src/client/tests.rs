//! The client against servers that misbehave in ways a message must explain.

use super::key::{with_query, without_key};
use super::*;

/// The error of fetching a document from `url` with a client patient for `patience`.
fn fetch_error(url: String, patience: Duration) -> String {
    let client = Client::new(None, patience).unwrap_or_else(|e| panic!("{e}"));
    match client.fetch_document(&Location::Url(url), 1024) {
        Err(Error::Fetch { message, .. }) => message,
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

fn listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(1);
    (listener, format!("https://127.0.0.1:{port}/index.json"))
}

#[test]
fn a_download_key_goes_in_the_query_never_after_a_fragment() {
    let key = Some("email=a%40b&key=k");
    for (url, sent) in [
        ("https://h/p.tgz", "https://h/p.tgz?email=a%40b&key=k"),
        (
            "https://h/p.tgz?v=2",
            "https://h/p.tgz?v=2&email=a%40b&key=k",
        ),
        ("https://h/p.tgz#frag", "https://h/p.tgz?email=a%40b&key=k"),
        (
            "https://h/p.tgz?v=2#f?x",
            "https://h/p.tgz?v=2&email=a%40b&key=k",
        ),
        // The document's own `key` would be the one a server reads first: the source's
        // key replaces it.
        (
            "https://h/p.tgz?key=x&v=2&email",
            "https://h/p.tgz?v=2&email=a%40b&key=k",
        ),
        ("https://h/p.tgz?", "https://h/p.tgz?email=a%40b&key=k"),
    ] {
        assert_eq!(with_query(url, key), sent, "{url}");
    }
    assert_eq!(with_query("https://h/p.tgz#frag", None), "https://h/p.tgz");
}

#[test]
fn a_timeout_names_the_wait_and_the_setting_that_sets_it() {
    let (listener, url) = listener();
    // Accepts and never answers.
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let message = fetch_error(url, Duration::from_millis(300));
    assert_eq!(
        message,
        "timed out: no complete answer within 0.3 s ([updates] timeout_secs)"
    );
}

#[test]
fn patience_past_what_a_clock_can_add_is_a_whole_transfers() {
    let client = Client::new(None, Duration::MAX).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.timeout, MAX_TRANSFER_TIME);
    let (listener, url) = listener();
    // Hangs up on every connection: the error path adds the patience to a clock.
    std::thread::spawn(move || listener.incoming().for_each(drop));
    let fetched = client.fetch_document(&Location::Url(url), 1024);
    assert!(matches!(fetched, Err(Error::Fetch { .. })), "{fetched:?}");
}

#[test]
fn an_unknown_issuer_points_at_the_ca_settings() {
    let (listener, url) = listener();
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .and_then(|params| params.self_signed(&key))
        .unwrap_or_else(|e| panic!("{e}"));
    let private = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| {
        b.with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private.into())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let config = std::sync::Arc::new(config);
    // Shows its self-signed certificate to the one client that connects.
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = listener.incoming().next()
            && let Ok(mut tls) = rustls::ServerConnection::new(config)
        {
            let _ = tls.complete_io(&mut stream);
        }
    });
    let message = fetch_error(url, Duration::from_secs(10));
    assert!(
        message.starts_with("the server's certificate is issued by no CA modhost trusts")
            && message.ends_with(&format!("; {}", crate::PRIVATE_CA)),
        "{message}"
    );
}

#[test]
fn a_host_no_certificate_can_name_is_said_so() {
    // 2130706433 is 127.0.0.1 as one number: it connects, and no certificate names it.
    let (listener, url) = listener();
    let url = url.replace("127.0.0.1", "2130706433");
    std::thread::spawn(move || drop(listener.incoming().next()));
    assert_eq!(
        fetch_error(url, Duration::from_secs(10)),
        "the host is not a name a certificate can be for: write a DNS name or a dotted IP \
         address"
    );
}

#[test]
fn a_source_naming_a_builds_output_is_pointed_at_its_public_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let public = dir.path().join("public");
    std::fs::create_dir(&public).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(public.join("index.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
    let said = match read_local_bytes(&dir.path().join("index.json"), 1024) {
        Err(Error::File { message, .. }) => message,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("read a file that is not there"),
    };
    assert!(
        said.contains(&format!(
            "`repo build` publishes it in `{}`",
            public.display()
        )),
        "{said}"
    );
    // A file missing from anywhere else is simply missing.
    let said = match read_local_bytes(&public.join("release.json"), 1024) {
        Err(Error::File { message, .. }) => message,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("read a file that is not there"),
    };
    assert!(!said.contains("repo build"), "{said}");
}

#[test]
fn a_download_key_quoted_anywhere_in_a_message_is_left_out() {
    let query = Some("email=ann%40example.com&key=6f1c9e2d4b7a8350&dlid=SECRETKEY123");
    for (message, shown) in [
        (
            "invalid download id in dlid=SECRETKEY123",
            "invalid download id in dlid=<download key>",
        ),
        ("key 6f1c9e2d4b7a8350 expired", "key <download key> expired"),
        (
            "GET /p.tgz?email=ann%40example.com&key=6f1c9e2d4b7a8350&dlid=SECRETKEY123 failed",
            "GET /p.tgz?<download key> failed",
        ),
    ] {
        assert_eq!(without_key(message.to_owned(), query), shown);
    }
    assert_eq!(without_key("as is".to_owned(), None), "as is");
    // A short value is no secret and cuts into nothing; a key is left out as sent and
    // as a server quotes it decoded.
    let query = Some("uid=7&key=3f7a9c%2B1d%3D");
    assert_eq!(
        without_key("key 3f7a9c+1d= expired after 10s (uid 7)".to_owned(), query),
        "key <download key> expired after 10s (uid 7)"
    );
    assert_eq!(
        without_key("bad key=3f7a9c%2B1d%3D".to_owned(), query),
        "bad key=<download key>"
    );
}
