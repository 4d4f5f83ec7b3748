//! A module.xml's bytes as text: UTF-8, UTF-16, or the encoding the document declares,
//! as FreePBX (with libxml2) reads them.

use super::{Position, SyntaxError, too_large};

/// `bytes` as text, read as FreePBX (with libxml2) reads it: UTF-8; UTF-16, told by its
/// byte-order mark or, without one, by its first character `<` (XML's appendix F); or the
/// encoding the document declares (ISO-8859-1 byte for byte as libxml2 reads it, others
/// such as windows-1252 by their WHATWG labels). A document that declares another
/// encoding but is UTF-8 all the same is read as UTF-8, as it was most likely saved.
/// Otherwise the error gives the line and column of the first byte that cannot be read
/// and names the encoding.
pub fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, SyntaxError> {
    decode_within(bytes, crate::MAX_SIZE)
}

/// [`decode`] for a document of at most `max_size` bytes (another XML document, such as
/// an update server's).
pub fn decode_within(
    bytes: &[u8],
    max_size: usize,
) -> Result<std::borrow::Cow<'_, str>, SyntaxError> {
    // As `parse` would, so that a huge file is refused as such, not for a late bad byte.
    if bytes.len() > max_size {
        return Err(too_large(max_size));
    }
    // UTF-32, which libxml2 reads only where built with iconv, and no editor saves an
    // XML file in unasked: told by its byte-order mark or its first `<` (and before the
    // UTF-16 mark its own starts with), and named.
    if let [0xFF, 0xFE, 0, 0, ..]
    | [0, 0, 0xFE, 0xFF, ..]
    | [b'<', 0, 0, 0, ..]
    | [0, 0, 0, b'<', ..] = bytes
    {
        return Err(SyntaxError {
            position: Position { line: 1, column: 1 },
            message: "the document is UTF-32, which modhost does not read (convert the file \
                      to UTF-8)"
                .to_owned(),
        });
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((encoding_rs::UTF_16LE, rest)),
        [0xFE, 0xFF, rest @ ..] => Some((encoding_rs::UTF_16BE, rest)),
        [b'<', 0, ..] => Some((encoding_rs::UTF_16LE, bytes)),
        [0, b'<', ..] => Some((encoding_rs::UTF_16BE, bytes)),
        _ => None,
    };
    if let Some((encoding, text)) = utf16 {
        return decode_as(encoding, text);
    }
    let error = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(text.into()),
        Err(error) => error,
    };
    let declared = declared_encoding(bytes);
    if let Some(label) = declared.as_deref().filter(|label| !is_utf8_name(label)) {
        if is_latin1_name(label) {
            // Each byte is the code point of the same number (where WHATWG's label would
            // read windows-1252).
            return Ok(bytes
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into());
        }
        return match encoding_rs::Encoding::for_label(label.as_bytes()) {
            Some(encoding) if encoding != encoding_rs::UTF_8 && !is_utf16(encoding) => {
                decode_as(encoding, bytes)
            }
            _ => Err(SyntaxError {
                position: Position { line: 1, column: 1 },
                message: format!(
                    "the document declares encoding `{}`, which modhost cannot read here \
                     (convert the file to UTF-8)",
                    label.escape_debug()
                ),
            }),
        };
    }
    let valid = error.valid_up_to();
    // The prefix is UTF-8 by definition of `valid_up_to`, so this cannot fail.
    let before = bytes
        .get(..valid)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or_default();
    let byte = bytes.get(valid).copied().unwrap_or_default();
    Err(SyntaxError {
        position: Position::at(before, before.len()),
        message: format!(
            "byte 0x{byte:02X} is not UTF-8, and the document declares no other encoding \
             (convert the file to UTF-8, or declare its encoding)"
        ),
    })
}

/// Whether `encoding` is one of UTF-16's, which a declaration cannot name for a document
/// read as single bytes.
fn is_utf16(encoding: &'static encoding_rs::Encoding) -> bool {
    encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE
}

/// `bytes` read as `encoding`, or an error at the first sequence that is not of it.
fn decode_as(
    encoding: &'static encoding_rs::Encoding,
    bytes: &[u8],
) -> Result<std::borrow::Cow<'static, str>, SyntaxError> {
    let (text, malformed) = encoding.decode_without_bom_handling(bytes);
    if !malformed {
        return Ok(text.into_owned().into());
    }
    let at = text.find(char::REPLACEMENT_CHARACTER).unwrap_or_default();
    Err(SyntaxError {
        position: Position::at(&text, at),
        message: format!(
            "the document is not valid {} here (convert the file to UTF-8)",
            encoding.name()
        ),
    })
}

fn is_utf8_name(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("utf-8") || encoding.eq_ignore_ascii_case("utf8")
}

/// Whether `encoding` names ISO-8859-1, as the IANA registry spells it and its aliases.
fn is_latin1_name(encoding: &str) -> bool {
    [
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "latin1",
        "latin-1",
        "l1",
    ]
    .iter()
    .any(|name| encoding.eq_ignore_ascii_case(name))
}

/// The `encoding` of the XML declaration at the start of `bytes`, if there is one. Read
/// from bytes, because it is wanted precisely when the document is not UTF-8.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let declaration = bytes.strip_prefix(b"<?xml")?;
    let end = declaration.windows(2).position(|w| w == b"?>")?;
    let declaration = declaration.get(..end)?;
    let at = declaration
        .windows(b"encoding".len())
        .position(|w| w == b"encoding")?;
    let rest = declaration
        .get(at + b"encoding".len()..)?
        .trim_ascii_start();
    let rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    let (&quote, rest) = rest.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = rest.get(..rest.iter().position(|&b| b == quote)?)?;
    Some(String::from_utf8_lossy(value).into_owned())
}
