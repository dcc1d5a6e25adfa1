//! Search: `GET [type]?…` and `POST [type]/_search` (form-encoded parameters, with or without
//! more in the URL), and the citizen's access log as `AuditEvent?patient=…`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use phr_fhir::IssueType;
use phr_service::search::search_criteria;
use phr_service::{Error, ErrorKind};

use super::error::FhirError;
use super::request::{Fhir, blocking, read_body};
use super::respond;
use crate::AppState;

pub async fn search_get(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
) -> Result<Response, FhirError> {
    let params = req.query.clone();
    search(state, rtype, req, params).await
}

/// `POST [type]/_search`: parameters in a form-encoded body, and/or in the URL.
pub async fn search_post(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            IssueType::NotSupported,
            "POST _search takes application/x-www-form-urlencoded parameters",
        )
        .into());
    }
    let bytes = read_body(&state, body, "the search form").await?;
    let mut params = req.query.clone();
    params.extend(url::form_urlencoded::parse(&bytes).into_owned());
    search(state, rtype, req, params).await
}

async fn search(
    state: AppState,
    rtype: String,
    req: Fhir,
    params: Vec<(String, String)>,
) -> Result<Response, FhirError> {
    req.audit.interaction("search-type", Some(&rtype));
    req.audit.search_criteria(search_criteria(&params));
    let format = req.format;
    if rtype == "AuditEvent" {
        let auth = state.auth.clone();
        let caller = req.caller;
        let events = blocking(&state, move |fhir| {
            fhir.audit_events(&auth, &caller, &params)
        })
        .await?;
        req.audit.subject(Some(events.patient));
        req.audit.update(|record| record.amount = events.amount);
        return Ok(respond::json_response(
            StatusCode::OK,
            format.encode(&events.bundle),
            format,
        ));
    }
    let strict = req.prefer.strict;
    let caller = req.caller;
    let searched = blocking(&state, move |fhir| {
        fhir.search_request(&caller, &rtype, &params, strict)
    })
    .await?;
    req.audit.subject(searched.patient);
    req.audit.touched(searched.resources);
    Ok(respond::resource_response(
        StatusCode::OK,
        &searched.bundle,
        format,
    ))
}
