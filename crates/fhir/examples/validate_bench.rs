//! Validation benchmark: base R4 + official Kanta profile validation of the entries of
//! `../shared/kanta/examples/diabetes-data-bundle-kantaphr-r4-en.json` (fixed input).
//!
//!     cargo run -p phr-fhir --release --example validate_bench [-- ROUNDS]
//!
//! Prints µs per resource and resources per second for one thread, for Observations only
//! and for every entry, each with base only and with base + declared profiles; then the
//! time to validate each example batch Bundle whole (the Bundle rules, then every entry).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use phr_fhir::{Definitions, Validator, declared_profiles};
use serde_json::Value;

fn shared() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    Box::leak(here.join("../../../shared/kanta").into_boxed_path())
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let start = Instant::now();
    let r4 = Definitions::r4();
    let r4_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    let mut defs = (*r4).clone();
    defs.load_dir(shared().join("conformance"))
        .expect("Kanta conformance folder loads");
    let kanta_ms = start.elapsed().as_secs_f64() * 1e3;
    let validator = Validator::new(Arc::new(defs));
    let text = std::fs::read(shared().join("examples/diabetes-data-bundle-kantaphr-r4-en.json"))
        .expect("diabetes bundle is readable");
    let bundle: Value = serde_json::from_slice(&text).expect("bundle is JSON");
    let entries: Vec<&Value> = bundle["entry"]
        .as_array()
        .expect("bundle has entries")
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let observations: Vec<&Value> = entries
        .iter()
        .copied()
        .filter(|r| r["resourceType"] == "Observation")
        .collect();
    println!(
        "definitions: R4 {r4_ms:.0} ms, + Kanta package {kanta_ms:.0} ms; {} entries ({} Observations), {rounds} rounds",
        entries.len(),
        observations.len()
    );
    for (label, set) in [("Observation", &observations), ("all entries", &entries)] {
        for with_profiles in [false, true] {
            let mut issues = 0usize;
            // Warm up: compile invariants, expand value sets.
            for r in set.iter() {
                let profiles = if with_profiles {
                    declared_profiles(r)
                } else {
                    Vec::new()
                };
                issues += validator.validate(r, &profiles).len();
            }
            let start = Instant::now();
            for _ in 0..rounds {
                for r in set.iter() {
                    let profiles = if with_profiles {
                        declared_profiles(r)
                    } else {
                        Vec::new()
                    };
                    std::hint::black_box(validator.validate(r, &profiles));
                }
            }
            let n = (rounds * set.len()) as f64;
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{label:12} {:22} {:8.1} µs/resource {:9.0} resources/s (1 thread; {issues} issues in one pass)",
                if with_profiles {
                    "base + Kanta profile"
                } else {
                    "base R4 only"
                },
                secs * 1e6 / n,
                n / secs
            );
        }
    }
    for name in [
        "diabetes-data-bundle-kantaphr-r4-en.json",
        "diabetes-data-bundle.json",
    ] {
        let text = std::fs::read(shared().join("examples").join(name)).expect("bundle is readable");
        let bundle: Value = serde_json::from_slice(&text).expect("bundle is JSON");
        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
        let issues = validator.validate(&bundle, &[]).len();
        let whole_rounds = rounds.div_ceil(10);
        let start = Instant::now();
        for _ in 0..whole_rounds {
            std::hint::black_box(validator.validate(&bundle, &[]));
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / whole_rounds as f64;
        println!("whole Bundle {name} ({entries} entries): {ms:.1} ms ({issues} issues)");
    }
}
