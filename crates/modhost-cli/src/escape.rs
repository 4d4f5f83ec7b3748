//! Untrusted text as a terminal may show it. Module names and descriptions from a
//! module.xml (raw, or as `&#x1b;`), archive entry and package file names, a handler's
//! output and a guest's log records can hold escape sequences and other control
//! characters that would move the cursor, recolour, retitle or rewrite the terminal, or
//! bidirectional formatting characters that make text read otherwise than it is. Text
//! output shows each such character as a visible escape; `--json` output stays exact
//! (serde escapes what JSON must).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// `text` on one line: every control character — C0 (newline and tab included), DEL
/// and C1 — shown as `\x1b` (below U+0080) or `\u{9b}`, every bidirectional formatting
/// character and the Unicode line and paragraph separators as `\u{202e}`, and a
/// backslash doubled, so that an escape shown can only stand for a character escaped.
/// Text with none of these is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// [`escape`] for text that spans lines (a handler's output, an error and its causes,
/// a log message): newline and tab are kept.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

/// A path as [`escape`] shows it (after the lossy conversion of `Path::display`).
pub fn escape_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

fn escape_with(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || (is_unsafe(c) && !(keep_lines && matches!(c, '\n' | '\t')));
    let Some(start) = text.find(needs) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..start]);
    for c in text[start..].chars() {
        if !needs(c) {
            out.push(c);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else if u32::from(c) < 0x80 {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// Whether a terminal could act on `c`, or `c` could make text read otherwise than it
/// is: C0, DEL, C1, Unicode's bidirectional formatting characters (embeddings,
/// overrides, isolates, marks) and its line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        for text in ["", "Phonebook 2.0.0", "Téléphone → 電話 ✓", "a/b c.tgz"] {
            assert!(
                matches!(escape(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
            assert!(
                matches!(escape_lines(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn escape_sequences_are_shown_not_run() {
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("\u{1b}]0;pwned\u{7}"), "\\x1b]0;pwned\\x07");
        assert_eq!(escape("a\rb\u{8}c\0d\u{7f}"), "a\\x0db\\x08c\\x00d\\x7f");
        // C1: the one-character CSI, and the next-line control.
        assert_eq!(escape("\u{9b}2J\u{85}"), "\\u{9b}2J\\u{85}");
    }

    #[test]
    fn bidirectional_controls_and_separators_are_shown() {
        assert_eq!(escape("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(
            escape("\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{61c}"),
            "\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}"
        );
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
    }

    #[test]
    fn one_line_text_escapes_newline_and_tab_and_lines_keep_them() {
        assert_eq!(escape("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(escape_lines("a\nb\tc"), "a\nb\tc");
        assert_eq!(escape_lines("a\r\nb\u{1b}c\n"), "a\\x0d\nb\\x1bc\n");
    }

    #[test]
    fn a_backslash_is_doubled_so_an_escape_is_unambiguous() {
        // The text `\x1b` and the character ESC are shown differently.
        assert_eq!(escape("\\x1b"), "\\\\x1b");
        assert_eq!(escape("\u{1b}"), "\\x1b");
        assert_eq!(escape_lines("C:\\dir\n"), "C:\\\\dir\n");
    }

    #[test]
    fn no_control_character_survives_either_escape() {
        let every: String = (0..=0x10ffff_u32).filter_map(char::from_u32).collect();
        for shown in [escape(&every), escape_lines(&every)] {
            let left: Vec<char> = shown
                .chars()
                .filter(|&c| is_unsafe(c) && c != '\n' && c != '\t')
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
        assert!(!escape(&every).contains(['\n', '\t']));
    }
}
