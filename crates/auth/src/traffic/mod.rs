//! The sandbox traffic record: what each application did in the sandbox, for the acceptance
//! checks (`checks.rs`) an operator runs before joint testing. Per request: the interaction,
//! the resource type, the answer's status and what the checks need (whether a search named
//! `patient`, how many entries a Bundle had); per resource written (alone or as a Bundle
//! entry): its data content, the profile it claimed, its business identifier, whether the
//! create was conditional, and the OperationOutcome when it was refused.
//!
//! Sandbox mode only, kept for [`RETENTION_DAYS`] days. Never holds a personal identity code:
//! no search parameters are kept (only whether `patient` was there), and any text that parses
//! as an identity code in a refusal's messages is replaced before it is stored.
//!
//! Owns the `sandbox_traffic` table through [`TrafficStore`] (SQLite in `sqlite.rs`,
//! PostgreSQL in `postgres.rs`). Never decides what is recorded: the web layer, which sees
//! the requests, hands rows over.

pub mod checks;
pub(crate) mod postgres;
mod sqlite;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;

pub(crate) use postgres::PostgresTrafficStore;
pub(crate) use sqlite::SqliteTrafficStore;

/// How long the sandbox traffic record is kept.
pub const RETENTION_DAYS: i64 = 30;

/// What a row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// One HTTP request.
    Request,
    /// One resource written (a create or update, alone or in a Bundle).
    Resource,
}

impl RowKind {
    pub fn code(self) -> &'static str {
        match self {
            RowKind::Request => "request",
            RowKind::Resource => "resource",
        }
    }
    pub fn parse(text: &str) -> Option<RowKind> {
        match text {
            "request" => Some(RowKind::Request),
            "resource" => Some(RowKind::Resource),
            _ => None,
        }
    }
}

/// One recorded request or resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficRow {
    pub app_id: String,
    /// Microseconds since the epoch.
    pub at_us: i64,
    pub kind: RowKind,
    /// `create`, `update`, `search-type`, `batch`, `transaction`, `read`, ...
    pub interaction: String,
    pub resource_type: Option<String>,
    pub status: u16,
    /// The data content (catalogue code) of a resource row, when it is one.
    pub content: Option<String>,
    /// What the checks read: `patient` (a search named one), `entries` (a Bundle's size),
    /// `profile`, `identifier`, `conditional`, `outcome` (an OperationOutcome).
    pub detail: Value,
}

/// Where the record is kept.
pub trait TrafficStore: Send + Sync {
    fn insert(&self, rows: &[TrafficRow]) -> Result<()>;
    /// The rows of `app_id` recorded at or after `since_us`, oldest first.
    fn list(&self, app_id: &str, since_us: i64) -> Result<Vec<TrafficRow>>;
    /// Deletes the rows recorded before `before_us`; returns how many.
    fn delete_before(&self, before_us: i64) -> Result<u64>;
}

/// `text` with anything that parses as a personal identity code replaced by a placeholder.
pub fn redact_identity_codes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let candidate: String = chars.iter().skip(i).take(11).collect();
        if candidate.chars().count() == 11 && crate::hetu::Hetu::parse(&candidate).is_ok() {
            out.push_str("[identity code]");
            i += 11;
        } else if let Some(c) = chars.get(i) {
            out.push(*c);
            i += 1;
        } else {
            break;
        }
    }
    out
}

/// A JSON value with every string passed through [`redact_identity_codes`].
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_identity_codes(s)),
        Value::Array(list) => Value::Array(list.iter().map(redact_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn identity_codes_are_redacted_from_text_and_json() {
        assert_eq!(
            redact_identity_codes("value 010190-901R is not allowed"),
            "value [identity code] is not allowed"
        );
        assert_eq!(redact_identity_codes("no code here"), "no code here");
        let json = serde_json::json!({"issue": [{"diagnostics": "x 010190-901R"}], "n": 1});
        assert_eq!(
            redact_value(&json),
            serde_json::json!({"issue": [{"diagnostics": "x [identity code]"}], "n": 1})
        );
    }

    /// The store's behaviour on any engine.
    pub(crate) fn rows_are_kept_per_app_and_expire(store: Arc<dyn TrafficStore>) {
        let row = |app: &str, at_us: i64, kind: RowKind| TrafficRow {
            app_id: app.into(),
            at_us,
            kind,
            interaction: "create".into(),
            resource_type: Some("Observation".into()),
            status: 422,
            content: Some("blood-glucose".into()),
            detail: serde_json::json!({"conditional": true, "identifier": "urn:uuid:1"}),
        };
        store
            .insert(&[
                row("a", 10, RowKind::Request),
                row("a", 20, RowKind::Resource),
                row("b", 15, RowKind::Request),
            ])
            .unwrap();
        let rows = store.list("a", 0).unwrap();
        assert_eq!(
            rows,
            vec![
                row("a", 10, RowKind::Request),
                row("a", 20, RowKind::Resource)
            ]
        );
        assert_eq!(store.list("a", 11).unwrap().len(), 1);
        assert_eq!(store.delete_before(16).unwrap(), 2);
        assert_eq!(store.list("a", 0).unwrap().len(), 1);
        assert!(store.list("b", 0).unwrap().is_empty());
    }

    #[test]
    fn rows_on_sqlite() {
        rows_are_kept_per_app_and_expire(Arc::new(SqliteTrafficStore::new(
            crate::sqlite::Sqlite::in_memory(),
        )));
    }
}
