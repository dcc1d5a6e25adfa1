//! What Kanta PHR adds to R4 search (KANTA-PHR.md §2.3, the Kanta CapabilityStatement R4):
//! the search parameters R4 lacks, the types that may only be searched within one patient,
//! and the code systems a `code` without a system means.

/// Search parameters Kanta PHR supports that base R4 does not define, as SearchParameter
/// resources with canonical URLs under `http://phr.kanta.fi/SearchParameter/`.
pub const SEARCH_PARAMETERS_JSON: &str = include_str!("defs/kanta-search-parameters.json");

/// Types whose searches must name the patient (`patient` is mandatory).
pub const PATIENT_REQUIRED: &[&str] = &[
    "Observation",
    "MedicationAdministration",
    "QuestionnaireResponse",
    "CarePlan",
];

/// The system a `code` search value without `system|` means, per type.
pub const DEFAULT_CODE_SYSTEMS: &[(&str, &str)] = &[
    ("Observation", "http://loinc.org"),
    (
        "MedicationAdministration",
        "http://phr.kanta.fi/CodeSystem/fiphr-cs-insulincode",
    ),
];

pub fn patient_required(resource_type: &str) -> bool {
    PATIENT_REQUIRED.contains(&resource_type)
}

pub fn default_code_system(resource_type: &str) -> Option<&'static str> {
    DEFAULT_CODE_SYSTEMS
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, system)| *system)
}
