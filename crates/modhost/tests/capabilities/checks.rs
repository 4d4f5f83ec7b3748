//! What is checked before a module runs: an import no capability provides, refused before
//! compiling; what an install says a module asks for; capabilities that cannot be offered,
//! refused when the host opens.

use super::*;

#[test]
fn a_module_importing_an_api_the_application_does_not_give_is_refused_before_compiling() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Host::open(root.path()).unwrap_or_else(|e| panic!("{e}"));
    host.install(&[package("core"), package("voicemail")], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let compiled = compiled_artifacts(root.path());
    let refused = host.install(&[package("callback")], GRANT);
    let message = match refused {
        Err(e) => e.to_string(),
        Ok(changes) => panic!("installed: {changes:?}"),
    };
    assert!(
        message.contains("imports pbx:telephony/calls@1.0.0, which this host does not provide")
            && message.contains("modhost:module@0.1.0")
            && message.contains("wasi:io@0.2.12"),
        "{message}"
    );
    // Refused from its import section, without a compile (which takes seconds here).
    assert_eq!(compiled_artifacts(root.path()), compiled);
    assert!(!root.path().join("modules/callback").exists());

    // An application giving another interface of the package: the message lists that
    // interface, not the package, which would read as if it were given.
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Embedding::new()
        .capability(
            Arc::new(Declared("pbx:telephony", &["pbx:telephony/channels@1.0.0"]))
                as Arc<dyn Capability>,
        )
        .open(root.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let loads = Loads::default();
    let host = host.with_reporter(Box::new(loads.clone()));
    let refused = host.install(
        &[package("core"), package("voicemail"), package("callback")],
        GRANT,
    );
    let message = refused
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        message.contains("imports pbx:telephony/calls@1.0.0, which this host does not provide")
            && message.contains("pbx:telephony/channels@1.0.0")
            && !message.contains("pbx:telephony@1.0.0"),
        "{message}"
    );
    // In a batch too, before any of it is compiled: not after the modules planned ahead
    // of it (seconds each, minutes for a Python one).
    let loaded = loads.0.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(loaded.is_empty(), "{loaded:?}");
    assert_eq!(compiled_artifacts(root.path()), 0);
}

#[test]
fn an_install_says_which_apis_a_module_asks_for_and_whether_they_need_a_grant() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (host, _) = telephony_host(&root);
    let changes = host
        .install(&[package("callback")], GRANT)
        .unwrap_or_else(|e| panic!("{e}"));
    let requests = serde_json::to_value(&changes[0].requests).unwrap_or_default();
    assert_eq!(
        requests,
        serde_json::json!([{"package": "pbx:telephony", "needs_grant": true, "granted": true}])
    );

    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = Embedding::new()
        .capability(Arc::new(UNGATED) as Arc<dyn Capability>)
        .open(root.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let changes = host
        .install(
            &[package("core"), package("voicemail"), package("callback")],
            Options::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let callback = changes.iter().find(|c| c.rawname == "callback");
    assert_eq!(
        callback.map(|c| c.requests.clone()),
        Some(vec![modhost::Request::Import {
            package: "pbx:telephony".into(),
            needs_grant: false,
            provided: true,
            granted: false,
        }])
    );
}

/// A capability that says it is `package` with `interfaces`, and links nothing.
struct Declared(&'static str, &'static [&'static str]);

impl Capability for Declared {
    fn package(&self) -> &str {
        self.0
    }

    fn interfaces(&self) -> Vec<String> {
        self.1.iter().map(|&i| i.to_owned()).collect()
    }

    fn add_to_linker(
        &self,
        _: &mut wasmtime::component::Linker<modhost::embed::Sandbox>,
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[test]
fn capabilities_that_cannot_be_offered_are_refused_when_the_host_opens() {
    let calls = &["pbx:telephony/calls@1.0.0"][..];
    let cases: [(&[Declared], &str); 7] = [
        (
            &[
                Declared("pbx:telephony", calls),
                Declared("pbx:telephony", &["pbx:telephony/queues@1.0.0"]),
            ],
            "capability `pbx:telephony` is refused: it is given twice: one capability per package",
        ),
        (
            &[Declared("wasi:cli", &["wasi:cli/environment@0.2.6"])],
            "capability `wasi:cli` is refused: the `wasi` namespace is the host's own",
        ),
        (
            &[Declared("modhost:module", &["modhost:module/kv@0.1.0"])],
            "capability `modhost:module` is refused: the `modhost` namespace is the host's own",
        ),
        (
            &[Declared("WASI:cli", &["WASI:cli/environment@0.2.6"])],
            "capability `WASI:cli` is refused: the `WASI` namespace is the host's own",
        ),
        (
            &[Declared("pbx:telephony", &["acme:other/calls@1.0.0"])],
            "capability `pbx:telephony` is refused: interface `acme:other/calls@1.0.0` is another package's",
        ),
        (
            &[Declared("pbx:telephony", &[])],
            "capability `pbx:telephony` is refused: it provides no interface",
        ),
        (
            &[Declared("telephony", calls)],
            "capability `telephony` is refused: a package is named `namespace:package`",
        ),
    ];
    for (n, (given, said)) in cases.into_iter().enumerate() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut embedding = Embedding::new();
        for capability in given {
            let capability = Declared(capability.0, capability.1);
            embedding = embedding.capability(Arc::new(capability) as Arc<dyn Capability>);
        }
        let opened = embedding
            .open(root.path())
            .map(drop)
            .map_err(|e| e.to_string());
        assert_eq!(opened, Err(said.to_owned()), "case {n}");
    }
}

#[test]
fn a_capability_that_links_less_than_it_declares_is_named_not_the_package() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // It says it provides pbx:telephony/calls, lists no functions, and links none.
    let host = Embedding::new()
        .capability(
            Arc::new(Declared("pbx:telephony", &["pbx:telephony/calls@1.0.0"]))
                as Arc<dyn Capability>,
        )
        .open(root.path())
        .unwrap_or_else(|e| panic!("{e}"));
    // callback alone (its requirements set aside): nothing else is compiled.
    let forced = Options {
        force: true,
        ..GRANT
    };
    let error = host
        .install(&[package("callback")], forced)
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        error.contains(
            "imports `pbx:telephony/calls@1.0.0`, which the application's capability does not \
             fully provide here"
        ) && !error.contains("is not a loadable"),
        "{error}"
    );
    assert!(host.list().unwrap_or_else(|e| panic!("{e}")).is_empty());
    // Its compiled code can never be linked here: not a reason to keep the root the
    // failed install made.
    assert_eq!(host.discard_if_unused().ok(), Some(true));
    assert!(!root.path().join("modhost.db").exists());
}
