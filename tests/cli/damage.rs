//! A root an administrator damaged — its state database emptied or replaced by another
//! program's, one of its directories replaced by a link — is refused as it is found:
//! nothing of it, and nothing outside it, is removed.

use modhost_test_support::{arg, package};

use crate::root;

#[test]
fn an_emptied_or_foreign_database_or_a_linked_directory_is_refused_and_nothing_removed() {
    let root = root();
    root.ok(&["install", arg(&package("core"))]);
    let database = root.path().join("modhost.db");
    let wal = |suffix: &str| root.path().join(format!("modhost.db{suffix}"));
    let reset = |contents: &[u8]| {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(wal(suffix));
        }
        std::fs::write(&database, contents).unwrap_or_else(|e| panic!("{e}"));
    };
    let kept = std::fs::read(&database).unwrap_or_else(|e| panic!("{e}"));
    root.ok(&["list"]);
    let modules = root.tree("modules");
    let data = root.tree("data");
    assert!(!modules.is_empty() && !data.is_empty());

    // Emptied (`> modhost.db`, a failed copy): not taken for a new root, whose recovery
    // would remove every module as a stray — not even by a command that only reads.
    reset(b"");
    for args in [
        &["list"][..],
        &["info", "core"],
        &["recover"],
        &["hook", "lookup"],
    ] {
        let run = root.fails(args);
        assert!(
            run.stderr
                .contains("modhost.db` is empty, but the root holds `modules`")
                && run.stderr.contains("restore modhost.db from a backup"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            (root.tree("modules"), root.tree("data")),
            (modules.clone(), data.clone())
        );
    }

    // Another program's database copied over it: refused, and left as it was found.
    reset(b"");
    root.write_state("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    let foreign = std::fs::read(&database).unwrap_or_else(|e| panic!("{e}"));
    for args in [&["list"][..], &["info", "core"], &["recover"]] {
        let run = root.fails(args);
        assert!(
            run.stderr
                .contains("it is not a modhost state database: it holds tables (`users`)"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read(&database).ok().as_deref(), Some(&foreign[..]));
        assert_eq!(
            (root.tree("modules"), root.tree("data")),
            (modules.clone(), data.clone())
        );
    }
    reset(&kept);
    root.ok(&["list"]);

    // `staging/` (or `modules/`, `data/`, `cache/`) made a link to someone's directory:
    // never followed, so recovery empties nothing there.
    let elsewhere = root.path().with_file_name("elsewhere");
    std::fs::create_dir_all(elsewhere.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(elsewhere.join("sub/precious"), "mine").unwrap_or_else(|e| panic!("{e}"));
    for dir in ["staging", "cache"] {
        let at = root.path().join(dir);
        std::fs::remove_dir_all(&at).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&elsewhere, &at).unwrap_or_else(|e| panic!("{e}"));
        for args in [&["list"][..], &["recover"]] {
            let run = root.fails(args);
            assert!(
                run.stderr.contains(&format!(
                    "{dir}`: a link stands where modhost keeps a directory"
                )),
                "{args:?}: {}",
                run.stderr
            );
            assert!(elsewhere.join("sub/precious").is_file(), "{dir} {args:?}");
        }
        std::fs::remove_file(&at).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&at).unwrap_or_else(|e| panic!("{e}"));
    }
    root.ok(&["hook", "lookup", "--payload", "2025550100"]);
}
