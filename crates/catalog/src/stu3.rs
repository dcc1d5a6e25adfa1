//! The STU3 twins of the Finnish PHR data contents: the profiles Kanta PHR served at its
//! STU3 endpoint, each beside the R4 profile(s) the same data is stored under. One data
//! content, two renderings: the R4 declaration (in `profiles`) is the definition; a STU3
//! twin names its STU3 canonical URL and which R4 profiles hold its data. `phr-stu3`
//! converts instances and renders the STU3 StructureDefinitions from these rows.
//!
//! Kela published the STU3 URLs of blood glucose, vital signs, macronutrient intake,
//! exercise tracking, insulin dosing, Patient and Questionnaire; the QuestionnaireResponse
//! and CarePlan twins (`published: false`) are ours, named after Kela's pattern, because a
//! STU3 StructureDefinition has one type.

use crate::urls;

/// One STU3 profile and the R4 profile(s) its data is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stu3Twin {
    /// The STU3 canonical URL (what STU3 instances name in `meta.profile`).
    pub url: &'static str,
    pub id: &'static str,
    pub title: &'static str,
    pub resource_type: &'static str,
    /// The R4 profiles holding this content. A STU3 instance is stored under the first one
    /// whose data content has the instance's code (vital signs: blood pressure, weight,
    /// height...), else under the first.
    pub r4: &'static [&'static str],
    /// Other STU3 URLs Kanta's STU3 clients were seen to use for the same profile.
    pub aliases: &'static [&'static str],
    /// Whether Kela published this URL (else it is the catalogue's own).
    pub published: bool,
}

const SD: &str = "http://phr.kanta.fi/StructureDefinition/";

pub const BLOOD_GLUCOSE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-bloodglucose-stu3";
pub const VITAL_SIGNS: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-vitalsigns-stu3";
pub const MACRONUTRIENT_INTAKE: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-macronutrientintake-stu3";
pub const EXERCISE_TRACKING: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-exercisetracking-stu3";
pub const INSULIN_DOSING: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-insulindosing-stu3";
pub const PATIENT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-patient-stu3";
pub const QUESTIONNAIRE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-questionnaire-stu3";
pub const QUESTIONNAIRE_RESPONSE: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-questionnaireresponse-stu3";
pub const SELF_CARE_PLAN: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-selfcareplan-stu3";

/// Every STU3 twin, in the order the STU3 CapabilityStatement lists them.
pub const TWINS: &[Stu3Twin] = &[
    Stu3Twin {
        url: BLOOD_GLUCOSE,
        id: "fiphr-bloodglucose-stu3",
        title: "Finnish PHR blood glucose (STU3)",
        resource_type: "Observation",
        r4: &[urls::BLOOD_GLUCOSE],
        aliases: &["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose-stu3"],
        published: true,
    },
    Stu3Twin {
        url: VITAL_SIGNS,
        id: "fiphr-vitalsigns-stu3",
        title: "Finnish PHR vital signs (STU3)",
        resource_type: "Observation",
        r4: &[
            urls::VITAL_SIGNS,
            urls::BLOOD_PRESSURE,
            urls::BODY_WEIGHT,
            urls::BODY_HEIGHT,
        ],
        aliases: &[
            "http://phr.kanta.fi/StructureDefinition/fiphr-vitalsigns-stu3-production-201909",
            "http://phr.kanta.fi/StructureDefinition/fiphr-pef-stu3",
        ],
        published: true,
    },
    Stu3Twin {
        url: MACRONUTRIENT_INTAKE,
        id: "fiphr-sd-macronutrientintake-stu3",
        title: "Finnish PHR macronutrient intake (STU3)",
        resource_type: "Observation",
        r4: &[urls::MACRONUTRIENT_INTAKE],
        aliases: &[],
        published: true,
    },
    Stu3Twin {
        url: EXERCISE_TRACKING,
        id: "fiphr-sd-exercisetracking-stu3",
        title: "Finnish PHR exercise tracking (STU3)",
        resource_type: "Observation",
        r4: &[urls::EXERCISE],
        aliases: &[],
        published: true,
    },
    Stu3Twin {
        url: INSULIN_DOSING,
        id: "fiphr-sd-insulindosing-stu3",
        title: "Finnish PHR insulin dosing (STU3)",
        resource_type: "MedicationAdministration",
        r4: &[urls::INSULIN_DOSING],
        aliases: &[],
        published: true,
    },
    Stu3Twin {
        url: PATIENT,
        id: "fiphr-patient-stu3",
        title: "Finnish PHR patient (STU3)",
        resource_type: "Patient",
        r4: &[urls::PATIENT],
        // STU3 clients also named the R4 URL, which Kela used for both versions.
        aliases: &[urls::PATIENT],
        published: true,
    },
    Stu3Twin {
        url: QUESTIONNAIRE,
        id: "fiphr-questionnaire-stu3",
        title: "Finnish PHR questionnaire (STU3)",
        resource_type: "Questionnaire",
        r4: &[urls::QUESTIONNAIRE],
        aliases: &[],
        published: true,
    },
    Stu3Twin {
        url: QUESTIONNAIRE_RESPONSE,
        id: "fiphr-questionnaireresponse-stu3",
        title: "Finnish PHR questionnaire response (STU3)",
        resource_type: "QuestionnaireResponse",
        r4: &[urls::QUESTIONNAIRE_RESPONSE],
        aliases: &[],
        published: false,
    },
    Stu3Twin {
        url: SELF_CARE_PLAN,
        id: "fiphr-sd-selfcareplan-stu3",
        title: "Finnish PHR self-care plan (STU3)",
        resource_type: "CarePlan",
        r4: &[urls::SELF_CARE_PLAN],
        aliases: &[],
        published: false,
    },
];

/// The resource types served at the STU3 endpoint.
pub const RESOURCE_TYPES: &[&str] = &[
    "Observation",
    "MedicationAdministration",
    "Patient",
    "Questionnaire",
    "QuestionnaireResponse",
    "CarePlan",
];

fn canonical(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// The STU3 twin a STU3 instance's `meta.profile` URL names (its own URL or an alias).
pub fn twin_of_stu3(url: &str) -> Option<&'static Stu3Twin> {
    let url = canonical(url);
    TWINS
        .iter()
        .find(|t| t.url == url || t.aliases.contains(&url))
}

/// The STU3 twin of an R4 profile, when its content was served in STU3.
pub fn twin_of_r4(url: &str) -> Option<&'static Stu3Twin> {
    let url = canonical(url);
    TWINS.iter().find(|t| t.r4.contains(&url))
}

/// Whether `url` is a Finnish PHR StructureDefinition URL.
pub fn is_finnish_phr(url: &str) -> bool {
    url.starts_with(SD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    #[test]
    fn every_twin_names_catalogued_concrete_r4_profiles_of_its_type() {
        let catalog = Catalog::get();
        for twin in TWINS {
            assert!(!twin.r4.is_empty(), "{}", twin.url);
            assert!(twin.url.ends_with(twin.id), "{}", twin.url);
            for r4 in twin.r4 {
                let profile = catalog.profile(r4).unwrap_or_else(|| panic!("{r4}"));
                assert_eq!(profile.type_name, twin.resource_type, "{r4}");
                assert!(profile.is_instantiable(), "{r4}");
            }
        }
    }

    #[test]
    fn each_r4_profile_has_at_most_one_stu3_twin() {
        for profile in Catalog::get().profiles() {
            let twins = TWINS.iter().filter(|t| t.r4.contains(&profile.url));
            assert!(twins.count() <= 1, "{}", profile.url);
        }
    }

    #[test]
    fn aliases_lead_to_their_twin() {
        assert_eq!(
            twin_of_stu3("http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose-stu3")
                .map(|t| t.url),
            Some(BLOOD_GLUCOSE)
        );
        assert_eq!(twin_of_stu3(urls::PATIENT).map(|t| t.url), Some(PATIENT));
        assert_eq!(
            twin_of_r4(urls::BODY_WEIGHT).map(|t| t.url),
            Some(VITAL_SIGNS)
        );
        assert!(twin_of_r4(urls::STEPS).is_none());
    }
}
