//! Throughput of the write path's catalogue part on Kanta's 300-entry diabetes batch (blood
//! glucose, insulin, macronutrients): Kanta's data rules alone, and rules plus validation
//! against the catalogue's profiles. Fixed input, fixed rounds; prints one summary line per
//! measurement.
//!
//!     cargo run -p phr-catalog --release --example rules_bench

use std::time::Instant;

use phr_catalog::{App, Catalog, rules};
use serde_json::Value;

const ROUNDS: usize = 20;

fn main() {
    let started = Instant::now();
    let catalog = Catalog::build().expect("catalogue builds");
    println!(
        "catalogue build: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(catalog);
    let started = Instant::now();
    let validator = Catalog::validator();
    println!(
        "validator (R4 + catalogue) build: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kanta/examples/diabetes-data-bundle-kantaphr-r4-en.json"
    );
    let text = std::fs::read_to_string(path).expect("shared examples");
    let bundle: Value = serde_json::from_str(&text).expect("JSON");
    let resources: Vec<Value> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    let app = App {
        id: "1.2.246.10.12345678.10.1",
        name: "Bench",
    };

    let n = resources.len() * ROUNDS;
    let started = Instant::now();

    let mut errors = 0;
    for _ in 0..ROUNDS {
        for r in &resources {
            let mut r = r.clone();
            rules::apply_creating_application(&mut r, app);
            rules::set_issued(&mut r, "2026-11-23T15:20:01.123Z");
            errors += rules::check(&r).iter().filter(|i| i.is_error()).count();
            errors += rules::patient_references(&r).len() / 100;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rules: {n} resources in {:.3} s = {:.0} resources/s ({errors} errors)",
        secs,
        n as f64 / secs
    );

    let started = Instant::now();
    let mut errors = 0;
    for _ in 0..ROUNDS {
        for r in &resources {
            let mut r = r.clone();
            rules::apply_creating_application(&mut r, app);
            rules::set_issued(&mut r, "2026-11-23T15:20:01.123Z");
            errors += rules::check(&r).iter().filter(|i| i.is_error()).count();
            let profiles = phr_fhir::declared_profiles(&r);
            errors += validator
                .validate(&r, &profiles)
                .iter()
                .filter(|i| i.is_error())
                .count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rules + validation: {n} resources in {:.3} s = {:.0} resources/s ({errors} errors)",
        secs,
        n as f64 / secs
    );

    let started = Instant::now();
    let mut errors = 0;
    for _ in 0..ROUNDS {
        for r in &resources {
            let profiles = phr_fhir::declared_profiles(r);
            errors += validator
                .validate(r, &profiles)
                .iter()
                .filter(|i| i.is_error())
                .count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "validation against the catalogue (as received): {n} resources in {:.3} s = {:.0} resources/s ({errors} errors)",
        secs,
        n as f64 / secs
    );

    // The same validation against Kela's official definitions, for comparison.
    let mut defs = (*phr_fhir::Definitions::r4()).clone();
    defs.load_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kanta/conformance"
    ))
    .expect("official definitions load");
    let official = phr_fhir::Validator::new(std::sync::Arc::new(defs));
    let started = Instant::now();
    let mut errors = 0;
    for _ in 0..ROUNDS {
        for r in &resources {
            let profiles = phr_fhir::declared_profiles(r);
            errors += official
                .validate(r, &profiles)
                .iter()
                .filter(|i| i.is_error())
                .count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "validation against Kela's definitions: {n} resources in {:.3} s = {:.0} resources/s ({errors} errors)",
        secs,
        n as f64 / secs
    );
}
