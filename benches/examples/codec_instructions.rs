//! Runs one codec path N times, for instruction counting under callgrind
//! (`benches/callgrind.sh`): `codec_instructions PATH N` with PATH one of
//! `encode-heartbeat`, `decode-heartbeat`, `encode-query`, `decode-query`,
//! `encode-event-1k`, `decode-event-1k`, `handle-heartbeat-1000`.

use std::hint::black_box;

use cluster_benches::{node_knowing, peer_sid, periodic_heartbeat, source};
use cluster_core::Instant;
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let tc = ["t", "c"];
    let target = ["Zz998877"];
    let kib = "x".repeat(1024);
    let base = |kind| Message {
        sid: Some("AbCd1234".into()),
        hid: Some("00:11:22:33:44:55".into()),
        kind: Some(kind),
        channel: Some(0),
        protocols: Some(List::from_items(&tc)),
        ..Message::default()
    };
    let heartbeat = Message {
        known: Some(3),
        ..base(MessageKind::Heartbeat)
    };
    let query = Message {
        filter: Some(List::from_items(&target)),
        ruid: Some("qAC#4".into()),
        data: Some("status".into()),
        keepalive: Some(true),
        ..base(MessageKind::Query)
    };
    let event = Message {
        channel: Some(5),
        data: Some(kib.as_str().into()),
        filter: Some(List::from_items(&target)),
        ..base(MessageKind::Event)
    };
    let mut buf = vec![0u8; 4096];
    let encode = |m: &Message<'_>, placement, buf: &mut [u8], n: u64| {
        let mut total = 0;
        for _ in 0..n {
            total += black_box(m)
                .encode(placement, black_box(&mut *buf))
                .unwrap();
        }
        total
    };
    let decode = |m: &Message<'_>, placement, n: u64| {
        let mut frame = vec![0u8; 4096];
        let len = m.encode(placement, &mut frame).unwrap();
        let mut total = 0;
        for _ in 0..n {
            let (m, _) = Message::parse(black_box(&frame[..len])).unwrap();
            total += usize::from(m.channel.is_some());
        }
        total
    };
    let total = match path.as_str() {
        "encode-heartbeat" => encode(&heartbeat, FilterPlacement::Last, &mut buf, n),
        "decode-heartbeat" => decode(&heartbeat, FilterPlacement::Last, n),
        "encode-query" => encode(&query, FilterPlacement::First, &mut buf, n),
        "decode-query" => decode(&query, FilterPlacement::First, n),
        "encode-event-1k" => encode(&event, FilterPlacement::Last, &mut buf, n),
        "decode-event-1k" => decode(&event, FilterPlacement::Last, n),
        "handle-heartbeat-1000" => {
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
        }
        other => panic!("unknown path {other}"),
    };
    println!("{total}");
}
