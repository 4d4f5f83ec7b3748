//! Installing, listing and uninstalling the example modules.

use modhost_test_support::{Root, arg, package, package_at, repackage};
use serde_json::{Value, json};

use crate::root;

fn listed(root: &modhost_test_support::Root) -> Vec<(String, String, String)> {
    let list = root.ok(&["list", "--json"]).json();
    let Some(modules) = list.as_array() else {
        panic!("list --json is not an array: {list}")
    };
    modules
        .iter()
        .map(|m| {
            let field = |name: &str| m[name].as_str().unwrap_or_default().to_owned();
            (field("rawname"), field("version"), field("status"))
        })
        .collect()
}

#[test]
fn install_both_then_list_shows_them_enabled_and_install_ran() {
    let root = root();
    let (core, voicemail) = (package("core"), package("voicemail"));
    let run = root.ok(&["install", arg(&core), arg(&voicemail)]);
    assert!(
        run.stdout.contains("installed core 16.0.40"),
        "{}",
        run.stdout
    );

    assert_eq!(
        listed(&root),
        vec![
            ("core".into(), "16.0.40".into(), "enabled".into()),
            ("voicemail".into(), "16.0.12".into(), "enabled".into()),
        ]
    );

    // install() ran inside the sandbox: its key-value writes, its file in /data, its log.
    let kv = root.ok(&["kv", "core", "--json"]).json();
    assert_eq!(
        kv,
        json!({"extension/100": "Reception", "extension/101": "Sales"})
    );
    let data_dir = root.installed_dir("core", "data");
    let readme = std::fs::read_to_string(data_dir.join("README"));
    assert_eq!(
        readme.ok().as_deref(),
        Some("This directory belongs to the core module.\n")
    );
    assert!(
        run.stderr.contains("core installed extensions=2"),
        "{}",
        run.stderr
    );
    let kv = root.ok(&["kv", "voicemail", "--json"]).json();
    assert_eq!(kv["mailbox/100"], Value::from("Reception"));
}

#[test]
fn list_table_shows_each_module_on_a_line() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let run = root.ok(&["list"]);
    assert_eq!(
        run.stdout,
        "RAWNAME  VERSION  STATUS   NAME\ncore     16.0.40  enabled  Core\n"
    );
}

#[test]
fn uninstall_runs_uninstall_and_removes_files_and_state() {
    let root = root();
    root.ok(&["install", arg(&package("core")), arg(&package("voicemail"))]);
    let digest = |rawname: &str| {
        let info = root.ok(&["info", "--json", rawname]).json();
        info["component_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (core, voicemail) = (digest("core"), digest("voicemail"));
    let compiled = |digest: &str| {
        std::fs::read_dir(root.path().join("cache"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(digest))
            .count()
    };
    assert_eq!((compiled(&core), compiled(&voicemail)), (1, 1));

    let run = root.ok(&["uninstall", "voicemail"]);
    // Its compiled code is kept within the cache's bound, for installing it again (an
    // author's loop) without compiling; with no room kept, it goes with the module.
    assert_eq!((compiled(&core), compiled(&voicemail)), (1, 1));
    assert!(
        run.stderr.contains("voicemail uninstalled mailboxes=2"),
        "uninstall() did not run:\n{}",
        run.stderr
    );
    assert_eq!(
        listed(&root),
        vec![("core".into(), "16.0.40".into(), "enabled".into())]
    );
    assert!(!root.path().join("modules/voicemail").exists());
    assert!(!root.path().join("data/voicemail").exists());
    let gone = root.fails(&["kv", "voicemail"]);
    assert!(
        gone.stderr.contains("module `voicemail` is not installed"),
        "{}",
        gone.stderr
    );
    // The other module is untouched.
    assert_eq!(
        root.ok(&["kv", "core", "--json"]).json()["extension/100"],
        "Reception"
    );
    let again = root.ok(&["install", arg(&package("voicemail"))]);
    assert!(!again.stderr.contains("Compiled"), "{}", again.stderr);
    root.configure("[cache]\nkeep_mb = 0\n");
    root.ok(&["uninstall", "voicemail"]);
    assert_eq!(
        (compiled(&core), compiled(&voicemail)),
        (1, 0),
        "with no room kept, compiled code does not outlive its module"
    );
}

#[test]
fn voicemail_without_core_is_refused_and_nothing_is_installed() {
    let root = root();
    // A root that exists already: a refused install leaves it as it was.
    root.ok(&["recover"]);
    let run = root.fails(&["install", arg(&package("voicemail"))]);
    assert!(
        run.stderr
            .contains("`voicemail` 16.0.12 requires module `core ge 16.0`: not installed"),
        "{}",
        run.stderr
    );
    assert!(listed(&root).is_empty());
    assert!(
        root.tree("modules").is_empty(),
        "{:?}",
        root.tree("modules")
    );
    assert!(root.tree("data").is_empty(), "{:?}", root.tree("data"));
    assert!(
        root.tree("staging").is_empty(),
        "{:?}",
        root.tree("staging")
    );
}

#[test]
fn a_batch_installs_dependencies_first_whatever_the_order_given() {
    let root = root();
    let run = root.ok(&[
        "install",
        "--json",
        arg(&package("voicemail")),
        arg(&package("core")),
    ]);
    let changes: Vec<(Value, Value, Value)> = run
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["rawname"].clone(), c["action"].clone(), c["to"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("core"), json!("installed"), json!("16.0.40")),
            (json!("voicemail"), json!("installed"), json!("16.0.12"))
        ]
    );
}

#[test]
fn uninstall_is_refused_while_a_dependent_is_installed() {
    let root = root();
    root.ok(&["install", arg(&package("core")), arg(&package("voicemail"))]);
    let run = root.fails(&["uninstall", "core"]);
    assert!(
        run.stderr
            .contains("module `core` is required by voicemail: disable or uninstall it first"),
        "{}",
        run.stderr
    );
    assert_eq!(listed(&root).len(), 2);
    assert_eq!(
        root.ok(&["kv", "core", "--json"]).json()["extension/101"],
        "Sales"
    );
}

#[test]
fn installing_an_installed_module_again_is_a_no_op_that_says_so_unless_reinstalling() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let before = root.tree("");
    // As apt leaves a package at its newest version: exit 0, nothing changed.
    let run = root.ok(&["install", arg(&package("core"))]);
    assert!(
        run.stderr.contains("`core` 16.0.40 is already installed"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "nothing to do\n");
    assert_eq!(root.tree(""), before);
    // Scripts read it in the JSON too, beside what did change.
    let run = root.ok(&[
        "install",
        "--json",
        arg(&package("core")),
        arg(&package("voicemail")),
    ]);
    let changes = run.json();
    let actions: Vec<(&str, &str)> = changes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["rawname"].as_str()?, c["action"].as_str()?)))
        .collect();
    assert_eq!(
        actions,
        [("voicemail", "installed"), ("core", "unchanged")],
        "{}",
        run.stdout
    );
    let run = root.ok(&["install", "--reinstall", arg(&package("core")), "--json"]);
    assert_eq!(run.json()[0]["action"], "reinstalled", "{}", run.stdout);

    // A reinstall runs the module's upgrade() from its own version: one whose upgrade()
    // fails is refused, and the version stays as it was.
    root.ok(&["install", arg(&package_at("phonebook", "1.0.0"))]);
    let mode = |text: &str| {
        let written = std::fs::write(root.installed_dir("phonebook", "data").join("mode"), text);
        assert!(written.is_ok(), "{written:?}");
    };
    mode("ok");
    root.ok(&["upgrade", arg(&package_at("phonebook", "3.0.0"))]);
    mode("error");
    let before = root.fingerprint();
    let bad = package_at("phonebook", "3.0.0");
    let run = root.fails(&["install", "--reinstall", arg(&bad)]);
    assert!(
        run.stderr
            .contains("upgrade(3.0.0) failed: upgrade failed on purpose"),
        "{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn a_second_process_maps_the_compiled_component_instead_of_recompiling() {
    let root = root();
    let first = root.ok(&["install", arg(&package("core"))]);
    let took: Option<f64> = first.stderr.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix("Compiled core in ")?
            .strip_suffix(" s")?
            .parse()
            .ok()
    });
    let Some(took) = took else {
        panic!("says how long compiling took: {}", first.stderr)
    };
    // Where no spinner is drawn, a line says what a wait of over a second is for; a
    // shorter one goes unannounced (the boundary itself is a race, left untested).
    let announced = first.stderr.contains("Loading core");
    if took < 0.9 {
        assert!(!announced, "{}", first.stderr);
    } else if took >= 1.1 {
        assert!(announced, "{}", first.stderr);
    }
    let artifacts: Vec<_> = root.tree("cache").into_iter().collect();
    assert_eq!(artifacts.len(), 1, "one compiled artifact: {artifacts:?}");
    let artifact = root.path().join("cache").join(&artifacts[0]);
    let modified = || std::fs::metadata(&artifact).and_then(|m| m.modified()).ok();
    let before = modified();

    let mut second = root.command(&["hook", "get_config", "--json"]);
    second.env("MODHOST_LOG", "modhost_runtime=debug,modhost::module=info");
    let run = modhost_test_support::Root::output(&mut second);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("loaded precompiled component"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("compiling component"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.json()[0]["rawname"],
        "core",
        "the component really ran:\n{}",
        run.stdout
    );
    assert_eq!(modified(), before, "the artifact was not rewritten");
}

#[test]
fn a_file_that_is_not_a_package_is_refused_by_name() {
    let root = root();
    root.ok(&["recover"]);
    let bogus = root.path().with_file_name("bogus.tgz");
    assert!(std::fs::write(&bogus, b"not a gzip").is_ok());
    let run = root.fails(&["install", "--json", arg(&bogus)]);
    assert!(run.stderr.contains("bogus.tgz"), "{}", run.stderr);
    assert!(
        run.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("bogus.tgz"))
    );
    assert!(listed(&root).is_empty());
}

/// Makes `dir` a module directory of example module `rawname`: its module.xml beside
/// its component, as an author's build leaves them.
fn module_dir(rawname: &str, dir: &std::path::Path) {
    let copied = std::fs::create_dir_all(dir)
        .and_then(|()| {
            std::fs::copy(
                modhost_test_support::example_dir(rawname).join("module.xml"),
                dir.join("module.xml"),
            )
        })
        .and_then(|_| {
            std::fs::copy(
                modhost_test_support::component(rawname),
                dir.join("module.wasm"),
            )
        });
    assert!(copied.is_ok(), "{copied:?}");
}

#[test]
fn a_module_directory_whose_module_xml_is_a_link_is_refused_naming_it() {
    let root = root();
    let dir = root.path().with_file_name("linked");
    module_dir("core", &dir);
    let moved = std::fs::rename(dir.join("module.xml"), dir.join("real.xml"))
        .and_then(|()| std::os::unix::fs::symlink("real.xml", dir.join("module.xml")));
    assert!(moved.is_ok(), "{moved:?}");
    let before = root.fingerprint();
    for args in [&["install"][..], &["manifest"], &["pack"]] {
        let mut args = args.to_vec();
        args.push(arg(&dir));
        let run = root.fails(&args);
        assert!(
            run.stderr.contains(&format!(
                "`{}` is a symbolic link, and modhost never follows links in a module directory",
                dir.join("module.xml").display()
            )) && !run.stderr.contains("staging"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(root.fingerprint(), before);
}

#[test]
fn a_module_xml_that_is_no_file_is_named_by_scan_and_install_not_passed_over() {
    let root = root();
    let parent = root.path().with_file_name("odd");
    let (fifo, dir, link) = (parent.join("a"), parent.join("b"), parent.join("c"));
    for module in [&fifo, &dir, &link] {
        module_dir("core", module);
        assert!(std::fs::remove_file(module.join("module.xml")).is_ok());
    }
    let made = std::process::Command::new("mkfifo")
        .arg(fifo.join("module.xml"))
        .status()
        .map(|status| status.success())
        .and_then(|_| std::fs::create_dir(dir.join("module.xml")))
        .and_then(|()| std::os::unix::fs::symlink("elsewhere.xml", link.join("module.xml")));
    assert!(made.is_ok(), "{made:?}");
    let scanned = root.fails(&["scan", "--json", arg(&parent)]).json();
    let errors: Vec<(&str, &str)> = scanned
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["package"].as_str()?, e["error"].as_str()?)))
        .collect();
    let expected = [
        (&fifo, "is a FIFO, not a module.xml"),
        (&dir, "is a directory, not a module.xml"),
        (&link, "is a symbolic link, and modhost never follows links"),
    ]
    .map(|(module, what)| {
        (
            arg(module),
            format!("`{}` {what}", module.join("module.xml").display()),
        )
    });
    assert_eq!(errors.len(), expected.len(), "{scanned}");
    for ((package, error), (module, said)) in errors.iter().zip(&expected) {
        // Reading changes nothing, and says nothing of changes.
        assert!(
            package == module && error.starts_with(said.as_str()),
            "{said}: {scanned}"
        );
    }
    let run = root.fails(&["install", arg(&fifo)]);
    assert!(
        run.stderr.contains("is a FIFO, not a module.xml"),
        "{}",
        run.stderr
    );
}

#[test]
fn pack_refuses_what_no_host_runs_and_writes_nothing() {
    let root = root();
    let work = root.path().with_file_name("author");
    module_dir("core", &work);
    let out = work.join("core.tgz");
    // A core WebAssembly module, not a component; then bytes that are no WebAssembly.
    for (bytes, why) in [
        (
            &b"\0asm\x01\0\0\0"[..],
            "nothing was packed: no host can run this component: ",
        ),
        (&b"#!/bin/sh\n"[..], "is not a WebAssembly file"),
    ] {
        assert!(std::fs::write(work.join("module.wasm"), bytes).is_ok());
        let run = root.fails(&["pack", arg(&work), "-o", arg(&out)]);
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(!out.exists());
    }
}

#[test]
fn pack_makes_an_installable_package_from_a_module_directory() {
    let root = root();
    let work = root.path().with_file_name("author");
    module_dir("core", &work);
    let out = work.join("core.tgz");
    let run = root.ok(&["pack", arg(&work), "-o", arg(&out), "--json"]);
    assert_eq!(run.json()["rawname"], "core");
    // Anything else in the directory stays out, and the text output says so.
    assert!(std::fs::write(work.join("notes.txt"), "mine").is_ok());
    let again = work.join("again.tgz");
    let run = root.ok(&["pack", arg(&work), "-o", arg(&again)]);
    assert!(
        run.stdout
            .contains("(module.xml and module.wasm only: the rest of the directory is left out)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("older than"), "{}", run.stdout);
    // A source edited after the component was built: packed as asked, and said, as an
    // install of the directory says it too.
    let built = std::fs::metadata(work.join("module.wasm")).and_then(|m| m.modified());
    let edited = built.and_then(|built| {
        std::fs::write(work.join("app.py"), "# edited\n")?;
        std::fs::File::options()
            .write(true)
            .open(work.join("app.py"))?
            .set_modified(built + std::time::Duration::from_secs(60))
    });
    assert!(edited.is_ok(), "{edited:?}");
    let stale = work.join("stale.tgz");
    let run = root.ok(&["pack", arg(&work), "-o", arg(&stale), "--json"]);
    assert!(
        run.json()["stale"]
            .as_str()
            .is_some_and(|s| s.starts_with("`module.wasm` is older than `app.py`")),
        "{}",
        run.stdout
    );
    let other = crate::root();
    let run = other.ok(&["install", arg(&work)]);
    assert!(
        run.stderr
            .contains("`module.wasm` is older than `app.py`: it holds the code as last built"),
        "{}",
        run.stderr
    );
    // Given its module.xml rather than its directory, it says which to give.
    let run = root.fails(&["pack", arg(&work.join("module.xml"))]);
    assert!(
        run.stderr.contains(&format!(
            "`{}` is a file: give the module's directory, the one holding module.xml and its \
             component (`{}`)",
            work.join("module.xml").display(),
            work.display()
        )),
        "{}",
        run.stderr
    );
    root.ok(&["install", arg(&out)]);
    assert_eq!(
        listed(&root),
        vec![("core".into(), "16.0.40".into(), "enabled".into())]
    );
    // A directory as --out gets the package under its usual name.
    let packages = work.join("packages");
    assert!(std::fs::create_dir(&packages).is_ok());
    root.ok(&["pack", arg(&work), "--out", arg(&packages)]);
    assert!(packages.join("core-16.0.40.tgz").is_file());
    // One that ends in `/` is a directory, made if it is not there yet.
    let fresh = work.join("fresh").join("pkgs");
    root.ok(&["pack", arg(&work), "-o", &format!("{}/", fresh.display())]);
    assert!(fresh.join("core-16.0.40.tgz").is_file());
    // What install would warn about in module.xml is said when packing.
    let xml = std::fs::read_to_string(work.join("module.xml")).unwrap_or_default();
    let typo = xml.replace("</module>", "<descripton>typo</descripton></module>");
    assert!(std::fs::write(work.join("module.xml"), typo).is_ok());
    let run = root.ok(&["pack", arg(&work), "-o", arg(&again)]);
    assert!(
        run.stdout.contains("  warning: module.xml:")
            && run.stdout.contains("unknown element <descripton>"),
        "{}",
        run.stdout
    );
    let warned = root.ok(&["pack", arg(&work), "-o", arg(&again), "--json"]);
    assert_eq!(warned.json()["warnings"].as_array().map(Vec::len), Some(1));
    assert!(std::fs::write(work.join("module.xml"), xml).is_ok());
    // Packing before building says so.
    assert!(std::fs::remove_file(work.join("module.wasm")).is_ok());
    let run = root.fails(&["pack", arg(&work), "-o", arg(&again)]);
    assert!(
        run.stderr
            .contains("module.wasm` does not exist: build the module first"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_module_rebuilt_without_raising_its_version_is_said_to_need_one() {
    let root = root();
    let work = root.path().with_file_name("rebuilt");
    module_dir("core", &work);
    let first = work.join("first.tgz");
    root.ok(&["pack", arg(&work), "-o", arg(&first)]);
    root.ok(&["install", arg(&first)]);
    // The same package again: nothing to say but that it is installed.
    let run = root.ok(&["upgrade", arg(&first)]);
    assert!(
        run.stderr.contains("`core` 16.0.40 is already installed"),
        "{}",
        run.stderr
    );
    // module.xml changed (a table's new field, say), the version left as it was.
    let xml_path = work.join("module.xml");
    let xml = std::fs::read_to_string(&xml_path).unwrap_or_default();
    let changed = xml.replacen("<description>", "<description>Changed. ", 1);
    assert!(changed != xml && std::fs::write(&xml_path, &changed).is_ok());
    let edited = work.join("edited.tgz");
    root.ok(&["pack", arg(&work), "-o", arg(&edited)]);
    let run = root.ok(&["upgrade", arg(&edited)]);
    assert!(
        run.stderr.contains(
            "`core` 16.0.40 is installed, and this package of the same version holds another \
             module.xml: raise <version>"
        ),
        "{}",
        run.stderr
    );
    assert!(std::fs::write(&xml_path, &xml).is_ok());
    // Rebuilt (another component), the version left as it was.
    assert!(
        std::fs::copy(
            modhost_test_support::component("voicemail"),
            work.join("module.wasm")
        )
        .is_ok()
    );
    let rebuilt = work.join("rebuilt.tgz");
    root.ok(&["pack", arg(&work), "-o", arg(&rebuilt)]);
    let run = root.ok(&["upgrade", arg(&rebuilt)]);
    assert!(
        run.stderr.contains(
            "`core` 16.0.40 is installed, and this package of the same version holds another \
             component: raise <version> in module.xml to upgrade to it"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn scan_lists_module_directories_beside_packages_and_a_module_directory_installs() {
    let root = root();
    let modules = root.path().with_file_name("modules");
    module_dir("core", &modules.join("core"));
    assert!(std::fs::copy(package("voicemail"), modules.join("voicemail.tgz")).is_ok());
    // A plain directory is no module; one with a broken module.xml is reported (see
    // scan_reports_what_it_cannot_read_beside_what_it_can), not fatal.
    assert!(std::fs::create_dir_all(modules.join("broken")).is_ok());
    assert!(std::fs::write(modules.join("broken/module.xml"), "<module>").is_ok());
    assert!(std::fs::create_dir_all(modules.join("assets")).is_ok());

    // Loading every component takes a while on a fresh root: the scan says what it does.
    // (A root, made by adding a source and removing it: a scan with no root compiles
    // nothing.)
    let sources = root.path().with_file_name("sources");
    assert!(std::fs::create_dir_all(&sources).is_ok());
    root.ok(&["source", "add", "made", arg(&sources)]);
    root.ok(&["source", "remove", "made"]);
    let run = root.fails(&["scan", arg(&modules)]);
    assert!(
        run.stderr.contains("Compiled core") && run.stderr.contains("Compiled voicemail"),
        "{}",
        run.stderr
    );
    let scanned = root.fails(&["scan", arg(&modules), "--json"]).json();
    let unreadable: Vec<&str> = scanned
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.get("error").is_some())
        .filter_map(|e| e["package"].as_str())
        .collect();
    assert_eq!(unreadable, [arg(&modules.join("broken"))], "{scanned}");
    let found: Vec<(String, String, String, bool)> = scanned
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.get("error").is_none())
        .map(|e| {
            let exports_install = e["exports"]
                .as_array()
                .is_some_and(|x| x.iter().any(|x| x == "lifecycle.install"));
            (
                e["rawname"].as_str().unwrap_or_default().to_owned(),
                e["package"].as_str().unwrap_or_default().to_owned(),
                e["available"].as_str().unwrap_or_default().to_owned(),
                exports_install,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "core".into(),
                arg(&modules.join("core")).into(),
                "new".into(),
                true
            ),
            (
                "voicemail".into(),
                arg(&modules.join("voicemail.tgz")).into(),
                "new".into(),
                true
            ),
        ]
    );
    // What the scan lists, the package directory offers by name too.
    let offered = root.ok(&["list", "--from", arg(&modules)]).stdout;
    assert!(
        offered.contains("core") && offered.contains("voicemail"),
        "{offered}"
    );
    let info = root
        .ok(&["info", "--json", "core", "--from", arg(&modules)])
        .json();
    assert_eq!(info["version"], "16.0.40", "{info}");
    // Two directories of one module and version: which one is meant cannot be told.
    let twins = root.path().with_file_name("twins");
    module_dir("core", &twins.join("core-a"));
    module_dir("core", &twins.join("core-b"));
    let run = root.fails(&["install", "core", "--from", arg(&twins)]);
    assert!(
        run.stderr.contains("core-a") && run.stderr.contains("core-b"),
        "{}",
        run.stderr
    );
    // A directory not built yet offers nothing, and hides no package beside it.
    let unbuilt = root.path().with_file_name("unbuilt");
    module_dir("core", &unbuilt.join("core-src"));
    assert!(std::fs::remove_file(unbuilt.join("core-src/module.wasm")).is_ok());
    assert!(std::fs::copy(package("voicemail"), unbuilt.join("voicemail.tgz")).is_ok());
    assert!(std::fs::copy(package("core"), unbuilt.join("core.tgz")).is_ok());
    let info = root
        .ok(&["info", "--json", "core", "--from", arg(&unbuilt)])
        .json();
    assert!(
        info["status"]
            .as_str()
            .is_some_and(|s| s.contains("core.tgz"))
            || info["package"]
                .as_str()
                .is_some_and(|p| p.ends_with("core.tgz")),
        "{info}"
    );
    let scan = root.fails(&["scan", "--json", arg(&unbuilt)]).json();
    assert!(scan.to_string().contains("is not built yet"), "{scan}");

    // A stray file named like a module (a core dump is called `core`) does not stand in
    // for the module: a bare name is looked up in the package directory first.
    let cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert!(std::fs::write(cwd.path().join("voicemail"), "not a package").is_ok());
    let install = Root::output(
        root.command(&[
            "install",
            arg(&modules.join("core")),
            "voicemail",
            "--from",
            arg(&modules),
        ])
        .current_dir(cwd.path()),
    );
    assert!(install.success, "{}", install.stderr);
    assert_eq!(
        listed(&root),
        vec![
            ("core".into(), "16.0.40".into(), "enabled".into()),
            ("voicemail".into(), "16.0.12".into(), "enabled".into())
        ]
    );
    let refused = root.fails(&["install", arg(&modules.join("broken"))]);
    assert!(
        refused.stderr.contains("broken/module.xml"),
        "{}",
        refused.stderr
    );
}

#[test]
fn scan_reports_what_it_cannot_read_beside_what_it_can() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let dir = root.path().with_file_name("offered");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    let core41 = repackage(
        &package("core"),
        |xml| xml.replace("<version>16.0.40</version>", "<version>16.0.41</version>"),
        &dir.join("core-16.0.41.tgz"),
    );
    assert!(std::fs::copy(package("voicemail"), dir.join("voicemail.tgz")).is_ok());
    // Beside them: a file that is no archive, a package whose module.xml is invalid, a
    // zip that is not one, and a file that is no package at all (not reported).
    let garbage = dir.join("garbage.tgz");
    assert!(std::fs::write(&garbage, "not a package").is_ok());
    let invalid = repackage(
        &package("voicemail"),
        |xml| xml.replace("<version>16.0.12</version>", "<version>one</version>"),
        &dir.join("invalid.tgz"),
    );
    let not_zip = dir.join("truncated.zip");
    assert!(std::fs::write(&not_zip, "PK\x03\x04").is_ok());
    assert!(std::fs::write(dir.join("README.txt"), "packages").is_ok());

    let run = root.fails(&["scan", "--json", arg(&dir)]);
    let scanned = run.json();
    let entries = scanned.as_array().cloned().unwrap_or_default();
    let described: Vec<(&str, &str, &str)> = entries
        .iter()
        .filter_map(|e| {
            Some((
                e["rawname"].as_str()?,
                e["version"].as_str()?,
                e["available"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        described,
        [
            ("core", "16.0.41", "upgrade"),
            ("voicemail", "16.0.12", "new")
        ],
        "the good ones are described: {scanned}"
    );
    let unreadable: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.get("rawname").is_none())
        .map(|e| {
            (
                e["package"].as_str().unwrap_or_default(),
                e["error"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        unreadable.iter().map(|u| u.0).collect::<Vec<_>>(),
        [arg(&garbage), arg(&invalid), arg(&not_zip)],
        "every unreadable package, by path: {scanned}"
    );
    assert!(
        unreadable.iter().all(|(_, error)| !error.is_empty()),
        "{scanned}"
    );
    assert!(
        unreadable[1].1.contains("one"),
        "the invalid version is named: {}",
        unreadable[1].1
    );
    assert!(
        !run.stderr.contains("skipping"),
        "reported, not skipped: {}",
        run.stderr
    );

    // The text says the same, one line each.
    let text = root.fails(&["scan", arg(&dir)]).stdout;
    assert!(
        text.contains("core 16.0.41 (installed: 16.0.40, upgrade)")
            && text.contains("voicemail 16.0.12 (installed: -, new) in voicemail.tgz\n"),
        "{text}"
    );
    for (package, error) in &unreadable {
        assert!(
            text.contains(&format!("unreadable: {error}\n")) && text.matches(*package).count() == 1,
            "each path once, with its error: {text}"
        );
    }

    // What it read counts: core is marked. While something is unreadable, the mark stays
    // even once the newer package is gone (the unreadable one may be it); a scan that
    // reads everything takes it back.
    let status = |root: &Root| {
        root.ok(&["info", "--json", "core"]).json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(status(&root), "needs-upgrade");
    // `info --json` carries the notes its text shows.
    let info = root.ok(&["info", "--json", "core"]).json();
    assert_eq!(
        info["notes"],
        serde_json::json!(["its only directories are /data and those it was granted"]),
        "{info}"
    );
    assert!(std::fs::remove_file(&core41).is_ok());
    root.fails(&["scan", arg(&dir)]);
    assert_eq!(status(&root), "needs-upgrade");
    for path in [&garbage, &invalid, &not_zip] {
        assert!(std::fs::remove_file(path).is_ok());
    }
    root.ok(&["scan", arg(&dir)]);
    assert_eq!(status(&root), "enabled");
}

#[test]
fn the_root_is_the_flag_else_modhost_root_else_a_per_user_directory_created_on_first_use() {
    // `recover` is a change: it creates the root it is pointed at (reading commands do not).
    let root = root();
    let base = root.path().with_file_name("elsewhere");
    let from_env = base.join("from-env");
    let data_home = base.join("xdg");
    let bin = env!("CARGO_BIN_EXE_modhost");
    let run = |command: &mut std::process::Command| {
        let run = modhost_test_support::Root::output(command.env_remove("MODHOST_LOG"));
        assert!(run.success, "{}", run.stderr);
    };

    run(std::process::Command::new(bin)
        .args(["recover", "--json"])
        .env("MODHOST_ROOT", &from_env));
    assert!(
        from_env.join("modhost.db").is_file(),
        "MODHOST_ROOT is used and created"
    );

    run(std::process::Command::new(bin)
        .args(["recover", "--json"])
        .env_remove("MODHOST_ROOT")
        .env("HOME", &base)
        .env("XDG_DATA_HOME", &data_home));
    assert!(
        data_home.join("modhost/modhost.db").is_file(),
        "the per-user default is under XDG_DATA_HOME"
    );

    let flag = base.join("from-flag");
    run(std::process::Command::new(bin)
        .args(["--root", arg(&flag), "recover", "--json"])
        .env("MODHOST_ROOT", &from_env));
    assert!(flag.join("modhost.db").is_file(), "--root wins");
}

/// The mode of `path`, or 0 when it is missing.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777)
}

/// Checks the modes of the root at `base`'s own files, made under `umask`: what others
/// must read (the PBX reads generated configuration) readable, secrets private.
fn assert_root_modes(base: &std::path::Path, umask: &str) {
    let expected = [
        ("", 0o755),
        ("modules", 0o755),
        ("cache", 0o755),
        ("data", 0o700),
        ("staging", 0o700),
        ("lock", 0o600),
        ("modhost.db", 0o600),
        ("etc", 0o755),
        ("etc/extensions_modhost.conf", 0o644),
    ];
    for (path, want) in expected {
        assert_eq!(
            format!("{:o}", mode_of(&base.join(path))),
            format!("{want:o}"),
            "mode of `{path}` under umask {umask}"
        );
    }
}

#[test]
fn under_a_strict_umask_what_others_must_read_stays_readable() {
    let root = root();
    let strict = |args: &[&str]| root.ok_under_umask("077", args);
    strict(&["install", arg(&package("core"))]);
    strict(&["reload"]);
    let base = root.path();
    assert_root_modes(&base, "077");
    let core = root.installed_dir("core", "modules");
    for path in [
        core.clone(),
        core.join("module.xml"),
        base.join("modules/core"),
    ] {
        let want = if path.is_dir() { 0o755 } else { 0o644 };
        assert_eq!(
            format!("{:o}", mode_of(&path)),
            format!("{want:o}"),
            "mode of {path:?} under umask 077"
        );
    }
}

#[test]
fn under_umask_000_nothing_others_can_reach_is_writable_and_secrets_are_private() {
    let root = root();
    let under_lax_umask = |args: &[&str]| root.ok_under_umask("000", args);
    under_lax_umask(&["install", arg(&package("core")), arg(&package("voicemail"))]);
    under_lax_umask(&["reload"]);
    under_lax_umask(&["disable", "voicemail"]);
    under_lax_umask(&["source", "add", "vendor", "https://example.invalid/"]);

    let base = root.path();
    assert_root_modes(&base, "000");

    // Walk the tree: whatever others can reach (every directory above it lets them
    // through) must not be writable by them.
    let mut pending = vec![(base.clone(), true)];
    let mut seen = 0;
    while let Some((path, reachable)) = pending.pop() {
        let bits = mode_of(&path);
        seen += 1;
        assert!(
            !reachable || bits & 0o002 == 0,
            "`{}` is world-writable ({bits:o})",
            path.display()
        );
        if path.is_dir() && !path.is_symlink() {
            let through = reachable && bits & 0o001 != 0;
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                pending.push((entry.path(), through));
            }
        }
    }
    assert!(seen > 20, "the walk saw the whole root ({seen} entries)");
    let readme = std::fs::read_dir(base.join("data/core"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("README"))
        .find(|p| p.is_file());
    assert!(
        readme.is_some(),
        "the walk covered a file the guest created in its /data"
    );
}

#[test]
fn install_warns_about_what_it_accepts_but_could_not_check() {
    let root = root();
    let dir = root.path().with_file_name("core");
    module_dir("core", &dir);
    let xml = std::fs::read_to_string(dir.join("module.xml")).unwrap_or_default();
    let xml = xml.replacen(
        "</module>",
        "<depends><engine>asterisk ge 99</engine></depends><frobnicate/></module>",
        1,
    );
    assert!(std::fs::write(dir.join("module.xml"), xml).is_ok());
    let run = root.ok(&["install", arg(&dir)]);
    assert!(
        run.stderr
            .contains("Warning core: engine `asterisk ge 99` was not checked")
            && run.stderr.contains("[platform]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Warning core: module.xml ") && run.stderr.contains("<frobnicate>"),
        "{}",
        run.stderr
    ); // The same warnings are in the change's record, for scripts.
    root.ok(&["uninstall", "core"]);
    let changes = root.ok(&["install", "--json", arg(&dir)]).json();
    let warnings: Vec<&str> = changes[0]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings.len() == 3
            && warnings[0].starts_with("module.xml ")
            && warnings[1].starts_with("engine `asterisk ge 99` was not checked"),
        "{changes}"
    );
}

#[test]
fn an_upgrade_changes_columns_and_foreign_keys_of_existing_tables_keeping_their_rows() {
    let root = root();
    let dir = root.path().with_file_name("fk");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    let with_tables = |version: &str, on_delete: &str, kind: &str| {
        let tables = format!(
            r#"<database><table name="core_calls"><field name="id" type="integer" primaryKey="true"/>
            <field name="kind" type="{kind}" notNull="false"/></table>
            <table name="core_tags"><field name="call" type="integer"/>
            <key name="tag_call" type="foreign" foreignTable="core_calls" foreignCols="id" onDelete="{on_delete}"><column name="call"/></key>
            </table></database></module>"#
        );
        repackage(
            &package("core"),
            |xml| {
                xml.replace(
                    "<version>16.0.40</version>",
                    &format!("<version>{version}</version>"),
                )
                .replace("</module>", &tables)
            },
            &dir.join(format!("core-{version}.tgz")),
        )
    };
    root.ok(&["install", arg(&with_tables("16.0.40", "cascade", "string"))]);
    root.write_state(
        "INSERT INTO core_calls (id, kind) VALUES (1, '7'), (2, 'x');
         INSERT INTO core_tags (call) VALUES (1), (2);",
    );
    let schema = |dump: &str, table: &str| {
        dump.lines()
            .find(|l| l.starts_with(&format!("table {table}: ")))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let before = root.state_dump();
    assert!(
        schema(&before, "core_tags").contains("ON DELETE CASCADE"),
        "{before}"
    );

    // SQLite cannot alter either in place: the tables are made again, their rows kept.
    let run = root.ok(&[
        "upgrade",
        arg(&with_tables("16.0.41", "restrict", "integer")),
    ]);
    assert!(!run.stderr.contains("not applied"), "{}", run.stderr);
    let after = root.state_dump();
    assert!(
        schema(&after, "core_tags").contains("ON DELETE RESTRICT"),
        "{after}"
    );
    assert!(
        schema(&after, "core_calls").contains("\"kind\" INTEGER"),
        "{after}"
    );
    let rows = root.ok(&["rows", "core", "core_calls", "--json"]).json();
    assert_eq!(
        rows["rows"],
        serde_json::json!([[1, 7], [2, "x"]]),
        "{rows}"
    );
    let tags = root.ok(&["rows", "core", "core_tags", "--json"]).json();
    assert_eq!(tags["rows"], serde_json::json!([[1], [2]]), "{tags}");

    // The backup has the tables as they were.
    root.ok(&["rollback", "core"]);
    let back = root.state_dump();
    assert_eq!(schema(&back, "core_tags"), schema(&before, "core_tags"));
    assert_eq!(schema(&back, "core_calls"), schema(&before, "core_calls"));
}

/// A package directory holding `rawnames`' packages (phonebook at 1.0.0).
fn package_dir_of(rawnames: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for rawname in rawnames {
        let from = match *rawname {
            "phonebook" => package_at("phonebook", "1.0.0"),
            rawname => package(rawname),
        };
        let to = dir.path().join(from.file_name().unwrap_or_default());
        std::fs::copy(&from, to).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

#[test]
fn a_module_named_from_a_package_directory_brings_what_it_requires_from_there() {
    let packages = package_dir_of(&["core", "voicemail", "phonebook"]);
    let root = root();
    let run = root.ok(&["install", "--from", arg(packages.path()), "phonebook"]);
    assert!(
        run.stderr.contains("Adding core from `") && run.stderr.contains("phonebook requires it"),
        "{}",
        run.stderr
    );
    let listed = root.ok(&["list", "--json"]).json();
    let names: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["rawname"].as_str())
        .collect();
    assert_eq!(
        names,
        ["core", "phonebook"],
        "only what it requires came along"
    );

    // An upgrade changes only what is installed: a requirement nobody installed is said,
    // not brought along.
    let upgrades = package_dir_of(&["voicemail"]);
    repackage(
        &package_at("phonebook", "2.0.0"),
        |xml| xml.replace("</depends>", "<module>voicemail ge 16.0</module></depends>"),
        &upgrades.path().join("phonebook-2.0.0.tgz"),
    );
    let run = root.fails(&["upgrade", "--from", arg(upgrades.path()), "phonebook"]);
    assert!(
        run.stderr
            .contains("requires module `voicemail ge 16.0`: not installed")
            && !run.stderr.contains("Adding voicemail"),
        "{}",
        run.stderr
    );

    // Forced, dependencies are set aside: nothing comes along.
    let forced = crate::root();
    forced.ok(&[
        "install",
        "--force",
        "--from",
        arg(packages.path()),
        "voicemail",
    ]);
    let listed = forced.ok(&["list", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[test]
fn installlocal_leaves_out_what_cannot_be_met_and_installs_the_rest() {
    // callback imports the application's pbx:telephony, which the CLI's host does not
    // give; voicemail requires a module the directory does not hold.
    let packages = package_dir_of(&["core", "phonebook", "callback"]);
    repackage(
        &package("voicemail"),
        |xml| xml.replace("</depends>", "<module>nowhere ge 1.0</module></depends>"),
        &packages.path().join("voicemail-16.0.12.tgz"),
    );
    let root = root();
    let run = root.fails(&["--json", "installlocal", "--from", arg(packages.path())]);
    let error = run.json();
    let done: Vec<&str> = error["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["rawname"].as_str())
        .collect();
    assert_eq!(done, ["core", "phonebook"], "{error}");
    let left_out = |n: usize| error["left_out"][n].as_str().unwrap_or_default();
    assert!(
        left_out(0).starts_with("`callback` 1.0.0: `")
            && left_out(0)
                .contains("imports pbx:telephony/calls@1.0.0, which this host does not provide"),
        "{error}"
    );
    assert!(
        left_out(1).starts_with("`voicemail` 16.0.12 requires module `nowhere ge 1.0`: not"),
        "{error}"
    );
    assert!(
        error["error"].as_str().is_some_and(|e| e.starts_with(
            "installed `core` 16.0.40, installed `phonebook` 1.0.0; these packages were left out"
        )),
        "{error}"
    );
    assert_eq!(
        root.ok(&["list", "--json"]).json().as_array().map(Vec::len),
        Some(2)
    );
    // Run again, the one left out is still said, and nothing else changes.
    let again = root.fails(&["installlocal", "--from", arg(packages.path())]);
    assert!(
        again
            .stderr
            .contains("nothing was changed; these packages were left out"),
        "{}",
        again.stderr
    );

    // A package cut short (a copy that stopped half-way) is left out by its path, and
    // upgradeall says so too: nothing it would have brought is known.
    let bytes = std::fs::read(package_at("phonebook", "2.0.0")).unwrap_or_else(|e| panic!("{e}"));
    let cut = packages.path().join("phonebook-2.0.0.tgz");
    assert!(std::fs::write(&cut, &bytes[..bytes.len() / 2]).is_ok());
    for command in ["installlocal", "upgradeall"] {
        let run = root.fails(&["--json", command, "--from", arg(packages.path())]);
        let error = run.json();
        let named = error["left_out"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str())
            .any(|l| {
                // Named once: not again by the reason.
                l.starts_with(&format!("`{}`: ", cut.display()))
                    && l.matches(&cut.display().to_string()).count() == 1
            });
        assert!(named, "{command}: {error}");
    }
    // Asked for by name, the module is not taken from an older package beside it.
    let run = root.fails(&["upgrade", "--from", arg(packages.path()), "phonebook"]);
    let shadowed = format!(
        "`{}` cannot be read, and may hold a newer `phonebook`",
        cut.display()
    );
    assert!(run.stderr.contains(&shadowed), "{}", run.stderr);
    // So does installlocal, which leaves the module out saying why, and installs the rest.
    let fresh = crate::root();
    let newer = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (from, name) in [
        (package("core"), "core-16.0.40.tgz"),
        (package_at("phonebook", "1.0.0"), "phonebook-1.0.0.tgz"),
    ] {
        assert!(std::fs::copy(from, newer.path().join(name)).is_ok());
    }
    assert!(std::fs::write(newer.path().join("phonebook-3.0.0.tar.xz"), b"\xfd7zXZ\0").is_ok());
    let run = fresh.fails(&["--json", "installlocal", "--from", arg(newer.path())]);
    let left_out = run.json()["left_out"].to_string();
    assert!(
        left_out.contains("may hold a newer `phonebook`"),
        "{left_out}"
    );
    assert_eq!(
        listed(&fresh),
        [("core".into(), "16.0.40".into(), "enabled".into())]
    );
    // info says why asking for it by name is refused, and warns of the archive once,
    // though (nothing installed) it reads the directory for the module and again for
    // what it requires.
    let info = crate::root().ok(&["info", "--json", "--from", arg(newer.path()), "phonebook"]);
    assert!(
        info.json()["blocked"]
            .as_str()
            .is_some_and(|b| b.contains("may hold a newer `phonebook`")),
        "{}",
        info.stdout
    );
    assert_eq!(
        info.stderr.matches("skipping").count(),
        1,
        "{}",
        info.stderr
    );
    // And scan says so of the older package, rather than that it can be installed.
    let scan = root.fails(&["scan", "--json", arg(packages.path())]).json();
    let older = scan
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["rawname"] == "phonebook")
        .cloned()
        .unwrap_or_default();
    assert!(
        older["installable"] == false
            && older["problem"]
                .as_str()
                .is_some_and(|p| p.contains(&shadowed)),
        "{scan}"
    );
    // Cut short but named older than what is readable, it stands in nobody's way.
    assert!(std::fs::remove_file(&cut).is_ok());
    let older_cut = packages.path().join("phonebook-0.9.tgz");
    assert!(std::fs::write(&older_cut, &bytes[..bytes.len() / 2]).is_ok());
    let scan = root.fails(&["scan", "--json", arg(packages.path())]).json();
    assert!(!scan.to_string().contains("may hold a newer"), "{scan}");
    assert!(std::fs::remove_file(&older_cut).is_ok());
    // Two different packages of a version installed already change nothing: not left out.
    let core = std::fs::read(package("core")).unwrap_or_else(|e| panic!("{e}"));
    let mut other = core.clone();
    other.push(0);
    let rival = packages.path().join("core-copy.tgz");
    assert!(std::fs::write(&rival, other).is_ok());
    let run = root.fails(&["--json", "installlocal", "--from", arg(packages.path())]);
    let error = run.json();
    let mentions_core = error["left_out"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .any(|l| l.contains("core"));
    assert!(!mentions_core, "{error}");
    let listed = root.ok(&["list", "--json"]).json();
    let phonebook = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["rawname"] == "phonebook");
    assert_eq!(
        phonebook.map(|m| m["version"].clone()),
        Some(json!("1.0.0"))
    );
}

#[test]
fn a_module_whose_rawname_holds_a_hyphen_lives_a_whole_life() {
    // FreePBX's own `asterisk-cli` is named so.
    let root = root();
    let unpacked = root.path().with_file_name("unpacked");
    assert!(std::fs::create_dir(&unpacked).is_ok());
    let untarred = std::process::Command::new("tar")
        .arg("xzf")
        .arg(package_at("phonebook", "1.0.0"))
        .arg("-C")
        .arg(&unpacked)
        .status();
    assert!(untarred.as_ref().is_ok_and(|s| s.success()), "{untarred:?}");
    let work = unpacked.join("phonebook");
    let xml = std::fs::read_to_string(work.join("module.xml")).unwrap_or_default();
    let renamed = xml.replace(
        "<rawname>phonebook</rawname>",
        "<rawname>asterisk-cli</rawname>",
    );
    assert!(std::fs::write(work.join("module.xml"), renamed).is_ok());
    let packages = root.path().with_file_name("packages");
    root.ok(&[
        "pack",
        arg(&work),
        "--out",
        &format!("{}/", packages.display()),
    ]);
    assert!(packages.join("asterisk-cli-1.0.0.tgz").is_file());
    std::fs::copy(package("core"), packages.join("core-16.0.40.tgz"))
        .unwrap_or_else(|e| panic!("{e}"));

    root.ok(&["install", "--from", arg(&packages), "asterisk-cli"]);
    let rows = root
        .ok(&["rows", "asterisk-cli", "phonebook_entries", "--json"])
        .json();
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(2), "{rows}");
    let calls = root
        .ok(&["hook", "lookup", "--payload", "2025550100", "--json"])
        .json();
    assert_eq!(calls[0]["rawname"], "asterisk-cli", "{calls}");
    assert_eq!(calls[0]["output"], "Alice Example", "{calls}");
    root.ok(&["disable", "asterisk-cli"]);
    root.ok(&["enable", "asterisk-cli"]);
    root.ok(&["uninstall", "asterisk-cli"]);
    assert_eq!(
        listed(&root),
        vec![("core".into(), "16.0.40".into(), "enabled".into())]
    );
}

#[test]
fn scan_names_a_requirement_the_directory_holds_but_cannot_install() {
    let packages = package_dir_of(&["core", "callback"]);
    // voicemail is there, but requires a module nowhere to be found.
    repackage(
        &package("voicemail"),
        |xml| {
            xml.replace(
                "<depends>",
                "<depends>\n\t\t<module>nowhere ge 1.0</module>",
            )
        },
        &packages.path().join("voicemail-16.0.12.tgz"),
    );
    let root = root();
    let scanned = root.ok(&["scan", "--json", arg(packages.path())]).json();
    let unmet = |rawname: &str| -> Vec<String> {
        scanned
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["rawname"] == rawname)
            .map(|e| {
                e["unmet"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        unmet("callback").iter().any(|u| u.contains(
            "requires module `voicemail ge 16.0`: not installed (16.0.12 is in the package directory"
        )),
        "{scanned}"
    );
    assert!(
        unmet("voicemail")
            .iter()
            .any(|u| u.contains("requires module `nowhere ge 1.0`")),
        "{scanned}"
    );

    // An author scanning the module being written: the directory is the module.
    let work = root.path().with_file_name("author");
    module_dir("core", &work);
    let scanned = root.ok(&["scan", "--json", arg(&work)]).json();
    assert_eq!(scanned[0]["rawname"], "core", "{scanned}");
    assert_eq!(scanned[0]["installable"], true, "{scanned}");
}

#[test]
fn a_rolled_back_version_keeps_its_compiled_code_for_an_upgrade_again() {
    let root = root();
    let v1 = package_at("phonebook", "1.0.0");
    root.ok(&["install", arg(&package("core")), arg(&v1)]);
    let v2 = package_at("phonebook", "2.0.0");
    let run = root.ok(&["upgrade", arg(&v2)]);
    assert!(run.stderr.contains("Compiled phonebook"), "{}", run.stderr);
    root.ok(&["rollback", "phonebook"]);
    // Upgrading to it again (the rollback's cause fixed elsewhere) loads what was
    // compiled: no minutes of compiling for a Python or JavaScript module.
    let run = root.ok(&["upgrade", arg(&v2)]);
    assert!(
        run.stdout.contains("upgraded phonebook 1.0.0 -> 2.0.0")
            && !run.stderr.contains("Compiled phonebook"),
        "{}",
        run.stderr
    );
    // With no room kept for code nothing installed uses, it goes at the rollback.
    root.configure("[cache]\nkeep_mb = 0\n");
    root.ok(&["rollback", "phonebook"]);
    let run = root.ok(&["upgrade", arg(&v2)]);
    assert!(run.stderr.contains("Compiled phonebook"), "{}", run.stderr);
}
