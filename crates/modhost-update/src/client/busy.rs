//! A server too busy for now: how long it asks to be waited for, and how that is said.

use std::time::{Duration, SystemTime};

/// How many times a server that answers it is busy is asked again in one exchange.
pub(super) const MAX_BUSY_WAITS: u32 = 3;

/// The longest `Retry-After` waited for: longer, the failure is said at once, with it.
const MAX_BUSY_WAIT: Duration = Duration::from_secs(5);

/// How long `response` asks to be waited for before asking again, when it is a 503 or
/// 429 whose `Retry-After` is a few seconds (at least a quarter of one, so that a `0`
/// is no busy loop).
pub(super) fn busy_for(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    let after = response.headers().get("retry-after")?.to_str().ok()?;
    let wait = wait_asked(after, SystemTime::now())?.max(Duration::from_millis(250));
    (wait <= MAX_BUSY_WAIT).then_some(wait)
}

/// How long a `Retry-After` of `after` asks to wait from `now`: its seconds, or until its
/// HTTP date (RFC 9110 allows both; a date past is no wait).
fn wait_asked(after: &str, now: SystemTime) -> Option<Duration> {
    match seconds(after) {
        Some(seconds) => Some(Duration::from_secs(seconds)),
        None => {
            let until = httpdate::parse_http_date(after.trim()).ok()?;
            Some(until.duration_since(now).unwrap_or_default())
        }
    }
}

/// What a `Retry-After` header (seconds, or an HTTP date) asks, said after a status.
pub(super) fn retry_text(after: &str) -> String {
    match seconds(after) {
        Some(seconds) => format!("; the server asks to be asked again in {seconds} s"),
        None => {
            let date: String = after.chars().take(64).collect();
            format!(
                "; the server asks to be asked again after {}",
                date.escape_debug()
            )
        }
    }
}

/// A `Retry-After` given in seconds, as a number; `None` for an HTTP date.
fn seconds(after: &str) -> Option<u64> {
    after.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::wait_asked;

    #[test]
    fn a_retry_after_in_seconds_or_as_an_http_date_is_a_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(wait_asked(" 2 ", now), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(wait_asked(&later, now), Some(Duration::from_secs(3)));
        // A date past asks no wait; what is neither is no answer.
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(wait_asked(&earlier, now), Some(Duration::ZERO));
        assert_eq!(wait_asked("soon", now), None);
    }
}
