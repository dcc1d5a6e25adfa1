//! Extraction on Kanta's 300-entry diabetes batch Bundle
//! (`../shared/kanta/examples/diabetes-data-bundle-kantaphr-r4-en.json`), through the public
//! API only. Expected values are computed from the bundle JSON independently of the
//! extractor; a small reference matcher then checks that parsed Kanta searches select the
//! entries they should from the extracted index (the semantics the storage engine's SQL
//! implements).

use std::path::Path;

use phr_search::{
    IndexEntry, IndexValue, ParseOptions, Prefix, QueryValue, TokenSystem, extract, parse,
    patient_compartment,
};
use serde_json::Value;

fn bundle() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/kanta/examples/diabetes-data-bundle-kantaphr-r4-en.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("bundle readable"))
        .expect("bundle is JSON")
}

struct Indexed {
    resource: Value,
    entries: Vec<IndexEntry>,
}

fn indexed() -> Vec<Indexed> {
    bundle()["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let resource = e["resource"].clone();
            let entries = extract(&resource).expect("extracts");
            Indexed { resource, entries }
        })
        .collect()
}

fn values<'a>(entries: &'a [IndexEntry], param: &str) -> Vec<&'a IndexValue> {
    entries
        .iter()
        .filter(|e| e.param == param)
        .map(|e| &e.value)
        .collect()
}

fn has_coding(resource: &Value, key: &str, code: &str) -> bool {
    resource[key]["coding"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["code"] == code))
}

#[test]
fn every_entry_lands_in_its_subjects_compartment() {
    for item in indexed() {
        let subject = item.resource["subject"]["reference"].as_str().unwrap();
        let expected = subject.strip_prefix("Patient/").unwrap();
        assert_eq!(
            patient_compartment(&item.resource, &item.entries).as_deref(),
            Some(expected)
        );
    }
}

#[test]
fn glucose_code_is_indexed_for_every_cgm_observation() {
    let items = indexed();
    let expected = items
        .iter()
        .filter(|i| has_coding(&i.resource, "code", "14745-4"))
        .count();
    let found = items
        .iter()
        .filter(|i| {
            values(&i.entries, "code").iter().any(|v| {
                matches!(v, IndexValue::Token { system: Some(s), code: Some(c), .. }
                    if s == "http://loinc.org" && c == "14745-4")
            })
        })
        .count();
    assert!(expected > 100, "the bundle is mostly CGM glucose");
    assert_eq!(found, expected);
}

/// The range a decimal's written digits imply, computed from the text.
fn written_range(text: &str) -> (f64, f64) {
    let value: f64 = text.parse().unwrap();
    let decimals = text.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let half = 0.5 * 10f64.powi(-decimals);
    (value - half, value + half)
}

#[test]
fn value_quantity_keeps_value_units_and_written_precision() {
    let mut checked = 0;
    for item in indexed() {
        let Some(q) = item.resource.get("valueQuantity") else {
            continue;
        };
        let text = q["value"].as_number().unwrap().as_str().to_string();
        let (want_low, want_high) = written_range(&text);
        let found = values(&item.entries, "value-quantity");
        let [
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code,
                unit,
            },
        ] = found[..]
        else {
            panic!("one quantity expected, got {found:?}");
        };
        assert_eq!(*value, text.parse::<f64>().unwrap());
        assert!(
            (low - want_low).abs() < 1e-9 && (high - want_high).abs() < 1e-9,
            "{text}"
        );
        assert_eq!(system.as_deref(), q["system"].as_str());
        assert_eq!(code.as_deref(), q["code"].as_str());
        assert_eq!(unit.as_deref(), q["unit"].as_str());
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn code_value_quantity_pairs_the_code_with_the_value() {
    for item in indexed() {
        if !has_coding(&item.resource, "code", "14745-4") {
            continue;
        }
        let want = item.resource["valueQuantity"]["value"].as_f64().unwrap();
        let composites = values(&item.entries, "code-value-quantity");
        assert!(composites.iter().any(|c| matches!(c,
            IndexValue::Composite(parts) if matches!(&parts[..],
                [IndexValue::Token { code: Some(code), .. }, IndexValue::Quantity { value, .. }]
                    if code == "14745-4" && *value == want))));
    }
}

#[test]
fn insulin_doses_index_every_medication_coding_and_the_period() {
    let mut checked = 0;
    for item in indexed() {
        if item.resource["resourceType"] != "MedicationAdministration" {
            continue;
        }
        let codings = item.resource["medicationCodeableConcept"]["coding"]
            .as_array()
            .unwrap()
            .len();
        let coded = values(&item.entries, "code")
            .into_iter()
            .filter(|v| matches!(v, IndexValue::Token { code: Some(_), .. }))
            .count();
        assert_eq!(coded, codings);
        let effective = values(&item.entries, "effective-time");
        let [IndexValue::Date { low, high }] = effective[..] else {
            panic!("one effective-time expected: {effective:?}");
        };
        if let Some(period) = item.resource.get("effectivePeriod") {
            // Both ends are written to the millisecond: the range spans end - start + 1 ms.
            let start = period["start"].as_str().unwrap();
            let end = period["end"].as_str().unwrap();
            assert!(start.ends_with("+03:00") && end.ends_with("+03:00"));
            let seconds = |t: &str| -> i64 {
                let hms = &t[11..19];
                let parts: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
                parts[0] * 3600 + parts[1] * 60 + parts[2]
            };
            if start[..10] == end[..10] {
                let span_micros = (seconds(end) - seconds(start)) * 1_000_000 + 1_000;
                assert_eq!(high - low + 1, span_micros);
            }
        }
        checked += 1;
    }
    assert!(checked > 100);
}

// --- a reference matcher for a few value types, to check parse and extract agree ------

fn token_matches(index: &IndexValue, query: &QueryValue) -> bool {
    let (
        IndexValue::Token { system, code, .. },
        QueryValue::Token {
            system: qs,
            code: qc,
        },
    ) = (index, query)
    else {
        return false;
    };
    let system_ok = match qs {
        None => true,
        Some(TokenSystem::None) => system.is_none(),
        Some(TokenSystem::Is(s)) => system.as_deref() == Some(s.as_str()),
    };
    system_ok && (qc.is_none() || qc == code)
}

fn date_matches(index: &IndexValue, query: &QueryValue) -> bool {
    let (
        IndexValue::Date { low: tl, high: th },
        QueryValue::Date {
            prefix,
            low: sl,
            high: sh,
        },
    ) = (index, query)
    else {
        return false;
    };
    let contained = tl >= sl && th <= sh;
    match prefix {
        Prefix::Eq => contained,
        Prefix::Ne => !contained,
        Prefix::Gt => th > sh,
        Prefix::Lt => tl < sl,
        Prefix::Ge => th > sh || contained,
        Prefix::Le => tl < sl || contained,
        Prefix::Sa => tl > sh,
        Prefix::Eb => th < sl,
        Prefix::Ap => tl <= sh && th >= sl,
    }
}

fn quantity_matches(index: &IndexValue, query: &QueryValue) -> bool {
    let (
        IndexValue::Quantity {
            value,
            system,
            code,
            ..
        },
        QueryValue::Quantity {
            prefix,
            value: sv,
            low: sl,
            high: sh,
            system: qs,
            code: qc,
        },
    ) = (index, query)
    else {
        return false;
    };
    let unit_ok = (qs.is_none() || qs == system) && (qc.is_none() || qc == code);
    let value_ok = match prefix {
        Prefix::Eq | Prefix::Ap => value >= sl && value < sh,
        Prefix::Ne => !(value >= sl && value < sh),
        Prefix::Gt | Prefix::Sa => value > sv,
        Prefix::Lt | Prefix::Eb => value < sv,
        Prefix::Ge => value >= sv,
        Prefix::Le => value <= sv,
    };
    unit_ok && value_ok
}

/// Resources matching every clause of a parsed search (clauses on one parameter each).
fn count_matches(items: &[Indexed], resource_type: &str, query: &str) -> usize {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let parsed = parse(resource_type, &pairs, &ParseOptions::default()).expect("parses");
    let compartment = parsed.query.compartment.clone().expect("patient given");
    items
        .iter()
        .filter(|i| i.resource["resourceType"] == resource_type)
        .filter(|i| patient_compartment(&i.resource, &i.entries).as_deref() == Some(&compartment))
        .filter(|i| {
            parsed.query.clauses.iter().all(|clause| {
                values(&i.entries, &clause.param).iter().any(|v| {
                    clause.values.iter().any(|q| {
                        token_matches(v, q) || date_matches(v, q) || quantity_matches(v, q)
                    })
                })
            })
        })
        .count()
}

#[test]
fn kanta_searches_select_the_expected_entries() {
    let items = indexed();
    let patient = items[0].resource["subject"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Patient/")
        .to_string();
    let glucose: Vec<&Value> = items
        .iter()
        .map(|i| &i.resource)
        .filter(|r| has_coding(r, "code", "14745-4"))
        .collect();

    // code without a system means LOINC.
    let n = count_matches(
        &items,
        "Observation",
        &format!("patient={patient}&code=14745-4"),
    );
    assert_eq!(n, glucose.len());

    // value-quantity: the glucose values above 10 mmol/L, counted from the JSON.
    let high = glucose
        .iter()
        .filter(|r| r["valueQuantity"]["value"].as_f64().unwrap() > 10.0)
        .count();
    let n = count_matches(
        &items,
        "Observation",
        &format!(
            "patient={patient}&code=14745-4&value-quantity=gt10|http://unitsofmeasure.org|mmol/L"
        ),
    );
    assert_eq!(n, high);
    assert!(high > 0 && high < glucose.len());

    // A day of readings by date range: the effective dates (local +03:00) on 2021-09-04.
    let on_day = glucose
        .iter()
        .filter(|r| {
            r["effectiveDateTime"]
                .as_str()
                .unwrap()
                .starts_with("2021-09-04")
        })
        .count();
    let n = count_matches(
        &items,
        "Observation",
        &format!(
            "patient={patient}&code=14745-4&date=ge2021-09-04T00:00:00+03:00&date=lt2021-09-05T00:00:00+03:00"
        ),
    );
    assert_eq!(n, on_day);
    assert!(on_day > 0);

    // Insulin: the Kanta insulin code without a system.
    let insulin = items
        .iter()
        .filter(|i| has_coding(&i.resource, "medicationCodeableConcept", "ins-short-fast"))
        .count();
    let n = count_matches(
        &items,
        "MedicationAdministration",
        &format!("patient={patient}&code=ins-short-fast"),
    );
    assert_eq!(n, insulin);
    assert!(insulin > 100);
}
