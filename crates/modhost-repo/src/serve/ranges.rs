//! Which `Range` requests are answered in part (RFC 9110 §14.2, §13.1.5). tower-http's
//! `ServeFile` answers `416` to a Range it cannot parse or to several ranges, and ignores
//! `If-Range`, which would hand a client resuming a download the tail of a file rebuilt
//! since: the start of one build spliced onto the end of the next. So the server keeps
//! a Range only when it is one valid byte range, and answers the whole file when
//! `If-Range` names a representation other than the one served.

use http::HeaderValue;
use http::header::{ETAG, HeaderMap};

/// The Range header to hand on for the request's `value`: one byte range, written the
/// way tower-http parses it, or `None` when the header is to be ignored — another unit,
/// several ranges, or not valid (a last byte before the first included), for which RFC
/// 9110 lets the server send the whole representation (`200`) rather than refuse.
pub(super) fn single_range(value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let (unit, set) = text.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    // A list may hold empty elements (`bytes=0-9,`): only the non-empty ones count.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |digits: &str| {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
    };
    let range = match (first.is_empty(), last.is_empty()) {
        // `-N`: the last N bytes.
        (true, false) => format!("bytes=-{}", number(last)?),
        // `N-`: from byte N to the end.
        (false, true) => format!("bytes={}-", number(first)?),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return None;
            }
            format!("bytes={first}-{last}")
        }
        (true, true) => return None,
    };
    HeaderValue::from_str(&range).ok()
}

/// The range to ask for instead of `range` (as [`single_range`] wrote it) when the file
/// service found it unsatisfiable: a suffix longer than the file (`bytes=-N`, N > 0) means
/// the whole file (RFC 9110 §14.1.2), which tower-http refuses with `416`.
pub(super) fn whole_for_long_suffix(range: &HeaderValue) -> Option<HeaderValue> {
    let suffix = range.to_str().ok()?.strip_prefix("bytes=-")?;
    (suffix.parse::<u64>().ok()? > 0).then(|| HeaderValue::from_static("bytes=0-"))
}

/// Whether `if_range` (an `If-Range` value) names the representation whose `headers` were
/// served: an entity tag by strong comparison (a weak tag never matches). A date never
/// does: a build keeps each package's own modification time, so another build's file of
/// other bytes may show the same `Last-Modified` (RFC 9110 §13.1.5 lets a server send
/// the whole file then). Anything else, or a representation without an ETag, does not
/// match.
pub(super) fn validator_matches(if_range: &HeaderValue, headers: &HeaderMap) -> bool {
    let given = if_range.as_bytes().trim_ascii();
    // RFC 9110 §13.1.5: an entity tag starts with a quote or `W/`, a date never does.
    if !given.starts_with(b"\"") {
        return false;
    }
    headers.get(ETAG).is_some_and(|current| {
        let current = current.as_bytes().trim_ascii();
        !current.starts_with(b"W/") && current == given
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::LAST_MODIFIED;

    fn range(text: &str) -> Option<String> {
        single_range(&HeaderValue::from_str(text).unwrap_or_else(|e| panic!("{e}")))
            .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
    }

    #[test]
    fn one_byte_range_is_kept_and_anything_else_ignored() {
        for (given, kept) in [
            ("bytes=0-9", Some("bytes=0-9")),
            ("bytes=60-", Some("bytes=60-")),
            ("bytes=-500", Some("bytes=-500")),
            ("Bytes= 5-5 ", Some("bytes=5-5")),
            ("bytes=0-9,", Some("bytes=0-9")),
            ("bytes=100000-", Some("bytes=100000-")),
            ("bytes=0-0,5-9", None),
            ("bytes=abc", None),
            ("bytes=9-0", None),
            ("bytes=-", None),
            ("bytes=", None),
            ("bytes=+1-2", None),
            ("bytes=1-2-3", None),
            ("items=0-9", None),
            ("0-9", None),
            ("bytes=99999999999999999999999-", None),
        ] {
            assert_eq!(range(given).as_deref(), kept, "{given}");
        }
    }

    #[test]
    fn if_range_matches_the_strong_etag_and_never_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(ETAG, HeaderValue::from_static("\"abc-1\""));
        let date = "Thu, 01 Jan 2026 00:00:00 GMT";
        headers.insert(LAST_MODIFIED, HeaderValue::from_static(date));
        for (given, matches) in [
            ("\"abc-1\"", true),
            (" \"abc-1\" ", true),
            ("\"abc-2\"", false),
            ("W/\"abc-1\"", false),
            // Another build's file of other bytes may show the same date.
            (date, false),
            ("Thu, 01 Jan 1970 00:00:00 GMT", false),
            ("Thursday, 01-Jan-26 00:00:00 GMT", false),
            ("", false),
        ] {
            let value = HeaderValue::from_str(given).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(validator_matches(&value, &headers), matches, "{given:?}");
        }
        headers.insert(ETAG, HeaderValue::from_static("W/\"abc-1\""));
        let weak = HeaderValue::from_static("\"abc-1\"");
        assert!(!validator_matches(&weak, &headers));
        assert!(!validator_matches(&weak, &HeaderMap::new()));
    }
}
