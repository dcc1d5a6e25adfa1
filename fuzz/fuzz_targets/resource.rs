//! A resource as a client sends it: the JSON reader on any bytes, then the validator over the
//! catalogue's definitions (base R4 and the declared Kanta profiles) and the whole write path
//! (create, conditional create, update) as each kind of caller, on a store that keeps
//! nothing. Half of the inputs are raw text; the other half are valid Kanta resources with
//! structural mutations (wrong JSON types, edge numbers, odd strings, unknown properties).

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use phr_fuzz::{caller, check_answer, mutate, seeds, service};
use serde_json::Value;

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    phr_fuzz::service();
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let resource = if mode & 1 == 0 {
        // The reader accepts exactly the JSON texts without a repeated property name.
        let duplicates = phr_fuzz::has_duplicate_names(rest);
        match phr_fhir::json::parse(rest) {
            Ok(value) => {
                assert_eq!(duplicates, Some(false), "accepted JSON with a repeated name");
                value
            }
            Err(e) => {
                assert_ne!(duplicates, Some(false), "refused good JSON: {}", e.message);
                let _ = e.to_issue();
                return;
            }
        }
    } else {
        let mut u = Unstructured::new(rest);
        let seeds = seeds::resources();
        let Ok(seed) = u.choose(&seeds) else { return };
        let mut value = seed.clone();
        if mutate(&mut u, &mut value, 6).is_err() {
            return;
        }
        // What serde_json writes, the reader reads back unchanged.
        let text = serde_json::to_vec(&value).unwrap_or_default();
        let back = phr_fhir::json::parse(&text).map_err(|e| e.message);
        assert_eq!(back.as_ref(), Ok(&value), "written JSON does not read back");
        value
    };
    let fhir = service();
    let profiles = phr_fhir::declared_profiles(&resource);
    let issues = fhir.pipeline.validator().validate(&resource, &profiles);
    let _ = phr_fhir::outcome::operation_outcome(&issues);

    let who = caller(mode >> 1);
    match (mode >> 3) % 3 {
        0 => check_answer(&fhir.create(&who, resource, None)),
        1 => check_answer(&fhir.create(
            &who,
            resource,
            Some("identifier=urn:ietf:rfc:3986|urn:uuid:0d3b8c1e-5b7a-4f7e-9a51-6a1f0e2c3d41"),
        )),
        _ => {
            let resource_type = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("Observation")
                .to_owned();
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("fuzz-id")
                .to_owned();
            check_answer(&fhir.update(&who, &resource_type, &id, resource, None));
        }
    }
});
