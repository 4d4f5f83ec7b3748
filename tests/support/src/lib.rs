//! Support for modhost's end-to-end tests: real packages of the example modules (built by
//! this crate's build script) and temporary roots driven through the real `modhost` binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Field `column` of example module `rawname`'s line in the build script's index.
fn indexed(rawname: &str, column: usize) -> PathBuf {
    let dir = Path::new(env!("MODHOST_TEST_PACKAGES"));
    let index = std::fs::read_to_string(dir.join("index.tsv")).unwrap_or_default();
    index
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&rawname))
        .and_then(|fields| fields.get(column).map(PathBuf::from))
        .unwrap_or_else(|| panic!("no example module `{rawname}` in {}", dir.display()))
}

/// The package of example module `rawname`, built for this test run.
pub fn package(rawname: &str) -> PathBuf {
    indexed(rawname, 2)
}

/// The component of example module `rawname`, as built for this test run.
pub fn component(rawname: &str) -> PathBuf {
    indexed(rawname, 3)
}

/// The source directory of example module `rawname` (its crate and module.xml).
pub fn example_dir(rawname: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../example-modules")
        .join(rawname)
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A fresh modhost root in a temporary directory, and the binary to drive it with.
pub struct Root {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Root {
    /// A new root (not yet created on disk: modhost creates it on first use).
    pub fn new(bin: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        Root {
            dir,
            bin: PathBuf::from(bin),
        }
    }

    /// The root directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A command for the binary with `--root` set and a quiet, predictable environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--root")
            .arg(self.path())
            .args(args)
            .env_remove("MODHOST_ROOT")
            .env_remove("MODHOST_LOG");
        command
    }

    /// Runs `command` and captures what it printed.
    pub fn output(command: &mut Command) -> Run {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        Root::output(&mut self.command(args))
    }

    /// Runs the binary with `args` and fails the test unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            run.success,
            "`modhost {}` failed:\n{}",
            args.join(" "),
            run.stderr
        );
        run
    }

    /// Runs the binary with `args` and fails the test if it succeeds.
    pub fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            !run.success,
            "`modhost {}` succeeded but should fail:\n{}",
            args.join(" "),
            run.stdout
        );
        run
    }

    /// The files and directories under `sub` (relative to the root), for before/after
    /// comparisons.
    pub fn tree(&self, sub: &str) -> BTreeSet<PathBuf> {
        let base = self.path().join(sub);
        let mut found = BTreeSet::new();
        let mut pending = vec![base.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path.clone());
                }
                if let Ok(relative) = path.strip_prefix(&base) {
                    found.insert(relative.to_owned());
                }
            }
        }
        found
    }
}

/// A package path as the `&str` argument the binary takes.
pub fn arg(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {path:?}"))
}
