//! A module that plants links out of its `/data` in every lifecycle call (the `linker`
//! guest: to a FIFO beside the root, to the directory holding it, to `/dev/zero`, far up
//! the tree): the host flushes, copies and removes its data directories without following
//! them or opening what they lead to, so every change finishes, nothing outside the root
//! changes, other modules keep working and the root stays sound.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use modhost_test_support::{Root, Run, arg, package, repackage};

use crate::root;

/// Each lifecycle call's deadline.
const LIMITS: &str = "[limits]\ncall_timeout_ms = 2000\n";

/// How long one command may run before the test calls it hung and kills it: the call's
/// deadline plus a grace that covers compiling the components on a loaded machine. A host
/// that opened the FIFO would wait for a writer for ever.
const HANG: Duration = Duration::from_secs(60);

/// Where the guest's `CALL-fifo` links lead, relative to the root's parent.
const FIFO: &str = "outside/fifo";

/// The links each lifecycle call `CALL` plants, by name (`CALL-NAME`), with their text.
const PLANTED: [(&str, &str); 5] = [
    ("fifo", "../../../../outside/fifo"),
    ("outside", "../../../../outside"),
    (
        "zero",
        "../../../../../../../../../../../../../../../../../../../../../../../../dev/zero",
    ),
    (
        "escape",
        "../../../../../../../../../../../../../../../../../../../../../../../../tmp/modhost-linker-escape",
    ),
    ("dir/fifo", "../../../../../outside/fifo"),
];

/// Runs the binary with `args`, killing it and failing the test if it has not exited
/// within [`HANG`]: a host blocked on a FIFO fails the test rather than hanging it.
fn run_within(root: &Root, args: &[&str]) -> Run {
    let mut command = root.command(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < HANG => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`modhost {}` was still running after {HANG:?}: blocked on what a link \
                     leads to?",
                    args.join(" ")
                );
            }
            Err(e) => panic!("waiting for `modhost {}`: {e}", args.join(" ")),
        }
    };
    let text = |reader: JoinHandle<String>| reader.join().unwrap_or_default();
    Run {
        success: status.success(),
        stdout: text(stdout),
        stderr: text(stderr),
    }
}

/// [`run_within`], failing the test unless the command succeeds.
fn ok_within(root: &Root, args: &[&str]) -> Run {
    let run = run_within(root, args);
    assert!(
        run.success,
        "`modhost {}` failed:\n{}",
        args.join(" "),
        run.stderr
    );
    run
}

/// A FIFO nobody writes to, so that opening it to read blocks, and a thread that notices
/// any reader: its own open to write waits until someone opens the FIFO to read, and then
/// it notes that and closes, so a host that opened it is caught, not left hanging.
struct Fifo {
    path: PathBuf,
    opened: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(
        made.as_ref().is_ok_and(|s| s.success()),
        "mkfifo {path:?}: {made:?}"
    );
}

impl Fifo {
    /// Makes the FIFO at `path` and starts watching it.
    fn new(path: &Path) -> Self {
        mkfifo(path);
        let opened = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (path, opened, done) = (path.to_owned(), opened.clone(), done.clone());
            std::thread::spawn(move || {
                loop {
                    let writer = std::fs::OpenOptions::new().write(true).open(&path);
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    if writer.is_ok() {
                        opened.store(true, Ordering::SeqCst);
                    } else {
                        return;
                    }
                }
            })
        };
        Fifo {
            path: path.to_owned(),
            opened,
            done,
            watcher: Some(watcher),
        }
    }

    /// Whether anyone opened the FIFO so far.
    fn opened(&self) -> bool {
        self.opened.load(Ordering::SeqCst)
    }

    /// Stops the watcher, and says whether anyone opened the FIFO: the test's own open to
    /// read lets the watcher's pending open finish (and would wait for ever were the
    /// watcher gone, so it is made only while the watcher runs).
    fn finish(mut self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let reader = (!watcher.is_finished()).then(|| std::fs::File::open(&self.path));
            let _ = watcher.join();
            drop(reader);
        }
        self.opened()
    }
}

/// Everything under `dir` but `skip`, never following a link: each path with its kind,
/// and a file's content or a link's text.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path == skip {
                continue;
            }
            let kind = entry
                .file_type()
                .unwrap_or_else(|e| panic!("{path:?}: {e}"));
            let what = if kind.is_dir() {
                pending.push(path.clone());
                "dir".to_owned()
            } else if kind.is_symlink() {
                format!("link {:?}", std::fs::read_link(&path).ok())
            } else if kind.is_fifo() {
                "fifo".to_owned()
            } else {
                format!("file {:?}", std::fs::read(&path).ok())
            };
            found.insert(path, what);
        }
    }
    found
}

/// The names of the links a module's lifecycle calls planted in `data`, with their
/// text; links only.
fn links_in(data: &Path) -> BTreeMap<String, String> {
    let mut links = BTreeMap::new();
    let mut pending = vec![data.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let kind = entry
                .file_type()
                .unwrap_or_else(|e| panic!("{path:?}: {e}"));
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let name = path.strip_prefix(data).unwrap_or(&path);
                let text = std::fs::read_link(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                links.insert(
                    name.to_string_lossy().into_owned(),
                    text.to_string_lossy().into_owned(),
                );
            }
        }
    }
    links
}

/// The links the guest's `calls` plant, as [`links_in`] lists them.
fn planted_by(calls: &[&str]) -> BTreeMap<String, String> {
    calls
        .iter()
        .flat_map(|call| {
            PLANTED
                .iter()
                .map(move |(name, text)| (format!("{call}-{name}"), (*text).to_owned()))
        })
        .collect()
}

/// What must hold after every change: the FIFO was never opened, nothing beside the
/// root changed, nothing escaped to `/tmp`, the root passes `modhost recover` with
/// nothing to repair, and the other module still runs a writing handler.
fn sound(root: &Root, fifo: &Fifo, outside: &BTreeMap<PathBuf, String>, step: &str) {
    assert!(
        !fifo.opened(),
        "{step}: the host opened the FIFO a link led to"
    );
    assert_eq!(
        &snapshot(&parent(root), &root.path()),
        outside,
        "{step}: what is beside the root changed"
    );
    assert!(
        std::fs::symlink_metadata("/tmp/modhost-linker-escape").is_err(),
        "{step}: a link's target outside the root was created"
    );
    let recovered = ok_within(root, &["recover", "--json"]).json();
    assert_eq!(recovered["removed"], serde_json::json!([]), "{step}");
    assert_eq!(recovered["broken"], serde_json::json!([]), "{step}");
    // SQLite finds the database whole (the dump checks its integrity).
    root.state_dump();
    ok_within(root, &["hook", "remember", "--payload", step]);
    assert_eq!(
        root.ok(&["kv", "--json", "hostile"]).json(),
        serde_json::json!({"remembered": step}),
        "{step}: the other module's writing handler ran"
    );
}

fn parent(root: &Root) -> PathBuf {
    root.path()
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| panic!("the root has a parent"))
}

/// Puts beside the module's links, straight into its data directory, what WASI cannot
/// make: a FIFO, and a link to the outside FIFO by absolute path. A change copies the
/// directory (the FIFO is left out, the link kept) and later removes it. (No watcher on
/// this FIFO: removing the directory unlinks it, and a watcher waiting on an unlinked
/// FIFO could never be released; a host that opened it would hang and be killed.)
fn plant_from_the_host(data: &Path, fifo: &Path) {
    let _ = std::fs::remove_file(data.join("host-fifo"));
    mkfifo(&data.join("host-fifo"));
    let _ = std::fs::remove_file(data.join("host-link"));
    symlink(fifo, data.join("host-link")).unwrap_or_else(|e| panic!("symlink: {e}"));
}

#[test]
fn links_a_module_plants_are_never_followed() {
    let root = root();
    root.configure(LIMITS);
    let beside = parent(&root);
    std::fs::create_dir(beside.join("outside")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(beside.join("outside/secret"), "beside the root")
        .unwrap_or_else(|e| panic!("{e}"));
    let fifo_path = beside.join(FIFO);
    let fifo = Fifo::new(&fifo_path);
    ok_within(&root, &["install", arg(&package("hostile"))]);
    let upgrade_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let upgrade = repackage(
        &package("linker"),
        |xml| xml.replace("<version>0.1.0</version>", "<version>0.2.0</version>"),
        &upgrade_dir.path().join("linker-0.2.0.tgz"),
    );
    let outside = snapshot(&beside, &root.path());

    ok_within(&root, &["install", arg(&package("linker"))]);
    sound(&root, &fifo, &outside, "install");
    let data = root.installed_dir("linker", "data");
    assert_eq!(links_in(&data), planted_by(&["install"]), "install");

    let fifo_text = fifo_path.to_string_lossy().into_owned();
    let mut done = vec!["install"];
    for (step, args) in [
        ("disable", vec!["disable", "linker"]),
        ("enable", vec!["enable", "linker"]),
        ("upgrade", vec!["upgrade", arg(&upgrade)]),
    ] {
        plant_from_the_host(&root.installed_dir("linker", "data"), &fifo_path);
        ok_within(&root, &args);
        sound(&root, &fifo, &outside, step);
        done.push(step);
        let data = root.installed_dir("linker", "data");
        let mut expected = planted_by(&done);
        expected.insert("host-link".to_owned(), fifo_text.clone());
        assert_eq!(
            links_in(&data),
            expected,
            "{step}: links are copied as links"
        );
        assert!(
            std::fs::symlink_metadata(data.join("host-fifo")).is_err(),
            "{step}: a FIFO is not copied"
        );
    }
    let look = ok_within(&root, &["hook", "linker_look", "--json"]).json();
    let output = look[0]["output"].as_str().unwrap_or_default();
    assert!(
        output.ends_with("install-fifo: refused"),
        "the sandbox refuses the links that lead out: {look}"
    );

    // The upgrade kept the version before as a backup, with a FIFO the host put there:
    // uninstalling removes both data directories without opening it.
    plant_from_the_host(&root.installed_dir("linker", "data"), &fifo_path);
    ok_within(&root, &["uninstall", "linker"]);
    assert!(
        root.dirs("data/linker").is_empty(),
        "uninstall removes the data directories"
    );
    sound(&root, &fifo, &outside, "uninstall");
    assert!(!fifo.finish(), "the host opened the FIFO a link led to");
}

#[test]
fn a_data_directory_replaced_by_a_link_is_refused_naming_the_module() {
    let root = root();
    root.configure(LIMITS);
    ok_within(&root, &["install", arg(&package("linker"))]);
    let data = root.installed_dir("linker", "data");
    let beside = parent(&root);
    std::fs::create_dir(beside.join("elsewhere")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(beside.join("elsewhere/secret"), "not the module's")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    symlink(beside.join("elsewhere"), &data).unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot(&beside, &root.path());

    let run = run_within(&root, &["disable", "linker"]);
    assert!(!run.success, "copying through the link: {}", run.stdout);
    assert!(run.stderr.contains("linker"), "{}", run.stderr);
    assert_eq!(snapshot(&beside, &root.path()), before);
    let info = root.ok(&["info", "--json", "linker"]).json();
    assert_eq!(info["status"], "enabled", "the change rolled back: {info}");
}

/// Packs `guest`'s component as module `rawname` serving `handler`, asking for `grant`
/// read-write, and installs it granted.
fn install_granted(root: &Root, guest: &str, rawname: &str, handler: &str, grant: &Path) {
    let dir = parent(root).join(format!("{rawname}-src"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let xml = format!(
        "<module><rawname>{rawname}</rawname><name>{rawname}</name><version>1.0</version>\
         <methods><{handler}>{handler}</{handler}></methods>\
         <capabilities><directory path=\"{}\" access=\"read-write\"/></capabilities></module>",
        grant.display()
    );
    std::fs::write(dir.join("module.xml"), xml).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        modhost_test_support::component(guest),
        dir.join("module.wasm"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let package = dir.join(format!("{rawname}-1.0.tgz"));
    root.ok(&["pack", arg(&dir), "-o", arg(&package)]);
    ok_within(root, &["install", "--grant", arg(&package)]);
}

#[test]
fn a_grant_inside_another_modules_grant_is_never_reached_through_a_link_it_plants() {
    let root = root();
    root.configure(LIMITS);
    let beside = parent(&root);
    let outer = beside.join("outer");
    let victim = beside.join("victim");
    for dir in [outer.join("sub"), victim.clone()] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    }
    // `swapper` may write `outer`; `spooler` is granted `outer/sub`, inside it.
    install_granted(&root, "linker", "swapper", "swap", &outer);
    install_granted(&root, "filler", "spooler", "fill_data", &outer.join("sub"));
    let sub = outer.join("sub");
    let payload = format!("{}|../victim", sub.display());
    let swapped = ok_within(&root, &["hook", "swap", "--payload", &payload, "--json"]);
    assert!(
        swapped.stdout.contains("-> ../victim"),
        "{}",
        swapped.stdout
    );
    assert!(std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink()));

    // The spooler's sandbox lacks the grant now rather than following the link: its write
    // fails, nothing lands beside the root, and the warning names the module and the link.
    let run = run_within(
        &root,
        &[
            "hook",
            "fill_data",
            "--payload",
            &sub.display().to_string(),
            "--json",
        ],
    );
    assert!(
        run.stderr.contains("spooler") && run.stderr.contains("is now reached through"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("\"ok\": false"), "{}", run.stdout);
    assert!(std::fs::read_dir(&victim).is_ok_and(|mut d| d.next().is_none()));

    // A grant whose path runs through a link is refused when asked for, naming the link.
    let linked = beside.join("linked");
    symlink(&outer, &linked).unwrap_or_else(|e| panic!("{e}"));
    let dir = beside.join("through-src");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let xml = format!(
        "<module><rawname>through</rawname><name>Through</name><version>1.0</version>\
         <capabilities><directory path=\"{}\" access=\"read-only\"/></capabilities></module>",
        linked.join("sub.old").display()
    );
    std::fs::write(dir.join("module.xml"), xml).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        modhost_test_support::component("filler"),
        dir.join("module.wasm"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = root.fails(&["install", "--grant", arg(&dir)]);
    assert!(
        run.stderr
            .contains(&format!("reached through the link `{}`", linked.display()))
            && run.stderr.contains("ask for its real path"),
        "{}",
        run.stderr
    );
}
