//! The one error of a conversion: which element, in which version, and why it cannot cross.

use phr_fhir::{Issue, IssueType};

use crate::Version;

/// Why an element could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The element is not part of the source version's resource (a misspelled or
    /// other-version element): the input does not have the source version's shape.
    Unknown,
    /// The element is well-formed but the target version has no place for it (or for its
    /// value): converting would lose it.
    NotExpressible,
    /// The element does not have the shape its definition gives it (an object where an array
    /// is due, say).
    Malformed,
}

/// An element that cannot be converted, named by its FHIRPath in the source resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConvertError {
    pub reason: Reason,
    /// E.g. `MedicationAdministration.performer[0].onBehalfOf`.
    pub path: String,
    pub message: String,
    /// The version converted to.
    pub to: Version,
}

impl ConvertError {
    pub fn unknown(path: &str, from: Version) -> Self {
        ConvertError {
            reason: Reason::Unknown,
            path: path.to_string(),
            message: format!(
                "is not an element of FHIR {} ({})",
                from.name(),
                from.number()
            ),
            to: from.other(),
        }
    }

    pub fn not_expressible(path: &str, to: Version, why: impl Into<String>) -> Self {
        ConvertError {
            reason: Reason::NotExpressible,
            path: path.to_string(),
            message: format!("cannot be expressed in FHIR {}: {}", to.name(), why.into()),
            to,
        }
    }

    pub fn malformed(path: &str, to: Version, why: impl Into<String>) -> Self {
        ConvertError {
            reason: Reason::Malformed,
            path: path.to_string(),
            message: why.into(),
            to,
        }
    }

    /// The error as an OperationOutcome issue with its `expression`.
    pub fn to_issue(&self) -> Issue {
        let code = match self.reason {
            Reason::Unknown | Reason::Malformed => IssueType::Structure,
            Reason::NotExpressible => IssueType::NotSupported,
        };
        Issue::error(code, self.to_string()).at(self.path.clone())
    }
}
