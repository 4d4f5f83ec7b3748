//! Update sources over real HTTPS on loopback: `repo build` + `repo serve` + `check-online`
//! + verified, signed, licence-gated downloads.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use modhost_test_support::tls::{TlsFiles, generate};
use modhost_test_support::{Root, arg, package, package_at, repackage};

use crate::root;

/// A repository built from some packages and served over HTTPS by `modhost repo serve`.
pub(crate) struct Repo {
    pub(crate) dir: tempfile::TempDir,
    server: Child,
    pub(crate) url: String,
    tls: TlsFiles,
    pub(crate) public_key: String,
}

impl Repo {
    pub(crate) fn serve(root: &Root, packages: &[PathBuf], groups: Option<&str>) -> Repo {
        Repo::serve_as(root, packages, groups, None)
    }

    /// A repository of core and phonebook at `version`, ungated.
    pub(crate) fn phonebook(root: &Root, version: &str) -> Repo {
        Repo::serve(
            root,
            &[package("core"), package_at("phonebook", version)],
            None,
        )
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
                "--json",
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
            .stderr(log_file(&repo.log()))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        // One JSON document, `{"listening": URL}`, printed before it serves.
        let mut said = String::new();
        if let Some(stdout) = server.stdout.take() {
            let mut stdout = BufReader::new(stdout);
            while stdout.read_line(&mut said).is_ok_and(|n| n > 0) && !said.ends_with("}\n") {}
        }
        let said_json: serde_json::Value = serde_json::from_str(&said).unwrap_or_default();
        repo.url = said_json["listening"]
            .as_str()
            .filter(|url| url.starts_with("https://127.0.0.1:"))
            .unwrap_or_else(|| panic!("serve --json said {said:?}"))
            .to_owned();
        repo.server = server;
        repo
    }

    /// Where the server's log (its access log) is written.
    fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Stops the server as a service manager does, with `SIGTERM`: whether it exited
    /// successfully (within 20 seconds), and its log.
    fn terminate(&mut self) -> (bool, String) {
        let pid = self.server.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(signalled.is_ok_and(|s| s.success()));
        let waiting = std::time::Instant::now();
        let exited = loop {
            match self.server.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if waiting.elapsed() < std::time::Duration::from_secs(20) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => break false,
            }
        };
        (
            exited,
            std::fs::read_to_string(self.log()).unwrap_or_default(),
        )
    }

    /// What `repo build` wrote: `public/` and `private/`.
    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The part of the repository a static web server would host.
    pub(crate) fn public(&self) -> PathBuf {
        self.out().join("public")
    }

    /// Rebuilds the repository from exactly `packages`, signed with its key; the server
    /// serves the new files.
    pub(crate) fn publish(&self, root: &Root, packages: &[PathBuf], groups: Option<&str>) {
        let key = self.dir.path().join("signing.key");
        self.publish_with(root, packages, groups, &["--sign", arg(&key)]);
    }

    /// Rebuilds the repository from exactly `packages` with `args` added to `repo build`
    /// (no signing key but one they give).
    pub(crate) fn publish_with(
        &self,
        root: &Root,
        packages: &[PathBuf],
        groups: Option<&str>,
        args: &[&str],
    ) -> modhost_test_support::Run {
        let src = self.dir.path().join("src");
        let _ = std::fs::remove_dir_all(&src);
        assert!(std::fs::create_dir_all(&src).is_ok());
        for package in packages {
            let name = package.file_name().unwrap_or_default();
            assert!(std::fs::copy(package, src.join(name)).is_ok());
        }
        if let Some(groups) = groups {
            assert!(std::fs::write(src.join("groups.toml"), groups).is_ok());
        }
        let mut build = vec!["repo", "build", arg(&src), "--out"];
        let out = self.out();
        build.push(arg(&out));
        build.extend_from_slice(args);
        root.ok(&build)
    }

    /// Adds this repository's a2 channel of `rawname` to `root` as source `name`, pinned
    /// to the repository's signing key.
    fn add_a2_source(&self, root: &Root, name: &str, rawname: &str) {
        let url = format!("{}/a2/{rawname}", self.url);
        root.ok(&[
            "source",
            "add",
            name,
            &url,
            "--kind",
            "a2",
            "--public-key",
            &self.public_key,
        ]);
    }

    /// `args` prefixed with `--ca-cert` for this repository's CA.
    pub(crate) fn trusting<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--ca-cert", arg(&self.tls.ca)];
        all.extend_from_slice(args);
        all
    }

    pub(crate) fn ok(&self, root: &Root, args: &[&str]) -> modhost_test_support::Run {
        root.ok(&self.trusting(args))
    }

    pub(crate) fn fails(&self, root: &Root, args: &[&str]) -> modhost_test_support::Run {
        root.fails(&self.trusting(args))
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A new file at `path` for a child's output.
fn log_file(path: &Path) -> Stdio {
    std::fs::File::create(path).map_or_else(|_| Stdio::null(), Stdio::from)
}

pub(crate) fn version(root: &Root, rawname: &str) -> String {
    root.ok(&["info", "--json", rawname]).json()["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What `command` (`check-online`, `showupgrades`) offers, as (rawname, version, status);
/// the command must succeed: a source that failed would otherwise read as no offer.
pub(crate) fn offers(repo: &Repo, root: &Root, command: &str) -> Vec<(String, String, String)> {
    let reports = repo.ok(root, &[command, "--json"]).json();
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

/// A licence group `pro` (its secret is a constant of this file) that gates phonebook.
const PRO_GROUP: &str = "[groups.pro]\nsecret = \"9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8\"\nmodules = [\"phonebook\"]\n";

/// A signed repository of core and a licence-gated phonebook 1.0.0, added as source `main`.
fn gated_phonebook(root: &Root) -> Repo {
    let repo = Repo::serve(
        root,
        &[package("core"), package_at("phonebook", "1.0.0")],
        Some(PRO_GROUP),
    );
    signed_source(&repo, root);
    repo
}

/// The id of the minisign public key `key`, as messages name it.
pub(crate) fn key_id(key: &str) -> String {
    modhost_update::PublicKey::parse(key)
        .map(|k| k.key_id())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn signed_source(repo: &Repo, root: &Root) {
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
    let minisign_pub =
        std::fs::read_to_string(repo.dir.path().join("signing.key.pub")).unwrap_or_default();
    assert_eq!(
        minisign_pub.lines().nth(1),
        Some(repo.public_key.as_str()),
        "keygen writes a minisign.pub: {minisign_pub}"
    );
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
    let size = std::fs::metadata(repo.public().join("packages/phonebook-2.0.0.tgz"))
        .map(|m| m.len())
        .unwrap_or_default();
    assert!(
        run.stderr
            .contains(" Downloading phonebook 2.0.0 from main\n")
            && run
                .stderr
                .contains(&format!("    Verified phonebook ({size} bytes)\n")),
        "the download's status lines: {}",
        run.stderr
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
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert_eq!(run.stdout, "nothing to do\n");
    assert!(
        run.stderr.contains(
            "`phonebook` 2.0.0 is installed; source `main` offers 1.0.0: a downgrade is never \
             installed"
        ),
        "upgradeall warns of the downgrade it skips: {}",
        run.stderr
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

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
fn bad_checksums_and_signatures_are_refused_and_the_root_is_unchanged() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    repo.ok(&root, &["install", "--online", "core"]);
    let before = root.fingerprint();

    let package_file = repo.public().join("packages/phonebook-1.0.0.tgz");
    let original = std::fs::read(&package_file).unwrap_or_default();
    let mut tampered = original.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 0xff;
    }
    assert!(std::fs::write(&package_file, &tampered).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("does not match the published")
            && run.stderr.contains("the package was discarded"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    // One byte more than the signed index says: a size mismatch, caught before any checksum.
    let mut longer = original.clone();
    longer.push(0);
    assert!(std::fs::write(&package_file, &longer).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    let published = original.len();
    assert!(
        run.stderr.contains(&format!(
            "more than {published} bytes received, {published} published; the package was discarded"
        )),
        "{}",
        run.stderr
    );
    assert!(std::fs::write(&package_file, &original).is_ok());

    let index = repo.public().join("index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_default();
    assert!(std::fs::write(&index, text.replace("\"1.0.0\"", "\"1.0.1\"")).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "source `main`: `{}/index.json` was changed after it was signed: its signature by \
             key ID {} does not match its content",
            repo.url,
            key_id(&repo.public_key)
        )),
        "{}",
        run.stderr
    );
    assert!(std::fs::write(&index, &text).is_ok());
    // Soundly signed, but by another publisher than the one pinned.
    let other = repo.dir.path().join("other.key");
    let other_key = root.ok(&["repo", "keygen", "--out", arg(&other)]).stdout;
    root.ok(&[
        "source",
        "add",
        "--replace",
        "main",
        &repo.url,
        "--public-key",
        other_key.trim(),
    ]);
    let pinned_other = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(&format!(
            "is signed by key ID {}, not by the pinned key ID {}",
            key_id(&repo.public_key),
            key_id(&other_key)
        )),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), pinned_other);
    root.ok(&[
        "source",
        "add",
        "--replace",
        "main",
        &repo.url,
        "--public-key",
        &repo.public_key,
    ]);
    // Pinning other keys starts the source afresh, forgetting the serial the old ones
    // vouched for (how a source locked out by a far-future release recovers): the root is
    // compared from here.
    let before = root.fingerprint();
    assert!(std::fs::remove_file(repo.public().join("index.json.minisig")).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the source is signed but the signature of"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn plain_http_is_refused() {
    let root = root();
    // Where every plain-HTTP URL below points: nothing may ever connect to it.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://127.0.0.1:{}",
        plain.local_addr().map(|a| a.port()).unwrap_or(1)
    );
    let run = root.fails(&["source", "add", "main", &url]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&[
        "download",
        &format!("{url}/phonebook-2.0.0.tgz"),
        "--sha256",
        &"0".repeat(64),
        "--out",
        arg(out.path()),
    ]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );

    let channels = format!(
        "<updateurl>{url}/freepbx/phonebook.json</updateurl>\
         <updateservers><server type=\"extension\">{url}/joomla/phonebook.xml</server></updateservers>"
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, out.path())),
    ]);
    let reports = root.fails(&["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert!(
            failed_with(&reports, channel, "plain HTTP is refused"),
            "{reports}"
        );
    }
    let run = root.fails(&["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr.contains("plain HTTP is refused"),
        "{}",
        run.stderr
    );
    assert!(plain.set_nonblocking(true).is_ok());
    assert!(plain.accept().is_err(), "a plain-HTTP URL was contacted");
}

#[test]
fn a_licence_gated_package_needs_the_right_key() {
    let root = root();
    let repo = gated_phonebook(&root);
    repo.ok(&root, &["install", "--online", "core"]);

    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the server refused: a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    // A key that would make every download URL invalid is refused when stored, and the
    // refusal does not repeat it.
    let run = root.fails(&[
        "source",
        "key",
        "main",
        "email=admin@example.org&key=sp ace7q",
    ]);
    assert!(
        run.stderr.contains("a space") && !run.stderr.contains("sp ace7q"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["source", "key", "main", "key=frag#ment7q"]);
    assert!(run.stderr.contains("`#`"), "{}", run.stderr);

    let wrong = "wr0ngK3y7f3a9c";
    root.ok(&[
        "source",
        "key",
        "main",
        &format!("email=admin%40example.org&key={wrong}"),
    ]);
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the licence key is not valid for this e-mail address (error 403)"),
        "{}",
        run.stderr
    );
    let json = repo.fails(&root, &["--json", "install", "--online", "phonebook"]);
    assert!(
        json.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("(error 403)")),
        "{}",
        json.stdout
    );
    let list = root.ok(&["source", "list"]);
    let list_json = root.ok(&["source", "list", "--json"]);
    assert_eq!(list_json.json()[0]["has_key"], true, "{}", list_json.stdout);
    never_shows(wrong, &[&run, &json, &list, &list_json]);

    let groups_file = repo.out().join("private/groups.toml");
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

/// Fails unless `secret` is absent from every output of `runs` in every encoding a log
/// or a JSON document might give it: as is, percent-encoded, JSON-escaped, hex, base64.
fn never_shows(secret: &str, runs: &[&modhost_test_support::Run]) {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let percent: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let base64 = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bits: Vec<u8> = secret
            .bytes()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect();
        // Whole 6-bit groups only: the tail's encoding depends on what follows the secret.
        bits.chunks_exact(6)
            .map(|group| {
                let index = group
                    .iter()
                    .fold(0usize, |n, bit| n * 2 + usize::from(*bit));
                char::from(ALPHABET[index])
            })
            .collect::<String>()
    };
    let json = serde_json::to_string(secret).unwrap_or_default();
    for run in runs {
        for output in [&run.stdout, &run.stderr] {
            let lower = output.to_ascii_lowercase();
            for encoded in [secret, &hex, &percent, &base64, json.trim_matches('"')] {
                assert!(
                    !output.contains(encoded) && !lower.contains(&encoded.to_ascii_lowercase()),
                    "the download key shows (as `{encoded}`):\n{output}"
                );
            }
        }
    }
}

#[test]
fn a_refusal_answered_with_status_200_is_shown_as_the_servers_message() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    signed_source(&repo, &root);
    // jBackend (seed 003) may send its JSON refusal with status 200, in place of the package.
    // Its message is the server's text: escape sequences in it must not reach the terminal.
    let refusal = r#"{ "status": "ko", "error_code": "REL_ENS", "error_description": "\u001b[2J\u001b]0;owned\u0007Email not\u001b[8m specified" }"#;
    assert!(std::fs::write(repo.public().join("packages/phonebook-1.0.0.tgz"), refusal).is_ok());
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("the server refused: Email not specified (error REL_ENS)")
            && !run.stderr.contains('\u{1b}')
            && !run.stderr.contains("owned"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn certificates_are_checked_against_the_public_roots_plus_every_ca_given() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core")], None);
    root.ok(&["source", "add", "main", &repo.url]);
    let reports = root.fails(&["check-online", "--json"]).json();
    assert!(
        failed_with(&reports, "main", "certificate"),
        "a private CA is not trusted unless given: {reports}"
    );
    // The library names its setting; the CLI adds its own flag.
    let run = root.fails(&["check-online"]);
    assert!(
        run.stdout.contains("ca_cert in modhost.toml") && run.stderr.contains("--ca-cert FILE"),
        "{run:?}"
    );

    // A bundle whose first certificate is another CA: every one in it is trusted.
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other = generate(other.path());
    let bundle = repo.dir.path().join("bundle.pem");
    let pem = [&other.ca, &repo.tls.ca]
        .map(|ca| std::fs::read_to_string(ca).unwrap_or_default())
        .concat();
    assert!(std::fs::write(&bundle, pem).is_ok());
    let run = root.ok(&["--ca-cert", arg(&bundle), "check-online"]);
    assert!(run.stdout.contains("main: core 16.0.40"), "{}", run.stdout);
    root.configure(&format!("ca_cert = '{}'\n", bundle.display()));
    let run = root.ok(&["check-online"]);
    assert!(run.stdout.contains("main: core 16.0.40"), "{}", run.stdout);
}

/// Stores `query` as the download key of `source`, read from standard input (`-`), so
/// that it never shows in the process list.
fn store_key(root: &Root, source: &str, query: &str) {
    let mut child = root
        .command(&["source", "key", source, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        assert!(writeln!(stdin, "{query}").is_ok());
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_download_key_never_shows_even_in_trace_logs() {
    let root = root();
    let repo = gated_phonebook(&root);
    let key = root
        .ok(&[
            "repo",
            "licence-key",
            "--groups",
            arg(&repo.dir.path().join("src/groups.toml")),
            "pro",
            "admin@example.org",
        ])
        .stdout
        .trim()
        .to_owned();
    store_key(
        &root,
        "main",
        &format!("email=admin%40example.org&key={key}"),
    );
    for filter in ["trace", "ureq::run=trace,ureq_proto=trace,rustls=trace"] {
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let run = Root::output(
            root.command(&repo.trusting(&["download", "phonebook", "--out", arg(out.path())]))
                .env("MODHOST_LOG", filter),
        );
        assert!(run.success, "{}", run.stderr);
        assert!(out.path().join("phonebook-1.0.0.tgz").is_file());
        for output in [&run.stdout, &run.stderr] {
            assert!(
                !output.contains(&key),
                "MODHOST_LOG={filter}: the key shows:\n{output}"
            );
        }
    }
}

#[test]
fn a_source_that_is_down_or_answers_garbage_affects_only_itself() {
    let root = root();
    let good = Repo::phonebook(&root, "1.0.0");
    let garbage = Repo::serve_as(&root, &[package("voicemail")], None, Some(&good));
    assert!(
        std::fs::write(
            garbage.public().join("index.json"),
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
    assert!(report(&reports, "down")["error"].is_string(), "{reports}");
    assert!(
        failed_with(&reports, "junk", "the index is not valid"),
        "{reports}"
    );
    assert_eq!(
        report(&reports, "main")["offers"].as_array().map(Vec::len),
        Some(2),
        "{reports}"
    );

    good.ok(&root, &["install", "--online", "core", "phonebook"]);
    assert_eq!(version(&root, "core"), "16.0.40");
    let other = good.fails(&root, &["upgrade", "--online", "voicemail"]);
    assert!(other.stderr.contains("junk"), "{}", other.stderr);

    good.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0")],
        None,
    );
    let run = good.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0")
            && run.stderr.contains("source `down`: ")
            && run
                .stderr
                .contains("skipped: no module to upgrade is updated from it"),
        "{run:?}"
    );

    // A source is not silently redefined (which would drop its signing key)...
    let down = format!("https://127.0.0.1:{closed}");
    let run = root.fails(&["source", "add", "main", &down]);
    assert!(
        run.stderr.contains("source `main` already exists")
            && run.stderr.contains("signed")
            && run.stderr.contains("--replace"),
        "{}",
        run.stderr
    );
    // ...nor removed from under the modules installed from it.
    let run = root.fails(&["source", "remove", "main"]);
    assert!(
        run.stderr
            .contains("`core`, `phonebook` are installed from source `main`"),
        "{}",
        run.stderr
    );

    // The source a named module is updated from being down does stop its upgrade, and
    // `upgradeall` fails naming it.
    root.ok(&["source", "add", "--replace", "main", &down]);
    let run = good.fails(&root, &["upgrade", "--online", "core"]);
    assert!(run.stderr.contains("source `main`: "), "{}", run.stderr);
    let run = good.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr
            .contains("nothing was upgraded; these channels could not be checked")
            && run.stderr.contains("source `main`: "),
        "{}",
        run.stderr
    );
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

/// Phonebook 1.0.0 with `channels` (XML) added to its module.xml, written into `dir`.
pub(crate) fn phonebook_with(channels: &str, dir: &Path) -> PathBuf {
    repackage(
        &package_at("phonebook", "1.0.0"),
        |xml| xml.replace("</module>", &format!("{channels}</module>")),
        &dir.join("phonebook-1.0.0.tgz"),
    )
}

/// Whether `source`'s report says it could not be checked because of `reason`.
pub(crate) fn failed_with(reports: &serde_json::Value, source: &str, reason: &str) -> bool {
    report(reports, source)["error"]
        .as_str()
        .is_some_and(|e| e.contains(reason))
}

pub(crate) fn report<'a>(reports: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    reports
        .as_array()
        .and_then(|r| r.iter().find(|r| r["source"] == source))
        .unwrap_or(&serde_json::Value::Null)
}

#[test]
fn a_module_updateurl_is_followed_and_its_md5_is_verified() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let updateurl = format!("<updateurl>{}/freepbx/phonebook.json</updateurl>", repo.url);
    let v1 = phonebook_with(&updateurl, dir.path());
    root.ok(&["install", arg(&package("core")), arg(&v1)]);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["name"], "phonebook/updateurl", "{sources}");
    assert_eq!(sources[0]["kind"], "freepbx");
    assert_eq!(sources[0]["declared_by"], "phonebook");

    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    assert_eq!(
        (&offer["version"], &offer["status"]),
        (&"2.0.0".into(), &"upgrade".into()),
        "{reports}"
    );

    // FreePBX publishes only an md5sum: modhost checks it, unlike FreePBX, and every
    // other checksum the document gives.
    let json_file = repo.public().join("freepbx/phonebook.json");
    let original = std::fs::read_to_string(&json_file).unwrap_or_default();
    let original: serde_json::Value = serde_json::from_str(&original).unwrap_or_default();
    // Writes the document with `fields` set (null: removed); its text.
    let publish = |fields: &[(&str, serde_json::Value)]| {
        let mut doc = original.clone();
        if let Some(doc) = doc.as_object_mut() {
            for (name, value) in fields {
                match value {
                    serde_json::Value::Null => doc.remove(*name),
                    value => doc.insert((*name).to_owned(), value.clone()),
                };
            }
        }
        let text = doc.to_string();
        assert!(std::fs::write(&json_file, &text).is_ok());
        text
    };
    let null = serde_json::Value::Null;
    // The configuration below changes and comes back to this.
    root.configure("");
    let before = root.fingerprint();
    for (fields, refusal) in [
        (
            vec![
                ("sha256", null.clone()),
                ("sha1sum", null.clone()),
                ("md5sum", "0123456789abcdef0123456789abcdef".into()),
            ],
            "MD5 ",
        ),
        (
            vec![("sha256", null.clone()), ("sha1sum", "0".repeat(40).into())],
            "SHA-1 ",
        ),
        (
            vec![
                ("sha256", null.clone()),
                ("sha1sum", null.clone()),
                ("md5sum", null.clone()),
            ],
            "gives no checksum for its package, so it cannot be verified and is never downloaded",
        ),
    ] {
        publish(&fields);
        let run = repo.fails(&root, &["upgradeall", "--online"]);
        // Refused at the download, or, with no checksum at all, before it.
        let discarded =
            run.stderr.contains("the package was discarded") || !run.stderr.contains("Downloading");
        assert!(
            run.stderr.contains(refusal) && discarded && !run.stderr.contains("Verified"),
            "{refusal}: {}",
            run.stderr
        );
        assert_eq!(root.fingerprint(), before);
    }

    // A SHA-1 alone is accepted, with a warning on the offer.
    publish(&[("sha256", null.clone()), ("md5sum", null.clone())]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    assert!(
        offer["warnings"][0]
            .as_str()
            .is_some_and(|w| w
                .starts_with("`phonebook` 2.0.0: only a SHA-1 checksum vouches for this package")),
        "{reports}"
    );

    // A release for a newer host than this one is reported, not offered.
    publish(&[("supported", serde_json::json!({ "version": "99.0" }))]);
    root.configure("[platform]\nversion = \"16.0\"\n");
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "phonebook/updateurl")["offers"][0];
    let why = "`phonebook` 2.0.0 supports the host application from 99.0; this one is 16.0";
    assert!(
        offer["status"] == "not-applicable"
            && offer["warnings"][0]
                .as_str()
                .is_some_and(|w| w.starts_with(why)),
        "{reports}"
    );
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(run.stderr.contains(why), "{}", run.stderr);
    assert_eq!(
        repo.ok(&root, &["upgradeall", "--online"]).stdout,
        "nothing to do\n"
    );
    root.configure("");
    assert_eq!(root.fingerprint(), before);

    // MD5 alone: a signed source must give sha256, which its signature then covers...
    let md5_only = publish(&[("sha256", null.clone()), ("sha1sum", null.clone())]);
    let key = std::fs::read_to_string(repo.dir.path().join("signing.key")).unwrap_or_default();
    let key = modhost_repo::SecretKey::parse(&key).unwrap_or_else(|e| panic!("{e}"));
    let signature = repo.public().join("freepbx/phonebook.json.minisig");
    let claims = modhost_update::Claims {
        file: Some("freepbx/phonebook.json".into()),
        ..Default::default()
    };
    assert!(std::fs::write(&signature, key.sign(md5_only.as_bytes(), &claims)).is_ok());
    let url = format!("{}/freepbx/phonebook.json", repo.url);
    root.ok(&[
        "source",
        "add",
        "pbx",
        &url,
        "--kind",
        "freepbx",
        "--public-key",
        &repo.public_key,
    ]);
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "pbx",
            "the source is signed, but its document gives no sha256 for `phonebook` 2.0.0"
        ),
        "{reports}"
    );
    root.ok(&["source", "remove", "pbx"]);

    // ...while an unsigned one is taken on its MD5, with a warning in every output.
    let warning = "only an MD5 checksum vouches for this package; ask its publisher for \
                   sha256 or a signature";
    let text = repo.ok(&root, &["check-online"]).stdout;
    assert!(
        text.contains(&format!(
            "phonebook/updateurl: phonebook 2.0.0 (installed 1.0.0): upgrade\n  warning: \
             `phonebook` 2.0.0: {warning}\n"
        )),
        "{text}"
    );
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/updateurl")["offers"][0]["warnings"][0],
        format!("`phonebook` 2.0.0: {warning}"),
        "{reports}"
    );
    // A script finds it in the change's record.
    let changes = repo.ok(&root, &["upgradeall", "--online", "--json"]).json();
    assert_eq!(
        (&changes[0]["action"], &changes[0]["warnings"]),
        (
            &serde_json::json!("upgraded"),
            &serde_json::json!([warning])
        ),
        "{changes}"
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
}

#[test]
fn joomla_servers_are_chosen_by_priority_platform_and_stability_and_take_download_keys() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let beta = repackage(
        &package_at("phonebook", "2.0.0"),
        |xml| xml.replace("<version>2.0.0</version>", "<version>3.0.0beta1</version>"),
        &dir.path().join("phonebook-3.0.0beta1.tgz"),
    );
    let repo = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), beta],
        Some(PRO_GROUP),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let servers = format!(
        "<updateservers>\
           <server type=\"extension\" priority=\"2\" name=\"Mirror\">https://127.0.0.1:{closed}/pb.xml</server>\
           <server type=\"extension\" priority=\"1\" name=\"Main\">{}/joomla/phonebook.xml</server>\
         </updateservers>",
        repo.url
    );
    let v1 = phonebook_with(&servers, dir.path());
    root.ok(&["install", arg(&package("core")), arg(&v1)]);
    let names: Vec<_> = root
        .ok(&["source", "list", "--json"])
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["phonebook/2", "phonebook/1"], "priority order");

    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        report(&reports, "phonebook/1")["error"].is_string(),
        "{reports}"
    );
    let offers = &report(&reports, "phonebook/2")["offers"];
    assert_eq!(
        offers[0]["version"], "2.0.0",
        "stable only by default: {reports}"
    );

    root.configure("[updates]\nstability = \"beta\"\n");
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/2")["offers"][0]["version"],
        "3.0.0beta1"
    );
    root.configure("[platform]\nname = \"otherpbx\"\n");
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert_eq!(
        report(&reports, "phonebook/2")["offers"],
        serde_json::json!([])
    );
    root.configure("");

    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr
            .contains("the server refused: a licence key for the `pro` package group is required"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    let key = root
        .ok(&[
            "repo",
            "licence-key",
            "--groups",
            arg(&repo.out().join("private/groups.toml")),
            "pro",
            "a@example.org",
        ])
        .stdout;
    root.ok(&[
        "source",
        "key",
        "phonebook/2",
        &format!("email=a%40example.org&key={}", key.trim()),
    ]);
    let run = repo.ok(&root, &["upgradeall", "--online"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("phonebook/1") && !run.stderr.contains(key.trim()),
        "{}",
        run.stderr
    );
}

#[test]
fn a_joomla_server_answering_an_entity_bomb_affects_only_its_module() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let servers = format!(
        "<updateservers><server type=\"extension\" name=\"Main\">{}/joomla/phonebook.xml</server></updateservers>",
        repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&servers, dir.path())),
    ]);
    signed_source(&repo, &root);
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE updates [<!ENTITY a \"aaaaaaaaaa\">\
                <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\
                <updates><update><name>&c;</name></update></updates>";
    assert!(std::fs::write(repo.public().join("joomla/phonebook.xml"), bomb).is_ok());
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(
            &reports,
            "phonebook/1",
            "a DOCTYPE is not allowed in an update document"
        ),
        "{reports}"
    );
    assert!(report(&reports, "main")["error"].is_null(), "{reports}");
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn a2_sources_and_local_directories_are_sources_too() {
    let root = root();
    let repo = Repo::phonebook(&root, "1.0.0");
    // A relative directory, as an administrator types it from inside the repository's parent.
    let added = Root::output(
        root.command(&[
            "source",
            "add",
            "local",
            "out/public",
            "--public-key",
            &repo.public_key,
        ])
        .current_dir(repo.dir.path()),
    );
    assert!(added.success, "{}", added.stderr);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["url"], arg(&repo.public()), "{sources}");
    repo.ok(&root, &["install", "--online", "core"]);
    assert_eq!(version(&root, "core"), "16.0.40");
    root.ok(&["source", "remove", "--force", "local"]);

    repo.add_a2_source(&root, "pb", "phonebook");
    let payload = repo.public().join("a2/phonebook/1.0.0.tgz");
    let original = std::fs::read(&payload).unwrap_or_default();
    let mut tampered = original.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 1;
    }
    assert!(std::fs::write(&payload, &tampered).is_ok());
    let before = root.fingerprint();
    let run = repo.fails(&root, &["install", "--online", "phonebook"]);
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    assert_eq!(root.fingerprint(), before);
    assert!(std::fs::write(&payload, &original).is_ok());
    repo.ok(&root, &["install", "--online", "phonebook"]);
    assert_eq!(version(&root, "phonebook"), "1.0.0");

    let url = format!("{}/packages/core-16.0.40.tgz", repo.url);
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let refused = repo.fails(&root, &["download", &url, "--out", arg(out.path())]);
    assert!(refused.stderr.contains("--sha256"), "{}", refused.stderr);
    let wrong = repo.fails(
        &root,
        &[
            "download",
            &url,
            "--sha256",
            &"0".repeat(64),
            "--out",
            arg(out.path()),
        ],
    );
    assert!(wrong.stderr.contains("does not match"), "{}", wrong.stderr);
    let index = std::fs::read_to_string(repo.public().join("index.json")).unwrap_or_default();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap_or_default();
    let sha = index["modules"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    repo.ok(
        &root,
        &["download", &url, "--sha256", &sha, "--out", arg(out.path())],
    );
    assert!(out.path().join("core-16.0.40.tgz").is_file());
}

#[test]
fn a_silent_server_is_given_up_on_and_the_others_are_checked() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core")], None);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent.local_addr().map(|a| a.port()).unwrap_or(1);
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    // Long enough for the working server to answer on a loaded 2-core machine.
    root.configure("[updates]\ntimeout_secs = 4\n");
    root.ok(&["source", "add", "main", &repo.url]);
    root.ok(&[
        "source",
        "add",
        "silent",
        &format!("https://127.0.0.1:{port}"),
    ]);
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    assert!(
        failed_with(&reports, "silent", "timeout") || failed_with(&reports, "silent", "timed out"),
        "{reports}"
    );
    assert_eq!(
        report(&reports, "main")["offers"][0]["rawname"],
        "core",
        "{reports}"
    );
}

#[test]
fn a_module_from_one_source_is_never_replaced_from_another() {
    let root = root();
    // Installed from `b`; `a` sorts first, so taking the first channel that offers the
    // module would take `a`'s.
    let b = Repo::phonebook(&root, "1.0.0");
    let a = Repo::serve_as(&root, &[package_at("phonebook", "2.0.0")], None, Some(&b));
    root.ok(&["source", "add", "b", &b.url, "--public-key", &b.public_key]);
    b.ok(&root, &["install", "--online", "core", "phonebook"]);
    root.ok(&["source", "add", "a", &a.url, "--public-key", &a.public_key]);

    let reports = a.ok(&root, &["check-online", "--json"]).json();
    let offer = &report(&reports, "a")["offers"][0];
    assert_eq!(
        (&offer["version"], &offer["status"]),
        (&"2.0.0".into(), &"other-source".into()),
        "{reports}"
    );
    assert_eq!(
        a.ok(&root, &["upgradeall", "--online"]).stdout,
        "nothing to do\n"
    );
    assert_eq!(
        a.ok(&root, &["upgrade", "--online", "phonebook"]).stdout,
        "nothing to do\n",
        "its own source has nothing newer; a's 2.0.0 is not a candidate"
    );
    let before = root.fingerprint();
    let run = a.ok(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("`phonebook` 1.0.0 is already installed"),
        "its own source offers only the installed version:\n{}",
        run.stderr
    );
    b.publish(&root, &[package("core")], None);
    let run = a.fails(&root, &["install", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(
            "`phonebook` is installed from source `b`; source `a` offers 2.0.0, \
             but a module is never replaced by one from another source"
        ),
        "{}",
        run.stderr
    );
    let run = a.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr.contains(
            "no upgrade of `phonebook` is offered by the channels it is updated from; \
             source `a` offers 2.0.0, but a module is never replaced by one from another source"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
    assert_eq!(version(&root, "phonebook"), "1.0.0");
}

#[test]
fn a_module_can_pin_its_publishers_key_for_its_own_channels() {
    let root = root();
    let repo = Repo::phonebook(&root, "2.0.0");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let channels = format!(
        "<updateurl publickey=\"{key}\">{url}/freepbx/phonebook.json</updateurl>\
         <updateservers><server type=\"extension\" publickey=\"{key}\">{url}/joomla/phonebook.xml</server></updateservers>",
        key = repo.public_key,
        url = repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&channels, dir.path())),
    ]);
    let reports = repo.ok(&root, &["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert_eq!(
            report(&reports, channel)["offers"][0]["status"],
            "upgrade",
            "{reports}"
        );
    }

    // A document changed after signing (here: a mirror serving a doctored copy) is refused.
    for doc in ["freepbx/phonebook.json", "joomla/phonebook.xml"] {
        let path = repo.public().join(doc);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(std::fs::write(&path, text.replace("2.0.0", "2.0.1")).is_ok());
    }
    let before = root.fingerprint();
    let reports = repo.fails(&root, &["check-online", "--json"]).json();
    for channel in ["phonebook/updateurl", "phonebook/1"] {
        assert!(
            failed_with(&reports, channel, "was changed after it was signed"),
            "{reports}"
        );
    }
    let run = repo.fails(&root, &["upgradeall", "--online"]);
    assert!(
        run.stderr.contains("nothing was upgraded")
            && run.stderr.contains(&format!(
                "source `phonebook/1`: `{}/joomla/phonebook.xml` was changed after it was signed",
                repo.url
            )),
        "a module none of whose channels can be trusted is reported: {run:?}"
    );
    assert_eq!(root.fingerprint(), before);
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
fn install_online_brings_the_modules_a_module_requires_from_the_sources() {
    let root = root();
    let repo = Repo::serve(&root, &[package("core"), package("voicemail")], None);
    signed_source(&repo, &root);
    let run = repo.ok(&root, &["install", "--online", "voicemail"]);
    assert!(
        run.stderr
            .contains("Adding core from main: voicemail requires it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("installed core 16.0.40") && run.stdout.contains("installed voicemail"),
        "dependencies first, in one change: {}",
        run.stdout
    );
    let sources = root.ok(&["info", "--json", "core"]).json()["source"].clone();
    assert_eq!(sources, "main", "and it is updated from that source");

    let other = crate::root();
    let only_voicemail = Repo::serve(&other, &[package("voicemail")], None);
    signed_source(&only_voicemail, &other);
    let before = other.fingerprint();
    let run = only_voicemail.fails(&other, &["install", "--online", "voicemail"]);
    assert!(
        run.stderr
            .contains("requires module `core ge 16.0`: not installed"),
        "a module no source offers is named: {}",
        run.stderr
    );
    assert_eq!(other.fingerprint(), before);
}

/// A copy of `package` whose module.xml says `version`, written into `dir`.
fn at_version(package: &Path, version: &str, dir: &Path) -> PathBuf {
    let rawname = package
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('-').next())
        .unwrap_or_default()
        .to_owned();
    repackage(
        package,
        |xml| {
            let start = xml.find("<version>").unwrap_or_default();
            let end = xml.find("</version>").unwrap_or_default();
            format!("{}<version>{version}{}", &xml[..start], &xml[end..])
        },
        &dir.join(format!("{rawname}-{version}.tgz")),
    )
}

#[test]
fn joomla_the_highest_version_across_servers_wins_and_a_tie_goes_to_priority() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = Repo::phonebook(&root, "2.0.0");
    // The second server lists only 2.0.0, from a package of its own that is missing: a
    // download from it fails, naming it.
    let feed = repo.public().join("joomla/phonebook.xml");
    let only_v2 = std::fs::read_to_string(&feed)
        .unwrap_or_default()
        .replace("phonebook-2.0.0.tgz", "mirror-2.0.0.tgz");
    assert!(only_v2.contains("mirror-2.0.0.tgz"), "{only_v2}");
    let mirror = repo.public().join("joomla/mirror.xml");
    assert!(std::fs::write(&mirror, &only_v2).is_ok());
    // Listed first with the lower priority: priority decides, not the order of the list.
    let servers = format!(
        "<updateservers>\
           <server type=\"extension\" priority=\"2\">{url}/joomla/phonebook.xml</server>\
           <server type=\"extension\" priority=\"1\">{url}/joomla/mirror.xml</server>\
         </updateservers>",
        url = repo.url
    );
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&servers, dir.path())),
    ]);
    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains(" Downloading phonebook 2.0.0 from phonebook/2\n")
            && run
                .stderr
                .contains("mirror-2.0.0.tgz`: the server refused: no such file (error 404)"),
        "a tie goes to the server of priority 1: {}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);

    let v3 = at_version(&package_at("phonebook", "2.0.0"), "3.0.0", dir.path());
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), v3],
        None,
    );
    assert!(std::fs::write(&mirror, &only_v2).is_ok());
    let run = repo.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 3.0.0")
            && run
                .stderr
                .contains(" Downloading phonebook 3.0.0 from phonebook/1\n"),
        "the highest version wins whatever its server's priority: {run:?}"
    );
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
fn a_download_key_stored_for_one_server_never_goes_to_another() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // B gates phonebook 2.0.0; the key below is valid there, so only its absence can
    // make B refuse.
    let b = Repo::serve(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0")],
        Some(PRO_GROUP),
    );
    let key = root
        .ok(&[
            "repo",
            "licence-key",
            "--groups",
            arg(&b.out().join("private/groups.toml")),
            "pro",
            "a@example.org",
        ])
        .stdout;
    let query = format!("email=a%40example.org&key={}", key.trim());
    let server = |url: &str| {
        format!("<updateservers><server type=\"extension\">{url}</server></updateservers>")
    };
    // A: where the key was stored for; nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let a = format!("https://127.0.0.1:{closed}/pb.xml");
    let from_a = dir.path().join("a");
    assert!(std::fs::create_dir_all(&from_a).is_ok());
    root.ok(&[
        "install",
        arg(&package("core")),
        arg(&phonebook_with(&server(&a), &from_a)),
    ]);
    store_key(&root, "phonebook/1", &query);
    root.ok(&["uninstall", "phonebook"]);

    // Another phonebook, whose first server is B: same channel name, another server.
    let b_feed = format!("{}/joomla/phonebook.xml", b.url);
    root.ok(&[
        "install",
        arg(&phonebook_with(&server(&b_feed), dir.path())),
    ]);
    let sources = root.ok(&["source", "list", "--json"]).json();
    assert_eq!(sources[0]["has_key"], false, "{sources}");
    let before = root.fingerprint();
    let run = b.fails(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stderr
            .contains("a licence key for the `pro` package group is required")
            && run.stderr.contains(&format!(
                "channel `phonebook/1`: its download key was stored for `{a}`, not `{b_feed}`, \
                 so it is not sent"
            )),
        "B never received the key: {}",
        run.stderr
    );
    never_shows(key.trim(), &[&run]);
    assert_eq!(root.fingerprint(), before);

    // Stored for B, the same key is B's to receive.
    store_key(&root, "phonebook/1", &query);
    let run = b.ok(&root, &["upgrade", "--online", "phonebook"]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0"),
        "{run:?}"
    );
}

#[test]
fn upgradeall_applies_what_verifies_while_an_explicit_upgrade_is_all_or_nothing() {
    let root = root();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = Repo::serve(
        &root,
        &[
            package("core"),
            package_at("phonebook", "1.0.0"),
            package("voicemail"),
        ],
        None,
    );
    // Two sources on one server: phonebook's and voicemail's a2 channels.
    repo.add_a2_source(&root, "pb", "phonebook");
    repo.add_a2_source(&root, "vm", "voicemail");
    root.ok(&["install", arg(&package("core"))]);
    repo.ok(&root, &["install", "--online", "phonebook", "voicemail"]);

    let voicemail = at_version(&package("voicemail"), "16.0.13", dir.path());
    repo.publish(
        &root,
        &[package("core"), package_at("phonebook", "2.0.0"), voicemail],
        None,
    );
    let payload = repo.public().join("a2/voicemail/16.0.13.tgz");
    let mut tampered = std::fs::read(&payload).unwrap_or_default();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 1;
    }
    assert!(std::fs::write(&payload, &tampered).is_ok());

    let before = root.fingerprint();
    let run = repo.fails(&root, &["upgrade", "--online", "phonebook", "voicemail"]);
    assert!(
        run.stderr.contains("a2/voicemail/16.0.13.tgz`: SHA-256 "),
        "{}",
        run.stderr
    );
    assert_eq!(
        root.fingerprint(),
        before,
        "nothing of the named set was applied"
    );

    let run = repo.fails(&root, &["--json", "upgradeall", "--online"]);
    let report = run.json();
    assert_eq!(
        report["changes"],
        serde_json::json!([{
            "rawname": "phonebook", "action": "upgraded", "from": "1.0.0", "to": "2.0.0"
        }]),
        "{report}"
    );
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    assert!(
        failures.len() == 1
            && failures[0].as_str().is_some_and(|f| {
                f.starts_with("source `vm`: `voicemail` 16.0.13 was left out: ")
                    && f.contains("SHA-256 ")
            }),
        "{report}"
    );
    assert_eq!(version(&root, "phonebook"), "2.0.0");
    assert_eq!(version(&root, "voicemail"), "16.0.12");
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
    assert!(run.stderr.contains("this is a public key"), "{run:?}");
    assert!(!out.exists(), "nothing written");

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
}
