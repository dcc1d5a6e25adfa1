//! Machine endpoints: discovery documents, token, introspection, revocation, JWKS, userinfo
//! and the sandbox registration API. JSON in and out, `Cache-Control: no-store` on
//! everything carrying a credential.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use phr_auth::OAuthError;
use phr_auth::flows::client_auth::{self, ClientCredentials, is_basic};
use phr_auth::flows::introspection::{self, TokenQuestion};
use phr_auth::flows::registration::{self, RegistrationError};
use phr_auth::flows::{discovery, token};
use phr_auth::params::Params;
use serde_json::{Value, json};

use super::OAuth;
use crate::tls::client::RequestCertificate;
use crate::web::blocking;

fn public_json(doc: Value, max_age: &'static str) -> Response {
    let mut response = Json(doc).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    response
}

pub async fn smart_configuration(State(o): State<OAuth>) -> Response {
    public_json(
        discovery::smart_configuration(o.auth.config()),
        "public, max-age=300",
    )
}

pub async fn openid_configuration(State(o): State<OAuth>) -> Response {
    public_json(
        discovery::openid_configuration(o.auth.config()),
        "public, max-age=300",
    )
}

pub async fn jwks(State(o): State<OAuth>) -> Response {
    public_json(o.auth.jwks(), "public, max-age=60")
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn json_no_store(status: StatusCode, value: Value) -> Response {
    let mut response = (status, Json(value)).into_response();
    no_store(response.headers_mut());
    response
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    Ok(Params::parse(text))
}

/// An OAuth error answer; a 401 to a client that used Basic credentials says so.
fn oauth_error(error: &OAuthError, used_basic: bool) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_no_store(status, error.to_json());
    if status == StatusCode::UNAUTHORIZED && used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"phr\""),
        );
    }
    response
}

fn stopped() -> OAuthError {
    OAuthError::server_error("the authorization server failed")
}

/// Fetches the key set of a `private_key_jwt` client registered with a `jwks_uri`, when the
/// request needs it (network only; the storage look-up runs on a blocking thread).
async fn fetch_client_keys(o: &OAuth, credentials: Option<ClientCredentials>) {
    let Some(credentials) = credentials else {
        return;
    };
    let auth = o.auth.clone();
    let uri = blocking(move || client_auth::key_set_to_fetch(&auth, &credentials))
        .await
        .flatten();
    if let Some(uri) = uri {
        client_auth::fetch_key_set(&o.auth, &uri).await;
    }
}

pub async fn token(
    State(o): State<OAuth>,
    certificate: Option<Extension<RequestCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let certificate = certificate
        .and_then(|Extension(RequestCertificate(c))| c)
        .map(|c| (*c).clone());
    let authorization = authorization(&headers);
    let used_basic = authorization.as_deref().is_some_and(is_basic);
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(e) => return oauth_error(&e, used_basic),
    };
    fetch_client_keys(
        &o,
        ClientCredentials::from_form(&params, authorization.as_deref()).ok(),
    )
    .await;
    let auth = o.auth.clone();
    let answer = blocking(move || {
        token::form_request(&auth, &params, authorization.as_deref(), certificate)
    })
    .await
    .unwrap_or_else(|| Err(stopped()));
    match answer {
        Ok(answer) => json_no_store(
            StatusCode::OK,
            serde_json::to_value(&answer).unwrap_or(Value::Null),
        ),
        Err(error) => oauth_error(&error, used_basic),
    }
}

/// Reads an introspection or revocation request and fetches what its client needs.
async fn token_question(
    o: &OAuth,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<TokenQuestion, OAuthError> {
    let authorization = authorization(headers);
    let question =
        TokenQuestion::from_form(&form_params(headers, body)?, authorization.as_deref())?;
    fetch_client_keys(o, Some(question.client.clone())).await;
    Ok(question)
}

pub async fn introspect(State(o): State<OAuth>, headers: HeaderMap, body: Bytes) -> Response {
    let used_basic = authorization(&headers).as_deref().is_some_and(is_basic);
    let question = match token_question(&o, &headers, &body).await {
        Ok(question) => question,
        Err(e) => return oauth_error(&e, used_basic),
    };
    let auth = o.auth.clone();
    match blocking(move || introspection::introspect(&auth, &question))
        .await
        .unwrap_or_else(|| Err(stopped()))
    {
        Ok(answer) => json_no_store(
            StatusCode::OK,
            serde_json::to_value(&answer).unwrap_or(Value::Null),
        ),
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub async fn revoke(State(o): State<OAuth>, headers: HeaderMap, body: Bytes) -> Response {
    let used_basic = authorization(&headers).as_deref().is_some_and(is_basic);
    let question = match token_question(&o, &headers, &body).await {
        Ok(question) => question,
        Err(e) => return oauth_error(&e, used_basic),
    };
    let auth = o.auth.clone();
    match blocking(move || introspection::revoke(&auth, &question))
        .await
        .unwrap_or_else(|| Err(stopped()))
    {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub async fn userinfo(State(o): State<OAuth>, headers: HeaderMap) -> Response {
    let authorization = authorization(&headers);
    let auth = o.auth.clone();
    let answer = blocking(move || {
        auth.authenticate(authorization.as_deref())
            .map(|context| introspection::userinfo(&auth, &context))
    })
    .await;
    match answer {
        Some(Ok(info)) => json_no_store(StatusCode::OK, info),
        Some(Err(error)) => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_token"})),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&error.www_authenticate()) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        None => oauth_error(&stopped(), false),
    }
}

/// SMART EHR launch: the organisation's system (a backend-services token of its professional
/// application) names the citizen its professional is opening, by `patient` (Patient id) or
/// `identifier` (`urn:oid:1.2.246.21|[identity code]`), and gets the `launch` value for the
/// professional application's authorization request. The answer is the same whether or not
/// the person uses PHR; the identity code is resolved and dropped, never recorded.
pub async fn launch(
    State(o): State<OAuth>,
    audit: crate::audit::AuditSlot,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = authorization(&headers);
    let auth = o.auth.clone();
    let answer = blocking(move || -> Result<Value, (StatusCode, Value)> {
        audit.update(|r| r.interaction = Some("launch".into()));
        let context = auth.authenticate(authorization.as_deref()).map_err(|_| {
            (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "a backend-services token of the organisation's system is required"}),
            )
        })?;
        let org = match (&context.org, context.is_system(), &context.professional) {
            (Some(org), true, None) => org.clone(),
            _ => {
                return Err((
                    StatusCode::FORBIDDEN,
                    json!({"error": "insufficient_scope", "error_description": "launches are issued to an organisation's system (a system/ token of its professional application)"}),
                ));
            }
        };
        audit.update(|r| {
            r.app_id = Some(context.app_id.clone());
            r.app_name = Some(context.app_name.clone());
            r.actor = "system".into();
            r.org_oid = Some(org.clone());
        });
        let bad = |e: OAuthError| (StatusCode::BAD_REQUEST, e.to_json());
        let params = form_params(&headers, &body).map_err(bad)?;
        let patient = match (
            params.get("patient").map_err(bad)?,
            params.get("identifier").map_err(bad)?,
        ) {
            (Some(_), Some(_)) => {
                return Err(bad(OAuthError::invalid_request(
                    "name the citizen by patient or by identifier, not both",
                )));
            }
            (Some(id), None) => {
                let valid = !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !valid {
                    return Err(bad(OAuthError::invalid_request(
                        "patient must be a Patient id",
                    )));
                }
                Some(id.to_owned())
            }
            (None, Some(identifier)) => {
                let hetu = identifier
                    .strip_prefix(phr_service::professional::HETU_SYSTEM)
                    .and_then(|rest| rest.strip_prefix('|'))
                    .ok_or_else(|| {
                        bad(OAuthError::invalid_request(
                            "identifier must be urn:oid:1.2.246.21|[personal identity code]",
                        ))
                    })?;
                auth.patient_of_identity(hetu).map_err(|e| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        OAuthError::from(e).to_json(),
                    )
                })?
            }
            (None, None) => None,
        };
        audit.subject(patient.clone());
        let launch = phr_auth::flows::authorize::issue_launch(&auth, &org, patient).map_err(|e| {
            let e = OAuthError::from(e);
            (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.to_json(),
            )
        })?;
        Ok(json!({
            "launch": launch,
            "expires_in": phr_auth::flows::authorize::LAUNCH_LIFETIME
        }))
    })
    .await;
    match answer {
        Some(Ok(value)) => json_no_store(StatusCode::OK, value),
        Some(Err((status, value))) => json_no_store(status, value),
        None => oauth_error(&stopped(), false),
    }
}

fn registration_error(code: &str, description: &str, status: StatusCode) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// Self-service registration of sandbox apps (RFC 7591 style). Sandbox mode only.
pub async fn register(State(o): State<OAuth>, body: Bytes) -> Response {
    let auth = o.auth.clone();
    match blocking(move || registration::register_client(&auth, &body)).await {
        Some(Ok(answer)) => json_no_store(StatusCode::CREATED, answer),
        Some(Err(RegistrationError::Closed)) => registration_error(
            "access_denied",
            &RegistrationError::Closed.to_string(),
            StatusCode::FORBIDDEN,
        ),
        Some(Err(RegistrationError::Invalid { code, description })) => {
            registration_error(code, &description, StatusCode::BAD_REQUEST)
        }
        Some(Err(error @ RegistrationError::CertificateRequired)) => registration_error(
            "invalid_client_metadata",
            &error.to_string(),
            StatusCode::BAD_REQUEST,
        ),
        Some(Err(RegistrationError::Failed(e))) => {
            tracing::error!(error = %e, "registration failed");
            registration_error(
                "server_error",
                "registration failed",
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
        None => registration_error(
            "server_error",
            "registration failed",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}
