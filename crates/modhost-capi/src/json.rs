//! WIT values as JSON, both ways: a capability function's arguments go to the C callback
//! as a JSON object, and the callback's JSON answer becomes the function's result.
//!
//! The mapping, which modhost.h repeats for C authors: bool, numbers and strings as
//! themselves (a char is a one-character string); a list or tuple as an array; a record
//! as an object keyed by field name; an enum as its case name; flags as an array of the
//! names set; `option<T>` as `null` or the value (`{"some": v}` when `T` is itself an
//! option, so that `some(none)` and `none` differ); `result<T, E>` as `{"ok": v}` or
//! `{"err": v}` (`null` for a missing type); a variant as `{"case": v}`.

use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

/// A value the mapping does not cover, or JSON that does not fit the expected type.
pub(crate) type Mismatch = String;

/// `val` as JSON.
pub(crate) fn to_json(val: &Val) -> Result<Value, Mismatch> {
    Ok(match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        // JSON has no NaN or infinity: they become null.
        Val::Float32(x) => Number::from_f64(f64::from(*x)).map_or(Value::Null, Value::Number),
        Val::Float64(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| Ok((name.clone(), to_json(v)?)))
                .collect::<Result<Map<_, _>, Mismatch>>()?,
        ),
        Val::Enum(case) => Value::String(case.clone()),
        Val::Flags(names) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        Val::Option(None) => Value::Null,
        Val::Option(Some(inner)) => match &**inner {
            Val::Option(_) => tagged("some", Some(inner))?,
            _ => to_json(inner)?,
        },
        Val::Result(Ok(v)) => tagged("ok", v.as_deref())?,
        Val::Result(Err(v)) => tagged("err", v.as_deref())?,
        Val::Variant(case, v) => tagged(case, v.as_deref())?,
        Val::Map(_) | Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(format!("{val:?} has no JSON form in the C API"));
        }
    })
}

/// `{tag: payload}`, with `null` for no payload.
fn tagged(tag: &str, payload: Option<&Val>) -> Result<Value, Mismatch> {
    let payload = match payload {
        Some(v) => to_json(v)?,
        None => Value::Null,
    };
    Ok(Value::Object(Map::from_iter([(tag.to_owned(), payload)])))
}

/// `json` as a value of type `ty`.
pub(crate) fn from_json(json: &Value, ty: &Type) -> Result<Val, Mismatch> {
    let wrong = || {
        format!(
            "`{}`, which is not {}",
            modhost::shortened(&json.to_string()),
            describe(ty)
        )
    };
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(wrong)?),
        Type::S8 => Val::S8(signed(json).ok_or_else(wrong)?),
        Type::U8 => Val::U8(unsigned(json).ok_or_else(wrong)?),
        Type::S16 => Val::S16(signed(json).ok_or_else(wrong)?),
        Type::U16 => Val::U16(unsigned(json).ok_or_else(wrong)?),
        Type::S32 => Val::S32(signed(json).ok_or_else(wrong)?),
        Type::U32 => Val::U32(unsigned(json).ok_or_else(wrong)?),
        Type::S64 => Val::S64(signed(json).ok_or_else(wrong)?),
        Type::U64 => Val::U64(unsigned(json).ok_or_else(wrong)?),
        // A float32 holds what it can of the number, as a C `float` would; one too large
        // for it is refused rather than made infinite.
        #[allow(clippy::cast_possible_truncation)]
        Type::Float32 => Val::Float32(
            json.as_f64()
                .map(|n| n as f32)
                .filter(|n| n.is_finite())
                .ok_or_else(wrong)?,
        ),
        Type::Float64 => Val::Float64(json.as_f64().ok_or_else(wrong)?),
        Type::Char => {
            let mut chars = json.as_str().ok_or_else(wrong)?.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(wrong()),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(wrong)?.to_owned()),
        Type::List(list) => {
            let element = list.ty();
            Val::List(
                json.as_array()
                    .ok_or_else(wrong)?
                    .iter()
                    .map(|item| from_json(item, &element))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::FixedLengthList(list) => {
            let items = json.as_array().ok_or_else(wrong)?;
            if u32::try_from(items.len()).ok() != Some(list.len()) {
                return Err(wrong());
            }
            let element = list.ty();
            Val::FixedLengthList(
                items
                    .iter()
                    .map(|item| from_json(item, &element))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Tuple(tuple) => {
            let items = json.as_array().ok_or_else(wrong)?;
            if items.len() != tuple.types().len() {
                return Err(wrong());
            }
            Val::Tuple(
                items
                    .iter()
                    .zip(tuple.types())
                    .map(|(item, ty)| from_json(item, &ty))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Record(record) => {
            let object = json.as_object().ok_or_else(wrong)?;
            // A field the record does not have is a mistake (a misspelt name), not
            // something to drop unsaid.
            if let Some(unknown) = object
                .keys()
                .find(|key| !record.fields().any(|field| field.name == key.as_str()))
            {
                return Err(format!(
                    "a record with field `{}`, which {} does not have",
                    modhost::shortened(unknown),
                    describe(ty)
                ));
            }
            Val::Record(
                record
                    .fields()
                    .map(|field| {
                        let value = object.get(field.name).unwrap_or(&Value::Null);
                        from_json(value, &field.ty)
                            .map(|v| (field.name.to_owned(), v))
                            .map_err(|e| format!("field `{}`: {e}", field.name))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Enum(cases) => {
            let case = json.as_str().ok_or_else(wrong)?;
            if !cases.names().any(|name| name == case) {
                return Err(wrong());
            }
            Val::Enum(case.to_owned())
        }
        Type::Flags(flags) => {
            let mut set = Vec::new();
            for name in json.as_array().ok_or_else(wrong)? {
                let name = name.as_str().ok_or_else(wrong)?;
                if !flags.names().any(|flag| flag == name) {
                    return Err(wrong());
                }
                set.push(name.to_owned());
            }
            Val::Flags(set)
        }
        Type::Option(option) => {
            let inner = option.ty();
            match (json, &inner) {
                (Value::Null, _) => Val::Option(None),
                (_, Type::Option(_)) => {
                    let (tag, payload) = single_key(json).ok_or_else(wrong)?;
                    if tag != "some" {
                        return Err(wrong());
                    }
                    Val::Option(Some(Box::new(from_json(payload, &inner)?)))
                }
                _ => Val::Option(Some(Box::new(from_json(json, &inner)?))),
            }
        }
        Type::Result(result) => {
            let (tag, payload) = single_key(json).ok_or_else(wrong)?;
            match tag {
                "ok" => Val::Result(Ok(
                    payload_of(payload, result.ok()).map_err(|e| format!("`ok`: {e}"))?
                )),
                "err" => Val::Result(Err(
                    payload_of(payload, result.err()).map_err(|e| format!("`err`: {e}"))?
                )),
                _ => return Err(wrong()),
            }
        }
        Type::Variant(variant) => {
            let (tag, payload) = single_key(json).ok_or_else(wrong)?;
            let case = variant
                .cases()
                .find(|case| case.name == tag)
                .ok_or_else(wrong)?;
            Val::Variant(tag.to_owned(), payload_of(payload, case.ty)?)
        }
        Type::Map(_)
        | Type::Own(_)
        | Type::Borrow(_)
        | Type::Future(_)
        | Type::Stream(_)
        | Type::ErrorContext => {
            return Err(format!("{} has no JSON form in the C API", describe(ty)));
        }
    })
}

/// A tagged value's payload: none for a case without a type (given as `null`), else the
/// JSON converted.
fn payload_of(json: &Value, ty: Option<Type>) -> Result<Option<Box<Val>>, Mismatch> {
    match ty {
        Some(ty) => Ok(Some(Box::new(from_json(json, &ty)?))),
        None if json.is_null() => Ok(None),
        None => Err(format!(
            "`{}`, a payload for a case that carries none (give `null`)",
            modhost::shortened(&json.to_string())
        )),
    }
}

/// The one key of an object and its value: `{"ok": …}`, `{"case": …}`.
fn single_key(json: &Value) -> Option<(&str, &Value)> {
    let object = json.as_object()?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) => Some((key.as_str(), value)),
        _ => None,
    }
}

fn signed<T: TryFrom<i64>>(json: &Value) -> Option<T> {
    json.as_i64().and_then(|n| T::try_from(n).ok())
}

fn unsigned<T: TryFrom<u64>>(json: &Value) -> Option<T> {
    json.as_u64().and_then(|n| T::try_from(n).ok())
}

/// A type's WIT spelling, for messages.
pub(crate) fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "a bool".to_owned(),
        Type::S8 | Type::S16 | Type::S32 | Type::S64 => "a signed integer in range".to_owned(),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => "an unsigned integer in range".to_owned(),
        Type::Float32 | Type::Float64 => "a number".to_owned(),
        Type::Char => "a one-character string".to_owned(),
        Type::String => "a string".to_owned(),
        Type::List(_) => "a list (an array)".to_owned(),
        Type::Tuple(_) => "a tuple (an array of its length)".to_owned(),
        Type::Record(_) => "a record (an object)".to_owned(),
        Type::Enum(cases) => format!(
            "an enum (one of {})",
            cases.names().collect::<Vec<_>>().join(", ")
        ),
        Type::Flags(_) => "flags (an array of their names)".to_owned(),
        Type::Option(_) => "an option (null or the value)".to_owned(),
        Type::Result(_) => r#"a result ({"ok": …} or {"err": …})"#.to_owned(),
        Type::Variant(_) => r#"a variant ({"case": …})"#.to_owned(),
        Type::Map(_) => "a map".to_owned(),
        Type::Own(_) | Type::Borrow(_) => "a resource".to_owned(),
        Type::Future(_) => "a future".to_owned(),
        Type::Stream(_) => "a stream".to_owned(),
        Type::ErrorContext => "an error context".to_owned(),
        Type::FixedLengthList(list) => format!("a list of {} (an array)", list.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_without_a_type_to_read_become_json() {
        let record = Val::Record(vec![
            ("caller".to_owned(), Val::String("101".to_owned())),
            ("tries".to_owned(), Val::U8(3)),
            ("state".to_owned(), Val::Enum("ringing".to_owned())),
            ("note".to_owned(), Val::Option(None)),
            (
                "nested".to_owned(),
                Val::Option(Some(Box::new(Val::Option(None)))),
            ),
            (
                "outcome".to_owned(),
                Val::Result(Err(Some(Box::new(Val::String("busy".to_owned()))))),
            ),
            ("done".to_owned(), Val::Result(Ok(None))),
            ("list".to_owned(), Val::List(vec![Val::Bool(true)])),
            ("nan".to_owned(), Val::Float64(f64::NAN)),
        ]);
        assert_eq!(
            to_json(&record),
            Ok(serde_json::json!({
                "caller": "101",
                "tries": 3,
                "state": "ringing",
                "note": null,
                "nested": {"some": null},
                "outcome": {"err": "busy"},
                "done": {"ok": null},
                "list": [true],
                "nan": null,
            }))
        );
    }

    #[test]
    fn integers_out_of_range_are_refused() {
        assert!(from_json(&serde_json::json!(300), &Type::U8).is_err());
        assert!(from_json(&serde_json::json!(-1), &Type::U32).is_err());
        assert!(matches!(
            from_json(&serde_json::json!(-5), &Type::S16),
            Ok(Val::S16(-5))
        ));
        assert!(from_json(&serde_json::json!("ab"), &Type::Char).is_err());
        // Past what a float32 holds is refused, not made infinite.
        assert!(from_json(&serde_json::json!(1e300), &Type::Float32).is_err());
        assert!(matches!(
            from_json(&serde_json::json!(1.5), &Type::Float32),
            Ok(Val::Float32(x)) if x == 1.5
        ));
        assert_eq!(
            from_json(&serde_json::json!(5), &Type::String).err(),
            Some("`5`, which is not a string".to_owned())
        );
    }
}
