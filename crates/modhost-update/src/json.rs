//! Reading the JSON documents of update channels as their publishers write them (PHP's
//! `json_encode` above all): a byte-order mark before the document, numbers where text is
//! meant (`"version": 16.0`) and text where numbers are (`"size": "59787"`). A field that
//! cannot be read is named, with what was found, rather than in serde's words.

use serde_json::{Map, Value};

/// The first byte of a document past a UTF-8 byte-order mark and whitespace: `{` or `[`
/// for JSON, `<` for XML (or HTML).
pub(crate) fn first_byte(bytes: &[u8]) -> Option<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.trim_ascii_start().first().copied()
}

/// The object `bytes` hold, a byte-order mark before it allowed; else why not, as a
/// phrase: JSON's syntax error with its position, or what kind of value it is instead.
pub(crate) fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if crate::signature::is_web_page(bytes) {
        return Err(format!(
            "an HTML page ({} bytes), not JSON: the server answered with an error, \
             maintenance or login page in the document's place",
            bytes.len()
        ));
    }
    let syntax = |e: serde_json::Error| {
        // Invisible in an editor, and JSON takes no space but ASCII's: a document copied
        // from a web page or a wiki carries them.
        let pasted = std::str::from_utf8(bytes).is_ok_and(|text| text.contains('\u{a0}'));
        match pasted {
            true => format!(
                "not JSON ({e}); it holds non-breaking spaces (U+00A0), which JSON does not \
                 read as spaces: a document copied from a web page? Replace them with \
                 plain spaces"
            ),
            false => format!("not JSON ({e})"),
        }
    };
    match serde_json::from_slice(bytes).map_err(syntax)? {
        // Read again, field by field, for a field given twice, which the first reading
        // (the last one wins) does not tell.
        Value::Object(_) => serde_json::from_slice::<Unique>(bytes)
            .map(|unique| unique.0)
            .map_err(|e| e.to_string()),
        other => Err(format!("{}, not an object", kind(&other))),
    }
}

/// An object that names no field twice: one client reads the first of two `version`s,
/// another the last, and which the publisher meant (or signed) cannot be told.
struct Unique(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Unique;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Unique, A::Error> {
                let mut fields = Map::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if fields.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!(
                            "field `{name}` is given twice, so which one is meant cannot be told"
                        )));
                    }
                    fields.insert(name, value);
                }
                Ok(Unique(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Field `name` of `object`, `None` when absent, null, or an empty array or object: PHP's
/// `json_encode` writes an empty array for a value never set, as `[]` (or `{}`).
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    })
}

/// Field `name` of `object` as text: a string, or a number as PHP writes one (`16.0`);
/// `None` when absent, null or empty (see [`field`]). Anything else is refused, naming
/// the field.
pub(crate) fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(format!(
            "`{name}`: expected a string, found {}",
            kind(other)
        )),
    }
}

/// Field `name` of `object`, which must be there, as text (see [`text`]).
pub(crate) fn required(object: &Map<String, Value>, name: &str) -> Result<String, String> {
    text(object, name)?.ok_or_else(|| format!("`{name}` is missing"))
}

/// Field `name` of `object`, which must be there, as a string: a number is no location
/// (`"location": 5` names no file a publisher meant).
pub(crate) fn required_string(object: &Map<String, Value>, name: &str) -> Result<String, String> {
    match field(object, name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!(
            "`{name}`: expected a string, found {}",
            kind(other)
        )),
        None => Err(format!("`{name}` is missing")),
    }
}

/// Field `name` of `object` as a count of bytes: a whole number, or one written as text
/// (`"59787"`); `None` when absent, null or empty (see [`field`]).
pub(crate) fn bytes(object: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    let refused = |found: String| format!("`{name}`: expected a number of bytes, found {found}");
    match field(object, name) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .map(Some)
            .ok_or_else(|| refused(format!("{number}"))),
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| refused(format!("`{}`", crate::messages::clipped(text)))),
        Some(other) => Err(refused(kind(other).to_owned())),
    }
}

/// What kind of JSON value `value` is, for a message.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::object;

    #[test]
    fn a_field_given_twice_is_refused_and_one_given_once_is_read() {
        let twice =
            object(b"\xEF\xBB\xBF{\"rawname\":\"pb\",\"version\":\"1.0\",\"version\":\"9.0\"}");
        assert!(
            twice
                .as_ref()
                .is_err_and(|e| e.contains("field `version` is given twice")),
            "{twice:?}"
        );
        // Nested objects are the publisher's to shape; only the top level is one's fields.
        let once = object(br#"{"version":"1.0","supported":{"version":"16.0"}}"#);
        assert!(once.is_ok_and(|o| o.len() == 2));
        assert!(object(b"[1]").is_err_and(|e| e.ends_with("not an object")));
    }

    #[test]
    fn non_breaking_spaces_pasted_from_a_web_page_are_named() {
        let pasted = object("{\u{a0}\"rawname\":\u{a0}\"pb\"}".as_bytes());
        assert!(
            pasted.as_ref().is_err_and(|e| e.starts_with("not JSON (")
                && e.contains("non-breaking spaces (U+00A0)")
                && e.contains("Replace them with plain spaces")),
            "{pasted:?}"
        );
        // Inside a string it is text, read as it is.
        assert!(object("{\"name\":\"Phone\u{a0}book\"}".as_bytes()).is_ok());
        // Any other syntax error is said alone.
        let broken = object(b"{\"rawname\" \"pb\"}");
        assert!(
            broken
                .as_ref()
                .is_err_and(|e| e.starts_with("not JSON (") && !e.contains("U+00A0")),
            "{broken:?}"
        );
    }
}
