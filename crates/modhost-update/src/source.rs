//! What an update source is: its format ([`Kind`]), where it lives, the publisher keys it
//! is pinned to, what was last accepted from it, and the download key appended to its
//! package URLs.

use serde::Serialize;

use crate::{Error, Location, PublicKey, Result, Seen};

/// Declares [`Kind`] from one table, so that a kind cannot be left out of
/// [`Kind::ALL`], its name, its summary or its shape: each row is a variant, the name
/// stored and shown, a few words for help texts, and whether one document holds one
/// module's releases only.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $summary:literal, one module: $one:literal;)+) => {
        /// The format a source speaks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum Kind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl Kind {
            /// Every kind, in the order they are listed and published.
            pub const ALL: [Kind; [$($name),+].len()] = [$(Kind::$variant),+];

            /// The name stored and shown.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)+
                }
            }

            /// A few words on what a source of this kind is, for help texts.
            pub const fn summary(self) -> &'static str {
                match self {
                    $(Kind::$variant => $summary,)+
                }
            }

            /// Whether one document of this kind holds one module's releases only (a2,
            /// FreePBX), rather than a list of many modules (an index, a Joomla feed).
            pub const fn one_module(self) -> bool {
                match self {
                    $(Kind::$variant => $one,)+
                }
            }
        }
    };
}

kinds! {
    /// A modhost repository: `index.json` (+ `.minisig`) and `packages/`, as `repo build`
    /// writes it.
    Index = "index", "a modhost repository", one module: false;
    /// a2-style: `modsource.json` names the version; the package is `<version>.tgz`.
    A2 = "a2", "update_url with modsource.json", one module: true;
    /// A FreePBX `updateurl` JSON document.
    Freepbx = "freepbx", "an updateurl JSON", one module: true;
    /// A Joomla update server XML document.
    Joomla = "joomla", "update server XML", one module: false;
}

impl Kind {
    /// Every kind's name, as messages list them: `index, a2, freepbx, joomla`.
    pub fn names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }

    /// The document a source of this kind is read from beneath its location (`index.json`
    /// of a repository, a2's `modsource.json`), which the location itself must not name;
    /// `None` where the location is the document.
    pub const fn document_beneath(self) -> Option<&'static str> {
        match self {
            Kind::Index => Some(crate::index::FILE),
            Kind::A2 => Some(crate::a2::INDEX),
            Kind::Freepbx | Kind::Joomla => None,
        }
    }

    /// Parses [`Kind::as_str`]'s names.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    /// The message naming every kind there is.
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        Kind::parse(text).ok_or_else(|| format!("`{text}` is not one of {}", Kind::names()))
    }
}

/// An update source: one an administrator configured, or a channel a module declares. Its
/// `Debug` leaves the download key out.
#[derive(Clone)]
pub struct Source {
    /// Its name, e.g. `main` or `phonebook/updateurl`.
    pub name: String,
    /// Its format.
    pub kind: Kind,
    /// The repository (index, a2) or document (freepbx, joomla).
    pub location: Location,
    /// The publisher keys pinned: with any, a document must be signed by one of them, and
    /// unsigned or badly signed documents are refused.
    pub public_keys: Vec<PublicKey>,
    /// What was last accepted from it: an older release or document is refused.
    pub seen: Seen,
    /// A download key (`email=…&key=…`) appended to package URLs; never shown.
    pub extra_query: Option<String>,
}

impl Source {
    /// Whether it pins a key, so that everything it answers must be signed.
    pub fn signed(&self) -> bool {
        !self.public_keys.is_empty()
    }

    /// The download key to send with a request for `location`: only to the origin (scheme,
    /// host and port) of the source itself. A document may name packages anywhere; a key
    /// is its publisher's, and another server never sees it.
    pub fn key_for(&self, location: &Location) -> Option<&str> {
        let key = self.extra_query.as_deref()?;
        let own = self.location.origin()?;
        (location.origin()? == own).then_some(key)
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("location", &self.location)
            .field("public_keys", &self.public_keys)
            .field("seen", &self.seen)
            .field(
                "extra_query",
                &self.extra_query.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Refuses anything but `https://` URLs.
pub fn require_https(url: &str) -> Result<()> {
    match Location::parse(url)? {
        Location::Url(_) => Ok(()),
        Location::Path(_) => Err(Error::PlainHttp(url.to_owned())),
    }
}

/// Checks a download key (`email=…&key=…`) before it is stored: it is appended to package
/// URLs as it is, so anything a URL's query cannot hold as written (spaces, `#`, quotes,
/// non-ASCII, a stray `%`) would make every download URL invalid or cut it short.
pub fn validate_query(query: &str) -> std::result::Result<(), String> {
    if query.is_empty() {
        return Err("the download key is empty".into());
    }
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit));
                if !escaped {
                    return Err(format!(
                        "`%` at position {} of the download key is not followed by two hex \
                         digits; write a literal `%` as `%25`",
                        i + 1
                    ));
                }
                i += 3;
                continue;
            }
            // RFC 3986's query characters: unreserved, sub-delims, `:`, `@`, `/`, `?`.
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) => {}
            _ => {
                let shown = match char::from(b) {
                    ' ' => "a space".to_owned(),
                    c if b.is_ascii_graphic() => format!("`{c}`"),
                    _ => "a control or non-ASCII character".to_owned(),
                };
                return Err(format!(
                    "the download key holds {shown}, which a URL's query cannot hold as \
                     written; percent-encode it (a space is `%20`, `#` is `%23`)"
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_the_name_it_shows() {
        for kind in Kind::ALL {
            assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{kind}\""));
        }
        assert_eq!(
            "Index".parse::<Kind>(),
            Err("`Index` is not one of index, a2, freepbx, joomla".to_owned())
        );
    }

    #[test]
    fn a_source_never_shows_its_download_key() {
        let source = Source {
            name: "main".into(),
            kind: Kind::Index,
            location: Location::Url("https://repo.example.org".into()),
            public_keys: Vec::new(),
            seen: Seen::default(),
            extra_query: Some("email=a%40example.org&key=s3cret".into()),
        };
        let shown = format!("{source:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("extra_query: Some(\"<redacted>\")"),
            "{shown}"
        );
    }

    #[test]
    fn a_download_key_goes_only_to_its_sources_own_origin() {
        let source = Source {
            name: "main".into(),
            kind: Kind::Freepbx,
            location: Location::Url("https://repo.example.org/freepbx/pb.json".into()),
            public_keys: Vec::new(),
            seen: Seen::default(),
            extra_query: Some("key=s3cret".into()),
        };
        let at = |url: &str| Location::Url(url.to_owned());
        assert_eq!(
            source.key_for(&at("https://repo.example.org:443/packages/pb.tgz")),
            Some("key=s3cret")
        );
        for elsewhere in [
            "https://cdn.example.net/pb.tgz",
            "https://repo.example.org:8443/pb.tgz",
            "https://repo.example.org@cdn.example.net/pb.tgz",
        ] {
            assert_eq!(source.key_for(&at(elsewhere)), None, "{elsewhere}");
        }
        assert_eq!(source.key_for(&Location::Path("/srv/pb.tgz".into())), None);
    }

    #[test]
    fn a_download_key_must_fit_a_urls_query_as_written() {
        for good in [
            "download_id=123456",
            "email=a%40example.org&key=0f1e",
            "email=a@example.org&key=x-y_z.~",
        ] {
            assert_eq!(validate_query(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("email=a b", "a space"),
            ("key=x#y", "`#`"),
            ("key=50%", "two hex digits"),
            ("key=%zz", "two hex digits"),
            ("key=\"x\"", "`\"`"),
            ("key=x\ny", "control"),
            ("key=é", "non-ASCII"),
        ] {
            let refused = validate_query(bad);
            assert!(
                refused.as_ref().is_err_and(|e| e.contains(why)),
                "{bad:?}: {refused:?}"
            );
        }
    }
}
