//! `repo build` and `repo serve`: the three client formats, licence groups kept private,
//! zips, platforms.

use std::path::{Path, PathBuf};

use modhost_test_support::{arg, package, package_at, repackage};

use super::{Repo, signed_source, version};
use crate::root;

#[test]
fn repo_serve_stops_on_sigterm_with_every_request_it_served_logged() {
    let root = root();
    let mut repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core"]);
    let (exited, log) = repo.terminate();
    assert!(
        exited,
        "repo serve did not exit successfully on SIGTERM:\n{log}"
    );
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("request")).collect();
    assert!(
        requests
            .iter()
            .any(|l| l.contains("path=/packages/core-16.0.40.tgz") && l.contains("status=200")),
        "{log}"
    );
    assert!(log.contains("stopping"), "{log}");
}

#[test]
fn a_version_with_a_plus_is_published_served_installed_and_built_again() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plus = repackage(
        &package_at("phonebook", "2.0.0"),
        |xml| xml.replace("<version>2.0.0</version>", "<version>2.1.0+1</version>"),
        &dir.path().join("phonebook-2.1.0+1.tgz"),
    );
    let packages = [package("core"), plus];
    let repo = Repo::serve(&root, &packages, None);
    assert!(
        repo.public()
            .join("packages/phonebook-2.1.0+1.tgz")
            .is_file()
    );
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "2.1.0+1");

    // a2 names the package after the version alone.
    let other = crate::root();
    repo.add_a2_source(&other, "pb", "phonebook");
    other.ok(&["install", arg(&package("core"))]);
    repo.ok(&other, &["install", "--online", "phonebook"]);
    assert_eq!(version(&other, "phonebook"), "2.1.0+1");

    // The next build reads what this one published.
    repo.publish(&root, &packages, None);
}

#[test]
fn repo_build_writes_all_three_client_formats_reproducibly() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.path().join("src");
    assert!(
        std::fs::create_dir_all(&src).is_ok()
            && std::fs::copy(package("core"), src.join("core.tgz")).is_ok()
    );
    let build = |out: &Path| {
        root.ok(&[
            "repo",
            "build",
            arg(&src),
            "--out",
            arg(out),
            "--base-url",
            "https://repo.example.org/m",
        ])
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    build(&a);
    build(&b);
    assert!(!a.join("private").exists(), "nothing is gated");
    let (a, b) = (a.join("public"), b.join("public"));
    for file in [
        "index.json",
        "freepbx/core.json",
        "joomla/core.xml",
        "packages/core-16.0.40.tgz",
        "a2/core/modsource.json",
        "a2/core/16.0.40.tgz",
    ] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap_or_default(),
            std::fs::read(b.join(file)).unwrap_or_default(),
        );
        assert!(
            !x.is_empty() && x == y,
            "{file} is written and reproducible"
        );
    }
    let freepbx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("freepbx/core.json")).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(
        freepbx["location"],
        "https://repo.example.org/m/packages/core-16.0.40.tgz"
    );
    assert_eq!(freepbx["supported"]["version"], "16.0");
    assert_eq!(
        freepbx["md5sum"].as_str().map(str::len),
        Some(32),
        "{freepbx}"
    );
    let a2: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.join("a2/core/modsource.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(a2["version"], "16.0.40");
    assert_eq!(a2["sha256"], freepbx["sha256"]);
    let joomla = std::fs::read_to_string(a.join("joomla/core.xml")).unwrap_or_default();
    assert!(
        joomla.contains("<element>core</element>")
            && joomla.contains("<tag>stable</tag>")
            && joomla.contains("<sha256>"),
        "{joomla}"
    );
    // Joomla's own word for a gzip tar, which its client knows.
    assert!(
        joomla.contains(r#"<downloadurl type="full" format="gz">"#),
        "{joomla}"
    );
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn repo_build_keeps_licence_secrets_and_gated_packages_out_of_the_public_part() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    assert!(std::fs::create_dir_all(&src).is_ok());
    for package in [package("core"), package_at("phonebook", "1.0.0")] {
        let name = package.file_name().unwrap_or_default();
        assert!(std::fs::copy(&package, src.join(name)).is_ok());
    }
    let build = || root.ok(&["repo", "build", arg(&src), "--out", arg(&out)]);
    build();
    assert!(out.join("public/packages/phonebook-1.0.0.tgz").is_file());

    // Gated since the last build into the same directory: nothing of it may stay public.
    let secret = "6974d2b8e285bd3934383df12252fb18e5d51559eaa88e1d8bea142af94a6950";
    let groups = format!("[groups.pro]\nsecret = \"{secret}\"\nmodules = [\"phonebook\"]\n");
    assert!(std::fs::write(src.join("groups.toml"), groups).is_ok());
    let run = build();
    assert!(
        run.stdout.contains(arg(&out.join("public")))
            && run.stdout.contains(arg(&out.join("private"))),
        "{}",
        run.stdout
    );
    let gated = std::fs::read(package_at("phonebook", "1.0.0")).unwrap_or_default();
    for file in files(&out.join("public")) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert_ne!(bytes, gated, "{file:?} is the gated package");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{file:?} holds the group's secret"
        );
    }
    for kept in [
        "public/index.json",
        "public/packages/core-16.0.40.tgz",
        "public/a2/core/16.0.40.tgz",
        "public/a2/phonebook/modsource.json",
        "private/groups.toml",
        "private/packages/phonebook-1.0.0.tgz",
        "private/a2/phonebook/1.0.0.tgz",
    ] {
        assert!(out.join(kept).is_file(), "{kept}");
    }
}

#[test]
fn zip_packages_are_published_in_every_format_downloaded_as_zips_and_installed() {
    let root = root();
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let zip = modhost_test_support::zipped(
        &package_at("phonebook", "2.0.0"),
        true,
        &work.path().join("phonebook-2.0.0.zip"),
    );
    let repo = Repo::serve(&root, &[package("core"), zip], None);
    let public = repo.public();
    assert!(public.join("packages/phonebook-2.0.0.zip").is_file());
    assert!(public.join("a2/phonebook/2.0.0.zip").is_file());
    let modsource = std::fs::read_to_string(public.join("a2/phonebook/modsource.json"));
    assert!(
        modsource
            .as_ref()
            .is_ok_and(|m| m.contains("\"format\": \"zip\"")),
        "{modsource:?}"
    );
    let joomla = std::fs::read_to_string(public.join("joomla/phonebook.xml")).unwrap_or_default();
    assert!(joomla.contains("format=\"zip\""), "{joomla}");

    root.ok(&["install", arg(&package("core"))]);
    repo.add_a2_source(&root, "pb", "phonebook");
    let out = work.path().join("downloads");
    assert!(std::fs::create_dir_all(&out).is_ok());
    repo.ok(&root, &["download", "phonebook", "--out", arg(&out)]);
    assert!(
        out.join("phonebook-2.0.0.zip").is_file(),
        "a download keeps its format's extension"
    );
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

#[test]
fn repo_build_targets_the_platform_it_is_told() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    assert!(
        std::fs::create_dir_all(&src).is_ok()
            && std::fs::copy(package("core"), src.join("core.tgz")).is_ok()
    );
    root.configure("[platform]\nname = \"freepbx\"\n");
    let feed = out.join("public/joomla/core.xml");
    let offered = |platform: Option<&str>| {
        let mut build = vec!["repo", "build", arg(&src), "--out", arg(&out)];
        build.extend(platform.map(|p| ["--platform", p]).into_iter().flatten());
        root.ok(&build);
        root.ok(&["check-online", "--json"]).json()[0]["offers"].clone()
    };
    root.ok(&["repo", "build", arg(&src), "--out", arg(&out)]);
    root.ok(&["source", "add", "j", arg(&feed), "--kind", "joomla"]);
    // By default for modhost's own name, which this root does not go by.
    assert_eq!(offered(None), serde_json::json!([]));
    let offers = offered(Some("freepbx"));
    assert_eq!(offers[0]["version"], "16.0.40", "{offers}");
    let xml = std::fs::read_to_string(&feed).unwrap_or_default();
    assert!(xml.contains("<targetplatform name=\"freepbx\""), "{xml}");
}

#[test]
fn repo_build_refuses_two_different_files_of_one_release_and_a_public_signing_key() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    assert!(std::fs::create_dir_all(&src).is_ok());
    let core = package("core");
    let name = core
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    assert!(std::fs::copy(&core, src.join(&name)).is_ok());

    // A public key given as the signing key is called one.
    let key = dir.path().join("signing.key");
    root.ok(&["repo", "keygen", "--out", arg(&key)]);
    let public = dir.path().join("signing.key.pub");
    let run = root.fails(&[
        "repo",
        "build",
        arg(&src),
        "--out",
        arg(&out),
        "--sign",
        arg(&public),
    ]);
    assert!(
        run.stderr
            .contains(&format!("`{}`: this is a public key", public.display()))
            && run
                .stderr
                .contains("`minisign -G` writes minisign.key beside minisign.pub"),
        "{run:?}"
    );
    assert!(!out.exists(), "nothing written");
    // So is a directory.
    let run = root.fails(&[
        "repo",
        "build",
        arg(&src),
        "--out",
        arg(&out),
        "--sign",
        arg(dir.path()),
    ]);
    assert!(
        run.stderr.contains(&format!(
            "`{}`: a directory, not a signing key file",
            dir.path().display()
        )),
        "{run:?}"
    );

    // A repacked copy of the same release: refused, naming both files, changing nothing.
    repackage(
        &core,
        |xml| format!("{xml}\n"),
        &src.join("core-repacked.tgz"),
    );
    let run = root.fails(&["repo", "build", arg(&src), "--out", arg(&out)]);
    assert!(
        run.stderr.contains(&format!(
            "`{name}` and `core-repacked.tgz` both hold `core`"
        )) && run.stderr.contains("remove all but one"),
        "{run:?}"
    );
    assert!(!out.exists(), "nothing written");

    // A byte-identical copy is published once, with a warning.
    assert!(std::fs::remove_file(src.join("core-repacked.tgz")).is_ok());
    assert!(std::fs::copy(&core, src.join("core-copy.tgz")).is_ok());
    let run = root.ok(&["repo", "build", arg(&src), "--out", arg(&out)]);
    assert!(
        run.stdout.contains("with 1 packages") && run.stderr.contains("published once"),
        "{run:?}"
    );

    // The next build, with the release the last one published changed: refused, the
    // published repository left as it was, unless told to publish it again.
    assert!(std::fs::remove_file(src.join("core-copy.tgz")).is_ok());
    repackage(&core, |xml| format!("{xml}\n"), &src.join(&name));
    let index = out.join("public/index.json");
    let published = std::fs::read(&index).unwrap_or_default();
    let run = root.fails(&["repo", "build", arg(&src), "--out", arg(&out)]);
    assert!(
        run.stderr.contains(&format!(
            "`core` 16.0.40 (`{name}`) is not the package the last build published"
        )) && run
            .stderr
            .contains("give the changed package a new version")
            && run.stderr.contains("help: --republish publishes it anyway"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&index).unwrap_or_default(), published);
    root.ok(&[
        "repo",
        "build",
        arg(&src),
        "--out",
        arg(&out),
        "--republish",
    ]);
    assert_ne!(std::fs::read(&index).unwrap_or_default(), published);
    // An archive of another kind beside the packages is left out, and said to be.
    assert!(std::fs::write(src.join("core-17.0.0.tar.xz"), b"\xfd7zXZ\0 not a package").is_ok());
    let run = root.ok(&["repo", "build", arg(&src), "--out", arg(&out)]);
    assert!(
        run.stderr.contains("core-17.0.0.tar.xz") && run.stderr.contains("left out"),
        "{run:?}"
    );
    assert!(
        !std::fs::read_to_string(&index)
            .unwrap_or_default()
            .contains("17.0.0")
    );
    // So is a module directory, which a host's package directory offers but a repository
    // does not publish.
    let module = src.join("widget");
    assert!(
        std::fs::create_dir(&module)
            .and_then(|()| std::fs::write(module.join("module.xml"), "<module/>"))
            .is_ok()
    );
    let run = root.ok(&["repo", "build", arg(&src), "--out", arg(&out)]);
    assert!(
        run.stderr.contains(&format!(
            "`{}` is a module directory, not a package",
            module.display()
        )),
        "{run:?}"
    );
}
