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
    let priorities: Vec<(&str, i32)> = manifest
        .hooks
        .iter()
        .map(|h| (h.hook.as_str(), h.priority))
        .collect();
    assert_eq!(
        priorities,
        [("delUser", 600), ("addUser", 100), ("fwcChownFiles", 500)]
    );
    let categories: Vec<Option<&str>> = manifest
        .menuitems
        .iter()
        .map(|m| m.category.as_deref())
        .collect();
    assert_eq!(categories, [Some("Admin"), Some("Settings")]);
}
