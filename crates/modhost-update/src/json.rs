//! Reading the JSON documents of update channels as their publishers write them (PHP's
//! `json_encode` above all): a byte-order mark before the document, numbers where text is
//! meant (`"version": 16.0`) and text where numbers are (`"size": "59787"`). A field that
//! cannot be read is named, with what was found, rather than in serde's words.

use serde_json::{Map, Value};

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
    match serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))? {
        Value::Object(object) => Ok(object),
        other => Err(format!("{}, not an object", kind(&other))),
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
