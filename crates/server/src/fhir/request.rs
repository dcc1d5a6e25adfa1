//! What every FHIR request needs before its handler runs, in one extractor ([`Fhir`]): who is
//! calling (the bearer token, or nobody in the open sandbox), the negotiated response format,
//! `Prefer`, the query parameters, and the request's audit slot. Also the JSON body reader
//! and [`blocking`], which runs the application core off the async workers.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use phr_fhir::IssueType;
use phr_service::{Caller, Error, ErrorKind, FhirService};
use serde_json::Value;

use super::error::FhirError;
use super::respond::{self, Format, Prefer};
use crate::AppState;
use crate::audit::AuditSlot;
use crate::tls::client::RequestCertificate;
use phr_auth::PresentedCertificate;
use std::sync::Arc;

/// The outcome of content negotiation, decided once by the FHIR router's format layer.
#[derive(Debug, Clone)]
pub struct Negotiated(pub Result<Format, Error>);

/// A FHIR request, ready for its handler.
pub struct Fhir {
    pub caller: Caller,
    pub format: Format,
    pub prefer: Prefer,
    /// The query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Where the handler puts what the audit record should say.
    pub audit: AuditSlot,
    /// Where the handler notes what the sandbox traffic record should say.
    pub traffic: crate::traffic::TrafficSlot,
}

impl FromRequestParts<AppState> for Fhir {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = parse_query(parts.uri.query());
        let format = negotiated(parts, &query)?;
        let audit = AuditSlot::of(&parts.extensions);
        let certificate = parts
            .extensions
            .get::<RequestCertificate>()
            .and_then(|c| c.0.clone());
        let traffic = crate::traffic::TrafficSlot::of(&parts.extensions);
        let caller = caller(state, &parts.headers, certificate, &traffic).await?;
        audit.caller(&caller);
        let stu3 = parts.extensions.get::<super::stu3::Stu3Request>().is_some();
        served_version(&caller, stu3)?;
        state.limits.charge(&caller)?;
        Ok(Fhir {
            caller,
            format,
            prefer: respond::prefer(&parts.headers),
            query,
            headers: parts.headers.clone(),
            audit,
            traffic,
        })
    }
}

/// In production an application is served on the FHIR versions it registered for
/// (`phr app register --fhir-version`); the sandbox serves both to every application.
fn served_version(caller: &Caller, stu3: bool) -> Result<(), Error> {
    let context = match caller {
        Caller::App(context) | Caller::Professional(context) => context,
        _ => return Ok(()),
    };
    let Some(versions) = context.fhir_versions else {
        return Ok(());
    };
    let (served, name, other) = if stu3 {
        (versions.stu3, "STU3", "/fhir/r4")
    } else {
        (versions.r4, "R4", "/fhir/stu3")
    };
    if served {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "this application is registered for FHIR {} only, not {name}: call {other}, or have \
         its registration changed",
        if stu3 { "R4" } else { "STU3" },
    )))
}

/// The response format alone, for requests that need no caller (`/metadata`).
impl FromRequestParts<AppState> for Format {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let query = parse_query(parts.uri.query());
        Ok(negotiated(parts, &query)?)
    }
}

fn negotiated(parts: &Parts, query: &[(String, String)]) -> Result<Format, Error> {
    match parts.extensions.get::<Negotiated>() {
        Some(Negotiated(result)) => result.clone(),
        None => respond::negotiate(&parts.headers, query),
    }
}

/// Who is calling: the bearer token's application (and citizen), or in the open sandbox and
/// without a token, nobody in particular. A token, when sent, is always checked, a
/// certificate-bound one against the request's client certificate. A token this process has
/// checked before, with every status it depends on still cached, is accepted here; any other
/// check may read the authorization database, so it runs on the blocking pool.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    certificate: Option<Arc<PresentedCertificate>>,
    traffic: &crate::traffic::TrafficSlot,
) -> Result<Caller, Error> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if authorization.is_none() && state.config.open_sandbox {
        return Ok(Caller::OpenSandbox);
    }
    if let Some(context) = state
        .auth
        .authenticate_known(authorization.as_deref(), certificate.as_deref())
    {
        return Ok(caller_of(context));
    }
    let auth = state.auth.clone();
    let traffic = traffic.clone();
    tokio::task::spawn_blocking(move || {
        let result = auth.authenticate_presenting(authorization.as_deref(), certificate.as_deref());
        if let Err(refused) = &result
            && auth.config().mode.is_sandbox()
        {
            note_refusal(&auth, authorization.as_deref(), refused, &traffic);
        }
        result
    })
    .await
    .map_err(|_| Error::internal("the authorization check stopped unexpectedly"))?
    .map(caller_of)
    .map_err(Error::from_access)
}

fn caller_of(context: phr_auth::AccessContext) -> Caller {
    if context.professional.is_some() {
        Caller::Professional(context)
    } else {
        Caller::App(context)
    }
}

/// In the sandbox traffic record, a call with one of our tokens that has expired, been
/// revoked or lost its grant is its application's: the acceptance checks judge how the
/// application reacts.
fn note_refusal(
    auth: &phr_auth::AuthService,
    authorization: Option<&str>,
    refused: &phr_auth::AccessError,
    traffic: &crate::traffic::TrafficSlot,
) {
    use phr_auth::AccessError;
    let reason = match refused {
        AccessError::Expired => "expired",
        AccessError::Revoked => "revoked",
        AccessError::GrantWithdrawn => "withdrawn",
        _ => return,
    };
    if let Some((app, grant)) = auth.token_owner(authorization) {
        traffic.refused(app, grant, reason);
    }
}

/// Decodes a query string into parameters, in order.
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Runs `work` on the blocking pool: storage, validation and the authorization database
/// block, and never on an async worker.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&FhirService) -> Result<T, Error> + Send + 'static,
) -> Result<T, FhirError> {
    let fhir = state.fhir.clone();
    tokio::task::spawn_blocking(move || work(&fhir))
        .await
        .map_err(|_| Error::internal("the request handler stopped unexpectedly"))?
        .map_err(FhirError)
}

/// Runs Bundle `work` on the bulk lane (threads of lower CPU priority), so reads and searches
/// do not wait behind uploads for a core.
pub async fn bulk<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&FhirService) -> Result<T, Error> + Send + 'static,
) -> Result<T, FhirError> {
    let fhir = state.fhir.clone();
    state
        .bulk
        .run(move || work(&fhir))
        .await
        .ok_or_else(|| Error::internal("the request handler stopped unexpectedly"))?
        .map_err(FhirError)
}

/// Reads a FHIR JSON body within the configured size limit. It is parsed by [`parse_json`]
/// where the work runs.
pub async fn json_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Error> {
    respond::require_json_body(headers)?;
    read_body(state, body, "the request body").await
}

/// Reads a body within the configured size limit and body timeout (a client that trickles
/// its body is cut off).
pub async fn read_body(state: &AppState, body: Body, what: &str) -> Result<Bytes, Error> {
    let limit = state.config.max_body_bytes;
    match crate::limits::read_body(state, body, limit).await {
        Some(read) => read.map_err(|_| {
            Error::too_large(
                IssueType::TooLong,
                format!("{what} is larger than the limit of {limit} bytes"),
            )
        }),
        None => Err(Error::request_timeout(format!(
            "{what} did not arrive within {} s",
            state.limits.config.body_timeout_seconds
        ))),
    }
}

/// Parses a request body as FHIR JSON: a byte-order mark is accepted, anything else
/// malformed (bad syntax, a repeated property name) is a 400 naming its line and column.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid("the request body is empty"));
    }
    phr_fhir::json::parse(bytes)
        .map_err(|e| Error::with_issues(ErrorKind::Invalid, vec![e.to_issue()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_auth::{AccessContext, FhirVersions};
    use phr_service::ErrorKind;

    fn app(versions: Option<FhirVersions>) -> Caller {
        Caller::App(AccessContext {
            patient: Some("p".into()),
            app_id: "a".into(),
            app_name: "A".into(),
            scopes: Default::default(),
            scope: String::new(),
            grant_id: None,
            token_id: "t".into(),
            expires_at: 0,
            org: None,
            professional: None,
            contents: None,
            fhir_versions: versions,
        })
    }

    #[test]
    fn an_r4_only_app_is_refused_on_stu3_and_served_on_r4() {
        let r4_only = app(Some(FhirVersions::R4));
        let refused = served_version(&r4_only, true).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
        assert!(served_version(&r4_only, false).is_ok());
        let both = app(Some(FhirVersions::BOTH));
        assert!(served_version(&both, true).is_ok());
        // No limit (sandbox mode): both served.
        assert!(served_version(&app(None), true).is_ok());
        assert!(served_version(&Caller::OpenSandbox, true).is_ok());
    }
}
