//! How a build builds: [`Options`], and what of them is refused before anything is read
//! or written.

use std::time::Duration;

use modhost_update::PublicKey;

use crate::{Error, Result};

use crate::SecretKey;

/// How long a release is valid unless told otherwise: clients refuse it after, so a
/// publisher rebuilds (or re-signs) at least this often.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest a release may be valid: what clients accept
/// ([`modhost_update::MAX_VALIDITY`], 366 days). Expiry is what stops a mirror, a CDN or
/// an attacker serving an old signed repository for ever.
pub const MAX_VALID_FOR: Duration = Duration::from_secs(modhost_update::MAX_VALIDITY);

/// How [`crate::build_with`] builds: what [`crate::build`] takes, and the release's
/// validity and the next key it announces.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The key every document is signed with; unsigned without one.
    pub key: Option<&'a SecretKey>,
    /// The `https://` URL the repository is served at: download URLs are absolute under
    /// it, else relative to their document.
    pub base_url: Option<&'a str>,
    /// The host application the Joomla documents target.
    pub platform: &'a str,
    /// How long after the build clients accept the release: at most [`MAX_VALID_FOR`].
    pub valid_for: Duration,
    /// The publisher's next key, announced in the signed release: clients pin it beside
    /// `key`, and drop `key` once a release signed by the next one arrives.
    pub next_key: Option<&'a PublicKey>,
    /// Whether a version the last build published may be published again with other
    /// bytes (see [`crate::build_with`]); refused otherwise.
    pub republish: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            key: None,
            base_url: None,
            platform: modhost_update::DEFAULT_PLATFORM,
            valid_for: DEFAULT_VALID_FOR,
            next_key: None,
            republish: false,
        }
    }
}

impl Options<'_> {
    /// Refuses options no build of `dir` can honour: an empty platform, a validity
    /// shorter than a second or longer than [`MAX_VALID_FOR`], a base URL clients could
    /// not fetch from.
    pub(crate) fn check(&self) -> Result<()> {
        let invalid = Error::Options;
        if self.platform.trim().is_empty() {
            return Err(invalid("the target platform name is empty".into()));
        }
        if self.valid_for.as_secs() == 0 {
            return Err(invalid(
                "the release's validity is shorter than a second".into(),
            ));
        }
        if self.valid_for > MAX_VALID_FOR {
            return Err(invalid(format!(
                "a release valid for {} is refused: at most {} days. Clients refuse a release \
                 past its validity end, which is what stops an old copy of the repository \
                 being served for ever; one valid for longer is never refreshed by it. \
                 Rebuild (or re-sign) within the validity instead",
                days(self.valid_for),
                MAX_VALID_FOR.as_secs() / 86_400
            )));
        }
        match self.base_url {
            Some(base) => check_base_url(base),
            None => Ok(()),
        }
    }
}

/// `duration` in days, as a message shows it: to the second, so that one just past the
/// limit never reads as the limit (`366 days 1s`, not `366.0 days`).
fn days(duration: Duration) -> String {
    // A part of a second counts as one: it is past the limit all the same.
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    let mut text = format!("{} days", seconds / 86_400);
    let rest = seconds % 86_400;
    for (unit, size, of) in [("h", 3_600, 24), ("m", 60, 60), ("s", 1, 60)] {
        let count = rest / size % of;
        if count > 0 {
            text += &format!(" {count}{unit}");
        }
    }
    text
}

/// Refuses a base URL the FreePBX and Joomla documents could not name packages under:
/// not `https://` (clients fetch over HTTPS alone), not a URL, or one with a query, a
/// fragment, a user name or a character URLs do not hold as is.
fn check_base_url(base: &str) -> Result<()> {
    let refused = |why: &str| {
        Err(Error::BaseUrl {
            url: base.to_owned(),
            why: why.to_owned(),
        })
    };
    let https = base
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if !https {
        return refused(
            "is not an https:// URL: clients fetch packages over HTTPS only, and refuse \
             plain HTTP",
        );
    }
    // RFC 3986's characters, but `?` and `#`: a download URL is the base URL followed
    // by `/packages/FILE`.
    if let Some(c) = base
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~:/[]@!$&'()*+,;=%".contains(*c)))
    {
        let what = match c {
            '?' => "a query".to_owned(),
            '#' => "a fragment".to_owned(),
            c => format!("{c:?}, which URLs do not hold as is"),
        };
        return refused(&format!(
            "has {what}: it is not a URL packages can be named under"
        ));
    }
    let uri = match base.parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => return refused(&format!("does not parse as a URL ({e})")),
    };
    match uri.authority() {
        None => refused("names no host"),
        Some(authority) if authority.host().is_empty() => refused("names no host"),
        Some(authority) if authority.as_str().contains('@') => refused(
            "holds a user name: it would be published in every document; clients \
             authenticate with licence keys",
        ),
        Some(authority)
            if authority
                .as_str()
                .rsplit_once(':')
                .is_some_and(|(_, port)| {
                    !port.contains(']') && !port.parse::<u16>().is_ok_and(|p| p > 0)
                }) =>
        {
            refused("does not parse as a URL (its port is not a number from 1 to 65535)")
        }
        Some(_) => Ok(()),
    }
}
