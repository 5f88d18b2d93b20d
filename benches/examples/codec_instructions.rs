//! Runs one codec path N times, for instruction counting under callgrind
//! (`benches/callgrind.sh`): `codec_instructions PATH N` with PATH one of
//! `encode-FRAME`, `decode-FRAME` (this project's codec), `cluster-text-decode-FRAME` (its
//! decode and the UTF-8 check of every text field), `postcard-encode-FRAME`,
//! `postcard-decode-FRAME` (the same information with postcard, `&str` fields and `Vec`
//! lists, as the codec bench has it), `postcard-borrowed-decode-FRAME` (postcard with
//! borrowed byte fields and `heapless::Vec` lists: the work of `decode-FRAME`),
//! FRAME one of the codec bench's frames `heartbeat`, `join-discovery`, `query`, `response`,
//! `event-1k`; or `handle-heartbeat-1000`.

use std::hint::black_box;

use cluster_benches::{node_knowing, peer_sid, periodic_heartbeat, source};
use cluster_core::Instant;
use cluster_core::wire::Message;

#[path = "../benches/codec/cases.rs"]
mod cases;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let total = if path == "handle-heartbeat-1000" {
        let mut node = node_knowing(1000);
        let frames: Vec<Vec<u8>> = (0..1000)
            .map(|i| periodic_heartbeat(&peer_sid(i)))
            .collect();
        for i in 0..n {
            let frame = &frames[(i % 1000) as usize];
            node.handle_datagram(Instant::from_millis(10_000 + i), source(), frame)
                .unwrap();
        }
        node.known()
    } else {
        codec_path(&path, n)
    };
    println!("{total}");
}

/// The codec (and the work of its decode) a path measures.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// `Message::encode` / `Message::parse`.
    Cluster,
    /// `Message::parse` and the UTF-8 check of every text field (decode only).
    ClusterText,
    /// postcard with `&str` fields and `Vec` lists.
    Postcard,
    /// postcard with borrowed byte fields and `heapless::Vec` lists (decode only).
    PostcardBorrowed,
}

/// Runs `path` (`[VARIANT-]encode-FRAME` or `[VARIANT-]decode-FRAME`) `n` times.
fn codec_path(path: &str, n: u64) -> usize {
    // Longest prefix first: `postcard-borrowed-` before `postcard-`.
    let prefixes = [
        ("cluster-text-", Variant::ClusterText),
        ("postcard-borrowed-", Variant::PostcardBorrowed),
        ("postcard-", Variant::Postcard),
    ];
    let (variant, path) = prefixes
        .iter()
        .find_map(|(prefix, variant)| Some((*variant, path.strip_prefix(prefix)?)))
        .unwrap_or((Variant::Cluster, path));
    let (encode, frame) = if let Some(frame) = path.strip_prefix("encode-") {
        (true, frame)
    } else if let Some(frame) = path.strip_prefix("decode-") {
        (false, frame)
    } else {
        panic!("unknown path {path}")
    };
    let kib: &'static str = Box::leak("x".repeat(1024).into_boxed_str());
    let case = cases::cases(kib)
        .into_iter()
        .find(|case| case.name.replace('_', "-") == frame)
        .unwrap_or_else(|| panic!("unknown frame {frame}"));
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    match (variant, encode) {
        (Variant::Cluster, true) => {
            for _ in 0..n {
                total += black_box(&case.message)
                    .encode(case.placement, black_box(&mut buf))
                    .unwrap();
            }
        }
        (Variant::Postcard, true) => {
            for _ in 0..n {
                total += postcard::to_slice(black_box(&case.packet), black_box(&mut buf))
                    .unwrap()
                    .len();
            }
        }
        (Variant::ClusterText | Variant::PostcardBorrowed, true) => {
            panic!("{path}: only the decode is measured for this variant")
        }
        (Variant::Cluster, false) => {
            let len = case.message.encode(case.placement, &mut buf).unwrap();
            for _ in 0..n {
                // The whole message kept (as the postcard arms keep theirs), so no field
                // read can be optimized away.
                black_box(Message::parse(black_box(&buf[..len])).unwrap());
                total += 1;
            }
        }
        (Variant::ClusterText, false) => {
            let len = case.message.encode(case.placement, &mut buf).unwrap();
            for _ in 0..n {
                black_box(cases::parse_text(black_box(&buf[..len])).unwrap());
                total += 1;
            }
        }
        (Variant::Postcard, false) => {
            let len = postcard::to_slice(&case.packet, &mut buf).unwrap().len();
            for _ in 0..n {
                let packet = postcard::from_bytes::<cases::Packet<'_>>(black_box(&buf[..len]));
                black_box(packet.unwrap());
                total += 1;
            }
        }
        (Variant::PostcardBorrowed, false) => {
            // The same bytes as `Postcard` decodes (the bench asserts the two encode alike).
            let len = postcard::to_slice(&case.packet, &mut buf).unwrap().len();
            let decoded = postcard::from_bytes::<cases::PacketBytes<'_>>(&buf[..len]);
            assert_eq!(decoded.unwrap(), case.packet.to_bytes());
            for _ in 0..n {
                let packet = postcard::from_bytes::<cases::PacketBytes<'_>>(black_box(&buf[..len]));
                black_box(packet.unwrap());
                total += 1;
            }
        }
    }
    total
}
