//! The OAuth flows: validating an authorization request, issuing authorization codes, and
//! the token endpoint (authorization_code with PKCE, refresh_token with rotation and reuse
//! detection, client_credentials), plus introspection and revocation.
//!
//! Access tokens are ES256 JWTs naming the grant (`gid`) and, when refreshable, the token
//! family (`fid`), so enforcement can cut them off when either ends. Refresh tokens and
//! codes are random values stored as digests; each is accepted once. Presenting a used
//! refresh token revokes its whole family (the legitimate client and an attacker both lose
//! it, and the citizen's grant stays); replaying a code revokes what it produced.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::apps::{App, ClientType};
use crate::error::{AuthError, OAuthError, Result};
use crate::grants::Grant;
use crate::params::Params;
use crate::scope::{ScopeContext, ScopeSet, Special};
use crate::secrets::{digest, pkce_s256_matches, random_token};
use crate::service::AuthService;

/// Verified access tokens remembered at most (each entry is a few hundred bytes).
const VERIFIED_CACHE_LIMIT: usize = 20_000;

/// Claims of our access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
}

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

/// A validated authorization request waiting for login and consent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub app_name: String,
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// What may be granted: requested ∩ registered.
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeRejection {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// Tell the client through its redirect URI (this URL carries `error` and `state`).
    Redirect(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeData {
    app_id: String,
    patient_id: String,
    grant_id: String,
    redirect_uri: String,
    redirect_uri_given: bool,
    scope: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    auth_time: i64,
}

/// Token introspection answer (RFC 7662).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

impl Introspection {
    fn inactive() -> Self {
        Introspection {
            active: false,
            scope: None,
            client_id: None,
            sub: None,
            patient: None,
            exp: None,
            iat: None,
            iss: None,
            aud: None,
            token_type: None,
        }
    }
}

/// What `phr token` prints.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub patient_id: String,
    pub grant_id: String,
    pub token: TokenResponse,
}

fn redirect_with(base: &str, pairs: &[(&str, &str)]) -> String {
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

fn error_redirect(
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
) -> AuthorizeRejection {
    let mut pairs = vec![
        ("error", error.code),
        ("error_description", error.description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    AuthorizeRejection::Redirect(redirect_with(redirect_uri, &pairs))
}

fn is_pkce_challenge(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AuthService {
    /// Checks an `/oauth/authorize` request (RFC 6749 §4.1.1, PKCE, SMART `aud`).
    pub fn validate_authorize(
        &self,
        params: &Params,
    ) -> std::result::Result<AuthorizeRequest, AuthorizeRejection> {
        let page = |e: OAuthError| AuthorizeRejection::Page(e.description);
        let client_id = params
            .get("client_id")
            .map_err(page)?
            .ok_or_else(|| AuthorizeRejection::Page("client_id is missing".into()))?;
        let app = self
            .app(client_id)
            .map_err(|e| AuthorizeRejection::Page(e.to_string()))?
            .ok_or_else(|| AuthorizeRejection::Page("unknown client_id".into()))?;
        let given = params.get("redirect_uri").map_err(page)?;
        let redirect_uri = match given {
            Some(uri) if app.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
            Some(_) => {
                return Err(AuthorizeRejection::Page(
                    "redirect_uri is not registered for this application".into(),
                ));
            }
            None if app.redirect_uris.len() == 1 => app.redirect_uris[0].clone(),
            None => return Err(AuthorizeRejection::Page("redirect_uri is required".into())),
        };
        let state = params.get("state").ok().flatten();
        let fail = |e: OAuthError| error_redirect(&redirect_uri, &e, state);

        match params.get("response_type").map_err(fail)? {
            Some("code") => {}
            Some(_) => {
                return Err(fail(OAuthError::unsupported_response_type(
                    "only response_type=code is supported",
                )));
            }
            None => {
                return Err(fail(OAuthError::invalid_request(
                    "response_type is required",
                )));
            }
        }
        if !app.status.is_usable(self.config().mode) {
            return Err(fail(OAuthError::unauthorized_client(format!(
                "the application is {}",
                app.status.code()
            ))));
        }
        let challenge = params.get("code_challenge").map_err(fail)?;
        match (
            challenge,
            params.get("code_challenge_method").map_err(fail)?,
        ) {
            (Some(c), Some("S256")) if is_pkce_challenge(c) => {}
            (Some(_), Some("S256")) => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge is malformed",
                )));
            }
            (Some(_), _) => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge_method must be S256",
                )));
            }
            (None, Some(_)) => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge is missing",
                )));
            }
            (None, None) if app.client_type == ClientType::Public => {
                return Err(fail(OAuthError::invalid_request(
                    "PKCE (code_challenge with S256) is required for public clients",
                )));
            }
            (None, None) => {}
        }
        if let Some(aud) = params.get("aud").map_err(fail)? {
            let ours = self.config().fhir_base_url();
            if aud.trim_end_matches('/') != ours {
                return Err(fail(OAuthError::invalid_request(format!(
                    "aud must be {ours}"
                ))));
            }
        }
        let requested = ScopeSet::parse(params.get("scope").map_err(fail)?.unwrap_or(""))
            .map_err(|e| fail(OAuthError::invalid_scope(e.to_string())))?;
        if requested.has_system_scopes() {
            return Err(fail(OAuthError::invalid_scope(
                "system/ scopes need the client_credentials grant",
            )));
        }
        let grantable = requested.intersect(&app.allowed_scopes());
        if !grantable.has_patient_scopes() {
            return Err(fail(OAuthError::invalid_scope(
                "none of the requested data scopes is registered for this application",
            )));
        }
        Ok(AuthorizeRequest {
            client_id: app.app_id.clone(),
            app_name: app.name.clone(),
            redirect_uri,
            redirect_uri_given: given.is_some(),
            scope: grantable.to_string(),
            state: state.map(str::to_owned),
            code_challenge: challenge.map(str::to_owned),
            nonce: params.get("nonce").ok().flatten().map(str::to_owned),
        })
    }

    /// Issues a one-time authorization code for a consented request and returns the
    /// redirect URL carrying it.
    pub(crate) fn issue_code(
        &self,
        request: &AuthorizeRequest,
        grant: &Grant,
        auth_time: i64,
    ) -> Result<String> {
        let code = random_token();
        let now = self.now();
        let data = CodeData {
            app_id: request.client_id.clone(),
            patient_id: grant.patient_id.clone(),
            grant_id: grant.grant_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_given: request.redirect_uri_given,
            scope: grant.scope.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            auth_time,
        };
        let data = serde_json::to_string(&data).map_err(|e| AuthError::Invalid(e.to_string()))?;
        self.db().execute(
            "INSERT INTO auth_codes (code_digest, data, expires_at) VALUES (?1, ?2, ?3)",
            params![digest(&code), data, now + self.config().code_lifetime],
        )?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        let issuer = self.config().issuer().to_owned();
        pairs.push(("iss", &issuer));
        Ok(redirect_with(&request.redirect_uri, &pairs))
    }

    /// The redirect URL telling the client the citizen declined.
    pub fn denied_redirect(&self, request: &AuthorizeRequest) -> String {
        match error_redirect(
            &request.redirect_uri,
            &OAuthError::access_denied("the citizen did not grant access"),
            request.state.as_deref(),
        ) {
            AuthorizeRejection::Redirect(url) | AuthorizeRejection::Page(url) => url,
        }
    }

    /// The token endpoint. `authorization` is the request's `Authorization` header.
    pub async fn token(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let grant_type = params.required("grant_type")?;
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {grant_type} is not supported"
            )));
        }
        let app = self.authenticate_client(params, authorization).await?;
        self.rotate_keys_if_due()?;
        match grant_type {
            "authorization_code" => self.exchange_code(&app, params),
            "refresh_token" => self.refresh(&app, params),
            _ => self.client_credentials(&app, params),
        }
    }

    fn rotate_keys_if_due(&self) -> Result<()> {
        let now = self.now();
        let conn = self.db();
        self.0.keys.rotate_if_due(&conn, now)
    }

    fn exchange_code(
        &self,
        app: &App,
        params: &Params,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let code = params.required("code")?;
        let redirect_uri = params.get("redirect_uri")?;
        let verifier = params.get("code_verifier")?;
        let now = self.now();
        let code_digest = digest(code);

        let (data, family) = {
            let mut conn = self.db();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(AuthError::from)?;
            let row: Option<(String, i64, Option<i64>, Option<String>)> = tx
                .query_row(
                    "SELECT data, expires_at, used_at, family_id FROM auth_codes WHERE code_digest = ?1",
                    [&code_digest],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(AuthError::from)?;
            let Some((data, expires_at, used_at, family_id)) = row else {
                return Err(OAuthError::invalid_grant("unknown authorization code"));
            };
            if used_at.is_some() {
                // A replayed code: whatever it produced may be in the wrong hands.
                if let Some(family) = &family_id {
                    tx.execute(
                        "UPDATE token_families SET status = 'revoked', revoked_reason = 'code replay', revoked_at = ?1 WHERE family_id = ?2",
                        params![now, family],
                    )
                    .map_err(AuthError::from)?;
                }
                tx.commit().map_err(AuthError::from)?;
                drop(conn);
                if let Some(family) = family_id {
                    self.0.status.forget_family(&family);
                    self.bump_status_epoch();
                }
                return Err(OAuthError::invalid_grant(
                    "the authorization code has already been used",
                ));
            }
            // Burn the code on every presentation so a wrong verifier cannot be retried.
            tx.execute(
                "UPDATE auth_codes SET used_at = ?1 WHERE code_digest = ?2",
                params![now, code_digest],
            )
            .map_err(AuthError::from)?;
            let data: CodeData = serde_json::from_str(&data)
                .map_err(|_| OAuthError::server_error("stored code is unreadable"))?;
            let checked = (|| {
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
                    (Some(challenge), Some(verifier)) if pkce_s256_matches(verifier, challenge) => {
                    }
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
                Ok(())
            })();
            if let Err(e) = checked {
                tx.commit().map_err(AuthError::from)?;
                return Err(e);
            }
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM grants WHERE grant_id = ?1",
                    [&data.grant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(AuthError::from)?;
            if status.as_deref() != Some("active") {
                tx.commit().map_err(AuthError::from)?;
                return Err(OAuthError::invalid_grant(
                    "the citizen's grant is no longer active",
                ));
            }
            let scopes = ScopeSet::parse(&data.scope).unwrap_or_default();
            let family = if scopes.has(Special::OfflineAccess) {
                let (family_id, refresh) = new_family(
                    &tx,
                    &data.grant_id,
                    &app.app_id,
                    &data.patient_id,
                    &data.scope,
                    now,
                    self.config().refresh_token_lifetime,
                )?;
                tx.execute(
                    "UPDATE auth_codes SET family_id = ?1 WHERE code_digest = ?2",
                    params![family_id, code_digest],
                )
                .map_err(AuthError::from)?;
                Some((family_id, refresh))
            } else {
                None
            };
            tx.commit().map_err(AuthError::from)?;
            (data, family)
        };

        let scopes = ScopeSet::parse(&data.scope).unwrap_or_default();
        let (family_id, refresh_token) = match family {
            Some((f, r)) => (Some(f), Some(r)),
            None => (None, None),
        };
        let mut response = self.mint(
            app,
            Some(&data.patient_id),
            &data.scope,
            Some(&data.grant_id),
            family_id.as_deref(),
        )?;
        response.refresh_token = refresh_token;
        if scopes.has(Special::OpenId) {
            let fhir_user = format!(
                "{}/Patient/{}",
                self.config().fhir_base_url(),
                data.patient_id
            );
            let claims = IdTokenClaims {
                iss: self.config().issuer(),
                sub: &data.patient_id,
                aud: &app.app_id,
                exp: now + self.config().access_token_lifetime,
                iat: now,
                auth_time: data.auth_time,
                nonce: data.nonce.as_deref(),
                fhir_user,
            };
            response.id_token = Some(self.0.keys.sign(&claims)?);
        }
        Ok(response)
    }

    fn refresh(
        &self,
        app: &App,
        params: &Params,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let token = params.required("refresh_token")?;
        let narrowed = params.get("scope")?;
        let now = self.now();
        let token_digest = digest(token);
        let (family_id, grant_id, patient_id, scope, new_token) = {
            let mut conn = self.db();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(AuthError::from)?;
            #[allow(clippy::type_complexity)]
            let row: Option<(String, i64, i64, Option<i64>, String, String, String, String, String)> = tx
                .query_row(
                    "SELECT r.family_id, r.generation, r.expires_at, r.used_at, f.status, f.app_id, f.grant_id, f.patient_id, f.scope
                     FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id WHERE r.token_digest = ?1",
                    [&token_digest],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?)),
                )
                .optional()
                .map_err(AuthError::from)?;
            let Some((
                family_id,
                generation,
                expires_at,
                used_at,
                family_status,
                family_app,
                grant_id,
                patient_id,
                scope,
            )) = row
            else {
                return Err(OAuthError::invalid_grant("unknown refresh token"));
            };
            if family_app != app.app_id {
                return Err(OAuthError::invalid_grant("unknown refresh token"));
            }
            if used_at.is_some() {
                tx.execute(
                    "UPDATE token_families SET status = 'revoked', revoked_reason = 'refresh token reuse', revoked_at = ?1
                     WHERE family_id = ?2 AND status = 'active'",
                    params![now, family_id],
                )
                .map_err(AuthError::from)?;
                tx.commit().map_err(AuthError::from)?;
                drop(conn);
                self.0.status.forget_family(&family_id);
                self.bump_status_epoch();
                tracing::warn!(app = %app.app_id, "refresh token reuse detected; token family revoked");
                return Err(OAuthError::invalid_grant(
                    "refresh token reuse detected; all tokens of this sign-in are revoked",
                ));
            }
            if family_status != "active" {
                return Err(OAuthError::invalid_grant(
                    "the refresh token has been revoked",
                ));
            }
            if expires_at < now {
                return Err(OAuthError::invalid_grant("the refresh token has expired"));
            }
            let grant_status: Option<String> = tx
                .query_row(
                    "SELECT status FROM grants WHERE grant_id = ?1",
                    [&grant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(AuthError::from)?;
            if grant_status.as_deref() != Some("active") {
                return Err(OAuthError::invalid_grant(
                    "the citizen's grant is no longer active",
                ));
            }
            let family_scopes = ScopeSet::parse(&scope).unwrap_or_default();
            let scope = match narrowed {
                Some(text) => {
                    let asked = ScopeSet::parse(text)
                        .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
                    if !family_scopes.contains(&asked) {
                        return Err(OAuthError::invalid_scope(
                            "a refresh may not widen the granted scope",
                        ));
                    }
                    text.to_owned()
                }
                None => scope,
            };
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ?1 WHERE token_digest = ?2",
                params![now, token_digest],
            )
            .map_err(AuthError::from)?;
            let new_token = random_token();
            tx.execute(
                "INSERT INTO refresh_tokens (token_digest, family_id, generation, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![digest(&new_token), family_id, generation + 1, now, now + self.config().refresh_token_lifetime],
            )
            .map_err(AuthError::from)?;
            tx.commit().map_err(AuthError::from)?;
            (family_id, grant_id, patient_id, scope, new_token)
        };
        let mut response = self.mint(
            app,
            Some(&patient_id),
            &scope,
            Some(&grant_id),
            Some(&family_id),
        )?;
        response.refresh_token = Some(new_token);
        Ok(response)
    }

    fn client_credentials(
        &self,
        app: &App,
        params: &Params,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        if app.client_type != ClientType::PrivateKeyJwt {
            return Err(OAuthError::unauthorized_client(
                "client_credentials needs a private_key_jwt client",
            ));
        }
        let asked = ScopeSet::parse(params.required("scope")?)
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        let mut granted = asked.intersect(&app.allowed_scopes());
        granted
            .resources
            .retain(|r| r.context == ScopeContext::System);
        granted.special.clear();
        if granted.resources.is_empty() {
            return Err(OAuthError::invalid_scope(
                "no requested system/ scope is registered for this client",
            ));
        }
        self.mint(app, None, &granted.to_string(), None, None)
    }

    /// Signs an access token and builds the response around it.
    fn mint(
        &self,
        app: &App,
        patient: Option<&str>,
        scope: &str,
        grant_id: Option<&str>,
        family_id: Option<&str>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let now = self.now();
        let lifetime = self.config().access_token_lifetime;
        let scopes = ScopeSet::parse(scope).unwrap_or_default();
        let claims = AccessClaims {
            iss: self.config().issuer().to_owned(),
            sub: patient.unwrap_or(&app.app_id).to_owned(),
            aud: self.config().fhir_base_url(),
            exp: now + lifetime,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: app.app_id.clone(),
            scope: scope.to_owned(),
            patient: patient.map(str::to_owned),
            gid: grant_id.map(str::to_owned),
            fid: family_id.map(str::to_owned),
            fhir_user: patient
                .filter(|_| scopes.has(Special::FhirUser))
                .map(|p| format!("{}/Patient/{p}", self.config().fhir_base_url())),
        };
        let access_token = self.0.keys.sign(&claims)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: lifetime,
            scope: scope.to_owned(),
            patient: patient.map(str::to_owned),
            sub: patient.map(str::to_owned),
            refresh_token: None,
            id_token: None,
        })
    }

    /// Verifies one of our access tokens: signature, issuer and audience. Expiry and status
    /// are the caller's.
    pub(crate) fn decode_access_token(&self, token: &str) -> Option<AccessClaims> {
        // A signature check costs far more than the rest of a request's authorization, and
        // an app sends the same token many times: remember verified tokens by digest.
        let key = digest(token);
        if let Some(hit) = self
            .0
            .verified
            .read()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Some(hit);
        }
        let claims: AccessClaims = match self.0.keys.verify(token) {
            Ok(claims) => claims,
            Err(crate::keys::VerifyError::UnknownKey) => {
                let now = self.now();
                let reloaded = self.0.keys.reload_for_unknown_key(&self.db(), now);
                match reloaded {
                    Ok(true) => self.0.keys.verify(token).ok()?,
                    Ok(false) => return None,
                    Err(e) => {
                        tracing::error!(error = %e, "re-reading the signing keys failed");
                        return None;
                    }
                }
            }
            Err(_) => return None,
        };
        if claims.iss != self.config().issuer() || claims.aud != self.config().fhir_base_url() {
            return None;
        }
        if let Ok(mut cache) = self.0.verified.write() {
            if cache.len() >= VERIFIED_CACHE_LIMIT {
                let now = self.now();
                cache.retain(|_, c| c.exp > now);
                if cache.len() >= VERIFIED_CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(key, claims.clone());
        }
        Some(claims)
    }

    /// RFC 7662 introspection by an authenticated client; tokens of other clients read as
    /// inactive.
    pub async fn introspect(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> std::result::Result<Introspection, OAuthError> {
        let app = self.authenticate_client(params, authorization).await?;
        let token = params.required("token")?;
        if let Some(claims) = self.decode_access_token(token) {
            if claims.client_id != app.app_id || self.check_claims(&claims).is_err() {
                return Ok(Introspection::inactive());
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
        let now = self.now();
        #[allow(clippy::type_complexity)]
        let row: Option<(String, String, String, String, i64, Option<i64>, i64)> = self
            .db()
            .query_row(
                "SELECT f.app_id, f.patient_id, f.scope, f.status, r.expires_at, r.used_at, r.created_at
                 FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id WHERE r.token_digest = ?1",
                [digest(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()
            .map_err(AuthError::from)?;
        match row {
            Some((app_id, patient, scope, status, exp, None, iat))
                if app_id == app.app_id && status == "active" && exp >= now =>
            {
                Ok(Introspection {
                    active: true,
                    scope: Some(scope),
                    client_id: Some(app_id),
                    sub: Some(patient.clone()),
                    patient: Some(patient),
                    exp: Some(exp),
                    iat: Some(iat),
                    iss: Some(self.config().issuer().to_owned()),
                    aud: None,
                    token_type: Some("refresh_token".into()),
                })
            }
            _ => Ok(Introspection::inactive()),
        }
    }

    /// RFC 7009 revocation: a refresh token revokes its family, an access token is added to
    /// the revocation list. Unknown tokens and other clients' tokens are ignored.
    pub async fn revoke(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> std::result::Result<(), OAuthError> {
        let app = self.authenticate_client(params, authorization).await?;
        let token = params.required("token")?;
        let now = self.now();
        if let Some(claims) = self.decode_access_token(token) {
            if claims.client_id == app.app_id {
                self.db()
                    .execute(
                        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![claims.jti, claims.exp],
                    )
                    .map_err(AuthError::from)?;
                if let Ok(mut revoked) = self.0.status.revoked_jti.write() {
                    revoked.insert(claims.jti, claims.exp);
                }
                self.bump_status_epoch();
            }
            return Ok(());
        }
        let family: Option<String> = self
            .db()
            .query_row(
                "SELECT f.family_id FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id
                 WHERE r.token_digest = ?1 AND f.app_id = ?2",
                params![digest(token), app.app_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(AuthError::from)?;
        if let Some(family) = family {
            self.db()
                .execute(
                    "UPDATE token_families SET status = 'revoked', revoked_reason = 'revoked by client', revoked_at = ?1
                     WHERE family_id = ?2 AND status = 'active'",
                    params![now, family],
                )
                .map_err(AuthError::from)?;
            self.0.status.forget_family(&family);
            self.bump_status_epoch();
        }
        Ok(())
    }

    /// Operator/test helper (`phr token`): takes the test citizen into use if needed,
    /// records a grant of `scope` (∩ the app's registration) and issues tokens. Sandbox mode
    /// only.
    pub fn issue_token_for_cli(
        &self,
        hetu: &str,
        app_id: &str,
        scope: &str,
    ) -> Result<IssuedToken> {
        if !self.config().mode.is_sandbox() {
            return Err(AuthError::NotAllowed(
                "phr token works in sandbox mode only".into(),
            ));
        }
        let hetu = crate::hetu::Hetu::parse(hetu)
            .map_err(|e| AuthError::Invalid(format!("identity code: {e}")))?;
        let citizen = self.citizen_for_sandbox_identity(&hetu)?;
        let app = self
            .app(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        if !app.status.is_usable(self.config().mode) {
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
        let grant = self.record_consent(&citizen.patient_id, &app.app_id, &granted)?;
        let now = self.now();
        let refresh = if granted.has(Special::OfflineAccess) {
            let conn = self.db();
            Some(new_family(
                &conn,
                &grant.grant_id,
                &app.app_id,
                &citizen.patient_id,
                &grant.scope,
                now,
                self.config().refresh_token_lifetime,
            )?)
        } else {
            None
        };
        let (family_id, refresh_token) = match refresh {
            Some((f, r)) => (Some(f), Some(r)),
            None => (None, None),
        };
        let mut token = self
            .mint(
                &app,
                Some(&citizen.patient_id),
                &grant.scope,
                Some(&grant.grant_id),
                family_id.as_deref(),
            )
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        token.refresh_token = refresh_token;
        let mut record = crate::audit::AuditRecord::new(crate::audit::Usage::Operator, "operator");
        record.patient_id = Some(citizen.patient_id.clone());
        record.app_id = Some(app.app_id.clone());
        record.app_name = Some(app.name.clone());
        record.interaction = Some("token:cli".into());
        record.user_rights = Some(grant.scope.clone());
        self.audit(record)?;
        Ok(IssuedToken {
            patient_id: citizen.patient_id,
            grant_id: grant.grant_id,
            token,
        })
    }
}

/// Starts a refresh-token family and returns its id and first token.
fn new_family(
    conn: &rusqlite::Connection,
    grant_id: &str,
    app_id: &str,
    patient_id: &str,
    scope: &str,
    now: i64,
    lifetime: i64,
) -> Result<(String, String)> {
    let family_id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO token_families (family_id, grant_id, app_id, patient_id, scope, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6)",
        params![family_id, grant_id, app_id, patient_id, scope, now],
    )?;
    let token = random_token();
    conn.execute(
        "INSERT INTO refresh_tokens (token_digest, family_id, generation, created_at, expires_at) VALUES (?1, ?2, 1, ?3, ?4)",
        params![digest(&token), family_id, now, now + lifetime],
    )?;
    Ok((family_id, token))
}
