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
fn a_methods_priority_is_pri_in_any_case_and_a_guessed_spelling_is_warned_of() {
    let Ok(m) = parse(
        "<module><rawname>bl</rawname><name>B</name><version>1.0</version><methods>\
         <call.route priority=\"50\">bl_route</call.route>\
         <get_config PRI=\"200\">bl_config</get_config></methods></module>",
    ) else {
        panic!("parses")
    };
    assert_eq!(m.methods[0].priority, DEFAULT_PRIORITY);
    assert_eq!(m.methods[1].priority, 200);
    let warnings: Vec<String> = m.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(
        warnings,
        ["<call.route>: unknown attribute `priority` is not used (known: pri)"]
    );
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

#[test]
fn zend_components_with_spaces_are_read_as_freepbx_reads_them() {
    let xml = "<module><rawname>m</rawname><name>M</name><version>1.0</version><depends>\
               <phpcomponent>Zend Guard Loader</phpcomponent>\
               <phpcomponent>zend  optimizer ge 3.3||ioncube_loader</phpcomponent>\
               <phpcomponent>ZEND GUARD LOADER 3.0</phpcomponent>\
               </depends></module>";
    let Ok(m) = parse(xml) else {
        panic!("{:?}", parse(xml))
    };
    let read: Vec<Vec<String>> = m
        .depends
        .php
        .components
        .iter()
        .map(|alternatives| alternatives.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        read,
        [
            vec!["Zend Guard Loader".to_owned()],
            vec![
                "zend optimizer ge 3.3".to_owned(),
                "ioncube_loader".to_owned()
            ],
            vec!["ZEND GUARD LOADER ge 3.0".to_owned()],
        ]
    );
    // Only those two names may hold spaces, and a constraint must still be one.
    for bad in ["Zend Guard", "Zend Optimizer 3.x", "Zend Guard Loader ge"] {
        let xml = format!(
            "<module><rawname>m</rawname><name>M</name><version>1.0</version>\
             <depends><phpcomponent>{bad}</phpcomponent></depends></module>"
        );
        let found = problems(&xml);
        assert!(
            found.len() == 1
                && found[0].contains(&format!(
                    "dependency '{bad}' is not of the form 'name [op] version'"
                )),
            "{found:#?}"
        );
    }
}

#[test]
fn a_message_quoting_a_huge_value_keeps_its_start_and_its_end_only() {
    let long = "a".repeat(100_000);
    let xml = format!(
        "<module><rawname>m</rawname><name>M</name><version>1.0</version>\
         <depends><module>{long} ge 1.0 extra</module></depends><info>{long}</info></module>"
    );
    let found = problems(&xml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].len() < 400, "{}", found[0]);
    assert!(found[0].contains("dependency 'aaaa"), "{}", found[0]);
    assert!(found[0].contains(" bytes left out) …"), "{}", found[0]);
    assert!(
        found[0].ends_with("is not of the form 'name [op] version'"),
        "{}",
        found[0]
    );
}

/// Unknown elements inside every kind of known element.
const UNKNOWN_EVERYWHERE: &str = r#"<module>
<rawname>m</rawname><name>M</name><version>1.0</version>
<description>Text<em>marked up</em></description>
<menuitems><m sort="1">M<badge>new</badge></m></menuitems>
<popovers><m><display>m<extra/></display></m></popovers>
<depends><module>core<since>2</since></module></depends>
<requirements><file>/bin/sh<why/></file></requirements>
<supported><version>16.0</version><foo>bar</foo></supported>
<oobe method="setup"><when>first</when></oobe>
<commercial><type>free</type><link>//x</link><price currency="EUR">0</price></commercial>
<fileinclude><install>i.php<note/></install></fileinclude>
<console><command><name>m</name><alias>mm</alias><help>h</help></command><group/></console>
<database><table name="t"><field name="id" type="integer"><doc/></field><key name="k"><column name="id"/><where/></key></table></database>
<hooks><core><method callingMethod="h">handler<note/></method></core></hooks>
<methods><get_config>g<note/></get_config></methods>
<updateservers><server>https://u.example.org/m.xml<mirror/></server><proxy/></updateservers>
<capabilities><directory path="/srv"><why/></directory></capabilities>
</module>"#;

#[test]
fn unknown_elements_are_kept_and_warned_about_at_every_level() {
    let m = match parse(UNKNOWN_EVERYWHERE) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let mut kept: Vec<String> = m
        .unknown
        .iter()
        .map(|u| format!("{}/{}", u.parent, u.name))
        .collect();
    // In the file's order.
    let expected = [
        "module/description/em",
        "module/menuitems/m/badge",
        "module/popovers/m/display/extra",
        "module/depends/module/since",
        "module/requirements/file/why",
        "module/supported/foo",
        "module/oobe/when",
        "module/commercial/price",
        "module/fileinclude/install/note",
        "module/console/command/help",
        "module/console/group",
        "module/database/table/field/doc",
        "module/database/table/key/where",
        "module/hooks/core/method/note",
        "module/methods/get_config/note",
        "module/updateservers/server/mirror",
        "module/updateservers/proxy",
        "module/capabilities/directory/why",
    ];
    kept.sort();
    let mut expected_sorted = expected.to_vec();
    expected_sorted.sort_unstable();
    assert_eq!(kept, expected_sorted);

    let price = m.unknown.iter().find(|u| u.name == "price");
    assert_eq!(
        price.map(|u| (u.text.as_str(), u.attributes.get("currency"))),
        Some(("0", Some(&"EUR".to_owned()))),
        "kept as written"
    );
    // What is known still reads as before.
    assert_eq!(m.description.as_deref(), Some("Text"));
    assert_eq!(m.menuitems[0].label, "M");
    assert_eq!(m.console[0].aliases, ["mm"]);
    assert_eq!(m.updateservers[0].url, "https://u.example.org/m.xml");
    assert_eq!(m.commercial.as_ref().map(|c| c.kind.as_str()), Some("free"));

    // One warning each, in the file's order, naming the element, its parent and its path.
    let warnings: Vec<String> = m.warnings.iter().map(ToString::to_string).collect();
    let paths: Vec<&str> = warnings
        .iter()
        .filter_map(|w| w.rsplit_once("(`")?.1.strip_suffix("`)"))
        .collect();
    let in_file_order: Vec<&str> = expected.iter().map(|p| &p["module/".len()..]).collect();
    assert_eq!(paths, in_file_order, "{warnings:#?}");
    assert_eq!(
        warnings[5],
        "8:35: unknown element <foo> in <supported> is kept but not used (`supported/foo`)"
    );
}

/// `<module>` with a valid identity around `body`.
fn module(body: &str) -> String {
    format!("<module><rawname>m</rawname><name>M</name><version>1.0</version>\n{body}</module>")
}

#[test]
fn every_problem_of_a_hook_method_server_or_directory_is_reported() {
    let found = problems(&module(
        "<hooks><core><method priority=\"soon\"/></core></hooks>\n\
         <methods><get_config pri=\"late\"/></methods>\n\
         <updateservers><server priority=\"first\"/></updateservers>\n\
         <capabilities><directory path=\"srv\" access=\"all\"/></capabilities>\n",
    ));
    assert_eq!(
        found,
        [
            "2:14: <method> in <hooks><core> has no callingMethod",
            "2:14: <method> in <hooks><core> names no handler",
            "2:14: priority `soon` of <method> is not an integer",
            "3:10: pri `late` of <get_config> is not an integer",
            "3:10: <get_config> names no handler",
            "4:16: priority `first` of <server> is not an integer",
            "4:16: <server> has no URL",
            "5:15: access `all` is not read-only or read-write",
            "5:15: directory `srv` is not an absolute path without `..`",
        ]
    );
}

#[test]
fn a_handler_or_hook_point_named_with_a_control_character_is_refused() {
    let found = problems(&module(
        "<methods><call.route pri=\"480\">core_route&#x1b;]0;PWN&#x07;</call.route></methods>\n\
         <hooks><core><method callingMethod=\"a&#x9b;b\">core_hook</method></core></hooks>\n",
    ));
    assert_eq!(
        found,
        [
            "2:10: handler `core_route\\u{1b}]0;PWN\\u{7}` holds the control character U+001B: \
             a handler's name is printable text",
            "3:14: hook point `core.a\\u{9b}b` holds the control character U+009B: a hook point's \
             name is printable text",
        ]
    );
}

#[test]
fn sha1_and_sha1sum_agree_or_are_refused_and_an_empty_one_does_not_hide_the_other() {
    let sha = "62cdb7020ff920e5aa642c3d4066950dd1f01f4d";
    let other = "0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33";
    let xml = module(&format!("<sha1/><sha1sum>{sha}</sha1sum>"));
    let m = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.sha1.as_deref(), Some(sha));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);

    let xml = module(&format!("<sha1sum>{other}</sha1sum>\n<sha1>{sha}</sha1>"));
    assert_eq!(
        problems(&xml),
        [format!(
            "3:1: <sha1> `{sha}` differs from <sha1sum> `{other}` (at 2:1); a package cannot match both"
        )],
        "the one written first is the reference, whichever its spelling"
    );
}

#[test]
fn a_second_supported_version_that_differs_is_refused_and_an_equal_one_warns() {
    let found = problems(&module(
        "<supported><version>16.0</version><version>bad</version><version>17</version></supported>",
    ));
    assert_eq!(
        found,
        [
            "2:35: <supported>: `bad` is not a valid version: expected a number",
            "2:57: <supported> has a second <version> `17` besides `16.0` (at 2:12); the lowest \
             supported version must be one"
        ]
    );
    let m = parse(&module(
        "<supported><version>16.0</version><version>16.0</version></supported>",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        m.supported.map(|s| s.version.to_string()).as_deref(),
        Some("16.0")
    );
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
}

#[test]
fn schema_names_are_compared_as_sqlite_compares_them() {
    // Unique names pass, whatever their case; columns match fields ignoring case.
    let xml = module(
        "<database><table name=\"a\"><field name=\"Id\" type=\"integer\"/>\
         <key name=\"k\" type=\"unique\"><column name=\"ID\"/></key></table>\
         <table name=\"b\"><field name=\"id\" type=\"integer\"/><key name=\"k\"><column name=\"id\"/></key></table>\
         </database>",
    );
    let m = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.database.tables.len(), 2);
    // A table declared in a second <database> still collides with the first's.
    let found = problems(&module(
        "<database><table name=\"a\"><field name=\"x\" type=\"string\"/></table></database>\n\
         <database><table name=\"a\"><field name=\"x\" type=\"string\"/></table></database>",
    ));
    assert_eq!(found, ["3:11: table `a` is already declared (at 2:11)"]);
}

#[test]
fn a_table_with_a_bad_name_or_key_still_has_every_field_checked() {
    let found = problems(&module(
        "<database><table name=\"1t\"><field name=\"a\" type=\"string\" unique=\"perhaps\"/>\
         <key name=\"k\" type=\"spatial\"><column name=\"z\"/></key></table></database>",
    ));
    assert_eq!(
        found,
        [
            "2:11: <table> name `1t` is not an identifier (letters, digits, _)",
            "2:28: unique `perhaps` of <field> is not true or false",
            "2:76: key `k` has unknown type `spatial` (expected one of index, unique, foreign, \
             primary, fulltext)",
            "2:105: key `k` names column `z`, which is not a field of table `1t`",
        ]
    );
}

#[test]
fn a_table_may_not_take_a_name_sqlite_answers_itself() {
    // A module's `dbstat` would stand in for SQLite's, which modhost's quotas read, and a
    // `pragma_…` table for the pragma modhost reads as a table.
    for (name, why) in [
        ("dbstat", "`dbstat` is a table SQLite itself answers"),
        ("DBStat", "`dbstat` is a table SQLite itself answers"),
        ("json_each", "`json_each` is a table SQLite itself answers"),
        (
            "pragma_freelist_count",
            "names starting with `pragma_` are SQLite's pragmas",
        ),
        (
            "Pragma_Index_List",
            "names starting with `pragma_` are SQLite's pragmas",
        ),
        (
            "sqlite_stat1",
            "names starting with `modhost_` or `sqlite_` are",
        ),
    ] {
        let found = problems(&module(&format!(
            r#"<database><table name="{name}"><field name="id" type="integer"/></table></database>"#
        )));
        assert!(
            found.iter().any(|p| p.contains(&format!(
                "table `{name}`: the table name is reserved: {why}"
            ))),
            "{name}: {found:#?}"
        );
    }
    // Names that only begin like them are the module's to take.
    assert!(
        parse(&module(
            r#"<database><table name="dbstats"><field name="id" type="integer"/></table><table name="pragmatic"><field name="id" type="integer"/></table></database>"#
        ))
        .is_ok()
    );
}

#[test]
fn reserved_column_names_are_refused_when_read() {
    // modhost keeps a `modhost_rowid` of its own beside a module's columns; a module.xml that
    // takes the name is told so by `scan` and `pack`, not first by an install.
    let found = problems(&module(
        r#"<database><table name="pad"><field name="id" type="integer"/><field name="MODHOST_rowid" type="integer"/><field name="sqlite_x" type="string"/></table></database>"#,
    ));
    for name in ["MODHOST_rowid", "sqlite_x"] {
        assert!(
            found.iter().any(|p| p.contains(&format!(
                "field `{name}`: the column name is reserved: names starting with `modhost_`"
            ))),
            "{name}: {found:#?}"
        );
    }
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        parse(&module(
            r#"<database><table name="pad"><field name="modhostile" type="integer"/></table></database>"#
        ))
        .is_ok()
    );
}

#[test]
fn a_schema_past_its_bounds_is_refused_with_the_bound() {
    // Each table and index is a b-tree the module's quota measures and every statement it
    // runs reads: a module.xml declaring thousands would slow every call on the root.
    let tables = |n: usize| -> String {
        (0..n)
            .map(|i| format!(r#"<table name="t{i}"><field name="a" type="integer"/></table>"#))
            .collect()
    };
    assert!(parse(&module(&format!("<database>{}</database>", tables(256)))).is_ok());
    let found = problems(&module(&format!("<database>{}</database>", tables(300))));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("more than 256 tables are declared"),
        "{found:#?}"
    );

    let fields: String = (0..257)
        .map(|i| format!(r#"<field name="f{i}" type="integer"/>"#))
        .collect();
    let found = problems(&module(&format!(
        r#"<database><table name="wide">{fields}</table></database>"#
    )));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("table `wide` declares more than 256 fields"),
        "{found:#?}"
    );

    // Keys and unique fields count alike, across tables.
    let indexed = |keys: usize| -> String {
        let keys: String = (0..keys)
            .map(|i| format!(r#"<key name="k{i}" type="index"><column name="a"/></key>"#))
            .collect();
        format!(
            r#"<database><table name="a"><field name="a" type="integer" unique="true"/>{keys}</table><table name="b"><field name="a" type="integer"/>{keys}</table></database>"#
        )
    };
    assert!(parse(&module(&indexed(255))).is_ok());
    let found = problems(&module(&indexed(256)));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("the tables declare 513 indexes (keys and unique fields); at most 512"),
        "{found:#?}"
    );
}

#[test]
fn a_mistyped_get_config_or_an_element_inside_methods_is_warned_about() {
    let warned = |methods: &str| {
        let xml = format!(
            "<module><rawname>demo</rawname><name>Demo</name><version>1.0</version>\
             <methods>{methods}</methods></module>"
        );
        let m = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        m.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    for slip in [
        "get_confg",
        "getConfig",
        "get-config",
        "get_cofnig",
        "get_configs",
    ] {
        let said = warned(&format!("<{slip}>demo_config</{slip}>"));
        assert!(
            said.iter().any(|w| w.contains(&format!(
                "<{slip}> is not `get_config`, the hook point `reload` runs"
            ))),
            "{slip}: {said:?}"
        );
    }
    let said = warned("<hooks>demo_hooks</hooks>");
    assert!(
        said.iter()
            .any(|w| w.contains("<hooks> is read as a hook point named `hooks`")),
        "{said:?}"
    );
    // The real one, and an application's own hook points, are not.
    for fine in ["get_config", "set_config", "call.route", "lookup"] {
        assert!(
            warned(&format!("<{fine}>demo_{}</{fine}>", fine.replace('.', "_"))).is_empty(),
            "{fine}"
        );
    }
}

#[test]
fn attention_is_read_as_the_publishers_note_not_an_unknown_element() {
    let xml = "<module><rawname>pb</rawname><name>Pb</name><version>1.0</version>\
               <attention>\n\tThis upgrade restarts Asterisk.\n</attention></module>";
    let m = parse(xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        m.attention.as_deref(),
        Some("This upgrade restarts Asterisk.")
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let plain = parse(VOICEMAIL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain.attention, None);
}
