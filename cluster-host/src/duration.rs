//! Durations written as on the command line: `1s`, `500ms`, `2m`, `1.5s`.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text is empty.
    #[error("empty duration")]
    Empty,
    /// The number part is missing or not a decimal number.
    #[error("bad number in duration {0:?}")]
    BadNumber(String),
    /// The unit is none of `ms`, `s`, `m`, `h`.
    #[error("unknown unit in duration {0:?} (use ms, s, m or h)")]
    BadUnit(String),
    /// The value does not fit in a [`Duration`] of whole milliseconds.
    #[error("duration {0:?} is too large")]
    TooLarge(String),
}

/// Parses `500ms`, `1s`, `1.5s`, `2m` or `1h` (a bare number is seconds).
///
/// The value is rounded to whole milliseconds, the precision of the node's clock.
///
/// ```
/// use std::time::Duration;
/// use cluster_host::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
/// assert!(parse_duration("2 parsecs").is_err());
/// ```
///
/// # Errors
///
/// [`DurationError`] for an empty text, a bad number, an unknown unit or an overflow.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::BadUnit(text.to_owned())),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(DurationError::BadNumber(text.to_owned()));
    }
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(whole) || !digits_ok(fraction) {
        return Err(DurationError::BadNumber(text.to_owned()));
    }
    let too_large = || DurationError::TooLarge(text.to_owned());
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut ms = whole.checked_mul(per_unit_ms).ok_or_else(too_large)?;
    // The fraction, in units of `per_unit_ms`, to the nearest millisecond (at most 9 digits
    // count).
    let fraction = fraction.get(..fraction.len().min(9)).unwrap_or_default();
    if !fraction.is_empty() {
        let scale = 10u64.pow(u32::try_from(fraction.len()).unwrap_or(9));
        let numerator: u64 = fraction.parse().map_err(|_| too_large())?;
        let part = (u128::from(numerator) * u128::from(per_unit_ms) + u128::from(scale) / 2)
            / u128::from(scale);
        ms = ms
            .checked_add(u64::try_from(part).map_err(|_| too_large())?)
            .ok_or_else(too_large)?;
    }
    Ok(Duration::from_millis(ms))
}

/// Writes a duration the way [`parse_duration`] reads it: `500ms`, `2s`, `1500ms`.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions_are_read_to_the_millisecond() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.0005s"), Ok(Duration::from_millis(1001)));
    }

    #[test]
    fn bad_durations_are_typed_errors() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.2.3s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("5 days"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["500ms", "2s", "1500ms", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}
