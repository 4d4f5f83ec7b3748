//! HTTP/2 control frames are no request: a client that only sends PINGs (whose
//! acknowledgements the server writes) is closed at the timeout like one that sends
//! nothing, before its first request or after its last answer. A refused HTTP/2
//! connection is told to go away once it has its `503`, and cannot hold its refusal.

use super::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// One HTTP/2 frame: its 9-byte header and `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A raw HTTP/2 connection: frames written by hand, those read split as they come.
struct H2 {
    stream: StreamOwned<ClientConnection, TcpStream>,
    received: Vec<u8>,
    /// The payload of the frame read last.
    payload: Vec<u8>,
}

/// What reading the connection found.
enum Got {
    /// A frame: kind, flags, stream.
    Frame(u8, u8, u32),
    /// Nothing within the read timeout.
    Nothing,
    /// The server closed the connection.
    Closed,
}

impl H2 {
    /// A connection to `addr` that agreed on `h2` and sent the preface and its settings.
    fn connect(tls: &Tls, addr: SocketAddr) -> H2 {
        let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        let connection = ClientConnection::new(tls.client_config(&[b"h2"]), name)
            .unwrap_or_else(|e| panic!("{e}"));
        let socket = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .is_ok()
        );
        let mut h2 = H2 {
            stream: StreamOwned::new(connection, socket),
            received: Vec::new(),
            payload: Vec::new(),
        };
        let mut opening = PREFACE.to_vec();
        opening.extend(frame(SETTINGS, 0, 0, &[]));
        assert!(h2.send(&opening));
        assert_eq!(
            h2.stream.conn.alpn_protocol(),
            Some(&b"h2"[..]),
            "HTTP/2 is not agreed"
        );
        h2
    }

    /// Sends `bytes`: false once the connection is closed.
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .is_ok()
    }

    /// The next frame, if one comes within the read timeout.
    fn read(&mut self) -> Got {
        loop {
            if self.received.len() >= 9 {
                let header = &self.received[..9];
                let len = usize::from(header[0]) << 16
                    | usize::from(header[1]) << 8
                    | usize::from(header[2]);
                if self.received.len() >= 9 + len {
                    let (kind, flags) = (header[3], header[4]);
                    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
                    self.payload = self.received[9..9 + len].to_vec();
                    self.received.drain(..9 + len);
                    return Got::Frame(kind, flags, stream & 0x7fff_ffff);
                }
            }
            let mut buf = [0; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Got::Nothing;
                }
                Err(_) => return Got::Closed,
            }
        }
    }

    /// PINGs the server every 200 ms until it closes the connection: how long that took,
    /// and how many PINGs it acknowledged meanwhile. Gives up after `limit`.
    fn ping_until_closed(&mut self, limit: Duration) -> (Duration, usize) {
        let started = Instant::now();
        let mut acks = 0;
        let mut last_ping = None::<Instant>;
        while started.elapsed() < limit {
            if last_ping.is_none_or(|at| at.elapsed() >= Duration::from_millis(200)) {
                if !self.send(&frame(PING, 0, 0, b"12345678")) {
                    return (started.elapsed(), acks);
                }
                last_ping = Some(Instant::now());
            }
            match self.read() {
                Got::Frame(PING, ACK, 0) => acks += 1,
                // The server's settings and their acknowledgement are answered too.
                Got::Frame(SETTINGS, 0, 0) => {
                    if !self.send(&frame(SETTINGS, ACK, 0, &[])) {
                        return (started.elapsed(), acks);
                    }
                }
                Got::Frame(..) | Got::Nothing => {}
                Got::Closed => return (started.elapsed(), acks),
            }
        }
        (started.elapsed(), acks)
    }
}

/// The header block of `GET path` over https, HPACK-encoded without indexing.
fn get(path: &str) -> Vec<u8> {
    // :method GET (static 2), :scheme https (7), then :path (name 4) as a literal.
    let mut block = vec![0x82, 0x87, 0x04];
    block.push(u8::try_from(path.len()).unwrap_or(0x7f));
    block.extend_from_slice(path.as_bytes());
    block
}

#[test]
fn an_http2_connection_that_only_pings_is_closed_at_the_timeout() {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let timeout = Duration::from_secs(2);
    let addr = tls.serve(repo.path(), 4, timeout);
    let mut h2 = H2::connect(&tls, addr);
    let (closed_after, acks) = h2.ping_until_closed(timeout * 5);
    assert!(acks > 2, "the PINGs were not answered: {acks}");
    assert!(
        closed_after < timeout + Duration::from_secs(4),
        "a connection sending only PINGs ({acks} acknowledged) was open {closed_after:?}"
    );
}

#[test]
fn an_http2_connection_that_only_pings_after_its_answer_is_closed_at_the_timeout() {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    let timeout = Duration::from_secs(2);
    let addr = tls.serve(repo.path(), 4, timeout);
    let mut h2 = H2::connect(&tls, addr);
    assert!(h2.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get("/index.json")
    )));
    let asked = Instant::now();
    let answered = loop {
        assert!(
            asked.elapsed() < timeout,
            "the request was not answered in time"
        );
        match h2.read() {
            Got::Frame(DATA | HEADERS, flags, 1) if flags & END_STREAM != 0 => break true,
            Got::Frame(SETTINGS, 0, 0) => assert!(h2.send(&frame(SETTINGS, ACK, 0, &[]))),
            Got::Closed => break false,
            Got::Frame(..) | Got::Nothing => {}
        }
    };
    assert!(
        answered,
        "the server closed the connection without answering"
    );
    let (closed_after, acks) = h2.ping_until_closed(timeout * 5);
    assert!(acks > 2, "the PINGs were not answered: {acks}");
    assert!(
        closed_after < timeout + Duration::from_secs(4),
        "a connection sending only PINGs after its answer ({acks} acknowledged) was open \
         {closed_after:?}"
    );
}

#[test]
fn a_refused_http2_connection_goes_away_after_its_503_and_the_server_accepts_again() {
    let tls = Tls::new();
    let repo = repository(vec![entry("core")]);
    // Long enough that nothing below is the timeout's doing.
    let timeout = Duration::from_secs(30);
    let addr = tls.serve(repo.path(), 1, timeout);
    let stalled = stalled_download(&tls, addr, repo.path());

    // Refused, it may not keep asking on the same connection: a client that did would
    // hold one of the few refusals for as long as it kept asking.
    let mut h2 = H2::connect(&tls, addr);
    assert!(h2.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get("/index.json")
    )));
    let asked = Instant::now();
    let (mut answered, mut going) = (false, false);
    while asked.elapsed() < Duration::from_secs(10) {
        match h2.read() {
            Got::Frame(HEADERS | DATA, flags, 1) if flags & END_STREAM != 0 => answered = true,
            Got::Frame(GOAWAY, _, 0) => going = true,
            Got::Frame(SETTINGS, 0, 0) => assert!(h2.send(&frame(SETTINGS, ACK, 0, &[]))),
            // As every HTTP/2 client does: a server going away pings for the last word.
            Got::Frame(PING, 0, 0) => {
                let pong = frame(PING, ACK, 0, &h2.payload);
                assert!(h2.send(&pong));
            }
            Got::Closed => break,
            Got::Frame(..) | Got::Nothing => {}
        }
    }
    assert!(
        answered && going,
        "answered: {answered}, told to go away: {going}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the refused connection stayed open"
    );

    drop(stalled);
    served_again_within(
        &tls,
        addr,
        Duration::from_secs(10),
        "the slot freed was never taken again",
    );
}
