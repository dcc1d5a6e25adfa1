//! `GET /metadata`: the CapabilityStatement, generated once at start-up. No token needed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::respond::{self, Format};
use crate::AppState;
use crate::audit::AuditSlot;

pub async fn capabilities(
    State(state): State<AppState>,
    format: Format,
    audit: AuditSlot,
) -> Response {
    audit.interaction("capabilities", None);
    respond::json_response(StatusCode::OK, format.encode(&state.capabilities), format)
}
