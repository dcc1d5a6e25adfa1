//! The application registry: wellbeing and professional apps, their redirect URIs, allowed
//! scopes, client authentication and status (`sandbox` → `accepted` → `suspended`/`revoked`).
//!
//! The application id doubles as the OAuth `client_id` and as the `applicationId` the FHIR
//! layer writes into `creatingApplication`. Client secrets are shown once at registration
//! and stored only as digests.
//!
//! Owns the `apps` table, through [`AppStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Never audits and never
//! touches the enforcer's cache: the service handle does both after a change here.

mod keys;
pub(crate) mod postgres;
mod sqlite;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::Mode;
use crate::error::{AuthError, Result};
use crate::scope::{ScopeContext, ScopeSet, Special};
use crate::secrets::{constant_time_eq, digest, random_token};

pub use keys::{KeysError, check_keys, is_pem_private_key, looks_private};
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
    /// Sets what the public application list shows of the app; `false` when there is no
    /// such application.
    fn set_listing(
        &self,
        app_id: &str,
        supplier: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<bool>;
    /// Replaces the redirect URIs; `false` when there is no such application.
    fn set_redirect_uris(&self, app_id: &str, redirect_uris: &[String]) -> Result<bool>;
    /// Replaces the scopes the app may ask for; `false` when there is no such application.
    fn set_scope(&self, app_id: &str, scope: &str) -> Result<bool>;
    /// Replaces the public keys of `private_key_jwt` authentication (an inline JWKS, a
    /// `jwks_uri`, or neither); `false` when there is no such application.
    fn set_keys(&self, app_id: &str, jwks: Option<&Value>, jwks_uri: Option<&str>) -> Result<bool>;
    /// Replaces a confidential client's secret digest; `false` when there is no such
    /// application.
    fn set_secret_digest(&self, app_id: &str, digest: &[u8]) -> Result<bool>;
    /// The data contents the app is accepted for, by content code.
    fn contents(&self, app_id: &str) -> Result<Vec<AcceptedContent>>;
    /// Every application's accepted contents: (app id, content), by app and content code.
    fn all_contents(&self) -> Result<Vec<(String, AcceptedContent)>>;
    /// Stores the rights for one content, keeping the time it was first accepted.
    fn set_content(&self, app_id: &str, content: &AcceptedContent) -> Result<()>;
    /// The joint-testing rounds of the app, by content code and round number.
    fn rounds(&self, app_id: &str) -> Result<Vec<TestRound>>;
    /// Stores the next round of `round.content` with the number `round.round`; `false`
    /// when that number is taken (another operator recorded a round meanwhile).
    fn insert_round(&self, app_id: &str, round: &TestRound) -> Result<bool>;
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

/// Where an application runs, as the public application list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Web,
    Ios,
    Android,
    /// A service without a user interface of its own (a device's cloud, an integration).
    Server,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Web,
        Platform::Ios,
        Platform::Android,
        Platform::Server,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Platform::Web => "web",
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Server => "server",
        }
    }

    pub fn parse(text: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.code() == text)
    }
}

/// A data content (a catalogue code such as `blood-pressure`) an application may read
/// and/or write in production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedContent {
    pub content: String,
    pub read: bool,
    pub write: bool,
    /// When the content was first accepted (seconds since the epoch).
    pub accepted_at: i64,
}

/// The outcome of a joint-testing round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundOutcome {
    Pass,
    Fail,
}

impl RoundOutcome {
    pub fn code(self) -> &'static str {
        match self {
            RoundOutcome::Pass => "pass",
            RoundOutcome::Fail => "fail",
        }
    }
    pub fn parse(text: &str) -> Option<RoundOutcome> {
        match text {
            "pass" => Some(RoundOutcome::Pass),
            "fail" => Some(RoundOutcome::Fail),
            _ => None,
        }
    }
}

/// One round of joint testing of one data content (Kanta: one to three rounds per content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRound {
    pub content: String,
    /// 1, 2 or 3.
    pub round: u32,
    /// When it was recorded (seconds since the epoch).
    pub at: i64,
    pub outcome: RoundOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Kanta's joint testing has one to three rounds per data content.
pub const MAX_ROUNDS: u32 = 3;

/// What an application may read and write in production, by content code: the enforcer
/// hands it to the FHIR layer with every request of an accepted wellbeing application in
/// production mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContentRights {
    pub read: BTreeSet<String>,
    pub write: BTreeSet<String>,
}

impl ContentRights {
    pub fn of(contents: &[AcceptedContent]) -> ContentRights {
        let pick = |f: fn(&AcceptedContent) -> bool| {
            contents
                .iter()
                .filter(|c| f(c))
                .map(|c| c.content.clone())
                .collect()
        };
        ContentRights {
            read: pick(|c| c.read),
            write: pick(|c| c.write),
        }
    }
}

/// An application with its accepted data contents and joint-testing rounds (`phr app
/// show`, `phr app list --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppDetails {
    #[serde(flatten)]
    pub app: App,
    pub contents: Vec<AcceptedContent>,
    pub rounds: Vec<TestRound>,
}

/// One entry of the public application list: an accepted application and the contents it
/// reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedApp {
    pub app_id: String,
    pub name: String,
    pub supplier: Option<String>,
    pub platform: Option<Platform>,
    pub contents: Vec<AcceptedContent>,
    /// Since when the application has been listed: its first accepted content.
    pub since: i64,
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
    /// Who makes the application, for the public application list.
    pub supplier: Option<String>,
    pub platform: Option<Platform>,
    /// The developer who registered it in the developer console (their sign-in identity):
    /// the console shows an application to this developer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer: Option<String>,
    /// The FHIR versions the application uses (`/fhir/r4`, the deprecated `/fhir/stu3`); in
    /// production it is served on those only.
    pub fhir_versions: FhirVersions,
}

/// The FHIR versions an application uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FhirVersions {
    pub r4: bool,
    pub stu3: bool,
}

impl FhirVersions {
    pub const R4: FhirVersions = FhirVersions {
        r4: true,
        stu3: false,
    };
    pub const BOTH: FhirVersions = FhirVersions {
        r4: true,
        stu3: true,
    };

    /// `r4`, `stu3`, or both separated by commas or spaces; `None` for anything else.
    pub fn parse(text: &str) -> Option<FhirVersions> {
        let mut versions = FhirVersions {
            r4: false,
            stu3: false,
        };
        for word in text.split([',', ' ']).filter(|w| !w.is_empty()) {
            match word.to_ascii_lowercase().as_str() {
                "r4" => versions.r4 = true,
                "stu3" => versions.stu3 = true,
                _ => return None,
            }
        }
        (versions.r4 || versions.stu3).then_some(versions)
    }

    /// As stored: `r4`, `stu3` or `r4 stu3`.
    pub fn code(self) -> &'static str {
        match (self.r4, self.stu3) {
            (true, true) => "r4 stu3",
            (false, true) => "stu3",
            _ => "r4",
        }
    }

    /// The default of a new registration: R4 only in production (STU3 is deprecated), both
    /// in the sandbox.
    pub fn default_for(mode: crate::config::Mode) -> FhirVersions {
        if mode.is_sandbox() {
            FhirVersions::BOTH
        } else {
            FhirVersions::R4
        }
    }
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
    /// Who makes the application (the public application list).
    #[serde(default)]
    pub supplier: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    /// The FHIR versions it uses; by default both ([`AuthService::register_app`] defaults
    /// them by mode).
    ///
    /// [`AuthService::register_app`]: crate::AuthService::register_app
    #[serde(default)]
    pub fhir_versions: Option<FhirVersions>,
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

/// Whether a new application of `kind` must name its service certificate (its OID) in
/// `mode`: in production a wellbeing application is bound to its certificate, so that its
/// tokens are too. One rule for every way of registering (`phr app register` and the
/// developer console).
pub fn needs_certificate(mode: Mode, kind: AppKind) -> bool {
    mode == Mode::Production && kind == AppKind::Wellbeing
}

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

/// The scopes an application of `kind` and `client_type` may ask for: well-formed SMART
/// scopes (ones this server does not know are dropped), `system/` ones only for a
/// `private_key_jwt` client, and within what its kind allows ([`check_kind`]).
fn check_scope(
    scope: &str,
    client_type: ClientType,
    kind: AppKind,
    org: Option<&str>,
) -> Result<ScopeSet> {
    let scopes = ScopeSet::parse(scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
    if scopes.has_system_scopes() && client_type != ClientType::PrivateKeyJwt {
        return Err(AuthError::Invalid(
            "system/ scopes need a private_key_jwt client".into(),
        ));
    }
    check_kind(kind, org, &scopes)?;
    Ok(scopes)
}

/// Data contents are accepted, after joint testing, for wellbeing applications that are
/// still in the registry's life (not revoked). Professional applications are certified as a
/// whole and read what citizens share.
fn check_content_rules(app: &App) -> Result<()> {
    if app.kind != AppKind::Wellbeing {
        return Err(AuthError::Invalid(format!(
            "application {} is a professional application: data contents are accepted for wellbeing applications",
            app.app_id
        )));
    }
    if app.status == AppStatus::Revoked {
        return Err(AuthError::NotAllowed(format!(
            "application {} is revoked",
            app.app_id
        )));
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

/// A supplier's name: trimmed, 1–200 characters, no control characters; `None` stays `None`.
fn check_supplier(supplier: Option<&str>) -> Result<Option<String>> {
    let Some(supplier) = supplier else {
        return Ok(None);
    };
    let trimmed = supplier.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(AuthError::Invalid(
            "the supplier's name must have 1–200 characters and no control characters".into(),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// A data content code as the catalogue writes them (`blood-pressure`). Whether the
/// catalogue knows it is the caller's to check: this crate knows no catalogue.
fn check_content_code(code: &str) -> Result<()> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{code:?} is not a data content code (such as blood-pressure)"
        )))
    }
}

/// An operator's note on a test round: at most 1000 characters, and never a personal
/// identity code (the registry is no place for personal data; the note is shown wherever
/// the application is).
fn check_note(note: Option<&str>) -> Result<Option<String>> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > 1000 {
        return Err(AuthError::Invalid(
            "the note may have at most 1000 characters".into(),
        ));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AuthError::Invalid(
            "the note may not contain control characters".into(),
        ));
    }
    if contains_identity_code(note) {
        return Err(AuthError::Invalid(
            "the note contains a personal identity code: leave personal data out of the registry"
                .into(),
        ));
    }
    Ok(Some(note.to_owned()))
}

/// Whether `text` holds something that parses as a personal identity code.
fn contains_identity_code(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(11).any(|w| {
        let candidate: String = w.iter().collect();
        crate::hetu::Hetu::parse(&candidate).is_ok()
    })
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
        self.register_for(new, status, None)
    }

    /// Registers an application as [`Apps::register`] does, owned by `developer` (the
    /// developer console's signed-in developer).
    pub fn register_for(
        &self,
        new: NewApp,
        status: AppStatus,
        developer: Option<String>,
    ) -> Result<RegisteredApp> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AuthError::Invalid(
                "the application name must have 1–200 characters".into(),
            ));
        }
        let scopes = check_scope(&new.scope, new.client_type, new.kind, new.org.as_deref())?;
        for uri in &new.redirect_uris {
            check_redirect_uri(uri)?;
        }
        if new.client_type != ClientType::PrivateKeyJwt && new.redirect_uris.is_empty() {
            return Err(AuthError::Invalid(
                "at least one redirect URI is required".into(),
            ));
        }
        check_keys(new.client_type, new.jwks.as_ref(), new.jwks_uri.as_deref())?;
        if let Some(oid) = &new.certificate_oid
            && !crate::certificate::is_oid(oid)
        {
            return Err(AuthError::Invalid(format!(
                "certificate OID {oid:?} is not an OID (dotted decimal, e.g. 1.2.246.10.12345678.10.1)"
            )));
        }
        let supplier = check_supplier(new.supplier.as_deref())?;
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
            supplier,
            platform: new.platform,
            developer,
            fhir_versions: new.fhir_versions.unwrap_or(FhirVersions::BOTH),
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

    /// Operator: sets what the public application list shows of the app (a field left
    /// `None` keeps its value).
    pub fn set_listing(
        &self,
        app_id: &str,
        supplier: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<App> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        let supplier = check_supplier(supplier)?.or(current.supplier);
        let platform = platform.or(current.platform);
        if !self
            .store
            .set_listing(app_id, supplier.as_deref(), platform)?
        {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        self.get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// The developer: replaces the redirect URIs (checked as at registration; a client that
    /// logs in by redirect keeps at least one).
    pub fn set_redirect_uris(&self, app_id: &str, redirect_uris: Vec<String>) -> Result<App> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        for uri in &redirect_uris {
            check_redirect_uri(uri)?;
        }
        if redirect_uris.is_empty() && current.client_type != ClientType::PrivateKeyJwt {
            return Err(AuthError::Invalid(
                "at least one redirect URI is required".into(),
            ));
        }
        if !self.store.set_redirect_uris(app_id, &redirect_uris)? {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        self.get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// The developer: replaces the scopes the app may ask for (checked as at registration,
    /// stored as registration stores them). Tokens already issued, and their refresh
    /// tokens, keep the scope they were granted.
    pub fn set_scope(&self, app_id: &str, scope: &str) -> Result<App> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        let scopes = check_scope(
            scope,
            current.client_type,
            current.kind,
            current.org.as_deref(),
        )?;
        if !self.store.set_scope(app_id, &scopes.to_string())? {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        self.get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// The developer: sets the public keys of `private_key_jwt` authentication, an inline
    /// JWKS or a `jwks_uri`, or clears them with neither (checked as at registration: public
    /// keys only, and a `private_key_jwt` client keeps one).
    pub fn set_keys(
        &self,
        app_id: &str,
        jwks: Option<Value>,
        jwks_uri: Option<String>,
    ) -> Result<App> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        check_keys(current.client_type, jwks.as_ref(), jwks_uri.as_deref())?;
        if !self
            .store
            .set_keys(app_id, jwks.as_ref(), jwks_uri.as_deref())?
        {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        self.get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// The developer: a new secret for a confidential client (returned this once; only its
    /// digest is stored). The old secret stops working at once.
    pub fn new_client_secret(&self, app_id: &str) -> Result<String> {
        let current = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        if current.client_type != ClientType::Confidential {
            return Err(AuthError::Invalid(
                "only a confidential client has a client secret".into(),
            ));
        }
        let secret = random_token();
        if !self.store.set_secret_digest(app_id, &digest(&secret))? {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        Ok(secret)
    }

    /// The app with its accepted contents and test rounds.
    pub fn details(&self, app_id: &str) -> Result<Option<AppDetails>> {
        let Some(app) = self.get(app_id)? else {
            return Ok(None);
        };
        Ok(Some(AppDetails {
            contents: self.store.contents(app_id)?,
            rounds: self.store.rounds(app_id)?,
            app,
        }))
    }

    /// Every application with its contents and rounds, oldest first.
    pub fn list_details(&self) -> Result<Vec<AppDetails>> {
        let mut contents = self.store.all_contents()?;
        let mut out = Vec::new();
        for app in self.list()? {
            let (own, rest): (Vec<_>, Vec<_>) =
                contents.into_iter().partition(|(id, _)| *id == app.app_id);
            contents = rest;
            out.push(AppDetails {
                contents: own.into_iter().map(|(_, c)| c).collect(),
                rounds: self.store.rounds(&app.app_id)?,
                app,
            });
        }
        Ok(out)
    }

    /// The contents `app_id` is accepted for.
    pub fn contents(&self, app_id: &str) -> Result<Vec<AcceptedContent>> {
        self.store.contents(app_id)
    }

    /// Operator: records a joint-testing round of one data content. Rounds are numbered
    /// per content from 1; Kanta holds at most [`MAX_ROUNDS`]. Revoked applications are
    /// not tested.
    pub fn record_round(
        &self,
        app_id: &str,
        content: &str,
        outcome: RoundOutcome,
        note: Option<&str>,
    ) -> Result<TestRound> {
        check_content_code(content)?;
        let note = check_note(note)?;
        let app = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        check_content_rules(&app)?;
        let done = self
            .store
            .rounds(app_id)?
            .into_iter()
            .filter(|r| r.content == content)
            .map(|r| r.round)
            .max()
            .unwrap_or(0);
        if done >= MAX_ROUNDS {
            return Err(AuthError::NotAllowed(format!(
                "{content} of application {app_id} has had {done} joint-testing rounds, the most there are"
            )));
        }
        let round = TestRound {
            content: content.to_owned(),
            round: done + 1,
            at: self.clock.now(),
            outcome,
            note,
        };
        if !self.store.insert_round(app_id, &round)? {
            return Err(AuthError::NotAllowed(format!(
                "round {} of {content} was recorded meanwhile; look again with phr app show {app_id}",
                round.round
            )));
        }
        Ok(round)
    }

    /// Operator: accepts the app for one data content with the given rights (replacing
    /// earlier ones). The content's last joint-testing round must have passed. Returns the
    /// content as stored.
    pub fn accept_content(
        &self,
        app_id: &str,
        content: &str,
        read: bool,
        write: bool,
    ) -> Result<AcceptedContent> {
        self.accept_contents(app_id, &[content.to_owned()], read, write)?
            .pop()
            .ok_or_else(|| AuthError::Invalid("name at least one data content".into()))
    }

    /// Operator: accepts the app for data contents with the same rights, all or none: every
    /// content is checked before any is stored.
    pub fn accept_contents(
        &self,
        app_id: &str,
        contents: &[String],
        read: bool,
        write: bool,
    ) -> Result<Vec<AcceptedContent>> {
        if contents.is_empty() {
            return Err(AuthError::Invalid("name at least one data content".into()));
        }
        for content in contents {
            self.check_acceptable(app_id, content, read, write)?;
        }
        let stored = self.store.contents(app_id)?;
        let now = self.clock.now();
        let mut accepted = Vec::new();
        for content in contents {
            let accepted_at = stored
                .iter()
                .find(|c| &c.content == content)
                .map_or(now, |c| c.accepted_at);
            let one = AcceptedContent {
                content: content.clone(),
                read,
                write,
                accepted_at,
            };
            self.store.set_content(app_id, &one)?;
            accepted.push(one);
        }
        Ok(accepted)
    }

    /// Whether `content` may be accepted for `app_id` now (see [`Apps::accept_contents`]).
    fn check_acceptable(&self, app_id: &str, content: &str, read: bool, write: bool) -> Result<()> {
        check_content_code(content)?;
        if !read && !write {
            return Err(AuthError::Invalid(
                "accept a content for reading, writing or both".into(),
            ));
        }
        let app = self
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        check_content_rules(&app)?;
        if matches!(app.status, AppStatus::Suspended) {
            return Err(AuthError::NotAllowed(format!(
                "application {app_id} is suspended: reinstate it with `phr app accept {app_id}` first"
            )));
        }
        let last = self
            .store
            .rounds(app_id)?
            .into_iter()
            .filter(|r| r.content == content)
            .max_by_key(|r| r.round);
        match last {
            Some(round) if round.outcome == RoundOutcome::Pass => {}
            Some(round) => {
                return Err(AuthError::NotAllowed(format!(
                    "{content} failed joint-testing round {}: it can be accepted once a round passes",
                    round.round
                )));
            }
            None => {
                return Err(AuthError::NotAllowed(format!(
                    "{content} has no joint-testing round yet: record one with `phr app round {app_id} --content {content} --outcome pass`"
                )));
            }
        }
        Ok(())
    }

    /// The public application list: accepted wellbeing applications with at least one
    /// accepted content, by name.
    pub fn listed(&self) -> Result<Vec<ListedApp>> {
        let mut contents = self.store.all_contents()?;
        let mut listed = Vec::new();
        for app in self.list()? {
            let (own, rest): (Vec<_>, Vec<_>) =
                contents.into_iter().partition(|(id, _)| *id == app.app_id);
            contents = rest;
            if app.status != AppStatus::Accepted || app.kind != AppKind::Wellbeing {
                continue;
            }
            let own: Vec<AcceptedContent> = own
                .into_iter()
                .map(|(_, c)| c)
                .filter(|c| c.read || c.write)
                .collect();
            let Some(since) = own.iter().map(|c| c.accepted_at).min() else {
                continue;
            };
            listed.push(ListedApp {
                app_id: app.app_id,
                name: app.name,
                supplier: app.supplier,
                platform: app.platform,
                contents: own,
                since,
            });
        }
        listed.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.app_id.cmp(&b.app_id))
        });
        Ok(listed)
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
            supplier: None,
            platform: None,
            developer: None,
            fhir_versions: FhirVersions::BOTH,
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
pub(crate) mod tests {
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
            supplier: None,
            platform: None,
            fhir_versions: None,
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

    /// The joint-testing rules and the public list over any engine's store.
    pub(crate) fn joint_testing_and_listing(store: Arc<dyn AppStore>) {
        let clock = Arc::new(crate::clock::ManualClock::at_micros(1_000_000_000));
        let apps = Apps::new(store, clock.clone());
        let mut new = new_app(ClientType::Public);
        new.app_id = Some("steps".into());
        new.supplier = Some(" Askel Oy ".into());
        new.platform = Some(Platform::Ios);
        apps.register(new, AppStatus::Sandbox).unwrap();
        let app = apps.get("steps").unwrap().unwrap();
        assert_eq!(app.supplier.as_deref(), Some("Askel Oy"));
        assert_eq!(app.platform, Some(Platform::Ios));

        // No acceptance without a passed round; rounds are numbered per content.
        let error = apps
            .accept_content("steps", "steps", true, true)
            .unwrap_err();
        assert!(
            error.to_string().contains("no joint-testing round"),
            "{error}"
        );
        let first = apps
            .record_round("steps", "steps", RoundOutcome::Fail, Some("duplicates"))
            .unwrap();
        assert_eq!((first.round, first.at), (1, 1000));
        let error = apps
            .accept_content("steps", "steps", true, true)
            .unwrap_err();
        assert!(
            error.to_string().contains("failed joint-testing round 1"),
            "{error}"
        );
        clock.advance(86_400);
        let second = apps
            .record_round("steps", "steps", RoundOutcome::Pass, None)
            .unwrap();
        assert_eq!(second.round, 2);
        apps.record_round("steps", "body-weight", RoundOutcome::Pass, Some("  "))
            .unwrap();
        let accepted = apps.accept_content("steps", "steps", false, true).unwrap();
        assert_eq!(
            (accepted.read, accepted.write, accepted.accepted_at),
            (false, true, 87_400)
        );
        clock.advance(10);
        // Changing the rights keeps the time of acceptance.
        let again = apps.accept_content("steps", "steps", true, true).unwrap();
        assert_eq!((again.read, again.accepted_at), (true, 87_400));
        apps.accept_content("steps", "body-weight", true, false)
            .unwrap();
        assert!(apps.accept_content("steps", "steps", false, false).is_err());
        // All or none: a content without a passed round keeps the others from changing.
        assert!(
            apps.accept_contents(
                "steps",
                &["body-weight".into(), "blood-pressure".into()],
                true,
                true
            )
            .is_err()
        );
        let weight = apps
            .contents("steps")
            .unwrap()
            .into_iter()
            .find(|c| c.content == "body-weight")
            .unwrap();
        assert!(weight.read && !weight.write, "unchanged");
        assert!(
            apps.accept_content("steps", "Not A Code", true, true)
                .is_err()
        );

        let details = apps.details("steps").unwrap().unwrap();
        assert_eq!(
            details
                .contents
                .iter()
                .map(|c| (c.content.as_str(), c.read, c.write))
                .collect::<Vec<_>>(),
            [("body-weight", true, false), ("steps", true, true)]
        );
        assert_eq!(
            details
                .rounds
                .iter()
                .map(|r| (r.content.as_str(), r.round, r.outcome, r.note.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("body-weight", 1, RoundOutcome::Pass, None),
                ("steps", 1, RoundOutcome::Fail, Some("duplicates")),
                ("steps", 2, RoundOutcome::Pass, None),
            ]
        );
        let rights = ContentRights::of(&details.contents);
        assert!(rights.read.contains("body-weight") && !rights.write.contains("body-weight"));

        // Three rounds at most per content.
        apps.record_round("steps", "steps", RoundOutcome::Pass, None)
            .unwrap();
        let error = apps
            .record_round("steps", "steps", RoundOutcome::Pass, None)
            .unwrap_err();
        assert!(
            error.to_string().contains("3 joint-testing rounds"),
            "{error}"
        );
        // No personal identity code in a note.
        let error = apps
            .record_round(
                "steps",
                "heart-rate",
                RoundOutcome::Fail,
                Some("tested with 010190-901R"),
            )
            .unwrap_err();
        assert!(error.to_string().contains("identity code"), "{error}");

        // The list shows accepted wellbeing apps with contents only, and hides a suspended one.
        assert!(apps.listed().unwrap().is_empty(), "still in the sandbox");
        apps.set_status("steps", AppStatus::Accepted).unwrap();
        let mut other = new_app(ClientType::Public);
        other.app_id = Some("another".into());
        other.name = "Another".into();
        apps.register(other, AppStatus::Accepted).unwrap();
        let listed = apps.listed().unwrap();
        assert_eq!(
            listed.len(),
            1,
            "an accepted app without contents is not listed"
        );
        let steps = listed.first().unwrap();
        assert_eq!((steps.name.as_str(), steps.since), ("Steps", 87_400));
        assert_eq!(steps.contents.len(), 2);
        apps.set_status("steps", AppStatus::Suspended).unwrap();
        assert!(apps.listed().unwrap().is_empty());
        assert!(apps.accept_content("steps", "steps", true, true).is_err());

        let updated = apps.set_listing("steps", Some("Steps Ltd"), None).unwrap();
        assert_eq!(
            (updated.supplier.as_deref(), updated.platform),
            (Some("Steps Ltd"), Some(Platform::Ios))
        );
        assert!(apps.set_listing("steps", Some(""), None).is_err());
        assert!(apps.set_listing("nobody", None, None).is_err());
        let all = apps.list_details().unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            all.iter()
                .any(|d| d.app.app_id == "another" && d.contents.is_empty())
        );
    }

    /// What the developer console changes, over any engine's store: the owner is kept, the
    /// redirect URIs are checked as at registration, and a new secret replaces the old one.
    pub(crate) fn developer_owned_apps_change_redirects_and_secret(store: Arc<dyn AppStore>) {
        let clock = Arc::new(crate::clock::ManualClock::at_micros(1_000_000_000));
        let apps = Apps::new(store, clock);
        let mut new = new_app(ClientType::Confidential);
        new.app_id = Some("paino".into());
        let registered = apps
            .register_for(new, AppStatus::Sandbox, Some("dev@example.fi".into()))
            .unwrap();
        let first = registered.client_secret.unwrap();
        assert_eq!(
            apps.get("paino").unwrap().unwrap().developer.as_deref(),
            Some("dev@example.fi")
        );
        let changed = apps
            .set_redirect_uris(
                "paino",
                vec!["https://paino.example/cb".into(), "fi.paino:/cb".into()],
            )
            .unwrap();
        assert_eq!(
            changed.redirect_uris,
            vec!["https://paino.example/cb", "fi.paino:/cb"]
        );
        for bad in [vec![], vec!["http://example.com/cb".to_string()]] {
            assert!(matches!(
                apps.set_redirect_uris("paino", bad),
                Err(AuthError::Invalid(_))
            ));
        }
        assert_eq!(apps.get("paino").unwrap().unwrap().redirect_uris.len(), 2);
        let second = apps.new_client_secret("paino").unwrap();
        assert!(apps.check_secret("paino", &second).unwrap());
        assert!(!apps.check_secret("paino", &first).unwrap());
        assert!(matches!(
            apps.new_client_secret("nobody"),
            Err(AuthError::NotFound(_))
        ));
        apps.register(new_app(ClientType::Public), AppStatus::Sandbox)
            .map(|public| {
                assert!(matches!(
                    apps.new_client_secret(&public.app.app_id),
                    Err(AuthError::Invalid(_))
                ))
            })
            .unwrap();
    }

    /// Scopes and keys, over any engine's store: checked as at registration, a refusal
    /// changes nothing, and keys are set, replaced and cleared.
    pub(crate) fn developer_owned_apps_change_scope_and_keys(store: Arc<dyn AppStore>) {
        let clock = Arc::new(crate::clock::ManualClock::at_micros(1_000_000_000));
        let apps = Apps::new(store, clock);
        let mut new = new_app(ClientType::Confidential);
        new.app_id = Some("askel".into());
        apps.register_for(new, AppStatus::Sandbox, Some("dev@example.fi".into()))
            .unwrap();

        let changed = apps
            .set_scope(
                "askel",
                "  patient/Observation.rs   offline_access profile ",
            )
            .unwrap();
        assert_eq!(changed.scope, "patient/Observation.rs offline_access");
        for bad in [
            "patient/Observation.bogus",
            "system/Observation.rs",
            "patient/observation.read",
        ] {
            assert!(
                matches!(apps.set_scope("askel", bad), Err(AuthError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            apps.get("askel").unwrap().unwrap().scope,
            "patient/Observation.rs offline_access",
            "unchanged"
        );
        assert!(matches!(
            apps.set_scope("nobody", "patient/Observation.rs"),
            Err(AuthError::NotFound(_))
        ));

        let key = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let jwks = serde_json::json!({ "keys": [key] });
        let set = apps.set_keys("askel", Some(jwks.clone()), None).unwrap();
        assert_eq!(
            (set.jwks.as_ref(), set.jwks_uri.as_deref()),
            (Some(&jwks), None)
        );
        let mut private = key.clone();
        private["d"] = serde_json::json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        let refused = [
            (Some(serde_json::json!({ "keys": [private] })), None),
            (Some(serde_json::json!({"keys": []})), None),
            (None, Some("http://keys.example.fi/jwks".to_string())),
            (
                Some(jwks.clone()),
                Some("https://keys.example.fi/jwks".to_string()),
            ),
        ];
        for (jwks, uri) in refused {
            assert!(
                matches!(
                    apps.set_keys("askel", jwks, uri),
                    Err(AuthError::Invalid(_))
                ),
                "refused"
            );
        }
        assert_eq!(
            apps.get("askel").unwrap().unwrap().jwks,
            Some(jwks),
            "unchanged"
        );
        let uri = apps
            .set_keys("askel", None, Some("https://keys.example.fi/jwks".into()))
            .unwrap();
        assert_eq!(
            (uri.jwks, uri.jwks_uri.as_deref()),
            (None, Some("https://keys.example.fi/jwks"))
        );
        let cleared = apps.set_keys("askel", None, None).unwrap();
        assert_eq!((cleared.jwks, cleared.jwks_uri), (None, None));

        // A private_key_jwt client keeps its keys.
        let mut backend = new_app(ClientType::PrivateKeyJwt);
        backend.app_id = Some("taustapalvelu".into());
        backend.jwks_uri = Some("https://keys.example.fi/jwks".into());
        apps.register(backend, AppStatus::Sandbox).unwrap();
        assert!(matches!(
            apps.set_keys("taustapalvelu", None, None),
            Err(AuthError::Invalid(_))
        ));
        assert!(
            apps.get("taustapalvelu")
                .unwrap()
                .unwrap()
                .jwks_uri
                .is_some()
        );
    }

    #[test]
    fn registration_refuses_private_keys_and_two_places_for_keys() {
        let apps = apps();
        let mut new = new_app(ClientType::PrivateKeyJwt);
        new.jwks = Some(serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
        let error = apps.register(new, AppStatus::Sandbox).unwrap_err();
        assert!(
            error.to_string().contains("private key material"),
            "{error}"
        );
        let mut new = new_app(ClientType::PrivateKeyJwt);
        new.jwks_uri = Some("ftp://keys.example.fi/jwks".into());
        assert!(apps.register(new, AppStatus::Sandbox).is_err());
        let mut new = new_app(ClientType::PrivateKeyJwt);
        new.jwks = Some(serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}));
        new.jwks_uri = Some("https://keys.example.fi/jwks".into());
        let error = apps.register(new.clone(), AppStatus::Sandbox).unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
        new.jwks_uri = None;
        apps.register(new, AppStatus::Sandbox).unwrap();
        assert_eq!(apps.list().unwrap().len(), 1);
    }

    #[test]
    fn developer_changes_on_sqlite() {
        developer_owned_apps_change_redirects_and_secret(Arc::new(SqliteAppStore::new(
            crate::sqlite::Sqlite::in_memory(),
        )));
        developer_owned_apps_change_scope_and_keys(Arc::new(SqliteAppStore::new(
            crate::sqlite::Sqlite::in_memory(),
        )));
    }

    #[test]
    fn joint_testing_and_the_public_list_on_sqlite() {
        joint_testing_and_listing(Arc::new(SqliteAppStore::new(
            crate::sqlite::Sqlite::in_memory(),
        )));
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
