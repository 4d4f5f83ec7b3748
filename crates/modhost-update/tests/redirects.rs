//! Redirects: each one checked before anything is sent where it points, and a failure after
//! one naming where the server redirected.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use common::{Tls, answer, release};
use modhost_update::Error;

/// The message of downloading `url` with the download key `key=s3cret`, which must never
/// appear in it (where a keyed download was redirected, only the place's origin is
/// named: a server may have put the key anywhere in it).
fn refusal(tls: &Tls, url: &str) -> String {
    let path = tls.dir.path().join("p.tgz");
    let result = tls.client().download(
        &release(url, b"package"),
        Some("key=s3cret"),
        &path,
        &mut |_, _| {},
    );
    let message = match result {
        Err(Error::Fetch { message, .. }) => message,
        other => panic!("expected the download refused, got {other:?}"),
    };
    assert!(!message.contains("s3cret"), "{message}");
    message
}

/// The message of downloading `url` (without a download key) to `path`; empty if it
/// succeeded.
fn download_error(tls: &Tls, url: &str, path: &std::path::Path) -> String {
    tls.client()
        .download(&release(url, b"x"), None, path, &mut |_, _| {})
        .map(|()| String::new())
        .unwrap_or_else(|e| e.to_string())
}

/// A loopback port that nothing must contact, and a check that nothing did.
struct Untouched(TcpListener);

impl Untouched {
    fn new() -> (Untouched, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(1);
        assert!(listener.set_nonblocking(true).is_ok());
        (Untouched(listener), port)
    }

    fn check(&self) {
        assert!(
            self.0.accept().is_err(),
            "the redirect target was contacted"
        );
    }
}

#[test]
fn a_redirect_with_credentials_is_refused_without_connecting() {
    let tls = Tls::new();
    let (untouched, port) = Untouched::new();
    let url = tls.scripted(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: https://admin:hunter2@127.0.0.1:{port}/pb.tgz?key=s3cret\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let message = refusal(&tls, &format!("{url}/pb.tgz"));
    assert_eq!(
        message,
        format!(
            "the server redirected to `https://127.0.0.1:{port}` with credentials \
             (`user:password@`), which is not followed: they would be sent to that server"
        )
    );
    assert!(!message.contains("hunter2"), "{message}");
    untouched.check();
}

#[test]
fn a_redirect_to_another_scheme_or_without_a_location_is_named() {
    let tls = Tls::new();
    let url = tls.scripted(|request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let location = match target.split('?').next().unwrap_or_default() {
            "/file" => "Location: file:///etc/passwd\r\n",
            "/ftp" => "Location: FTP://mirror.example/pb.tgz\r\n",
            _ => "",
        };
        format!("HTTP/1.1 301 Moved Permanently\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    });
    assert_eq!(
        refusal(&tls, &format!("{url}/file")),
        "the server redirected to a `file:` location, which is not followed: only https:// is"
    );
    assert_eq!(
        refusal(&tls, &format!("{url}/ftp")),
        "the server redirected to a `ftp:` location, which is not followed: only https:// is"
    );
    assert_eq!(
        refusal(&tls, &format!("{url}/none")),
        "HTTP status 301 Moved Permanently without a Location to follow"
    );
}

#[test]
fn a_redirect_loop_ends_after_ten_hops() {
    let tls = Tls::new();
    let url = tls.scripted(|request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        let hop: u32 = path.trim_start_matches("/hop").parse().unwrap_or(0);
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: hop{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            hop + 1
        )
        .into_bytes()
    });
    assert_eq!(
        refusal(&tls, &format!("{url}/hop0")),
        "the server redirected more than 10 times"
    );
}

#[test]
fn relative_scheme_relative_and_utf8_redirects_are_followed() {
    let tls = Tls::new();
    let package = b"the package".to_vec();
    let served = package.clone();
    let base = Arc::new(OnceLock::<String>::new());
    let known = Arc::clone(&base);
    let url = tls.scripted(move |request| {
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let authority = known
            .get()
            .and_then(|url| url.strip_prefix("https://"))
            .unwrap_or_default()
            .to_owned();
        let moved = |to: String| {
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        };
        match path {
            "/a/b/start.tgz" => moved("../c/next.tgz".into()),
            "/a/c/next.tgz" => moved(format!("//{authority}/d/ünï.tgz#ignored")),
            "/d/%C3%BCn%C3%AF.tgz" => answer("200 OK", &served),
            _ => answer("404 Not Found", b"no"),
        }
    });
    assert!(base.set(url.clone()).is_ok());
    let path = tls.dir.path().join("p.tgz");
    let result = tls.client().download(
        &release(&format!("{url}/a/b/start.tgz"), &package),
        None,
        &path,
        &mut |_, _| {},
    );
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(std::fs::read(&path).ok(), Some(package));
}

#[test]
fn a_redirect_to_plain_http_is_refused_without_connecting() {
    let tls = Tls::new();
    let plain = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = plain.local_addr().map(|a| a.port()).unwrap_or(1);
    // The redirect keeps the query, download key and all, as careless servers do.
    let url = tls.scripted(move |request| {
        let query = request
            .split_whitespace()
            .nth(1)
            .and_then(|target| target.split_once('?'))
            .map(|(_, query)| query.to_owned())
            .unwrap_or_default();
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/pb.tgz?{query}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let release = release(&format!("{url}/pb.tgz"), b"package");
    let path = tls.dir.path().join("p.tgz");
    let result = tls
        .client()
        .download(&release, Some("key=s3cret"), &path, &mut |_, _| {});
    match &result {
        Err(Error::Fetch { message, .. }) => assert_eq!(
            message,
            &format!(
                "the server redirected to `http://127.0.0.1:{port}`: plain HTTP is \
                 refused; update sources must use https://"
            )
        ),
        other => panic!("expected the redirect refused, got {other:?}"),
    }
    assert!(!format!("{result:?}").contains("s3cret"), "{result:?}");
    assert!(plain.set_nonblocking(true).is_ok());
    assert!(
        plain.accept().is_err(),
        "the plain-HTTP address was never contacted"
    );
}

#[test]
fn a_failure_after_a_redirect_names_where_the_server_redirected() {
    let tls = Tls::new();
    let url = tls.scripted(|request| {
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        match path {
            p if p.starts_with("/moved") => {
                b"HTTP/1.1 302 Found\r\nLocation: /gone/pb.tgz?key=s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec()
            }
            p if p.starts_with("/broken") => {
                b"HTTP/1.1 302 Found\r\nLocation: /error/pb.tgz\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec()
            }
            p if p.starts_with("/error") => answer("500 Internal Server Error", b"oops"),
            _ => answer("404 Not Found", b"no"),
        }
    });
    let path = tls.dir.path().join("p.tgz");
    // What was at the path stays until a download passes; a failed one leaves nothing.
    std::fs::write(&path, "an earlier file").unwrap_or_else(|e| panic!("{e}"));
    let message = download_error(&tls, &format!("{url}/moved/pb.tgz"), &path);
    assert_eq!(
        message,
        format!(
            "`{url}/moved/pb.tgz`: HTTP status 404 at `{url}/gone/pb.tgz`, where the server \
             redirected"
        )
    );
    let message = download_error(&tls, &format!("{url}/broken/pb.tgz"), &path);
    assert!(
        message.ends_with(&format!(
            "HTTP status 500 Internal Server Error at `{url}/error/pb.tgz`, where the server \
             redirected"
        )),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("an earlier file")
    );
    let names: Vec<_> = std::fs::read_dir(tls.dir.path())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| name.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_download_key_copied_into_a_redirect_to_another_origin_is_left_out() {
    let tls = Tls::new();
    let package = b"the package".to_vec();
    let served = package.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorded = Arc::clone(&seen);
    // The other origin: another port.
    let other = tls.scripted(move |request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        if let Ok(mut seen) = recorded.lock() {
            seen.push(target.to_owned());
        }
        answer("200 OK", &served)
    });
    // The source's origin redirects keeping the query, as nginx's `rewrite … redirect` does;
    // once to itself (the key stays: it is the key's own origin), then to the other origin.
    let url = tls.scripted(move |request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let to = match path {
            "/start.tgz" if query.contains("key=s3cret") => format!("/moved.tgz?{query}"),
            "/moved.tgz" if query.contains("key=s3cret") => {
                format!("{other}/pkg.tgz?{query}&v=2")
            }
            _ => return answer("403 Forbidden", b"no key"),
        };
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let path = tls.dir.path().join("p.tgz");
    let result = tls.client().download(
        &release(&format!("{url}/start.tgz"), &package),
        Some("key=s3cret"),
        &path,
        &mut |_, _| {},
    );
    assert!(result.is_ok(), "{result:?}");
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen, ["/pkg.tgz?v=2"], "the other origin saw the key");
}

#[test]
fn a_download_key_moved_into_the_path_of_a_redirect_never_leaves_its_origin_nor_shows() {
    let tls = Tls::new();
    let (untouched, port) = Untouched::new();
    // To another origin with the key in the path, percent-encoded as servers write it.
    let url = tls.scripted(move |request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let to = match path {
            "/away.tgz" => format!("https://127.0.0.1:{port}/pkg.tgz%3F{query}"),
            "/home.tgz" => format!("/gone/pkg.tgz%3F{query}"),
            _ => return answer("404 Not Found", b""),
        };
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let message = refusal(&tls, &format!("{url}/away.tgz"));
    assert!(
        message.contains("with the download key elsewhere in the address")
            && message.contains("a key goes only to its source's own origin"),
        "{message}"
    );
    untouched.check();
    // Only the origin is named: the path holds the key, in whatever encoding.
    assert!(!message.contains("pkg.tgz"), "{message}");
    // On its own origin the key may go anywhere, but a failure there never quotes it.
    let path = tls.dir.path().join("p.tgz");
    let result = tls.client().download(
        &release(&format!("{url}/home.tgz"), b"package"),
        Some("email=alice%40example.org&key=s3cret"),
        &path,
        &mut |_, _| {},
    );
    let message = match result {
        Err(error @ Error::Missing { .. }) => error.to_string(),
        other => panic!("expected a 404, got {other:?}"),
    };
    // Only the origin is named where it landed: the key is in its path, in the server's
    // own encoding.
    assert!(
        message.contains(&format!(
            "HTTP status 404 at `{url}`, where the server redirected"
        )) && !message.contains("gone")
            && !message.contains("s3cret")
            && !message.contains("alice"),
        "{message}"
    );
}

#[test]
fn a_redirected_documents_relative_package_is_found_where_the_document_was() {
    let tls = Tls::new();
    // The document moved (to a CDN, say): its package is named beside where it is now.
    let url = tls.scripted(|request| {
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        match target {
            "/modules/pb.json" => b"HTTP/1.1 302 Found\r\nLocation: /cdn/v2/pb.json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            "/cdn/v2/pb.json" => answer(
                "200 OK",
                br#"{"rawname":"phonebook","name":"Phonebook","version":"1.0.0","location":"pb.tgz","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
            ),
            _ => answer("404 Not Found", b"no"),
        }
    });
    let source = modhost_update::Source {
        name: "main".into(),
        kind: modhost_update::Kind::Freepbx,
        location: modhost_update::Location::Url(format!("{url}/modules/pb.json")),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: None,
    };
    let target = modhost_update::Target {
        platform: "modhost".into(),
        version: String::new(),
        stability: Default::default(),
        php: None,
    };
    let releases = tls
        .client()
        .releases(&source, None, &target)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        releases.first().map(|r| r.location.to_string()),
        Some(format!("{url}/cdn/v2/pb.tgz"))
    );
}

#[test]
fn a_failure_whose_body_trickles_is_said_by_its_status_at_once() {
    let tls = Tls::new();
    let url = tls.streaming(|_, out| {
        let head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n";
        if out.write_all(head).is_err() {
            return;
        }
        for _ in 0..300 {
            if out.write_all(b"x").and_then(|()| out.flush()).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let path = tls.dir.path().join("p.tgz");
    let started = std::time::Instant::now();
    let message = download_error(&tls, &format!("{url}/pb.tgz"), &path);
    assert!(message.contains("HTTP status 500"), "{message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}
