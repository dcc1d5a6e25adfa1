//! Machine endpoints: discovery documents, token, introspection, revocation, JWKS,
//! userinfo and the sandbox registration API. JSON in and out, `Cache-Control: no-store`
//! on everything carrying a credential.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    INTROSPECT_PATH, JWKS_PATH, REGISTER_API_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH,
    header_str, no_store,
};
use crate::apps::{AppKind, AppStatus, ClientType, NewApp};
use crate::audit::{AuditRecord, Usage};
use crate::client_auth::ASSERTION_ALGORITHMS;
use crate::error::{AuthError, OAuthError};
use crate::params::Params;
use crate::service::AuthService;

const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.read",
    "patient/*.rs",
    "patient/Observation.read",
    "patient/Observation.write",
    "patient/Observation.rs",
    "patient/Observation.cud",
    "patient/MedicationAdministration.read",
    "patient/MedicationAdministration.write",
];

fn algorithm_names() -> Vec<String> {
    ASSERTION_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect()
}

pub async fn smart_configuration(State(service): State<AuthService>) -> Response {
    let c = service.config();
    let mut doc = json!({
        "issuer": c.issuer(),
        "jwks_uri": c.endpoint(JWKS_PATH),
        "authorization_endpoint": c.endpoint(super::AUTHORIZE_PATH),
        "token_endpoint": c.endpoint(TOKEN_PATH),
        "introspection_endpoint": c.endpoint(INTROSPECT_PATH),
        "revocation_endpoint": c.endpoint(REVOKE_PATH),
        "userinfo_endpoint": c.endpoint(USERINFO_PATH),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": algorithm_names(),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-offline",
            "permission-online",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
            "authorize-post"
        ]
    });
    if c.mode.is_sandbox() {
        doc["registration_endpoint"] = json!(c.endpoint(REGISTER_API_PATH));
    }
    public_json(doc)
}

pub async fn openid_configuration(State(service): State<AuthService>) -> Response {
    let c = service.config();
    let mut doc = json!({
        "issuer": c.issuer(),
        "authorization_endpoint": c.endpoint(super::AUTHORIZE_PATH),
        "token_endpoint": c.endpoint(TOKEN_PATH),
        "userinfo_endpoint": c.endpoint(USERINFO_PATH),
        "jwks_uri": c.endpoint(JWKS_PATH),
        "introspection_endpoint": c.endpoint(INTROSPECT_PATH),
        "revocation_endpoint": c.endpoint(REVOKE_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": algorithm_names(),
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["fi", "sv", "en"],
        "authorization_response_iss_parameter_supported": true
    });
    if c.mode.is_sandbox() {
        doc["registration_endpoint"] = json!(c.endpoint(REGISTER_API_PATH));
    }
    public_json(doc)
}

fn public_json(doc: Value) -> Response {
    let mut response = Json(doc).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

pub async fn jwks(State(service): State<AuthService>) -> Response {
    let mut response = Json(service.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
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

fn oauth_error(error: &OAuthError, used_basic: bool) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, Json(error.to_json())).into_response();
    no_store(response.headers_mut());
    if status == StatusCode::UNAUTHORIZED && used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"phr\""),
        );
    }
    response
}

fn json_no_store(value: Value) -> Response {
    let mut response = Json(value).into_response();
    no_store(response.headers_mut());
    response
}

pub async fn token(
    State(service): State<AuthService>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let used_basic = authorization.is_some_and(|a| a.to_ascii_lowercase().starts_with("basic "));
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(e) => return oauth_error(&e, used_basic),
    };
    let result = service.token(&params, authorization).await;
    let client = params.get("client_id").ok().flatten().map(str::to_owned);
    let grant_type = params
        .get("grant_type")
        .ok()
        .flatten()
        .unwrap_or("")
        .to_owned();
    let mut record = AuditRecord::new(Usage::Authorization, "anonymous");
    record.interaction = Some(format!("token:{grant_type}"));
    match result {
        Ok(answer) => {
            record.patient_id = answer.patient.clone();
            record.actor = answer
                .patient
                .as_ref()
                .map(|p| format!("Patient/{p}"))
                .unwrap_or_else(|| "system".into());
            record.app_id = service
                .decode_access_token(&answer.access_token)
                .map(|c| c.client_id)
                .or(client);
            record.user_rights = Some(answer.scope.clone());
            audit_quietly(&service, record);
            json_no_store(serde_json::to_value(&answer).unwrap_or(Value::Null))
        }
        Err(error) => {
            record.app_id = client;
            record.status = error.status;
            record.error_code = Some(error.code.to_owned());
            record.error_detail = Some(error.description.clone());
            audit_quietly(&service, record);
            oauth_error(&error, used_basic)
        }
    }
}

pub(crate) fn audit_quietly(service: &AuthService, record: AuditRecord) {
    if let Err(e) = service.audit(record) {
        tracing::error!(error = %e, "audit record could not be queued");
    }
}

pub async fn introspect(
    State(service): State<AuthService>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let used_basic = authorization.is_some_and(|a| a.to_ascii_lowercase().starts_with("basic "));
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(e) => return oauth_error(&e, used_basic),
    };
    match service.introspect(&params, authorization).await {
        Ok(answer) => json_no_store(serde_json::to_value(&answer).unwrap_or(Value::Null)),
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub async fn revoke(
    State(service): State<AuthService>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let used_basic = authorization.is_some_and(|a| a.to_ascii_lowercase().starts_with("basic "));
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(e) => return oauth_error(&e, used_basic),
    };
    match service.revoke(&params, authorization).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => oauth_error(&error, used_basic),
    }
}

pub async fn userinfo(State(service): State<AuthService>, headers: HeaderMap) -> Response {
    match service.authenticate(header_str(&headers, header::AUTHORIZATION)) {
        Ok(context) => match context.patient {
            Some(patient) => json_no_store(json!({
                "sub": patient,
                "fhirUser": format!("{}/Patient/{patient}", service.config().fhir_base_url()),
            })),
            None => json_no_store(json!({ "sub": context.app_id })),
        },
        Err(error) => {
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
    }
}

/// RFC 7591 client metadata (the subset this server uses).
#[derive(Debug, Deserialize)]
pub struct ClientMetadata {
    client_name: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    contacts: Vec<String>,
}

fn registration_error(code: &str, description: &str, status: StatusCode) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// Self-service registration of sandbox apps (RFC 7591 style). Sandbox mode only.
pub async fn register_api(State(service): State<AuthService>, body: Bytes) -> Response {
    if !service.config().mode.is_sandbox() {
        return registration_error(
            "access_denied",
            "self-service registration is only open in the sandbox",
            StatusCode::FORBIDDEN,
        );
    }
    let metadata: ClientMetadata = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return registration_error(
                "invalid_client_metadata",
                &e.to_string(),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let method = metadata
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic");
    let Some(client_type) = ClientType::parse(method) else {
        return registration_error(
            "invalid_client_metadata",
            "unsupported token_endpoint_auth_method",
            StatusCode::BAD_REQUEST,
        );
    };
    let new = NewApp {
        app_id: None,
        name: metadata.client_name,
        kind: AppKind::Wellbeing,
        client_type,
        redirect_uris: metadata.redirect_uris,
        scope: metadata.scope,
        contact: metadata.contacts.into_iter().next(),
        jwks: metadata.jwks,
        jwks_uri: metadata.jwks_uri,
    };
    match service.register_app(new, AppStatus::Sandbox) {
        Ok(registered) => {
            let app = &registered.app;
            let mut answer = json!({
                "client_id": app.app_id,
                "client_id_issued_at": app.created_at,
                "client_name": app.name,
                "redirect_uris": app.redirect_uris,
                "scope": app.scope,
                "token_endpoint_auth_method": method,
                "grant_types": if client_type == ClientType::PrivateKeyJwt {
                    json!(["client_credentials", "authorization_code", "refresh_token"])
                } else {
                    json!(["authorization_code", "refresh_token"])
                },
                "response_types": ["code"],
            });
            if let Some(secret) = &registered.client_secret {
                answer["client_secret"] = json!(secret);
                answer["client_secret_expires_at"] = json!(0);
            }
            let mut response = (StatusCode::CREATED, Json(answer)).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(AuthError::Invalid(message)) => {
            let code = if message.contains("redirect") {
                "invalid_redirect_uri"
            } else {
                "invalid_client_metadata"
            };
            registration_error(code, &message, StatusCode::BAD_REQUEST)
        }
        Err(e) => {
            tracing::error!(error = %e, "registration failed");
            registration_error(
                "server_error",
                "registration failed",
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}
