//! `history`: `GET [type]/_history` and `GET [type]/[id]/_history` (`_since`, `_count`, paging).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{FhirError, status_line, success_status};
use super::request::{Fhir, blocking};
use super::respond;
use crate::AppState;

pub async fn history_type(
    State(state): State<AppState>,
    Path(rtype): Path<String>,
    req: Fhir,
) -> Result<Response, FhirError> {
    history(state, rtype, None, req).await
}

pub async fn history_instance(
    State(state): State<AppState>,
    Path((rtype, id)): Path<(String, String)>,
    req: Fhir,
) -> Result<Response, FhirError> {
    history(state, rtype, Some(id), req).await
}

async fn history(
    state: AppState,
    rtype: String,
    id: Option<String>,
    req: Fhir,
) -> Result<Response, FhirError> {
    let interaction = if id.is_some() {
        "history-instance"
    } else {
        "history-type"
    };
    req.audit.interaction(interaction, Some(&rtype));
    let caller = req.caller;
    let params = req.query;
    let history = blocking(&state, move |fhir| {
        fhir.history_request(&caller, Some(rtype), id, &params, &|done| {
            status_line(success_status(done))
        })
    })
    .await?;
    req.audit.touched(
        history
            .page
            .versions
            .iter()
            .map(|v| format!("{}/{}", v.resource_type, v.id))
            .collect(),
    );
    req.audit.shown(history.shown);
    Ok(respond::json_response(
        StatusCode::OK,
        req.format.encode(&history.bundle),
        req.format,
    ))
}
