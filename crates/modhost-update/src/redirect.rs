//! Redirects, followed one hop at a time so that each target is checked before anything is
//! sent to it: only https://, never with credentials (which an HTTP client would send as a
//! Basic `Authorization` header to whichever host the redirect names), never too long.

use ureq::http::{Response, StatusCode};

use crate::location::MAX_LOCATION;
use crate::messages::clipped;

/// The most redirects followed for one request, as many as browsers and ureq allow.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Where the answer to a request for `from` redirects to, checked, or `None` when it is not
/// a redirect. A target that is refused is an error in words fit to show: its query is left
/// out, as it may carry the download key.
pub(crate) fn target<B>(
    from: &str,
    response: &Response<B>,
    keyed: bool,
) -> Result<Option<String>, String> {
    // With a download key sent, a server may have put it anywhere in where it redirects:
    // only that place's origin is named.
    let named = |url: &url::Url| match keyed {
        true => url.origin().ascii_serialization(),
        false => shown(url),
    };
    let status = response.status();
    if !is_redirect(status) {
        return Ok(None);
    }
    let location = response
        .headers()
        .get("location")
        .ok_or_else(|| format!("HTTP status {status} without a Location to follow"))?;
    // Servers send UTF-8 where only ASCII belongs, as browsers and curl take it: joined
    // below, it is percent-encoded. Other bytes are no text at all.
    let location = std::str::from_utf8(location.as_bytes())
        .map_err(|_| format!("HTTP status {status} with a Location that is not UTF-8 text"))?
        .trim();
    if location.len() > MAX_LOCATION {
        return Err(format!(
            "the server redirected to a location {} bytes long, more than the {MAX_LOCATION} \
             any server takes",
            location.len()
        ));
    }
    let base = url::Url::parse(from).map_err(|e| format!("the URL is not valid ({e})"))?;
    let mut target = base.join(location).map_err(|e| match keyed {
        true => format!("the server redirected to a location that is not a URL ({e})"),
        false => format!(
            "the server redirected to `{}`, which is not a URL ({e})",
            clipped(&location.escape_debug().to_string())
        ),
    })?;
    target.set_fragment(None);
    match target.scheme() {
        "https" => {}
        "http" => {
            return Err(format!(
                "the server redirected to `{}`: plain HTTP is refused; update sources must \
                 use https://",
                named(&target)
            ));
        }
        other => {
            return Err(format!(
                "the server redirected to a `{}:` location, which is not followed: only \
                 https:// is",
                other.escape_debug()
            ));
        }
    }
    if !target.username().is_empty() || target.password().is_some() {
        return Err(format!(
            "the server redirected to `{}` with credentials (`user:password@`), which is not \
             followed: they would be sent to that server",
            named(&target)
        ));
    }
    Ok(Some(target.into()))
}

/// Whether `status` is a redirect with a Location to follow (300 and 304 are not).
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `url` as a message shows it: scheme, host, port and path, never credentials or the query.
pub(crate) fn shown(url: &url::Url) -> String {
    format!(
        "{}://{}{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        url.path()
    )
}

/// The shortest part of a download key's query that is left out of messages: shorter
/// values (`v=1`) are no secret, and would blot out every `1`.
const SHORTEST_SECRET: usize = 4;

/// What of the download key `query` is secret, longest first: the whole query, and each
/// of its values (`dlid=KEY`, `email=…&key=KEY`) as sent and decoded.
pub(crate) fn secrets(query: &str) -> Vec<String> {
    let mut secrets: Vec<String> = vec![query.to_owned()];
    for pair in query.split('&') {
        if let Some((_, value)) = pair.split_once('=') {
            secrets.push(value.to_owned());
        }
    }
    secrets.extend(url::form_urlencoded::parse(query.as_bytes()).map(|(_, v)| v.into_owned()));
    secrets.retain(|s| s.len() >= SHORTEST_SECRET);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// `next`, where a request carrying the download key `key` in its query is redirected
/// from `from`: on another origin, without the key's parameters, which a server's
/// redirect may have copied into it (nginx's `rewrite … redirect` keeps the query). A
/// redirect to another origin that carries the key elsewhere in its address (its path,
/// percent-encoded or not) is refused: a key goes only to its source's own origin.
pub(crate) fn without_key(from: &str, next: String, key: &str) -> Result<String, String> {
    let (Ok(from), Ok(mut to)) = (url::Url::parse(from), url::Url::parse(&next)) else {
        return Ok(next);
    };
    if key.is_empty() || from.origin() == to.origin() {
        return Ok(next);
    }
    if to.query().is_some() {
        let secret: Vec<(String, String)> = url::form_urlencoded::parse(key.as_bytes())
            .into_owned()
            .collect();
        let kept: Vec<(String, String)> = to
            .query_pairs()
            .into_owned()
            .filter(|pair| !secret.contains(pair))
            .collect();
        if kept.len() != to.query_pairs().count() {
            tracing::warn!(
                to = %to.origin().ascii_serialization(),
                "a redirect to another origin carried the source's download key; it was left out"
            );
            if kept.is_empty() {
                to.set_query(None);
            } else {
                to.query_pairs_mut().clear().extend_pairs(kept);
            }
        }
    }
    // What is sent to the other origin beside its name: the path, what is left of the
    // query, and any user name (refused already, but looked at all the same).
    let sent = format!(
        "{}?{}@{}",
        to.path(),
        to.query().unwrap_or_default(),
        to.username()
    );
    let decoded = percent_encoding::percent_decode_str(&sent).decode_utf8_lossy();
    let plus_decoded = decoded.replace('+', " ");
    let carried = secrets(key).iter().any(|secret| {
        [sent.as_str(), &decoded, &plus_decoded]
            .iter()
            .any(|text| text.contains(secret.as_str()))
    });
    if carried {
        return Err(format!(
            "the server redirected the download to {} with the download key elsewhere in the \
             address, which is not followed: a key goes only to its source's own origin",
            to.origin().ascii_serialization()
        ));
    }
    Ok(to.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_looked_for_in_what_is_sent_not_in_the_other_origins_name() {
        let from = "https://repo.example.org/pkg.tgz?key=s3cret";
        let key = "key=s3cret";
        // A host that happens to spell a value of the key is no carrier of it.
        let next = "https://s3cret.cdn.example.net/pkg.tgz?sig=abc".to_owned();
        assert_eq!(without_key(from, next.clone(), key), Ok(next));
        // The key's own parameter is dropped; elsewhere, in any encoding, it is refused.
        assert_eq!(
            without_key(
                from,
                "https://cdn.example.net/p.tgz?key=s3cret&v=2".into(),
                key
            ),
            Ok("https://cdn.example.net/p.tgz?v=2".to_owned())
        );
        for carried in [
            "https://cdn.example.net/s3cret/p.tgz",
            "https://cdn.example.net/p.tgz?k=s3cret",
            "https://cdn.example.net/p.tgz%3Fkey%3Ds%33cret",
        ] {
            let refused = without_key(from, carried.into(), key);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("https://cdn.example.net with the")),
                "{carried}: {refused:?}"
            );
        }
    }
}
