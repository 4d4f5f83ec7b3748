//! Test guest: `upgrade()`, `enable()`, `disable()` and `uninstall()` first damage everything they can reach — rows,
//! key-value store, data directory — and then fail the way `/data/mode` names (written by
//! the test into the data directory they start from): `error` (the default), `trap`,
//! `loop` or `oom` — or succeed, after the damage, when it says `ok`.

use modhost_sdk::{DATA_DIR, Module, db, kv};

struct Bad;

impl Module for Bad {
    fn upgrade(_from_version: &str) -> Result<(), String> {
        damage_then_fail()
    }

    fn enable() -> Result<(), String> {
        damage_then_fail()
    }

    fn disable() -> Result<(), String> {
        damage_then_fail()
    }

    fn uninstall() -> Result<(), String> {
        damage_then_fail()
    }
}

fn damage_then_fail() -> Result<(), String> {
    db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
    kv::set("damaged", "yes")?;
    std::fs::write(format!("{DATA_DIR}/damage"), "yes").map_err(|e| e.to_string())?;
    let mode = std::fs::read_to_string(format!("{DATA_DIR}/mode")).unwrap_or_default();
    match mode.trim() {
        "trap" => panic!("the call panicked"),
        "loop" => loop {
            std::hint::black_box(());
        },
        "oom" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1; 1 << 20]);
                std::hint::black_box(&hog);
            }
        }
        "ok" => Ok(()),
        _ => Err("migration failed: this release is broken".to_owned()),
    }
}

modhost_sdk::export_module!(Bad);
