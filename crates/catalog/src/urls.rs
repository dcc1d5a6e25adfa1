//! Canonical URLs: Kanta's (kept exactly as Kela published them, quirks included, because
//! stored resources name them) and the external code systems the catalogue uses.

/// Where every Finnish PHR StructureDefinition lives.
pub const SD_BASE: &str = "http://phr.kanta.fi/StructureDefinition/";

// Profiles.
pub const VITAL_SIGNS: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-vitalsigns";
pub const BLOOD_PRESSURE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure";
pub const BODY_WEIGHT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight";
pub const BODY_HEIGHT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyheight";
pub const BLOOD_GLUCOSE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose";
pub const FITNESS: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-fitness";
pub const STEPS: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-stepstaken";
pub const MVPA_TIME: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-moderatetovigorouspatime";
pub const MET: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-metbystandardrmr";
pub const EXERCISE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-exercisetracking";
pub const NUTRITION: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-nutrition";
pub const CALORIE_INTAKE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-calorieintake";
pub const MACRONUTRIENT_INTAKE: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-macronutrientintake";
pub const INSULIN_DOSING: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-insulindosing-r4";
pub const PATIENT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient";
pub const SELF_CARE_PLAN: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-selfcareplan-r4";
pub const SELF_CARE_GOAL: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-selfcaregoal-r4";
pub const QUESTIONNAIRE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-questionnaire-r4";
pub const QUESTIONNAIRE_RESPONSE: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-questionnaireresponse-r4";

// Extensions.
pub const EXT_CREATING_APPLICATION: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-ext-creatingapplication";
pub const EXT_PQ_TRANSLATION: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-ext-pq-translation";
/// Note: no `-ext-` in this one, as Kela published it.
pub const EXT_UNSIGNED_INT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-unsignedint";
pub const EXT_BOOLEAN: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-ext-boolean";
pub const EXT_QUESTIONNAIRE_ENABLE_WHEN: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-ext-questionnaire-enablewhen";

// Kanta code systems (some without `/CodeSystem/`, as Kela published them).
pub const CS_CAREPLAN_CATEGORY: &str = "http://phr.kanta.fi/CodeSystem/fiphr-cs-careplancategory";
pub const CS_CONSENT_CATEGORY: &str = "http://phr.kanta.fi/fiphr-cs-consentcategory";
pub const CS_FITNESS_CATEGORY: &str = "http://phr.kanta.fi/fiphr-cs-fitnesscategory";
pub const CS_INSULIN_CODE: &str = "http://phr.kanta.fi/CodeSystem/fiphr-cs-insulincode";
pub const CS_MVPA: &str = "http://phr.kanta.fi/fiphr-cs-moderatetovigorouspa";
pub const CS_OBSERVATION_CATEGORY: &str =
    "http://phr.kanta.fi/CodeSystem/fiphr-cs-observationcategory";
pub const CS_QUESTIONNAIRE_CODE: &str = "http://phr.kanta.fi/CodeSystem/fiphr-cs-questionnairecode";
/// VNR, the Nordic article number of medicine packages.
pub const CS_VNR: &str = "urn:oid:1.2.246.537.6.55";
/// UKK's classification of physical activities (Liikuntalajinimikkeistö).
pub const CS_EXERCISE_ACTIVITY: &str = "urn:oid:1.2.246.537.6.301";
/// THL's code list of injection sites.
pub const CS_DOSAGE_SITE: &str = "urn:oid:1.2.246.537.5.163";

// Kanta value sets.
pub const VS_VITAL_SIGNS: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-vitalsigns";
pub const VS_FITNESS_RESULT: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-fitnessresult";
/// Note: `fitness-category`, not `fiphr-vs-fitnesscategory`, as Kela published it.
pub const VS_FITNESS_CATEGORY: &str = "http://phr.kanta.fi/ValueSet/fitness-category";
pub const VS_OBSERVATION_CATEGORY: &str =
    "http://phr.kanta.fi/ValueSet/fiphr-vs-observationcategory";
pub const VS_NUTRITION: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-nutrition";
pub const VS_MACRONUTRIENTS: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-macronutrients";
pub const VS_MET: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-metbystandardrmr";
pub const VS_SOURCE_ESTIMATED_MET: &str =
    "http://phr.kanta.fi/ValueSet/fiphr-vs-sourceforestimatedmet";
pub const VS_SOURCE_REPORTED_MET: &str =
    "http://phr.kanta.fi/ValueSet/fiphr-vs-sourceforreportedmet";
pub const VS_SOURCE_ADJUSTED_MET: &str =
    "http://phr.kanta.fi/ValueSet/fiphr-vs-sourceforadjustedmet";
pub const VS_EXERCISE_TRACKING: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-exercisetracking";
pub const VS_EXERCISE_ACTIVITY: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-exerciseactivity";
pub const VS_EXERCISE_INTENSITY: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-exerciseintensity";
pub const VS_INSULIN_CODE: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-insulincode";
pub const VS_CAREPLAN_CATEGORY: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-careplancategory";
pub const VS_CONSENT_CATEGORY: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-consentcategory";
pub const VS_CONFIDENTIALITY: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-confidentiality";
/// Referenced by Kanta's profiles; its content was never published.
pub const VS_DOSAGE_SITE: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-dosagesite";
/// Referenced by Kanta's profiles; its content was never published.
pub const VS_ACTIVITY_CODE: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-activitycode";
/// Referenced by Kanta's profiles; its content was never published.
pub const VS_REMINDER_ID: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-reminderid";
/// Referenced by Kanta's Questionnaire profile (under a simplifier.net address there); its
/// content was never published.
pub const VS_QUESTIONNAIRE_CODE: &str = "http://phr.kanta.fi/ValueSet/fiphr-vs-questionnairecode";

// External.
pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const RFC3986: &str = "urn:ietf:rfc:3986";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
pub const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub const LANGUAGES: &str = "http://hl7.org/fhir/ValueSet/languages";
pub const CORE_SD: &str = "http://hl7.org/fhir/StructureDefinition/";

/// The logical id of a Kanta StructureDefinition URL (`fiphr-sd-bodyweight`).
pub fn id_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}
