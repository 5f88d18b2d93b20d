//! The seed corpora, generated from the golden vectors (`cluster-core/tests/vectors/*.json`)
//! and from hand-written node scripts.
//!
//! Regenerate them after a change of the vectors or of an input layout with
//!
//! ```text
//! cargo test --manifest-path fuzz/Cargo.toml --test gen_corpus -- --ignored
//! ```
//!
//! which writes `corpus/<target>/seed-*` (files the fuzzer added are left alone). The test
//! `generated_seeds_are_committed` fails when the committed seeds differ from what would be
//! generated.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cluster_fuzz::node::{
    Data, Datagram, Msg, Payload, QueryCmd, Script, SendCmd, Setup, Step, TagEdit, TargetsCmd,
};
use cluster_fuzz::stream::{Chunk, write_chunks};
use serde_json::Value;

/// Seeds per target: file name to contents.
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vectors(name: &str) -> Value {
    let path = fuzz_dir().join("../cluster-core/tests/vectors").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn name_of(value: &Value) -> String {
    let name = value.get("name").and_then(Value::as_str).expect("a name");
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn add(seeds: &mut Seeds, target: &'static str, name: impl AsRef<str>, bytes: Vec<u8>) {
    let files = seeds.entry(target).or_default();
    // The same bytes under several names once only.
    if files.values().any(|existing| *existing == bytes) {
        return;
    }
    let name = format!("seed-{}", name.as_ref());
    assert!(
        files.insert(name.clone(), bytes).is_none(),
        "duplicate {name}"
    );
}

/// A multi-datagram case: its datagrams, with a sender per distinct source.
fn datagram_chunks(case: &Value) -> Vec<Chunk> {
    let sources: Vec<&str> = list(case, "sources")
        .iter()
        .map(|s| s.as_str().expect("source"))
        .collect();
    let mut distinct: Vec<&str> = Vec::new();
    list(case, "datagrams")
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let sender = match sources.get(i) {
                Some(source) => {
                    if !distinct.contains(source) {
                        distinct.push(source);
                    }
                    distinct.iter().position(|s| s == source).expect("listed") as u8
                }
                None => 0,
            };
            Chunk {
                key: sender,
                bytes: unhex(d.as_str().expect("hex datagram")),
            }
        })
        .collect()
}

/// Every string field value and every list field (elements joined by `ff`) of a vector.
fn texts_of(vector: &Value, out: &mut Vec<Vec<u8>>) {
    for field in list(vector, "fields_in_wire_order") {
        let value = &field[1];
        if let Some(s) = value.as_str() {
            out.push(s.as_bytes().to_vec());
        } else if let Some(items) = value.as_array() {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            let mut joined = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    joined.push(0xFF);
                }
                joined.extend_from_slice(item.as_bytes());
            }
            out.push(joined);
        }
    }
}

fn generate() -> Seeds {
    let captured = vectors("captured.json");
    let handwritten = vectors("handwritten.json");
    let invalid = vectors("invalid.json");
    let mut seeds = Seeds::new();

    // Single frames, valid and invalid: `decode`, and `node` as one raw datagram.
    let mut frames: Vec<(String, &Value)> = Vec::new();
    for group in [&captured, &handwritten] {
        for key in ["vectors", "peer_frames"] {
            for vector in list(group, key) {
                frames.push((name_of(vector), vector));
            }
        }
    }
    for case in list(&invalid, "frame_cases")
        .iter()
        .chain(list(&invalid, "pipeline_cases"))
    {
        frames.push((name_of(case), case));
    }
    for (name, vector) in &frames {
        if let Some(hex) = vector.get("hex").and_then(Value::as_str) {
            add(&mut seeds, "decode", name, unhex(hex));
        }
    }
    for case in list(&invalid, "encoder_cases") {
        if let Some(hex) = case.get("hex_head").and_then(Value::as_str) {
            add(
                &mut seeds,
                "decode",
                format!("{}-head", name_of(case)),
                unhex(hex),
            );
        }
    }

    // Multi-datagram cases: every datagram and frame for `decode`, the chunks for `stream`.
    let multi: Vec<&Value> = list(&captured, "multi_frame")
        .iter()
        .chain(list(&invalid, "stream_cases"))
        .collect();
    for case in &multi {
        let name = name_of(case);
        let chunks = datagram_chunks(case);
        for (i, chunk) in chunks.iter().enumerate() {
            add(
                &mut seeds,
                "decode",
                format!("{name}-datagram{i}"),
                chunk.bytes.clone(),
            );
        }
        for (i, frame) in list(case, "frames").iter().enumerate() {
            let hex = frame.get("hex").and_then(Value::as_str).expect("frame hex");
            add(&mut seeds, "decode", format!("{name}-frame{i}"), unhex(hex));
        }
        add(&mut seeds, "stream", &name, write_chunks(&chunks));
        // The same bytes in one chunk, and re-cut with another step in every key.
        let whole: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        add(
            &mut seeds,
            "stream",
            format!("{name}-whole"),
            write_chunks(&[Chunk {
                key: 0,
                bytes: whole,
            }]),
        );
    }

    // Embedded frames: the handwritten frames flagged as frames, between garbage chunks
    // (one with a lone trailing c0, one with c0 8d, which the target breaks up).
    let garbage: [&[u8]; 4] = [b"\xff\xff\x00", b"junk\xc0", b"\xc0\x8d\x05\x01", b""];
    let mut embedded = Vec::new();
    for (i, vector) in list(&handwritten, "vectors").iter().enumerate() {
        embedded.push(Chunk {
            key: (i as u8 % 32) << 2,
            bytes: garbage[i % garbage.len()].to_vec(),
        });
        embedded.push(Chunk {
            key: 0x80 | ((i as u8 * 7 % 32) << 2),
            bytes: unhex(vector["hex"].as_str().expect("hex")),
        });
    }
    add(
        &mut seeds,
        "stream",
        "embedded-handwritten-frames",
        write_chunks(&embedded),
    );
    // Frames built from fields (chunks that are not a frame, flagged as frames).
    add(
        &mut seeds,
        "stream",
        "embedded-built-frames",
        write_chunks(&[
            Chunk {
                key: 0x84,
                bytes: b"\x00\x01\x01\x03\x08FAKE0001".to_vec(),
            },
            Chunk {
                key: 0x10,
                bytes: b"\xc0".to_vec(),
            },
            Chunk {
                key: 0xfc,
                bytes: b"\x0a\x0bc0 8d in data\x0a\x02\xc0\x8d".to_vec(),
            },
        ]),
    );
    // Several senders interleaved, one of them with a partial frame left.
    let e1 = unhex(
        list(&handwritten, "vectors")[0]["hex"]
            .as_str()
            .expect("hex"),
    );
    let (head, tail) = e1.split_at(20);
    add(
        &mut seeds,
        "stream",
        "four-senders-interleaved",
        write_chunks(&[
            Chunk {
                key: 0,
                bytes: head.to_vec(),
            },
            Chunk {
                key: 1,
                bytes: e1.clone(),
            },
            Chunk {
                key: 2 | 0x40,
                bytes: head.to_vec(),
            },
            Chunk {
                key: 3 | (10 << 2),
                bytes: b"\xc0".to_vec(),
            },
            Chunk {
                key: 0,
                bytes: tail.to_vec(),
            },
            Chunk {
                key: 3,
                bytes: b"\x8d\x00\x00\x00".to_vec(),
            },
        ]),
    );

    // Tcl lists: the texts of every vector, and hand-written syntax.
    let mut texts = Vec::new();
    for (_, vector) in &frames {
        texts_of(vector, &mut texts);
    }
    for case in &multi {
        for frame in list(case, "frames") {
            texts_of(frame, &mut texts);
        }
    }
    let hand: [&str; 22] = [
        "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}",
        "Zz998877 Yy112233",
        "protocols {t u}",
        "a\\]b x{a\"b} {a b}c",
        "\"a b\" c \"d",
        "{a",
        "{a}b",
        "a\\\n   b",
        "\\x41\\u00e9 \\U0001F600 \\101 \\400 \\xZ \\u{} \\",
        "#x {#y} \\#z",
        "\t\n\x0b\x0c\r a \r\n",
        "{{{}}} {\\{} {\\}}",
        "\"{\" \"}\" \"\\\"\"",
        "a\u{0}b \u{FFFD}",
        "k1 v1 k1 v2 k2 {}",
        "odd dict length",
        "\\U110000 \\U10FFFF \\ud800",
        "",
        "{}",
        "\"\"",
        "a \\\n",
        "[x] $y ;z",
    ];
    for text in hand {
        texts.push(text.as_bytes().to_vec());
    }
    texts.push(b"a\xffb c\xff\xff{\xff}\xff\\\xff#x".to_vec());
    texts.push(b"\xc3\x28 invalid utf8 \xff element".to_vec());
    for (i, text) in texts.into_iter().enumerate() {
        add(&mut seeds, "tcl_list", format!("{i:03}"), text);
    }

    // Node scripts: every single frame as a raw datagram, then time to react.
    let receiver_flags = |case: &Value| -> u8 {
        let remote = case["receiver"]["remote"].as_u64() == Some(1);
        16 | if remote { 2 } else { 0 }
    };
    for (name, vector) in &frames {
        let Some(hex) = vector.get("hex").and_then(Value::as_str) else {
            continue;
        };
        let tcp = vector.get("transport").and_then(Value::as_str) == Some("tcp");
        let local = vector
            .get("receiver")
            .is_none_or(|r| r["source_is_local"].as_u64() == Some(1));
        let flags = vector.get("receiver").map_or(8, receiver_flags);
        let script = Script {
            setup: Setup { flags, seed: 1 },
            steps: vec![
                Step::Datagram(Datagram {
                    sender: 0,
                    via: u8::from(tcp),
                    local,
                    payload: Payload::Raw(unhex(hex)),
                    split: 0,
                }),
                Step::Advance(1500),
                Step::AdvanceSecs(3),
            ],
        };
        add(
            &mut seeds,
            "node",
            format!("frame-{name}"),
            checked(&script),
        );
    }
    // The captured r1 run in order, as one receiver sees it.
    let r1: Vec<Step> = list(&captured, "vectors")
        .iter()
        .filter(|v| name_of(v).starts_with("r1-"))
        .flat_map(|v| {
            let tcp = v["transport"].as_str() == Some("tcp");
            [
                Step::Datagram(Datagram {
                    sender: 0,
                    via: u8::from(tcp),
                    local: true,
                    payload: Payload::Raw(unhex(v["hex"].as_str().expect("hex"))),
                    split: 0,
                }),
                Step::Advance(300),
            ]
        })
        .collect();
    add(
        &mut seeds,
        "node",
        "captured-r1-in-order",
        checked(&Script {
            setup: Setup {
                flags: 8 | 16,
                seed: 2,
            },
            steps: r1,
        }),
    );
    for (name, script) in hand_written_scripts() {
        add(&mut seeds, "node", name, checked(&script));
    }
    // `sealed`: steps (tag byte, operands) over the peer's authentic frames.
    let sealed_seeds: [(&str, Vec<u8>); 6] = [
        (
            "authentic-then-replayed",
            vec![1, 0, 1, 1, 1, 0, 1, 1, 5, 0xE8, 0x03, 1, 2],
        ),
        (
            "one-flipped-byte-each",
            (0..8).flat_map(|k| [2, k, 20 * k, 0, 0x80]).collect(),
        ),
        (
            "cut-and-lengthened",
            vec![3, 0, 40, 0, 3, 1, 0x58, 0x02, 3, 2, 5, 0],
        ),
        (
            "other-key-and-impostor",
            (0..8).flat_map(|k| [4, k]).collect(),
        ),
        (
            "garbage-then-authentic",
            vec![0, 6, 0xC0, 0x8D, 0x05, 0x0E, 0x00, 0x0B, 1, 3],
        ),
        (
            "timers-and-expiry",
            vec![1, 0, 5, 0xFF, 0x1F, 1, 1, 5, 0xFF, 0xFF, 1, 2],
        ),
    ];
    for (name, bytes) in sealed_seeds {
        add(&mut seeds, "sealed", name, bytes);
    }
    seeds
}

/// The bytes of a script, checked to read back as the same script.
fn checked(script: &Script) -> Vec<u8> {
    let bytes = script.write();
    let mut u = arbitrary::Unstructured::new(&bytes);
    let back = Script::read(&mut cluster_fuzz::bytes::Reader::new(&mut u));
    assert_eq!(&back, script, "a script reads back as written");
    bytes
}

fn peer(sid: u8, kind: u8) -> Msg {
    Msg {
        kind: Some(kind),
        channel: Some(0),
        hid: Some(0),
        sid: Some(sid),
        protocols: Some(vec![0, 1]),
        ..Msg::default()
    }
}

fn heartbeat(sid: u8, port: u16, tags: Vec<u8>) -> Msg {
    Msg {
        data: Some(Data::Tcp(port)),
        known: Some(1),
        tags: Some(tags),
        ..peer(sid, 1)
    }
}

fn datagram(sender: u8, via: u8, msg: Msg) -> Step {
    Step::Datagram(Datagram {
        sender,
        via,
        local: true,
        payload: Payload::Msg(Box::new(msg)),
        split: 0,
    })
}

/// The sid index of the node itself (see `cluster_fuzz::node::sid_ref`).
const OWN: u8 = 12;

fn hand_written_scripts() -> Vec<(&'static str, Script)> {
    let fast = |flags: u8, steps: Vec<Step>| Script {
        setup: Setup { flags, seed: 7 },
        steps,
    };
    vec![
        (
            "join-discover-query-respond",
            fast(
                0x80 | 8 | 16,
                vec![
                    Step::Advance(10),
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    datagram(1, 0, heartbeat(4, 40002, vec![1, 4])),
                    datagram(
                        1,
                        0,
                        Msg {
                            data: Some(Data::Tcp(40002)),
                            ..peer(4, 2)
                        },
                    ),
                    Step::Advance(100),
                    Step::Query(QueryCmd {
                        targets: TargetsCmd {
                            sids: vec![],
                            resolver: Some(vec![12]),
                        },
                        data: Some(b"status".to_vec()),
                        id: Some(b"q1".to_vec()),
                        timeout_ms: Some(1500),
                        ..QueryCmd::default()
                    }),
                    Step::TransportOk(0),
                    datagram(
                        0,
                        1,
                        Msg {
                            ruid: Some(b"q1".to_vec()),
                            data: Some(Data::Bytes(b"echo:status".to_vec())),
                            ..peer(3, 5)
                        },
                    ),
                    Step::Query(QueryCmd {
                        targets: TargetsCmd {
                            sids: vec![3, 4],
                            resolver: None,
                        },
                        data: Some(b"again".to_vec()),
                        broadcast: true,
                        ..QueryCmd::default()
                    }),
                    datagram(
                        1,
                        0,
                        Msg {
                            ruid: Some(b"q1".to_vec()),
                            error: Some(b"denied".to_vec()),
                            ..peer(4, 5)
                        },
                    ),
                    Step::Advance(2500),
                    Step::CancelQuery(0),
                    Step::AdvanceSecs(5),
                ],
            ),
        ),
        (
            "flood-registry-then-expire",
            fast(
                0,
                (0..12u8)
                    .map(|sid| {
                        datagram(
                            sid % 3,
                            0,
                            heartbeat(sid, 40000 + u16::from(sid), vec![sid]),
                        )
                    })
                    .chain([
                        Step::Advance(1000),
                        Step::AdvanceSecs(3),
                        Step::Advance(100),
                    ])
                    .collect(),
            ),
        ),
        (
            "send-fails-then-ping-and-fallback",
            fast(
                0x80 | 8,
                vec![
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    datagram(1, 0, heartbeat(5, 40003, vec![1])),
                    Step::Send(SendCmd {
                        targets: TargetsCmd {
                            sids: vec![3, 5],
                            resolver: None,
                        },
                        broadcast: 2,
                        data: Some(b"hello".to_vec()),
                        ruid: Some(b"r-1".to_vec()),
                        ..SendCmd::default()
                    }),
                    Step::TransportFailed(0),
                    Step::TransportFailed(0),
                    Step::TransportOk(1),
                    Step::TransportFailed(0),
                    Step::Advance(60),
                    Step::Send(SendCmd {
                        targets: TargetsCmd {
                            sids: vec![],
                            resolver: Some(vec![10, 12]),
                        },
                        broadcast: 0,
                        protocols: Some(vec![0, 1]),
                        channel: 1,
                        data: Some(b"x".to_vec()),
                        raw: Some(vec![0xc0, 0x8d, 0, 0]),
                        ..SendCmd::default()
                    }),
                    Step::TransportFailed(0),
                    Step::Advance(1200),
                    Step::AdvanceSecs(2),
                ],
            ),
        ),
        (
            "pinged-answer-and-expected",
            fast(
                0,
                vec![
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    datagram(0, 0, heartbeat(6, 40004, vec![2])),
                    datagram(
                        0,
                        0,
                        Msg {
                            data: Some(Data::Sids(vec![OWN, 3, 6])),
                            ..peer(6, 3)
                        },
                    ),
                    Step::Expected {
                        sid: 3,
                        within_ms: 500,
                    },
                    Step::Advance(150),
                    datagram(
                        0,
                        0,
                        Msg {
                            data: Some(Data::Failed(vec![0])),
                            ..peer(6, 8)
                        },
                    ),
                    datagram(
                        0,
                        0,
                        Msg {
                            data: Some(Data::Both(40005)),
                            ..peer(6, 7)
                        },
                    ),
                    datagram(0, 0, peer(6, 0)),
                    Step::Advance(1500),
                ],
            ),
        ),
        (
            "tags-channels-and-leave",
            fast(
                4 | 32,
                vec![
                    Step::UpdateTags(vec![
                        TagEdit::Append(0),
                        TagEdit::Append(5),
                        TagEdit::Map(0, 1),
                        TagEdit::Replace(vec![0, 1, 2]),
                    ]),
                    Step::UpdateTags(vec![TagEdit::Append(8)]),
                    Step::UpdateTags(vec![TagEdit::ReplaceList(7), TagEdit::MapList(6)]),
                    Step::UpdateTags(vec![TagEdit::MappendList(10), TagEdit::Remove(0)]),
                    Step::SetUnixPath(Some(b"/tmp/fuzz.sock".to_vec())),
                    Step::SetTcpPort(Some(41001)),
                    Step::Subscribe(9),
                    datagram(
                        2,
                        2,
                        Msg {
                            channel: Some(5),
                            ..peer(7, 6)
                        },
                    ),
                    Step::Unsubscribe(5),
                    datagram(
                        2,
                        2,
                        Msg {
                            channel: Some(5),
                            ..peer(7, 6)
                        },
                    ),
                    Step::Discover,
                    Step::Discover,
                    Step::Heartbeat,
                    Step::HeartbeatAfter(20),
                    Step::Advance(30),
                    Step::Leave,
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    Step::Heartbeat,
                    Step::Advance(5000),
                ],
            ),
        ),
        (
            "reserved-channel-varints",
            fast(
                8,
                vec![
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    Step::Subscribe(250),
                    datagram(
                        0,
                        0,
                        Msg {
                            channel: Some(250),
                            ..peer(3, 6)
                        },
                    ),
                    Step::Send(SendCmd {
                        broadcast: 1,
                        channel: 250,
                        data: Some(b"on a reserved channel".to_vec()),
                        ..SendCmd::default()
                    }),
                    Step::Query(QueryCmd {
                        targets: TargetsCmd {
                            sids: vec![3],
                            resolver: None,
                        },
                        channel: 251,
                        data: Some(b"q".to_vec()),
                        ..QueryCmd::default()
                    }),
                    Step::Unsubscribe(250),
                    Step::Advance(2500),
                ],
            ),
        ),
        (
            "reference-profile-long-run",
            fast(
                1 | 8,
                vec![
                    datagram(0, 0, heartbeat(3, 40001, vec![0])),
                    Step::AdvanceSecs(200),
                    datagram(
                        0,
                        0,
                        Msg {
                            data: Some(Data::Sids(vec![3, 4])),
                            ..peer(3, 3)
                        },
                    ),
                    Step::AdvanceSecs(255),
                    Step::AdvanceSecs(255),
                    Step::AdvanceSecs(255),
                ],
            ),
        ),
        (
            "split-datagrams-clock-back-and-closed",
            fast(
                2,
                vec![
                    Step::Datagram(Datagram {
                        sender: 1,
                        via: 1,
                        local: false,
                        payload: Payload::Two(
                            Box::new(heartbeat(3, 40001, vec![0])),
                            Box::new(Msg {
                                filter: Some(vec![OWN]),
                                filter_first: true,
                                data: Some(Data::Bytes(b"to you".to_vec())),
                                ..peer(3, 6)
                            }),
                        ),
                        split: 30,
                    }),
                    Step::Datagram(Datagram {
                        sender: 2,
                        via: 0,
                        local: false,
                        payload: Payload::Raw(b"\x01\xc0\x8d\x05\x01\x00\x00".to_vec()),
                        split: 3,
                    }),
                    Step::ClockBack(500),
                    Step::ConnectionClosed { sender: 1, via: 1 },
                    Step::Advance(4000),
                    Step::Advance(2000),
                ],
            ),
        ),
    ]
}

fn write_all(seeds: &Seeds) {
    for (target, files) in seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).expect("create corpus folder");
        // Replace the old seeds; keep what the fuzzer found.
        for entry in fs::read_dir(&dir).expect("read corpus folder") {
            let path = entry.expect("entry").path();
            let is_seed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
            if is_seed {
                fs::remove_file(&path).expect("remove old seed");
            }
        }
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).expect("write seed");
        }
    }
}

#[test]
#[ignore = "writes corpus/<target>/seed-*; run it after changing the vectors or a layout"]
fn generate_seed_corpora() {
    let seeds = generate();
    write_all(&seeds);
    for (target, files) in &seeds {
        let size: usize = files.values().map(Vec::len).sum();
        println!("{target}: {} seeds, {size} bytes", files.len());
    }
}

#[test]
fn generated_seeds_are_committed() {
    let seeds = generate();
    let mut stale = Vec::new();
    for (target, files) in &seeds {
        let dir: &Path = &fuzz_dir().join("corpus").join(target);
        for (name, bytes) in files {
            if fs::read(dir.join(name)).ok().as_ref() != Some(bytes) {
                stale.push(format!("{target}/{name}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "seeds missing or stale (run `cargo test --manifest-path fuzz/Cargo.toml --test \
         gen_corpus -- --ignored`): {stale:?}"
    );
}
