//! What a failed request or a refusing server says, made fit to show: which setting to
//! change when one would help, and a server's own text without its escape sequences.

use std::time::Duration;

use crate::client::MAX_TRANSFER_TIME;

/// What a certificate from an unknown issuer's message ends with: where a private CA (or a
/// self-signed certificate) is trusted. An application with options of its own for it (a
/// command line's flag) can look for this to say so.
pub const PRIVATE_CA: &str = "if the server uses a private CA, trust it with ca_cert in modhost.toml \
     (the CA's certificate, or a self-signed certificate itself)";

/// A file's I/O error in words, for a message that names the file already: the common
/// ones said plainly, the others without the system's `(os error N)`.
pub fn plain_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => "no such file".to_owned(),
        ErrorKind::PermissionDenied => "permission denied: this user cannot read it".to_owned(),
        ErrorKind::IsADirectory => "it is a directory, not a file".to_owned(),
        _ => {
            let text = error.to_string();
            match text.find(" (os error ") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        }
    }
}

/// A failed request's message, saying which setting to change when one would help:
/// ureq's own words (`timeout: global`, `UnknownIssuer`) do not. `document` tells a
/// document's fetch (whose whole exchange gets `timeout`) from a download's.
pub(crate) fn explain(
    error: &(dyn std::error::Error + 'static),
    document: bool,
    timeout: Duration,
) -> String {
    match problem(error) {
        // Only a download's whole exchange gets the long limit; see `Client::new`.
        Some(Problem::Timeout(ureq::Timeout::Global)) if !document => format!(
            "timed out: the download did not finish within {} s",
            MAX_TRANSFER_TIME.as_secs()
        ),
        Some(Problem::Timeout(_)) => format!(
            "timed out: no complete answer within {} s ([updates] timeout_secs)",
            timeout.as_secs_f64()
        ),
        Some(Problem::Certificate(problem)) => certificate(&problem),
        None => plain(error).unwrap_or_else(|| error.to_string()),
    }
}

/// `message` about a request to `url` that failed with `error`, naming the proxy it
/// went through, if one: a connection refused is the proxy's, and any other failure
/// may be.
pub(crate) fn through_proxy(
    proxy: Option<&ureq::Proxy>,
    url: &str,
    error: &ureq::Error,
    message: String,
) -> String {
    let Some(proxy) = proxy.filter(|proxy| {
        url.parse::<ureq::http::Uri>()
            .is_ok_and(|uri| !proxy.is_no_proxy(&uri))
    }) else {
        return message;
    };
    let message = match error {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "the proxy refused the connection: nothing answers at its host and port".to_owned()
        }
        _ => message,
    };
    format!(
        "{message} (through the proxy at `{}:{}`, which ALL_PROXY, HTTPS_PROXY or \
         HTTP_PROXY names; NO_PROXY lists hosts reached directly)",
        proxy.host(),
        proxy.port()
    )
}

/// ureq's commonest failures in words, where its own (`io: Connection refused (os error
/// 111)`, `protocol: …`) name its internals.
fn plain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let error = error.downcast_ref::<ureq::Error>()?;
    Some(match error {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "the server refused the connection: nothing answers at that host and port".into()
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            "the server closed the connection before it answered".into()
        }
        // Closed cleanly, or without TLS's close_notify (rustls then links its manual).
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection without a complete answer".into()
        }
        ureq::Error::HostNotFound => {
            "the host name is not found (DNS has no address for it)".into()
        }
        // What the system resolver says, as std words it: no kind of its own to match.
        ureq::Error::Io(io) => {
            let text = io.to_string();
            let why = text.strip_prefix(LOOKUP_FAILED)?;
            format!("the host name cannot be resolved (DNS:{why})")
        }
        ureq::Error::Protocol(e) => format!("the server's answer is not valid HTTP ({e})"),
        ureq::Error::Http(e) => format!("the URL cannot be requested ({e})"),
        ureq::Error::BadUri(e) => format!("the URL is not valid ({e})"),
        // The host is neither a DNS name nor an IP address as certificates name them (a
        // number such as `2130706433`, a name with `_`): no certificate can be for it.
        ureq::Error::Tls(text) if text.contains("invalid dns name") => {
            "the host is not a name a certificate can be for: write a DNS name or a dotted \
             IP address"
                .into()
        }
        _ => return None,
    })
}

/// How std's message for a failed name lookup begins, before the resolver's own words.
const LOOKUP_FAILED: &str = "failed to lookup address information:";

/// A request failure the administrator can act on.
#[derive(Debug, Clone)]
enum Problem {
    /// A configured wait ran out.
    Timeout(ureq::Timeout),
    /// The server's certificate was refused: chained to no trusted root (typically a
    /// private CA or a self-signed certificate), expired, for another host name, …
    Certificate(rustls::CertificateError),
}

/// The [`Problem`] behind `error`, looking through the `io::Error`s that ureq and rustls
/// wrap each other's errors in.
fn problem(error: &(dyn std::error::Error + 'static)) -> Option<Problem> {
    if let Some(error) = error.downcast_ref::<ureq::Error>() {
        return match error {
            ureq::Error::Timeout(timeout) => Some(Problem::Timeout(*timeout)),
            ureq::Error::Io(error) => problem(error),
            ureq::Error::Rustls(error) => problem(error),
            _ => None,
        };
    }
    if let Some(error) = error.downcast_ref::<std::io::Error>() {
        return error.get_ref().and_then(|inner| problem(inner));
    }
    match error.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::InvalidCertificate(problem)) => {
            Some(Problem::Certificate(problem.clone()))
        }
        _ => None,
    }
}

/// What is wrong with the server's certificate, in words, saying what would fix it:
/// rustls' own (`invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`) say
/// neither. Only a certificate from an unknown issuer ends with [`PRIVATE_CA`]: trusting
/// a CA fixes nothing else. A server checking its own certificate says it the same way.
pub fn certificate(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    const CERTIFICATE: &str = "the server's certificate";
    match problem {
        E::UnknownIssuer => format!(
            "{CERTIFICATE} is issued by no CA modhost trusts: it is self-signed, or from \
             a private CA; {PRIVATE_CA}"
        ),
        // webpki's `CaUsedAsEndEntity`, which rustls passes on as an error of its own.
        E::Other(other) if other.to_string() == "CaUsedAsEndEntity" => format!(
            "{CERTIFICATE} is a CA certificate (as `openssl req -x509` makes by default), \
             which is never valid as a server's own, even when trusted: give the server a \
             certificate issued by that CA for its host name (or a self-signed one that is \
             not a CA), and trust the CA with ca_cert in modhost.toml"
        ),
        E::NotValidForName => {
            format!("{CERTIFICATE} is not for this host name: the server must present one that is")
        }
        E::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = match presented.as_slice() {
                [] => "no host name".to_owned(),
                names => names
                    .iter()
                    .map(|name| presented_name(name))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            format!(
                "{CERTIFICATE} is not for this host name: it is for {}, not {}; the \
                 server must present one for the host name sources use",
                printable(&names),
                printable(&expected.to_str())
            )
        }
        E::Expired => format!(
            "{CERTIFICATE} has expired (or is not valid yet): the server must renew it, \
             unless this machine's clock is wrong"
        ),
        E::ExpiredContext { time, not_after } => format!(
            "{CERTIFICATE} expired {} ago: the server must renew it, unless this \
             machine's clock is wrong",
            ago(time.as_secs().saturating_sub(not_after.as_secs()))
        ),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            format!("{CERTIFICATE} is not valid yet: check this machine's clock (and the server's)")
        }
        E::Revoked => format!("{CERTIFICATE} has been revoked by its CA"),
        E::BadSignature => format!(
            "{CERTIFICATE}'s signature does not verify: it was not issued by the CA it names"
        ),
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => format!(
            "{CERTIFICATE} is not for TLS servers (its extended key usage does not allow it)"
        ),
        E::BadEncoding => format!("{CERTIFICATE} is malformed"),
        other => format!("{CERTIFICATE} was refused: {other}"),
    }
}

/// A name a certificate presents, as rustls gives it (`DnsName("repo.example.org")`,
/// `IpAddress(192.0.2.1)`): the name alone.
fn presented_name(name: &str) -> &str {
    name.split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(name, |inner| inner.trim_matches('"'))
}

/// A duration in the past, in its largest whole unit.
fn ago(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} minutes", seconds / 60),
        7200..172_800 => format!("{} hours", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// The largest answer taken for a server's JSON refusal: anything bigger is a package or
/// a document, and is not parsed twice.
const MAX_REFUSAL: usize = 64 * 1024;

/// The message of a jBackend-style refusal, `{"status":"ko","error_code":…,
/// "error_description":…}`, if `body` is one.
pub(crate) fn refusal(body: &[u8]) -> Option<String> {
    if body.len() > MAX_REFUSAL || body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    if value["status"] != "ko" {
        return None;
    }
    let code = match &value["error_code"] {
        serde_json::Value::String(code) => Some(code.clone()),
        serde_json::Value::Number(code) => Some(code.to_string()),
        _ => None,
    };
    let text = value["error_description"].as_str().map(printable);
    Some(match (code.map(|c| printable(&c)), text) {
        (Some(code), Some(text)) => format!("{text} (error {code})"),
        (_, Some(text)) => text,
        // JSON's escaping already keeps control characters out; the length is cut as a
        // description's is.
        _ => printable(&value.to_string()),
    })
}

/// The longest part of a server's message shown: it is the server's text, not ours.
const MAX_MESSAGE: usize = 500;

/// A server's `text` made safe to print on a terminal: escape sequences (which could
/// recolour, retitle or rewrite what the administrator sees) and other control and
/// bidirectional-formatting characters are removed, and the text is cut at
/// [`MAX_MESSAGE`] characters.
fn printable(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte (CSI); ESC ] … BEL or ESC \ (OSC); ESC and one more.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            // The one-character CSI of C1, as ESC [.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    let out = out.trim();
    match out.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &out[..end]),
        None => out.to_owned(),
    }
}

/// Unicode's bidirectional formatting characters, which can make text read otherwise
/// than it is.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The most of a document's text a message quotes.
const QUOTED: usize = 64;

/// `text` as a message quotes it from a document: whole when short, else its start and
/// `…`, so that a hostile document's kilobytes never fill the terminal.
pub(crate) fn clipped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= QUOTED {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(format!("{}…", &text[..text.floor_char_boundary(QUOTED)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_does_not_resolve_is_said_so_without_ureqs_words() {
        let failed = |detail: &str| {
            let io = std::io::Error::other(format!("{LOOKUP_FAILED} {detail}"));
            explain(&ureq::Error::Io(io), true, Duration::from_secs(20))
        };
        assert_eq!(
            failed("Name or service not known"),
            "the host name cannot be resolved (DNS: Name or service not known)"
        );
        assert_eq!(
            failed("Temporary failure in name resolution"),
            "the host name cannot be resolved (DNS: Temporary failure in name resolution)"
        );
        let other = std::io::Error::other("something else");
        assert_eq!(
            explain(&ureq::Error::Io(other), true, Duration::from_secs(20)),
            "io: something else"
        );
    }

    #[test]
    fn a_servers_message_is_shown_without_its_escape_sequences() {
        let body = "{\"status\":\"ko\",\"error_code\":\"E\\u001b[2J1\",\
                    \"error_description\":\"\\u001b[31mKey\\u0000 expired\\u001b]0;pwned\\u0007\
                    \\u202e!\\r\\ncontact \\u009b1mus\\u001bc\"}";
        assert_eq!(
            refusal(body.as_bytes()).as_deref(),
            Some("Key expired! contact us (error E1)")
        );
        let long = format!(
            r#"{{"status":"ko","error_description":"{}"}}"#,
            "x".repeat(2 * MAX_MESSAGE)
        );
        let shown = refusal(long.as_bytes()).unwrap_or_default();
        assert_eq!(shown.chars().count(), MAX_MESSAGE + 1, "{shown}");
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_refusal_whose_description_is_not_text_is_cut_too() {
        let body = format!(
            r#"{{"status":"ko","error_code":403,"error_description":{{"m":"{}"}}}}"#,
            "x".repeat(60_000)
        );
        let shown = refusal(body.as_bytes()).unwrap_or_default();
        assert_eq!(shown.chars().count(), MAX_MESSAGE + 1, "{shown}");
        assert!(shown.starts_with(r#"{"error_code":403,"error_description":{"m":"xxx"#));
    }
}
