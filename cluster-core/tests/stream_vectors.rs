//! Every stream vector: `stream_cases` of `invalid.json` and `multi_frame` of `captured.json`,
//! fed to the reassembler as the listed datagrams, and again one byte at a time.
//!
//! The vectors are an unchanged copy of `shared/spec/vectors`, read at run time.

mod common;

use std::net::SocketAddr;

use cluster_core::wire::{
    Compat, MAX_DATAGRAM, Reassembler, StreamItem, StreamTable, datagram_chunks, encode_fields,
    encode_varint, encoded_len_of_fields,
};
use common::{fields_from_json, fields_to_json, hex, load, normalized, unhex};
use serde_json::{Value as Json, json};

/// Large enough for every vector, including the 10,059-byte frame split over three datagrams.
const BUFFER: usize = 16_384;

type Table = StreamTable<SocketAddr, 4, BUFFER>;

/// A reported item in the vectors' JSON form: `{"frame": {hex, fields_in_wire_order}}` or
/// `{"error": kind}`.
fn item_json(item: StreamItem<'_>) -> Json {
    match item {
        StreamItem::Frame(frame) => {
            let body = frame.body();
            let mut len = [0u8; 10];
            let n = encode_varint(body.len() as u64, &mut len).expect("varint fits");
            let bytes = [&[0xC0, 0x8D][..], &len[..n], body, &[0, 0]].concat();
            json!({"frame": {"hex": hex(&bytes), "fields_in_wire_order": fields_to_json(frame.fields())}})
        }
        StreamItem::Error(error) => json!({ "error": error.kind() }),
    }
}

/// An expected item, checked for shape and normalised like [`item_json`].
fn expected_json(case: &str, expected: &Json) -> Json {
    let map = expected
        .as_object()
        .unwrap_or_else(|| panic!("{case}: expected result is not an object: {expected}"));
    assert_eq!(map.len(), 1, "{case}: expected result {expected}");
    if let Some(frame) = map.get("frame") {
        let hex_text = frame["hex"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: frame without hex"));
        let fields = &frame["fields_in_wire_order"];
        assert!(fields.is_array(), "{case}: frame without fields");
        json!({"frame": {"hex": hex_text, "fields_in_wire_order": normalized(fields)}})
    } else if let Some(kind) = map.get("error") {
        let kind = kind
            .as_str()
            .unwrap_or_else(|| panic!("{case}: error kind is not a string"));
        json!({ "error": kind })
    } else {
        panic!("{case}: unknown expected result {expected}")
    }
}

/// Compares item lists, printing shortened items on a mismatch (frames can be 20 KB of hex).
fn assert_items(context: &str, got: &[Json], expected: &[Json]) {
    let short = |items: &[Json]| -> Vec<String> {
        items
            .iter()
            .map(|item| {
                let text = item.to_string();
                if text.len() > 160 {
                    format!("{}... ({} chars)", &text[..160], text.len())
                } else {
                    text
                }
            })
            .collect()
    };
    if got != expected {
        panic!(
            "{context}: results differ\n got:      {:#?}\n expected: {:#?}",
            short(got),
            short(expected)
        );
    }
}

fn datagrams(case: &str, entry: &Json) -> Vec<Vec<u8>> {
    let list = entry["datagrams"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: datagrams missing"));
    assert!(!list.is_empty(), "{case}: no datagrams");
    list.iter()
        .map(|d| {
            unhex(
                d.as_str()
                    .unwrap_or_else(|| panic!("{case}: datagram not hex")),
            )
        })
        .collect()
}

/// The datagrams as they are, and each cut into single bytes.
fn chunkings(datagrams: &[Vec<u8>]) -> [Vec<Vec<u8>>; 2] {
    let bytes = datagrams
        .iter()
        .flat_map(|d| d.chunks(1).map(<[u8]>::to_vec))
        .collect();
    [datagrams.to_vec(), bytes]
}

/// Feeds one stream to a [`Reassembler`]; returns the items and whether bytes are pending.
fn run_single(chunks: &[Vec<u8>]) -> (Vec<Json>, bool) {
    let mut stream = Box::new(Reassembler::<BUFFER>::new());
    let mut items = Vec::new();
    for chunk in chunks {
        stream.push(chunk, |item| items.push(item_json(item)));
    }
    (items, stream.is_pending())
}

/// Feeds datagrams from several senders to a [`StreamTable`].
fn run_table(chunks: &[Vec<u8>], sources: &[SocketAddr]) -> (Vec<Json>, bool) {
    let mut table = Box::new(Table::new());
    let mut items = Vec::new();
    for (now, (datagram, source)) in (0u64..).zip(chunks.iter().zip(sources)) {
        table.push(now, *source, datagram, |item| items.push(item_json(item)));
    }
    let pending = sources.iter().any(|s| table.is_pending(s));
    (items, pending)
}

/// One chunking's datagrams, and the sender of each (every byte keeps its datagram's sender).
fn with_sources(
    datagrams: &[Vec<u8>],
    sources: &[SocketAddr],
) -> [(Vec<Vec<u8>>, Vec<SocketAddr>); 2] {
    let whole = (datagrams.to_vec(), sources.to_vec());
    let mut bytes = (Vec::new(), Vec::new());
    for (datagram, source) in datagrams.iter().zip(sources) {
        for byte in datagram.chunks(1) {
            bytes.0.push(byte.to_vec());
            bytes.1.push(*source);
        }
    }
    [whole, bytes]
}

#[test]
fn every_stream_case_gives_its_expected_results() {
    let doc = load("invalid.json");
    let cases = doc["stream_cases"]
        .as_array()
        .expect("stream_cases missing");
    assert!(!cases.is_empty(), "stream_cases is empty");
    for case in cases {
        let name = case["name"].as_str().expect("stream case without a name");
        let datagrams = datagrams(name, case);
        let expected: Vec<Json> = case["expected_results"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: expected_results missing"))
            .iter()
            .map(|e| expected_json(name, e))
            .collect();
        let pending = case["pending_partial_frame"]
            .as_bool()
            .unwrap_or_else(|| panic!("{name}: pending_partial_frame missing"));

        match case.get("sources") {
            None => {
                for (how, chunks) in ["datagrams", "bytes"].iter().zip(chunkings(&datagrams)) {
                    let (items, is_pending) = run_single(&chunks);
                    assert_items(&format!("{name} ({how})"), &items, &expected);
                    assert_eq!(is_pending, pending, "{name} ({how}): pending partial frame");
                }
                // The same stream from one sender through a table.
                let one: SocketAddr = "192.0.2.1:23000".parse().unwrap();
                let sources = vec![one; datagrams.len()];
                let (items, is_pending) = run_table(&datagrams, &sources);
                assert_items(&format!("{name} (table)"), &items, &expected);
                assert_eq!(is_pending, pending, "{name} (table): pending partial frame");
            }
            Some(sources) => {
                let sources: Vec<SocketAddr> = sources
                    .as_array()
                    .unwrap_or_else(|| panic!("{name}: sources is not a list"))
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_else(|| panic!("{name}: bad source {s}"))
                    })
                    .collect();
                assert_eq!(
                    sources.len(),
                    datagrams.len(),
                    "{name}: one source per datagram"
                );
                for (how, (chunks, sources)) in ["datagrams", "bytes"]
                    .iter()
                    .zip(with_sources(&datagrams, &sources))
                {
                    let (items, is_pending) = run_table(&chunks, &sources);
                    assert_items(&format!("{name} ({how})"), &items, &expected);
                    assert_eq!(is_pending, pending, "{name} ({how}): pending partial frame");
                }
            }
        }
    }
}

#[test]
fn every_multi_frame_case_gives_exactly_its_frames() {
    let doc = load("captured.json");
    let cases = doc["multi_frame"].as_array().expect("multi_frame missing");
    assert!(!cases.is_empty(), "multi_frame is empty");
    let mut chunked_large_frames = 0;
    for case in cases {
        let name = case["name"]
            .as_str()
            .expect("multi_frame case without a name");
        let datagrams = datagrams(name, case);
        let frames = case["frames"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: frames missing"));
        assert!(!frames.is_empty(), "{name}: no frames");
        let expected: Vec<Json> = frames
            .iter()
            .map(|frame| {
                let bytes = unhex(frame["hex"].as_str().expect("frame hex"));
                let frame_len = frame["frame_len"].as_u64().expect("frame_len");
                assert_eq!(bytes.len() as u64, frame_len, "{name}: frame_len");
                let body_len = frame["body_len"].as_u64().expect("body_len");
                let mut len = [0u8; 10];
                let n = encode_varint(body_len, &mut len).unwrap();
                assert_eq!(&bytes[2..2 + n], &len[..n], "{name}: body_len");
                expected_json(name, &json!({ "frame": frame }))
            })
            .collect();

        for (how, chunks) in ["datagrams", "bytes"].iter().zip(chunkings(&datagrams)) {
            let (items, pending) = run_single(&chunks);
            assert_items(&format!("{name} ({how})"), &items, &expected);
            assert!(!pending, "{name} ({how}): nothing may be left pending");
        }
        let source: SocketAddr = case
            .get("src")
            .map_or("192.0.2.1:23000", |s| s.as_str().expect("src"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: bad src: {e}"));
        let (items, pending) = run_table(&datagrams, &vec![source; datagrams.len()]);
        assert_items(&format!("{name} (table)"), &items, &expected);
        assert!(!pending, "{name} (table): nothing may be left pending");

        // A frame sent alone by multicast: encoding its fields and chunking the frame for UDP
        // must give exactly the captured datagrams.
        let transport = case["transport"].as_str().expect("transport");
        if transport == "udp-multicast" && frames.len() == 1 {
            let fields = fields_from_json(&frames[0]["fields_in_wire_order"]);
            let len = encoded_len_of_fields(fields.iter().copied(), Compat::Reference)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut out = vec![0u8; len];
            encode_fields(fields.iter().copied(), Compat::Reference, &mut out)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let chunks: Vec<Vec<u8>> = datagram_chunks(&out).map(<[u8]>::to_vec).collect();
            assert_eq!(
                chunks.iter().map(|c| hex(c)).collect::<Vec<_>>(),
                datagrams.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                "{name}: datagrams of the encoded frame"
            );
            if len > MAX_DATAGRAM {
                chunked_large_frames += 1;
            }
        }
    }
    assert!(
        chunked_large_frames > 0,
        "no multi_frame case checks the chunking of a frame over {MAX_DATAGRAM} bytes"
    );
}
