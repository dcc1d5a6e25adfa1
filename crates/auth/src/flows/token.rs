//! The token endpoint: exchanging an authorization code (PKCE, redirect URI and client
//! checks; a replayed code revokes what it produced) and refreshing (rotation: each refresh
//! token is accepted once, and presenting a used one revokes its whole family — the
//! legitimate client and an attacker both lose it, the citizen's grant stays), with
//! client_credentials handed to [`super::client_credentials`]. Also `phr token`, the
//! operator's sandbox shortcut.
//!
//! Every answer, success or refusal, is audited here.

use serde::Serialize;

use super::client_auth::{self, ClientCredentials};
use super::{IssuedToken, Subject, TokenResponse, fhir_user, mint};
use crate::apps::App;
use crate::audit::{AuditRecord, Usage};
use crate::certificate::{self, PresentedCertificate};
use crate::error::{AuthError, OAuthError};
use crate::hetu::Hetu;
use crate::params::Params;
use crate::scope::{ScopeSet, Special};
use crate::secrets::pkce_s256_matches;
use crate::service::AuthService;
use crate::tokens::{NewFamily, Redemption};

/// What a token request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        /// A narrower scope than the family's, if asked.
        scope: Option<String>,
    },
    ClientCredentials {
        scope: String,
    },
}

impl Grant {
    /// The `grant_type` value.
    pub fn code(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
        }
    }
}

/// A token request: who asks (the client's credentials) and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub client: ClientCredentials,
    pub grant: Grant,
    /// The client certificate the request came with (over TLS or from a trusted proxy).
    pub certificate: Option<PresentedCertificate>,
}

impl TokenRequest {
    /// Reads a token request from its form parameters and `Authorization` header value.
    pub fn from_form(params: &Params, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let grant_type = params.required("grant_type")?;
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {grant_type} is not supported"
            )));
        }
        let client = ClientCredentials::from_form(params, authorization)?;
        let owned = |name: &str| -> Result<Option<String>, OAuthError> {
            Ok(params.get(name)?.map(str::to_owned))
        };
        let grant = match grant_type {
            "authorization_code" => Grant::AuthorizationCode {
                code: params.required("code")?.to_owned(),
                redirect_uri: owned("redirect_uri")?,
                code_verifier: owned("code_verifier")?,
            },
            "refresh_token" => Grant::RefreshToken {
                refresh_token: params.required("refresh_token")?.to_owned(),
                scope: owned("scope")?,
            },
            "client_credentials" => Grant::ClientCredentials {
                scope: params.required("scope")?.to_owned(),
            },
            other => {
                return Err(OAuthError::unsupported_grant_type(format!(
                    "grant_type {other} is not supported"
                )));
            }
        };
        Ok(TokenRequest {
            client,
            grant,
            certificate: None,
        })
    }
}

/// Answers a token request, and audits the answer.
pub fn request(auth: &AuthService, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let result = answer(auth, request);
    // An authenticated client is named by its registration, an assertion's included.
    let (client_id, result) = match result {
        Ok((app_id, response)) => (Some(app_id), Ok(response)),
        Err(error) => (request.client.client_id().map(str::to_owned), Err(error)),
    };
    audit(auth, request.grant.code(), client_id.as_deref(), &result);
    note_traffic(auth, request.grant.code(), client_id, &result);
    result
}

/// The sandbox traffic record of a token request (sandbox mode only): the acceptance checks
/// look for refresh-token grants and how the application reacted to a withdrawn grant.
fn note_traffic(
    auth: &AuthService,
    grant_type: &str,
    client_id: Option<String>,
    result: &Result<TokenResponse, OAuthError>,
) {
    let Some(app_id) = client_id else { return };
    if !auth.config().mode.is_sandbox() {
        return;
    }
    let row = crate::traffic::TrafficRow {
        app_id,
        at_us: crate::clock::Clock::now_micros(auth.clock().as_ref()),
        kind: crate::traffic::RowKind::Request,
        interaction: format!("token:{grant_type}"),
        resource_type: None,
        status: match result {
            Ok(_) => 200,
            Err(error) => error.status,
        },
        content: None,
        detail: serde_json::Value::Null,
    };
    if let Err(e) = auth.record_traffic(vec![row]) {
        tracing::warn!(error = %e, "could not record sandbox traffic");
    }
}

/// Answers a token request as the token endpoint received it (form parameters, the
/// `Authorization` header value and the client certificate); a malformed request is refused
/// and audited too.
pub fn form_request(
    auth: &AuthService,
    params: &Params,
    authorization: Option<&str>,
    certificate: Option<PresentedCertificate>,
) -> Result<TokenResponse, OAuthError> {
    match TokenRequest::from_form(params, authorization) {
        Ok(mut parsed) => {
            parsed.certificate = certificate;
            request(auth, &parsed)
        }
        Err(error) => {
            let result = Err(error);
            let grant_type = params.get("grant_type").ok().flatten().unwrap_or("");
            let client_id = params.get("client_id").ok().flatten();
            audit(auth, grant_type, client_id, &result);
            result
        }
    }
}

fn audit(
    auth: &AuthService,
    grant_type: &str,
    client_id: Option<&str>,
    result: &Result<TokenResponse, OAuthError>,
) {
    let mut record = AuditRecord::new(Usage::Authorization, "anonymous");
    record.interaction = Some(format!("token:{grant_type}"));
    record.app_id = client_id.map(str::to_owned);
    match result {
        Ok(answer) => {
            record.patient_id = answer.patient.clone();
            record.actor = answer
                .patient
                .as_ref()
                .map(|p| format!("Patient/{p}"))
                .unwrap_or_else(|| "system".into());
            record.user_rights = Some(answer.scope.clone());
        }
        Err(error) => {
            record.status = error.status;
            record.error_code = Some(error.code.to_owned());
            record.error_detail = Some(error.description.clone());
        }
    }
    auth.audit_quietly(record);
}

/// The answer, with the id of the client it was given to.
fn answer(
    auth: &AuthService,
    request: &TokenRequest,
) -> Result<(String, TokenResponse), OAuthError> {
    let presented = request.certificate.as_ref();
    let app = client_auth::authenticate_with_certificate(auth, &request.client, presented)?;
    // A client registered with a certificate OID gets nothing without that certificate, and
    // its tokens are bound to it.
    let binding = certificate::binding_for(&app, presented)?;
    let binding = binding.as_deref();
    auth.rotate_key_if_due()?;
    let response = match &request.grant {
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => exchange_code(
            auth,
            &app,
            code,
            redirect_uri.as_deref(),
            code_verifier.as_deref(),
            binding,
        ),
        Grant::RefreshToken {
            refresh_token,
            scope,
        } => refresh(auth, &app, refresh_token, scope.as_deref(), binding),
        Grant::ClientCredentials { scope } => {
            super::client_credentials::grant(auth, &app, scope, binding)
        }
    }?;
    Ok((app.app_id, response))
}

/// The claims of an OpenID Connect ID token.
#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(rename = "fhirUser")]
    fhir_user: String,
}

fn exchange_code(
    auth: &AuthService,
    app: &App,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    certificate: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let now = auth.now();
    let tokens = &auth.0.tokens;
    // Burnt on every presentation, so a wrong verifier cannot be retried.
    let (data, expires_at) = match tokens.redeem_code(code)? {
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown authorization code")),
        Redemption::Replayed { family_id } => {
            // Whatever the code produced may be in the wrong hands.
            if let Some(family) = family_id {
                auth.0.enforcer.forget_family(&family);
                auth.0.enforcer.announce();
            }
            return Err(OAuthError::invalid_grant(
                "the authorization code has already been used",
            ));
        }
        Redemption::Fresh { data, expires_at } => (data, expires_at),
    };
    if data.app_id != app.app_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if expires_at < now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    match redirect_uri {
        Some(uri) if uri != data.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if data.redirect_uri_given => {
            return Err(OAuthError::invalid_request("redirect_uri is required"));
        }
        _ => {}
    }
    match (&data.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if pkce_s256_matches(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("PKCE verification failed"));
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant("code_verifier is required"));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier given but no code_challenge was sent",
            ));
        }
        (None, None) => {}
    }
    if let Some(professional) = &data.professional {
        return professional_code(auth, app, &data, professional, certificate);
    }
    if !grant_is_active(auth, &data.grant_id)? {
        return Err(OAuthError::invalid_grant(
            "the citizen's grant is no longer active",
        ));
    }
    let scopes = ScopeSet::parse(&data.scope).unwrap_or_default();
    let family = if scopes.has(Special::OfflineAccess) {
        let family = NewFamily {
            family_id: uuid::Uuid::new_v4().to_string(),
            grant_id: data.grant_id.clone(),
            app_id: app.app_id.clone(),
            patient_id: data.patient_id.clone(),
            scope: data.scope.clone(),
        };
        let refresh = tokens.start_family(&family, Some(code))?.ok_or_else(|| {
            OAuthError::invalid_grant("the authorization code has already been used")
        })?;
        Some((family.family_id, refresh))
    } else {
        None
    };
    let mut response = mint(
        auth,
        app,
        &Subject {
            patient: Some(&data.patient_id),
            scope: &data.scope,
            grant_id: Some(&data.grant_id),
            family_id: family.as_ref().map(|(f, _)| f.as_str()),
            certificate,
        },
    )?;
    response.refresh_token = family.map(|(_, refresh)| refresh);
    if scopes.has(Special::OpenId) {
        let config = auth.config();
        let claims = IdTokenClaims {
            iss: config.issuer(),
            sub: &data.patient_id,
            aud: &app.app_id,
            exp: now + config.access_token_lifetime,
            iat: now,
            auth_time: data.auth_time,
            nonce: data.nonce.as_deref(),
            fhir_user: fhir_user(auth, &data.patient_id),
        };
        response.id_token = Some(auth.0.keys.sign(&claims)?);
    }
    Ok(response)
}

/// The tokens of a professional's sign-in (SMART standalone launch): an access token naming
/// the professional and their organisation, no refresh token, and with `openid` an ID token
/// whose `fhirUser` is the professional (`Practitioner/[id]`).
fn professional_code(
    auth: &AuthService,
    app: &App,
    data: &crate::tokens::CodeData,
    professional: &str,
    certificate: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if app.kind != crate::apps::AppKind::Professional || app.org.is_none() {
        return Err(OAuthError::invalid_grant(
            "the code is a professional's, and this is not a professional application",
        ));
    }
    let mut response = mint_professional(
        auth,
        app,
        professional,
        data.professional_name.as_deref(),
        &data.scope,
        certificate,
    )?;
    // An EHR launch's citizen is context for the application, not a confinement of the
    // token: each request still names the citizen and is checked.
    response.patient = data.launch_patient.clone();
    let scopes = ScopeSet::parse(&data.scope).unwrap_or_default();
    if scopes.has(Special::OpenId) {
        let config = auth.config();
        let now = auth.now();
        let claims = IdTokenClaims {
            iss: config.issuer(),
            sub: professional,
            aud: &app.app_id,
            exp: now + config.access_token_lifetime,
            iat: now,
            auth_time: data.auth_time,
            nonce: data.nonce.as_deref(),
            fhir_user: format!("{}/Practitioner/{professional}", config.fhir_base_url()),
        };
        response.id_token = Some(auth.0.keys.sign(&claims)?);
    }
    Ok(response)
}

fn grant_is_active(auth: &AuthService, grant_id: &str) -> Result<bool, AuthError> {
    Ok(auth.0.grants.get(grant_id)?.is_some_and(|g| g.is_active()))
}

fn refresh(
    auth: &AuthService,
    app: &App,
    token: &str,
    narrowed: Option<&str>,
    certificate: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let tokens = &auth.0.tokens;
    let unknown = || OAuthError::invalid_grant("unknown refresh token");
    let found = tokens.refresh_token(token)?.ok_or_else(unknown)?;
    if found.app_id != app.app_id {
        return Err(unknown());
    }
    let reused = || -> Result<OAuthError, OAuthError> {
        tokens.revoke_family(&found.family_id, "refresh token reuse")?;
        auth.0.enforcer.forget_family(&found.family_id);
        auth.0.enforcer.announce();
        tracing::warn!(app = %app.app_id, "refresh token reuse detected; token family revoked");
        Ok(OAuthError::invalid_grant(
            "refresh token reuse detected; all tokens of this sign-in are revoked",
        ))
    };
    if found.used {
        return Err(reused()?);
    }
    if !found.family_active {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if found.expires_at < auth.now() {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if !grant_is_active(auth, &found.grant_id)? {
        return Err(OAuthError::invalid_grant(
            "the citizen's grant is no longer active",
        ));
    }
    let scope = match narrowed {
        Some(text) => {
            let asked =
                ScopeSet::parse(text).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let family_scopes = ScopeSet::parse(&found.scope).unwrap_or_default();
            if !family_scopes.contains(&asked) {
                return Err(OAuthError::invalid_scope(
                    "a refresh may not widen the granted scope",
                ));
            }
            text.to_owned()
        }
        None => found.scope.clone(),
    };
    // Used by a concurrent request between the look-up and now: that is reuse too.
    let Some(next) = tokens.rotate_refresh(token)? else {
        return Err(reused()?);
    };
    let mut response = mint(
        auth,
        app,
        &Subject {
            patient: Some(&found.patient_id),
            scope: &scope,
            grant_id: Some(&found.grant_id),
            family_id: Some(&found.family_id),
            certificate,
        },
    )?;
    response.refresh_token = Some(next);
    Ok(response)
}

/// Operator/test helper (`phr token`): takes the test citizen into use if needed, records a
/// grant of `scope` (∩ the app's registration) and issues tokens. Sandbox mode only.
pub fn issue_for_cli(
    auth: &AuthService,
    hetu: &str,
    app_id: &str,
    scope: &str,
) -> Result<IssuedToken, AuthError> {
    if !auth.config().mode.is_sandbox() {
        return Err(AuthError::NotAllowed(
            "phr token works in sandbox mode only".into(),
        ));
    }
    let hetu = Hetu::parse(hetu).map_err(|e| AuthError::Invalid(format!("identity code: {e}")))?;
    let citizen = auth.citizen_for_sandbox_identity(&hetu)?;
    let app = auth
        .app(app_id)?
        .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
    if !app.status.is_usable(auth.config().mode) {
        return Err(AuthError::NotAllowed(format!(
            "application {app_id} is {}",
            app.status.code()
        )));
    }
    let asked = ScopeSet::parse(scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let granted = asked.intersect(&app.allowed_scopes());
    if !granted.has_patient_scopes() {
        return Err(AuthError::Invalid(
            "none of the requested scopes is registered for this application".into(),
        ));
    }
    let grant = auth.record_consent(&citizen.patient_id, &app.app_id, &granted)?;
    let family = if granted.has(Special::OfflineAccess) {
        let family = NewFamily {
            family_id: uuid::Uuid::new_v4().to_string(),
            grant_id: grant.grant_id.clone(),
            app_id: app.app_id.clone(),
            patient_id: citizen.patient_id.clone(),
            scope: grant.scope.clone(),
        };
        let refresh = auth
            .0
            .tokens
            .start_family(&family, None)?
            .ok_or_else(|| AuthError::Storage("the token family was not started".into()))?;
        Some((family.family_id, refresh))
    } else {
        None
    };
    let mut token = mint(
        auth,
        &app,
        &Subject {
            patient: Some(&citizen.patient_id),
            scope: &grant.scope,
            grant_id: Some(&grant.grant_id),
            family_id: family.as_ref().map(|(f, _)| f.as_str()),
            certificate: None,
        },
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))?;
    token.refresh_token = family.map(|(_, refresh)| refresh);
    let mut record = AuditRecord::new(Usage::Operator, "operator");
    record.patient_id = Some(citizen.patient_id.clone());
    record.app_id = Some(app.app_id.clone());
    record.app_name = Some(app.name.clone());
    record.interaction = Some("token:cli".into());
    record.user_rights = Some(grant.scope.clone());
    auth.audit(record)?;
    Ok(IssuedToken {
        patient_id: citizen.patient_id,
        grant_id: grant.grant_id,
        token,
    })
}

/// What `phr token --professional` prints.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedProfessionalToken {
    pub professional: String,
    pub org: String,
    pub token: TokenResponse,
}

/// Operator/test helper (`phr token --professional`): a token of the professional
/// application `app_id` for the test professional `professional` of the organisation `org`
/// (the application's own). Sandbox mode only. Whose data it reads is decided per request:
/// only a citizen's who has consented and has an active care relationship with `org`.
pub fn issue_professional_for_cli(
    auth: &AuthService,
    professional: &str,
    professional_name: Option<&str>,
    org: &str,
    app_id: &str,
    scope: &str,
) -> Result<IssuedProfessionalToken, AuthError> {
    if !auth.config().mode.is_sandbox() {
        return Err(AuthError::NotAllowed(
            "phr token works in sandbox mode only".into(),
        ));
    }
    let professional = professional.trim();
    if professional.is_empty()
        || professional.len() > 64
        || !professional
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(AuthError::Invalid(
            "professional id: 1–64 characters of A–Z a–z 0–9 - . _".into(),
        ));
    }
    let org = auth
        .org(org)?
        .ok_or_else(|| AuthError::NotFound(format!("organisation {org}")))?;
    let app = auth
        .app(app_id)?
        .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
    if app.kind != crate::apps::AppKind::Professional || app.org.as_deref() != Some(&org.oid) {
        return Err(AuthError::NotAllowed(format!(
            "application {app_id} is not a professional application of organisation {}",
            org.oid
        )));
    }
    if !app.status.is_usable(auth.config().mode) {
        return Err(AuthError::NotAllowed(format!(
            "application {app_id} is {}",
            app.status.code()
        )));
    }
    let asked = ScopeSet::parse(scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let granted = asked.intersect(&app.allowed_scopes());
    if !granted.has_patient_scopes() {
        return Err(AuthError::Invalid(
            "none of the requested scopes is registered for this application".into(),
        ));
    }
    let scope = granted.to_string();
    let name = professional_name.map(str::trim).filter(|n| !n.is_empty());
    let token = mint_professional(auth, &app, professional, name, &scope, None)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    let mut record = AuditRecord::new(Usage::Operator, "operator");
    record.app_id = Some(app.app_id.clone());
    record.app_name = Some(app.name.clone());
    record.interaction = Some("token:cli-professional".into());
    record.user_rights = Some(scope);
    auth.audit(record)?;
    Ok(IssuedProfessionalToken {
        professional: professional.to_owned(),
        org: org.oid,
        token,
    })
}

/// Signs a professional's access token: no citizen, no grant; the organisation and the
/// professional in the claims, `fhirUser` naming the professional.
pub(crate) fn mint_professional(
    auth: &AuthService,
    app: &crate::apps::App,
    professional: &str,
    name: Option<&str>,
    scope: &str,
    certificate: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if app.certificate_oid.is_some() && certificate.is_none() {
        return Err(OAuthError::invalid_client(
            "this application is bound to its client certificate: it gets tokens only at the token endpoint, presenting that certificate",
        ));
    }
    let config = auth.config();
    let now = auth.now();
    let lifetime = config.access_token_lifetime;
    let claims = crate::tokens::AccessClaims {
        iss: config.issuer().to_owned(),
        sub: professional.to_owned(),
        aud: config.fhir_base_url(),
        exp: now + lifetime,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: app.app_id.clone(),
        scope: scope.to_owned(),
        patient: None,
        gid: None,
        fid: None,
        fhir_user: Some(format!(
            "{}/Practitioner/{professional}",
            config.fhir_base_url()
        )),
        org: app.org.clone(),
        professional: Some(professional.to_owned()),
        professional_name: name.map(str::to_owned),
        cnf: certificate.map(|thumbprint| crate::certificate::Confirmation {
            x5t_s256: thumbprint.to_owned(),
        }),
    };
    let access_token = auth.0.keys.sign(&claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: lifetime,
        scope: scope.to_owned(),
        patient: None,
        sub: None,
        refresh_token: None,
        id_token: None,
    })
}
