//! Rules every Finnish PHR resource profile shares (Kanta's "notes related to all resource
//! types"): a declared profile, language, narrative, the creating application, business
//! identifiers, and references to the user's own Patient.

use crate::model::{El, Max, Slicing, SlicingRules, Strength, TypeRef, el};
use crate::urls;

pub(crate) const PATIENT_TARGET: &[&str] = &[urls::PATIENT];
pub(crate) const CREATING_APPLICATION: &[&str] = &[urls::EXT_CREATING_APPLICATION];

/// What a resource profile says about the resource's own housekeeping elements.
pub(crate) struct Housekeeping {
    pub language_required: bool,
    pub text_required: bool,
    /// Upper bound of `extension:creatingApplication` (None: unbounded, as Kela has it).
    pub creating_application_max: Option<u32>,
}

impl Housekeeping {
    pub const DATA: Housekeeping = Housekeeping {
        language_required: true,
        text_required: true,
        creating_application_max: None,
    };
}

/// `meta`, `language`, `text`, `extension:creatingApplication`, `identifier`.
pub(crate) fn housekeeping(rt: &str, how: &Housekeeping) -> Vec<El> {
    let mut rules = vec![
        el(format!("{rt}.meta")).min(1),
        el(format!("{rt}.meta.profile")).min(1),
    ];
    let language = el(format!("{rt}.language")).bind(Strength::Required, urls::LANGUAGES);
    rules.push(if how.language_required {
        language.min(1)
    } else {
        language
    });
    if how.text_required {
        rules.push(el(format!("{rt}.text")).min(1));
    }
    rules.extend(creating_application(rt, how.creating_application_max));
    rules.extend(identifier(rt));
    rules
}

/// The `creatingApplication` extension slice on `rt`.
pub(crate) fn creating_application(rt: &str, max: Option<u32>) -> Vec<El> {
    vec![
        el(format!("{rt}.extension")).sliced(Slicing::by_value(&["url"], SlicingRules::Open)),
        el(format!("{rt}.extension:creatingApplication"))
            .card(0, max.map_or(Max::Many, Max::N))
            .types(&[TypeRef::extension(CREATING_APPLICATION)])
            .short("The application that created the resource"),
    ]
}

/// Business identifiers: at least one, each with system and value, never an assigner.
pub(crate) fn identifier(rt: &str) -> Vec<El> {
    vec![
        el(format!("{rt}.identifier")).min(1),
        el(format!("{rt}.identifier.system")).min(1),
        el(format!("{rt}.identifier.value")).min(1),
        el(format!("{rt}.identifier.assigner")).none(),
    ]
}

/// A reference to the user's own Patient at `at`: a literal reference, no assigner.
pub(crate) fn patient_reference(at: &str) -> Vec<El> {
    vec![
        el(at).types(&[TypeRef::reference("Reference", PATIENT_TARGET)]),
        el(format!("{at}.reference")).min(1),
        el(format!("{at}.identifier.assigner")).none(),
    ]
}

/// A CodeableConcept's codings at `coding` must include one of `system`, with code and
/// display (Kanta's `fiphrInterpretation`, `fiphrDataAbsentReason` ... slices).
pub(crate) fn required_system_coding(coding: &str, slice: &str, system: &'static str) -> Vec<El> {
    let id = format!("{coding}:{slice}");
    vec![
        el(coding)
            .min(1)
            .sliced(Slicing::by_value(&["system"], SlicingRules::Open)),
        el(id.clone()).one(),
        el(format!("{id}.system")).min(1).fixed_uri(system),
        el(format!("{id}.code")).min(1),
        el(format!("{id}.display")).min(1),
    ]
}

/// Each of `paths` prohibited.
pub(crate) fn prohibited(paths: &[&str]) -> Vec<El> {
    paths.iter().map(|p| el(*p).none()).collect()
}

/// Exactly one `Observation.category`, bound (extensible) to `value_set`, with a required
/// `fiphrCategory` coding slice fixed to `system#code`: how the fitness and nutrition base
/// profiles mark their family.
pub(crate) fn fiphr_category(
    value_set: &'static str,
    system: &'static str,
    code: &'static str,
) -> Vec<El> {
    vec![
        el("Observation.category")
            .one()
            .bind(Strength::Extensible, value_set),
        el("Observation.category.coding")
            .min(1)
            .sliced(Slicing::by_value(&["system", "code"], SlicingRules::Open)),
        el("Observation.category.coding:fiphrCategory").one(),
        el("Observation.category.coding:fiphrCategory.system")
            .min(1)
            .fixed_uri(system),
        el("Observation.category.coding:fiphrCategory.code")
            .min(1)
            .fixed_code(code),
    ]
}
