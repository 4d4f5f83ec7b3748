//! The client against misbehaving HTTPS servers, on loopback with certificates made here.

#[path = "../common/mod.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Tls, answer, release, sha256_hex};

mod encoding;
mod sizes;
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
fn a_server_that_hangs_up_without_answering_is_said_so_in_words() {
    let tls = Tls::new();
    // Reads the request, answers nothing, and closes the connection.
    let url = tls.scripted(|_| Vec::new());
    let release = release(&format!("{url}/pb.tgz"), &[0x1f; 4000]);
    let error = download(&tls.client(), &release, tls.dir.path()).err();
    let text = error.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        text.contains("the server closed the connection without a complete answer")
            && !text.contains("close_notify")
            && !text.contains("docs.rs"),
        "{error:?}"
    );
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
