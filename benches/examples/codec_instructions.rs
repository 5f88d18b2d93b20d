//! Runs one codec path N times, for instruction counting under callgrind
//! (`benches/callgrind.sh`): `codec_instructions PATH N` with PATH one of
//! `encode-FRAME`, `decode-FRAME` (this project's codec), `postcard-encode-FRAME`,
//! `postcard-decode-FRAME` (the same information with postcard, as the codec bench has it),
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

/// Runs `path` (`[postcard-]encode-FRAME` or `[postcard-]decode-FRAME`) `n` times.
fn codec_path(path: &str, n: u64) -> usize {
    let (postcard, path) = match path.strip_prefix("postcard-") {
        Some(rest) => (true, rest),
        None => (false, path),
    };
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
    match (postcard, encode) {
        (false, true) => {
            for _ in 0..n {
                total += black_box(&case.message)
                    .encode(case.placement, black_box(&mut buf))
                    .unwrap();
            }
        }
        (true, true) => {
            for _ in 0..n {
                total += postcard::to_slice(black_box(&case.packet), black_box(&mut buf))
                    .unwrap()
                    .len();
            }
        }
        (false, false) => {
            let len = case.message.encode(case.placement, &mut buf).unwrap();
            for _ in 0..n {
                let (m, _) = Message::parse(black_box(&buf[..len])).unwrap();
                total += usize::from(m.channel.is_some());
            }
        }
        (true, false) => {
            let len = postcard::to_slice(&case.packet, &mut buf).unwrap().len();
            for _ in 0..n {
                let packet = postcard::from_bytes::<cases::Packet<'_>>(black_box(&buf[..len]));
                black_box(packet.unwrap());
                total += 1;
            }
        }
    }
    total
}
