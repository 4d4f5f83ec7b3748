//! `manifest`, `compare-versions` and `checkdepends`.

use modhost_test_support::hostile::{FILE, write_package, write_zip};
use modhost_test_support::{arg, example_dir, package};

use crate::root;

#[test]
fn manifest_reads_a_package_a_directory_and_a_file_alike() {
    let root = root();
    let mut from_package = root
        .ok(&["manifest", "--json", arg(&package("core"))])
        .json();
    // A package holds its component, whose imports are shown too; the source directory
    // and the module.xml hold none.
    let imports = from_package
        .as_object_mut()
        .and_then(|o| o.remove("imports"));
    assert!(
        imports.is_some_and(|i| i.as_array().is_some_and(|i| !i.is_empty())),
        "{from_package}"
    );
    let from_dir = root
        .ok(&["manifest", "--json", arg(&example_dir("core"))])
        .json();
    let from_file = root
        .ok(&[
            "manifest",
            "--json",
            arg(&example_dir("core").join("module.xml")),
        ])
        .json();
    assert_eq!(from_package, from_dir);
    assert_eq!(from_dir, from_file);
    assert_eq!(
        from_package["methods"][0],
        serde_json::json!({"hook": "get_config", "handler": "core_do_get_config", "priority": 480})
    );
    let text = root
        .ok(&["manifest", arg(&example_dir("voicemail"))])
        .stdout;
    assert!(
        text.starts_with("Voicemail 16.0.12 (voicemail)\n"),
        "{text}"
    );
    assert!(text.contains("depends      core ge 16.0"), "{text}");
    // A source directory before its build holds no component, which is said.
    assert!(
        text.contains("note         `module.wasm` is not built yet"),
        "{text}"
    );
    // What a module asks of the host is shown before it is installed.
    let text = root
        .ok(&["manifest", arg(&example_dir("callback").join("module.xml"))])
        .stdout;
    assert!(
        text.contains("  asks for     the application's `pbx:telephony`"),
        "{text}"
    );
    // What a FreePBX module.xml says of its release is shown in text, as in JSON.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let xml = dir.path().join("module.xml");
    let written = std::fs::write(
        &xml,
        r#"<module><rawname>cdr</rawname><name>CDR Reports</name><version>16.0.40</version>
        <more-info>https://wiki.freepbx.org/display/F2/CDR+Reports+Module</more-info>
        <modtype>report</modtype>
        <bugfix id="FREEPBX-23041">https://issues.freepbx.org/browse/FREEPBX-23041</bugfix>
        <bugfix>Fixed a crash
            when exporting</bugfix><bugfix id="FREEPBX-1"/>
        <category>Dashboard</category>
        <database><table name="trunks">
            <field name="trunkid" type="integer" primaryKey="true"/>
            <field name="tech" type="string" length="20" primarykey="true"/>
            <field name="name" type="string" length="50"/>
            <key name="name" type="index"><column name="name"/></key>
        </table></database></module>"#,
    );
    assert!(written.is_ok(), "{written:?}");
    let text = root.ok(&["manifest", arg(&xml)]).stdout;
    for said in [
        "more info    https://wiki.freepbx.org/display/F2/CDR+Reports+Module",
        "type         report",
        "fixes        FREEPBX-23041: https://issues.freepbx.org/browse/FREEPBX-23041",
        "fixes        Fixed a crash when exporting\n",
        "fixes        FREEPBX-1\n",
        // FreePBX's dashboard module's own category, kept as written.
        "category     Dashboard\n",
        // A primary key over two columns is said as one, beside the other keys.
        "table        trunks (3 fields, primary key (trunkid, tech), 1 other key)\n",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn an_invalid_manifest_exits_non_zero_listing_every_error() {
    let root = root();
    let bad = root.path().with_file_name("module.xml");
    let xml = "<module>\n<rawname>Bad</rawname>\n<name>X</name>\n<version>1.0x</version>\n\
               <depends><module>core>=13.0.1</module></depends>\n</module>\n";
    assert!(std::fs::write(&bad, xml).is_ok());
    let run = root.fails(&["manifest", arg(&bad)]);
    for expected in [
        "module.xml:2:1: rawname `Bad`",
        "module.xml:4:1: `1.0x` is not a valid version",
        "module.xml:5:10: dependency 'core>=13.0.1' is not of the form 'name [op] version'",
    ] {
        assert!(
            run.stderr.contains(expected),
            "`{expected}` missing from:\n{}",
            run.stderr
        );
    }
    // The same problems, for scripts, from a module.xml alone or inside a package, and
    // whether the package is described or installed.
    let tgz = root.path().with_file_name("bad.tgz");
    let zip = root.path().with_file_name("bad.zip");
    let entries = [("Bad/module.xml", FILE, xml.as_bytes())];
    write_package(&tgz, &entries);
    write_zip(&zip, &entries);
    for args in [
        ["manifest", "--json", arg(&bad)],
        ["manifest", "--json", arg(&tgz)],
        ["manifest", "--json", arg(&zip)],
        ["install", "--json", arg(&tgz)],
    ] {
        let problems = root.fails(&args).json()["problems"].clone();
        let positions: Vec<(u64, u64)> = problems
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let at = |k: &str| p["position"][k].as_u64().unwrap_or_default();
                (at("line"), at("column"))
            })
            .collect();
        assert_eq!(
            positions,
            [(2, 1), (4, 1), (5, 10)],
            "{args:?}: each problem, with its position, for scripts: {problems}"
        );
    }
}

#[test]
fn compare_versions_follows_dpkg_exit_codes() {
    let root = root();
    let code = |args: &[&str]| root.run(args).success;
    assert!(code(&["compare-versions", "2.11.0rc1", "lt", "2.11.0"]));
    assert!(code(&["compare-versions", "1.0b1", "eq", "1.0beta1"]));
    assert!(code(&["compare-versions", "1.10", "gt", "1.9"]));
    let status = |args: &[&str]| {
        root.command(args)
            .output()
            .ok()
            .and_then(|o| o.status.code())
    };
    assert_eq!(status(&["compare-versions", "1.0", "ge", "1.0.0"]), Some(1));
    assert_eq!(
        status(&["compare-versions", "16.0.40", "lt", "16.0.40.1"]),
        Some(0)
    );
    assert_eq!(
        status(&["compare-versions", "1.0", "lt", "banana"]),
        Some(2)
    );
    assert_eq!(status(&["compare-versions", "1.0", "lte", "2.0"]), Some(2));
}

#[test]
fn compare_versions_accepts_every_depends_operator_and_explains_an_unknown_one() {
    let root = root();
    let status = |args: &[&str]| {
        root.command(args)
            .output()
            .ok()
            .and_then(|o| o.status.code())
    };
    // Every spelling `<depends>` accepts, in any case: (a, op, b, holds).
    for (a, op, b, holds) in [
        ("1.0", "==", "1.0", true),
        ("1.0", "=", "2.0", false),
        ("1.0b1", "EQ", "1.0beta1", true),
        ("1.0", "!=", "1.0", false),
        ("1.0", "Ne", "2.0", true),
        ("1.9", "LT", "1.10", true),
        ("1.0", "LE", "1.0.0", true),
        ("2.0", "GE", "2.0", true),
        ("2.0", "Gt", "2.0", false),
    ] {
        let expected = Some(if holds { 0 } else { 1 });
        assert_eq!(
            status(&["compare-versions", a, op, b]),
            expected,
            "{a} {op} {b}"
        );
    }
    let run = root.ok(&["compare-versions", "--json", "1.0b1", "==", "1.0beta1"]);
    assert_eq!(
        run.json(),
        serde_json::json!({"a": "1.0beta1", "op": "eq", "b": "1.0beta1", "holds": true})
    );

    // An operator `<depends>` refuses is exit code 2 with the parser's message, not a
    // usage error; under --json a JSON error document.
    for op in ["=>", "lte", "~="] {
        let output = root
            .command(&["compare-versions", "--json", "1.0", op, "2.0"])
            .output()
            .ok();
        let Some(output) = output else {
            panic!("modhost did not run")
        };
        assert_eq!(output.status.code(), Some(2), "{op}");
        let message = format!(
            "`{op}` is not a comparison operator (expected one of lt le gt ge eq ne == = != < <= > >= <>)"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{op}: {stderr}"
        );
        let document: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_default();
        assert_eq!(document, serde_json::json!({ "error": message }), "{op}");
    }
    let run = root.run(&["compare-versions", "--json", "1.0", "eq", "banana"]);
    assert!(!run.success);
    assert!(
        run.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("`banana` is not a valid version")),
        "{}",
        run.stdout
    );
}

#[test]
fn checkdepends_reports_each_constraint_against_installed_modules() {
    let root = root();
    let voicemail = package("voicemail");
    let run = root.fails(&["checkdepends", "--json", arg(&voicemail)]);
    let report = run.json();
    assert_eq!(report["satisfied"], false);
    assert_eq!(report["checks"][0]["constraint"], "core ge 16.0");
    assert_eq!(report["checks"][0]["detail"], "not installed");

    root.ok(&["install", arg(&package("core"))]);
    let run = root.ok(&["checkdepends", arg(&voicemail)]);
    assert!(
        run.stdout
            .contains("ok        module core ge 16.0: installed 16.0.40"),
        "{}",
        run.stdout
    );
    let run = root.ok(&["checkdepends", "core"]);
    assert!(
        run.stdout.contains(
            "unchecked supported ge 16.0: the host application's version is not declared"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn platform_facts_from_modhost_toml_are_enforced() {
    let root = root();
    root.ok(&["recover"]);
    let config =
        "[platform]\nversion = \"15.0.3\"\nengine = { name = \"asterisk\", version = \"18.2\" }\n";
    assert!(std::fs::write(root.path().join("modhost.toml"), config).is_ok());
    let run = root.fails(&["checkdepends", arg(&package("core"))]);
    assert!(
        run.stdout.contains(
            "FAILED    supported ge 16.0: the host application's version is 15.0.3 (too old)"
        ),
        "{}",
        run.stdout
    );
    let run = root.fails(&["install", arg(&package("core"))]);
    assert!(
        run.stderr.contains(
            "`core` 16.0.40 requires a host application version (its <supported>) `ge 16.0`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        root.ok(&["list", "--json"])
            .json()
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    assert!(
        std::fs::write(
            root.path().join("modhost.toml"),
            "[platform]\nversion = \"16.0.40\"\n"
        )
        .is_ok()
    );
    root.ok(&["install", arg(&package("core"))]);

    assert!(
        std::fs::write(
            root.path().join("modhost.toml"),
            "[platform]\nversoin = \"16\"\n"
        )
        .is_ok()
    );
    let run = root.fails(&["list"]);
    assert!(
        run.stderr.contains("modhost.toml") && run.stderr.contains("versoin"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_oversized_module_xml_is_refused() {
    let root = root();
    let big = root.path().with_file_name("big.xml");
    let padding = format!("<!--{}-->", "x".repeat(2 << 20));
    assert!(std::fs::write(&big, format!("<module>{padding}</module>")).is_ok());
    let run = root.fails(&["manifest", arg(&big)]);
    assert!(run.stderr.contains("larger than"), "{}", run.stderr);
}

#[test]
fn a_module_xml_is_read_in_the_encoding_it_declares_and_an_undeclared_one_placed() {
    let root = root();
    let xml = |declaration: &str| {
        let mut xml = format!("{declaration}\n<module>\n").into_bytes();
        xml.extend_from_slice(
            b"<rawname>x</rawname><name>Caf\xe9 \x93A\x94</name><version>1.0</version></module>\n",
        );
        xml
    };
    // As FreePBX (libxml2) reads them.
    for (encoding, name) in [
        ("ISO-8859-1", "Café \u{93}A\u{94}"),
        ("windows-1252", "Café \u{201c}A\u{201d}"),
    ] {
        let file = root.path().with_file_name(format!("{encoding}.xml"));
        let declared = format!("<?xml version=\"1.0\" encoding=\"{encoding}\"?>");
        assert!(std::fs::write(&file, xml(&declared)).is_ok());
        let run = root.ok(&["manifest", arg(&file), "--json"]);
        assert_eq!(run.json()["name"], name, "{}", run.stdout);
    }
    let undeclared = root.path().with_file_name("undeclared.xml");
    assert!(std::fs::write(&undeclared, xml("<!-- saved in windows-1252 -->")).is_ok());
    let run = root.fails(&["manifest", arg(&undeclared)]);
    assert!(
        run.stderr.contains(
            "undeclared.xml:3:30: byte 0xE9 is not UTF-8, and the document declares no other \
             encoding (convert the file to UTF-8, or declare its encoding)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_module_whose_module_xml_is_in_windows_1252_installs_and_runs() {
    let root = root();
    let dir = root.path().with_file_name("cafe");
    let xml = std::fs::read_to_string(example_dir("core").join("module.xml"))
        .unwrap_or_default()
        .replace("<name>Core</name>", "<name>Caf\u{e9}</name>");
    // As a Windows editor saves it: one byte for é, and says so.
    let mut bytes = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n".to_vec();
    bytes.extend(
        xml.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
    );
    let made = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("module.xml"), &bytes))
        .and_then(|()| {
            std::fs::copy(
                modhost_test_support::component("core"),
                dir.join("module.wasm"),
            )
        });
    assert!(made.is_ok(), "{made:?}");
    root.ok(&["install", arg(&dir)]);
    let listed = root.ok(&["list", "--json"]).json();
    assert_eq!(listed[0]["name"], "Café", "{listed}");
    // Its recorded module.xml is read again for every dispatch.
    root.ok(&["reload"]);
    let run = root.ok(&["install", arg(&dir)]);
    assert!(run.stdout.contains("nothing to do"), "{}", run.stdout);
}

#[test]
fn engine_and_php_facts_from_modhost_toml_decide_checkdepends() {
    let root = root();
    let depends = "<depends><engine>asterisk ge 18</engine><phpversion>ge 8.1</phpversion>\
                   <phpcomponent>mysqli ge 8.0</phpcomponent><phpcomponent>pdo_mysql||curl</phpcomponent>\
                   </depends></module>";
    let pkg = modhost_test_support::repackage(
        &package("core"),
        |xml| xml.replace("</module>", depends),
        &root.path().with_file_name("core-pbx.tgz"),
    );
    let code = |args: &[&str]| {
        root.command(args)
            .output()
            .ok()
            .and_then(|o| o.status.code())
    };
    let platform = |engine: &str, php: &str, components: &str| {
        format!(
            "[platform]\nversion = \"16.0.40\"\nengine = {{ name = \"asterisk\", version = \"{engine}\" }}\n\
             [platform.php]\nversion = \"{php}\"\ncomponents = {{ {components} }}\n"
        )
    };

    root.configure(&platform(
        "18.2.0",
        "8.2.7",
        "mysqli = \"8.2.7\", curl = \"\"",
    ));
    assert_eq!(code(&["checkdepends", arg(&pkg)]), Some(0));
    // `manifest` lists every one of them.
    let text = root.ok(&["manifest", arg(&pkg)]).stdout;
    assert!(
        text.contains(
            "engine asterisk ge 18, php ge 8.1, php component mysqli ge 8.0, \
             php component pdo_mysql || curl"
        ),
        "{text}"
    );
    let text = root.ok(&["checkdepends", arg(&pkg)]).stdout;
    for line in [
        "  ok        engine asterisk ge 18: the engine is asterisk 18.2.0\n",
        "  ok        phpversion ge 8.1: the PHP version is 8.2.7\n",
        "  ok        phpcomponent mysqli ge 8.0: mysqli is present\n",
        "  ok        phpcomponent pdo_mysql || curl: curl is present\n",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    let report = root.ok(&["checkdepends", "--json", arg(&pkg)]).json();
    assert_eq!(report["satisfied"], true, "{report}");
    let outcomes: Vec<(String, String)> = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["kind"].to_string(), c["outcome"].to_string()))
        .collect();
    assert_eq!(
        outcomes.len(),
        5,
        "engine, phpversion, two phpcomponents, supported: {report}"
    );
    assert!(outcomes.iter().all(|(_, o)| o == "\"ok\""), "{report}");

    // Each unmet fact: exit 1, the failing constraint named with what the host declared.
    for (toml, kind, constraint, detail) in [
        (
            platform("16.2", "8.2.7", "mysqli = \"8.2.7\", curl = \"\""),
            "engine",
            "asterisk ge 18",
            "the engine is asterisk 16.2",
        ),
        (
            platform("18.2.0", "7.4.33", "mysqli = \"8.2.7\", curl = \"\""),
            "phpversion",
            "ge 8.1",
            "the PHP version is 7.4.33 (too old)",
        ),
        (
            platform("18.2.0", "8.2.7", "mysqli = \"7.4.33\", curl = \"\""),
            "phpcomponent",
            "mysqli ge 8.0",
            "mysqli 7.4.33 is declared, which is too old",
        ),
        (
            platform("18.2.0", "8.2.7", "mysqli = \"8.2.7\", gd = \"\""),
            "phpcomponent",
            "pdo_mysql || curl",
            "no matching component is declared",
        ),
    ] {
        root.configure(&toml);
        assert_eq!(code(&["checkdepends", arg(&pkg)]), Some(1), "{constraint}");
        let text = root.fails(&["checkdepends", arg(&pkg)]).stdout;
        let line = format!("  FAILED    {kind} {constraint}: {detail}\n");
        assert!(text.contains(&line), "`{line}` missing from:\n{text}");
        assert_eq!(text.matches("FAILED").count(), 1, "{text}");

        let run = root.fails(&["checkdepends", "--json", arg(&pkg)]);
        let report = run.json();
        assert_eq!(report["satisfied"], false, "{report}");
        let failed: Vec<serde_json::Value> = report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["outcome"] == "failed")
            .cloned()
            .collect();
        assert_eq!(
            failed,
            [serde_json::json!({
                "kind": kind, "constraint": constraint, "outcome": "failed", "detail": detail
            })],
            "{report}"
        );
        let run = root.fails(&["install", arg(&pkg)]);
        let reason = format!("`core` 16.0.40 requires {kind} `{constraint}`: {detail}");
        assert!(
            run.stderr.contains(&reason),
            "`{reason}` missing from:\n{}",
            run.stderr
        );
    }
    assert!(
        root.ok(&["list", "--json"])
            .json()
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    root.configure(&platform(
        "18.2.0",
        "8.2.7",
        "mysqli = \"8.2.7\", curl = \"\"",
    ));
    root.ok(&["install", arg(&pkg)]);
    // Installed, the module is checked by its rawname against the same facts.
    assert_eq!(code(&["checkdepends", "core"]), Some(0));
    root.configure(&platform("20.1", "8.3", "pdo_mysql = \"8.3\""));
    let run = root.fails(&["checkdepends", "core"]);
    assert!(
        run.stdout.contains(
            "  FAILED    phpcomponent mysqli ge 8.0: no matching component is declared\n"
        ),
        "{}",
        run.stdout
    );
}
