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
/// character, the Unicode line and paragraph separators and what shows as nothing
/// (zero-width spaces, a byte-order mark) as `\u{202e}`, and a
/// backslash that would otherwise read as the start of such an escape (`\x1b` typed out)
/// doubled, so that an escape shown can only stand for a character escaped. Other
/// backslashes (a Windows path, a message quoting `\`) are shown as they are. Text with
/// none of these is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// [`escape`] for text that spans lines (a handler's output, an error and its causes,
/// a log message): newline and tab are kept, and a line that would start at the left
/// edge, or one space in (where a log line's ` WARN` starts), is indented by two spaces,
/// so that no text a module or a file name wrote can pass for a line of modhost's own
/// (`error: …`, ` WARN …`). Lines indented further are shown as they are.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    let escaped = escape_with(text, true);
    let flush = |i: usize, escaped: &str| {
        let line = &escaped[i + 1..];
        !(line.is_empty()
            || line.starts_with(['\t', '\n'])
            || line.starts_with("  ")
            || line.starts_with(" \n"))
    };
    if !escaped
        .char_indices()
        .any(|(i, c)| c == '\n' && flush(i, &escaped))
    {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for (i, c) in escaped.char_indices() {
        out.push(c);
        if c == '\n' && flush(i, &escaped) {
            out.push_str("  ");
        }
    }
    Cow::Owned(out)
}

/// A path as [`escape`] shows it (after the lossy conversion of `Path::display`).
pub fn escape_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

fn escape_with(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && !(keep_lines && matches!(c, '\n' | '\t'));
    let doubled = |i: usize| backslash_reads_as_escape(&text[i..], needs);
    let Some(start) = text
        .char_indices()
        .find(|&(i, c)| needs(c) || doubled(i))
        .map(|(i, _)| i)
    else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..start]);
    for (i, c) in text[start..].char_indices() {
        if doubled(start + i) {
            out.push_str("\\\\");
        } else if !needs(c) {
            out.push(c);
        } else if u32::from(c) < 0x80 {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// Whether `rest` starts with a backslash that, shown as it is, would read as the start
/// of an escape: one followed by `x` and two hex digits below `80` (the only ones
/// written here: a package's `\xe9` for a byte that is not UTF-8 stays as it is), by
/// `u{`, by another backslash, or by a character that is itself escaped. Only such a
/// backslash is doubled.
fn backslash_reads_as_escape(rest: &str, needs: impl Fn(char) -> bool) -> bool {
    let Some(after) = rest.strip_prefix('\\') else {
        return false;
    };
    let hex = |s: &str| matches!(s.as_bytes(), [b'0'..=b'7', low, ..] if low.is_ascii_hexdigit());
    after.starts_with(['\\'])
        || after.strip_prefix('x').is_some_and(hex)
        || after.starts_with("u{")
        || after.chars().next().is_some_and(needs)
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
        || is_invisible(c)
}

/// Characters that show as nothing (zero-width spaces and joiners, a byte-order mark, a
/// soft hyphen): two module names differing only by one would read as the same.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
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
        // What shows as nothing: `core` and `co\u{200b}re` read alike otherwise.
        assert_eq!(
            escape("co\u{200b}re\u{feff}\u{ad}"),
            "co\\u{200b}re\\u{feff}\\u{ad}"
        );
    }

    #[test]
    fn one_line_text_escapes_newline_and_tab_and_lines_keep_them() {
        assert_eq!(escape("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(escape_lines("a\nb\tc"), "a\n  b\tc");
        assert_eq!(escape_lines("a\r\nb\u{1b}c\n"), "a\\x0d\n  b\\x1bc\n");
        // What a module writes cannot pass for modhost's own line; indented lines stay.
        assert_eq!(
            escape_lines("boom\nerror: forged\n  at app.py:3\n\n\tx"),
            "boom\n  error: forged\n  at app.py:3\n\n\tx"
        );
        // Nor for a log line of its own, which starts one space in (` WARN …`).
        assert_eq!(
            escape_lines("skipping `x\n WARN forged.tgz`"),
            "skipping `x\n   WARN forged.tgz`"
        );
    }

    #[test]
    fn a_backslash_is_doubled_only_where_it_would_read_as_an_escape() {
        // The text `\x1b` and the character ESC are shown differently.
        assert_eq!(escape("\\x1b"), "\\\\x1b");
        assert_eq!(escape("\\u{9b}"), "\\\\u{9b}");
        assert_eq!(escape("\u{1b}"), "\\x1b");
        // A doubled backslash typed out stays distinguishable from one doubled here.
        assert_eq!(escape("\\\\x1b"), "\\\\\\\\x1b");
        // A backslash before an escaped character is doubled too.
        assert_eq!(escape("\\\u{1b}"), "\\\\\\x1b");
        // Windows paths and a quoted separator read as they were written.
        assert_eq!(escape_lines("C:\\dir\n"), "C:\\dir\n");
        assert_eq!(escape("..\\..\\evil.txt, `\\`"), "..\\..\\evil.txt, `\\`");
        assert_eq!(escape("C:\\xyz"), "C:\\xyz");
        // A package's escape of a byte that is not UTF-8 is no escape of the CLI's.
        assert_eq!(escape("caf\\xe9.txt"), "caf\\xe9.txt");
    }

    /// Reads text shown by [`escape`] back: `\\` is a backslash, `\xHH` and `\u{H…}` a
    /// character, and any other backslash itself.
    fn unescape(shown: &str) -> String {
        let mut out = String::new();
        let mut rest = shown;
        while let Some(c) = rest.chars().next() {
            let after = &rest[c.len_utf8()..];
            let (decoded, taken) = match (c, after) {
                ('\\', a) if a.starts_with('\\') => ('\\', 2),
                ('\\', a) if a.starts_with('x') && a.len() >= 3 => {
                    match u32::from_str_radix(a.get(1..3).unwrap_or("-"), 16) {
                        Ok(n) if n < 0x80 => (char::from_u32(n).unwrap_or('?'), 4),
                        _ => ('\\', 1),
                    }
                }
                ('\\', a) if a.starts_with("u{") => {
                    let end = a.find('}').unwrap_or(a.len());
                    let n = u32::from_str_radix(&a[2..end], 16).unwrap_or(0);
                    (char::from_u32(n).unwrap_or('?'), end + 2)
                }
                (c, _) => (c, c.len_utf8()),
            };
            out.push(decoded);
            rest = &rest[taken..];
        }
        out
    }

    #[test]
    fn every_short_text_reads_back_as_it_was() {
        let alphabet = [
            '\\', 'x', '1', 'b', 'u', '{', '}', '\u{1b}', '\n', '\u{202e}', 'a', 'e', '9',
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
            texts.dedup();
        }
        for text in &texts {
            assert_eq!(&unescape(&escape(text)), text, "{:?}", escape(text));
        }
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
