//! Tests of the state database, one file per family as in the crate; the fixtures they
//! share are here.

use std::time::{Duration, Instant};

use modhost_manifest::{Database, Manifest};

use crate::{ModuleRecord, SqlValue, State, Status};

mod backups;
mod functions;
mod generation;
mod kv;
mod module_quota;
mod module_sql;
mod module_sql_joins;
mod quota;
mod schema;
mod schema_indexes;
mod schema_rebuilds;
mod sources;
mod transactions;

fn record(rawname: &str, version: &str) -> ModuleRecord {
    ModuleRecord {
        rawname: rawname.into(),
        name: rawname.into(),
        version: version.into(),
        status: Status::Enabled,
        reason: None,
        module_dir: format!("{version}-1"),
        data_dir: "1".into(),
        component_sha256: "00".into(),
        manifest: "<module/>".into(),
        installed_at: 1,
    }
}

fn open() -> (tempfile::TempDir, State) {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let state = State::open(&dir.path().join("modhost.db"));
    let Ok(state) = state else {
        panic!("{state:?}")
    };
    (dir, state)
}

fn database(tables: &str) -> Database {
    let xml = format!(
        "<module><rawname>m</rawname><name>M</name><version>1</version><database>{tables}</database></module>"
    );
    Manifest::parse(&xml, "m.xml")
        .map(|m| m.database)
        .unwrap_or_else(|e| panic!("{e}"))
}

const V1: &str = r#"<table name="book"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="number" type="string" length="20"/><key name="number" type="index"><column name="number"/></key></table>"#;

const V2: &str = r#"<table name="book"><field name="id" type="integer" primarykey="true" autoincrement="true"/>
    <field name="number" type="string" length="20"/><field name="label" type="string" default="" notnull="true"/></table>
    <table name="book_tags"><field name="tag" type="string"/></table>"#;

fn later() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.into())
}
