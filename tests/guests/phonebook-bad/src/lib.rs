//! Test guest: `upgrade()`, `enable()`, `disable()` and `uninstall()` first damage everything they can reach — rows,
//! key-value store, data directory — and then fail the way `/data/mode` names (written by
//! the test into the data directory they start from): `error` (the default), `trap`,
//! `loop`, `oom` or `runaway` (one SQL write that never ends, which SQLite, interrupted at
//! the deadline, answers by rolling back the whole transaction) — or succeed, after the
//! damage, when it says `ok`.
//!
//! A first install starts from a new, empty data directory, so `install()` takes its mode
//! from elsewhere: a `mode` file in a host directory the module was granted (a
//! `<capabilities>` directory the test adds to module.xml and grants with `install
//! --grant`), as a real module reads its configuration from a granted directory. With a
//! mode there it damages what it can and fails the same ways; with none (no directory
//! asked for, or not granted) it installs cleanly, as a module without `install()` does.

use modhost_sdk::{DATA_DIR, Module, db, kv};

/// The one WASI import the SDK does not wrap: the list of directories mounted into the
/// sandbox. Only the parts of `wasi:filesystem` it needs are declared, at 0.2.1, which the
/// standard library does not import: the component encoder then folds this subset into
/// the newer, complete copy the standard library imports. (Declared at a version the
/// standard library imports, or at a newer one, the complete copy would have to merge
/// into the subset, which fails.)
mod wasi {
    wit_bindgen::generate!({
        inline: r#"
            package modhost:phonebook-bad;

            world mounts {
                import wasi:filesystem/preopens@0.2.1;
            }

            package wasi:filesystem@0.2.1 {
                interface types {
                    resource descriptor;
                }

                interface preopens {
                    use types.{descriptor};
                    get-directories: func() -> list<tuple<descriptor, string>>;
                }
            }
        "#,
        world: "modhost:phonebook-bad/mounts",
        generate_all,
    });
}

struct Bad;

impl Module for Bad {
    fn install() -> Result<(), String> {
        let Some(mode) = granted_mode() else {
            return Ok(());
        };
        // The tables are new and empty at a first install: fill them, so that a rollback
        // that kept them would show.
        db::execute(
            "INSERT INTO phonebook_entries (name, number) VALUES ('DAMAGED', '0')",
            &[],
        )?;
        db::execute("INSERT INTO phonebook_v3_only (x) VALUES ('DAMAGED')", &[])?;
        damage_then_fail_as("install", &mode)
    }

    fn upgrade(_from_version: &str) -> Result<(), String> {
        db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
        damage_then_fail_as("upgrade", &data_mode())
    }

    fn enable() -> Result<(), String> {
        db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
        damage_then_fail_as("enable", &data_mode())
    }

    fn disable() -> Result<(), String> {
        db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
        damage_then_fail_as("disable", &data_mode())
    }

    fn uninstall() -> Result<(), String> {
        db::execute("UPDATE phonebook_entries SET name = 'DAMAGED'", &[])?;
        damage_then_fail_as("uninstall", &data_mode())
    }
}

/// What `/data/mode` says; empty when there is no such file.
fn data_mode() -> String {
    std::fs::read_to_string(format!("{DATA_DIR}/mode")).unwrap_or_default()
}

/// What `mode` says in the first granted directory (any mount but `/data`) that holds one.
fn granted_mode() -> Option<String> {
    wasi::wasi::filesystem::preopens::get_directories()
        .into_iter()
        .map(|(_, path)| path)
        .filter(|path| path != DATA_DIR)
        .find_map(|path| std::fs::read_to_string(format!("{path}/mode")).ok())
}

/// Writes to the key-value store and the data directory, then does what `mode` says.
/// `call` names the lifecycle call failing, so that a test sees which one it was.
fn damage_then_fail_as(call: &str, mode: &str) -> Result<(), String> {
    kv::set("damaged", "yes")?;
    std::fs::write(format!("{DATA_DIR}/damage"), "yes").map_err(|e| e.to_string())?;
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
        "runaway" => {
            // An `INSERT … SELECT` from an endless recursive query: it writes nothing, and
            // never ends.
            db::execute(
                "INSERT INTO phonebook_entries (name, number) \
                 WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                 SELECT 'runaway', x FROM n WHERE x < 0",
                &[],
            )?;
            Err(format!("{call}'s runaway write ended"))
        }
        "ok" => Ok(()),
        _ => Err(format!("{call} failed on purpose")),
    }
}

modhost_sdk::export_module!(Bad);
