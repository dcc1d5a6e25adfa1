//! Search: `GET [type]?…` and `POST [type]/_search` (form-encoded parameters, with or without
//! more in the URL), their Patient compartment forms `GET Patient/[id]/[type]?…` and
//! `POST Patient/[id]/[type]/_search`, and the citizen's access log as
//! `AuditEvent?patient=…`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use phr_fhir::IssueType;
use phr_service::professional::{identity_code_searched, without_identity_codes};
use phr_service::search::{COMPARTMENT_TYPE, Scope, search_criteria};
use phr_service::{Error, ErrorKind};

use super::error::FhirError;
use super::request::{Fhir, blocking, read_body};
use super::respond;
use crate::AppState;

/// A professional looking a citizen up by personal identity code: the pseudonymous Patient
/// when consent and a care relationship allow, else an empty searchset whether or not the
/// person uses the service. The identity code goes no further than the citizen lookup.
async fn professional_lookup(
    state: AppState,
    req: Fhir,
    hetu: String,
) -> Result<Response, FhirError> {
    let auth = state.auth.clone();
    let caller = req.caller;
    let format = req.format;
    let searched = blocking(&state, move |fhir| {
        let patient = auth
            .patient_of_identity(&hetu)
            .map_err(|e| Error::internal(e.to_string()))?;
        fhir.professional_patient_search(&caller, patient.as_deref())
    })
    .await?;
    if state.auth.config().mode.is_sandbox()
        && let Some(cursor) = &searched.next_cursor
    {
        req.traffic
            .note("next", serde_json::json!(crate::traffic::digest(&cursor)));
    }
    req.audit.subject(searched.patient);
    req.audit.touched(searched.resources);
    req.audit.shown(searched.shown);
    Ok(respond::resource_response(
        StatusCode::OK,
        &searched.bundle,
        format,
    ))
}

/// The Patient id a search's `patient` parameter names (`id` or `Patient/id`), if it is one.
fn named_patient(params: &[(String, String)]) -> Option<String> {
    let value = params
        .iter()
        .find(|(name, _)| name == "patient")
        .map(|(_, value)| value.as_str())?;
    let id = value.strip_prefix("Patient/").unwrap_or(value);
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| id.to_owned())
}

/// What a search request reads: a type, or a type in one Patient's compartment.
struct Target {
    resource_type: String,
    patient: Option<String>,
}

impl Target {
    fn scope(&self) -> Scope<'_> {
        match &self.patient {
            Some(patient) => Scope::compartment(patient, &self.resource_type),
            None => Scope::of_type(&self.resource_type),
        }
    }
}

pub async fn search_get(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
) -> Result<Response, FhirError> {
    let params = req.query.clone();
    search(state, of_type(rtype), req, params).await
}

/// `POST [type]/_search`: parameters in a form-encoded body, and/or in the URL.
pub async fn search_post(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    let params = form_parameters(&state, &req, body).await?;
    search(state, of_type(rtype), req, params).await
}

/// `GET Patient/[id]/[type]?…`.
pub async fn compartment_get(
    State(state): State<AppState>,
    Path((compartment, id, rtype)): Path<(String, String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    let target = in_compartment(&compartment, id, rtype)?;
    let params = req.query.clone();
    search(state, target, req, params).await
}

/// `POST Patient/[id]/[type]/_search`.
pub async fn compartment_post(
    State(state): State<AppState>,
    Path((compartment, id, rtype)): Path<(String, String, String)>,
    req: Fhir,
    body: Body,
) -> Result<Response, FhirError> {
    let target = in_compartment(&compartment, id, rtype)?;
    let params = form_parameters(&state, &req, body).await?;
    search(state, target, req, params).await
}

fn of_type(resource_type: String) -> Target {
    Target {
        resource_type,
        patient: None,
    }
}

/// Only the Patient compartment is served (`Encounter/[id]/[type]` and the like are not).
fn in_compartment(compartment: &str, id: String, rtype: String) -> Result<Target, Error> {
    if compartment != COMPARTMENT_TYPE {
        return Err(Error::not_found(format!(
            "nothing is served at {compartment}/{id}/{rtype}: compartment search covers the \
             Patient compartment only (Patient/[id]/[type])"
        )));
    }
    Ok(Target {
        resource_type: rtype,
        patient: Some(id),
    })
}

/// The parameters of a `_search` POST: the URL's, then the form body's.
async fn form_parameters(
    state: &AppState,
    req: &Fhir,
    body: Body,
) -> Result<Vec<(String, String)>, Error> {
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
        ));
    }
    let bytes = read_body(state, body, "the search form").await?;
    let mut params = req.query.clone();
    params.extend(url::form_urlencoded::parse(&bytes).into_owned());
    Ok(params)
}

async fn search(
    state: AppState,
    target: Target,
    req: Fhir,
    params: Vec<(String, String)>,
) -> Result<Response, FhirError> {
    req.audit
        .interaction("search-type", Some(&target.resource_type));
    // Whether the search named the citizen (never the value: it may be an identity code).
    req.traffic.note(
        "patient",
        serde_json::json!(
            target.patient.is_some()
                || params.iter().any(|(name, _)| {
                    let name = name.split(':').next().unwrap_or(name);
                    name == "patient" || name == "subject"
                })
        ),
    );
    // How it pages: the page size asked and, as a digest, the cursor of a paging link.
    if let Some(count) = params
        .iter()
        .find(|(name, _)| name == "_count")
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
    {
        req.traffic.note("count", serde_json::json!(count));
    }
    if let Some((_, cursor)) = params
        .iter()
        .find(|(name, _)| name == phr_service::search::PAGE_PARAMETER)
    {
        req.traffic
            .note("page", serde_json::json!(crate::traffic::digest(cursor)));
    }
    // A personal identity code is never recorded, whoever searches with one.
    req.audit
        .search_criteria(search_criteria(&without_identity_codes(&params)));
    let format = req.format;
    if target.resource_type == "Patient"
        && target.patient.is_none()
        && req.caller.professional().is_some()
        && let Some(hetu) = identity_code_searched(&params).map(str::to_owned)
    {
        return professional_lookup(state, req, hetu).await;
    }
    if target.resource_type == "AuditEvent" {
        let auth = state.auth.clone();
        let caller = req.caller;
        let events = blocking(&state, move |fhir| {
            fhir.audit_events(&auth, &caller, target.patient.as_deref(), &params)
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
    if req.caller.professional().is_some() {
        // A professional's search names its citizen: a refused one (no consent, no care
        // relationship) is in that citizen's access log too.
        req.audit
            .subject(target.patient.clone().or_else(|| named_patient(&params)));
    }
    let lenient = req.prefer.lenient;
    let caller = req.caller;
    let searched = blocking(&state, move |fhir| {
        fhir.search_request(&caller, target.scope(), &params, lenient)
    })
    .await?;
    if state.auth.config().mode.is_sandbox()
        && let Some(cursor) = &searched.next_cursor
    {
        req.traffic
            .note("next", serde_json::json!(crate::traffic::digest(&cursor)));
    }
    req.audit.subject(searched.patient);
    req.audit.touched(searched.resources);
    req.audit.shown(searched.shown);
    Ok(respond::resource_response(
        StatusCode::OK,
        &searched.bundle,
        format,
    ))
}
