//! Turning one node a search parameter reaches into its index values, by parameter type and
//! node type, following the R4 search rules: a CodeableConcept gives one token per coding,
//! a Period a date range with open ends at the extremes, a Quantity its value with the range
//! its precision implies, a HumanName a string per part, and so on.

use serde_json::Value;

use crate::dates::{self, MAX_MICROS, MIN_MICROS};
use crate::json::{field, str_field};
use crate::model::IndexValue;
use crate::numbers;
use crate::program::{NodeType, reference_type, split_history};
use crate::registry::ParamType;
use crate::text::normalize;

/// The system of currency codes, for Money values.
pub const CURRENCY_SYSTEM: &str = "urn:iso:std:iso:4217";

fn text_of(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).map(str::to_string)
}

/// Appends the index values of `node` (of FHIR type `ty`) for a parameter of `param_type`.
pub fn index_values(param_type: ParamType, node: &Value, ty: NodeType, out: &mut Vec<IndexValue>) {
    let ty = if ty == NodeType::Unknown {
        guess_type(param_type, node)
    } else {
        ty
    };
    match param_type {
        ParamType::Token => token_values(node, ty, out),
        ParamType::String => string_values(node, ty, out),
        ParamType::Date => {
            if let Some((low, high)) = date_range(node, ty) {
                out.push(IndexValue::Date { low, high });
            }
        }
        ParamType::Number => {
            if let Some(d) = node.as_number().and_then(numbers::from_json) {
                out.push(IndexValue::Number {
                    value: d.value,
                    low: d.low,
                    high: d.high,
                });
            }
        }
        ParamType::Quantity => quantity_values(node, ty, out),
        ParamType::Reference => reference_values(node, ty, out),
        ParamType::Uri => {
            if let Some(s) = node.as_str() {
                out.push(IndexValue::Uri(s.to_string()));
            }
        }
        // Composites are assembled from their components by the caller.
        ParamType::Composite | ParamType::Special => {}
    }
}

/// The type of a node from the general engine, from its JSON shape.
fn guess_type(param_type: ParamType, node: &Value) -> NodeType {
    match node {
        Value::Bool(_) => NodeType::Boolean,
        Value::Number(_) => NodeType::Decimal,
        Value::String(_) => match param_type {
            ParamType::Date => NodeType::DateTime,
            ParamType::Uri => NodeType::Uri,
            ParamType::Reference => NodeType::Canonical,
            _ => NodeType::String,
        },
        Value::Object(map) => {
            if map.contains_key("resourceType") {
                NodeType::Resource
            } else if map.contains_key("coding")
                || (map.contains_key("text") && param_type == ParamType::Token)
            {
                NodeType::CodeableConcept
            } else if map.contains_key("reference") {
                NodeType::Reference
            } else if map.contains_key("start") || map.contains_key("end") {
                NodeType::Period
            } else if map.contains_key("event") || map.contains_key("repeat") {
                NodeType::Timing
            } else if map.contains_key("low") || map.contains_key("high") {
                NodeType::Range
            } else if map.contains_key("currency") {
                NodeType::Money
            } else if map.contains_key("family") || map.contains_key("given") {
                NodeType::HumanName
            } else if map.contains_key("line") || map.contains_key("city") {
                NodeType::Address
            } else if param_type == ParamType::Quantity {
                NodeType::Quantity
            } else if map.contains_key("value") {
                NodeType::Identifier
            } else if map.contains_key("code") {
                NodeType::Coding
            } else {
                NodeType::Other
            }
        }
        _ => NodeType::Other,
    }
}

fn primitive_text(node: &Value) -> Option<String> {
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn coding_token(coding: &Value, fallback_text: Option<&str>) -> Option<IndexValue> {
    let system = text_of(coding, "system");
    let code = text_of(coding, "code");
    let display = field(coding, "display")
        .and_then(Value::as_str)
        .or(fallback_text);
    if system.is_none() && code.is_none() {
        return None;
    }
    Some(IndexValue::Token {
        system,
        code,
        text: display.map(normalize),
    })
}

fn token_values(node: &Value, ty: NodeType, out: &mut Vec<IndexValue>) {
    match ty {
        NodeType::Coding => out.extend(coding_token(node, None)),
        NodeType::CodeableConcept => {
            let text = field(node, "text").and_then(Value::as_str);
            if let Some(codings) = field(node, "coding").and_then(Value::as_array) {
                for coding in codings {
                    out.extend(coding_token(coding, text));
                }
            }
            if let Some(text) = text {
                out.push(IndexValue::Token {
                    system: None,
                    code: None,
                    text: Some(normalize(text)),
                });
            }
        }
        NodeType::Identifier => {
            let value = text_of(node, "value");
            let system = text_of(node, "system");
            let type_text = field(node, "type").and_then(|t| str_field(t, "text"));
            if value.is_some() || system.is_some() {
                out.push(IndexValue::Token {
                    system,
                    code: value.clone(),
                    text: type_text.map(normalize),
                });
            }
            // For `identifier:of-type=system|code|value`: the type's codings with the value.
            if let (Some(value), Some(codings)) = (
                value,
                field(node, "type")
                    .and_then(|t| field(t, "coding"))
                    .and_then(Value::as_array),
            ) {
                for coding in codings {
                    out.push(IndexValue::Composite(vec![
                        IndexValue::Token {
                            system: text_of(coding, "system"),
                            code: text_of(coding, "code"),
                            text: None,
                        },
                        IndexValue::Token {
                            system: None,
                            code: Some(value.clone()),
                            text: None,
                        },
                    ]));
                }
            }
        }
        NodeType::ContactPoint => {
            if let Some(value) = text_of(node, "value") {
                out.push(IndexValue::Token {
                    system: None,
                    code: Some(value),
                    text: None,
                });
            }
        }
        NodeType::Boolean
        | NodeType::String
        | NodeType::Uri
        | NodeType::Canonical
        | NodeType::Integer
        | NodeType::Decimal
        | NodeType::Date
        | NodeType::DateTime
        | NodeType::Instant
        | NodeType::Time => {
            if let Some(code) = primitive_text(node) {
                out.push(IndexValue::Token {
                    system: None,
                    code: Some(code),
                    text: None,
                });
            }
        }
        _ => {}
    }
}

fn push_string(s: &str, out: &mut Vec<IndexValue>) {
    out.push(IndexValue::String {
        normalized: normalize(s),
        exact: s.to_string(),
    });
}

fn push_strings_of(node: &Value, keys: &[&str], out: &mut Vec<IndexValue>) {
    for key in keys {
        match field(node, key) {
            Some(Value::String(s)) => push_string(s, out),
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    push_string(s, out);
                }
            }
            _ => {}
        }
    }
}

fn string_values(node: &Value, ty: NodeType, out: &mut Vec<IndexValue>) {
    match ty {
        NodeType::HumanName => {
            push_strings_of(node, &["text", "family", "given", "prefix", "suffix"], out);
        }
        NodeType::Address => push_strings_of(
            node,
            &[
                "text",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ],
            out,
        ),
        NodeType::CodeableConcept => push_strings_of(node, &["text"], out),
        NodeType::Coding => push_strings_of(node, &["display"], out),
        _ => {
            if let Some(s) = node.as_str() {
                push_string(s, out);
            }
        }
    }
}

fn date_range(node: &Value, ty: NodeType) -> Option<(i64, i64)> {
    match ty {
        NodeType::Period => {
            let start = field(node, "start").and_then(Value::as_str);
            let end = field(node, "end").and_then(Value::as_str);
            if start.is_none() && end.is_none() {
                return None;
            }
            let low = match start {
                Some(s) => dates::range(s).ok()?.0,
                None => MIN_MICROS,
            };
            let high = match end {
                Some(e) => dates::range(e).ok()?.1,
                None => MAX_MICROS,
            };
            Some((low, high))
        }
        NodeType::Timing => {
            // Only the outer limits of a schedule matter: its events and its bounds.
            let mut limits: Option<(i64, i64)> = None;
            let mut widen = |low: i64, high: i64| {
                limits = Some(match limits {
                    Some((l, h)) => (l.min(low), h.max(high)),
                    None => (low, high),
                });
            };
            if let Some(events) = field(node, "event").and_then(Value::as_array) {
                for e in events.iter().filter_map(Value::as_str) {
                    if let Ok((l, h)) = dates::range(e) {
                        widen(l, h);
                    }
                }
            }
            if let Some(bounds) = field(node, "repeat").and_then(|r| field(r, "boundsPeriod"))
                && let Some((l, h)) = date_range(bounds, NodeType::Period)
            {
                widen(l, h);
            }
            limits
        }
        _ => node.as_str().and_then(|s| dates::range(s).ok()),
    }
}

fn quantity_values(node: &Value, ty: NodeType, out: &mut Vec<IndexValue>) {
    match ty {
        NodeType::Quantity => {
            let Some(d) = field(node, "value")
                .and_then(Value::as_number)
                .and_then(numbers::from_json)
            else {
                return;
            };
            // A comparator says the real value lies beyond the written one.
            let (low, high) = match field(node, "comparator").and_then(Value::as_str) {
                Some("<") | Some("<=") => (f64::NEG_INFINITY, d.high),
                Some(">") | Some(">=") => (d.low, f64::INFINITY),
                _ => (d.low, d.high),
            };
            out.push(IndexValue::Quantity {
                value: d.value,
                low,
                high,
                system: text_of(node, "system"),
                code: text_of(node, "code"),
                unit: text_of(node, "unit"),
            });
        }
        NodeType::Money => {
            let Some(d) = field(node, "value")
                .and_then(Value::as_number)
                .and_then(numbers::from_json)
            else {
                return;
            };
            let currency = text_of(node, "currency");
            out.push(IndexValue::Quantity {
                value: d.value,
                low: d.low,
                high: d.high,
                system: currency.as_ref().map(|_| CURRENCY_SYSTEM.to_string()),
                code: currency,
                unit: None,
            });
        }
        NodeType::Range => {
            let bound = |key: &str| {
                field(node, key)
                    .and_then(|q| field(q, "value"))
                    .and_then(Value::as_number)
                    .and_then(numbers::from_json)
            };
            let (low, high) = (bound("low"), bound("high"));
            let unit_source = field(node, "low")
                .or_else(|| field(node, "high"))
                .unwrap_or(&Value::Null);
            let value = match (low, high) {
                (Some(l), Some(h)) => (l.value + h.value) / 2.0,
                (Some(l), None) => l.value,
                (None, Some(h)) => h.value,
                (None, None) => return,
            };
            out.push(IndexValue::Quantity {
                value,
                low: low.map_or(f64::NEG_INFINITY, |l| l.low),
                high: high.map_or(f64::INFINITY, |h| h.high),
                system: text_of(unit_source, "system"),
                code: text_of(unit_source, "code"),
                unit: text_of(unit_source, "unit"),
            });
        }
        NodeType::Integer | NodeType::Decimal => {
            if let Some(d) = node.as_number().and_then(numbers::from_json) {
                out.push(IndexValue::Quantity {
                    value: d.value,
                    low: d.low,
                    high: d.high,
                    system: None,
                    code: None,
                    unit: None,
                });
            }
        }
        _ => {}
    }
}

/// A reference split into its parts (see [`IndexValue::Reference`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceParts {
    pub target_type: Option<String>,
    pub id: String,
    pub version: Option<String>,
    pub url: Option<String>,
}

impl ReferenceParts {
    pub fn into_index_value(self) -> IndexValue {
        IndexValue::Reference {
            target_type: self.target_type,
            id: self.id,
            version: self.version,
            url: self.url,
        }
    }
}

/// Splits a reference or canonical: `Patient/1[/_history/2]` is local (type, id, version);
/// an absolute URL or URN keeps the whole text (without a canonical's `|version`) in `url`,
/// with the type when the URL ends in `Type/id`; a bare `id` has no type. Contained
/// references (`#x`) are not searchable and give `None`.
pub fn split_reference(text: &str) -> Option<ReferenceParts> {
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    if text.contains(':') {
        let (url, version) = match text.split_once('|') {
            Some((url, version)) => (url, Some(version.to_string())),
            None => (text, None),
        };
        return Some(ReferenceParts {
            target_type: reference_type(url).map(str::to_string),
            id: String::new(),
            version,
            url: Some(url.to_string()),
        });
    }
    let (path, version) = match split_history(text) {
        Some((path, version)) => (path, Some(version.to_string())),
        None => (text, None),
    };
    match path.split_once('/') {
        None => Some(ReferenceParts {
            target_type: None,
            id: path.to_string(),
            version,
            url: None,
        }),
        Some((ty, id)) if !id.contains('/') && reference_type(path).is_some() => {
            Some(ReferenceParts {
                target_type: Some(ty.to_string()),
                id: id.to_string(),
                version,
                url: None,
            })
        }
        // A relative path that is not Type/id: keep it as written.
        Some(_) => Some(ReferenceParts {
            target_type: None,
            id: String::new(),
            version: None,
            url: Some(text.to_string()),
        }),
    }
}

fn reference_values(node: &Value, ty: NodeType, out: &mut Vec<IndexValue>) {
    match ty {
        NodeType::Reference => {
            if let Some(parts) = field(node, "reference")
                .and_then(Value::as_str)
                .and_then(split_reference)
            {
                out.push(parts.into_index_value());
            }
            // For `param:identifier=system|value`: a logical reference's identifier.
            if let Some(identifier) = field(node, "identifier")
                && let Some(value) = text_of(identifier, "value")
            {
                out.push(IndexValue::Token {
                    system: text_of(identifier, "system"),
                    code: Some(value),
                    text: None,
                });
            }
        }
        NodeType::Resource => {
            if let (Some(rt), Some(id)) = (text_of(node, "resourceType"), text_of(node, "id")) {
                out.push(IndexValue::Reference {
                    target_type: Some(rt),
                    id,
                    version: None,
                    url: None,
                });
            }
        }
        _ => {
            if let Some(parts) = node.as_str().and_then(split_reference) {
                out.push(parts.into_index_value());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(pt: ParamType, node: Value, ty: NodeType) -> Vec<IndexValue> {
        let mut out = Vec::new();
        index_values(pt, &node, ty, &mut out);
        out
    }

    fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
        IndexValue::Token {
            system: system.map(Into::into),
            code: code.map(Into::into),
            text: text.map(Into::into),
        }
    }

    #[test]
    fn codeable_concept_gives_a_token_per_coding_and_its_text() {
        let cc = json!({"coding": [
            {"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
            {"system": "http://snomed.info/sct", "code": "27113001"}], "text": "Paino"});
        assert_eq!(
            values(ParamType::Token, cc, NodeType::CodeableConcept),
            vec![
                token(
                    Some("http://loinc.org"),
                    Some("29463-7"),
                    Some("body weight")
                ),
                token(
                    Some("http://snomed.info/sct"),
                    Some("27113001"),
                    Some("paino")
                ),
                token(None, None, Some("paino")),
            ]
        );
    }

    #[test]
    fn identifier_gives_system_and_value_and_of_type_pairs() {
        let id = json!({"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}});
        let out = values(ParamType::Token, id, NodeType::Identifier);
        assert_eq!(
            out[0],
            token(Some("urn:ietf:rfc:3986"), Some("urn:uuid:1"), None)
        );
        assert_eq!(
            out[1],
            IndexValue::Composite(vec![
                token(
                    Some("http://terminology.hl7.org/CodeSystem/v2-0203"),
                    Some("MR"),
                    None
                ),
                token(None, Some("urn:uuid:1"), None),
            ])
        );
    }

    #[test]
    fn primitives_become_plain_tokens() {
        assert_eq!(
            values(ParamType::Token, json!(true), NodeType::Boolean),
            vec![token(None, Some("true"), None)]
        );
        assert_eq!(
            values(ParamType::Token, json!("final"), NodeType::String),
            vec![token(None, Some("final"), None)]
        );
    }

    #[test]
    fn human_name_gives_a_string_per_part() {
        let name = json!({"family": "Mäkinen", "given": ["Anna", "Liisa"]});
        let out = values(ParamType::String, name, NodeType::HumanName);
        let normalized: Vec<_> = out
            .iter()
            .map(|v| match v {
                IndexValue::String { normalized, .. } => normalized.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(normalized, ["makinen", "anna", "liisa"]);
        assert!(matches!(&out[0], IndexValue::String { exact, .. } if exact == "Mäkinen"));
    }

    #[test]
    fn period_with_open_end_reaches_the_maximum() {
        let p = json!({"start": "2020-01-01"});
        let out = values(ParamType::Date, p, NodeType::Period);
        let (low, _) = dates::range("2020-01-01").unwrap();
        assert_eq!(
            out,
            vec![IndexValue::Date {
                low,
                high: MAX_MICROS
            }]
        );
    }

    #[test]
    fn timing_covers_its_events_and_bounds() {
        let t = json!({"event": ["2020-03-01", "2020-01-15"],
            "repeat": {"boundsPeriod": {"end": "2020-05"}}});
        let out = values(ParamType::Date, t, NodeType::Timing);
        assert_eq!(
            out,
            vec![IndexValue::Date {
                low: MIN_MICROS,
                high: dates::range("2020-05").unwrap().1
            }]
        );
    }

    #[test]
    fn quantity_keeps_units_and_precision_range() {
        let v: Value = serde_json::from_str(
            r#"{"value": 6.30, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"}"#,
        )
        .unwrap();
        let out = values(ParamType::Quantity, v, NodeType::Quantity);
        let IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
        } = &out[0]
        else {
            panic!("not a quantity: {out:?}");
        };
        assert!(
            (value - 6.3).abs() < 1e-9 && (low - 6.295).abs() < 1e-9 && (high - 6.305).abs() < 1e-9
        );
        assert_eq!(system.as_deref(), Some("http://unitsofmeasure.org"));
        assert_eq!(code.as_deref(), Some("mmol/L"));
        assert_eq!(unit.as_deref(), Some("mmol/l"));
    }

    #[test]
    fn quantity_comparator_opens_the_range() {
        let out = values(
            ParamType::Quantity,
            json!({"value": 10, "comparator": "<"}),
            NodeType::Quantity,
        );
        assert!(
            matches!(out[0], IndexValue::Quantity { low, high, .. } if low == f64::NEG_INFINITY && high == 10.5)
        );
    }

    #[test]
    fn money_and_range_are_quantities() {
        let out = values(
            ParamType::Quantity,
            json!({"value": 5, "currency": "EUR"}),
            NodeType::Money,
        );
        assert!(
            matches!(&out[0], IndexValue::Quantity { code: Some(c), system: Some(s), .. } if c == "EUR" && s == CURRENCY_SYSTEM)
        );
        let out = values(
            ParamType::Quantity,
            json!({"low": {"value": 2, "code": "a"}}),
            NodeType::Range,
        );
        assert!(
            matches!(&out[0], IndexValue::Quantity { low, high, code: Some(c), .. } if *low == 1.5 && *high == f64::INFINITY && c == "a")
        );
    }

    #[test]
    fn references_are_split() {
        let r = |s: &str| split_reference(s);
        let local = r("Patient/123/_history/2").unwrap();
        assert_eq!(local.target_type.as_deref(), Some("Patient"));
        assert_eq!(
            (local.id.as_str(), local.version.as_deref()),
            ("123", Some("2"))
        );
        let abs = r("https://phr.example/fhir/Patient/9").unwrap();
        assert_eq!(abs.target_type.as_deref(), Some("Patient"));
        assert_eq!(abs.id, "");
        assert_eq!(
            abs.url.as_deref(),
            Some("https://phr.example/fhir/Patient/9")
        );
        let canonical = r("http://phr.kanta.fi/Questionnaire/q1|1.0").unwrap();
        assert_eq!(
            canonical.url.as_deref(),
            Some("http://phr.kanta.fi/Questionnaire/q1")
        );
        assert_eq!(canonical.version.as_deref(), Some("1.0"));
        assert_eq!(r("123").unwrap().id, "123");
        assert!(r("#contained").is_none());
        assert!(
            r("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")
                .unwrap()
                .target_type
                .is_none()
        );
    }

    #[test]
    fn logical_reference_gives_an_identifier_token() {
        let node = json!({"identifier": {"system": "urn:oid:1.2.246.21", "value": "x"}});
        assert_eq!(
            values(ParamType::Reference, node, NodeType::Reference),
            vec![token(Some("urn:oid:1.2.246.21"), Some("x"), None)]
        );
    }

    #[test]
    fn engine_nodes_are_typed_by_shape() {
        let out = values(
            ParamType::Token,
            json!({"coding": [{"code": "x"}]}),
            NodeType::Unknown,
        );
        assert_eq!(out, vec![token(None, Some("x"), None)]);
        let out = values(ParamType::Date, json!("2020"), NodeType::Unknown);
        assert_eq!(out.len(), 1);
    }
}
