//! A byte stuffing that leaves no `C0` in the stuffed bytes, so that a sealed frame never
//! holds the two bytes `C0 8D` anywhere but in its header.
//!
//! Why it matters: the reference's stream parser resynchronises on the next `C0 8D` it finds
//! after a frame it could not cut (spec 2.5). Ciphertext is uniformly random, so about one
//! sealed frame in 256 would carry a `C0 8D` inside it; a reference node that lost the start
//! of such a frame (a lost datagram of a chunked frame, or Q7's interleaving) would take those
//! two bytes for a header, read a random length and wait for it, swallowing every frame that
//! follows until that many bytes arrived (spec 2.5: "with a huge length that is forever").
//! Without any `C0`, a stuffed run offers no false header, and the parser skips it as garbage.
//!
//! The stuffing is consistent-overhead byte stuffing (COBS) with `C0` in the role of the
//! removed byte: the input is cut at every `C0` into runs of other bytes, and each run is
//! written as a code byte (its length plus one, XOR `C0`, so never `C0`) followed by the run's
//! bytes unchanged. A run longer than 254 bytes is split, with code 255 meaning "254 bytes and
//! no `C0` after them". The overhead is one byte per 254 bytes plus one, whatever the input:
//! [`max_len`] bounds it, so buffers are sized up front.

/// The byte stuffed bytes never contain.
const AVOID: u8 = 0xC0;
/// The longest run one code byte covers.
const MAX_RUN: usize = 254;
/// The code of a full run (no `C0` follows it).
const FULL: u8 = 255;

/// The most bytes `len` input bytes take once stuffed.
#[cfg(test)]
pub(crate) const fn max_len(len: usize) -> usize {
    len + len / MAX_RUN + 1
}

/// The exact number of bytes `input` takes once stuffed.
pub(crate) fn stuffed_len(input: &[u8]) -> usize {
    let mut len: usize = 1;
    let mut run: usize = 0;
    for &byte in input {
        if byte == AVOID {
            len += 1;
            run = 0;
        } else {
            len += 1;
            run += 1;
            if run == MAX_RUN {
                len += 1;
                run = 0;
            }
        }
    }
    len
}

/// Stuffs `buf[from..from + len]` into `buf[to..]`, where `to + 2 + len / 254 <= from`, and
/// returns the stuffed length; `None` when `buf` is too short or the regions are too close.
///
/// Works within one buffer so that a frame can be sealed in the caller's transmit buffer: the
/// writes stay behind the reads because the output gains at most one byte per 254 read.
pub(crate) fn stuff_within(buf: &mut [u8], from: usize, len: usize, to: usize) -> Option<usize> {
    let end = from.checked_add(len)?;
    if end > buf.len() || to.checked_add(2 + len / MAX_RUN)? > from {
        return None;
    }
    let mut code_at = to;
    let mut out = to.checked_add(1)?;
    let mut code: u8 = 1;
    for read in from..end {
        let byte = *buf.get(read)?;
        if byte == AVOID {
            *buf.get_mut(code_at)? = code ^ AVOID;
            code_at = out;
            out += 1;
            code = 1;
        } else {
            *buf.get_mut(out)? = byte;
            out += 1;
            code += 1;
            if code == FULL {
                *buf.get_mut(code_at)? = FULL ^ AVOID;
                code_at = out;
                out += 1;
                code = 1;
            }
        }
    }
    *buf.get_mut(code_at)? = code ^ AVOID;
    Some(out - to)
}

/// Why stuffed bytes could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnstuffError {
    /// A `C0` or a run cut short: these bytes were not written by [`stuff_within`].
    Malformed,
    /// The output does not fit in the buffer given.
    TooLong,
}

/// Reads stuffed `input` back into `out` and returns the length written.
#[expect(
    clippy::manual_contains,
    reason = "`<[u8]>::contains` links core's `memchr`, larger in flash than this walk"
)]
pub(crate) fn unstuff(input: &[u8], out: &mut [u8]) -> Result<usize, UnstuffError> {
    let mut written: usize = 0;
    let mut rest = input;
    if rest.is_empty() {
        return Err(UnstuffError::Malformed);
    }
    while let Some((&code, after)) = rest.split_first() {
        let code = code ^ AVOID;
        if code == 0 {
            return Err(UnstuffError::Malformed);
        }
        let run = usize::from(code) - 1;
        let (bytes, after) = after.split_at_checked(run).ok_or(UnstuffError::Malformed)?;
        if bytes.iter().any(|&b| b == AVOID) {
            return Err(UnstuffError::Malformed);
        }
        let end = written.checked_add(run).ok_or(UnstuffError::TooLong)?;
        out.get_mut(written..end)
            .ok_or(UnstuffError::TooLong)?
            .copy_from_slice(bytes);
        written = end;
        rest = after;
        // A `C0` follows every run but a full one and the last.
        if code != FULL && !rest.is_empty() {
            *out.get_mut(written).ok_or(UnstuffError::TooLong)? = AVOID;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn stuff(input: &[u8]) -> Vec<u8> {
        let gap = 2 + input.len() / MAX_RUN;
        let mut buf = vec![0u8; gap + max_len(input.len()).max(input.len())];
        buf[gap..gap + input.len()].copy_from_slice(input);
        let len = stuff_within(&mut buf, gap, input.len(), 0).unwrap();
        buf.truncate(len);
        buf
    }

    fn unstuffed(stuffed: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; stuffed.len()];
        let len = unstuff(stuffed, &mut out).unwrap();
        out.truncate(len);
        out
    }

    #[test]
    fn known_inputs_stuff_to_known_bytes() {
        // Code bytes are the run length plus one, XOR C0.
        assert_eq!(stuff(&[]), [0x01 ^ 0xC0]);
        assert_eq!(stuff(&[0xC0]), [0xC1, 0xC1]);
        assert_eq!(stuff(&[0x11, 0xC0, 0x22]), [0xC2, 0x11, 0xC2, 0x22]);
        assert_eq!(stuff(&[0xC0, 0x8D]), [0xC1, 0xC2, 0x8D]);
    }

    #[test]
    fn a_254_byte_run_takes_one_full_code_and_an_empty_last_run() {
        let input = [0x55u8; 254];
        let stuffed = stuff(&input);
        assert_eq!(stuffed.len(), 256);
        assert_eq!(stuffed[0], FULL ^ AVOID);
        assert_eq!(stuffed[255], 0x01 ^ AVOID);
        assert_eq!(unstuffed(&stuffed), input);
    }

    #[test]
    fn malformed_stuffing_is_refused() {
        let mut out = [0u8; 16];
        assert_eq!(unstuff(&[], &mut out), Err(UnstuffError::Malformed));
        assert_eq!(unstuff(&[0xC0], &mut out), Err(UnstuffError::Malformed));
        // A run of 2 announced, 1 present.
        assert_eq!(
            unstuff(&[0xC3, 0x11], &mut out),
            Err(UnstuffError::Malformed)
        );
        // A C0 inside a run.
        assert_eq!(
            unstuff(&[0xC3, 0xC0, 0x11], &mut out),
            Err(UnstuffError::Malformed)
        );
        let mut small = [0u8; 1];
        assert_eq!(
            unstuff(&[0xC3, 0x11, 0x22], &mut small),
            Err(UnstuffError::TooLong)
        );
    }

    #[test]
    fn regions_too_close_are_refused() {
        let mut buf = [0u8; 16];
        assert_eq!(stuff_within(&mut buf, 1, 4, 0), None);
        assert_eq!(stuff_within(&mut buf, 2, 20, 0), None);
        assert!(stuff_within(&mut buf, 2, 4, 0).is_some());
    }

    proptest! {
        #[test]
        fn stuffing_round_trips_has_no_c0_and_a_bounded_exact_length(
            input in proptest::collection::vec(
                prop_oneof![Just(0xC0u8), Just(0x8Du8), any::<u8>()], 0..2000)
        ) {
            let stuffed = stuff(&input);
            prop_assert!(!stuffed.contains(&AVOID));
            prop_assert_eq!(stuffed.len(), stuffed_len(&input));
            prop_assert!(stuffed.len() <= max_len(input.len()));
            prop_assert_eq!(unstuffed(&stuffed), input);
        }

        #[test]
        fn unstuffing_any_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = vec![0u8; 700];
            let _ = unstuff(&input, &mut out);
            let mut small = [0u8; 3];
            let _ = unstuff(&input, &mut small);
        }
    }
}
