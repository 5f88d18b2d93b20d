//! Sealed frames cannot confuse or stall a reference node listening on the same group and
//! port.
//!
//! The reference's stream parser and decoder are modelled here as spec 2.4 and 2.5 describe
//! them: one buffer for the whole UDP socket; bytes before the first `C0 8D` discarded; the
//! length read (skipping a `C0 8D` where a varint starts, the header-skip quirk); a cut of
//! `start + L + 2` bytes that is a frame when it ends `00 00`, otherwise thrown away with a
//! resync on the next `C0 8D`; a decoder that stops at the first field that rules the frame
//! out (own sid, a filter naming nobody here) and hangs on a truncated varint. The spec leaves
//! one detail open, whether a failed cut discards its whole length or only its header before
//! the search resumes; both readings are run.
//!
//! The model is fed traffic of sealing nodes mixed with ordinary frames, whole and with
//! datagrams lost, and checked: sealed frames are always ignored at their empty filter, the
//! decoder never hangs, every header the parser stops at is a real one, and the ordinary
//! frames after a loss are decoded again. A control frame built like a sealed one but without
//! the stuffing shows what the stuffing prevents: after its first datagram is lost, the parser
//! takes a `C0 8D` inside the ciphertext for a header and swallows everything after it.
#![cfg(feature = "seal")]

use cluster_core::wire::MAX_DATAGRAM;
use cluster_core::{Config, DefaultPolicy, Instant, Key, KeyRing, Node, SendRequest, Targets};

const HID: &str = "02:fc:00:00:00:01";
const REFERENCE_SID: &[u8] = b"Zz998877";

/// How the reference's decoder ended on one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decoded {
    /// Handled as a message of this type.
    Handled(u64),
    /// Stopped at a filter naming none of the node's sid, hid or tags: ignored silently.
    FilteredOut,
    /// Stopped at its own sid.
    OwnEcho,
    /// An unknown field id or a length past the end: an error logged, the frame dropped.
    Error,
    /// A varint cut by the end of the body: the reference loops forever.
    Hang,
}

/// What the parser did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Frame(Decoded),
    /// A cut of the declared length did not end `00 00`.
    BadCut,
}

/// The two readings of "thrown away" after a failed cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resync {
    /// The whole cut is discarded.
    DiscardCut,
    /// Only the bogus header is stripped; the search resumes inside the cut.
    StripHeader,
}

/// The reference's receive side for `c`, per spec 2.4 and 2.5.
struct ReferenceNode {
    resync: Resync,
    buf: Vec<u8>,
    /// Parallel to `buf`: true where a frame really starts.
    real_start: Vec<bool>,
    steps: Vec<Step>,
    /// Headers the parser stopped at that were not the start of a frame.
    false_headers: usize,
    /// The header at the front of `buf` was already looked at.
    front_checked: bool,
}

impl ReferenceNode {
    fn new(resync: Resync) -> Self {
        Self {
            resync,
            buf: Vec::new(),
            real_start: Vec::new(),
            steps: Vec::new(),
            false_headers: 0,
            front_checked: false,
        }
    }

    /// Appends a datagram; `starts` marks the offsets in it where a frame starts.
    fn receive(&mut self, datagram: &[u8], starts: &[usize]) {
        let base = self.buf.len();
        self.buf.extend_from_slice(datagram);
        self.real_start.resize(self.buf.len(), false);
        for &s in starts {
            self.real_start[base + s] = true;
        }
        self.parse();
    }

    fn drain(&mut self, n: usize) {
        if n > 0 {
            self.front_checked = false;
        }
        self.buf.drain(..n);
        self.real_start.drain(..n);
    }

    fn parse(&mut self) {
        loop {
            let Some(at) = self.buf.windows(2).position(|w| w == [0xC0, 0x8D]) else {
                let keep = usize::from(self.buf.last() == Some(&0xC0));
                self.drain(self.buf.len() - keep);
                return;
            };
            self.drain(at);
            if !self.front_checked && !self.real_start[0] {
                self.false_headers += 1;
            }
            self.front_checked = true;
            let Some((declared, len_bytes)) = read_varint(&self.buf[2..]) else {
                return; // the length is not all here yet: wait
            };
            let start = 2 + len_bytes;
            let Some(total) = usize::try_from(declared)
                .ok()
                .and_then(|l| l.checked_add(start + 2))
            else {
                return; // a length no buffer reaches: the reference waits forever
            };
            if self.buf.len() < total {
                return;
            }
            if self.buf[total - 2..total] == [0, 0] {
                let body = self.buf[start..total - 2].to_vec();
                self.steps.push(Step::Frame(decode(&body)));
                self.drain(total);
            } else {
                self.steps.push(Step::BadCut);
                match self.resync {
                    Resync::DiscardCut => self.drain(total),
                    Resync::StripHeader => {}
                }
                let strip = self
                    .buf
                    .iter()
                    .take_while(|b| **b == 0xC0 || **b == 0x8D)
                    .count();
                self.drain(strip);
            }
        }
    }

    fn handled(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Frame(Decoded::Handled(_))))
            .count()
    }

    fn count(&self, what: &Decoded) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Frame(d) if d == what))
            .count()
    }
}

/// A varint as the reference reads it: a `C0 8D` where it starts is skipped (the
/// header-skip quirk). `None` when the bytes end inside it.
fn read_varint(input: &[u8]) -> Option<(u64, usize)> {
    let skip = if input.starts_with(&[0xC0, 0x8D]) {
        2
    } else {
        0
    };
    let mut value: u64 = 0;
    for (i, &byte) in input.get(skip..)?.iter().enumerate() {
        value |= u64::from(byte & 0x7F)
            .checked_shl(7 * i as u32)
            .unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some((value, skip + i + 1));
        }
    }
    None
}

/// The reference decoder with its early stops, for a node of sid `Zz998877` on `HID` with
/// no tags.
fn decode(body: &[u8]) -> Decoded {
    let mut rest = body;
    let mut kind = None;
    while !rest.is_empty() {
        let Some((id, n)) = read_varint(rest) else {
            return Decoded::Hang;
        };
        rest = &rest[n..];
        match id {
            1 | 2 | 5 | 6 => {
                let Some((value, n)) = read_varint(rest) else {
                    return Decoded::Hang;
                };
                if id == 1 {
                    kind = Some(value);
                }
                rest = &rest[n..];
            }
            3 | 4 | 8 | 9 | 10 | 11 | 15 => {
                let Some((len, n)) = read_varint(rest) else {
                    return Decoded::Hang;
                };
                let Some(value) = usize::try_from(len)
                    .ok()
                    .and_then(|len| rest.get(n..n.checked_add(len)?))
                else {
                    return Decoded::Error;
                };
                if id == 4 && value == REFERENCE_SID {
                    return Decoded::OwnEcho;
                }
                rest = &rest[n + value.len()..];
            }
            7 | 12 | 14 => {
                let Some((count, n)) = read_varint(rest) else {
                    return Decoded::Hang;
                };
                rest = &rest[n..];
                let mut names_us = false;
                for _ in 0..count {
                    let Some((len, n)) = read_varint(rest) else {
                        return Decoded::Hang;
                    };
                    let Some(item) = usize::try_from(len)
                        .ok()
                        .and_then(|len| rest.get(n..n.checked_add(len)?))
                    else {
                        return Decoded::Error;
                    };
                    names_us |= item == REFERENCE_SID || item == HID.as_bytes();
                    rest = &rest[n + item.len()..];
                }
                if id == 14 && !names_us {
                    return Decoded::FilteredOut;
                }
            }
            13 => {
                if rest.is_empty() {
                    return Decoded::Hang;
                }
                rest = &rest[1..];
            }
            _ => return Decoded::Error,
        }
    }
    kind.map_or(Decoded::Error, Decoded::Handled)
}

type BigNode = Node<DefaultPolicy, 8, 16_384>;

fn node(seed: u64, keys: Option<KeyRing>) -> Box<BigNode> {
    let mut config = Config::lan_fast();
    config.remote = true;
    let mut node = Box::new(BigNode::new(config, HID, DefaultPolicy, seed, Instant::ZERO).unwrap());
    node.set_keys(keys);
    node
}

/// Everything `node` has to send: its join frames and broadcast events of these sizes.
fn frames_of(node: &mut BigNode, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; BigNode::TRANSMIT_BUF];
    let mut frames = Vec::new();
    let now = Instant::ZERO;
    let none = Targets::default();
    for &size in sizes {
        let data = vec![b'x'; size];
        let mut request = SendRequest::new(none, &data);
        request.broadcast = Some(true);
        node.send(now, &request).unwrap();
        while let Some(t) = node.poll_transmit(now, &mut buf) {
            frames.push(buf[..t.len].to_vec());
        }
    }
    frames
}

/// A sealing node's frames, ordinary frames of a second node, interleaved.
fn traffic(seed: u64) -> Vec<(bool, Vec<u8>)> {
    let ring = KeyRing::new(Key::new(3, [seed as u8; 32]));
    let sizes: Vec<usize> = (0..24)
        .map(|i| (i * 997 + seed as usize * 131) % 9_000)
        .collect();
    let sealed = frames_of(&mut node(seed, Some(ring)), &sizes);
    let plain = frames_of(&mut node(seed + 1000, None), &sizes);
    let mut out = Vec::new();
    for (s, p) in sealed.into_iter().zip(plain) {
        out.push((true, s));
        out.push((false, p));
    }
    out
}

/// Datagrams of `frames`: one frame per datagram, frames over 4096 bytes in 4096-byte chunks,
/// each with the offsets where a frame starts.
fn datagrams(frames: &[(bool, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<usize>)> {
    let mut out = Vec::new();
    for (_, frame) in frames {
        for (i, chunk) in frame.chunks(MAX_DATAGRAM).enumerate() {
            let starts = if i == 0 { vec![0] } else { vec![] };
            out.push((chunk.to_vec(), starts));
        }
    }
    out
}

#[test]
fn the_reference_decoder_ignores_every_sealed_frame_at_its_empty_filter() {
    for seed in 0..8 {
        for (sealed, frame) in traffic(seed) {
            let (declared, n) = read_varint(&frame[2..]).unwrap();
            assert_eq!(
                frame.len(),
                2 + n + declared as usize + 2,
                "the reference cuts it exactly"
            );
            let decoded = decode(&frame[2 + n..frame.len() - 2]);
            if sealed {
                assert_eq!(decoded, Decoded::FilteredOut);
            } else {
                assert!(matches!(decoded, Decoded::Handled(_)), "{decoded:?}");
            }
        }
    }
}

#[test]
fn sealed_and_ordinary_frames_in_one_stream_are_cut_exactly() {
    for resync in [Resync::DiscardCut, Resync::StripHeader] {
        for seed in 0..8 {
            let frames = traffic(seed);
            let mut reference = ReferenceNode::new(resync);
            for (datagram, starts) in datagrams(&frames) {
                reference.receive(&datagram, &starts);
            }
            let sealed = frames.iter().filter(|(s, _)| *s).count();
            assert_eq!(reference.count(&Decoded::FilteredOut), sealed);
            assert_eq!(reference.handled(), frames.len() - sealed);
            assert_eq!(reference.false_headers, 0);
            assert!(!reference.steps.contains(&Step::BadCut));
            assert!(reference.buf.is_empty());
        }
    }
}

/// A seeded generator for the loss pattern.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn after_lost_datagrams_the_reference_parser_resyncs_on_real_headers_only() {
    for resync in [Resync::DiscardCut, Resync::StripHeader] {
        for seed in 0..64u64 {
            let frames = traffic(seed);
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut reference = ReferenceNode::new(resync);
            let all = datagrams(&frames);
            let mut lost = 0;
            for (datagram, starts) in &all {
                if xorshift(&mut rng).is_multiple_of(5) {
                    lost += 1;
                    continue;
                }
                reference.receive(datagram, starts);
            }
            // Then ordinary frames only, more bytes than the longest frame declares: the
            // parser must be decoding again.
            let tail = frames_of(&mut node(seed + 2000, None), &[100; 120]);
            let before = reference.handled();
            for frame in &tail {
                reference.receive(frame, &[0]);
            }
            assert!(lost > 0);
            assert_eq!(reference.false_headers, 0, "seed {seed}, {resync:?}");
            assert_eq!(reference.count(&Decoded::Hang), 0);
            assert_eq!(reference.count(&Decoded::Error), 0);
            // A lost middle datagram of a long frame (sealed or not) makes the parser wait
            // for the rest of that frame's declared length and swallow what comes in the
            // meantime, as the reference does for any chunked frame; once that length has
            // arrived, ordinary frames are decoded again.
            assert!(
                reference.handled() - before >= tail.len() / 2,
                "seed {seed}, {resync:?}: the parser stalled"
            );
            let last: Vec<&Step> = reference.steps.iter().rev().take(20).collect();
            assert!(
                last.iter().all(|s| **s == Step::Frame(Decoded::Handled(6))),
                "seed {seed}, {resync:?}: {last:?}"
            );
        }
    }
}

#[test]
fn without_the_stuffing_a_lost_first_datagram_stalls_the_reference_parser() {
    // A frame laid out like a sealed one, 6000 bytes, whose raw bytes hold `C0 8D` and a
    // huge length in the second datagram: what unstuffed ciphertext does about once in 256
    // frames.
    let mut raw = vec![0x42u8; 6000];
    raw[4500..4506].copy_from_slice(&[0xC0, 0x8D, 0xFF, 0xFF, 0xFF, 0x0F]);
    let mut body = vec![0x0E, 0x00, 0x0B];
    body.extend(varint(raw.len() as u64));
    body.extend(&raw);
    let mut control = vec![0xC0, 0x8D];
    control.extend(varint(body.len() as u64));
    control.extend(&body);
    control.extend([0, 0]);
    let tail = frames_of(&mut node(7, None), &[10, 20, 30, 40, 50, 60]);
    for resync in [Resync::DiscardCut, Resync::StripHeader] {
        let mut reference = ReferenceNode::new(resync);
        let chunks: Vec<&[u8]> = control.chunks(MAX_DATAGRAM).collect();
        reference.receive(chunks[1], &[]); // the first datagram was lost
        for frame in &tail {
            reference.receive(frame, &[0]);
        }
        assert_eq!(reference.false_headers, 1, "{resync:?}");
        assert_eq!(
            reference.handled(),
            0,
            "{resync:?}: everything after it is swallowed"
        );
    }
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
