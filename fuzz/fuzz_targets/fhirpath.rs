//! FHIRPath as definitions bring it: any expression text compiled and evaluated by the
//! adapter the validator and search use (on a resource, as a boolean, at a node with
//! `%resource`/`%rootResource`), and as the invariant of a profile loaded like a package's
//! StructureDefinition (snapshot generated from the differential, then a resource validated
//! against it, which runs the validator's own existence-logic evaluator or the engine).

#![no_main]

use std::cell::RefCell;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use phr_fhir::fhirpath::{CompiledPath, PathInput};
use phr_fhir::{Definitions, Validator};
use phr_fuzz::seeds;
use serde_json::json;

const PROFILE: &str = "http://fuzz.example/StructureDefinition/invariant";

thread_local! {
    // One registry, the fuzzed profile replaced in it on every input (a definition with a
    // url already known replaces it): cloning the registry per input would dominate.
    static DEFINITIONS: RefCell<Option<Definitions>> =
        RefCell::new(Some((*Definitions::r4()).clone()));
}

fn profile(expression: &str, element: &str) -> serde_json::Value {
    json!({
        "resourceType": "StructureDefinition",
        "url": PROFILE,
        "name": "FuzzInvariant",
        "status": "draft",
        "kind": "resource",
        "abstract": false,
        "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "derivation": "constraint",
        "differential": {"element": [
            {"id": element, "path": element, "constraint": [{
                "key": "fuzz-1", "severity": "error", "human": "fuzzed invariant",
                "expression": expression
            }]}
        ]}
    })
}

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    // libFuzzer's panic hook aborts on any panic. A panic while the third-party engine runs
    // (in it or in a crate it calls, such as rust_decimal) is caught by the adapter
    // (`phr_fhir::fhirpath`, tested there) and becomes an error: let those unwind to it; any
    // other panic is a finding.
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !phr_fhir::fhirpath::engine_running() {
            abort(info);
        }
    }));
    DEFINITIONS.with(|_| {});
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let expression = String::from_utf8_lossy(rest);
    let resources = seeds::resources();
    let resource = &resources[usize::from(mode) % resources.len()];

    if let Ok(path) = CompiledPath::compile(&expression) {
        let _ = path.evaluate(resource);
        let _ = path.evaluate_bool(resource);
        let _ = path.uses_resource();
        let node = resource.get("subject").unwrap_or(resource);
        let _ = path.evaluate_input(&PathInput::at(node, resource, resource));
        let _ = path.evaluate_bool_input(&PathInput::node(node));
    }

    if mode & 0x80 != 0 {
        let element = match (mode >> 4) & 3 {
            0 => "Observation",
            1 => "Observation.code",
            2 => "Observation.valueQuantity",
            _ => "Observation.component",
        };
        DEFINITIONS.with(|cell| {
            let Some(mut defs) = cell.borrow_mut().take() else {
                return;
            };
            let loaded = defs.add_structure_definition(&profile(&expression, element));
            let defs = Arc::new(defs);
            if loaded.is_ok() {
                let validator = Validator::new(defs.clone());
                for r in &resources {
                    let _ = validator.validate(r, &[PROFILE]);
                }
            }
            *cell.borrow_mut() = Some(Arc::try_unwrap(defs).unwrap_or_else(|shared| (*shared).clone()));
        });
    }
});
