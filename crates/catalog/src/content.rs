//! What the portal and the consent page need to know about each data content: its kind, its
//! names in Finnish, Swedish and English, the codes and unit that identify it, how to chart
//! it, and which resource type and search `code` fetch it. Derived from the same declarations
//! as the StructureDefinitions (see `profiles`), never written twice.

use crate::model::{Lang, Names};

/// The data contents the portal knows how to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    BloodPressure,
    BodyWeight,
    BodyHeight,
    BloodGlucose,
    HeartRate,
    HeartRate24hMean,
    HeartRate24hMin,
    HeartRate24hMax,
    RespiratoryRate,
    BodyTemperature,
    WaistCircumference,
    PeakExpiratoryFlow,
    Steps,
    ModerateToVigorousActivity,
    MetByStandardRmr,
    ExerciseTracking,
    CalorieIntake,
    MacronutrientIntake,
    InsulinDosing,
    SelfCarePlan,
    Questionnaire,
    QuestionnaireResponse,
}

impl Kind {
    /// A stable, URL-safe key (`blood-pressure`), for portal routes and settings.
    pub fn key(self) -> &'static str {
        use Kind::*;
        match self {
            BloodPressure => "blood-pressure",
            BodyWeight => "body-weight",
            BodyHeight => "body-height",
            BloodGlucose => "blood-glucose",
            HeartRate => "heart-rate",
            HeartRate24hMean => "heart-rate-24h-mean",
            HeartRate24hMin => "heart-rate-24h-min",
            HeartRate24hMax => "heart-rate-24h-max",
            RespiratoryRate => "respiratory-rate",
            BodyTemperature => "body-temperature",
            WaistCircumference => "waist-circumference",
            PeakExpiratoryFlow => "peak-expiratory-flow",
            Steps => "steps",
            ModerateToVigorousActivity => "moderate-to-vigorous-activity",
            MetByStandardRmr => "met",
            ExerciseTracking => "exercise",
            CalorieIntake => "calorie-intake",
            MacronutrientIntake => "macronutrient-intake",
            InsulinDosing => "insulin-dosing",
            SelfCarePlan => "self-care-plan",
            Questionnaire => "questionnaire",
            QuestionnaireResponse => "questionnaire-response",
        }
    }
}

/// The groups kanta.fi lists data contents in; the consent page asks per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    VitalSigns,
    Fitness,
    Nutrition,
    Medication,
    Questionnaires,
    CarePlans,
}

impl Group {
    pub fn names(self) -> Names {
        match self {
            Group::VitalSigns => Names::new("Elintoiminnot", "Vitalparametrar", "Vital signs"),
            Group::Fitness => {
                Names::new("Liikunta ja aktiivisuus", "Motion och aktivitet", "Fitness")
            }
            Group::Nutrition => Names::new("Ravitsemus", "Näringstillstånd", "Nutrition"),
            Group::Medication => Names::new("Lääkitystiedot", "Läkemedelsuppgifter", "Medication"),
            Group::Questionnaires => Names::new("Kyselyt", "Frågeformulär", "Questionnaires"),
            Group::CarePlans => Names::new("Hoitosuunnitelmat", "Vårdplaner", "Care plans"),
        }
    }

    pub fn name(self, lang: Lang) -> &'static str {
        self.names().get(lang)
    }
}

/// How the portal draws a data content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// One numeric series over time (weight, glucose, heart rate ...).
    Line,
    /// Two numeric series from two components, drawn together (blood pressure).
    PairedLine,
    /// Amounts per day or week (steps, calories).
    Bar,
    /// A list of events with details (exercise sessions, insulin doses, MET panels).
    Events,
    /// Documents shown as such (care plans, questionnaires and their answers).
    Document,
}

/// A code in a code system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    pub system: &'static str,
    pub code: &'static str,
}

impl Code {
    /// The token for a `code` search: `system|code`.
    pub fn token(&self) -> String {
        format!("{}|{}", self.system, self.code)
    }
}

/// A unit: the human-readable `unit` string Kanta fixes and the UCUM `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// `Quantity.unit` as Kanta fixes it, e.g. `mmol/l`.
    pub unit: &'static str,
    /// `Quantity.code` (UCUM), e.g. `mmol/L`.
    pub ucum: &'static str,
}

/// One numeric series drawn from a component (systolic, diastolic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub code: Code,
    pub names: Names,
    pub unit: Unit,
}

/// The portal's metadata for one data content.
#[derive(Debug, Clone, PartialEq)]
pub struct DataContent {
    pub kind: Kind,
    pub group: Group,
    pub names: Names,
    /// The profile instances carry in `meta.profile`.
    pub profile: &'static str,
    pub resource_type: &'static str,
    /// The codes that identify this content: every instance carries at least one of them.
    /// Empty for resource types searched without a code (care plans, questionnaires).
    pub codes: Vec<Code>,
    /// The unit of the value; None when there is no single numeric value.
    pub unit: Option<Unit>,
    /// Numeric series inside components (blood pressure).
    pub series: Vec<Series>,
    pub chart: ChartKind,
}

impl DataContent {
    pub fn name(&self, lang: Lang) -> &'static str {
        self.names.get(lang)
    }

    /// The value of the `code` search parameter that fetches exactly this content:
    /// `http://loinc.org|29463-7`, several tokens joined by `,` (OR). None when the content
    /// is not searched by code.
    pub fn code_search(&self) -> Option<String> {
        if self.codes.is_empty() {
            return None;
        }
        Some(
            self.codes
                .iter()
                .map(Code::token)
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}
