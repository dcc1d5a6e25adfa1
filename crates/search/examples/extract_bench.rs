//! Extraction and parsing throughput on fixed inputs (Kanta examples, fixed queries).
//!
//! ```text
//! cargo run --release -p phr-search --example extract_bench
//! ```
//!
//! Prints one `name value unit` line per measurement (best of 5 rounds, CPU µs per item, so
//! other load on the machine does not inflate it). An argument `extract` or `parse` runs
//! only that half (for profiling).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use phr_search::{ParseOptions, Registry};
use serde_json::Value;

fn load(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/kanta")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("example is JSON")
}

/// This thread's CPU time in ns (`/proc/thread-self/schedstat`), so the figures hold on a
/// machine busy with other work; `None` where the file does not exist.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Best-of-5 mean time per call of `f` over `iterations` calls, in µs: CPU time when the
/// platform reports it, wall time otherwise.
fn measure(iterations: usize, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let (cpu, wall) = (cpu_ns(), Instant::now());
            for _ in 0..iterations {
                f();
            }
            match (cpu, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e3 / iterations as f64,
                _ => wall.elapsed().as_secs_f64() * 1e6 / iterations as f64,
            }
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let only = std::env::args().nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let start = Instant::now();
    let registry = Registry::global();
    println!(
        "registry_build {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let bundle = load("examples/diabetes-data-bundle-kantaphr-r4-en.json");
    let resources: Vec<Value> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    let glucose = resources
        .iter()
        .find(|r| r["resourceType"] == "Observation")
        .expect("a glucose Observation")
        .clone();
    let insulin = resources
        .iter()
        .find(|r| r["resourceType"] == "MedicationAdministration")
        .expect("an insulin MedicationAdministration")
        .clone();
    let singles = [
        ("extract_observation_glucose", glucose),
        (
            "extract_observation_bloodpressure",
            load("examples/Observation-example-Bloodpressure-min.json"),
        ),
        (
            "extract_observation_bodyweight_max",
            load("examples/Observation-example-BodyWeight-max.json"),
        ),
        ("extract_medicationadministration_insulin", insulin),
        ("extract_patient", load("examples/example-patient.json")),
    ];
    if run("extract") {
        extraction(registry, &singles, &resources);
    }
    if run("parse") {
        parsing(registry);
    }
}

fn extraction(registry: &Registry, singles: &[(&str, Value)], resources: &[Value]) {
    for (name, resource) in singles {
        let entries = registry.extract(resource).expect("extracts").len();
        let us = measure(20_000, || {
            black_box(registry.extract(black_box(resource)).ok());
        });
        println!("{name} {us:.2} us/resource ({entries} entries)");
    }
    let us = measure(50, || {
        for r in resources {
            black_box(registry.extract(black_box(r)).ok());
        }
    }) / resources.len() as f64;
    println!("extract_kanta_bundle_300 {us:.2} us/resource");
}

fn parsing(registry: &Registry) {
    let queries: Vec<(&str, &str)> = vec![
        (
            "Observation",
            "patient=77c2c8d2-11ce-41d5-8150-75489f8b0b0a&code=14745-4&date=ge2021-09-04&date=lt2021-09-05&_sort=date&_count=100",
        ),
        (
            "Observation",
            "patient=77c2c8d2-11ce-41d5-8150-75489f8b0b0a&_summary=count",
        ),
        (
            "Observation",
            "patient=p1&code=http://loinc.org|85354-9&component-code-value-quantity=8480-6$gt140&_total=accurate",
        ),
        (
            "Observation",
            "patient=p1&value-quantity=gt10|http://unitsofmeasure.org|mmol/L&_include=Observation:subject",
        ),
        (
            "MedicationAdministration",
            "patient=p1&code=ins-short-fast&effective-time=ge2021-09-01T00:00:00+03:00&_sort=-effective-time",
        ),
        (
            "Patient",
            "_has:Observation:patient:code=14745-4&_revinclude=Observation:subject",
        ),
        (
            "Observation",
            "patient=p1&subject:Patient.identifier=urn:ietf:rfc:3986|urn:uuid:1&_elements=code,valueQuantity",
        ),
    ];
    let parsed: Vec<(String, Vec<(String, String)>)> = queries
        .iter()
        .map(|(rt, q)| {
            let pairs = q
                .split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("name=value");
                    (k.to_string(), v.to_string())
                })
                .collect();
            (rt.to_string(), pairs)
        })
        .collect();
    let options = ParseOptions::default();
    for (rt, pairs) in &parsed {
        registry
            .parse_search(rt, pairs, &options)
            .unwrap_or_else(|issues| panic!("{rt}: {issues:?}"));
    }
    let us = measure(20_000, || {
        for (rt, pairs) in &parsed {
            black_box(registry.parse_search(rt, black_box(pairs), &options).ok());
        }
    }) / parsed.len() as f64;
    println!(
        "parse_mixed_queries {us:.2} us/query ({} queries)",
        parsed.len()
    );
    let (rt, timeline) = &parsed[0];
    let us = measure(50_000, || {
        black_box(
            registry
                .parse_search(rt, black_box(timeline), &options)
                .ok(),
        );
    });
    println!("parse_timeline_query {us:.2} us/query");
}
