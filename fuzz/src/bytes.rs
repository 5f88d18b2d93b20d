//! The byte layout of the structured inputs (`stream`, `node`), read through
//! [`arbitrary::Unstructured`] and written back by [`Writer`] for the seed corpora.
//!
//! The layout is explicit rather than `#[derive(Arbitrary)]`'s so that seeds can be written by
//! hand (and by `tests/gen_corpus.rs`) and read back exactly, whatever the `arbitrary` version:
//!
//! * `u8`: one byte (0 once the input is exhausted); `u16`, `u32`, `u64`: little-endian;
//! * `bool`: one byte, its low bit;
//! * byte strings: a `u8` length (`u16` for long ones) and that many bytes, cut short by the
//!   end of the input;
//! * `Option<T>`: a `bool`, then `T` when set;
//! * `Vec<T>`: a `u8` count (modulo the maximum plus one), then the items; reading stops early
//!   at the end of the input.
//!
//! Every read consumes at least one byte while input is left, so a reader loop that stops
//! at the end of the input terminates.

use arbitrary::{Arbitrary, Unstructured};

/// Reads the layout above from an [`Unstructured`].
#[derive(Debug)]
pub struct Reader<'u, 'a> {
    u: &'u mut Unstructured<'a>,
}

impl<'u, 'a> Reader<'u, 'a> {
    /// A reader over `u`.
    pub fn new(u: &'u mut Unstructured<'a>) -> Self {
        Self { u }
    }

    /// True when the input is exhausted.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }

    /// One byte, or 0 at the end of the input.
    pub fn u8(&mut self) -> u8 {
        u8::arbitrary(self.u).unwrap_or(0)
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// The low bit of one byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A byte string of at most 255 bytes.
    pub fn bytes(&mut self) -> Vec<u8> {
        let len = usize::from(self.u8());
        self.take(len)
    }

    /// A byte string of at most 65,535 bytes.
    pub fn long_bytes(&mut self) -> Vec<u8> {
        let len = usize::from(self.u16());
        self.take(len)
    }

    /// Everything left.
    pub fn rest(&mut self) -> Vec<u8> {
        let len = self.u.len();
        self.take(len)
    }

    fn take(&mut self, len: usize) -> Vec<u8> {
        let len = len.min(self.u.len());
        self.u.bytes(len).unwrap_or_default().to_vec()
    }

    /// An optional value.
    pub fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.bool() { Some(read(self)) } else { None }
    }

    /// At most `max` values.
    pub fn vec<T>(&mut self, max: u8, mut read: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let count = self.u8() % max.saturating_add(1);
        let mut items = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            if self.is_empty() {
                break;
            }
            items.push(read(self));
        }
        items
    }
}

/// Writes the layout [`Reader`] reads.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes written so far.
    pub out: Vec<u8>,
}

impl Writer {
    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// One byte, 0 or 1.
    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// A byte string of at most 255 bytes.
    ///
    /// # Panics
    ///
    /// When it is longer.
    pub fn bytes(&mut self, bytes: &[u8]) {
        let len = u8::try_from(bytes.len()).expect("a short byte string has at most 255 bytes");
        self.u8(len);
        self.out.extend_from_slice(bytes);
    }

    /// A byte string of at most 65,535 bytes.
    ///
    /// # Panics
    ///
    /// When it is longer.
    pub fn long_bytes(&mut self, bytes: &[u8]) {
        let len = u16::try_from(bytes.len()).expect("a long byte string has at most 65,535 bytes");
        self.u16(len);
        self.out.extend_from_slice(bytes);
    }

    /// Raw bytes, for the rest of the input.
    pub fn rest(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// An optional value.
    pub fn opt<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        self.bool(value.is_some());
        if let Some(value) = value {
            write(self, value);
        }
    }

    /// At most `max` values.
    ///
    /// # Panics
    ///
    /// When there are more.
    pub fn vec<T>(&mut self, items: &[T], max: u8, mut write: impl FnMut(&mut Self, &T)) {
        let count = u8::try_from(items.len())
            .ok()
            .filter(|count| *count <= max)
            .expect("too many items for this vector");
        self.u8(count);
        for item in items {
            write(self, item);
        }
    }
}
