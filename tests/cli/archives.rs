//! Hostile and malformed packages: each class is refused with a clear error, and the
//! root is left exactly as it was.

use std::path::Path;
use std::time::{Duration, Instant};

use modhost_test_support::hostile::{
    Entry, EntryType, FILE, noise, write_bomb, write_package, write_repeated, write_repeated_after,
    write_zip,
};
use modhost_test_support::{arg, component, package, zipped};

use crate::root;

const XML: &str = "<module><rawname>evil</rawname><name>Evil</name><version>1.0</version></module>";

/// How a test writes a package of raw entries, and the file name ending it gives it.
type Writer = (fn(&Path, &[Entry<'_>]), &'static str);

const TGZ: Writer = (write_package, "tgz");
const ZIP: Writer = (write_zip, "zip");

fn refused(
    root: &modhost_test_support::Root,
    (write, ending): Writer,
    name: &str,
    entries: &[Entry<'_>],
    expected: &str,
) {
    let name = format!("{name}.{ending}");
    let path = root.path().with_file_name(&name);
    write(&path, entries);
    let before = root.fingerprint();
    let run = root.fails(&["install", arg(&path)]);
    assert!(
        run.stderr.contains(expected),
        "{name}: expected `{expected}` in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&name),
        "{name}: the package is named:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("staging"),
        "{name}: a file is named inside its package, not where it was unpacked:\n{}",
        run.stderr
    );
    assert_eq!(root.fingerprint(), before, "{name}: the root changed");
}

#[test]
fn every_class_of_hostile_archive_is_refused_and_the_root_is_unchanged() {
    every_class_is_refused(TGZ, &[]);
}

#[test]
fn every_class_of_hostile_zip_is_refused_and_the_root_is_unchanged() {
    // Zip has no hard links, and the zip writer will not repeat a name (the unit tests
    // patch one in).
    every_class_is_refused(ZIP, &["hardlink", "duplicate"]);
}

/// Writes each class of hostile package with `writer` (but those named in `skip`) and
/// checks `install` refuses it, leaving the root unchanged.
fn every_class_is_refused(writer: Writer, skip: &[&str]) {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let xml = XML.as_bytes();
    let wasm = std::fs::read(component("core")).unwrap_or_default();
    let long = format!("evil/{}", "a".repeat(300));
    let huge_xml = format!("{XML}{}", " ".repeat(1 << 20));
    let many: Vec<String> = (0..10_001).map(|i| format!("evil/{i}")).collect();
    let mut too_many: Vec<Entry<'_>> = vec![("evil/module.xml", FILE, xml)];
    too_many.extend(many.iter().map(|name| (name.as_str(), FILE, &b""[..])));
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        (
            "symlink",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/link", EntryType::Symlink, b""),
            ],
            "only regular files and directories",
        ),
        (
            "hardlink",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/link", EntryType::Link, b""),
            ],
            "only regular files and directories",
        ),
        (
            "device",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/null", EntryType::Char, b""),
            ],
            "only regular files and directories",
        ),
        (
            "fifo",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/pipe", EntryType::Fifo, b""),
            ],
            "only regular files and directories",
        ),
        (
            "absolute",
            vec![("/tmp/evil/module.xml", FILE, xml)],
            "is not a relative path inside the package",
        ),
        (
            // Every entry absolute, as `tar -P` of a build directory writes them: the
            // path is the problem, not a module.xml missing from the top.
            "absolute-deep",
            vec![
                ("/srv/build/evil/module.xml", FILE, xml),
                ("/srv/build/evil/module.wasm", FILE, &wasm),
            ],
            "entry `/srv/build/evil/module.xml` is not a relative path inside the package",
        ),
        (
            "dotdot",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/../../escape", FILE, b"x"),
            ],
            "is not a relative path inside the package",
        ),
        (
            // The name and the hint read as written: no backslash shown doubled.
            "backslash",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/..\\..\\evil.txt", FILE, b"x"),
            ],
            "entry `evil/..\\..\\evil.txt` separates its path with `\\`, as Windows tools write it",
        ),
        (
            "long-name",
            vec![("evil/module.xml", FILE, xml), (long.as_str(), FILE, b"x")],
            "entry path longer than 255 bytes",
        ),
        (
            "duplicate",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/module.xml", FILE, xml),
            ],
            "duplicate entry `evil/module.xml`",
        ),
        (
            "two-tops",
            vec![("evil/module.xml", FILE, xml), ("other/x", FILE, b"x")],
            "more than one entry at the archive's top level",
        ),
        (
            "no-module-xml",
            vec![("evil/module.wasm", FILE, b"x")],
            "no `module.xml` at the package's root or in its top-level directory `evil/`",
        ),
        (
            "module-xml-dir",
            vec![("evil/module.xml/", EntryType::Directory, b"")],
            "`evil/module.xml` is a directory, not a file",
        ),
        (
            "bad-rawname",
            vec![(
                "Evil-1/module.xml",
                FILE,
                b"<module><rawname>Evil-1</rawname><name>E</name><version>1.0</version></module>",
            )],
            "rawname `Evil-1` must be",
        ),
        (
            "wrong-dir",
            vec![
                ("other/module.xml", FILE, xml),
                ("other/module.wasm", FILE, &wasm),
            ],
            "module.xml names rawname `evil` but the package's directory is `other`",
        ),
        (
            "no-component",
            vec![("evil/module.xml", FILE, xml)],
            "component `evil/module.wasm` is missing",
        ),
        (
            "unloadable",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/module.wasm", FILE, b"\0asm garbage"),
            ],
            "is not a loadable modhost:module@0.1.0 component",
        ),
        (
            "huge-module-xml",
            vec![("evil/module.xml", FILE, huge_xml.as_bytes())],
            "`evil/module.xml` is larger than 1048576 bytes",
        ),
        ("too-many-entries", too_many, "more than 10000 entries"),
        (
            "core-module",
            vec![
                ("evil/module.xml", FILE, xml),
                ("evil/module.wasm", FILE, b"\0asm\x01\0\0\0"),
            ],
            "is not a loadable modhost:module@0.1.0 component",
        ),
        (
            "root-no-component",
            vec![("module.xml", FILE, xml)],
            "component `evil/module.wasm` is missing",
        ),
        (
            "root-beside-a-directory",
            vec![
                ("README", FILE, b"x"),
                ("evil/module.xml", FILE, xml),
                ("evil/module.wasm", FILE, &wasm),
            ],
            "more than one entry at the archive's top level (`README` and `evil`)",
        ),
    ];
    for (name, entries, expected) in &cases {
        if !skip.contains(name) {
            refused(&root, writer, name, entries, expected);
        }
    }
}

#[test]
fn zip_packages_install_with_module_xml_in_a_directory_or_at_the_root() {
    let root = root();
    let dir = root.path().with_file_name("packages");
    assert!(std::fs::create_dir(&dir).is_ok());
    let core = zipped(&package("core"), false, &dir.join("core.zip"));
    let voicemail = zipped(&package("voicemail"), true, &dir.join("voicemail.zip"));
    let manifest = root.ok(&["manifest", "--json", arg(&voicemail)]).json();
    assert_eq!(manifest["rawname"], "voicemail", "{manifest}");
    root.ok(&["install", arg(&core), arg(&voicemail)]);
    let list = root.ok(&["list", "--json"]).json();
    let modules: Vec<(&str, &str)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let field = |name: &str| m[name].as_str().unwrap_or_default();
            (field("rawname"), field("status"))
        })
        .collect();
    assert_eq!(
        modules,
        [("core", "enabled"), ("voicemail", "enabled")],
        "{list}"
    );
    // A package directory offers zips as it does gzip tars.
    let scan = root.ok(&["scan", "--json", arg(&dir)]).json();
    assert_eq!(scan.as_array().map(Vec::len), Some(2), "{scan}");
}

/// Runs `args` (naming a hostile package) and checks it fails within seconds with
/// `expected`, leaving the root as it was.
fn refused_quickly(root: &modhost_test_support::Root, args: &[&str], expected: &str) {
    let before = root.fingerprint();
    let started = Instant::now();
    let run = root.fails(args);
    assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{args:?}: refused in {:?}",
        started.elapsed()
    );
    assert_eq!(root.fingerprint(), before, "{args:?}: the root changed");
}

#[test]
fn a_compression_bomb_is_refused_quickly_writing_next_to_nothing() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let bomb = root.path().with_file_name("bomb.tgz");
    write_bomb(&bomb, "evil", 16);
    refused_quickly(&root, &["install", arg(&bomb)], "compression-ratio limit");
    // A zip's entry declares its size: this one is refused before it is read.
    let zip = root.path().with_file_name("bomb.zip");
    write_zip(&zip, &[("evil/zeros", FILE, &vec![0; 64 << 20])]);
    refused_quickly(&root, &["install", arg(&zip)], "compression-ratio limit");
}

#[test]
fn a_bomb_behind_a_real_component_is_refused_having_written_next_to_nothing() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    // The real component (about 3 MB, 750 kB compressed) once earned a run of zeros 200
    // times its compressed size: 150 MB written before the refusal.
    let wasm = std::fs::read(component("core")).unwrap_or_default();
    let real: [Entry<'_>; 2] = [
        ("evil/module.xml", FILE, XML.as_bytes()),
        ("evil/module.wasm", FILE, &wasm),
    ];
    let zeros = vec![0u8; 16 << 20];
    // Declaring 2 GiB: more than the package could ever unpack to, refused unread.
    // Declaring 128 MiB: within that, so refused while it streams.
    for (name, size) in [("declared", 2 << 30), ("streamed", 128 << 20)] {
        let bomb = root.path().with_file_name(format!("{name}.tgz"));
        write_repeated_after(&bomb, &real, "evil/zeros", FILE, &zeros, size);
        let before = root.fingerprint();
        let started = Instant::now();
        // No file modhost writes may pass 8 MiB: the component fits, the bomb must not
        // get near it.
        let run = root.run_with_file_cap(8 << 10, &["install", arg(&bomb)]);
        assert!(
            !run.success && run.stderr.contains("compression-ratio limit 200:1"),
            "{name}: refused by the limits, not stopped by the file-size cap:\n{}",
            run.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
        assert_eq!(root.fingerprint(), before, "{name}: the root changed");
    }
}

#[test]
fn bombs_in_headers_and_skipped_content_are_refused_on_every_path() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let zeros = vec![0u8; 16 << 20];
    let gib = 4 << 30;
    // The tar crate reads GNU long names and PAX records into memory whole: only the
    // decompressed stream's limit stops them. A directory that declares content is
    // refused for that, before any of it is read.
    let ratio = "compression-ratio limit";
    let bombs = [
        ("long-name", "././@LongLink", EntryType::GNULongName, ratio),
        ("long-link", "././@LongLink", EntryType::GNULongLink, ratio),
        ("pax", "evil/PaxHeaders/x", EntryType::XHeader, ratio),
        (
            "directory",
            "evil/",
            EntryType::Directory,
            "entry `evil/` is a directory that declares 4294967296 bytes of content",
        ),
        ("file", "evil/zeros", FILE, ratio),
    ];
    for (name, entry, kind, refusal) in bombs {
        let bomb = root.path().with_file_name(format!("{name}.tgz"));
        write_repeated(&bomb, entry, kind, &zeros, gib);
        refused_quickly(&root, &["install", arg(&bomb)], refusal);
        // `manifest` reads a package's module.xml the way scan, installlocal and
        // `install NAME` do, without unpacking it.
        refused_quickly(&root, &["manifest", arg(&bomb)], refusal);
    }
}

#[test]
fn a_package_past_the_size_limit_is_refused_whatever_its_ratio() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let big = root.path().with_file_name("big.tgz");
    write_repeated(&big, "evil/big", FILE, &noise(1 << 20, 256), 257 << 20);
    let compressed = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    assert!(
        compressed > (257 << 20) / 200,
        "the ratio ({compressed} bytes compressed) stays under 200:1"
    );
    for command in ["install", "manifest"] {
        refused_quickly(
            &root,
            &[command, arg(&big)],
            "unpacks to more than 268435456 bytes (size limit 268435456 bytes",
        );
    }
}

#[test]
fn read_manifest_refuses_an_oversized_module_xml_and_too_many_entries() {
    let root = root();
    let huge = root.path().with_file_name("huge.tgz");
    let xml = format!("{XML}{}", " ".repeat(1 << 20));
    write_package(&huge, &[("evil/module.xml", FILE, xml.as_bytes())]);
    let run = root.fails(&["manifest", arg(&huge)]);
    assert!(
        run.stderr
            .contains("`evil/module.xml` is larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
    let many: Vec<String> = (0..10_001).map(|i| format!("evil/{i}")).collect();
    let mut entries: Vec<Entry<'_>> = many
        .iter()
        .map(|name| (name.as_str(), FILE, &b""[..]))
        .collect();
    entries.push(("evil/module.xml", FILE, XML.as_bytes()));
    let crowded = root.path().with_file_name("crowded.tgz");
    write_package(&crowded, &entries);
    let run = root.fails(&["manifest", arg(&crowded)]);
    assert!(
        run.stderr.contains("more than 10000 entries"),
        "{}",
        run.stderr
    );
}

#[test]
fn installed_files_never_take_modes_from_the_archive_or_the_umask() {
    for umask in ["000", "077"] {
        installed_modes_under(umask);
    }
}

/// Installs a package whose headers ask for mode 7777 under `umask` and checks that its
/// files have exactly the modes modhost gives them.
fn installed_modes_under(umask: &str) {
    use std::os::unix::fs::PermissionsExt;
    let root = root();
    let wasm = std::fs::read(component("core")).unwrap_or_default();
    let xml = std::fs::read(modhost_test_support::example_dir("core").join("module.xml"))
        .unwrap_or_default();
    let path = root.path().with_file_name("modes.tgz");
    // Every header asks for mode 7777; `nested/deep/` exist only as a file's parents.
    write_package(
        &path,
        &[
            ("core/", EntryType::Directory, b""),
            ("core/module.xml", FILE, &xml),
            ("core/module.wasm", FILE, &wasm),
            ("core/assets/", EntryType::Directory, b""),
            ("core/nested/deep/file", FILE, b"x"),
        ],
    );
    root.ok_under_umask(umask, &["install", arg(&path)]);
    let dir = root.installed_dir("core", "modules");
    let mut modes = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path);
        let Ok(metadata) = metadata else {
            panic!("{path:?}: {metadata:?}")
        };
        if metadata.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        let shown = path
            .strip_prefix(&dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        modes.push((
            shown,
            format!("{:o}", metadata.permissions().mode() & 0o7777),
        ));
    }
    modes.sort();
    let expected = [
        ("", "755"),
        ("assets", "755"),
        ("module.wasm", "644"),
        ("module.xml", "644"),
        ("nested", "755"),
        ("nested/deep", "755"),
        ("nested/deep/file", "644"),
    ]
    .map(|(name, mode)| (name.to_owned(), mode.to_owned()));
    assert_eq!(modes, expected, "modes under umask {umask}");
}
