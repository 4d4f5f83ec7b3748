//! Entry names as messages may quote them: an archive's names are untrusted, and a
//! newline, a carriage return or an escape sequence in one must not forge a line or
//! repaint the terminal that shows the refusal.

use std::fmt::Write as _;

/// `name` as messages show it: every control character (C0 with newline and tab, DEL,
/// C1) as `\n`, `\r`, `\t` or `\x1b`, `\u{9b}`, and the bidirectional formatting and
/// line separator characters as `\u{202e}`; bytes that are not UTF-8 as `\xe9`. Names
/// longer than [`SHOWN_MAX`] characters are shortened in the middle.
pub(crate) fn shown(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    shorten(out)
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
        '\t' => out.push_str("\\t"),
        c if u32::from(c) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if c.is_control()
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            ) =>
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}
