//! `modhost new`: every file names the module, none is written over, and a name the
//! templates already use gets a type and crate of its own.

use super::*;

#[test]
fn a_new_module_is_named_in_every_file_and_refuses_to_overwrite() -> Result<()> {
    let parent = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = parent.path().join("call_log");
    let files = new_module(&dir, "call_log", Lang::Python)?;
    assert_eq!(
        files.len(),
        6,
        "module.xml, app.py, build.sh, .gitignore, the SDK and the WIT"
    );
    let app = std::fs::read_to_string(dir.join("app.py")).unwrap_or_default();
    assert!(app.contains("class CallLog(Module):"), "{app}");
    assert!(app.contains("@handler(\"call_log_hello\")"), "{app}");
    let manifest = crate::read_manifest(&dir.join("module.xml"))?;
    assert_eq!(manifest.rawname, "call_log");
    assert_eq!(manifest.name, "Call log");
    let build = std::fs::read_to_string(dir.join("build.sh")).unwrap_or_default();
    assert!(build.contains(COMPONENTIZE_PY_VERSION));
    assert!(new_module(&dir, "call_log", Lang::Rust).is_err());
    assert!(new_module(&parent.path().join("x"), "Bad-Name", Lang::Rust).is_err());
    // A name must start with a letter, and make identifiers modhost takes.
    let refused = |name: &str| {
        new_module(&parent.path().join("y"), name, Lang::Python)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(refused("1abc").contains("starting with a letter"));
    assert!(
        refused("my-mod").contains("(`my_mod`, say); `-` is left out"),
        "{}",
        refused("my-mod")
    );
    let again = new_module(&dir, "call_log", Lang::Rust)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        again.ends_with(
            "already exists: a new module gets a directory of its own: choose another one"
        ),
        "{again}"
    );
    assert!(refused(&"a".repeat(60)).contains("choose a shorter name"));
    for reserved in ["modhost_x", "sqlite_stuff", "pragma_x"] {
        let said = refused(reserved);
        assert!(
            said.contains("its tables are named after it") && said.ends_with("choose another name"),
            "{said}"
        );
    }
    assert!(refused(&"a".repeat(300)).contains("a rawname has at most 64 characters"));
    assert!(!parent.path().join("y").exists(), "nothing written");
    // An empty directory made beforehand is used.
    let made = parent.path().join("made");
    std::fs::create_dir(&made).map_err(|source| Error::Io {
        path: made.clone(),
        source,
    })?;
    new_module(&made, "made", Lang::Rust)?;

    // The languages by their names and usual short names, in any case.
    for (given, lang) in [
        ("Python", Lang::Python),
        ("py", Lang::Python),
        ("JS", Lang::Js),
    ] {
        assert_eq!(given.parse::<Lang>(), Ok(lang));
    }
    assert!("cobol".parse::<Lang>().is_err());
    let lang: Lang = "js".parse().map_err(|e| Error::Refused(vec![e]))?;
    let refused = new_module(&parent.path().join("node_modules"), "node_modules", lang);
    assert!(
        refused.is_err_and(|e| e.to_string().contains("choose another directory")),
        "node_modules is no directory to build in"
    );
    let js = parent.path().join("nm");
    let files = new_module(&js, "node_modules", lang)?;
    assert_eq!(files.len(), 8, "with package-lock.json");
    let lock = std::fs::read_to_string(js.join("package-lock.json")).unwrap_or_default();
    assert_eq!(
        lock.matches("\"name\": \"modhost-node_modules\"").count(),
        2
    );
    // The lock pins the componentize-js the build script asks for: bumping one alone
    // would leave the other behind.
    let pinned = format!(
        "\"node_modules/@bytecodealliance/componentize-js\": {{\n      \"version\": \"{COMPONENTIZE_JS_VERSION}\""
    );
    assert!(
        lock.contains(&pinned),
        "the lock's componentize-js is not {COMPONENTIZE_JS_VERSION}"
    );
    let app = std::fs::read_to_string(js.join("app.js")).unwrap_or_default();
    assert!(app.contains("node_modules_hello(hook, payload) {"), "{app}");
    let package = std::fs::read_to_string(js.join("package.json")).unwrap_or_default();
    // npm takes no package named `node_modules`: the name is modhost's own.
    assert!(
        package.contains("\"name\": \"modhost-node_modules\""),
        "{package}"
    );
    assert!(package.contains(COMPONENTIZE_JS_VERSION), "{package}");

    let rust = parent.path().join("rusty");
    new_module(&rust, "rusty", Lang::Rust)?;
    let lock = std::fs::read_to_string(rust.join("Cargo.lock")).unwrap_or_default();
    assert!(
        lock.contains("name = \"rusty\"\nversion = \"0.1.0\""),
        "{lock}"
    );
    let sdk = std::fs::read_to_string(rust.join("sdk/src/lib.rs")).unwrap_or_default();
    assert!(
        sdk.contains("path: \"../wit\""),
        "the SDK reads the copied WIT"
    );
    // Every file of the SDK's crate is copied, and nothing else of it.
    let sdk_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../modhost-sdk/src");
    let mut crate_files: Vec<String> = std::fs::read_dir(&sdk_dir)
        .map_err(|e| Error::Io {
            path: sdk_dir.clone(),
            source: e,
        })?
        .flatten()
        .map(|e| format!("sdk/src/{}", e.file_name().to_string_lossy()))
        .collect();
    crate_files.sort();
    let mut copied: Vec<String> = RUST_SDK.iter().map(|(p, _)| (*p).to_owned()).collect();
    copied.sort();
    assert_eq!(copied, crate_files);
    for path in &copied {
        assert!(rust.join(path).is_file(), "{path}");
    }
    Ok(())
}

#[test]
fn a_name_the_templates_code_already_uses_gets_its_own_type_and_crate() -> Result<()> {
    let parent = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    for (name, type_name, package) in [
        ("module", "ModuleModule", "module"),
        ("result", "ResultModule", "result"),
        ("self", "SelfModule", "self_module"),
        ("lifecycle", "LifecycleModule", "lifecycle"),
        ("core", "Core", "core_module"),
        ("phonebook", "Phonebook", "phonebook"),
    ] {
        let dir = parent.path().join(format!("rust-{name}"));
        new_module(&dir, name, Lang::Rust)?;
        let lib = read(dir.join("src/lib.rs"));
        assert!(lib.contains(&format!("struct {type_name};")), "{lib}");
        let cargo = read(dir.join("Cargo.toml"));
        assert!(cargo.contains(&format!("name = \"{package}\"")), "{cargo}");
        let build = read(dir.join("build.sh"));
        assert!(
            build.contains(&format!("release/{package}.wasm")),
            "{build}"
        );
    }
    for (name, class) in [
        ("none", "NoneModule"),
        ("true", "TrueModule"),
        ("false", "FalseModule"),
        // A built-in exception's name would break the module's `except` clauses.
        ("key_error", "KeyErrorModule"),
        ("exception", "ExceptionModule"),
        ("host_error", "HostErrorModule"),
    ] {
        let dir = parent.path().join(format!("python-{name}"));
        new_module(&dir, name, Lang::Python)?;
        let app = read(dir.join("app.py"));
        assert!(app.contains(&format!("class {class}(Module):")), "{app}");
    }
    Ok(())
}
