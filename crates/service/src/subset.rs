//! `_summary` and `_elements`: cutting returned resources down to the summary elements, the
//! data without the narrative, the narrative, or a list of elements, from the R4
//! definitions' `isSummary` and `min`. Resources cut down are tagged `SUBSETTED`.

use std::collections::{HashMap, HashSet};

use phr_search::{SearchQuery, Summary};
use serde_json::{Map, Value, json};

/// How returned resources are cut down (`_summary`, `_elements`).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Full,
    Summary,
    Data,
    Text,
    Elements(Vec<String>),
}

impl Shape {
    pub fn of(query: &SearchQuery) -> Shape {
        if !query.elements.is_empty() {
            return Shape::Elements(query.elements.clone());
        }
        match query.summary {
            Summary::True => Shape::Summary,
            Summary::Data => Shape::Data,
            Summary::Text => Shape::Text,
            Summary::False | Summary::Count => Shape::Full,
        }
    }
}

/// Knows, per resource type, which top-level elements are in the summary and which are
/// mandatory (from the R4 definitions' `isSummary` and `min`).
pub struct Subsetter {
    summary: HashMap<String, HashSet<String>>,
    mandatory: HashMap<String, HashSet<String>>,
}

impl Default for Subsetter {
    fn default() -> Self {
        Self::new()
    }
}

impl Subsetter {
    pub fn new() -> Self {
        let mut summary: HashMap<String, HashSet<String>> = HashMap::new();
        let mut mandatory: HashMap<String, HashSet<String>> = HashMap::new();
        for sd in phr_fhir::defs::structure_definitions().iter() {
            let text = |key: &str| sd.get(key).and_then(Value::as_str);
            if text("kind") != Some("resource") || text("derivation") != Some("specialization") {
                continue;
            }
            let Some(rt) = text("type") else {
                continue;
            };
            let Some(elements) = sd.pointer("/snapshot/element").and_then(Value::as_array) else {
                continue;
            };
            for element in elements {
                let Some(path) = element.get("path").and_then(Value::as_str) else {
                    continue;
                };
                let Some(name) = path.strip_prefix(rt).and_then(|p| p.strip_prefix('.')) else {
                    continue;
                };
                if name.contains('.') {
                    continue;
                }
                let name = name.trim_end_matches("[x]").to_string();
                if element.get("isSummary").and_then(Value::as_bool) == Some(true) {
                    summary
                        .entry(rt.to_string())
                        .or_default()
                        .insert(name.clone());
                }
                if element.get("min").and_then(Value::as_u64).unwrap_or(0) > 0 {
                    mandatory.entry(rt.to_string()).or_default().insert(name);
                }
            }
        }
        Subsetter { summary, mandatory }
    }

    /// Cuts `resource` down to `shape`, marking it `SUBSETTED` when anything was removed.
    pub fn apply(&self, resource: Value, shape: &Shape) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let rt = map
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let empty = HashSet::new();
        let summary = self.summary.get(&rt).unwrap_or(&empty);
        let mandatory = self.mandatory.get(&rt).unwrap_or(&empty);
        let keep = |key: &str| -> bool {
            let base = element_name(key);
            if matches!(key, "resourceType" | "id" | "meta") {
                return true;
            }
            match shape {
                Shape::Full => true,
                Shape::Summary => summary.contains(base),
                Shape::Data => key != "text",
                Shape::Text => key == "text" || mandatory.contains(base),
                // `value` and `valueQuantity` both name the choice element.
                Shape::Elements(list) => {
                    list.iter().any(|e| e == base || e == key) || mandatory.contains(base)
                }
            }
        };
        let before = map.len();
        let mut out: Map<String, Value> = map.into_iter().filter(|(k, _)| keep(k)).collect();
        if out.len() < before {
            mark_subsetted(&mut out);
        }
        Value::Object(out)
    }
}

/// `valueQuantity` → `value`, `_status` → `status`: the element a JSON key belongs to.
fn element_name(key: &str) -> &str {
    let key = key.strip_prefix('_').unwrap_or(key);
    match key.find(|c: char| c.is_ascii_uppercase()) {
        Some(i) if i > 0 => key.get(..i).unwrap_or(key),
        _ => key,
    }
}

fn mark_subsetted(resource: &mut Map<String, Value>) {
    let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    let meta = resource.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        match meta.entry("tag").or_insert_with(|| json!([])) {
            Value::Array(tags) => tags.push(tag),
            other => *other = json!([tag]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names_strip_choice_types_and_underscores() {
        assert_eq!(element_name("valueQuantity"), "value");
        assert_eq!(element_name("_status"), "status");
        assert_eq!(element_name("effectiveDateTime"), "effective");
        assert_eq!(element_name("code"), "code");
    }

    #[test]
    fn summary_keeps_summary_elements_and_marks_the_resource() {
        let s = Subsetter::new();
        let obs = json!({"resourceType": "Observation", "id": "1", "text": {"status": "generated"},
            "status": "final", "code": {"text": "x"}, "note": [{"text": "n"}], "valueQuantity": {"value": 1}});
        let out = s.apply(obs.clone(), &Shape::Summary);
        assert!(out.get("note").is_none());
        assert!(out.get("text").is_none());
        assert_eq!(out["valueQuantity"]["value"], 1);
        assert_eq!(out["meta"]["tag"][0]["code"], "SUBSETTED");
        let data = s.apply(obs.clone(), &Shape::Data);
        assert!(data.get("text").is_none() && data.get("note").is_some());
        let full = s.apply(obs.clone(), &Shape::Full);
        assert_eq!(full, obs);
    }

    #[test]
    fn elements_keep_the_listed_and_the_mandatory() {
        let s = Subsetter::new();
        let obs = json!({"resourceType": "Observation", "id": "1", "status": "final", "code": {"text": "x"},
            "note": [{"text": "n"}], "valueQuantity": {"value": 1}});
        let out = s.apply(obs, &Shape::Elements(vec!["value".into()]));
        assert!(out.get("note").is_none());
        assert_eq!(out["status"], "final");
        assert_eq!(out["valueQuantity"]["value"], 1);
    }
}
