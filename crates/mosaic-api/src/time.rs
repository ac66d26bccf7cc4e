//! Times and days as the API takes them, checked here so that what the document says
//! (`format` and `pattern` on every time parameter and field) is exactly what is accepted:
//! a time is RFC 3339 in UTC (`2026-12-04T18:30:00Z`, fractions of a second allowed, from
//! 1970 on), a day is `YYYY-MM-DD`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The shape of a time, as the document states it (next to `format: date-time`).
pub const TIMESTAMP_PATTERN: &str = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$";
/// The shape of a day, as the document states it (next to `format: date`).
pub const DAY_PATTERN: &str =
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `s` is a day `YYYY-MM-DD` of 1970 or later that exists in the calendar.
pub fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => {
            (1970..=9999).contains(&y)
                && (1..=12).contains(&m)
                && (1..=days_in_month(y, m)).contains(&d)
        }
        _ => false,
    }
}

/// Whether `s` is a time in the API's form (see the module).
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.get(..10).is_some_and(is_day) || b[10] != b'T' || b[b.len() - 1] != b'Z' {
        return false;
    }
    let clock = &b[11..19];
    let fraction = &b[19..b.len() - 1];
    let clock_ok = clock[2] == b':'
        && clock[5] == b':'
        && matches!(digits(&clock[0..2]), Some(h) if h < 24)
        && matches!(digits(&clock[3..5]), Some(m) if m < 60)
        && matches!(digits(&clock[6..8]), Some(s) if s < 60);
    let fraction_ok = fraction.is_empty()
        || (fraction[0] == b'.'
            && (2..=10).contains(&fraction.len())
            && digits(&fraction[1..]).is_some());
    clock_ok && fraction_ok
}

fn checked<'de, D: Deserializer<'de>>(
    d: D,
    ok: fn(&str) -> bool,
    what: &str,
) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) if !ok(&s) => Err(D::Error::custom(format!("'{s}' is not {what}"))),
        other => Ok(other),
    }
}

/// For an optional time field: `#[serde(default, deserialize_with = "crate::time::timestamp")]`.
pub fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(
        d,
        is_timestamp,
        "a time in RFC 3339 UTC, e.g. 2026-12-04T18:30:00Z",
    )
}

/// For a time field of an update, where `null` clears it (see `brain::present`).
pub fn present_timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    timestamp(d).map(Some)
}

/// For an optional day field.
pub fn day<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, is_day, "a day YYYY-MM-DD")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc_from_1970() {
        for ok in [
            "2026-12-04T18:30:00Z",
            "1970-01-01T00:00:00.5Z",
            "2024-02-29T23:59:59.123456789Z",
        ] {
            assert!(is_timestamp(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-12-04",
            "2026-12-04 18:30:00Z",
            "2026-12-04T18:30:00",
            "2026-12-04T18:30:00+01:00",
            "2026-12-04T24:00:00Z",
            "2026-12-04T18:30:60Z",
            "2023-02-29T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-12-04T18:30:00.Z",
            "2026-12-04T18:30:00.1234567890Z",
            "２026-12-04T18:30:00Z",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn days_exist_in_the_calendar() {
        assert!(is_day("2024-02-29"));
        assert!(!is_day("2023-02-29"));
        assert!(!is_day("2026-13-01"));
        assert!(!is_day("2026-1-01"));
    }
}
