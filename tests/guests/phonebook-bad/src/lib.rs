//! Test guest: `upgrade()` first damages everything it can reach — rows, key-value store,
//! data directory — and then fails the way `/data/mode` names (written by the test into
//! the previous version's data directory): `error` (the default), `trap`, `loop` or `oom`.

use modhost_sdk::{DATA_DIR, Module, db, kv};

struct Bad;

impl Module for Bad {
    fn upgrade(_from_version: &str) -> Result<(), String> {
        db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
        kv::set("damaged", "yes")?;
        std::fs::write(format!("{DATA_DIR}/damage"), "yes").map_err(|e| e.to_string())?;
        let mode = std::fs::read_to_string(format!("{DATA_DIR}/mode")).unwrap_or_default();
        match mode.trim() {
            "trap" => panic!("the upgrade panicked"),
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
            _ => Err("migration failed: this release is broken".to_owned()),
        }
    }
}

modhost_sdk::export_module!(Bad);
