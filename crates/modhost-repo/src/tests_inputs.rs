//! What `repo build` refuses before writing anything: packages that cannot all be
//! published, a base URL clients could not fetch from, a validity too long to expire.

use std::path::Path;
use std::time::Duration;

use super::tests_build::{build_ok, files, tempdir, tgz, write, zip};
use super::*;
use crate::MAX_VALID_FOR;

/// The message of a refused build of `src` into `out`.
fn refused(src: &Path, out: &Path, options: &Options) -> String {
    match build_with(src, out, options) {
        Err(e) => e.to_string(),
        Ok(built) => panic!("expected {options:?} refused, built {built:?}"),
    }
}

/// A gzip tar package of `hello` 0.1.0 whose component is `wasm`, as `dir/file`.
fn packed(dir: &Path, file: &str, wasm: &[u8]) {
    let scratch = tempdir();
    let (xml, component) = (
        scratch.path().join("module.xml"),
        scratch.path().join("module.wasm"),
    );
    write(
        &xml,
        b"<module><rawname>hello</rawname><name>Hello</name><version>0.1.0</version></module>",
    );
    write(&component, wasm);
    let packed = modhost_package::pack(&xml, &component, &dir.join(file));
    assert!(packed.is_ok(), "{packed:?}");
}

#[test]
fn packages_of_one_module_and_version_that_differ_are_refused_changing_nothing() {
    let (src, out) = (tempdir(), tempdir());
    packed(src.path(), "hello-0.1.0.tgz", b"\0asm one");
    tgz(src.path(), "other", "1.0.0");
    build_ok(src.path(), out.path(), None);
    let before = files(out.path());
    // A repacked copy, and the same release as a zip: three files, one release.
    packed(src.path(), "hello-repacked.tgz", b"\0asm two");
    zip(src.path(), "hello", "0.1.0");
    let message = refused(src.path(), out.path(), &Options::default());
    assert!(
        message.contains(
            "`hello-0.1.0.tgz`, `hello-0.1.0.zip` and `hello-repacked.tgz` all hold `hello` \
             0.1.0 but are not the same file: which one to publish cannot be told; remove \
             all but one"
        ),
        "{message}"
    );
    assert_eq!(files(out.path()), before, "a refused build changes nothing");
    // A byte-identical copy beside them is named as the copy it is.
    let copied = std::fs::copy(
        src.path().join("hello-0.1.0.tgz"),
        src.path().join("hello-copy.tgz"),
    );
    assert!(copied.is_ok(), "{copied:?}");
    let message = refused(src.path(), out.path(), &Options::default());
    assert!(
        message.contains(
            "`hello-0.1.0.tgz` (and its copy `hello-copy.tgz`), `hello-0.1.0.zip` and \
             `hello-repacked.tgz` all hold `hello` 0.1.0 but are not the same file"
        ),
        "{message}"
    );
    assert!(std::fs::remove_file(src.path().join("hello-copy.tgz")).is_ok());
    // Nor does it create the output directory.
    let fresh = out.path().join("fresh");
    assert!(build_with(src.path(), &fresh, &Options::default()).is_err());
    assert!(!fresh.exists());
}

#[test]
fn a_build_of_no_packages_says_it_withdraws_everything() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "hello", "0.1.0");
    let built = build_ok(src.path(), out.path(), None);
    assert!(!built.warnings.iter().any(|w| w.contains("no packages")));
    let empty = tempdir();
    let built = build_ok(empty.path(), out.path(), None);
    assert!(
        built
            .warnings
            .iter()
            .any(|w| w.starts_with("no packages: the repository offers no module")),
        "{:?}",
        built.warnings
    );
}

#[test]
fn a_byte_identical_copy_is_published_once_with_a_warning() {
    let (src, out) = (tempdir(), tempdir());
    let original = tgz(src.path(), "hello", "0.1.0");
    assert!(std::fs::copy(&original, src.path().join("hello-copy.tgz")).is_ok());
    let key = SecretKey::generate();
    let built = build_ok(src.path(), out.path(), Some(&key));
    assert_eq!(built.modules.len(), 1, "{built:?}");
    assert!(
        built.warnings.iter().any(|w| w.contains(
            "`hello-0.1.0.tgz` and `hello-copy.tgz` are the same package, `hello` 0.1.0: \
             it is published once"
        )),
        "{:?}",
        built.warnings
    );
    let index = std::fs::read_to_string(out.path().join("public/index.json")).unwrap_or_default();
    assert_eq!(index.matches("\"sha256\"").count(), 1, "{index}");
}

#[test]
fn a_base_url_clients_cannot_fetch_from_is_refused_naming_it() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "hello", "0.1.0");
    for (base, why) in [
        ("ftp://x", "is not an https:// URL"),
        ("http://localhost:8080", "is not an https:// URL"),
        ("repo.example.org", "is not an https:// URL"),
        (
            "https://repo.example.org/a b",
            "has ' ', which URLs do not hold as is",
        ),
        ("https://repo.example.org/\"x", "has '\"'"),
        ("https://repo.example.org/<script>", "has '<'"),
        ("https://repo.example.org/?v=1", "has a query"),
        ("https://repo.example.org/#top", "has a fragment"),
        ("https://", "does not parse as a URL"),
        ("https://user:pw@repo.example.org", "holds a user name"),
        ("https://repo.example.org:99999", "does not parse as a URL"),
    ] {
        let options = Options {
            base_url: Some(base),
            ..Options::default()
        };
        let message = refused(src.path(), out.path(), &options);
        assert!(
            message.starts_with(&format!("`{base}`: the base URL {why}")),
            "{base}: {message}"
        );
    }
    assert!(files(out.path()).is_empty(), "nothing written");
    for base in ["https://repo.example.org", "HTTPS://[::1]:8443/repo/"] {
        let options = Options {
            base_url: Some(base),
            ..Options::default()
        };
        let built = build_with(src.path(), out.path(), &options);
        assert!(built.is_ok(), "{base}: {built:?}");
    }
}

#[test]
fn a_validity_over_366_days_is_refused_saying_why() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "hello", "0.1.0");
    let options = Options {
        valid_for: Duration::from_secs(99_999_999 * 86_400),
        ..Options::default()
    };
    let message = refused(src.path(), out.path(), &options);
    // The option is at fault, not the directory: the message names no path.
    assert!(
        message.starts_with("a release valid for 99999999 days is refused: at most 366 days")
            && message.contains("never refreshed"),
        "{message}"
    );
    let over = Options {
        valid_for: MAX_VALID_FOR + Duration::from_secs(1),
        ..Options::default()
    };
    assert!(refused(src.path(), out.path(), &over).contains("valid for 366 days 1s is refused"));
    let over = Options {
        valid_for: MAX_VALID_FOR + Duration::from_secs(3_661),
        ..Options::default()
    };
    assert!(refused(src.path(), out.path(), &over).contains("valid for 366 days 1h 1m 1s"));
    let over = Options {
        valid_for: MAX_VALID_FOR + Duration::from_millis(500),
        ..Options::default()
    };
    assert!(refused(src.path(), out.path(), &over).contains("valid for 366 days 1s"));
    assert!(files(out.path()).is_empty(), "nothing written");
    let longest = Options {
        valid_for: MAX_VALID_FOR,
        ..Options::default()
    };
    assert!(build_with(src.path(), out.path(), &longest).is_ok());
}

#[test]
fn a_directory_of_packages_that_is_not_one_is_said_in_words() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "hello", "0.1.0");
    let missing = src.path().join("nosuch");
    let package = src.path().join("hello-0.1.0.tgz");
    for (dir, said) in [
        (&missing, "does not exist"),
        (&package, "is not a directory"),
    ] {
        assert_eq!(
            refused(dir, out.path(), &Options::default()),
            format!(
                "`{}`: {said}: a repository is built from a directory of packages",
                dir.display()
            )
        );
    }
    assert!(files(out.path()).is_empty(), "nothing written");
}
