//! The element tree: positions, refusals and their messages.

use super::*;

#[test]
fn resolves_predefined_entities_and_keeps_positions() {
    let doc = "<module>\n  <name>A &amp; B &#65;</name>\n  <info/>\n</module>";
    let root = parse(doc).map_err(|e| e.message);
    let Ok(root) = root else { panic!("{root:?}") };
    let name = root.child("name").map(Element::trimmed_text);
    assert_eq!(name, Some("A & B A"));
    assert_eq!(
        root.child("name").map(|e| e.position),
        Some(Position { line: 2, column: 3 })
    );
    assert!(root.child("info").is_some());
}

#[test]
fn line_ends_read_the_same_in_text_and_in_cdata() {
    let doc =
        "<module>\r\n<a>one\r\ntwo\rthree</a>\r\n<b><![CDATA[one\r\ntwo\rthree]]></b></module>";
    let Ok(root) = parse(doc).map_err(|e| e.message) else {
        panic!("parses")
    };
    for name in ["a", "b"] {
        assert_eq!(
            root.child(name).map(Element::trimmed_text),
            Some("one\ntwo\nthree"),
            "<{name}>"
        );
    }
}

#[test]
fn walking_forward_finds_the_same_positions_as_counting_from_the_start() {
    let doc = "<module>\n  <né a=\"é\"/><b/>\n\n\t<c>ü</c><d/>\n</module>";
    let Ok(root) = parse(doc).map_err(|e| e.message) else {
        panic!("parses")
    };
    let positions: Vec<Position> = root.children.iter().map(|e| e.position).collect();
    let expected: Vec<Position> = ["<né", "<b/>", "<c>", "<d/>"]
        .iter()
        .filter_map(|tag| doc.find(tag))
        .map(|offset| Position::at(doc, offset))
        .collect();
    assert_eq!(positions, expected);
    assert_eq!(
        positions[3],
        Position {
            line: 4,
            column: 10
        }
    );
}

#[test]
fn a_byte_order_mark_moves_no_position() {
    let doc = "<module>\n<rawname>demo</rawname>\n<name>x</name><version>1.x</version></module>";
    let marked = format!("\u{feff}{doc}");
    for source in [doc, marked.as_str()] {
        let Ok(root) = parse(source).map_err(|e| e.message) else {
            panic!("parses")
        };
        let version = root.child("version").map(|e| e.position);
        assert_eq!(
            version,
            Some(Position {
                line: 3,
                column: 15
            })
        );
        assert_eq!(
            root.position,
            Position { line: 1, column: 1 },
            "the mark is not a column"
        );
        let broken = source.replace("</name>", "</nam>");
        let error = parse(&broken).err().map(|e| e.position);
        assert_eq!(error, Some(Position { line: 3, column: 8 }));
    }
}

#[test]
fn refuses_doctype_and_custom_entities() {
    let bomb = "<!DOCTYPE m [<!ENTITY a \"aaaa\">]><module>&a;</module>";
    let err = parse(bomb).err().map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("DOCTYPE")));
    let custom = "<module><name>&lol;</name></module>";
    let err = parse(custom).err().map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("&lol;")));
}

#[test]
fn refuses_an_oversized_document_before_reading_it() {
    let big = format!("<module>{}</module>", " ".repeat(crate::MAX_SIZE));
    let err = parse(&big).err().map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("larger than")));
    let mut bytes = big.into_bytes();
    bytes.push(0xFF);
    let err = decode(&bytes).err().map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("larger than")));
}

#[test]
fn reports_unclosed_and_mismatched_tags_with_position() {
    let err = parse("<module>\n<name>x</nam>\n</module>").err();
    assert_eq!(err.map(|e| e.position.line), Some(2));
    let err = parse("<module>\n  <depends><module>x</module>\n").err();
    assert_eq!(
        err,
        Some(SyntaxError {
            position: Position { line: 2, column: 3 },
            message: "<depends> is never closed".into()
        })
    );
}

/// The message and `line:column` of parsing `doc`'s error.
fn error(doc: &str) -> Option<(String, usize, usize)> {
    parse(doc)
        .err()
        .map(|e| (e.message, e.position.line, e.position.column))
}

#[test]
fn attribute_errors_are_at_their_own_line_and_column_without_byte_offsets() {
    let cases = [
        (
            "<module>\n  <name a=\"1\" b=\"2\" a=\"3\">x</name></module>",
            "bad attribute in <name>: attribute `a` is repeated (first at 2:9)",
            (2, 21),
        ),
        (
            "<module>\n  <name a>x</name></module>",
            "bad attribute in <name>: an attribute name must be followed by `=`",
            (2, 10),
        ),
        (
            "<module>\n  <name é=\"1\" a=1>x</name></module>",
            "bad attribute in <name>: an attribute value must be in quotes",
            (2, 17),
        ),
        (
            "<module>\n  <name a=>x</name></module>",
            "bad attribute in <name>: `=` must be followed by a quoted value",
            (2, 11),
        ),
        (
            "<module>\n  <name x=\"é\" a=\"b&lol;c\">x</name></module>",
            "bad value for attribute `a` of <name>: unknown entity `&lol;` (custom entities \
             are not allowed)",
            (2, 19),
        ),
        (
            "<module>\n  <name a=\"b&lolc\">x</name></module>",
            "bad value for attribute `a` of <name>: `&` starts an entity that has no closing `;`",
            (2, 13),
        ),
    ];
    for (doc, message, (line, column)) in cases {
        assert_eq!(
            error(doc),
            Some((message.to_owned(), line, column)),
            "{doc}"
        );
    }
}

#[test]
fn bytes_that_are_not_utf8_are_read_as_declared_or_placed() {
    // ISO-8859-1 declared is read as FreePBX reads it; UTF-8 all the same, as UTF-8.
    let latin1 =
        b"<?xml version=\"1.0\" encoding='ISO-8859-1' ?>\n<module>\n  <name>Caf\xe9</name>";
    assert_eq!(
        decode(latin1).ok().as_deref(),
        Some("<?xml version=\"1.0\" encoding='ISO-8859-1' ?>\n<module>\n  <name>Café</name>")
    );
    let saved_as_utf8 = "<?xml version=\"1.0\" encoding=\"latin1\"?><name>Café</name>";
    assert_eq!(
        decode(saved_as_utf8.as_bytes()).ok().as_deref(),
        Some(saved_as_utf8)
    );
    // Other declared encodings by their labels: Windows' curly quotes, Japanese.
    let cp1252 = b"<?xml version=\"1.0\" encoding='windows-1252'?><name>\x93Caf\xe9\x94</name>";
    assert_eq!(
        decode(cp1252).ok().as_deref(),
        Some("<?xml version=\"1.0\" encoding='windows-1252'?><name>\u{201c}Café\u{201d}</name>")
    );
    let sjis = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><name>\x93\xfa\x96\x7b</name>";
    assert_eq!(
        decode(sjis).ok().as_deref(),
        Some("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><name>日本</name>")
    );
    // A byte that is not of the declared encoding is placed.
    let broken = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n<m>\n  ok\x81</m>";
    let err = decode(broken).err();
    assert_eq!(
        err.as_ref().map(|e| e.position),
        Some(Position { line: 3, column: 5 })
    );
    assert_eq!(
        err.map(|e| e.message).as_deref(),
        Some("the document is not valid Shift_JIS here (convert the file to UTF-8)")
    );
    let unknown = decode(b"<?xml version=\"1.0\" encoding=\"EBCDIC-US\"?><m>\xc1</m>").err();
    assert_eq!(
        unknown.map(|e| e.message).as_deref(),
        Some(
            "the document declares encoding `EBCDIC-US`, which modhost cannot read here \
             (convert the file to UTF-8)"
        )
    );
    // Without a declaration (or declaring UTF-8 in any spelling) the byte is blamed.
    let err = decode(b"<module>\n  <name>Caf\xe9</name>").err();
    assert_eq!(
        err.as_ref().map(|e| e.position),
        Some(Position {
            line: 2,
            column: 12
        })
    );
    for doc in [
        &b"<?xml version=\"1.0\" encoding=\"utf-8\"?><m>\xff</m>"[..],
        b"<?xml version=\"1.0\" encoding=\"UTF8\"?><m>\xff</m>",
        b"\xEF\xBB\xBF<m>\xff</m>",
        b"<m>\xff</m>",
    ] {
        let message = decode(doc).err().map(|e| e.message);
        assert_eq!(
            message.as_deref(),
            Some(
                "byte 0xFF is not UTF-8, and the document declares no other encoding \
                 (convert the file to UTF-8, or declare its encoding)"
            )
        );
    }
    // UTF-16, as Notepad's "Unicode" writes it: with a byte-order mark or without one.
    let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><module>é</module>";
    let le = || text.encode_utf16().flat_map(u16::to_le_bytes);
    let be = || text.encode_utf16().flat_map(u16::to_be_bytes);
    for doc in [
        [0xFF, 0xFE].into_iter().chain(le()).collect::<Vec<u8>>(),
        [0xFE, 0xFF].into_iter().chain(be()).collect(),
        le().collect(),
        be().collect(),
    ] {
        assert_eq!(decode(&doc).ok().as_deref(), Some(text), "{doc:?}");
    }
    // UTF-32, with its mark or without, is named rather than read as UTF-16 with NULs.
    let le32 = || text.chars().flat_map(|c| u32::from(c).to_le_bytes());
    let be32 = || text.chars().flat_map(|c| u32::from(c).to_be_bytes());
    for doc in [
        [0xFF, 0xFE, 0, 0]
            .into_iter()
            .chain(le32())
            .collect::<Vec<u8>>(),
        [0, 0, 0xFE, 0xFF].into_iter().chain(be32()).collect(),
        le32().collect(),
        be32().collect(),
    ] {
        assert_eq!(
            decode(&doc).err().map(|e| e.message).as_deref(),
            Some("the document is UTF-32, which modhost does not read (convert the file to UTF-8)"),
            "{doc:?}"
        );
    }
    let truncated = decode(b"\xFF\xFE<\0m\0/\0>").err().map(|e| e.message);
    assert_eq!(
        truncated.as_deref(),
        Some("the document is not valid UTF-16LE here (convert the file to UTF-8)")
    );
    assert_eq!(
        decode("<m>é</m>".as_bytes()).ok().as_deref(),
        Some("<m>é</m>")
    );
}

#[test]
fn nul_and_noncharacters_are_refused_wherever_they_stand_and_other_controls_are_kept() {
    let ok = "<module>\t<name a=\"x\ty\">A\r\nB</name><!-- \t --></module>";
    assert!(parse(ok).is_ok());
    // FreePBX's reader takes the other control characters; displays escape them.
    for kept in [
        "<module><name>a\u{7}</name></module>",
        "<module>\n<!-- \u{1b} --></module>",
        "<module>&#x1B;</module>",
        "<module a=\"b&#x0C;\"/>",
    ] {
        assert!(parse(kept).is_ok(), "{kept:?}");
    }
    let cases = [
        ("<module><![CDATA[\u{0}]]></module>", "U+0000 (NUL", (1, 18)),
        ("<module a=\"x\u{0}\"/>", "U+0000 (NUL", (1, 13)),
        (
            "<module>\u{FFFF}</module>",
            "U+FFFF (a noncharacter)",
            (1, 9),
        ),
        (
            "<module>&#x0;</module>",
            "character reference `&#x0;`",
            (1, 9),
        ),
        (
            "<module a=\"b&#0;\"/>",
            "0x0 character is not permitted",
            (1, 12),
        ),
    ];
    for (doc, message, (line, column)) in cases {
        let found = error(doc);
        assert!(
            found
                .as_ref()
                .is_some_and(|(m, l, c)| m.contains(message) && (*l, *c) == (line, column)),
            "{doc:?}: {found:?}"
        );
    }
    // An earlier syntax error is reported first: problems come in document order.
    let found = error("<module>\n<name>x</nam>\n\u{0}</module>");
    assert!(found.is_some_and(|(m, l, _)| l == 2 && !m.contains("U+0000")));
}
