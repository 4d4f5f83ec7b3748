//! The client against misbehaving HTTPS servers, on loopback with certificates made here.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Tls, answer, release, sha256_hex};
use modhost_update::index::MAX_INDEX;
use modhost_update::{Client, Error, Kind, Location, Release, Source, Target};

fn write(path: &Path, bytes: &[u8]) {
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(path, bytes));
    assert!(written.is_ok(), "{written:?}");
}

fn download(client: &Client, release: &Release, dir: &Path) -> Result<(), Error> {
    client.download(release, None, &dir.join("p.tgz"), &mut |_, _| {})
}

#[test]
fn a_refusal_answered_with_status_200_is_the_servers_message_not_a_mismatch() {
    let tls = Tls::new();
    let url = tls.scripted(|_| {
        answer(
            "200 OK",
            br#"{ "status": "ko", "error_code": "REL_ENS", "error_description": "Email not specified" }"#,
        )
    });
    let release = release(&format!("{url}/get/release/download/pb_100"), &[0x1f; 4000]);
    match download(&tls.client(), &release, tls.dir.path()) {
        Err(Error::Server { message, .. }) => {
            assert_eq!(message, "Email not specified (error REL_ENS)")
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_package_over_its_published_size_is_a_mismatch_and_an_unsized_one_meets_the_cap() {
    let tls = Tls::new();
    // Answers `/N` with N bytes.
    let url = tls.scripted(|request| {
        let n = request
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.trim_start_matches('/').parse::<usize>().ok())
            .unwrap_or(0);
        answer("200 OK", &vec![0x1f; n])
    });
    let client = tls.client().max_package(64);
    // A published size above the cap is refused before fetching (see
    // `a_published_size_above_the_cap_is_refused_before_the_package_is_fetched`): sized
    // packages are fetched under the default cap.
    let default_cap = tls.client();
    let for_release = |release: &Release| match release.size {
        Some(_) => &default_cap,
        None => &client,
    };
    let mismatch = |release: &Release| match download(for_release(release), release, tls.dir.path())
    {
        Err(Error::Mismatch { message, .. }) => message,
        other => panic!("expected a mismatch, got {other:?}"),
    };
    let mut sized = release(&format!("{url}/101"), &[0x1f; 100]);
    assert_eq!(
        mismatch(&sized),
        "more than 100 bytes sent or announced, 100 published"
    );
    sized.location = Location::Url(format!("{url}/99"));
    assert_eq!(mismatch(&sized), "99 bytes received, 100 published");
    // Unsized: the cap holds, whatever the server sends.
    let mut unsized_ = release(&format!("{url}/65"), &[0x1f; 65]);
    unsized_.size = None;
    assert_eq!(
        mismatch(&unsized_),
        "larger than the 64-byte limit for a package whose size is not published"
    );
    unsized_ = release(&format!("{url}/64"), &[0x1f; 64]);
    unsized_.size = None;
    assert!(download(&client, &unsized_, tls.dir.path()).is_ok());
    // A local package one byte over its published size is the same mismatch.
    let local = tls.dir.path().join("local.tgz");
    write(&local, &[0x1f; 101]);
    let mut from_disk = release("https://unused", &[0x1f; 100]);
    from_disk.location = Location::Path(local);
    assert_eq!(
        mismatch(&from_disk),
        "more than 100 bytes sent or announced, 100 published"
    );
}

#[test]
fn a_transfer_cut_short_and_an_answer_to_come_back_later_are_said_so() {
    let tls = Tls::new();
    let url = tls.scripted(|request| {
        if request.contains("/busy") {
            return b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                .to_vec();
        }
        if request.contains("/down") {
            return b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 \
                     GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec();
        }
        // Announces more than it sends, then hangs up.
        let mut cut =
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\nConnection: close\r\n\r\n".to_vec();
        cut.extend_from_slice(&[0x1f; 1000]);
        cut
    });
    let fetched = |path: &str| {
        let release = release(&format!("{url}/{path}"), &[0x1f; 99999]);
        match download(&tls.client(), &release, tls.dir.path()) {
            Err(Error::Fetch { message, .. }) => message,
            other => panic!("{path}: expected a failed fetch, got {other:?}"),
        }
    };
    let cut = fetched("cut");
    assert!(
        cut.starts_with("the transfer ended after 1000 of the 99999 bytes the server announced ("),
        "{cut}"
    );
    assert_eq!(
        fetched("busy"),
        "HTTP status 429 Too Many Requests; the server asks to be asked again in 120 s"
    );
    assert_eq!(
        fetched("down"),
        "HTTP status 503 Service Unavailable; the server asks to be asked again after Wed, 21 \
         Oct 2026 07:28:00 GMT"
    );
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_server_busy_for_a_moment_is_asked_again_a_few_times() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tls = Tls::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&asked);
    let package = [0x1f; 64];
    let url = tls.scripted(move |request| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec();
        match () {
            // Busy twice, as `repo serve` past its connections answers, then served.
            () if request.contains("/soon") && n < 2 => busy,
            () if request.contains("/soon") => answer("200 OK", &package),
            // Busy for as long as anyone asks.
            () => busy,
        }
    });
    let started = std::time::Instant::now();
    assert!(
        download(
            &tls.client(),
            &release(&format!("{url}/soon"), &package),
            tls.dir.path()
        )
        .is_ok()
    );
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_secs(2));
    // Asked again three times at most, then said with what the server asked.
    asked.store(0, Ordering::SeqCst);
    match download(
        &tls.client(),
        &release(&format!("{url}/never"), &package),
        tls.dir.path(),
    ) {
        Err(Error::Fetch { message, .. }) => assert_eq!(
            message,
            "HTTP status 503 Service Unavailable; the server asks to be asked again in 1 s"
        ),
        other => panic!("expected a failed fetch, got {other:?}"),
    }
    assert_eq!(asked.load(Ordering::SeqCst), 4);
}

#[test]
fn an_index_over_the_limit_is_refused_even_without_a_content_length() {
    let tls = Tls::new();
    let url = tls.scripted(|_| {
        let chunk = vec![b' '; 64 * 1024];
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=(MAX_INDEX / chunk.len() as u64) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    });
    let source = Source {
        name: "big".into(),
        kind: Kind::Index,
        location: Location::Url(url),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: None,
    };
    let target = Target {
        platform: "modhost".into(),
        version: String::new(),
        stability: Default::default(),
        php: None,
    };
    match tls.client().releases(&source, None, &target) {
        Err(Error::Fetch { message, .. }) => assert!(message.contains("limit"), "{message}"),
        other => panic!("expected the size limit, got {other:?}"),
    }
}

#[test]
fn a_download_key_reaches_the_sources_own_server_and_never_another() {
    use std::sync::Mutex;
    let tls = Tls::new();
    let package = b"package bytes".to_vec();
    let sha256 = sha256_hex(&package);
    // Every request line each server sees, and the document `a` serves.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let document = Arc::new(Mutex::new(Vec::<u8>::new()));
    let serving = |name: &'static str| {
        let (seen, document, package) = (Arc::clone(&seen), Arc::clone(&document), package.clone());
        tls.scripted(move |line| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(format!("{name} {line}"));
            }
            match document.lock() {
                Ok(body) if line.contains(".json") => answer("200 OK", &body),
                _ => answer("200 OK", &package),
            }
        })
    };
    let a = serving("a");
    let b = serving("b");
    let target = Target {
        platform: "modhost".into(),
        version: String::new(),
        stability: Default::default(),
        php: None,
    };
    let client = tls.client();
    let source = Source {
        name: "main".into(),
        kind: Kind::Freepbx,
        location: Location::Url(format!("{a}/pb.json")),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: Some("email=a%40example.org&key=s3cret".into()),
    };
    for (server, name) in [(&b, "b"), (&a, "a")] {
        if let Ok(mut body) = document.lock() {
            *body = format!(
                r#"{{"rawname":"phonebook","name":"Phonebook","version":"1.0.0",
                    "location":"{server}/pb.tgz","sha256":"{sha256}"}}"#
            )
            .into_bytes();
        }
        let releases = client
            .releases(&source, None, &target)
            .unwrap_or_else(|e| panic!("{e}"));
        let release = &releases[0];
        let key = source.key_for(&release.location);
        let path = tls.dir.path().join("p.tgz");
        let downloaded = client.download(release, key, &path, &mut |_, _| {});
        assert!(downloaded.is_ok(), "{downloaded:?}");
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let fetched = seen
            .iter()
            .rev()
            .find(|l| l.contains("/pb.tgz"))
            .unwrap_or_else(|| panic!("no package was fetched: {seen:?}"));
        assert!(fetched.starts_with(name), "{fetched}");
        assert_eq!(
            fetched.contains("key=s3cret"),
            name == "a",
            "only the source's own server gets the key: {seen:?}"
        );
    }
}

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

/// An a2 channel at `url`/a2/pb publishing pb 2.0.0 as `size` bytes, whose package is an
/// endless answer; how many times the package was asked for.
fn endless_a2(tls: &Tls, size: u64) -> (Source, Arc<std::sync::atomic::AtomicUsize>) {
    a2_channel(tls, size, |out| {
        // No length, and no end: only the client hanging up stops it.
        let mut sent = out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![0x1f; 64 * 1024];
        while sent.is_ok() {
            sent = out.write_all(&chunk);
        }
    })
}

/// An a2 channel at `url`/a2/pb publishing pb 2.0.0 as `size` bytes, whose package
/// `package` writes; how many times the package was asked for.
fn a2_channel(
    tls: &Tls,
    size: u64,
    package: impl Fn(&mut dyn Write) + Send + 'static,
) -> (Source, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&asked);
    let url = tls.streaming(move |request, out| {
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        if path == "/a2/pb/modsource.json" {
            let document = format!(
                r#"{{"rawname":"pb","version":"2.0.0","size":{size},"sha256":"{}"}}"#,
                "a".repeat(64)
            );
            let _ = out.write_all(&answer("200 OK", document.as_bytes()));
            return;
        }
        counted.fetch_add(1, Ordering::SeqCst);
        package(out);
    });
    (a2_source(&url), asked)
}

/// Module pb's own a2 channel at `url`/a2/pb.
fn a2_source(url: &str) -> Source {
    Source {
        name: "pb/update_url".into(),
        kind: Kind::A2,
        location: Location::Url(format!("{url}/a2/pb")),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: None,
    }
}

#[test]
fn a_published_size_above_the_cap_is_refused_before_the_package_is_fetched() {
    use std::sync::atomic::Ordering;
    let tls = Tls::new();
    let (source, asked) = endless_a2(&tls, u64::MAX);
    let client = tls.client();
    let releases = client
        .releases(&source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    match download(&client, &releases[0], tls.dir.path()) {
        Err(Error::Invalid { url, message }) => {
            assert!(url.ends_with("/a2/pb/modsource.json"), "{url}");
            assert_eq!(
                message,
                format!(
                    "`pb` 2.0.0 is published as 18446744073709551615 bytes, more than the \
                     {}-byte package limit: it is not downloaded",
                    modhost_update::MAX_PACKAGE
                )
            );
        }
        other => panic!("expected the published size refused, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the package was fetched");
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn an_endless_package_is_read_no_further_than_its_published_size() {
    let tls = Tls::new();
    let (source, _) = endless_a2(&tls, 1000);
    let client = tls.client();
    let releases = client
        .releases(&source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut received = 0;
    let downloaded = client.download(&releases[0], None, &tls.file("p.tgz"), &mut |n, _| {
        received = n;
    });
    assert_oversized(downloaded);
    assert_eq!(received, 1001, "read past the published size");
    assert!(!tls.file("p.tgz").exists());
}

/// That `downloaded` was refused as more than the 1000 bytes its release published.
fn assert_oversized<T: std::fmt::Debug>(downloaded: Result<T, Error>) {
    match downloaded {
        Err(Error::Mismatch { message, .. }) => {
            assert_eq!(
                message,
                "more than 1000 bytes sent or announced, 1000 published"
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

/// Downloads `source`'s first release with a client patient for 1 s: what it came to,
/// and how long it took.
fn impatient_download(tls: &Tls, source: &Source) -> (Result<(), Error>, Duration) {
    let client = Client::new(Some(&tls.file("ca.pem")), Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    let releases = client
        .releases(source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let downloaded = download(&client, &releases[0], tls.dir.path());
    (downloaded, started.elapsed())
}

#[test]
fn a_package_trickled_slower_than_the_floor_is_given_up_on_within_the_timeout() {
    let tls = Tls::new();
    let size = 1 << 20;
    let (source, _) = a2_channel(&tls, size, move |out| {
        // Never silent for long, never fast: a byte every 20 ms, 50 bytes a second.
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
        let mut sent = out.write_all(head.as_bytes());
        while sent.is_ok() {
            sent = out.write_all(b"x").and_then(|()| out.flush());
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let url = source.location.to_string();
    let (downloaded, took) = impatient_download(&tls, &source);
    match downloaded {
        Err(Error::Fetch {
            url: fetched,
            message,
        }) => {
            assert!(fetched.starts_with(&url), "{fetched}");
            assert!(
                message.contains("slower than the 1024 bytes a second a transfer needs"),
                "{message}"
            );
        }
        other => panic!("expected the trickle given up on, got {other:?}"),
    }
    assert!(
        // Read to its end, it would take almost six hours.
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "given up on after {took:?}"
    );
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_package_announced_longer_than_published_is_refused_before_its_body_is_read() {
    let tls = Tls::new();
    let (source, _) = a2_channel(&tls, 1000, move |out| {
        // A gigabyte announced, then a slow trickle that would hold a reader.
        let mut sent = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n");
        while sent.is_ok() {
            sent = out.write_all(b"x").and_then(|()| out.flush());
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Read, the trickle would be given up on as too slow (a `Fetch` error): refused as
    // oversized, it was never read.
    let (downloaded, _) = impatient_download(&tls, &source);
    assert_oversized(downloaded);
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_package_whose_answer_head_is_trickled_is_given_up_on_within_the_timeout() {
    let tls = Tls::new();
    let (source, _) = a2_channel(&tls, 1000, move |out| {
        // The head a byte every 200 ms: no read waits a second, and no body byte comes.
        let head = "HTTP/1.1 200 OK\r\nX-Padding: ".to_owned() + &"p".repeat(4096);
        for byte in head.as_bytes() {
            if out.write_all(&[*byte]).and_then(|()| out.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (downloaded, took) = impatient_download(&tls, &source);
    match downloaded {
        Err(Error::Fetch { message, .. }) => {
            assert!(
                message.contains("timed out: no complete answer within 1 s"),
                "{message}"
            );
        }
        other => panic!("expected the trickled head given up on, got {other:?}"),
    }
    // The whole head would take over 13 minutes; the transfer limit is 10.
    assert!(took < Duration::from_secs(10), "given up on after {took:?}");
    assert!(!tls.file("p.tgz").exists());
}

#[test]
fn a_modules_own_a2_channel_naming_another_module_is_set_aside_with_why() {
    let tls = Tls::new();
    let url = tls.scripted(|_| {
        let document = format!(
            r#"{{"rawname":"voicemail","version":"9.0.0","sha256":"{}"}}"#,
            "a".repeat(64)
        );
        answer("200 OK", document.as_bytes())
    });
    let source = a2_source(&url);
    let answer = tls
        .client()
        .check(&source, Some("phonebook"), &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.releases.is_empty());
    let aside: Vec<_> = answer
        .set_aside
        .iter()
        .map(|s| (s.rawname.as_str(), s.version.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        aside,
        [(
            "voicemail",
            "9.0.0",
            "it is in a channel of module `phonebook`, which offers that module's updates only"
        )]
    );
}

#[test]
fn requests_name_modhost_and_its_version_and_ask_gzip_for_documents_only() {
    use std::sync::Mutex;
    let tls = Tls::new();
    let package = b"package bytes".to_vec();
    let sha256 = sha256_hex(&package);
    // The header lines of each request, by path.
    let heads = Arc::new(Mutex::new(Vec::<(String, Vec<String>)>::new()));
    let seen = Arc::clone(&heads);
    let url = tls.with_heads(move |request, headers| {
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        if let Ok(mut seen) = seen.lock() {
            seen.push((path.to_owned(), headers.to_vec()));
        }
        if path.ends_with(".json") {
            answer(
                "200 OK",
                format!(
                    r#"{{"rawname":"pb","version":"1.0.0","size":{},"sha256":"{sha256}"}}"#,
                    package.len()
                )
                .as_bytes(),
            )
        } else {
            answer("200 OK", &package)
        }
    });
    let client = tls.client();
    let releases = client
        .releases(&a2_source(&url), None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let downloaded = download(&client, &releases[0], tls.dir.path());
    assert!(downloaded.is_ok(), "{downloaded:?}");
    let heads = heads.lock().map(|h| h.clone()).unwrap_or_default();
    let header = |headers: &[String], name: &str| {
        headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let [(document, document_head), (package_path, package_head)] = heads.as_slice() else {
        panic!("expected a document and a package request, got {heads:?}");
    };
    assert_eq!(document, "/a2/pb/modsource.json");
    assert_eq!(package_path, "/a2/pb/1.0.0.tgz");
    let agent = format!("modhost/{}", env!("CARGO_PKG_VERSION"));
    for head in [document_head, package_head] {
        assert_eq!(
            header(head, "user-agent").as_deref(),
            Some(agent.as_str()),
            "{head:?}"
        );
    }
    assert_eq!(
        header(document_head, "accept-encoding").as_deref(),
        Some("gzip")
    );
    // A package is taken byte-exact, as its checksum describes it.
    assert!(
        header(package_head, "accept-encoding").is_none_or(|v| v == "identity"),
        "{package_head:?}"
    );
}

#[test]
fn an_a2_channel_holding_a2s_own_document_name_is_read() {
    let tls = Tls::new();
    let site = common::Site::new(&tls);
    let sha = "a".repeat(64);
    site.put(
        "a2/pb/a2modsource.json",
        format!(r#"{{"rawname":"pb","version":"2.0.0","sha256":"{sha}"}}"#),
    );
    let source = Source {
        location: Location::Url(format!("{}/a2/pb", site.url)),
        ..a2_source(&site.url)
    };
    let releases = tls
        .client()
        .releases(&source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(releases[0].version, "2.0.0");
    // `modsource.json` comes first where both are.
    site.put(
        "a2/pb/modsource.json",
        format!(r#"{{"rawname":"pb","version":"3.0.0","sha256":"{sha}"}}"#),
    );
    let releases = tls
        .client()
        .releases(&source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(releases[0].version, "3.0.0");
    // Neither there: the one modhost reads is named as missing.
    site.remove("a2/pb/modsource.json");
    site.remove("a2/pb/a2modsource.json");
    match tls.client().releases(&source, None, &Target::default()) {
        Err(Error::Missing {
            url, status: 404, ..
        }) => {
            assert!(url.ends_with("/a2/pb/modsource.json"), "{url}")
        }
        other => panic!("expected the document missing, got {other:?}"),
    }
}
