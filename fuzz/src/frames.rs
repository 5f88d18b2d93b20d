//! Valid frames built from arbitrary fields, for the `stream` target (and the node's raw
//! datagrams): owned field values that can be borrowed as [`Field`]s and encoded.

use cluster_core::wire::{
    Compat, EncodeError, Field, FieldId, FieldKind, List, Str, Value, encode_fields,
    encoded_len_of_fields,
};

use crate::bytes::Reader;

/// An owned field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedValue {
    /// A varint.
    Varint(u64),
    /// A string (any bytes).
    Str(Vec<u8>),
    /// Raw bytes.
    Raw(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// A list (the encoder's API takes UTF-8 items).
    List(Vec<String>),
}

/// An owned field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedField {
    /// Its id.
    pub id: FieldId,
    /// Its value, of the id's kind.
    pub value: OwnedValue,
}

/// The most fields [`read_fields`] builds.
const MAX_FIELDS: usize = 24;

/// Reads fields until the input ends: an id (`u8` modulo 15), then a value of the id's kind.
/// Varints are 0 to 8 little-endian bytes, so that the values the encoder refuses in
/// [`Compat::Reference`] mode (such as 18,112) are reachable.
pub fn read_fields(r: &mut Reader<'_, '_>) -> Vec<OwnedField> {
    let mut fields = Vec::new();
    while !r.is_empty() && fields.len() < MAX_FIELDS {
        let index = usize::from(r.u8()) % FieldId::ALL.len();
        let id = FieldId::ALL[index];
        let value = match id.kind() {
            FieldKind::Varint => {
                let len = r.u8() % 9;
                let mut bytes = [0u8; 8];
                for byte in bytes.iter_mut().take(usize::from(len)) {
                    *byte = r.u8();
                }
                OwnedValue::Varint(u64::from_le_bytes(bytes))
            }
            FieldKind::String => OwnedValue::Str(r.bytes()),
            FieldKind::Raw => OwnedValue::Raw(r.bytes()),
            FieldKind::Boolean => OwnedValue::Bool(r.bool()),
            FieldKind::List => OwnedValue::List(r.vec(6, |r| lossy(&r.bytes()))),
        };
        fields.push(OwnedField { id, value });
    }
    fields
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Encodes owned fields, in order, as one frame.
///
/// # Errors
///
/// The encoder's error ([`EncodeError::ReservedVarintPrefix`] in [`Compat::Reference`] mode).
pub fn encode_owned(fields: &[OwnedField], compat: Compat) -> Result<Vec<u8>, EncodeError> {
    let items: Vec<Vec<&str>> = fields
        .iter()
        .map(|field| match &field.value {
            OwnedValue::List(items) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let borrowed: Vec<Field<'_>> = fields
        .iter()
        .zip(&items)
        .map(|(field, items)| {
            let value = match &field.value {
                OwnedValue::Varint(v) => Value::Varint(*v),
                OwnedValue::Str(s) => Value::Str(Str::from_bytes(s)),
                OwnedValue::Raw(r) => Value::Raw(r),
                OwnedValue::Bool(b) => Value::Bool(*b),
                OwnedValue::List(_) => Value::List(List::from_items(items)),
            };
            Field::new(field.id, value).expect("values are built of their field's kind")
        })
        .collect();
    let len = encoded_len_of_fields(borrowed.iter().copied(), compat)?;
    let mut out = vec![0; len];
    let written = encode_fields(borrowed.iter().copied(), compat, &mut out)?;
    assert_eq!(written, len, "encoded_len_of_fields is exact");
    Ok(out)
}
