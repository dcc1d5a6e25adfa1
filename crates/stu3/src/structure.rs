//! The STU3 StructureDefinitions of the catalogue's STU3 twins, rendered from their R4
//! twins' differentials (one declaration, two renderings): element paths renamed where STU3
//! names them differently, R4-only elements left out, ElementDefinition properties in their
//! STU3 form (`type.profile` a single URL, `binding.valueSetReference`), the
//! observation-category system of STU3.
//!
//! They carry a differential only: the STU3 core definitions are not embedded, so there is
//! no STU3 snapshot to generate against. STU3 input is checked structurally by the
//! converter (every element must be a STU3 element) and validated in full against the R4
//! profile after conversion.

use std::sync::OnceLock;

use phr_catalog::Catalog;
use phr_catalog::stu3::{Stu3Twin, TWINS, VITAL_SIGNS};
use serde_json::{Map, Value, json};

use crate::observation::{CATEGORY_R4, CATEGORY_STU3};

/// R4 element paths STU3 names differently: (R4 path, STU3 path).
const RENAMED: &[(&str, &str)] = &[
    ("Observation.encounter", "Observation.context"),
    ("Observation.note", "Observation.comment"),
    (
        "MedicationAdministration.request",
        "MedicationAdministration.prescription",
    ),
    (
        "MedicationAdministration.statusReason",
        "MedicationAdministration.reasonNotGiven",
    ),
    ("CarePlan.encounter", "CarePlan.context"),
    ("CarePlan.instantiatesCanonical", "CarePlan.definition"),
    (
        "CarePlan.activity.detail.doNotPerform",
        "CarePlan.activity.detail.prohibited",
    ),
    (
        "Questionnaire.item.answerValueSet",
        "Questionnaire.item.options",
    ),
    (
        "Questionnaire.item.answerOption",
        "Questionnaire.item.option",
    ),
    (
        "QuestionnaireResponse.partOf",
        "QuestionnaireResponse.parent",
    ),
    (
        "QuestionnaireResponse.encounter",
        "QuestionnaireResponse.context",
    ),
];

/// R4 elements STU3 does not have (their constraints have no STU3 place).
const R4_ONLY: &[&str] = &[
    "Observation.partOf",
    "Observation.focus",
    "Observation.hasMember",
    "Observation.derivedFrom",
    "Observation.effectiveTiming",
    "Observation.effectiveInstant",
    "Observation.valueInteger",
    "Observation.note.author",
    "Observation.note.time",
    "Observation.note.text",
    "Observation.component.valueInteger",
    "MedicationAdministration.instantiates",
    "MedicationAdministration.performer.function",
    "CarePlan.instantiatesUri",
    "CarePlan.created",
    "CarePlan.contributor",
    "CarePlan.activity.detail.kind",
    "CarePlan.activity.detail.instantiatesCanonical",
    "CarePlan.activity.detail.instantiatesUri",
    "Questionnaire.derivedFrom",
    "Questionnaire.item.enableBehavior",
    "Questionnaire.item.enableWhen.operator",
    "Questionnaire.item.initial",
    "Questionnaire.item.answerOption.initialSelected",
    "Meta.source",
];

/// ElementDefinition properties R4 added.
const R4_ONLY_PROPERTIES: &[&str] = &["isModifierReason", "sliceIsConstraining"];

/// Every STU3 twin's StructureDefinition, rendered once.
pub fn structure_definitions() -> &'static [Value] {
    static DEFINITIONS: OnceLock<Vec<Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| TWINS.iter().filter_map(render).collect())
}

/// The STU3 StructureDefinition at `url` (a `|version` suffix is ignored).
pub fn structure_definition(url: &str) -> Option<&'static Value> {
    let url = url.split('|').next().unwrap_or(url);
    structure_definitions().iter().find(|sd| sd["url"] == url)
}

fn render(twin: &Stu3Twin) -> Option<Value> {
    let r4_url = twin.r4.first()?;
    let r4 = Catalog::get().structure_definition(r4_url)?;
    let base = if twin.url == VITAL_SIGNS {
        "http://hl7.org/fhir/StructureDefinition/vitalsigns".to_string()
    } else {
        format!(
            "http://hl7.org/fhir/StructureDefinition/{}",
            twin.resource_type
        )
    };
    let elements: Vec<Value> = r4
        .pointer("/differential/element")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(element)
        .collect();
    let stored_as = twin.r4.join(", ");
    let mut sd = json!({
        "resourceType": "StructureDefinition",
        "id": twin.id,
        "url": twin.url,
        "name": twin.id.replace('-', "_"),
        "title": twin.title,
        "status": if twin.published { "active" } else { "draft" },
        "publisher": r4.get("publisher").cloned().unwrap_or(json!("Kela")),
        "description": format!(
            "{} as served at the FHIR STU3 endpoint. Stored in R4 as {stored_as}; rendered \
             from that profile's differential.{}",
            twin.title,
            if twin.published { "" } else { " Kela published no STU3 URL for this content; this one is the catalogue's." }
        ),
        "fhirVersion": crate::Version::Stu3.number(),
        "kind": "resource",
        "abstract": false,
        "type": twin.resource_type,
        "baseDefinition": base,
        "derivation": "constraint",
    });
    if let Some(object) = sd.as_object_mut() {
        object.insert("differential".into(), json!({ "element": elements }));
    }
    Some(sd)
}

/// One R4 differential element in STU3 form, or nothing when STU3 has no such element.
fn element(element: &Value) -> Option<Value> {
    let path = element.get("path").and_then(Value::as_str)?;
    let plain = path.replace("[x]", "");
    if R4_ONLY.iter().any(|p| {
        plain == *p || plain.starts_with(&format!("{p}.")) || path.starts_with(&format!("{p}:"))
    }) {
        return None;
    }
    let text = serde_json::to_string(element)
        .ok()?
        .replace(CATEGORY_R4, CATEGORY_STU3);
    let mut element: Map<String, Value> = serde_json::from_str(&text).ok()?;
    for key in ["path", "id"] {
        if let Some(value) = element.get(key).and_then(Value::as_str) {
            let renamed = rename(value);
            element.insert(key.into(), Value::String(renamed));
        }
    }
    for key in R4_ONLY_PROPERTIES {
        element.remove(*key);
    }
    // STU3 has no canonical or url type: they are uris there.
    let renamed: Vec<(String, String)> = element
        .keys()
        .filter_map(|key| {
            let stem = key
                .strip_suffix("Canonical")
                .or_else(|| key.strip_suffix("Url"))?;
            ["fixed", "pattern", "defaultValue", "minValue", "maxValue"]
                .contains(&stem)
                .then(|| (key.clone(), format!("{stem}Uri")))
        })
        .collect();
    for (from, to) in renamed {
        if let Some(value) = element.remove(&from) {
            element.insert(to, value);
        }
    }
    if let Some(types) = element.remove("type") {
        element.insert("type".into(), Value::Array(types_to_stu3(&types)));
    }
    if let Some(binding) = element.get_mut("binding").and_then(Value::as_object_mut)
        && let Some(value_set) = binding.remove("valueSet")
    {
        binding.insert(
            "valueSetReference".into(),
            json!({ "reference": value_set }),
        );
    }
    Some(Value::Object(element))
}

fn rename(path: &str) -> String {
    for (r4, stu3) in RENAMED {
        if let Some(rest) = path.strip_prefix(r4)
            && (rest.is_empty() || rest.starts_with('.') || rest.starts_with(':'))
        {
            return format!("{stu3}{rest}");
        }
    }
    path.to_string()
}

/// R4 `type` entries (profiles and target profiles as arrays) as STU3 ones (one URL each:
/// an entry per profile).
fn types_to_stu3(types: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for t in types.as_array().into_iter().flatten() {
        let Some(object) = t.as_object() else {
            continue;
        };
        let profiles = list(object.get("profile"));
        let targets = list(object.get("targetProfile"));
        let mut base = object.clone();
        base.remove("profile");
        base.remove("targetProfile");
        // STU3 has no canonical type: a canonical to a profile is a Reference there
        // (QuestionnaireResponse.questionnaire), any other one a uri.
        match base.get("code").and_then(Value::as_str) {
            Some("canonical") if !targets.is_empty() => {
                base.insert("code".into(), json!("Reference"));
            }
            Some("canonical" | "url") => {
                base.insert("code".into(), json!("uri"));
            }
            _ => {}
        }
        let twin = |url: &Value| match url.as_str().and_then(phr_catalog::stu3::twin_of_r4) {
            Some(twin) => json!(twin.url),
            None => url.clone(),
        };
        let profiles: Vec<Value> = profiles.iter().map(twin).collect();
        let targets: Vec<Value> = targets.iter().map(twin).collect();
        if profiles.is_empty() && targets.is_empty() {
            out.push(Value::Object(base));
            continue;
        }
        for profile in profiles
            .iter()
            .map(Some)
            .chain(profiles.is_empty().then_some(None))
        {
            for target in targets
                .iter()
                .map(Some)
                .chain(targets.is_empty().then_some(None))
            {
                let mut entry = base.clone();
                if let Some(p) = profile {
                    entry.insert("profile".into(), p.clone());
                }
                if let Some(t) = target {
                    entry.insert("targetProfile".into(), t.clone());
                }
                out.push(Value::Object(entry));
            }
        }
    }
    out
}

fn list(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_twin_has_a_stu3_structure_definition() {
        let sds = structure_definitions();
        assert_eq!(sds.len(), TWINS.len());
        for sd in sds {
            assert_eq!(sd["fhirVersion"], "3.0.1");
            assert!(
                sd["differential"]["element"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty()),
                "{}",
                sd["url"]
            );
            let text = sd.to_string();
            assert!(!text.contains(CATEGORY_R4), "{}", sd["url"]);
            assert!(!text.contains("\"valueSet\""), "{}", sd["url"]);
            assert!(!text.contains("Canonical\""), "{}", sd["url"]);
            assert!(!text.contains("\"code\":\"canonical\""), "{}", sd["url"]);
        }
    }

    #[test]
    fn glucose_keeps_its_codes_and_vital_signs_their_stu3_paths() {
        let sd = structure_definition(phr_catalog::stu3::BLOOD_GLUCOSE).unwrap();
        let text = sd.to_string();
        assert!(text.contains("14743-9"));
        assert!(text.contains("mmol/L"));
        // The category slice comes from the base vital-signs profile of each version.
        let text = structure_definition(VITAL_SIGNS).unwrap().to_string();
        assert!(!text.contains(CATEGORY_R4));
        // STU3 comment is a string: the R4 note's parts have no place.
        assert!(!text.contains("Observation.comment.author"), "{text}");
    }

    #[test]
    fn renamed_elements_take_their_stu3_path() {
        assert_eq!(
            rename("MedicationAdministration.request"),
            "MedicationAdministration.prescription"
        );
        assert_eq!(rename("Observation.note.text"), "Observation.comment.text");
        assert_eq!(rename("Observation.noteX"), "Observation.noteX");
    }
}
