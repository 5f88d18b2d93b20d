//! Body of the `decode` target.

use cluster_core::wire::{
    Compat, EncodeError, Field, FilterPlacement, Frame, Message, decode_varint, encode_fields,
    encode_varint, encoded_len_of_fields, varint_len,
};

/// See [`crate::decode`].
pub fn run(data: &[u8]) {
    varint_round_trip(data);
    let Ok((frame, used)) = Frame::parse(data) else {
        return;
    };
    // Header, a length varint, the body and the footer.
    assert!(
        (5..=data.len()).contains(&used),
        "used {used} of {}",
        data.len()
    );
    assert!(frame.body().len() <= used - 5);

    let fields: Vec<Field<'_>> = frame.fields().collect();
    let encoded = encode(&fields, Compat::Unchecked)
        .unwrap_or_else(|e| panic!("decoded fields must encode unchecked: {e:?}"));
    let (again, again_used) =
        Frame::parse(&encoded).unwrap_or_else(|e| panic!("a re-encoded frame must decode: {e:?}"));
    assert_eq!(
        again_used,
        encoded.len(),
        "the re-encoded frame is used whole"
    );
    let fields_again: Vec<Field<'_>> = again.fields().collect();
    assert_eq!(fields, fields_again, "decode(encode(fields)) == fields");
    // The encoding is canonical: encoding the decoded fields again gives the same bytes.
    let encoded_again = encode(&fields_again, Compat::Unchecked).expect("encodes again");
    assert_eq!(encoded, encoded_again, "encoding is idempotent");
    // Reference mode writes the same bytes, or refuses a reserved varint.
    match encode(&fields, Compat::Reference) {
        Ok(reference) => assert_eq!(reference, encoded, "compat modes agree"),
        Err(EncodeError::ReservedVarintPrefix { value, .. }) => {
            assert!(cluster_core::wire::is_reserved_prefix(value));
        }
        Err(e) => panic!("unexpected reference-mode error {e:?}"),
    }

    // The typed view.
    let message = Message::from_frame(&frame);
    let (parsed, parsed_used) = Message::parse(data).expect("Message::parse agrees with Frame");
    assert_eq!(parsed, message);
    assert_eq!(parsed_used, used);
    for placement in [FilterPlacement::First, FilterPlacement::Last] {
        message_round_trip(&message, placement);
    }
}

fn encode(fields: &[Field<'_>], compat: Compat) -> Result<Vec<u8>, EncodeError> {
    let len = encoded_len_of_fields(fields.iter().copied(), compat)?;
    let mut out = vec![0; len];
    let written = encode_fields(fields.iter().copied(), compat, &mut out)?;
    assert_eq!(written, len, "encoded_len_of_fields is exact");
    if let Some(short) = len.checked_sub(1) {
        let mut small = vec![0; short];
        assert_eq!(
            encode_fields(fields.iter().copied(), compat, &mut small),
            Err(EncodeError::BufferTooSmall { required: len }),
            "a short buffer is refused with the exact size"
        );
    }
    Ok(out)
}

fn message_round_trip(message: &Message<'_>, placement: FilterPlacement) {
    let len = encoded_len_of_fields(message.fields(placement), Compat::Unchecked)
        .expect("a decoded message encodes unchecked");
    let mut out = vec![0; len];
    let written = message
        .encode_with(placement, Compat::Unchecked, &mut out)
        .expect("a decoded message encodes unchecked");
    assert_eq!(written, len);
    let (back, back_used) = Message::parse(&out).expect("an encoded message decodes");
    assert_eq!(back_used, len);
    assert_eq!(&back, message, "Message round trip ({placement:?})");

    // Reference mode: `encoded_len` and `encode` agree, and write the unchecked bytes.
    let mut reference = vec![0; len];
    match (
        message.encoded_len(placement),
        message.encode(placement, &mut reference),
    ) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert_eq!(reference, out);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("encoded_len {a:?} and encode {b:?} disagree"),
    }
}

fn varint_round_trip(data: &[u8]) {
    let Ok((value, used)) = decode_varint(data) else {
        return;
    };
    assert!((1..=10).contains(&used));
    let len = varint_len(value);
    assert!(len <= used, "the canonical form is the shortest");
    let mut out = [0u8; 10];
    assert_eq!(encode_varint(value, &mut out), Some(len));
    assert_eq!(decode_varint(&out[..len]), Ok((value, len)));
    if len > 0 {
        assert_eq!(encode_varint(value, &mut out[..len - 1]), None);
    }
}
