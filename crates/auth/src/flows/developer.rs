//! The developer console's sign-in in production: an application developer signs in at their
//! organisation's OpenID Connect provider (`[auth.developer_oidc]`), with the same relying
//! party as the citizens' and professionals' logins ([`crate::oidc`]: PKCE, `state`,
//! `nonce`, the ID token's signature, issuer, audience and expiry).
//!
//! A sign-in attempt's secrets are kept server-side in a session of kind
//! [`SessionKind::DeveloperLogin`] (the browser holds only its random value), used once: the
//! callback takes it whatever it brings. The developer must belong to an organisation
//! registered in PHR (`phr org register`): the organisation claim must name one, and the
//! applications they register belong to that organisation. Every sign-in, and every one
//! refused for an unknown organisation, is audited. Never logs a code or a token.
//!
//! Like the other flows, the storage steps are synchronous and the network steps
//! ([`authorization_url`], [`finish`]) are `async` and touch no storage.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{AuditRecord, Usage};
use crate::error::AuthError;
use crate::oidc::UpstreamLogin;
use crate::orgs::Organisation;
use crate::service::AuthService;
use crate::sessions::SessionKind;

/// Why a developer's sign-in at their organisation's provider did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DeveloperLoginError {
    /// No `[auth.developer_oidc]` provider is configured (or not in production mode).
    #[error("no developer identity provider is configured")]
    NotConfigured,
    /// No sign-in attempt of this browser is in progress (expired, used, or never started).
    #[error("the sign-in attempt has expired")]
    Expired,
    /// The callback's `state` is not the attempt's.
    #[error("the sign-in does not match")]
    Forged,
    /// The provider sent the developer back with an error code of its own.
    #[error("the identity provider answered {0}")]
    Refused(String),
    /// The provider could not be reached, or its answer failed verification; the detail is
    /// for the log only (it never holds a code or a token).
    #[error("developer identity provider: {0}")]
    Upstream(String),
    /// A claim the configuration names is missing from the provider's answer, or unusable.
    #[error("no usable {0} claim")]
    MissingClaim(String),
    /// The organisation claim names no organisation registered in PHR (the OID when it is
    /// one).
    #[error("the organisation is not registered")]
    UnknownOrganisation(Option<String>),
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// A developer as their organisation's provider named them, before the organisation is
/// looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedDeveloper {
    /// The stable identifier at the provider.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The organisation OID (without `urn:oid:`), as claimed.
    pub org: String,
}

/// A signed-in developer of a registered organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInDeveloper {
    /// Who owns the applications they register: `oidc:<organisation OID>:<subject>` (never
    /// an e-mail address, which the sandbox uses: the two never meet).
    pub key: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub organisation: Organisation,
}

/// Seconds a sign-in attempt waits for the provider's callback at most.
fn attempt_lifetime(auth: &AuthService) -> i64 {
    auth.config().session_lifetime
}

/// Whether developers sign in at an organisation's provider here (production with
/// `[auth.developer_oidc]`).
pub fn available(auth: &AuthService) -> bool {
    auth.0.developer_oidc.is_some()
}

/// Where to send the developer's browser for the sign-in attempt `login`.
pub async fn authorization_url(
    auth: &AuthService,
    login: &UpstreamLogin,
) -> Result<String, DeveloperLoginError> {
    let (oidc, _) = auth
        .0
        .developer_oidc
        .as_ref()
        .ok_or(DeveloperLoginError::NotConfigured)?;
    oidc.authorization_url(login, auth.now())
        .await
        .map_err(|e| DeveloperLoginError::Upstream(e.to_string()))
}

/// Keeps a sign-in attempt server-side; returns the value for the browser's cookie.
pub fn keep(auth: &AuthService, login: &UpstreamLogin) -> Result<String, DeveloperLoginError> {
    if !available(auth) {
        return Err(DeveloperLoginError::NotConfigured);
    }
    let json = serde_json::to_string(login).map_err(|e| AuthError::Storage(e.to_string()))?;
    let lifetime = attempt_lifetime(auth);
    Ok(auth
        .sessions()
        .create(SessionKind::DeveloperLogin, &json, lifetime, lifetime)?)
}

/// Takes (ends) the browser's sign-in attempt: [`DeveloperLoginError::Expired`] when there is
/// none alive.
pub fn take(auth: &AuthService, token: Option<&str>) -> Result<UpstreamLogin, DeveloperLoginError> {
    let token = token
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or(DeveloperLoginError::Expired)?;
    let json = auth
        .sessions()
        .take(SessionKind::DeveloperLogin, token)?
        .ok_or(DeveloperLoginError::Expired)?;
    serde_json::from_str(&json).map_err(|_| DeveloperLoginError::Expired)
}

/// The callback of the attempt `login`: checks `state`, exchanges the code and verifies the
/// ID token, and reads the configured claims. Touches no storage; then call [`signed_in`].
pub async fn finish(
    auth: &AuthService,
    login: &UpstreamLogin,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<ClaimedDeveloper, DeveloperLoginError> {
    let state_ok = state
        .is_some_and(|s| crate::secrets::constant_time_eq(s.as_bytes(), login.state.as_bytes()));
    if !state_ok {
        return Err(DeveloperLoginError::Forged);
    }
    if let Some(error) = error {
        return Err(DeveloperLoginError::Refused(error_code(error)));
    }
    let code =
        code.ok_or_else(|| DeveloperLoginError::Upstream("no code in the callback".into()))?;
    let (oidc, settings) = auth
        .0
        .developer_oidc
        .as_ref()
        .ok_or(DeveloperLoginError::NotConfigured)?;
    let claims = oidc
        .finish_claims(code, login, auth.now())
        .await
        .map_err(|e| DeveloperLoginError::Upstream(e.to_string()))?;
    read_claims(&claims, settings)
}

/// An OAuth error code as it may be shown: at most 64 characters of `A–Z a–z 0–9 _ - .`,
/// anything else as `error`.
fn error_code(text: &str) -> String {
    let fits = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if fits {
        text.to_owned()
    } else {
        "error".to_owned()
    }
}

/// Text that may be kept and shown: trimmed, 1–`max` characters, no control characters and
/// nothing that reads as a personal identity code.
fn plain(text: &str, max: usize) -> Option<String> {
    let text = text.trim();
    let fits = !text.is_empty()
        && text.chars().count() <= max
        && !text.chars().any(char::is_control)
        && crate::traffic::redact_identity_codes(text) == text;
    fits.then(|| text.to_owned())
}

/// The developer the claims name under `settings`' claim names.
fn read_claims(
    claims: &serde_json::Map<String, Value>,
    settings: &crate::config::DeveloperOidcConfig,
) -> Result<ClaimedDeveloper, DeveloperLoginError> {
    let text = |claim: &str| claims.get(claim).and_then(Value::as_str);
    let subject = text(&settings.subject_claim)
        .and_then(|s| plain(s, 255))
        .ok_or_else(|| DeveloperLoginError::MissingClaim(settings.subject_claim.clone()))?;
    let org = text(&settings.org_claim)
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| DeveloperLoginError::MissingClaim(settings.org_claim.clone()))?;
    let org = org.strip_prefix("urn:oid:").unwrap_or(org).to_owned();
    let email = text(&settings.email_claim)
        .and_then(|e| plain(e, 254))
        .filter(|e| e.contains('@'));
    let name = text(&settings.name_claim).and_then(|n| plain(n, 200));
    Ok(ClaimedDeveloper {
        subject,
        email,
        name,
        org,
    })
}

/// After [`finish`]: the developer's organisation must be registered. Audits the sign-in
/// (or its refusal) and returns who signed in.
pub fn signed_in(
    auth: &AuthService,
    claimed: &ClaimedDeveloper,
) -> Result<SignedInDeveloper, DeveloperLoginError> {
    let organisation = if crate::orgs::is_oid(&claimed.org) {
        auth.org(&claimed.org)?
    } else {
        None
    };
    let key = format!("oidc:{}:{}", claimed.org, claimed.subject);
    let Some(organisation) = organisation else {
        let shown = crate::orgs::is_oid(&claimed.org).then(|| claimed.org.clone());
        let mut record = sign_in_record(&key);
        record.org_oid = shown.clone();
        record.status = 403;
        record.error_code = Some("unknown-organisation".into());
        auth.audit(record)?;
        return Err(DeveloperLoginError::UnknownOrganisation(shown));
    };
    let mut record = sign_in_record(&key);
    record.org_oid = Some(organisation.oid.clone());
    record.org_name = Some(organisation.name_fi.clone());
    auth.audit(record)?;
    Ok(SignedInDeveloper {
        key,
        email: claimed.email.clone(),
        name: claimed.name.clone(),
        organisation,
    })
}

/// The audit record of a developer's sign-in to the console.
fn sign_in_record(developer: &str) -> AuditRecord {
    let mut record = AuditRecord::new(Usage::Authorization, format!("developer {developer}"));
    record.interaction = Some("developer-login".into());
    record
}

/// The sandbox's sign-in by e-mail address, audited like a provider's.
pub fn sandbox_signed_in(auth: &AuthService, developer: &str) -> Result<(), AuthError> {
    auth.audit(sign_in_record(developer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeveloperOidcConfig, UpstreamClientAuth};

    fn settings() -> DeveloperOidcConfig {
        DeveloperOidcConfig {
            issuer: "http://127.0.0.1:9".into(),
            client_id: "phr-dev".into(),
            client_secret: "s".into(),
            scopes: vec![],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
            subject_claim: "sub".into(),
            email_claim: "email".into(),
            name_claim: "name".into(),
            org_claim: "org".into(),
        }
    }

    fn claims(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    #[test]
    fn the_configured_claims_name_the_developer_and_their_organisation() {
        let read = read_claims(
            &claims(serde_json::json!({
                "sub": " dev-1 ", "email": "Dev@Example.fi", "name": "Devi Kehittäjä",
                "org": "urn:oid:1.2.246.10.1"
            })),
            &settings(),
        );
        assert_eq!(
            read.ok(),
            Some(ClaimedDeveloper {
                subject: "dev-1".into(),
                email: Some("Dev@Example.fi".into()),
                name: Some("Devi Kehittäjä".into()),
                org: "1.2.246.10.1".into(),
            })
        );
        // The e-mail address and name are optional; the subject and organisation are not.
        let bare = read_claims(
            &claims(serde_json::json!({"sub": "dev-1", "org": "1.2.3", "email": 5})),
            &settings(),
        );
        assert!(matches!(
            bare,
            Ok(ClaimedDeveloper {
                email: None,
                name: None,
                ..
            })
        ));
        for (value, missing) in [
            (serde_json::json!({"org": "1.2.3"}), "sub"),
            (serde_json::json!({"sub": "dev-1"}), "org"),
            (serde_json::json!({"sub": "dev-1", "org": " "}), "org"),
            (
                serde_json::json!({"sub": "010190-901R", "org": "1.2.3"}),
                "sub",
            ),
            (serde_json::json!({"sub": "a\u{0}b", "org": "1.2.3"}), "sub"),
        ] {
            match read_claims(&claims(value), &settings()) {
                Err(DeveloperLoginError::MissingClaim(claim)) => assert_eq!(claim, missing),
                other => panic!("{missing}: {other:?}"),
            }
        }
    }

    /// A production service with the developers' provider configured (never reached here).
    fn production(dir: &std::path::Path) -> (AuthService, std::sync::Arc<crate::ManualClock>) {
        let mut config = crate::AuthConfig::sandbox(dir, "http://127.0.0.1:8080");
        config.mode = crate::Mode::Production;
        config.oidc = Some(settings().provider());
        config.developer_oidc = Some(settings());
        config.endpoints.developer_callback = "http://127.0.0.1:8080/developer/callback".into();
        let clock = std::sync::Arc::new(crate::ManualClock::starting_now());
        let auth = AuthService::open_with_clock(config, clock.clone()).unwrap();
        (auth, clock)
    }

    #[test]
    fn a_sign_in_attempt_is_used_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, clock) = production(dir.path());
        assert!(available(&auth));
        let login = UpstreamLogin::new();
        let token = keep(&auth, &login).unwrap();
        assert_eq!(take(&auth, Some(&token)).unwrap(), login);
        assert!(matches!(
            take(&auth, Some(&token)),
            Err(DeveloperLoginError::Expired)
        ));
        let late = keep(&auth, &login).unwrap();
        clock.advance(auth.config().session_lifetime + 1);
        assert!(matches!(
            take(&auth, Some(&late)),
            Err(DeveloperLoginError::Expired)
        ));
        assert!(matches!(
            take(&auth, None),
            Err(DeveloperLoginError::Expired)
        ));
    }

    #[test]
    fn only_a_registered_organisation_signs_a_developer_in() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, _) = production(dir.path());
        auth.register_org(crate::NewOrganisation {
            oid: "1.2.246.10.1".into(),
            name_fi: "Sovellustalo Oy".into(),
            ..crate::NewOrganisation::default()
        })
        .unwrap();
        let claimed = ClaimedDeveloper {
            subject: "dev-1".into(),
            email: None,
            name: Some("Devi".into()),
            org: "1.2.246.10.1".into(),
        };
        let developer = signed_in(&auth, &claimed).unwrap();
        assert_eq!(developer.key, "oidc:1.2.246.10.1:dev-1");
        assert_eq!(developer.organisation.name_fi, "Sovellustalo Oy");
        for (org, shown) in [("1.2.246.10.2", Some("1.2.246.10.2")), ("Acme", None)] {
            let other = ClaimedDeveloper {
                org: org.into(),
                ..claimed.clone()
            };
            match signed_in(&auth, &other) {
                Err(DeveloperLoginError::UnknownOrganisation(named)) => {
                    assert_eq!(named.as_deref(), shown)
                }
                other => panic!("{org}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_developers_provider_is_refused_in_the_sandbox_not_ignored() {
        let mut config = crate::AuthConfig::sandbox("/nonexistent", "http://127.0.0.1:8080");
        config.developer_oidc = Some(settings());
        let refused = config.check().err().unwrap_or_default();
        assert!(refused.contains("[auth.developer_oidc]"), "{refused}");
        config.mode = crate::Mode::Production;
        config.oidc = Some(settings().provider());
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn a_provider_error_is_shown_only_as_a_plain_code() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>"), "error");
        assert_eq!(error_code(&"x".repeat(65)), "error");
        assert_eq!(error_code(""), "error");
    }
}
