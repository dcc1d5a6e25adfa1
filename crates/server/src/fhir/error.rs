//! The one place where failures become HTTP: every error leaves as an OperationOutcome with
//! the status that fits it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use phr_fhir::{Issue, IssueType};

use super::respond::{Format, outcome_response};

/// A failed FHIR interaction: the HTTP status and what to tell the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
    /// How to render the outcome (JSON, pretty or not).
    pub format: Format,
    /// `WWW-Authenticate` for 401 and 403 from token checks.
    pub www_authenticate: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: IssueType, message: impl Into<String>) -> Self {
        ApiError {
            status,
            issues: vec![Issue::error(code, message)],
            format: Format::default(),
            www_authenticate: None,
        }
    }

    pub fn with_issues(status: StatusCode, issues: Vec<Issue>) -> Self {
        ApiError {
            status,
            issues,
            format: Format::default(),
            www_authenticate: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, IssueType::NotFound, message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, IssueType::Deleted, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            IssueType::Conflict,
            message,
        )
    }

    pub fn unprocessable(issues: Vec<Issue>) -> Self {
        Self::with_issues(StatusCode::UNPROCESSABLE_ENTITY, issues)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, IssueType::Forbidden, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            message,
        )
    }

    /// A failed token or scope check.
    pub fn from_access(err: phr_auth::AccessError) -> Self {
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let code = match status {
            StatusCode::FORBIDDEN => IssueType::Forbidden,
            StatusCode::UNAUTHORIZED => IssueType::Login,
            _ => IssueType::Exception,
        };
        let mut error = ApiError::new(status, code, err.to_string());
        error.www_authenticate = Some(err.www_authenticate());
        error
    }

    pub fn formatted(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
}

impl From<phr_store::StoreError> for ApiError {
    fn from(err: phr_store::StoreError) -> Self {
        match err {
            phr_store::StoreError::BadCursor | phr_store::StoreError::Unsupported(_) => {
                ApiError::bad_request(err.to_string())
            }
            phr_store::StoreError::Closed | phr_store::StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Throttled,
                err.to_string(),
            ),
            phr_store::StoreError::Engine(_) => {
                tracing::error!(error = %err, "storage failure");
                ApiError::internal("the storage engine failed; the request was not applied")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = outcome_response(self.status, &self.issues, self.format);
        if let Some(challenge) = self.www_authenticate
            && let Ok(value) = axum::http::HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
