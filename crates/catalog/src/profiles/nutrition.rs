//! Nutrition: the abstract base profile, calorie intake and macronutrient intake.

use super::common::{
    Housekeeping, PATIENT_TARGET, fiphr_category, housekeeping, patient_reference, prohibited,
    required_system_coding,
};
use crate::content::{ChartKind, Code, Kind, Unit};
use crate::model::{
    Invariant, InvariantSeverity, Names, Slicing, SlicingRules, Strength, TypeRef, el,
};
use crate::profile::{
    CodeRule, CodingSlot, ComponentRule, DataAbsentRule, EffectiveRule, Family, ObservationProfile,
    ProfileDecl, SdKind, ValueRule,
};
use crate::urls;

/// `fiphr-sd-nutrition`: abstract base of nutrition observations.
pub(crate) fn nutrition() -> ProfileDecl {
    let o = "Observation";
    let mut rules = vec![el(o).short("Finnish PHR base profile for nutrition observations")];
    rules.extend(housekeeping(o, &Housekeeping::DATA));
    rules.extend(prohibited(&["Observation.basedOn", "Observation.partOf"]));
    rules.push(el("Observation.status").fixed_code("final"));
    rules.extend(fiphr_category(
        urls::VS_OBSERVATION_CATEGORY,
        urls::CS_OBSERVATION_CATEGORY,
        "nutrition",
    ));
    rules.push(el("Observation.code").bind(Strength::Extensible, urls::VS_NUTRITION));
    // The LOINC coding; each child profile says which code it carries.
    rules.push(
        el("Observation.code.coding")
            .min(1)
            .sliced(Slicing::by_value(&["system", "code"], SlicingRules::Open)),
    );
    rules.push(el("Observation.code.coding:fiphrCode").one());
    rules.push(
        el("Observation.code.coding:fiphrCode.system")
            .min(1)
            .fixed_uri(urls::LOINC),
    );
    rules.push(el("Observation.code.coding:fiphrCode.code").min(1));
    rules.push(el("Observation.code.coding:fiphrCode.display").min(1));
    rules.push(el("Observation.subject").min(1));
    rules.extend(patient_reference("Observation.subject"));
    rules.extend(prohibited(&["Observation.focus", "Observation.encounter"]));
    rules.push(
        el("Observation.effective[x]")
            .min(1)
            .types(&[TypeRef::code("dateTime"), TypeRef::code("Period")]),
    );
    rules.push(
        el("Observation.issued")
            .min(1)
            .short("When the observation was stored"),
    );
    rules.push(
        el("Observation.performer")
            .one()
            .types(&[TypeRef::reference("Reference", PATIENT_TARGET)])
            .short("The application user responsible for the observation"),
    );
    rules.push(el("Observation.performer.reference").min(1));
    rules.push(el("Observation.performer.identifier.assigner").none());
    rules.push(el("Observation.dataAbsentReason").none());
    rules.extend(required_system_coding(
        "Observation.interpretation.coding",
        "fiphrInterpretation",
        urls::INTERPRETATION,
    ));
    rules.extend(prohibited(&[
        "Observation.note.author[x]",
        "Observation.bodySite",
        "Observation.method",
        "Observation.specimen",
        "Observation.device",
        "Observation.referenceRange",
        "Observation.hasMember",
        "Observation.derivedFrom",
        "Observation.component",
    ]));
    ProfileDecl {
        url: urls::NUTRITION,
        name: "FinnishPHRNutrition",
        title: "Finnish PHR Nutrition profile",
        description: "Abstract base profile of nutrition observations.",
        names: Names::new("Ravitsemus", "Näringstillstånd", "Nutrition"),
        version: "0.1.0",
        type_name: "Observation",
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/Observation",
        is_abstract: true,
        context: &[],
        rules,
        content: None,
    }
}

pub(crate) fn calorie_intake() -> ObservationProfile {
    ObservationProfile {
        url: urls::CALORIE_INTAKE,
        name: "FinnishPHRCalorieIntake",
        title: "Finnish PHR Calorie Intake profile",
        description: "Total calorie intake (9052-2) in kcal at a point in time.",
        version: "0.1.0",
        family: Family::Nutrition,
        kind: Kind::CalorieIntake,
        names: Names::new("Energiansaanti", "Energiintag", "Calorie intake"),
        chart: ChartKind::Bar,
        code: CodeRule {
            value_set: None,
            discriminator: &[],
            slots: const { &[CodingSlot::loinc("fiphrCode", "9052-2")] },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "kcal",
                ucum: "kcal",
            },
            required: true,
        },
        effective: EffectiveRule::DateTime,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Inherit,
        extensions: &[],
        invariants: &[],
        extra: Vec::new(),
    }
}

const fn loinc(code: &'static str) -> Code {
    Code {
        system: urls::LOINC,
        code,
    }
}

/// Carbohydrate, fat and protein intake, estimated and measured.
pub(crate) const MACRONUTRIENT_CODES: &[Code] = &[
    loinc("9059-7"),
    loinc("9060-5"),
    loinc("9066-2"),
    loinc("9067-0"),
    loinc("9079-5"),
    loinc("9080-3"),
];

/// Kanta's invariant (keyed `PHR` there).
pub(crate) const MACRONUTRIENT_INVARIANT: Invariant = Invariant {
    key: "PHR-6",
    severity: InvariantSeverity::Error,
    human: "Resource SHALL contain code '9059-7' or '9060-5' or '9066-2' or '9067-0' or \
            '9079-5' or '9080-3'",
    expression: "(code.coding.where(code='9059-7').exists()) or \
                 (code.coding.where(code='9060-5').exists()) or \
                 (code.coding.where(code='9066-2').exists()) or \
                 (code.coding.where(code='9067-0').exists()) or \
                 (code.coding.where(code='9079-5').exists()) or \
                 (code.coding.where(code='9080-3').exists())",
};

pub(crate) fn macronutrient_intake() -> ObservationProfile {
    ObservationProfile {
        url: urls::MACRONUTRIENT_INTAKE,
        name: "FinnishPHRMacronutrientIntake",
        title: "Finnish PHR Macronutrient Intake profile",
        description: "Carbohydrate, fat or protein intake, estimated or measured, in grams at a \
                      point in time.",
        version: "0.1.0",
        family: Family::Nutrition,
        kind: Kind::MacronutrientIntake,
        names: Names::new(
            "Makroravintoaineiden saanti",
            "Intag av makronäringsämnen",
            "Macronutrient intake",
        ),
        chart: ChartKind::Bar,
        code: CodeRule {
            value_set: Some(urls::VS_MACRONUTRIENTS),
            discriminator: &[],
            slots: &[],
            other_codes: MACRONUTRIENT_CODES,
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "g",
                ucum: "g",
            },
            required: true,
        },
        effective: EffectiveRule::DateTime,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Inherit,
        extensions: &[],
        invariants: &[MACRONUTRIENT_INVARIANT],
        extra: vec![
            // The LOINC slice's code: what makes the slice discriminable by value.
            el("Observation.code.coding:fiphrCode.code")
                .bind(Strength::Required, urls::VS_MACRONUTRIENTS),
        ],
    }
}
