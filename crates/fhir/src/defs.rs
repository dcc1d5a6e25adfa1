//! The official FHIR R4 definitions embedded in the binary (see `defs/r4/SOURCE` and
//! `tools/import-r4-definitions.py`). This module only unpacks them; the registry built
//! from them lives in `registry`.

use std::io::Read;

use serde_json::Value;

const STRUCTURE_DEFINITIONS: &[u8] =
    include_bytes!("../../../defs/r4/structure-definitions.json.gz");
const SEARCH_PARAMETERS: &[u8] = include_bytes!("../../../defs/r4/search-parameters.json.gz");
const TERMINOLOGY: &[u8] = include_bytes!("../../../defs/r4/terminology.json.gz");
const COMPARTMENT_PATIENT: &[u8] = include_bytes!("../../../defs/r4/compartment-patient.json.gz");

fn unpack(gz: &[u8]) -> Vec<Value> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut text)
        .expect("embedded definitions are valid gzip");
    serde_json::from_slice(&text).expect("embedded definitions are a JSON array")
}

/// Every R4 StructureDefinition (resources, data types, core profiles, extensions), with
/// stripped snapshots.
pub fn structure_definitions() -> Vec<Value> {
    unpack(STRUCTURE_DEFINITIONS)
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
    unpack(COMPARTMENT_PATIENT).remove(0)
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
