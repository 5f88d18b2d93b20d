//! Hex frames to JSON and back, for `cluster decode` and `cluster encode`.
//!
//! Everything here works on strings and byte streams, with no process and no socket, so the
//! command's behaviour is unit-testable. Only [`cluster_core::wire`] is used for the bytes.
//!
//! # The JSON form of a frame
//!
//! One JSON object per frame. Its keys are the spec's field names (protocol.md 3.1) in wire
//! order, with these values:
//!
//! | field kind | fields | JSON value |
//! | --- | --- | --- |
//! | varint | `type`, `channel`, `known`, `timestamp` | a number |
//! | string | `hid`, `sid`, `ruid`, `op`, `data`, `error` | a string, or `{"bytes_hex": "..."}` when the bytes are not UTF-8 |
//! | list | `protocols`, `tags`, `filter` | an array of strings (an element that is not UTF-8 is `{"bytes_hex": "..."}`) |
//! | raw | `raw` | a lowercase hex string |
//! | boolean | `keepalive` | `0` or `1` |
//!
//! This is the value form of the golden vectors' `fields_in_wire_order` (protocol.md 9).
//!
//! [`frame_to_json`] adds two keys that are not fields:
//!
//! * `kind`, always, and always first: the name of the message type ([`MessageKind::name`]:
//!   `heartbeat`, `query`, ..., `unknown` for a type value outside 0–8), or `null` when the
//!   frame has no `type` field.
//! * `duplicates`, last and only when the frame repeats a field: the names of the repeated
//!   fields, each once, in the order they were first repeated. The repeated field's key holds
//!   the **last** value, at the position of its **first** occurrence. That is exactly the Tcl
//!   dict the reference decoder builds from such a frame (protocol.md 2.4: the last occurrence
//!   wins; `dict set` keeps a key's position), so the object shows what a reference node sees.
//!   Encoding the object gives that deduplicated frame, not the original bytes.
//!
//! A line that does not hold exactly one valid frame becomes [`error_to_json`]'s
//! `{"error": "<message>", "error_kind": "<kind>"}` (see [`PacketError::kind`]). `error` is
//! also the name of field 15 (a query response's error text), but a decoded frame always has
//! `kind` and never `error_kind`, and a bad line has `error_kind` and never `kind`.
//!
//! # Encoding
//!
//! [`encode_line`] reads one such object and writes the fields in the object's key order,
//! through [`encode_fields`]. `kind` is checked against `type` when present, `duplicates` is
//! ignored, a key that appears twice is refused ([`PacketError::DuplicateKey`]). Values may also
//! be given as `true`/`false` for `keepalive`; list elements must be strings.

use std::fmt::{self, Write as _};
use std::io::{self, BufRead, Write};

use cluster_core::wire::{
    Compat, DecodeError, EncodeError, Field, FieldId, FieldKind, Frame, List, MessageKind, Str,
    Value, encode_fields, encoded_len_of_fields,
};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value as Json};

/// Key of a decoded frame's object naming the message type ([`MessageKind::name`]).
pub const KIND_KEY: &str = "kind";
/// Key of a decoded frame's object listing the fields the frame repeats.
pub const DUPLICATES_KEY: &str = "duplicates";
/// Key of a bad line's object holding the message (also field 15's name, see the module docs).
pub const ERROR_KEY: &str = "error";
/// Key of a bad line's object holding the error class ([`PacketError::kind`]).
pub const ERROR_KIND_KEY: &str = "error_kind";
/// Key of the object standing for a string that is not UTF-8: `{"bytes_hex": "fffe"}`.
pub const BYTES_HEX_KEY: &str = "bytes_hex";

/// Longest text, in characters, that [`summary`] shows of one value before cutting it.
const SUMMARY_TEXT_LIMIT: usize = 48;

/// Why a line could not be decoded or encoded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// A decode line has an odd number of hex digits.
    #[error("odd number of hex digits ({digits})")]
    OddHexDigits {
        /// How many hex digits the line has.
        digits: usize,
    },
    /// A decode line holds a character that is neither a hex digit nor whitespace.
    #[error("invalid hex digit {found:?} at column {column}")]
    BadHexDigit {
        /// The character.
        found: char,
        /// Its position in the line, counting characters from 1.
        column: usize,
    },
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The line holds a valid frame followed by more bytes.
    #[error(
        "{extra} byte(s) after the end of the {frame_len}-byte frame (give one frame per line)"
    )]
    TrailingBytes {
        /// Length of the frame at the start of the line.
        frame_len: usize,
        /// Bytes after it.
        extra: usize,
    },
    /// An encode line is not a JSON object.
    #[error("not a JSON object of fields: {0}")]
    Json(#[from] serde_json::Error),
    /// An encode line has a key that is not a field name (nor `kind` or `duplicates`).
    #[error("unknown field name {0:?}")]
    UnknownFieldName(String),
    /// An encode line has the same key twice.
    #[error("key {0:?} appears twice (a frame repeating a field cannot be written)")]
    DuplicateKey(String),
    /// An encode line gives a field a value of the wrong form.
    #[error("field `{field}` takes {expected}")]
    BadValue {
        /// The field.
        field: FieldId,
        /// What it takes.
        expected: &'static str,
    },
    /// An encode line's `kind` does not agree with its `type`.
    #[error("`kind` is {given} but `type` {type_value} is {expected:?}")]
    KindMismatch {
        /// The `kind` value given, as JSON.
        given: Json,
        /// The `type` value, or `none` when there is no `type` field.
        type_value: TypeValue,
        /// The kind name that `type` gives, or `null` without a `type`.
        expected: Option<&'static str>,
    },
    /// The encoder refused the fields.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// The `type` value an encode line carries, for [`PacketError::KindMismatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeValue(pub Option<u64>);

impl fmt::Display for TypeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value}"),
            None => f.write_str("(absent)"),
        }
    }
}

impl PacketError {
    /// The error class, as printed in `error_kind`.
    ///
    /// Decode errors use [`DecodeError::kind`] (the golden vectors' names, e.g.
    /// `truncated_varint`); the encoder's refusal of a `C0 8D` varint is
    /// `reserved_varint_prefix` as in the vectors. The others are `bad_hex`, `trailing_bytes`,
    /// `bad_json`, `unknown_field_name`, `duplicate_key`, `bad_value`, `kind_mismatch`,
    /// `wrong_kind`, `too_large` and `encode_error`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OddHexDigits { .. } | Self::BadHexDigit { .. } => "bad_hex",
            Self::Decode(error) => error.kind(),
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::Json(_) => "bad_json",
            Self::UnknownFieldName(_) => "unknown_field_name",
            Self::DuplicateKey(_) => "duplicate_key",
            Self::BadValue { .. } => "bad_value",
            Self::KindMismatch { .. } => "kind_mismatch",
            Self::Encode(EncodeError::ReservedVarintPrefix { .. }) => "reserved_varint_prefix",
            Self::Encode(EncodeError::WrongKind(_)) => "wrong_kind",
            Self::Encode(EncodeError::TooLarge) => "too_large",
            Self::Encode(_) => "encode_error",
        }
    }
}

/// Hex text to bytes. Whitespace anywhere is ignored; digits may be upper or lower case.
///
/// # Errors
///
/// [`PacketError::BadHexDigit`] or [`PacketError::OddHexDigits`].
pub fn unhex(text: &str) -> Result<Vec<u8>, PacketError> {
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits: usize = 0;
    for (index, found) in text.chars().enumerate() {
        if found.is_whitespace() {
            continue;
        }
        let nibble = found
            .to_digit(16)
            .and_then(|digit| u8::try_from(digit).ok())
            .ok_or(PacketError::BadHexDigit {
                found,
                column: index.saturating_add(1),
            })?;
        digits = digits.saturating_add(1);
        match high.take() {
            None => high = Some(nibble),
            Some(high) => bytes.push((high << 4) | nibble),
        }
    }
    if high.is_some() {
        return Err(PacketError::OddHexDigits { digits });
    }
    Ok(bytes)
}

/// Bytes to lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Parses `bytes` as exactly one frame: nothing may follow its footer.
///
/// # Errors
///
/// [`PacketError::Decode`] from [`Frame::parse`], or [`PacketError::TrailingBytes`].
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, PacketError> {
    let (frame, frame_len) = Frame::parse(bytes)?;
    let extra = bytes.len().saturating_sub(frame_len);
    if extra > 0 {
        return Err(PacketError::TrailingBytes { frame_len, extra });
    }
    Ok(frame)
}

fn text_to_json(bytes: &[u8]) -> Json {
    match std::str::from_utf8(bytes) {
        Ok(text) => Json::from(text),
        Err(_) => {
            let mut object = Map::new();
            object.insert(BYTES_HEX_KEY.to_owned(), Json::from(hex(bytes)));
            Json::Object(object)
        }
    }
}

/// A field value in the JSON form of the module docs.
#[must_use]
pub fn value_to_json(value: &Value<'_>) -> Json {
    match value {
        Value::Varint(number) => Json::from(*number),
        Value::Str(text) => text_to_json(text.as_bytes()),
        Value::Raw(bytes) => Json::from(hex(bytes)),
        Value::Bool(flag) => Json::from(u8::from(*flag)),
        Value::List(list) => Json::Array(list.iter().map(text_to_json).collect()),
    }
}

/// The type of a frame: the value of its last `type` field.
fn frame_kind(frame: &Frame<'_>) -> Option<MessageKind> {
    frame
        .fields()
        .filter_map(|field| match field.value {
            Value::Varint(value) if field.id == FieldId::Type => {
                Some(MessageKind::from_type(value))
            }
            _ => None,
        })
        .last()
}

/// The names of the fields a frame repeats, each once, in the order they were first repeated.
fn repeated_fields(frame: &Frame<'_>) -> Vec<FieldId> {
    let mut seen: Vec<FieldId> = Vec::new();
    let mut repeated: Vec<FieldId> = Vec::new();
    for field in frame.fields() {
        if !seen.contains(&field.id) {
            seen.push(field.id);
        } else if !repeated.contains(&field.id) {
            repeated.push(field.id);
        }
    }
    repeated
}

/// The JSON object of a frame (module docs): `kind`, the fields in wire order, and
/// `duplicates` when the frame repeats a field.
#[must_use]
pub fn frame_to_json(frame: &Frame<'_>) -> Map<String, Json> {
    let mut object = Map::new();
    let kind = frame_kind(frame).map_or(Json::Null, |kind| Json::from(kind.name()));
    object.insert(KIND_KEY.to_owned(), kind);
    for field in frame.fields() {
        // On a repeated field this replaces the value and keeps the first position.
        object.insert(field.id.name().to_owned(), value_to_json(&field.value));
    }
    let repeated = repeated_fields(frame);
    if !repeated.is_empty() {
        let names = repeated.iter().map(|id| Json::from(id.name())).collect();
        object.insert(DUPLICATES_KEY.to_owned(), Json::Array(names));
    }
    object
}

/// The JSON object of a bad line: `{"error": "<message>", "error_kind": "<kind>"}`.
#[must_use]
pub fn error_to_json(error: &PacketError) -> Json {
    let mut object = Map::new();
    object.insert(ERROR_KEY.to_owned(), Json::from(error.to_string()));
    object.insert(ERROR_KIND_KEY.to_owned(), Json::from(error.kind()));
    Json::Object(object)
}

/// Decodes one line of hex (whitespace ignored) holding exactly one frame into its JSON object.
///
/// # Errors
///
/// A bad hex line, a [`DecodeError`], or bytes after the frame.
pub fn decode_json(line: &str) -> Result<Map<String, Json>, PacketError> {
    let bytes = unhex(line)?;
    let frame = parse_frame(&bytes)?;
    Ok(frame_to_json(&frame))
}

/// Decodes one line of hex into a JSON value: the frame's object, or the bad line's
/// [`error_to_json`] object. A blank line is a bad line (`bad_header`, as the empty input);
/// `cluster decode` skips blank lines before calling this.
#[must_use]
pub fn decode_line(line: &str) -> Json {
    match decode_json(line) {
        Ok(object) => Json::Object(object),
        Err(error) => error_to_json(&error),
    }
}

/// Writes text for [`summary`]: bare when it is short and plain, else JSON-quoted and cut
/// after [`SUMMARY_TEXT_LIMIT`] characters; bytes that are not UTF-8 as `hex:...`.
fn write_text(out: &mut String, bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        out.push_str("hex:");
        write_cut_hex(out, bytes);
        return;
    };
    let plain = |c: char| !c.is_whitespace() && !c.is_control() && !"\"[]\\".contains(c);
    let chars = text.chars().count();
    if !text.is_empty() && chars <= SUMMARY_TEXT_LIMIT && text.chars().all(plain) {
        out.push_str(text);
        return;
    }
    let shown: String = text.chars().take(SUMMARY_TEXT_LIMIT).collect();
    out.push_str(&Json::from(shown).to_string());
    if chars > SUMMARY_TEXT_LIMIT {
        let _ = write!(out, "...({} bytes)", bytes.len());
    }
}

fn write_cut_hex(out: &mut String, bytes: &[u8]) {
    let limit = SUMMARY_TEXT_LIMIT / 2;
    out.push_str(&hex(bytes.get(..limit).unwrap_or(bytes)));
    if bytes.len() > limit {
        let _ = write!(out, "...({} bytes)", bytes.len());
    }
}

/// A readable one-line summary of a frame, e.g.
/// `heartbeat sid=AbCd1234 hid=00:11:22:33:44:55 ch=0 protocols=[t c] known=3`.
///
/// It starts with the message kind (`unknown(9)` for a type outside 0–8, `untyped` without a
/// `type` field), then every other field in wire order as `name=value` (`channel` is `ch`),
/// repeats included, then `duplicates=[...]` when the frame repeats a field. Text with
/// spaces, quotes or brackets is JSON-quoted, text longer than 48 characters is cut and
/// followed by its byte length, bytes that are not UTF-8 are shown as `hex:...`, lists as
/// `[a b]`, `raw` as hex and `keepalive` as 0/1.
#[must_use]
pub fn summary(frame: &Frame<'_>) -> String {
    let mut out = frame_kind(frame).map_or_else(|| "untyped".to_owned(), |kind| kind.to_string());
    for field in frame.fields() {
        if field.id == FieldId::Type {
            continue;
        }
        let label = match field.id {
            FieldId::Channel => "ch",
            other => other.name(),
        };
        let _ = write!(out, " {label}=");
        match field.value {
            Value::Varint(number) => {
                let _ = write!(out, "{number}");
            }
            Value::Str(text) => write_text(&mut out, text.as_bytes()),
            Value::Raw(bytes) => write_cut_hex(&mut out, bytes),
            Value::Bool(flag) => {
                let _ = write!(out, "{}", u8::from(flag));
            }
            Value::List(list) => {
                out.push('[');
                for (index, element) in list.iter().enumerate() {
                    if index > 0 {
                        out.push(' ');
                    }
                    write_text(&mut out, element);
                }
                out.push(']');
            }
        }
    }
    let repeated = repeated_fields(frame);
    if !repeated.is_empty() {
        let names: Vec<&str> = repeated.iter().map(|id| id.name()).collect();
        let _ = write!(out, " duplicates=[{}]", names.join(" "));
    }
    out
}

/// The [`summary`] of one line of hex holding exactly one frame.
///
/// # Errors
///
/// As [`decode_json`].
pub fn decode_summary(line: &str) -> Result<String, PacketError> {
    let bytes = unhex(line)?;
    let frame = parse_frame(&bytes)?;
    Ok(summary(&frame))
}

/// The summary line `cluster decode` prints for one line of hex: the frame's [`summary`], or
/// `error: <error_kind>: <message>` for a bad line.
#[must_use]
pub fn summary_line(line: &str) -> String {
    match decode_summary(line) {
        Ok(text) => text,
        Err(error) => format!("error: {}: {error}", error.kind()),
    }
}

/// The keys of a JSON object in their order, duplicates kept (a `serde_json::Map` would
/// silently keep only one of them).
#[derive(Debug)]
struct Pairs(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[derive(Debug)]
struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Pairs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
        let mut pairs = Vec::new();
        while let Some(pair) = map.next_entry::<String, Json>()? {
            pairs.push(pair);
        }
        Ok(Pairs(pairs))
    }
}

/// A field value read from JSON, owning its bytes.
#[derive(Debug)]
enum OwnedValue {
    Varint(u64),
    Str(Vec<u8>),
    Raw(Vec<u8>),
    Bool(bool),
    List(Vec<String>),
}

const STRING_FORM: &str = "a string or {\"bytes_hex\": \"<hex>\"}";

fn owned_value(id: FieldId, json: &Json) -> Result<OwnedValue, PacketError> {
    let bad = |expected: &'static str| PacketError::BadValue {
        field: id,
        expected,
    };
    Ok(match id.kind() {
        FieldKind::Varint => OwnedValue::Varint(
            json.as_u64()
                .ok_or_else(|| bad("an unsigned integer below 2^64"))?,
        ),
        FieldKind::String => OwnedValue::Str(match json {
            Json::String(text) => text.clone().into_bytes(),
            Json::Object(object) if object.len() == 1 => {
                let hex_text = object
                    .get(BYTES_HEX_KEY)
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad(STRING_FORM))?;
                unhex(hex_text).map_err(|_| bad(STRING_FORM))?
            }
            _ => return Err(bad(STRING_FORM)),
        }),
        FieldKind::Raw => {
            let text = json.as_str().ok_or_else(|| bad("a hex string"))?;
            OwnedValue::Raw(unhex(text).map_err(|_| bad("a hex string"))?)
        }
        FieldKind::Boolean => OwnedValue::Bool(match json {
            Json::Bool(flag) => *flag,
            number => match number.as_u64() {
                Some(0) => false,
                Some(1) => true,
                _ => return Err(bad("0, 1, true or false")),
            },
        }),
        FieldKind::List => {
            const LIST_FORM: &str = "an array of strings (list elements cannot be bytes_hex)";
            let items = json.as_array().ok_or_else(|| bad(LIST_FORM))?;
            OwnedValue::List(
                items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(LIST_FORM))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// Checks an encode line's `kind` against its `type` (see [`PacketError::KindMismatch`]).
fn check_kind(given: &Json, type_value: Option<u64>) -> Result<(), PacketError> {
    let expected = type_value.map(|value| MessageKind::from_type(value).name());
    let agrees = match (given, expected) {
        (Json::String(name), Some(expected)) => name == expected,
        (Json::Null, None) => true,
        _ => false,
    };
    if agrees {
        Ok(())
    } else {
        Err(PacketError::KindMismatch {
            given: given.clone(),
            type_value: TypeValue(type_value),
            expected,
        })
    }
}

/// Encodes one JSON object of fields (module docs) as a frame, in the object's key order.
fn encode_bytes(input: &[u8], compat: Compat) -> Result<Vec<u8>, PacketError> {
    let Pairs(pairs) = serde_json::from_slice(input)?;
    let mut owned: Vec<(FieldId, OwnedValue)> = Vec::with_capacity(pairs.len());
    let mut kind: Option<&Json> = None;
    let mut seen_keys: Vec<&str> = Vec::with_capacity(pairs.len());
    for (key, json) in &pairs {
        if seen_keys.contains(&key.as_str()) {
            return Err(PacketError::DuplicateKey(key.clone()));
        }
        seen_keys.push(key);
        if key == KIND_KEY {
            kind = Some(json);
        } else if key == DUPLICATES_KEY {
            // Informational output of `decode`; the object already holds the kept values.
        } else {
            let id = FieldId::from_name(key)
                .ok_or_else(|| PacketError::UnknownFieldName(key.clone()))?;
            owned.push((id, owned_value(id, json)?));
        }
    }
    if let Some(kind) = kind {
        let type_value = owned.iter().find_map(|(id, value)| match value {
            OwnedValue::Varint(number) if *id == FieldId::Type => Some(*number),
            _ => None,
        });
        check_kind(kind, type_value)?;
    }
    let items: Vec<Vec<&str>> = owned
        .iter()
        .map(|(_, value)| match value {
            OwnedValue::List(items) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let fields = owned
        .iter()
        .zip(&items)
        .map(|((id, value), items)| {
            let value = match value {
                OwnedValue::Varint(number) => Value::Varint(*number),
                OwnedValue::Str(bytes) => Value::Str(Str::from_bytes(bytes)),
                OwnedValue::Raw(bytes) => Value::Raw(bytes),
                OwnedValue::Bool(flag) => Value::Bool(*flag),
                OwnedValue::List(_) => Value::List(List::from_items(items)),
            };
            Field::new(*id, value)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let len = encoded_len_of_fields(fields.iter().copied(), compat)?;
    let mut frame = vec![0u8; len];
    let written = encode_fields(fields.iter().copied(), compat, &mut frame)?;
    frame.truncate(written);
    Ok(frame)
}

/// Encodes one line holding a JSON object of fields (module docs) as a lowercase hex frame,
/// writing the fields in the object's key order.
///
/// `kind`, when present, must agree with `type` ([`MessageKind::name`] of its value, or
/// `null` when there is no `type`); `duplicates` is ignored.
///
/// # Errors
///
/// [`PacketError::Json`], [`PacketError::UnknownFieldName`], [`PacketError::DuplicateKey`],
/// [`PacketError::BadValue`], [`PacketError::KindMismatch`], or the encoder's
/// [`PacketError::Encode`]: in [`Compat::Reference`] mode, any varint that would start `C0 8D`
/// is refused ([`EncodeError::ReservedVarintPrefix`]).
pub fn encode_line(line: &str, compat: Compat) -> Result<String, PacketError> {
    encode_bytes(line.as_bytes(), compat).map(|frame| hex(&frame))
}

/// What a [`decode_stream`] prints for each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeFormat {
    /// One [`decode_line`] JSON object per line.
    Json,
    /// One [`summary_line`] per line.
    #[default]
    Summary,
}

/// The outcome of a stream: lines handled and lines that were bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamReport {
    /// Non-blank input lines handled.
    pub lines: usize,
    /// Lines that could not be decoded or encoded.
    pub bad: usize,
}

/// Reads one line (up to and without `\n`) into `line`; false at the end of the input.
fn next_line<R: BufRead>(input: &mut R, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(true)
}

/// `cluster decode`: reads one hex frame per line from `input` (whitespace in a line ignored,
/// blank lines skipped) and writes one line per frame to `output`. A bad line prints its
/// error in place (`format` decides how) and the run carries on.
///
/// # Errors
///
/// Only I/O errors of `input` or `output`.
pub fn decode_stream<R: BufRead, W: Write>(
    mut input: R,
    mut output: W,
    format: DecodeFormat,
) -> io::Result<StreamReport> {
    let mut report = StreamReport::default();
    let mut raw = Vec::new();
    while next_line(&mut input, &mut raw)? {
        // A line that is not UTF-8 fails as bad hex at its first invalid character.
        let line = String::from_utf8_lossy(&raw);
        if line.trim().is_empty() {
            continue;
        }
        report.lines = report.lines.saturating_add(1);
        let (text, ok) = match format {
            DecodeFormat::Json => match decode_json(&line) {
                Ok(object) => (Json::Object(object).to_string(), true),
                Err(error) => (error_to_json(&error).to_string(), false),
            },
            DecodeFormat::Summary => match decode_summary(&line) {
                Ok(text) => (text, true),
                Err(error) => (format!("error: {}: {error}", error.kind()), false),
            },
        };
        if !ok {
            report.bad = report.bad.saturating_add(1);
        }
        writeln!(output, "{text}")?;
    }
    output.flush()?;
    Ok(report)
}

/// `cluster encode`: reads one JSON object of fields per line from `input` (blank lines
/// skipped) and writes one lowercase hex frame per line to `output`. A bad line writes
/// `line <n>: <error_kind>: <message>` to `errors` (lines counted from 1, blank ones included)
/// and nothing to `output`, and the run carries on.
///
/// # Errors
///
/// Only I/O errors of `input`, `output` or `errors`.
pub fn encode_stream<R: BufRead, W: Write, E: Write>(
    mut input: R,
    mut output: W,
    mut errors: E,
    compat: Compat,
) -> io::Result<StreamReport> {
    let mut report = StreamReport::default();
    let mut line = Vec::new();
    let mut number: usize = 0;
    while next_line(&mut input, &mut line)? {
        number = number.saturating_add(1);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        report.lines = report.lines.saturating_add(1);
        match encode_bytes(&line, compat) {
            Ok(frame) => writeln!(output, "{}", hex(&frame))?,
            Err(error) => {
                report.bad = report.bad.saturating_add(1);
                writeln!(errors, "line {number}: {}: {error}", error.kind())?;
            }
        }
    }
    output.flush()?;
    errors.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// E1 of the spec: periodic heartbeat, sid AbCd1234, protocols [t c], known 3.
    const E1: &str = "c08d2904084162436431323334031130303a31313a32323a33333a34343a35350101020007020174016305030000";

    fn encode(value: &Json) -> Result<String, PacketError> {
        encode_line(&value.to_string(), Compat::Reference)
    }

    #[test]
    fn unhex_ignores_whitespace_and_case() {
        assert_eq!(unhex(" C0 8d\t00 0000 ").unwrap(), [0xC0, 0x8D, 0, 0, 0]);
        assert_eq!(unhex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn unhex_names_the_bad_digit_and_counts_odd_digits() {
        let error = unhex("c0 8x").unwrap_err();
        assert!(matches!(
            error,
            PacketError::BadHexDigit {
                found: 'x',
                column: 5
            }
        ));
        assert_eq!(error.kind(), "bad_hex");
        let error = unhex("c08").unwrap_err();
        assert!(matches!(error, PacketError::OddHexDigits { digits: 3 }));
        assert_eq!(error.kind(), "bad_hex");
    }

    #[test]
    fn periodic_heartbeat_decodes_to_kind_then_fields_in_wire_order() {
        let expected = json!({
            "kind": "heartbeat", "sid": "AbCd1234", "hid": "00:11:22:33:44:55", "type": 1,
            "channel": 0, "protocols": ["t", "c"], "known": 3
        });
        let decoded = decode_line(E1);
        assert_eq!(decoded, expected);
        // Key order is part of the contract.
        assert_eq!(decoded.to_string(), expected.to_string());
    }

    #[test]
    fn summary_of_a_periodic_heartbeat_reads_as_one_line() {
        assert_eq!(
            summary_line(E1),
            "heartbeat sid=AbCd1234 hid=00:11:22:33:44:55 ch=0 protocols=[t c] known=3"
        );
    }

    #[test]
    fn summary_quotes_cuts_and_hexes_awkward_values() {
        let frame = json!({
            "type": 9, "data": "t {port 41503}", "ruid": "", "raw": "00ff",
            "tags": ["a b", "c"], "keepalive": 1, "op": "x".repeat(60)
        });
        let hex_frame = encode(&frame).unwrap();
        assert_eq!(
            summary_line(&hex_frame),
            format!(
                "unknown(9) data=\"t {{port 41503}}\" ruid=\"\" raw=00ff tags=[\"a b\" c] \
                 keepalive=1 op=\"{}\"...(60 bytes)",
                "x".repeat(48)
            )
        );
        let untyped_bad_utf8 = "c08d04 0a 02 fffe 0000";
        assert_eq!(summary_line(untyped_bad_utf8), "untyped data=hex:fffe");
        assert_eq!(summary_line("c08d000000"), "untyped");
    }

    #[test]
    fn bad_lines_carry_their_kind_and_no_kind_key() {
        let bad = decode_line("c08d01800000");
        assert_eq!(bad[ERROR_KIND_KEY], "truncated_varint");
        assert!(bad.get(KIND_KEY).is_none());
        assert_eq!(decode_line("zz")[ERROR_KIND_KEY], "bad_hex");
        assert_eq!(decode_line("")[ERROR_KIND_KEY], "bad_header");
        assert_eq!(
            summary_line("c08d01800000"),
            "error: truncated_varint: varint cut by the end of the frame"
        );
    }

    #[test]
    fn bytes_after_the_footer_are_a_bad_line() {
        let decoded = decode_line(&format!("{E1}00"));
        assert_eq!(decoded[ERROR_KIND_KEY], "trailing_bytes");
        let two_frames = decode_line(&format!("{E1} {E1}"));
        assert_eq!(two_frames[ERROR_KIND_KEY], "trailing_bytes");
    }

    #[test]
    fn response_error_field_is_told_apart_from_a_bad_line() {
        let frame = encode(&json!({"type": 5, "error": "denied"})).unwrap();
        let decoded = decode_line(&frame);
        assert_eq!(
            decoded,
            json!({"kind": "response", "type": 5, "error": "denied"})
        );
        assert!(decoded.get(ERROR_KIND_KEY).is_none());
    }

    #[test]
    fn a_frame_without_type_has_a_null_kind() {
        assert_eq!(decode_line("c08d000000"), json!({"kind": null}));
        let frame = encode(&json!({"error": "x"})).unwrap();
        assert_eq!(decode_line(&frame), json!({"kind": null, "error": "x"}));
    }

    #[test]
    fn repeated_field_keeps_last_value_at_first_position_and_is_listed() {
        // Field 10 twice: "first" then "second", between them `op`.
        let line = "c08d 15 0a05 6669727374 0902 6f70 0a06 7365636f6e64 0106 0000";
        let decoded = decode_line(line);
        assert_eq!(
            decoded.to_string(),
            json!({"kind": "event", "data": "second", "op": "op", "type": 6,
                   "duplicates": ["data"]})
            .to_string()
        );
        assert_eq!(
            summary_line(line),
            "event data=first op=op data=second duplicates=[data]"
        );
        // Encoding the object gives the frame a reference node effectively saw.
        let reencoded = encode(&decoded).unwrap();
        assert_eq!(
            decode_line(&reencoded),
            json!({"kind": "event", "data": "second", "op": "op", "type": 6})
        );
    }

    #[test]
    fn strings_that_are_not_utf8_round_trip_as_bytes_hex() {
        let frame = encode(&json!({"data": {"bytes_hex": "fffe"}})).unwrap();
        assert_eq!(frame, "c08d040a02fffe0000");
        assert_eq!(
            decode_line(&frame),
            json!({"kind": null, "data": {"bytes_hex": "fffe"}})
        );
        // A list element that is not UTF-8 decodes, but cannot be encoded back.
        let list = decode_line("c08d040c0101ff0000");
        assert_eq!(list, json!({"kind": null, "tags": [{"bytes_hex": "ff"}]}));
        let error = encode(&list).unwrap_err();
        assert_eq!(error.kind(), "bad_value");
    }

    #[test]
    fn encode_writes_keys_in_the_given_order() {
        let fields = json!({
            "sid": "AbCd1234", "hid": "00:11:22:33:44:55", "type": 1, "channel": 0,
            "protocols": ["t", "c"], "known": 3
        });
        assert_eq!(encode(&fields).unwrap(), E1);
        // With the kind decode adds, wherever it is.
        let mut with_kind = decode_line(E1);
        assert_eq!(encode(&with_kind).unwrap(), E1);
        with_kind.as_object_mut().unwrap().shift_remove(KIND_KEY);
        with_kind["kind"] = json!("heartbeat");
        assert_eq!(encode(&with_kind).unwrap(), E1);
        assert_eq!(encode(&json!({})).unwrap(), "c08d000000");
    }

    #[test]
    fn encode_accepts_booleans_and_raw_hex() {
        let by_number = encode(&json!({"keepalive": 1, "raw": "00C08D"})).unwrap();
        let by_bool = encode(&json!({"keepalive": true, "raw": "00 c0 8d"})).unwrap();
        assert_eq!(by_number, by_bool);
        assert_eq!(by_number, "c08d070d010b0300c08d0000");
        assert_eq!(encode(&json!({"keepalive": 0})).unwrap(), "c08d020d000000");
        assert_eq!(
            encode(&json!({"keepalive": false})).unwrap(),
            "c08d020d000000"
        );
    }

    #[test]
    fn encode_refuses_bad_values_with_the_field_named() {
        let cases = [
            (json!({"type": -1}), "bad_value"),
            (json!({"type": 1.5}), "bad_value"),
            (json!({"type": "1"}), "bad_value"),
            (json!({"sid": 7}), "bad_value"),
            (json!({"sid": {"bytes_hex": "f"}}), "bad_value"),
            (json!({"sid": {"bytes_hex": "ff", "x": 1}}), "bad_value"),
            (json!({"raw": "xyz"}), "bad_value"),
            (json!({"keepalive": 7}), "bad_value"),
            (json!({"protocols": "t c"}), "bad_value"),
            (json!({"protocols": ["t", 1]}), "bad_value"),
            (json!({"flavour": 1}), "unknown_field_name"),
            (
                json!({"error_kind": "bad_hex", "error": "x"}),
                "unknown_field_name",
            ),
            (json!({"type": 1, "kind": "query"}), "kind_mismatch"),
            (json!({"kind": "query"}), "kind_mismatch"),
            (json!({"type": 1, "kind": null}), "kind_mismatch"),
            (json!([1, 2]), "bad_json"),
            (json!("text"), "bad_json"),
        ];
        for (input, kind) in cases {
            let error = encode(&input).unwrap_err();
            assert_eq!(error.kind(), kind, "{input}: {error}");
        }
        let error = encode(&json!({"sid": 7})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `sid` takes a string or {\"bytes_hex\": \"<hex>\"}"
        );
        assert_eq!(
            encode_line("{\"sid\": \"a\"", Compat::Reference)
                .unwrap_err()
                .kind(),
            "bad_json"
        );
        assert_eq!(
            encode(&json!({"type": 42, "kind": "unknown"})).unwrap(),
            "c08d02012a0000"
        );
    }

    #[test]
    fn encode_refuses_a_key_given_twice() {
        let error = encode_line(r#"{"data": "a", "data": "b"}"#, Compat::Reference).unwrap_err();
        assert!(matches!(&error, PacketError::DuplicateKey(key) if key == "data"));
        assert_eq!(error.kind(), "duplicate_key");
    }

    #[test]
    fn compat_mode_refuses_c08d_varints_and_unchecked_writes_them() {
        let line = r#"{"type": 6, "channel": 18112}"#;
        let error = encode_line(line, Compat::Reference).unwrap_err();
        assert_eq!(error.kind(), "reserved_varint_prefix");
        let frame = encode_line(line, Compat::Unchecked).unwrap();
        assert_eq!(frame, "c08d06010602c08d010000");
        assert_eq!(decode_line(&frame)["channel"], 18112);
    }

    #[test]
    fn decode_stream_skips_blank_lines_and_carries_on_after_bad_ones() {
        let input = format!("{E1}\n\n   \nnot hex\n\t{}\r\nc08d0201800000\n", &E1[..10]);
        let mut out = Vec::new();
        let report = decode_stream(input.as_bytes(), &mut out, DecodeFormat::Summary).unwrap();
        assert_eq!(report, StreamReport { lines: 4, bad: 3 });
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("heartbeat sid=AbCd1234"));
        assert!(lines[1].starts_with("error: bad_hex: "), "{}", lines[1]);
        assert!(
            lines[2].starts_with("error: truncated_frame: "),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("error: truncated_varint: "),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn decode_stream_treats_a_line_that_is_not_utf8_as_bad_hex() {
        let mut input = E1.as_bytes().to_vec();
        input.extend_from_slice(b"\nc0\xff8d\n");
        let mut out = Vec::new();
        let report = decode_stream(&input[..], &mut out, DecodeFormat::Json).unwrap();
        assert_eq!(report, StreamReport { lines: 2, bad: 1 });
        let out = String::from_utf8(out).unwrap();
        let second: Json = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second[ERROR_KIND_KEY], "bad_hex");
    }

    #[test]
    fn encode_stream_reports_bad_lines_by_number_and_carries_on() {
        let input = "{\"type\": 1}\n\n{\"type\": -1}\nnot json\n{\"type\": 2}";
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        let report =
            encode_stream(input.as_bytes(), &mut out, &mut errors, Compat::Reference).unwrap();
        assert_eq!(report, StreamReport { lines: 4, bad: 2 });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "c08d0201010000\nc08d0201020000\n"
        );
        let errors = String::from_utf8(errors).unwrap();
        let errors: Vec<&str> = errors.lines().collect();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].starts_with("line 3: bad_value: field `type`"),
            "{}",
            errors[0]
        );
        assert!(errors[1].starts_with("line 4: bad_json: "), "{}", errors[1]);
    }

    #[test]
    fn decode_then_encode_round_trips_through_the_streams() {
        let frames = format!("{E1}\nc08d000000\n");
        let mut json_lines = Vec::new();
        decode_stream(frames.as_bytes(), &mut json_lines, DecodeFormat::Json).unwrap();
        let mut hex_lines = Vec::new();
        let report = encode_stream(
            &json_lines[..],
            &mut hex_lines,
            io::sink(),
            Compat::Reference,
        )
        .unwrap();
        assert_eq!(report.bad, 0);
        assert_eq!(String::from_utf8(hex_lines).unwrap(), frames);
    }
}
