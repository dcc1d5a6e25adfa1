//! The acceptance checks run over an application's sandbox traffic, per data content: data,
//! one declaration per check ([`CHECKS`]) with its rationale and the Kanta rule it comes
//! from, and a plain function that judges the observed rows. A report names each failed check
//! with example requests (times, interactions, statuses, identifiers and issues: never
//! personal data).
//!
//! Checks on resources look at the rows of the one data content; checks on requests
//! (Bundles, the budget, searches of the content's resource type) at the application's
//! requests of the period.

use serde::Serialize;
use serde_json::Value;

use super::{RowKind, TrafficRow};

/// What a check is judged on.
pub struct Observed<'a> {
    /// The data content (catalogue code).
    pub content: &'a str,
    /// The resource type the content is stored as.
    pub resource_type: &'a str,
    /// Every row of the application in the period, oldest first.
    pub rows: &'a [TrafficRow],
}

impl Observed<'_> {
    fn resources(&self) -> impl Iterator<Item = &TrafficRow> {
        self.rows
            .iter()
            .filter(|r| r.kind == RowKind::Resource && r.content.as_deref() == Some(self.content))
    }

    fn requests(&self) -> impl Iterator<Item = &TrafficRow> {
        self.rows.iter().filter(|r| r.kind == RowKind::Request)
    }
}

/// One acceptance check.
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    /// Why it matters.
    pub rationale: &'static str,
    /// The Kanta rule it comes from.
    pub kanta_rule: &'static str,
    pub judge: fn(&Observed<'_>) -> Verdict,
}

/// What a check found: failing rows (the examples), or why it could not pass.
pub struct Verdict {
    pub failing: Vec<TrafficRow>,
    /// Set when the check fails for lack of evidence rather than a bad request.
    pub missing: Option<&'static str>,
}

impl Verdict {
    fn of(failing: Vec<TrafficRow>) -> Verdict {
        Verdict {
            failing,
            missing: None,
        }
    }
}

/// Every check, in the order a report lists them.
pub static CHECKS: &[Check] = &[
    Check {
        id: "valid-resources",
        title: "Every resource written is valid against the profile it claims",
        rationale: "Kanta validates every resource against its declared Finnish PHR profile and rejects the ones that do not conform; an application that sends invalid data loses it.",
        kanta_rule: "Profile declaration mandatory; the server validates against the declared profile and rejects non-conforming content (language, narrative, urn:uuid identifier, creatingApplication included)",
        judge: valid_resources,
    },
    Check {
        id: "conditional-create",
        title: "Creates are conditional on the business identifier",
        rationale: "After a communication failure the application cannot know whether a create succeeded; If-None-Exist: identifier=… makes resending safe.",
        kanta_rule: "Business identifier mandatory and globally unique (urn:ietf:rfc:3986 + urn:uuid) so that clients can check whether a create succeeded (conditional create by identifier)",
        judge: conditional_create,
    },
    Check {
        id: "no-duplicates",
        title: "No resource is created twice",
        rationale: "Repeated hourly sync must be idempotent: the same measurement stored twice shows twice to the citizen and to professionals.",
        kanta_rule: "Conditional create by identifier: a resource with a known identifier is not created again",
        judge: no_duplicates,
    },
    Check {
        id: "bundle-limit",
        title: "Bundles stay within the entry limit",
        rationale: "Batches over the limit are refused whole; the application must split its sync.",
        kanta_rule: "Batch and transaction Bundles of at most the configured number of entries (300 in Kanta practice)",
        judge: bundle_limit,
    },
    Check {
        id: "hourly-budget",
        title: "Requests stay within the hourly budget",
        rationale: "Data is synchronised once an hour; an application over its request budget is throttled (429) and must back off.",
        kanta_rule: "New data is updated into Kanta PHR from the application every hour; request budgets per application and citizen",
        judge: hourly_budget,
    },
    Check {
        id: "search-patient",
        title: "Searches carry patient",
        rationale: "Every search of the citizen's data is confined to one compartment; a search without patient is refused.",
        kanta_rule: "Searching Observation, MedicationAdministration, QuestionnaireResponse and CarePlan needs the patient parameter",
        judge: search_patient,
    },
];

fn valid_resources(o: &Observed<'_>) -> Verdict {
    let written: Vec<&TrafficRow> = o.resources().collect();
    let failing: Vec<TrafficRow> = written
        .iter()
        .filter(|r| r.status == 422)
        .map(|r| (*r).clone())
        .collect();
    if failing.is_empty() && !written.iter().any(|r| (200..300).contains(&r.status)) {
        return Verdict {
            failing,
            missing: Some("no resource of this content was stored in the period"),
        };
    }
    Verdict::of(failing)
}

fn conditional_create(o: &Observed<'_>) -> Verdict {
    let creates: Vec<&TrafficRow> = o
        .resources()
        .filter(|r| r.interaction == "create")
        .collect();
    if creates.is_empty() {
        return Verdict {
            failing: Vec::new(),
            missing: Some("no create of this content was observed in the period"),
        };
    }
    Verdict::of(
        creates
            .into_iter()
            .filter(|r| r.detail.get("conditional").and_then(Value::as_bool) != Some(true))
            .cloned()
            .collect(),
    )
}

fn no_duplicates(o: &Observed<'_>) -> Verdict {
    let mut seen = std::collections::HashSet::new();
    Verdict::of(
        o.resources()
            .filter(|r| r.status == 201)
            .filter(|r| {
                r.detail
                    .get("identifier")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !seen.insert(id.to_string()))
            })
            .cloned()
            .collect(),
    )
}

fn bundle_limit(o: &Observed<'_>) -> Verdict {
    Verdict::of(
        o.requests()
            .filter(|r| matches!(r.interaction.as_str(), "batch" | "transaction"))
            .filter(|r| r.status == 413)
            .cloned()
            .collect(),
    )
}

fn hourly_budget(o: &Observed<'_>) -> Verdict {
    Verdict::of(o.requests().filter(|r| r.status == 429).cloned().collect())
}

fn search_patient(o: &Observed<'_>) -> Verdict {
    Verdict::of(
        o.requests()
            .filter(|r| r.interaction.starts_with("search"))
            .filter(|r| r.resource_type.as_deref() == Some(o.resource_type))
            .filter(|r| r.detail.get("patient").and_then(Value::as_bool) == Some(false))
            .cloned()
            .collect(),
    )
}

/// At most this many examples per failed check.
const EXAMPLES: usize = 5;

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    pub title: &'static str,
    pub rationale: &'static str,
    pub kanta_rule: &'static str,
    pub passed: bool,
    /// How many requests or resources failed it.
    pub failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Up to five failing requests or resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<TrafficRow>,
}

/// The acceptance report of one application and data content.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub app_id: String,
    pub content: String,
    /// The period observed (microseconds since the epoch).
    pub since_us: i64,
    pub until_us: i64,
    pub requests: usize,
    pub resources: usize,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

/// Runs every check over the rows of `app_id`.
pub fn report(app_id: &str, observed: &Observed<'_>, since_us: i64, until_us: i64) -> Report {
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .map(|check| {
            let verdict = (check.judge)(observed);
            CheckResult {
                id: check.id,
                title: check.title,
                rationale: check.rationale,
                kanta_rule: check.kanta_rule,
                passed: verdict.failing.is_empty() && verdict.missing.is_none(),
                failures: verdict.failing.len(),
                reason: verdict.missing,
                examples: verdict.failing.into_iter().take(EXAMPLES).collect(),
            }
        })
        .collect();
    Report {
        app_id: app_id.to_string(),
        content: observed.content.to_string(),
        since_us,
        until_us,
        requests: observed.requests().count(),
        resources: observed.resources().count(),
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: RowKind, interaction: &str, status: u16, detail: Value) -> TrafficRow {
        TrafficRow {
            app_id: "a".into(),
            at_us: 1,
            kind,
            interaction: interaction.into(),
            resource_type: Some("Observation".into()),
            status,
            content: (kind == RowKind::Resource).then(|| "steps".to_string()),
            detail,
        }
    }

    fn failed(rows: &[TrafficRow]) -> Vec<&'static str> {
        let observed = Observed {
            content: "steps",
            resource_type: "Observation",
            rows,
        };
        report("a", &observed, 0, 2)
            .checks
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn a_careful_client_passes_and_each_misstep_fails_its_check() {
        let good = vec![
            row(
                RowKind::Request,
                "batch",
                200,
                serde_json::json!({"entries": 2}),
            ),
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": true, "identifier": "urn:uuid:1"}),
            ),
            row(
                RowKind::Resource,
                "create",
                200,
                serde_json::json!({"conditional": true, "identifier": "urn:uuid:1"}),
            ),
            row(
                RowKind::Request,
                "search-type",
                200,
                serde_json::json!({"patient": true}),
            ),
        ];
        assert!(failed(&good).is_empty(), "{:?}", failed(&good));
        let bad = vec![
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": false, "identifier": "urn:uuid:2"}),
            ),
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": false, "identifier": "urn:uuid:2"}),
            ),
            row(
                RowKind::Resource,
                "create",
                422,
                serde_json::json!({"conditional": true}),
            ),
            row(
                RowKind::Request,
                "batch",
                413,
                serde_json::json!({"entries": 400}),
            ),
            row(RowKind::Request, "create", 429, serde_json::json!({})),
            row(
                RowKind::Request,
                "search-type",
                400,
                serde_json::json!({"patient": false}),
            ),
        ];
        assert_eq!(
            failed(&bad),
            [
                "valid-resources",
                "conditional-create",
                "no-duplicates",
                "bundle-limit",
                "hourly-budget",
                "search-patient"
            ]
        );
        assert_eq!(
            failed(&[]),
            ["valid-resources", "conditional-create"],
            "no evidence"
        );
    }
}
