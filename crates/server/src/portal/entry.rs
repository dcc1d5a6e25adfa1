//! Measurements the citizen enters in the portal (weight, blood pressure, heart rate, blood
//! glucose): the form's fields and their plausible ranges, reading a submitted form into
//! values with an error per field, and the Kanta-profiled Observation written through the
//! same pipeline as the API (which adds the portal as `creatingApplication`).

use crate::web::Lang;
use phr_catalog::{Catalog, Kind, urls};
use serde_json::{Map, Value, json};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

use super::format::{catalog_lang, date_time, helsinki, helsinki_offset};
use super::texts::T;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Weight,
    BloodPressure,
    HeartRate,
    Glucose,
}

/// One numeric field of a form.
pub struct Field {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
}

impl Measure {
    pub const ALL: [Measure; 4] = [
        Measure::Weight,
        Measure::BloodPressure,
        Measure::HeartRate,
        Measure::Glucose,
    ];

    pub fn kind(self) -> Kind {
        match self {
            Measure::Weight => Kind::BodyWeight,
            Measure::BloodPressure => Kind::BloodPressure,
            Measure::HeartRate => Kind::HeartRate,
            Measure::Glucose => Kind::BloodGlucose,
        }
    }

    pub fn key(self) -> &'static str {
        self.kind().key()
    }

    pub fn from_key(key: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn name(self, lang: Lang) -> &'static str {
        Catalog::get()
            .content(self.kind())
            .map(|c| c.name(catalog_lang(lang)))
            .unwrap_or("")
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Measure::Weight => &[Field {
                name: "weight",
                min: 1.0,
                max: 400.0,
            }],
            Measure::BloodPressure => &[
                Field {
                    name: "systolic",
                    min: 40.0,
                    max: 300.0,
                },
                Field {
                    name: "diastolic",
                    min: 20.0,
                    max: 200.0,
                },
            ],
            Measure::HeartRate => &[Field {
                name: "heart_rate",
                min: 20.0,
                max: 300.0,
            }],
            Measure::Glucose => &[Field {
                name: "glucose",
                min: 0.5,
                max: 50.0,
            }],
        }
    }
}

pub fn field_label(name: &str, t: &'static T) -> &'static str {
    match name {
        "weight" => t.field_weight,
        "systolic" => t.field_systolic,
        "diastolic" => t.field_diastolic,
        "heart_rate" => t.field_heart_rate,
        "glucose" => t.field_glucose,
        "date" => t.field_date,
        _ => t.field_time,
    }
}

/// The earliest year a reading may be dated: FHIR has no year 0, and a measurement from
/// before 1900 is a typing error, not a measurement.
const EARLIEST_YEAR: i32 = 1900;

/// A form read successfully.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub values: Vec<f64>,
    pub at: OffsetDateTime,
}

/// Reads a decimal with `.` or `,`.
fn number(text: &str) -> Option<f64> {
    let text = text.trim().replace(',', ".");
    if text.is_empty() || text.len() > 12 {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn trim_number(v: f64) -> String {
    let text = format!("{v:.1}");
    text.trim_end_matches(".0").to_owned()
}

/// Reads the submitted form: the values of `measure`'s fields and the time (local date and
/// time, empty = now). Errors are (field name, message), one per field.
pub fn read(
    measure: Measure,
    form: &[(String, String)],
    now: OffsetDateTime,
    t: &'static T,
    lang: Lang,
) -> Result<Reading, Vec<(String, String)>> {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    };
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for field in measure.fields() {
        let text = get(field.name);
        if text.is_empty() {
            errors.push((field.name.to_owned(), t.err_required.to_owned()));
            continue;
        }
        match number(text) {
            None => errors.push((field.name.to_owned(), t.err_number.to_owned())),
            Some(v) if v < field.min || v > field.max => errors.push((
                field.name.to_owned(),
                format!(
                    "{} {}–{}",
                    t.err_range,
                    super::format::number_text(&trim_number(field.min), lang),
                    super::format::number_text(&trim_number(field.max), lang)
                ),
            )),
            Some(v) => values.push(v),
        }
    }
    let date_text = get("date");
    let time_text = get("time");
    let local_now = helsinki(now);
    let date = if date_text.is_empty() {
        Some(local_now.date())
    } else {
        let parsed = Date::parse(
            date_text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok();
        if parsed.is_none() {
            errors.push(("date".into(), t.err_date.to_owned()));
        }
        parsed
    };
    let clock = if time_text.is_empty() {
        Some(Time::from_hms(local_now.hour(), local_now.minute(), 0).unwrap_or(Time::MIDNIGHT))
    } else {
        let parsed = Time::parse(
            time_text,
            time::macros::format_description!("[hour]:[minute]"),
        )
        .ok();
        if parsed.is_none() {
            errors.push(("time".into(), t.err_time.to_owned()));
        }
        parsed
    };
    let at = match (date, clock) {
        (Some(d), Some(c)) => {
            let local = PrimitiveDateTime::new(d, c);
            let guess = local.assume_offset(helsinki_offset(now));
            let at = local.assume_offset(helsinki_offset(guess));
            if at > now + Duration::minutes(5) {
                errors.push(("date".into(), t.err_future.to_owned()));
            } else if d.year() < EARLIEST_YEAR {
                errors.push(("date".into(), t.err_past.to_owned()));
            }
            Some(at)
        }
        _ => None,
    };
    match at {
        Some(at) if errors.is_empty() => Ok(Reading { values, at }),
        _ => Err(errors),
    }
}

fn fhir_date_time(at: OffsetDateTime) -> String {
    let t = helsinki(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00+{:02}:00",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.offset().whole_hours()
    )
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"system": urls::LOINC, "code": code, "display": display})
}

fn quantity(value: f64, decimals: bool, unit: &str, ucum: &str) -> Value {
    let text = if decimals {
        format!("{value:.1}")
    } else {
        format!("{}", value.round() as i64)
    };
    let number: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    json!({"value": number, "unit": unit, "system": urls::UCUM, "code": ucum})
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Observation for a reading, in the citizen's language, referring to their Patient.
pub fn observation(measure: Measure, reading: &Reading, patient: &str, lang: Lang) -> Value {
    // The reading's parser gives every measure its values (blood pressure two, the rest one).
    let first = reading.values.first().copied().unwrap_or_default();
    let second = reading.values.get(1).copied().unwrap_or_default();
    let (profile, codes, value_line): (&str, Vec<Value>, String) = match measure {
        Measure::Weight => (
            urls::BODY_WEIGHT,
            vec![loinc("29463-7", "Body weight")],
            format!("{first:.1} kg"),
        ),
        Measure::BloodPressure => (
            urls::BLOOD_PRESSURE,
            vec![loinc(
                "85354-9",
                "Blood pressure panel with all children optional",
            )],
            format!("{}/{} mmHg", first.round(), second.round()),
        ),
        Measure::HeartRate => (
            urls::VITAL_SIGNS,
            vec![loinc("8867-4", "Heart rate")],
            format!("{} /min", first.round()),
        ),
        Measure::Glucose => (
            urls::BLOOD_GLUCOSE,
            vec![
                loinc("15074-8", "Glucose [Moles/volume] in Blood"),
                loinc(
                    "14743-9",
                    "Glucose [Moles/volume] in Capillary blood by Glucometer",
                ),
            ],
            format!("{first:.1} mmol/l"),
        ),
    };
    let code = lang.code();
    let narrative = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"{code}\" xml:lang=\"{code}\">{}: {}<br/>{}</div>",
        xml_text(measure.name(lang)),
        xml_text(&value_line),
        xml_text(&date_time(reading.at, lang))
    );
    let patient_ref = json!({"reference": format!("Patient/{patient}")});
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("Observation"));
    r.insert("meta".into(), json!({"profile": [profile]}));
    r.insert("language".into(), json!(code));
    r.insert(
        "text".into(),
        json!({"status": "generated", "div": narrative}),
    );
    r.insert(
        "identifier".into(),
        json!([{"system": urls::RFC3986, "value": format!("urn:uuid:{}", uuid::Uuid::new_v4())}]),
    );
    r.insert("status".into(), json!("final"));
    r.insert(
        "category".into(),
        json!([{"coding": [{"system": urls::OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]),
    );
    r.insert("code".into(), json!({"coding": codes}));
    r.insert("subject".into(), patient_ref.clone());
    r.insert(
        "effectiveDateTime".into(),
        json!(fhir_date_time(reading.at)),
    );
    r.insert("performer".into(), json!([patient_ref]));
    match measure {
        Measure::Weight => {
            r.insert("valueQuantity".into(), quantity(first, true, "kg", "kg"));
        }
        Measure::BloodPressure => {
            r.insert(
                "component".into(),
                json!([
                    {"code": {"coding": [loinc("8480-6", "Systolic blood pressure")]},
                     "valueQuantity": quantity(first, false, "mm[Hg]", "mm[Hg]")},
                    {"code": {"coding": [loinc("8462-4", "Diastolic blood pressure")]},
                     "valueQuantity": quantity(second, false, "mm[Hg]", "mm[Hg]")},
                ]),
            );
        }
        Measure::HeartRate => {
            r.insert(
                "valueQuantity".into(),
                quantity(first, false, "/min", "/min"),
            );
        }
        Measure::Glucose => {
            r.insert(
                "valueQuantity".into(),
                quantity(first, true, "mmol/l", "mmol/L"),
            );
        }
    }
    Value::Object(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decimal_comma_and_now_are_accepted() {
        let now = OffsetDateTime::now_utc();
        let r = read(
            Measure::Weight,
            &form(&[("weight", "72,5")]),
            now,
            &super::super::texts::FI,
            Lang::Fi,
        )
        .unwrap();
        assert_eq!(r.values, vec![72.5]);
    }

    // Found by the portal fuzz target: the date parser takes year 0000 (and any year), which
    // FHIR's dateTime does not; the write path refused what the form had accepted.
    #[test]
    fn a_date_before_1900_is_a_field_error_not_a_refused_write() {
        let now = OffsetDateTime::now_utc();
        for date in ["0000-01-01", "1899-12-31", "-0001-01-01"] {
            let errors = read(
                Measure::Glucose,
                &form(&[("glucose", "5,2"), ("date", date), ("time", "03:53")]),
                now,
                &super::super::texts::EN,
                Lang::En,
            )
            .unwrap_err();
            assert_eq!(errors.len(), 1, "{date}: {errors:?}");
            assert_eq!(errors[0].0, "date", "{date}");
        }
        let earliest = read(
            Measure::Glucose,
            &form(&[
                ("glucose", "5,2"),
                ("date", "1900-01-01"),
                ("time", "00:00"),
            ]),
            now,
            &super::super::texts::EN,
            Lang::En,
        );
        assert!(earliest.is_ok(), "{earliest:?}");
    }

    #[test]
    fn every_bad_field_gets_its_own_error() {
        let now = OffsetDateTime::now_utc();
        let errors = read(
            Measure::BloodPressure,
            &form(&[
                ("systolic", "abc"),
                ("diastolic", "900"),
                ("date", "2026-13-01"),
            ]),
            now,
            &super::super::texts::EN,
            Lang::En,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["systolic", "diastolic", "date"]);
    }

    #[test]
    fn future_times_are_refused() {
        let now = OffsetDateTime::now_utc();
        let tomorrow = helsinki(now + Duration::days(2)).date().to_string();
        let errors = read(
            Measure::HeartRate,
            &form(&[("heart_rate", "60"), ("date", &tomorrow), ("time", "10:00")]),
            now,
            &super::super::texts::EN,
            Lang::En,
        )
        .unwrap_err();
        assert_eq!(errors[0].0, "date");
    }
}
