//! What an embedding application gives modules: its own API (`pbx:telephony`, the
//! example capability in `examples/pbx/telephony.rs`) linked into the modules that import
//! it and are granted it, a per-dispatch value its implementation sees, and cancellation
//! of a running dispatch from another thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use modhost::embed::Capability;
use modhost::{DispatchOptions, Embedding, Error, FailureKind, Host, Options};
use modhost_test_support::{compiled_artifacts, package};

mod cancel;
mod checks;
#[path = "../../examples/pbx/telephony.rs"]
mod telephony;

use telephony::pbx::telephony::calls::{self, State};
use telephony::{OnChannel, Switch};

/// An application's `pbx:telephony` whose `originate` runs a function of the test's, and
/// that may or may not need an administrator's grant.
struct Scripted {
    needs_grant: bool,
    /// Adds the imports to the linker, with the `originate` [`Calls`] runs.
    link: fn(&mut wasmtime::component::Linker<modhost::embed::Sandbox>) -> wasmtime::Result<()>,
}

/// What [`Scripted`]'s imports see: the `originate` to run.
struct Calls(fn() -> Result<String, String>);

impl wasmtime::component::HasData for Calls {
    type Data<'a> = Calls;
}

impl calls::Host for Calls {
    fn originate(&mut self, _: String, _: String) -> Result<String, String> {
        (self.0)()
    }

    fn hangup(&mut self, _: String) -> Result<(), String> {
        Ok(())
    }

    fn channel_state(&mut self, _: String) -> Result<State, String> {
        Ok(State::Down)
    }

    fn current_channel(&mut self) -> Option<String> {
        None
    }
}

impl Capability for Scripted {
    fn package(&self) -> &str {
        "pbx:telephony"
    }

    fn interfaces(&self) -> Vec<String> {
        vec!["pbx:telephony/calls@1.0.0".to_owned()]
    }

    fn needs_grant(&self) -> bool {
        self.needs_grant
    }

    fn add_to_linker(
        &self,
        linker: &mut wasmtime::component::Linker<modhost::embed::Sandbox>,
    ) -> wasmtime::Result<()> {
        (self.link)(linker)
    }
}

/// `pbx:telephony` whose `originate` panics, as code modhost did not write may.
const PANICKY: Scripted = Scripted {
    needs_grant: true,
    link: |linker| {
        calls::add_to_linker::<_, Calls>(linker, |_| Calls(|| panic!("the switch fell over")))
    },
};

/// `pbx:telephony` that modules may import without an administrator's grant.
const UNGATED: Scripted = Scripted {
    needs_grant: false,
    link: PANICKY.link,
};

const GRANT: Options = Options {
    force: false,
    grant: true,
    reinstall: false,
};

/// A root opened by an application that gives modules `pbx:telephony`, with voicemail
/// (which callback depends on) installed.
fn telephony_host(root: &tempfile::TempDir) -> (Host, Arc<Switch>) {
    let switch = Arc::new(Switch::default());
    let host = Embedding::new()
        .capability(Arc::clone(&switch) as Arc<dyn Capability>)
        .open(root.path())
        .unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("core"), package("voicemail")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (host, switch)
}

/// A root opened by an application that gives modules `capability`, with core, voicemail,
/// callback (granted it) and `more` installed.
fn granted_host(
    root: &tempfile::TempDir,
    capability: Scripted,
    more: &[std::path::PathBuf],
) -> Arc<Host> {
    let host = Embedding::new()
        .capability(Arc::new(capability) as Arc<dyn Capability>)
        .open(root.path())
        .map(Arc::new)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut packages = vec![package("core"), package("voicemail"), package("callback")];
    packages.extend_from_slice(more);
    host.install(&packages, GRANT)
        .unwrap_or_else(|e| panic!("{e}"));
    host
}

fn left(host: &Host, channel: &str) -> modhost::Dispatch {
    let options = DispatchOptions {
        data: Some(Arc::new(OnChannel(channel.to_owned()))),
        cancel: None,
    };
    host.dispatch_with(
        "voicemail.left",
        r#"{"mailbox":"101","from":"2025550101"}"#,
        &options,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_module_calls_the_applications_api_with_the_dispatchs_value() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (host, switch) = telephony_host(&root);
    host.install(&[package("callback")], GRANT)
        .unwrap_or_else(|e| panic!("{e}"));
    // `info` reads what the component imports, without compiling it.
    let info = host.info("callback").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        info.imports
            .iter()
            .any(|i| i == "pbx:telephony/calls@1.0.0")
            && info
                .imports
                .iter()
                .any(|i| i.starts_with("modhost:module/log@")),
        "{:?}",
        info.imports
    );
    assert!(
        host.offered_imports()
            .iter()
            .any(|p| p == "pbx:telephony@1.0.0")
    );
    let dispatch = left(&host, "PJSIP/2025550101-in");
    let call = &dispatch.calls[0];
    assert!(call.ok, "{call:?}");
    let out: serde_json::Value =
        serde_json::from_str(call.output.as_deref().unwrap_or_default()).unwrap_or_default();
    assert_eq!(out["state"], "ringing", "{out}");
    assert_eq!(out["serving"], "PJSIP/2025550101-in", "{out}");
    let channel = out["channel"].as_str().unwrap_or_default();
    assert!(channel.starts_with("PJSIP/101-"), "{out}");
    assert_eq!(
        switch.channels(),
        vec![(channel.to_owned(), "ringing".to_owned())]
    );

    // The implementation's error reaches the guest as an error it handles, not a trap.
    let options = DispatchOptions::default();
    let dispatch = host
        .dispatch_with(
            "voicemail.left",
            r#"{"mailbox":"101","from":"x"}"#,
            &options,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let call = &dispatch.calls[0];
    assert_eq!(call.kind, Some(FailureKind::Failed), "{call:?}");
    assert!(
        call.error
            .as_deref()
            .is_some_and(|e| e.contains("cannot call `x` from `101`")),
        "{call:?}"
    );

    // Without a value for the dispatch, the module hears there is none.
    let dispatch = host
        .dispatch("voicemail.left", r#"{"mailbox":"101","from":"2025550101"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        dispatch.calls[0]
            .output
            .as_deref()
            .is_some_and(|o| o.contains(r#""serving":"none""#)),
        "{dispatch:?}"
    );

    // Withdrawing the grant stops its calls, naming what is missing.
    host.revoke("callback").unwrap_or_else(|e| panic!("{e}"));
    let reopened = Embedding::new()
        .capability(Arc::new(Switch::default()) as Arc<dyn Capability>)
        .open(root.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let dispatch = left(&reopened, "PJSIP/1");
    assert!(
        dispatch.calls[0].error.as_deref().is_some_and(|e| e.contains(
            "`callback` imports the application's `pbx:telephony`, which needs an administrator's grant"
        )),
        "{dispatch:?}"
    );
}

#[test]
fn a_root_opened_without_an_api_its_modules_import_says_which_at_their_call() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (host, _) = telephony_host(&root);
        host.install(&[package("callback")], GRANT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The same root, opened by an application that gives no `pbx:telephony`: the
    // compiled component is in the cache, and its call is refused naming what it lacks.
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    let dispatch = left(&host, "PJSIP/1");
    let call = dispatch
        .calls
        .iter()
        .find(|c| c.rawname == "callback")
        .cloned();
    let error = call.and_then(|c| c.error).unwrap_or_default();
    assert!(
        error.contains("pbx:telephony/calls@1.0.0")
            && error.contains("this host does not provide")
            && !error.contains("implementation is missing"),
        "{error}"
    );
    // `info` says so too, and shows what the component exports, read without compiling.
    std::fs::remove_dir_all(root.path().join("cache")).unwrap_or_else(|e| panic!("{e}"));
    let info = host.info("callback").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        info.refused
            .as_deref()
            .is_some_and(|r| r
                .contains("imports pbx:telephony/calls@1.0.0, which this host does not provide")),
        "{info:?}"
    );
    assert!(
        info.exports.contains(&"hooks.handle".to_owned())
            && info.exports.contains(&"lifecycle.install".to_owned()),
        "{:?}",
        info.exports
    );
    assert_eq!(compiled_artifacts(root.path()), 0);
    // Granting it here records the grant for the application that gives the API, and
    // says this host does not give it (not that it needs no grant).
    let requests = host.grant("callback").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::to_value(&requests).unwrap_or_default(),
        serde_json::json!([{"package": "pbx:telephony", "needs_grant": false,
            "provided": false, "granted": true}])
    );
    // `list` says it cannot run here, shortly, beside its status; this host's own
    // modules read as they are.
    let listed = host.list_all(None).unwrap_or_else(|e| panic!("{e}"));
    let reasons: Vec<(String, Option<String>)> = listed
        .iter()
        .map(|l| {
            let (rawname, _, _, _, reason) = l.summary();
            (rawname.to_owned(), reason.map(str::to_owned))
        })
        .collect();
    let callback = reasons.iter().find(|(r, _)| r == "callback");
    assert!(
        callback.is_some_and(|(_, reason)| reason.as_deref()
            == Some(
                "this host cannot run it: it imports pbx:telephony/calls@1.0.0, which this \
                 host does not provide"
            )),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|(r, reason)| r == "callback" || reason.is_none()),
        "{reasons:?}"
    );
    // Its lifecycle calls cannot run either, and say what can: disabling it without its
    // code keeps its data; deleting it removes it.
    for refused in [
        host.disable("callback", false),
        host.uninstall("callback", true),
    ] {
        match refused {
            Err(e @ modhost::Error::CannotRun { .. }) => {
                let call = e.failed_call().map(str::to_owned);
                assert!(
                    e.to_string()
                        .starts_with("`callback` 1.0.0 cannot run its ")
                        && e.to_string().contains("pbx:telephony/calls@1.0.0")
                        && matches!(call.as_deref(), Some("disable()" | "uninstall()")),
                    "{e}"
                );
            }
            other => panic!("expected CannotRun, got {other:?}"),
        }
    }
    let skipping = modhost::DisableOptions {
        force: false,
        skip_code: true,
    };
    host.disable_with("callback", skipping)
        .unwrap_or_else(|e| panic!("{e}"));
    host.delete("callback", false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(host.info("callback").is_err(), "deleted");
    // A module only offered by the package directory: the same check, from its package.
    let fresh = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(fresh.path()).unwrap_or_else(|e| panic!("{e}"));
    let offered = host.describe("callback", Some(&modhost_test_support::packages_dir()));
    match offered {
        Ok(modhost::Described::Offered(offered)) => {
            assert!(
                offered
                    .component
                    .imports
                    .contains(&"pbx:telephony/calls@1.0.0".to_owned())
                    && offered
                        .component
                        .refused
                        .as_deref()
                        .is_some_and(|r| r.contains("which this host does not provide")),
                "{offered:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let (host, _) = telephony_host(&fresh);
    let info = host.info("callback");
    assert!(info.is_err(), "not installed");
    let offered = host.describe("callback", Some(&modhost_test_support::packages_dir()));
    assert!(
        matches!(&offered, Ok(modhost::Described::Offered(o)) if o.component.refused.is_none()),
        "{offered:?}"
    );
}

#[test]
fn the_dispatchs_value_reaches_a_hook_fired_from_inside_it() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (host, _) = telephony_host(&root);
    host.install(&[package("caller")], GRANT)
        .unwrap_or_else(|e| panic!("{e}"));
    let on = |channel: &str| DispatchOptions {
        data: Some(Arc::new(OnChannel(channel.to_owned()))),
        cancel: None,
    };
    let relayed = |options: &DispatchOptions| {
        let dispatch = host
            .dispatch_with("relay", "", options)
            .unwrap_or_else(|e| panic!("{e}"));
        dispatch.calls[0].output.clone()
    };
    assert_eq!(
        relayed(&on("PJSIP/7-0001")).as_deref(),
        Some("PJSIP/7-0001")
    );
    // Each dispatch its own: the next one's value, or none, never the last one's.
    assert_eq!(
        relayed(&on("PJSIP/8-0002")).as_deref(),
        Some("PJSIP/8-0002")
    );
    assert_eq!(
        relayed(&DispatchOptions::default()).as_deref(),
        Some("none")
    );
}

/// Records which modules' components were loaded (compiled, or taken from the cache).
#[derive(Clone, Default)]
struct Loads(Arc<std::sync::Mutex<Vec<String>>>);

impl modhost::Reporter for Loads {
    fn report(&self, event: modhost::Event) {
        if let modhost::Event::Loading { rawname } = event {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(rawname);
        }
    }
}

#[test]
fn a_module_importing_an_api_that_needs_a_grant_is_refused_without_it() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (host, _) = telephony_host(&root);
    let loads = Loads::default();
    let host = host.with_reporter(Box::new(loads.clone()));
    match host.install(&[package("callback")], Options::default()) {
        Err(Error::NotGranted { rawname, package }) => {
            assert_eq!(
                (rawname.as_str(), package.as_str()),
                ("callback", "pbx:telephony")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(host.module("callback").unwrap_or_default().is_none());
    // Refused from what its component imports, read from its bytes: nothing compiled.
    let loaded = loads.0.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(loaded.is_empty(), "{loaded:?}");
}

#[test]
fn a_capability_that_panics_fails_the_call_not_the_host() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = granted_host(&root, PANICKY, &[]);
    for _ in 0..2 {
        let dispatch = left(&host, "PJSIP/1");
        let call = &dispatch.calls[0];
        assert_eq!(call.kind, Some(FailureKind::Host), "{call:?}");
        assert!(
            call.error
                .as_deref()
                .is_some_and(|e| e.contains("module `callback`")
                    && e.contains("a host function panicked: the switch fell over")),
            "{call:?}"
        );
    }
    // The host goes on serving the other modules.
    let routed = host
        .dispatch(
            "call.route",
            r#"{"from":"1","to":"100","caller_name":null,"action":null}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(routed.calls.iter().all(|c| c.ok), "{routed:?}");
}

thread_local! {
    /// The host [`Meddling`] changes from inside the calls it serves.
    static MEDDLED: std::cell::RefCell<Option<Arc<Host>>> = const { std::cell::RefCell::new(None) };
}

/// `pbx:telephony` whose `originate` disables a module: a change from inside the dispatch
/// that called it.
const MEDDLING: Scripted = Scripted {
    needs_grant: true,
    link: |linker| {
        calls::add_to_linker::<_, Calls>(linker, |_| {
            Calls(|| {
                let host = MEDDLED.with_borrow(Clone::clone).ok_or("no host")?;
                let refused = host.disable("phonebook", false);
                Err(refused.map_or_else(|e| e.to_string(), |c| format!("changed: {c:?}")))
            })
        })
    },
};

#[test]
fn a_change_asked_for_from_inside_a_dispatch_is_refused_at_once() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let phonebook = modhost_test_support::package_at("phonebook", "1.0.0");
    let host = granted_host(&root, MEDDLING, &[phonebook]);
    MEDDLED.set(Some(Arc::clone(&host)));
    let began = Instant::now();
    let dispatch = left(&host, "PJSIP/1");
    MEDDLED.set(None);
    // Refused at once: waiting would have waited for the dispatch's own writes.
    assert!(began.elapsed() < Duration::from_secs(10));
    let call = &dispatch.calls[0];
    assert!(
        call.error
            .as_deref()
            .is_some_and(|e| e.contains("the modules cannot be changed from inside a dispatch")),
        "{call:?}"
    );
    let phonebook = host.module("phonebook").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        phonebook.is_some_and(|m| m.status == modhost::Status::Enabled),
        "nothing changed"
    );
    // Once the dispatch has returned, the same change is made.
    host.disable("phonebook", false)
        .unwrap_or_else(|e| panic!("{e}"));
}
