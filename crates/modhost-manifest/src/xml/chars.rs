//! The characters a module.xml may not hold: NUL (C and PHP strings end there, so what
//! one reader sees another would not) and the noncharacters U+FFFE and U+FFFF (a Rust
//! string holds no surrogates), raw or as a character reference. XML 1.0 forbids the other
//! control characters too, but FreePBX's reader takes them and an escape sequence in a
//! `<name>` is the terminal's business: text output shows them escaped, JSON exact.

/// Whether a module.xml may hold `c`.
pub(super) fn is_xml_char(c: char) -> bool {
    c != '\0' && c != '\u{FFFE}' && c != '\u{FFFF}'
}

/// The byte offset and the character of the first character in `text` that a module.xml
/// may not hold.
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

/// The message for a raw character a module.xml may not hold.
pub(super) fn raw_message(c: char) -> String {
    format!(
        "the document contains {}, which a module.xml may not hold",
        describe(c)
    )
}

/// The message for a character reference to a character a module.xml may not hold.
pub(super) fn reference_message(reference: &str, c: char) -> String {
    format!(
        "character reference `{reference}` is {}, which a module.xml may not hold",
        describe(c)
    )
}

/// The first character reference in `raw` (an attribute value as written) to a character
/// a module.xml may not hold: its byte offset in `raw`, its text and the character.
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
    fn only_nul_and_the_noncharacters_are_refused() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            'é',
            '\u{7}',
            '\u{1B}',
            '\u{7F}',
            '\u{FEFF}',
            '\u{10FFFF}',
        ] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in ['\0', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!is_xml_char(c), "{c:?}");
        }
        assert_eq!(describe('\u{1B}'), "U+001B (ESC, a control character)");
        assert_eq!(describe('\0'), "U+0000 (NUL, a control character)");
        assert_eq!(describe('\u{FFFF}'), "U+FFFF (a noncharacter)");
    }

    #[test]
    fn finds_references_to_forbidden_characters() {
        assert_eq!(
            forbidden_reference("a &#65; b &#x0; c"),
            Some((10, "&#x0;", '\0'))
        );
        assert_eq!(forbidden_reference("&#7; &#x1B;"), None);
        assert_eq!(forbidden_reference("&#65; &amp; &#xE9;"), None);
        assert_eq!(
            forbidden_reference("&#x1b"),
            None,
            "unterminated: quick-xml's"
        );
    }
}
