//! The characters XML 1.0 allows (its `Char` production): TAB, LF, CR and everything
//! from U+0020 up, except U+FFFE and U+FFFF (a Rust string holds no surrogates). Other
//! control characters are refused whether written raw or as a character reference.

/// Whether XML 1.0 allows `c` in a document.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The byte offset and the character of the first character in `text` that XML 1.0
/// does not allow.
pub(super) fn first_forbidden(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|&(_, c)| !is_xml_char(c))
}

/// The control characters' names, from U+0000 to U+001F.
const C0_NAMES: [&str; 32] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC",
    "FS", "GS", "RS", "US",
];

/// `c` as a message shows it: `U+001B (ESC, a control character)`.
pub(super) fn describe(c: char) -> String {
    let code = u32::from(c);
    match usize::try_from(code).ok().and_then(|i| C0_NAMES.get(i)) {
        Some(name) => format!("U+{code:04X} ({name}, a control character)"),
        None => format!("U+{code:04X} (a noncharacter)"),
    }
}

/// The message for a raw character XML 1.0 does not allow.
pub(super) fn raw_message(c: char) -> String {
    format!(
        "the document contains {}, which XML 1.0 does not allow (only TAB, LF and CR of the \
         control characters)",
        describe(c)
    )
}

/// The message for a character reference to a character XML 1.0 does not allow.
pub(super) fn reference_message(reference: &str, c: char) -> String {
    format!(
        "character reference `{reference}` is {}, which XML 1.0 does not allow",
        describe(c)
    )
}

/// The first character reference in `raw` (an attribute value as written) to a character
/// XML 1.0 does not allow: its byte offset in `raw`, its text and the character.
pub(super) fn forbidden_reference(raw: &str) -> Option<(usize, &str, char)> {
    let mut from = 0;
    while let Some(found) = raw.get(from..)?.find("&#") {
        let start = from + found;
        let end = start + raw.get(start..)?.find(';')?;
        let reference = raw.get(start..=end)?;
        let digits = reference.get(2..reference.len() - 1)?;
        let code = match digits.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => digits.parse().ok(),
        };
        if let Some(c) = code.and_then(char::from_u32).filter(|&c| !is_xml_char(c)) {
            return Some((start, reference, c));
        }
        from = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_chars_are_those_of_the_char_production() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            'é',
            '\u{7F}',
            '\u{FEFF}',
            '\u{10FFFF}',
        ] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in [
            '\0', '\u{7}', '\u{1B}', '\u{B}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
        ] {
            assert!(!is_xml_char(c), "{c:?}");
        }
        assert_eq!(describe('\u{1B}'), "U+001B (ESC, a control character)");
        assert_eq!(describe('\0'), "U+0000 (NUL, a control character)");
        assert_eq!(describe('\u{FFFF}'), "U+FFFF (a noncharacter)");
    }

    #[test]
    fn finds_references_to_forbidden_characters() {
        assert_eq!(
            forbidden_reference("a &#65; b &#x1B; c"),
            Some((10, "&#x1B;", '\u{1B}'))
        );
        assert_eq!(forbidden_reference("&#7;"), Some((0, "&#7;", '\u{7}')));
        assert_eq!(forbidden_reference("&#65; &amp; &#xE9;"), None);
        assert_eq!(
            forbidden_reference("&#x1b"),
            None,
            "unterminated: quick-xml's"
        );
    }
}
