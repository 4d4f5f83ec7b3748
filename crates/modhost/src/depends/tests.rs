use super::*;
use crate::config::{Engine, Php};

fn manifest(depends: &str) -> Manifest {
    let xml = format!(
        "<module><rawname>m</rawname><name>M</name><version>1.0</version><depends>{depends}</depends></module>"
    );
    Manifest::parse(&xml, "m.xml").unwrap_or_else(|e| panic!("{e}"))
}

fn record(rawname: &str, version: &str, status: Status) -> ModuleRecord {
    ModuleRecord {
        rawname: rawname.into(),
        name: rawname.into(),
        version: version.into(),
        status,
        reason: (status == Status::Broken).then(|| "component missing".into()),
        module_dir: String::new(),
        data_dir: String::new(),
        component_sha256: String::new(),
        manifest: String::new(),
        installed_at: 0,
    }
}

fn version(text: &str) -> Version {
    Version::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn outcomes(report: &DependencyReport) -> Vec<(Outcome, &str)> {
    report
        .checks
        .iter()
        .map(|c| (c.outcome, c.detail.as_str()))
        .collect()
}

#[test]
fn framework_is_the_host_application_unless_a_module_of_that_name_is_there() {
    let m = manifest("<module>framework ge 13.0.1beta3.56</module><module>framework</module>");
    let none = BTreeMap::new();
    let undeclared = check(&m, &none, &Platform::default());
    assert!(undeclared.satisfied, "{undeclared:?}");
    assert_eq!(
        outcomes(&undeclared),
        [(
            Outcome::Unchecked,
            "the host application's version (FreePBX's framework) is not declared"
        ); 2]
    );
    assert_eq!(
        undeclared.checks[0].constraint,
        "framework ge 13.0.1beta3.56"
    );
    assert_eq!(undeclared.checks[1].constraint, "framework");
    let mut platform = Platform {
        version: Some(version("16.0.40.1")),
        ..Platform::default()
    };
    let report = check(&m, &none, &platform);
    assert!(report.satisfied, "{report:?}");
    platform.version = Some(version("13.0.1alpha1"));
    let report = check(&m, &none, &platform);
    assert_eq!(
        outcomes(&report)[0],
        (
            Outcome::Failed,
            "the host application's version (FreePBX's framework) is 13.0.1alpha1 (too old)"
        )
    );
    // One in the package directory is FreePBX's PHP, not the application here.
    let mirrored = Packaged::Version(version("16.0.1"));
    let packaged = BTreeMap::from([("framework", Available::Packaged(&mirrored))]);
    assert_eq!(
        outcomes(&check(&m, &packaged, &platform))[0].1,
        "the host application's version (FreePBX's framework) is 13.0.1alpha1 (too old)"
    );
    assert!(missing(&[&m], &[]).is_empty());
    // A module named framework, once installed, is the one depended on.
    let installed = record("framework", "12.0", Status::Enabled);
    let modules = BTreeMap::from([("framework", Available::Installed(&installed))]);
    let report = check(&m, &modules, &platform);
    assert_eq!(
        outcomes(&report)[0],
        (Outcome::Failed, "installed 12.0 is too old")
    );
}

#[test]
fn each_module_status_gets_its_own_message_and_one_marked_needs_upgrade_still_runs() {
    let records = [
        record("a", "2.0", Status::Enabled),
        record("b", "1.0", Status::Disabled),
        record("c", "1.0", Status::NeedsUpgrade),
        record("d", "1.0", Status::Broken),
    ];
    let m = manifest(
        "<module>a ge 3.0</module><module>a lt 2.0</module><module>b</module><module>c</module><module>d</module><module>e</module><module>a</module><module>f</module><module>g</module><module>h</module><module>f ge 4.0</module>",
    );
    let packaged = BTreeMap::from([
        ("f".to_owned(), Packaged::Version(version("3.1"))),
        ("g".to_owned(), Packaged::Nothing),
        (
            "h".to_owned(),
            Packaged::Unreadable(
                "`h-2.0.tgz` may hold it but cannot be read: truncated".to_owned(),
            ),
        ),
    ]);
    assert_eq!(
        missing(&[&m], &records),
        BTreeSet::from([
            "e".to_owned(),
            "f".to_owned(),
            "g".to_owned(),
            "h".to_owned()
        ])
    );
    let available = available(&records, &packaged);
    let report = check(&m, &available, &Platform::default());
    assert_eq!(
        outcomes(&report),
        [
            (Outcome::Failed, "installed 2.0 is too old"),
            (Outcome::Failed, "installed 2.0 is too new"),
            (Outcome::Failed, "installed 1.0 but disabled"),
            (Outcome::Ok, "installed 1.0"),
            (
                Outcome::Failed,
                "installed 1.0 but broken (component missing)"
            ),
            (Outcome::Failed, "not installed"),
            (Outcome::Ok, "installed 2.0"),
            (
                Outcome::Failed,
                "not installed (3.1 is in the package directory: install it first, or with this module)"
            ),
            (
                Outcome::Failed,
                "not present at all: neither installed nor in the package directory"
            ),
            (
                Outcome::Failed,
                "not installed, and `h-2.0.tgz` may hold it but cannot be read: truncated"
            ),
            // Too old to meet it: never said as one to install first.
            (
                Outcome::Failed,
                "not installed, and the package directory's 3.1 is too old"
            ),
        ]
    );
    assert!(!report.satisfied);
    assert_eq!(
        report.failures()[0],
        "`m` 1.0 requires module `a ge 3.0`: installed 2.0 is too old"
    );
    // The one step that meets each, for a caller to offer: enabling what is disabled,
    // installing what is not installed; none for a wrong version or a broken module.
    let (enable, install) = (Some(Mend::Enable), Some(Mend::Install));
    assert_eq!(
        report.checks.iter().map(|c| c.mend).collect::<Vec<_>>(),
        [
            None, None, enable, None, None, install, None, install, install, install, install
        ]
    );
    assert_eq!(
        report.mends().collect::<BTreeSet<_>>(),
        BTreeSet::from([Mend::Enable, Mend::Install])
    );
}

#[test]
fn engines_are_alternatives_and_undeclared_facts_are_unchecked() {
    let m = manifest(
        "<engine>asterisk ge 20</engine><engine>freeswitch</engine><version>ge 16</version><phpversion>7.4</phpversion>",
    );
    let empty = BTreeMap::new();
    let undeclared = check(&m, &empty, &Platform::default());
    assert!(undeclared.satisfied);
    assert!(
        undeclared
            .checks
            .iter()
            .all(|c| c.outcome == Outcome::Unchecked)
    );

    let mut platform = Platform {
        name: None,
        version: Some(version("16.0.40")),
        engine: Some(Engine {
            name: "FreeSWITCH".into(),
            version: version("1.10"),
        }),
        php: None,
    };
    let report = check(&m, &empty, &platform);
    assert_eq!(report.checks[0].kind, "version");
    assert_eq!(report.checks[1].constraint, "asterisk ge 20 or freeswitch");
    assert_eq!(report.checks[1].outcome, Outcome::Ok);
    platform.engine = Some(Engine {
        name: "asterisk".into(),
        version: version("18.2"),
    });
    let report = check(&m, &empty, &platform);
    assert_eq!(
        (report.checks[1].outcome, report.checks[1].detail.as_str()),
        (Outcome::Failed, "the engine is asterisk 18.2")
    );
}

#[test]
fn php_components_accept_any_alternative_with_its_version() {
    let m = manifest(
        "<phpcomponent>pdo_mysql||mysqli ge 8.0</phpcomponent><phpcomponent>curl</phpcomponent>",
    );
    let platform = Platform {
        name: None,
        php: Some(Php {
            version: Some(version("8.2")),
            components: [("mysqli".to_owned(), "8.2.7".to_owned())]
                .into_iter()
                .collect(),
        }),
        ..Platform::default()
    };
    let report = check(&m, &BTreeMap::new(), &platform);
    assert_eq!(
        outcomes(&report),
        [
            (Outcome::Ok, "mysqli is present"),
            (Outcome::Failed, "no matching component is declared")
        ]
    );
    // Declared, but too old or with no version to compare: said so, not "not declared".
    let m =
        manifest("<phpcomponent>zlib ge 2.0</phpcomponent><phpcomponent>gd ge 2.0</phpcomponent>");
    let platform = Platform {
        php: Some(Php {
            version: None,
            components: [
                ("zlib".to_owned(), "1.2".to_owned()),
                ("gd".to_owned(), String::new()),
            ]
            .into_iter()
            .collect(),
        }),
        ..Platform::default()
    };
    assert_eq!(
        outcomes(&check(&m, &BTreeMap::new(), &platform)),
        [
            (Outcome::Failed, "zlib 1.2 is declared, which is too old"),
            (
                Outcome::Failed,
                "gd is declared without a version, so `gd ge 2.0` cannot be checked against it"
            ),
        ]
    );
}

#[test]
fn php_components_match_whatever_the_case_zend_names_included() {
    let m = manifest(
        "<phpcomponent>PDO_MySQL ge 8.0</phpcomponent><phpcomponent>zend guard loader</phpcomponent>\
         <phpcomponent>Zend Optimizer</phpcomponent><phpcomponent>curl lt 8.0</phpcomponent>",
    );
    let platform = Platform {
        php: Some(Php {
            version: None,
            components: [
                ("pdo_mysql".to_owned(), "8.2.7".to_owned()),
                ("Zend Guard Loader".to_owned(), String::new()),
                ("CURL".to_owned(), "8.5.0".to_owned()),
            ]
            .into_iter()
            .collect(),
        }),
        ..Platform::default()
    };
    let report = check(&m, &BTreeMap::new(), &platform);
    assert_eq!(
        outcomes(&report),
        [
            (Outcome::Ok, "PDO_MySQL is present"),
            (Outcome::Ok, "zend guard loader is present"),
            (Outcome::Failed, "no matching component is declared"),
            (Outcome::Failed, "CURL 8.5.0 is declared, which is too new"),
        ]
    );
    assert_eq!(report.checks[1].constraint, "zend guard loader");
}

#[test]
fn files_and_legacy_requirements_are_checked_on_disk() {
    let xml = "<module><rawname>m</rawname><name>M</name><version>1.0</version>\
               <depends><file>/</file></depends><requirements><file>/nonexistent/modhost</file></requirements></module>";
    let m = Manifest::parse(xml, "m.xml").unwrap_or_else(|e| panic!("{e}"));
    let report = check(&m, &BTreeMap::new(), &Platform::default());
    assert_eq!(
        outcomes(&report),
        [(Outcome::Ok, "exists"), (Outcome::Failed, "does not exist")]
    );
}
