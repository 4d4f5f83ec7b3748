//! The example modules are built as authors' modules are (the `guest` profile, the
//! scaffolds' settings): without DWARF, which made a 60-line module's component 3.1 MB,
//! but with the `name` section that turns a trap's backtrace into function names.

use std::path::Path;

use modhost_test_support::{component, package};
use wasmparser::{Parser, Payload};

/// The names of every custom section of the component at `path`, its core modules' included.
fn custom_sections(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Parser::new(0)
        .parse_all(&bytes)
        .filter_map(|payload| match payload {
            Ok(Payload::CustomSection(section)) => Some(section.name().to_owned()),
            Ok(_) => None,
            Err(e) => panic!("{}: {e}", path.display()),
        })
        .collect()
}

#[test]
fn example_components_carry_names_but_no_debug_info() {
    for rawname in ["core", "voicemail", "callback"] {
        let sections = custom_sections(&component(rawname));
        assert!(
            sections.iter().any(|s| s == "name"),
            "{rawname}: no name section in {sections:?}"
        );
        let debug: Vec<&String> = sections
            .iter()
            .filter(|s| s.starts_with(".debug"))
            .collect();
        assert!(debug.is_empty(), "{rawname} keeps {debug:?}");
        // 760 KB packages before; a fourth of that at most, as issue 19 asked.
        let size = std::fs::metadata(package(rawname))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            (1..190_000).contains(&size),
            "{rawname}: a {size}-byte package"
        );
    }
}
