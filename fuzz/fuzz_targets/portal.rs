//! The citizen portal's form fields and language parameters: an entry form (any measure, any
//! field values, dates and times, in any language) read into a reading, the Observation the
//! portal builds from it, and that Observation through the write path as the citizen. What
//! the form accepts the profile must accept too: a reading the portal takes must never come
//! back as a rejection the citizen cannot fix. Also `?lang=`/`ui_locales` values and
//! `Accept-Language` headers.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use phr_fuzz::{PATIENT, caller, service};
use phr_server::portal::entry::{self, Measure};
use phr_server::portal::texts::T;
use phr_server::web::Lang;
use time::OffsetDateTime;

const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "1,0",
    "72.5",
    "72,5",
    "400",
    "400.0",
    "400.04",
    "399.95",
    "0.95",
    "1e2",
    "-0",
    "NaN",
    "inf",
    "1e308",
    "40",
    "300",
    "20",
    "200",
    "250",
    "29.99",
    "30",
    "2024-05-01",
    "2024-02-29",
    "2023-02-29",
    "9999-12-31",
    "0000-01-01",
    "-2024-01-01",
    "10:00",
    "24:00",
    "23:59",
    "03:30",
    "3:30",
    "00:00",
    "fi",
    "sv",
    "en",
    "EN-us",
    "fi-FI",
];

#[derive(Arbitrary, Debug)]
struct Input {
    measure: u8,
    lang: u8,
    now: i64,
    fields: Vec<(u8, u8, Option<String>)>,
    accept_language: String,
}

const NAMES: &[&str] = &[
    "weight",
    "systolic",
    "diastolic",
    "pulse",
    "heart_rate",
    "glucose",
    "date",
    "time",
    "csrf",
    "x",
];

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    phr_fuzz::service();
}, |data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let _ = Lang::from_accept_language(&input.accept_language);
    let _ = Lang::parse(&input.accept_language);
    let lang = Lang::ALL[usize::from(input.lang) % Lang::ALL.len()];
    let measure = Measure::ALL[usize::from(input.measure) % Measure::ALL.len()];
    let form: Vec<(String, String)> = input
        .fields
        .iter()
        .take(8)
        .map(|(name, value, raw)| {
            let name = NAMES[usize::from(*name) % NAMES.len()].to_owned();
            let value = raw
                .clone()
                .unwrap_or_else(|| VALUES[usize::from(*value) % VALUES.len()].to_owned());
            (name, value)
        })
        .collect();
    // "Now" anywhere from 1970 to 2100: daylight saving changes, leap days, year ends.
    let now = OffsetDateTime::from_unix_timestamp(input.now.rem_euclid(4_102_444_800))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let Ok(reading) = entry::read(measure, &form, now, T::get(lang), lang) else {
        return;
    };
    let observation = entry::observation(measure, &reading, PATIENT, lang);
    let answer = service().create(&caller(1), observation.clone(), None);
    assert!(
        answer.is_ok(),
        "the portal accepted {form:?} but the write path refused {observation}: {answer:?}"
    );
});
