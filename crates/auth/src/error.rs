//! The crate's error types: [`AuthError`] for service operations, [`OAuthError`] for the
//! OAuth endpoints (RFC 6749 §5.2 error codes), and [`AccessError`] for the enforcement API
//! (401 vs 403, with the `WWW-Authenticate` challenge of RFC 6750).

use phr_fhir::outcome::{Issue, IssueType, operation_outcome};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A storage engine failed (the engine's own message; engines convert their errors).
    #[error("auth storage: {0}")]
    Storage(String),
    #[error("auth storage: {0}")]
    Io(#[from] std::io::Error),
    /// The database cannot be reached or did not answer in time (HTTP 503); the engine
    /// reconnects by itself.
    #[error("the authorization database is unavailable: {0}")]
    Unavailable(String),
    #[error("auth configuration: {0}")]
    Config(String),
    #[error("signing key: {0}")]
    Signing(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("the person is under the minimum age of {0}")]
    UnderAge(u32),
    #[error("upstream identity provider: {0}")]
    Upstream(String),
    #[error("creating the Patient resource failed: {0}")]
    PatientRegistry(String),
    /// A record queue (`audit`, `traffic`) no longer takes records: the service is closing.
    #[error("the {0} queue is closed")]
    QueueClosed(&'static str),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// An OAuth 2.0 error response (`{"error": …, "error_description": …}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    /// HTTP status: 400, or 401 for `invalid_client`, 500 for `server_error`.
    pub status: u16,
}

impl OAuthError {
    fn new(code: &'static str, status: u16, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", 400, d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_response_type", 400, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new("server_error", 500, d)
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({ "error": self.code, "error_description": self.description })
    }
}

impl From<AuthError> for OAuthError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::NotAllowed(d) => OAuthError::unauthorized_client(d),
            AuthError::Invalid(d) => OAuthError::invalid_request(d),
            AuthError::Unavailable(_) => OAuthError::new(
                "temporarily_unavailable",
                503,
                "the authorization server cannot reach its database; try again shortly",
            ),
            other => {
                tracing::error!(error = %other, "token endpoint failed");
                OAuthError::server_error("the authorization server failed")
            }
        }
    }
}

/// Why a FHIR request is not allowed. [`AccessError::status`] tells 401 from 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("an access token is required (Authorization: Bearer …)")]
    MissingToken,
    #[error("the access token is malformed or its signature is not valid")]
    InvalidToken,
    #[error("the access token has expired")]
    Expired,
    /// Signed by this server's keys (or naming another issuer) but for another public URL:
    /// typically a token minted with `phr token` without the server's `--public-url`.
    #[error("the access token was issued by {issued_by}, this server is {expected}")]
    WrongIssuer { issued_by: String, expected: String },
    #[error("the access token is for {audience}, this server's FHIR base is {expected}")]
    WrongAudience { audience: String, expected: String },
    #[error("the access token has been revoked")]
    Revoked,
    /// A certificate-bound token over a connection without that certificate (RFC 8705).
    #[error("{0}")]
    CertificateMismatch(&'static str),
    #[error("the citizen has withdrawn this application's access")]
    GrantWithdrawn,
    #[error("the application is not active (status {0})")]
    AppInactive(String),
    #[error("the granted scopes do not allow {interaction} on {resource_type}")]
    InsufficientScope {
        resource_type: String,
        interaction: &'static str,
    },
    #[error("the authorization check failed")]
    Internal,
    /// The authorization database cannot be reached: the request may be retried later.
    #[error("the authorization database is unavailable; try again shortly")]
    Unavailable,
}

impl AccessError {
    pub fn status(&self) -> u16 {
        match self {
            AccessError::InsufficientScope { .. } => 403,
            AccessError::Internal => 500,
            AccessError::Unavailable => 503,
            _ => 401,
        }
    }

    /// A failed look-up: unavailable (503) when the database is out of reach, else internal.
    pub fn from_storage(error: &AuthError) -> AccessError {
        match error {
            AuthError::Unavailable(_) => AccessError::Unavailable,
            _ => AccessError::Internal,
        }
    }

    /// The `WWW-Authenticate` value to send with a 401 or 403 (RFC 6750 §3).
    pub fn www_authenticate(&self) -> String {
        match self {
            AccessError::MissingToken => "Bearer realm=\"phr\"".to_owned(),
            AccessError::InsufficientScope { .. } => {
                format!(
                    "Bearer realm=\"phr\", error=\"insufficient_scope\", error_description=\"{}\"",
                    quoted_string_content(&self.to_string())
                )
            }
            _ => format!(
                "Bearer realm=\"phr\", error=\"invalid_token\", error_description=\"{}\"",
                quoted_string_content(&self.to_string())
            ),
        }
    }

    /// A FHIR OperationOutcome describing the refusal.
    pub fn outcome(&self) -> Value {
        let code = match self {
            AccessError::MissingToken
            | AccessError::InvalidToken
            | AccessError::WrongIssuer { .. }
            | AccessError::WrongAudience { .. } => IssueType::Login,
            AccessError::Expired => IssueType::Expired,
            AccessError::Revoked
            | AccessError::GrantWithdrawn
            | AccessError::AppInactive(_)
            | AccessError::CertificateMismatch(_) => IssueType::Security,
            AccessError::InsufficientScope { .. } => IssueType::Forbidden,
            AccessError::Internal => IssueType::Exception,
            AccessError::Unavailable => IssueType::Throttled,
        };
        operation_outcome(&[Issue::error(code, self.to_string())])
    }
}

/// `text` as the content of an HTTP quoted-string (RFC 9110 §5.6.4): printable ASCII only
/// (a header value cannot carry more), `"` and `\` escaped. URLs named in a message come
/// from a token, so they are cut short too.
fn quoted_string_content(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(300) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_mismatch_names_both_urls_in_the_challenge() {
        let error = AccessError::WrongIssuer {
            issued_by: "http://127.0.0.1:8080".into(),
            expected: "https://phr.example.fi".into(),
        };
        assert_eq!(error.status(), 401);
        assert_eq!(
            error.to_string(),
            "the access token was issued by http://127.0.0.1:8080, this server is https://phr.example.fi"
        );
        assert_eq!(
            error.www_authenticate(),
            "Bearer realm=\"phr\", error=\"invalid_token\", error_description=\"the access token was issued by http://127.0.0.1:8080, this server is https://phr.example.fi\""
        );
    }

    #[test]
    fn challenge_descriptions_cannot_break_out_of_their_quotes() {
        let error = AccessError::WrongIssuer {
            issued_by: "x\", error=\"forged\u{1}é".into(),
            expected: "y".into(),
        };
        let header = error.www_authenticate();
        assert!(
            header.contains("issued by x\\\", error=\\\"forged??"),
            "{header}"
        );
        assert!(header.is_ascii());
    }
}
