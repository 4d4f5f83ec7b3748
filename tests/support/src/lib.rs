//! Support for modhost's end-to-end tests: real packages of the example modules (built by
//! this crate's build script) and temporary roots driven through the real `modhost` binary.

pub mod costly;
pub mod hostile;
pub mod log;
pub mod tls;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Field `column` of the built module `rawname` (at `version`, if given; else the only
/// one) in the build script's index.
fn indexed(rawname: &str, version: Option<&str>, column: usize) -> PathBuf {
    let dir = Path::new(env!("MODHOST_TEST_PACKAGES"));
    let index = std::fs::read_to_string(dir.join("index.tsv")).unwrap_or_default();
    let matching: Vec<Vec<&str>> = index
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|fields| {
            fields.first() == Some(&rawname) && version.is_none_or(|v| fields.get(1) == Some(&v))
        })
        .collect();
    match matching.as_slice() {
        [fields] => fields.get(column).map(PathBuf::from).unwrap_or_default(),
        [] => panic!(
            "no built module `{rawname}` {version:?} in {}",
            dir.display()
        ),
        _ => panic!("several versions of `{rawname}` are built: name one"),
    }
}

/// The package of module `rawname`, of which one version is built.
pub fn package(rawname: &str) -> PathBuf {
    indexed(rawname, None, 2)
}

/// The package of module `rawname` at `version`.
pub fn package_at(rawname: &str, version: &str) -> PathBuf {
    indexed(rawname, Some(version), 2)
}

/// The component of module `rawname`, of which one version is built.
pub fn component(rawname: &str) -> PathBuf {
    indexed(rawname, None, 3)
}

/// The directory holding every built package.
pub fn packages_dir() -> PathBuf {
    PathBuf::from(env!("MODHOST_TEST_PACKAGES"))
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

    /// A new root holding a copy of `template`'s root (no process may be using it).
    pub fn copy_of(template: &Root) -> Self {
        let root = Root::new(template.bin.to_str().unwrap_or_default());
        copy_dir(&template.path(), &root.path());
        root
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

    /// Runs the binary with `args` under `umask` (such as `000` or `077`), through `sh`,
    /// and fails the test unless it succeeds: what modhost creates must not depend on the
    /// caller's umask.
    pub fn ok_under_umask(&self, umask: &str, args: &[&str]) -> Run {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(&self.bin)
            .arg("--root")
            .arg(self.path())
            .args(args);
        let run = Root::output(&mut command);
        assert!(run.success, "{}", run.stderr);
        run
    }

    /// Runs the binary with `args`, through `sh`, with no file it writes allowed past
    /// `max_file_kib` KiB (`ulimit -f`): a write past it fails (SIGXFSZ kills the process),
    /// so a run that succeeds or fails cleanly wrote no more than that to any one file.
    pub fn run_with_file_cap(&self, max_file_kib: u64, args: &[&str]) -> Run {
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                &format!("ulimit -f {max_file_kib}; exec \"$0\" \"$@\""),
            ])
            .arg(&self.bin)
            .arg("--root")
            .arg(self.path())
            .args(args)
            .env_remove("MODHOST_ROOT")
            .env_remove("MODHOST_LOG");
        Root::output(&mut command)
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

    /// Writes the root's `modhost.toml` (creating the root first if needed).
    pub fn configure(&self, toml: &str) {
        let written = std::fs::create_dir_all(self.path())
            .and_then(|()| std::fs::write(self.path().join("modhost.toml"), toml));
        assert!(written.is_ok(), "{written:?}");
    }

    /// What a refused change must leave exactly as it was (and SQLite's `integrity_check`
    /// must pass): every file and directory under
    /// `modules/`, `data/` and `staging/` with its mode and a hash of its content; the
    /// files at the top of the root (but the lock and the state database's own files)
    /// likewise; every table of the state database, row by row — records, backups, key-value
    /// stores, grants, sources and the modules' own tables, with the schema; and what
    /// `list`, `info`, `kv` and `rows` show. Compiled components (`cache/`) may come and
    /// go, and the database file's bytes may move while its content stays.
    pub fn fingerprint(&self) -> String {
        // A change creates the root; reading commands do not, so one is made first.
        self.ok(&["recover"]);
        let list = self.ok(&["list", "--json"]).json();
        let mut print = list.to_string();
        for sub in ["modules", "data", "staging"] {
            print += &format!("\n{sub}/\n{}", self.contents(sub));
        }
        print += &self.top_files();
        for module in list.as_array().into_iter().flatten() {
            let rawname = module["rawname"].as_str().unwrap_or_default();
            let info = self.ok(&["info", "--json", rawname]).json();
            print += &format!("\n{}\n{}", info, self.ok(&["kv", "--json", rawname]).stdout);
            for table in info["tables"].as_array().into_iter().flatten() {
                print += &self
                    .ok(&[
                        "rows",
                        "--json",
                        rawname,
                        table.as_str().unwrap_or_default(),
                    ])
                    .stdout;
            }
        }
        print += &self.state_dump();
        print
    }

    /// Each file and directory under `sub` (relative to the root), one a line: its path,
    /// mode, and for a file its length and a hash of its content.
    pub fn contents(&self, sub: &str) -> String {
        let base = self.path().join(sub);
        let mut lines = String::new();
        for relative in self.tree(sub) {
            let path = base.join(&relative);
            lines += &format!("{}  {}\n", relative.display(), describe(&path));
        }
        lines
    }

    /// The files at the top of the root, but the lock and the state database's files, as
    /// [`Root::contents`] describes them.
    fn top_files(&self) -> String {
        const SKIPPED: [&str; 5] = [
            "lock",
            "modhost.db",
            "modhost.db-wal",
            "modhost.db-shm",
            "modhost.db-journal",
        ];
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !SKIPPED.contains(&name.as_str()))
            .collect();
        names.sort();
        names
            .iter()
            .map(|name| format!("/{name}  {}\n", describe(&self.path().join(name))))
            .collect()
    }

    /// Every table of the state database, its schema and its rows (sorted), read with
    /// SQLite directly: what the CLI does not show (backups, grants, sources) counts too.
    pub fn state_dump(&self) -> String {
        let path = self.path().join("modhost.db");
        if !path.exists() {
            return "no state database\n".to_owned();
        }
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = rusqlite::Connection::open_with_flags(&path, flags)
            .unwrap_or_else(|e| panic!("open {path:?}: {e}"));
        // Whatever happened to the root, SQLite must find its database whole.
        let integrity = db
            .busy_timeout(std::time::Duration::from_secs(10))
            .and_then(|()| {
                db.query_row("PRAGMA integrity_check", [], |row| row.get::<_, String>(0))
            });
        assert_eq!(
            integrity.as_deref().map_err(ToString::to_string),
            Ok("ok"),
            "integrity_check of {path:?}"
        );
        dump(&db).unwrap_or_else(|e| panic!("dump {path:?}: {e}"))
    }
    /// Runs `sql` on the state database directly: rows a module could have written.
    pub fn write_state(&self, sql: &str) {
        let path = self.path().join("modhost.db");
        let written = rusqlite::Connection::open(&path).and_then(|db| {
            db.busy_timeout(std::time::Duration::from_secs(10))?;
            db.execute_batch(sql)
        });
        if let Err(e) = written {
            panic!("{sql} in {path:?}: {e}");
        }
    }

    /// The names of the directories directly under `sub` (relative to the root).
    pub fn dirs(&self, sub: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.path().join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Where installed module `rawname` keeps what `kind` names: `"modules"` (its
    /// version's files) or `"data"` (its `/data`), as its record says.
    pub fn installed_dir(&self, rawname: &str, kind: &str) -> PathBuf {
        let info = self.ok(&["info", "--json", rawname]).json();
        let field = if kind == "data" {
            "data_dir"
        } else {
            "module_dir"
        };
        self.path()
            .join(kind)
            .join(rawname)
            .join(info[field].as_str().unwrap_or_default())
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

/// A file's or directory's mode, and a file's length and a hash of its content.
fn describe(path: &Path) -> String {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return "vanished".to_owned();
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() { "dir" } else { "other" };
        return format!("{kind} {mode:o}");
    }
    let content = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    // The default hasher's keys are fixed: the same content hashes alike in every run.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    format!("file {mode:o} {} {:016x}", content.len(), hasher.finish())
}

/// The schema and the sorted rows of every table in `db`.
fn dump(db: &rusqlite::Connection) -> rusqlite::Result<String> {
    let mut out = String::new();
    let schema: Vec<(String, String, String)> = db
        .prepare(
            "SELECT type, name, ifnull(sql, '') FROM sqlite_schema \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (kind, name, sql) in &schema {
        out += &format!("{kind} {name}: {sql}\n");
        if kind != "table" {
            continue;
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let mut statement = db.prepare(&format!("SELECT * FROM {quoted}"))?;
        let columns = statement.column_count();
        let mut rows: Vec<String> = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|values| values.join(" | "))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.sort();
        for row in rows {
            out += &format!("  {row}\n");
        }
    }
    Ok(out)
}

/// How many compiled components the root at `root` keeps in its cache: a component
/// refused before compiling leaves the count as it was.
pub fn compiled_artifacts(root: &Path) -> usize {
    std::fs::read_dir(root.join("cache"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
                .count()
        })
        .unwrap_or(0)
}

/// Runs the `minisign` tool (which `scripts/toolchain.sh` installs) in `dir`, with no
/// input, so that it never waits for a password.
pub fn minisign(args: &[&str], dir: &Path) -> std::process::Output {
    match Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!("minisign (installed by scripts/toolchain.sh): {e}"),
    }
}

/// A package path as the `&str` argument the binary takes.
pub fn arg(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {path:?}"))
}

fn copy_dir(from: &Path, to: &Path) {
    assert!(std::fs::create_dir_all(to).is_ok(), "create {to:?}");
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            assert!(
                std::fs::copy(entry.path(), &target).is_ok(),
                "copy {:?}",
                entry.path()
            );
        }
    }
}

/// A copy of `package` written to `out` with its module.xml passed through `edit`: how
/// tests give a module update channels that point at their own servers, or another
/// version.
pub fn repackage(package: &Path, edit: impl Fn(&str) -> String, out: &Path) -> PathBuf {
    let mut files = files_of(package);
    for (name, data) in &mut files {
        if name.ends_with("/module.xml") {
            *data = edit(&String::from_utf8_lossy(data)).into_bytes();
        }
    }
    hostile::write_package(out, &as_entries(&files));
    out.to_owned()
}

/// [`repackage`], the module's directory in the package named `rawname` (which `edit`
/// gives its module.xml too).
pub fn repackage_as(
    package: &Path,
    rawname: &str,
    edit: impl Fn(&str) -> String,
    out: &Path,
) -> PathBuf {
    let edited = repackage(package, edit, out);
    let mut files = files_of(&edited);
    for (name, _) in &mut files {
        if let Some((_, rest)) = name.split_once('/') {
            *name = format!("{rawname}/{rest}");
        }
    }
    hostile::write_package(out, &as_entries(&files));
    out.to_owned()
}

/// The same module as `package` written to `out` as a zip: with its files in their
/// top-level directory, or with the directory left out so module.xml is at the root.
pub fn zipped(package: &Path, at_root: bool, out: &Path) -> PathBuf {
    let mut files = files_of(package);
    if at_root {
        for (name, _) in &mut files {
            if let Some((_, rest)) = name.split_once('/') {
                *name = rest.to_owned();
            }
        }
    }
    hostile::write_zip(out, &as_entries(&files));
    out.to_owned()
}

/// The regular files of the gzip tar `package`, by name.
fn files_of(package: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let file = std::fs::File::open(package).unwrap_or_else(|e| panic!("{package:?}: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = Vec::new();
    for entry in archive
        .entries()
        .unwrap_or_else(|e| panic!("{package:?}: {e}"))
    {
        let mut entry = entry.unwrap_or_else(|e| panic!("{package:?}: {e}"));
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        assert!(entry.read_to_end(&mut data).is_ok());
        if entry.header().entry_type().is_file() {
            files.push((name, data));
        }
    }
    files
}

fn as_entries(files: &[(String, Vec<u8>)]) -> Vec<hostile::Entry<'_>> {
    files
        .iter()
        .map(|(name, data)| (name.as_str(), hostile::FILE, data.as_slice()))
        .collect()
}
