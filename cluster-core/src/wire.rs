//! The bpacket codec: frames, fields and the Tcl list syntax carried in `data`.
//!
//! # Frame layout
//!
//! ```text
//! C0 8D | varint L | body: L bytes | 00 00
//! header  length     fields          footer
//! ```
//!
//! The body is a sequence of fields, each `varint(field id)` followed by a value whose encoding
//! the fixed template gives (there is no wire-type tag):
//!
//! | id | kind | name | | id | kind | name |
//! |---|---|---|---|---|---|---|
//! | 1 | varint | `type` | | 9 | string | `op` |
//! | 2 | varint | `channel` | | 10 | string | `data` |
//! | 3 | string | `hid` | | 11 | raw | `raw` |
//! | 4 | string | `sid` | | 12 | list | `tags` |
//! | 5 | varint | `known` | | 13 | boolean | `keepalive` |
//! | 6 | varint | `timestamp` | | 14 | list | `filter` |
//! | 7 | list | `protocols` | | 15 | string | `error` |
//! | 8 | string | `ruid` | | | | |
//!
//! Varints are unsigned LEB128. A string or raw value is `varint(len)` and the bytes; a list is
//! `varint(count)` then `varint(len)` and the bytes for each element; a boolean is one byte.
//!
//! # Entry points
//!
//! * [`Frame::parse`] checks one frame at the start of a buffer and validates every field;
//!   [`Message::parse`] gives the typed view. Both borrow from the input and never allocate.
//! * [`Message::encode`] writes a frame in the reference's field order for its kind;
//!   [`encode_fields`] writes fields in exactly the order given.
//! * [`Reassembler`] cuts frames out of a byte stream (several frames per datagram, one
//!   frame over several reads, garbage in between).
//! * [`tcl_list`] reads and writes the Tcl list and dict syntax used inside `data`.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod error;
mod field;
mod frame;
mod message;
mod stream;
pub mod tcl_list;
mod varint;

pub use error::{DecodeError, EncodeError, VarintUse};
pub(crate) use field::ListSource;
pub use field::{Field, FieldId, FieldKind, List, ListIter, Str, Value};
pub use frame::{Compat, Fields, Frame, datagram_chunks, encode_fields, encoded_len_of_fields};
pub use message::{FilterPlacement, Message, MessageKind};
pub use stream::{Reassembler, ReassemblerStats, StreamItem, StreamTable, StreamTableStats};
pub use varint::{
    decode as decode_varint, encode as encode_varint, encoded_len as varint_len, is_reserved_prefix,
};

/// The two bytes that open every frame.
pub const HEADER: [u8; 2] = [0xC0, 0x8D];
/// The two bytes that close every frame.
pub const FOOTER: [u8; 2] = [0x00, 0x00];
/// The largest datagram this project sends; longer frames leave as consecutive chunks of this
/// size plus a remainder, as the reference does (spec 2.6).
pub const MAX_DATAGRAM: usize = 4096;
/// Default bound on a frame's body length when reassembling a stream (spec 7.3): 1 MiB.
pub const MAX_FRAME_LEN: usize = 1_048_576;
