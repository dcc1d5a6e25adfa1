//! The authorization-code flow with PKCE, from the client's request to the code it gets
//! back: [`validate`] the request, then the citizen's steps, each a function the
//! authorization pages call — identification ([`identify_sandbox`], or [`upstream_start`] and
//! [`upstream_finish`] at the upstream OpenID Connect provider), the terms of use for a new
//! citizen ([`accept_terms`]) and the consent ([`consent`]) — each answering where the
//! browser goes [`Next`].
//!
//! The login's state ([`LoginState`]) lives server-side in the session store; the browser
//! holds only the session value. Every authorization needs its own identification, and one
//! identification gives one code. The identity code is only ever an argument here: it is
//! checked and dropped, never stored in the login, logged or put in a URL.

use serde::{Deserialize, Serialize};

use super::{error_redirect, redirect_with};
use crate::apps::ClientType;
use crate::audit::{AuditRecord, Usage};
use crate::citizens::{Identified, PendingCitizen};
use crate::error::{AuthError, OAuthError};
use crate::grants::Grant;
use crate::hetu::Hetu;
use crate::oidc::UpstreamLogin;
use crate::params::Params;
use crate::scope::ScopeSet;
use crate::secrets::random_token;
use crate::service::AuthService;
use crate::sessions::SessionKind;
use crate::tokens::CodeData;

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
    /// The organisation (OID) of a professional application: its user is a professional of
    /// that organisation, who signs in at the professionals' login instead of a citizen's.
    #[serde(default)]
    pub org: Option<String>,
    /// The citizen (Patient id) of a SMART EHR launch, as the organisation's system named
    /// them; the token response carries it as `patient` context.
    #[serde(default)]
    pub launch_patient: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeRejection {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// Tell the client through its redirect URI (this URL carries `error` and `state`).
    Redirect(String),
}

fn is_pkce_challenge(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks an authorization request (RFC 6749 §4.1.1, PKCE, SMART `aud`).
pub fn validate(
    auth: &AuthService,
    params: &Params,
) -> Result<AuthorizeRequest, AuthorizeRejection> {
    let page = |e: OAuthError| AuthorizeRejection::Page(e.description);
    let client_id = params
        .get("client_id")
        .map_err(page)?
        .ok_or_else(|| AuthorizeRejection::Page("client_id is missing".into()))?;
    let app = auth
        .app(client_id)
        .map_err(|e| AuthorizeRejection::Page(e.to_string()))?
        .ok_or_else(|| AuthorizeRejection::Page("unknown client_id".into()))?;
    let given = params.get("redirect_uri").map_err(page)?;
    let redirect_uri = match (given, app.redirect_uris.as_slice()) {
        (Some(uri), registered) if registered.iter().any(|r| r == uri) => uri.to_owned(),
        (Some(_), _) => {
            return Err(AuthorizeRejection::Page(
                "redirect_uri is not registered for this application".into(),
            ));
        }
        (None, [only]) => only.clone(),
        (None, _) => return Err(AuthorizeRejection::Page("redirect_uri is required".into())),
    };
    let state = params.get("state").ok().flatten();
    let fail =
        |e: OAuthError| AuthorizeRejection::Redirect(error_redirect(&redirect_uri, &e, state));

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
    if !app.status.is_usable(auth.config().mode) {
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
        // A client bound to its certificate proves itself with it at the token endpoint
        // (RFC 8705 `tls_client_auth`): the code is of no use to anyone without it.
        (None, None) if app.client_type == ClientType::Public && app.certificate_oid.is_none() => {
            return Err(fail(OAuthError::invalid_request(
                "PKCE (code_challenge with S256) is required for public clients",
            )));
        }
        (None, None) => {}
    }
    if let Some(aud) = params.get("aud").map_err(fail)? {
        let ours = auth.config().fhir_base_url();
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
    let mut grantable = requested.intersect(&app.allowed_scopes());
    let org = match app.kind {
        crate::apps::AppKind::Professional => {
            // A professional names the citizen at each request, never at sign-in; a
            // professional's sign-in has no refresh token (no citizen grant to hang it on).
            grantable.special.retain(|s| {
                !matches!(
                    s,
                    crate::scope::Special::LaunchPatient | crate::scope::Special::OfflineAccess
                )
            });
            Some(app.org.clone().ok_or_else(|| {
                AuthorizeRejection::Page(
                    "the professional application names no organisation".into(),
                )
            })?)
        }
        _ => None,
    };
    let launch_patient = match (params.get("launch").map_err(fail)?, &org) {
        (None, _) => {
            grantable.special.remove(&crate::scope::Special::Launch);
            None
        }
        (Some(_), None) => {
            return Err(fail(OAuthError::invalid_request(
                "an EHR launch is for professional applications",
            )));
        }
        (Some(_), Some(_)) if !grantable.special.contains(&crate::scope::Special::Launch) => {
            return Err(fail(OAuthError::invalid_scope(
                "an EHR launch (the launch parameter) asks for the launch scope",
            )));
        }
        (Some(value), Some(org)) => {
            let context = take_launch(auth, value)
                .map_err(|e| AuthorizeRejection::Page(e.to_string()))?
                .filter(|context| context.org == *org)
                .ok_or_else(|| {
                    fail(OAuthError::invalid_request(
                        "the launch is unknown, already used, expired or of another organisation",
                    ))
                })?;
            context.patient
        }
    };
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
        org,
        launch_patient,
    })
}

/// How long a launch issued by an organisation's system waits for its authorization
/// request (seconds).
pub const LAUNCH_LIFETIME: i64 = 300;

/// A SMART EHR launch context: the organisation whose system issued it and the citizen it
/// is about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct LaunchContext {
    org: String,
    patient: Option<String>,
}

/// Issues a `launch` value for an EHR launch (SMART App Launch): the organisation `org`'s
/// system names the citizen its professional is about to open; a professional application
/// of the same organisation presents it once, within [`LAUNCH_LIFETIME`].
pub fn issue_launch(
    auth: &AuthService,
    org: &str,
    patient: Option<String>,
) -> Result<String, AuthError> {
    let context = LaunchContext {
        org: org.to_owned(),
        patient,
    };
    let data = serde_json::to_string(&context).map_err(|e| AuthError::Invalid(e.to_string()))?;
    auth.sessions()
        .create(SessionKind::Launch, &data, LAUNCH_LIFETIME, LAUNCH_LIFETIME)
}

/// The context of a launch, used up.
fn take_launch(auth: &AuthService, value: &str) -> Result<Option<LaunchContext>, AuthError> {
    let Some(data) = auth
        .sessions()
        .get(SessionKind::Launch, value, LAUNCH_LIFETIME)?
    else {
        return Ok(None);
    };
    auth.sessions().end(value)?;
    Ok(serde_json::from_str(&data).ok())
}

/// The state of one login at the authorization pages, kept in the session store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct LoginState {
    /// The CSRF token every form of the login carries.
    pub csrf: String,
    pub request: Option<AuthorizeRequest>,
    /// The identified citizen (once known or taken into use).
    pub patient_id: Option<String>,
    pub authenticated_at: Option<i64>,
    /// An identified person who has still to accept the terms.
    pub pending: Option<PendingCitizen>,
    /// The secrets of a login in progress at the upstream provider.
    pub upstream: Option<UpstreamLogin>,
}

/// A login session: the value the browser holds, and the state.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub session: String,
    pub state: LoginState,
}

/// Where the browser goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The terms of use (a new citizen).
    Terms,
    /// The consent page.
    Consent,
    /// Back to the client, with a code or an error (this URL).
    Client(String),
}

/// Why a login step cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No login in progress at this step (expired, finished, or never started).
    #[error("the login session has expired")]
    Expired,
    /// The sandbox identity provider is not available (production mode).
    #[error("not available")]
    NotAvailable,
    #[error("the identity code is not valid")]
    InvalidIdentity,
    /// The professional identifier or name typed at the test-professional login.
    #[error("the professional identifier or name is not valid")]
    InvalidProfessional,
    /// The professional's identity provider says they act for another organisation than
    /// the application's.
    #[error("the professional acts for another organisation")]
    OtherOrganisation,
    #[error("the sandbox accepts only test identities")]
    NotTestIdentity,
    #[error("the person is under the minimum age")]
    UnderAge,
    /// The upstream provider refused or failed; the detail is for the log only.
    #[error("upstream identity provider: {0}")]
    Upstream(String),
    /// The provider sent the citizen back with an error of its own.
    #[error("the identity provider answered {0}")]
    UpstreamRefused(String),
    /// The state parameter of the upstream callback does not match.
    #[error("the login does not match")]
    Forged,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

fn lifetime(auth: &AuthService) -> i64 {
    auth.config().session_lifetime
}

/// Starts the login of a validated request in a new login session, ending the browser's
/// previous one (if any): every authorization needs its own identification, and a session
/// value never outlives the login it was made for.
pub fn start(
    auth: &AuthService,
    previous: Option<&str>,
    request: AuthorizeRequest,
) -> Result<Login, AuthError> {
    let state = LoginState {
        csrf: random_token(),
        request: Some(request),
        ..LoginState::default()
    };
    let data = serde_json::to_string(&state).map_err(|e| AuthError::Invalid(e.to_string()))?;
    if let Some(previous) = previous {
        auth.sessions().end(previous)?;
    }
    let session =
        auth.sessions()
            .create(SessionKind::Login, &data, lifetime(auth), lifetime(auth))?;
    Ok(Login { session, state })
}

/// The live login of a session value, if any.
pub fn resume(auth: &AuthService, session: &str) -> Result<Option<Login>, AuthError> {
    let data = auth
        .sessions()
        .get(SessionKind::Login, session, lifetime(auth))?;
    Ok(data
        .and_then(|d| serde_json::from_str::<LoginState>(&d).ok())
        .map(|state| Login {
            session: session.to_owned(),
            state,
        }))
}

/// Stores the login's state.
pub fn save(auth: &AuthService, login: &Login) -> Result<(), AuthError> {
    let data =
        serde_json::to_string(&login.state).map_err(|e| AuthError::Invalid(e.to_string()))?;
    auth.sessions()
        .update(SessionKind::Login, &login.session, &data)
}

/// The sandbox identity provider: a test identity code typed on the page.
pub fn identify_sandbox(
    auth: &AuthService,
    login: &mut Login,
    hetu: Option<&str>,
) -> Result<Next, LoginError> {
    if login.state.request.is_none() {
        return Err(LoginError::Expired);
    }
    if auth.0.oidc.is_some() || !auth.config().mode.is_sandbox() {
        return Err(LoginError::NotAvailable);
    }
    let hetu = hetu
        .map(Hetu::parse)
        .and_then(Result::ok)
        .ok_or(LoginError::InvalidIdentity)?;
    if !hetu.is_test_identity() {
        return Err(LoginError::NotTestIdentity);
    }
    identified(auth, login, &hetu)
}

/// Where to send the browser to identify at the upstream provider (production). Touches no
/// storage: the caller saves the login afterwards.
pub async fn upstream_start(auth: &AuthService, login: &mut Login) -> Result<String, LoginError> {
    let oidc = auth.0.oidc.as_ref().ok_or(LoginError::NotAvailable)?;
    let upstream = UpstreamLogin::new();
    let url = oidc
        .authorization_url(&upstream, auth.now())
        .await
        .map_err(|e| LoginError::Upstream(e.to_string()))?;
    login.state.upstream = Some(upstream);
    Ok(url)
}

/// Finishes an upstream login from the provider's callback parameters and returns the
/// identity code it vouched for. Touches no storage; then call [`identified`].
pub async fn upstream_finish(
    auth: &AuthService,
    login: &mut Login,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<Hetu, LoginError> {
    if login.state.request.is_none() {
        return Err(LoginError::Expired);
    }
    let upstream = login.state.upstream.take().ok_or(LoginError::Expired)?;
    let state_ok = state
        .is_some_and(|s| crate::secrets::constant_time_eq(s.as_bytes(), upstream.state.as_bytes()));
    if !state_ok {
        return Err(LoginError::Forged);
    }
    if let Some(error) = error {
        return Err(LoginError::UpstreamRefused(error.to_owned()));
    }
    let code = code.ok_or_else(|| LoginError::Upstream("no code in the callback".into()))?;
    let oidc = auth.0.oidc.as_ref().ok_or(LoginError::Expired)?;
    oidc.finish(code, &upstream, auth.now())
        .await
        .map_err(|e| LoginError::Upstream(e.to_string()))
}

/// After a successful identification: refuses the under-age, sends a new citizen to the
/// terms and a known one on to the consent (or, for the server's own client, back to it).
pub fn identified(auth: &AuthService, login: &mut Login, hetu: &Hetu) -> Result<Next, LoginError> {
    let client_id = login
        .state
        .request
        .as_ref()
        .map(|r| r.client_id.clone())
        .ok_or(LoginError::Expired)?;
    let next = match auth.identify(hetu) {
        Err(AuthError::UnderAge(_)) => return Err(LoginError::UnderAge),
        Err(e) => return Err(e.into()),
        Ok(Identified::Known(citizen)) => {
            let mut record = AuditRecord::new(
                Usage::Authorization,
                format!("Patient/{}", citizen.patient_id),
            );
            record.patient_id = Some(citizen.patient_id.clone());
            record.interaction = Some("login".into());
            record.app_id = Some(client_id);
            auth.audit_quietly(record);
            login.state.patient_id = Some(citizen.patient_id);
            Next::Consent
        }
        Ok(Identified::New(pending)) => {
            login.state.pending = Some(pending);
            Next::Terms
        }
    };
    login.state.authenticated_at = Some(auth.now());
    login.state.csrf = random_token();
    save(auth, login)?;
    match next {
        Next::Consent => consent_or_code(auth, login),
        next => Ok(next),
    }
}

/// The new citizen's answer to the terms of use.
pub fn accept_terms(
    auth: &AuthService,
    login: &mut Login,
    accept: bool,
) -> Result<Next, LoginError> {
    let (Some(pending), Some(request)) = (login.state.pending.take(), login.state.request.clone())
    else {
        return Err(LoginError::Expired);
    };
    if !accept {
        auth.sessions().end(&login.session)?;
        return Ok(Next::Client(denied_redirect(&request)));
    }
    let citizen = match auth.take_into_use(&pending) {
        Ok(citizen) => citizen,
        Err(AuthError::UnderAge(_)) => return Err(LoginError::UnderAge),
        Err(e) => return Err(e.into()),
    };
    let mut record = AuditRecord::new(
        Usage::Authorization,
        format!("Patient/{}", citizen.patient_id),
    );
    record.patient_id = Some(citizen.patient_id.clone());
    record.interaction = Some("take-into-use".into());
    auth.audit_quietly(record);
    login.state.patient_id = Some(citizen.patient_id);
    login.state.csrf = random_token();
    save(auth, login)?;
    consent_or_code(auth, login)
}

/// After identification (and the terms, for a new citizen): the consent page, or, for the
/// server's own first-party client (the citizen portal), straight back to it with a code.
/// The citizen does not consent to their own portal; it is granted what it asked for.
fn consent_or_code(auth: &AuthService, login: &Login) -> Result<Next, LoginError> {
    let (Some(request), Some(patient_id)) = (&login.state.request, &login.state.patient_id) else {
        return Ok(Next::Consent);
    };
    if !auth.is_first_party(&request.client_id) {
        return Ok(Next::Consent);
    }
    // One code per identification, as after a consent.
    auth.sessions().end(&login.session)?;
    let scopes = ScopeSet::parse(&request.scope).unwrap_or_default();
    let grant = auth.record_consent(patient_id, &request.client_id, &scopes)?;
    let auth_time = login.state.authenticated_at.unwrap_or_else(|| auth.now());
    Ok(Next::Client(issue_code(auth, request, &grant, auth_time)?))
}

/// What the consent page asks about: the request, once a citizen is identified.
pub fn consent_request(login: &Login) -> Option<&AuthorizeRequest> {
    login.state.patient_id.as_ref()?;
    login.state.request.as_ref()
}

/// The citizen's consent: `allow` with the indexes of the resource scopes of the request
/// they kept ticked (see [`ScopeSet::resource_scopes`]), or not. Ends the login either way
/// and returns where the browser goes: back to the client with a code or `access_denied`.
pub fn consent(
    auth: &AuthService,
    login: &Login,
    allow: bool,
    selected: &[usize],
) -> Result<String, LoginError> {
    let (Some(request), Some(patient_id)) = (&login.state.request, &login.state.patient_id) else {
        return Err(LoginError::Expired);
    };
    // One consent per identification: the session is spent either way.
    auth.sessions().end(&login.session)?;
    let grantable = ScopeSet::parse(&request.scope).unwrap_or_default();
    let approved = ScopeSet {
        resources: grantable
            .resources
            .iter()
            .enumerate()
            .filter(|(i, _)| selected.contains(i))
            .map(|(_, scope)| scope.clone())
            .collect(),
        special: grantable.special.clone(),
    };
    let mut record = AuditRecord::new(Usage::Authorization, format!("Patient/{patient_id}"));
    record.patient_id = Some(patient_id.clone());
    record.app_id = Some(request.client_id.clone());
    record.app_name = Some(request.app_name.clone());
    record.interaction = Some("consent".into());
    if !allow || !approved.has_patient_scopes() {
        record.status = 403;
        record.error_code = Some("access_denied".into());
        auth.audit_quietly(record);
        return Ok(denied_redirect(request));
    }
    let grant = auth.record_consent(patient_id, &request.client_id, &approved)?;
    record.user_rights = Some(grant.scope.clone());
    auth.audit_quietly(record);
    let auth_time = login.state.authenticated_at.unwrap_or_else(|| auth.now());
    Ok(issue_code(auth, request, &grant, auth_time)?)
}

/// The redirect URL telling the client the citizen declined.
pub fn denied_redirect(request: &AuthorizeRequest) -> String {
    error_redirect(
        &request.redirect_uri,
        &OAuthError::access_denied("the citizen did not grant access"),
        request.state.as_deref(),
    )
}

/// Issues a one-time authorization code for a consented request and returns the redirect
/// URL carrying it (with `state` and `iss`, RFC 9207).
fn issue_code(
    auth: &AuthService,
    request: &AuthorizeRequest,
    grant: &Grant,
    auth_time: i64,
) -> Result<String, AuthError> {
    let code = auth.0.tokens.issue_code(&CodeData {
        app_id: request.client_id.clone(),
        patient_id: grant.patient_id.clone(),
        grant_id: grant.grant_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: request.redirect_uri_given,
        scope: grant.scope.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time,
        professional: None,
        professional_name: None,
        launch_patient: None,
    })?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    let issuer = auth.config().issuer().to_owned();
    pairs.push(("iss", &issuer));
    Ok(redirect_with(&request.redirect_uri, &pairs))
}

/// A professional identifier: 1–64 characters of `A–Z a–z 0–9 - . _`.
pub fn is_professional_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// The sandbox's test-professional login: the professional of the request's organisation
/// types a test identifier and name. Ends the login and returns where the browser goes:
/// back to the professional application with a code for that professional (no citizen
/// consent page — what a professional may see is decided by the citizen's sharing consent
/// and the care relationship at every request). Production has no test professionals.
pub fn identify_test_professional(
    auth: &AuthService,
    login: &Login,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<String, LoginError> {
    let request = login.state.request.as_ref().ok_or(LoginError::Expired)?;
    let org = request.org.as_ref().ok_or(LoginError::Expired)?;
    if !auth.config().mode.is_sandbox() || auth.uses_professional_upstream() {
        return Err(LoginError::NotAvailable);
    }
    let id = id.map(str::trim).filter(|id| is_professional_id(id));
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let (Some(id), name) = (id, name) else {
        return Err(LoginError::InvalidProfessional);
    };
    if name.is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control)) {
        return Err(LoginError::InvalidProfessional);
    }
    professional_signed_in(auth, login, request, org, id, name)
}

/// Where to send a professional's browser to sign in at their identity provider.
pub async fn professional_upstream_start(
    auth: &AuthService,
    login: &mut Login,
) -> Result<String, LoginError> {
    let (oidc, _) = auth
        .0
        .professional_oidc
        .as_ref()
        .ok_or(LoginError::NotAvailable)?;
    let upstream = UpstreamLogin::new();
    let url = oidc
        .authorization_url(&upstream, auth.now())
        .await
        .map_err(|e| LoginError::Upstream(e.to_string()))?;
    login.state.upstream = Some(upstream);
    Ok(url)
}

/// A professional identified at their identity provider: (identifier, name, organisation
/// OID) from the configured claims. Touches no storage; then call
/// [`professional_upstream_signed_in`].
pub async fn professional_upstream_finish(
    auth: &AuthService,
    login: &mut Login,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<(String, Option<String>, String), LoginError> {
    if login
        .state
        .request
        .as_ref()
        .and_then(|r| r.org.as_ref())
        .is_none()
    {
        return Err(LoginError::Expired);
    }
    let upstream = login.state.upstream.take().ok_or(LoginError::Expired)?;
    let state_ok = state
        .is_some_and(|s| crate::secrets::constant_time_eq(s.as_bytes(), upstream.state.as_bytes()));
    if !state_ok {
        return Err(LoginError::Forged);
    }
    if let Some(error) = error {
        return Err(LoginError::UpstreamRefused(error.to_owned()));
    }
    let code = code.ok_or_else(|| LoginError::Upstream("no code in the callback".into()))?;
    let (oidc, settings) = auth
        .0
        .professional_oidc
        .as_ref()
        .ok_or(LoginError::Expired)?;
    let claims = oidc
        .finish_claims(code, &upstream, auth.now())
        .await
        .map_err(|e| LoginError::Upstream(e.to_string()))?;
    let text = |claim: &str| {
        claims
            .get(claim)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let id = text(&settings.id_claim)
        .filter(|id| is_professional_id(id))
        .ok_or_else(|| LoginError::Upstream(format!("no usable {} claim", settings.id_claim)))?;
    let org = text(&settings.org_claim)
        .map(|o| o.strip_prefix("urn:oid:").unwrap_or(&o).to_owned())
        .ok_or_else(|| LoginError::Upstream(format!("no {} claim", settings.org_claim)))?;
    let name = text(&settings.name_claim)
        .filter(|n| n.chars().count() <= 200 && !n.chars().any(char::is_control));
    Ok((id, name, org))
}

/// After [`professional_upstream_finish`]: the professional must act for the application's
/// organisation; then back to the application with a code.
pub fn professional_upstream_signed_in(
    auth: &AuthService,
    login: &Login,
    id: &str,
    name: Option<&str>,
    acting_for: &str,
) -> Result<String, LoginError> {
    let request = login.state.request.as_ref().ok_or(LoginError::Expired)?;
    let org = request.org.as_ref().ok_or(LoginError::Expired)?;
    if acting_for != org {
        auth.sessions().end(&login.session)?;
        let mut record = AuditRecord::new(Usage::Authorization, format!("Practitioner/{id}"));
        record.interaction = Some("login".into());
        record.app_id = Some(request.client_id.clone());
        record.professional_id = Some(id.to_owned());
        record.org_oid = Some(acting_for.to_owned());
        record.status = 403;
        record.error_code = Some("other-organisation".into());
        auth.audit_quietly(record);
        return Err(LoginError::OtherOrganisation);
    }
    professional_signed_in(auth, login, request, org, id, name)
}

/// A professional of `org` signed in for `request`: ends the login, audits it and returns
/// the redirect carrying the code.
fn professional_signed_in(
    auth: &AuthService,
    login: &Login,
    request: &AuthorizeRequest,
    org: &str,
    id: &str,
    name: Option<&str>,
) -> Result<String, LoginError> {
    auth.sessions().end(&login.session)?;
    let now = auth.now();
    let mut record = AuditRecord::new(Usage::Authorization, format!("Practitioner/{id}"));
    record.interaction = Some("login".into());
    record.app_id = Some(request.client_id.clone());
    record.app_name = Some(request.app_name.clone());
    record.professional_id = Some(id.to_owned());
    record.professional_name = name.map(str::to_owned);
    record.org_oid = Some(org.to_owned());
    auth.audit_quietly(record);
    let code = auth.0.tokens.issue_code(&CodeData {
        app_id: request.client_id.clone(),
        patient_id: String::new(),
        grant_id: String::new(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: request.redirect_uri_given,
        scope: request.scope.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time: now,
        professional: Some(id.to_owned()),
        professional_name: name.map(str::to_owned),
        launch_patient: request.launch_patient.clone(),
    })?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    let issuer = auth.config().issuer().to_owned();
    pairs.push(("iss", &issuer));
    Ok(redirect_with(&request.redirect_uri, &pairs))
}
