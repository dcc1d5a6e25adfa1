//! What a successful interaction hands back: a stored [`Version`] and, for writes, what
//! [`Change`] it was. The web layer turns these into statuses and headers; the CLI counts
//! them.

use phr_fhir::IssueType;
use phr_store::{NewVersion, Rejection, StoredResource};

use crate::error::Error;

/// One stored version of a resource, as its JSON bytes (never re-parsed on the way out).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    /// Microseconds since the epoch.
    pub last_updated: i64,
    pub body: Vec<u8>,
}

impl Version {
    /// `Type/id`, as audit records and references name it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

impl From<StoredResource> for Version {
    fn from(stored: StoredResource) -> Self {
        Version {
            resource_type: stored.resource_type,
            id: stored.id,
            version: stored.version,
            last_updated: stored.last_updated,
            body: stored.body,
        }
    }
}

impl From<&StoredResource> for Version {
    fn from(stored: &StoredResource) -> Self {
        Version {
            resource_type: stored.resource_type.clone(),
            id: stored.id.clone(),
            version: stored.version,
            last_updated: stored.last_updated,
            body: stored.body.clone(),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new resource (a create, or an update that created).
    Created,
    /// A new version of an existing resource.
    Updated,
    /// Nothing: a conditional create found its match, which is returned.
    Existing,
}

/// A successful create or update: what happened and the version that is current now.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub change: Change,
    pub version: Version,
}

impl Written {
    pub(crate) fn new(change: Change, new: NewVersion, version: u64) -> Self {
        Written {
            change,
            version: Version {
                resource_type: new.resource_type,
                id: new.id,
                version,
                last_updated: new.last_updated,
                body: new.body,
            },
        }
    }
}

/// A write storage refused.
pub(crate) fn rejection(rejection: Rejection) -> Error {
    match &rejection {
        Rejection::VersionConflict { .. } => {
            Error::conflict(IssueType::Conflict, rejection.to_string())
        }
        Rejection::AlreadyExists { .. } => {
            Error::conflict(IssueType::Duplicate, rejection.to_string())
        }
        Rejection::NotFound { .. } => Error::not_found(rejection.to_string()),
    }
}

/// A conditional create whose condition matched more than one resource.
pub(crate) fn multiple_matches(resource_type: &str, count: usize) -> Error {
    Error::new(
        crate::error::ErrorKind::PreconditionFailed,
        IssueType::MultipleMatches,
        format!(
            "If-None-Exist matched {count} {resource_type} resources; it must match at most one"
        ),
    )
}
