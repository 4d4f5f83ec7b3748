//! What a component imports, read from its bytes without compiling it, and whether this
//! host provides it: a component that imports an interface nobody here links is refused in
//! milliseconds, naming the import, instead of after a compile of seconds or minutes.

use std::fmt;

use wasmparser::{Parser, Payload};

/// The WASI 0.2 interfaces every sandbox links (wasmtime-wasi's `add_to_linker_sync`);
/// sockets are linked with every network switched off.
const WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
];

/// The WASI version the sandbox links; a component built against any 0.2 release works.
const WASI_VERSION: &str = "0.2.12";

/// The interfaces of `modhost:module` a component may import.
const MODHOST: &[&str] = &[
    "modhost:module/types",
    "modhost:module/log",
    "modhost:module/kv",
    "modhost:module/db",
    "modhost:module/dispatch",
];

/// An interface name, `namespace:package/interface@version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interface {
    /// `namespace:package/interface`.
    pub name: String,
    /// Its version, if the name carries one.
    pub version: Option<semver::Version>,
}

impl Interface {
    /// Reads `ns:pkg/iface@1.2.3`; `None` for a name that is not an interface's.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, version) = match text.split_once('@') {
            Some((name, version)) => (name, Some(semver::Version::parse(version).ok()?)),
            None => (text, None),
        };
        let (package, interface) = name.split_once('/')?;
        if !package.contains(':') || interface.is_empty() {
            return None;
        }
        Some(Interface {
            name: name.to_owned(),
            version,
        })
    }

    /// The package it belongs to: `namespace:package`.
    pub fn package(&self) -> &str {
        self.name.split_once('/').map_or(&self.name, |(p, _)| p)
    }

    /// Whether a component importing `self` links against `provided`, as wasmtime's
    /// linker matches them: the same interface, at a semver-compatible version (the same
    /// major, for 0.x the same minor, and for 0.0.x or a pre-release the same version).
    pub fn satisfied_by(&self, provided: &Interface) -> bool {
        if self.name != provided.name {
            return false;
        }
        // wasmtime's own rule (`alternate_lookup_key`): a pre-release, or a 0.0.x, only
        // matches itself; else versions match on their first non-zero number.
        match (&self.version, &provided.version) {
            (None, None) => true,
            (Some(a), Some(b)) if !a.pre.is_empty() || !b.pre.is_empty() => a == b,
            (Some(a), Some(b))
                if a.major == 0 && b.major == 0 && (a.minor == 0 || b.minor == 0) =>
            {
                a == b
            }
            (Some(a), Some(b)) if a.major == 0 && b.major == 0 => a.minor == b.minor,
            (Some(a), Some(b)) => a.major == b.major,
            _ => false,
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}@{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The names a component imports at its top level (its nested components' and modules'
/// imports are its own business), read without validating or compiling it.
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    Ok(top_level(bytes)?.imports)
}

/// What a component imports and exports at its top level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopLevel {
    /// The names it imports.
    pub imports: Vec<String>,
    /// The names it exports.
    pub exports: Vec<String>,
}

/// The names a component imports and exports at its top level, read in one pass without
/// validating or compiling it.
pub fn top_level(bytes: &[u8]) -> Result<TopLevel, String> {
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(format!(
            "it is not a WebAssembly file: {}",
            first_bytes(bytes)
        ));
    }
    let mut names = TopLevel::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::Version { encoding, .. }
                if depth == 0 && encoding != wasmparser::Encoding::Component =>
            {
                return Err(
                    "it is a core WebAssembly module, not a component: build it for \
                            the `wasm32-wasip2` target (which makes components), or wrap it \
                            with `wasm-tools component new`"
                        .to_owned(),
                );
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let name = import.map_err(|e| e.to_string())?.name.name;
                    names.imports.push(name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let name = export.map_err(|e| e.to_string())?.name.name;
                    names.exports.push(name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The functions each of `imports` (top-level instance imports of the component in
/// `bytes`) asks for, read by validating the component, which costs a fraction of
/// compiling it. `None` when it does not validate: compiling it says why.
pub(crate) fn imported_functions(
    bytes: &[u8],
    imports: &[&str],
) -> Option<Vec<(String, Vec<String>)>> {
    use wasmparser::component_types::ComponentEntityType;
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    let types = validator.validate_all(bytes).ok()?;
    let asked = imports
        .iter()
        .filter_map(|&name| {
            let ComponentEntityType::Instance(id) = types.component_item_for_import(name)?.ty
            else {
                return None;
            };
            let functions = types[id]
                .exports
                .iter()
                .filter(|(_, item)| matches!(item.ty, ComponentEntityType::Func(_)))
                .map(|(function, _)| function.clone())
                .collect();
            Some((name.to_owned(), functions))
        })
        .collect();
    Some(asked)
}

/// The functions the component in `bytes` exports (its top-level exports, `exports`, and
/// the functions of those that are instances), read by validating it, which costs a
/// fraction of compiling it: as `interface.function`, the interface's package and version
/// left out when they are a `modhost:module` version this host runs (`lifecycle.install`,
/// `hooks.handle`). `None` when it does not validate.
pub fn exported_functions(bytes: &[u8], exports: &[String]) -> Option<Vec<String>> {
    validated_exports(bytes, exports).ok()
}

/// [`exported_functions`], or why the component does not validate.
pub fn validated_exports(bytes: &[u8], exports: &[String]) -> Result<Vec<String>, String> {
    use wasmparser::component_types::ComponentEntityType;
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    let types = validator
        .validate_all(bytes)
        .map_err(|e| format!("it is not a valid WebAssembly component: {e}"))?;
    let mut names = Vec::new();
    for export in exports {
        match types.component_item_for_export(export).map(|item| item.ty) {
            Some(ComponentEntityType::Instance(id)) => names.extend(
                types[id]
                    .exports
                    .iter()
                    .filter(|(_, item)| matches!(item.ty, ComponentEntityType::Func(_)))
                    .map(|(function, _)| export_name(export, Some(function))),
            ),
            Some(ComponentEntityType::Func(_)) => names.push(export_name(export, None)),
            _ => {}
        }
    }
    Ok(names)
}

/// How an export is shown: `interface.function`, or the function alone, the interface's
/// package and version left out when they are a `modhost:module` version this host runs.
pub(crate) fn export_name(interface: &str, function: Option<&str>) -> String {
    let short = interface
        .strip_prefix("modhost:module/")
        .and_then(|rest| rest.split_once('@'))
        .filter(|(_, version)| crate::SUPPORTED_API_VERSIONS.contains(version))
        .map_or(interface, |(name, _)| name);
    match function {
        Some(function) => format!("{short}.{function}"),
        None => short.to_owned(),
    }
}

/// How every WebAssembly file, module or component, begins.
const WASM_MAGIC: &[u8] = b"\0asm";

/// What `bytes` look like, for a file that should have been WebAssembly.
fn first_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    if bytes.is_empty() {
        "it is empty".to_owned()
    } else if bytes.starts_with(b"PK\x03\x04") {
        "it is a zip archive".to_owned()
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        "it is gzip data".to_owned()
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        // Shown as it is (whoever shows a message escapes it), its line breaks as spaces.
        format!(
            "it is text, starting `{}`",
            String::from_utf8_lossy(head).replace(['\n', '\r', '\t'], " ")
        )
    } else {
        let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("it starts with the bytes {}", hex.join(" "))
    }
}

/// The interfaces the host itself links: WASI 0.2 and every supported `modhost:module`
/// version.
pub(crate) fn host_interfaces() -> Vec<Interface> {
    let wasi = WASI.iter().map(|name| format!("{name}@{WASI_VERSION}"));
    let modhost = crate::SUPPORTED_API_VERSIONS
        .iter()
        .flat_map(|version| MODHOST.iter().map(move |name| format!("{name}@{version}")));
    wasi.chain(modhost)
        .filter_map(|name| Interface::parse(&name))
        .collect()
}

/// The packages `interfaces` come from, each once with its version: what a message lists
/// as what the host offers.
pub(crate) fn packages_of(interfaces: &[Interface]) -> Vec<String> {
    let mut packages: Vec<String> = interfaces
        .iter()
        .map(|i| match &i.version {
            Some(v) => format!("{}@{v}", i.package()),
            None => i.package().to_owned(),
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_as_the_linker_matches_them() {
        let provided = Interface::parse("wasi:io/streams@0.2.12");
        let newer_patch = Interface::parse("wasi:io/streams@0.2.0");
        let other_minor = Interface::parse("wasi:io/streams@0.3.0");
        assert!(matches!((&newer_patch, &provided), (Some(a), Some(b)) if a.satisfied_by(b)));
        assert!(matches!((&other_minor, &provided), (Some(a), Some(b)) if !a.satisfied_by(b)));
        let v1 = Interface::parse("pbx:telephony/calls@1.0.0");
        let v1_2 = Interface::parse("pbx:telephony/calls@1.2.0");
        assert!(matches!((&v1_2, &v1), (Some(a), Some(b)) if a.satisfied_by(b)));
        assert!(Interface::parse("not-an-interface").is_none());
        // A pre-release, or a 0.0.x, matches only itself, as the linker takes it.
        let parse = |text: &str| Interface::parse(text).unwrap_or_else(|| panic!("{text}"));
        let rc = parse("pbx:telephony/calls@1.0.0-rc1");
        assert!(!parse("pbx:telephony/calls@1.0.0").satisfied_by(&rc));
        assert!(!rc.satisfied_by(&parse("pbx:telephony/calls@1.0.0")));
        assert!(rc.satisfied_by(&rc));
        assert!(!parse("x:y/z@0.0.1").satisfied_by(&parse("x:y/z@0.0.2")));
        assert!(parse("x:y/z@0.0.2").satisfied_by(&parse("x:y/z@0.0.2")));
        assert_eq!(v1.as_ref().map(Interface::package), Some("pbx:telephony"));
    }

    #[test]
    fn a_component_whose_code_does_not_validate_is_read_but_not_validated() {
        // A component holding one core module whose one function body is an unknown
        // opcode: its top level reads, and validating it (as compiling begins) fails.
        let core = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // a core module
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // one type: [] -> []
            0x03, 0x02, 0x01, 0x00, // one function of it
            0x0a, 0x04, 0x01, 0x02, 0x00, 0xff, // its body: no locals, opcode 0xff
        ];
        let mut component = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01];
        component.push(u8::try_from(core.len()).unwrap_or(0));
        component.extend(core);
        assert!(top_level(&component).is_ok_and(|names| names.exports.is_empty()));
        let validated = validated_exports(&component, &[]);
        assert!(
            validated
                .as_ref()
                .is_err_and(|e| e.starts_with("it is not a valid WebAssembly component: ")),
            "{validated:?}"
        );
        assert_eq!(exported_functions(&component, &[]), None);
    }

    #[test]
    fn a_core_module_or_garbage_is_refused_with_a_reason() {
        let core = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        assert!(component_imports(&core).is_err_and(|e| e.contains("core WebAssembly")));
        assert!(component_imports(b"not wasm").is_err());
        for (bytes, said) in [
            (&b""[..], "it is not a WebAssembly file: it is empty"),
            (
                b"PK\x03\x04rest",
                "it is not a WebAssembly file: it is a zip archive",
            ),
            (
                b"<module>\n<rawname>",
                "it is not a WebAssembly file: it is text, starting `<module> <rawnam`",
            ),
            (
                b"\x7fELF\x02\x01",
                "it is not a WebAssembly file: it starts with the bytes 7f 45 4c 46",
            ),
        ] {
            assert_eq!(component_imports(bytes), Err(said.to_owned()));
        }
    }

    #[test]
    fn an_interface_the_contract_lacks_is_an_unknown_import_not_a_version() {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = crate::Runtime::new(cache.path()).unwrap_or_else(|e| panic!("{e}"));
        let version = crate::SUPPORTED_API_VERSIONS[0];
        let names = TopLevel {
            imports: vec![format!("modhost:module/zz@{version}")],
            exports: Vec::new(),
        };
        match runtime.check_top_level(std::path::Path::new("m.wasm"), &names) {
            Err(crate::Error::Imports { unknown, .. }) => {
                assert_eq!(unknown, [format!("modhost:module/zz@{version}")]);
            }
            other => panic!("expected an unknown import, got {other:?}"),
        }
        let names = TopLevel {
            imports: vec!["modhost:module/kv@9.9.9".to_owned()],
            exports: Vec::new(),
        };
        let refused = runtime.check_top_level(std::path::Path::new("m.wasm"), &names);
        assert!(
            matches!(&refused, Err(crate::Error::ApiVersion { found, .. }) if found == "9.9.9"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_component_that_does_not_export_lifecycle_and_hooks_is_refused_naming_them() {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = crate::Runtime::new(cache.path()).unwrap_or_else(|e| panic!("{e}"));
        let version = crate::SUPPORTED_API_VERSIONS[0];
        let path = std::path::Path::new("m.wasm");
        let names = TopLevel {
            imports: vec![format!("modhost:module/log@{version}")],
            exports: vec![format!("modhost:module/lifecycle@{version}")],
        };
        let refused = runtime.check_top_level(path, &names);
        assert!(
            matches!(&refused, Err(crate::Error::MissingExports { missing, .. }) if missing == &["`hooks`"]),
            "{refused:?}"
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("`m.wasm` does not export modhost:module's `hooks`: ")
                && message.contains("export_module!"),
            "{message}"
        );
        let names = TopLevel {
            imports: Vec::new(),
            exports: vec!["wasi:cli/run@0.2.0".to_owned()],
        };
        let refused = runtime.check_top_level(path, &names).err();
        assert!(
            refused
                .as_ref()
                .is_some_and(|e| e.to_string().contains("`lifecycle` and `hooks`")),
            "{refused:?}"
        );
        let names = TopLevel {
            imports: Vec::new(),
            exports: vec![
                format!("modhost:module/lifecycle@{version}"),
                format!("modhost:module/hooks@{version}"),
            ],
        };
        assert!(runtime.check_top_level(path, &names).is_ok());
    }
}
