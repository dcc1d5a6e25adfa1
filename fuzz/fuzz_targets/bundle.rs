//! A batch or transaction Bundle as a client posts it to the base: the JSON reader, then
//! Bundle reading, planning and processing in the application core (every entry through the
//! write pipeline) as each kind of caller, on a store that keeps nothing. Half of the inputs
//! are raw text; the other half are a valid batch or transaction with structural mutations.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use phr_fuzz::{caller, check_answer, json_value, mutate, seeds, service};
use serde_json::Value;

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    phr_fuzz::service();
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bundle = if mode & 1 == 0 {
        match phr_fhir::json::parse(rest) {
            Ok(value) => value,
            Err(_) => return,
        }
    } else {
        let mut u = Unstructured::new(rest);
        let kind = if mode & 2 == 0 { "batch" } else { "transaction" };
        let mut value = seeds::bundle(kind);
        // Sometimes entries of any shape at the end.
        if let (Ok(true), Some(Value::Array(entries))) =
            (u.ratio(1, 4), value.get_mut("entry"))
        {
            if let Ok(extra) = json_value(&mut u, 4) {
                entries.push(extra);
            }
        }
        if mutate(&mut u, &mut value, 8).is_err() {
            return;
        }
        value
    };
    let fhir = service();
    let answer = fhir.process_bundle(&caller(mode >> 2), bundle);
    check_answer(&answer);
    if let Ok(response) = &answer {
        for entry in &response.entries {
            if let Err(e) = entry.result() {
                assert!(
                    !matches!(
                        e.kind(),
                        phr_service::ErrorKind::Internal | phr_service::ErrorKind::Unavailable
                    ),
                    "a Bundle entry gave a server failure: {e}"
                );
            }
        }
        let _ = response.touched();
    }
});
