//! Every golden frame vector decodes to its listed fields and re-encodes to its exact bytes.
//!
//! The vectors are an unchanged copy of `shared/spec/vectors`, read at run time.

mod common;

use cluster_core::wire::{
    Compat, DecodeError, EncodeError, Frame, Message, datagram_chunks, encode_fields,
    encoded_len_of_fields,
};
use common::{fields_from_json, fields_to_json, frame_vectors, hex, load, normalized, unhex};
use serde_json::Value as Json;

fn assert_decodes(name: &str, hex_text: &str, expected: &Json) {
    let bytes = unhex(hex_text);
    let (frame, used) =
        Frame::parse(&bytes).unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
    assert_eq!(used, bytes.len(), "{name}: frame length");
    assert_eq!(
        fields_to_json(frame.fields()),
        normalized(expected),
        "{name}: fields"
    );
}

fn assert_encodes(name: &str, hex_text: &str, fields: &Json) {
    let fields = fields_from_json(fields);
    let required = encoded_len_of_fields(fields.iter().copied(), Compat::Reference)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = vec![0u8; required];
    let len = encode_fields(fields.iter().copied(), Compat::Reference, &mut out)
        .unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
    assert_eq!(len, required, "{name}: encoded_len is exact");
    assert_eq!(hex(&out[..len]), hex_text, "{name}: bytes");
}

#[test]
fn handwritten_vectors_round_trip_byte_exact() {
    let doc = load("handwritten.json");
    for (name, hex_text, fields) in frame_vectors(&doc, "vectors") {
        assert_decodes(name, hex_text, fields);
        assert_encodes(name, hex_text, fields);
    }
}

#[test]
fn captured_reference_frames_round_trip_byte_exact() {
    let doc = load("captured.json");
    for (name, hex_text, fields) in frame_vectors(&doc, "vectors") {
        assert_decodes(name, hex_text, fields);
        assert_encodes(name, hex_text, fields);
    }
}

#[test]
fn peer_frames_the_reference_accepted_decode() {
    let doc = load("captured.json");
    for (name, hex_text, fields) in frame_vectors(&doc, "peer_frames") {
        assert_decodes(name, hex_text, fields);
    }
}

#[test]
fn vector_frame_and_body_lengths_match_the_bytes() {
    for (file, section) in [
        ("handwritten.json", "vectors"),
        ("captured.json", "vectors"),
        ("captured.json", "peer_frames"),
    ] {
        let doc = load(file);
        for entry in doc[section].as_array().unwrap() {
            let bytes = unhex(entry["hex"].as_str().unwrap());
            let (frame, _) = Frame::parse(&bytes).unwrap();
            assert_eq!(bytes.len() as u64, entry["frame_len"].as_u64().unwrap());
            assert_eq!(
                frame.body().len() as u64,
                entry["body_len"].as_u64().unwrap()
            );
        }
    }
}

/// The reference's field order per message kind (spec 3.4), derived by [`Message::fields`],
/// reproduces every captured reference frame. The placement of `filter` is the only input the
/// caller gives: first on broadcasts, last on direct sends.
#[test]
fn message_encoder_reproduces_reference_field_order() {
    for (file, section) in [
        ("handwritten.json", "vectors"),
        ("captured.json", "vectors"),
    ] {
        let doc = load(file);
        for (name, hex_text, _) in frame_vectors(&doc, section) {
            let bytes = unhex(hex_text);
            let (frame, _) = Frame::parse(&bytes).unwrap();
            let message = Message::from_frame(&frame);
            let filter_first = frame
                .fields()
                .next()
                .is_some_and(|f| f.id == cluster_core::wire::FieldId::Filter);
            let placement = if filter_first {
                cluster_core::wire::FilterPlacement::First
            } else {
                cluster_core::wire::FilterPlacement::Last
            };
            let mut out = vec![0u8; bytes.len()];
            let len = message
                .encode(placement, &mut out)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(hex(&out[..len]), hex_text, "{name}: reference field order");
        }
    }
}

#[test]
fn invalid_frame_cases_give_their_outcome() {
    let doc = load("invalid.json");
    let cases = doc["frame_cases"].as_array().expect("frame_cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(case["hex"].as_str().unwrap());
        let result = Frame::parse(&bytes);
        match case["expected"].as_str().unwrap() {
            "error" => {
                let err = result.err().unwrap_or_else(|| panic!("{name}: accepted"));
                assert_eq!(err.kind(), case["error_kind"].as_str().unwrap(), "{name}");
            }
            "accept" => {
                let (frame, used) = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(used, bytes.len(), "{name}");
                assert_eq!(
                    fields_to_json(frame.fields()),
                    normalized(&case["fields_in_wire_order"]),
                    "{name}"
                );
                if let Some(effective) = case.get("effective") {
                    let message = Message::from_frame(&frame);
                    for (key, value) in effective.as_object().unwrap() {
                        assert_eq!(key, "data", "{name}: only `data` is checked here");
                        assert_eq!(
                            message.data.unwrap().to_str().unwrap(),
                            value.as_str().unwrap(),
                            "{name}: last duplicate wins"
                        );
                    }
                }
            }
            "error_or_bytes" => match result {
                Err(err) => assert_eq!(err.kind(), case["error_kind"].as_str().unwrap()),
                Ok((frame, _)) => assert_eq!(
                    fields_to_json(frame.fields()),
                    normalized(&case["accept_alternative"]["fields_in_wire_order"]),
                    "{name}"
                ),
            },
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
}

#[test]
fn encoder_cases_refuse_reserved_varints_and_accept_the_rest() {
    let doc = load("invalid.json");
    let cases = doc["encoder_cases"].as_array().expect("encoder_cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let fields = fields_from_json(&case["fields_in_wire_order"]);
        let mut out = vec![0u8; 70_000];
        let result = encode_fields(fields.iter().copied(), Compat::Reference, &mut out);
        match case["expected"].as_str().unwrap() {
            "error" => {
                let err = result.err().unwrap_or_else(|| panic!("{name}: encoded"));
                assert_eq!(case["error_kind"], "reserved_varint_prefix", "{name}");
                assert!(
                    matches!(err, EncodeError::ReservedVarintPrefix { .. }),
                    "{name}: {err:?}"
                );
                // The same payload goes through when the caller opts out of compat mode, and
                // this project's decoder reads it back unchanged.
                let len = encode_fields(fields.iter().copied(), Compat::Unchecked, &mut out)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let (frame, _) = Frame::parse(&out[..len]).unwrap();
                assert_eq!(frame.fields().collect::<Vec<_>>(), fields, "{name}");
            }
            "ok" => {
                let len = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(len as u64, case["frame_len"].as_u64().unwrap(), "{name}");
                let head = case["hex_head"].as_str().unwrap();
                assert!(hex(&out[..len]).starts_with(head), "{name}: head");
                if let Some(digest) = case.get("sha256").and_then(Json::as_str) {
                    assert_eq!(sha256_hex(&out[..len]), digest, "{name}: sha256");
                }
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
}

#[test]
fn a_frame_decodes_from_the_front_of_a_longer_buffer() {
    let doc = load("handwritten.json");
    let (_, hex_text, _) = frame_vectors(&doc, "vectors")[0];
    let mut bytes = unhex(hex_text);
    let len = bytes.len();
    bytes.extend_from_slice(&[0xC0, 0x8D, 0x80]);
    let (_, used) = Frame::parse(&bytes).unwrap();
    assert_eq!(used, len);
    assert_eq!(
        Frame::parse(&bytes[len..]),
        Err(DecodeError::TruncatedVarint)
    );
}

#[test]
fn large_frame_leaves_as_the_reference_datagrams() {
    let doc = load("captured.json");
    let cases = doc["multi_frame"].as_array().unwrap();
    let split = cases
        .iter()
        .filter(|c| c["frames"].as_array().is_some_and(|f| f.len() == 1))
        .filter(|c| c["datagrams"].as_array().is_some_and(|d| d.len() > 1))
        .filter(|c| c.get("derived").is_none() && c.get("sources").is_none());
    let mut seen = 0;
    for case in split {
        let frame = &case["frames"][0];
        let fields = fields_from_json(&frame["fields_in_wire_order"]);
        let mut out = vec![0u8; 65_536];
        let len = encode_fields(fields.iter().copied(), Compat::Reference, &mut out).unwrap();
        let chunks: Vec<String> = datagram_chunks(&out[..len]).map(hex).collect();
        let expected: Vec<&str> = case["datagrams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(chunks, expected, "{}", case["name"]);
        seen += 1;
    }
    assert!(
        seen >= 1,
        "no reference multi-datagram frame found in captured.json"
    );
}

/// A small SHA-256 for checking the encoder vectors' digests (test-only; FIPS 180-4).
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(add);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_helper_matches_a_known_digest() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
