use super::*;

const VOICEMAIL: &str = r#"<module>
	<rawname>voicemail</rawname>
	<name>Voicemail</name>
	<version>16.0.12</version>
	<category>Applications</category>
	<depends>
		<module>core ge 16.0</module>
		<module>framework</module>
	</depends>
	<methods>
		<get_config>voicemail_get_config</get_config>
		<get_config pri="480">voicemail_early</get_config>
	</methods>
	<fancy>kept as a warning</fancy>
</module>"#;

fn parse(xml: &str) -> Result<Manifest, Error> {
    Manifest::parse(xml, "module.xml")
}

fn problems(xml: &str) -> Vec<String> {
    match parse(xml) {
        Err(Error::Invalid { problems, .. }) => {
            problems.into_iter().map(|p| p.to_string()).collect()
        }
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn reads_identity_depends_and_methods() {
    let Ok(m) = parse(VOICEMAIL) else {
        panic!("voicemail parses")
    };
    assert_eq!(
        (m.rawname.as_str(), m.name.as_str()),
        ("voicemail", "Voicemail")
    );
    assert_eq!(m.version.as_str(), "16.0.12");
    assert_eq!(m.depends.modules.len(), 2);
    assert_eq!(m.depends.modules[0].to_string(), "core ge 16.0");
    assert_eq!(m.depends.modules[1].requirement, None);
    assert_eq!(m.methods[0].priority, DEFAULT_PRIORITY);
    assert_eq!(m.methods[1].priority, 480);
    assert_eq!(m.component, DEFAULT_COMPONENT);
    assert_eq!(m.warnings.len(), 1);
    assert!(m.warnings[0].message.contains("<fancy>"));
}

#[test]
fn reports_every_problem_with_its_position() {
    let found = problems(
        "<module>\n<rawname>Bad-Name</rawname>\n<name></name>\n<version>1.0foo</version>\n\
         <depends><module>core>=13.0.1</module></depends>\n\
         <methods><get_config pri=\"high\">x</get_config></methods>\n</module>",
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[0].starts_with("2:1: rawname `Bad-Name`"),
        "{found:#?}"
    );
    assert!(found[1].starts_with("3:1: <name> is empty"), "{found:#?}");
    assert!(
        found[2].contains("`1.0foo` is not a valid version"),
        "{found:#?}"
    );
    assert!(
        found[3].contains("dependency 'core>=13.0.1' is not of the form 'name [op] version'"),
        "{found:#?}"
    );
    assert!(
        found[4].contains("pri `high` of <get_config>"),
        "{found:#?}"
    );
}

#[test]
fn missing_elements_and_wrong_root_are_refused() {
    let found = problems("<module><rawname>x</rawname></module>");
    assert!(
        found.iter().any(|p| p.contains("<name> is missing")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|p| p.contains("<version> is missing")),
        "{found:#?}"
    );
    let found = problems("<package/>");
    assert!(found[0].contains("expected <module>"), "{found:#?}");
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let err = Manifest::parse("<module>\n  <name>x</nam>\n</module>", "core/module.xml");
    let message = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with("core/module.xml:2:"), "{message}");
}
