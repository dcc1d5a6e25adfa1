//! The one place where outcomes become HTTP: [`status_of`] maps every kind of failure to its
//! status, [`success_status`] every kind of success, and [`render`] writes a failure as an
//! OperationOutcome. Handlers' errors, a Bundle entry's `response.status` and the history
//! Bundle all use these, so a batch entry answers exactly what the same request alone would.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_service::bundle::Success;
use phr_service::{Change, Error, ErrorKind};

use super::respond::{Format, outcome_response};

/// The HTTP status of a failure.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
    }
}

/// The HTTP status of a success.
pub fn success_status(success: Success) -> StatusCode {
    match success {
        Success::Created => StatusCode::CREATED,
        Success::Updated | Success::Existing | Success::Read => StatusCode::OK,
        Success::Deleted => StatusCode::NO_CONTENT,
    }
}

/// The HTTP status of a write.
pub fn written_status(change: Change) -> StatusCode {
    success_status(match change {
        Change::Created => Success::Created,
        Change::Updated => Success::Updated,
        Change::Existing => Success::Existing,
    })
}

/// A status as a Bundle entry's `response.status` says it: `201 Created`.
pub fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// A failure as a response: its status, an OperationOutcome in `format`, the
/// `WWW-Authenticate` challenge of a refused token and the `Retry-After` of a refusal that
/// says when to come back.
pub fn render(error: &Error, format: Format) -> Response {
    let mut response = outcome_response(status_of(error.kind()), error.issues(), format);
    if let Some(challenge) = error.challenge()
        && let Ok(value) = HeaderValue::from_str(challenge)
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    if error.kind() == ErrorKind::RequestTimeout {
        // The rest of a body that came too slowly is not waited for.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response.extensions_mut().insert(Failure(error.clone()));
    response
}

/// Marks a response as a failure, for the layers around the handlers: the FHIR format layer
/// renders it again in the negotiated format, the audit layer records its issue.
#[derive(Debug, Clone)]
pub struct Failure(pub Error);

/// A handler's failure: rendered as an OperationOutcome (JSON, then in the negotiated format
/// by the FHIR router's format layer).
#[derive(Debug)]
pub struct FhirError(pub Error);

impl From<Error> for FhirError {
    fn from(error: Error) -> Self {
        FhirError(error)
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        render(&self.0, Format::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tokens_carry_their_challenge() {
        let error = Error::from_access(phr_auth::AccessError::MissingToken);
        let response = render(&error, Format::default());
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(response.extensions().get::<Failure>().is_some());
    }

    #[test]
    fn status_lines_name_the_reason() {
        assert_eq!(status_line(success_status(Success::Created)), "201 Created");
        assert_eq!(
            status_line(status_of(ErrorKind::Unprocessable)),
            "422 Unprocessable Entity"
        );
    }
}
