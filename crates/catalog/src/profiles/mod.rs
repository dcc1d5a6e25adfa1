//! Every Finnish PHR StructureDefinition, declared once. `all()` lists them parents first,
//! the order they are generated in.

mod careplan;
mod common;
mod extensions;
mod fitness;
mod medication;
mod nutrition;
mod patient;
mod questionnaire;
mod vitals;

use crate::content::DataContent;
use crate::profile::{ObservationProfile, ProfileDecl, SdKind};

/// The Observation data contents, in the order the portal lists them.
pub(crate) fn observation_profiles() -> Vec<ObservationProfile> {
    vec![
        vitals::blood_pressure(),
        vitals::body_weight(),
        vitals::body_height(),
        vitals::blood_glucose(),
        fitness::steps(),
        fitness::moderate_to_vigorous_activity(),
        fitness::met_by_standard_rmr(),
        fitness::exercise_tracking(),
        nutrition::calorie_intake(),
        nutrition::macronutrient_intake(),
    ]
}

impl ObservationProfile {
    /// This data content as a StructureDefinition declaration.
    pub fn decl(&self) -> ProfileDecl {
        ProfileDecl {
            url: self.url,
            name: self.name,
            title: self.title,
            description: self.description,
            names: self.names,
            version: self.version,
            type_name: "Observation",
            kind: SdKind::Resource,
            parent: self.family.parent(),
            is_abstract: false,
            context: &[],
            rules: self.rules(),
            content: Some(self.content()),
        }
    }
}

/// Every StructureDefinition of the catalogue, each after the definitions it builds on.
pub(crate) fn all() -> Vec<ProfileDecl> {
    let mut all = vec![
        extensions::creating_application(),
        extensions::pq_translation(),
        extensions::unsigned_int(),
        extensions::boolean(),
        extensions::questionnaire_enable_when(),
        vitals::vital_signs(),
        fitness::fitness(),
        nutrition::nutrition(),
    ];
    all.extend(observation_profiles().iter().map(ObservationProfile::decl));
    all.extend([
        medication::insulin_dosing(),
        patient::patient(),
        careplan::self_care_plan(),
        questionnaire::questionnaire(),
        questionnaire::questionnaire_response(),
    ]);
    all
}

/// Data contents stored under a base profile rather than one of their own.
pub(crate) fn base_stored_contents() -> Vec<DataContent> {
    vitals::base_stored_contents()
}
