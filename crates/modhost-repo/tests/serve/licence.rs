//! The licence check: a gated package from the private part for a valid key only, and
//! what the access log keeps of it.

use super::*;

#[test]
fn a_gated_package_comes_from_the_private_part_with_a_valid_key_only() {
    let tls = Tls::new();
    let entry = Entry {
        rawname: "phonebook".into(),
        name: "Phonebook".into(),
        version: "1.0.0".into(),
        file: "phonebook-1.0.0.tgz".into(),
        size: 5,
        sha256: "0".repeat(64),
        group: Some("pro".into()),
    };
    let repo = repository(vec![entry]);
    let dir = repo.path();
    write(
        &dir.join("private/groups.toml"),
        b"[groups.pro]\nsecret = \"9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8\"\nmodules = [\"phonebook\"]\n",
    );
    write(&dir.join("private/packages/phonebook-1.0.0.tgz"), b"gated");
    write(&dir.join("private/a2/phonebook/1.0.0.tgz"), b"gated-a2");
    write(&dir.join("public/a2/phonebook/modsource.json"), b"{}");
    let addr = tls.serve(dir, 4, Duration::from_secs(5));
    let key = licence_key(
        "9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8",
        "a@example.org",
    );
    let get = |path: &str| {
        tls.exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    for path in ["/packages/phonebook-1.0.0.tgz", "/a2/phonebook/1.0.0.tgz"] {
        let answer = get(path);
        assert!(
            answer.starts_with("HTTP/1.1 403 ") && answer.contains("\"status\":\"ko\""),
            "{answer}"
        );
        let answer = get(&format!("{path}?email=a%40example.org&key={}", &key[1..]));
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    }
    let licensed = format!("?email=a%40example.org&key={key}");
    let answer = get(&format!("/packages/phonebook-1.0.0.tgz{licensed}"));
    assert!(answer.ends_with("\r\n\r\ngated"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: private"),
        "{answer}"
    );
    let answer = get(&format!("/a2/phonebook/1.0.0.tgz{licensed}"));
    assert!(answer.ends_with("\r\n\r\ngated-a2"), "{answer}");
    let answer = get("/a2/phonebook/modsource.json");
    assert!(answer.ends_with("\r\n\r\n{}"), "{answer}");
    // A client that percent-encoded its `?` (or put the key in the path) gets a 404, and
    // the log keeps the path only up to where the key could start.
    for mistyped in [
        format!("/packages/phonebook-1.0.0.tgz%3Femail=a%40example.org%26key={key}"),
        format!("/packages/phonebook-1.0.0.tgz;key={key}"),
        format!("/packages/email=a@example.org&key={key}"),
    ] {
        assert!(get(&mistyped).starts_with("HTTP/1.1 404 "), "{mistyped}");
    }
    assert!(wait_for_log_line(&["path=/packages/phonebook-1.0.0.tgz… ", "status=404"]).is_some());

    // One line per request, with the path but never the query that carries the key.
    let peer = "peer=127.0.0.1:";
    for (path, status, bytes) in [
        ("/packages/phonebook-1.0.0.tgz", "status=403", ""),
        ("/packages/phonebook-1.0.0.tgz", "status=200", "bytes=5 "),
        ("/a2/phonebook/1.0.0.tgz", "status=200", "bytes=8 "),
    ] {
        let line = wait_for_log_line(&[
            "modhost_repo::access",
            "method=GET",
            &format!("path={path} "),
            status,
            bytes,
            peer,
            "duration_ms=",
        ]);
        assert!(line.is_some(), "no access-log line for {path} {status}");
    }
    let log = logged();
    for secret in [key.as_str(), "a%40example.org", "a@example.org", "email="] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}
