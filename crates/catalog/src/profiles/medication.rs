//! Medication: insulin dosing (MedicationAdministration).

use super::common::{Housekeeping, housekeeping, patient_reference, prohibited};
use crate::content::{ChartKind, Code, DataContent, Group, Kind};
use crate::model::{
    Invariant, InvariantSeverity, Names, Slicing, SlicingRules, Strength, TypeRef, el,
};
use crate::profile::{ProfileDecl, SdKind, profile_slice};
use crate::urls;

/// Ours: Kanta's profile says in prose that a VNR code or an insulin code SHALL be present.
/// On `medication[x]` (a CodeableConcept here) so that it reads as plain existence logic.
pub(crate) const INSULIN_CODE_INVARIANT: Invariant = Invariant {
    key: "PHR-8",
    severity: InvariantSeverity::Error,
    human: "The medication SHALL be coded with a VNR code (urn:oid:1.2.246.537.6.55) or an \
            insulin code (fiphr-cs-insulincode)",
    expression: "coding.where(system='urn:oid:1.2.246.537.6.55').exists() or \
                 coding.where(system='http://phr.kanta.fi/CodeSystem/fiphr-cs-insulincode').exists()",
};

pub(crate) fn insulin_dosing() -> ProfileDecl {
    let ma = "MedicationAdministration";
    let mut rules = vec![el(ma).short("Finnish PHR insulin dosing")];
    rules.extend(housekeeping(ma, &Housekeeping::DATA));
    rules.extend(profile_slice(ma, urls::INSULIN_DOSING));
    rules.extend(prohibited(&[
        "MedicationAdministration.instantiates",
        "MedicationAdministration.partOf",
        "MedicationAdministration.statusReason",
        "MedicationAdministration.category",
    ]));
    rules.push(el("MedicationAdministration.status").fixed_code("completed"));
    let med = "MedicationAdministration.medication[x]";
    rules.push(
        el(med)
            .of_type("CodeableConcept")
            .bind(Strength::Extensible, urls::VS_INSULIN_CODE)
            .invariant(INSULIN_CODE_INVARIANT)
            .short("The insulin: a VNR code or an insulin type code"),
    );
    let coding = format!("{med}.coding");
    rules.push(
        el(coding.clone())
            .min(1)
            .sliced(Slicing::by_value(&["system"], SlicingRules::Open)),
    );
    for (slice, system) in [
        ("VNRCode", urls::CS_VNR),
        ("insulinCode", urls::CS_INSULIN_CODE),
    ] {
        let id = format!("{coding}:{slice}");
        rules.push(el(id.clone()).max(1));
        rules.push(el(format!("{id}.system")).min(1).fixed_uri(system));
        rules.push(el(format!("{id}.code")).min(1));
        rules.push(el(format!("{id}.display")).min(1));
    }
    rules.push(el(format!("{med}.text")).min(1));
    rules.extend(patient_reference("MedicationAdministration.subject"));
    rules.extend(prohibited(&[
        "MedicationAdministration.context",
        "MedicationAdministration.supportingInformation",
    ]));
    rules.push(el("MedicationAdministration.effective[x]").short("Time of administration"));
    rules.extend(patient_reference(
        "MedicationAdministration.performer.actor",
    ));
    rules.extend(prohibited(&[
        "MedicationAdministration.reasonCode",
        "MedicationAdministration.reasonReference",
        "MedicationAdministration.request",
        "MedicationAdministration.device",
    ]));
    rules.push(el("MedicationAdministration.note.author[x]").types(&[
        TypeRef::reference("Reference", &[urls::PATIENT]),
        TypeRef::code("string"),
    ]));
    let site = "MedicationAdministration.dosage.site.coding";
    rules.push(
        el(site)
            .min(1)
            .sliced(Slicing::by_value(&["system"], SlicingRules::Open)),
    );
    rules.push(
        el(format!("{site}:fiphrCoding"))
            .one()
            .bind(Strength::Required, urls::VS_DOSAGE_SITE),
    );
    rules.push(
        el(format!("{site}:fiphrCoding.system"))
            .min(1)
            .fixed_uri(urls::CS_DOSAGE_SITE),
    );
    rules.push(el(format!("{site}:fiphrCoding.code")).min(1));
    rules.push(el(format!("{site}:fiphrCoding.display")).min(1));
    rules.push(el("MedicationAdministration.eventHistory").none());
    let names = Names::new("Insuliinin annostelu", "Insulindosering", "Insulin dosing");
    ProfileDecl {
        url: urls::INSULIN_DOSING,
        name: "FinnishPHRInsulinDosing",
        title: "Finnish PHR Insulin Dosing profile",
        description: "An insulin dose the user took: a bolus (effectiveDateTime + dose), an \
                      extended bolus (effectivePeriod + dose) or a basal rate (effectivePeriod \
                      + rate), the insulin identified by a VNR code or an insulin type code.",
        names,
        version: "0.1.0",
        type_name: ma,
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/MedicationAdministration",
        is_abstract: false,
        context: &[],
        rules,
        content: Some(DataContent {
            kind: Kind::InsulinDosing,
            group: Group::Medication,
            names,
            profile: urls::INSULIN_DOSING,
            resource_type: ma,
            codes: vec![
                Code {
                    system: urls::CS_INSULIN_CODE,
                    code: "ins-short-fast",
                },
                Code {
                    system: urls::CS_INSULIN_CODE,
                    code: "ins-intermediate-long",
                },
            ],
            unit: None,
            series: Vec::new(),
            chart: ChartKind::Events,
        }),
    }
}
