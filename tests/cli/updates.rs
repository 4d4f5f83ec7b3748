//! Update sources over real HTTPS on loopback: `repo build` + `repo serve` + `check-online`
//! + verified, signed, licence-gated downloads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use modhost_test_support::tls::{TlsFiles, generate};
use modhost_test_support::{Root, arg, package, package_at};

use crate::root;

/// A repository built from some packages and served over HTTPS by `modhost repo serve`.
struct Repo {
    dir: tempfile::TempDir,
    server: Child,
    url: String,
    tls: TlsFiles,
    public_key: String,
}

impl Repo {
    fn serve(root: &Root, packages: &[PathBuf], groups: Option<&str>) -> Repo {
        Repo::serve_as(root, packages, groups, None)
    }

    /// Like [`Repo::serve`], with the certificates of `twin` (so one `--ca-cert` trusts both).
    fn serve_as(
        root: &Root,
        packages: &[PathBuf],
        groups: Option<&str>,
        twin: Option<&Repo>,
    ) -> Repo {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tls = match twin {
            None => generate(dir.path()),
            Some(twin) => TlsFiles {
                ca: twin.tls.ca.clone(),
                cert: twin.tls.cert.clone(),
                key: twin.tls.key.clone(),
            },
        };
        let key = dir.path().join("signing.key");
        let public_key = root
            .ok(&["repo", "keygen", "--out", arg(&key)])
            .stdout
            .trim()
            .to_owned();
        let mut repo = Repo {
            url: String::new(),
            server: Command::new("true")
                .spawn()
                .unwrap_or_else(|e| panic!("{e}")),
            dir,
            tls,
            public_key,
        };
        repo.publish(root, packages, groups);
        let mut server = root
            .command(&[
                "repo",
                "serve",
                arg(&repo.out()),
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                arg(&repo.tls.cert),
                "--tls-key",
                arg(&repo.tls.key),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut line = String::new();
        if let Some(stdout) = server.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        repo.url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_owned();
        repo.server = server;
        repo
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Rebuilds the repository from exactly `packages`; the server serves the new files.
    fn publish(&self, root: &Root, packages: &[PathBuf], groups: Option<&str>) {
        let src = self.dir.path().join("src");
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(self.out());
        assert!(std::fs::create_dir_all(&src).is_ok());
        for package in packages {
            let name = package.file_name().unwrap_or_default();
            assert!(std::fs::copy(package, src.join(name)).is_ok());
        }
        if let Some(groups) = groups {
            assert!(std::fs::write(src.join("groups.toml"), groups).is_ok());
        }
        let key = self.dir.path().join("signing.key");
        root.ok(&[
            "repo",
            "build",
            arg(&src),
            "--out",
            arg(&self.out()),
            "--sign",
            arg(&key),
        ]);
    }

    /// `args` prefixed with `--ca-cert` for this repository's CA.
    fn trusting<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--ca-cert", arg(&self.tls.ca)];
        all.extend_from_slice(args);
        all
    }

    fn run(&self, root: &Root, args: &[&str]) -> modhost_test_support::Run {
        root.run(&self.trusting(args))
    }

    fn ok(&self, root: &Root, args: &[&str]) -> modhost_test_support::Run {
        root.ok(&self.trusting(args))
    }

    fn fails(&self, root: &Root, args: &[&str]) -> modhost_test_support::Run {
        root.fails(&self.trusting(args))
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn version(root: &Root, rawname: &str) -> String {
    root.ok(&["info", "--json", rawname]).json()["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn offers(repo: &Repo, root: &Root, command: &str) -> Vec<(String, String, String)> {
    let reports = repo.run(root, &[command, "--json"]).json();
    reports
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["offers"].as_array().cloned().unwrap_or_default())
        .map(|o| {
            let field = |name: &str| o[name].as_str().unwrap_or_default().to_owned();
            (field("rawname"), field("version"), field("status"))
        })
        .collect()
}

fn signed_source(repo: &Repo, root: &Root) {
    root.ok(&[
        "source",
        "add",
        "main",
        &repo.url,
        "--public-key",
        &repo.public_key,
    ]);
}

#[test]
fn an_update_is_found_verified_and_installed_and_a_downgrade_is_reported_not_installed() {
    let root = root();
    let v1 = [package("core"), package_at("phonebook", "1.0.0")];
    let repo = Repo::serve(&root, &v1, None);
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    assert!(
        offers(&repo, &root, "showupgrades").is_empty(),
        "no update yet"
    );

    repo.publish(
        &root,
        &[
            package("core"),
            package_at("phonebook", "1.0.0"),
            package_at("phonebook", "2.0.0"),
        ],
        None,
    );
    assert_eq!(
        offers(&repo, &root, "showupgrades"),
        [("phonebook".into(), "2.0.0".into(), "upgrade".into())]
    );
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{}",
        run.stdout
    );
    let lookup = root
        .ok(&["hook", "lookup", "--payload", "2025550100", "--json"])
        .json();
    assert_eq!(lookup[0]["output"], "Alice Example <+12025550100>");

    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        None,
    );
    assert!(offers(&repo, &root, "check-online").contains(&(
        "phonebook".into(),
        "1.0.0".into(),
        "downgrade".into()
    )));
    let refused = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(refused.stderr.contains("`phonebook` 2.0.0 is installed; source `main` offers 1.0.0: a downgrade is never installed"), "{}", refused.stderr);
    assert_eq!(
        repo.ok(&root, &["upgradeall", "--online"]).stdout,
        "nothing to do\n"
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

#[test]
fn bad_checksums_and_signatures_are_refused_and_the_root_is_unchanged() {
    let root = root();
    let repo = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        None,
    );
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core"]);
    let before = root.fingerprint();

    let package_file = repo.out().join("packages/phonebook-1.0.0.tgz");
    let original = std::fs::read(&package_file).unwrap_or_default();
    let mut tampered = original.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 0xff;
    }
    assert!(std::fs::write(&package_file, &tampered).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("does not match the index")
            && run.stderr.contains("the package was discarded"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert!(std::fs::write(&package_file, &original).is_ok());

    let index = repo.out().join("index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_default();
    assert!(std::fs::write(&index, text.replace("\"1.0.0\"", "\"1.0.1\"")).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the index signature does not match the pinned publisher key"),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::write(&index, &text).is_ok()
            && std::fs::remove_file(repo.out().join("index.json.sig")).is_ok()
    );
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the source is signed but its index signature cannot be fetched"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn plain_http_is_refused() {
    let root = root();
    let run = root.fails(&["source", "add", "main", "http://127.0.0.1:8080/repo"]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_licence_gated_package_needs_the_right_key() {
    let root = root();
    let groups = "[groups.pro]\nsecret = \"s3cret\"\nmodules = [\"phonebook\"]\n";
    let repo = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        Some(groups),
    );
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core"]);

    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the server refused: a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    root.ok(&[
        "source",
        "key",
        "main",
        "email=admin%40example.org&key=0000",
    ]);
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the licence key is not valid for this e-mail address (error 403)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("key=0000"),
        "download keys are never shown:\n{}",
        run.stderr
    );

    let groups_file = repo.out().join("groups.toml");
    let key = root
        .ok(&[
            "repo",
            "licence-key",
            "--groups",
            arg(&groups_file),
            "pro",
            "admin@example.org",
        ])
        .stdout;
    root.ok(&[
        "source",
        "key",
        "main",
        &format!("email=admin%40example.org&key={}", key.trim()),
    ]);
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
    let list = root.ok(&["source", "list"]).stdout;
    assert!(
        list.contains("download key set") && !list.contains(key.trim()),
        "{list}"
    );
}

#[test]
fn a_source_that_is_down_or_answers_garbage_affects_only_itself() {
    let root = root();
    let good = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        None,
    );
    let garbage = Repo::serve_as(&root, &[package("voicemail")], None, Some(&good));
    assert!(
        std::fs::write(
            garbage.out().join("index.json"),
            "<!DOCTYPE html><html>oops</html>"
        )
        .is_ok()
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    signed_source(&good, &root);
    root.ok(&[
        "source",
        "add",
        "down",
        &format!("https://127.0.0.1:{closed}"),
    ]);
    root.ok(&["source", "add", "junk", &garbage.url]);

    let run = good.fails(&root, &["check-online", "--json"]);
    let reports = run.json();
    let by_source = |name: &str| {
        reports
            .as_array()
            .and_then(|r| r.iter().find(|r| r["source"] == name))
            .cloned()
            .unwrap_or_default()
    };
    assert!(by_source("down")["error"].is_string(), "{reports}");
    assert!(
        by_source("junk")["error"]
            .as_str()
            .is_some_and(|e| e.contains("the index is not valid")),
        "{reports}"
    );
    assert_eq!(
        by_source("main")["offers"].as_array().map(Vec::len),
        Some(2),
        "{reports}"
    );

    good.ok(&root, &["install", "--online", "core", "phonebook"]);
    assert_eq!(version(&root, "core"), "16.0.40");
    let other = good.fails(&root, &["upgrade", "--online", "voicemail"]);
    assert!(other.stderr.contains("junk"), "{}", other.stderr);
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
    for file in [
        "index.json",
        "freepbx/core.json",
        "joomla/core.xml",
        "packages/core-16.0.40.tgz",
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
    let joomla = std::fs::read_to_string(a.join("joomla/core.xml")).unwrap_or_default();
    assert!(
        joomla.contains("<element>core</element>")
            && joomla.contains("<tag>stable</tag>")
            && joomla.contains("<sha256>"),
        "{joomla}"
    );
}
