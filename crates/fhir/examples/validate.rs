//! Validates FHIR JSON files against base R4 and the profiles each declares in
//! `meta.profile`, optionally with extra definitions from a package folder:
//!
//!     cargo run -p phr-fhir --example validate -- [--package DIR]... FILE...
//!
//! A Bundle file is validated whole: the Bundle rules, then each entry against its type and
//! declared profiles (issues about entries carry `Bundle.entry[n].resource` paths).

use std::sync::Arc;

use phr_fhir::{Definitions, Validator, declared_profiles};
use serde_json::Value;

fn main() {
    let mut defs = (*Definitions::r4()).clone();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--package" {
            let dir = args.next().expect("--package needs a folder");
            let report = defs.load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "loaded {dir}: {} StructureDefinitions, {} ValueSets, {} CodeSystems, rejected {:?}",
                report.structure_definitions.len(),
                report.value_sets.len(),
                report.code_systems.len(),
                report.rejected
            );
        } else {
            files.push(a);
        }
    }
    let validator = Validator::new(Arc::new(defs));
    for file in files {
        let text = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let resource: Value =
            phr_fhir::json::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let issues = validator.validate(&resource, &declared_profiles(&resource));
        let errors = issues.iter().filter(|i| i.is_error()).count();
        println!(
            "{file}: {errors} errors, {} other issues",
            issues.len() - errors
        );
        for i in &issues {
            println!("  {:?} {}", i.severity, i.message);
        }
    }
}
