//! A server too busy for now: how long it asks to be waited for, and how that is said.

use std::time::Duration;

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
    let seconds = seconds(response.headers().get("retry-after")?.to_str().ok()?)?;
    let wait = Duration::from_secs(seconds).max(Duration::from_millis(250));
    (wait <= MAX_BUSY_WAIT).then_some(wait)
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
