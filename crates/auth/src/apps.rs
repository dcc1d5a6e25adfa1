//! The application registry: wellbeing and professional apps, their redirect URIs, allowed
//! scopes, client authentication and status (`sandbox` → `accepted` → `suspended`/`revoked`).
//!
//! The application id doubles as the OAuth `client_id` and as the `applicationId` the FHIR
//! layer writes into `creatingApplication`. Client secrets are shown once at registration
//! and stored only as digests.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Mode;
use crate::error::{AuthError, Result};
use crate::scope::{ScopeSet, Special};
use crate::secrets::{digest, random_token};
use crate::service::AuthService;

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

const APP_COLUMNS: &str = "app_id, name, kind, client_type, redirect_uris, scope, status, contact, jwks, jwks_uri, created_at, status_changed_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    let text = |i: usize| row.get::<_, String>(i);
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    let redirect_uris: Vec<String> =
        serde_json::from_str(&text(4)?).map_err(|_| bad(4, "redirect list"))?;
    let jwks: Option<String> = row.get(8)?;
    Ok(App {
        app_id: text(0)?,
        name: text(1)?,
        kind: AppKind::parse(&text(2)?).ok_or_else(|| bad(2, "kind"))?,
        client_type: ClientType::parse(&text(3)?).ok_or_else(|| bad(3, "client type"))?,
        redirect_uris,
        scope: text(5)?,
        status: AppStatus::parse(&text(6)?).ok_or_else(|| bad(6, "status"))?,
        contact: row.get(7)?,
        jwks: jwks.and_then(|j| serde_json::from_str(&j).ok()),
        jwks_uri: row.get(9)?,
        created_at: row.get(10)?,
        status_changed_at: row.get(11)?,
    })
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

impl AuthService {
    /// Registers an application with status `sandbox` (self-service) or as given by the
    /// operator.
    pub fn register_app(&self, new: NewApp, status: AppStatus) -> Result<RegisteredApp> {
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
        if let Some(jwks) = &new.jwks {
            crate::client_auth::parse_jwks(jwks).map_err(AuthError::Invalid)?;
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
        let now = self.now();
        let conn = self.db();
        let inserted = conn.execute(
            &format!("INSERT INTO apps ({APP_COLUMNS}, secret_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)"),
            params![
                app_id,
                name,
                new.kind.code(),
                new.client_type.code(),
                serde_json::to_string(&new.redirect_uris).unwrap_or_else(|_| "[]".into()),
                scopes.to_string(),
                status.code(),
                new.contact,
                new.jwks.as_ref().map(Value::to_string),
                new.jwks_uri,
                now,
                secret.as_deref().map(digest),
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(AuthError::Invalid(format!(
                    "application id {app_id} is taken"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let app = conn.query_row(
            &format!("SELECT {APP_COLUMNS} FROM apps WHERE app_id = ?1"),
            [&app_id],
            app_from_row,
        )?;
        drop(conn);
        // Only the operator registers apps straight into accepted status; sandbox apps
        // come from self-service registration.
        let (usage, actor) = if status == AppStatus::Sandbox {
            (
                crate::audit::Usage::Authorization,
                "self-service registration",
            )
        } else {
            (crate::audit::Usage::Operator, "operator")
        };
        let mut record = crate::audit::AuditRecord::new(usage, actor);
        record.app_id = Some(app.app_id.clone());
        record.app_name = Some(app.name.clone());
        record.interaction = Some(format!("app-register:{}", status.code()));
        self.audit(record)?;
        Ok(RegisteredApp {
            app,
            client_secret: secret,
        })
    }

    pub fn app(&self, app_id: &str) -> Result<Option<App>> {
        let conn = self.db();
        Ok(conn
            .query_row(
                &format!("SELECT {APP_COLUMNS} FROM apps WHERE app_id = ?1"),
                [app_id],
                app_from_row,
            )
            .optional()?)
    }

    pub fn list_apps(&self) -> Result<Vec<App>> {
        let conn = self.db();
        let mut stmt = conn.prepare(&format!(
            "SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, app_id"
        ))?;
        let apps = stmt
            .query_map([], app_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(apps)
    }

    /// Operator: accept, suspend, reinstate or revoke. Suspension and revocation cut every
    /// token of the app at once. A revoked app stays revoked.
    pub fn set_app_status(&self, app_id: &str, status: AppStatus) -> Result<App> {
        let current = self
            .app(app_id)?
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
        let now = self.now();
        self.db().execute(
            "UPDATE apps SET status = ?1, status_changed_at = ?2 WHERE app_id = ?3",
            params![status.code(), now, app_id],
        )?;
        self.0.status.forget_app(app_id);
        self.bump_status_epoch();
        let mut record = crate::audit::AuditRecord::new(crate::audit::Usage::Operator, "operator");
        record.app_id = Some(app_id.to_owned());
        record.app_name = Some(current.name.clone());
        record.interaction = Some(format!("app-status:{}", status.code()));
        self.audit(record)?;
        self.app(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// Checks a client secret against the stored digest.
    pub(crate) fn check_client_secret(&self, app_id: &str, secret: &str) -> Result<bool> {
        let stored: Option<Option<Vec<u8>>> = self
            .db()
            .query_row(
                "SELECT secret_digest FROM apps WHERE app_id = ?1",
                [app_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match stored.flatten() {
            Some(expected) => crate::secrets::constant_time_eq(&expected, &digest(secret)),
            None => false,
        })
    }

    /// Name and status for the enforcement path, from the cache.
    pub(crate) fn app_status_cached(&self, app_id: &str) -> Result<Option<(String, AppStatus)>> {
        if let Some(hit) = self
            .0
            .status
            .apps
            .read()
            .ok()
            .and_then(|m| m.get(app_id).cloned())
        {
            return Ok(Some(hit));
        }
        let found: Option<(String, String)> = self
            .db()
            .query_row(
                "SELECT name, status FROM apps WHERE app_id = ?1",
                [app_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((name, status)) = found else {
            return Ok(None);
        };
        let status = AppStatus::parse(&status).unwrap_or(AppStatus::Revoked);
        if let Ok(mut map) = self.0.status.apps.write() {
            map.insert(app_id.to_owned(), (name.clone(), status));
        }
        Ok(Some((name, status)))
    }
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

    #[test]
    fn status_usability_depends_on_mode() {
        assert!(AppStatus::Sandbox.is_usable(Mode::Sandbox));
        assert!(!AppStatus::Sandbox.is_usable(Mode::Production));
        assert!(AppStatus::Accepted.is_usable(Mode::Production));
        assert!(!AppStatus::Suspended.is_usable(Mode::Sandbox));
        assert!(!AppStatus::Revoked.is_usable(Mode::Sandbox));
    }
}
