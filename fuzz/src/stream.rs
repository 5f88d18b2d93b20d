//! Body of the `stream` target.
//!
//! Input layout ([`crate::bytes`]): chunks until the input ends, each `key: u8` then
//! `bytes: long_bytes`. The key's bits:
//!
//! * `0x03`: the sender (0 to 3), for the [`StreamTable`] checks;
//! * `0x7C >> 2`: a number 0 to 31, used as a time step and as a cut size;
//! * `0x80`: in the embedded-frames check, this chunk stands for a valid frame (its bytes
//!   when they are exactly one frame, else a frame built from them) rather than garbage; in
//!   the bounds check, an empty chunk with this bit removes the sender from the table.

use arbitrary::Unstructured;
use cluster_core::wire::{
    Compat, DecodeError, FOOTER, Frame, HEADER, Reassembler, ReassemblerStats, StreamItem,
    StreamTable, encode_varint,
};

use crate::bytes::{Reader, Writer};
use crate::frames::{encode_owned, read_fields};

/// One chunk of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Sender, step and frame flag (see the module docs).
    pub key: u8,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Chunk {
    fn sender(&self) -> u8 {
        self.key & 0x03
    }

    fn step(&self) -> u8 {
        (self.key >> 2) & 0x1F
    }

    fn is_frame(&self) -> bool {
        self.key & 0x80 != 0
    }
}

/// Reads the chunks of an input.
pub fn read_chunks(data: &[u8]) -> Vec<Chunk> {
    let mut u = Unstructured::new(data);
    let mut r = Reader::new(&mut u);
    let mut chunks = Vec::new();
    while !r.is_empty() {
        let key = r.u8();
        let bytes = r.long_bytes();
        chunks.push(Chunk { key, bytes });
    }
    chunks
}

/// Writes chunks in the layout [`read_chunks`] reads (for the seed corpus).
pub fn write_chunks(chunks: &[Chunk]) -> Vec<u8> {
    let mut w = Writer::default();
    for chunk in chunks {
        w.u8(chunk.key);
        w.long_bytes(&chunk.bytes);
    }
    w.out
}

/// A small buffer: overflows and resyncs happen often.
const SMALL: usize = 16;
/// A buffer larger than any stream compared: nothing can overflow it.
const BIG: usize = 16_384;

/// What a stream produced, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Frame(Vec<u8>),
    Error(DecodeError),
}

fn record(items: &mut Vec<Item>) -> impl FnMut(StreamItem<'_>) + '_ {
    |item| {
        items.push(match item {
            StreamItem::Frame(frame) => {
                check_frame(&frame);
                Item::Frame(frame.body().to_vec())
            }
            StreamItem::Error(e) => Item::Error(e),
        })
    }
}

/// A reported frame is complete and validated: its canonical encoding parses to the same
/// fields.
fn check_frame(frame: &Frame<'_>) {
    let body = frame.body();
    let mut bytes = HEADER.to_vec();
    let mut len = [0u8; 10];
    let used = encode_varint(body.len() as u64, &mut len).expect("10 bytes hold any varint");
    bytes.extend_from_slice(&len[..used]);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&FOOTER);
    let (again, again_used) = Frame::parse(&bytes).expect("a reported frame is valid");
    assert_eq!(again_used, bytes.len());
    assert!(again.fields().eq(frame.fields()));
}

fn check_stats_grow(before: ReassemblerStats, after: ReassemblerStats) {
    assert!(after.frames >= before.frames);
    assert!(after.errors >= before.errors);
    assert!(after.garbage_bytes >= before.garbage_bytes);
    assert!(after.overflows >= before.overflows);
}

/// See [`crate::stream()`].
pub fn run(data: &[u8]) {
    let chunks = read_chunks(data);
    small_buffers_stay_bounded(&chunks);
    let total: usize = chunks.iter().map(|c| c.bytes.len()).sum();
    if total <= BIG {
        chunking_does_not_matter(&chunks);
        senders_are_independent(&chunks);
    }
    embedded_frames_are_found(&chunks);
}

/// Any stream, any chunking, any senders: no panic, never more than `N` bytes pending, and
/// counters that only grow.
fn small_buffers_stay_bounded(chunks: &[Chunk]) {
    let mut stream = Reassembler::<SMALL>::new();
    let mut table = StreamTable::<u8, 2, SMALL>::new();
    table.set_idle_ms(5_000);
    let mut now: u64 = 0;
    let mut items = Vec::new();
    let mut table_items = Vec::new();
    for chunk in chunks {
        let before = stream.stats();
        stream.push(&chunk.bytes, record(&mut items));
        assert!(stream.pending_len() <= SMALL, "{stream:?}");
        assert_eq!(stream.is_pending(), stream.pending_len() > 0);
        check_stats_grow(before, stream.stats());

        now += u64::from(chunk.step()) * 500;
        if chunk.bytes.is_empty() && chunk.is_frame() {
            // An empty flagged chunk closes the sender's connection.
            let had = table.is_pending(&chunk.sender());
            assert_eq!(table.remove(&chunk.sender()), had);
            assert_eq!(table.pending_len(&chunk.sender()), 0);
            continue;
        }
        let before = table.stats();
        table.push(now, chunk.sender(), &chunk.bytes, record(&mut table_items));
        let after = table.stats();
        check_stats_grow(before.reassembly, after.reassembly);
        assert!(after.evicted >= before.evicted && after.expired >= before.expired);
        assert!(table.len() <= 2);
        for sender in 0..4 {
            assert!(table.pending_len(&sender) <= SMALL);
        }
        assert_eq!(table.next_expiry().is_none(), table.is_empty());
        if let Some(deadline) = table.next_expiry() {
            assert!(deadline > now, "an expired partial frame survived a push");
        }
        if chunk.key & 0x40 != 0 {
            // Sometimes ask for the expiry explicitly, at the deadline.
            if let Some(deadline) = table.next_expiry() {
                now = deadline;
                assert!(table.expire(now) >= 1);
                assert!(table.next_expiry().is_none_or(|d| d > now));
            }
        }
    }
    // The counters count exactly what was reported.
    let stats = stream.stats();
    assert_eq!(stats.frames + stats.errors, items.len() as u64);
    let stats = table.stats().reassembly;
    assert_eq!(stats.frames + stats.errors, table_items.len() as u64);
}

/// With a buffer larger than the stream nothing overflows, so chunking cannot change what is
/// produced: compare the chunked stream with the whole stream pushed at once, through a
/// [`Reassembler`] and a one-sender [`StreamTable`].
fn chunking_does_not_matter(chunks: &[Chunk]) {
    let whole: Vec<u8> = chunks
        .iter()
        .flat_map(|c| c.bytes.iter().copied())
        .collect();
    let mut expected = Vec::new();
    let mut once = Box::new(Reassembler::<BIG>::new());
    once.push(&whole, record(&mut expected));

    let mut items = Vec::new();
    let mut stream = Box::new(Reassembler::<BIG>::new());
    for chunk in chunks {
        stream.push(&chunk.bytes, record(&mut items));
    }
    assert_eq!(items, expected, "chunking changed the items");
    assert_eq!(stream.pending_len(), once.pending_len());
    let (a, b) = (stream.stats(), once.stats());
    assert_eq!(
        (a.frames, a.errors, a.overflows),
        (b.frames, b.errors, b.overflows)
    );

    let mut items = Vec::new();
    let mut table = Box::new(StreamTable::<u8, 1, BIG>::new());
    for chunk in chunks {
        table.push(0, 7, &chunk.bytes, record(&mut items));
    }
    assert_eq!(
        items, expected,
        "a one-sender table differs from a reassembler"
    );
    assert_eq!(table.pending_len(&7), once.pending_len());
}

/// With a slot per sender and no expiry, interleaving senders changes nothing: each sender's
/// items are those of its own stream pushed at once.
fn senders_are_independent(chunks: &[Chunk]) {
    let mut table = Box::new(StreamTable::<u8, 4, BIG>::new());
    let mut items: [Vec<Item>; 4] = Default::default();
    for chunk in chunks {
        let sender = chunk.sender();
        table.push(
            0,
            sender,
            &chunk.bytes,
            record(&mut items[usize::from(sender)]),
        );
    }
    assert_eq!(table.stats().evicted, 0);
    for (sender, items) in (0u8..).zip(&items) {
        let whole: Vec<u8> = chunks
            .iter()
            .filter(|c| c.sender() == sender)
            .flat_map(|c| c.bytes.iter().copied())
            .collect();
        let mut expected = Vec::new();
        let mut once = Box::new(Reassembler::<BIG>::new());
        once.push(&whole, record(&mut expected));
        assert_eq!(items, &expected, "sender {sender}'s items changed");
        assert_eq!(table.pending_len(&sender), once.pending_len());
    }
}

/// Valid frames between garbage that holds no `c0 8d` are all found, in order, however the
/// stream is cut.
fn embedded_frames_are_found(chunks: &[Chunk]) {
    let mut whole: Vec<u8> = Vec::new();
    let mut expected = Vec::new();
    for chunk in chunks {
        if chunk.is_frame() {
            let Some(frame) = as_frame(&chunk.bytes) else {
                continue;
            };
            let (parsed, _) = Frame::parse(&frame).expect("as_frame gives valid frames");
            expected.push(Item::Frame(parsed.body().to_vec()));
            whole.extend_from_slice(&frame);
        } else {
            for &byte in &chunk.bytes {
                // No `c0 8d` in garbage, also across garbage chunks. Frames end in `00 00`.
                let byte = if byte == HEADER[1] && whole.last() == Some(&HEADER[0]) {
                    byte.wrapping_add(1)
                } else {
                    byte
                };
                whole.push(byte);
            }
        }
    }
    if whole.is_empty() {
        return;
    }
    // Cut sizes 1 to 32 from the keys, in turn.
    let cuts: Vec<usize> = chunks.iter().map(|c| usize::from(c.step()) + 1).collect();

    let mut items = Vec::new();
    let mut stream = Box::new(Reassembler::<BIG>::new());
    let mut table = Box::new(StreamTable::<u8, 1, BIG>::new());
    let mut table_items = Vec::new();
    let mut rest = &whole[..];
    for cut in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at((*cut).min(rest.len()));
        stream.push(piece, record(&mut items));
        table.push(0, 1, piece, record(&mut table_items));
        rest = after;
    }
    assert_eq!(items, expected, "embedded frames were lost or changed");
    assert_eq!(
        table_items, expected,
        "embedded frames were lost in a table"
    );
    // At most a trailing lone `c0` of garbage is left.
    assert!(stream.pending_len() <= 1);
    assert!(table.pending_len(&1) <= 1);
}

/// The chunk's bytes when they are exactly one valid frame no longer than [`BIG`], else a frame
/// built from them as fields; `None` when that one is too long.
fn as_frame(bytes: &[u8]) -> Option<Vec<u8>> {
    if let Ok((_, used)) = Frame::parse(bytes)
        && used == bytes.len()
        && used <= BIG
    {
        return Some(bytes.to_vec());
    }
    let mut u = Unstructured::new(bytes);
    let fields = read_fields(&mut Reader::new(&mut u));
    let frame = encode_owned(&fields, Compat::Unchecked).expect("unchecked encoding succeeds");
    (frame.len() <= BIG).then_some(frame)
}
