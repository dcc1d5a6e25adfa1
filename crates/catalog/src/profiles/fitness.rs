//! Fitness: the abstract base profile, steps, moderate-to-vigorous activity time, MET by
//! standard RMR and exercise tracking.

use super::common::{
    Housekeeping, PATIENT_TARGET, fiphr_category, housekeeping, patient_reference, prohibited,
    required_system_coding,
};
use crate::content::{ChartKind, Kind, Unit};
use crate::model::{Invariant, InvariantSeverity, Names, Strength, TypeRef, el};
use crate::profile::{
    CodeRule, CodingSlot, ComponentRule, ComponentSlot, ComponentValue, DataAbsentRule,
    EffectiveRule, Family, ObservationProfile, ProfileDecl, SdKind, ValueRule,
};
use crate::urls;

/// `fiphr-sd-fitness`: abstract base of every fitness observation.
pub(crate) fn fitness() -> ProfileDecl {
    let o = "Observation";
    let mut rules = vec![el(o).short("Finnish PHR base profile for fitness observations")];
    rules.extend(housekeeping(o, &Housekeeping::DATA));
    rules.extend(prohibited(&["Observation.basedOn", "Observation.partOf"]));
    rules.push(el("Observation.status").fixed_code("final"));
    rules.extend(fiphr_category(
        urls::VS_FITNESS_CATEGORY,
        urls::CS_FITNESS_CATEGORY,
        "fitness",
    ));
    rules.push(el("Observation.code").bind(Strength::Extensible, urls::VS_FITNESS_RESULT));
    rules.extend(coded_fully("Observation.code.coding"));
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
    rules.push(el("Observation.value[x]").of_type("Quantity"));
    rules.push(el("Observation.dataAbsentReason").none());
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
    ]));
    rules.push(
        el("Observation.hasMember")
            .max(1)
            .types(&[TypeRef::reference(
                "Reference",
                &[
                    "http://hl7.org/fhir/StructureDefinition/Observation",
                    "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse",
                ],
            )]),
    );
    rules.push(el("Observation.hasMember.identifier.assigner").none());
    rules.push(el("Observation.derivedFrom").none());
    rules
        .push(el("Observation.component.code").bind(Strength::Extensible, urls::VS_FITNESS_RESULT));
    rules.extend(coded_fully("Observation.component.code.coding"));
    rules.push(el("Observation.component.interpretation").max(1));
    rules.extend(required_system_coding(
        "Observation.component.interpretation.coding",
        "fiphrInterpretation",
        urls::INTERPRETATION,
    ));
    ProfileDecl {
        url: urls::FITNESS,
        name: "FinnishPHRFitness",
        title: "Finnish PHR Fitness profile",
        description: "Abstract base profile of fitness and physical activity observations.",
        names: Names::new("Liikunta ja aktiivisuus", "Motion och aktivitet", "Fitness"),
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

/// Every coding at `coding` carries system, code and display.
fn coded_fully(coding: &str) -> Vec<crate::model::El> {
    vec![
        el(coding).min(1),
        el(format!("{coding}.system")).min(1),
        el(format!("{coding}.code")).min(1),
        el(format!("{coding}.display")).min(1),
    ]
}

pub(crate) fn steps() -> ObservationProfile {
    ObservationProfile {
        url: urls::STEPS,
        name: "FinnishPHRStepsTaken",
        title: "Finnish PHR Steps Taken profile",
        description: "Steps taken (66334-4) over any period; 41950-7 marks a day's and \
                      41952-3 a week's total. The unit is '1'.",
        version: "0.1.0",
        family: Family::Fitness,
        kind: Kind::Steps,
        names: Names::new("Askelmäärä", "Steg", "Steps"),
        chart: ChartKind::Bar,
        code: CodeRule {
            value_set: None,
            discriminator: &["code", "system"],
            slots: const {
                &[
                    CodingSlot::loinc("steps", "66334-4"),
                    CodingSlot::loinc("dailySteps", "41950-7").optional(),
                    CodingSlot::loinc("weeklySteps", "41952-3").optional(),
                ]
            },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "1",
                ucum: "1",
            },
            required: true,
        },
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Prohibited,
        extensions: &[],
        invariants: &[],
        extra: Vec::new(),
    }
}

/// Ours: Kanta's profile describes the two codes but lets an instance carry neither.
pub(crate) const MVPA_INVARIANT: Invariant = Invariant {
    key: "PHR-7",
    severity: InvariantSeverity::Error,
    human: "Resource SHALL contain LOINC code '82290-8' (weekly) or \
            fiphr-cs-moderatetovigorouspa code '82290-8-24h' (daily)",
    expression: "code.coding.where(system='http://loinc.org').where(code='82290-8').exists() or \
                 code.coding.where(system='http://phr.kanta.fi/fiphr-cs-moderatetovigorouspa')\
                 .where(code='82290-8-24h').exists()",
};

pub(crate) fn moderate_to_vigorous_activity() -> ObservationProfile {
    ObservationProfile {
        url: urls::MVPA_TIME,
        name: "FinnishPHRModerateToVigorousPATime",
        title: "Finnish PHR Moderate to Vigorous Physical Activity Time profile",
        description: "Minutes of moderate to vigorous physical activity (MET > 2.9) in a week \
                      (82290-8) or a day (82290-8-24h).",
        version: "0.1.0",
        family: Family::Fitness,
        kind: Kind::ModerateToVigorousActivity,
        names: Names::new(
            "Kohtuullisen ja raskaan liikunnan määrä",
            "Måttlig eller hård fysisk aktivitet",
            "Moderate to vigorous physical activity",
        ),
        chart: ChartKind::Bar,
        code: CodeRule {
            value_set: None,
            discriminator: &["code"],
            slots: const {
                &[
                    CodingSlot::loinc("moderateToVigorousWeeklyMinutes", "82290-8").optional(),
                    CodingSlot::loinc("moderateToVigorousPA24h", "82290-8-24h")
                        .system(urls::CS_MVPA)
                        .optional(),
                ]
            },
            other_codes: &[],
        },
        value: ValueRule::Quantity {
            unit: Unit {
                unit: "min",
                ucum: "min",
            },
            required: true,
        },
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Prohibited,
        extensions: &[],
        invariants: &[MVPA_INVARIANT],
        extra: Vec::new(),
    }
}

const MET_UNIT: Unit = Unit {
    unit: "MET",
    ucum: "[MET]",
};

const fn met_quantity(slice: &'static str, code: &'static str, names: Names) -> ComponentSlot {
    ComponentSlot {
        slice,
        names,
        code: CodingSlot::loinc("fiphrCode", code),
        min: 0,
        value: ComponentValue::Quantity(MET_UNIT),
        code_value_set: Some(urls::VS_MET),
        reference_range_max: Some(1),
        short: None,
        charted: true,
    }
}

const fn met_source(
    slice: &'static str,
    code: &'static str,
    names: Names,
    value_set: &'static str,
    reference_range_max: u32,
) -> ComponentSlot {
    ComponentSlot {
        slice,
        names,
        code: CodingSlot::loinc("fiphrCode", code),
        min: 0,
        value: ComponentValue::Coded {
            value_set,
            system: urls::LOINC,
        },
        code_value_set: Some(urls::VS_MET),
        reference_range_max: Some(reference_range_max),
        short: None,
        charted: false,
    }
}

const MET_COMPONENTS: &[ComponentSlot] = &[
    ComponentSlot {
        slice: "standard-rmr",
        names: Names::new(
            "Standardi lepoaineenvaihdunta",
            "Standard viloämnesomsättning",
            "Standard resting metabolic rate",
        ),
        code: CodingSlot::loinc("fiphrCode", "82284-1"),
        min: 1,
        value: ComponentValue::Quantity(Unit {
            unit: "ml/kg/min",
            ucum: "mL/kg/min",
        }),
        code_value_set: Some(urls::VS_MET),
        reference_range_max: Some(1),
        short: Some("Standard RMR, conventionally 3.5 mL/kg/min"),
        // A convention, not a measurement.
        charted: false,
    },
    met_quantity(
        "measured-met",
        "82261-9",
        Names::new(
            "Mitattu metabolinen ekvivalentti",
            "Uppmätt metabolisk ekvivalent",
            "Measured metabolic equivalent of task",
        ),
    ),
    met_quantity(
        "estimated-met",
        "82262-7",
        Names::new(
            "Arvioitu metabolinen ekvivalentti",
            "Uppskattad metabolisk ekvivalent",
            "Estimated metabolic equivalent of task",
        ),
    ),
    met_source(
        "estimated-source",
        "82280-9",
        Names::new(
            "Lähde arvioidulle metaboliselle ekvivalentille",
            "Källa för uppskattad metabolisk ekvivalent",
            "Source for estimated metabolic equivalent of task",
        ),
        urls::VS_SOURCE_ESTIMATED_MET,
        1,
    ),
    met_quantity(
        "reported-met",
        "82263-5",
        Names::new(
            "Raportoitu metabolinen ekvivalentti",
            "Rapporterad metabolisk ekvivalent",
            "Reported metabolic equivalent of task",
        ),
    ),
    met_source(
        "reported-source",
        "82281-7",
        Names::new(
            "Lähde raportoidulle metaboliselle ekvivalentille",
            "Källa för rapporterad metabolisk ekvivalent",
            "Source for reported metabolic equivalent of task",
        ),
        urls::VS_SOURCE_REPORTED_MET,
        1,
    ),
    met_quantity(
        "adjusted-met",
        "82271-8",
        Names::new(
            "Korjattu metabolinen ekvivalentti",
            "Justerad metabolisk ekvivalent",
            "Adjusted metabolic equivalent of task",
        ),
    ),
    met_source(
        "adjusted-source",
        "82283-3",
        Names::new(
            "Lähde korjatulle metaboliselle ekvivalentille",
            "Källa för justerad metabolisk ekvivalent",
            "Source for adjusted metabolic equivalent of task",
        ),
        urls::VS_SOURCE_ADJUSTED_MET,
        0,
    ),
];

pub(crate) fn met_by_standard_rmr() -> ObservationProfile {
    ObservationProfile {
        url: urls::MET,
        name: "FinnishPHRMetByStandardRMR",
        title: "Finnish PHR MET by Standard RMR profile",
        description: "Metabolic equivalent of task by standard resting metabolic rate: a panel \
                      (82260-1) without a value of its own, with the standard RMR and 1 to 4 \
                      MET values or their sources as components.",
        version: "0.1.0",
        family: Family::Fitness,
        kind: Kind::MetByStandardRmr,
        names: Names::new(
            "Metabolinen ekvivalentti (MET)",
            "Metabolisk ekvivalent (MET)",
            "Metabolic equivalent of task (MET)",
        ),
        chart: ChartKind::Events,
        code: CodeRule {
            value_set: Some(urls::VS_MET),
            discriminator: &["code", "system"],
            slots: const { &[CodingSlot::loinc("fiphrCode", "82260-1")] },
            other_codes: &[],
        },
        value: ValueRule::Prohibited,
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Sliced {
            min: 2,
            max: 5,
            slots: MET_COMPONENTS,
        },
        extensions: &[],
        invariants: &[],
        extra: prohibited(&["Observation.interpretation", "Observation.referenceRange"]),
    }
}

const EXERCISE_COMPONENTS: &[ComponentSlot] = &[
    ComponentSlot {
        slice: "exercise-activity",
        names: Names::new("Liikuntalaji", "Träningsaktivitet", "Exercise activity"),
        code: CodingSlot::loinc("fiphrCode", "73985-4"),
        min: 0,
        value: ComponentValue::Coded {
            value_set: urls::VS_EXERCISE_ACTIVITY,
            system: urls::CS_EXERCISE_ACTIVITY,
        },
        code_value_set: Some(urls::VS_EXERCISE_TRACKING),
        reference_range_max: Some(1),
        short: Some("Exercise activity (UKK's classification)"),
        charted: false,
    },
    ComponentSlot {
        slice: "exercise-duration",
        names: Names::new(
            "Liikunnan kesto",
            "Träningsvaraktighet",
            "Exercise duration",
        ),
        code: CodingSlot::loinc("fiphrCode", "55411-3"),
        min: 0,
        value: ComponentValue::Quantity(Unit {
            unit: "min",
            ucum: "min",
        }),
        code_value_set: Some(urls::VS_EXERCISE_TRACKING),
        reference_range_max: Some(1),
        short: Some("Exercise duration"),
        charted: true,
    },
    ComponentSlot {
        slice: "exercise-intensity",
        names: Names::new(
            "Liikunnan intensiteetti",
            "Träningsintensitet",
            "Exercise intensity",
        ),
        code: CodingSlot::loinc("fiphrCode", "74008-4"),
        min: 0,
        value: ComponentValue::Coded {
            value_set: urls::VS_EXERCISE_INTENSITY,
            system: urls::LOINC,
        },
        code_value_set: Some(urls::VS_EXERCISE_TRACKING),
        reference_range_max: Some(1),
        short: Some("Exercise intensity"),
        charted: false,
    },
    ComponentSlot {
        slice: "calories-burned",
        names: Names::new("Energiankulutus", "Energiförbrukning", "Calories burned"),
        code: CodingSlot::loinc("fiphrCode", "55421-2"),
        min: 0,
        value: ComponentValue::Quantity(Unit {
            unit: "kcal",
            ucum: "kcal",
        }),
        code_value_set: Some(urls::VS_EXERCISE_TRACKING),
        reference_range_max: Some(1),
        short: Some("Calories burned"),
        charted: true,
    },
];

pub(crate) fn exercise_tracking() -> ObservationProfile {
    ObservationProfile {
        url: urls::EXERCISE,
        name: "FinnishPHRExerciseTracking",
        title: "Finnish PHR Exercise Tracking profile",
        description: "One exercise session: a panel (55409-7) without a value of its own, with \
                      activity, duration, intensity and calories burned as components.",
        version: "0.1.0",
        family: Family::Fitness,
        kind: Kind::ExerciseTracking,
        names: Names::new("Liikuntasuoritus", "Träningspass", "Exercise"),
        chart: ChartKind::Events,
        code: CodeRule {
            value_set: Some(urls::VS_EXERCISE_TRACKING),
            discriminator: &["code", "system"],
            slots: const { &[CodingSlot::loinc("fiphrCode", "55409-7")] },
            other_codes: &[],
        },
        value: ValueRule::Prohibited,
        effective: EffectiveRule::Inherit,
        data_absent: DataAbsentRule::Inherit,
        components: ComponentRule::Sliced {
            min: 1,
            max: 4,
            slots: EXERCISE_COMPONENTS,
        },
        extensions: &[],
        invariants: &[],
        extra: {
            let mut extra = vec![el("Observation.category.coding:fiphrCategory.display").min(1)];
            extra.extend(prohibited(&[
                "Observation.interpretation",
                "Observation.referenceRange",
            ]));
            extra
        },
    }
}
