use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::{Reassembler, ReassemblerStats, StreamItem, StreamTable};
use crate::wire::{
    Compat, Field, FieldId, MAX_FRAME_LEN, Str, Value, encode_fields, encode_varint,
    encoded_len_of_fields,
};

/// An item with its bytes copied out: a whole frame (re-wrapped from its body) or an error kind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Frame(Vec<u8>),
    Error(&'static str),
}

fn wrap(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xC0, 0x8D];
    let mut len = [0u8; 10];
    let n = encode_varint(body.len() as u64, &mut len).unwrap();
    out.extend_from_slice(&len[..n]);
    out.extend_from_slice(body);
    out.extend_from_slice(&[0, 0]);
    out
}

fn got(item: StreamItem<'_>) -> Got {
    match item {
        StreamItem::Frame(frame) => Got::Frame(wrap(frame.body())),
        StreamItem::Error(error) => Got::Error(error.kind()),
    }
}

fn push_all<const N: usize>(stream: &mut Reassembler<N>, chunks: &[&[u8]]) -> Vec<Got> {
    let mut out = Vec::new();
    for chunk in chunks {
        stream.push(chunk, |item| out.push(got(item)));
        assert!(stream.pending_len() <= N);
    }
    out
}

fn encode(fields: &[Field<'_>]) -> Vec<u8> {
    let len = encoded_len_of_fields(fields.iter().copied(), Compat::Reference).unwrap();
    let mut out = vec![0; len];
    assert_eq!(
        encode_fields(fields.iter().copied(), Compat::Reference, &mut out),
        Ok(len)
    );
    out
}

/// An event frame (type 6) carrying `data` and, when not empty, `raw`.
fn event(data: &[u8], raw: &[u8]) -> Vec<u8> {
    let mut fields = vec![
        Field::new(FieldId::Sid, Value::Str(Str::from("AbCd1234"))).unwrap(),
        Field::new(FieldId::Type, Value::Varint(6)).unwrap(),
        Field::new(FieldId::Data, Value::Str(Str::from_bytes(data))).unwrap(),
    ];
    if !raw.is_empty() {
        fields.push(Field::new(FieldId::Raw, Value::Raw(raw)).unwrap());
    }
    encode(&fields)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const EMPTY_FRAME: [u8; 5] = [0xC0, 0x8D, 0x00, 0x00, 0x00];

// ---------------------------------------------------------------- fast path and basics

#[test]
fn whole_frames_in_one_chunk_are_parsed_in_place() {
    let a = event(b"one", b"");
    let b = event(b"two", b"");
    let chunk = cat(&[&a, &b]);
    let mut stream = Reassembler::<64>::new();
    let range = chunk.as_ptr_range();
    let mut seen = Vec::new();
    stream.push(&chunk, |item| {
        let StreamItem::Frame(frame) = item else {
            panic!("{item:?}")
        };
        // Zero-copy: the frame borrows from the chunk itself, not from the buffer.
        assert!(range.contains(&frame.body().as_ptr()));
        seen.push(wrap(frame.body()));
    });
    assert_eq!(seen, [a, b]);
    assert!(!stream.is_pending());
    assert_eq!(
        stream.stats(),
        ReassemblerStats {
            frames: 2,
            ..ReassemblerStats::default()
        }
    );
}

#[test]
fn frames_longer_than_the_buffer_are_accepted_when_whole() {
    let big = event(&[b'x'; 200], b"");
    let mut stream = Reassembler::<32>::new();
    assert_eq!(push_all(&mut stream, &[&big]), [Got::Frame(big.clone())]);
    assert_eq!(stream.stats().overflows, 0);
}

#[test]
fn only_the_unfinished_tail_is_copied() {
    let a = event(b"first", b"");
    let b = event(b"second", b"");
    let cut = 7;
    let mut stream = Reassembler::<64>::new();
    let chunk = cat(&[&a, &b[..cut]]);
    assert_eq!(push_all(&mut stream, &[&chunk]), [Got::Frame(a)]);
    assert_eq!(stream.pending_len(), cut);
    assert_eq!(push_all(&mut stream, &[&b[cut..]]), [Got::Frame(b)]);
    assert!(!stream.is_pending());
}

#[test]
fn a_frame_split_at_every_position_is_reassembled() {
    let a = event(b"hello", &[0xC0, 0x8D, 0x00, 0x00]);
    let b = event(&[b'y'; 150], b"");
    let stream_bytes = cat(&[&a, &b, &EMPTY_FRAME]);
    let expected = [
        Got::Frame(a),
        Got::Frame(b),
        Got::Frame(EMPTY_FRAME.to_vec()),
    ];
    for first in 0..=stream_bytes.len() {
        for second in first..=stream_bytes.len() {
            let (x, rest) = stream_bytes.split_at(first);
            let (y, z) = rest.split_at(second - first);
            let mut stream = Reassembler::<256>::new();
            assert_eq!(
                push_all(&mut stream, &[x, y, z]),
                expected,
                "{first} {second}"
            );
            assert!(!stream.is_pending());
            assert_eq!(stream.stats().garbage_bytes, 0);
        }
    }
}

#[test]
fn byte_by_byte_feeding_works() {
    let a = event(b"slow", b"");
    let mut stream = Reassembler::<64>::new();
    let chunks: Vec<&[u8]> = a.chunks(1).collect();
    assert_eq!(push_all(&mut stream, &chunks), [Got::Frame(a)]);
}

#[test]
fn empty_chunks_change_nothing() {
    let mut stream = Reassembler::<16>::new();
    assert_eq!(push_all(&mut stream, &[&[], &[0xC0, 0x8D], &[]]), []);
    assert_eq!(stream.pending_len(), 2);
    assert_eq!(
        push_all(&mut stream, &[&[], &[0, 0, 0]]),
        [Got::Frame(EMPTY_FRAME.to_vec())]
    );
}

#[test]
fn clear_drops_the_pending_bytes() {
    let a = event(b"abc", b"");
    let mut stream = Reassembler::<64>::new();
    push_all(&mut stream, &[&a[..10]]);
    assert_eq!(stream.pending_len(), 10);
    stream.clear();
    assert!(!stream.is_pending());
    // The rest of the frame is now garbage, and a new frame still parses.
    assert_eq!(
        push_all(&mut stream, &[&a[10..], &EMPTY_FRAME]),
        [Got::Frame(EMPTY_FRAME.to_vec())]
    );
}

// ---------------------------------------------------------------- resync

#[test]
fn garbage_before_a_header_is_discarded_and_counted() {
    let a = event(b"x", b"");
    let mut stream = Reassembler::<64>::new();
    assert_eq!(
        push_all(&mut stream, &[&cat(&[&[1, 2, 3], &a, &[4, 5]])]),
        [Got::Frame(a)]
    );
    assert_eq!(stream.stats().garbage_bytes, 5);
    assert!(!stream.is_pending());
}

#[test]
fn a_trailing_lone_c0_is_kept_for_the_next_chunk() {
    let a = event(b"x", b"");
    let mut stream = Reassembler::<64>::new();
    assert_eq!(push_all(&mut stream, &[&[0x11, 0x22, 0xC0]]), []);
    assert_eq!(stream.pending_len(), 1);
    assert_eq!(stream.stats().garbage_bytes, 2);
    assert_eq!(push_all(&mut stream, &[&a[1..]]), [Got::Frame(a.clone())]);
    assert!(!stream.is_pending());

    // A lone C0 not followed by 8D is garbage after all.
    let mut stream = Reassembler::<64>::new();
    assert_eq!(
        push_all(&mut stream, &[&[0xC0], &a]),
        [Got::Frame(a.clone())]
    );
    assert_eq!(stream.stats().garbage_bytes, 1);
    let mut stream = Reassembler::<64>::new();
    assert_eq!(push_all(&mut stream, &[&[0xC0], &[0x01, 0xC0]]), []);
    assert_eq!(stream.pending_len(), 1);
    assert_eq!(stream.stats().garbage_bytes, 2);
}

#[test]
fn only_the_exact_pair_c0_8d_is_a_header() {
    let a = event(b"x", b"");
    // c0 c0 8d: the header is the second c0 with the 8d.
    let mut stream = Reassembler::<64>::new();
    assert_eq!(
        push_all(&mut stream, &[&cat(&[&[0xC0, 0xC0], &a[1..]])]),
        [Got::Frame(a.clone())]
    );
    assert_eq!(stream.stats().garbage_bytes, 1);
    // c0 8e, 8d c0 and a c0 8d whose length runs into the real frame are all skipped.
    let mut stream = Reassembler::<64>::new();
    let chunk = cat(&[&[0xC0, 0x8E, 0x8D, 0xC0, 0xC0, 0x8D, 0x8D, 0xC0], &a]);
    assert_eq!(push_all(&mut stream, &[&chunk]), [Got::Frame(a)]);
    assert_eq!(stream.stats().garbage_bytes, 8);
}

#[test]
fn a_bad_footer_drops_the_header_and_resyncs() {
    let mut bad = event(b"bad", b"");
    let len = bad.len();
    bad[len - 1] = 0x02;
    let good = event(b"good", b"");
    let mut stream = Reassembler::<128>::new();
    assert_eq!(
        push_all(&mut stream, &[&cat(&[&bad, &good])]),
        [Got::Frame(good.clone())]
    );
    assert_eq!(stream.stats().garbage_bytes, bad.len() as u64);
    // Same, with the bad frame split so that its footer arrives in the buffered path.
    let mut stream = Reassembler::<128>::new();
    let all = cat(&[&bad, &good]);
    assert_eq!(
        push_all(&mut stream, &[&all[..len - 1], &all[len - 1..]]),
        [Got::Frame(good)]
    );
}

#[test]
fn a_body_that_fails_to_decode_is_an_error_item_and_fully_consumed() {
    // c0 8d 01 80 00 00 hangs the reference; here: truncated_varint, then the next frame.
    let good = event(b"after", b"");
    let mut stream = Reassembler::<64>::new();
    let chunk = cat(&[&[0xC0, 0x8D, 0x01, 0x80, 0x00, 0x00], &good]);
    assert_eq!(
        push_all(&mut stream, &[&chunk]),
        [Got::Error("truncated_varint"), Got::Frame(good.clone())]
    );
    // Unknown field id 16.
    let chunk = cat(&[&[0xC0, 0x8D, 0x03, 0x10, 0x01, 0x00, 0x00, 0x00], &good]);
    assert_eq!(
        push_all(&mut stream, &[&chunk[..4], &chunk[4..]]),
        [Got::Error("unknown_field"), Got::Frame(good)]
    );
    let stats = stream.stats();
    assert_eq!((stats.frames, stats.errors, stats.garbage_bytes), (2, 2, 0));
}

#[test]
fn push_frames_hands_bodies_unvalidated_and_counts_the_consumers_verdicts() {
    let good = event(b"after", b"");
    // Unknown field id 16: whole, but its body does not decode.
    let bad = [0xC0, 0x8D, 0x03, 0x10, 0x01, 0x00, 0x00, 0x00];
    let chunk = cat(&[&bad, &good]);
    let mut stream = Reassembler::<64>::new();
    let mut seen = Vec::new();
    for part in [&chunk[..5], &chunk[5..]] {
        stream.push_frames(part, |frame| {
            seen.push(frame.as_bytes().to_vec());
            crate::wire::Frame::parse(frame.as_bytes()).map(drop)
        });
    }
    assert_eq!(seen, [bad.to_vec(), good]);
    let stats = stream.stats();
    assert_eq!((stats.frames, stats.errors, stats.garbage_bytes), (1, 1, 0));
    assert!(!stream.is_pending());
}

#[test]
fn a_varint_cut_by_the_end_of_the_chunk_waits() {
    let a = event(&[b'z'; 200], b"");
    assert_eq!(&a[2..4], &[0xD7, 0x01]); // a two-byte length
    let mut stream = Reassembler::<256>::new();
    assert_eq!(push_all(&mut stream, &[&a[..3]]), []);
    assert_eq!(stream.pending_len(), 3);
    assert_eq!(push_all(&mut stream, &[&a[3..]]), [Got::Frame(a)]);
    assert!(!stream.is_pending());
    // A header followed by nine continuation bytes still waits.
    let mut stream = Reassembler::<16>::new();
    let cut = [
        0xC0, 0x8D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    ];
    assert_eq!(push_all(&mut stream, &[&cut]), []);
    assert_eq!(stream.pending_len(), 11);
}

#[test]
fn an_overflowing_length_varint_drops_the_header() {
    let good = event(b"ok", b"");
    let mut junk = vec![0xC0, 0x8D];
    junk.extend_from_slice(&[0xFF; 10]);
    junk.push(0x01);
    for chunks in [vec![cat(&[&junk, &good])], vec![junk.clone(), good.clone()]] {
        let mut stream = Reassembler::<64>::new();
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        assert_eq!(push_all(&mut stream, &chunks), [Got::Frame(good.clone())]);
        assert_eq!(stream.stats().garbage_bytes, junk.len() as u64);
        assert!(!stream.is_pending());
    }
}

#[test]
fn a_length_over_the_maximum_drops_the_header() {
    let good = event(b"ok", b"");
    // 2^30, as in the oversized-declared-length vector.
    let chunk = cat(&[&[0xC0, 0x8D, 0x80, 0x80, 0x80, 0x80, 0x04], &good]);
    let mut stream = Reassembler::<64>::new();
    assert_eq!(stream.max_frame_len(), MAX_FRAME_LEN);
    assert_eq!(push_all(&mut stream, &[&chunk]), [Got::Frame(good.clone())]);
    assert_eq!(stream.stats().garbage_bytes, 7);
    assert_eq!(stream.stats().overflows, 0);

    // A lowered maximum applies to frames that would otherwise be accepted.
    let long = event(&[b'l'; 40], b"");
    let mut stream = Reassembler::<128>::new();
    stream.set_max_frame_len(20);
    assert_eq!(
        push_all(&mut stream, &[&cat(&[&long, &good])]),
        [Got::Frame(good.clone())]
    );
    assert_eq!(stream.stats().garbage_bytes, long.len() as u64);
    // Exactly the maximum is accepted.
    let body_len = good.len() - 5;
    stream.set_max_frame_len(body_len);
    assert_eq!(push_all(&mut stream, &[&good]), [Got::Frame(good.clone())]);
    stream.set_max_frame_len(body_len - 1);
    assert_eq!(push_all(&mut stream, &[&good]), []);
}

#[test]
fn the_declared_length_governs_over_headers_inside_the_body() {
    let raw = [0xC0, 0x8D, 0x00, 0x00, 0xC0, 0x8D, 0x00, 0x00, 0x00];
    let a = event(b"c0 8d inside", &raw);
    let b = event(b"next", &raw);
    let all = cat(&[&a, &b]);
    for cut in 0..=all.len() {
        let mut stream = Reassembler::<128>::new();
        assert_eq!(
            push_all(&mut stream, &[&all[..cut], &all[cut..]]),
            [Got::Frame(a.clone()), Got::Frame(b.clone())],
            "cut at {cut}"
        );
    }
}

// ---------------------------------------------------------------- overflow of N

#[test]
fn a_partial_frame_longer_than_the_buffer_is_dropped_and_counted() {
    let big = event(&[b'b'; 100], b"");
    let good = event(b"ok", b"");
    let mut stream = Reassembler::<64>::new();
    // The first half of a 100+ byte frame: its length is known, it cannot fit.
    assert_eq!(push_all(&mut stream, &[&big[..50]]), []);
    assert_eq!(stream.stats().overflows, 1);
    assert!(!stream.is_pending());
    // The rest of it is garbage; the following frame is found.
    assert_eq!(
        push_all(&mut stream, &[&cat(&[&big[50..], &good])]),
        [Got::Frame(good)]
    );
    assert_eq!(stream.stats().garbage_bytes, big.len() as u64);
    assert_eq!(stream.stats().overflows, 1);
}

#[test]
fn an_overflow_detected_in_the_buffered_path_resyncs_in_the_same_chunk() {
    let big = event(&[b'b'; 100], b"");
    let good = event(b"ok", b"");
    let mut stream = Reassembler::<64>::new();
    // Only the header is buffered: the length is unknown until the next chunk.
    assert_eq!(push_all(&mut stream, &[&big[..2]]), []);
    assert_eq!(stream.pending_len(), 2);
    // Once the length is read the frame is dropped; the frame after it in the chunk is found.
    let chunk = cat(&[&big[2..30], &good]);
    assert_eq!(push_all(&mut stream, &[&chunk]), [Got::Frame(good)]);
    assert_eq!(stream.stats().overflows, 1);
    assert_eq!(stream.stats().garbage_bytes, 30);
}

#[test]
fn a_frame_of_exactly_the_buffer_size_is_reassembled() {
    let frame = event(&[b'e'; 45], b"");
    assert_eq!(frame.len(), 64);
    for cut in 0..=frame.len() {
        let mut stream = Reassembler::<64>::new();
        assert_eq!(
            push_all(&mut stream, &[&frame[..cut], &frame[cut..]]),
            [Got::Frame(frame.clone())]
        );
        assert_eq!(stream.stats().overflows, 0);
    }
    let longer = event(&[b'e'; 46], b"");
    let mut stream = Reassembler::<64>::new();
    assert_eq!(push_all(&mut stream, &[&longer[..10], &longer[10..]]), []);
    assert_eq!(stream.stats().overflows, 1);
}

// ---------------------------------------------------------------- StreamTable

type Table = StreamTable<u8, 2, 64>;

fn table_push(table: &mut Table, now: u64, key: u8, chunk: &[u8]) -> Vec<Got> {
    let mut out = Vec::new();
    table.push(now, key, chunk, |item| out.push(got(item)));
    out
}

#[test]
fn senders_are_reassembled_separately() {
    let a = event(b"from a", b"");
    let b = event(b"from b", b"");
    let mut table = Table::new();
    assert_eq!(table_push(&mut table, 0, 1, &a[..9]), []);
    assert_eq!(table_push(&mut table, 1, 2, &b[..4]), []);
    assert_eq!(table.len(), 2);
    assert_eq!(table.pending_len(&1), 9);
    assert_eq!(table.pending_len(&2), 4);
    assert_eq!(table_push(&mut table, 2, 2, &b[4..]), [Got::Frame(b)]);
    assert_eq!(table_push(&mut table, 3, 1, &a[9..]), [Got::Frame(a)]);
    assert!(table.is_empty());
    assert_eq!(table.next_expiry(), None);
    assert_eq!(table.stats().reassembly.frames, 2);
}

fn table_datagram(table: &mut Table, now: u64, key: u8, datagram: &[u8]) -> Vec<Got> {
    let mut out = Vec::new();
    table.push_datagram(now, key, datagram, |item| out.push(got(item)));
    out
}

#[test]
fn a_whole_datagram_passes_a_partial_frame_pending_from_its_key() {
    // One datagram declares 50 bytes and brings 3: a stale partial, or an attacker's.
    let bogus = [0xC0, 0x8D, 50, 1, 2, 3];
    let a = event(b"from a", b"");
    let b = event(b"from b", b"");
    let mut table = Table::new();
    assert_eq!(table_datagram(&mut table, 0, 1, &bogus), []);
    assert_eq!(table.pending_len(&1), 6);
    // Whole frames from the same key (other nodes of the same host) are not held behind it.
    assert_eq!(
        table_datagram(&mut table, 1, 1, &a),
        [Got::Frame(a.clone())]
    );
    assert_eq!(table_datagram(&mut table, 2, 1, &b), [Got::Frame(b)]);
    assert_eq!(
        table.pending_len(&1),
        6,
        "the partial frame stays as it was"
    );
    // Its idle time was not renewed by them: it expires 5 s after its own last chunk.
    assert_eq!(table.next_expiry(), Some(5_000));
    // A chunk that does not start a whole frame still continues it.
    let long = event(&[b'x'; 40], b"");
    let mut table = Table::new();
    assert_eq!(table_datagram(&mut table, 0, 1, &long[..20]), []);
    assert_eq!(
        table_datagram(&mut table, 1, 1, &long[20..]),
        [Got::Frame(long)]
    );
    // With `push`, the whole frames were swallowed by the pending one.
    let mut table = Table::new();
    assert_eq!(table_push(&mut table, 0, 1, &bogus), []);
    assert_eq!(table_push(&mut table, 1, 1, &a), []);
}

#[test]
fn whole_frames_take_no_slot() {
    let a = event(b"whole", b"");
    let mut table = Table::new();
    for key in 0..10 {
        assert_eq!(
            table_push(&mut table, 0, key, &cat(&[&a, &a])),
            [Got::Frame(a.clone()), Got::Frame(a.clone())]
        );
    }
    assert!(table.is_empty());
    assert_eq!(table.stats().evicted, 0);
}

#[test]
fn the_least_recently_active_sender_is_evicted_when_full() {
    let f = event(b"lru", b"");
    let mut table = Table::new();
    table_push(&mut table, 10, 1, &f[..5]);
    table_push(&mut table, 20, 2, &f[..5]);
    table_push(&mut table, 30, 1, &f[5..8]); // sender 1 is now the most recent
    assert_eq!(table.pending_len(&1), 8);
    table_push(&mut table, 40, 3, &f[..6]);
    assert_eq!(table.stats().evicted, 1);
    assert_eq!(table.stats().dropped_partials(), 1);
    assert!(!table.is_pending(&2));
    assert_eq!(table.pending_len(&1), 8);
    assert_eq!(table.pending_len(&3), 6);
    assert_eq!(
        table_push(&mut table, 41, 1, &f[8..]),
        [Got::Frame(f.clone())]
    );
    assert_eq!(
        table_push(&mut table, 42, 3, &f[6..]),
        [Got::Frame(f.clone())]
    );
    // Sender 2's rest is garbage now.
    assert_eq!(table_push(&mut table, 43, 2, &f[5..]), []);
    assert!(table.is_empty());
}

#[test]
fn an_idle_partial_frame_expires() {
    let f = event(b"idle", b"");
    let mut table = Table::new();
    assert_eq!(table.idle_ms(), 5_000);
    table_push(&mut table, 1_000, 7, &f[..10]);
    assert_eq!(table.next_expiry(), Some(6_000));
    table_push(&mut table, 3_000, 7, &f[10..12]);
    assert_eq!(table.next_expiry(), Some(8_000));
    assert_eq!(table.expire(7_999), 0);
    assert_eq!(table.pending_len(&7), 12);
    assert_eq!(table.expire(8_000), 1);
    assert_eq!(table.expire(8_000), 0);
    assert!(table.is_empty());
    assert_eq!(table.next_expiry(), None);
    assert_eq!(table.stats().expired, 1);
    // A push after the deadline drops the stale partial first: the rest is garbage.
    table_push(&mut table, 10_000, 7, &f[..10]);
    assert_eq!(table_push(&mut table, 15_000, 7, &f[10..]), []);
    assert_eq!(table.stats().expired, 2);
    // Within the idle time it completes.
    table.set_idle_ms(100);
    table_push(&mut table, 20_000, 7, &f[..10]);
    assert_eq!(table_push(&mut table, 20_099, 7, &f[10..]), [Got::Frame(f)]);
}

#[test]
fn remove_and_clear_drop_partial_frames() {
    let f = event(b"conn", b"");
    let mut table = Table::new();
    table_push(&mut table, 0, 1, &f[..3]);
    table_push(&mut table, 0, 2, &f[..3]);
    assert!(table.remove(&1));
    assert!(!table.remove(&1));
    assert_eq!(table.len(), 1);
    table.clear();
    assert!(table.is_empty());
    // Slots are reusable afterwards.
    table_push(&mut table, 0, 3, &f[..3]);
    table_push(&mut table, 0, 4, &f[..3]);
    assert_eq!(table.len(), 2);
    assert_eq!(table.stats().evicted, 0);
    assert_eq!(table_push(&mut table, 0, 4, &f[3..]), [Got::Frame(f)]);
}

#[test]
fn table_overflow_and_max_frame_len_apply_per_sender() {
    let big = event(&[b'b'; 100], b"");
    let mut table = Table::new();
    assert_eq!(table_push(&mut table, 0, 1, &big[..50]), []);
    assert_eq!(table.stats().reassembly.overflows, 1);
    assert!(table.is_empty());
    assert_eq!(
        table_push(&mut table, 0, 1, &big),
        [Got::Frame(big.clone())]
    );
    table.set_max_frame_len(10);
    assert_eq!(table.max_frame_len(), 10);
    assert_eq!(table_push(&mut table, 0, 1, &big), []);
}

#[test]
#[cfg(target_pointer_width = "64")]
fn sizes_are_as_documented() {
    use core::mem::size_of;
    assert_eq!(size_of::<Reassembler<4096>>(), 4_144);
    assert_eq!(size_of::<Reassembler<65_536>>(), 65_584);
    assert_eq!(size_of::<std::net::SocketAddr>(), 32);
    type Small = StreamTable<std::net::SocketAddr, 8, 4096>;
    type Mid = StreamTable<std::net::SocketAddr, 16, 10_240>;
    type Server = StreamTable<std::net::SocketAddr, 256, 65_536>;
    let formula =
        |senders: usize, n: usize, key: usize| senders * (n + 8) + senders * (key + 16) + 72;
    assert_eq!(size_of::<Small>(), formula(8, 4096, 32));
    assert_eq!(size_of::<Small>(), 33_288);
    assert_eq!(size_of::<Mid>(), 164_808);
    assert_eq!(size_of::<Server>(), 16_791_624);
    assert_eq!(size_of::<Server>(), formula(256, 65_536, 32));
}

// ---------------------------------------------------------------- properties

/// Random bytes with every `c0 8d` pair broken up.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0xC0u8), Just(0x8Du8), Just(0x00u8), any::<u8>()],
        0..24,
    )
    .prop_map(|mut bytes| {
        for i in 1..bytes.len() {
            if bytes[i - 1] == 0xC0 && bytes[i] == 0x8D {
                bytes[i] = 0x8C;
            }
        }
        bytes
    })
}

/// Bytes rich in header and footer bytes.
fn noisy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(0xC0u8),
            3 => Just(0x8Du8),
            3 => Just(0x00u8),
            1 => 0x01u8..0x10,
            2 => any::<u8>(),
        ],
        0..max,
    )
}

fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 0..100),
        noisy(60),
        0u64..9,
    )
        .prop_map(|(data, raw, kind)| {
            let mut fields = vec![
                Field::new(FieldId::Type, Value::Varint(kind)).unwrap(),
                Field::new(FieldId::Data, Value::Str(Str::from_bytes(&data))).unwrap(),
            ];
            if !raw.is_empty() {
                fields.push(Field::new(FieldId::Raw, Value::Raw(&raw)).unwrap());
            }
            encode(&fields)
        })
}

/// Splits `bytes` at the given (unsorted, possibly repeated) cut points.
fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        out.push(bytes[start..cut].to_vec());
        start = cut;
    }
    out.push(bytes[start..].to_vec());
    out
}

fn run<const N: usize>(stream: &mut Reassembler<N>, chunks: &[Vec<u8>]) -> Vec<Got> {
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    push_all(stream, &chunks)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_of_frames_and_garbage_yields_the_frames_in_order(
        parts in prop::collection::vec((garbage(), valid_frame()), 0..8),
        tail in garbage(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        let mut garbage_len = tail.len();
        for (junk, frame) in &parts {
            bytes.extend_from_slice(junk);
            bytes.extend_from_slice(frame);
            garbage_len += junk.len();
            expected.push(Got::Frame(frame.clone()));
        }
        bytes.extend_from_slice(&tail);
        let lone_c0 = tail.last() == Some(&0xC0);

        let mut stream = Reassembler::<256>::new();
        let got = run(&mut stream, &chunked(&bytes, &cuts));
        prop_assert_eq!(got, expected);
        prop_assert_eq!(stream.pending_len(), usize::from(lone_c0));
        let stats = stream.stats();
        prop_assert_eq!(stats.frames, parts.len() as u64);
        prop_assert_eq!((stats.errors, stats.overflows), (0, 0));
        prop_assert_eq!(stats.garbage_bytes, (garbage_len - usize::from(lone_c0)) as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_within_the_buffer(
        bytes in noisy(400),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        max_frame_len in prop_oneof![Just(MAX_FRAME_LEN), 0usize..64],
    ) {
        let mut stream = Reassembler::<32>::new();
        stream.set_max_frame_len(max_frame_len);
        for chunk in chunked(&bytes, &cuts) {
            stream.push(&chunk, |_| {});
            prop_assert!(stream.pending_len() <= 32);
        }
        let stats = stream.stats();
        prop_assert!(stats.garbage_bytes <= bytes.len() as u64);
    }

    /// With the maximum body length such that every accepted frame fits in the buffer, the
    /// result does not depend on how the bytes were cut, whatever the bytes.
    #[test]
    fn results_do_not_depend_on_chunking_when_frames_fit(
        bytes in noisy(400),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut whole = Reassembler::<48>::new();
        whole.set_max_frame_len(48 - 14);
        let expected = run(&mut whole, core::slice::from_ref(&bytes));
        let mut split = Reassembler::<48>::new();
        split.set_max_frame_len(48 - 14);
        let got = run(&mut split, &chunked(&bytes, &cuts));
        prop_assert_eq!(got, expected);
        prop_assert_eq!(split.stats(), whole.stats());
        prop_assert_eq!(split.pending_len(), whole.pending_len());
        prop_assert_eq!(whole.stats().overflows, 0);
    }

    /// A table fed two interleaved senders gives each sender's items in the order a
    /// reassembler of its own would.
    #[test]
    fn a_table_matches_one_reassembler_per_sender(
        a in prop::collection::vec((garbage(), valid_frame()), 0..4),
        b in prop::collection::vec((garbage(), valid_frame()), 0..4),
        cuts_a in prop::collection::vec(any::<usize>(), 0..8),
        cuts_b in prop::collection::vec(any::<usize>(), 0..8),
        order in prop::collection::vec(any::<bool>(), 0..24),
    ) {
        let flat = |parts: &[(Vec<u8>, Vec<u8>)]| -> Vec<u8> {
            parts.iter().flat_map(|(junk, frame)| junk.iter().chain(frame)).copied().collect()
        };
        let streams = [flat(&a), flat(&b)];
        let chunks = [chunked(&streams[0], &cuts_a), chunked(&streams[1], &cuts_b)];
        let mut table = StreamTable::<u8, 2, 256>::new();
        let mut got: [Vec<Got>; 2] = [Vec::new(), Vec::new()];
        let mut next = [0usize, 0];
        let mut order = order.into_iter();
        while next[0] < chunks[0].len() || next[1] < chunks[1].len() {
            let pick = order.next().unwrap_or(false);
            let who = if next[usize::from(pick)] < chunks[usize::from(pick)].len() {
                usize::from(pick)
            } else {
                usize::from(!pick)
            };
            let out = &mut got[who];
            table.push(0, who as u8, &chunks[who][next[who]], |item| out.push(got_item(item)));
            next[who] += 1;
            prop_assert!(table.len() <= 2);
        }
        for who in 0..2 {
            let mut alone = Reassembler::<256>::new();
            let expected = run(&mut alone, &chunks[who]);
            prop_assert_eq!(&got[who], &expected);
            prop_assert_eq!(table.pending_len(&(who as u8)), alone.pending_len());
        }
        prop_assert_eq!(table.stats().evicted, 0);
    }
}

fn got_item(item: StreamItem<'_>) -> Got {
    got(item)
}
