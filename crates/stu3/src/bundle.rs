//! Bundles at the STU3 endpoint: a posted batch or transaction converted to R4 entry by
//! entry, and the R4 answers (searchset, history, batch-response) rendered in STU3 with their
//! links and full URLs at the STU3 base.
//!
//! A batch entry whose resource cannot be converted is answered alone, with its own
//! OperationOutcome, exactly where it stood; the other entries are processed. A transaction
//! with such an entry fails whole (nothing is written). A stored resource that STU3 cannot
//! express is never dropped from an answer: its entry carries an OperationOutcome that names
//! it and the element that does not fit.

use phr_fhir::{Issue, IssueType};
use serde_json::{Map, Value, json};

use crate::search::{link_to_stu3, request_url_to_r4};
use crate::{ConvertError, to_r4, to_stu3};

/// A posted STU3 Bundle in R4, with the batch entries that could not be converted.
#[derive(Debug)]
pub struct Posted {
    /// The Bundle to process, without the failed entries.
    pub bundle: Value,
    /// The failed entries: their index in the posted Bundle and why.
    pub failed: Vec<(usize, ConvertError)>,
}

/// Converts a posted batch or transaction. A transaction's first failing entry is the error.
pub fn posted_to_r4(bundle: &Value) -> Result<Posted, ConvertError> {
    let transaction = bundle.get("type").and_then(Value::as_str) == Some("transaction");
    let mut out = bundle.clone();
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return Ok(Posted {
            bundle: out,
            failed: vec![],
        });
    };
    let mut kept = Vec::with_capacity(entries.len());
    let mut failed = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry_to_r4(entry, i) {
            Ok(entry) => kept.push(entry),
            Err(e) if transaction => return Err(e),
            Err(e) => failed.push((i, e)),
        }
    }
    if let Some(object) = out.as_object_mut() {
        if kept.is_empty() {
            object.remove("entry");
        } else {
            object.insert("entry".into(), Value::Array(kept));
        }
    }
    Ok(Posted {
        bundle: out,
        failed,
    })
}

fn entry_to_r4(entry: &Value, index: usize) -> Result<Value, ConvertError> {
    let mut entry = entry.clone();
    let Some(object) = entry.as_object_mut() else {
        return Ok(entry);
    };
    if let Some(resource) = object.get("resource") {
        let converted = to_r4(resource).map_err(|e| ConvertError {
            path: format!("Bundle.entry[{index}].resource.{}", strip_type(&e.path)),
            ..e
        })?;
        object.insert("resource".into(), converted);
    }
    if let Some(request) = object.get_mut("request").and_then(Value::as_object_mut) {
        for key in ["url", "ifNoneExist"] {
            if let Some(url) = request.get(key).and_then(Value::as_str) {
                let translated = if key == "url" {
                    request_url_to_r4(url)
                } else {
                    request_url_to_r4(&format!("?{url}"))
                        .trim_start_matches('?')
                        .to_string()
                };
                request.insert(key.into(), Value::String(translated));
            }
        }
    }
    Ok(entry)
}

/// `Observation.status` → `status`: the path inside the resource.
fn strip_type(path: &str) -> &str {
    path.split_once('.').map_or("", |(_, rest)| rest)
}

/// Puts the answers of the failed entries back where they stood in a batch-response.
pub fn answer_failed(response: &mut Value, failed: Vec<(usize, ConvertError)>) {
    if failed.is_empty() {
        return;
    }
    let Some(object) = response.as_object_mut() else {
        return;
    };
    let mut entries = match object.remove("entry") {
        Some(Value::Array(entries)) => entries,
        _ => vec![],
    };
    for (i, error) in failed {
        let answer = json!({"response": {
            "status": "422 Unprocessable Entity",
            "outcome": phr_fhir::outcome::operation_outcome(&[error.to_issue()]),
        }});
        entries.insert(i.min(entries.len()), answer);
    }
    object.insert("entry".into(), Value::Array(entries));
}

/// An R4 Bundle the server answers with (searchset, history, batch-/transaction-response)
/// rendered in STU3: resources converted, `fullUrl`s and links at the STU3 base, `timestamp`
/// (R4 only: it describes the envelope, not data) left out.
pub fn response_to_stu3(bundle: &Value, r4_base: &str, stu3_base: &str) -> Value {
    let Some(src) = bundle.as_object() else {
        return bundle.clone();
    };
    let searchset = src.get("type").and_then(Value::as_str) == Some("searchset");
    let rebase = |url: &str| match url.strip_prefix(r4_base) {
        Some(rest) => link_to_stu3(&format!("{stu3_base}{rest}")),
        None => url.to_string(),
    };
    let mut out = Map::new();
    for (key, value) in src {
        match key.as_str() {
            "timestamp" => {}
            "link" => {
                let links: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|link| {
                        let mut link = link.clone();
                        if let Some(url) = link.get("url").and_then(Value::as_str).map(&rebase)
                            && let Some(object) = link.as_object_mut()
                        {
                            object.insert("url".into(), Value::String(url));
                        }
                        link
                    })
                    .collect();
                out.insert(key.clone(), Value::Array(links));
            }
            "entry" => {
                let entries: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|entry| entry_to_stu3(entry, searchset, &rebase))
                    .collect();
                out.insert(key.clone(), Value::Array(entries));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn entry_to_stu3(entry: &Value, searchset: bool, rebase: &dyn Fn(&str) -> String) -> Value {
    let mut entry = entry.clone();
    let Some(object) = entry.as_object_mut() else {
        return entry;
    };
    if let Some(url) = object.get("fullUrl").and_then(Value::as_str).map(rebase) {
        object.insert("fullUrl".into(), Value::String(url));
    }
    let Some(resource) = object.get("resource") else {
        return entry;
    };
    match to_stu3(resource) {
        Ok(converted) => {
            object.insert("resource".into(), converted);
        }
        Err(error) => {
            let named = format!(
                "{}/{}",
                resource
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                resource.get("id").and_then(Value::as_str).unwrap_or("?")
            );
            let issue = not_shown(&named, &error);
            let outcome = phr_fhir::outcome::operation_outcome(&[issue]);
            object.remove("resource");
            if searchset || !object.contains_key("response") {
                object.insert("resource".into(), outcome);
                object.insert("search".into(), json!({"mode": "outcome"}));
            } else if let Some(response) = object.get_mut("response").and_then(Value::as_object_mut)
            {
                response.insert("outcome".into(), outcome);
            }
        }
    }
    entry
}

/// The issue of a stored resource STU3 cannot show: which resource, which element, where to
/// read it whole.
pub fn not_shown(resource: &str, error: &ConvertError) -> Issue {
    Issue::warning(
        IssueType::NotSupported,
        format!(
            "{resource} is not shown: {error}. Read it at the R4 endpoint (/fhir/r4/{resource})"
        ),
    )
    .at(error.path.clone())
}
