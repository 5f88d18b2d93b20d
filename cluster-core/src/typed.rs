//! Typed payloads (feature `serde`): any `T: Serialize` travels postcard-encoded in the `raw`
//! field (id 11) of an event, query or response, and is decoded on receipt, without an
//! allocator.
//!
//! Tcl nodes ignore `raw` (they never produce it and pass it through untouched), so typed
//! payloads are for traffic between nodes of this project; `data` stays free for text.
//!
//! ```
//! use cluster_core::{Payload, typed};
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Reading { sensor: u16, celsius: i32 }
//!
//! let mut buf = [0u8; 32];
//! let raw = typed::encode(&Reading { sensor: 7, celsius: -4 }, &mut buf)?;
//! // ... sent as `SendRequest { raw: Some(raw), .. }`, received as an event's payload:
//! let payload = Payload::<64>::new(None, Some(raw)).unwrap();
//! assert_eq!(payload.typed::<Reading>()?, Reading { sensor: 7, celsius: -4 });
//! # Ok::<(), cluster_core::typed::TypedError>(())
//! ```

use core::fmt;

use heapless::vec::VecView;
use serde::{Deserialize, Serialize};

use crate::event::Payload;
use crate::policy::{PayloadMut, Reply};

/// Why a typed payload could not be written or read.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedError {
    /// The value does not fit in the buffer (or the node's `DATA` capacity).
    TooLarge,
    /// The payload has no `raw` field.
    NoRaw,
    /// The `raw` bytes are not a postcard encoding of the requested type.
    Decode,
    /// The value could not be serialised (a serde error other than size).
    Encode,
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "typed payload larger than the buffer",
            Self::NoRaw => "payload has no raw field",
            Self::Decode => "raw field is not a postcard encoding of the requested type",
            Self::Encode => "value could not be serialised",
        })
    }
}

impl core::error::Error for TypedError {}

fn encode_error(e: postcard::Error) -> TypedError {
    match e {
        postcard::Error::SerializeBufferFull => TypedError::TooLarge,
        _ => TypedError::Encode,
    }
}

/// Serialises `value` with postcard into `buf` and returns the bytes to send as `raw`.
///
/// # Errors
///
/// [`TypedError::TooLarge`] when `buf` is too small; [`TypedError::Encode`] otherwise.
pub fn encode<'b, T: Serialize + ?Sized>(
    value: &T,
    buf: &'b mut [u8],
) -> Result<&'b [u8], TypedError> {
    postcard::to_slice(value, buf)
        .map(|bytes| &*bytes)
        .map_err(encode_error)
}

/// Decodes a `raw` field as a `T`.
///
/// # Errors
///
/// [`TypedError::Decode`] when the bytes are not a postcard `T`.
pub fn decode<'a, T: Deserialize<'a>>(raw: &'a [u8]) -> Result<T, TypedError> {
    postcard::from_bytes(raw).map_err(|_| TypedError::Decode)
}

impl<const DATA: usize> Payload<DATA> {
    /// The `raw` field decoded as a `T` (which may borrow from the payload).
    ///
    /// # Errors
    ///
    /// [`TypedError::NoRaw`] or [`TypedError::Decode`].
    pub fn typed<'a, T: Deserialize<'a>>(&'a self) -> Result<T, TypedError> {
        decode(self.raw().ok_or(TypedError::NoRaw)?)
    }
}

/// A postcard output that appends to a bounded vector.
struct Append<'v> {
    out: &'v mut VecView<u8>,
}

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.out
            .extend_from_slice(data)
            .map_err(|_| postcard::Error::SerializeBufferFull)
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.out
            .push(data)
            .map_err(|_| postcard::Error::SerializeBufferFull)
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl PayloadMut<'_> {
    /// Replaces `raw` with `value`, postcard-encoded, keeping `data`.
    ///
    /// # Errors
    ///
    /// [`TypedError::TooLarge`] when it does not fit; the old `raw` is then removed and
    /// `data` kept.
    pub fn set_typed<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        let (bytes, shape) = self.raw_parts().map_err(|_| TypedError::TooLarge)?;
        let keep = bytes.len();
        shape.set_raw(true);
        let result = postcard::serialize_with_flavor(value, Append { out: bytes });
        if let Err(e) = result {
            bytes.truncate(keep);
            return Err(encode_error(e));
        }
        Ok(())
    }
}

impl Reply<'_> {
    /// Answers with `value`, postcard-encoded in `raw` (`data` stays as written).
    ///
    /// # Errors
    ///
    /// [`TypedError::TooLarge`] when it does not fit.
    pub fn set_typed<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        self.payload().set_typed(value)
    }
}
