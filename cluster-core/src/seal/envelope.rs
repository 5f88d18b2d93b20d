//! The sealed frame: a bpacket frame a reference node drops unread, carrying an encrypted and
//! authenticated inner frame.
//!
//! ```text
//! C0 8D | L | 0E 00 | 0B S | stuffed envelope (S bytes, no C0) | 00 00
//!             filter=[]  raw
//!
//! envelope = version (1) | key id | pad length p (0-3) | p zero bytes
//!          | nonce: salt (16) | counter (8, big-endian)   <- the header, authenticated as AAD
//!                                                          (with the protocol letter, unsent)
//!          | inner frame, encrypted (XChaCha20)
//!          | tag (16, Poly1305)
//! ```
//!
//! * `filter` comes first and is empty. A reference node checks the filter as soon as it has
//!   decoded that field, finds that it names nobody and stops decoding there, silently (spec
//!   2.4 and 5.8): it never reads the `raw` field, and an unkeyed node of this project counts
//!   the frame as filtered out.
//! * The envelope is stuffed ([`super::escape`]) so that the frame holds no `C0 8D` but its
//!   header: a reference stream parser that resynchronises can only land on a real header.
//! * The outer length `L` and the raw length `S` are never values whose varint starts
//!   `C0 8D` (spec 7.3): when one would be, the frame is sealed again with one more pad byte
//!   (and a fresh counter), at most [`PAD_MAX`] times.
//! * The nonce is the sender's salt, drawn at every start, and a counter that never repeats
//!   for that salt, so a nonce is never used twice with a key; receivers keep a replay window
//!   per salt ([`super::replay`]).

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::escape::{self, UnstuffError};
use super::key::{Key, KeyRing};
use super::replay::Salt;
use crate::protocol::Protocol;
use crate::wire::{Compat, FOOTER, HEADER, encode_varint, is_reserved_prefix, varint_len};

/// The envelope format this node writes and reads.
const VERSION: u8 = 1;
/// `filter` (field 14) as an empty list, then the id of `raw` (field 11).
const BODY_PREFIX: [u8; 3] = [0x0E, 0x00, 0x0B];
/// Pad bytes at most; each attempt adds one.
pub(crate) const PAD_MAX: usize = 3;
/// Version, key id and pad length.
const FIXED_HEAD: usize = 3;
/// Room for header, `L`, body prefix and `S`: lengths below 2^35 take at most 5 bytes.
const OUTER_HEAD_MAX: usize = HEADER.len() + 5 + BODY_PREFIX.len() + 5;

/// Where the inner frame goes in a transmit buffer of `buf_len` bytes: behind room for the
/// outer header, the envelope header and the stuffing's growth, and before room for the tag.
fn inner_start(buf_len: usize) -> usize {
    OUTER_HEAD_MAX + FIXED_HEAD + PAD_MAX + NONCE_LEN + 2 + buf_len / 254
}

/// The inner frame's room in a transmit buffer of `buf_len` bytes.
pub(crate) fn inner_range(buf_len: usize) -> Option<core::ops::Range<usize>> {
    let start = inner_start(buf_len);
    let end = buf_len.checked_sub(TAG_LEN)?;
    (start <= end).then_some(start..end)
}

/// A transmit buffer that leaves an inner frame of `inner_len` bytes its room.
pub(crate) const fn transmit_buf_len(inner_len: usize) -> usize {
    let fixed = OUTER_HEAD_MAX + FIXED_HEAD + PAD_MAX + NONCE_LEN + 2 + TAG_LEN;
    let grown = inner_len + fixed;
    grown + grown / 253 + 1
}

/// True when `body` (a parsed frame's body) has the sealed layout's first bytes.
pub(crate) fn looks_sealed(body: &[u8]) -> bool {
    body.starts_with(&BODY_PREFIX)
}

/// Why a frame could not be sealed. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealFailure {
    /// The buffer has no room for the layout.
    BufferTooSmall,
    /// Every padding still gave a length the reference cannot read.
    ReservedLength,
}

/// Seals the inner frame at `buf[inner_range(buf.len())]`, `inner_len` bytes long, in place
/// and returns the sealed frame's length (it starts at `buf[0]`). `counter` is advanced for
/// every attempt; each attempt uses a counter value of its own.
pub(crate) fn seal(
    buf: &mut [u8],
    inner_len: usize,
    key: &Key,
    salt: &Salt,
    counter: &mut u64,
    compat: Compat,
    via: Protocol,
) -> Result<usize, SealFailure> {
    let range = inner_range(buf.len()).ok_or(SealFailure::BufferTooSmall)?;
    let inner_end = range
        .start
        .checked_add(inner_len)
        .filter(|&end| end <= range.end)
        .ok_or(SealFailure::BufferTooSmall)?;
    for pad in 0..=PAD_MAX {
        let head_len = FIXED_HEAD + pad + NONCE_LEN;
        let env_start = range.start - head_len;
        *counter = counter.wrapping_add(1);
        write_head(
            buf.get_mut(env_start..range.start)
                .ok_or(SealFailure::BufferTooSmall)?,
            key.id(),
            pad,
            salt,
            *counter,
        );
        let (front, rest) = buf.split_at_mut(range.start);
        let head = front.get(env_start..).ok_or(SealFailure::BufferTooSmall)?;
        let (inner, after) = rest.split_at_mut(inner_len);
        let nonce = nonce_of(head);
        let aad = Aad::new(head, via);
        let tag = aead::encrypt(key.bytes(), &nonce, aad.bytes(), inner);
        after
            .get_mut(..TAG_LEN)
            .ok_or(SealFailure::BufferTooSmall)?
            .copy_from_slice(&tag);
        let env_len = inner_end + TAG_LEN - env_start;
        let envelope = buf
            .get(env_start..env_start + env_len)
            .ok_or(SealFailure::BufferTooSmall)?;
        let stuffed = escape::stuffed_len(envelope);
        let body_len = BODY_PREFIX.len() + varint_len(stuffed as u64) + stuffed;
        let reserved = is_reserved_prefix(stuffed as u64) || is_reserved_prefix(body_len as u64);
        if compat == Compat::Reference && reserved {
            // Restore the plaintext and try again with one more pad byte.
            let rest = buf
                .get_mut(range.start..)
                .ok_or(SealFailure::BufferTooSmall)?;
            let (inner, _) = rest.split_at_mut(inner_len);
            aead::decrypt(key.bytes(), &nonce, aad.bytes(), inner, &tag)
                .map_err(|_| SealFailure::BufferTooSmall)?;
            continue;
        }
        let mut outer = [0u8; OUTER_HEAD_MAX];
        let out =
            write_outer_head(&mut outer, body_len, stuffed).ok_or(SealFailure::BufferTooSmall)?;
        let written = escape::stuff_within(buf, env_start, env_len, out)
            .ok_or(SealFailure::BufferTooSmall)?;
        let outer = outer.get(..out).ok_or(SealFailure::BufferTooSmall)?;
        buf.get_mut(..out)
            .ok_or(SealFailure::BufferTooSmall)?
            .copy_from_slice(outer);
        let footer_at = out + written;
        buf.get_mut(footer_at..footer_at + FOOTER.len())
            .ok_or(SealFailure::BufferTooSmall)?
            .copy_from_slice(&FOOTER);
        return Ok(footer_at + FOOTER.len());
    }
    Err(SealFailure::ReservedLength)
}

/// Writes `C0 8D | L | 0E 00 0B | S` into `outer` and returns its length.
fn write_outer_head(outer: &mut [u8], body_len: usize, stuffed: usize) -> Option<usize> {
    let mut at = 0;
    let mut put = |bytes: &[u8], at: &mut usize| -> Option<()> {
        let end = at.checked_add(bytes.len())?;
        outer.get_mut(*at..end)?.copy_from_slice(bytes);
        *at = end;
        Some(())
    };
    let mut varint = [0u8; 10];
    put(&HEADER, &mut at)?;
    let n = encode_varint(body_len as u64, &mut varint)?;
    put(varint.get(..n)?, &mut at)?;
    put(&BODY_PREFIX, &mut at)?;
    let n = encode_varint(stuffed as u64, &mut varint)?;
    put(varint.get(..n)?, &mut at)?;
    Some(at)
}

/// The associated data: the envelope header and the protocol the frame travels on, which is
/// not sent (the receiver knows it): a frame sealed for the multicast group does not open when
/// someone relays it over a TCP connection, where it would make that connection the route to
/// its sender.
struct Aad {
    bytes: [u8; FIXED_HEAD + PAD_MAX + NONCE_LEN + 1],
    len: usize,
}

impl Aad {
    fn new(head: &[u8], via: Protocol) -> Self {
        let mut bytes = [0u8; FIXED_HEAD + PAD_MAX + NONCE_LEN + 1];
        let len = head.len().min(bytes.len() - 1);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), head.get(..len)) {
            dst.copy_from_slice(src);
        }
        let letter = via.letter().as_bytes().first().copied().unwrap_or(b'c');
        if let Some(slot) = bytes.get_mut(len) {
            *slot = letter;
        }
        Self {
            bytes,
            len: len + 1,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

fn write_head(head: &mut [u8], key_id: u8, pad: usize, salt: &Salt, counter: u64) {
    let mut bytes = head.iter_mut();
    let fixed = [VERSION, key_id, pad as u8];
    let padding = core::iter::repeat_n(0u8, pad);
    let all = fixed
        .into_iter()
        .chain(padding)
        .chain(salt.iter().copied())
        .chain(counter.to_be_bytes());
    for (slot, value) in bytes.by_ref().zip(all) {
        *slot = value;
    }
}

/// The nonce: the last 24 bytes of the envelope header.
fn nonce_of(head: &[u8]) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    if let Some(bytes) = head.get(head.len().saturating_sub(NONCE_LEN)..) {
        nonce.copy_from_slice(bytes);
    }
    nonce
}

/// Why a sealed frame was not opened. No state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenFailure {
    /// Not the sealed layout, bad stuffing, or an envelope too short or of another version.
    Malformed,
    /// The envelope does not fit in the node's opening buffer.
    TooLarge,
    /// No key of the ring has the envelope's key id.
    UnknownKey,
    /// The tag did not verify: wrong key, or bytes changed on the way.
    Forged,
}

/// An envelope unstuffed into a buffer, its header read, not yet decrypted.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) key_id: u8,
    pub(crate) salt: Salt,
    pub(crate) counter: u64,
    head_len: usize,
    len: usize,
}

/// Unstuffs the envelope of the sealed frame whose body is `body` into `out` and reads its
/// header.
pub(crate) fn unpack(body: &[u8], out: &mut [u8]) -> Result<Envelope, OpenFailure> {
    let rest = body
        .strip_prefix(&BODY_PREFIX)
        .ok_or(OpenFailure::Malformed)?;
    let (stuffed_len, used) =
        crate::wire::decode_varint(rest).map_err(|_| OpenFailure::Malformed)?;
    let stuffed = rest.get(used..).ok_or(OpenFailure::Malformed)?;
    if usize::try_from(stuffed_len).ok() != Some(stuffed.len()) {
        return Err(OpenFailure::Malformed);
    }
    let len = escape::unstuff(stuffed, out).map_err(|e| match e {
        UnstuffError::Malformed => OpenFailure::Malformed,
        UnstuffError::TooLong => OpenFailure::TooLarge,
    })?;
    let envelope = out.get(..len).ok_or(OpenFailure::Malformed)?;
    let (&[version, key_id, pad], rest) = envelope
        .split_first_chunk::<FIXED_HEAD>()
        .ok_or(OpenFailure::Malformed)?;
    let pad = usize::from(pad);
    if version != VERSION || pad > PAD_MAX {
        return Err(OpenFailure::Malformed);
    }
    let nonce = rest
        .get(pad..pad + NONCE_LEN)
        .ok_or(OpenFailure::Malformed)?;
    let (salt, counter) = nonce.split_at(16);
    let head_len = FIXED_HEAD + pad + NONCE_LEN;
    if len < head_len + TAG_LEN {
        return Err(OpenFailure::Malformed);
    }
    Ok(Envelope {
        key_id,
        salt: salt.try_into().map_err(|_| OpenFailure::Malformed)?,
        counter: u64::from_be_bytes(counter.try_into().map_err(|_| OpenFailure::Malformed)?),
        head_len,
        len,
    })
}

impl Envelope {
    /// Decrypts the envelope (unpacked into `buf` by [`unpack`]) with the ring's key and
    /// returns the inner frame, in `buf`.
    pub(crate) fn open<'b>(
        &self,
        ring: &KeyRing,
        via: Protocol,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], OpenFailure> {
        let key = ring.get(self.key_id).ok_or(OpenFailure::UnknownKey)?;
        let envelope = buf.get_mut(..self.len).ok_or(OpenFailure::Malformed)?;
        let (head, rest) = envelope.split_at_mut(self.head_len);
        let (inner, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| OpenFailure::Malformed)?;
        aead::decrypt(
            key.bytes(),
            &nonce_of(head),
            Aad::new(head, via).bytes(),
            inner,
            tag,
        )
        .map_err(|_| OpenFailure::Forged)?;
        Ok(inner)
    }
}
