//! Which other process holds the database's write lock, for the message of a writer that
//! waited it out.
//!
//! In WAL mode SQLite's write lock is a POSIX lock on one byte of the `-shm` file. The
//! kernel lists every such lock, with its owner's pid, in `/proc/locks`; reading that
//! file asks nothing of the lock's holder. (`F_GETLK` on the `-shm` file would need a
//! descriptor of it, and closing any descriptor of a file drops every POSIX lock this
//! process holds on it: SQLite's own included.)

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The byte of the `-shm` file SQLite's WAL write lock covers: its locks begin at byte
/// 120, and the write lock is the first of them.
const WAL_WRITE_LOCK: u64 = 120;

/// The other process holding the write lock of the database at `path`, as `process PID
/// (NAME)`, if one does and the system says so (Linux, with `/proc` mounted). Its name is
/// the program's (`/proc/PID/comm`), never its command line, which may hold secrets (a
/// download key given as an argument) and reaches modules in their errors.
pub(crate) fn elsewhere(path: &Path) -> Option<String> {
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let shm = std::fs::metadata(shm).ok()?;
    let device = format!(
        "{:02x}:{:02x}",
        rustix::fs::major(shm.dev()),
        rustix::fs::minor(shm.dev())
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let me = std::process::id();
    // `/proc/locks` names the file system's own device, which on btrfs subvolumes and
    // overlay file systems is not the one `stat` gives: the inode alone, then.
    let pid = holder(&locks, |on| on == format!("{device}:{}", shm.ino()), me)
        .or_else(|| holder(&locks, |on| on.ends_with(&format!(":{}", shm.ino())), me))?;
    let name = std::fs::read(format!("/proc/{pid}/comm"))
        .map(|bytes| readable(&bytes))
        .unwrap_or_default();
    Some(match name.is_empty() {
        true => format!("process {pid}"),
        false => format!("process {pid} (`{name}`)"),
    })
}

/// The pid of another process than `me` holding a POSIX write lock over the write-lock
/// byte of the file `on` accepts (given `MAJOR:MINOR:INODE`, as `/proc/locks` names it)
/// in `locks`.
fn holder(locks: &str, on: impl Fn(&str) -> bool, me: u32) -> Option<u32> {
    locks.lines().find_map(|line| {
        // `1: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120`; a waiter's line has `->`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "POSIX", _, "WRITE", pid, file, start, end] = fields.as_slice() else {
            return None;
        };
        let pid: u32 = pid.parse().ok()?;
        let start: u64 = start.parse().ok()?;
        let covers = match *end {
            "EOF" => start <= WAL_WRITE_LOCK,
            end => end
                .parse::<u64>()
                .is_ok_and(|end| (start..=end).contains(&WAL_WRITE_LOCK)),
        };
        (on(file) && covers && pid != me).then_some(pid)
    })
}

/// A program's name as `/proc/PID/comm` gives it (at most 15 bytes and a newline),
/// control characters shown as `?`.
fn readable(comm: &[u8]) -> String {
    String::from_utf8_lossy(comm)
        .trim_end_matches('\n')
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_the_other_process_writing_over_the_write_lock_byte() {
        let locks = "1: POSIX  ADVISORY  READ 900 08:01:77 123 123\n\
                     2: POSIX  ADVISORY  WRITE 901 08:01:78 120 120\n\
                     2: -> POSIX  ADVISORY  WRITE 902 08:01:77 120 120\n\
                     3: POSIX  ADVISORY  WRITE 903 08:01:77 120 120\n\
                     4: FLOCK  ADVISORY  WRITE 904 08:01:77 0 EOF\n";
        let on = |file: &'static str| move |f: &str| f == file;
        assert_eq!(holder(locks, on("08:01:77"), 1), Some(903));
        assert_eq!(holder(locks, on("08:01:77"), 903), None, "not this process");
        assert_eq!(holder(locks, on("08:01:79"), 1), None);
        let whole = "5: POSIX  ADVISORY  WRITE 905 08:01:77 0 EOF\n";
        assert_eq!(holder(whole, on("08:01:77"), 1), Some(905));
    }

    #[test]
    fn a_program_name_is_shown_without_control_characters() {
        assert_eq!(readable(b"asterisk\n"), "asterisk");
        assert_eq!(readable(b"evil\x1b]0;x\x07\n"), "evil?]0;x?");
    }
}
