//! The official FHIR R4 definitions embedded in the binary (see `defs/r4/SOURCE` and
//! `tools/import-r4-definitions.py`). This module only unpacks them; the registry built
//! from them lives in `registry`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

const STRUCTURE_DEFINITIONS: &[u8] =
    include_bytes!("../../../defs/r4/structure-definitions.json.gz");
const SEARCH_PARAMETERS: &[u8] = include_bytes!("../../../defs/r4/search-parameters.json.gz");
const TERMINOLOGY: &[u8] = include_bytes!("../../../defs/r4/terminology.json.gz");
const COMPARTMENT_PATIENT: &[u8] = include_bytes!("../../../defs/r4/compartment-patient.json.gz");

// The embedded files are fixed at build time and unpacked by this crate's tests: a failure
// here is a broken build, not bad input.
#[allow(clippy::expect_used)]
fn unpack(gz: &[u8]) -> Vec<Value> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut text)
        .expect("embedded definitions are valid gzip");
    serde_json::from_slice(&text).expect("embedded definitions are a JSON array")
}

/// The snapshot elements of an embedded R4 StructureDefinition, by canonical URL. Unpacked
/// on first use (only snapshot generation needs the JSON; validation uses the compiled
/// definitions).
pub fn core_snapshot(url: &str) -> Option<Arc<Vec<Value>>> {
    static SNAPSHOTS: OnceLock<HashMap<String, Arc<Vec<Value>>>> = OnceLock::new();
    SNAPSHOTS
        .get_or_init(|| {
            structure_definitions()
                .into_iter()
                .filter_map(|mut sd| {
                    let url = sd.get("url")?.as_str()?.to_string();
                    let elements = match sd.get_mut("snapshot")?.get_mut("element")?.take() {
                        Value::Array(a) => a,
                        _ => return None,
                    };
                    Some((url, Arc::new(elements)))
                })
                .collect()
        })
        .get(url)
        .cloned()
}

/// Every R4 StructureDefinition (resources, data types, core profiles, extensions), with
/// stripped snapshots.
pub fn structure_definitions() -> Vec<Value> {
    unpack(STRUCTURE_DEFINITIONS)
}

/// An R4 SearchParameter by canonical URL (unpacked on first use).
pub fn core_search_parameter(url: &str) -> Option<Arc<Value>> {
    static PARAMETERS: OnceLock<HashMap<String, Arc<Value>>> = OnceLock::new();
    PARAMETERS
        .get_or_init(|| {
            search_parameters()
                .into_iter()
                .filter_map(|sp| Some((sp.get("url")?.as_str()?.to_string(), Arc::new(sp))))
                .collect()
        })
        .get(url)
        .cloned()
}

/// Every R4 SearchParameter.
pub fn search_parameters() -> Vec<Value> {
    unpack(SEARCH_PARAMETERS)
}

/// The ValueSets behind required and extensible bindings, and their CodeSystems.
pub fn terminology() -> Vec<Value> {
    unpack(TERMINOLOGY)
}

/// The Patient CompartmentDefinition.
pub fn compartment_patient() -> Value {
    unpack(COMPARTMENT_PATIENT)
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_definitions_unpack() {
        let sds = structure_definitions();
        assert!(
            sds.iter()
                .any(|sd| sd["url"] == "http://hl7.org/fhir/StructureDefinition/Observation")
        );
        assert!(search_parameters().len() > 1000);
        assert!(
            terminology()
                .iter()
                .any(|r| r["url"] == "http://hl7.org/fhir/ValueSet/observation-status")
        );
        assert_eq!(compartment_patient()["code"], "Patient");
    }
}
