//! The discovery documents: SMART App Launch configuration and OpenID Connect provider
//! metadata. Facts about this authorization server; the endpoint URLs come from
//! [`AuthConfig::endpoints`](crate::AuthConfig::endpoints).

use serde_json::{Value, json};

use super::client_auth::ASSERTION_ALGORITHMS;
use crate::config::AuthConfig;

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
    // Professional applications: a professional reads what citizens share with them.
    "user/*.rs",
    "user/Observation.rs",
    "user/Patient.rs",
    "launch",
];

fn algorithm_names() -> Vec<String> {
    ASSERTION_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect()
}

/// With client certificates read, RFC 8705: `tls_client_auth` at the token endpoint and
/// tokens bound to the client's certificate.
fn advertise_mutual_tls(config: &AuthConfig, doc: &mut Value) {
    if !config.client_certificates {
        return;
    }
    if let Some(Value::Array(methods)) = doc.get_mut("token_endpoint_auth_methods_supported") {
        methods.push(json!("tls_client_auth"));
    }
    crate::set_field(
        doc,
        "tls_client_certificate_bound_access_tokens",
        json!(true),
    );
}

/// `/.well-known/smart-configuration`.
pub fn smart_configuration(config: &AuthConfig) -> Value {
    let e = &config.endpoints;
    let mut doc = json!({
        "issuer": config.issuer(),
        "jwks_uri": e.jwks,
        "authorization_endpoint": e.authorization,
        "token_endpoint": e.token,
        "introspection_endpoint": e.introspection,
        "revocation_endpoint": e.revocation,
        "userinfo_endpoint": e.userinfo,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": algorithm_names(),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "launch-ehr",
            "context-ehr-patient",
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
    if config.mode.is_sandbox() {
        crate::set_field(&mut doc, "registration_endpoint", json!(e.registration));
    }
    advertise_mutual_tls(config, &mut doc);
    doc
}

/// `/.well-known/openid-configuration`.
pub fn openid_configuration(config: &AuthConfig) -> Value {
    let e = &config.endpoints;
    let mut doc = json!({
        "issuer": config.issuer(),
        "authorization_endpoint": e.authorization,
        "token_endpoint": e.token,
        "userinfo_endpoint": e.userinfo,
        "jwks_uri": e.jwks,
        "introspection_endpoint": e.introspection,
        "revocation_endpoint": e.revocation,
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
    if config.mode.is_sandbox() {
        crate::set_field(&mut doc, "registration_endpoint", json!(e.registration));
    }
    advertise_mutual_tls(config, &mut doc);
    doc
}
