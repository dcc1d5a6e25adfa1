//! The Finnish PHR extensions.

use crate::model::{Names, Slicing, SlicingRules, el};
use crate::profile::{ProfileDecl, SdKind};
use crate::urls;

fn extension(
    url: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    names: Names,
    context: &'static [&'static str],
    rules: Vec<crate::model::El>,
) -> ProfileDecl {
    ProfileDecl {
        url,
        name,
        title,
        description,
        names,
        version: "0.2.0",
        type_name: "Extension",
        kind: SdKind::ComplexType,
        parent: "http://hl7.org/fhir/StructureDefinition/Extension",
        is_abstract: false,
        context,
        rules,
        content: None,
    }
}

/// A simple extension: the URL fixed, a value of `value_type` required.
fn simple(
    url: &'static str,
    value_type: &'static str,
    short: &'static str,
) -> Vec<crate::model::El> {
    vec![
        el("Extension").short(short),
        el("Extension.extension").none(),
        el("Extension.url").fixed_uri(url),
        el("Extension.value[x]").min(1).of_type(value_type),
    ]
}

pub(crate) fn creating_application() -> ProfileDecl {
    let mut rules = vec![
        el("Extension").short("The application that created the resource"),
        el("Extension.extension").sliced(Slicing::by_value(&["url"], SlicingRules::Open)),
    ];
    for (slice, short) in [
        (
            "name",
            "The application's name as registered in the PHR application catalogue",
        ),
        (
            "applicationId",
            "The identifier Kela assigned to the application at registration",
        ),
    ] {
        let id = format!("Extension.extension:{slice}");
        rules.push(el(id.clone()).one().short(short));
        rules.push(el(format!("{id}.extension")).none());
        rules.push(el(format!("{id}.url")).fixed_uri(slice));
        rules.push(el(format!("{id}.value[x]")).min(1).of_type("string"));
    }
    rules.push(el("Extension.url").fixed_uri(urls::EXT_CREATING_APPLICATION));
    rules.push(el("Extension.value[x]").none());
    extension(
        urls::EXT_CREATING_APPLICATION,
        "FinnishPHRCreatingApplication",
        "Finnish PHR Application Information extension",
        "The application that created the resource: its registered name and the identifier \
         Kela assigned to it. Every stored resource but contained ones carries it.",
        Names::new(
            "Tallentanut sovellus",
            "Sparande applikation",
            "Creating application",
        ),
        &[
            "Observation",
            "MedicationAdministration",
            "MedicationStatement",
            "CarePlan",
            "Questionnaire",
            "QuestionnaireResponse",
            "Patient",
            "StructureDefinition",
        ],
        rules,
    )
}

pub(crate) fn pq_translation() -> ProfileDecl {
    let mut rules = simple(
        urls::EXT_PQ_TRANSLATION,
        "Quantity",
        "The same quantity in another unit",
    );
    for child in ["value", "unit", "system", "code"] {
        rules.push(el(format!("Extension.value[x].{child}")).min(1));
    }
    extension(
        urls::EXT_PQ_TRANSLATION,
        "FinnishPHRPQTranslation",
        "Finnish PHR PQ Translation extension",
        "The same physical quantity in a different unit, possibly from a different unit code \
         system and with a different value (e.g. blood glucose in mg/dL).",
        Names::new(
            "Arvo toisessa yksikössä",
            "Värde i annan enhet",
            "Value in another unit",
        ),
        &["Quantity"],
        rules,
    )
}

pub(crate) fn unsigned_int() -> ProfileDecl {
    extension(
        urls::EXT_UNSIGNED_INT,
        "FinnishPHRUnsignedInt",
        "Finnish PHR UnsignedInt extension",
        "A non-negative integer, such as the hours after a meal of a blood glucose reading.",
        Names::new("Kokonaisluku", "Heltal", "Unsigned integer"),
        &["Observation"],
        simple(
            urls::EXT_UNSIGNED_INT,
            "unsignedInt",
            "A non-negative integer",
        ),
    )
}

pub(crate) fn boolean() -> ProfileDecl {
    extension(
        urls::EXT_BOOLEAN,
        "FinnishPHRBoolean",
        "Finnish PHR boolean extension",
        "A boolean, for profiles that need one.",
        Names::new("Totuusarvo", "Sanningsvärde", "Boolean"),
        &["Resource"],
        simple(urls::EXT_BOOLEAN, "boolean", "A boolean"),
    )
}

pub(crate) fn questionnaire_enable_when() -> ProfileDecl {
    extension(
        urls::EXT_QUESTIONNAIRE_ENABLE_WHEN,
        "FinnishPHRQuestionnaireEnableWhen",
        "Finnish PHR Questionnaire enableWhen extension",
        "When a questionnaire item is shown, as a FHIRPath condition on the response (Kanta's \
         variant of SDC's enableWhenExpression).",
        Names::new("Näyttämisehto", "Visningsvillkor", "Enable when"),
        &["Questionnaire.item"],
        simple(
            urls::EXT_QUESTIONNAIRE_ENABLE_WHEN,
            "string",
            "A FHIRPath condition that enables the item",
        ),
    )
}
