//! A publisher's public key as an administrator gives it: the key itself, or the minisign
//! `.pub` file that holds it — told apart, and the commonest slip (a secret key given for
//! its public one) named.

use std::path::{Path, PathBuf};

use crate::PublicKey;

/// Why a key given cannot be pinned.
#[derive(Debug, thiserror::Error)]
pub enum KeyArgError {
    /// A secret key file was given; `instead` is its public key beside it, when there.
    #[error("`{}` is a secret key: give its public key{}", .path.display(), .instead.as_ref().map(|p| format!(", `{}`", p.display())).unwrap_or_default())]
    SecretKey {
        /// The file given.
        path: PathBuf,
        /// Its `.pub` beside it.
        instead: Option<PathBuf>,
    },
    /// A file that holds no minisign public key.
    #[error("`{}` holds no minisign public key", .0.display())]
    NoKey(PathBuf),
    /// Text that looks like a path, naming no file.
    #[error("`{0}` is neither a minisign public key nor a file that exists")]
    Missing(String),
    /// A directory was given for the key's file.
    #[error("`{}` is a directory, not a minisign public key file", .0.display())]
    Directory(PathBuf),
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The text of a public key `given` as the key itself or as the path of a minisign `.pub`
/// file holding it; text that is neither a key nor a path is returned as it is, for the
/// key's own parsing to refuse in its words.
pub fn public_key_text(given: &str) -> Result<String, KeyArgError> {
    if PublicKey::parse(given).is_ok() {
        return Ok(given.to_owned());
    }
    let path = Path::new(given);
    if path.is_dir() {
        return Err(KeyArgError::Directory(path.to_owned()));
    }
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|source| KeyArgError::Read {
            path: path.to_owned(),
            source,
        })?;
        // A file holding a key is the key's to accept, or to refuse in its own words (it
        // holds two).
        if text
            .lines()
            .any(|line| PublicKey::parse(line.trim()).is_ok())
        {
            return Ok(text);
        }
        let public = PathBuf::from(format!("{given}.pub"));
        let beside = public.is_file();
        if beside || text.contains("secret key") {
            return Err(KeyArgError::SecretKey {
                path: path.to_owned(),
                instead: beside.then_some(public),
            });
        }
        return Err(KeyArgError::NoKey(path.to_owned()));
    }
    // A minisign public key starts `RW` and is base64 (`/` among its letters): a key
    // mistyped is the key's parsing to refuse in its words. What looks like a path
    // otherwise is said to be missing.
    let keylike = given.starts_with("RW")
        && given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    let pathlike = [".pub", ".key"].iter().any(|e| given.ends_with(e))
        || given.starts_with(['/', '.', '~'])
        || (given.contains('/') && !keylike);
    if pathlike {
        return Err(KeyArgError::Missing(given.to_owned()));
    }
    Ok(given.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_its_file_a_secret_key_and_a_missing_file_are_told_apart() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        assert_eq!(public_key_text(key).ok().as_deref(), Some(key));
        let public = dir.path().join("k.key.pub");
        let file = format!("untrusted comment: minisign public key\n{key}\n");
        assert!(std::fs::write(&public, &file).is_ok());
        let read = public_key_text(&public.to_string_lossy());
        assert_eq!(read.ok().as_deref(), Some(file.as_str()));
        // Two keys in one file: the key's own parsing says so.
        let two = dir.path().join("two.pub");
        let other = "RWRsVdpn+Dj1V0yV6VdHDmbrF0wqzrbGp0TMNdpV0SzXHEwAFn3n2tlC";
        assert!(std::fs::write(&two, format!("{file}{other}\n")).is_ok());
        let read = public_key_text(&two.to_string_lossy()).map(|text| PublicKey::parse(&text));
        assert!(
            read.as_ref()
                .is_ok_and(|parsed| parsed.as_ref().is_err_and(|e| e.contains("it holds two"))),
            "{read:?}"
        );
        let secret = dir.path().join("k.key");
        assert!(
            std::fs::write(
                &secret,
                "untrusted comment: minisign encrypted secret key\nRWRT"
            )
            .is_ok()
        );
        let said = public_key_text(&secret.to_string_lossy()).map_err(|e| e.to_string());
        assert_eq!(
            said,
            Err(format!(
                "`{}` is a secret key: give its public key, `{}`",
                secret.display(),
                public.display()
            ))
        );
        // A byte-order mark before it, as an editor saves it, is read past.
        let marked = dir.path().join("marked.pub");
        assert!(std::fs::write(&marked, format!("\u{feff}{file}")).is_ok());
        let read = public_key_text(&marked.to_string_lossy()).map(|text| PublicKey::parse(&text));
        assert!(read.is_ok_and(|parsed| parsed.is_ok()));
        // A directory, and a relative path that names nothing, are said as what they are.
        assert!(matches!(
            public_key_text(&dir.path().to_string_lossy()),
            Err(KeyArgError::Directory(_))
        ));
        assert!(matches!(
            public_key_text("keys/minisign.pub.txt"),
            Err(KeyArgError::Missing(_))
        ));
        // A key with a letter lost is left to the key's own parsing, to say what it is.
        let mistyped = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GF/";
        assert_eq!(public_key_text(mistyped).ok().as_deref(), Some(mistyped));
        let missing = dir.path().join("gone.pub");
        assert!(matches!(
            public_key_text(&missing.to_string_lossy()),
            Err(KeyArgError::Missing(_))
        ));
        assert_eq!(public_key_text("RWnot").ok().as_deref(), Some("RWnot"));
    }
}
