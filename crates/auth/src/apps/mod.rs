//! The application registry: wellbeing and professional apps, their redirect URIs, allowed
//! scopes, client authentication and status (`sandbox` → `accepted` → `suspended`/`revoked`).
//!
//! The application id doubles as the OAuth `client_id` and as the `applicationId` the FHIR
//! layer writes into `creatingApplication`. Client secrets are shown once at registration
//! and stored only as digests.
//!
//! Owns the `apps` table, through [`AppStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Never audits and never
//! touches the enforcer's cache: the service handle does both after a change here.

pub(crate) mod postgres;
mod sqlite;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::Mode;
use crate::error::{AuthError, Result};
use crate::scope::{ScopeContext, ScopeSet, Special};
use crate::secrets::{constant_time_eq, digest, random_token};

pub(crate) use postgres::PostgresAppStore;
pub(crate) use sqlite::SqliteAppStore;

/// Where applications are kept. Implementations hold no logic: validation and status rules
/// are [`Apps`]'.
pub trait AppStore: Send + Sync {
    /// Stores a new application; `false` when its id is taken.
    fn insert(&self, app: &App, secret_digest: Option<&[u8]>) -> Result<bool>;
    fn get(&self, app_id: &str) -> Result<Option<App>>;
    /// Every application, oldest first.
    fn list(&self) -> Result<Vec<App>>;
    /// Sets the status; `false` when there is no such application.
    fn set_status(&self, app_id: &str, status: AppStatus, at: i64) -> Result<bool>;
    /// The stored digest of a confidential client's secret.
    fn secret_digest(&self, app_id: &str) -> Result<Option<Vec<u8>>>;
    /// Stores one of the server's own clients, or refreshes its name, redirect URIs, scope
    /// and client type, leaving the status of an existing one alone (an operator's
    /// suspension holds).
    fn upsert_first_party(&self, app: &App) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// No secret; PKCE S256 is mandatory (mobile and browser apps).
    Public,
    /// Authenticates with a client secret (`client_secret_basic` or `client_secret_post`).
    Confidential,
    /// Authenticates with a JWT signed by a key from its registered JWKS (SMART Backend
    /// Services; may also use the authorization-code flow).
    PrivateKeyJwt,
}

impl ClientType {
    pub fn code(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
            ClientType::PrivateKeyJwt => "private_key_jwt",
        }
    }
    pub fn parse(text: &str) -> Option<ClientType> {
        match text {
            "public" | "none" => Some(ClientType::Public),
            "confidential" | "client_secret_basic" | "client_secret_post" => {
                Some(ClientType::Confidential)
            }
            "private_key_jwt" => Some(ClientType::PrivateKeyJwt),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// Self-registered; works in sandbox mode only.
    Sandbox,
    /// Accepted by the operator; works in both modes.
    Accepted,
    /// Temporarily cut off: every token stops working at once.
    Suspended,
    /// Permanently cut off.
    Revoked,
}

impl AppStatus {
    pub fn code(self) -> &'static str {
        match self {
            AppStatus::Sandbox => "sandbox",
            AppStatus::Accepted => "accepted",
            AppStatus::Suspended => "suspended",
            AppStatus::Revoked => "revoked",
        }
    }
    pub fn parse(text: &str) -> Option<AppStatus> {
        match text {
            "sandbox" => Some(AppStatus::Sandbox),
            "accepted" => Some(AppStatus::Accepted),
            "suspended" => Some(AppStatus::Suspended),
            "revoked" => Some(AppStatus::Revoked),
            _ => None,
        }
    }
    /// Whether an app in this status may obtain and use tokens in `mode`.
    pub fn is_usable(self, mode: Mode) -> bool {
        match self {
            AppStatus::Accepted => true,
            AppStatus::Sandbox => mode == Mode::Sandbox,
            AppStatus::Suspended | AppStatus::Revoked => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    Wellbeing,
    Professional,
}

impl AppKind {
    pub fn code(self) -> &'static str {
        match self {
            AppKind::Wellbeing => "wellbeing",
            AppKind::Professional => "professional",
        }
    }
    pub fn parse(text: &str) -> Option<AppKind> {
        match text {
            "wellbeing" => Some(AppKind::Wellbeing),
            "professional" => Some(AppKind::Professional),
            _ => None,
        }
    }
}

/// A registered application, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub kind: AppKind,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    /// The scopes the app may ask for.
    pub scope: String,
    pub status: AppStatus,
    pub contact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub created_at: i64,
    pub status_changed_at: i64,
    /// The organisation (OID) a professional application belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The OID its client certificate's Subject `serialNumber` carries: the application must
    /// present that certificate, and its tokens are bound to it (see `crate::certificate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_oid: Option<String>,
}

impl App {
    /// The registered scopes, plus the context scopes every app may ask for.
    pub fn allowed_scopes(&self) -> ScopeSet {
        let mut set = ScopeSet::parse(&self.scope).unwrap_or_default();
        set.special.extend([
            Special::LaunchPatient,
            Special::OpenId,
            Special::FhirUser,
            Special::OnlineAccess,
        ]);
        if self.kind == AppKind::Professional {
            set.special.insert(Special::Launch);
        }
        set
    }
}

/// What a registration needs.
#[derive(Debug, Clone, Deserialize)]
pub struct NewApp {
    /// Operator-chosen id (e.g. the Kela-issued OID); generated when absent.
    #[serde(default)]
    pub app_id: Option<String>,
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: AppKind,
    pub client_type: ClientType,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scope: String,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub jwks: Option<Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The organisation (OID) of a professional application; required for those, refused
    /// for wellbeing applications.
    #[serde(default)]
    pub org: Option<String>,
    /// The OID in the Subject `serialNumber` of the application's client certificate.
    #[serde(default)]
    pub certificate_oid: Option<String>,
}

fn default_kind() -> AppKind {
    AppKind::Wellbeing
}

/// The result of a registration: the app and, for confidential clients, its secret (shown
/// once, never stored in clear).
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredApp {
    pub app: App,
    pub client_secret: Option<String>,
}

/// Checks one redirect URI: absolute, no fragment; plain http only to loopback; private-use
/// schemes (`fi.example.app:/cb`) allowed for native apps.
fn check_redirect_uri(uri: &str) -> Result<()> {
    let parsed = url::Url::parse(uri)
        .map_err(|_| AuthError::Invalid(format!("redirect URI {uri:?} is not an absolute URL")))?;
    if parsed.fragment().is_some() {
        return Err(AuthError::Invalid(format!(
            "redirect URI {uri:?} must not have a fragment"
        )));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_url(uri) => Ok(()),
        "http" => Err(AuthError::Invalid(format!(
            "redirect URI {uri:?} must use https (http only on loopback)"
        ))),
        "javascript" | "data" | "file" | "vbscript" => Err(AuthError::Invalid(format!(
            "redirect URI scheme of {uri:?} is not allowed"
        ))),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(AuthError::Invalid(format!(
            "redirect URI {uri:?}: use https or a reverse-domain private scheme"
        ))),
    }
}

/// The resource types an organisation's own system may write with `system/` scopes: its
/// care relationships with citizens.
pub const PROFESSIONAL_SYSTEM_TYPES: &[&str] = &["EpisodeOfCare"];

/// A professional application belongs to an organisation and may only read (`user/….read`,
/// `.r`, `.s`, `.rs`); its organisation's system may also hold `system/` scopes on the care
/// relationships it writes. A wellbeing application has no organisation.
fn check_kind(kind: AppKind, org: Option<&str>, scopes: &ScopeSet) -> Result<()> {
    match kind {
        AppKind::Wellbeing => {
            if org.is_some() {
                return Err(AuthError::Invalid(
                    "only professional applications belong to an organisation".into(),
                ));
            }
        }
        AppKind::Professional => {
            if org.is_none() {
                return Err(AuthError::Invalid(
                    "a professional application needs its organisation (--org OID)".into(),
                ));
            }
            for scope in scopes.resource_scopes() {
                let allowed = match scope.context {
                    ScopeContext::User => crate::scope::Perms::READ.contains(scope.perms),
                    ScopeContext::System => scope
                        .resource_type
                        .as_deref()
                        .is_some_and(|t| PROFESSIONAL_SYSTEM_TYPES.contains(&t)),
                    ScopeContext::Patient => false,
                };
                if !allowed {
                    return Err(AuthError::Invalid(format!(
                        "a professional application may only read (user/….read or user/….rs scopes), and its organisation's system write care relationships (system/EpisodeOfCare): {} is not allowed",
                        scope
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_app_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "application id: 1–128 characters of A–Z a–z 0–9 - . _".into(),
        ))
    }
}

/// The registry's rules over an [`AppStore`].
pub struct Apps {
    store: Arc<dyn AppStore>,
    clock: Arc<dyn Clock>,
    /// Clients of this server itself (the citizen portal): no consent page. Per process:
    /// the server registers them at start-up.
    first_party: RwLock<HashSet<String>>,
}

impl Apps {
    pub fn new(store: Arc<dyn AppStore>, clock: Arc<dyn Clock>) -> Apps {
        Apps {
            store,
            clock,
            first_party: RwLock::new(HashSet::new()),
        }
    }

    /// Registers an application with status `sandbox` (self-service) or as given by the
    /// operator.
    pub fn register(&self, new: NewApp, status: AppStatus) -> Result<RegisteredApp> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AuthError::Invalid(
                "the application name must have 1–200 characters".into(),
            ));
        }
        let scopes = ScopeSet::parse(&new.scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
        for uri in &new.redirect_uris {
            check_redirect_uri(uri)?;
        }
        match new.client_type {
            ClientType::Public | ClientType::Confidential if new.redirect_uris.is_empty() => {
                return Err(AuthError::Invalid(
                    "at least one redirect URI is required".into(),
                ));
            }
            ClientType::PrivateKeyJwt if new.jwks.is_none() && new.jwks_uri.is_none() => {
                return Err(AuthError::Invalid(
                    "private_key_jwt clients must register a JWKS or a jwks_uri".into(),
                ));
            }
            _ => {}
        }
        if scopes.has_system_scopes() && new.client_type != ClientType::PrivateKeyJwt {
            return Err(AuthError::Invalid(
                "system/ scopes need a private_key_jwt client".into(),
            ));
        }
        check_kind(new.kind, new.org.as_deref(), &scopes)?;
        if let Some(oid) = &new.certificate_oid
            && !crate::certificate::is_oid(oid)
        {
            return Err(AuthError::Invalid(format!(
                "certificate OID {oid:?} is not an OID (dotted decimal, e.g. 1.2.246.10.12345678.10.1)"
            )));
        }
        if let Some(jwks) = &new.jwks {
            parse_jwks(jwks).map_err(AuthError::Invalid)?;
        }
        if let Some(uri) = &new.jwks_uri {
            url::Url::parse(uri).map_err(|_| AuthError::Invalid("jwks_uri is not a URL".into()))?;
        }
        let app_id = match new.app_id {
            Some(id) => {
                check_app_id(&id)?;
                id
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let secret = (new.client_type == ClientType::Confidential).then(random_token);
        let now = self.clock.now();
        let app = App {
            app_id,
            name: name.to_owned(),
            kind: new.kind,
            client_type: new.client_type,
            redirect_uris: new.redirect_uris,
            scope: scopes.to_string(),
            status,
            contact: new.contact,
            jwks: new.jwks,
            jwks_uri: new.jwks_uri,
            created_at: now,
            status_changed_at: now,
            org: new.org,
            certificate_oid: new.certificate_oid,
        };
        let secret_digest = secret.as_deref().map(digest);
        if !self.store.insert(&app, secret_digest.as_deref())? {
            return Err(AuthError::Invalid(format!(
                "application id {} is taken",
                app.app_id
            )));
        }
        Ok(RegisteredApp {
            app,
            client_secret: secret,
        })
    }

    pub fn get(&self, app_id: &str) -> Result<Option<App>> {
        self.store.get(app_id)
    }

    pub fn list(&self) -> Result<Vec<App>> {
        self.store.list()
    }

    /// Operator: accept, suspend, reinstate or revoke. A revoked app stays revoked, and no
    /// app goes back to sandbox. Returns the app as it was and as it is now.
    pub fn set_status(&self, app_id: &str, status: AppStatus) -> Result<(App, App)> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        let allowed = match (current.status, status) {
            (AppStatus::Revoked, _) => false,
            (_, AppStatus::Sandbox) => false,
            (from, to) => from != to,
        };
        if !allowed {
            return Err(AuthError::NotAllowed(format!(
                "application {app_id} cannot go from {} to {}",
                current.status.code(),
                status.code()
            )));
        }
        if !self.store.set_status(app_id, status, self.clock.now())? {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        let now = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        Ok((current, now))
    }

    /// Checks a client secret against the stored digest.
    pub fn check_secret(&self, app_id: &str, secret: &str) -> Result<bool> {
        Ok(match self.store.secret_digest(app_id)? {
            Some(expected) => constant_time_eq(&expected, &digest(secret)),
            None => false,
        })
    }

    /// Registers (or refreshes) one of the server's own clients: a public client with PKCE,
    /// status accepted, one redirect URI. The citizen is never asked to consent to it.
    pub fn register_first_party(
        &self,
        app_id: &str,
        name: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<App> {
        // The redirect URI follows the server's own public URL, which may be plain http
        // off loopback in a sandbox: not held to the rules for third-party apps.
        check_app_id(app_id)?;
        let scopes = ScopeSet::parse(scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let now = self.clock.now();
        self.store.upsert_first_party(&App {
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            kind: AppKind::Wellbeing,
            client_type: ClientType::Public,
            redirect_uris: vec![redirect_uri.to_owned()],
            scope: scopes.to_string(),
            status: AppStatus::Accepted,
            contact: None,
            jwks: None,
            jwks_uri: None,
            created_at: now,
            status_changed_at: now,
            org: None,
            certificate_oid: None,
        })?;
        if let Ok(mut set) = self.first_party.write() {
            set.insert(app_id.to_owned());
        }
        self.get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// Whether `client_id` is one of the server's own clients (no consent page).
    pub fn is_first_party(&self, client_id: &str) -> bool {
        self.first_party
            .read()
            .map(|set| set.contains(client_id))
            .unwrap_or(false)
    }
}

/// A registered key set (inline `jwks` of a private_key_jwt client), checked to have keys.
pub fn parse_jwks(value: &Value) -> std::result::Result<jsonwebtoken::jwk::JwkSet, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(value.clone()).map_err(|e| format!("JWKS is not valid: {e}"))?;
    if set.keys.is_empty() {
        return Err("JWKS has no keys".into());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://app.example.fi/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9999/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("fi.example.app:/oauth").is_ok());
        assert!(check_redirect_uri("http://app.example.fi/cb").is_err());
        assert!(check_redirect_uri("https://app.example.fi/cb#x").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }

    fn apps() -> Apps {
        let store = Arc::new(SqliteAppStore::new(crate::sqlite::Sqlite::in_memory()));
        Apps::new(
            store,
            Arc::new(crate::clock::ManualClock::at_micros(1_000_000_000)),
        )
    }

    fn new_app(client_type: ClientType) -> NewApp {
        NewApp {
            app_id: None,
            name: " Steps ".into(),
            kind: AppKind::Wellbeing,
            client_type,
            redirect_uris: vec!["https://app.example.fi/cb".into()],
            scope: "patient/Observation.read".into(),
            contact: Some("dev@example.fi".into()),
            jwks: None,
            jwks_uri: None,
            org: None,
            certificate_oid: None,
        }
    }

    #[test]
    fn registration_stores_the_app_and_only_a_digest_of_its_secret() {
        let apps = apps();
        let registered = apps
            .register(new_app(ClientType::Confidential), AppStatus::Sandbox)
            .unwrap();
        let secret = registered.client_secret.unwrap();
        let stored = apps.get(&registered.app.app_id).unwrap().unwrap();
        assert_eq!(stored, registered.app);
        assert_eq!(stored.name, "Steps");
        assert_eq!(stored.created_at, 1000);
        assert!(apps.check_secret(&stored.app_id, &secret).unwrap());
        assert!(!apps.check_secret(&stored.app_id, "guess").unwrap());
        assert_eq!(
            apps.store.secret_digest(&stored.app_id).unwrap(),
            Some(digest(&secret))
        );
        let public = apps
            .register(new_app(ClientType::Public), AppStatus::Sandbox)
            .unwrap();
        assert_eq!(public.client_secret, None);
        assert!(!apps.check_secret(&public.app.app_id, "").unwrap());
        assert_eq!(apps.list().unwrap().len(), 2);
    }

    #[test]
    fn professional_apps_belong_to_an_organisation_and_only_read() {
        let apps = apps();
        let professional = |scope: &str, org: Option<&str>| NewApp {
            kind: AppKind::Professional,
            scope: scope.into(),
            org: org.map(str::to_string),
            ..new_app(ClientType::Public)
        };
        let ok = apps
            .register(
                professional(
                    "user/Observation.rs user/Patient.read openid fhirUser",
                    Some("1.2.3"),
                ),
                AppStatus::Sandbox,
            )
            .unwrap();
        assert_eq!(ok.app.org.as_deref(), Some("1.2.3"));
        for (scope, org) in [
            ("user/Observation.rs", None),
            ("user/Observation.write", Some("1.2.3")),
            ("user/Observation.cruds", Some("1.2.3")),
            ("patient/Observation.rs", Some("1.2.3")),
        ] {
            assert!(
                apps.register(professional(scope, org), AppStatus::Sandbox)
                    .is_err(),
                "{scope} {org:?}"
            );
        }
        let mut wellbeing = new_app(ClientType::Public);
        wellbeing.org = Some("1.2.3".into());
        assert!(apps.register(wellbeing, AppStatus::Sandbox).is_err());
        let mut system = professional("system/EpisodeOfCare.cruds", Some("1.2.3"));
        system.client_type = ClientType::PrivateKeyJwt;
        system.jwks = Some(
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}),
        );
        apps.register(system.clone(), AppStatus::Sandbox).unwrap();
        system.scope = "system/Observation.rs".into();
        assert!(apps.register(system, AppStatus::Sandbox).is_err());
        assert_eq!(apps.list().unwrap().len(), 2);
    }

    #[test]
    fn a_taken_application_id_is_refused() {
        let apps = apps();
        let mut new = new_app(ClientType::Public);
        new.app_id = Some("1.2.246.10.1".into());
        apps.register(new.clone(), AppStatus::Accepted).unwrap();
        let error = apps.register(new, AppStatus::Accepted).unwrap_err();
        assert!(error.to_string().contains("is taken"), "{error}");
    }

    #[test]
    fn status_changes_follow_the_rules() {
        let apps = apps();
        let id = apps
            .register(new_app(ClientType::Public), AppStatus::Sandbox)
            .unwrap()
            .app
            .app_id;
        let (before, after) = apps.set_status(&id, AppStatus::Accepted).unwrap();
        assert_eq!(
            (before.status, after.status),
            (AppStatus::Sandbox, AppStatus::Accepted)
        );
        assert!(
            apps.set_status(&id, AppStatus::Accepted).is_err(),
            "no change"
        );
        assert!(
            apps.set_status(&id, AppStatus::Sandbox).is_err(),
            "never back to sandbox"
        );
        apps.set_status(&id, AppStatus::Suspended).unwrap();
        apps.set_status(&id, AppStatus::Accepted).unwrap();
        apps.set_status(&id, AppStatus::Revoked).unwrap();
        assert!(
            apps.set_status(&id, AppStatus::Accepted).is_err(),
            "revoked is final"
        );
        assert!(matches!(
            apps.set_status("nobody", AppStatus::Accepted),
            Err(AuthError::NotFound(_))
        ));
    }

    #[test]
    fn first_party_clients_keep_an_operators_status() {
        let apps = apps();
        assert!(!apps.is_first_party("phr-portal"));
        let app = apps
            .register_first_party("phr-portal", "Portal", "http://127.0.0.1:9/cb", "openid")
            .unwrap();
        assert_eq!(
            (app.status, app.client_type),
            (AppStatus::Accepted, ClientType::Public)
        );
        assert!(apps.is_first_party("phr-portal"));
        apps.set_status("phr-portal", AppStatus::Suspended).unwrap();
        let again = apps
            .register_first_party("phr-portal", "Portal", "http://127.0.0.1:10/cb", "openid")
            .unwrap();
        assert_eq!(again.status, AppStatus::Suspended);
        assert_eq!(again.redirect_uris, vec!["http://127.0.0.1:10/cb"]);
    }

    #[test]
    fn status_usability_depends_on_mode() {
        assert!(AppStatus::Sandbox.is_usable(Mode::Sandbox));
        assert!(!AppStatus::Sandbox.is_usable(Mode::Production));
        assert!(AppStatus::Accepted.is_usable(Mode::Production));
        assert!(!AppStatus::Suspended.is_usable(Mode::Sandbox));
        assert!(!AppStatus::Revoked.is_usable(Mode::Sandbox));
    }
}
