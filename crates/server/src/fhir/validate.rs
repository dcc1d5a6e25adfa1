//! `$validate`: `POST [type]/$validate`, `GET [type]/[id]/$validate` and
//! `POST [type]/[id]/$validate`. The answer is an OperationOutcome with every issue found,
//! 200 whether or not the resource is valid.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::FhirError;
use super::request::{Fhir, blocking, json_body, parse_json};
use super::respond;
use crate::AppState;

pub async fn validate_type(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    run(state, req, rtype, None, Some(body)).await
}

pub async fn validate_instance(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    run(state, req, rtype, Some(id), None).await
}

pub async fn validate_instance_body(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    run(state, req, rtype, Some(id), Some(body)).await
}

async fn run(
    state: AppState,
    req: Fhir,
    rtype: String,
    id: Option<String>,
    body: Option<Body>,
) -> Result<Response, FhirError> {
    req.audit.interaction("operation", Some(&rtype));
    let bytes = match body {
        Some(body) => Some(json_body(&state, &req.headers, body).await?),
        None => None,
    };
    let caller = req.caller;
    let params = req.query;
    let issues = blocking(&state, move |fhir| {
        let body = bytes.as_deref().map(parse_json).transpose()?;
        fhir.validate_operation(&caller, &rtype, id.as_deref(), body, &params)
    })
    .await?;
    Ok(respond::outcome_response(
        StatusCode::OK,
        &issues,
        req.format,
    ))
}
