//! Batch and transaction Bundles posted to the base (`POST /fhir/r4`), and the response
//! Bundle: the service answers each entry with a typed outcome, and this module writes it,
//! each entry's `response.status` from the one status mapping.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use phr_service::bundle::Success;
use phr_service::time::to_instant;
use phr_service::{BundleResponse, EntryOutcome, Error, Version};
use serde_json::{Value, json};

use super::error::{FhirError, status_line, status_of, success_status};
use super::request::{Fhir, bulk, json_body, parse_json};
use super::respond::{self, Return};
use crate::AppState;
use crate::traffic::{ResourceFacts, TrafficSlot};

pub async fn transaction_or_batch(
    State(state): State<AppState>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    req.audit.interaction("batch", None);
    let bytes = json_body(&state, &req.headers, body).await?;
    let sandbox = state.auth.config().mode.is_sandbox();
    let caller = req.caller.clone();
    let audit = req.audit.clone();
    let traffic = req.traffic.clone();
    let return_ = req.prefer.return_;
    // Everything from parsing to the answer's bytes runs on the bulk lane: each of a
    // Bundle's steps is done per entry, and on an async worker it would hold up the reads
    // and searches waiting there.
    let body = bulk(&state, move |fhir| {
        let bundle = parse_json(&bytes)?;
        if bundle.get("type").and_then(Value::as_str) == Some("transaction") {
            audit.interaction("transaction", None);
        }
        let notes = sandbox.then(|| entry_notes(&bundle));
        if let Some(notes) = &notes {
            traffic.note("entries", json!(notes.len()));
        }
        let response = fhir.process_bundle(&caller, bundle)?;
        if let Some(notes) = &notes {
            note_entries(&traffic, notes, &bytes, &response);
        }
        audit.touched(response.touched());
        to_json(&response, &fhir.settings.base_url, return_)
    })
    .await?;
    Ok(respond::resource_response(
        StatusCode::OK,
        &body,
        req.format,
    ))
}

/// What the traffic record needs of one entry, read before the Bundle is processed.
struct EntryNote {
    /// `create` or `update`; `None` for entries that write nothing.
    interaction: Option<&'static str>,
    conditional: bool,
    facts: Option<ResourceFacts>,
}

fn entry_notes(bundle: &Value) -> Vec<EntryNote> {
    let entries = bundle.get("entry").and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .map(|entry| {
            let interaction = match entry.pointer("/request/method").and_then(Value::as_str) {
                Some("POST") => Some("create"),
                Some("PUT") => Some("update"),
                _ => None,
            };
            EntryNote {
                interaction,
                conditional: entry
                    .pointer("/request/ifNoneExist")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty()),
                facts: interaction
                    .and(entry.get("resource"))
                    .map(ResourceFacts::of),
            }
        })
        .collect()
}

/// Notes every written entry of a processed Bundle in the sandbox traffic record. A refused
/// entry's body is read again from the request only when its digest is wanted.
fn note_entries(
    traffic: &TrafficSlot,
    notes: &[EntryNote],
    body: &[u8],
    response: &BundleResponse,
) {
    let mut bundle = None;
    for (i, (note, outcome)) in notes.iter().zip(&response.entries).enumerate() {
        let Some(interaction) = note.interaction else {
            continue;
        };
        let result = match outcome.result() {
            Ok(success) => Ok(success_status(success).as_u16()),
            Err(error) => Err(error),
        };
        traffic.resource(
            interaction,
            note.facts.as_ref(),
            note.conditional,
            result,
            || {
                let bundle = bundle.get_or_insert_with(|| parse_json(body).ok());
                bundle
                    .as_ref()?
                    .pointer(&format!("/entry/{i}/resource"))
                    .cloned()
            },
        );
    }
}

/// The `batch-response` or `transaction-response` Bundle. Resource bodies are copied in as
/// stored: a 300-entry answer costs no JSON parsing.
pub fn to_json(
    response: &BundleResponse,
    base_url: &str,
    return_: Return,
) -> Result<Vec<u8>, Error> {
    let size: usize = response
        .entries
        .iter()
        .map(|e| e.version().map_or(0, |v| v.body.len()) + 256)
        .sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":""#);
    out.extend_from_slice(response.kind.response_type().as_bytes());
    out.push(b'"');
    for (i, entry) in response.entries.iter().enumerate() {
        // FHIR JSON has no empty arrays: an empty Bundle's answer has no `entry`.
        let separator: &[u8] = if i == 0 { br#","entry":["# } else { b"," };
        out.extend_from_slice(separator);
        out.push(b'{');
        if let Some(v) = entry.version() {
            out.extend_from_slice(br#""fullUrl":"#);
            write_json(
                &mut out,
                &format!("{base_url}/{}/{}", v.resource_type, v.id),
            )?;
            out.push(b',');
            if return_ == Return::Representation {
                out.extend_from_slice(br#""resource":"#);
                out.extend_from_slice(&v.body);
                out.push(b',');
            }
        }
        out.extend_from_slice(br#""response":"#);
        write_json(&mut out, &entry_response(entry))?;
        out.push(b'}');
    }
    if !response.entries.is_empty() {
        out.push(b']');
    }
    out.push(b'}');
    Ok(out)
}

/// `Bundle.entry.response` of one outcome.
fn entry_response(entry: &EntryOutcome) -> Value {
    match (entry.result(), entry.version()) {
        (Ok(success), Some(v)) => version_response(success, v),
        (Ok(success), None) => json!({"status": status_line(success_status(success))}),
        (Err(error), _) => json!({
            "status": status_line(status_of(error.kind())),
            "outcome": phr_fhir::outcome::operation_outcome(error.issues()),
        }),
    }
}

fn version_response(success: Success, v: &Version) -> Value {
    json!({
        "status": status_line(success_status(success)),
        "location": format!("{}/{}/_history/{}", v.resource_type, v.id, v.version),
        "etag": format!("W/\"{}\"", v.version),
        "lastModified": to_instant(v.last_updated),
    })
}

fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<(), Error> {
    serde_json::to_writer(out, value)
        .map_err(|e| Error::internal(format!("JSON encoding failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_service::BundleKind;

    fn version() -> Version {
        Version {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 2,
            last_updated: 0,
            body: br#"{"resourceType":"Observation","id":"o1"}"#.to_vec(),
        }
    }

    #[test]
    fn each_entry_answers_with_its_status() {
        let response = BundleResponse {
            kind: BundleKind::Batch,
            entries: vec![
                EntryOutcome::Created(version()),
                EntryOutcome::Existing(version()),
                EntryOutcome::Deleted,
                EntryOutcome::Error(Error::unprocessable(vec![phr_fhir::Issue::error(
                    phr_fhir::IssueType::Required,
                    "missing",
                )])),
            ],
        };
        let bytes = to_json(&response, "http://x/fhir/r4", Return::Representation).unwrap();
        let bundle: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(bundle["type"], "batch-response");
        let statuses: Vec<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "201 Created",
                "200 OK",
                "204 No Content",
                "422 Unprocessable Entity"
            ]
        );
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            "http://x/fhir/r4/Observation/o1"
        );
        assert_eq!(bundle["entry"][0]["resource"]["id"], "o1");
        assert_eq!(
            bundle["entry"][0]["response"]["location"],
            "Observation/o1/_history/2"
        );
        assert_eq!(
            bundle["entry"][3]["response"]["outcome"]["issue"][0]["code"],
            "required"
        );
    }

    #[test]
    fn an_empty_bundle_is_answered_without_entries() {
        let response = BundleResponse {
            kind: BundleKind::Batch,
            entries: vec![],
        };
        let bytes = to_json(&response, "http://x/fhir/r4", Return::Representation).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"resourceType":"Bundle","type":"batch-response"}"#
        );
    }

    #[test]
    fn return_minimal_leaves_the_resources_out() {
        let response = BundleResponse {
            kind: BundleKind::Transaction,
            entries: vec![EntryOutcome::Updated(version())],
        };
        let bytes = to_json(&response, "http://x/fhir/r4", Return::Minimal).unwrap();
        let bundle: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(bundle["type"], "transaction-response");
        assert!(bundle["entry"][0].get("resource").is_none());
    }
}
