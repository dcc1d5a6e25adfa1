//! A search as a client sends it: any resource type, parameter lists built from the
//! registry's real parameter names (every type: token, string, date, number, quantity,
//! reference, uri, composite) with modifiers, chains, `_has`, result parameters, prefixes,
//! escapes and any text as values. Parsed by `phr_search::parse` (strict and lenient), then
//! run by the application core as each kind of caller, and its SQL executed by the SQLite
//! engine on a small store.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use phr_fuzz::{PATIENT, caller, check_answer, sqlite_service};
use phr_search::{ParseOptions, Registry};
use phr_service::search::Scope;

const SPECIAL: &[&str] = &[
    "_id",
    "_lastUpdated",
    "_sort",
    "_count",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_has",
    "patient",
    "_format",
    "_page",
    "_cursor",
    "_profile",
    "_tag",
    "_security",
    "_source",
    "_text",
    "_content",
    "_list",
    "_type",
    "_contained",
    "_filter",
    "subject",
    "code",
    "date",
    "value-quantity",
    "component-code-value-quantity",
    "identifier",
];

const MODIFIERS: &[&str] = &[
    "",
    "",
    "",
    ":missing",
    ":exact",
    ":contains",
    ":text",
    ":not",
    ":above",
    ":below",
    ":in",
    ":not-in",
    ":of-type",
    ":identifier",
    ":Patient",
    ":Observation",
    ":iterate",
    ":",
    "::",
    ".identifier",
    ":Patient.identifier",
    ".code",
    ":Observation:patient:code",
    ":Observation:subject:code",
];

const PARTS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "lt",
    "ge",
    "le",
    "sa",
    "eb",
    "ap",
    "xx",
    "2024",
    "2024-05",
    "2024-05-01",
    "2024-05-01T10:00:00+03:00",
    "2024-05-01T10:00:00 03:00",
    "T",
    "Z",
    "-",
    "+",
    "0",
    "-1",
    "1.50",
    "1e308",
    "1e-400",
    "18446744073709551616",
    "|",
    "$",
    ",",
    "\\",
    "\\,",
    "\\|",
    "\\$",
    "http://loinc.org",
    "29463-7",
    "kg",
    "mm[Hg]",
    "http://unitsofmeasure.org",
    "Patient/",
    "7b0c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "http://127.0.0.1:8080/fhir/r4/Patient/7b0c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "true",
    "false",
    "-date",
    "date",
    "code",
    "Observation:subject",
    "Observation:patient:Patient",
    "*",
    "count",
    "accurate",
    "estimate",
    "none",
    "text",
    "data",
    "Observation",
    "urn:uuid:",
    "\u{0}",
    "\u{202e}",
    "e\u{301}",
    " ",
    "%",
    "&",
    "=",
    ":",
    ".",
    "_",
    "Mäkinen",
];

#[derive(Arbitrary, Debug)]
struct Param {
    name: u16,
    modifier: u8,
    parts: Vec<u8>,
    raw_name: Option<String>,
    raw_value: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    resource_type: u16,
    lenient: bool,
    /// Searched as `Patient/[id]/[type]` (the compartment form).
    compartment: bool,
    caller: u8,
    params: Vec<Param>,
}

// Shared state is built before the first input, outside the per-input timeout.
fuzz_target!(init: {
    phr_fuzz::sqlite_service();
    phr_fuzz::service();
}, |data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let registry = Registry::global();
    let types = registry.resource_types();
    let Some(resource_type) = types.get(usize::from(input.resource_type) % types.len().max(1))
    else {
        return;
    };
    let codes: Vec<&str> = registry
        .params(resource_type)
        .iter()
        .map(|p| p.code.as_str())
        .chain(SPECIAL.iter().copied())
        .collect();
    let pairs: Vec<(String, String)> = input
        .params
        .iter()
        .take(12)
        .map(|p| {
            let name = match &p.raw_name {
                Some(raw) => raw.clone(),
                None => {
                    let code = codes[usize::from(p.name) % codes.len()];
                    let modifier = MODIFIERS[usize::from(p.modifier) % MODIFIERS.len()];
                    format!("{code}{modifier}")
                }
            };
            let mut value: String = p
                .parts
                .iter()
                .take(8)
                .map(|b| PARTS[usize::from(*b) % PARTS.len()])
                .collect();
            if let Some(raw) = &p.raw_value {
                value.push_str(raw);
            }
            (name, value)
        })
        .collect();

    for lenient in [input.lenient, !input.lenient] {
        let options = ParseOptions {
            lenient,
            base_url: Some("http://127.0.0.1:8080/fhir/r4".into()),
            ..ParseOptions::default()
        };
        if let Ok(parsed) = phr_search::parse(resource_type, &pairs, &options) {
            let _ = format!("{:?}", parsed.query);
        }
    }
    let fhir = sqlite_service();
    let scope = if input.compartment {
        Scope::compartment(PATIENT, resource_type)
    } else {
        Scope::of_type(resource_type)
    };
    let answer = fhir.search(&caller(input.caller), scope, &pairs, input.lenient);
    if let Err(e) = &answer {
        assert!(
            !matches!(e.kind(), phr_service::ErrorKind::Internal),
            "{resource_type}?{pairs:?}: {e}"
        );
    }
    check_answer(&answer);
});
