//! The OAuth 2.0 / SMART flows, one module each, as plain functions over an
//! [`AuthService`] with typed inputs and outputs:
//!
//! - [`authorize`]: the authorization-code request (PKCE, SMART `aud`) and the login,
//!   terms-of-use and consent steps behind it, ending in a code for the client;
//! - [`token`]: the token endpoint's code exchange and refresh (rotation, reuse detection),
//!   and the operator's `phr token`;
//! - [`client_credentials`]: SMART Backend Services tokens;
//! - [`client_auth`]: who the calling client is (secret, `private_key_jwt`, certificate,
//!   public);
//! - [`introspection`]: introspection, revocation and userinfo;
//! - [`registration`]: dynamic (RFC 7591) and page registration of sandbox apps;
//! - [`discovery`]: the SMART and OpenID discovery documents;
//! - [`developer`]: the developer console's sign-in at an organisation's identity provider
//!   (production).
//!
//! Every function is synchronous and may block on storage: the web layer runs it on a
//! blocking thread. The few steps that need the network (the upstream identity provider, a
//! client's `jwks_uri`) are separate `async` functions that touch no storage. Nothing here
//! knows HTTP: requests come in as values, answers go out as values or as redirect URLs.

pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod developer;
pub mod discovery;
pub mod introspection;
pub mod registration;
pub mod token;

use serde::{Deserialize, Serialize};

use crate::apps::App;
use crate::error::OAuthError;
use crate::scope::{ScopeSet, Special};
use crate::service::AuthService;
use crate::tokens::AccessClaims;

/// A successful token response (RFC 6749 §5.1 plus the SMART and Kanta context fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    /// The Patient id in context (SMART).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The Patient id again, as Kanta apps read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What `phr token` prints.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub patient_id: String,
    pub grant_id: String,
    pub token: TokenResponse,
}

/// Who and what a new access token is for.
pub(crate) struct Subject<'a> {
    pub patient: Option<&'a str>,
    pub scope: &'a str,
    pub grant_id: Option<&'a str>,
    pub family_id: Option<&'a str>,
    /// The thumbprint of the client certificate the token is bound to.
    pub certificate: Option<&'a str>,
}

/// Signs an access token for `app` and builds the response around it.
pub(crate) fn mint(
    auth: &AuthService,
    app: &App,
    subject: &Subject<'_>,
) -> Result<TokenResponse, OAuthError> {
    if app.certificate_oid.is_some() && subject.certificate.is_none() {
        return Err(OAuthError::invalid_client(
            "this application is bound to its client certificate: it gets tokens only at the token endpoint, presenting that certificate",
        ));
    }
    let config = auth.config();
    let now = auth.now();
    let lifetime = config.access_token_lifetime;
    let scopes = ScopeSet::parse(subject.scope).unwrap_or_default();
    let claims = AccessClaims {
        iss: config.issuer().to_owned(),
        sub: subject.patient.unwrap_or(&app.app_id).to_owned(),
        aud: config.fhir_base_url(),
        exp: now + lifetime,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: app.app_id.clone(),
        scope: subject.scope.to_owned(),
        patient: subject.patient.map(str::to_owned),
        gid: subject.grant_id.map(str::to_owned),
        fid: subject.family_id.map(str::to_owned),
        fhir_user: subject
            .patient
            .filter(|_| scopes.has(Special::FhirUser))
            .map(|p| fhir_user(auth, p)),
        org: app.org.clone(),
        professional: None,
        professional_name: None,
        cnf: subject
            .certificate
            .map(|thumbprint| crate::certificate::Confirmation {
                x5t_s256: thumbprint.to_owned(),
            }),
    };
    let access_token = auth.0.keys.sign(&claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: lifetime,
        scope: subject.scope.to_owned(),
        patient: subject.patient.map(str::to_owned),
        sub: subject.patient.map(str::to_owned),
        refresh_token: None,
        id_token: None,
    })
}

/// The `fhirUser` of a citizen: their Patient resource's URL.
pub(crate) fn fhir_user(auth: &AuthService, patient_id: &str) -> String {
    format!("{}/Patient/{patient_id}", auth.config().fhir_base_url())
}

/// `base` with the query parameters `pairs` added.
pub(crate) fn redirect_with(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => base.to_owned(),
    }
}

/// The client's redirect URI carrying an OAuth error (and the request's `state`).
pub(crate) fn error_redirect(
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
) -> String {
    let mut pairs = vec![
        ("error", error.code),
        ("error_description", error.description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect_with(redirect_uri, &pairs)
}
