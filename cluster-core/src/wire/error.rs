//! Decode and encode errors of the codec.

use core::fmt;

use super::FieldId;

/// Why a frame could not be decoded. The frame is dropped whole; nothing else is affected.
///
/// [`kind`](Self::kind) names the error class used by the golden vectors (`invalid.json`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input does not start with `C0 8D`.
    BadHeader,
    /// A varint (body length, field id, value, length or count) is cut by the end of the
    /// body or input.
    TruncatedVarint,
    /// A varint does not fit in 64 bits.
    VarintOverflow,
    /// A string, raw, boolean or list-element value runs past the end of the body.
    LengthOverrun(FieldId),
    /// A field id outside 1–15.
    UnknownField(u64),
    /// The input ends before the declared body and footer.
    TruncatedFrame,
    /// The two bytes after the declared body are not `00 00`.
    BadFooter,
}

impl DecodeError {
    /// The error class as the golden vectors name it, e.g. `"truncated_varint"`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::BadHeader => "bad_header",
            Self::TruncatedVarint => "truncated_varint",
            Self::VarintOverflow => "varint_overflow",
            Self::LengthOverrun(_) => "length_overrun",
            Self::UnknownField(_) => "unknown_field",
            Self::TruncatedFrame => "truncated_frame",
            Self::BadFooter => "bad_footer",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader => f.write_str("frame does not start with c0 8d"),
            Self::TruncatedVarint => f.write_str("varint cut by the end of the frame"),
            Self::VarintOverflow => f.write_str("varint does not fit in 64 bits"),
            Self::LengthOverrun(id) => {
                write!(
                    f,
                    "value of field `{}` runs past the end of the body",
                    id.name()
                )
            }
            Self::UnknownField(id) => write!(f, "unknown field id {id} (valid ids are 1-15)"),
            Self::TruncatedFrame => f.write_str("input ends before the declared body and footer"),
            Self::BadFooter => f.write_str("the two bytes after the body are not 00 00"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Which varint of a frame an [`EncodeError::ReservedVarintPrefix`] concerns.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintUse {
    /// The frame's body length.
    BodyLength,
    /// The value of a varint field.
    Value(FieldId),
    /// The byte length of a string or raw field.
    Length(FieldId),
    /// The element count of a list field.
    ListCount(FieldId),
    /// The byte length of one element of a list field.
    ElementLength(FieldId),
}

impl fmt::Display for VarintUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BodyLength => f.write_str("body length"),
            Self::Value(id) => write!(f, "value of `{}`", id.name()),
            Self::Length(id) => write!(f, "length of `{}`", id.name()),
            Self::ListCount(id) => write!(f, "element count of `{}`", id.name()),
            Self::ElementLength(id) => write!(f, "element length in `{}`", id.name()),
        }
    }
}

/// Why a frame could not be encoded. Nothing was written that the caller should send.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small; `required` bytes would fit the whole frame.
    BufferTooSmall {
        /// The exact size of the encoded frame.
        required: usize,
    },
    /// A varint would start with `C0 8D`, which the reference decoder mis-reads (spec 7.3).
    /// The payload has to change; the encoder never pads or reorders to dodge the rule.
    ReservedVarintPrefix {
        /// Which varint.
        what: VarintUse,
        /// Its value.
        value: u64,
    },
    /// The value's kind does not match the field's template type (e.g. a list for `sid`).
    WrongKind(FieldId),
    /// The frame would be longer than `usize` can count.
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes needed")
            }
            Self::ReservedVarintPrefix { what, value } => write!(
                f,
                "{what} {value} would encode starting c0 8d, which reference nodes mis-read"
            ),
            Self::WrongKind(id) => write!(
                f,
                "field `{}` takes a {} value",
                id.name(),
                id.kind().name()
            ),
            Self::TooLarge => f.write_str("frame too large to encode"),
        }
    }
}

impl core::error::Error for EncodeError {}
