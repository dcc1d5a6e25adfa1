//! `create`, `update` and `delete`: `POST [type]` (with `If-None-Exist`), `PUT [type]/[id]`
//! (with `If-Match`) and `DELETE [type]/[id]`, answering as `Prefer: return=` asks.

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phr_fhir::IssueType;
use phr_service::{Caller, Error, FhirService, Written};
use serde_json::Value;

use super::BASE_PATH;
use super::error::{FhirError, written_status};
use super::request::{Fhir, blocking, json_body, parse_json};
use super::respond::{self, Return, VersionHeaders};
use crate::AppState;
use crate::audit::AuditSlot;
use crate::traffic::ResourceFacts;

pub async fn create(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    req.audit.interaction("create", Some(&rtype));
    state.fhir.check_type(&rtype)?;
    let bytes = json_body(&state, &req.headers, body).await?;
    let if_none_exist = req
        .headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let caller = req.caller.clone();
    let conditional = if_none_exist.is_some();
    let written = write_body(
        &state,
        &req,
        "create",
        conditional,
        bytes,
        move |fhir, resource| {
            let body_type = phr_service::resource::resource_type_of(&resource)?;
            if body_type != rtype {
                return Err(Error::invalid(format!(
                    "the body is a {body_type}, but was posted to /{rtype}"
                )));
            }
            fhir.create(&caller, resource, if_none_exist.as_deref())
        },
    )
    .await;
    let written = written?;
    touched(&req.audit, &req.caller, &written);
    Ok(written_response(&state, written, &req))
}

pub async fn update(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    req.audit.interaction("update", Some(&rtype));
    state.fhir.check_type(&rtype)?;
    let if_match = respond::if_match(&req.headers)?;
    let bytes = json_body(&state, &req.headers, body).await?;
    let caller = req.caller.clone();
    let written = write_body(
        &state,
        &req,
        "update",
        false,
        bytes,
        move |fhir, resource| fhir.update(&caller, &rtype, &id, resource, if_match),
    )
    .await;
    let written = written?;
    touched(&req.audit, &req.caller, &written);
    Ok(written_response(&state, written, &req))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    req.audit.interaction("delete", Some(&rtype));
    req.audit.touched(vec![format!("{rtype}/{id}")]);
    let if_match = respond::if_match(&req.headers)?;
    let caller = req.caller;
    blocking(&state, move |fhir| {
        fhir.delete(&caller, &rtype, &id, if_match)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parses the body where the work runs and writes it; in sandbox mode notes the write in
/// the traffic record, from the one parsed body.
async fn write_body(
    state: &AppState,
    req: &Fhir,
    interaction: &'static str,
    conditional: bool,
    bytes: Bytes,
    write: impl FnOnce(&FhirService, Value) -> Result<Written, Error> + Send + 'static,
) -> Result<Written, FhirError> {
    let sandbox = state.auth.config().mode.is_sandbox();
    let body = bytes.clone();
    let (facts, written) = blocking(state, move |fhir| {
        let resource = match parse_json(&bytes) {
            Ok(resource) => resource,
            Err(error) => return Ok((None, Err(error))),
        };
        let facts = sandbox.then(|| ResourceFacts::of(&resource));
        Ok((facts, write(fhir, resource)))
    })
    .await?;
    if sandbox {
        let result = match &written {
            Ok(w) => Ok(written_status(w.change).as_u16()),
            Err(e) => Err(e),
        };
        req.traffic
            .resource(interaction, facts.as_ref(), conditional, result, || {
                parse_json(&body).ok()
            });
    }
    written.map_err(FhirError)
}

/// What a write touched, and whose data it was when the caller does not say.
fn touched(audit: &AuditSlot, caller: &Caller, w: &Written) {
    audit.touched(vec![w.version.reference()]);
    if caller.compartment().is_none()
        && let Ok(resource) = serde_json::from_slice::<Value>(&w.version.body)
    {
        audit.subject(
            phr_catalog::rules::patient_references(&resource)
                .into_iter()
                .next()
                .map(|r| r.id),
        );
    }
}

/// The response to a create or update, honouring `Prefer: return=`.
fn written_response(state: &AppState, w: Written, req: &Fhir) -> Response {
    let status = written_status(w.change);
    let v = &w.version;
    let headers = VersionHeaders {
        version: v.version,
        last_updated: v.last_updated,
        location: Some(format!(
            "{}{BASE_PATH}/{}/{}/_history/{}",
            state.base_url, v.resource_type, v.id, v.version
        )),
    };
    let mut response = match req.prefer.return_ {
        Return::Minimal => status.into_response(),
        Return::Representation => respond::resource_response(status, &v.body, req.format),
        Return::OperationOutcome => respond::outcome_response(
            status,
            &[phr_fhir::Issue::information(
                IssueType::Informational,
                format!(
                    "{}/{} stored as version {}",
                    v.resource_type, v.id, v.version
                ),
            )],
            req.format,
        ),
    };
    headers.apply(response.headers_mut());
    response
}
