//! Property tests of the frame codec: round trips, exact sizes, and no panic on any input.

use cluster_core::wire::{
    Compat, EncodeError, FieldId, FilterPlacement, Frame, List, Message, MessageKind, Str,
    encode_fields,
};
use proptest::prelude::*;

/// An owned description of a message, from which a borrowed [`Message`] is built.
#[derive(Debug, Clone)]
struct Owned {
    kind: Option<u64>,
    channel: Option<u64>,
    hid: Option<String>,
    sid: Option<String>,
    known: Option<u64>,
    timestamp: Option<u64>,
    protocols: Option<Vec<String>>,
    ruid: Option<String>,
    op: Option<String>,
    data: Option<Vec<u8>>,
    raw: Option<Vec<u8>>,
    tags: Option<Vec<String>>,
    keepalive: Option<bool>,
    filter: Option<Vec<String>>,
    error: Option<String>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-zA-Z0-9 {}\\\\]{0,40}", Just(String::new())]
}

fn list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..6)
}

fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..300, any::<u64>()]
}

prop_compose! {
    fn owned()(
        kind in prop::option::of(0u64..12),
        channel in prop::option::of(varint()),
        hid in prop::option::of(text()),
        sid in prop::option::of(text()),
        known in prop::option::of(varint()),
        timestamp in prop::option::of(varint()),
        protocols in prop::option::of(list()),
        ruid in prop::option::of(text()),
        op in prop::option::of(text()),
        data in prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        tags in prop::option::of(list()),
        keepalive in prop::option::of(any::<bool>()),
        filter in prop::option::of(list()),
        error in prop::option::of(text()),
    ) -> Owned {
        Owned { kind, channel, hid, sid, known, timestamp, protocols, ruid, op, data, raw,
                tags, keepalive, filter, error }
    }
}

fn refs(list: &Option<Vec<String>>) -> Option<Vec<&str>> {
    list.as_ref()
        .map(|l| l.iter().map(String::as_str).collect())
}

fn check_round_trip(owned: &Owned, placement: FilterPlacement) -> Result<(), TestCaseError> {
    let protocols = refs(&owned.protocols);
    let tags = refs(&owned.tags);
    let filter = refs(&owned.filter);
    let message = Message {
        kind: owned.kind.map(MessageKind::from_type),
        channel: owned.channel,
        hid: owned.hid.as_deref().map(Str::from),
        sid: owned.sid.as_deref().map(Str::from),
        known: owned.known,
        timestamp: owned.timestamp,
        protocols: protocols.as_deref().map(List::from_items),
        ruid: owned.ruid.as_deref().map(Str::from),
        op: owned.op.as_deref().map(Str::from),
        data: owned.data.as_deref().map(Str::from_bytes),
        raw: owned.raw.as_deref(),
        tags: tags.as_deref().map(List::from_items),
        keepalive: owned.keepalive,
        filter: filter.as_deref().map(List::from_items),
        error: owned.error.as_deref().map(Str::from),
    };
    let len = match message.encoded_len(placement) {
        Ok(len) => len,
        Err(EncodeError::ReservedVarintPrefix { .. }) => return Ok(()),
        Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
    };
    let mut out = vec![0u8; len];
    prop_assert_eq!(message.encode(placement, &mut out), Ok(len));
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        prop_assert_eq!(
            message.encode(placement, &mut short),
            Err(EncodeError::BufferTooSmall { required: len })
        );
    }
    let (decoded, used) = Message::parse(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(used, len);
    prop_assert_eq!(decoded, message);
    // Encoding the decoded fields in wire order gives the same bytes.
    let (frame, _) = Frame::parse(&out).unwrap();
    let mut again = vec![0u8; len];
    prop_assert_eq!(
        encode_fields(frame.fields(), Compat::Reference, &mut again),
        Ok(len)
    );
    prop_assert_eq!(again, out);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_message_round_trips_with_filter_last(owned in owned()) {
        check_round_trip(&owned, FilterPlacement::Last)?;
    }

    #[test]
    fn any_message_round_trips_with_filter_first(owned in owned()) {
        check_round_trip(&owned, FilterPlacement::First)?;
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok((frame, used)) = Frame::parse(&bytes) {
            prop_assert!(used <= bytes.len());
            // Whatever decodes re-encodes to the same frame (booleans aside: any non-zero byte
            // reads as true and re-encodes as 01).
            let fields: Vec<_> = frame.fields().collect();
            let mut out = vec![0u8; used];
            if let Ok(len) = encode_fields(fields.iter().copied(), Compat::Unchecked, &mut out) {
                let (again, _) = Frame::parse(&out[..len]).unwrap();
                prop_assert_eq!(again.fields().collect::<Vec<_>>(), fields);
            }
        }
    }

    #[test]
    fn decoding_header_prefixed_noise_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = vec![0xC0, 0x8D];
        bytes.push(body.len() as u8 & 0x7F);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&[0, 0]);
        if let Ok((frame, _)) = Frame::parse(&bytes) {
            let message = Message::from_frame(&frame);
            let _ = message.kind;
            for field in frame.fields() {
                prop_assert!(FieldId::from_id(u64::from(field.id.id())).is_some());
            }
        }
    }
}
