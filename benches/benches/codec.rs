//! Encode and decode of five typical frames with this project's codec, side by side with the
//! same information as a Rust struct encoded with postcard and with serde_json.
//!
//! `cargo bench -p cluster-benches --bench codec`

use std::hint::black_box;

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind};
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

/// The same information as a frame, as an application would write it without this codec.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Packet<'a> {
    #[serde(borrow)]
    filter: Option<Vec<&'a str>>,
    sid: &'a str,
    hid: &'a str,
    kind: u8,
    channel: u32,
    #[serde(borrow)]
    protocols: Vec<&'a str>,
    ruid: Option<&'a str>,
    data: Option<&'a str>,
    known: Option<u32>,
    #[serde(borrow)]
    tags: Option<Vec<&'a str>>,
    keepalive: Option<bool>,
}

const HID: &str = "00:11:22:33:44:55";
const TC: [&str; 2] = ["t", "c"];

struct Case {
    name: &'static str,
    message: Message<'static>,
    placement: FilterPlacement,
    packet: Packet<'static>,
}

fn cases(kib: &'static str) -> Vec<Case> {
    let base = |kind| Message {
        sid: Some("AbCd1234".into()),
        hid: Some(HID.into()),
        kind: Some(kind),
        channel: Some(0),
        protocols: Some(List::from_items(&TC)),
        ..Message::default()
    };
    let packet = |kind| Packet {
        filter: None,
        sid: "AbCd1234",
        hid: HID,
        kind,
        channel: 0,
        protocols: TC.to_vec(),
        ruid: None,
        data: None,
        known: None,
        tags: None,
        keepalive: None,
    };
    static TAGS: [&str; 2] = ["web", "db"];
    static TARGET: [&str; 1] = ["Zz998877"];
    static ASKER: [&str; 1] = ["AbCd1234"];
    vec![
        Case {
            name: "heartbeat",
            message: Message {
                known: Some(3),
                ..base(MessageKind::Heartbeat)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                known: Some(3),
                ..packet(1)
            },
        },
        Case {
            name: "join_discovery",
            message: Message {
                data: Some("t {port 40000}".into()),
                known: Some(0),
                tags: Some(List::from_items(&TAGS)),
                ..base(MessageKind::Discovery)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                data: Some("t {port 40000}"),
                known: Some(0),
                tags: Some(TAGS.to_vec()),
                ..packet(2)
            },
        },
        Case {
            name: "query",
            message: Message {
                filter: Some(List::from_items(&TARGET)),
                ruid: Some("qAC#4".into()),
                data: Some("status".into()),
                keepalive: Some(true),
                ..base(MessageKind::Query)
            },
            placement: FilterPlacement::First,
            packet: Packet {
                filter: Some(TARGET.to_vec()),
                ruid: Some("qAC#4"),
                data: Some("status"),
                keepalive: Some(true),
                ..packet(4)
            },
        },
        Case {
            name: "response",
            message: Message {
                sid: Some("Zz998877".into()),
                ruid: Some("qAC#4".into()),
                keepalive: Some(true),
                data: Some("ok".into()),
                filter: Some(List::from_items(&ASKER)),
                ..base(MessageKind::Response)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                sid: "Zz998877",
                ruid: Some("qAC#4"),
                keepalive: Some(true),
                data: Some("ok"),
                filter: Some(ASKER.to_vec()),
                ..packet(5)
            },
        },
        Case {
            name: "event_1k",
            message: Message {
                channel: Some(5),
                data: Some(kib.into()),
                filter: Some(List::from_items(&TARGET)),
                ..base(MessageKind::Event)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                channel: 5,
                data: Some(kib),
                filter: Some(TARGET.to_vec()),
                ..packet(6)
            },
        },
    ]
}

fn codec(c: &mut Criterion) {
    let kib: &'static str = Box::leak("x".repeat(1024).into_boxed_str());
    for case in cases(kib) {
        let mut buf = vec![0u8; 4096];
        let len = case.message.encode(case.placement, &mut buf).unwrap();
        let ours = buf[..len].to_vec();
        let post = postcard::to_allocvec(&case.packet).unwrap();
        let json = serde_json::to_vec(&case.packet).unwrap();
        eprintln!(
            "bytes/frame {:<15} cluster {:>5}  postcard {:>5}  json {:>5}  (cluster/json {:.0}%)",
            case.name,
            ours.len(),
            post.len(),
            json.len(),
            100.0 * ours.len() as f64 / json.len() as f64
        );
        // Sanity: every codec reads back what it wrote.
        let (decoded, _) = Message::parse(&ours).unwrap();
        assert_eq!(decoded, case.message);
        assert_eq!(
            postcard::from_bytes::<Packet<'_>>(&post).unwrap(),
            case.packet
        );
        assert_eq!(
            serde_json::from_slice::<Packet<'_>>(&json).unwrap(),
            case.packet
        );

        let mut group = c.benchmark_group(format!("encode/{}", case.name));
        group.bench_function("cluster", |b| {
            b.iter(|| {
                black_box(&case.message)
                    .encode(case.placement, black_box(&mut buf))
                    .unwrap()
            })
        });
        let mut post_buf = vec![0u8; 4096];
        group.bench_function("postcard", |b| {
            b.iter(|| {
                postcard::to_slice(black_box(&case.packet), black_box(&mut post_buf))
                    .unwrap()
                    .len()
            })
        });
        let mut json_buf = Vec::with_capacity(4096);
        group.bench_function("serde_json", |b| {
            b.iter(|| {
                json_buf.clear();
                serde_json::to_writer(&mut json_buf, black_box(&case.packet)).unwrap();
                json_buf.len()
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("decode/{}", case.name));
        group.bench_function("cluster", |b| {
            b.iter(|| Message::parse(black_box(&ours)).unwrap().0)
        });
        group.bench_function("postcard", |b| {
            b.iter(|| postcard::from_bytes::<Packet<'_>>(black_box(&post)).unwrap())
        });
        group.bench_function("serde_json", |b| {
            b.iter(|| serde_json::from_slice::<Packet<'_>>(black_box(&json)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
