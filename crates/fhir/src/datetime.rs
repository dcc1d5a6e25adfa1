//! FHIR date, dateTime, instant and time values: exact parsing (real calendar dates, the
//! timezone rules of each type) and the `[low, high]` instant range a value covers at its
//! written precision, which search uses for date comparisons.
//!
//! ```
//! use phr_fhir::datetime::{self, Precision};
//! let v = datetime::parse("2024-02").unwrap();
//! assert_eq!(v.precision, Precision::Month);
//! let (low, high) = v.range_micros(0);
//! assert_eq!(high - low + 1, 29 * 86_400 * 1_000_000); // 2024 is a leap year
//! ```

use std::fmt;

/// How much of a date/time value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Year,
    Month,
    Day,
    /// Seconds written, without a fraction.
    Second,
    /// Seconds with `fraction_digits` decimal digits.
    Fraction,
}

/// A parsed FHIR date, dateTime or instant. Fields past the precision are zero (month and
/// day are 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// 0..=60 (60 is a leap second, which the FHIR regex allows).
    pub second: u8,
    /// The fraction of a second in microseconds (digits past the sixth are dropped).
    pub micros: u32,
    /// Number of fraction digits written (0 when none).
    pub fraction_digits: u8,
    /// Offset from UTC in seconds, when a timezone was written.
    pub offset_seconds: Option<i32>,
    pub precision: Precision,
}

/// A parsed FHIR `time` (a time of day, no timezone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

/// Why a date/time text is not valid; the message names the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateTimeError(pub String);

fn err(text: &str, why: &str) -> DateTimeError {
    DateTimeError(format!("'{text}' is not valid: {why}"))
}

/// Which FHIR type a text is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, no time.
    Date,
    /// A date, or a date with a time to the second, and then a timezone is required.
    DateTime,
    /// A full date and time to the second with a timezone.
    Instant,
}

/// Parses a FHIR `date`.
pub fn parse_date(text: &str) -> Result<DateTime, DateTimeError> {
    parse_as(text, Kind::Date)
}

/// Parses a FHIR `dateTime`.
pub fn parse_datetime(text: &str) -> Result<DateTime, DateTimeError> {
    parse_as(text, Kind::DateTime)
}

/// Parses a FHIR `instant`.
pub fn parse_instant(text: &str) -> Result<DateTime, DateTimeError> {
    parse_as(text, Kind::Instant)
}

/// Parses any of date, dateTime and instant (the forms search parameters accept).
pub fn parse(text: &str) -> Result<DateTime, DateTimeError> {
    parse_as(text, Kind::DateTime)
}

/// Parses `text` as the given kind.
pub fn parse_as(text: &str, kind: Kind) -> Result<DateTime, DateTimeError> {
    let b = text.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p
        .digits(4)
        .ok_or_else(|| err(text, "the year must have four digits"))? as i32;
    if year == 0 {
        return Err(err(text, "year 0000 does not exist"));
    }
    let mut out = DateTime {
        year,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
        fraction_digits: 0,
        offset_seconds: None,
        precision: Precision::Year,
    };
    if p.done() {
        return finish(text, kind, out);
    }
    p.expect(b'-')
        .ok_or_else(|| err(text, "expected '-' after the year"))?;
    let month = p
        .digits(2)
        .ok_or_else(|| err(text, "the month must have two digits"))?;
    if !(1..=12).contains(&month) {
        return Err(err(text, "the month must be 01..12"));
    }
    out.month = month as u8;
    out.precision = Precision::Month;
    if p.done() {
        return finish(text, kind, out);
    }
    p.expect(b'-')
        .ok_or_else(|| err(text, "expected '-' after the month"))?;
    let day = p
        .digits(2)
        .ok_or_else(|| err(text, "the day must have two digits"))?;
    if day < 1 || day > u32::from(days_in_month(year, out.month)) {
        return Err(err(text, "the day does not exist in that month"));
    }
    out.day = day as u8;
    out.precision = Precision::Day;
    if p.done() {
        return finish(text, kind, out);
    }
    if kind == Kind::Date {
        return Err(err(text, "a date has no time part"));
    }
    p.expect(b'T')
        .ok_or_else(|| err(text, "expected 'T' before the time"))?;
    let (h, m, s, micros, digits) = parse_clock(&mut p).ok_or_else(|| {
        err(
            text,
            "the time must be hh:mm:ss with an optional fraction (seconds are required)",
        )
    })?;
    out.hour = h;
    out.minute = m;
    out.second = s;
    out.micros = micros;
    out.fraction_digits = digits;
    out.precision = if digits > 0 {
        Precision::Fraction
    } else {
        Precision::Second
    };
    if p.done() {
        return Err(err(text, "a time of day requires a timezone (Z or +hh:mm)"));
    }
    out.offset_seconds = Some(parse_offset(&mut p).ok_or_else(|| {
        err(
            text,
            "the timezone must be Z or +hh:mm/-hh:mm (at most +14:00)",
        )
    })?);
    if !p.done() {
        return Err(err(text, "unexpected characters after the timezone"));
    }
    finish(text, kind, out)
}

fn finish(text: &str, kind: Kind, v: DateTime) -> Result<DateTime, DateTimeError> {
    if kind == Kind::Instant && v.precision < Precision::Second {
        return Err(err(
            text,
            "an instant needs a full date, time to the second and a timezone",
        ));
    }
    Ok(v)
}

/// Parses a FHIR `time` (`hh:mm:ss` with an optional fraction, no timezone).
pub fn parse_time(text: &str) -> Result<Time, DateTimeError> {
    let mut p = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    let (hour, minute, second, micros, _) = parse_clock(&mut p)
        .filter(|_| p.done())
        .ok_or_else(|| err(text, "a time must be hh:mm:ss with an optional fraction"))?;
    Ok(Time {
        hour,
        minute,
        second,
        micros,
    })
}

fn parse_clock(p: &mut Cursor) -> Option<(u8, u8, u8, u32, u8)> {
    let h = p.digits(2)?;
    p.expect(b':')?;
    let m = p.digits(2)?;
    p.expect(b':')?;
    let s = p.digits(2)?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut micros = 0u32;
    let mut digits = 0u8;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while let Some(c @ b'0'..=b'9') = p.peek() {
            if digits < 6 {
                micros = micros * 10 + u32::from(c - b'0');
            }
            digits = digits.saturating_add(1);
            p.i += 1;
        }
        if p.i == start {
            return None;
        }
        for _ in digits.min(6)..6 {
            micros *= 10;
        }
    }
    Some((h as u8, m as u8, s as u8, micros, digits))
}

fn parse_offset(p: &mut Cursor) -> Option<i32> {
    match p.peek()? {
        b'Z' => {
            p.i += 1;
            Some(0)
        }
        sign @ (b'+' | b'-') => {
            p.i += 1;
            let h = p.digits(2)?;
            p.expect(b':')?;
            let m = p.digits(2)?;
            if m > 59 || h > 14 || (h == 14 && m != 0) {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

impl DateTime {
    /// Microseconds since the Unix epoch of the first instant the value covers.
    /// `assumed_offset_seconds` applies when the value has no timezone (dates, partial
    /// dateTimes); FHIR leaves that to the server.
    pub fn low_micros(&self, assumed_offset_seconds: i32) -> i64 {
        self.range_micros(assumed_offset_seconds).0
    }

    /// The `[low, high]` range in microseconds since the Unix epoch, both ends inclusive,
    /// that the value covers at its precision: `2024` covers the whole year, `2024-05-01T10:00:00Z`
    /// the whole second, `…:00.5Z` a tenth of a second.
    pub fn range_micros(&self, assumed_offset_seconds: i32) -> (i64, i64) {
        let offset = i64::from(self.offset_seconds.unwrap_or(assumed_offset_seconds));
        let day_start = |y: i32, m: u8, d: u8| days_from_civil(y, m, d) * MICROS_PER_DAY;
        let (low, next) = match self.precision {
            Precision::Year => (day_start(self.year, 1, 1), day_start(self.year + 1, 1, 1)),
            Precision::Month => {
                let (ny, nm) = if self.month == 12 {
                    (self.year + 1, 1)
                } else {
                    (self.year, self.month + 1)
                };
                (day_start(self.year, self.month, 1), day_start(ny, nm, 1))
            }
            Precision::Day => {
                let low = day_start(self.year, self.month, self.day);
                (low, low + MICROS_PER_DAY)
            }
            Precision::Second | Precision::Fraction => {
                // A leap second (:60) is folded into :59.999999.
                let second = i64::from(self.second.min(59));
                let low = day_start(self.year, self.month, self.day)
                    + (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + second)
                        * MICROS_PER_SECOND;
                if self.second == 60 {
                    (low + 999_999, low + MICROS_PER_SECOND)
                } else {
                    let width = match self.fraction_digits {
                        0 => MICROS_PER_SECOND,
                        d if d >= 6 => 1,
                        d => 10i64.pow(6 - u32::from(d)),
                    };
                    let low = low + i64::from(self.micros);
                    (low, low + width)
                }
            }
        };
        let shift = offset * MICROS_PER_SECOND;
        (low - shift, next - shift - 1)
    }
}

impl fmt::Display for DateTime {
    /// Writes the value back at its own precision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if self.precision >= Precision::Month {
            write!(f, "-{:02}", self.month)?;
        }
        if self.precision >= Precision::Day {
            write!(f, "-{:02}", self.day)?;
        }
        if self.precision >= Precision::Second {
            write!(f, "T{:02}:{:02}:{:02}", self.hour, self.minute, self.second)?;
            if self.fraction_digits > 0 {
                let digits = usize::from(self.fraction_digits.min(6));
                let frac = format!("{:06}", self.micros);
                write!(f, ".{}", &frac[..digits])?;
            }
            match self.offset_seconds {
                Some(0) => write!(f, "Z")?,
                Some(o) => {
                    let sign = if o < 0 { '-' } else { '+' };
                    let o = o.abs();
                    write!(f, "{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60)?
                }
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_precisions_and_real_calendar() {
        assert_eq!(parse_date("2024").unwrap().precision, Precision::Year);
        assert_eq!(parse_date("2024-02-29").unwrap().day, 29);
        assert!(parse_date("2023-02-29").is_err(), "2023 is not a leap year");
        assert!(parse_date("1900-02-29").is_err(), "1900 is not a leap year");
        assert!(parse_date("2000-02-29").is_ok());
        assert!(parse_date("2024-04-31").is_err());
        assert!(parse_date("2024-13").is_err());
        assert!(parse_date("0000").is_err());
        assert!(parse_date("24-01-01").is_err());
        assert!(parse_date("2024-1-01").is_err());
        assert!(parse_date("2024-01-01T10:00:00Z").is_err());
    }

    #[test]
    fn datetime_requires_seconds_and_timezone_with_a_time() {
        assert!(parse_datetime("2024-05-01T10:00:00Z").is_ok());
        assert!(parse_datetime("2024-05-01T10:00:00.123+03:00").is_ok());
        let e = parse_datetime("2024-05-01T10:00:00").unwrap_err();
        assert!(e.0.contains("timezone"), "{e}");
        assert!(parse_datetime("2024-05-01T10:00Z").is_err());
        assert!(parse_datetime("2024-05-01T24:00:00Z").is_err());
        assert!(parse_datetime("2024-05-01T10:00:00+15:00").is_err());
        assert!(parse_datetime("2024-05-01T10:00:00+14:00").is_ok());
        assert!(parse_datetime("2024-05-01T10:00:00.Z").is_err());
        assert!(parse_datetime("2024-05-01T10:00:00Zjunk").is_err());
    }

    #[test]
    fn instant_needs_full_precision() {
        assert!(parse_instant("2024-05-01T10:00:00Z").is_ok());
        assert!(parse_instant("2024-05-01").is_err());
    }

    #[test]
    fn time_of_day() {
        assert_eq!(parse_time("23:59:59.5").unwrap().micros, 500_000);
        assert!(parse_time("10:00").is_err());
        assert!(parse_time("10:00:00Z").is_err());
    }

    #[test]
    fn ranges_cover_the_written_precision() {
        let day = parse("2024-05-01").unwrap().range_micros(0);
        assert_eq!(day.0, 1_714_521_600 * MICROS_PER_SECOND);
        assert_eq!(day.1, day.0 + MICROS_PER_DAY - 1);
        let year = parse("2023").unwrap().range_micros(0);
        assert_eq!(year.1 - year.0 + 1, 365 * MICROS_PER_DAY);
        let dec = parse("2023-12").unwrap().range_micros(0);
        assert_eq!(dec.1 + 1, parse("2024").unwrap().low_micros(0));
        let second = parse("2024-05-01T03:00:00+03:00").unwrap().range_micros(0);
        assert_eq!(second, (day.0, day.0 + MICROS_PER_SECOND - 1));
        let tenth = parse("2024-05-01T00:00:00.5Z").unwrap().range_micros(0);
        assert_eq!(tenth, (day.0 + 500_000, day.0 + 599_999));
        let assumed = parse("2024-05-01").unwrap().range_micros(2 * 3600);
        assert_eq!(assumed.0, day.0 - 2 * 3600 * MICROS_PER_SECOND);
    }

    #[test]
    fn before_the_epoch() {
        let (low, _) = parse("1969-12-31").unwrap().range_micros(0);
        assert_eq!(low, -MICROS_PER_DAY);
    }

    #[test]
    fn displays_at_own_precision() {
        for text in [
            "2024",
            "2024-05",
            "2024-05-01",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.120-05:30",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }
}
