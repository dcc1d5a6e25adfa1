//! Dates as search sees them: the `[low, high]` microsecond range a FHIR date, dateTime or
//! instant covers at its written precision (`2024-05` is all of May 2024). Both index entries
//! and query values go through here, so they agree on precision and time zones.
//!
//! Values without a time zone (dates, and leniently dateTimes written without one) are taken
//! as UTC. Search values may stop at minutes (`2024-05-01T10:30`), as common servers allow.

use crate::model::Micros;

/// The earliest and latest instants an open-ended range uses.
pub const MIN_MICROS: Micros = Micros::MIN;
pub const MAX_MICROS: Micros = Micros::MAX;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid date: {why}")]
pub struct DateError {
    pub text: String,
    pub why: &'static str,
}

/// The instants `text` covers, both ends inclusive.
pub fn range(text: &str) -> Result<(Micros, Micros), DateError> {
    parse(text).map_err(|why| DateError {
        text: text.to_string(),
        why,
    })
}

/// Microseconds since the epoch of the start of `text` (its low end).
pub fn instant(text: &str) -> Result<Micros, DateError> {
    range(text).map(|(low, _)| low)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let end = self.i.checked_add(n)?;
        let slice = self.b.get(self.i..end)?;
        let mut v = 0i64;
        for &d in slice {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
        }
        self.i = end;
        Some(v)
    }
}

fn parse(text: &str) -> Result<(Micros, Micros), &'static str> {
    let mut p = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    let year = p.digits(4).ok_or("the year must have four digits")?;
    if year == 0 {
        return Err("year 0000 does not exist");
    }
    if p.done() {
        let low = days_from_civil(year, 1, 1) * MICROS_PER_DAY;
        let high = days_from_civil(year + 1, 1, 1) * MICROS_PER_DAY - 1;
        return Ok((low, high));
    }
    if !p.eat(b'-') {
        return Err("expected '-' after the year");
    }
    let month = p.digits(2).ok_or("the month must have two digits")?;
    if !(1..=12).contains(&month) {
        return Err("the month must be 01..12");
    }
    if p.done() {
        let low = days_from_civil(year, month, 1) * MICROS_PER_DAY;
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let high = days_from_civil(ny, nm, 1) * MICROS_PER_DAY - 1;
        return Ok((low, high));
    }
    if !p.eat(b'-') {
        return Err("expected '-' after the month");
    }
    let day = p.digits(2).ok_or("the day must have two digits")?;
    if day < 1 || day > days_in_month(year, month) {
        return Err("the day does not exist in that month");
    }
    let day_start = days_from_civil(year, month, day) * MICROS_PER_DAY;
    if p.done() {
        return Ok((day_start, day_start + MICROS_PER_DAY - 1));
    }
    if !p.eat(b'T') {
        return Err("expected 'T' before the time");
    }
    let hour = p.digits(2).ok_or("the hour must have two digits")?;
    if !p.eat(b':') {
        return Err("expected ':' after the hour");
    }
    let minute = p.digits(2).ok_or("the minutes must have two digits")?;
    if hour > 23 && !(hour == 24 && minute == 0) {
        return Err("the hour must be 00..23");
    }
    if minute > 59 {
        return Err("the minutes must be 00..59");
    }
    let mut at = day_start + (hour * 3600 + minute * 60) * MICROS_PER_SECOND;
    // The width of the range the written precision covers.
    let mut width = 60 * MICROS_PER_SECOND;
    if p.eat(b':') {
        let second = p.digits(2).ok_or("the seconds must have two digits")?;
        if second > 60 {
            return Err("the seconds must be 00..60");
        }
        at += second * MICROS_PER_SECOND;
        width = MICROS_PER_SECOND;
        if p.eat(b'.') {
            let start = p.i;
            let mut fraction = 0i64;
            let mut digits = 0u32;
            while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
                if digits < 6 {
                    fraction = fraction * 10 + i64::from(d - b'0');
                    digits += 1;
                }
                p.i += 1;
            }
            if p.i == start {
                return Err("expected digits after the decimal point of the seconds");
            }
            let scale = 10i64.pow(6 - digits);
            at += fraction * scale;
            width = scale;
        }
    }
    let offset_seconds = if p.done() || p.eat(b'Z') {
        0
    } else {
        let sign = match p.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("expected a time zone (Z or +hh:mm)"),
        };
        p.i += 1;
        let oh = p
            .digits(2)
            .ok_or("the time zone hour must have two digits")?;
        if !p.eat(b':') {
            return Err("expected ':' in the time zone");
        }
        let om = p
            .digits(2)
            .ok_or("the time zone minutes must have two digits")?;
        if oh > 14 || om > 59 {
            return Err("the time zone is out of range");
        }
        sign * (oh * 3600 + om * 60)
    };
    if !p.done() {
        return Err("unexpected characters after the value");
    }
    let low = at - offset_seconds * MICROS_PER_SECOND;
    Ok((low, low + width - 1))
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MICROS_PER_DAY;

    #[test]
    fn day_covers_the_whole_utc_day() {
        let (low, high) = range("1970-01-02").unwrap();
        assert_eq!(low, DAY);
        assert_eq!(high, 2 * DAY - 1);
    }

    #[test]
    fn month_and_year_follow_the_calendar() {
        let (low, high) = range("2024-02").unwrap();
        assert_eq!(high - low + 1, 29 * DAY);
        let (low, high) = range("2023").unwrap();
        assert_eq!(high - low + 1, 365 * DAY);
        let (_, dec_high) = range("2023-12").unwrap();
        assert_eq!(dec_high, range("2024").unwrap().0 - 1);
    }

    #[test]
    fn time_zone_shifts_to_utc() {
        let (utc, _) = range("2020-10-05T10:00:00Z").unwrap();
        let (helsinki, _) = range("2020-10-05T13:00:00+03:00").unwrap();
        assert_eq!(utc, helsinki);
        let (minus, _) = range("2020-10-05T07:00:00-03:00").unwrap();
        assert_eq!(minus - utc, 0);
    }

    #[test]
    fn precision_sets_the_width() {
        let (l, h) = range("2020-10-05T10:00:00+02:00").unwrap();
        assert_eq!(h - l + 1, MICROS_PER_SECOND);
        let (l, h) = range("2019-12-05T09:21:37.130+02:00").unwrap();
        assert_eq!(h - l + 1, 1_000);
        let (l, h) = range("2019-12-05T09:21+02:00").unwrap();
        assert_eq!(h - l + 1, 60 * MICROS_PER_SECOND);
        let (l, h) = range("2019-12-05T09:21:37.1234567Z").unwrap();
        assert_eq!(h, l);
    }

    #[test]
    fn known_instant() {
        // 2021-01-01T00:00:00Z = 1609459200 s
        assert_eq!(
            instant("2021-01-01T00:00:00Z").unwrap(),
            1_609_459_200 * MICROS_PER_SECOND
        );
        assert_eq!(
            instant("1969-12-31").unwrap(),
            -DAY,
            "dates before the epoch are negative"
        );
    }

    #[test]
    fn invalid_values_say_why() {
        for (text, why) in [
            ("2020-13", "the month must be 01..12"),
            ("2021-02-29", "the day does not exist in that month"),
            ("20", "the year must have four digits"),
            ("2020-01-01T10", "expected ':' after the hour"),
            (
                "2020-01-01T10:00:00+2",
                "the time zone hour must have two digits",
            ),
            ("2020-01-01x", "expected 'T' before the time"),
            ("tomorrow", "the year must have four digits"),
        ] {
            let e = range(text).unwrap_err();
            assert_eq!(e.why, why, "{text}");
            assert!(e.to_string().contains(text));
        }
    }
}
