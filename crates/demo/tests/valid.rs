//! Every kind of generated resource passes the server's own write pipeline (Kanta data rules,
//! base R4 and Finnish PHR profile validation, index extraction) without an error or warning
//! about the data, and lands in its citizen's compartment.

use phr_demo::people::{CITIZENS, DEMO_APP};
use phr_demo::resources::wellbeing_questionnaire;
use phr_demo::{Period, Timeline};
use phr_service::{App, Caller, PatientDirectory, Pipeline};
use serde_json::Value;
use std::collections::BTreeMap;

fn caller(app: &phr_demo::DemoApp) -> Caller {
    Caller::Operator {
        app: Some(App {
            id: app.id.to_string(),
            name: app.name.to_string(),
        }),
    }
}

/// Every citizen's Patient exists (the loader stores them first).
struct AllPatients;

impl PatientDirectory for AllPatients {
    fn exists(&mut self, _: &str) -> phr_service::Result<bool> {
        Ok(true)
    }
}

fn kind_of(resource: &Value) -> String {
    format!(
        "{} {}",
        resource["resourceType"].as_str().unwrap_or(""),
        resource["meta"]["profile"][0].as_str().unwrap_or("")
    )
}

#[test]
fn every_generated_resource_passes_the_write_pipeline() {
    let pipeline = Pipeline::new();
    // 40 days reach the care plan (day 20) and a month's first day (questionnaire answers).
    let period = Period::ending(time::macros::date!(2026 - 03 - 10), 40);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, citizen) in CITIZENS.iter().enumerate() {
        let patient = format!("00000000-0000-4000-8000-00000000000{i}");
        let timeline = Timeline::new(
            7,
            &format!("citizen-{i}"),
            citizen.persona,
            citizen.lang,
            &patient,
            period,
        );
        for (n, generated) in timeline.enumerate() {
            let kind = kind_of(&generated.resource);
            let count = seen.entry(kind.clone()).or_default();
            *count += 1;
            // Validate every resource of the rarer kinds, and a sample of the CGM stream.
            if *count > 50 && n % 97 != 0 {
                continue;
            }
            let prepared = pipeline
                .prepare(
                    &caller(generated.app),
                    generated.resource.clone(),
                    "x1",
                    1,
                    0,
                    &mut AllPatients,
                )
                .unwrap_or_else(|e| {
                    panic!("{kind} rejected: {:#?}\n{}", e.issues(), generated.resource)
                });
            assert_eq!(
                prepared.patient.as_deref(),
                Some(patient.as_str()),
                "{kind}"
            );
            assert!(!prepared.index.is_empty());
        }
    }
    let questionnaire = wellbeing_questionnaire(
        &DEMO_APP,
        "3f0e5c1e-8d6b-4a51-9a43-1f2b3c4d5e6f",
        time::macros::date!(2026 - 01 - 01),
    );
    pipeline
        .prepare(
            &caller(&DEMO_APP),
            questionnaire,
            "q1",
            1,
            0,
            &mut AllPatients,
        )
        .unwrap_or_else(|e| panic!("Questionnaire rejected: {:#?}", e.issues()));
    for expected in [
        "fiphr-sd-bloodglucose",
        "fiphr-sd-insulindosing-r4",
        "fiphr-sd-bloodpressure",
        "fiphr-sd-bodyweight",
        "fiphr-sd-stepstaken",
        "fiphr-sd-exercisetracking",
        "fiphr-sd-calorieintake",
        "fiphr-sd-macronutrientintake",
        "fiphr-sd-selfcareplan-r4",
        "fiphr-sd-questionnaireresponse",
    ] {
        assert!(
            seen.keys().any(|k| k.contains(expected)),
            "no {expected} generated: {seen:?}"
        );
    }
}

#[test]
fn same_seed_gives_identical_data_and_another_seed_does_not() {
    let period = Period::ending(time::macros::date!(2026 - 03 - 10), 3);
    let c = CITIZENS[0];
    let run = |seed| -> Vec<Value> {
        Timeline::new(seed, "citizen-0", c.persona, c.lang, "p1", period)
            .map(|g| g.resource)
            .collect()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn a_diabetic_year_has_cgm_every_five_minutes_and_insulin() {
    let period = Period::ending(time::macros::date!(2026 - 03 - 10), 365);
    let c = CITIZENS[0];
    let mut glucose = 0;
    let mut insulin = 0;
    let mut last = None;
    for g in Timeline::new(1, "citizen-0", c.persona, c.lang, "p1", period) {
        if let Some(prev) = last {
            assert!(
                g.at >= prev,
                "time order: {prev} then {} {}",
                g.at,
                g.resource["code"]
            );
        }
        last = Some(g.at);
        match g.resource["resourceType"].as_str() {
            Some("MedicationAdministration") => insulin += 1,
            _ if g.resource["code"]["coding"][0]["code"] == "14745-4" => glucose += 1,
            _ => {}
        }
    }
    // 288 a day, less sensor changes and dropped readings.
    assert!((95_000..=105_120).contains(&glucose), "{glucose}");
    assert!((365 * 4..=365 * 6).contains(&insulin), "{insulin}");
}
