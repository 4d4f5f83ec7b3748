//! Platform facts as an embedding application declares them with [`Host::with_platform`]:
//! a module's `<engine>`, `<phpversion>` and `<phpcomponent>` dependencies hold or are
//! refused, naming the fact that is not met.

use std::collections::BTreeMap;
use std::path::PathBuf;

use modhost::{Engine, Error, Host, Options, Outcome, Php, Platform, Version};
use modhost_test_support::{package, repackage, repackage_as};

/// What the PBX module declares beside the example core's own module.xml.
const DEPENDS: &str = "<depends>\
    <engine>asterisk ge 18</engine>\
    <phpversion>ge 8.1</phpversion>\
    <phpcomponent>mysqli ge 8.0</phpcomponent>\
    <phpcomponent>pdo_mysql||curl</phpcomponent>\
    </depends>";

fn version(text: &str) -> Version {
    Version::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The example core repackaged with [`DEPENDS`] in its module.xml, in `dir`.
fn pbx_module(dir: &std::path::Path) -> PathBuf {
    let edit = |xml: &str| {
        assert!(xml.contains("</module>"), "{xml}");
        xml.replace("</module>", &format!("{DEPENDS}\n</module>"))
    };
    repackage(&package("core"), edit, &dir.join("core-pbx.tgz"))
}

/// Facts that meet every constraint of [`DEPENDS`] and core's `<supported>`.
fn met() -> Platform {
    Platform {
        name: Some("mypbx".into()),
        version: Some(version("16.0.40")),
        engine: Some(Engine {
            name: "Asterisk".into(),
            version: version("18.2.0"),
        }),
        php: Some(Php {
            version: Some(version("8.2.7")),
            components: BTreeMap::from([
                ("mysqli".to_owned(), "8.2.7".to_owned()),
                ("curl".to_owned(), String::new()),
            ]),
        }),
    }
}

fn open(root: &std::path::Path, platform: Platform) -> Host {
    let host = Host::open(root)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_platform(platform.clone());
    assert_eq!(
        host.platform(),
        &platform,
        "the facts are the ones declared"
    );
    host
}

/// `(kind, outcome, detail)` of each platform check, in module.xml order.
fn platform_checks(report: &modhost::DependencyReport) -> Vec<(&str, Outcome, &str)> {
    report
        .checks
        .iter()
        .filter(|c| c.kind != "supported")
        .map(|c| (c.kind, c.outcome, c.detail.as_str()))
        .collect()
}

#[test]
fn declared_facts_that_meet_every_constraint_let_the_module_install() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pkg = pbx_module(dir.path());
    let host = open(&dir.path().join("root"), met());
    let manifest = modhost::read_manifest(&pkg).unwrap_or_else(|e| panic!("{e}"));
    let report = host
        .check_depends(&manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.satisfied, "{report:?}");
    assert_eq!(
        platform_checks(&report),
        [
            ("engine", Outcome::Ok, "the engine is Asterisk 18.2.0"),
            ("phpversion", Outcome::Ok, "the PHP version is 8.2.7"),
            ("phpcomponent", Outcome::Ok, "mysqli is present"),
            ("phpcomponent", Outcome::Ok, "curl is present"),
        ]
    );
    assert_eq!(
        report
            .checks
            .iter()
            .map(|c| c.constraint.as_str())
            .collect::<Vec<_>>(),
        [
            "asterisk ge 18",
            "ge 8.1",
            "mysqli ge 8.0",
            "pdo_mysql || curl",
            "ge 16.0"
        ]
    );

    let changes = host
        .install(&[pkg], Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changes.len(), 1);
    let installed: Vec<String> = host
        .list()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.rawname)
        .collect();
    assert_eq!(installed, ["core"]);
}

#[test]
fn an_unmet_fact_is_refused_naming_the_constraint_and_what_the_host_declared() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pkg = pbx_module(dir.path());
    let manifest = modhost::read_manifest(&pkg).unwrap_or_else(|e| panic!("{e}"));
    let php = |version: &str, components: &[(&str, &str)]| {
        Some(Php {
            version: Some(self::version(version)),
            components: components
                .iter()
                .map(|(name, v)| ((*name).to_owned(), (*v).to_owned()))
                .collect(),
        })
    };
    let engine = |name: &str, version: &str| {
        Some(Engine {
            name: name.into(),
            version: self::version(version),
        })
    };
    // (facts, the one failure expected, as the refusal words it)
    let cases = [
        (
            Platform {
                engine: engine("asterisk", "16.2"),
                ..met()
            },
            "`core` 16.0.40 requires engine `asterisk ge 18`: the engine is asterisk 16.2",
        ),
        (
            Platform {
                engine: engine("freeswitch", "1.10"),
                ..met()
            },
            "`core` 16.0.40 requires engine `asterisk ge 18`: the engine is freeswitch 1.10",
        ),
        (
            Platform {
                php: php("7.4.33", &[("mysqli", "8.2.7"), ("curl", "")]),
                ..met()
            },
            "`core` 16.0.40 requires phpversion `ge 8.1`: the PHP version is 7.4.33 (too old)",
        ),
        (
            Platform {
                php: php("8.2.7", &[("mysqli", "7.4.33"), ("curl", "")]),
                ..met()
            },
            "`core` 16.0.40 requires phpcomponent `mysqli ge 8.0`: mysqli 7.4.33 is declared, which is too old",
        ),
        (
            Platform {
                php: php("8.2.7", &[("mysqli", "8.2.7"), ("gd", "")]),
                ..met()
            },
            "`core` 16.0.40 requires phpcomponent `pdo_mysql || curl`: no matching component is declared",
        ),
    ];
    for (index, (platform, expected)) in cases.into_iter().enumerate() {
        let host = open(&dir.path().join(format!("root{index}")), platform);
        let report = host
            .check_depends(&manifest)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!report.satisfied, "{expected}: {report:?}");
        assert_eq!(report.failures(), [expected]);

        match host.install(std::slice::from_ref(&pkg), Options::default()) {
            Err(Error::Unmet { reasons, .. }) => assert_eq!(reasons, [expected]),
            other => panic!("{expected}: install was not refused: {other:?}"),
        }
        assert!(
            host.list().is_ok_and(|l| l.is_empty()),
            "{expected}: a refusal installs nothing"
        );
        if index == 0 {
            // --force overrides dependency checks, platform facts included.
            let forced = Options {
                force: true,
                ..Options::default()
            };
            assert!(
                host.install(std::slice::from_ref(&pkg), forced).is_ok(),
                "{expected}: --force"
            );
        }
    }
}

#[test]
fn with_platform_replaces_the_facts_of_modhost_toml() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pkg = pbx_module(dir.path());
    let manifest = modhost::read_manifest(&pkg).unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("root");
    assert!(std::fs::create_dir_all(&root).is_ok());
    let toml = "[platform]\nversion = \"16.0.40\"\n\
                engine = { name = \"asterisk\", version = \"13.38\" }\n\
                [platform.php]\nversion = \"5.6\"\n";
    assert!(std::fs::write(root.join("modhost.toml"), toml).is_ok());

    let from_toml = Host::open(&root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        from_toml
            .platform()
            .engine
            .as_ref()
            .map(|e| e.version.to_string()),
        Some("13.38".to_owned())
    );
    let report = from_toml
        .check_depends(&manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        platform_checks(&report),
        [
            ("engine", Outcome::Failed, "the engine is asterisk 13.38"),
            (
                "phpversion",
                Outcome::Failed,
                "the PHP version is 5.6 (too old)"
            ),
            (
                "phpcomponent",
                Outcome::Failed,
                "no matching component is declared"
            ),
            (
                "phpcomponent",
                Outcome::Failed,
                "no matching component is declared"
            ),
        ]
    );

    let embedded = open(&root, met());
    let report = embedded
        .check_depends(&manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.satisfied, "{report:?}");

    // Declaring nothing leaves every platform constraint unchecked, not failed: the
    // file's facts are replaced, not merged.
    let undeclared = open(&root, Platform::default());
    let report = undeclared
        .check_depends(&manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.satisfied, "{report:?}");
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.outcome == Outcome::Unchecked),
        "{report:?}"
    );
    assert_eq!(
        platform_checks(&report),
        [
            ("engine", Outcome::Unchecked, "the engine is not declared"),
            (
                "phpversion",
                Outcome::Unchecked,
                "the PHP version is not declared"
            ),
            (
                "phpcomponent",
                Outcome::Unchecked,
                "PHP facts are not declared"
            ),
            (
                "phpcomponent",
                Outcome::Unchecked,
                "PHP facts are not declared"
            ),
        ]
    );
}

#[test]
fn a_framework_dependency_an_installed_module_meets_is_checked_not_said_unchecked() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A module named `framework` (core's code under that name) and one that needs it, as
    // FreePBX's userman does; the host declares no version of its own.
    let framework = repackage_as(
        &package("core"),
        "framework",
        |xml| {
            xml.replace("<rawname>core</rawname>", "<rawname>framework</rawname>")
                .replace(
                    "<version>16.0.40</version>",
                    "<version>16.0.21.14</version>",
                )
        },
        &dir.path().join("framework.tgz"),
    );
    let needs = "<depends><module>framework ge 16.0.10</module></depends>\n</module>";
    let dependent = repackage(
        &package("core"),
        |xml| xml.replace("</module>", needs),
        &dir.path().join("core.tgz"),
    );
    let unchecked = |changes: &[modhost::Change]| -> Vec<String> {
        changes
            .iter()
            .flat_map(|c| c.warnings.iter())
            .filter(|w| w.starts_with("module `framework") && w.contains("was not checked"))
            .cloned()
            .collect()
    };
    let install = |root: &str, packages: &[PathBuf]| {
        Host::open(&dir.path().join(root))
            .and_then(|host| host.install(packages, Options::default()))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Brought in the same batch, or installed before: the module's version is checked.
    let together = install("together", &[framework.clone(), dependent.clone()]);
    assert_eq!(unchecked(&together), Vec::<String>::new());
    install("after", std::slice::from_ref(&framework));
    let after = install("after", std::slice::from_ref(&dependent));
    assert_eq!(unchecked(&after), Vec::<String>::new());
    // With no such module, it names the host application's version, which nobody
    // declared: said so.
    let alone = install("alone", std::slice::from_ref(&dependent));
    assert_eq!(
        unchecked(&alone),
        [
            "module `framework ge 16.0.10` was not checked: the host application's version \
          (FreePBX's framework) is not declared (declare it under [platform] in modhost.toml)"
        ]
    );
}
