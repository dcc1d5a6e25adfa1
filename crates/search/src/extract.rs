//! Index extraction at write time: every search parameter of the resource's type evaluated on
//! the resource and turned into typed [`IndexEntry`]s, and the patient compartment the
//! resource belongs to.
//!
//! Call it on the final body (after the server has set `id` and `meta.lastUpdated`), so
//! `_id` and `_lastUpdated` are indexed too.

use serde_json::Value;

use crate::model::{IndexEntry, IndexValue};
use crate::program::NodeType;
use crate::registry::{Extractor, Registry, SearchParam};
use crate::values::index_values;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the resource has no resourceType")]
    NoResourceType,
    #[error("'{0}' is not an R4 resource type")]
    UnknownType(String),
}

/// The index entries of `resource` for every supported search parameter of its type, using
/// the global registry.
pub fn extract(resource: &Value) -> Result<Vec<IndexEntry>, ExtractError> {
    Registry::global().extract(resource)
}

/// The Patient id whose compartment holds `resource` (see [`Registry::patient_compartment`]).
pub fn patient_compartment(resource: &Value, entries: &[IndexEntry]) -> Option<String> {
    Registry::global().patient_compartment(resource, entries)
}

/// Reused buffers, so extraction allocates only what it returns.
#[derive(Default)]
struct Scratch<'a> {
    nodes: Vec<(&'a Value, NodeType)>,
    values: Vec<IndexValue>,
}

impl Registry {
    /// The index entries of `resource` for every supported search parameter of its type.
    /// Values that are not valid for their type (a malformed date, say) are skipped: the
    /// validator reports those before anything is stored.
    pub fn extract(&self, resource: &Value) -> Result<Vec<IndexEntry>, ExtractError> {
        let rt = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or(ExtractError::NoResourceType)?;
        let Some((params, plan)) = self.params_and_plan(rt) else {
            return Err(ExtractError::UnknownType(rt.to_string()));
        };
        let Value::Object(top) = resource else {
            return Err(ExtractError::NoResourceType);
        };
        // One pass over the resource's keys finds the nodes of every compiled path that
        // starts with that key, tagged (parameter << 16 | term) and then grouped.
        let mut dispatched: Vec<(u32, &Value, NodeType)> = Vec::with_capacity(64);
        let mut found = Vec::new();
        for (key, value) in top {
            let Some(targets) = plan.lookup(key) else {
                continue;
            };
            for &(p, t) in targets {
                let Some(Extractor::Fast(compiled)) =
                    params.get(usize::from(p)).map(|param| &param.extractor)
                else {
                    continue;
                };
                let Some(term) = compiled.terms.get(usize::from(t)) else {
                    continue;
                };
                found.clear();
                term.run_after_first(value, &mut found);
                let tag = (u32::from(p) << 16) | u32::from(t);
                dispatched.extend(found.drain(..).map(|(v, ty)| (tag, v, ty)));
            }
        }
        dispatched.sort_by_key(|d| d.0);

        let mut out = Vec::with_capacity(48);
        let mut scratch = Scratch::default();
        let mut cursor = 0;
        for (p, param) in params.iter().enumerate() {
            scratch.values.clear();
            if let Extractor::Fast(compiled) = &param.extractor {
                while let Some((tag, node, ty)) = dispatched.get(cursor) {
                    if (tag >> 16) as usize != p {
                        break;
                    }
                    index_values(param.param_type, node, *ty, &mut scratch.values);
                    cursor += 1;
                }
                for term in compiled.terms.iter().filter(|t| t.dispatch_key().is_none()) {
                    scratch.nodes.clear();
                    term.evaluate(resource, resource, &mut scratch.nodes);
                    for (node, ty) in &scratch.nodes {
                        index_values(param.param_type, node, *ty, &mut scratch.values);
                    }
                }
            } else {
                param_values(param, resource, &mut scratch);
            }
            dedupe(&mut scratch.values);
            out.extend(scratch.values.drain(..).map(|value| IndexEntry {
                param: param.code.clone(),
                value,
            }));
        }
        Ok(out)
    }

    /// Extraction without the dispatch plan: every parameter evaluated on its own. The
    /// reference the planned extraction is tested against.
    #[cfg(test)]
    pub(crate) fn extract_unplanned(&self, resource: &Value) -> Vec<IndexEntry> {
        let rt = resource["resourceType"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        for param in self.params(rt) {
            scratch.values.clear();
            param_values(param, resource, &mut scratch);
            dedupe(&mut scratch.values);
            out.extend(scratch.values.drain(..).map(|value| IndexEntry {
                param: param.code.clone(),
                value,
            }));
        }
        out
    }

    /// The Patient id whose compartment holds `resource`: a Patient's own id; otherwise the
    /// first Patient reference among the resource's compartment parameters, in the order
    /// of the R4 Patient CompartmentDefinition (`subject` before `performer` for an
    /// Observation, `patient` first for a MedicationAdministration). `entries` are the
    /// resource's extracted index entries.
    pub fn patient_compartment(&self, resource: &Value, entries: &[IndexEntry]) -> Option<String> {
        self.patient_compartments(resource, entries)
            .into_iter()
            .next()
    }

    /// Every Patient id whose compartment holds `resource`, primary first, without repeats.
    pub fn patient_compartments(&self, resource: &Value, entries: &[IndexEntry]) -> Vec<String> {
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        if rt == "Patient" {
            if let Some(id) = resource.get("id").and_then(Value::as_str) {
                out.push(id.to_string());
            }
            return out;
        }
        for param in self.patient_compartment_params(rt) {
            for entry in entries.iter().filter(|e| &e.param == param) {
                if let IndexValue::Reference {
                    target_type: Some(t),
                    id,
                    ..
                } = &entry.value
                    && t == "Patient"
                    && !id.is_empty()
                    && !out.contains(id)
                {
                    out.push(id.clone());
                }
            }
        }
        out
    }
}

fn param_values<'a>(param: &SearchParam, resource: &'a Value, scratch: &mut Scratch<'a>) {
    match &param.extractor {
        Extractor::None => {}
        Extractor::Fast(compiled) => {
            scratch.nodes.clear();
            compiled.evaluate(resource, resource, &mut scratch.nodes);
            for (node, ty) in &scratch.nodes {
                index_values(param.param_type, node, *ty, &mut scratch.values);
            }
        }
        Extractor::Engine(path) => {
            for node in path.evaluate(resource).unwrap_or_default() {
                index_values(
                    param.param_type,
                    &node,
                    NodeType::Unknown,
                    &mut scratch.values,
                );
            }
        }
        Extractor::Composite(bases) => {
            let mut bases_nodes = Vec::new();
            for base in bases {
                bases_nodes.clear();
                base.base.evaluate(resource, resource, &mut bases_nodes);
                for (node, _) in &bases_nodes {
                    let mut per_component = Vec::with_capacity(base.components.len());
                    for (ty, compiled) in &base.components {
                        let mut nodes = Vec::new();
                        compiled.evaluate(resource, node, &mut nodes);
                        let mut values = Vec::new();
                        for (n, nt) in nodes {
                            index_values(*ty, n, nt, &mut values);
                        }
                        per_component.push(values);
                    }
                    combine(per_component, &mut scratch.values);
                }
            }
        }
        Extractor::EngineComposite { base, components } => {
            for node in base.evaluate(resource).unwrap_or_default() {
                let mut per_component = Vec::with_capacity(components.len());
                for (ty, path) in components {
                    let start = if path.source().starts_with("%resource") {
                        resource
                    } else {
                        &node
                    };
                    let mut values = Vec::new();
                    for n in path.evaluate(start).unwrap_or_default() {
                        index_values(*ty, &n, NodeType::Unknown, &mut values);
                    }
                    per_component.push(values);
                }
                combine(per_component, &mut scratch.values);
            }
        }
    }
}

/// One composite value per combination of component values taken from the same element.
/// Text-only tokens (a CodeableConcept's text) are left out: a composite matches on codes.
fn combine(mut per_component: Vec<Vec<IndexValue>>, out: &mut Vec<IndexValue>) {
    for values in &mut per_component {
        values.retain(|v| {
            !matches!(
                v,
                IndexValue::Token {
                    system: None,
                    code: None,
                    ..
                } | IndexValue::Composite(_)
            )
        });
    }
    if per_component.is_empty() || per_component.iter().any(Vec::is_empty) {
        return;
    }
    let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
    for values in &per_component {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in values {
                let mut c = combo.clone();
                c.push(v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    out.extend(combos.into_iter().map(IndexValue::Composite));
}

/// Removes repeated values (a code present twice, a union yielding a node twice).
fn dedupe(values: &mut Vec<IndexValue>) {
    if values.len() < 2 {
        return;
    }
    let mut i = 1;
    while i < values.len() {
        let repeated = match (values.get(..i), values.get(i)) {
            (Some(seen), Some(value)) => seen.contains(value),
            _ => false,
        };
        if repeated {
            values.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates;
    use serde_json::json;

    fn entries_for<'a>(entries: &'a [IndexEntry], param: &str) -> Vec<&'a IndexValue> {
        entries
            .iter()
            .filter(|e| e.param == param)
            .map(|e| &e.value)
            .collect()
    }

    fn blood_pressure() -> Value {
        json!({
            "resourceType": "Observation",
            "id": "bp1",
            "meta": {"lastUpdated": "2024-05-01T10:00:00.000+03:00",
                     "profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure"]},
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p1"}],
            "effectiveDateTime": "2024-05-01T09:30:00+03:00",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            ]
        })
    }

    #[test]
    fn extracts_common_and_type_parameters() {
        let entries = extract(&blood_pressure()).unwrap();
        assert_eq!(
            entries_for(&entries, "_id"),
            [&IndexValue::Token {
                system: None,
                code: Some("bp1".into()),
                text: None
            }]
        );
        let (low, _) = dates::range("2024-05-01T10:00:00.000+03:00").unwrap();
        assert!(
            matches!(entries_for(&entries, "_lastUpdated")[..], [IndexValue::Date { low: l, .. }] if *l == low)
        );
        assert_eq!(
            entries_for(&entries, "_profile"),
            [&IndexValue::Uri(
                "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure".into()
            )]
        );
        assert_eq!(entries_for(&entries, "status").len(), 1);
        assert_eq!(entries_for(&entries, "date").len(), 1);
        let patient = entries_for(&entries, "patient");
        assert_eq!(
            patient,
            [&IndexValue::Reference {
                target_type: Some("Patient".into()),
                id: "p1".into(),
                version: None,
                url: None
            }]
        );
    }

    #[test]
    fn component_composites_pair_values_from_the_same_component() {
        let entries = extract(&blood_pressure()).unwrap();
        let composites = entries_for(&entries, "component-code-value-quantity");
        assert_eq!(composites.len(), 2);
        let pairs: Vec<(String, f64)> = composites
            .iter()
            .map(|c| match c {
                IndexValue::Composite(parts) => match (&parts[0], &parts[1]) {
                    (
                        IndexValue::Token {
                            code: Some(code), ..
                        },
                        IndexValue::Quantity { value, .. },
                    ) => (code.clone(), *value),
                    other => panic!("unexpected parts {other:?}"),
                },
                other => panic!("not a composite {other:?}"),
            })
            .collect();
        assert_eq!(
            pairs,
            [("8480-6".to_string(), 120.0), ("8462-4".to_string(), 80.0)]
        );
        // combo-code-value-quantity covers the components (the resource has no value).
        assert_eq!(entries_for(&entries, "combo-code-value-quantity").len(), 2);
        assert!(entries_for(&entries, "code-value-quantity").is_empty());
        assert_eq!(entries_for(&entries, "component-value-quantity").len(), 2);
    }

    #[test]
    fn code_value_quantity_pairs_every_code_with_the_value() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"},
                                {"system": "http://loinc.org", "code": "14743-9"}], "text": "Glucose"},
            "valueQuantity": {"value": 6.3, "code": "mmol/L"}});
        let entries = extract(&obs).unwrap();
        assert_eq!(entries_for(&entries, "code-value-quantity").len(), 2);
        // The text-only token stays in `code` but not in the composites.
        assert_eq!(entries_for(&entries, "code").len(), 3);
    }

    #[test]
    fn duplicate_values_are_indexed_once() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1"}, {"system": "http://loinc.org", "code": "1"}]}});
        let entries = extract(&obs).unwrap();
        assert_eq!(entries_for(&entries, "code").len(), 1);
    }

    #[test]
    fn engine_fallback_extracts_patient_deceased() {
        let alive = json!({"resourceType": "Patient", "id": "a", "deceasedBoolean": false});
        let dead = json!({"resourceType": "Patient", "id": "b", "deceasedDateTime": "2020-01-01"});
        let token = |v: &str| IndexValue::Token {
            system: None,
            code: Some(v.into()),
            text: None,
        };
        assert_eq!(
            entries_for(&extract(&alive).unwrap(), "deceased"),
            [&token("false")]
        );
        assert_eq!(
            entries_for(&extract(&dead).unwrap(), "deceased"),
            [&token("true")]
        );
    }

    #[test]
    fn every_parameter_type_is_extracted_from_real_parameters() {
        let number = json!({"resourceType": "RiskAssessment", "status": "final",
            "subject": {"reference": "Patient/p"}, "prediction": [{"probabilityDecimal": 0.25}]});
        let entries = extract(&number).unwrap();
        assert!(matches!(entries_for(&entries, "probability")[..],
            [IndexValue::Number { value, low, high }] if *value == 0.25 && *low == 0.245 && *high == 0.255));

        let q = json!({"resourceType": "Questionnaire", "status": "active",
            "url": "http://phr.kanta.fi/Questionnaire/q1", "name": "Kysely"});
        let entries = extract(&q).unwrap();
        assert_eq!(
            entries_for(&entries, "url"),
            [&IndexValue::Uri(
                "http://phr.kanta.fi/Questionnaire/q1".into()
            )]
        );
        assert!(matches!(entries_for(&entries, "name")[..],
            [IndexValue::String { normalized, exact }] if normalized == "kysely" && exact == "Kysely"));

        let patient = json!({"resourceType": "Patient", "id": "p", "active": true,
            "meta": {"tag": [{"system": "urn:t", "code": "demo"}], "source": "urn:app:1"},
            "address": [{"city": "Hämeenlinna", "line": ["Katu 1"]}]});
        let entries = extract(&patient).unwrap();
        let token = |s: Option<&str>, c: &str| IndexValue::Token {
            system: s.map(Into::into),
            code: Some(c.into()),
            text: None,
        };
        assert_eq!(entries_for(&entries, "active"), [&token(None, "true")]);
        assert_eq!(
            entries_for(&entries, "_tag"),
            [&token(Some("urn:t"), "demo")]
        );
        assert_eq!(
            entries_for(&entries, "_source"),
            [&IndexValue::Uri("urn:app:1".into())]
        );
        assert!(matches!(entries_for(&entries, "address-city")[..],
            [IndexValue::String { normalized, .. }] if normalized == "hameenlinna"));
        assert_eq!(entries_for(&entries, "address").len(), 2, "line and city");

        let plan = json!({"resourceType": "CarePlan", "status": "completed", "intent": "plan",
            "subject": {"reference": "Patient/p"},
            "activity": [{"detail": {"status": "completed",
                "scheduledTiming": {"event": ["2024-03-01T08:00:00Z", "2024-03-05T08:00:00Z"]}}}],
            "supportingInfo": [{"reference": "QuestionnaireResponse/qr1"}]});
        let entries = extract(&plan).unwrap();
        let (low, _) = dates::range("2024-03-01T08:00:00Z").unwrap();
        let (_, high) = dates::range("2024-03-05T08:00:00Z").unwrap();
        assert_eq!(
            entries_for(&entries, "activity-date"),
            [&IndexValue::Date { low, high }]
        );
        assert_eq!(
            entries_for(&entries, "supporting-info"),
            [&IndexValue::Reference {
                target_type: Some("QuestionnaireResponse".into()),
                id: "qr1".into(),
                version: None,
                url: None
            }]
        );

        let qr = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": "http://phr.kanta.fi/Questionnaire/q1|2.0",
            "authored": "2024-03-01", "subject": {"reference": "Patient/p"}});
        let entries = extract(&qr).unwrap();
        assert!(matches!(entries_for(&entries, "questionnaire")[..],
            [IndexValue::Reference { url: Some(u), version: Some(v), .. }]
                if u == "http://phr.kanta.fi/Questionnaire/q1" && v == "2.0"));
        assert_eq!(entries_for(&entries, "authored").len(), 1);
        assert_eq!(patient_compartment(&qr, &entries).as_deref(), Some("p"));
    }

    #[test]
    fn rejects_what_is_not_a_resource() {
        assert_eq!(extract(&json!({"a": 1})), Err(ExtractError::NoResourceType));
        assert_eq!(
            extract(&json!({"resourceType": "Nope"})),
            Err(ExtractError::UnknownType("Nope".into()))
        );
    }

    #[test]
    fn compartment_is_the_subject_patient() {
        let obs = blood_pressure();
        let entries = extract(&obs).unwrap();
        assert_eq!(patient_compartment(&obs, &entries).as_deref(), Some("p1"));
        let ma = json!({"resourceType": "MedicationAdministration", "status": "completed",
            "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2024-01-01"});
        let entries = extract(&ma).unwrap();
        assert_eq!(patient_compartment(&ma, &entries).as_deref(), Some("p2"));
    }

    #[test]
    fn patient_is_its_own_compartment() {
        let p = json!({"resourceType": "Patient", "id": "p9"});
        assert_eq!(patient_compartment(&p, &[]).as_deref(), Some("p9"));
    }

    #[test]
    fn resources_outside_patient_compartments_have_none() {
        let q = json!({"resourceType": "Questionnaire", "status": "active", "url": "http://x/q"});
        let entries = extract(&q).unwrap();
        assert_eq!(patient_compartment(&q, &entries), None);
        let group_subject = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Group/g"}});
        let entries = extract(&group_subject).unwrap();
        assert_eq!(patient_compartment(&group_subject, &entries), None);
    }
}
