//! Vital signs: the base profile (on R4 `vitalsigns`), blood pressure, body weight, body
//! height, blood glucose, and the vital signs stored under the base profile itself (heart
//! rate, respiratory rate, temperatures, waist circumference, PEF).

use super::common::{
    Housekeeping, PATIENT_TARGET, housekeeping, patient_reference, prohibited,
    required_system_coding,
};
use crate::content::{ChartKind, Code, DataContent, Group, Kind, Unit};
use crate::model::{Invariant, InvariantSeverity, Names, Strength, TypeRef, el};
use crate::profile::{
    CodeRule, CodingSlot, ComponentRule, ComponentSlot, ComponentValue, DataAbsentRule,
    EffectiveRule, ExtensionSlot, Family, ObservationProfile, ProfileDecl, SdKind, ValueRule,
};
use crate::urls;

/// `fiphr-sd-vitalsigns`: every vital sign. Used directly for the vital signs that have no
/// profile of their own.
pub(crate) fn vital_signs() -> ProfileDecl {
    let o = "Observation";
    let mut rules = vec![el(o).short("Finnish PHR base profile for vital signs")];
    rules.extend(housekeeping(o, &Housekeeping::DATA));
    rules.extend(prohibited(&["Observation.basedOn", "Observation.partOf"]));
    rules.push(el("Observation.status").fixed_code("final"));
    rules.push(el("Observation.code").bind(Strength::Extensible, urls::VS_VITAL_SIGNS));
    rules.extend(patient_reference("Observation.subject"));
    rules.extend(prohibited(&["Observation.focus", "Observation.encounter"]));
    rules.push(el("Observation.effective[x]").of_type("dateTime"));
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
    rules.push(el("Observation.dataAbsentReason.coding").max(1));
    rules.extend(
        required_system_coding(
            "Observation.dataAbsentReason.coding",
            "fiphrDataAbsentReason",
            urls::DATA_ABSENT_REASON,
        )
        .into_iter()
        // The coding list is 0..1 here; the slice makes the one coding a coded reason.
        .map(|r| {
            if r.id == "Observation.dataAbsentReason.coding" {
                r.min(0).max(1)
            } else {
                r
            }
        }),
    );
    rules.push(el("Observation.interpretation").max(1));
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
        "Observation.hasMember",
        "Observation.derivedFrom",
    ]));
    rules.push(el("Observation.component.code").bind(Strength::Extensible, urls::VS_VITAL_SIGNS));
    rules.push(el("Observation.component.code.coding").min(1));
    rules.extend(required_system_coding(
        "Observation.component.dataAbsentReason.coding",
        "fiphrCoding",
        urls::DATA_ABSENT_REASON,
    ));
    rules.extend(required_system_coding(
        "Observation.component.interpretation.coding",
        "fiphrCoding",
        urls::INTERPRETATION,
    ));
    ProfileDecl {
        url: urls::VITAL_SIGNS,
        name: "FinnishPHRVitalSigns",
        title: "Finnish PHR Vital Signs profile",
        description: "Base profile of every vital sign stored in the Finnish PHR; vital signs \
                      without a profile of their own (heart rate, respiratory rate, body \
                      temperature, waist circumference, peak expiratory flow) use it directly.",
        names: Names::new("Elintoiminnot", "Vitalparametrar", "Vital signs"),
        version: "0.1.0",
        type_name: "Observation",
        kind: SdKind::Resource,
        parent: "http://hl7.org/fhir/StructureDefinition/vitalsigns",
        is_abstract: false,
        context: &[],
        rules,
        content: None,
    }
}

pub(crate) const MM_HG: Unit = Unit {
    unit: "mm[Hg]",
    ucum: "mm[Hg]",
};

pub(crate) fn blood_pressure() -> ObservationProfile {
    ObservationProfile {
        url: urls::BLOOD_PRESSURE,
        name: "FinnishPHRBloodPressure",
        title: "Finnish PHR Blood Pressure profile",
        description: "Blood pressure: a panel (85354-9) without a value of its own, with \
                      exactly two components, systolic (8480-6) and diastolic (8462-4), in mm[Hg].",
        version: "0.1.0",
        family: Family::VitalSigns,
        kind: Kind::BloodPressure,
        names: Names::new("Verenpaine", "Blodtryck", "Blood pressure"),
        chart: ChartKind::PairedLine,
        code: CodeRule {
            value_set: None,
            discriminator: &["code"],
            slots: const { &[CodingSlot::loinc("fiphrCode", "85354-9")] },
            other_codes: &[],
        },
        value: ValueRule::Prohibited,
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Prohibited,
        components: ComponentRule::Sliced {
            min: 2,
            max: 2,
            slots: const {
                &[
                    ComponentSlot {
                        slice: "systolic",
                        names: Names::new(
                            "Systolinen verenpaine",
                            "Systoliskt blodtryck",
                            "Systolic blood pressure",
                        ),
                        code: CodingSlot::loinc("fiphrCoding", "8480-6"),
                        min: 1,
                        value: ComponentValue::Quantity(MM_HG),
                        code_value_set: None,
                        reference_range_max: None,
                        short: Some("Systolic blood pressure"),
                        charted: true,
                    },
                    ComponentSlot {
                        slice: "diastolic",
                        names: Names::new(
                            "Diastolinen verenpaine",
                            "Diastoliskt blodtryck",
                            "Diastolic blood pressure",
                        ),
                        code: CodingSlot::loinc("fiphrCoding", "8462-4"),
                        min: 1,
                        value: ComponentValue::Quantity(MM_HG),
                        code_value_set: None,
                        reference_range_max: None,
                        short: Some("Diastolic blood pressure"),
                        charted: true,
                    },
                ]
            },
        },
        extensions: &[],
        invariants: &[],
        extra: Vec::new(),
    }
}

pub(crate) fn body_weight() -> ObservationProfile {
    ObservationProfile {
        url: urls::BODY_WEIGHT,
        name: "FinnishPHRBodyWeight",
        title: "Finnish PHR Body Weight profile",
        description: "Body weight (29463-7) in kilograms.",
        version: "0.1.0",
        family: Family::VitalSigns,
        kind: Kind::BodyWeight,
        names: Names::new("Paino", "Vikt", "Body weight"),
        chart: ChartKind::Line,
        code: CodeRule {
            value_set: None,
            discriminator: &["code"],
            slots: const { &[CodingSlot::loinc("fiphrCode", "29463-7")] },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "kg",
                ucum: "kg",
            },
            required: true,
        },
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Prohibited,
        components: ComponentRule::Prohibited,
        extensions: &[],
        invariants: &[],
        extra: Vec::new(),
    }
}

/// Kela never published `fiphr-sd-bodyheight` though instances name it; this is ours, on
/// the model of body weight.
pub(crate) fn body_height() -> ObservationProfile {
    ObservationProfile {
        url: urls::BODY_HEIGHT,
        name: "FinnishPHRBodyHeight",
        title: "Finnish PHR Body Height profile",
        description: "Body height (8302-2) in centimetres. Kela's profile of this name was \
                      never published; this one follows the body weight profile.",
        version: "0.1.0",
        family: Family::VitalSigns,
        kind: Kind::BodyHeight,
        names: Names::new("Pituus", "Längd", "Body height"),
        chart: ChartKind::Line,
        code: CodeRule {
            value_set: None,
            discriminator: &["code"],
            slots: const { &[CodingSlot::loinc("fiphrCode", "8302-2")] },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "cm",
                ucum: "cm",
            },
            required: true,
        },
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Prohibited,
        components: ComponentRule::Prohibited,
        extensions: &[],
        invariants: &[],
        extra: Vec::new(),
    }
}

/// Kanta's PHR-1..3: one of the glucose codes, and blood (15074-8) and glucometer
/// (14743-9) always together.
pub(crate) const GLUCOSE_INVARIANTS: &[Invariant] = &[
    Invariant {
        key: "PHR-1",
        severity: InvariantSeverity::Error,
        human: "Resource SHALL contain code '15074-8' or '14743-9' or '14745-4'",
        expression: "(code.coding.where(code='15074-8').exists()) or \
                     (code.coding.where(code='14743-9').exists()) or \
                     (code.coding.where(code='14745-4').exists())",
    },
    Invariant {
        key: "PHR-2",
        severity: InvariantSeverity::Error,
        human: "When using code '15074-8' also code '14743-9' SHALL be used",
        expression: "code.coding.where(code='15074-8').exists() implies \
                     code.coding.where(code='14743-9').exists()",
    },
    Invariant {
        key: "PHR-3",
        severity: InvariantSeverity::Error,
        human: "When using code '14743-9' also code '15074-8' SHALL be used",
        expression: "code.coding.where(code='14743-9').exists() implies \
                     code.coding.where(code='15074-8').exists()",
    },
    Invariant {
        key: "PHR-5",
        severity: InvariantSeverity::Error,
        human: "A missing blood glucose value SHALL be explained with data-absent-reason \
                'error' (the device failed) or 'astext' (the value is in the narrative)",
        // Written as plain existence logic so validators evaluate it without FHIRPath.
        expression: "dataAbsentReason.exists() implies \
                     dataAbsentReason.coding.where(system='http://terminology.hl7.org/CodeSystem/data-absent-reason')\
                     .where(code='error').exists() or \
                     dataAbsentReason.coding.where(system='http://terminology.hl7.org/CodeSystem/data-absent-reason')\
                     .where(code='astext').exists()",
    },
];

/// Kanta's coding-level PHR-1, on each coding: a glucose code is a LOINC code.
pub(crate) const GLUCOSE_CODES_ARE_LOINC: Invariant = Invariant {
    key: "PHR-4",
    severity: InvariantSeverity::Error,
    human: "Codes '15074-8', '14743-9' and '14745-4' SHALL be LOINC codes",
    expression: "(where(code='15074-8').exists() or where(code='14743-9').exists() or \
                 where(code='14745-4').exists()) implies where(system='http://loinc.org').exists()",
};

pub(crate) fn blood_glucose() -> ObservationProfile {
    ObservationProfile {
        url: urls::BLOOD_GLUCOSE,
        name: "FinnishPHRBloodGlucose",
        title: "Finnish PHR Blood Glucose profile",
        description: "Blood glucose in mmol/l: a glucometer reading carries both 15074-8 and \
                      14743-9, a CGM reading 14745-4. A missing value is explained with \
                      data-absent-reason 'error' or 'astext'.",
        version: "0.1.0",
        family: Family::VitalSigns,
        kind: Kind::BloodGlucose,
        names: Names::new("Verensokeri", "Blodsocker", "Blood glucose"),
        chart: ChartKind::Line,
        code: CodeRule {
            value_set: None,
            discriminator: &["code", "system"],
            slots: const {
                &[
                    CodingSlot::loinc("GlucoseInBlood", "15074-8").optional(),
                    CodingSlot::loinc("GlucoseInCapillaryBloodByGlucometer", "14743-9").optional(),
                    CodingSlot::loinc("GlucoseInBodyFluid", "14745-4").optional(),
                ]
            },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "mmol/l",
                ucum: "mmol/L",
            },
            required: false,
        },
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Coded,
        components: ComponentRule::Prohibited,
        extensions: &[
            ExtensionSlot {
                on: "Observation",
                slice: "hoursAfterMeal",
                url: &[urls::EXT_UNSIGNED_INT],
                max: 1,
                short: Some("Hours after the last meal"),
            },
            ExtensionSlot {
                on: "Observation.value[x]",
                slice: "alternativeQuantity",
                url: &[urls::EXT_PQ_TRANSLATION],
                max: 1,
                short: Some("The value in another unit (e.g. mg/dL)"),
            },
        ],
        invariants: GLUCOSE_INVARIANTS,
        extra: vec![
            el("Observation.code.coding").invariant(GLUCOSE_CODES_ARE_LOINC),
            el("Observation.value[x].extension:alternativeQuantity.value[x].system")
                .fixed_uri(urls::UCUM),
        ],
    }
}

/// Vital signs stored under `fiphr-sd-vitalsigns` itself: codes of `fiphr-vs-vitalsigns`
/// without a profile of their own. Their units are what the portal expects, not fixed by
/// a profile.
pub(crate) fn base_stored_contents() -> Vec<DataContent> {
    let loinc = |code| Code {
        system: urls::LOINC,
        code,
    };
    let content = |kind, names, codes: Vec<Code>, unit: Unit| DataContent {
        kind,
        group: Group::VitalSigns,
        names,
        profile: urls::VITAL_SIGNS,
        resource_type: "Observation",
        codes,
        unit: Some(unit),
        series: Vec::new(),
        chart: ChartKind::Line,
    };
    let per_minute = Unit {
        unit: "/min",
        ucum: "/min",
    };
    let celsius = Unit {
        unit: "°C",
        ucum: "Cel",
    };
    vec![
        content(
            Kind::HeartRate,
            Names::new("Syke", "Puls", "Heart rate"),
            vec![loinc("8867-4")],
            per_minute,
        ),
        content(
            Kind::HeartRate24hMean,
            Names::new(
                "Sydämen syke 24 h keskiarvo",
                "Hjärtats puls 24 h genomsnittspuls",
                "Heart rate 24 hour mean",
            ),
            vec![loinc("41924-2")],
            per_minute,
        ),
        content(
            Kind::HeartRate24hMin,
            Names::new(
                "Sydämen syke 24 h minimiarvo",
                "Hjärtats puls 24 h minimivärde",
                "Heart rate 24 hour minimum",
            ),
            vec![loinc("8883-1")],
            per_minute,
        ),
        content(
            Kind::HeartRate24hMax,
            Names::new(
                "Sydämen syke 24 h maksimiarvo",
                "Hjärtats puls 24 h maximivärde",
                "Heart rate 24 hour maximum",
            ),
            vec![loinc("8873-2")],
            per_minute,
        ),
        content(
            Kind::RespiratoryRate,
            Names::new("Hengitystiheys", "Andningsfrekvens", "Respiratory rate"),
            vec![loinc("9279-1")],
            per_minute,
        ),
        content(
            Kind::BodyTemperature,
            Names::new("Kehon lämpö", "Kroppstemperatur", "Body temperature"),
            vec![
                loinc("8310-5"),
                loinc("8331-1"),
                loinc("8332-9"),
                loinc("76011-6"),
                loinc("8328-7"),
            ],
            celsius,
        ),
        content(
            Kind::WaistCircumference,
            Names::new("Vyötärönympärys", "Midjemått", "Waist circumference"),
            vec![loinc("8280-0")],
            Unit {
                unit: "cm",
                ucum: "cm",
            },
        ),
        content(
            Kind::PeakExpiratoryFlow,
            Names::new(
                "PEF (uloshengityksen huippuvirtaus)",
                "PEF (maximalt utandningsflöde)",
                "Peak expiratory flow",
            ),
            vec![loinc("19935-6")],
            Unit {
                unit: "l/min",
                ucum: "L/min",
            },
        ),
    ]
}
