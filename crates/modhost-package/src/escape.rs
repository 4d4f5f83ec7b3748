//! Entry names as messages may quote them: an archive's names are untrusted, and a
//! newline or a carriage return in one must not forge a line of the refusal. Other control
//! and formatting characters are left for whoever shows the message to escape (the CLI
//! does, in text; its `--json` stays exact), so that nothing is escaped twice.

use std::fmt::Write as _;

/// `name` as messages show it: a newline as `\n`, a carriage return as `\r`, bytes that
/// are not UTF-8 as `\xe9`. Names longer than [`SHOWN_MAX`] characters are shortened in
/// the middle.
pub(crate) fn shown(name: &[u8]) -> String {
    shorten(escaped(name))
}

/// A package's path as messages show it: escaped as [`shown`] escapes a name (a file
/// name may hold a newline too), never shortened.
pub(crate) fn shown_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escaped(path.as_os_str().as_bytes())
}

fn escaped(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A text `name` as messages show it (see [`shown`]).
pub(crate) fn shown_str(name: &str) -> String {
    shown(name.as_bytes())
}

/// The most characters of a name a message shows: longer ones keep their start and end.
pub(crate) const SHOWN_MAX: usize = 120;

fn shorten(text: String) -> String {
    let count = text.chars().count();
    if count <= SHOWN_MAX {
        return text;
    }
    let head: String = text.chars().take(SHOWN_MAX / 2).collect();
    let tail: String = text.chars().skip(count - SHOWN_MAX / 2 + 1).collect();
    format!("{head}…{tail}")
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c => out.push(c),
    }
}
