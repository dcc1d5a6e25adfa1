//! The one error type of the application core: what kind of failure it is, and the
//! OperationOutcome issues that tell the client what is wrong. It carries no HTTP status: the
//! web layer maps each [`ErrorKind`] to a status in one place, and a Bundle entry's
//! `response.status` comes from that same mapping.

use phr_fhir::{Issue, IssueType};

/// What kind of failure an [`Error`] is: the one thing the web layer needs to choose a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or names something that cannot be (bad parameter, bad JSON).
    Invalid,
    /// No valid credentials (no token, an expired or revoked one).
    Unauthorized,
    /// Valid credentials that do not allow this.
    Forbidden,
    /// The resource, version or endpoint does not exist (or must look so to this caller).
    NotFound,
    /// The interaction is not allowed on this resource type.
    MethodNotAllowed,
    /// The response format the client asked for cannot be produced.
    NotAcceptable,
    /// A concurrent change or a duplicate got in the way.
    Conflict,
    /// The resource was deleted.
    Gone,
    /// A condition the client set (`If-Match`, `If-None-Exist`) does not hold.
    PreconditionFailed,
    /// The request is bigger than a configured limit (body size, Bundle entries).
    TooLarge,
    /// The request body's media type is not one this server reads.
    UnsupportedMediaType,
    /// The content breaks a rule: validation against the profiles, Kanta's data rules.
    Unprocessable,
    /// The server failed; nothing was applied.
    Internal,
    /// A feature this server does not have.
    NotImplemented,
    /// Storage is shutting down or not answering, or the server is at its limit of requests
    /// in flight or took too long; try again later.
    Unavailable,
    /// The caller has used up its request budget; try again after `Error::retry_after`.
    TooManyRequests,
    /// The client did not send its request (the body) in time.
    RequestTimeout,
}

impl ErrorKind {
    /// The kind as a word, for people and logs (`unprocessable`, `not-found`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MethodNotAllowed => "not-allowed",
            ErrorKind::NotAcceptable => "not-acceptable",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::PreconditionFailed => "precondition-failed",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::Internal => "internal",
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::TooManyRequests => "too-many-requests",
            ErrorKind::RequestTimeout => "request-timeout",
        }
    }
}

/// A failed request: its [`ErrorKind`] and the issues to report (at least one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct Error {
    kind: ErrorKind,
    issues: Vec<Issue>,
    /// The RFC 6750 `Bearer` challenge of a refused token, for the web layer to send back.
    challenge: Option<String>,
    /// Seconds after which a refused caller may try again (`Retry-After`).
    retry_after: Option<u64>,
}

impl Error {
    /// One error issue of `code` saying `message`.
    pub fn new(kind: ErrorKind, code: IssueType, message: impl Into<String>) -> Self {
        Error::with_issues(kind, vec![Issue::error(code, message)])
    }

    pub fn with_issues(kind: ErrorKind, issues: Vec<Issue>) -> Self {
        Error {
            kind,
            issues,
            challenge: None,
            retry_after: None,
        }
    }

    /// The caller is over its request budget: try again in `retry_after` seconds.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error = Self::new(ErrorKind::TooManyRequests, IssueType::Throttled, message);
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// The server cannot answer now (overloaded, shutting down, too slow): try again in
    /// `retry_after` seconds.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error = Self::new(ErrorKind::Unavailable, IssueType::Throttled, message);
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// The client did not send its request in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RequestTimeout, IssueType::Timeout, message)
    }

    /// Seconds after which a refused caller may try again, if this refusal says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, IssueType::Invalid, message)
    }

    /// An invalid request whose fault lies at `expression` (e.g. `Bundle.entry[2].request`).
    pub fn invalid_at(message: impl Into<String>, expression: impl Into<String>) -> Self {
        Self::with_issues(
            ErrorKind::Invalid,
            vec![Issue::error(IssueType::Invalid, message).at(expression)],
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, IssueType::NotFound, message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Gone, IssueType::Deleted, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, IssueType::Forbidden, message)
    }

    pub fn conflict(code: IssueType, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, IssueType::Conflict, message)
    }

    pub fn unprocessable(issues: Vec<Issue>) -> Self {
        Self::with_issues(ErrorKind::Unprocessable, issues)
    }

    pub fn too_large(code: IssueType, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, code, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::MethodNotAllowed,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, IssueType::NotSupported, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, IssueType::Exception, message)
    }

    /// A refused token or scope check, with its `Bearer` challenge.
    pub fn from_access(err: phr_auth::AccessError) -> Self {
        let kind = match err.status() {
            403 => ErrorKind::Forbidden,
            500 => ErrorKind::Internal,
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Unauthorized,
        };
        let code = match kind {
            ErrorKind::Forbidden => IssueType::Forbidden,
            ErrorKind::Unauthorized => IssueType::Login,
            ErrorKind::Unavailable => IssueType::Throttled,
            _ => IssueType::Exception,
        };
        let mut error = Error::new(kind, code, err.to_string());
        if kind != ErrorKind::Unavailable {
            error.challenge = Some(err.www_authenticate());
        }
        error
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The `Bearer` challenge of a refused token (RFC 6750 §3), if this is one.
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_deref()
    }

    /// Prefixes every issue's message with `prefix` (which entry of a Bundle failed, say).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for issue in &mut self.issues {
            issue.message = format!("{prefix}{}", issue.message);
        }
        self
    }

    /// The messages of the issues, joined: for logs, CLI output and error pages.
    pub fn summary(&self) -> String {
        self.issues
            .iter()
            .map(|i| match &i.expression {
                Some(at) => format!("{} (at {at})", i.message),
                None => i.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<phr_store::StoreError> for Error {
    fn from(err: phr_store::StoreError) -> Self {
        match err {
            phr_store::StoreError::BadCursor | phr_store::StoreError::Unsupported(_) => {
                Error::invalid(err.to_string())
            }
            phr_store::StoreError::Closed | phr_store::StoreError::Unavailable(_) => Error::new(
                ErrorKind::Unavailable,
                IssueType::Throttled,
                err.to_string(),
            ),
            phr_store::StoreError::Engine(_) => {
                tracing::error!(error = %err, "storage failure");
                Error::internal("the storage engine failed; the request was not applied")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tokens_keep_their_challenge_and_kind() {
        let e = Error::from_access(phr_auth::AccessError::Expired);
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.challenge().is_some_and(|c| c.contains("invalid_token")));
        let e = Error::from_access(phr_auth::AccessError::InsufficientScope {
            resource_type: "Observation".into(),
            interaction: "read",
        });
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(e.issues()[0].code, IssueType::Forbidden);
    }

    #[test]
    fn summary_names_where_each_issue_is() {
        let e = Error::invalid_at("needs a method", "Bundle.entry[0].request.method")
            .prefixed("Bundle.entry[0]: ");
        assert_eq!(
            e.summary(),
            "Bundle.entry[0]: needs a method (at Bundle.entry[0].request.method)"
        );
    }
}
