//! Records what applications do in the sandbox, for the acceptance checks (`phr app
//! acceptance`): one row per FHIR request of an application (interaction, resource type,
//! status, whether a search named `patient`, how many entries a Bundle had) and one per
//! resource it wrote, alone or in a Bundle (its data content, the profile it claimed, its
//! business identifier, whether the create was conditional, the OperationOutcome of a
//! refusal).
//!
//! The audit layer puts a [`TrafficSlot`] in every request's extensions in sandbox mode and,
//! once the response is ready, hands the rows to the authorization server
//! ([`phr_auth::AuthService::record_traffic`], which keeps them 30 days and redacts anything
//! that parses as an identity code). Handlers note what only they see: a search's `_count`,
//! whether it sent a paging cursor and whether its answer had a `next` link (as digests of
//! the cursors), the application and grant of a refused token, the digest of a refused
//! body. Never records query values, tokens or resource bodies.

use std::sync::{Arc, Mutex, PoisonError};

use phr_auth::AuditRecord;
use phr_auth::traffic::{RowKind, TrafficRow};
use phr_catalog::Catalog;
use phr_service::Error;
use serde_json::{Map, Value, json};

use crate::fhir::error::status_of;

/// A short digest (hex) of a JSON value or a paging cursor: tells equal ones apart, reveals
/// nothing of them.
pub fn digest(value: &impl std::fmt::Display) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(value.to_string().as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What the traffic record keeps of a resource written, read from it before the write
/// takes it: the record needs these few fields, never a copy of the body.
#[derive(Debug, Default, PartialEq)]
pub struct ResourceFacts {
    resource_type: Option<String>,
    profile: Option<String>,
    identifier: Option<String>,
    content: Option<String>,
}

impl ResourceFacts {
    pub fn of(resource: &Value) -> Self {
        let text = |pointer: &str| {
            resource
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        ResourceFacts {
            resource_type: text("/resourceType"),
            profile: text("/meta/profile/0"),
            identifier: text("/identifier/0/value"),
            content: Catalog::get()
                .content_of(resource)
                .map(|c| c.kind.key().to_owned()),
        }
    }
}

/// What handlers noted about one request.
#[derive(Default)]
struct Notes {
    detail: Map<String, Value>,
    /// The application a refused token was issued to (the request has no caller).
    refused_app: Option<String>,
    resources: Vec<TrafficRow>,
}

/// The request's notes (empty and unused outside sandbox mode).
#[derive(Clone, Default)]
pub struct TrafficSlot(Arc<Mutex<Notes>>);

impl TrafficSlot {
    /// The slot of a request, or a detached one.
    pub fn of(extensions: &axum::http::Extensions) -> Self {
        extensions.get::<TrafficSlot>().cloned().unwrap_or_default()
    }

    fn update(&self, change: impl FnOnce(&mut Notes)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// A fact about the request (`patient`, `entries`).
    pub fn note(&self, key: &str, value: Value) {
        self.update(|notes| {
            notes.detail.insert(key.to_owned(), value);
        });
    }

    /// A bearer token of `app_id` refused for `reason` (`expired`, `revoked`, `withdrawn`),
    /// under `grant`: the request is the application's although it has no caller.
    pub fn refused(&self, app_id: String, grant: Option<String>, reason: &str) {
        self.update(|notes| {
            notes.refused_app = Some(app_id);
            notes.detail.insert("auth".into(), json!(reason));
            if let Some(grant) = grant {
                notes.detail.insert("grant".into(), json!(grant));
            }
        });
    }

    /// A resource written (`create` or `update`), with how it ended. `refused_body` gives
    /// the body back when the write was refused as invalid (412/422), for its digest: only
    /// that rare path pays for it.
    pub fn resource(
        &self,
        interaction: &str,
        facts: Option<&ResourceFacts>,
        conditional: bool,
        result: Result<u16, &Error>,
        refused_body: impl FnOnce() -> Option<Value>,
    ) {
        let mut detail = Map::new();
        detail.insert("conditional".into(), json!(conditional));
        if let Some(profile) = facts.and_then(|f| f.profile.as_ref()) {
            detail.insert("profile".into(), json!(profile));
        }
        if let Some(identifier) = facts.and_then(|f| f.identifier.as_ref()) {
            detail.insert("identifier".into(), json!(identifier));
        }
        let status = match result {
            Ok(status) => status,
            Err(error) => {
                detail.insert(
                    "outcome".into(),
                    phr_fhir::outcome::operation_outcome(error.issues()),
                );
                let status = status_of(error.kind()).as_u16();
                // A refused body is known again by its digest when it is resent; the body
                // itself is never kept.
                if matches!(status, 412 | 422)
                    && facts.is_some()
                    && let Some(resource) = refused_body()
                {
                    detail.insert("body_hash".into(), json!(digest(&resource)));
                }
                status
            }
        };
        let row = TrafficRow {
            app_id: String::new(),
            at_us: 0,
            kind: RowKind::Resource,
            interaction: interaction.to_owned(),
            resource_type: facts.and_then(|f| f.resource_type.clone()),
            status,
            content: facts.and_then(|f| f.content.clone()),
            detail: Value::Object(detail),
        };
        self.update(|notes| notes.resources.push(row));
    }

    /// The rows of a finished request of the application in `record` (none for other
    /// callers).
    pub fn rows(&self, record: &AuditRecord, at_us: i64) -> Vec<TrafficRow> {
        let notes = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        let Some(app_id) = record.app_id.clone().or(notes.refused_app) else {
            return Vec::new();
        };
        let request = TrafficRow {
            app_id: app_id.clone(),
            at_us,
            kind: RowKind::Request,
            // A request refused before its handler (a 401, a 429) has no interaction: its
            // method and route template say what it was (never its path or query).
            interaction: record.interaction.clone().unwrap_or_else(|| {
                match (record.method.as_deref(), record.route.as_deref()) {
                    (Some(method), Some(route)) => format!("{method} {route}"),
                    _ => "request".to_owned(),
                }
            }),
            resource_type: record.resource_type.clone(),
            status: record.status,
            content: None,
            detail: Value::Object(notes.detail),
        };
        std::iter::once(request)
            .chain(notes.resources.into_iter().map(|mut row| {
                row.app_id = app_id.clone();
                row.at_us = at_us;
                row
            }))
            .collect()
    }
}
