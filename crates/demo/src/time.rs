//! Finnish local time for generated data: instants are kept in UTC and written with the
//! Helsinki offset of their moment (+02:00, or +03:00 in summer time), as Finnish apps do.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// The last Sunday of `month` in `year`, at 01:00 UTC (when EU summer time starts or ends).
fn last_sunday_0100_utc(year: i32, month: Month) -> OffsetDateTime {
    let mut day = Date::from_calendar_date(year, month, time::util::days_in_month(month, year))
        .expect("valid date");
    while day.weekday() != Weekday::Sunday {
        day = day.previous_day().expect("not the first day of time");
    }
    day.with_hms(1, 0, 0).expect("valid time").assume_utc()
}

/// The offset Helsinki uses at `at`.
pub fn helsinki_offset(at: OffsetDateTime) -> UtcOffset {
    let year = at.to_offset(UtcOffset::UTC).year();
    let summer = at >= last_sunday_0100_utc(year, Month::March)
        && at < last_sunday_0100_utc(year, Month::October);
    let hours = if summer { 3 } else { 2 };
    UtcOffset::from_hms(hours, 0, 0).expect("valid offset")
}

/// `at` in Helsinki local time.
pub fn helsinki(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(helsinki_offset(at))
}

/// The UTC instant of local Helsinki time `hour:minute` on `day`.
pub fn at_local(day: Date, hour: u8, minute: u8) -> OffsetDateTime {
    let naive = day.with_hms(hour, minute, 0).expect("valid time");
    // The offset of the same wall-clock time read as UTC is right except within two hours
    // of a switch, which is at night and harmless for synthetic data.
    let guess = naive.assume_utc();
    naive.assume_offset(helsinki_offset(guess))
}

/// A FHIR `dateTime` with seconds and the Helsinki offset: `2026-05-01T08:00:00+03:00`.
pub fn fhir_date_time(at: OffsetDateTime) -> String {
    let t = helsinki(at);
    let offset = t.offset().whole_hours();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+{:02}:00",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        offset
    )
}

/// A FHIR `date`: `2026-05-01`.
pub fn fhir_date(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn winter_is_plus_two_and_summer_plus_three() {
        assert_eq!(
            fhir_date_time(datetime!(2026-01-15 10:00 UTC)),
            "2026-01-15T12:00:00+02:00"
        );
        assert_eq!(
            fhir_date_time(datetime!(2026-07-15 10:00 UTC)),
            "2026-07-15T13:00:00+03:00"
        );
    }

    #[test]
    fn summer_time_switches_on_the_last_sundays() {
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            helsinki_offset(datetime!(2026-03-29 00:59 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            helsinki_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(),
            3
        );
        assert_eq!(
            helsinki_offset(datetime!(2026-10-25 00:59 UTC)).whole_hours(),
            3
        );
        assert_eq!(
            helsinki_offset(datetime!(2026-10-25 01:00 UTC)).whole_hours(),
            2
        );
    }

    #[test]
    fn local_wall_clock_time_maps_to_utc() {
        let day = Date::from_calendar_date(2026, Month::June, 1).unwrap();
        assert_eq!(at_local(day, 8, 30), datetime!(2026-06-01 05:30 UTC));
        assert_eq!(
            fhir_date_time(at_local(day, 8, 30)),
            "2026-06-01T08:30:00+03:00"
        );
    }
}
