//! What the console shows of an application's sandbox traffic, computed from the rows the
//! authorization server keeps: requests counted by interaction, resource type and answer,
//! and every rejected resource with the profile it claimed and its OperationOutcome's
//! issues (each with its FHIRPath expression). Plain functions over rows, no HTTP.

use std::collections::BTreeMap;

use phr_auth::traffic::{RowKind, TrafficRow};
use serde_json::Value;

/// At most this many rejected resources are shown (the newest).
pub const MAX_REJECTED: usize = 100;

/// Requests of one interaction on one resource type that got one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    pub interaction: String,
    pub resource_type: String,
    pub status: u16,
    pub count: usize,
    pub last_us: i64,
}

/// One issue of a refusal's OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: String,
    pub code: String,
    pub diagnostics: String,
    /// The FHIRPath expressions (or, failing those, the locations) the issue names.
    pub expression: String,
}

/// A resource the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub at_us: i64,
    pub interaction: String,
    pub resource_type: String,
    pub status: u16,
    pub content: Option<String>,
    pub profile: Option<String>,
    pub identifier: Option<String>,
    pub issues: Vec<Issue>,
}

/// The requests among `rows`, counted by interaction, resource type and status.
pub fn request_counts(rows: &[TrafficRow]) -> Vec<RequestCount> {
    let mut counts: BTreeMap<(String, String, u16), (usize, i64)> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.kind == RowKind::Request) {
        let key = (
            row.interaction.clone(),
            row.resource_type.clone().unwrap_or_default(),
            row.status,
        );
        let entry = counts.entry(key).or_insert((0, row.at_us));
        entry.0 += 1;
        entry.1 = entry.1.max(row.at_us);
    }
    counts
        .into_iter()
        .map(
            |((interaction, resource_type, status), (count, last_us))| RequestCount {
                interaction,
                resource_type,
                status,
                count,
                last_us,
            },
        )
        .collect()
}

/// The issues of an OperationOutcome (as the traffic record keeps it).
pub fn issues(outcome: Option<&Value>) -> Vec<Issue> {
    let text = |issue: &Value, field: &str| {
        issue
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let list = |issue: &Value, field: &str| -> Vec<String> {
        issue
            .get(field)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    outcome
        .and_then(|o| o.get("issue"))
        .and_then(Value::as_array)
        .map(|issues| {
            issues
                .iter()
                .map(|issue| {
                    let mut expression = list(issue, "expression");
                    if expression.is_empty() {
                        expression = list(issue, "location");
                    }
                    Issue {
                        severity: text(issue, "severity"),
                        code: text(issue, "code"),
                        diagnostics: text(issue, "diagnostics"),
                        expression: expression.join(", "),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The resources among `rows` that were refused, newest first (at most [`MAX_REJECTED`]).
pub fn rejections(rows: &[TrafficRow]) -> Vec<Rejection> {
    let text = |row: &TrafficRow, field: &str| {
        row.detail
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    rows.iter()
        .rev()
        .filter(|r| r.kind == RowKind::Resource && r.status >= 400)
        .take(MAX_REJECTED)
        .map(|row| Rejection {
            at_us: row.at_us,
            interaction: row.interaction.clone(),
            resource_type: row.resource_type.clone().unwrap_or_default(),
            status: row.status,
            content: row.content.clone(),
            profile: text(row, "profile"),
            identifier: text(row, "identifier"),
            issues: issues(row.detail.get("outcome")),
        })
        .collect()
}

/// A time of the record (microseconds since the epoch) as RFC 3339, UTC. (Templates
/// hand over references, handlers values.)
pub fn instant(micros: impl std::borrow::Borrow<i64>) -> String {
    let micros = *micros.borrow();
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(kind: RowKind, interaction: &str, status: u16, at_us: i64, detail: Value) -> TrafficRow {
        TrafficRow {
            app_id: "a".into(),
            at_us,
            kind,
            interaction: interaction.into(),
            resource_type: Some("Observation".into()),
            status,
            content: (kind == RowKind::Resource).then(|| "body-weight".to_string()),
            detail,
        }
    }

    #[test]
    fn requests_are_counted_by_interaction_and_answer() {
        let rows = [
            row(RowKind::Request, "create", 201, 1, json!({})),
            row(RowKind::Request, "create", 422, 2, json!({})),
            row(RowKind::Resource, "create", 422, 2, json!({})),
            row(RowKind::Request, "create", 201, 3, json!({})),
        ];
        let counts = request_counts(&rows);
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.interaction.as_str(), c.status, c.count, c.last_us))
                .collect::<Vec<_>>(),
            [("create", 201, 2, 3), ("create", 422, 1, 2)]
        );
    }

    #[test]
    fn a_rejection_shows_its_profile_and_each_issue_with_its_expression() {
        let outcome = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "required", "diagnostics": "Observation.status: minimum 1",
             "expression": ["Observation.status"]},
            {"severity": "error", "code": "value", "location": ["Observation.code"]}
        ]});
        let rows = [
            row(
                RowKind::Resource,
                "create",
                201,
                1,
                json!({"identifier": "urn:uuid:1"}),
            ),
            row(
                RowKind::Resource,
                "create",
                422,
                2,
                json!({"profile": "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight",
                       "identifier": "urn:uuid:2", "outcome": outcome}),
            ),
        ];
        let rejected = rejections(&rows);
        assert_eq!(rejected.len(), 1);
        let r = &rejected[0];
        assert_eq!(
            r.profile.as_deref(),
            Some("http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight")
        );
        assert_eq!(r.identifier.as_deref(), Some("urn:uuid:2"));
        assert_eq!(r.issues.len(), 2);
        assert_eq!(r.issues[0].expression, "Observation.status");
        assert_eq!(r.issues[0].diagnostics, "Observation.status: minimum 1");
        assert_eq!(r.issues[1].expression, "Observation.code");
    }

    #[test]
    fn instants_are_rfc3339() {
        assert_eq!(instant(1_000_000), "1970-01-01T00:00:01Z");
    }
}
