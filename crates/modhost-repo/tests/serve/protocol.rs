//! What HTTP gives clients: HEAD, Range, conditional requests, keep-alive, HTTP/2, gzip
//! for documents, and the public part alone.

use super::*;

#[test]
fn range_requests_get_the_bytes_asked_for_or_416() -> TestResult {
    let (package, served) = Served::package(100_000);
    let (url, agent) = (served.url.clone(), served.tls.agent());

    let mut response = agent
        .get(&url)
        .header("Range", "bytes=1000-1999")
        // A package is never gzipped, asked for in ranges or not.
        .header("Accept-Encoding", "gzip")
        .call()?;
    assert_eq!(response.status(), 206);
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes 1000-1999/100000")
    );
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(response.body_mut().read_to_vec()?, &package[1000..2000]);

    let mut response = agent.get(&url).header("Range", "bytes=99990-").call()?;
    assert_eq!(response.status(), 206);
    assert_eq!(response.body_mut().read_to_vec()?, &package[99_990..]);

    let response = agent.get(&url).header("Range", "bytes=100000-").call()?;
    assert_eq!(response.status(), 416);
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes */100000")
    );

    // A suffix longer than the file is the whole file (RFC 9110 §14.1.2); one of no
    // bytes is no range at all.
    let mut response = agent.get(&url).header("Range", "bytes=-250000").call()?;
    assert_eq!(response.status(), 206);
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes 0-99999/100000")
    );
    assert_eq!(response.body_mut().read_to_vec()?, package);
    let response = agent.get(&url).header("Range", "bytes=-0").call()?;
    assert_eq!(response.status(), 416);
    Ok(())
}

/// The value of `name` in `response`'s headers.
fn header_of(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[test]
fn if_range_naming_another_version_of_the_file_gets_the_whole_file() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let path = repo.path().join("public/packages/core-1.0.0.tgz");
    let old = pattern(10_000);
    write(&path, &old);
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let url = format!("https://{addr}/packages/core-1.0.0.tgz");
    let agent = tls.agent();
    let first = agent.get(&url).call()?;
    let (old_etag, old_date) = (
        header_of(&first, "etag").unwrap_or_default(),
        header_of(&first, "last-modified").unwrap_or_default(),
    );
    assert!(old_etag.starts_with('"') && !old_date.is_empty());

    // A rebuild replaces the file, as `repo build` does: a new file renamed over it,
    // here of the same length and modification time (a build keeps a package's own).
    let new: Vec<u8> = pattern(10_000).iter().map(|b| b ^ 0x5a).collect();
    let next = repo.path().join("public/packages/next.tmp");
    write(&next, &new);
    let made = std::fs::metadata(&path)?.modified()?;
    std::fs::File::options()
        .write(true)
        .open(&next)?
        .set_modified(made)?;
    std::fs::rename(&next, &path)?;
    let current = agent.get(&url).call()?;
    let (etag, date) = (
        header_of(&current, "etag").unwrap_or_default(),
        header_of(&current, "last-modified").unwrap_or_default(),
    );
    assert_ne!(etag, old_etag);
    assert_eq!(date, old_date, "the same Last-Modified");

    // A client resuming the old file after its first 60 bytes gets the new one whole; so
    // does one naming a date, which two builds' files may share.
    let stale_date = "Thu, 01 Jan 1970 00:00:00 GMT";
    let weak = format!("W/{etag}");
    for (if_range, range) in [
        (old_etag.as_str(), "bytes=60-"),
        (weak.as_str(), "bytes=60-"),
        (stale_date, "bytes=0-9"),
        (date.as_str(), "bytes=60-"),
        ("\"another\"", "bytes=0-9"),
        // Unsatisfiable for the new file, but the client asked about another one.
        (old_etag.as_str(), "bytes=50000-"),
    ] {
        let mut answer = agent
            .get(&url)
            .header("If-Range", if_range)
            .header("Range", range)
            .call()?;
        assert_eq!(answer.status(), 200, "If-Range: {if_range}, Range: {range}");
        assert_eq!(header_of(&answer, "content-range"), None);
        assert_eq!(header_of(&answer, "etag").as_deref(), Some(etag.as_str()));
        assert_eq!(
            answer.body_mut().read_to_vec()?,
            new,
            "If-Range: {if_range}"
        );
    }
    // Naming the file served by its ETag, it gets the part.
    let mut answer = agent
        .get(&url)
        .header("If-Range", &etag)
        .header("Range", "bytes=60-")
        .call()?;
    assert_eq!(answer.status(), 206);
    assert_eq!(
        header_of(&answer, "content-range").as_deref(),
        Some("bytes 60-9999/10000")
    );
    assert_eq!(answer.body_mut().read_to_vec()?, &new[60..]);
    // A cache revalidating the old file is given the new one.
    let mut answer = agent.get(&url).header("If-None-Match", &old_etag).call()?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body_mut().read_to_vec()?, new);
    let answer = agent
        .get(&url)
        .header("If-Range", &etag)
        .header("Range", "bytes=50000-")
        .call()?;
    assert_eq!(answer.status(), 416);
    // Without a Range, If-Range means nothing.
    let mut answer = agent.get(&url).header("If-Range", &old_etag).call()?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body_mut().read_to_vec()?, new);
    Ok(())
}

#[test]
fn several_ranges_or_an_invalid_range_get_the_whole_file() -> TestResult {
    let (package, served) = Served::package(5_000);
    let (url, agent) = (served.url.clone(), served.tls.agent());
    for range in [
        "bytes=0-0,5-9",
        "bytes=0-0,99999-",
        "bytes=abc",
        "bytes=9-0",
        "bytes=-",
        "items=0-9",
        "0-9",
    ] {
        let mut answer = agent.get(&url).header("Range", range).call()?;
        assert_eq!(answer.status(), 200, "Range: {range}");
        assert_eq!(header_of(&answer, "content-range"), None, "Range: {range}");
        assert_eq!(answer.body_mut().read_to_vec()?, package, "Range: {range}");
        let head = agent.head(&url).header("Range", range).call()?;
        assert_eq!(head.status(), 200, "HEAD, Range: {range}");
    }
    // One valid range, spelled loosely, is still one range.
    let mut answer = agent.get(&url).header("Range", "Bytes=10-19,").call()?;
    assert_eq!(answer.status(), 206);
    assert_eq!(answer.body_mut().read_to_vec()?, &package[10..20]);
    let mut answer = agent.get(&url).header("Range", "bytes=-10").call()?;
    assert_eq!(answer.status(), 206);
    assert_eq!(answer.body_mut().read_to_vec()?, &package[4_990..]);

    // An empty file has no part to give: any range gets it whole.
    let (_, empty) = Served::package(0);
    let (url, agent) = (empty.url.clone(), empty.tls.agent());
    for range in ["bytes=0-0", "bytes=0-", "bytes=-5"] {
        let mut answer = agent.get(&url).header("Range", range).call()?;
        assert_eq!(answer.status(), 200, "Range: {range}");
        assert_eq!(header_of(&answer, "content-range"), None, "Range: {range}");
        assert!(
            answer.body_mut().read_to_vec()?.is_empty(),
            "Range: {range}"
        );
    }
    Ok(())
}

#[test]
fn conditional_gets_are_answered_304_with_the_validators() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        b"bytes",
    );
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let agent = tls.agent();
    for (path, cache) in [
        ("/index.json", "no-cache"),
        ("/packages/core-1.0.0.tgz", "public, max-age=3600"),
    ] {
        let url = format!("https://{addr}{path}");
        let first = agent.get(&url).call()?;
        assert_eq!(first.status(), 200);
        let value = |name: &str| {
            first
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let (etag, modified) = (value("etag"), value("last-modified"));
        assert!(etag.starts_with('"'), "{path}: strong ETag, got {etag:?}");
        assert!(!modified.is_empty(), "{path}: no Last-Modified");
        assert_eq!(value("cache-control"), cache, "{path}");

        let mut again = agent.get(&url).header("If-None-Match", &etag).call()?;
        assert_eq!(again.status(), 304, "{path}: If-None-Match");
        assert!(again.body_mut().read_to_vec()?.is_empty());
        // A date is no validator here: two builds of one second share it.
        let mut again = agent
            .get(&url)
            .header("If-Modified-Since", &modified)
            .call()?;
        assert_eq!(again.status(), 200, "{path}: If-Modified-Since");
        assert!(!again.body_mut().read_to_vec()?.is_empty());
        let changed = agent
            .get(&url)
            .header("If-None-Match", "\"another\"")
            .call()?;
        assert_eq!(changed.status(), 200, "{path}: another ETag");
    }
    Ok(())
}

#[test]
fn head_answers_the_headers_of_get_without_a_body_and_other_methods_get_405() -> TestResult {
    let (_, served) = Served::package(70_000);
    let (url, agent) = (served.url.clone(), served.tls.agent());

    let mut head = agent.head(&url).call()?;
    assert_eq!(head.status(), 200);
    let header = |name: &str| {
        head.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-length").as_deref(), Some("70000"));
    assert_eq!(header("content-type").as_deref(), Some("application/gzip"));
    assert_eq!(header("accept-ranges").as_deref(), Some("bytes"));
    assert!(head.body_mut().read_to_vec()?.is_empty());

    let mut post = agent.post(&url).send(&b"x"[..])?;
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    assert!(
        post.body_mut()
            .read_to_string()?
            .contains("\"status\":\"ko\"")
    );
    Ok(())
}

#[test]
fn two_requests_share_one_kept_alive_connection() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        b"bytes",
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let mut connection = BufReader::new(tls.connect(addr));
    for (path, body) in [
        ("/index.json", index.as_slice()),
        ("/packages/core-1.0.0.tgz", b"bytes".as_slice()),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        connection.get_mut().write_all(request.as_bytes())?;
        connection.get_mut().flush()?;
        let (head, answer) = read_answer(&mut connection)?;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{path}: {head}");
        assert!(!head.to_ascii_lowercase().contains("connection: close"));
        assert_eq!(answer, body, "{path}");
    }
    Ok(())
}

#[test]
fn a_client_offering_only_http_1_0_is_served() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let name = ServerName::try_from("127.0.0.1")?;
    let connection = ClientConnection::new(tls.client_config(&[b"http/1.0"]), name)?;
    let mut stream = StreamOwned::new(connection, TcpStream::connect(addr)?);
    stream.write_all(b"GET /index.json HTTP/1.0\r\n\r\n")?;
    stream.flush()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.0"[..]));
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    assert!(
        answer.ends_with(&*String::from_utf8_lossy(&index)),
        "{answer}"
    );
    Ok(())
}

/// Reads one HTTP/1.1 answer with a Content-Length from `connection`: its head and body.
fn read_answer(
    connection: &mut BufReader<StreamOwned<ClientConnection, TcpStream>>,
) -> Result<(String, Vec<u8>), Box<dyn Error>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if connection.read_line(&mut line)? == 0 {
            return Err("the connection ended before the answer".into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or("no content-length")?;
    let mut body = vec![0; length];
    connection.read_exact(&mut body)?;
    Ok((head, body))
}

/// An HTTP/2 connection to the server at `addr`, the client offering `alpn`: its sender.
async fn http2(
    tls: &Tls,
    addr: std::net::SocketAddr,
    alpn: &[&[u8]],
) -> Result<hyper::client::conn::http2::SendRequest<Empty<Bytes>>, Box<dyn Error>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config(alpn));
    let stream = connector
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

#[test]
fn http2_is_negotiated_through_alpn() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let package = pattern(300_000);
    write(
        &repo.path().join("public/packages/core-1.0.0.tgz"),
        &package,
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sender = http2(&tls, addr, &[b"h2", b"http/1.1"]).await?;
        // Both on the one connection at once, as HTTP/2 streams.
        let get = |path: &str| {
            let mut sender = sender.clone();
            let request =
                http::Request::get(format!("https://127.0.0.1{path}")).body(Empty::<Bytes>::new());
            tokio::spawn(async move {
                let response = sender
                    .send_request(request.map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
                let (version, status) = (response.version(), response.status());
                let body = response.into_body().collect().await;
                Ok::<_, String>((version, status, body.map_err(|e| e.to_string())?.to_bytes()))
            })
        };
        let (document, package_answer) = (get("/index.json"), get("/packages/core-1.0.0.tgz"));
        let (document, package_answer) = (document.await??, package_answer.await??);
        for ((version, status, body), expected) in [
            (document, index.as_slice()),
            (package_answer, package.as_slice()),
        ] {
            assert_eq!(version, http::Version::HTTP_2);
            assert_eq!(status, 200);
            assert_eq!(body.as_ref(), expected);
        }
        Ok::<_, Box<dyn Error>>(())
    })?;
    Ok(())
}

#[test]
fn an_http2_connection_has_at_most_eight_streams_under_way() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    // Far more than the flow-control windows let through unread.
    write(
        &repo.path().join("public/packages/big.tgz"),
        &vec![0; 4 << 20],
    );
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(10));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sender = http2(&tls, addr, &[b"h2"]).await?;
        let get = |path: &str| {
            let mut sender = sender.clone();
            let request =
                http::Request::get(format!("https://127.0.0.1{path}")).body(Empty::<Bytes>::new());
            async move {
                let request = request.map_err(|e| e.to_string())?;
                sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        // Eight downloads left unread hold eight streams, each with what it buffered.
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(get("/packages/big.tgz").await?);
        }
        // A ninth request waits for one of them.
        let ninth = tokio::spawn(get("/index.json"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!ninth.is_finished(), "a ninth stream was opened at once");
        drop(held.pop());
        let answered = tokio::time::timeout(Duration::from_secs(5), ninth).await;
        assert!(
            matches!(answered, Ok(Ok(Ok(ref response))) if response.status() == 200),
            "{answered:?}"
        );
        Ok::<_, Box<dyn Error>>(())
    })?;
    Ok(())
}

#[test]
fn head_over_http2_ends_with_the_headers_for_refusals_too() -> TestResult {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut sender = http2(&tls, addr, &[b"h2"]).await?;
        // A refusal is a gzippable JSON document: its HEAD must still end at the headers.
        for (path, expected) in [
            ("/nosuch", 404),
            ("/packages/core-1.0.0.tgz", 404),
            ("/index.json", 200),
        ] {
            let request = http::Request::head(format!("https://127.0.0.1{path}"))
                .header("accept-encoding", "gzip")
                .body(Empty::<Bytes>::new())?;
            let answered = tokio::time::timeout(Duration::from_secs(5), async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
            .await;
            let Ok(Ok((status, body))) = answered else {
                panic!("HEAD {path} over HTTP/2 did not end cleanly: {answered:?}");
            };
            assert_eq!(status, expected, "{path}");
            assert!(body.is_empty(), "{path}: a body of {} bytes", body.len());
        }
        Ok::<_, Box<dyn Error>>(())
    })?;
    Ok(())
}

#[test]
fn documents_are_gzipped_for_clients_that_accept_it_and_packages_never() -> TestResult {
    let tls = Tls::new();
    let repo = repository((0..20).map(|i| entry(&format!("module{i}"))).collect());
    let package = pattern(50_000);
    write(
        &repo.path().join("public/packages/module0-1.0.0.tgz"),
        &package,
    );
    let index = std::fs::read(repo.path().join("public/index.json"))?;
    let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
    let agent = tls.agent();

    let mut document = agent
        .get(format!("https://{addr}/index.json"))
        .header("Accept-Encoding", "gzip")
        .call()?;
    let header = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&document, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert!(header(&document, "vary").is_some_and(|v| v.eq_ignore_ascii_case("accept-encoding")));
    // The ETag names the plain bytes: the gzipped answer only matches it weakly.
    assert!(header(&document, "etag").is_some_and(|e| e.starts_with("W/\"")));
    let gzipped = document.body_mut().read_to_vec()?;
    assert!(gzipped.len() < index.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gzipped.as_slice()).read_to_end(&mut plain)?;
    assert_eq!(plain, index);

    // A HEAD says what the GET would: gzip, its Vary and its weak ETag.
    let head = agent
        .head(format!("https://{addr}/index.json"))
        .header("Accept-Encoding", "gzip")
        .call()?;
    for name in ["content-encoding", "vary", "etag"] {
        assert_eq!(header(&head, name), header(&document, name), "{name}");
    }

    let mut identity = agent.get(format!("https://{addr}/index.json")).call()?;
    assert_eq!(header(&identity, "content-encoding"), None);
    assert_eq!(identity.body_mut().read_to_vec()?, index);

    let mut package_answer = agent
        .get(format!("https://{addr}/packages/module0-1.0.0.tgz"))
        .header("Accept-Encoding", "gzip")
        .call()?;
    assert_eq!(header(&package_answer, "content-encoding"), None);
    assert_eq!(package_answer.body_mut().read_to_vec()?, package);
    Ok(())
}

#[test]
fn every_file_of_the_public_part_is_served_and_nothing_beside_it() -> TestResult {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let dir = repo.path();
    write(&dir.join("public/release.json"), b"{\"serial\":1}");
    write(&dir.join("public/release.json.minisig"), b"signature");
    write(&dir.join("public/joomla/core.xml"), b"<updates/>");
    write(&dir.join("public/a2/cdr/1.0.1+1.xml"), b"<updates/>");
    write(&dir.join("private/groups.toml"), b"[groups]");
    write(&dir.join("secret.txt"), b"secret");
    let addr = tls.serve(dir, 8, Duration::from_secs(5));
    let agent = tls.agent();
    for (path, content_type) in [
        ("/release.json", "application/json"),
        ("/release.json.minisig", "text/plain"),
        ("/joomla/core.xml", "application/xml"),
        // A path's names are decoded as nginx decodes them: a client that encodes `+`,
        // or anything else, is served the same file.
        ("/a2/cdr/1.0.1%2B1.xml", "application/xml"),
        ("/%6Aoomla/core%2Exml", "application/xml"),
    ] {
        let answer = agent.get(format!("https://{addr}{path}")).call()?;
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type),
            "{path}"
        );
    }
    for path in [
        "/",
        "/packages",
        "/private/groups.toml",
        "/../private/groups.toml",
        "/%2e%2e/secret.txt",
        "/joomla%2F..%2F..%2Fsecret.txt",
        "/joomla/%2e%2e/%2e%2e/secret.txt",
        "/joomla/core.xml%00",
        "/%2ehidden",
        "/.hidden",
        // A name longer than a file's may be: no such file, not a server error.
        &format!("/{}", "a".repeat(300)),
    ] {
        let mut answer = agent.get(format!("https://{addr}{path}")).call()?;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(
            answer
                .body_mut()
                .read_to_string()?
                .contains("\"status\":\"ko\"")
        );
    }
    // A path longer than any a repository holds is said to be.
    let long = format!("/{}", "a/".repeat(2000));
    let answer = agent.get(format!("https://{addr}{long}")).call()?;
    assert_eq!(answer.status(), 414);
    Ok(())
}

/// A repository whose `core` package is `len` patterned bytes, served over HTTPS.
struct Served {
    tls: Tls,
    /// Kept while the server runs.
    _repo: tempfile::TempDir,
    /// The package's URL.
    url: String,
}

impl Served {
    fn package(len: usize) -> (Vec<u8>, Served) {
        let tls = Tls::new();
        let repo = repository(vec![entry("core")]);
        let package = pattern(len);
        write(
            &repo.path().join("public/packages/core-1.0.0.tgz"),
            &package,
        );
        let addr = tls.serve(repo.path(), 8, Duration::from_secs(5));
        let url = format!("https://{addr}/packages/core-1.0.0.tgz");
        (
            package,
            Served {
                tls,
                _repo: repo,
                url,
            },
        )
    }
}
