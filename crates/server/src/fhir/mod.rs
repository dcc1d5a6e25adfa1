//! The FHIR R4 REST API under `/fhir/r4` (and its deprecated STU3 view under `/fhir/stu3`,
//! `stu3.rs`): routes, and thin handlers that parse HTTP, call the
//! application core ([`phr_service::FhirService`]) on the blocking pool and write the answer.
//!
//! `request.rs` holds the one extractor every FHIR request goes through (caller, format,
//! Prefer, parameters) and the body reader; `error.rs` the one mapping from outcomes to
//! statuses; `respond.rs` the FHIR HTTP conventions (negotiation, `Prefer`, `ETag`...). One
//! file per interaction family: `read.rs`, `write.rs`, `search.rs`, `history.rs`,
//! `bundle.rs`, `validate.rs`, `stats.rs` (R4 only), `metadata.rs`.
//!
//! Never decides what a caller may do or what a resource must look like: that is the
//! service's. Never writes an audit record: handlers put what they learned in the request's
//! [`crate::audit::AuditSlot`] and the audit layer writes it.

pub mod bundle;
pub mod error;
pub mod history;
pub mod metadata;
pub mod read;
pub mod request;
pub mod respond;
pub mod search;
pub mod stats;
pub mod stu3;
pub mod validate;
pub mod write;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use phr_fhir::IssueType;
use phr_service::{Error, ErrorKind};

use crate::AppState;
use error::{Failure, FhirError, render};
use request::{Negotiated, parse_query};

/// Where the FHIR API is served.
pub const BASE_PATH: &str = "/fhir/r4";

/// The FHIR routes, relative to [`BASE_PATH`], with the format layer and the fallbacks.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata::capabilities))
        .route(
            "/{type}/$stats",
            get(stats::stats_get).post(stats::stats_post),
        )
        .merge(interactions())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(negotiated))
}

/// The interactions on resources, shared by the R4 and the STU3 API (which wraps them in its
/// conversion layer, `stu3.rs`).
pub fn interactions() -> Router<AppState> {
    Router::new()
        .route("/", post(bundle::transaction_or_batch))
        .route("/{type}", get(search::search_get).post(write::create))
        .route("/{type}/_history", get(history::history_type))
        .route("/{type}/_search", post(search::search_post))
        .route("/{type}/$validate", post(validate::validate_type))
        .route(
            "/{type}/{id}/$validate",
            get(validate::validate_instance).post(validate::validate_instance_body),
        )
        .route(
            "/{type}/{id}",
            get(read::read).put(write::update).delete(write::delete),
        )
        .route("/{type}/{id}/_history", get(history::history_instance))
        .route(
            "/{type}/{id}/{compartment_type}",
            get(search::compartment_get),
        )
        .route(
            "/{type}/{id}/{compartment_type}/_search",
            post(search::compartment_post),
        )
        .route("/{type}/{id}/_history/{vid}", get(read::vread))
}

/// Decides the response format once per request, for the extractor and for errors: an error
/// response (marked [`Failure`]) is rendered again in the negotiated format (pretty, or
/// `application/json`). A request whose format cannot be negotiated gets its 406 from the
/// extractor, in the default format.
pub async fn negotiated(mut request: Request, next: Next) -> Response {
    let query = parse_query(request.uri().query());
    let negotiated = respond::negotiate(request.headers(), &query);
    let format = negotiated.clone().unwrap_or_default();
    request.extensions_mut().insert(Negotiated(negotiated));
    let response = next.run(request).await;
    match response.extensions().get::<Failure>() {
        Some(Failure(error)) if format != respond::Format::default() => {
            let mut rendered = render(error, format);
            // Keep what layers inside added (CORS headers, say) besides the body's own.
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    rendered.headers_mut().insert(name.clone(), value.clone());
                }
            }
            rendered
        }
        _ => response,
    }
}

pub async fn unknown_route(uri: Uri) -> FhirError {
    Error::not_found(format!("nothing is served at {}", uri.path())).into()
}

pub async fn wrong_method(method: Method, uri: Uri) -> FhirError {
    Error::new(
        ErrorKind::MethodNotAllowed,
        IssueType::NotSupported,
        format!("{method} is not supported on {}", uri.path()),
    )
    .into()
}
