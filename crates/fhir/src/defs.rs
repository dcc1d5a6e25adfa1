//! The official FHIR R4 definitions embedded in the binary (see `defs/r4/SOURCE` and
//! `tools/import-r4-definitions.py`). This module only unpacks them; the registry built
//! from them lives in `registry`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

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

/// The unpacked StructureDefinitions and the snapshots taken from them, shared by whoever
/// builds from them until [`release_unpacked`].
#[derive(Default)]
struct Unpacked {
    structure_definitions: Option<Arc<Vec<Value>>>,
    snapshots: HashMap<String, Arc<Vec<Value>>>,
}

fn unpacked() -> MutexGuard<'static, Unpacked> {
    static UNPACKED: OnceLock<Mutex<Unpacked>> = OnceLock::new();
    UNPACKED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

impl Unpacked {
    fn structure_definitions(&mut self) -> Arc<Vec<Value>> {
        self.structure_definitions
            .get_or_insert_with(|| Arc::new(unpack(STRUCTURE_DEFINITIONS)))
            .clone()
    }
}

/// Every R4 StructureDefinition (resources, data types, core profiles, extensions), with
/// stripped snapshots. Unpacked on first use and shared until [`release_unpacked`]: start-up
/// builds several indexes from them (validation, search, `_summary`), and one copy of the
/// JSON (about 70 MB as values) serves them all instead of one each.
pub fn structure_definitions() -> Arc<Vec<Value>> {
    unpacked().structure_definitions()
}

/// The snapshot elements of an embedded R4 StructureDefinition, by canonical URL (only
/// snapshot generation needs the JSON; validation uses the compiled definitions). Kept
/// until [`release_unpacked`].
pub fn core_snapshot(url: &str) -> Option<Arc<Vec<Value>>> {
    let mut unpacked = unpacked();
    if let Some(elements) = unpacked.snapshots.get(url) {
        return Some(elements.clone());
    }
    let sds = unpacked.structure_definitions();
    let elements = sds
        .iter()
        .find(|sd| sd.get("url").and_then(Value::as_str) == Some(url))?
        .pointer("/snapshot/element")?
        .as_array()?
        .clone();
    let elements = Arc::new(elements);
    unpacked.snapshots.insert(url.to_owned(), elements.clone());
    Some(elements)
}

/// Lets go of the unpacked StructureDefinitions and snapshots. A server calls this once
/// start-up has built what it needs from them; a later use unpacks them again.
pub fn release_unpacked() {
    *unpacked() = Unpacked::default();
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

    #[test]
    fn unpacked_definitions_are_shared_until_released() {
        let observation = "http://hl7.org/fhir/StructureDefinition/Observation";
        let first = structure_definitions();
        assert!(Arc::ptr_eq(&first, &structure_definitions()));
        let elements = core_snapshot(observation).unwrap();
        assert_eq!(elements[0]["path"], "Observation");
        assert!(Arc::ptr_eq(&elements, &core_snapshot(observation).unwrap()));
        assert!(core_snapshot("http://example.org/unknown").is_none());
        release_unpacked();
        // Unpacked again on the next use.
        let again = structure_definitions();
        assert_eq!(again.len(), first.len());
        assert_eq!(*core_snapshot(observation).unwrap(), *elements);
    }
}
