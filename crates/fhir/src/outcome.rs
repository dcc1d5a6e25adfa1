//! Issues and OperationOutcome: the one way every layer reports what is wrong with input.

use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (value set `issue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Expired,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Extension,
    TooCostly,
    BusinessRule,
    Conflict,
    Throttled,
    Timeout,
    Exception,
    Informational,
}

impl IssueType {
    pub fn code(self) -> &'static str {
        use IssueType::*;
        match self {
            Invalid => "invalid",
            Structure => "structure",
            Required => "required",
            Value => "value",
            Invariant => "invariant",
            Security => "security",
            Login => "login",
            Expired => "expired",
            Forbidden => "forbidden",
            Processing => "processing",
            NotSupported => "not-supported",
            Duplicate => "duplicate",
            MultipleMatches => "multiple-matches",
            NotFound => "not-found",
            Deleted => "deleted",
            TooLong => "too-long",
            CodeInvalid => "code-invalid",
            Extension => "extension",
            TooCostly => "too-costly",
            BusinessRule => "business-rule",
            Conflict => "conflict",
            Throttled => "throttled",
            Timeout => "timeout",
            Exception => "exception",
            Informational => "informational",
        }
    }
}

/// One finding about a request or a resource. `expression` is a FHIRPath to the element,
/// e.g. `Observation.component[1].valueQuantity.unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub expression: Option<String>,
    pub message: String,
}

impl Issue {
    pub fn error(code: IssueType, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            expression: None,
            message: message.into(),
        }
    }

    pub fn warning(code: IssueType, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            code,
            expression: None,
            message: message.into(),
        }
    }

    pub fn information(code: IssueType, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Information,
            code,
            expression: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity <= Severity::Error
    }

    pub fn to_json(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity.code(),
            "code": self.code.code(),
            "diagnostics": self.message,
        });
        if let (Some(expr), Value::Object(m)) = (&self.expression, &mut issue) {
            m.insert("expression".into(), json!([expr]));
        }
        issue
    }
}

/// True when any issue is an error or fatal.
pub fn has_errors(issues: &[Issue]) -> bool {
    issues.iter().any(Issue::is_error)
}

/// An OperationOutcome resource carrying `issues`; an empty list becomes one
/// "informational: All OK" issue, because `issue` is 1..*.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let list: Vec<Value> = if issues.is_empty() {
        vec![Issue::information(IssueType::Informational, "All OK").to_json()]
    } else {
        issues.iter().map(Issue::to_json).collect()
    };
    json!({ "resourceType": "OperationOutcome", "issue": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_carries_expression_and_message() {
        let oo = operation_outcome(&[
            Issue::error(IssueType::Required, "status is required").at("Observation.status")
        ]);
        assert_eq!(oo["issue"][0]["severity"], "error");
        assert_eq!(oo["issue"][0]["code"], "required");
        assert_eq!(oo["issue"][0]["expression"][0], "Observation.status");
        assert_eq!(oo["issue"][0]["diagnostics"], "status is required");
    }

    #[test]
    fn empty_outcome_still_has_an_issue() {
        let oo = operation_outcome(&[]);
        assert_eq!(oo["issue"].as_array().unwrap().len(), 1);
        assert_eq!(oo["issue"][0]["severity"], "information");
    }
}
