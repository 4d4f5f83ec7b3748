//! Licence-gated groups: secrets only their owner reads under any umask, what a web
//! server must read readable under a strict one, warnings about groups that gate nothing,
//! and gated packages served on every path with a valid key only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modhost_update::{Client, Location, Source, Stability, Target};

use super::tests_build::*;
use super::*;
use crate::CURRENT;
use crate::licence::licence_key;
use crate::serve::Server;

/// Set in the copy of the test binary that [`licence_secrets_are_owner_only_under_any_umask`]
/// runs under umask 000: the directory to build in.
const UMASK_CHILD: &str = "MODHOST_REPO_TEST_UMASK_DIR";

/// Runs `test` of this binary again, in a process of its own under `umask` (the umask is
/// the whole process's), with [`UMASK_CHILD`] set to `dir`; fails unless it passed.
fn run_under_umask(umask: &str, test: &str, dir: &Path) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let run = std::process::Command::new("sh")
        .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
        .arg(&exe)
        .args([test, "--exact", "--test-threads=1"])
        .env(UMASK_CHILD, dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn licence_secrets_are_owner_only_under_any_umask() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = std::env::var_os(UMASK_CHILD).map(PathBuf::from) {
        write(&dir.join("probe"), b"what umask 000 gives a plain file");
        build_ok(&dir.join("src"), &dir.join("out"), None);
        return;
    }
    let dir = tempdir();
    let src = dir.path().join("src");
    tgz(&src, "phonebook", "1.0.0");
    let groups = src.join("groups.toml");
    write(&groups, GROUPS.as_bytes());
    assert!(std::fs::set_permissions(&groups, std::fs::Permissions::from_mode(0o644)).is_ok());
    run_under_umask(
        "000",
        "build::tests_licence::licence_secrets_are_owner_only_under_any_umask",
        dir.path(),
    );
    // Through the links, as a web server or `repo serve` reaches them.
    let mode = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777);
    assert_eq!(mode(&dir.path().join("probe")), 0o666, "the umask was 000");
    let out = dir.path().join("out");
    assert_eq!(
        mode(&out.join(CURRENT)),
        0o755,
        "a web server reads the build"
    );
    assert_eq!(mode(&out.join(PRIVATE)), 0o700);
    assert_eq!(mode(&out.join(PRIVATE).join("groups.toml")), 0o600);
    assert!(out.join("private/packages/phonebook-1.0.0.tgz").is_file());
}

#[test]
fn a_gated_module_made_public_or_a_group_naming_no_package_is_warned_about() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    tgz(src.path(), "phonebook", "1.0.0");
    let misspelt = GROUPS.replace("\"phonebook\"", "\"phonbook\"");
    write(&src.path().join("groups.toml"), misspelt.as_bytes());
    let built = build_ok(src.path(), out.path(), None);
    assert!(
        built.warnings.iter().any(|w| w.contains(
            "group `pro` names `phonbook`, which no package here is: nothing of it is gated"
        )),
        "{:?}",
        built.warnings
    );
    // Gated as meant, then groups.toml left behind: the paid module turns public, said.
    write(&src.path().join("groups.toml"), GROUPS.as_bytes());
    let gated = build_ok(src.path(), out.path(), None);
    assert!(
        gated.warnings.iter().all(|w| !w.contains("group")),
        "{:?}",
        gated.warnings
    );
    assert!(std::fs::remove_file(src.path().join("groups.toml")).is_ok());
    let public = build_ok(src.path(), out.path(), None);
    assert!(
        public.warnings.iter().any(|w| w.starts_with(
            "`phonebook` was licence-gated in the previous build and is public in this one"
        )),
        "{:?}",
        public.warnings
    );
}

#[test]
fn what_is_published_is_readable_by_a_web_server_under_a_strict_umask() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = std::env::var_os(UMASK_CHILD).map(PathBuf::from) {
        build_ok(
            &dir.join("src"),
            &dir.join("out"),
            Some(&SecretKey::generate()),
        );
        build_ok(&dir.join("src"), &dir.join("fresh"), None);
        return;
    }
    let dir = tempdir();
    let src = dir.path().join("src");
    tgz(&src, "core", "1.0.0");
    // A build killed between making its link and swapping it in left one behind.
    let out = dir.path().join("out");
    assert!(std::fs::create_dir_all(&out).is_ok());
    assert!(std::os::unix::fs::symlink("builds/1", out.join(".current-1")).is_ok());
    run_under_umask(
        "077",
        "build::tests_licence::what_is_published_is_readable_by_a_web_server_under_a_strict_umask",
        dir.path(),
    );
    let mode = |path: &Path| {
        std::fs::symlink_metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777)
    };
    // Every directory on the way and every file under public/, as another user reads them.
    let fresh = dir.path().join("fresh");
    assert_eq!(mode(&fresh), 0o755, "an `out` the build made");
    for dir in [out.join("builds"), out.join(PUBLIC).join("packages")] {
        let resolved = std::fs::canonicalize(&dir).unwrap_or(dir);
        assert_eq!(mode(&resolved), 0o755, "{}", resolved.display());
    }
    for file in files(&out.join(PUBLIC)) {
        let path = std::fs::canonicalize(out.join(PUBLIC).join(&file)).unwrap_or_default();
        assert_eq!(mode(&path), 0o644, "{file}");
    }
    assert!(
        std::fs::symlink_metadata(out.join(".current-1")).is_err(),
        "the stray link is gone"
    );
}

#[test]
fn a_gated_zip_is_served_on_every_path_with_a_valid_key_only() {
    let (src, out, tls) = (tempdir(), tempdir(), tempdir());
    let package = std::fs::read(zip(src.path(), "phonebook", "1.0.0")).unwrap_or_default();
    tgz(src.path(), "core", "1.0.0");
    write(&src.path().join("groups.toml"), GROUPS.as_bytes());
    build_ok(src.path(), out.path(), None);
    modhost_test_support::tls::generate(tls.path());
    let server = Server::bind(
        out.path(),
        "127.0.0.1:0",
        &tls.path().join("server.pem"),
        &tls.path().join("server.key"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || server.run());
    let client = Client::new(Some(&tls.path().join("ca.pem")), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let target = Target {
        platform: "modhost".into(),
        version: "1.0".into(),
        stability: Stability::Stable,
        php: None,
    };
    // Phonebook's one release, as a source of `kind` at `location` offers it.
    let phonebook = |kind: Kind, location: Location| {
        let source = Source {
            name: "main".into(),
            kind,
            location,
            public_keys: Vec::new(),
            seen: Default::default(),
            extra_query: None,
        };
        let releases = client
            .releases(&source, Some("phonebook"), &target)
            .unwrap_or_else(|e| panic!("{e}"));
        match <[_; 1]>::try_from(releases) {
            Ok([release]) => release,
            Err(releases) => panic!("{kind:?}: one release expected, got {releases:?}"),
        }
    };
    let key = licence_key(
        "9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8",
        "a@example.org",
    );
    let licensed = format!("email=a%40example.org&key={key}");
    let wrong = format!("email=b%40example.org&key={key}");
    for (kind, location, file) in [
        (
            Kind::A2,
            format!("https://{addr}/a2/phonebook"),
            "1.0.0.zip",
        ),
        (
            Kind::Index,
            format!("https://{addr}"),
            "phonebook-1.0.0.zip",
        ),
    ] {
        let release = phonebook(kind, Location::Url(location));
        assert!(release.location.to_string().ends_with(file), "{release:?}");
        let to = tls.path().join(file);
        let download = |query: Option<&str>| client.download(&release, query, &to, &mut |_, _| {});
        for query in [None, Some(wrong.as_str())] {
            let refused = download(query);
            assert!(
                matches!(&refused, Err(modhost_update::Error::Server { message, .. }) if message.contains("licence key")),
                "{kind:?} {query:?}: {refused:?}"
            );
            assert!(!to.exists());
        }
        let fetched = download(Some(&licensed));
        assert!(fetched.is_ok(), "{kind:?}: {fetched:?}");
        assert_eq!(std::fs::read(&to).unwrap_or_default(), package, "{kind:?}");
    }
    // Read from the built directory instead, the gated package is not there: said as
    // gated, with where it is handed out, not as a missing file.
    let release = phonebook(Kind::Index, Location::Path(out.path().join(PUBLIC)));
    let to = tls.path().join("local.zip");
    let refused = client
        .download(&release, None, &to, &mut |_, _| {})
        .map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e
            .contains("`phonebook` 1.0.0 is licence-gated, and a repository's directory holds no gated package")),
        "{refused:?}"
    );
}
