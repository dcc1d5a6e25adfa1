//! The deprecated FHIR STU3 (3.0.1) API under `/fhir/stu3`: the same handlers, the same
//! caller, rules, authorization and audit as `/fhir/r4`, over the same R4 store, with a
//! conversion layer around them.
//!
//! On the way in, the layer checks the resource type is one Kanta served in STU3, converts a
//! STU3 body (a resource, or a batch/transaction Bundle entry by entry) to R4 and translates
//! version-specific search values (the observation category system); on the way out it
//! converts the stored R4 resources back (a read, a write's representation, searchsets,
//! history, batch responses), points `Location`, `fullUrl`s and paging links at
//! `/fhir/stu3`, and marks every answer deprecated (`Deprecation`, `Link` to the successor
//! R4 endpoint, `Warning: 299`). OperationOutcomes pass through: both versions read them
//! alike. `/metadata` and the STU3 `StructureDefinition`s are answered here.
//!
//! The conversion itself is `phr-stu3`'s; nothing here decides what a resource must look
//! like.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use phr_catalog::stu3::RESOURCE_TYPES;
use phr_service::{Error, ErrorKind};
use phr_stu3::bundle::{Posted, answer_failed, not_shown, posted_to_r4, response_to_stu3};
use phr_stu3::capability::CONFORMANCE_TYPES;
use phr_stu3::search::params_to_r4;
use phr_stu3::{ConvertError, to_r4, to_stu3};
use serde_json::{Value, json};

use super::error::{Failure, FhirError};
use super::request::{json_body, parse_json, parse_query};
use super::respond::{self, Format};
use crate::AppState;
use crate::audit::AuditSlot;

/// Where the STU3 API is served.
pub const STU3_BASE_PATH: &str = "/fhir/stu3";

/// When this server deprecated its STU3 API (`Deprecation: @…`, RFC 9745): 2026-12-01.
pub const DEPRECATED_SINCE: i64 = 1_796_083_200;

/// Which FHIR version a request speaks; set by the STU3 layer, absent means R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stu3Request;

/// The STU3 routes, relative to [`STU3_BASE_PATH`].
pub fn routes(state: AppState) -> Router<AppState> {
    let converted =
        super::interactions().layer(axum::middleware::from_fn_with_state(state.clone(), convert));
    Router::new()
        .route("/metadata", get(capabilities))
        .route("/StructureDefinition", get(structure_definitions))
        .route("/StructureDefinition/{id}", get(structure_definition))
        .merge(converted)
        .fallback(super::unknown_route)
        .method_not_allowed_fallback(super::wrong_method)
        .layer(axum::middleware::from_fn(super::negotiated))
        .layer(axum::middleware::from_fn_with_state(state, deprecated))
}

/// Marks every STU3 answer deprecated and names its successor, errors and refusals too.
pub async fn deprecated(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(Stu3Request);
    let mut response = next.run(request).await;
    let r4 = format!("{}{}", state.base_url, super::BASE_PATH);
    let headers = response.headers_mut();
    headers.insert(
        "deprecation",
        HeaderValue::from_str(&format!("@{DEPRECATED_SINCE}"))
            .unwrap_or(HeaderValue::from_static("?1")),
    );
    if let Ok(link) = HeaderValue::from_str(&format!("<{r4}>; rel=\"successor-version\"")) {
        headers.append(header::LINK, link);
    }
    if let Ok(warning) = HeaderValue::from_str(&format!(
        "299 - \"FHIR STU3 is deprecated: use the R4 endpoint {r4}\""
    )) {
        headers.insert(header::WARNING, warning);
    }
    response
}

/// `GET /fhir/stu3/metadata`: the STU3 CapabilityStatement, generated once at start-up from
/// the R4 one.
async fn capabilities(State(state): State<AppState>, format: Format, audit: AuditSlot) -> Response {
    audit.interaction("capabilities", None);
    respond::json_response(
        StatusCode::OK,
        format.encode(&state.stu3_capabilities),
        format,
    )
}

/// `GET /fhir/stu3/StructureDefinition?url=…|_id=…`: the STU3 twins' definitions.
async fn structure_definitions(
    State(state): State<AppState>,
    format: Format,
    audit: AuditSlot,
    uri: axum::http::Uri,
) -> Result<Response, FhirError> {
    audit.interaction("search-type", Some("StructureDefinition"));
    let params = parse_query(uri.query());
    let mut matches: Vec<&Value> = phr_stu3::structure::structure_definitions()
        .iter()
        .collect();
    for (name, value) in &params {
        let field = match name.as_str() {
            "url" => "url",
            "_id" => "id",
            "name" => "name",
            "type" => "type",
            "_format" | "_pretty" | "_count" | "_total" => continue,
            other => {
                return Err(Error::invalid(format!(
                    "unsupported search parameter '{other}' on StructureDefinition; use url, _id, name or type"
                ))
                .into());
            }
        };
        let wanted: Vec<&str> = value
            .split(',')
            .map(|v| v.split('|').next().unwrap_or(v))
            .collect();
        matches.retain(|sd| sd[field].as_str().is_some_and(|v| wanted.contains(&v)));
    }
    let base = format!("{}{STU3_BASE_PATH}", state.base_url);
    let entries: Vec<Value> = matches
        .iter()
        .map(|sd| {
            json!({
                "fullUrl": format!("{base}/StructureDefinition/{}", sd["id"].as_str().unwrap_or("")),
                "resource": sd,
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/StructureDefinition{}", uri.query().map(|q| format!("?{q}")).unwrap_or_default())}],
    });
    if !entries.is_empty()
        && let Some(object) = bundle.as_object_mut()
    {
        object.insert("entry".into(), Value::Array(entries));
    }
    Ok(respond::json_response(
        StatusCode::OK,
        format.encode(&bundle),
        format,
    ))
}

/// `GET /fhir/stu3/StructureDefinition/[id]`.
async fn structure_definition(
    Path(id): Path<String>,
    format: Format,
    audit: AuditSlot,
) -> Result<Response, FhirError> {
    audit.interaction("read", Some("StructureDefinition"));
    let sd = phr_stu3::structure::structure_definitions()
        .iter()
        .find(|sd| sd["id"] == id.as_str())
        .ok_or_else(|| {
            Error::not_found(format!(
                "StructureDefinition/{id} is not known at the STU3 endpoint"
            ))
        })?;
    Ok(respond::json_response(
        StatusCode::OK,
        format.encode(sd),
        format,
    ))
}

/// The resource type a path names (its first segment), if it names one.
fn resource_type_of(path: &str) -> Option<&str> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    first
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        .then_some(first)
}

/// The conversion layer around the shared FHIR handlers.
pub async fn convert(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match converted(state, request, next).await {
        Ok(response) => response,
        Err(error) => FhirError(error).into_response(),
    }
}

async fn converted(state: AppState, request: Request, next: Next) -> Result<Response, Error> {
    let full = request.uri().path().to_string();
    // Inside the nested router the path is relative already; the base with a trailing slash
    // is routed outside it.
    let path = full
        .strip_prefix(STU3_BASE_PATH)
        .unwrap_or(&full)
        .to_string();
    if let Some(rtype) = resource_type_of(&path)
        && !RESOURCE_TYPES.contains(&rtype)
    {
        let also = if CONFORMANCE_TYPES.contains(&rtype) {
            " (only read and search of the STU3 profiles)"
        } else {
            ""
        };
        return Err(Error::not_found(format!(
            "{rtype} is not served at the FHIR STU3 endpoint{also}; use the R4 endpoint {}",
            super::BASE_PATH
        )));
    }
    let (mut parts, body) = request.into_parts();
    // Search values with a version-specific code system, in the URL...
    if let Some(query) = parts.uri.query() {
        let params = parse_query(Some(query));
        let translated = params_to_r4(&params);
        if translated != params {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&translated)
                .finish();
            let uri = format!("{}?{query}", parts.uri.path());
            parts.uri = uri
                .parse()
                .map_err(|_| Error::invalid("the request URL cannot be rewritten"))?;
        }
    }
    let is_write = matches!(parts.method, Method::POST | Method::PUT);
    let is_search = path.ends_with("/_search");
    let is_bundle = path.trim_matches('/').is_empty();
    let mut failed = Vec::new();
    let body = if is_write && is_search {
        // ...and in a search form.
        let bytes = super::request::read_body(&state, body, "the search form").await?;
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(&bytes).into_owned().collect();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params_to_r4(&params))
            .finish();
        Body::from(form)
    } else if is_write {
        let bytes = json_body(&state, &parts.headers, body).await?;
        let (r4, lost) = tokio::task::spawn_blocking(move || to_r4_body(&bytes, is_bundle))
            .await
            .map_err(|_| Error::internal("the STU3 conversion stopped unexpectedly"))??;
        failed = lost;
        parts.headers.remove(header::CONTENT_LENGTH);
        Body::from(r4)
    } else {
        body
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    to_stu3_response(&state, response, failed).await
}

/// Batch entries that could not be converted: their index and why.
type FailedEntries = Vec<(usize, ConvertError)>;

/// A posted STU3 body as R4 bytes, with the batch entries that could not be converted.
fn to_r4_body(bytes: &[u8], is_bundle: bool) -> Result<(Vec<u8>, FailedEntries), Error> {
    let value = parse_json(bytes)?;
    let refused = |e: ConvertError| Error::unprocessable(vec![e.to_issue()]);
    let (r4, failed) =
        if is_bundle && value.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            let Posted { bundle, failed } = posted_to_r4(&value).map_err(refused)?;
            (bundle, failed)
        } else {
            (to_r4(&value).map_err(refused)?, vec![])
        };
    let bytes = serde_json::to_vec(&r4)
        .map_err(|e| Error::internal(format!("JSON encoding failed: {e}")))?;
    Ok((bytes, failed))
}

/// The handler's R4 answer in STU3.
async fn to_stu3_response(
    state: &AppState,
    response: Response,
    failed: Vec<(usize, ConvertError)>,
) -> Result<Response, Error> {
    // Failures are OperationOutcomes, the same in both versions; an answer without a JSON
    // body (204, 304) has nothing to convert.
    if response.extensions().get::<Failure>().is_some() || !is_json(response.headers()) {
        return Ok(rebased_location(state, response));
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| Error::internal("the answer could not be read for STU3"))?;
    let r4_base = state.fhir.settings.base_url.clone();
    let stu3_base = format!("{}{STU3_BASE_PATH}", state.base_url);
    let pretty = bytes.starts_with(b"{\n");
    let converted = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Error> {
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("the stored answer is not JSON: {e}")))?;
        let stu3 = match value.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {
                let mut bundle = response_to_stu3(&value, &r4_base, &stu3_base);
                answer_failed(&mut bundle, failed);
                bundle
            }
            Some("OperationOutcome") => value,
            _ => to_stu3(&value).map_err(|e| {
                let named = format!(
                    "{}/{}",
                    value
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    value.get("id").and_then(Value::as_str).unwrap_or("?")
                );
                let mut issue = not_shown(&named, &e);
                issue.severity = phr_fhir::Severity::Error;
                Error::with_issues(ErrorKind::NotAcceptable, vec![issue])
            })?,
        };
        let format = Format {
            plain_json: false,
            pretty,
        };
        Ok(format.encode(&stu3))
    })
    .await
    .map_err(|_| Error::internal("the STU3 conversion stopped unexpectedly"))??;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(rebased_location(
        state,
        Response::from_parts(parts, Body::from(converted)),
    ))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"))
}

/// `Location` at the STU3 base.
fn rebased_location(state: &AppState, mut response: Response) -> Response {
    let r4 = &state.fhir.settings.base_url;
    if let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.strip_prefix(r4.as_str()))
        .map(|rest| format!("{}{STU3_BASE_PATH}{rest}", state.base_url))
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_path_segment_names_the_type() {
        assert_eq!(
            resource_type_of("/Observation/1/_history"),
            Some("Observation")
        );
        assert_eq!(resource_type_of("/"), None);
        assert_eq!(resource_type_of(""), None);
        assert_eq!(resource_type_of("/metadata"), None);
    }
}
