//! Questionnaires and the user's responses.

use super::common::{
    Housekeeping, creating_application, housekeeping, identifier, patient_reference,
};
use crate::content::{ChartKind, DataContent, Group, Kind};
use crate::model::{Max, Names, Slicing, SlicingRules, Strength, TypeRef, el};
use crate::profile::{ProfileDecl, SdKind, profile_slice};
use crate::urls;

pub(crate) fn questionnaire() -> ProfileDecl {
    let q = "Questionnaire";
    let mut rules = vec![
        el(q).short("A questionnaire of the Finnish PHR"),
        el("Questionnaire.meta").min(1),
    ];
    rules.extend(profile_slice(q, urls::QUESTIONNAIRE));
    // Multilingual questionnaires exist: language is optional here.
    rules.push(el("Questionnaire.language").bind(Strength::Required, urls::LANGUAGES));
    rules.extend(creating_application(q, None));
    rules.push(el("Questionnaire.url").min(1));
    rules.extend(
        identifier(q)
            .into_iter()
            .filter(|r| !r.id.ends_with("assigner")),
    );
    for required in ["version", "name", "title", "date", "description"] {
        rules.push(el(format!("Questionnaire.{required}")).min(1));
    }
    rules.push(el("Questionnaire.subjectType").max(1).fixed_code("Patient"));
    rules.push(el("Questionnaire.useContext").none());
    rules.push(el("Questionnaire.jurisdiction").none());
    rules.push(
        el("Questionnaire.code")
            .min(1)
            .bind(Strength::Extensible, urls::VS_QUESTIONNAIRE_CODE)
            .sliced(Slicing::by_value(&["system"], SlicingRules::Open)),
    );
    rules.push(el("Questionnaire.code:fiphrCode").one());
    rules.push(
        el("Questionnaire.code:fiphrCode.system")
            .min(1)
            .fixed_uri(urls::CS_QUESTIONNAIRE_CODE),
    );
    rules.push(el("Questionnaire.code:fiphrCode.code").min(1));
    rules.push(el("Questionnaire.item").min(1));
    rules.push(
        el("Questionnaire.item.extension").sliced(Slicing::by_value(&["url"], SlicingRules::Open)),
    );
    rules.push(
        el("Questionnaire.item.extension:enableWhenExpression")
            .card(0, Max::N(1))
            .types(&[TypeRef::extension(&[urls::EXT_QUESTIONNAIRE_ENABLE_WHEN])])
            .short("When the item is shown, as a FHIRPath condition"),
    );
    let names = Names::new("Kysely", "Frågeformulär", "Questionnaire");
    ProfileDecl {
        url: urls::QUESTIONNAIRE,
        name: "FinnishPHRQuestionnaire",
        title: "Finnish PHR Questionnaire profile",
        description: "A questionnaire users answer in the Finnish PHR, coded with \
                      fiphr-cs-questionnairecode.",
        names,
        version: "0.1.0",
        type_name: q,
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/Questionnaire",
        is_abstract: false,
        context: &[],
        rules,
        content: Some(DataContent {
            kind: Kind::Questionnaire,
            group: Group::Questionnaires,
            names,
            profile: urls::QUESTIONNAIRE,
            resource_type: q,
            codes: Vec::new(),
            unit: None,
            series: Vec::new(),
            chart: ChartKind::Document,
        }),
    }
}

pub(crate) fn questionnaire_response() -> ProfileDecl {
    let qr = "QuestionnaireResponse";
    let mut rules = vec![el(qr).short("The user's answers to a questionnaire")];
    rules.extend(housekeeping(qr, &Housekeeping::DATA));
    rules.extend(profile_slice(qr, urls::QUESTIONNAIRE_RESPONSE));
    rules.push(el("QuestionnaireResponse.identifier.system").fixed_uri(urls::RFC3986));
    rules.push(
        el("QuestionnaireResponse.basedOn")
            .types(&[TypeRef::reference("Reference", &[urls::SELF_CARE_PLAN])]),
    );
    rules.push(el("QuestionnaireResponse.basedOn.reference").min(1));
    rules.push(
        el("QuestionnaireResponse.partOf").types(&[TypeRef::reference(
            "Reference",
            &["http://hl7.org/fhir/StructureDefinition/Observation"],
        )]),
    );
    rules.push(el("QuestionnaireResponse.partOf.reference").min(1));
    rules.push(
        el("QuestionnaireResponse.questionnaire")
            .min(1)
            .types(&[TypeRef::reference("canonical", &[urls::QUESTIONNAIRE])]),
    );
    rules.push(el("QuestionnaireResponse.subject").min(1));
    rules.extend(patient_reference("QuestionnaireResponse.subject"));
    rules.push(el("QuestionnaireResponse.encounter").none());
    rules.push(el("QuestionnaireResponse.authored").min(1));
    rules.extend(patient_reference("QuestionnaireResponse.author"));
    rules.push(
        el("QuestionnaireResponse.source")
            .min(1)
            .short("The application user who answered the questions"),
    );
    rules.extend(patient_reference("QuestionnaireResponse.source"));
    rules.push(el("QuestionnaireResponse.item").min(1));
    let names = Names::new(
        "Kyselyn vastaus",
        "Svar på frågeformulär",
        "Questionnaire response",
    );
    ProfileDecl {
        url: urls::QUESTIONNAIRE_RESPONSE,
        name: "FinnishPHRQuestionnaireResponse",
        title: "Finnish PHR QuestionnaireResponse profile",
        description: "The user's answers to a Finnish PHR questionnaire.",
        names,
        version: "0.1.1",
        type_name: qr,
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse",
        is_abstract: false,
        context: &[],
        rules,
        content: Some(DataContent {
            kind: Kind::QuestionnaireResponse,
            group: Group::Questionnaires,
            names,
            profile: urls::QUESTIONNAIRE_RESPONSE,
            resource_type: qr,
            codes: Vec::new(),
            unit: None,
            series: Vec::new(),
            chart: ChartKind::Document,
        }),
    }
}
