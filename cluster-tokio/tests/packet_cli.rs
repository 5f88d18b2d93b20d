//! `cluster decode` and `cluster encode`, run as a process, against every golden frame vector.
//!
//! The vectors are cluster-core's unchanged copy of `shared/spec/vectors`, read at run time; a
//! missing or unparsable file fails the test.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use cluster_core::wire::MessageKind;
use cluster_tokio::packet;
use serde_json::{Map, Value as Json, json};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../cluster-core/tests/vectors");
const CLUSTER: &str = env!("CARGO_BIN_EXE_cluster");

fn load(file: &str) -> Json {
    let path = format!("{VECTORS}/{file}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden vectors at {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {path}: {e}"))
}

/// Runs `cluster <args>` with `input` on stdin.
fn cluster(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(CLUSTER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {CLUSTER}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    // Write from a thread so that a full stdout pipe cannot deadlock the test.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("cluster output");
    writer.join().expect("writer thread").expect("write stdin");
    output
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn parse_object(line: &str) -> Map<String, Json> {
    match serde_json::from_str(line) {
        Ok(Json::Object(object)) => object,
        other => panic!("not a JSON object: {line}: {other:?}"),
    }
}

/// A frame vector of a section: name, hex, and the whole entry.
fn frame_vectors<'j>(doc: &'j Json, section: &str) -> Vec<(&'j str, &'j str, &'j Json)> {
    let entries = doc[section]
        .as_array()
        .unwrap_or_else(|| panic!("section {section} missing"));
    assert!(!entries.is_empty(), "section {section} is empty");
    entries
        .iter()
        .map(|v| {
            let name = v["name"].as_str().expect("name");
            let hex = v["hex"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: hex missing"));
            (name, hex, v)
        })
        .collect()
}

/// `fields_in_wire_order` as `(name, value)` pairs, booleans written 0/1 as decode does.
fn pairs(fields: &Json) -> Vec<(String, Json)> {
    fields
        .as_array()
        .expect("fields_in_wire_order is an array")
        .iter()
        .map(|pair| {
            let name = pair[0].as_str().expect("field name").to_owned();
            let value = match &pair[1] {
                Json::Bool(flag) => json!(u8::from(*flag)),
                other => other.clone(),
            };
            (name, value)
        })
        .collect()
}

/// The object `cluster decode --json` must print for these fields: `kind` first, then each
/// field at its first position with its last value, then `duplicates` when a field repeats.
fn expected_object(fields: &Json) -> Vec<(String, Json)> {
    let pairs = pairs(fields);
    let kind = pairs
        .iter()
        .rev()
        .find(|(name, _)| name == "type")
        .map_or(Json::Null, |(_, value)| {
            json!(MessageKind::from_type(value.as_u64().expect("type")).name())
        });
    let mut object: Vec<(String, Json)> = vec![("kind".to_owned(), kind)];
    let mut repeated: Vec<Json> = Vec::new();
    for (name, value) in pairs {
        match object.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => {
                slot.1 = value;
                if !repeated.contains(&json!(name)) {
                    repeated.push(json!(name));
                }
            }
            None => object.push((name, value)),
        }
    }
    if !repeated.is_empty() {
        object.push(("duplicates".to_owned(), Json::Array(repeated)));
    }
    object
}

fn ordered(object: &Map<String, Json>) -> Vec<(String, Json)> {
    object
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// `fields_in_wire_order` (no repeats) as the JSON object line `cluster encode` reads.
fn encode_input(name: &str, fields: &Json) -> String {
    let mut object = Map::new();
    for (key, value) in pairs(fields) {
        assert!(
            object.insert(key.clone(), value).is_none(),
            "{name}: field {key} repeats; not encodable as an object"
        );
    }
    Json::Object(object).to_string()
}

/// Every frame vector of the two files' `vectors` and `peer_frames` sections:
/// `(name, hex, fields, encodable)`.
fn all_frame_vectors(docs: &[Json]) -> Vec<(String, String, Json, bool)> {
    let mut all = Vec::new();
    for doc in docs {
        for section in ["vectors", "peer_frames"] {
            if doc.get(section).is_none() && section == "peer_frames" {
                continue;
            }
            for (name, hex, entry) in frame_vectors(doc, section) {
                let fields = entry["fields_in_wire_order"].clone();
                assert!(fields.is_array(), "{name}: fields_in_wire_order missing");
                all.push((
                    name.to_owned(),
                    hex.to_owned(),
                    fields,
                    section == "vectors",
                ));
            }
        }
    }
    all
}

fn vector_docs() -> Vec<Json> {
    let docs = vec![load("handwritten.json"), load("captured.json")];
    assert!(
        docs[1].get("peer_frames").is_some(),
        "captured.json has no peer_frames section"
    );
    docs
}

#[test]
fn decode_json_gives_exactly_the_fields_of_every_frame_vector() {
    let vectors = all_frame_vectors(&vector_docs());
    let input: String = vectors
        .iter()
        .map(|(_, hex, _, _)| format!("{hex}\n"))
        .collect();
    let output = cluster(&["decode", "--json"], &input);
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr_text(&output)
    );
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), vectors.len(), "one output line per frame");
    for ((name, _, fields, _), line) in vectors.iter().zip(&lines) {
        let decoded = parse_object(line);
        assert_eq!(ordered(&decoded), expected_object(fields), "{name}: {line}");
    }
}

#[test]
fn encode_gives_exactly_the_hex_of_every_reference_vector() {
    let vectors: Vec<_> = all_frame_vectors(&vector_docs())
        .into_iter()
        .filter(|(_, _, _, encodable)| *encodable)
        .collect();
    assert!(!vectors.is_empty());
    let input: String = vectors
        .iter()
        .map(|(name, _, fields, _)| encode_input(name, fields) + "\n")
        .collect();
    let output = cluster(&["encode"], &input);
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr_text(&output)
    );
    assert_eq!(stderr_text(&output), "");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), vectors.len(), "one output line per object");
    for ((name, hex, _, _), line) in vectors.iter().zip(&lines) {
        assert_eq!(line, hex, "{name}");
    }
}

#[test]
fn decode_json_piped_into_encode_gives_back_every_frame() {
    let vectors = all_frame_vectors(&vector_docs());
    let input: String = vectors
        .iter()
        .map(|(_, hex, _, _)| format!("{hex}\n"))
        .collect();
    let decoded = cluster(&["decode", "--json"], &input);
    assert!(decoded.status.success());
    let encoded = cluster(&["encode"], &String::from_utf8(decoded.stdout).unwrap());
    assert!(encoded.status.success(), "{}", stderr_text(&encoded));
    assert_eq!(String::from_utf8(encoded.stdout).unwrap(), input);
}

/// Checks one decoded line against an `accept` expectation.
fn assert_accepted(name: &str, line: &str, fields: &Json) {
    let decoded = parse_object(line);
    assert!(
        decoded.get("error_kind").is_none(),
        "{name}: rejected: {line}"
    );
    assert_eq!(ordered(&decoded), expected_object(fields), "{name}: {line}");
}

fn assert_rejected(name: &str, decoded: &Json, error_kind: &str) {
    assert_eq!(decoded["error_kind"], error_kind, "{name}: {decoded}");
    assert!(
        decoded["error"].is_string(),
        "{name}: no message: {decoded}"
    );
    assert!(
        decoded.get("kind").is_none(),
        "{name}: bad line has a kind: {decoded}"
    );
}

#[test]
fn every_invalid_frame_case_gets_its_outcome() {
    let doc = load("invalid.json");
    let cases = frame_vectors(&doc, "frame_cases");
    // A blank line is skipped by the command, so blank-hex cases are checked apart.
    let (blank, lines_cases): (Vec<_>, Vec<_>) =
        cases.iter().partition(|(_, hex, _)| hex.trim().is_empty());
    let input: String = lines_cases
        .iter()
        .map(|(_, hex, _)| format!("{hex}\n"))
        .collect();
    let output = cluster(&["decode", "--json"], &input);
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), lines_cases.len(), "one output line per case");
    let mut any_bad = false;
    for ((name, _, case), line) in lines_cases.iter().zip(&lines) {
        let decoded: Json = serde_json::from_str(line).expect("JSON line");
        let bad = decoded.get("error_kind").is_some();
        any_bad |= bad;
        let error_kind = case["error_kind"].as_str();
        match case["expected"].as_str() {
            Some("error") => assert_rejected(name, &decoded, error_kind.expect("error_kind")),
            Some("accept") => {
                assert_accepted(name, line, &case["fields_in_wire_order"]);
                if let Some(effective) = case.get("effective").and_then(Json::as_object) {
                    for (key, value) in effective {
                        assert_eq!(&decoded[key], value, "{name}: effective {key}");
                    }
                }
            }
            Some("error_or_bytes") => {
                if bad {
                    assert_rejected(name, &decoded, error_kind.expect("error_kind"));
                } else {
                    let fields = &case["accept_alternative"]["fields_in_wire_order"];
                    assert_accepted(name, line, fields);
                }
            }
            other => panic!("{name}: unknown expectation {other:?}"),
        }
    }
    assert!(any_bad, "invalid.json should hold rejected cases");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a bad line makes the exit status 1"
    );
    for (name, hex, case) in blank {
        let output = cluster(&["decode", "--json"], &format!("{hex}\n"));
        assert!(output.status.success(), "{name}: a blank line is skipped");
        assert!(
            output.stdout.is_empty(),
            "{name}: a blank line prints nothing"
        );
        // The library call on the same line still classifies it.
        let decoded = packet::decode_line(hex);
        assert_eq!(case["expected"], "error", "{name}");
        assert_rejected(
            name,
            &decoded,
            case["error_kind"].as_str().expect("error_kind"),
        );
    }
}

/// A vector string value, with `{"repeat": s, "count": n}` expanded.
fn expand(value: &Json) -> Json {
    match value {
        Json::Object(object) if object.contains_key("repeat") => {
            let unit = object["repeat"].as_str().expect("repeat");
            let count = object["count"].as_u64().expect("count");
            json!(unit.repeat(usize::try_from(count).unwrap()))
        }
        other => other.clone(),
    }
}

#[test]
fn every_encoder_case_is_refused_or_written_as_listed() {
    let doc = load("invalid.json");
    let cases = doc["encoder_cases"].as_array().expect("encoder_cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let fields: Vec<Json> = case["fields_in_wire_order"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|pair| json!([pair[0], expand(&pair[1])]))
            .collect();
        let input = encode_input(name, &Json::Array(fields)) + "\n";
        let output = cluster(&["encode"], &input);
        match case["expected"].as_str() {
            Some("error") => {
                let kind = case["error_kind"].as_str().expect("error_kind");
                assert_eq!(output.status.code(), Some(1), "{name}");
                assert!(output.stdout.is_empty(), "{name}: wrote a frame");
                let stderr = stderr_text(&output);
                assert!(
                    stderr.starts_with(&format!("line 1: {kind}: ")),
                    "{name}: {stderr}"
                );
                // Without the compat check the frame is written, and decodes.
                let unchecked = cluster(&["encode", "--unchecked"], &input);
                assert!(
                    unchecked.status.success(),
                    "{name}: {}",
                    stderr_text(&unchecked)
                );
                let frame = stdout_lines(&unchecked).pop().expect("frame");
                let decoded = cluster(&["decode", "--json"], &frame);
                assert!(decoded.status.success(), "{name}: unchecked frame decodes");
            }
            Some("ok") => {
                assert!(output.status.success(), "{name}: {}", stderr_text(&output));
                let frame = stdout_lines(&output).pop().expect("frame");
                let frame_len = case["frame_len"].as_u64().expect("frame_len");
                assert_eq!(frame.len() as u64, frame_len * 2, "{name}: frame_len");
                let head = case["hex_head"].as_str().expect("hex_head");
                assert!(frame.starts_with(head), "{name}: hex_head");
            }
            other => panic!("{name}: unknown expectation {other:?}"),
        }
    }
}

/// The spec's periodic heartbeat example, built through `cluster encode`.
fn periodic_heartbeat() -> String {
    let fields = r#"{"sid":"AbCd1234","hid":"00:11:22:33:44:55","type":1,"channel":0,"protocols":["t","c"],"known":3}"#;
    let output = cluster(&["encode"], fields);
    assert!(output.status.success(), "{}", stderr_text(&output));
    stdout_lines(&output).pop().expect("frame")
}

#[test]
fn bad_lines_among_good_ones_are_reported_in_place_and_the_run_carries_on() {
    let good = periodic_heartbeat();
    let input = format!("{good}\nnot hex\n\n{good}\nc08d01800000\n{good} 00\n{good}\n");
    let output = cluster(&["decode", "--json"], &input);
    assert_eq!(output.status.code(), Some(1));
    let kinds: Vec<Json> = stdout_lines(&output)
        .iter()
        .map(|line| {
            let object = parse_object(line);
            object
                .get("error_kind")
                .or_else(|| object.get("kind"))
                .cloned()
                .unwrap_or(Json::Null)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "heartbeat",
            "bad_hex",
            "heartbeat",
            "truncated_varint",
            "trailing_bytes",
            "heartbeat"
        ]
    );
    let all_good = cluster(&["decode", "--json"], &format!("{good}\n\n{good}"));
    assert_eq!(all_good.status.code(), Some(0));
    assert_eq!(stdout_lines(&all_good).len(), 2);

    let encode_input = "{\"type\": 1}\n{\"type\": \"one\"}\n{\"type\": 2}\n";
    let encoded = cluster(&["encode"], encode_input);
    assert_eq!(encoded.status.code(), Some(1));
    assert_eq!(stdout_lines(&encoded), ["c08d0201010000", "c08d0201020000"]);
    assert!(stderr_text(&encoded).starts_with("line 2: bad_value: field `type`"));
}

#[test]
fn readable_summary_shows_one_line_per_frame() {
    let good = periodic_heartbeat();
    let output = cluster(&["decode"], &format!("{good}\nc08d01800000\n"));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&output),
        [
            "heartbeat sid=AbCd1234 hid=00:11:22:33:44:55 ch=0 protocols=[t c] known=3",
            "error: truncated_varint: varint cut by the end of the frame",
        ]
    );
}

#[test]
fn readable_summary_of_every_frame_vector_names_its_fields_in_wire_order() {
    let vectors = all_frame_vectors(&vector_docs());
    let input: String = vectors
        .iter()
        .map(|(_, hex, _, _)| format!("{hex}\n"))
        .collect();
    let output = cluster(&["decode"], &input);
    assert!(output.status.success(), "{}", stderr_text(&output));
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), vectors.len());
    for ((name, _, fields, _), line) in vectors.iter().zip(&lines) {
        let pairs = pairs(fields);
        let kind = pairs.iter().find(|(key, _)| key == "type").map_or_else(
            || "untyped".to_owned(),
            |(_, value)| MessageKind::from_type(value.as_u64().unwrap()).to_string(),
        );
        assert!(line.starts_with(&kind), "{name}: {line}");
        let mut rest = &line[kind.len()..];
        for (key, value) in pairs.iter().filter(|(key, _)| key != "type") {
            let label = if key == "channel" { "ch" } else { key.as_str() };
            let token = match value {
                Json::Number(number) => format!(" {label}={number}"),
                _ => format!(" {label}="),
            };
            let at = rest
                .find(&token)
                .unwrap_or_else(|| panic!("{name}: {token:?} missing or out of order in {line}"));
            rest = &rest[at + token.len()..];
        }
    }
}

#[test]
fn help_explains_how_to_tell_error_lines_from_response_errors() {
    let output = cluster(&["decode", "--help"], "");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("error_kind"), "{help}");
    assert!(help.contains("never has \"kind\""), "{help}");
    let output = cluster(&["encode", "--help"], "");
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("--unchecked")
    );
    assert_eq!(cluster(&[], "").status.code(), Some(2), "usage error");
}
