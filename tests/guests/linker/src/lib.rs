//! Test guest: each lifecycle call plants in `/data` links that lead out of it, for the
//! host to treat as links (never followed, never opened) when it flushes, copies and
//! removes the data directory:
//!
//! - `CALL-fifo` → `../../../../outside/fifo`: a module's `/data` is `ROOT/data/linker/DIR`,
//!   so this is `outside/fifo` beside the root, where the tests make a FIFO that nobody
//!   writes to (opening it to read blocks);
//! - `CALL-outside` → `../../../../outside`: the directory holding it;
//! - `CALL-zero` → `/dev/zero`, and `CALL-escape` → `/tmp/modhost-linker-escape`, by
//!   climbing (WASI refuses absolute link targets, not relative ones);
//! - `CALL-dir/fifo`: the FIFO again, from one level down;
//!
//! plus a regular file `CALL.txt`. `CALL` is `install`, `upgrade`, `enable`, `disable` or
//! `uninstall`; what a call finds already planted (a copy keeps the links) it leaves.
//! The `through_links` handler writes files through links that dangle until it does;
//! `swap` puts a link in place of a directory in a granted directory.

use modhost_sdk::Module;

struct Linker;

/// Enough `..` to reach `/` from any data directory the tests use.
const UP: &str = "../../../../../../../../../../../../../../../../../../../../../../../..";

/// Plants the links and the file named after `call`.
fn plant(call: &str) -> Result<(), String> {
    let file = format!("/data/{call}.txt");
    if std::fs::symlink_metadata(&file).is_err() {
        std::fs::write(&file, call).map_err(|e| format!("cannot write {file}: {e}"))?;
    }
    let dir = format!("/data/{call}-dir");
    if std::fs::symlink_metadata(&dir).is_err() {
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let links = [
        ("fifo", "../../../../outside/fifo".to_owned()),
        ("outside", "../../../../outside".to_owned()),
        ("zero", format!("{UP}/dev/zero")),
        ("escape", format!("{UP}/tmp/modhost-linker-escape")),
        ("dir/fifo", "../../../../../outside/fifo".to_owned()),
    ];
    for (name, target) in links {
        let link = format!("/data/{call}-{name}");
        if std::fs::symlink_metadata(&link).is_err() {
            wasi_libc::symlink(&target, &link)?;
        }
    }
    Ok(())
}

/// The one call this needs that stable std lacks on WASI (`std::os::wasi::fs::symlink_path`
/// is nightly-only): wasi-libc, which std links, has `symlink`.
#[allow(unsafe_code)]
mod wasi_libc {
    use std::ffi::{CString, c_char, c_int};

    unsafe extern "C" {
        #[link_name = "symlink"]
        fn libc_symlink(target: *const c_char, link: *const c_char) -> c_int;
    }

    /// Creates the link `link` (a path under a preopened directory) holding `target`.
    pub(crate) fn symlink(target: &str, link: &str) -> Result<(), String> {
        let c_target = CString::new(target).map_err(|e| e.to_string())?;
        let c_link = CString::new(link).map_err(|e| e.to_string())?;
        // SAFETY: both pointers are to NUL-terminated strings that outlive the call, and
        // `symlink` only reads them.
        let status = unsafe { libc_symlink(c_target.as_ptr(), c_link.as_ptr()) };
        if status == 0 {
            Ok(())
        } else {
            Err(format!(
                "cannot link {link} -> {target}: {}",
                std::io::Error::last_os_error()
            ))
        }
    }
}

impl Module for Linker {
    fn install() -> Result<(), String> {
        plant("install")
    }

    fn upgrade(_from_version: &str) -> Result<(), String> {
        plant("upgrade")
    }

    fn uninstall() -> Result<(), String> {
        plant("uninstall")
    }

    fn enable() -> Result<(), String> {
        plant("enable")
    }

    fn disable() -> Result<(), String> {
        plant("disable")
    }

    fn handle(handler: &str, hook: &str, payload: &str) -> Result<String, String> {
        match handler {
            // What the module sees of its links through the sandbox: the names in `/data`,
            // and whether reading through `install-fifo`'s link is refused.
            "look" => {
                let mut names: Vec<String> = std::fs::read_dir("/data")
                    .map_err(|e| format!("cannot list /data: {e}"))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                let through = match std::fs::metadata("/data/install-fifo") {
                    Ok(_) => "followed",
                    Err(_) => "refused",
                };
                Ok(format!("{}\ninstall-fifo: {through}", names.join(" ")))
            }
            // Makes `payload` links (default 40) to files that do not exist yet, then
            // writes a file through each (without truncating, which would have the host
            // count the disk again): every file made that way is an entry of /data.
            // Reports how many links and files it made.
            "through_links" => {
                let count: u32 = payload.parse().unwrap_or(40);
                std::fs::create_dir_all("/data/through").map_err(|e| e.to_string())?;
                let mut linked = 0;
                while linked < count {
                    let link = format!("/data/through/link{linked}");
                    if wasi_libc::symlink(&format!("target{linked}"), &link).is_err() {
                        break;
                    }
                    linked += 1;
                }
                for written in 0..linked {
                    let opened = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(format!("/data/through/link{written}"));
                    if let Err(e) = opened {
                        return Ok(format!("{linked} links, {written} files, then: {e}"));
                    }
                }
                Ok(format!("{linked} links, {linked} files"))
            }
            // `DIR|TARGET`: moves directory DIR aside (to `DIR.old`) and puts a link to
            // TARGET in its place, as a module that may write above another grant can.
            "swap" => {
                let (dir, target) = payload.split_once('|').unwrap_or((payload, ".."));
                std::fs::rename(dir, format!("{dir}.old"))
                    .map_err(|e| format!("cannot move {dir}: {e}"))?;
                wasi_libc::symlink(target, dir)?;
                Ok(format!("{dir} -> {target}"))
            }
            other => Err(format!("no handler `{other}` for hook `{hook}`")),
        }
    }
}

modhost_sdk::export_module!(Linker);
