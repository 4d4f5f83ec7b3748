//! What a server's compression does: a package compressed again is refused, a gzip
//! document is read and bounded after it is decompressed.

use super::*;

/// `body` compressed with gzip.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let written = encoder.write_all(body).and_then(|()| encoder.finish());
    written.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_package_compressed_again_by_the_server_is_refused_naming_the_encoding() {
    let tls = Tls::new();
    let package = gzip(b"a package, already a gzip tar");
    let twice = gzip(&package);
    let served = package.clone();
    let url = tls.scripted(move |line| {
        // nginx's `gzip_static always` with a `.tgz.gz` beside the package: compressed again.
        let body = if line.contains("again") {
            &twice
        } else {
            &served
        };
        // Apache's `AddEncoding x-gzip .tgz` labels the package as it is: taken.
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(body);
        head
    });
    let refused = download(
        &tls.client(),
        &release(&format!("{url}/again.tgz"), &package),
        tls.dir.path(),
    );
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("the server sent it with Content-Encoding `gzip`")),
        "{refused:?}"
    );
    let labelled = download(
        &tls.client(),
        &release(&format!("{url}/p.tgz"), &package),
        tls.dir.path(),
    );
    assert!(labelled.is_ok(), "{labelled:?}");
}

#[test]
fn a_gzip_encoded_document_is_read_and_bounded_after_decompression() {
    let tls = Tls::new();
    let document = format!(
        r#"{{"rawname":"phonebook","name":"Phonebook","version":"1.0.0",
            "location":"pb.tgz","sha256":"{}"}}"#,
        "0".repeat(64)
    )
    .into_bytes();
    let encoded = gzip(&document);
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    // Two gzip members, as `cat a.gz b.gz` and some compressors write: one document.
    let (head, tail) = document.split_at(document.len() / 2);
    let members = [gzip(head), gzip(tail)].concat();
    let junk = [encoded.clone(), b"<html>".to_vec()].concat();
    let url = tls.scripted(move |line| {
        let body = if line.contains("bomb") {
            &bomb
        } else if line.contains("members") {
            &members
        } else if line.contains("junk") {
            &junk
        } else {
            &encoded
        };
        // A server sending an encoding nobody asked for.
        let encoding = if line.contains("deflate") {
            "deflate"
        } else if line.contains("x-gzip") {
            "x-gzip"
        } else if line.contains("twice") {
            // Two header lines are one list (RFC 9110 §5.3): gzip applied twice.
            "gzip\r\nContent-Encoding: gzip"
        } else {
            "gzip"
        };
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    });
    let target = Target {
        platform: "modhost".into(),
        version: String::new(),
        stability: Default::default(),
        php: None,
    };
    let source = |name: &str| Source {
        name: "main".into(),
        kind: Kind::Freepbx,
        location: Location::Url(format!("{url}/{name}.json")),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: None,
    };
    let releases = tls
        .client()
        .releases(&source("pb"), None, &target)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(releases[0].version, "1.0.0");
    // `x-gzip` is the old name of gzip (RFC 9110 §8.4.1.3).
    let releases = tls
        .client()
        .releases(&source("x-gzip"), None, &target)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(releases[0].version, "1.0.0");
    let releases = tls
        .client()
        .releases(&source("members"), None, &target)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(releases[0].version, "1.0.0");
    // What follows the compressed document is not quietly dropped.
    let refused = tls.client().releases(&source("junk"), None, &target);
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        message.contains("the gzip-encoded document ends early or is damaged"),
        "{message}"
    );
    let refused = tls.client().releases(&source("bomb"), None, &target);
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(message.contains("larger than"), "{message}");
    assert!(
        message.contains("once decompressed (it came gzip-encoded)"),
        "{message}"
    );
    let refused = tls.client().releases(&source("deflate"), None, &target);
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        message.contains("Content-Encoding `deflate`, which was not asked for"),
        "{message}"
    );
    let refused = tls.client().releases(&source("twice"), None, &target);
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        message.contains("Content-Encoding `gzip, gzip`, which was not asked for"),
        "{message}"
    );
}
