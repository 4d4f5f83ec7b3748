//! A source's download key: added to the URLs of its own server, and kept out of every
//! message.

use crate::redirect;

/// `message` with the download key `query` left out: the whole query, and each of its
/// values (`dlid=KEY`, `email=…&key=KEY`) as sent and decoded, wherever one is quoted.
/// One pass over the message, the longest secret tried first at each place, so that
/// none is cut into by a shorter one.
pub(super) fn without_key(message: String, query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return message;
    };
    let secrets = redirect::secrets(query);
    let mut shown = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(c) = rest.chars().next() {
        match secrets.iter().find(|s| rest.starts_with(s.as_str())) {
            Some(secret) => {
                shown.push_str("<download key>");
                rest = &rest[secret.len()..];
            }
            None => {
                shown.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    shown
}

/// `url` with `query` (a download key) added to its query. A fragment is never sent to
/// the server, and whatever follows `#` would hide the key from it: the fragment is
/// left out. A parameter of the URL that the key names too (`key=`, `email=`) is left
/// out as well: servers read the first of a name, which would be the document's, not
/// the key the source was given.
pub(super) fn with_query(url: &str, query: Option<&str>) -> String {
    let url = url.split_once('#').map_or(url, |(sent, _)| sent);
    let Some(query) = query else {
        return url.to_owned();
    };
    let name = |pair: &str| {
        pair.split_once('=')
            .map_or(pair, |(name, _)| name)
            .to_owned()
    };
    let keyed: Vec<String> = query.split('&').map(name).collect();
    let (path, own) = url.split_once('?').unwrap_or((url, ""));
    let kept: Vec<&str> = own
        .split('&')
        .filter(|pair| !pair.is_empty() && !keyed.contains(&name(pair)))
        .collect();
    match kept.is_empty() {
        true => format!("{path}?{query}"),
        false => format!("{path}?{}&{query}", kept.join("&")),
    }
}
