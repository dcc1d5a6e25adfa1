//! `read` and `vread`: `GET [type]/[id]` (with `If-None-Match`) and
//! `GET [type]/[id]/_history/[vid]`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_store::StoredResource;

use super::error::FhirError;
use super::request::{Fhir, blocking};
use super::respond::{self, Format, VersionHeaders};
use crate::AppState;
use crate::audit::AuditSlot;

pub async fn read(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    req.audit.interaction("read", Some(&rtype));
    let caller = req.caller;
    // Answered on this worker when no wait is needed: the hop to a blocking thread and back
    // costs more than the read by id itself.
    let (stored, shown) = match state.fhir.read_shown_now(&caller, &rtype, &id) {
        Some(read) => read.map_err(FhirError)?,
        None => blocking(&state, move |fhir| fhir.read_shown(&caller, &rtype, &id)).await?,
    };
    touched(&req.audit, &stored);
    req.audit.shown(shown);
    if let Some(tag) = req.headers.get(header::IF_NONE_MATCH)
        && tag.as_bytes() == respond::etag(stored.version).as_bytes()
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(stored_response(&stored, req.format))
}

pub async fn vread(
    State(state): State<AppState>,
    Path((rtype, id, vid)): Path<(String, String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    req.audit.interaction("vread", Some(&rtype));
    let caller = req.caller;
    let (stored, shown) = blocking(&state, move |fhir| {
        fhir.vread_shown(&caller, &rtype, &id, &vid)
    })
    .await?;
    touched(&req.audit, &stored);
    req.audit.shown(shown);
    Ok(stored_response(&stored, req.format))
}

fn touched(audit: &AuditSlot, stored: &StoredResource) {
    audit.subject(stored.patient.clone());
    audit.touched(vec![format!("{}/{}", stored.resource_type, stored.id)]);
}

fn stored_response(stored: &StoredResource, format: Format) -> Response {
    let mut response = respond::resource_response(StatusCode::OK, &stored.body, format);
    VersionHeaders {
        version: stored.version,
        last_updated: stored.last_updated,
        location: None,
    }
    .apply(response.headers_mut());
    response
}
