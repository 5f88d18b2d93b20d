//! Stream reassembly: cutting frames out of received bytes (spec 2.5, 2.6 and 7.3, Q7).
//!
//! Received bytes arrive in chunks (datagrams, or TCP/unix reads). A chunk may hold part of a
//! frame, one frame, several frames, or garbage. [`Reassembler`] keeps one bounded buffer for
//! one byte stream (one TCP or unix connection, or one UDP sender); [`StreamTable`] keeps one
//! per sender for a UDP socket, with a bound on the number of senders and an idle timeout.
//!
//! The parsing rules and bounds are documented on [`Reassembler`].

use core::fmt;

use heapless::{Vec, VecView};

use super::{DecodeError, FOOTER, Frame, HEADER, MAX_FRAME_LEN, varint};
use crate::compact::compact;
use crate::stats::bump;

/// The smallest buffer a [`Reassembler`] or [`StreamTable`] accepts (checked at compile time):
/// a header and the longest length varint, the most a partial frame can hold before its
/// length is known.
const MIN_CAPACITY: usize = HEADER.len() + varint::MAX_LEN;

/// The first byte of [`HEADER`], kept alone at the end of the data.
const HEADER_FIRST: u8 = 0xC0;

/// One result of parsing a stream: a frame, or a complete frame whose body failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamItem<'a> {
    /// A complete, validated frame. It borrows from the pushed chunk or from the reassembly
    /// buffer, and only for the duration of the callback.
    Frame(Frame<'a>),
    /// A complete frame (right header, length and footer) whose body [`Frame::parse`] rejected.
    /// All of its bytes were consumed; parsing goes on after its footer.
    Error(DecodeError),
}

/// Where the scan hands each complete frame (header, length and footer checked, the body not
/// yet): the consumer validates the body as it decodes it, once, and returns the decode error
/// when it fails, which the scan counts. The node decodes the fields it uses
/// ([`StreamTable::push_frames`]); the public callers get [`StreamItem`]s ([`itemize`]).
pub(crate) type FrameSink<'s> = &'s mut dyn FnMut(Frame<'_>) -> Result<(), DecodeError>;

/// Validates `frame`'s body ([`Frame::parse`], which stores no field) and reports it to
/// `on_item` as a [`StreamItem`].
fn itemize<'a>(
    frame: Frame<'a>,
    on_item: &mut impl FnMut(StreamItem<'a>),
) -> Result<(), DecodeError> {
    match Frame::parse(frame.as_bytes()) {
        Ok((frame, _)) => {
            on_item(StreamItem::Frame(frame));
            Ok(())
        }
        Err(error) => {
            on_item(StreamItem::Error(error));
            Err(error)
        }
    }
}

/// Counters of a [`Reassembler`] (or, summed over all senders, of a [`StreamTable`]).
///
/// Counters saturate instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReassemblerStats {
    /// Frames reported as [`StreamItem::Frame`].
    pub frames: u64,
    /// Frames reported as [`StreamItem::Error`].
    pub errors: u64,
    /// Bytes discarded while searching for a header: bytes before a header, and the two bytes
    /// of every rejected header (bad footer, oversized or overflowing length, dropped partial).
    pub garbage_bytes: u64,
    /// Partial frames dropped because they could not fit in the buffer (see the module docs).
    pub overflows: u64,
}

impl ReassemblerStats {
    // Out of line: a 64-bit saturating add at every discard site otherwise.
    #[inline(never)]
    fn discard(&mut self, bytes: usize) {
        self.garbage_bytes = self.garbage_bytes.saturating_add(bytes as u64);
    }
}

/// Reassembles frames from one byte stream: one TCP or unix connection, or one UDP sender.
///
/// `N` is the buffer size in bytes, the longest frame that can be put back together from
/// several chunks (at least 12, checked at compile time). A frame that arrives whole in one
/// chunk while nothing is pending is parsed in place and may be longer.
///
/// # Parsing rules (spec 7.3)
///
/// Starting at the first unconsumed byte, repeatedly:
///
/// 1. Search the exact two bytes `C0 8D`. Bytes before them are discarded; when no header is
///    found, everything is discarded except a trailing lone `C0`, which may be the first half
///    of a header split across chunks.
/// 2. Read the body length `L`. A varint cut by the end of the data means "wait for more"; a
///    varint that does not fit in 64 bits discards the two header bytes and searches again.
/// 3. If `L` is larger than the maximum frame length ([`MAX_FRAME_LEN`] unless changed), or the
///    two bytes after the body are not `00 00`, the two header bytes are discarded and the
///    search starts again right after them.
/// 4. If the data ends before the footer, wait for more.
/// 5. Otherwise the whole frame is consumed and reported: [`StreamItem::Frame`] when
///    [`Frame::parse`] accepts it, else [`StreamItem::Error`] with the decode error.
///
/// The declared length governs: a body may contain `C0 8D 00 00` without cutting the frame.
///
/// # Bounds
///
/// A [`Reassembler<N>`] never holds more than `N` bytes. When nothing is pending, a chunk is
/// parsed in place (no copy) and only its unfinished tail is copied into the buffer, so a frame
/// that arrives whole in one chunk is accepted whatever its length (up to the maximum frame
/// length). A frame that has to be *reassembled* must fit in `N` bytes, header to footer: when
/// a waiting partial frame declares a larger total, it is dropped as soon as its length is
/// known. The drop counts in [`ReassemblerStats::overflows`] and is handled like a bad footer:
/// the two header bytes are discarded and the search for the next header goes on in the
/// following bytes (which are the dropped frame's body, so a header inside it may be found and
/// rejected in turn). The frame itself is lost.
///
/// Work per pushed byte is bounded: the parser never loops without consuming input. Resyncing
/// over adversarial data (a header every two bytes, each declaring a frame that almost fills
/// the buffer) costs up to `O(N)` per byte, as in the reference.
///
/// # Memory
///
/// `size_of::<Reassembler<N>>()` is `N + 48` bytes on 64-bit targets (about `N + 40` on 32-bit)
/// rounded up to the alignment: 4,144 bytes for `N = 4096`, 65,584 for `N = 65_536`. Nothing
/// else is ever allocated. Large buffers should not live on a small stack.
///
/// # Example
///
/// ```
/// use cluster_core::wire::{Reassembler, StreamItem};
///
/// let mut stream = Reassembler::<256>::new();
/// let mut frames = 0;
/// // An empty frame, split in the middle of its header, with junk in front.
/// for chunk in [&[0x01, 0x02, 0xC0][..], &[0x8D, 0x00, 0x00, 0x00]] {
///     stream.push(chunk, |item| {
///         if let StreamItem::Frame(frame) = item {
///             assert!(frame.body().is_empty());
///             frames += 1;
///         }
///     });
/// }
/// assert_eq!(frames, 1);
/// assert!(!stream.is_pending());
/// assert_eq!(stream.stats().garbage_bytes, 2);
/// ```
pub struct Reassembler<const N: usize> {
    buf: Vec<u8, N>,
    max_frame_len: usize,
    stats: ReassemblerStats,
}

impl<const N: usize> Reassembler<N> {
    /// An empty reassembler with the default maximum frame length, [`MAX_FRAME_LEN`].
    #[must_use]
    pub const fn new() -> Self {
        const { assert!(N >= MIN_CAPACITY, "a Reassembler needs at least 12 bytes") }
        Self {
            buf: Vec::new(),
            max_frame_len: MAX_FRAME_LEN,
            stats: ReassemblerStats {
                frames: 0,
                errors: 0,
                garbage_bytes: 0,
                overflows: 0,
            },
        }
    }

    /// Feeds the next chunk of the stream and calls `on_item` for every frame or decode error
    /// it completes, in stream order.
    ///
    /// A chunk may hold any part of the stream: part of a frame, several frames, garbage.
    /// When nothing is pending the chunk is parsed in place; only an unfinished frame at its
    /// end is copied into the buffer. Never panics, never allocates, and always returns after
    /// work bounded by the chunk's length.
    pub fn push(&mut self, chunk: &[u8], mut on_item: impl FnMut(StreamItem<'_>)) {
        feed(
            self.buf.as_mut_view(),
            chunk,
            self.max_frame_len,
            &mut self.stats,
            &mut |frame| itemize(frame, &mut on_item),
        );
    }

    /// Feeds the next chunk as [`push`](Self::push) does, but hands each complete frame to
    /// `on_frame` with its header, length and footer checked and its body not yet: the
    /// consumer validates the body as it decodes it (a node's `handle_datagram` does) and
    /// returns the decode error when it fails, so the body is read once rather than by
    /// [`Frame::parse`] first. Frames for which `on_frame` returns `Ok` count in
    /// [`ReassemblerStats::frames`], the others in [`ReassemblerStats::errors`]. The same
    /// bounds as [`push`](Self::push).
    pub fn push_frames(
        &mut self,
        chunk: &[u8],
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), DecodeError>,
    ) {
        feed(
            self.buf.as_mut_view(),
            chunk,
            self.max_frame_len,
            &mut self.stats,
            &mut on_frame,
        );
    }

    /// True when bytes of an unfinished frame (or a lone trailing `C0`) are buffered.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The number of buffered bytes (0 to `N`).
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// Drops any buffered bytes, as at the start of a new stream. Counters are kept.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The buffer size `N`: the longest frame that can be reassembled from several chunks.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The largest accepted body length `L`; a header declaring more is discarded.
    #[must_use]
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Sets the largest accepted body length `L` (default [`MAX_FRAME_LEN`], spec 7.3).
    ///
    /// It applies from the next [`push`](Self::push), to a pending partial frame too.
    pub const fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.max_frame_len = max_frame_len;
    }

    /// The counters since creation.
    #[must_use]
    pub const fn stats(&self) -> ReassemblerStats {
        self.stats
    }
}

impl<const N: usize> Default for Reassembler<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for Reassembler<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reassembler")
            .field("capacity", &N)
            .field("pending_len", &self.buf.len())
            .field("max_frame_len", &self.max_frame_len)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Counters of a [`StreamTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamTableStats {
    /// Parsing counters summed over all senders.
    pub reassembly: ReassemblerStats,
    /// Partial frames dropped because a new sender needed a buffer while all `SENDERS` were in
    /// use (the least recently active sender loses its partial frame).
    pub evicted: u64,
    /// Partial frames dropped because their sender sent nothing for the idle time.
    pub expired: u64,
}

impl StreamTableStats {
    /// All partial frames dropped before completion: overflows of a buffer, evictions and
    /// expiries (the `stream_overflows` counter of the node).
    #[must_use]
    pub const fn dropped_partials(&self) -> u64 {
        self.reassembly
            .overflows
            .saturating_add(self.evicted)
            .saturating_add(self.expired)
    }
}

/// A sender with a partial frame pending: which buffer holds it and when it last sent.
#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    key: K,
    last_ms: u64,
    slot: usize,
}

/// One reassembly buffer per sender, for a socket that receives from many peers (spec 7.3, Q7).
///
/// `K` identifies a sender: the datagram's source address for UDP, or a connection id. At most
/// `SENDERS` senders (at least 1) can have a partial frame pending at once, each in a buffer of
/// `N` bytes (at least 12) with the rules and bounds of [`Reassembler`].
///
/// * **Slots only for partial frames.** A sender whose chunks hold whole frames never takes a
///   slot: its chunk is parsed in place. A slot is taken only for an unfinished frame and
///   given back as soon as the frame completes or is dropped.
/// * **When full:** a new sender with a partial frame takes the slot of the sender that sent
///   least recently, whose partial frame is dropped ([`StreamTableStats::evicted`]).
/// * **Idle senders:** a partial frame whose sender sent nothing for [`idle_ms`](Self::idle_ms)
///   (default 5,000 ms) is dropped ([`StreamTableStats::expired`]) by [`expire`](Self::expire)
///   or the next [`push`](Self::push), at the first `now_ms >= last chunk + idle_ms`. A sans-IO
///   caller schedules [`expire`](Self::expire) at [`next_expiry`](Self::next_expiry).
///
/// Time is a caller-supplied millisecond count (`now_ms`) that should never go backwards.
///
/// # Memory
///
/// `size_of` is `SENDERS * (N + 8) + SENDERS * (size_of::<K>() + 16) + 72` bytes on 64-bit
/// targets, all inline, nothing allocated. For example, with a 32-byte key
/// (`std::net::SocketAddr`):
///
/// | `SENDERS` | `N` | size |
/// |---|---|---|
/// | 8 | 4,096 | 33,288 bytes |
/// | 16 | 10,240 (fits a 10,059-byte frame split over 3 datagrams) | 164,808 bytes (161 KiB) |
/// | 256 | 65,536 | 16,791,624 bytes (16 MiB) |
///
/// Large tables belong in a `static` or on the heap, never on a small stack.
pub struct StreamTable<K, const SENDERS: usize, const N: usize> {
    entries: Vec<Entry<K>, SENDERS>,
    /// Buffers; the ones no entry points at are empty, and those of entries are not.
    buffers: [Vec<u8, N>; SENDERS],
    max_frame_len: usize,
    idle_ms: u64,
    stats: StreamTableStats,
}

impl<K: Copy + Eq, const SENDERS: usize, const N: usize> StreamTable<K, SENDERS, N> {
    /// The default idle time after which a sender's partial frame is dropped (spec 7.3).
    pub const DEFAULT_IDLE_MS: u64 = 5_000;

    /// An empty table with the default maximum frame length ([`MAX_FRAME_LEN`]) and idle
    /// time ([`DEFAULT_IDLE_MS`](Self::DEFAULT_IDLE_MS)).
    #[must_use]
    pub const fn new() -> Self {
        const {
            assert!(SENDERS >= 1, "a StreamTable needs at least one sender slot");
            assert!(
                N >= MIN_CAPACITY,
                "a StreamTable needs buffers of at least 12 bytes"
            );
        }
        let mut table = Self::unconfigured();
        table.max_frame_len = MAX_FRAME_LEN;
        table.idle_ms = Self::DEFAULT_IDLE_MS;
        table
    }

    /// An empty table with a zero maximum frame length and idle time (all zero bits), for an
    /// empty node that configures it when it starts.
    pub(crate) const fn unconfigured() -> Self {
        Self {
            entries: Vec::new(),
            buffers: [const { Vec::new() }; SENDERS],
            max_frame_len: 0,
            idle_ms: 0,
            stats: StreamTableStats {
                reassembly: ReassemblerStats {
                    frames: 0,
                    errors: 0,
                    garbage_bytes: 0,
                    overflows: 0,
                },
                evicted: 0,
                expired: 0,
            },
        }
    }

    /// Feeds the next chunk received from `key` at `now_ms` and calls `on_item` for every
    /// frame or decode error it completes, in that sender's stream order.
    ///
    /// First drops every partial frame that has been idle for [`idle_ms`](Self::idle_ms)
    /// (this sender's included), as [`expire`](Self::expire) does. Never panics, never
    /// allocates; work is bounded by the chunk's length plus `SENDERS`.
    pub fn push(
        &mut self,
        now_ms: u64,
        key: K,
        chunk: &[u8],
        mut on_item: impl FnMut(StreamItem<'_>),
    ) {
        self.push_frames(now_ms, key, chunk, &mut |frame| {
            itemize(frame, &mut on_item)
        });
    }

    /// [`push`](Self::push), handing each complete frame to `on_frame` to validate and decode.
    pub(crate) fn push_frames(
        &mut self,
        now_ms: u64,
        key: K,
        chunk: &[u8],
        on_frame: FrameSink<'_>,
    ) {
        self.expire(now_ms);
        let stats = &mut self.stats.reassembly;
        if let Some(index) = self.entries.iter().position(|e| e.key == key) {
            let Some(entry) = self.entries.get_mut(index) else {
                return;
            };
            entry.last_ms = entry.last_ms.max(now_ms);
            let Some(buf) = self.buffers.get_mut(entry.slot) else {
                return;
            };
            feed(
                buf.as_mut_view(),
                chunk,
                self.max_frame_len,
                stats,
                on_frame,
            );
            if buf.is_empty() {
                self.entries.swap_remove(index);
            }
            return;
        }
        // No partial frame from this sender: parse in place, store only an unfinished tail.
        let limits = Limits {
            max_frame_len: self.max_frame_len,
            capacity: N,
        };
        let used = scan(chunk, limits, stats, on_frame);
        let tail = chunk.get(used..).unwrap_or_default();
        if tail.is_empty() {
            return;
        }
        if self.entries.is_full() {
            self.evict_least_recent();
        }
        let stored = self
            .buffers
            .iter_mut()
            .enumerate()
            .find(|(_, buf)| buf.is_empty())
            .and_then(|(slot, buf)| {
                buf.extend_from_slice(tail).ok()?;
                let entry = Entry {
                    key,
                    last_ms: now_ms,
                    slot,
                };
                if self.entries.push(entry).is_err() {
                    buf.clear();
                    return None;
                }
                Some(())
            });
        if stored.is_none() {
            // Not reachable: a slot was freed above and the tail is shorter than `N`.
            let stats = &mut self.stats.reassembly;
            bump(&mut stats.overflows);
            stats.discard(tail.len());
        }
    }

    /// As [`push`](Self::push), for datagrams: a datagram that holds a whole frame from its
    /// first byte is parsed on its own, and a partial frame pending from the same key stays as
    /// it was (its idle time runs on).
    ///
    /// Senders send one frame per datagram and split only frames over 4096 bytes (spec 2.6),
    /// and every node of a host sends from the cluster port, so the nodes of one host share a
    /// key. Without this, one datagram declaring a long frame from that address and port (a
    /// lost chunk, or anyone who can bind the port) would make the frames of every node of
    /// that host wait behind it until its length or its idle time ran out. What a datagram
    /// holds after its whole frames is dropped (counted as garbage) while another partial
    /// frame is pending from its key.
    pub fn push_datagram(
        &mut self,
        now_ms: u64,
        key: K,
        datagram: &[u8],
        mut on_item: impl FnMut(StreamItem<'_>),
    ) {
        self.push_datagram_frames(now_ms, key, datagram, &mut |frame| {
            itemize(frame, &mut on_item)
        });
    }

    /// [`push_datagram`](Self::push_datagram), handing each complete frame to `on_frame` to
    /// validate and decode.
    pub(crate) fn push_datagram_frames(
        &mut self,
        now_ms: u64,
        key: K,
        datagram: &[u8],
        on_frame: FrameSink<'_>,
    ) {
        self.expire(now_ms);
        // Only a sender with a partial frame pending pays for the look ahead; `probe` reads
        // the header, the length and the footer.
        let pending = self.entries.iter().any(|e| e.key == key);
        let whole = || {
            datagram.starts_with(&HEADER)
                && matches!(probe(datagram, self.max_frame_len), Probe::Complete(_))
        };
        if !pending || !whole() {
            self.push_frames(now_ms, key, datagram, on_frame);
            return;
        }
        let limits = Limits {
            max_frame_len: self.max_frame_len,
            capacity: N,
        };
        let stats = &mut self.stats.reassembly;
        let used = scan(datagram, limits, stats, on_frame);
        stats.discard(datagram.len().saturating_sub(used));
    }

    /// What [`push_datagram_frames`](Self::push_datagram_frames) does for a datagram that is
    /// one whole frame from a sender with no partial frame pending, when the caller handles
    /// the frame itself: expires idle partial frames at `now_ms` and counts the frame.
    /// Returns false, doing nothing else than the expiry, when `key` has a partial frame
    /// pending (the datagram must then go through `push_datagram_frames`).
    #[cfg(feature = "heartbeat-fast-path")]
    pub(crate) fn take_whole_datagram(&mut self, now_ms: u64, key: &K) -> bool {
        self.expire(now_ms);
        if self.entries.iter().any(|e| e.key == *key) {
            return false;
        }
        let stats = &mut self.stats.reassembly;
        bump(&mut stats.frames);
        true
    }

    fn evict_least_recent(&mut self) {
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.last_ms)
            .map(|(index, _)| index);
        if let Some(index) = oldest {
            let entry = self.entries.swap_remove(index);
            if let Some(buf) = self.buffers.get_mut(entry.slot) {
                buf.clear();
            }
            bump(&mut self.stats.evicted);
        }
    }

    /// Drops every partial frame whose deadline (its sender's last chunk plus
    /// [`idle_ms`](Self::idle_ms)) is at or before `now_ms`, and returns how many were dropped.
    /// Calling it early, or twice, does nothing.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let idle_ms = self.idle_ms;
        let buffers = &mut self.buffers;
        let mut dropped: usize = 0;
        let kept = compact(&mut self.entries, |entry| {
            let live = now_ms < entry.last_ms.saturating_add(idle_ms);
            if !live {
                if let Some(buf) = buffers.get_mut(entry.slot) {
                    buf.clear();
                }
                dropped = dropped.saturating_add(1);
            }
            live
        });
        self.entries.truncate(kept);
        self.stats.expired = self.stats.expired.saturating_add(dropped as u64);
        dropped
    }

    /// The earliest `now_ms` at which [`expire`](Self::expire) will drop a partial frame, or
    /// `None` when nothing is pending.
    #[must_use]
    pub fn next_expiry(&self) -> Option<u64> {
        self.entries
            .iter()
            .map(|e| e.last_ms.saturating_add(self.idle_ms))
            .min()
    }

    /// Drops the partial frame of `key`, if any (for example when its connection closed).
    /// Returns whether there was one. Not counted in the stats.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(index) = self.entries.iter().position(|e| e.key == *key) else {
            return false;
        };
        let entry = self.entries.swap_remove(index);
        if let Some(buf) = self.buffers.get_mut(entry.slot) {
            buf.clear();
        }
        true
    }

    /// Drops every partial frame. Counters are kept.
    pub fn clear(&mut self) {
        for entry in &self.entries {
            if let Some(buf) = self.buffers.get_mut(entry.slot) {
                buf.clear();
            }
        }
        self.entries.clear();
    }

    /// True when `key` has bytes of an unfinished frame (or a lone trailing `C0`) buffered.
    #[must_use]
    pub fn is_pending(&self, key: &K) -> bool {
        self.pending_len(key) > 0
    }

    /// The number of bytes buffered for `key` (0 to `N`).
    #[must_use]
    pub fn pending_len(&self, key: &K) -> usize {
        self.entries
            .iter()
            .find(|e| e.key == *key)
            .and_then(|e| self.buffers.get(e.slot))
            .map_or(0, |buf| buf.len())
    }

    /// The number of senders with a partial frame pending (0 to `SENDERS`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no sender has a partial frame pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The idle time in milliseconds after which a sender's partial frame is dropped.
    #[must_use]
    pub const fn idle_ms(&self) -> u64 {
        self.idle_ms
    }

    /// Sets the idle time (default 5,000 ms). It applies to pending partial frames too.
    pub const fn set_idle_ms(&mut self, idle_ms: u64) {
        self.idle_ms = idle_ms;
    }

    /// The largest accepted body length `L`; a header declaring more is discarded.
    #[must_use]
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Sets the largest accepted body length `L` (default [`MAX_FRAME_LEN`], spec 7.3).
    pub const fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.max_frame_len = max_frame_len;
    }

    /// The counters since creation.
    #[must_use]
    pub const fn stats(&self) -> StreamTableStats {
        self.stats
    }
}

impl<K: Copy + Eq, const SENDERS: usize, const N: usize> Default for StreamTable<K, SENDERS, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, const SENDERS: usize, const N: usize> fmt::Debug for StreamTable<K, SENDERS, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTable")
            .field("senders", &SENDERS)
            .field("capacity", &N)
            .field("pending_senders", &self.entries.len())
            .field("max_frame_len", &self.max_frame_len)
            .field("idle_ms", &self.idle_ms)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The bounds [`scan`] applies.
#[derive(Clone, Copy)]
struct Limits {
    /// The largest accepted body length.
    max_frame_len: usize,
    /// The largest partial frame that may be left waiting (the buffer size).
    capacity: usize,
}

/// What the bytes at a header amount to.
enum Probe {
    /// More bytes are needed; the frame's total length once the length varint is complete.
    Wait(Option<usize>),
    /// Not a frame: discard the two header bytes and search again.
    Skip,
    /// A frame of this many bytes, header to footer, with the right footer.
    Complete(usize),
}

/// Looks at the bytes from a header on (`input` starts with `C0 8D`, or is a lone `C0`).
fn probe(input: &[u8], max_frame_len: usize) -> Probe {
    let after = input.get(HEADER.len()..).unwrap_or_default();
    let (declared, len_bytes) = match varint::decode(after) {
        Ok(decoded) => decoded,
        Err(DecodeError::TruncatedVarint) => return Probe::Wait(None),
        Err(_) => return Probe::Skip,
    };
    let Some(body) = usize::try_from(declared)
        .ok()
        .filter(|&body| body <= max_frame_len)
    else {
        return Probe::Skip;
    };
    let Some(total) = HEADER
        .len()
        .checked_add(len_bytes)
        .and_then(|n| n.checked_add(body))
        .and_then(|n| n.checked_add(FOOTER.len()))
    else {
        return Probe::Skip;
    };
    match input.get(total.saturating_sub(FOOTER.len())..total) {
        None => Probe::Wait(Some(total)),
        Some(footer) if footer == FOOTER => Probe::Complete(total),
        Some(_) => Probe::Skip,
    }
}

/// The offset of the first `C0 8D` in `input`.
fn find_header(input: &[u8]) -> Option<usize> {
    input.windows(HEADER.len()).position(|pair| pair == HEADER)
}

/// Parses `input` as far as it goes, reporting items, and returns how many bytes were consumed.
///
/// The bytes left, `input[returned..]`, are empty, a lone `C0`, or a partial frame starting
/// with `C0 8D` whose total length (when known) is at most `limits.capacity`.
fn scan(
    input: &[u8],
    limits: Limits,
    stats: &mut ReassemblerStats,
    on_frame: FrameSink<'_>,
) -> usize {
    let mut at: usize = 0;
    while let Some(rest) = input.get(at..) {
        let Some(offset) = find_header(rest) else {
            let keep = usize::from(rest.last() == Some(&HEADER_FIRST));
            stats.discard(rest.len().saturating_sub(keep));
            return input.len().saturating_sub(keep);
        };
        stats.discard(offset);
        at = at.saturating_add(offset);
        let candidate = input.get(at..).unwrap_or_default();
        match probe(candidate, limits.max_frame_len) {
            Probe::Complete(total) => {
                let bytes = candidate.get(..total).unwrap_or_default();
                // `probe` checked the header, length and footer: `split` cannot fail here,
                // and the consumer validates the body.
                let outcome = match Frame::split(bytes) {
                    Ok((frame, _)) => on_frame(frame),
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(()) => bump(&mut stats.frames),
                    Err(_) => bump(&mut stats.errors),
                }
                at = at.saturating_add(total);
            }
            Probe::Wait(total) => {
                if total.unwrap_or(candidate.len()) <= limits.capacity {
                    return at;
                }
                // It could never be completed in the buffer: drop its header and resync.
                bump(&mut stats.overflows);
                stats.discard(HEADER.len());
                at = at.saturating_add(HEADER.len());
            }
            Probe::Skip => {
                stats.discard(HEADER.len());
                at = at.saturating_add(HEADER.len());
            }
        }
    }
    input.len()
}

/// Feeds `chunk` to the stream whose pending bytes are in `buf`.
///
/// While bytes are pending, the chunk is copied in only as far as the pending frame needs (its
/// remaining bytes, or enough to read its length) and the buffer is parsed again; once the
/// buffer is empty, the rest of the chunk is parsed in place and only its tail is kept.
fn feed(
    buf: &mut VecView<u8>,
    mut chunk: &[u8],
    max_frame_len: usize,
    stats: &mut ReassemblerStats,
    on_frame: FrameSink<'_>,
) {
    let limits = Limits {
        max_frame_len,
        capacity: buf.capacity(),
    };
    while !buf.is_empty() {
        let want = match probe(buf, max_frame_len) {
            Probe::Wait(Some(total)) => total.saturating_sub(buf.len()),
            Probe::Wait(None) | Probe::Skip | Probe::Complete(_) => {
                MIN_CAPACITY.saturating_sub(buf.len())
            }
        };
        let room = buf.capacity().saturating_sub(buf.len());
        let take = want.max(1).min(room).min(chunk.len());
        let Some((head, rest)) = chunk.split_at_checked(take).filter(|_| take > 0) else {
            if chunk.is_empty() {
                return;
            }
            // Not reachable: a waiting partial frame always fits. Drop it rather than stall.
            bump(&mut stats.overflows);
            stats.discard(buf.len());
            buf.clear();
            break;
        };
        if buf.extend_from_slice(head).is_err() {
            // Not reachable: `take <= room`.
            bump(&mut stats.overflows);
            stats.discard(buf.len());
            buf.clear();
            break;
        }
        chunk = rest;
        let used = scan(buf, limits, stats, on_frame);
        consume(buf, used);
    }
    let used = scan(chunk, limits, stats, on_frame);
    let tail = chunk.get(used..).unwrap_or_default();
    if buf.extend_from_slice(tail).is_err() {
        // Not reachable: `scan` leaves at most `capacity` bytes.
        bump(&mut stats.overflows);
        stats.discard(tail.len());
    }
}

/// Removes the first `used` bytes of `buf`, moving the rest to the front.
fn consume(buf: &mut VecView<u8>, used: usize) {
    let len = buf.len();
    if used >= len {
        buf.clear();
    } else if used > 0 {
        buf.copy_within(used.., 0);
        buf.truncate(len.saturating_sub(used));
    }
}

#[cfg(test)]
mod tests;
