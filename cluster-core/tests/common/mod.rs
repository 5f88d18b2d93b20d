//! Shared helpers for the golden-vector tests: loading `tests/vectors/*.json` and mapping
//! fields to and from the vectors' JSON form (`[[name, value], ...]`).
#![allow(dead_code, unreachable_pub)]

pub mod node;

use cluster_core::wire::{Field, FieldId, FieldKind, List, Str, Value};
use serde_json::{Value as Json, json};

/// The vectors folder, an unchanged copy of `shared/spec/vectors`.
pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

/// Loads one vector file; a missing or unparsable file fails the test loudly.
pub fn load(file: &str) -> Json {
    let path = format!("{VECTORS}/{file}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden vectors at {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {path}: {e}"))
}

/// Hex text (whitespace ignored) to bytes.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length in {text}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Bytes to lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn leak_str(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

fn leak_bytes(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

/// A string value of a vector: a JSON string, `{"bytes_hex": ..}`, or `{"repeat": s, "count": n}`.
fn string_bytes(value: &Json) -> &'static [u8] {
    match value {
        Json::String(s) => leak_str(s).as_bytes(),
        Json::Object(map) if map.contains_key("bytes_hex") => {
            leak_bytes(unhex(map["bytes_hex"].as_str().unwrap()))
        }
        Json::Object(map) if map.contains_key("repeat") => {
            let unit = map["repeat"].as_str().unwrap();
            let count = map["count"].as_u64().unwrap() as usize;
            leak_str(&unit.repeat(count)).as_bytes()
        }
        other => panic!("not a string value: {other}"),
    }
}

/// One `[name, value]` pair of a vector as a field (values are leaked: tests only).
pub fn field_from_json(pair: &Json) -> Field<'static> {
    let name = pair[0].as_str().expect("field name");
    let id = FieldId::from_name(name).unwrap_or_else(|| panic!("unknown field name {name}"));
    let value = &pair[1];
    let value = match id.kind() {
        FieldKind::Varint => Value::Varint(value.as_u64().expect("varint value")),
        FieldKind::String => Value::Str(Str::from_bytes(string_bytes(value))),
        FieldKind::Raw => Value::Raw(leak_bytes(unhex(value.as_str().expect("raw hex")))),
        FieldKind::Boolean => Value::Bool(match value {
            Json::Bool(b) => *b,
            other => other.as_u64().expect("boolean 0/1") != 0,
        }),
        FieldKind::List => {
            let items: Vec<&'static str> = value
                .as_array()
                .expect("list value")
                .iter()
                .map(|item| leak_str(item.as_str().expect("list item")))
                .collect();
            Value::List(List::from_items(Box::leak(items.into_boxed_slice())))
        }
    };
    Field::new(id, value).expect("value of the field's kind")
}

/// All fields of `fields_in_wire_order`.
pub fn fields_from_json(list: &Json) -> Vec<Field<'static>> {
    list.as_array()
        .expect("fields_in_wire_order")
        .iter()
        .map(field_from_json)
        .collect()
}

fn str_json(bytes: &[u8]) -> Json {
    match std::str::from_utf8(bytes) {
        Ok(text) => Json::String(text.to_owned()),
        Err(_) => json!({ "bytes_hex": hex(bytes) }),
    }
}

/// A decoded field as a vector's `[name, value]` pair.
pub fn field_to_json(field: &Field<'_>) -> Json {
    let value = match field.value {
        Value::Varint(v) => json!(v),
        Value::Str(s) => str_json(s.as_bytes()),
        Value::Raw(r) => json!(hex(r)),
        Value::Bool(b) => json!(u8::from(b)),
        Value::List(list) => Json::Array(list.iter().map(str_json).collect()),
    };
    json!([field.id.name(), value])
}

/// A vector's `fields_in_wire_order` with booleans written as 0/1 (most vectors use 0/1, a few
/// use JSON `true`/`false`), for comparison with [`fields_to_json`].
pub fn normalized(fields: &Json) -> Json {
    let pairs = fields.as_array().expect("fields_in_wire_order");
    Json::Array(
        pairs
            .iter()
            .map(|pair| match &pair[1] {
                Json::Bool(b) => json!([pair[0], u8::from(*b)]),
                _ => pair.clone(),
            })
            .collect(),
    )
}

/// Decoded fields as a vector's `fields_in_wire_order`.
pub fn fields_to_json<'a>(fields: impl IntoIterator<Item = Field<'a>>) -> Json {
    Json::Array(fields.into_iter().map(|f| field_to_json(&f)).collect())
}

/// Every frame vector of a file section: `(name, hex, fields_in_wire_order)`.
pub fn frame_vectors<'j>(doc: &'j Json, section: &str) -> Vec<(&'j str, &'j str, &'j Json)> {
    let entries = doc[section]
        .as_array()
        .unwrap_or_else(|| panic!("section {section} missing"));
    assert!(!entries.is_empty(), "section {section} is empty");
    entries
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("name"),
                v["hex"].as_str().expect("hex"),
                &v["fields_in_wire_order"],
            )
        })
        .collect()
}
