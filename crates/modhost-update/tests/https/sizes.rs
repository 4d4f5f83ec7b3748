//! Packages bigger, longer or slower than published: refused before, or while, they are
//! read, within the size cap and the timeout.

use super::*;

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

/// An a2 channel publishing pb 2.0.0 as 1 MiB, whose package comes `chunk` bytes every
/// `pause`, never ending.
fn trickled(tls: &Tls, chunk: usize, pause: Duration) -> Source {
    let size = 1 << 20;
    let (source, _) = a2_channel(tls, size, move |out| {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
        let mut sent = out.write_all(head.as_bytes());
        let bytes = vec![b'x'; chunk];
        while sent.is_ok() {
            sent = out.write_all(&bytes).and_then(|()| out.flush());
            std::thread::sleep(pause);
        }
    });
    source
}

#[test]
fn a_package_trickled_slower_than_the_floor_is_given_up_on_within_the_timeout() {
    let tls = Tls::new();
    // Never silent for long, never fast: a byte every 20 ms, 50 bytes a second.
    let source = trickled(&tls, 1, Duration::from_millis(20));
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
fn a_download_stops_at_once_when_its_client_is_told_to_stop() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tls = Tls::new();
    // 4 KiB a second: above the floor, and over four minutes for the whole package.
    let source = trickled(&tls, 400, Duration::from_millis(100));
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::clone(&stop);
    let client = Client::new(Some(&tls.file("ca.pem")), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"))
        .stopped_by(move || asked.load(Ordering::SeqCst));
    let releases = client
        .releases(&source, None, &Target::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let url = source.location.to_string();
    // Told to stop half a second in, as an administrator's Ctrl-C would.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
    });
    let started = std::time::Instant::now();
    let downloaded = download(&client, &releases[0], tls.dir.path());
    let took = started.elapsed();
    stopper
        .join()
        .unwrap_or_else(|_| panic!("the stopping thread panicked"));
    match downloaded {
        Err(Error::Stopped { url: stopped }) => assert!(stopped.starts_with(&url), "{stopped}"),
        other => panic!("expected the download stopped, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(!tls.file("p.tgz").exists());
}
