//! `repo build` on real packages, and `repo serve` over what it built: what a rebuild
//! leaves, which version the one-version documents name, the modes of licence secrets, and
//! gated packages of every format behind every path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modhost_update::{Client, Location, Source, Stability, Target};

use super::*;
use crate::{BUILDS, CURRENT};

pub(super) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn write(path: &Path, bytes: &[u8]) {
    let written = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(path, bytes));
    assert!(written.is_ok(), "{path:?}: {written:?}");
}

fn module_xml(rawname: &str, version: &str) -> String {
    format!(
        "<module><rawname>{rawname}</rawname><name>{rawname} module</name>\
         <version>{version}</version></module>"
    )
}

/// A gzip tar package of `rawname` `version` in `dir`, packed as modhost packs.
pub(super) fn tgz(dir: &Path, rawname: &str, version: &str) -> PathBuf {
    tgz_of(dir, rawname, version, &module_xml(rawname, version))
}

/// [`tgz`] with `text` for its module.xml.
fn tgz_of(dir: &Path, rawname: &str, version: &str, text: &str) -> PathBuf {
    let scratch = tempdir();
    let (xml, wasm) = (
        scratch.path().join("module.xml"),
        scratch.path().join("module.wasm"),
    );
    write(&xml, text.as_bytes());
    write(&wasm, b"\0asm component");
    let out = dir.join(format!("{rawname}-{version}.tgz"));
    assert!(std::fs::create_dir_all(dir).is_ok());
    let packed = modhost_package::pack(&xml, &wasm, &out);
    assert!(packed.is_ok(), "{packed:?}");
    out
}

/// A zip package of `rawname` `version` in `dir`: `RAWNAME/module.xml` and the component
/// beside it (which `repo build` reads as installing would: a package without its
/// component is no package).
pub(super) fn zip(dir: &Path, rawname: &str, version: &str) -> PathBuf {
    use std::io::Write;
    let out = dir.join(format!("{rawname}-{version}.zip"));
    let file = std::fs::File::create(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    let mut zip = ::zip::ZipWriter::new(file);
    let options = ::zip::write::SimpleFileOptions::default();
    let written = zip
        .start_file(format!("{rawname}/module.xml"), options)
        .and_then(|()| Ok(zip.write_all(module_xml(rawname, version).as_bytes())?))
        .and_then(|()| zip.start_file(format!("{rawname}/module.wasm"), options))
        .and_then(|()| Ok(zip.write_all(b"\0asm component")?))
        .and_then(|()| zip.finish().map(drop));
    assert!(written.is_ok(), "{written:?}");
    out
}

/// Every file under `dir`, relative to it, sorted.
pub(super) fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

pub(super) fn build_ok(src: &Path, out: &Path, key: Option<&SecretKey>) -> Built {
    build(src, out, key, None, modhost_update::DEFAULT_PLATFORM).unwrap_or_else(|e| panic!("{e}"))
}

/// Why an unsigned build of `src` into `out` is refused; a panic when it is not.
fn build_refused(src: &Path, out: &Path) -> String {
    match build(src, out, None, None, modhost_update::DEFAULT_PLATFORM) {
        Ok(built) => panic!("built: {built:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) const GROUPS: &str = "[groups.pro]\nsecret = \"9d2c6f1e8b4a7305c2e1f9d8b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8\"\nmodules = [\"phonebook\"]\n";

#[test]
fn a_rebuild_leaves_exactly_what_it_built_and_nothing_else_of_ours() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    zip(src.path(), "phonebook", "1.0.0");
    write(&src.path().join("groups.toml"), GROUPS.as_bytes());
    write(&out.path().join("notes.txt"), b"not the build's");
    let built = build_ok(src.path(), out.path(), Some(&SecretKey::generate()));
    assert!(built.signed && built.private.is_some());
    let first = files(out.path());
    for file in [
        "public/index.json.minisig",
        "public/freepbx/phonebook.json.minisig",
        "public/a2/phonebook/modsource.json",
        "private/a2/phonebook/1.0.0.zip",
        "private/packages/phonebook-1.0.0.zip",
        "private/groups.toml",
    ] {
        assert!(first.contains(&file.to_owned()), "{file} in {first:?}");
    }

    // Phonebook withdrawn, the groups gone, and no signing key this time.
    for file in ["phonebook-1.0.0.zip", "groups.toml"] {
        assert!(std::fs::remove_file(src.path().join(file)).is_ok());
    }
    let rebuilt = build_ok(src.path(), out.path(), None);
    assert!(!rebuilt.signed && rebuilt.private.is_none());
    assert!(
        rebuilt.serial > built.serial,
        "{} then {}",
        built.serial,
        rebuilt.serial
    );
    // What is published: exactly this build.
    assert_eq!(
        files(&out.path().join(PUBLIC)),
        [
            "a2/core/1.0.0.tgz",
            "a2/core/modsource.json",
            "freepbx/core.json",
            "index.json",
            "joomla/core.xml",
            "packages/core-1.0.0.tgz",
            "release.json",
        ]
    );
    assert!(
        !out.path().join(PRIVATE).exists(),
        "no groups: no private part"
    );
    // Beside it, the previous build (kept for requests that began before the swap) and
    // the links; nothing else of ours, and what was not ours untouched.
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(out.path()),
        ["builds", "current", "notes.txt", "private", "public"]
    );
    let mut builds = vec![
        ".lock".to_owned(),
        built.serial.to_string(),
        rebuilt.serial.to_string(),
    ];
    builds.sort();
    assert_eq!(names(&out.path().join(BUILDS)), builds);
    assert_eq!(
        std::fs::read_link(out.path().join(CURRENT)).ok(),
        Some(Path::new(BUILDS).join(rebuilt.serial.to_string()))
    );
    // A third build retires the first.
    let third = build_ok(src.path(), out.path(), None);
    let mut builds = vec![
        ".lock".to_owned(),
        rebuilt.serial.to_string(),
        third.serial.to_string(),
    ];
    builds.sort();
    assert_eq!(names(&out.path().join(BUILDS)), builds);
}

#[test]
fn a_build_does_not_replace_a_directory_it_did_not_write() {
    let src = tempdir();
    tgz(src.path(), "core", "1.0.0");
    let out = tempdir();
    write(&out.path().join("public/index.html"), b"someone's site");
    let refused = build_refused(src.path(), out.path());
    assert!(
        refused.contains("not a part `repo build` wrote"),
        "{refused}"
    );
    assert_eq!(files(out.path()), ["public/index.html"]);

    let out = tempdir();
    write(&out.path().join("private"), b"a file");
    build_refused(src.path(), out.path());
    assert_eq!(files(out.path()), ["private"]);

    // An empty directory holds nothing to lose.
    let out = tempdir();
    assert!(std::fs::create_dir(out.path().join("public")).is_ok());
    build_ok(src.path(), out.path(), None);
    assert!(out.path().join("public/index.json").is_file());
}

#[test]
fn a_failed_build_leaves_the_previous_repository_in_place() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    build_ok(src.path(), out.path(), None);
    let before = files(out.path());
    let index = std::fs::read(out.path().join("public/index.json")).unwrap_or_default();
    tgz(src.path(), "voicemail", "1.0.0");
    write(&src.path().join("zz-broken.tgz"), b"not a package");
    build_refused(src.path(), out.path());
    assert_eq!(
        files(out.path()),
        before,
        "nothing added, nothing left over"
    );
    assert_eq!(
        std::fs::read(out.path().join("public/index.json")).unwrap_or_default(),
        index
    );
}

/// The versions `source` offers a client on the default (stable) channel.
fn offered(kind: Kind, document: PathBuf) -> Vec<String> {
    offered_on(kind, document, modhost_update::DEFAULT_PLATFORM)
}

/// The versions the document at `document` offers a host application named `platform`.
fn offered_on(kind: Kind, document: PathBuf, platform: &str) -> Vec<String> {
    let client = Client::new(None, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let source = Source {
        name: "local".into(),
        kind,
        location: Location::Path(document),
        public_keys: Vec::new(),
        seen: Default::default(),
        extra_query: None,
    };
    let target = Target {
        platform: platform.into(),
        version: "1.0".into(),
        stability: Stability::Stable,
        php: None,
    };
    client
        .releases(&source, None, &target)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.version)
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
}

#[test]
fn one_version_documents_name_the_newest_stable_release() {
    let (src, out) = (tempdir(), tempdir());
    for version in ["1.0.0", "2.0.0", "2.1.0beta1"] {
        tgz(src.path(), "phonebook", version);
    }
    tgz(src.path(), "voicemail", "1.0.0rc1");
    let built = build_ok(src.path(), out.path(), None);
    assert_eq!(built.modules.len(), 4, "the index lists every version");
    let public = out.path().join(PUBLIC);

    let freepbx = json(&public.join("freepbx/phonebook.json"));
    assert_eq!(freepbx["version"], "2.0.0");
    assert_eq!(freepbx["location"], "../packages/phonebook-2.0.0.tgz");
    assert_eq!(
        json(&public.join("a2/phonebook/modsource.json"))["version"],
        "2.0.0"
    );
    assert!(public.join("a2/phonebook/2.0.0.tgz").is_file());
    assert!(!public.join("a2/phonebook/2.1.0beta1.tgz").exists());
    let joomla = std::fs::read_to_string(public.join("joomla/phonebook.xml")).unwrap_or_default();
    assert!(
        joomla.contains("<version>2.1.0beta1</version>") && joomla.contains("<tag>beta</tag>"),
        "the Joomla feed keeps every version, tagged: {joomla}"
    );
    // What a client on the default channel is offered from each document.
    assert_eq!(
        offered(Kind::Freepbx, public.join("freepbx/phonebook.json")),
        ["2.0.0"]
    );
    assert_eq!(offered(Kind::A2, public.join("a2/phonebook")), ["2.0.0"]);
    assert_eq!(
        offered(Kind::Joomla, public.join("joomla/phonebook.xml")),
        ["2.0.0", "1.0.0"]
    );

    // With no stable release, the newest pre-release is still the one named.
    assert_eq!(
        json(&public.join("freepbx/voicemail.json"))["version"],
        "1.0.0rc1"
    );
    assert_eq!(
        json(&public.join("a2/voicemail/modsource.json"))["version"],
        "1.0.0rc1"
    );
}

#[test]
fn freepbx_documents_say_when_a_package_was_made_and_leave_out_what_is_unknown() {
    let (src, out) = (tempdir(), tempdir());
    let package = tgz(src.path(), "phonebook", "1.0.0");
    let made = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_486_679_131);
    let set = std::fs::File::options()
        .write(true)
        .open(&package)
        .and_then(|f| f.set_modified(made));
    assert!(set.is_ok(), "{set:?}");
    let built = build_ok(src.path(), out.path(), None);
    assert_eq!(
        built.warnings.len(),
        1,
        "relative locations are said: {built:?}"
    );
    let freepbx = json(&out.path().join(PUBLIC).join("freepbx/phonebook.json"));
    assert_eq!(freepbx["packaged"], "1486679131", "{freepbx}");
    assert_eq!(freepbx["depends"], serde_json::json!({}), "{freepbx}");
    assert!(freepbx.get("supported").is_none(), "{freepbx}");
    assert!(
        freepbx
            .as_object()
            .is_some_and(|o| o.values().all(|v| !v.is_null()) && !o.contains_key("changelog")),
        "nothing unknown is written as null: {freepbx}"
    );
    let with_base = build(
        src.path(),
        out.path(),
        None,
        Some("https://repo.example.org"),
        modhost_update::DEFAULT_PLATFORM,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(with_base.warnings.is_empty());
}

#[test]
fn joomla_documents_target_the_platform_the_build_names() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    let joomla = out.path().join("public/joomla/core.xml");
    build_ok(src.path(), out.path(), None);
    assert_eq!(offered(Kind::Joomla, joomla.clone()), ["1.0.0"]);
    assert!(offered_on(Kind::Joomla, joomla.clone(), "freepbx").is_empty());
    let built = build(src.path(), out.path(), None, None, "freepbx");
    assert!(built.is_ok(), "{built:?}");
    assert!(offered(Kind::Joomla, joomla.clone()).is_empty());
    assert_eq!(offered_on(Kind::Joomla, joomla, "FreePBX"), ["1.0.0"]);
    assert!(build(src.path(), out.path(), None, None, " ").is_err());
}

#[test]
fn freepbx_documents_carry_the_modules_depends_as_freepbx_writes_them() {
    let (src, out, scratch) = (tempdir(), tempdir(), tempdir());
    let (xml, wasm) = (
        scratch.path().join("module.xml"),
        scratch.path().join("module.wasm"),
    );
    write(
        &xml,
        b"<module><rawname>phonebook</rawname><name>Phonebook</name><version>2.0.0</version>\
          <licenselink>https://www.gnu.org/licenses/gpl-3.0.txt</licenselink>\
          <depends><version>16.0</version><phpversion>7.4</phpversion>\
          <module>core ge 16.0.40</module><module>userman</module>\
          <engine>asterisk ge 18</engine><engine>freeswitch</engine>\
          <phpcomponent>mysqli ge 8.0</phpcomponent><phpcomponent>pdo_mysql||curl</phpcomponent>\
          </depends></module>",
    );
    write(&wasm, b"\0asm component");
    let packed = modhost_package::pack(&xml, &wasm, &src.path().join("phonebook-2.0.0.tgz"));
    assert!(packed.is_ok(), "{packed:?}");
    build_ok(src.path(), out.path(), None);
    let freepbx = json(&out.path().join(PUBLIC).join("freepbx/phonebook.json"));
    assert_eq!(
        freepbx["depends"],
        serde_json::json!({
            "version": "16.0",
            "phpversion": "7.4",
            "module": ["core ge 16.0.40", "userman"],
            "engine": ["asterisk ge 18", "freeswitch"],
            "phpcomponent": ["mysqli ge 8.0", "pdo_mysql||curl"],
        }),
        "{freepbx}"
    );
    assert_eq!(
        freepbx["licenselink"], "https://www.gnu.org/licenses/gpl-3.0.txt",
        "{freepbx}"
    );
}

#[test]
fn joomla_text_never_holds_a_character_xml_cannot_carry() {
    // A module.xml may say `&#x1;`; Joomla's parser would refuse a document holding it.
    assert_eq!(
        crate::publication::xml_text("raw\u{1}ctl <b> & \u{FFFE}\t\u{1F600}"),
        "raw\u{FFFD}ctl &lt;b&gt; &amp; \u{FFFD}\t\u{1F600}"
    );
}

#[test]
fn a_document_larger_than_a_client_reads_is_warned_about() {
    let (src, out) = (tempdir(), tempdir());
    // Six versions of a module whose description is most of a mebibyte: its Joomla
    // document, which lists every version, is past what a client reads.
    let description = "d".repeat(900 * 1024);
    for minor in 0..6 {
        let version = format!("1.{minor}.0");
        let xml = format!(
            "<module><rawname>big</rawname><name>Big</name><version>{version}</version>\
             <description>{description}</description></module>"
        );
        tgz_of(src.path(), "big", &version, &xml);
    }
    let built = build_ok(src.path(), out.path(), None);
    assert!(
        built
            .warnings
            .iter()
            .any(|w| w.starts_with("`joomla/big.xml` is ") && w.contains("more than the 4194304")),
        "{:?}",
        built.warnings
    );
}

#[test]
fn a_module_published_as_zips_only_is_said_to_be_past_freepbxs_own_client() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    zip(src.path(), "phonebook", "1.0.0");
    let built = build_ok(src.path(), out.path(), None);
    let zipped: Vec<&String> = built
        .warnings
        .iter()
        .filter(|w| w.contains("is published as zips only"))
        .collect();
    assert!(
        zipped.len() == 1 && zipped[0].starts_with("`phonebook` is published as zips only"),
        "{:?}",
        built.warnings
    );
}

#[test]
fn a_build_after_one_made_with_a_clock_set_ahead_is_refused_saying_how_to_recover() {
    let (src, out) = (tempdir(), tempdir());
    tgz(src.path(), "core", "1.0.0");
    build_ok(src.path(), out.path(), None);
    // A build made ten days ahead left its serial behind.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ahead = out
        .path()
        .join(BUILDS)
        .join((now + 10 * 86_400).to_string());
    assert!(std::fs::create_dir(&ahead).is_ok());
    let before = files(out.path());
    let message = build_refused(src.path(), out.path());
    assert!(
        message.contains(" days ")
            && message.contains("ahead of this machine's clock")
            && message.contains("build into a new output directory"),
        "{message}"
    );
    assert_eq!(files(out.path()), before);
    // Less than a day ahead (quick rebuilds take serials ahead by one) builds.
    assert!(std::fs::remove_dir(&ahead).is_ok());
    let near = out.path().join(BUILDS).join((now + 3600).to_string());
    assert!(std::fs::create_dir(&near).is_ok());
    assert_eq!(build_ok(src.path(), out.path(), None).serial, now + 3601);
}
