//! Walking a module's directories never follows a link or opens a special file.

use std::os::unix::fs::{FileTypeExt, symlink};
use std::time::Duration;

use rustix::fs::{CWD, Mode};

use super::*;

/// Runs `f` on a thread of its own and fails the test if it has not returned within
/// ten seconds: a walk that opens a FIFO blocks forever, and must fail, not hang.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(f()));
    receive
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{what} did not return (blocked on a FIFO?): {e}"))
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(0o600))
        .unwrap_or_else(|e| panic!("mkfifo {path:?}: {e}"));
}

fn link(target: &str, path: &Path) {
    symlink(target, path).unwrap_or_else(|e| panic!("symlink {path:?}: {e}"));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

fn link_text(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{path:?} is not a link: {e}"))
        .to_string_lossy()
        .into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// A temporary directory holding `outside/` (a file and a FIFO: what a module's links
/// lead to) and `data/`, a module's data directory: a file, a subdirectory with a
/// file, a FIFO, and links to the outside directory, to the FIFO (from two depths),
/// to `/dev/zero` and to nothing.
fn planted() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let top = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let outside = top.path().join("outside");
    let data = top.path().join("data");
    for dir in [&outside, &data.join("sub")] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    }
    write(&outside.join("secret"), "outside the root");
    mkfifo(&outside.join("fifo"));
    write(&data.join("notes"), "the module's own");
    write(&data.join("sub/more"), "deeper");
    mkfifo(&data.join("pipe"));
    link("../outside", &data.join("out"));
    link("../outside/fifo", &data.join("fifo"));
    link("../../outside/fifo", &data.join("sub/fifo"));
    link(
        "../../../../../../../../../../../../dev/zero",
        &data.join("zero"),
    );
    link("nowhere", &data.join("dangling"));
    (top, outside, data)
}

#[test]
fn sync_tree_neither_follows_links_nor_opens_fifos() {
    let (_top, _outside, data) = planted();
    let result = within_deadline("sync_tree", move || {
        sync_tree(&data).map_err(|e| e.to_string())?;
        make_durable(&data).map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok(()));
}

/// Only a FIFO and links to one, nothing that fails sooner: following the link blocks.
#[test]
fn sync_tree_does_not_open_a_fifo_a_link_leads_to() {
    let top = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let data = top.path().join("data");
    std::fs::create_dir(&data).unwrap_or_else(|e| panic!("{data:?}: {e}"));
    mkfifo(&top.path().join("fifo"));
    mkfifo(&data.join("pipe"));
    link("../fifo", &data.join("fifo"));
    let result = within_deadline("sync_tree", move || {
        make_durable(&data).map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok(()));
}

#[test]
fn sync_tree_refuses_a_link_in_place_of_the_tree() {
    let (top, _outside, _data) = planted();
    let tree = top.path().join("tree");
    link("outside", &tree);
    let error = within_deadline("sync_tree", move || {
        sync_tree(&tree).map_err(|e| e.to_string())
    });
    assert!(
        error.as_ref().is_err_and(|e| e.contains("tree")),
        "{error:?}"
    );
}

#[test]
fn copy_tree_copies_links_as_links_and_leaves_special_files_out() {
    let (top, outside, data) = planted();
    let copy = top.path().join("copy");
    let to = copy.clone();
    let result = within_deadline("copy_tree", move || {
        copy_tree("m", &data, &to).map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok(()));
    assert_eq!(
        std::fs::read_to_string(copy.join("notes")).ok().as_deref(),
        Some("the module's own")
    );
    assert_eq!(
        std::fs::read_to_string(copy.join("sub/more"))
            .ok()
            .as_deref(),
        Some("deeper")
    );
    assert_eq!(mode(&copy.join("notes")), PUBLIC_FILE);
    assert_eq!(mode(&copy.join("sub")), PUBLIC_DIR);
    for (name, target) in [
        ("out", "../outside"),
        ("fifo", "../outside/fifo"),
        ("sub/fifo", "../../outside/fifo"),
        ("zero", "../../../../../../../../../../../../dev/zero"),
        ("dangling", "nowhere"),
    ] {
        assert_eq!(link_text(&copy.join(name)), target, "{name}");
    }
    assert!(
        std::fs::symlink_metadata(copy.join("pipe")).is_err(),
        "a FIFO is not copied"
    );
    // Nothing was copied through the link to the outside directory.
    let copied: Vec<_> = std::fs::read_dir(&copy)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!copied.contains(&"secret".to_owned()), "{copied:?}");
    assert!(std::fs::symlink_metadata(outside.join("fifo")).is_ok_and(|m| m.file_type().is_fifo()));
    // The copy is walked like the original.
    let result = within_deadline("sync_tree", move || {
        sync_tree(&copy).map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok(()));
}

#[test]
fn copy_tree_of_nothing_makes_an_empty_directory() {
    let top = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let copy = top.path().join("copy");
    assert!(copy_tree("m", &top.path().join("missing"), &copy).is_ok());
    assert!(std::fs::read_dir(&copy).is_ok_and(|mut d| d.next().is_none()));
    // A data directory an administrator replaced by a link is never copied through: the
    // change is refused, saying what to do.
    let moved = top.path().join("moved");
    std::fs::create_dir(&moved).unwrap_or_else(|e| panic!("{e}"));
    write(&moved.join("kept"), "data");
    let linked = top.path().join("linked");
    std::os::unix::fs::symlink(&moved, &linked).unwrap_or_else(|e| panic!("{e}"));
    let refused = copy_tree("m", &linked, &top.path().join("copy2")).map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e
            .contains("a link stands where a directory should: not followed")
            && e.contains("put the directory back in its place")),
        "{refused:?}"
    );
}

#[test]
fn remove_dir_removes_links_not_what_they_point_at() {
    let (top, outside, data) = planted();
    let result = within_deadline("remove_dir", move || {
        remove_dir(&data).map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok(()));
    assert!(!top.path().join("data").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("secret"))
            .ok()
            .as_deref(),
        Some("outside the root")
    );
    // A link, a file or nothing where a directory is expected: removed as it is.
    let lone = top.path().join("lone");
    link("outside", &lone);
    assert!(remove_dir(&lone).is_ok());
    assert!(std::fs::symlink_metadata(&lone).is_err());
    assert!(outside.join("secret").is_file());
    write(&lone, "stray");
    assert!(remove_dir(&lone).is_ok());
    assert!(remove_dir(&lone).is_ok(), "a missing directory is fine");
}

#[test]
fn a_full_disk_and_a_file_where_a_directory_goes_are_said_as_what_they_are() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let full = io(dir.path())(std::io::Error::from_raw_os_error(28)).to_string();
    assert!(
        full.contains("the disk holding it is full (") && full.contains("free some space on it"),
        "{full}"
    );
    let etc = dir.path().join("etc");
    write(&etc, "a stray file");
    let refused = create_dirs(&etc.join("sub"), PUBLIC_DIR).map_err(|e| e.to_string());
    assert_eq!(
        refused,
        Err(format!(
            "`{}`: a file is where modhost keeps a directory: move it away",
            etc.display()
        ))
    );
}

#[test]
fn create_dirs_gives_what_it_makes_its_mode_through_links_above_and_never_below() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // An administrator's link above is followed: the parent is theirs.
    let real = dir.path().join("real");
    assert!(std::fs::create_dir(&real).is_ok());
    let above = dir.path().join("above");
    link("real", &above);
    let made = above.join("a/b");
    assert!(create_dirs(&made, 0o750).is_ok());
    assert_eq!(mode(&real.join("a")), 0o750);
    assert_eq!(mode(&real.join("a/b")), 0o750);
    // What was there keeps its mode; a link to nothing is in the way, named.
    assert!(create_dirs(&made, 0o700).is_ok());
    assert_eq!(mode(&real.join("a/b")), 0o750);
    let dangling = dir.path().join("dangling");
    link("nowhere", &dangling);
    let refused = create_dirs(&dangling.join("x"), PUBLIC_DIR).map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("dangling`: a file is where")),
        "{refused:?}"
    );
    assert!(
        !dir.path().join("nowhere").exists(),
        "never made through the link"
    );
}

#[test]
fn a_tree_its_module_keeps_changing_is_copied_whole_or_refused_naming_the_module() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let top = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let data = top.path().join("data");
    std::fs::create_dir_all(data.join("d/sub")).unwrap_or_else(|e| panic!("{e}"));
    write(&data.join("a"), "file");
    std::os::unix::fs::symlink("../../..", data.join("b")).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("../..", data.join("e")).unwrap_or_else(|e| panic!("{e}"));
    // What a handler in another process does: swap a file with a link, a directory with
    // a link, over and over.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, data) = (std::sync::Arc::clone(&stop), data.clone());
        std::thread::spawn(move || {
            let tmp = data.join(".swap");
            while !stop.load(Ordering::Relaxed) {
                for (x, y) in [("a", "b"), ("d", "e")] {
                    let _ = std::fs::rename(data.join(x), &tmp);
                    let _ = std::fs::rename(data.join(y), data.join(x));
                    let _ = std::fs::rename(&tmp, data.join(y));
                }
            }
        })
    };
    // Copied, or refused naming the module; never failed on what changed under the copy.
    for n in 0..200 {
        let copy = top.path().join(format!("copy{n}"));
        match copy_tree("m", &data, &copy) {
            Ok(()) => {}
            Err(Error::DataChanging { rawname, .. }) if rawname == "m" => {}
            Err(e) => panic!("{e}"),
        }
        assert_eq!(sync_tree(&data).map_err(|e| e.to_string()), Ok(()));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(churn.join().is_ok());
    // Left alone, it is copied.
    let copy = top.path().join("quiet");
    assert!(copy_tree("m", &data, &copy).is_ok());
    let names: std::collections::BTreeSet<_> = std::fs::read_dir(&copy)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.is_superset(&["a", "b", "d", "e"].map(String::from).into()),
        "{names:?}"
    );
}
