//! Builders of single Kanta-profiled resources: each returns a resource valid under its Finnish
//! PHR profile, with language, a narrative in that language, a `urn:uuid` identifier,
//! `meta.profile`, the writing application's `creatingApplication`, and references to the
//! citizen's pseudonymous Patient. Codes, units and localized names come from the catalogue.

use phr_catalog::{Catalog, Kind, Lang, urls};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::people::DemoApp;
use crate::time::{fhir_date, fhir_date_time};

/// Whose data a resource is, in which language, written by which application.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub patient_id: &'a str,
    pub lang: Lang,
    pub app: &'a DemoApp,
}

impl Owner<'_> {
    fn patient_reference(&self) -> Value {
        json!({"reference": format!("Patient/{}", self.patient_id)})
    }
}

/// The name of a data content in the owner's language.
fn content_name(kind: Kind, lang: Lang) -> &'static str {
    Catalog::get()
        .content(kind)
        .map(|c| c.name(lang))
        .unwrap_or("")
}

/// The localized name of a code the catalogue knows, else `fallback`.
fn code_name(system: &str, code: &str, lang: Lang, fallback: &'static str) -> &'static str {
    Catalog::get()
        .display_in(system, code, lang)
        .unwrap_or(fallback)
}

/// Escapes text for the XHTML narrative.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn narrative(lang: Lang, lines: &[String]) -> Value {
    let body = lines
        .iter()
        .map(|l| xml_text(l))
        .collect::<Vec<_>>()
        .join("<br/>");
    let code = lang.code();
    json!({
        "status": "generated",
        "div": format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"{code}\" xml:lang=\"{code}\">{body}</div>"
        ),
    })
}

fn creating_application(app: &DemoApp) -> Value {
    json!([{
        "url": urls::EXT_CREATING_APPLICATION,
        "extension": [
            {"url": "name", "valueString": app.name},
            {"url": "applicationId", "valueString": app.id},
        ]
    }])
}

fn uuid_identifier(identifier: &str) -> Value {
    json!({"system": urls::RFC3986, "value": format!("urn:uuid:{identifier}")})
}

/// The elements every PHR resource starts with, in FHIR order.
fn head(
    resource_type: &str,
    profile: &str,
    owner: &Owner<'_>,
    identifier: &str,
    lines: &[String],
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("resourceType".into(), json!(resource_type));
    r.insert("meta".into(), json!({"profile": [profile]}));
    r.insert("language".into(), json!(owner.lang.code()));
    r.insert("text".into(), narrative(owner.lang, lines));
    r.insert("extension".into(), creating_application(owner.app));
    let id = uuid_identifier(identifier);
    // QuestionnaireResponse.identifier is a single Identifier in R4.
    if resource_type == "QuestionnaireResponse" {
        r.insert("identifier".into(), id);
    } else {
        r.insert("identifier".into(), json!([id]));
    }
    r
}

fn quantity(value: Value, unit: &str, ucum: &str) -> Value {
    json!({"value": value, "unit": unit, "system": urls::UCUM, "code": ucum})
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"system": urls::LOINC, "code": code, "display": display})
}

/// A number with one decimal, as FHIR JSON (kept exact).
fn one_decimal(x: f64) -> Value {
    number(&format!("{x:.1}"))
}

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn local_time(at: OffsetDateTime, lang: Lang) -> String {
    let t = crate::time::helsinki(at);
    match lang {
        Lang::En => format!(
            "{}/{}/{} {:02}:{:02}",
            t.day(),
            t.month() as u8,
            t.year(),
            t.hour(),
            t.minute()
        ),
        _ => format!(
            "{}.{}.{} {:02}:{:02}",
            t.day(),
            t.month() as u8,
            t.year(),
            t.hour(),
            t.minute()
        ),
    }
}

fn time_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Fi => "Aika",
        Lang::Sv => "Tid",
        Lang::En => "Time",
    }
}

enum Category {
    VitalSigns,
    Fitness,
    Nutrition,
}

fn category(c: Category) -> Value {
    match c {
        Category::VitalSigns => json!([{"coding": [{
            "system": urls::OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]),
        Category::Fitness => json!([{"coding": [{
            "system": urls::CS_FITNESS_CATEGORY, "code": "fitness", "display": "Fitness"}]}]),
        Category::Nutrition => json!([{"coding": [{
            "system": urls::CS_OBSERVATION_CATEGORY, "code": "nutrition", "display": "Nutrition"}]}]),
    }
}

/// An Observation of one data content: head, status, category, code, subject, effective,
/// performer; the caller adds the value or components.
#[allow(clippy::too_many_arguments)]
fn observation(
    profile: &str,
    owner: &Owner<'_>,
    identifier: &str,
    lines: &[String],
    cat: Category,
    code: Value,
    effective: (&str, Value),
) -> Map<String, Value> {
    let mut r = head("Observation", profile, owner, identifier, lines);
    r.insert("status".into(), json!("final"));
    r.insert("category".into(), category(cat));
    r.insert("code".into(), json!({"coding": [code]}));
    r.insert("subject".into(), owner.patient_reference());
    r.insert(effective.0.into(), effective.1);
    r.insert("performer".into(), json!([owner.patient_reference()]));
    r
}

/// A continuous glucose monitor reading (interstitial fluid, LOINC 14745-4), mmol/l.
pub fn cgm_glucose(owner: &Owner<'_>, identifier: &str, at: OffsetDateTime, mmol: f64) -> Value {
    let lang = owner.lang;
    let lines = [
        format!(
            "{}: {mmol:.1} mmol/l",
            content_name(Kind::BloodGlucose, lang)
        ),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = observation(
        urls::BLOOD_GLUCOSE,
        owner,
        identifier,
        &lines,
        Category::VitalSigns,
        loinc("14745-4", "Glucose [Moles/volume] in Body fluid"),
        ("effectiveDateTime", json!(fhir_date_time(at))),
    );
    r.insert(
        "valueQuantity".into(),
        quantity(one_decimal(mmol), "mmol/l", "mmol/L"),
    );
    Value::Object(r)
}

/// A blood pressure measurement, mmHg.
pub fn blood_pressure(
    owner: &Owner<'_>,
    identifier: &str,
    at: OffsetDateTime,
    systolic: i64,
    diastolic: i64,
) -> Value {
    let lang = owner.lang;
    let lines = [
        format!(
            "{}: {systolic}/{diastolic} mmHg",
            content_name(Kind::BloodPressure, lang)
        ),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = observation(
        urls::BLOOD_PRESSURE,
        owner,
        identifier,
        &lines,
        Category::VitalSigns,
        loinc("85354-9", "Blood pressure panel with all children optional"),
        ("effectiveDateTime", json!(fhir_date_time(at))),
    );
    r.insert(
        "component".into(),
        json!([
            {"code": {"coding": [loinc("8480-6", "Systolic blood pressure")]},
             "valueQuantity": quantity(json!(systolic), "mm[Hg]", "mm[Hg]")},
            {"code": {"coding": [loinc("8462-4", "Diastolic blood pressure")]},
             "valueQuantity": quantity(json!(diastolic), "mm[Hg]", "mm[Hg]")},
        ]),
    );
    Value::Object(r)
}

/// Body weight, kg.
pub fn body_weight(owner: &Owner<'_>, identifier: &str, at: OffsetDateTime, kg: f64) -> Value {
    let lang = owner.lang;
    let lines = [
        format!("{}: {kg:.1} kg", content_name(Kind::BodyWeight, lang)),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = observation(
        urls::BODY_WEIGHT,
        owner,
        identifier,
        &lines,
        Category::VitalSigns,
        loinc("29463-7", "Body weight"),
        ("effectiveDateTime", json!(fhir_date_time(at))),
    );
    r.insert(
        "valueQuantity".into(),
        quantity(one_decimal(kg), "kg", "kg"),
    );
    Value::Object(r)
}

/// A day's steps.
pub fn daily_steps(owner: &Owner<'_>, identifier: &str, day: time::Date, steps: i64) -> Value {
    let lang = owner.lang;
    let lines = [
        format!("{}: {steps}", content_name(Kind::Steps, lang)),
        format!("{}: {}", time_label(lang), fhir_date(day)),
    ];
    let mut r = observation(
        urls::STEPS,
        owner,
        identifier,
        &lines,
        Category::Fitness,
        loinc("66334-4", "Steps"),
        ("effectiveDateTime", json!(fhir_date(day))),
    );
    r.insert("valueQuantity".into(), quantity(json!(steps), "1", "1"));
    Value::Object(r)
}

/// The exercise activities the demo uses (UKK classification codes).
pub const ACTIVITIES: &[(&str, &str)] = &[
    ("B0702", "Jogging"),
    ("B0718", "Walking"),
    ("B0720", "Running"),
    ("B0750", "Nordic walking"),
    ("B0507", "Swimming"),
    ("B0606", "Cross-country skiing"),
    ("B1350", "Gym training"),
    ("B1706", "Cycling"),
];

/// Exercise intensities (LOINC answers).
pub const INTENSITIES: &[(&str, &str)] = &[
    ("LA20164-2", "Light"),
    ("LA20165-9", "Moderate"),
    ("LA20166-7", "Vigorous"),
];

/// One exercise session.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub start: OffsetDateTime,
    pub minutes: i64,
    /// An entry of [`ACTIVITIES`].
    pub activity: (&'static str, &'static str),
    /// An entry of [`INTENSITIES`].
    pub intensity: (&'static str, &'static str),
    pub kcal: i64,
}

pub fn exercise(owner: &Owner<'_>, identifier: &str, s: &Session) -> Value {
    let lang = owner.lang;
    let activity = code_name(urls::CS_EXERCISE_ACTIVITY, s.activity.0, lang, s.activity.1);
    let end = s.start + time::Duration::minutes(s.minutes);
    let lines = [
        format!("{}: {activity}", content_name(Kind::ExerciseTracking, lang)),
        format!("{} min, {} kcal", s.minutes, s.kcal),
        format!("{}: {}", time_label(lang), local_time(s.start, lang)),
    ];
    let mut r = observation(
        urls::EXERCISE,
        owner,
        identifier,
        &lines,
        Category::Fitness,
        loinc("55409-7", "Exercise tracking panel"),
        (
            "effectivePeriod",
            json!({"start": fhir_date_time(s.start), "end": fhir_date_time(end)}),
        ),
    );
    r.insert(
        "component".into(),
        json!([
            {"code": {"coding": [loinc("73985-4", "Exercise activity")]},
             "valueCodeableConcept": {"coding": [{
                 "system": urls::CS_EXERCISE_ACTIVITY, "code": s.activity.0, "display": s.activity.1}]}},
            {"code": {"coding": [loinc("55411-3", "Exercise duration")]},
             "valueQuantity": quantity(json!(s.minutes), "min", "min")},
            {"code": {"coding": [loinc("74008-4", "Exercise intensity")]},
             "valueCodeableConcept": {"coding": [{
                 "system": urls::LOINC, "code": s.intensity.0, "display": s.intensity.1}]}},
            {"code": {"coding": [loinc("55421-2", "Calories burned")]},
             "valueQuantity": quantity(json!(s.kcal), "kcal", "kcal")},
        ]),
    );
    Value::Object(r)
}

/// A day's total calorie intake, kcal.
pub fn calorie_intake(owner: &Owner<'_>, identifier: &str, day: time::Date, kcal: i64) -> Value {
    let lang = owner.lang;
    let lines = [
        format!("{}: {kcal} kcal", content_name(Kind::CalorieIntake, lang)),
        format!("{}: {}", time_label(lang), fhir_date(day)),
    ];
    let mut r = observation(
        urls::CALORIE_INTAKE,
        owner,
        identifier,
        &lines,
        Category::Nutrition,
        loinc("9052-2", "Calorie intake total"),
        ("effectiveDateTime", json!(fhir_date(day))),
    );
    r.insert(
        "valueQuantity".into(),
        quantity(json!(kcal), "kcal", "kcal"),
    );
    Value::Object(r)
}

/// Estimated carbohydrates of a meal, g.
pub fn carbohydrates(owner: &Owner<'_>, identifier: &str, at: OffsetDateTime, grams: i64) -> Value {
    let lang = owner.lang;
    let lines = [
        format!(
            "{}: {grams} g",
            code_name(urls::LOINC, "9059-7", lang, "Carbohydrate intake Estimated")
        ),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = observation(
        urls::MACRONUTRIENT_INTAKE,
        owner,
        identifier,
        &lines,
        Category::Nutrition,
        loinc("9059-7", "Carbohydrate intake Estimated"),
        ("effectiveDateTime", json!(fhir_date_time(at))),
    );
    r.insert("valueQuantity".into(), quantity(json!(grams), "g", "g"));
    Value::Object(r)
}

/// Which insulin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insulin {
    /// Meal-time bolus.
    Fast,
    /// Once-a-day basal.
    Long,
}

impl Insulin {
    pub fn code(self) -> &'static str {
        match self {
            Insulin::Fast => "ins-short-fast",
            Insulin::Long => "ins-intermediate-long",
        }
    }
    fn display(self) -> &'static str {
        match self {
            Insulin::Fast => "Fast-acting insulin",
            Insulin::Long => "Intermediate-acting insulin",
        }
    }
}

/// An insulin dose, IU.
pub fn insulin_dose(
    owner: &Owner<'_>,
    identifier: &str,
    at: OffsetDateTime,
    insulin: Insulin,
    units: f64,
) -> Value {
    let lang = owner.lang;
    let name = code_name(
        urls::CS_INSULIN_CODE,
        insulin.code(),
        lang,
        insulin.display(),
    );
    let lines = [
        format!("{name}: {units:.1} IU"),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = head(
        "MedicationAdministration",
        urls::INSULIN_DOSING,
        owner,
        identifier,
        &lines,
    );
    r.insert("status".into(), json!("completed"));
    r.insert(
        "medicationCodeableConcept".into(),
        json!({"coding": [{"system": urls::CS_INSULIN_CODE, "code": insulin.code(), "display": insulin.display()}],
               "text": name}),
    );
    r.insert("subject".into(), owner.patient_reference());
    r.insert("effectiveDateTime".into(), json!(fhir_date_time(at)));
    r.insert(
        "dosage".into(),
        json!({"dose": quantity(one_decimal(units), "IU", "[iU]")}),
    );
    Value::Object(r)
}

/// A self-care plan (Omaolo style) the citizen saved.
pub fn care_plan(
    owner: &Owner<'_>,
    identifier: &str,
    category: (&str, &str),
    title: &str,
    description: &str,
) -> Value {
    let lines = [title.to_string(), description.to_string()];
    let mut r = head("CarePlan", urls::SELF_CARE_PLAN, owner, identifier, &lines);
    r.insert("status".into(), json!("completed"));
    r.insert("intent".into(), json!("plan"));
    r.insert(
        "category".into(),
        json!([{"coding": [{"system": urls::CS_CAREPLAN_CATEGORY, "code": category.0, "display": category.1}]}]),
    );
    r.insert("title".into(), json!(title));
    r.insert("description".into(), json!(description));
    r.insert("subject".into(), owner.patient_reference());
    r.insert("author".into(), owner.patient_reference());
    Value::Object(r)
}

/// The canonical URL of the demo's wellbeing questionnaire.
pub const QUESTIONNAIRE_URL: &str = "http://phr.example.fi/Questionnaire/demo-wellbeing";

/// The demo's wellbeing questionnaire (a definition, outside any patient compartment).
pub fn wellbeing_questionnaire(app: &DemoApp, identifier: &str, date: time::Date) -> Value {
    let owner = Owner {
        patient_id: "",
        lang: Lang::Fi,
        app,
    };
    let lines = ["Hyvinvointikysely: vointi, uni ja liikunta".to_string()];
    let mut r = head(
        "Questionnaire",
        urls::QUESTIONNAIRE,
        &owner,
        identifier,
        &lines,
    );
    r.insert("url".into(), json!(QUESTIONNAIRE_URL));
    r.insert("version".into(), json!("1"));
    r.insert("name".into(), json!("DemoWellbeing"));
    r.insert("title".into(), json!("Hyvinvointikysely"));
    r.insert("status".into(), json!("active"));
    r.insert("subjectType".into(), json!(["Patient"]));
    r.insert("date".into(), json!(fhir_date(date)));
    r.insert(
        "description".into(),
        json!("Kuukausittainen kysely voinnista, unesta ja liikunnasta."),
    );
    r.insert(
        "code".into(),
        json!([{"system": urls::CS_QUESTIONNAIRE_CODE, "code": "1", "display": "Hyvinvointikysely"}]),
    );
    r.insert(
        "item".into(),
        json!([
            {"linkId": "feeling", "text": "Miten voit asteikolla 1–10?", "type": "integer"},
            {"linkId": "slept-well", "text": "Nukuitko hyvin viime yönä?", "type": "boolean"},
            {"linkId": "exercise-days", "text": "Monena päivänä liikuit viime viikolla?", "type": "integer"},
        ]),
    );
    Value::Object(r)
}

/// The citizen's answers to the wellbeing questionnaire.
pub fn wellbeing_response(
    owner: &Owner<'_>,
    identifier: &str,
    at: OffsetDateTime,
    feeling: i64,
    slept_well: bool,
    exercise_days: i64,
) -> Value {
    let lang = owner.lang;
    let lines = [
        "Hyvinvointikysely".to_string(),
        format!("{feeling}/10"),
        format!("{}: {}", time_label(lang), local_time(at, lang)),
    ];
    let mut r = head(
        "QuestionnaireResponse",
        urls::QUESTIONNAIRE_RESPONSE,
        owner,
        identifier,
        &lines,
    );
    r.insert("questionnaire".into(), json!(QUESTIONNAIRE_URL));
    r.insert("status".into(), json!("completed"));
    r.insert("subject".into(), owner.patient_reference());
    r.insert("authored".into(), json!(fhir_date_time(at)));
    r.insert("source".into(), owner.patient_reference());
    r.insert(
        "item".into(),
        json!([
            {"linkId": "feeling", "answer": [{"valueInteger": feeling}]},
            {"linkId": "slept-well", "answer": [{"valueBoolean": slept_well}]},
            {"linkId": "exercise-days", "answer": [{"valueInteger": exercise_days}]},
        ]),
    );
    Value::Object(r)
}

/// The identifier value (`urn:uuid:...`) of a generated resource.
pub fn identifier_of(resource: &Value) -> Option<&str> {
    match &resource["identifier"] {
        Value::Array(list) => list.first()?["value"].as_str(),
        Value::Object(_) => resource["identifier"]["value"].as_str(),
        _ => None,
    }
}
