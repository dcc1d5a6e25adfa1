//! [`AuthService`]: the one handle the server, the CLI and the HTTP router share. It owns the
//! auth database connection, the signing keys, the status cache the enforcement path reads,
//! the audit writer and the upstream identity provider client.
//!
//! Database calls are short (single-row SQLite statements on a local file) and are made
//! directly, also from async handlers; nothing holds the connection across an `.await`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::apps::AppStatus;
use crate::audit::AuditLog;
use crate::config::AuthConfig;
use crate::error::{AuthError, Result};
use crate::keys::KeyRing;
use crate::oidc::OidcClient;

/// Creates the citizen's `Patient/<id>` in the FHIR store. The server implements it; it must
/// be idempotent (an update-as-create of the given resource), because a failed sign-up is
/// retried at the citizen's next login.
pub trait PatientRegistry: Send + Sync {
    fn ensure_patient(&self, patient: &Value) -> std::result::Result<(), String>;
}

/// The pseudonymous Patient resource for `patient_id` (fiphr-sd-patient: only a `urn:uuid`
/// identifier, nothing that identifies the person).
pub fn patient_resource(patient_id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": patient_id,
        "meta": { "profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"] },
        "language": "fi",
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{patient_id}") }],
        "active": true
    })
}

/// See [`AuthService::token_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenStats {
    pub active_grants: u64,
    pub refreshable_logins: u64,
}

/// Seconds since the epoch, with an adjustable offset so tests can move time forward.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.offset.load(Ordering::Relaxed)
    }
    pub fn now_micros(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        (now.unix_timestamp_nanos() / 1000) as i64 + self.offset.load(Ordering::Relaxed) * 1_000_000
    }
    pub fn today(&self) -> time::Date {
        time::OffsetDateTime::from_unix_timestamp(self.now())
            .map(|t| t.date())
            .unwrap_or(time::Date::MIN)
    }
}

/// Cached answers to "is this still active?", consulted on every FHIR request. Every change
/// made through this service invalidates the entry at once; the cache is per process.
#[derive(Default)]
pub(crate) struct StatusCache {
    pub apps: RwLock<HashMap<String, (String, AppStatus)>>,
    pub grants: RwLock<HashMap<String, bool>>,
    pub families: RwLock<HashMap<String, bool>>,
    pub revoked_jti: RwLock<HashMap<String, i64>>,
    /// The `status_epoch` this process last saw in the database; another process (the
    /// operator CLI) bumps it when it suspends an app or withdraws a grant.
    pub epoch: AtomicI64,
    /// When the epoch was last read (milliseconds).
    pub epoch_checked_ms: AtomicI64,
}

impl StatusCache {
    pub fn forget_app(&self, app_id: &str) {
        if let Ok(mut map) = self.apps.write() {
            map.remove(app_id);
        }
    }
    pub fn forget_grant(&self, grant_id: &str) {
        if let Ok(mut map) = self.grants.write() {
            map.remove(grant_id);
        }
    }
    pub fn forget_family(&self, family_id: &str) {
        if let Ok(mut map) = self.families.write() {
            map.remove(family_id);
        }
    }
    pub fn forget_all(&self) {
        if let Ok(mut m) = self.apps.write() {
            m.clear();
        }
        if let Ok(mut m) = self.grants.write() {
            m.clear();
        }
        if let Ok(mut m) = self.families.write() {
            m.clear();
        }
    }
}

/// How often the enforcement path looks for status changes made by other processes.
const EPOCH_CHECK_MS: i64 = 500;

pub(crate) struct Inner {
    pub config: AuthConfig,
    pub db: Mutex<Connection>,
    pub identity_key: Vec<u8>,
    pub keys: KeyRing,
    pub status: StatusCache,
    pub audit: AuditLog,
    pub oidc: Option<OidcClient>,
    pub patients: RwLock<Option<Arc<dyn PatientRegistry>>>,
    pub clock: Clock,
    pub http: reqwest::Client,
    /// Client key sets fetched from `jwks_uri`, with the time they were fetched.
    pub jwks_cache: RwLock<HashMap<String, (Value, i64)>>,
    /// Access tokens whose signature, issuer and audience have been checked, by digest.
    pub verified: RwLock<HashMap<Vec<u8>, crate::tokens::AccessClaims>>,
    /// Clients of this server itself (the citizen portal): no consent page.
    pub first_party: RwLock<std::collections::HashSet<String>>,
}

/// The authorization service. Cheap to clone.
#[derive(Clone)]
pub struct AuthService(pub(crate) Arc<Inner>);

impl AuthService {
    /// Opens (creating on first use) `<data_dir>/auth.db` and the identity key file, loads or
    /// makes the signing key and starts the audit writer.
    pub fn open(config: AuthConfig) -> Result<AuthService> {
        config.check().map_err(AuthError::Config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        let db_path = config.data_dir.join("auth.db");
        let conn = crate::db::open(&db_path)?;
        let identity_key = load_or_create_identity_key(&config.identity_key_path())?;
        let clock = Clock::default();
        let now = clock.now();
        let retention = config.access_token_lifetime.max(config.session_lifetime) + 60;
        let keys = KeyRing::open(&conn, now, config.key_rotation_interval, retention)?;
        let audit = AuditLog::start(&db_path, config.audit_queue)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Config(format!("HTTP client: {e}")))?;
        let oidc = match (&config.oidc, config.mode) {
            (Some(upstream), crate::config::Mode::Production) => Some(OidcClient::new(
                upstream.clone(),
                config.endpoint(crate::http::CALLBACK_PATH),
            )?),
            _ => None,
        };
        let status = StatusCache::default();
        {
            let mut stmt = conn.prepare(
                "SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at > ?1",
            )?;
            let rows =
                stmt.query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut revoked = status
                .revoked_jti
                .write()
                .map_err(|_| AuthError::Config("lock".into()))?;
            for row in rows {
                let (jti, exp) = row?;
                revoked.insert(jti, exp);
            }
        }
        Ok(AuthService(Arc::new(Inner {
            config,
            db: Mutex::new(conn),
            identity_key,
            keys,
            status,
            audit,
            oidc,
            patients: RwLock::new(None),
            clock,
            http,
            jwks_cache: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
            first_party: RwLock::new(std::collections::HashSet::new()),
        })))
    }

    /// Sets the hook that stores a new citizen's Patient resource.
    pub fn set_patient_registry(&self, registry: Arc<dyn PatientRegistry>) {
        if let Ok(mut slot) = self.0.patients.write() {
            *slot = Some(registry);
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.0.config
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned lock is still usable.
        self.0
            .db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> i64 {
        self.0.clock.now()
    }

    /// Counts for monitoring: active grants, and logins that can still get access tokens
    /// (an active grant and an unused, unexpired refresh token). Access tokens themselves are
    /// stateless JWTs and are not counted one by one.
    pub fn token_stats(&self) -> Result<TokenStats> {
        let now = self.now();
        let db = self.db();
        let active_grants: i64 = db.query_row(
            "SELECT count(*) FROM grants WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?;
        let refreshable_logins: i64 = db.query_row(
            "SELECT count(*) FROM token_families f
             JOIN grants g ON g.grant_id = f.grant_id AND g.status = 'active'
             WHERE f.status = 'active' AND EXISTS (
                 SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.family_id
                   AND r.used_at IS NULL AND r.expires_at > ?1)",
            [now],
            |r| r.get(0),
        )?;
        Ok(TokenStats {
            active_grants: active_grants as u64,
            refreshable_logins: refreshable_logins as u64,
        })
    }

    /// Moves this service's clock (tests of expiry; never used by the server).
    #[doc(hidden)]
    pub fn advance_clock_for_tests(&self, seconds: i64) {
        self.0.clock.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// The `kid` of the key signing new tokens.
    pub fn signing_kid(&self) -> String {
        self.0.keys.signing_kid()
    }

    /// Makes a new signing key now (operator command; keys also rotate by age).
    pub fn rotate_signing_key(&self) -> Result<String> {
        let now = self.now();
        let kid = self.0.keys.rotate(&self.db(), now)?;
        // Other processes sharing the database (the running server, when `phr key rotate`
        // made the key) sign with it from their next status check on.
        self.bump_status_epoch();
        Ok(kid)
    }

    /// Rotates the signing key when it is due and deletes expired one-time records. The
    /// server calls this periodically (e.g. once a minute); token issuing also rotates.
    pub fn maintenance(&self) -> Result<()> {
        let now = self.now();
        let conn = self.db();
        self.0.keys.rotate_if_due(&conn, now)?;
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
        conn.execute(
            "DELETE FROM browser_sessions WHERE expires_at < ?1 OR idle_until < ?1",
            [now],
        )?;
        conn.execute("DELETE FROM auth_requests WHERE expires_at < ?1", [now])?;
        // Codes are kept a day past expiry so a late replay is still recognised as one.
        conn.execute(
            "DELETE FROM auth_codes WHERE expires_at < ?1",
            [now - 86_400],
        )?;
        conn.execute("DELETE FROM client_assertions WHERE expires_at < ?1", [now])?;
        conn.execute(
            "DELETE FROM revoked_access_tokens WHERE expires_at < ?1",
            [now],
        )?;
        if let Ok(mut revoked) = self.0.status.revoked_jti.write() {
            revoked.retain(|_, exp| *exp >= now);
        }
        Ok(())
    }

    /// Waits until every audit record handed over so far is stored.
    pub fn flush_audit(&self) -> Result<()> {
        self.0.audit.flush()
    }

    /// The public signing keys.
    pub fn jwks(&self) -> Value {
        self.0.keys.jwks()
    }

    /// Forgets every cached status (after another process changed the database).
    pub fn invalidate_cache(&self) {
        self.0.status.forget_all();
    }

    /// Records that a status changed, so other processes sharing the database drop their
    /// caches (this process has already dropped the precise entries).
    pub(crate) fn bump_status_epoch(&self) {
        let conn = self.db();
        let bumped = conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('status_epoch', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )
            .and_then(|_| {
                conn.query_row(
                    "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'status_epoch'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            });
        match bumped {
            Ok(epoch) => self.0.status.epoch.store(epoch, Ordering::Relaxed),
            Err(e) => tracing::error!(error = %e, "recording a status change failed"),
        }
    }

    /// Drops every cached status when another process changed one (checked at most every
    /// half second).
    pub(crate) fn sync_status_epoch(&self) {
        let now_ms = self.0.clock.now_micros() / 1000;
        let last = self.0.status.epoch_checked_ms.load(Ordering::Relaxed);
        if now_ms - last < EPOCH_CHECK_MS {
            return;
        }
        self.0
            .status
            .epoch_checked_ms
            .store(now_ms, Ordering::Relaxed);
        let conn = self.db();
        let epoch: i64 = conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'status_epoch'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if epoch == self.0.status.epoch.swap(epoch, Ordering::Relaxed) {
            return;
        }
        self.0.status.forget_all();
        if let Err(e) = self.0.keys.reload(&conn, self.now()) {
            tracing::error!(error = %e, "re-reading the signing keys failed");
        }
        let revoked: rusqlite::Result<Vec<(String, i64)>> = conn
            .prepare("SELECT jti, expires_at FROM revoked_access_tokens")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            });
        if let (Ok(rows), Ok(mut cache)) = (revoked, self.0.status.revoked_jti.write()) {
            cache.extend(rows);
        }
    }

    pub(crate) fn identity_digest(&self, hetu: &crate::hetu::Hetu) -> Vec<u8> {
        crate::secrets::keyed_digest(&self.0.identity_key, hetu.canonical().as_bytes())
    }
}

/// Reads the 32-byte identity key, creating it (mode 0600) on first start. The key makes the
/// stored identity digests useless without this file; keep it out of database backups'
/// reach or back it up separately.
fn load_or_create_identity_key(path: &std::path::Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => {
            return Err(AuthError::Config(format!(
                "identity key file {} is too short",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let key = crate::secrets::random_bytes::<32>().to_vec();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, &key)?;
    file.sync_all()?;
    Ok(key)
}

/// The data directory's database path (for operator tools that read it).
pub fn database_path(config: &AuthConfig) -> PathBuf {
    config.data_dir.join("auth.db")
}
