//! module.xml files as FreePBX 16 writes and reads them: attribute names in any case,
//! the elements its module admin honours, priorities and categories inherited.

use std::path::Path;

use modhost_manifest::Manifest;

fn parse(name: &str) -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Manifest::parse(&text, name).unwrap_or_else(|e| panic!("{e}"))
}

/// `name`, which must load with no warning and no element modhost does not know: every
/// element and attribute FreePBX writes there is read.
fn parse_clean(name: &str) -> Manifest {
    let manifest = parse(name);
    assert!(
        manifest.warnings.is_empty() && manifest.unknown.is_empty(),
        "{name}: {:?} {:?}",
        manifest.warnings,
        manifest.unknown
    );
    manifest
}

/// Each hook's and its priority, in order.
fn priorities(manifest: &Manifest) -> Vec<(&str, i32)> {
    manifest
        .hooks
        .iter()
        .map(|h| (h.hook.as_str(), h.priority))
        .collect()
}

/// Each menu item's category, in order.
fn categories(manifest: &Manifest) -> Vec<Option<&str>> {
    manifest
        .menuitems
        .iter()
        .map(|m| m.category.as_deref())
        .collect()
}

#[test]
fn database_attributes_are_read_in_any_case_as_freepbx_reads_them() {
    let core = parse("core16-schema.xml");
    assert!(
        core.warnings.is_empty(),
        "primaryKey, autoIncrement and notNull are known: {:?}",
        core.warnings
    );
    let table = |name: &str| {
        core.database
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no table {name}"))
    };
    let primary = |name: &str| -> Vec<&str> {
        table(name)
            .fields
            .iter()
            .filter(|f| f.primarykey)
            .map(|f| f.name.as_str())
            .collect()
    };
    assert_eq!(primary("trunks"), ["trunkid"]);
    assert_eq!(primary("pjsip"), ["id", "keyword"]);
    assert_eq!(primary("indications_zonelist"), ["iso"]);
    assert_eq!(primary("dahdichandids"), ["channel"]);
    let devices = table("devices");
    assert!(devices.fields[0].primarykey && devices.fields[0].autoincrement);
    let flags = table("pjsip").fields.iter().find(|f| f.name == "flags");
    assert_eq!(flags.map(|f| f.notnull), Some(false), "notNull=\"false\"");
}

#[test]
fn a_hooks_targets_priority_and_the_modules_category_are_inherited() {
    let xml = r#"<module>
        <rawname>contactmanager</rawname><name>Contact Manager</name><version>16.0.21</version>
        <category>Admin</category>
        <menuitems>
            <contactmanager>Contact Manager</contactmanager>
            <cmsettings category="Settings">Contact Settings</cmsettings>
            <cmgroups category=" ">Contact Groups</cmgroups>
        </menuitems>
        <hooks>
            <userman class="Userman" namespace="FreePBX\modules" priority="600">
                <method callingMethod="delUser" class="Contactmanager">usermanDelUser</method>
                <method callingMethod="addUser" class="Contactmanager" priority="100">usermanAddUser</method>
            </userman>
            <framework class="Chown">
                <method callingMethod="fwcChownFiles">chownFreepbx</method>
            </framework>
        </hooks>
    </module>"#;
    let manifest = Manifest::parse(xml, "contactmanager.xml").unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    assert_eq!(
        priorities(&manifest),
        [("delUser", 600), ("addUser", 100), ("fwcChownFiles", 500)]
    );
    assert_eq!(
        categories(&manifest),
        [Some("Admin"), Some("Settings"), Some("Admin")]
    );
}

#[test]
fn hooks_on_the_same_method_of_different_classes_are_different_hook_points() {
    // As firewall's module.xml hooks the Start and Restart commands (and core the Stop
    // command): FreePBX keys a hook by calling class and method, so starting the PBX never
    // runs what stopping it runs. The module's own class (`<userman class="Userman">`)
    // adds nothing; a class in `FreePBX\modules` names its module.
    let xml = r#"<module>
        <rawname>firewall</rawname><name>Firewall</name><version>16.0.1</version>
        <hooks>
            <framework class="Start" namespace="FreePBX\Console\Command">
                <method callingMethod="preAsteriskHooks" class="Firewall">startFirewall</method>
            </framework>
            <framework class="Restart" namespace="FreePBX\Console\Command">
                <method callingMethod="preAsteriskHooks" class="Firewall">restartFirewall</method>
            </framework>
            <framework class="Stop">
                <method callingMethod="preAsteriskHooks">stopFirewall</method>
            </framework>
            <userman class="Userman"><method callingMethod="delUser">usermanDelUser</method></userman>
            <core><method callingMethod="getConfig">config</method></core>
            <userman class="Certman" namespace="FreePBX\modules">
                <method callingMethod="makeCertDefault">setDefaultCert</method>
            </userman>
            <xx-dashboard class="Overview" namespace="\FreePBX\modules\Dashboard">
                <method callingMethod="getSummary">summary</method>
            </xx-dashboard>
        </hooks>
    </module>"#;
    let manifest = Manifest::parse(xml, "firewall.xml").unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    let points: Vec<(String, &str)> = manifest
        .hooks
        .iter()
        .map(|h| (h.point(), h.handler.as_str()))
        .collect();
    assert_eq!(
        points,
        [
            (
                "framework.Start.preAsteriskHooks".to_owned(),
                "startFirewall"
            ),
            (
                "framework.Restart.preAsteriskHooks".to_owned(),
                "restartFirewall"
            ),
            ("framework.Stop.preAsteriskHooks".to_owned(), "stopFirewall"),
            ("userman.delUser".to_owned(), "usermanDelUser"),
            ("core.getConfig".to_owned(), "config"),
            // FreePBX finds a hook by namespace and class, whatever the element says, as
            // ucp 14.0.1's module.xml and firewall 13.0.1's rely on.
            ("certman.makeCertDefault".to_owned(), "setDefaultCert"),
            ("dashboard.Overview.getSummary".to_owned(), "summary"),
        ]
    );
    // A class that is no class name is said.
    let bad = xml.replace(r#"class="Stop""#, r#"class="Stop Now""#);
    let Err(e) = Manifest::parse(&bad, "firewall.xml") else {
        panic!("accepted")
    };
    assert!(
        e.to_string()
            .contains("<hooks><framework> class `Stop Now` is not a class name"),
        "{e}"
    );
}

#[test]
fn a_handler_named_in_methods_and_in_hooks_runs_once_at_its_methods_priority() {
    let xml = r#"<module>
        <rawname>pb</rawname><name>PB</name><version>1.0</version>
        <hooks><userman><method callingMethod="delUser">echo</method></userman></hooks>
        <methods><userman.delUser pri="10">echo</userman.delUser></methods>
    </module>"#;
    let manifest = Manifest::parse(xml, "pb.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.methods.len(), 1);
    assert_eq!(manifest.methods[0].priority, 10);
    assert!(manifest.hooks.is_empty(), "{:?}", manifest.hooks);
    let warnings: Vec<String> = manifest.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "3:25: handler `echo` is named again for this hook point: it runs once, at priority \
          10 as first named (not at 500)"
        ]
    );
}

#[test]
fn a_table_or_field_declared_twice_takes_the_later_definition_as_freepbx_does() {
    // core 14.0.1 to 16.0.30 declare `outbound_routes` twice and `incoming`'s
    // `mohclass` twice; FreePBX's migration keys both by name, so the later one wins.
    let core = parse("core14-routes.xml");
    let warnings: Vec<String> = core.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "15:4: field `mohclass` of table `incoming` is declared at 13:4 and again at 15:4; \
             the later definition is used, as FreePBX uses it",
            "27:3: table `outbound_routes` is declared at 17:3 and again at 27:3; the later \
             definition is used, as FreePBX uses it",
        ]
    );
    let tables: Vec<&str> = core
        .database
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    // Each table once, where it was first declared (a PHP array keeps a key's place).
    assert_eq!(
        tables,
        ["incoming", "outbound_routes", "outbound_route_sequence"]
    );
    let fields = |table: usize| -> Vec<&str> {
        core.database.tables[table]
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect()
    };
    assert_eq!(fields(1), ["route_id", "name", "dest", "time_mode"]);
    assert_eq!(
        fields(0),
        ["cidnum", "extension", "mohclass", "description"]
    );
    let mohclass = &core.database.tables[0].fields[2];
    assert_eq!(
        (mohclass.default.as_deref(), mohclass.notnull),
        (Some(""), false),
        "the later `mohclass`"
    );
}

#[test]
fn a_placeholder_md5sum_is_absent_and_php_operators_are_read() {
    let firewall = parse("warnings/placeholder-md5sum.xml");
    assert_eq!(firewall.md5sum, None);
    let cxpanel = parse("warnings/php-operator.xml");
    assert_eq!(
        cxpanel.depends.version[0].to_string(),
        "ge 2.10.0",
        "`>=2.10.0` is ge 2.10.0"
    );
    // Each PHP spelling, in every kind of dependency that takes an operator.
    let xml = "<module><rawname>m</rawname><name>M</name><version>1.0-1</version><depends>\
               <module>core &lt;&gt; 14.0</module><engine>asterisk &lt; 21</engine>\
               <phpversion>&gt;5.6</phpversion><phpcomponent>curl &lt;= 8</phpcomponent>\
               </depends></module>";
    let m = Manifest::parse(xml, "m.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.version.canonical(), "1.0.1", "PHP reads `-` as `.`");
    assert_eq!(m.depends.modules[0].to_string(), "core ne 14.0");
    assert_eq!(m.depends.engines[0].to_string(), "asterisk lt 21");
    assert_eq!(m.depends.php.version[0].to_string(), "gt 5.6");
    assert_eq!(m.depends.php.components[0][0].to_string(), "curl le 8");
    assert_eq!(m.warnings.len(), 4, "{:?}", m.warnings);
    // A hexadecimal checksum of the wrong length, and any bad <sha1>, stay errors.
    for bad in ["<md5sum>abc123</md5sum>", "<sha1>compatibility</sha1>"] {
        let xml =
            format!("<module><rawname>m</rawname><name>M</name><version>1</version>{bad}</module>");
        assert!(Manifest::parse(&xml, "m.xml").is_err(), "{bad}");
    }
}

#[test]
fn a_userman_shaped_module_loads_whole() {
    let directory = parse_clean("userman16-shaped.xml");
    assert_eq!(directory.oldpublisher.as_deref(), Some("Staff Tools Inc"));
    assert_eq!(
        directory.more_info.as_deref(),
        Some("https://wiki.example.org/display/DIR/Staff+Directory")
    );
    assert_eq!(directory.menuitems[0].category.as_deref(), Some("Admin"));
    assert_eq!(
        priorities(&directory),
        [
            ("getQuickCreateDisplay", 500),
            ("getHeaders", 150),
            ("import", 90)
        ]
    );
    let people = &directory.database.tables[0];
    let primary: Vec<&str> = people
        .fields
        .iter()
        .filter(|f| f.primarykey && f.autoincrement)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(primary, ["id"]);
    let columns: Vec<&str> = people.keys[0].columns.iter().map(String::as_str).collect();
    assert_eq!(columns, ["login", "auth"]);
    assert_eq!(
        directory
            .depends
            .modules
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["core ge 16.0.40"]
    );
}

#[test]
fn a_framework_shaped_module_keeps_what_its_module_admin_reads() {
    let platform = parse_clean("framework16-shaped.xml");
    assert!(!platform.candisable && !platform.canuninstall);
    assert_eq!(platform.modtype.as_deref(), Some("framework"));
    let fixed: Vec<(Option<&str>, &str)> = platform
        .bugfix
        .iter()
        .map(|b| (b.id.as_deref(), b.text.as_str()))
        .collect();
    assert_eq!(
        fixed,
        [
            (Some("PLAT-23"), "https://issues.example.org/browse/PLAT-23"),
            (Some("PLAT-19"), "https://issues.example.org/browse/PLAT-19"),
        ]
    );
    assert_eq!(categories(&platform), [Some("Admin"), Some("Reports")]);
    assert!(platform.database.tables[0].fields[0].primarykey);
    assert_eq!(platform.hooks[0].priority, 42);
}

#[test]
fn every_attribute_name_is_read_in_any_case() {
    let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let xml = format!(
        r#"<module>
        <rawname>casemod</rawname><name>Case</name><version>1.0.0</version>
        <category>Reports</category>
        <updateurl publicKey="{key}">https://updates.example.org/casemod.json</updateurl>
        <menuitems><casemod Category="Admin" SORT="3">Case</casemod></menuitems>
        <hooks>
            <userman CLASS="Userman" Namespace="FreePBX\modules">
                <method CallingMethod="delUser" Class="Casemod" Priority="42">onDelUser</method>
            </userman>
        </hooks>
        <methods><get_config PRI="10">config</get_config></methods>
        <database>
            <table Name="casemod_notes">
                <field NAME="id" Type="integer" PrimaryKey="true" AUTOINCREMENT="true"/>
                <field name="body" type="string" length="255" NotNull="false"/>
                <key Name="body_idx" TYPE="unique"><column Name="body"/></key>
            </table>
        </database>
    </module>"#
    );
    let manifest = Manifest::parse(&xml, "casemod.xml").unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    assert_eq!(manifest.updateurl_publickey.as_deref(), Some(key));
    assert_eq!(categories(&manifest), [Some("Admin")]);
    assert_eq!(manifest.menuitems[0].sort, Some(3));
    assert_eq!(priorities(&manifest), [("delUser", 42)]);
    let hook = &manifest.hooks[0];
    assert_eq!(
        (hook.target_class.as_deref(), hook.class.as_deref()),
        (Some("Userman"), Some("Casemod"))
    );
    assert_eq!(
        manifest
            .methods
            .iter()
            .map(|m| (m.hook.as_str(), m.priority))
            .collect::<Vec<_>>(),
        [("get_config", 10)]
    );
    let table = &manifest.database.tables[0];
    assert_eq!(table.name, "casemod_notes");
    assert!(table.fields[0].primarykey && table.fields[0].autoincrement);
    assert!(!table.fields[1].notnull);
    assert_eq!(table.keys[0].name, "body_idx");
}

#[test]
fn an_attribute_given_twice_in_two_cases_is_refused() {
    let xml = r#"<module>
        <rawname>twice</rawname><name>Twice</name><version>1.0.0</version>
        <updateurl publickey="RWQ1" publicKey="RWQ2">https://u.example.org/t.json</updateurl>
    </module>"#;
    let refused = Manifest::parse(xml, "twice.xml")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains(
            "bad attribute in <updateurl>: attribute `publicKey` repeats `publickey` \
             (attribute names are read in any case)"
        )),
        "{refused:?}"
    );
}

/// The keys FreePBX's Migration builds: `fulltext` (kept as a plain index), and foreign
/// keys as FreePBX spells them (`foreigncols`, `onDelete` in any case).
#[test]
fn keys_as_freepbx_spells_them_are_read_and_bad_ones_named() {
    let xml = r#"<module><rawname>cdrnotes</rawname><name>CDR notes</name><version>16.0.1</version>
      <database>
        <table name="cdrnotes_calls">
          <field name="id" type="integer" primaryKey="true" autoIncrement="true"/>
          <field name="note" type="text"/>
          <key name="note_words" type="fulltext"><column name="note"/></key>
        </table>
        <table name="cdrnotes_tags">
          <field name="call" type="integer"/>
          <field name="tag" type="string" length="40"/>
          <key name="tag_call" type="foreign" foreignTable="cdrnotes_calls" foreignCols="id"
               onDelete="cascade" onUpdate="no  action"><column name="call"/></key>
        </table>
      </database></module>"#;
    let manifest = Manifest::parse(xml, "module.xml").unwrap_or_else(|e| panic!("{e}"));
    let words = &manifest.database.tables[0].keys[0];
    assert_eq!(
        (words.kind.as_str(), &words.columns[..]),
        ("index", &["note".to_owned()][..])
    );
    assert_eq!(manifest.warnings.len(), 1, "{:?}", manifest.warnings);
    assert!(
        manifest.warnings[0]
            .message
            .contains("key `note_words` is a full-text index"),
        "{:?}",
        manifest.warnings
    );
    let foreign = &manifest.database.tables[1].keys[0];
    let attribute = |name: &str| foreign.attributes.get(name).map(String::as_str);
    assert_eq!(attribute("foreigntable"), Some("cdrnotes_calls"));
    assert_eq!(attribute("foreigncolumns"), Some("id"));
    assert_eq!(attribute("ondelete"), Some("CASCADE"));
    assert_eq!(attribute("onupdate"), Some("NO ACTION"));

    // An action SQL does not have, target columns that do not pair with the key's own, a
    // foreign key with no table, an attribute no key reads: warnings, never a refusal (a
    // module an older modhost installed must still load), and a key SQLite could never
    // check is not created.
    let bad = xml
        .replace(r#"onDelete="cascade""#, r#"onDelete="explode""#)
        .replace(r#"type="fulltext""#, r#"type="fulltext" clustered="yes""#);
    let bad = Manifest::parse(&bad, "module.xml").unwrap_or_else(|e| panic!("{e}"));
    let said = |manifest: &Manifest, words: &str| {
        manifest.warnings.iter().any(|w| w.message.contains(words))
    };
    assert!(
        said(
            &bad,
            "key `tag_call`: `ondelete` is `explode`, which is not used"
        ) && said(
            &bad,
            "key `note_words`: unknown attribute `clustered` is not used"
        ),
        "{:?}",
        bad.warnings
    );
    let kept = &bad.database.tables[1].keys[0].attributes;
    assert_eq!(
        (
            kept.get("ondelete"),
            kept.get("onupdate").map(String::as_str)
        ),
        (None, Some("NO ACTION"))
    );
    for (unpaired, words) in [
        (
            r#"foreignCols="id,note""#,
            "key `tag_call` is not created: its target columns `id,note`",
        ),
        (
            r#"foreignCols="id,""#,
            "key `tag_call` is not created: its target columns `id,`",
        ),
        (
            "",
            "key `tag_call` is not created: a foreign key must name its `foreigntable`",
        ),
    ] {
        let changed = if unpaired.is_empty() {
            xml.replace(r#"foreignTable="cdrnotes_calls""#, "")
        } else {
            xml.replace(r#"foreignCols="id""#, unpaired)
        };
        let manifest = Manifest::parse(&changed, "module.xml").unwrap_or_else(|e| panic!("{e}"));
        assert!(said(&manifest, words), "{:?}", manifest.warnings);
        assert!(manifest.database.tables[1].keys.is_empty(), "{unpaired}");
    }
}

#[test]
fn firewall_bulkhandler_and_schema_quirks_are_read_as_freepbx_reads_them() {
    // firewall 13–17: the hook target spelt as its class; bulkhandler 13.0.21: an empty
    // <description/> before the real one; a field's booleans as FreePBX's migration reads
    // them (only `true` is true).
    let xml = r#"<module>
        <rawname>firewall</rawname><name>Firewall</name><version>16.0.8</version>
        <description/>
        <description>Integrated software firewall</description>
        <hooks>
            <Backup class="Backup" namespace="FreePBX\modules">
                <method callingMethod="postrestoreModulehook" class="Firewall" namespace="FreePBX\modules">postrestorehook</method>
            </Backup>
        </hooks>
        <database>
            <table name="firewall_hosts">
                <field name="id" type="integer" primarykey="yes" autoincrement="1"/>
                <field name="host" type="string" length="100" notnull="TRUE" unique="True"/>
                <field name="note" type="string" notnull="0"/>
            </table>
        </database>
    </module>"#;
    let manifest = Manifest::parse(xml, "firewall.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        manifest.description.as_deref(),
        Some("Integrated software firewall")
    );
    assert_eq!(manifest.hooks[0].target, "backup");
    assert_eq!(manifest.hooks[0].hook, "postrestoreModulehook");
    let fields = &manifest.database.tables[0].fields;
    let flags: Vec<(bool, bool, bool, bool)> = fields
        .iter()
        .map(|f| (f.primarykey, f.autoincrement, f.notnull, f.unique))
        .collect();
    assert_eq!(
        flags,
        [
            (false, false, true, false),
            (false, false, true, true),
            (false, false, false, false),
        ]
    );
    let warnings: Vec<&str> = manifest
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    for expected in [
        "an empty <description/> beside another <description> with content is left out",
        "the hook target <Backup> is read as module `backup`: rawnames are lower case",
        "primarykey `yes` of <field> is read as false, as FreePBX reads every value but `true`",
        "autoincrement `1` of <field> is read as false",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "`{expected}` not in {warnings:?}"
        );
    }
    // Two descriptions with content are still two answers to one question.
    let twice = xml.replace("<description/>", "<description>Another</description>");
    let refused = Manifest::parse(&twice, "firewall.xml").map(|_| ());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("<description> appears 2 times")),
        "{refused:?}"
    );
}

#[test]
fn a_rawname_with_a_hyphen_loads_as_freepbxs_own_asterisk_cli_does() {
    let console = parse_clean("console16-shaped.xml");
    assert_eq!(console.rawname, "engine-console");
    assert_eq!(console.menuitems[0].category.as_deref(), Some("Admin"));
    // Never first, where a command line would take the name for an option.
    // Nor before a digit or at the end, where `NAME-VERSION.tgz` could not be split.
    for bad in [
        "-console",
        "Engine-console",
        "engine console",
        "engine-1",
        "engine-",
        "engine--console",
    ] {
        let text = format!(
            "<module><rawname>{bad}</rawname><name>X</name><version>1.0</version></module>"
        );
        let refused = Manifest::parse(&text, "module.xml").map_err(|e| e.to_string());
        assert!(
            refused.as_ref().is_err_and(|e| e.contains(
                "must be 1 to 64 characters of a-z, 0-9, _ and -, where a - is never first and is always followed by a letter"
            )),
            "{bad}: {refused:?}"
        );
    }
}

#[test]
fn a_priority_out_of_range_and_a_capitalised_dependency_are_said_as_what_they_are() {
    let xml = r#"<module><rawname>pb</rawname><name>PB</name><version>1.0</version>
        <depends><module>Core ge 16.0</module></depends>
        <methods><get_config pri="99999999999">config</get_config></methods>
    </module>"#;
    let refused = Manifest::parse(xml, "pb.xml")
        .map(drop)
        .map_err(|e| e.to_string());
    let said = refused.err().unwrap_or_default();
    assert!(
        said.contains("pri `99999999999` of <get_config> is out of range (")
            && said.contains("is not of the form 'name [op] version' (a rawname is lower case)"),
        "{said}"
    );
}

#[test]
fn element_names_are_read_in_any_case_as_freepbxs_module_reader_reads_them() {
    // xml2Array lower-cases every element name before FreePBX reads one: a hand-written
    // `<Depends>` is a dependency there, and `<CanUninstall>no` protects the module.
    let xml = r#"<MODULE>
        <RawName>casey</RawName><Name>Casey</Name><Version>1.0.0</Version>
        <Category>Admin</Category><Description>Says hello.</Description>
        <Depends><Module>core ge 16.0</Module><Version>16.0</Version></Depends>
        <CanUninstall>no</CanUninstall><CanDisable>No</CanDisable>
        <Supported><Version>16.0</Version></Supported>
        <Methods><userman.delUser pri="10">bye</userman.delUser></Methods>
        <Hooks><Userman><Method callingMethod="addUser">hello</Method></Userman></Hooks>
        <database><table name="greeting"><field name="id" type="integer" primaryKey="true"/></table></database>
    </MODULE>"#;
    let manifest = Manifest::parse(xml, "casey.xml").unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.unknown.is_empty(), "{:?}", manifest.unknown);
    assert_eq!(manifest.rawname, "casey");
    assert_eq!(manifest.description.as_deref(), Some("Says hello."));
    assert_eq!(manifest.category, "Admin");
    let depends: Vec<String> = manifest
        .depends
        .modules
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(depends, ["core ge 16.0"]);
    assert_eq!(manifest.depends.version.len(), 1);
    assert!(!manifest.canuninstall && !manifest.candisable);
    assert_eq!(
        manifest.supported.map(|s| s.version.to_string()).as_deref(),
        Some("16.0")
    );
    // A hook point keeps its case; a hook target is read as a rawname, with a warning.
    assert_eq!(manifest.methods[0].hook, "userman.delUser");
    assert_eq!(manifest.hooks[0].target, "userman");
    assert_eq!(manifest.hooks[0].hook, "addUser");
    // `<database>` is read apart in FreePBX, names as written: a `<Table>` there is not
    // one, and says so.
    assert_eq!(manifest.database.tables.len(), 1);
    let odd = Manifest::parse(
        &xml.replace("<table name=\"greeting\">", "<Table name=\"greeting\">")
            .replace("</table>", "</Table>"),
        "casey.xml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(odd.database.tables.is_empty());
    assert_eq!(odd.unknown.len(), 1, "{:?}", odd.unknown);
}
