//! One citizen's data out of storage: every current resource of their compartment (the
//! Patient first), as a `collection` Bundle or as NDJSON per resource type. Shared by
//! `phr export` and the portal's download. Deleted resources are left out.

use std::collections::BTreeMap;

use phr_search::model::{SearchQuery, TotalMode};
use phr_store::{Storage, StoreError, StoredResource};
use serde_json::{Value, json};

/// Resource types kept in a patient compartment in the Finnish PHR.
pub const COMPARTMENT_TYPES: &[&str] = &[
    "Observation",
    "MedicationAdministration",
    "CarePlan",
    "QuestionnaireResponse",
    "Goal",
    "Consent",
];
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Patient/{0} is not in this data folder")]
    NoPatient(String),
    #[error("{0} is stored as invalid JSON")]
    BadJson(String),
}

/// Every current resource of `patient`'s compartment, the Patient first.
pub fn patient_resources(
    storage: &dyn Storage,
    patient: &str,
) -> Result<Vec<StoredResource>, ExportError> {
    let mut out = Vec::new();
    match storage.read("Patient", patient)? {
        Some(p) if !p.deleted => out.push(p),
        _ => return Err(ExportError::NoPatient(patient.to_owned())),
    }
    for resource_type in COMPARTMENT_TYPES {
        out.extend(search_all(storage, resource_type, Some(patient))?);
    }
    Ok(out)
}

/// Every live resource of `resource_type` (in `compartment`, when given), all pages.
pub fn search_all(
    storage: &dyn Storage,
    resource_type: &str,
    compartment: Option<&str>,
) -> Result<Vec<StoredResource>, StoreError> {
    let query = SearchQuery {
        resource_type: resource_type.to_string(),
        compartment: compartment.map(str::to_string),
        count: PAGE,
        total: TotalMode::None,
        ..SearchQuery::default()
    };
    let mut out = Vec::new();
    let mut page = storage.search(&query, None)?;
    loop {
        out.extend(page.matches.drain(..).filter(|r| !r.deleted));
        match page.next.take() {
            Some(cursor) => page = storage.search(&query, Some(&cursor))?,
            None => break,
        }
    }
    Ok(out)
}

/// The JSON of a stored version.
pub fn body(stored: &StoredResource) -> Result<Value, ExportError> {
    serde_json::from_slice(&stored.body)
        .map_err(|_| ExportError::BadJson(format!("{}/{}", stored.resource_type, stored.id)))
}

/// Resources grouped by type, in type order.
pub fn by_type(resources: &[StoredResource]) -> Result<BTreeMap<String, Vec<Value>>, ExportError> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for stored in resources {
        out.entry(stored.resource_type.clone())
            .or_default()
            .push(body(stored)?);
    }
    Ok(out)
}

/// A `collection` Bundle of `by_type`, Patients first so a reader meets each Patient before
/// what refers to it; `base` is the FHIR base URL (for `fullUrl`).
pub fn collection_bundle(mut by_type: BTreeMap<String, Vec<Value>>, base: &str) -> Value {
    let patients_first = by_type.remove("Patient").unwrap_or_default();
    let entries: Vec<Value> = patients_first
        .into_iter()
        .chain(by_type.into_values().flatten())
        .map(|r| {
            let text = |key: &str| r.get(key).and_then(Value::as_str).unwrap_or("");
            let url = format!("{base}/{}/{}", text("resourceType"), text("id"));
            json!({"fullUrl": url, "resource": r})
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": crate::time::to_instant(crate::time::now_micros()),
    });
    // FHIR JSON has no empty arrays.
    if !entries.is_empty()
        && let Some(object) = bundle.as_object_mut()
    {
        object.insert("entry".into(), Value::Array(entries));
    }
    bundle
}

/// NDJSON: one resource per line.
pub fn ndjson(resources: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in resources {
        if serde_json::to_writer(&mut out, r).is_ok() {
            out.push(b'\n');
        }
    }
    out
}
