//! Update sources over real HTTPS on loopback: `repo build` + `repo serve` + `check-online`
//! + verified, signed, licence-gated downloads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use modhost_test_support::tls::{TlsFiles, generate};
use modhost_test_support::{Root, arg, package, package_at, repackage};

mod channels;
mod keys;
mod publishing;
mod sources;
mod trust;

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
    pub(crate) fn add_a2_source(&self, root: &Root, name: &str, rawname: &str) {
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

    /// The licence key of `email` for the `pro` group, as `repo licence-key` gives it from
    /// the groups this repository was last built with.
    pub(crate) fn licence_key(&self, root: &Root, email: &str) -> String {
        root.ok(&[
            "repo",
            "licence-key",
            "--groups",
            arg(&self.out().join("private/groups.toml")),
            "pro",
            email,
        ])
        .stdout
        .trim()
        .to_owned()
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
