//! What a token says, for the client that holds it: introspection (RFC 7662), revocation
//! (RFC 7009: a refresh token revokes its family, an access token joins the revocation
//! list) and userinfo. Other clients' tokens read as inactive and are never revoked.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client_auth::{self, ClientCredentials};
use super::fhir_user;
use crate::enforce::AccessContext;
use crate::error::OAuthError;
use crate::params::Params;
use crate::service::AuthService;

/// Token introspection answer (RFC 7662).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// An introspection or revocation request: the client and the token it asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuestion {
    pub client: ClientCredentials,
    pub token: String,
}

impl TokenQuestion {
    /// Reads the request from its form parameters and `Authorization` header value.
    pub fn from_form(params: &Params, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let client = ClientCredentials::from_form(params, authorization)?;
        Ok(TokenQuestion {
            client,
            token: params.required("token")?.to_owned(),
        })
    }
}

/// RFC 7662 introspection by an authenticated client.
pub fn introspect(
    auth: &AuthService,
    question: &TokenQuestion,
) -> Result<Introspection, OAuthError> {
    let app = client_auth::authenticate(auth, &question.client)?;
    let enforcer = &auth.0.enforcer;
    if let Ok(claims) = enforcer.verify(&question.token) {
        if claims.client_id != app.app_id || enforcer.check(&claims).is_err() {
            return Ok(Introspection::default());
        }
        return Ok(Introspection {
            active: true,
            scope: Some(claims.scope),
            client_id: Some(claims.client_id),
            sub: Some(claims.sub),
            patient: claims.patient,
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            token_type: Some("Bearer".into()),
        });
    }
    match auth.0.tokens.refresh_token(&question.token)? {
        Some(refresh)
            if refresh.app_id == app.app_id
                && refresh.family_active
                && !refresh.used
                && refresh.expires_at >= auth.now() =>
        {
            Ok(Introspection {
                active: true,
                scope: Some(refresh.scope),
                client_id: Some(refresh.app_id),
                sub: Some(refresh.patient_id.clone()),
                patient: Some(refresh.patient_id),
                exp: Some(refresh.expires_at),
                iat: Some(refresh.created_at),
                iss: Some(auth.config().issuer().to_owned()),
                aud: None,
                token_type: Some("refresh_token".into()),
            })
        }
        _ => Ok(Introspection::default()),
    }
}

/// RFC 7009 revocation. Unknown tokens and other clients' tokens are ignored.
pub fn revoke(auth: &AuthService, question: &TokenQuestion) -> Result<(), OAuthError> {
    let app = client_auth::authenticate(auth, &question.client)?;
    let enforcer = &auth.0.enforcer;
    if let Ok(claims) = enforcer.verify(&question.token) {
        if claims.client_id == app.app_id {
            auth.0.tokens.revoke_access_token(&claims.jti, claims.exp)?;
            enforcer.revoked(&claims.jti, claims.exp);
            enforcer.announce();
        }
        return Ok(());
    }
    if let Some(refresh) = auth.0.tokens.refresh_token(&question.token)?
        && refresh.app_id == app.app_id
    {
        auth.0
            .tokens
            .revoke_family(&refresh.family_id, "revoked by client")?;
        enforcer.forget_family(&refresh.family_id);
        enforcer.announce();
    }
    Ok(())
}

/// The OpenID Connect userinfo of an authenticated request.
pub fn userinfo(auth: &AuthService, context: &AccessContext) -> Value {
    match &context.patient {
        Some(patient) => json!({
            "sub": patient,
            "fhirUser": fhir_user(auth, patient),
        }),
        None => json!({ "sub": context.app_id }),
    }
}
