//! Real-world-shaped module.xml files, one malformed file per error class, and fuzzing.

use std::path::Path;

use modhost_manifest::xml::Position;
use modhost_manifest::{Access, Capability, Error, Manifest};
use proptest::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(name: &str) -> Manifest {
    Manifest::parse(&fixture(name), name).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn freepbx_16_core_parses_completely() {
    let core = parse("core.xml");
    assert_eq!(
        (core.rawname.as_str(), core.version.as_str()),
        ("core", "16.0.68.13")
    );
    assert_eq!(core.repo, "standard");
    assert_eq!(core.category, "Applications");
    assert_eq!(
        core.description.as_deref(),
        Some("Core & trunk management: extensions, devices, users, routes.")
    );

    let get_config = &core.methods[0];
    assert_eq!(
        (
            get_config.hook.as_str(),
            get_config.handler.as_str(),
            get_config.priority
        ),
        ("get_config", "core_do_get_config", 480)
    );
    assert_eq!(core.methods[2].priority, 500, "default priority");

    assert_eq!(core.hooks.len(), 5);
    let chown = &core.hooks[0];
    assert_eq!(
        (
            chown.target.as_str(),
            chown.hook.as_str(),
            chown.handler.as_str()
        ),
        ("framework", "fwcChownFiles", "chownFreepbx")
    );
    assert_eq!(chown.target_class.as_deref(), Some("Chown"));
    assert_eq!(chown.namespace.as_deref(), Some("FreePBX\\modules"));
    assert_eq!(core.hooks[1].priority, 400);
    assert_eq!(core.hooks[2].priority, 500);

    assert_eq!(core.database.tables.len(), 4);
    let trunks = &core.database.tables[0];
    assert_eq!(trunks.fields.len(), 7);
    assert!(trunks.fields[0].primarykey && trunks.fields[0].notnull);
    assert!(!trunks.fields[4].notnull);
    assert_eq!(trunks.keys[0].columns, ["tech", "channelid"]);
    let incoming = &core.database.tables[3];
    assert!(incoming.fields[0].autoincrement && incoming.fields[0].unsigned);
    assert_eq!(
        (incoming.fields[5].precision, incoming.fields[5].scale),
        (Some(10), Some(2))
    );
    assert_eq!(
        incoming.keys[0]
            .attributes
            .get("foreigntable")
            .map(String::as_str),
        Some("trunks")
    );

    assert_eq!(core.menuitems.len(), 8);
    assert_eq!(core.menuitems[0].sort, Some(-10));
    assert_eq!(
        core.menuitems[6]
            .attributes
            .get("requires_auth")
            .map(String::as_str),
        Some("false")
    );
    assert_eq!(
        core.popovers[0].params.get("view").map(String::as_str),
        Some("form")
    );
    assert_eq!(core.console[1].aliases, ["extension", "ext"]);
    assert_eq!(
        core.oobe.as_ref().map(|o| (o.method.as_str(), o.priority)),
        Some(("oobeHook", 50))
    );
    assert_eq!(
        core.commercial.as_ref().map(|c| c.kind.as_str()),
        Some("free")
    );
    assert_eq!(core.fileinclude[0].path, "install.inc.php");
    assert_eq!(
        core.updateurl.as_deref(),
        Some("https://updates.example.org/core.json")
    );

    let depends = &core.depends;
    assert_eq!(depends.version[0].to_string(), "ge 16.0.10.30");
    assert_eq!(
        depends
            .modules
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["framework ge 16.0.10.30", "sipsettings ge 16.0.5"]
    );
    assert_eq!(depends.engines.len(), 2);
    assert_eq!(
        depends.php.components[0]
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["pdo_mysql", "mysqli"]
    );
    assert_eq!(depends.files, ["/usr/sbin/asterisk"]);
    assert_eq!(
        core.supported.as_ref().map(|s| s.version.as_str()),
        Some("16.0")
    );

    // FreePBX's module admin reads these three: core may be neither disabled nor
    // uninstalled, and says where to read more.
    assert!(core.unknown.is_empty(), "{:?}", core.unknown);
    assert!(core.warnings.is_empty(), "{:?}", core.warnings);
    assert!(!core.candisable && !core.canuninstall);
    assert_eq!(
        core.more_info.as_deref(),
        Some("https://wiki.freepbx.org/display/F2/Core")
    );
}

#[test]
fn json_carries_every_element_under_the_documented_names() {
    let json = serde_json::to_value(parse("core.xml")).unwrap_or_default();
    let legacy = serde_json::to_value(parse("legacy-2.11.xml")).unwrap_or_default();
    for key in [
        "rawname",
        "repo",
        "name",
        "version",
        "type",
        "category",
        "publisher",
        "description",
        "changelog",
        "info",
        "license",
        "licenselink",
        "location",
        "md5sum",
        "sha1",
        "menuitems",
        "depends",
        "requirements",
        "supported",
        "popovers",
        "oobe",
        "commercial",
        "fileinclude",
        "console",
        "database",
        "hooks",
        "methods",
        "updateurl",
        "component",
        "updateservers",
        "capabilities",
        "canuninstall",
        "candisable",
        "more-info",
        "warnings",
    ] {
        assert!(
            json.get(key).is_some(),
            "`{key}` missing from manifest JSON"
        );
        // Every element carries a value in one of the two big fixtures, so a parser that
        // dropped one would show here.
        let filled = |json: &serde_json::Value| match &json[key] {
            serde_json::Value::Null => false,
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            serde_json::Value::String(s) => !s.is_empty(),
            _ => true,
        };
        assert!(
            filled(&json) || filled(&legacy),
            "`{key}` has no value in core.xml or legacy-2.11.xml"
        );
    }
    assert_eq!(
        json["depends"]["modules"][0],
        serde_json::json!({"name": "framework", "op": "ge", "version": "16.0.10.30"})
    );
    for key in ["version", "modules", "engines", "files", "php"] {
        assert!(json["depends"].get(key).is_some(), "depends.{key}");
    }
    assert_eq!(
        json["methods"][0],
        serde_json::json!({"hook": "get_config", "handler": "core_do_get_config", "priority": 480})
    );
    let hook = &json["hooks"][0];
    for key in ["target", "hook", "handler", "priority"] {
        assert!(hook.get(key).is_some(), "hooks[].{key}");
    }
    let field = &json["database"]["tables"][0]["fields"][0];
    assert_eq!(
        (field["name"].as_str(), field["type"].as_str()),
        (Some("trunkid"), Some("integer"))
    );
    assert!(json["database"]["tables"][0]["keys"].is_array());
    assert_eq!(json["supported"]["version"], "16.0");
    assert_eq!(json["menuitems"][0]["key"], "extensions");
    assert!(matches!(&json["warnings"], Value::Array(w) if w.is_empty()));
    assert_eq!(
        (&json["canuninstall"], &json["candisable"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
}

#[test]
fn legacy_2_11_file_with_requirements_location_and_md5sum() {
    let fax = parse("legacy-2.11.xml");
    assert_eq!(fax.requirements.files, ["/usr/sbin/asterisk"]);
    assert_eq!(fax.requirements.modules[0].name, "core");
    assert_eq!(
        fax.location.as_deref(),
        Some("release/2.11/fax-2.11.0.2.tgz")
    );
    assert_eq!(
        fax.md5sum.as_deref(),
        Some("4b0bd3a5b1d2ad62bd39d5f39e0a3fa2")
    );
    assert_eq!(
        fax.sha1.as_deref(),
        Some("0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33"),
        "<sha1sum> is read as sha1"
    );
    assert_eq!(fax.kind.as_deref(), Some("setup"));
    assert!(
        fax.warnings
            .iter()
            .any(|w| w.message.contains("<type>setup</type> is deprecated"))
    );
    assert_eq!(fax.depends.modules[0].to_string(), "core ge 2.11.0rc1");
    assert_eq!(fax.repo, "local");
}

#[test]
fn files_saved_in_other_encodings_are_read_as_they_declare_or_mark_themselves() {
    let cp1252 = b"<?xml version=\"1.0\" encoding=\"Windows-1252\"?>\r\n<module><rawname>x</rawname>\
        <name>Caf\xe9</name><version>1.0</version><description>\x93Quoted\x94</description></module>";
    let read = Manifest::parse_bytes(cp1252, "module.xml").map_err(|e| e.to_string());
    assert_eq!(
        read.as_ref()
            .map(|m| (m.name.as_str(), m.description.as_deref())),
        Ok(("Café", Some("\u{201c}Quoted\u{201d}")))
    );
    // Notepad's "Unicode": UTF-16 with a byte-order mark.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<module><rawname>x</rawname><name>Café</name><version>1.0</version></module>"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let read = Manifest::parse_bytes(&utf16, "module.xml").map_err(|e| e.to_string());
    assert_eq!(read.map(|m| m.name), Ok("Café".to_owned()));
}

#[test]
fn minimal_file_gets_the_defaults() {
    let hello = parse("minimal.xml");
    assert_eq!(hello.category, "Other");
    assert_eq!(hello.repo, "local");
    assert_eq!(hello.component, "module.wasm");
    assert!(hello.depends.is_empty() && hello.methods.is_empty() && hello.warnings.is_empty());
}

#[test]
fn freepbx_2_categories_are_kept_as_written() {
    for category in [
        "Basic",
        "System Administration",
        "Inbound Call Control",
        "messaging",
    ] {
        let xml = format!(
            "<module><rawname>x</rawname><name>X</name><version>1.0</version>\
             <category>{category}</category></module>"
        );
        let m = Manifest::parse(&xml, "x.xml").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            m.category.eq_ignore_ascii_case(category) && m.warnings.is_empty(),
            "{category}: {} {:?}",
            m.category,
            m.warnings
        );
    }
}

#[test]
fn unknown_category_becomes_other_with_a_warning_and_capabilities_are_read() {
    let xml = r#"<module><rawname>x</rawname><name>X</name><version>1.0</version><category>Telephony</category>
        <capabilities><directory path="/var/spool/asterisk/voicemail" access="read-write"/><directory path="/etc/asterisk"/></capabilities>
        <updateservers><server type="extension" priority="2" name="Main">https://u.example.org/x.xml</server></updateservers></module>"#;
    let m = Manifest::parse(xml, "x.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.category, "Other");
    assert!(
        m.warnings[0]
            .message
            .contains("unknown category `Telephony`")
    );
    assert_eq!(
        m.capabilities,
        [
            Capability::Directory {
                path: "/var/spool/asterisk/voicemail".into(),
                access: Access::ReadWrite
            },
            Capability::Directory {
                path: "/etc/asterisk".into(),
                access: Access::ReadOnly
            },
        ]
    );
    assert_eq!(
        (m.updateservers[0].priority, m.updateservers[0].url.as_str()),
        (2, "https://u.example.org/x.xml")
    );
    // A misspelt attribute leaves the directory read-only, and is said.
    let xml = r#"<module><rawname>x</rawname><name>X</name><version>1.0</version>
        <capabilities><directory path="/srv/x" acess="read-write"/><import package="pbx:telephony" version="1"/></capabilities></module>"#;
    let m = Manifest::parse(xml, "x.xml").unwrap_or_else(|e| panic!("{e}"));
    let said: Vec<&str> = m.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        said,
        [
            "<directory>: unknown attribute `acess` is not used (known: path, access)",
            "<import>: unknown attribute `version` is not used (known: package)",
        ]
    );
    assert_eq!(
        m.capabilities[0],
        Capability::Directory {
            path: "/srv/x".into(),
            access: Access::ReadOnly
        }
    );
}

/// A fixture's `<!-- expect LINE:COLUMN: MESSAGE -->` comment (on any line, since an
/// XML declaration must come first): the position and (the start of) the message.
fn expectation(source: &[u8], name: &str) -> (Position, String) {
    let text = String::from_utf8_lossy(source);
    let comment = text
        .lines()
        .find_map(|l| l.strip_prefix("<!-- expect "))
        .and_then(|l| l.strip_suffix(" -->"))
        .unwrap_or_else(|| panic!("{name} has no expect comment"));
    let mut parts = comment.splitn(3, ':');
    let mut number = || parts.next().and_then(|n| n.trim().parse::<usize>().ok());
    let (Some(line), Some(column)) = (number(), number()) else {
        panic!("{name}: the expect comment has no LINE:COLUMN")
    };
    let message = parts.next().unwrap_or_default().trim().to_owned();
    (Position { line, column }, message)
}

/// The `.xml` files of a fixture folder, as bytes and names, in name order.
fn fixtures_in(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "xml"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn each_malformed_file_is_refused_with_its_one_message_at_its_position() {
    let fixtures = fixtures_in("malformed");
    for (name, bytes) in &fixtures {
        let (position, expected) = expectation(bytes, name);
        // From bytes, as a file is read, so that encoding errors are fixtures too.
        let error = match Manifest::parse_bytes(bytes, name) {
            Ok(_) => panic!("{name} parsed but must be refused"),
            Err(error) => error,
        };
        assert!(
            error.to_string().contains(&format!("{name}:")),
            "{name}: the file is named:\n{error}"
        );
        let problems = match &error {
            Error::Syntax { problem, .. } => std::slice::from_ref(problem),
            Error::Invalid { problems, .. } => problems.as_slice(),
        };
        // Each fixture holds one problem, so that a stray follow-on error shows.
        assert!(
            matches!(problems, [p] if p.position == position && p.message.contains(&expected)),
            "{name}: expected only `{}:{}: …{expected}…`, got:\n{error}",
            position.line,
            position.column
        );
    }
    assert!(
        fixtures.len() >= 50,
        "only {} malformed fixtures found",
        fixtures.len()
    );
}

#[test]
fn each_warning_file_loads_with_its_one_warning_at_its_position() {
    let fixtures = fixtures_in("warnings");
    for (name, bytes) in &fixtures {
        let (position, expected) = expectation(bytes, name);
        let manifest = Manifest::parse_bytes(bytes, name).unwrap_or_else(|e| panic!("{e}"));
        let warnings: Vec<String> = manifest.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{name}: {warnings:#?}");
        assert!(
            warnings[0].starts_with(&format!(
                "{}:{}: {expected}",
                position.line, position.column
            )),
            "{name}: {warnings:#?}"
        );
    }
    assert!(
        fixtures.len() >= 5,
        "only {} warning fixtures",
        fixtures.len()
    );
}

#[test]
fn every_problem_in_tables_fields_keys_and_php_components_is_reported_at_once() {
    let Err(Error::Invalid { problems, .. }) =
        Manifest::parse(&fixture("every-problem.xml"), "every-problem.xml")
    else {
        panic!("every-problem.xml must be invalid")
    };
    let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let types = "(expected one of string, text, integer, smallint, bigint, boolean, decimal, \
                 float, datetime, datetimetz, date, time, blob, binary, guid, json, array, \
                 simple_array, object)";
    let expected = [
        // `>=` is PHP's spelling of ge, read since cxpanel writes it; `=>` is no operator.
        "6:3: dependency 'curl => 7' is not of the form 'name [op] version': `=>` is not a \
         comparison operator (expected one of lt le gt ge eq ne == = != < <= > >= <>)"
            .to_owned(),
        "6:3: dependency 'zend guard' is not of the form 'name [op] version': `guard` is not \
         a valid version: expected a number"
            .to_owned(),
        "9:3: <table> name `9lives` is not an identifier (letters, digits, _)".to_owned(),
        "10:4: length `-1` of <field> is not a non-negative integer".to_owned(),
        "13:4: <field> name `bad name` is not an identifier (letters, digits, _)".to_owned(),
        "13:4: notnull `sometimes` of <field> is not true or false".to_owned(),
        format!("14:4: field `started` has unknown type `timestamp` {types}"),
        "14:4: precision `x` of <field> is not a non-negative integer".to_owned(),
        "15:4: field `Started` of table `calls` is already declared (at 14:4 as `started`; \
         SQLite ignores case in names)"
            .to_owned(),
        "17:4: <key> name `by-start` is not an identifier (letters, digits, _)".to_owned(),
        "17:4: key `by-start` has unknown type `clustered` (expected one of index, unique, \
         foreign, primary, fulltext)"
            .to_owned(),
        // `bad name` is a field, though a badly named one: only `callee` is reported.
        "18:51: key `by_caller` names column `callee`, which is not a field of table `calls`"
            .to_owned(),
        // No "table `notes` has no fields": it has one, which is already reported.
        format!("21:4: field `body` has unknown type `memo` {types}"),
        "23:3: table `CALLS` is already declared (at 12:3 as `calls`; SQLite ignores case in \
         names)"
            .to_owned(),
    ];
    assert_eq!(found, expected);
}

#[test]
fn every_problem_is_reported_at_once() {
    let xml = "<module>\n<rawname>Bad</rawname>\n<name/>\n<version>x</version>\n<methods><a pri=\"z\">h</a></methods>\n\
               <database><table name=\"t\"><field name=\"f\" type=\"nope\"/></table></database>\n</module>";
    let Err(Error::Invalid { problems, .. }) = Manifest::parse(xml, "m.xml") else {
        panic!("must be invalid")
    };
    let lines: Vec<usize> = problems.iter().map(|p| p.position.line).collect();
    // One problem on line 6, the field's type: not also "table `t` has no fields".
    assert_eq!(lines, [2, 3, 4, 5, 6], "{problems:#?}");
}

#[test]
fn huge_or_deep_documents_are_refused_without_exhausting_memory() {
    let deep = format!(
        "<module>{}{}</module>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let err = Manifest::parse(&deep, "deep.xml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("nested deeper than"), "{err}");
    let wide = format!("<module>{}</module>", "<a/>".repeat(100_000));
    let err = Manifest::parse(&wide, "wide.xml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("more than 20000 elements"), "{err}");
    // Each attribute is checked against those before it: a hundred thousand in one tag
    // (a 1 MiB module.xml) would take minutes, in every `list` of a package directory.
    let attributes: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let crowded = format!("<module{attributes}/>");
    let err = Manifest::parse(&crowded, "crowded.xml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("<module> has more than 64 attributes"),
        "{err}"
    );
    let field: String = (0..64).map(|i| format!(" a{i}=\"\"")).collect();
    let err = Manifest::parse(&format!("<module{field}/>"), "64.xml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!err.contains("attributes"), "64 are allowed: {err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::parse(&String::from_utf8_lossy(&bytes), "fuzz.xml");
    }

    #[test]
    fn mutated_real_files_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = fixture("core.xml").into_bytes();
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = Manifest::parse(&String::from_utf8_lossy(&bytes), "fuzz.xml");
    }

    #[test]
    fn xml_shaped_noise_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "<module>", "</module>", "<rawname>", "</rawname>", "x", "1.0", "<version>", "</version>", "<depends>",
        "</depends>", "<module>core ge 1</module>", "&amp;", "&#0;", "&#xD800;", "<![CDATA[", "]]>", "<!--", "-->",
        "<hooks>", "<a callingMethod=\"b\">", "</a>", "<database>", "<table name=\"t\">", "<field name=\"f\" type=\"string\"/>",
        "</table>", "<?xml version=\"1.0\"?>", "<!DOCTYPE", "\"", "'", "=", " ",
    ]), 0..64)) {
        let _ = Manifest::parse(&parts.concat(), "fuzz.xml");
    }
}

#[test]
fn old_freepbx_spellings_load_and_dependencies_have_one_json_shape() {
    let xml = "<module><rawname>legacy</rawname><name>Legacy</name><version>2.9.0alpha1.6</version>\
               <depends><module>core ge13.0</module><module>framework</module>\
               <version>==2.9</version></depends></module>";
    let manifest = Manifest::parse(xml, "legacy.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.version.canonical(), "2.9.0alpha1.6");
    let json = serde_json::to_value(&manifest).unwrap_or_default();
    assert_eq!(
        json["depends"]["modules"],
        serde_json::json!([
            {"name": "core", "op": "ge", "version": "13.0"},
            {"name": "framework", "op": null, "version": null},
        ])
    );
    assert_eq!(
        json["depends"]["version"],
        serde_json::json!([{"op": "eq", "version": "2.9"}])
    );
}

#[test]
fn unknown_elements_are_kept_whole_wherever_they_stand() {
    let xml = "<module><rawname>x</rawname><name>X</name><version>1.0</version>\
               <future a=\"1\"><part b=\"2\">text</part></future>\
               <depends><newkind level=\"3\">abc</newkind></depends>\
               <database><table name=\"x_t\"><field name=\"id\" type=\"integer\" collation=\"nocase\"/>\
               <index name=\"i\"/></table></database></module>";
    let manifest = Manifest::parse(xml, "x.xml").unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_value(&manifest.unknown).unwrap_or_default();
    assert_eq!(
        json,
        serde_json::json!([
            {"parent": "module", "name": "future", "attributes": {"a": "1"}, "text": "",
             "children": [{"parent": "module/future", "name": "part", "attributes": {"b": "2"},
                           "text": "text", "children": []}]},
            {"parent": "module/depends", "name": "newkind", "attributes": {"level": "3"},
             "text": "abc", "children": []},
            {"parent": "module/database/table", "name": "index", "attributes": {"name": "i"},
             "text": "", "children": []},
        ])
    );
    let warnings: Vec<&str> = manifest
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown attribute `collation`")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("<newkind> in <depends>")),
        "{warnings:?}"
    );
}
