//! The FHIR R4 REST API under `/fhir/r4`: routes and thin handlers. Each handler parses the
//! HTTP request, calls the blocking [`service::FhirService`] on the blocking pool, and maps
//! the result to a response; the FHIR conventions live in [`respond`].

pub mod access;
pub mod bundle;
pub mod capabilities;
pub mod conformance;
pub mod error;
pub mod operations;
pub mod pipeline;
pub mod respond;
pub mod search;
pub mod service;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use phr_fhir::IssueType;
use phr_store::{HistoryQuery, StoredResource};
use serde_json::Value;

use crate::AppState;
use crate::time::{parse_instant, to_instant};
use access::AuditEntry;
use error::ApiError;
use pipeline::Caller;
use respond::{Format, Prefer, Return, VersionHeaders};
use service::{FhirService, Written};

pub const BASE_PATH: &str = "/fhir/r4";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/", axum::routing::post(transaction_or_batch))
        .route("/{type}", get(search_type).post(create))
        .route("/{type}/_history", get(history_type))
        .route("/{type}/_search", axum::routing::post(search_post))
        .route("/{type}/$validate", axum::routing::post(validate_type))
        .route(
            "/{type}/{id}/$validate",
            get(validate_instance).post(validate_instance_body),
        )
        .route("/{type}/{id}", get(read).put(update).delete(delete))
        .route("/{type}/{id}/_history", get(history_instance))
        .route("/{type}/{id}/_history/{vid}", get(vread))
}

/// The parts of an HTTP request every handler needs.
struct Request {
    headers: HeaderMap,
    query: Vec<(String, String)>,
    format: Format,
}

fn request(headers: HeaderMap, raw_query: Option<String>) -> Result<Request, ApiError> {
    let query = parse_query(raw_query.as_deref().unwrap_or(""));
    let format = respond::negotiate(&headers, &query)?;
    Ok(Request {
        headers,
        query,
        format,
    })
}

pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// Runs `work` for `caller` and writes the request's audit record, whatever the outcome.
/// `describe` fills in what the successful result touched.
async fn audited<T: Send + 'static>(
    state: &AppState,
    caller: Caller,
    mut entry: AuditEntry,
    success: StatusCode,
    work: impl FnOnce(&FhirService, &Caller) -> Result<T, ApiError> + Send + 'static,
    describe: impl FnOnce(&T, &mut AuditEntry),
) -> Result<T, ApiError> {
    let (caller, result) = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&state.fhir, &caller);
            (caller, result)
        })
        .await
        .map_err(|_| ApiError::internal("the request handler stopped unexpectedly"))?
    };
    match &result {
        Ok(value) => {
            describe(value, &mut entry);
            access::audit(state, &caller, entry, success, None);
        }
        Err(error) => access::audit(state, &caller, entry, error.status, Some(error)),
    }
    result
}

/// Reads the body within the configured size limit, as JSON.
async fn json_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    respond::require_json_body(headers)?;
    let limit = state.config.max_body_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooLong,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    })?;
    parse_json(&bytes)
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn with_format<T>(result: Result<T, ApiError>, format: Format) -> Result<T, ApiError> {
    result.map_err(|e| e.formatted(format))
}

fn location(state: &AppState, w: &Written) -> String {
    format!(
        "{}{BASE_PATH}/{}/{}/_history/{}",
        state.base_url, w.resource_type, w.id, w.version
    )
}

/// The response to a create or update, honouring `Prefer: return=`.
fn written_response(state: &AppState, w: Written, prefer: Prefer, format: Format) -> Response {
    let headers = VersionHeaders {
        version: w.version,
        last_updated: w.last_updated,
        location: (w.status == StatusCode::CREATED || w.status == StatusCode::OK)
            .then(|| location(state, &w)),
    };
    let mut response = match prefer.return_ {
        Return::Minimal => w.status.into_response(),
        Return::Representation => respond::resource_response(w.status, &w.body, format),
        Return::OperationOutcome => respond::outcome_response(
            w.status,
            &[phr_fhir::Issue::information(
                IssueType::Informational,
                format!(
                    "{}/{} stored as version {}",
                    w.resource_type, w.id, w.version
                ),
            )],
            format,
        ),
    };
    headers.apply(response.headers_mut());
    response
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

async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let body = req.format.encode(&state.capabilities);
    Ok(respond::json_response(StatusCode::OK, body, req.format))
}

fn stored_touch(stored: &StoredResource, entry: &mut AuditEntry) {
    entry.amount = 1;
    entry.patient = stored.patient.clone();
    entry
        .resources
        .push(format!("{}/{}", stored.resource_type, stored.id));
}

fn written_touch(w: &Written, entry: &mut AuditEntry) {
    entry.amount = 1;
    entry
        .resources
        .push(format!("{}/{}", w.resource_type, w.id));
    if let Ok(resource) = serde_json::from_slice::<Value>(&w.body) {
        entry.patient = phr_catalog::rules::patient_references(&resource)
            .into_iter()
            .next()
            .map(|r| r.id);
    }
}

async fn read(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let entry = AuditEntry::new("read", rtype.clone());
    let stored = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| fhir.read(c, &rtype, &id),
            stored_touch,
        )
        .await,
        f,
    )?;
    if let Some(tag) = req.headers.get(header::IF_NONE_MATCH)
        && tag.as_bytes() == respond::etag(stored.version).as_bytes()
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(stored_response(&stored, f))
}

async fn vread(
    State(state): State<AppState>,
    Path((rtype, id, vid)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let entry = AuditEntry::new("vread", rtype.clone());
    let stored = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| fhir.vread(c, &rtype, &id, &vid),
            stored_touch,
        )
        .await,
        f,
    )?;
    Ok(stored_response(&stored, f))
}

async fn create(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    with_format(state.fhir.check_type(&rtype), f)?;
    let resource = with_format(json_body(&state, &req.headers, body).await, f)?;
    let body_type = with_format(service::resource_type_of(&resource), f)?;
    if body_type != rtype {
        return Err(ApiError::bad_request(format!(
            "the body is a {body_type}, but was posted to /{rtype}"
        ))
        .formatted(f));
    }
    let if_none_exist = match req.headers.get("if-none-exist") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request("If-None-Exist is not readable text").formatted(f)
                })?
                .to_string(),
        ),
        None => None,
    };
    let entry = AuditEntry::new("create", rtype);
    let written = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::CREATED,
            move |fhir, c| fhir.create(c, resource, if_none_exist.as_deref()),
            written_touch,
        )
        .await,
        f,
    )?;
    Ok(written_response(
        &state,
        written,
        respond::prefer(&req.headers),
        f,
    ))
}

async fn update(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    with_format(state.fhir.check_type(&rtype), f)?;
    let if_match = with_format(respond::if_match(&req.headers), f)?;
    let resource = with_format(json_body(&state, &req.headers, body).await, f)?;
    let entry = AuditEntry::new("update", rtype.clone());
    let written = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| fhir.update(c, &rtype, &id, resource, if_match),
            written_touch,
        )
        .await,
        f,
    )?;
    Ok(written_response(
        &state,
        written,
        respond::prefer(&req.headers),
        f,
    ))
}

async fn delete(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let if_match = with_format(respond::if_match(&req.headers), f)?;
    let mut entry = AuditEntry::new("delete", rtype.clone());
    entry.resources.push(format!("{rtype}/{id}"));
    with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::NO_CONTENT,
            move |fhir, c| fhir.delete(c, &rtype, &id, if_match),
            |_, _| {},
        )
        .await,
        f,
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn history_type(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    history(state, Some(rtype), None, headers, q).await
}

async fn history_instance(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    history(state, Some(rtype), Some(id), headers, q).await
}

async fn history(
    state: AppState,
    rtype: Option<String>,
    id: Option<String>,
    headers: HeaderMap,
    q: Option<String>,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let query = with_format(
        history_query(&state, rtype.clone(), id.clone(), &req.query),
        f,
    )?;
    let self_link = self_link(&state, &query, &req.query);
    let interaction = if id.is_some() {
        "history-instance"
    } else {
        "history-type"
    };
    let entry = AuditEntry::new(interaction, rtype);
    let page = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| fhir.history(c, query),
            |page: &phr_store::HistoryPage, entry| {
                entry.amount = page.versions.len() as u64;
                entry.resources = page
                    .versions
                    .iter()
                    .map(|v| format!("{}/{}", v.resource_type, v.id))
                    .collect();
            },
        )
        .await,
        f,
    )?;
    let bundle = bundle::history_bundle(&state.base_url, &page, &self_link);
    Ok(respond::json_response(StatusCode::OK, f.encode(&bundle), f))
}

fn history_query(
    state: &AppState,
    resource_type: Option<String>,
    id: Option<String>,
    params: &[(String, String)],
) -> Result<HistoryQuery, ApiError> {
    let mut query = HistoryQuery {
        resource_type,
        id,
        count: state.config.default_page_size,
        ..Default::default()
    };
    for (name, value) in params {
        match name.as_str() {
            "_since" => {
                query.since = Some(parse_instant(value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "_since must be an instant like 2024-01-31T12:00:00Z, not '{value}'"
                    ))
                })?)
            }
            "_count" => {
                let count: usize = value.parse().map_err(|_| {
                    ApiError::bad_request(format!("_count must be a whole number, not '{value}'"))
                })?;
                query.count = count.min(state.config.max_page_size);
            }
            "_page" => query.page = Some(value.clone()),
            "_format" | "_pretty" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "history does not support the parameter '{other}' (use _since, _count)"
                )));
            }
        }
    }
    Ok(query)
}

fn self_link(state: &AppState, query: &HistoryQuery, params: &[(String, String)]) -> String {
    let mut path = format!("{}{BASE_PATH}", state.base_url);
    if let Some(t) = &query.resource_type {
        path.push('/');
        path.push_str(t);
    }
    if let Some(id) = &query.id {
        path.push('/');
        path.push_str(id);
    }
    path.push_str("/_history");
    if !params.is_empty() {
        path.push('?');
        path.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        );
    }
    path
}

async fn search_type(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let params = req.query.clone();
    search(state, rtype, req, params).await
}

/// `POST [type]/_search`: parameters in a form-encoded body, and/or in the URL.
async fn search_post(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            "POST _search takes application/x-www-form-urlencoded parameters",
        )
        .formatted(f));
    }
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooLong,
            "the search form is too large",
        )
        .formatted(f)
    })?;
    let mut params = req.query.clone();
    params.extend(url::form_urlencoded::parse(&bytes).into_owned());
    search(state, rtype, req, params).await
}

async fn search(
    state: AppState,
    rtype: String,
    req: Request,
    params: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let strict = respond::prefer(&req.headers).strict;
    if conformance::is_conformance_type(&rtype) {
        with_format(state.fhir.check_type(&rtype), f)?;
        let bundle = with_format(
            state
                .fhir
                .conformance
                .search(&rtype, &params, strict, &state.base_url),
            f,
        )?;
        return Ok(respond::json_response(StatusCode::OK, f.encode(&bundle), f));
    }
    if rtype == "AuditEvent" {
        let bundle = with_format(audit_events(&state, &caller, &params).await, f)?;
        return Ok(respond::json_response(StatusCode::OK, f.encode(&bundle), f));
    }
    let settings = search::SearchSettings {
        default_count: state.config.default_page_size,
        max_count: state.config.max_page_size,
        base_url: state.base_url.clone(),
    };
    let mut entry = AuditEntry::new("search-type", rtype.clone());
    entry.search_criteria = Some(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                params
                    .iter()
                    .filter(|(name, _)| name != search::PAGE_PARAMETER),
            )
            .finish(),
    );
    let inner = state.clone();
    let bundle = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| {
                let result = fhir.search(c, &rtype, &params, strict, &settings)?;
                let touched: Vec<String> = result
                    .page
                    .matches
                    .iter()
                    .chain(&result.page.included)
                    .map(|r| format!("{}/{}", r.resource_type, r.id))
                    .collect();
                let patient = result.query.compartment.clone();
                let bundle =
                    search::searchset(&result, &inner.base_url, &rtype, &params, &fhir.subsetter);
                Ok((bundle, touched, patient))
            },
            |(_, touched, patient), entry| {
                entry.amount = touched.len() as u64;
                entry.resources = touched.clone();
                entry.patient = patient.clone();
            },
        )
        .await,
        f,
    )?
    .0;
    Ok(respond::resource_response(StatusCode::OK, &bundle, f))
}

fn query_profiles(req: &Request) -> Vec<String> {
    req.query
        .iter()
        .filter(|(name, _)| name == "profile")
        .map(|(_, v)| v.clone())
        .collect()
}

async fn run_validate(
    state: AppState,
    req: Request,
    rtype: String,
    body: Option<Value>,
    id: Option<String>,
) -> Result<Response, ApiError> {
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let profiles = query_profiles(&req);
    let entry = AuditEntry::new("operation", rtype.clone());
    let issues = with_format(
        audited(
            &state,
            caller,
            entry,
            StatusCode::OK,
            move |fhir, c| {
                let request = match (body, id) {
                    (Some(body), _) => operations::validate_request(body, profiles)?,
                    (None, Some(id)) => {
                        let stored = fhir.read(c, &rtype, &id)?;
                        operations::ValidateRequest {
                            resource: parse_json(&stored.body)?,
                            profiles,
                        }
                    }
                    (None, None) => {
                        return Err(ApiError::bad_request("$validate needs a resource"));
                    }
                };
                fhir.validate(c, &rtype, request)
            },
            |_, _| {},
        )
        .await,
        f,
    )?;
    Ok(respond::outcome_response(StatusCode::OK, &issues, f))
}

async fn validate_type(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let body = json_body(&state, &req.headers, body)
        .await
        .map_err(|e| e.formatted(req.format))?;
    run_validate(state, req, rtype, Some(body), None).await
}

async fn validate_instance(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    run_validate(state, req, rtype, None, Some(id)).await
}

async fn validate_instance_body(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let body = json_body(&state, &req.headers, body)
        .await
        .map_err(|e| e.formatted(req.format))?;
    run_validate(state, req, rtype, Some(body), Some(id)).await
}

/// `AuditEvent?patient=<id>`: the citizen's own access log, from the audit records. A token
/// may only read its own patient's records.
async fn audit_events(
    state: &AppState,
    caller: &Caller,
    params: &[(String, String)],
) -> Result<Value, ApiError> {
    let mut patient = None;
    let mut count = state.config.default_page_size;
    let mut offset = 0usize;
    for (name, value) in params {
        match name.as_str() {
            "patient" => patient = Some(value.trim_start_matches("Patient/").to_string()),
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "_count must be a whole number, not '{value}'"
                        ))
                    })?
                    .min(state.config.max_page_size)
            }
            search::PAGE_PARAMETER => {
                offset = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("the page cursor is invalid"))?
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "AuditEvent search supports patient and _count, not '{other}'"
                )));
            }
        }
    }
    let patient = patient
        .ok_or_else(|| ApiError::bad_request("AuditEvent search requires patient=<Patient id>"))?;
    if let Some(own) = caller.compartment()
        && own != patient
    {
        return Err(ApiError::forbidden(format!(
            "this token may only read the access log of Patient/{own}"
        )));
    }
    caller.permit("AuditEvent", phr_auth::Interaction::Search)?;
    let auth = state.auth.clone();
    let wanted = patient.clone();
    let page =
        tokio::task::spawn_blocking(move || auth.audit_events_for_patient(&wanted, count, offset))
            .await
            .map_err(|_| ApiError::internal("the request handler stopped unexpectedly"))?
            .map_err(|e| {
                tracing::error!(error = %e, "reading audit records failed");
                ApiError::internal("the audit log could not be read")
            })?;
    let base = format!(
        "{}{BASE_PATH}/AuditEvent?patient={patient}&_count={count}",
        state.base_url
    );
    let mut links =
        vec![serde_json::json!({"relation": "self", "url": format!("{base}&_page={offset}")})];
    if ((offset + count) as u64) < page.total {
        links.push(serde_json::json!({"relation": "next", "url": format!("{base}&_page={}", offset + count)}));
    }
    let entries: Vec<Value> = page
        .events
        .into_iter()
        .map(|event| {
            let id = event["id"].as_str().unwrap_or("").to_string();
            serde_json::json!({"fullUrl": full_url(&state.base_url, "AuditEvent", &id), "resource": event,
                "search": {"mode": "match"}})
        })
        .collect();
    Ok(
        serde_json::json!({"resourceType": "Bundle", "type": "searchset", "total": page.total,
        "link": links, "entry": entries}),
    )
}

pub async fn transaction_or_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(headers, q)?;
    let f = req.format;
    let caller = with_format(access::caller(&state, &req.headers), f)?;
    let bundle = with_format(json_body(&state, &req.headers, body).await, f)?;
    let kind = if bundle["type"] == "transaction" {
        "transaction"
    } else {
        "batch"
    };
    let max_entries = state.config.max_bundle_entries;
    let base_url = state.base_url.clone();
    let response = with_format(
        audited(
            &state,
            caller,
            AuditEntry::new(kind, None),
            StatusCode::OK,
            move |fhir, c| bundle::process(fhir, c, bundle, max_entries, &base_url),
            |response: &bundle::BundleResponse, entry| {
                entry.resources = response.touched();
                entry.amount = entry.resources.len() as u64;
            },
        )
        .await,
        f,
    )?;
    let body = response.to_json(&state.base_url, respond::prefer(&req.headers));
    Ok(respond::resource_response(StatusCode::OK, &body, f))
}

/// `fullUrl` of a resource.
pub fn full_url(base_url: &str, resource_type: &str, id: &str) -> String {
    format!("{base_url}{BASE_PATH}/{resource_type}/{id}")
}

/// `Bundle.entry.response` of a stored version.
pub fn entry_response(
    status: StatusCode,
    resource_type: &str,
    id: &str,
    version: u64,
    last_updated: i64,
) -> Value {
    serde_json::json!({
        "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        "location": format!("{resource_type}/{id}/_history/{version}"),
        "etag": format!("W/\"{version}\""),
        "lastModified": to_instant(last_updated),
    })
}
