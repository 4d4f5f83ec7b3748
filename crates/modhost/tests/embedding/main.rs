//! The embedding API as a PBX application uses it: concurrent dispatch from many threads.

use std::sync::Arc;

use modhost::{HookPoint, Host, OnError, Options, Shape};
use modhost_test_support::{component, package, package_at, repackage};

mod roots;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn a_host_is_shared_across_threads_and_dispatches_concurrently() {
    assert_send_sync::<Host>();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    let packages = [
        package("core"),
        package("voicemail"),
        package_at("phonebook", "1.0.0"),
    ];
    let installed = host
        .install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(installed.len(), 3);
    host.declare(HookPoint {
        name: "call.route".into(),
        shape: Shape::Pipeline,
        on_error: OnError::Stop,
        limits: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let host = Arc::new(host);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let host = Arc::clone(&host);
            std::thread::spawn(move || {
                let to = if i % 2 == 0 { "100" } else { "*101" };
                let payload = format!(
                    r#"{{"from":"2025550100","to":"{to}","caller_name":null,"action":null}}"#
                );
                (0..5)
                    .map(|_| {
                        host.dispatch("call.route", &payload)
                            .map(|d| (to, d.output.unwrap_or_default()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    for thread in threads {
        let results = thread
            .join()
            .unwrap_or_else(|_| panic!("a dispatch thread panicked"));
        for (to, output) in results.unwrap_or_else(|e| panic!("{e}")) {
            let answer: serde_json::Value = serde_json::from_str(&output).unwrap_or_default();
            assert_eq!(answer["caller_name"], "Alice Example");
            let expected = if to == "100" {
                "Dial(PJSIP/100)"
            } else {
                "VoiceMail(101@default)"
            };
            assert_eq!(answer["action"], expected, "{output}");
        }
    }
}

#[test]
fn dispatch_sees_changes_made_by_another_process_or_host() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let app = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        app.dispatch("lookup", "2025550100")
            .map(|d| d.calls.is_empty())
            .unwrap_or(false)
    );
    let admin = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    let packages = [package("core"), package_at("phonebook", "1.0.0")];
    admin
        .install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let lookup = app
        .dispatch("lookup", "2025550100")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        lookup.calls.first().and_then(|c| c.output.as_deref()),
        Some("Alice Example")
    );
    admin
        .disable("phonebook", false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        app.dispatch("lookup", "2025550100")
            .map(|d| d.calls.is_empty())
            .unwrap_or(false)
    );
}

#[test]
fn concurrent_dispatches_whose_handlers_read_then_write_all_succeed() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // phonebook reads its table at pri 500; the writer then writes its store at 900.
    let writer = repackage(
        &package("hostile"),
        |xml| {
            xml.replace(
                "<lookup pri=\"900\">echo</lookup>",
                "<lookup pri=\"900\">remember</lookup>",
            )
        },
        &root.path().join("writer.tgz"),
    );
    let packages = [package("core"), package_at("phonebook", "1.0.0"), writer];
    // What is asserted is that every handler gets its turn at the write lock, however
    // long a loaded machine makes the wait; not how fast.
    let configured = std::fs::create_dir(root.path().join("root")).and_then(|()| {
        std::fs::write(
            root.path().join("root/modhost.toml"),
            "[hooks.lookup]\ncall_timeout_ms = 60000\n",
        )
    });
    assert!(configured.is_ok(), "{configured:?}");
    let app = Host::open(&root.path().join("root")).unwrap_or_else(|e| panic!("{e}"));
    app.install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // A second host on the same root stands for a second process: it shares neither the
    // connection pool nor the in-process turn-taking, only SQLite's lock.
    let other = Host::open(&root.path().join("root")).unwrap_or_else(|e| panic!("{e}"));
    let hosts = [Arc::new(app), Arc::new(other)];
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let host = Arc::clone(&hosts[i % 2]);
            std::thread::spawn(move || {
                (0..10)
                    .map(|n| host.dispatch("lookup", &format!("2025550{i}{n:02}")))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    for thread in threads {
        let dispatches = thread
            .join()
            .unwrap_or_else(|_| panic!("a dispatch thread panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
        for dispatch in dispatches {
            let failed: Vec<_> = dispatch.calls.iter().filter(|c| !c.ok).collect();
            assert!(failed.is_empty(), "{failed:?}");
            assert_eq!(dispatch.calls.len(), 2, "{dispatch:?}");
        }
    }
    let remembered = hosts[0]
        .kv_entries("hostile")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remembered.len(), 1, "{remembered:?}");
}

/// Packs the `hostile` test component as module `rawname` with `extra` in its module.xml.
fn hostile_as(dir: &std::path::Path, rawname: &str, extra: &str) -> std::path::PathBuf {
    let source = dir.join(rawname);
    std::fs::create_dir_all(&source).unwrap_or_else(|e| panic!("{e}"));
    let xml = format!(
        "<module><rawname>{rawname}</rawname><name>{rawname}</name><version>1.0</version>{extra}</module>"
    );
    std::fs::write(source.join("module.xml"), xml).unwrap_or_else(|e| panic!("{e}"));
    let package = dir.join(format!("{rawname}.tgz"));
    modhost::pack(&source.join("module.xml"), &component("hostile"), &package)
        .unwrap_or_else(|e| panic!("{e}"));
    package
}

#[test]
fn hooks_run_on_their_targets_method_in_priority_order_ties_by_rawname() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let on_route = |priority: &str| {
        format!(
            "<hooks><core class=\"Core\"><method callingMethod=\"route\"{priority}>echo</method></core></hooks>"
        )
    };
    // Installed out of rawname order, so that only the sort can put them in order.
    let packages = [
        hostile_as(dir.path(), "zeta", &on_route(" priority=\"200\"")),
        hostile_as(dir.path(), "mid", &on_route("")),
        hostile_as(dir.path(), "alpha", &on_route(" priority=\"200\"")),
        hostile_as(
            dir.path(),
            "plain",
            "<methods><route pri=\"100\">echo</route></methods>",
        ),
    ];
    let host = Host::open(&dir.path().join("root")).unwrap_or_else(|e| panic!("{e}"));
    host.install(&packages, Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let ran = |hook: &str| -> Vec<(String, i32)> {
        host.dispatch(hook, "x")
            .unwrap_or_else(|e| panic!("{e}"))
            .calls
            .into_iter()
            .map(|c| (c.rawname, c.priority))
            .collect()
    };
    assert_eq!(
        ran("core.route"),
        [
            ("alpha".to_owned(), 200),
            ("zeta".to_owned(), 200),
            ("mid".to_owned(), 500)
        ]
    );
    assert_eq!(
        ran("route"),
        [("plain".to_owned(), 100)],
        "a hook on core's `route` is not a handler of every hook point named `route`"
    );
    assert!(ran("other.route").is_empty());
}

#[test]
fn a_host_says_which_limits_its_calls_run_under() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.limits(), modhost::Limits::default());
    drop(host);
    std::fs::write(
        root.path().join("modhost.toml"),
        "[limits]\ncall_timeout_ms = 1500\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        host.limits().call_timeout,
        std::time::Duration::from_millis(1500)
    );
    let given = modhost::Limits {
        max_fire_depth: 2,
        ..modhost::Limits::default()
    };
    let host = Host::open_with(root.path(), given).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.limits(), given, "given limits win over modhost.toml");
}

#[test]
fn a_declaration_without_limits_keeps_those_modhost_toml_sets_for_its_hook_point() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        root.path().join("modhost.toml"),
        "[limits]\ncall_timeout_ms = 3000\n[hooks.spin]\ncall_timeout_ms = 300\nmax_memory_mb = 16\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    let configured = host.hook_point("spin").limits;
    assert_eq!(
        configured.map(|l| (l.call_timeout.as_millis(), l.max_memory)),
        Some((300, 16 << 20))
    );
    let declared = host.declare(HookPoint {
        on_error: OnError::Stop,
        ..HookPoint::broadcast("spin")
    });
    assert!(declared.is_ok(), "{declared:?}");
    let point = host.hook_point("spin");
    assert_eq!(
        point.on_error,
        OnError::Stop,
        "the application says how it works"
    );
    assert_eq!(
        point.limits, configured,
        "and leaves the limits to the root's file"
    );

    let own = modhost::Limits {
        call_timeout: std::time::Duration::from_millis(50),
        ..modhost::Limits::default()
    };
    let declared = host.declare(HookPoint {
        limits: Some(own),
        ..HookPoint::broadcast("spin")
    });
    assert!(declared.is_ok(), "{declared:?}");
    assert_eq!(
        host.hook_point("spin").limits,
        Some(own),
        "limits it gives win"
    );
    assert_eq!(host.hook_point("other").limits, None);
}

#[test]
fn get_config_cannot_be_declared_other_than_a_fail_closed_pipeline_nor_a_hook_point_without_a_name()
{
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    for (shape, on_error) in [
        (Shape::Broadcast, OnError::Stop),
        (Shape::Pipeline, OnError::Continue),
        (Shape::Broadcast, OnError::Continue),
    ] {
        let refused = host.declare(HookPoint {
            shape,
            on_error,
            ..HookPoint::pipeline("get_config")
        });
        assert!(
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains("get_config is always a fail-closed pipeline")),
            "{refused:?}"
        );
        assert_eq!(
            host.hook_point("get_config"),
            HookPoint::pipeline("get_config")
        );
    }
    let limits = modhost::Limits {
        call_timeout: std::time::Duration::from_millis(700),
        ..modhost::Limits::default()
    };
    let declared = host.declare(HookPoint {
        limits: Some(limits),
        ..HookPoint::pipeline("get_config")
    });
    assert!(declared.is_ok(), "its limits can be declared: {declared:?}");
    assert_eq!(host.hook_point("get_config").limits, Some(limits));

    let nameless = host.declare(HookPoint::broadcast(""));
    assert!(
        matches!(nameless, Err(modhost::Error::HookPoint { .. })),
        "{nameless:?}"
    );
    // One dispatch may run it otherwise, to see every handler's answer; that declares
    // nothing.
    let once = host.dispatch_as(
        &HookPoint::broadcast("get_config"),
        "",
        &modhost::DispatchOptions::default(),
    );
    assert!(once.is_ok(), "{once:?}");
    assert_eq!(host.hook_point("get_config").shape, Shape::Pipeline);

    let nameless = host.dispatch("", "");
    assert!(
        matches!(nameless, Err(modhost::Error::HookPoint { .. })),
        "{nameless:?}"
    );
}

/// An application links `modhost` for modules, not for publishing them: the HTTP server
/// and its stack live in `modhost-repo`, which only the CLI pulls in. (tokio is there,
/// for WASI's own use, not for serving.)
#[test]
fn the_embedding_library_links_no_server() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let tree = std::process::Command::new(cargo)
        .args(["tree", "--offline", "-p", "modhost", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo tree: {e}"));
    assert!(
        tree.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.lines().any(|l| l.starts_with("ureq ")), "{tree}");
    let servers: Vec<&str> = tree
        .lines()
        .filter(|l| {
            [
                "hyper ",
                "hyper-util ",
                "tower",
                "tokio-rustls ",
                "modhost-repo ",
            ]
            .iter()
            .any(|name| l.starts_with(name))
        })
        .collect();
    assert!(servers.is_empty(), "modhost links {servers:?}");
}

#[test]
fn an_embedder_matches_the_errors_of_every_layer() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = modhost::Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    let missing = root.path().join("nosuch.tgz");
    let installed = host.install(std::slice::from_ref(&missing), modhost::Options::default());
    assert!(
        matches!(&installed, Err(modhost::Error::NoSuchFile(path)) if *path == missing),
        "{installed:?}"
    );
    // A component importing what this host lacks: the runtime's own variant.
    let packages = ["core", "voicemail", "callback"].map(package);
    let installed = host.install(&packages, modhost::Options::default());
    assert!(
        matches!(
            &installed,
            Err(modhost::Error::Runtime(
                modhost::RuntimeError::Imports { .. }
            ))
        ),
        "{installed:?}"
    );
}

#[test]
fn a_publishers_attention_note_is_said_first_among_an_installs_warnings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(&dir.path().join("root")).unwrap_or_else(|e| panic!("{e}"));
    let xml = dir.path().join("module.xml");
    std::fs::write(
        &xml,
        "<module><rawname>noted</rawname><name>Noted</name><version>1.0</version>\
         <attention>Restart Asterisk after installing.</attention><fancy/></module>",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let package = dir.path().join("noted-1.0.tgz");
    modhost::pack(&xml, &component("hostile"), &package).unwrap_or_else(|e| panic!("{e}"));
    let changes = host
        .install(&[package], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let warnings = &changes[0].warnings;
    assert_eq!(
        warnings.first().map(String::as_str),
        Some("its publisher asks you to read this: Restart Asterisk after installing."),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("<fancy>")),
        "{warnings:?}"
    );
}
