//! Terminal injection: escape sequences and other control characters in module.xml text,
//! package and archive entry names and a handler's output are shown escaped in text
//! output, on stdout and stderr alike, and exactly under `--json`.

use modhost_test_support::hostile::{EntryType, FILE, write_package};
use modhost_test_support::{Run, arg, package, repackage};
use serde_json::Value;

use crate::root;

/// A window title change: OSC 0, ended by BEL.
const TITLE: &str = "\u{1b}]0;pwned\u{7}";

/// Fails unless neither stream of a text-mode run holds a character a terminal acts on:
/// a C0 control other than newline and tab, DEL, C1, or a bidirectional control.
fn assert_inert(what: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n' && c != '\t')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(
            raw.is_empty(),
            "{what}: {stream} holds {raw:?} raw:\n{text:?}"
        );
    }
}

#[test]
fn a_module_name_with_escape_sequences_is_shown_escaped_and_exact_in_json() {
    let root = root();
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir_all(&dir).is_ok());
    // One as a character reference, one raw, and a right-to-left override.
    let name = "Core&#x1b;[31m red \u{1b}[2J\u{202e}";
    let exact = "Core\u{1b}[31m red \u{1b}[2J\u{202e}";
    let shown = "Core\\x1b[31m red \\x1b[2J\\u{202e}";
    let core = repackage(
        &package("core"),
        |xml| xml.replace("<name>Core</name>", &format!("<name>{name}</name>")),
        &dir.join("core-16.0.40.tgz"),
    );

    let run = root.ok(&["manifest", arg(&core)]);
    assert_inert("manifest", &run);
    assert!(run.stdout.contains(shown), "{}", run.stdout);

    let run = root.ok(&["install", arg(&core)]);
    assert_inert("install", &run);

    for args in [&["list"][..], &["info", "core"]] {
        let run = root.ok(args);
        assert_inert(&args.join(" "), &run);
        assert!(run.stdout.contains(shown), "{args:?}: {}", run.stdout);

        let mut json = args.to_vec();
        json.push("--json");
        let run = root.ok(&json);
        assert!(
            run.stdout.contains("\\u001b[31m"),
            "{args:?}: serde's escape"
        );
        let document = run.json();
        let named = match &document {
            Value::Array(modules) => modules.iter().any(|m| m["name"] == exact),
            info => info["name"] == exact,
        };
        assert!(named, "{args:?}: the exact name in {document}");
    }

    let run = root.ok(&["scan", arg(&dir)]);
    assert_inert("scan", &run);
}

#[test]
fn a_handlers_output_is_shown_escaped_and_exact_in_json() {
    let root = root();
    root.ok(&["install", arg(&package("hostile"))]);
    // Newlines and tabs are kept in text output; a carriage return is not.
    let payload = format!("{TITLE}\u{9b}2J\rover\u{7f}\u{202e}\n\tsecond line");

    let run = root.ok(&["hook", "echo", "--payload", &payload]);
    assert_inert("hook", &run);
    assert!(
        run.stdout
            .contains("\\x1b]0;pwned\\x07\\u{9b}2J\\x0dover\\x7f\\u{202e}\n\tsecond line"),
        "{}",
        run.stdout
    );

    // A line a handler starts at the left edge cannot pass for one of modhost's own.
    let run = root.ok(&[
        "hook",
        "echo",
        "--payload",
        "done\nerror: forged\nhelp: forged",
    ]);
    assert!(
        run.stdout
            .contains("done\n  error: forged\n  help: forged\n")
            && !run.stdout.lines().any(|l| l.starts_with("error:")),
        "{}",
        run.stdout
    );

    let run = root.ok(&["hook", "echo", "--payload", &payload, "--json"]);
    let calls = run.json();
    let echoed = calls
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["rawname"] == "hostile"));
    assert_eq!(
        echoed.map(|c| &c["output"]),
        Some(&Value::from(payload.as_str())),
        "{calls}"
    );
}

#[test]
fn a_guests_log_record_stays_one_line_and_cannot_forge_another_modules() {
    let root = root();
    root.ok(&["install", arg(&package("hostile"))]);
    let forged = "greeted\n ERROR modhost::module: module=\"core\" forged\r\nagain";
    let run = root.ok(&["hook", "forge", "--payload", forged]);
    assert_inert("hook forge", &run);
    let records: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("greeted"))
        .collect();
    assert_eq!(records.len(), 1, "{}", run.stderr);
    assert!(
        // The runtime's `\n`, which the CLI shows as it is: it reads as no escape of its own.
        records[0].contains("greeted\\n ERROR") && records[0].contains("forged\\r\\nagain"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("ERROR")),
        "{}",
        run.stderr
    );
}

#[test]
fn package_and_entry_names_with_escape_sequences_are_shown_escaped() {
    let root = root();
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir_all(&dir).is_ok());

    // A good package under a hostile file name: the status line naming it.
    let core = dir.join(format!("core{TITLE}.tgz"));
    assert!(std::fs::copy(package("core"), &core).is_ok());
    let run = root.ok(&["install", arg(&core)]);
    assert_inert("install", &run);
    assert!(
        run.stderr.contains("core\\x1b]0;pwned\\x07.tgz"),
        "{}",
        run.stderr
    );

    // A package that is none: the error naming it, escaped in text, exact in JSON.
    let garbage = dir.join("garbage\u{1b}[2J\u{202e}.tgz");
    assert!(std::fs::write(&garbage, "not a package").is_ok());
    let run = root.fails(&["install", arg(&garbage)]);
    assert_inert("install garbage", &run);
    assert!(
        run.stderr.contains("garbage\\x1b[2J\\u{202e}.tgz"),
        "{}",
        run.stderr
    );
    let run = root.fails(&["install", arg(&garbage), "--json"]);
    let error = run.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("garbage\u{1b}[2J\u{202e}.tgz"),
        "exact: {error:?}"
    );

    // An archive entry named with an escape sequence.
    let xml = b"<module><rawname>evil</rawname><name>Evil</name><version>1.0</version></module>";
    let entry = format!("evil/link{TITLE}");
    let evil = dir.join("evil.tgz");
    write_package(
        &evil,
        &[
            ("evil/module.xml", FILE, xml),
            (&entry, EntryType::Symlink, b""),
        ],
    );
    let run = root.fails(&["install", arg(&evil)]);
    assert_inert("install evil", &run);
    assert!(
        run.stderr.contains("evil/link\\x1b]0;pwned\\x07"),
        "{}",
        run.stderr
    );

    // Listed from the package directory: the reason names the package file.
    std::fs::remove_file(&garbage).ok();
    std::fs::remove_file(&evil).ok();
    let offered = dir.join(format!("voicemail{TITLE}.tgz"));
    assert!(std::fs::copy(package("voicemail"), &offered).is_ok());
    for args in [
        &["list", "--from", arg(&dir)][..],
        &["info", "voicemail", "--from", arg(&dir)],
        &["scan", arg(&dir)],
    ] {
        let run = root.run(args);
        assert_inert(&args.join(" "), &run);
    }
    let run = root.ok(&["list", "--from", arg(&dir)]);
    assert!(
        run.stdout.contains("voicemail\\x1b]0;pwned\\x07.tgz"),
        "{}",
        run.stdout
    );
}

/// The helper itself must catch what it looks for.
#[test]
fn the_check_catches_raw_control_characters() {
    let run = Run {
        success: true,
        stdout: format!("a{TITLE}"),
        stderr: String::new(),
    };
    assert!(std::panic::catch_unwind(|| assert_inert("raw", &run)).is_err());
    let clean = Run {
        success: true,
        stdout: "a\n\tb \\x1b".to_owned(),
        stderr: "Unpacking x".to_owned(),
    };
    assert_inert("clean", &clean);
}
