//! How the portal shows times and values: Finnish local time (EET/EEST), numbers with the
//! language's decimal separator, and the values of a resource in words.

use crate::web::Lang;
use phr_catalog::Catalog;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

pub fn catalog_lang(lang: Lang) -> phr_catalog::Lang {
    match lang {
        Lang::Fi => phr_catalog::Lang::Fi,
        Lang::Sv => phr_catalog::Lang::Sv,
        Lang::En => phr_catalog::Lang::En,
    }
}

fn last_sunday(year: i32, month: Month) -> Date {
    let mut day = Date::from_calendar_date(year, month, month.length(year)).unwrap_or(Date::MIN);
    while day.weekday() != Weekday::Sunday {
        day = day.previous_day().unwrap_or(day);
    }
    day
}

/// Finland's offset at `t`: +03:00 from the last Sunday of March 01:00 UTC to the last
/// Sunday of October 01:00 UTC, else +02:00.
pub fn helsinki_offset(t: OffsetDateTime) -> UtcOffset {
    let utc = t.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let one = Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT);
    let start = PrimitiveDateTime::new(last_sunday(year, Month::March), one).assume_utc();
    let end = PrimitiveDateTime::new(last_sunday(year, Month::October), one).assume_utc();
    let hours = if utc >= start && utc < end { 3 } else { 2 };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

pub fn helsinki(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(helsinki_offset(t))
}

/// A local date and time as a Finnish (or English) reader expects it.
pub fn date_time(t: OffsetDateTime, lang: Lang) -> String {
    let l = helsinki(t);
    format!("{} {:02}:{:02}", date(l.date(), lang), l.hour(), l.minute())
}

pub fn date(d: Date, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{}/{}/{}", d.day(), d.month() as u8, d.year()),
        _ => format!("{}.{}.{}", d.day(), d.month() as u8, d.year()),
    }
}

pub fn micros_time(micros: i64, lang: Lang) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map(|t| date_time(t, lang))
        .unwrap_or_default()
}

/// Midnight at the start of `d` in Finland.
pub fn local_midnight(d: Date) -> OffsetDateTime {
    let guess = PrimitiveDateTime::new(d, Time::MIDNIGHT)
        .assume_offset(UtcOffset::from_hms(2, 0, 0).unwrap_or(UtcOffset::UTC));
    let offset = helsinki_offset(guess);
    PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_offset(offset)
}

/// Parses a FHIR dateTime (full, or a date, year-month or year) into a point in time;
/// partial dates are taken at local midnight.
pub fn parse_fhir_time(text: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let mut parts = text.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next().unwrap_or("1").parse().ok()?;
    let day: u8 = parts.next().unwrap_or("1").get(..2)?.parse().ok()?;
    let d = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(local_midnight(d))
}

/// The value at a JSON pointer (`/valueQuantity/value`), null when there is none.
pub fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    value.pointer(pointer).unwrap_or(&NULL)
}

/// When the data in `resource` was measured or happened.
pub fn resource_time(resource: &Value) -> Option<OffsetDateTime> {
    let candidates = [
        &resource["effectiveDateTime"],
        at(resource, "/effectivePeriod/start"),
        &resource["effectiveInstant"],
        &resource["authored"],
        at(resource, "/period/start"),
        &resource["dateTime"],
        &resource["created"],
        &resource["issued"],
        at(resource, "/meta/lastUpdated"),
    ];
    candidates
        .iter()
        .filter_map(|v| v.as_str())
        .find_map(parse_fhir_time)
}

/// A decimal as text in the page's language (`72,5` in Finnish and Swedish).
pub fn number_text(text: &str, lang: Lang) -> String {
    match lang {
        Lang::En => text.to_owned(),
        _ => text.replace('.', ","),
    }
}

fn quantity_text(q: &Value, lang: Lang) -> Option<String> {
    let value = q.get("value")?;
    let number = match value {
        Value::Number(n) => n.to_string(),
        other => other.as_str()?.to_owned(),
    };
    // UCUM's annotations read badly: `mm[Hg]` is mmHg, the unity `1` (steps) is no unit.
    let unit = match q["unit"].as_str().or(q["code"].as_str()).unwrap_or("") {
        "1" => "",
        "mm[Hg]" => "mmHg",
        other => other,
    };
    let comparator = q["comparator"].as_str().unwrap_or("");
    Some(
        format!("{comparator}{} {unit}", number_text(&number, lang))
            .trim()
            .to_owned(),
    )
}

/// The display of a CodeableConcept: the catalogue's localized name of its first known
/// coding, else a display or text.
pub fn concept_text(concept: &Value, lang: Lang) -> String {
    let catalog = Catalog::get();
    let codings = concept["coding"].as_array().cloned().unwrap_or_default();
    for c in &codings {
        if let (Some(system), Some(code)) = (c["system"].as_str(), c["code"].as_str())
            && let Some(name) = catalog.display_in(system, code, catalog_lang(lang))
        {
            return name.to_owned();
        }
    }
    concept["text"]
        .as_str()
        .or_else(|| codings.iter().find_map(|c| c["display"].as_str()))
        .or_else(|| codings.iter().find_map(|c| c["code"].as_str()))
        .unwrap_or("")
        .to_owned()
}

fn value_text(holder: &Value, lang: Lang) -> Option<String> {
    if let Some(q) = holder.get("valueQuantity") {
        return quantity_text(q, lang);
    }
    if let Some(v) = holder.get("valueInteger") {
        return Some(v.to_string());
    }
    if let Some(v) = holder.get("valueString").and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    if let Some(v) = holder.get("valueCodeableConcept") {
        return Some(concept_text(v, lang));
    }
    if let Some(v) = holder.get("valueBoolean") {
        return Some(v.to_string());
    }
    None
}

/// The values of a resource as (label, value) pairs: the value, each component, a dose.
pub fn values(resource: &Value, lang: Lang) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let name = concept_text(&resource["code"], lang);
    if let Some(v) = value_text(resource, lang) {
        out.push((name.clone(), v));
    }
    for component in resource["component"].as_array().into_iter().flatten() {
        if let Some(v) = value_text(component, lang) {
            out.push((concept_text(&component["code"], lang), v));
        }
    }
    if let Some(dose) = resource["dosage"].get("dose")
        && let Some(v) = quantity_text(dose, lang)
    {
        let medication = concept_text(&resource["medicationCodeableConcept"], lang);
        out.push((medication, v));
    }
    if let Some(rate) = resource["dosage"].get("rateQuantity")
        && let Some(v) = quantity_text(rate, lang)
    {
        out.push((concept_text(at(resource, "/dosage/route"), lang), v));
    }
    out
}

/// One short line for tables: blood pressure as `128/84 mmHg`, else the values joined.
pub fn summary(resource: &Value, lang: Lang) -> String {
    let components = resource["component"].as_array().map(Vec::as_slice);
    if let Some([first, second]) = components
        && first.get("valueQuantity").is_some()
        && second.get("valueQuantity").is_some()
    {
        let number = |c: &Value| {
            at(c, "/valueQuantity/value")
                .as_number()
                .map(|n| number_text(&n.to_string(), lang))
                .unwrap_or_default()
        };
        let unit = match at(first, "/valueQuantity/unit").as_str().unwrap_or("") {
            "mm[Hg]" => "mmHg",
            other => other,
        };
        return format!("{}/{} {unit}", number(first), number(second));
    }
    let values = values(resource, lang);
    if values.is_empty() {
        return resource["title"]
            .as_str()
            .or(resource["status"].as_str())
            .unwrap_or("–")
            .to_owned();
    }
    values
        .into_iter()
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of the application that wrote `resource` (its `creatingApplication`).
pub fn source_app(resource: &Value) -> Option<String> {
    resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == phr_catalog::urls::EXT_CREATING_APPLICATION)
        .and_then(|e| e["extension"].as_array())
        .and_then(|parts| parts.iter().find(|p| p["url"] == "name"))
        .and_then(|p| p["valueString"].as_str())
        .map(str::to_owned)
}

/// A numeric value for charts: `valueQuantity.value` or `valueInteger`.
pub fn numeric(holder: &Value) -> Option<f64> {
    at(holder, "/valueQuantity/value")
        .as_f64()
        .or_else(|| holder["valueInteger"].as_f64())
        .or_else(|| {
            at(holder, "/valueQuantity/value")
                .as_number()
                .and_then(|n| n.to_string().parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finnish_time_follows_daylight_saving() {
        let winter = OffsetDateTime::parse("2026-01-15T10:00:00Z", &Rfc3339).unwrap();
        let summer = OffsetDateTime::parse("2026-07-15T10:00:00Z", &Rfc3339).unwrap();
        assert_eq!(date_time(winter, Lang::Fi), "15.1.2026 12:00");
        assert_eq!(date_time(summer, Lang::En), "15/7/2026 13:00");
        // The switch: last Sunday of March 2026 is the 29th, at 01:00 UTC.
        let before = OffsetDateTime::parse("2026-03-29T00:59:00Z", &Rfc3339).unwrap();
        let after = OffsetDateTime::parse("2026-03-29T01:00:00Z", &Rfc3339).unwrap();
        assert_eq!(helsinki_offset(before).whole_hours(), 2);
        assert_eq!(helsinki_offset(after).whole_hours(), 3);
    }

    #[test]
    fn blood_pressure_reads_as_a_pair() {
        let bp = serde_json::json!({"component": [
            {"code": {}, "valueQuantity": {"value": 128, "unit": "mmHg"}},
            {"code": {}, "valueQuantity": {"value": 84, "unit": "mmHg"}}]});
        assert_eq!(summary(&bp, Lang::Fi), "128/84 mmHg");
        let weight = serde_json::json!({"code": {"text": "Paino"},
            "valueQuantity": {"value": 72.5, "unit": "kg"}});
        assert_eq!(summary(&weight, Lang::Fi), "72,5 kg");
    }
}
