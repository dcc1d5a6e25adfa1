//! Time as PHR keeps it: microseconds since the Unix epoch, rendered as FHIR instants.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in microseconds since the epoch, truncated to milliseconds: FHIR `lastUpdated`
/// values are written at millisecond precision so what is indexed equals what is shown.
pub fn now_micros() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    ((nanos / 1_000_000) * 1000) as i64
}

pub fn datetime(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A FHIR instant such as `2026-11-23T15:20:01.123Z`.
pub fn to_instant(micros: i64) -> String {
    let t = datetime(micros);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses a FHIR instant (or any RFC 3339 date-time) into microseconds.
pub fn parse_instant(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_at_millisecond_precision() {
        let micros = 1_795_000_000_123_000;
        let text = to_instant(micros);
        assert_eq!(text, "2026-11-18T11:06:40.123Z");
        assert_eq!(parse_instant(&text), Some(micros));
    }
}
