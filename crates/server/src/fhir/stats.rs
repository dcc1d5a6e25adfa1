//! `Observation/$stats`: `GET` with the parameters in the URL, `POST` with a Parameters
//! resource (a `period` as `valuePeriod`). The answer is a Parameters resource with one
//! `statistic` Observation per code, unit (and interval). The service decides everything:
//! see `phr_service::stats`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use phr_service::Error;

use super::error::FhirError;
use super::request::{Fhir, blocking, json_body, parse_json};
use super::respond;
use crate::AppState;

pub async fn stats_get(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
) -> Result<Response, FhirError> {
    run(state, rtype, req, None).await
}

pub async fn stats_post(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    run(state, rtype, req, Some(body)).await
}

async fn run(
    state: AppState,
    rtype: String,
    req: Fhir,
    body: Option<Body>,
) -> Result<Response, FhirError> {
    req.audit.interaction("operation", Some(&rtype));
    if rtype != "Observation" {
        return Err(Error::not_found(format!(
            "$stats is defined on Observation only, not on {rtype}"
        ))
        .into());
    }
    let bytes = match body {
        Some(body) => Some(json_body(&state, &req.headers, body).await?),
        None => None,
    };
    // The citizen named, in their access log also when the request is refused.
    if let Some((_, subject)) = req.query.iter().find(|(name, _)| name == "subject") {
        let id = subject.strip_prefix("Patient/").unwrap_or(subject);
        if !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            req.audit.subject(Some(id.to_owned()));
        }
    }
    let caller = req.caller;
    let mut params = req.query;
    let answer = blocking(&state, move |fhir| {
        if let Some(bytes) = bytes {
            params.extend(phr_service::stats::body_parameters(&parse_json(&bytes)?)?);
        }
        fhir.stats_operation(&caller, &params)
    })
    .await?;
    req.audit.subject(Some(answer.patient));
    Ok(respond::json_response(
        StatusCode::OK,
        req.format.encode(&answer.parameters),
        req.format,
    ))
}
