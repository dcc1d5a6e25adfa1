//! The self-care plan (CarePlan).

use super::common::{
    Housekeeping, housekeeping, patient_reference, prohibited, required_system_coding,
};
use crate::content::{ChartKind, DataContent, Group, Kind};
use crate::model::{Names, Strength, TypeRef, el};
use crate::profile::{ProfileDecl, SdKind, profile_slice};
use crate::urls;

pub(crate) fn self_care_plan() -> ProfileDecl {
    let cp = "CarePlan";
    let mut rules = vec![el(cp).short("A self-care plan of the user")];
    rules.extend(housekeeping(
        cp,
        &Housekeeping {
            creating_application_max: Some(1),
            ..Housekeeping::DATA
        },
    ));
    rules.extend(profile_slice(cp, urls::SELF_CARE_PLAN));
    rules.push(el("CarePlan.contained").none());
    rules.extend(prohibited(&[
        "CarePlan.instantiatesCanonical",
        "CarePlan.instantiatesUri",
        "CarePlan.basedOn",
        "CarePlan.replaces",
        "CarePlan.partOf",
    ]));
    rules.push(el("CarePlan.status").fixed_code("completed"));
    rules.push(el("CarePlan.intent").fixed_code("plan"));
    rules.push(
        el("CarePlan.category")
            .one()
            .bind(Strength::Extensible, urls::VS_CAREPLAN_CATEGORY),
    );
    rules.extend(required_system_coding(
        "CarePlan.category.coding",
        "fiphrCoding",
        urls::CS_CAREPLAN_CATEGORY,
    ));
    rules.push(el("CarePlan.title").min(1));
    rules.push(el("CarePlan.description").min(1));
    rules.extend(patient_reference("CarePlan.subject"));
    rules.push(el("CarePlan.encounter").none());
    rules.push(el("CarePlan.author").min(1));
    rules.extend(patient_reference("CarePlan.author"));
    rules.extend(prohibited(&[
        "CarePlan.contributor",
        "CarePlan.careTeam",
        "CarePlan.addresses",
    ]));
    rules.push(el("CarePlan.supportingInfo").types(&[TypeRef::reference(
        "Reference",
        &[urls::QUESTIONNAIRE_RESPONSE],
    )]));
    rules.push(el("CarePlan.supportingInfo.reference").min(1));
    rules.push(el("CarePlan.supportingInfo.identifier.assigner").none());
    rules.extend(prohibited(&[
        "CarePlan.goal",
        "CarePlan.activity",
        "CarePlan.note",
    ]));
    let names = Names::new("Omahoitosuunnitelma", "Egenvårdsplan", "Self-care plan");
    ProfileDecl {
        url: urls::SELF_CARE_PLAN,
        name: "FinnishPHRSelfCarePlan",
        title: "Finnish PHR Self-Care Plan profile",
        description: "A self-care plan the user made, in one of the categories of \
                      fiphr-cs-careplancategory, with the questionnaire responses behind it.",
        names,
        version: "0.1.0",
        type_name: cp,
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/CarePlan",
        is_abstract: false,
        context: &[],
        rules,
        content: Some(DataContent {
            kind: Kind::SelfCarePlan,
            group: Group::CarePlans,
            names,
            profile: urls::SELF_CARE_PLAN,
            resource_type: cp,
            codes: Vec::new(),
            unit: None,
            series: Vec::new(),
            chart: ChartKind::Document,
        }),
    }
}
