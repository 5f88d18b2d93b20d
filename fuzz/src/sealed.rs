//! Body of the `sealed` target: a node that requires sealed frames, fed garbage, forged,
//! altered and replayed frames around the authentic frames of a peer with the same key.
//!
//! Input: steps until the input ends, each a tag byte (modulo 6) and its operands:
//!
//! | tag | step | operands |
//! | --- | --- | --- |
//! | 0 | raw bytes as one datagram | length byte, bytes |
//! | 1 | authentic frame `k` | `k` |
//! | 2 | authentic frame `k` with one byte changed | `k`, position (2 bytes), xor (non-zero) |
//! | 3 | authentic frame `k` cut short or lengthened | `k`, new length (2 bytes) |
//! | 4 | frame `k` of a node with another key, or of an impostor using the same key id | `k` |
//! | 5 | time passes | milliseconds (2 bytes) |
//!
//! Properties: nothing panics; the node's frames are all sealed; a frame that is not
//! byte for byte an authentic frame is never accepted; an authentic frame is accepted at most
//! once; the node never knows a service but the peer.

use cluster_core::seal::is_sealed;
use cluster_core::wire::Frame;
use cluster_core::{
    Config, DefaultPolicy, Instant, Key, KeyRing, Node, SendRequest, Source, Targets,
};
use core::net::{Ipv4Addr, SocketAddr};

/// A sealed node of 8 services and 256-byte payloads.
type SealedNode = Node<DefaultPolicy, 8, 256>;

const HID: &str = "02:fc:00:00:00:01";
const START_MS: u64 = 1_000_000;

fn ring(id: u8, byte: u8) -> KeyRing {
    KeyRing::new(Key::new(id, [byte; 32]))
}

/// Everything a node of `seed` sealing with `keys` sends after its join and three events.
fn frames_of(seed: u64, keys: KeyRing) -> Vec<Vec<u8>> {
    let now = Instant::from_millis(START_MS);
    let Ok(mut node) = SealedNode::new(Config::lan_fast(), HID, DefaultPolicy, seed, now) else {
        return Vec::new();
    };
    node.set_tcp_port(now, Some(40_000));
    node.set_keys(Some(keys));
    let mut buf = vec![0u8; SealedNode::TRANSMIT_BUF];
    let mut frames = Vec::new();
    for data in [&b"one"[..], b"two", &[b'x'; 200][..]] {
        let mut request = SendRequest::new(Targets::default(), data);
        request.broadcast = Some(true);
        let _ = node.send(now, &request);
        while let Some(t) = node.poll_transmit(now, &mut buf) {
            frames.push(buf[..t.len].to_vec());
        }
    }
    frames
}

/// Runs one input.
///
/// # Panics
///
/// When a property breaks.
pub fn run(data: &[u8]) {
    let authentic = frames_of(2, ring(1, 0x11));
    let mut others = frames_of(3, ring(9, 0x22));
    others.extend(frames_of(4, ring(1, 0x33)));
    let mut accepted_once = vec![false; authentic.len()];
    let mut now = START_MS;
    let Ok(mut node) = SealedNode::new(
        Config::lan_fast(),
        HID,
        DefaultPolicy,
        1,
        Instant::from_millis(now),
    ) else {
        return;
    };
    node.set_keys(Some(ring(1, 0x11)));
    // Each datagram from a sender of its own, so that a cut frame left pending in one
    // sender's reassembly buffer cannot take the bytes of the next step.
    let mut port: u16 = 0;
    let mut buf = vec![0u8; SealedNode::TRANSMIT_BUF];
    let mut rest = data;
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head.to_vec())
    };
    while let Some(tag) = take(1) {
        let pick = |k: Option<Vec<u8>>, len: usize| usize::from(k.map_or(0, |k| k[0])) % len;
        let (bytes, authentic_index) = match tag[0] % 6 {
            0 => {
                let Some(len) = take(1) else { break };
                let Some(bytes) = take(usize::from(len[0])) else {
                    break;
                };
                (bytes, None)
            }
            1 => {
                let k = pick(take(1), authentic.len());
                (authentic[k].clone(), Some(k))
            }
            2 => {
                let k = pick(take(1), authentic.len());
                let (Some(at), Some(xor)) = (take(2), take(1)) else {
                    break;
                };
                let mut frame = authentic[k].clone();
                let at = usize::from(u16::from_le_bytes([at[0], at[1]])) % frame.len();
                frame[at] ^= xor[0].max(1);
                (frame, None)
            }
            3 => {
                let k = pick(take(1), authentic.len());
                let Some(len) = take(2) else { break };
                let mut frame = authentic[k].clone();
                let len = usize::from(u16::from_le_bytes([len[0], len[1]])) % 600;
                frame.resize(len, 0);
                let same = frame == authentic[k];
                (frame, same.then_some(k))
            }
            4 => {
                let k = pick(take(1), others.len());
                (others[k].clone(), None)
            }
            _ => {
                let Some(ms) = take(2) else { break };
                now += u64::from(u16::from_le_bytes([ms[0], ms[1]]));
                node.handle_timeout(Instant::from_millis(now));
                drain(&mut node, now, &mut buf);
                continue;
            }
        };
        port = port.wrapping_add(1);
        let from = Source::multicast(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), true);
        let before = node.stats().frames_accepted;
        let _ = node.handle_datagram(Instant::from_millis(now), from, &bytes);
        let accepted = node.stats().frames_accepted > before;
        match authentic_index {
            Some(k) if accepted => {
                assert!(!accepted_once[k], "authentic frame {k} accepted twice");
                accepted_once[k] = true;
            }
            Some(_) => {}
            None => {
                assert!(
                    !accepted
                        || authentic
                            .iter()
                            .any(|a| bytes.windows(a.len()).any(|w| w == a)),
                    "a frame that is no authentic frame was accepted"
                );
            }
        }
        drain(&mut node, now, &mut buf);
        assert!(node.known() <= 1, "a service other than the peer appeared");
    }
}

fn drain(node: &mut SealedNode, now: u64, buf: &mut [u8]) {
    let now = Instant::from_millis(now);
    while let Some(t) = node.poll_transmit(now, buf) {
        let (frame, _) = Frame::parse(&buf[..t.len]).expect("the node sends valid frames");
        assert!(is_sealed(&frame), "the node sent a frame unsealed");
        if let Some(id) = t.dst.send_id() {
            node.transport_ok(now, id);
        }
    }
    while node.poll_event().is_some() {}
}
