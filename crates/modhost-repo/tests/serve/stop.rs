//! Stopping (`SIGTERM` from a service manager, as `run_until` sees it): no new
//! connections, idle ones and those still shaking hands closed, the answer being sent
//! finished and logged, and the server's thread returns.

use super::*;

/// How big the download under way is: many times what the socket buffers hold, so that
/// most of it is still to be sent when the server is told to stop.
const BIG: usize = 32 * 1024 * 1024;

/// Reads an HTTP/1.1 answer's head from `stream`: the head, and the body bytes read
/// past it.
fn read_head(stream: &mut impl Read) -> (String, Vec<u8>) {
    let mut read = Vec::new();
    let mut buffer = [0; 16 * 1024];
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = read.split_off(end + 4);
            return (String::from_utf8_lossy(&read).into_owned(), body);
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&read).into_owned(), Vec::new()),
            Ok(n) => read.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Waits for `server`'s thread to return, at most `limit`, then checks it stopped cleanly.
fn returns_within(
    server: std::thread::JoinHandle<modhost_repo::Result<()>>,
    limit: Duration,
    why: &str,
) {
    let waiting = Instant::now();
    while !server.is_finished() {
        assert!(waiting.elapsed() < limit, "{why}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(server.join(), Ok(Ok(()))));
}

#[test]
fn stopping_finishes_the_answer_under_way_closes_idle_connections_and_takes_no_new_ones() {
    let tls = Tls::new();
    let repo = repository(vec![entry("stopping")]);
    let big = pattern(BIG);
    write(
        &repo.path().join("public/packages/stopping-1.0.0.tgz"),
        &big,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = tls.serve_until(repo.path(), 8, Duration::from_secs(10), async move {
        let _ = stopped.await;
    });

    // A connection that has not even begun TLS (a port scanner, say).
    let silent = TcpStream::connect(addr);
    assert!(silent.is_ok());

    // A keep-alive connection that has had its answer and waits for its next request.
    let mut idle = tls.connect(addr);
    assert!(
        idle.write_all(b"GET /index.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .is_ok()
    );
    let (head, _) = read_head(&mut idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A download of which only the first bytes are read before the server is stopped.
    let mut download = tls.connect(addr);
    assert!(
        download
            .write_all(b"GET /packages/stopping-1.0.0.tgz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .is_ok()
    );
    let (head, mut body) = read_head(&mut download);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.len() < BIG / 2,
        "{} bytes came before the stop",
        body.len()
    );
    assert!(stop.send(()).is_ok());

    // No new connection is taken: the listener closes.
    let waiting = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(
            waiting.elapsed() < Duration::from_secs(5),
            "the server still takes connections after it was told to stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The idle connection is closed without waiting for its timeout.
    let mut rest = Vec::new();
    let closed = Instant::now();
    assert!(idle.read_to_end(&mut rest).is_ok() || rest.is_empty());
    assert!(closed.elapsed() < Duration::from_secs(5));

    // The download goes on to its last byte, and then the server's thread returns.
    let mut buffer = vec![0; 64 * 1024];
    while body.len() < BIG {
        match download.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    assert_eq!(body.len(), BIG, "the answer under way was cut short");
    assert!(body == big);
    // The silent connection asked nothing: it does not hold the stop to the timeout (10 s).
    returns_within(
        server,
        Duration::from_secs(5),
        "the server did not return once its answers were sent",
    );
    let line = wait_for_log_line(&["path=/packages/stopping-1.0.0.tgz", "status=200"]);
    assert!(
        line.as_ref()
            .is_some_and(|l| l.contains(&format!("bytes={BIG}"))),
        "{line:?}"
    );
}

#[test]
fn a_stop_is_not_kept_waiting_by_connections_beyond_the_bound() {
    let tls = Tls::new();
    let repo = repository(vec![entry("stopping")]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // One slot, and a timeout far longer than the stop may take.
    let (addr, server) = tls.serve_until(repo.path(), 1, Duration::from_secs(30), async move {
        let _ = stopped.await;
    });
    // Connections that never begin TLS: one holds the slot, 64 the refusals under way,
    // and the next waits for a refusal to end.
    let silent: Vec<TcpStream> = (0..70)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert_eq!(silent.len(), 70);
    std::thread::sleep(Duration::from_millis(300));
    assert!(stop.send(()).is_ok());
    returns_within(
        server,
        Duration::from_secs(10),
        "the stop waited for refusals that end only at their timeout",
    );
}

#[test]
fn an_address_it_cannot_listen_on_is_said_with_what_to_do() {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let bind = |listen: &str| {
        Server::bind(
            repo.path(),
            listen,
            &tls.file("server.pem"),
            &tls.file("server.key"),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = taken.local_addr().map(|a| a.port()).unwrap_or_default();
    let in_use = bind(&format!("127.0.0.1:{port}"));
    assert!(
        in_use.as_ref().is_err_and(
            |e| e.contains("another program listens on that port already")
                && !e.contains("os error")
        ),
        "{in_use:?}"
    );
    let nonsense = bind("nope");
    assert!(
        nonsense
            .as_ref()
            .is_err_and(|e| e.contains("`nope`") && e.contains("give ADDRESS:PORT")),
        "{nonsense:?}"
    );
}
