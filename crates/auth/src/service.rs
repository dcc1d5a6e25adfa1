//! The service handle: [`AuthService`] opens the stores, wires the modules that own them
//! (apps, citizens, grants, sessions, tokens, keys, audit), the per-request enforcer and the
//! OAuth flows' shared parts, and offers the operations that span modules (withdrawing a
//! grant ends its token families, drops the enforcer's cache entries, tells other processes
//! and writes the audit record).
//!
//! Every method is synchronous and may block on storage (and, for the flows that need it, on
//! the network): call it from a blocking thread (`spawn_blocking`), never on an async worker.
//! Never knows HTTP: URLs it must name come in through [`AuthConfig::endpoints`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::apps::{
    AcceptedContent, App, AppDetails, AppKind, AppStatus, AppStore, Apps, ContentRights, ListedApp,
    NewApp, Platform, PostgresAppStore, RegisteredApp, RoundOutcome, SqliteAppStore, TestRound,
};
use crate::audit::{
    AuditLog, AuditPage, AuditQuery, AuditRecord, AuditStore, PostgresAuditStore, SqliteAuditStore,
    Usage,
};
use crate::citizens::{
    Citizen, CitizenStore, Citizens, Identified, PatientRegistry, PendingCitizen,
    PostgresCitizenStore, SqliteCitizenStore,
};
use crate::clock::{Clock, SystemClock};
use crate::cluster::{ClusterStore, IDENTITY_KEY_CHECK, PostgresClusterStore, SqliteClusterStore};
use crate::config::AuthConfig;
use crate::enforce::{
    AccessContext, AppStanding, Enforcer, Expected, GrantState, PostgresStatusSignal,
    SqliteStatusSignal, StatusSignal, StatusSource,
};
use crate::error::{AccessError, AuthError, Result};
use crate::flows::client_auth::ClientKeys;
use crate::grants::{Grant, GrantStore, Grants, PostgresGrantStore, SqliteGrantStore, StoredGrant};
use crate::hetu::Hetu;
use crate::keys::{KeyRing, KeyStore, PostgresKeyStore, SqliteKeyStore};
use crate::oidc::OidcClient;
use crate::orgs::{
    NewOrganisation, OrgStore, Organisation, Orgs, PostgresOrgStore, SqliteOrgStore,
};
use crate::postgres::Postgres;
use crate::scope::{Access, Interaction, ScopeSet};
use crate::sessions::{PostgresSessionStore, SessionStore, Sessions, SqliteSessionStore};
use crate::sqlite::Sqlite;
use crate::tokens::{PostgresTokenStore, SqliteTokenStore, TokenStore, Tokens};
use crate::traffic::checks::{Observed, Report};
use crate::traffic::{
    PostgresTrafficStore, RETENTION_DAYS, SqliteTrafficStore, TrafficRow, TrafficStore,
};

/// The storage behind one [`AuthService`]: one implementation of each module's trait, and
/// the cross-process status signal. [`Stores::sqlite`] is the embedded default,
/// [`Stores::postgres`] the one several nodes share.
#[derive(Clone)]
pub struct Stores {
    pub apps: Arc<dyn AppStore>,
    pub citizens: Arc<dyn CitizenStore>,
    pub grants: Arc<dyn GrantStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub keys: Arc<dyn KeyStore>,
    /// What the audit writer thread appends through (its own connection, if the engine
    /// has connections).
    pub audit_writes: Arc<dyn AuditStore>,
    /// What audit queries read through.
    pub audit_reads: Arc<dyn AuditStore>,
    pub signal: Arc<dyn StatusSignal>,
    /// Job claims and node settings.
    pub cluster: Arc<dyn ClusterStore>,
    pub orgs: Arc<dyn OrgStore>,
    /// The sandbox traffic record.
    pub traffic: Arc<dyn TrafficStore>,
}

impl Stores {
    /// The SQLite stores over `<data_dir>/auth.db` (created and migrated as needed).
    pub fn sqlite(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Stores> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("auth.db");
        let db = Sqlite::open(&path)?;
        let audit_db = Sqlite::open_existing(&path)?;
        Ok(Stores {
            apps: Arc::new(SqliteAppStore::new(db.clone())),
            citizens: Arc::new(SqliteCitizenStore::new(db.clone())),
            grants: Arc::new(SqliteGrantStore::new(db.clone())),
            sessions: Arc::new(SqliteSessionStore::new(db.clone())),
            tokens: Arc::new(SqliteTokenStore::new(db.clone())),
            keys: Arc::new(SqliteKeyStore::new(db.clone())),
            audit_writes: Arc::new(SqliteAuditStore::new(audit_db)),
            audit_reads: Arc::new(SqliteAuditStore::new(db.clone())),
            cluster: Arc::new(SqliteClusterStore::new(db.clone())),
            orgs: Arc::new(SqliteOrgStore::new(db.clone())),
            traffic: Arc::new(SqliteTrafficStore::new(db.clone())),
            signal: Arc::new(SqliteStatusSignal::new(db, clock)),
        })
    }

    /// The PostgreSQL stores at `url` (the schema is migrated as needed; a newer one is
    /// refused), with a status signal on `LISTEN`/`NOTIFY`.
    pub fn postgres(url: &str, clock: Arc<dyn Clock>) -> Result<Stores> {
        let pg = Postgres::open(url)?;
        let audit: Arc<dyn AuditStore> = Arc::new(PostgresAuditStore::new(pg.clone()));
        Ok(Stores {
            apps: Arc::new(PostgresAppStore::new(pg.clone())),
            citizens: Arc::new(PostgresCitizenStore::new(pg.clone())),
            grants: Arc::new(PostgresGrantStore::new(pg.clone())),
            sessions: Arc::new(PostgresSessionStore::new(pg.clone())),
            tokens: Arc::new(PostgresTokenStore::new(pg.clone())),
            keys: Arc::new(PostgresKeyStore::new(pg.clone())),
            audit_writes: audit.clone(),
            audit_reads: audit,
            cluster: Arc::new(PostgresClusterStore::new(pg.clone())),
            orgs: Arc::new(PostgresOrgStore::new(pg.clone())),
            traffic: Arc::new(PostgresTrafficStore::new(pg.clone())),
            signal: Arc::new(PostgresStatusSignal::start(pg, clock)?),
        })
    }
}

/// Counts for monitoring: active grants, and logins that can still get access tokens (an
/// unused, unexpired refresh token in an active family). Access tokens themselves are
/// stateless JWTs and are not counted one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenStats {
    pub active_grants: u64,
    pub refreshable_logins: u64,
}

pub(crate) struct Inner {
    pub config: AuthConfig,
    pub clock: Arc<dyn Clock>,
    pub apps: Arc<Apps>,
    pub citizens: Arc<Citizens>,
    pub grants: Arc<Grants>,
    pub sessions: Sessions,
    pub tokens: Arc<Tokens>,
    pub keys: Arc<KeyRing>,
    pub audit: AuditLog,
    pub enforcer: Enforcer,
    pub oidc: Option<OidcClient>,
    /// The professionals' identity provider, with the claims to read.
    pub professional_oidc: Option<(OidcClient, crate::config::ProfessionalOidcConfig)>,
    /// The developers' identity provider (production only), with the claims to read.
    pub developer_oidc: Option<(OidcClient, crate::config::DeveloperOidcConfig)>,
    pub client_keys: ClientKeys,
    pub cluster: Arc<dyn ClusterStore>,
    pub orgs: Orgs,
    pub traffic: Arc<dyn TrafficStore>,
    /// The sandbox traffic record's writer (sandbox mode only): requests hand their rows over
    /// and go on; the rows share commits.
    pub traffic_queue: Option<crate::queue::Writer<TrafficRow>>,
}

/// The authorization service. Cheap to clone.
#[derive(Clone)]
pub struct AuthService(pub(crate) Arc<Inner>);

/// What the enforcer asks when its cache has no answer.
struct Lookups {
    apps: Arc<Apps>,
    mode: crate::config::Mode,
    grants: Arc<Grants>,
    citizens: Arc<Citizens>,
    tokens: Arc<Tokens>,
}

impl StatusSource for Lookups {
    fn app(&self, app_id: &str) -> Result<Option<AppStanding>> {
        let Some(app) = self.apps.get(app_id)? else {
            return Ok(None);
        };
        // In production an accepted wellbeing application reads and writes only the data
        // contents joint testing accepted it for. The server's own clients (the portal) act
        // for the citizen, not as a tested application.
        let limited = self.mode == crate::config::Mode::Production
            && app.kind == AppKind::Wellbeing
            && !self.apps.is_first_party(app_id);
        let contents = if limited {
            Some(ContentRights::of(&self.apps.contents(app_id)?))
        } else {
            None
        };
        // In production an application is served on the FHIR versions it registered for.
        let fhir_versions = (self.mode == crate::config::Mode::Production
            && !self.apps.is_first_party(app_id))
        .then_some(app.fhir_versions);
        Ok(Some(AppStanding {
            name: app.name,
            status: app.status,
            contents,
            fhir_versions,
        }))
    }

    fn grant(&self, grant_id: &str) -> Result<GrantState> {
        let Some(grant) = self.grants.get(grant_id)? else {
            return Ok(GrantState {
                active: false,
                cacheable: true,
            });
        };
        let active = grant.is_active();
        if active && let Err(e) = self.citizens.store_patient_of(&grant.patient_id) {
            // The citizen was taken into use where the FHIR store was out of reach (`phr
            // token` runs in another process than the server), or storing their Patient
            // failed at sign-up: it is stored before their first request is served. Not
            // cached when it fails, so the next request tries again.
            tracing::error!(error = %e, "storing a citizen's Patient failed");
            return Ok(GrantState {
                active,
                cacheable: false,
            });
        }
        Ok(GrantState {
            active,
            cacheable: true,
        })
    }

    fn family_active(&self, family_id: &str) -> Result<bool> {
        self.tokens.family_active(family_id)
    }

    fn revoked_access_tokens(&self) -> Result<Vec<(String, i64)>> {
        self.tokens.revoked_access_tokens()
    }
}

impl AuthService {
    /// Opens (creating on first use) `<data_dir>/auth.db` and the identity key file, loads or
    /// makes the signing key and starts the audit writer.
    pub fn open(config: AuthConfig) -> Result<AuthService> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`AuthService::open`] on a given clock (tests move a
    /// [`ManualClock`](crate::ManualClock) instead of sleeping).
    pub fn open_with_clock(config: AuthConfig, clock: Arc<dyn Clock>) -> Result<AuthService> {
        config.check().map_err(AuthError::Config)?;
        let stores = Stores::sqlite(&config.data_dir, clock.clone())?;
        let identity_key = load_or_create_identity_key(&config.identity_key_path())?;
        Self::assemble(config, stores, identity_key, clock)
    }

    /// The service over the PostgreSQL stores at `database`, with the identity key from the
    /// configured file (which must exist: see [`identity_key_for_database`]).
    pub fn open_postgres(
        config: AuthConfig,
        database: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<AuthService> {
        config.check().map_err(AuthError::Config)?;
        let identity_key = identity_key_for_database(&config)?;
        let stores = Stores::postgres(database, clock.clone())?;
        Self::assemble(config, stores, identity_key, clock)
    }

    /// The service over given stores (any engine). Refuses an identity key other than the
    /// one the stores' citizens were identified with (by a check value stored with them).
    pub fn assemble(
        config: AuthConfig,
        stores: Stores,
        identity_key: Vec<u8>,
        clock: Arc<dyn Clock>,
    ) -> Result<AuthService> {
        config.check().map_err(AuthError::Config)?;
        check_identity_key(stores.cluster.as_ref(), &identity_key, &config)?;
        let now = clock.now();
        let retention = config.access_token_lifetime.max(config.session_lifetime) + 60;
        let keys = Arc::new(KeyRing::open(
            stores.keys,
            now,
            config.key_rotation_interval,
            retention,
        )?);
        let apps = Arc::new(Apps::new(stores.apps, clock.clone()));
        let clock_for_orgs = clock.clone();
        let citizens = Arc::new(Citizens::new(
            stores.citizens,
            clock.clone(),
            identity_key,
            &config,
        ));
        let grants = Arc::new(Grants::new(stores.grants, clock.clone()));
        let tokens = Arc::new(Tokens::new(
            stores.tokens,
            clock.clone(),
            config.code_lifetime,
            config.refresh_token_lifetime,
        ));
        let enforcer = Enforcer::new(
            Expected {
                issuer: config.issuer().to_owned(),
                audience: config.fhir_base_url(),
                mode: config.mode,
            },
            keys.clone(),
            clock.clone(),
            Arc::new(Lookups {
                apps: apps.clone(),
                mode: config.mode,
                grants: grants.clone(),
                citizens: citizens.clone(),
                tokens: tokens.clone(),
            }),
            stores.signal,
        )?;
        let audit = AuditLog::start(
            stores.audit_writes,
            stores.audit_reads,
            clock.clone(),
            config.audit_queue,
            config.data_dir.clone(),
        )?;
        let oidc = match (&config.oidc, config.mode) {
            (Some(upstream), crate::config::Mode::Production) => Some(OidcClient::new(
                upstream.clone(),
                config.endpoints.upstream_callback.clone(),
            )?),
            _ => None,
        };
        let professional_oidc = match &config.professional_oidc {
            Some(settings) => Some((
                OidcClient::new(
                    settings.provider(),
                    config.endpoints.professional_callback.clone(),
                )?,
                settings.clone(),
            )),
            None => None,
        };
        let developer_oidc = match (&config.developer_oidc, config.mode) {
            (Some(settings), crate::config::Mode::Production) => Some((
                OidcClient::new(
                    settings.provider(),
                    config.endpoints.developer_callback.clone(),
                )?,
                settings.clone(),
            )),
            _ => None,
        };
        let traffic_queue = if config.mode.is_sandbox() {
            let store = stores.traffic.clone();
            Some(crate::queue::Writer::start(
                "traffic",
                Box::new(move |rows: &[TrafficRow]| store.insert(rows)),
                config.audit_queue,
                config.data_dir.clone(),
            )?)
        } else {
            None
        };
        Ok(AuthService(Arc::new(Inner {
            sessions: Sessions::new(stores.sessions, clock.clone()),
            client_keys: ClientKeys::new()?,
            config,
            clock,
            apps,
            citizens,
            grants,
            tokens,
            keys,
            audit,
            enforcer,
            oidc,
            professional_oidc,
            developer_oidc,
            cluster: stores.cluster,
            traffic: stores.traffic,
            traffic_queue,
            orgs: Orgs::new(stores.orgs, clock_for_orgs),
        })))
    }

    /// Sets the hook that stores a new citizen's Patient resource.
    pub fn set_patient_registry(&self, registry: Arc<dyn PatientRegistry>) {
        self.0.citizens.set_registry(registry);
    }

    pub fn config(&self) -> &AuthConfig {
        &self.0.config
    }

    /// The clock every decision is made at.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    /// Whether citizens identify at the upstream OpenID Connect provider (production) rather
    /// than on the sandbox identity page.
    pub fn uses_upstream_login(&self) -> bool {
        self.0.oidc.is_some()
    }

    /// Whether professionals sign in at their upstream OpenID Connect provider.
    pub fn uses_professional_upstream(&self) -> bool {
        self.0.professional_oidc.is_some()
    }

    pub(crate) fn now(&self) -> i64 {
        self.0.clock.now()
    }

    // --- per request ----------------------------------------------------------------------

    /// Authenticates a request from its `Authorization` header value (`None` when absent).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<AccessContext, AccessError> {
        self.0.enforcer.authenticate(authorization)
    }

    /// Authenticates a request that came with `certificate` (a certificate-bound token is
    /// accepted only with its certificate).
    pub fn authenticate_presenting(
        &self,
        authorization: Option<&str>,
        certificate: Option<&crate::certificate::PresentedCertificate>,
    ) -> Result<AccessContext, AccessError> {
        self.0
            .enforcer
            .authenticate_presenting(authorization, certificate)
    }

    /// The accepted answer of [`AuthService::authenticate_presenting`] when this process
    /// already knows it, without reading storage (so without blocking); `None` otherwise,
    /// including every refusal.
    pub fn authenticate_known(
        &self,
        authorization: Option<&str>,
        certificate: Option<&crate::certificate::PresentedCertificate>,
    ) -> Option<AccessContext> {
        self.0
            .enforcer
            .authenticate_known(authorization, certificate)
    }

    /// Authenticates and checks that the scopes allow `interaction` on `resource_type`.
    /// The returned [`Access`] carries granular filters the FHIR layer must apply.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<(AccessContext, Access), AccessError> {
        let context = self.authenticate(authorization)?;
        let access = context.require(resource_type, interaction)?;
        Ok((context, access))
    }

    // --- audit ----------------------------------------------------------------------------

    /// Queues a record for writing (waits only if the queue is full).
    pub fn audit(&self, record: AuditRecord) -> Result<()> {
        self.0.audit.record(record)
    }

    /// Queues a record without waiting; gives it back when the queue is full, for a caller
    /// that may wait to hand to [`AuthService::audit`].
    pub fn try_audit(&self, record: AuditRecord) -> std::result::Result<(), Box<AuditRecord>> {
        self.0.audit.try_record(record)
    }

    /// Queues a record; a record that cannot be queued is logged, never an error for the
    /// caller (whose action has already happened).
    pub(crate) fn audit_quietly(&self, record: AuditRecord) {
        if let Err(e) = self.audit(record) {
            tracing::error!(error = %e, "audit record could not be queued");
        }
    }

    /// Waits until every audit record handed over so far is stored.
    pub fn flush_audit(&self) -> Result<()> {
        self.0.audit.flush()
    }

    /// The citizen's own audit records as FHIR AuditEvent resources, newest first.
    /// (`/fhir/r4/AuditEvent?patient=<id>`; the caller checks the token's patient.)
    pub fn audit_events_for_patient(
        &self,
        patient_id: &str,
        count: usize,
        offset: usize,
    ) -> Result<AuditPage> {
        self.0.audit.events_for_patient(patient_id, count, offset)
    }

    /// A page of the citizen's audit records, newest first, and how many match in all.
    pub fn audit_records_for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)> {
        self.0.audit.for_patient(patient_id, query, count, offset)
    }

    /// The applications that appear in the citizen's audit records, with their names, for a
    /// filter list (sorted by name).
    pub fn audited_apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.0.audit.apps_for_patient(patient_id)
    }

    /// When each application last accessed the citizen's data through the API (microseconds
    /// since the epoch), by application id.
    pub fn last_access_by_app(
        &self,
        patient_id: &str,
    ) -> Result<std::collections::HashMap<String, i64>> {
        self.0.audit.last_access_by_app(patient_id)
    }

    /// Writes every record (optionally within `[since_us, until_us)`) as NDJSON, oldest
    /// first, with its encoding version and chain hash. Returns how many were written.
    pub fn export_audit(
        &self,
        out: &mut dyn std::io::Write,
        since_us: Option<i64>,
        until_us: Option<i64>,
    ) -> Result<u64> {
        self.0.audit.export(out, since_us, until_us)
    }

    /// Recomputes the hash chain over all records; returns the id of the first record whose
    /// stored hash does not match, if any.
    pub fn verify_audit_chain(&self) -> Result<Option<String>> {
        self.0.audit.verify()
    }

    // --- operations -----------------------------------------------------------------------

    /// Counts for monitoring.
    pub fn token_stats(&self) -> Result<TokenStats> {
        Ok(TokenStats {
            active_grants: self.0.grants.count_active()?,
            refreshable_logins: self.0.tokens.count_refreshable()?,
        })
    }

    /// The `kid` of the key signing new tokens.
    pub fn signing_kid(&self) -> String {
        self.0.keys.signing_kid()
    }

    /// The public signing keys.
    pub fn jwks(&self) -> Value {
        self.0.keys.jwks()
    }

    /// Rotates the signing key by age, claiming the rotation among nodes.
    pub(crate) fn rotate_key_if_due(&self) -> Result<()> {
        self.0.keys.rotate_if_due(self.now(), &|replaced| {
            self.claim_job("key-rotation", replaced)
        })
    }

    /// Claims occurrence `slot` of a scheduled job (its due time, say): `true` for exactly
    /// one node among those sharing the database, which then runs it.
    pub fn claim_job(&self, job: &str, slot: i64) -> Result<bool> {
        self.0.cluster.claim(job, slot, self.now())
    }

    /// A node setting shared through the database (`cluster::PUBLIC_URL`, ...).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.0.cluster.setting(key)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.0.cluster.set_setting(key, value)
    }

    /// Makes a new signing key now (operator command; keys also rotate by age).
    pub fn rotate_signing_key(&self) -> Result<String> {
        let kid = self.0.keys.rotate(self.now())?;
        // Other processes sharing the database (the running server, when `phr key rotate`
        // made the key) sign with it from their next status check on.
        self.0.enforcer.announce();
        Ok(kid)
    }

    /// Rotates the signing key when it is due (one node makes the new key, every node picks
    /// it up) and deletes expired one-time records (one node per minute). The server calls
    /// this periodically (e.g. once a minute); token issuing also rotates.
    pub fn maintenance(&self) -> Result<()> {
        self.0.enforcer.prune();
        self.rotate_key_if_due()?;
        let now = self.now();
        if self.claim_job("auth-maintenance", now.div_euclid(60))? {
            self.0.sessions.delete_expired()?;
            self.0.tokens.delete_expired()?;
            self.0.cluster.forget_claims_before(now - 7 * 86_400)?;
            self.0
                .traffic
                .delete_before((now - RETENTION_DAYS * 86_400).saturating_mul(1_000_000))?;
        }
        Ok(())
    }

    // --- applications ---------------------------------------------------------------------

    /// Registers an application with status `sandbox` (self-service) or as given by the
    /// operator.
    /// Without `fhir_versions`, a registration in production uses R4 only (STU3 is
    /// deprecated), one in the sandbox both.
    pub fn register_app(&self, new: NewApp, status: AppStatus) -> Result<RegisteredApp> {
        self.register_app_for(new, status, None)
    }

    /// Registers an application as [`AuthService::register_app`] does, owned by `developer`
    /// (the developer console shows it to them only).
    pub fn register_app_for(
        &self,
        new: NewApp,
        status: AppStatus,
        developer: Option<String>,
    ) -> Result<RegisteredApp> {
        if let Some(org) = &new.org
            && self.0.orgs.get(org)?.is_none()
        {
            return Err(AuthError::Invalid(format!(
                "organisation {org} is not registered (phr org register)"
            )));
        }
        let mut new = new;
        new.fhir_versions = Some(
            new.fhir_versions
                .unwrap_or(crate::apps::FhirVersions::default_for(self.config().mode)),
        );
        let registered = self.0.apps.register_for(new, status, developer)?;
        // Only the operator registers apps straight into another status; sandbox apps come
        // from self-service registration.
        let (usage, actor) = if status == AppStatus::Sandbox {
            (Usage::Authorization, "self-service registration")
        } else {
            (Usage::Operator, "operator")
        };
        let mut record = AuditRecord::new(usage, actor);
        record.app_id = Some(registered.app.app_id.clone());
        record.app_name = Some(registered.app.name.clone());
        record.interaction = Some(format!("app-register:{}", status.code()));
        self.audit(record)?;
        Ok(registered)
    }

    // --- sandbox traffic and acceptance ---------------------------------------------------

    /// Records what applications did (sandbox mode only: in production nothing is kept).
    /// Strings that parse as personal identity codes are replaced in every detail. The rows
    /// are queued for the writer thread; this waits only when its queue is full (see
    /// [`AuthService::try_record_traffic`] for a caller that must not wait).
    pub fn record_traffic(&self, rows: Vec<TrafficRow>) -> Result<()> {
        let Some(queue) = &self.0.traffic_queue else {
            return Ok(());
        };
        for row in rows {
            queue.record(redacted(row))?;
        }
        Ok(())
    }

    /// [`AuthService::record_traffic`] without waiting: the rows the queue had no room for
    /// are given back, for a caller that may wait to hand to `record_traffic`.
    pub fn try_record_traffic(&self, rows: Vec<TrafficRow>) -> Vec<TrafficRow> {
        let Some(queue) = &self.0.traffic_queue else {
            return Vec::new();
        };
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            if let Err(row) = queue.try_record(redacted(row)) {
                return std::iter::once(*row).chain(rows).collect();
            }
        }
        Vec::new()
    }

    /// Waits until every traffic row handed over so far is stored (reports read after it).
    pub fn flush_traffic(&self) -> Result<()> {
        match &self.0.traffic_queue {
            Some(queue) => queue.flush(),
            None => Ok(()),
        }
    }

    /// The application's sandbox traffic of the retention period, oldest first.
    pub fn traffic(&self, app_id: &str) -> Result<Vec<TrafficRow>> {
        self.flush_traffic()?;
        let since = (self.now() - RETENTION_DAYS * 86_400).saturating_mul(1_000_000);
        self.0.traffic.list(app_id, since)
    }

    /// Runs the acceptance checks over the application's sandbox traffic of the retention
    /// period for one data content (`content`, stored as `resource_type`).
    pub fn acceptance_report(
        &self,
        app_id: &str,
        content: &str,
        resource_type: &str,
    ) -> Result<Report> {
        if self.0.apps.get(app_id)?.is_none() {
            return Err(AuthError::NotFound(format!("application {app_id}")));
        }
        self.flush_traffic()?;
        let until = self.0.clock.now_micros();
        let since = until - RETENTION_DAYS * 86_400 * 1_000_000;
        let rows = self.0.traffic.list(app_id, since)?;
        let probe_since = self.probe_started(app_id)?.filter(|at| *at >= since);
        Ok(crate::traffic::checks::report(
            app_id,
            &Observed {
                content,
                resource_type,
                rows: &rows,
                probe_since,
            },
            since,
            until,
        ))
    }

    /// Starts the withdrawn-grant probe of an application (sandbox mode only): withdraws
    /// every grant it holds, so that every token and refresh token under them stops working
    /// at once, and notes the time; the `withdrawn-grant` check then judges the
    /// application's calls from that time on. PHR sends nothing to the application: the
    /// probe is observed in the application's own next calls. Each withdrawal is audited
    /// for its citizen, the probe for the operator.
    pub fn start_probe(&self, app_id: &str, actor: &str) -> Result<Probe> {
        if !self.0.config.mode.is_sandbox() {
            return Err(AuthError::NotAllowed(
                "the withdrawn-grant probe runs in sandbox mode only".into(),
            ));
        }
        let app = self
            .0
            .apps
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        let started_us = self.0.clock.now_micros();
        let grants = self.0.grants.active_for_app(app_id)?;
        for grant in &grants {
            self.0.grants.withdraw(&grant.patient_id, &grant.grant_id)?;
            self.grant_ended(&grant.grant_id, "probe")?;
            let mut record = AuditRecord::new(Usage::Operator, actor);
            record.patient_id = Some(grant.patient_id.clone());
            record.app_id = Some(app.app_id.clone());
            record.app_name = Some(app.name.clone());
            record.interaction = Some("withdraw:probe".into());
            self.audit(record)?;
        }
        self.0
            .cluster
            .set_setting(&probe_key(app_id), &started_us.to_string())?;
        let mut record = AuditRecord::new(Usage::Operator, actor);
        record.app_id = Some(app.app_id.clone());
        record.app_name = Some(app.name.clone());
        record.interaction = Some("app-probe".into());
        record.amount = grants.len() as u64;
        self.audit(record)?;
        Ok(Probe {
            app_id: app.app_id,
            started_us,
            grants_withdrawn: grants.len(),
        })
    }

    /// When the application's withdrawn-grant probe last started, if ever.
    pub fn probe_started(&self, app_id: &str) -> Result<Option<i64>> {
        Ok(self
            .0
            .cluster
            .setting(&probe_key(app_id))?
            .and_then(|text| text.parse().ok()))
    }

    /// The application and grant a bearer token was issued to, when this server signed it
    /// (whether or not it is still good): the sandbox traffic record attributes a call
    /// refused for an expired token or a withdrawn grant to its application. `None` for
    /// anything else.
    pub fn token_owner(&self, authorization: Option<&str>) -> Option<(String, Option<String>)> {
        let token = crate::enforce::bearer_token(authorization?)?;
        let claims = self.0.enforcer.verify(token).ok()?;
        Some((claims.client_id, claims.gid))
    }

    // --- organisations --------------------------------------------------------------------

    /// Operator: registers a service provider.
    pub fn register_org(&self, new: NewOrganisation) -> Result<Organisation> {
        let org = self.0.orgs.register(new)?;
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.interaction = Some("org-register".into());
        record.search_criteria = Some(format!("oid={}", org.oid));
        self.audit(record)?;
        Ok(org)
    }

    pub fn org(&self, oid: &str) -> Result<Option<Organisation>> {
        self.0.orgs.get(oid)
    }

    pub fn list_orgs(&self) -> Result<Vec<Organisation>> {
        self.0.orgs.list()
    }

    pub fn app(&self, app_id: &str) -> Result<Option<App>> {
        self.0.apps.get(app_id)
    }

    pub fn list_apps(&self) -> Result<Vec<App>> {
        self.0.apps.list()
    }

    /// The applications `developer` registered in the developer console, oldest first.
    pub fn developer_apps(&self, developer: &str) -> Result<Vec<App>> {
        Ok(self
            .0
            .apps
            .list()?
            .into_iter()
            .filter(|app| app.developer.as_deref() == Some(developer))
            .collect())
    }

    /// Operator: accept, suspend, reinstate or revoke. Suspension and revocation cut every
    /// token of the app at once. A revoked app stays revoked.
    pub fn set_app_status(&self, app_id: &str, status: AppStatus) -> Result<App> {
        let (before, after) = self.0.apps.set_status(app_id, status)?;
        self.0.enforcer.forget_app(app_id);
        self.0.enforcer.announce();
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.app_id = Some(app_id.to_owned());
        record.app_name = Some(before.name);
        record.interaction = Some(format!("app-status:{}", status.code()));
        self.audit(record)?;
        Ok(after)
    }

    /// The app with its accepted data contents and joint-testing rounds.
    pub fn app_details(&self, app_id: &str) -> Result<Option<AppDetails>> {
        self.0.apps.details(app_id)
    }

    /// Every app with its contents and rounds, oldest first.
    pub fn list_app_details(&self) -> Result<Vec<AppDetails>> {
        self.0.apps.list_details()
    }

    /// The public application list: accepted wellbeing applications with their accepted
    /// contents, by name. Read from storage at each call: a suspension shows at once.
    pub fn listed_apps(&self) -> Result<Vec<ListedApp>> {
        self.0.apps.listed()
    }

    /// Operator: sets the supplier and platform the public list shows (`None` keeps one).
    pub fn update_app_listing(
        &self,
        app_id: &str,
        supplier: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<App> {
        let app = self.0.apps.set_listing(app_id, supplier, platform)?;
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.app_id = Some(app_id.to_owned());
        record.app_name = Some(app.name.clone());
        record.interaction = Some("app-update".into());
        self.audit(record)?;
        Ok(app)
    }

    /// The developer console: replaces a sandbox application's redirect URIs.
    pub fn set_app_redirect_uris(&self, app_id: &str, redirect_uris: Vec<String>) -> Result<App> {
        let app = self.0.apps.set_redirect_uris(app_id, redirect_uris)?;
        self.audit_console_change(&app, "app-redirect-uris")?;
        Ok(app)
    }

    /// The developer console: replaces an application's scopes (checked as at registration).
    /// Tokens already issued, and their refresh tokens, keep the scope they were granted; the
    /// next authorization asks for the new one. As with redirect URIs, nothing is announced
    /// to other nodes: no node caches an application's scope (it is read from storage at
    /// every authorization).
    pub fn set_app_scope(&self, app_id: &str, scope: &str) -> Result<App> {
        let app = self.0.apps.set_scope(app_id, scope)?;
        self.audit_console_change(&app, "app-scope")?;
        Ok(app)
    }

    /// The developer console: sets an application's public keys for `private_key_jwt`
    /// (an inline JWKS or a `jwks_uri`), or clears them with neither; checked as at
    /// registration (public keys only). Nothing is announced to other nodes: the keys are
    /// read from storage at every client authentication (a key set fetched from a
    /// `jwks_uri` is kept per URI, for at most five minutes).
    pub fn set_app_keys(
        &self,
        app_id: &str,
        jwks: Option<Value>,
        jwks_uri: Option<String>,
    ) -> Result<App> {
        let app = self.0.apps.set_keys(app_id, jwks, jwks_uri)?;
        self.audit_console_change(&app, "app-keys")?;
        Ok(app)
    }

    /// Audits a change the developer console made to `app`.
    fn audit_console_change(&self, app: &App, interaction: &str) -> Result<()> {
        let mut record = AuditRecord::new(Usage::Authorization, "developer console");
        record.app_id = Some(app.app_id.clone());
        record.app_name = Some(app.name.clone());
        record.interaction = Some(interaction.to_owned());
        self.audit(record)
    }

    /// The developer console: a new client secret for a confidential client (returned this
    /// once); the old one stops working at once.
    pub fn new_client_secret(&self, app_id: &str) -> Result<String> {
        let secret = self.0.apps.new_client_secret(app_id)?;
        let mut record = AuditRecord::new(Usage::Authorization, "developer console");
        record.app_id = Some(app_id.to_owned());
        record.interaction = Some("app-new-secret".into());
        self.audit(record)?;
        Ok(secret)
    }

    /// Operator: records a joint-testing round of one data content.
    pub fn record_test_round(
        &self,
        app_id: &str,
        content: &str,
        outcome: RoundOutcome,
        note: Option<&str>,
    ) -> Result<TestRound> {
        let round = self.0.apps.record_round(app_id, content, outcome, note)?;
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.app_id = Some(app_id.to_owned());
        record.interaction = Some(format!("app-round:{}", outcome.code()));
        record.search_criteria = Some(format!("content={content}&round={}", round.round));
        self.audit(record)?;
        Ok(round)
    }

    /// Operator: accepts the application for data contents whose last joint-testing round
    /// passed, all or none. A sandbox application becomes accepted. Every node applies the
    /// new limits from its next request.
    pub fn accept_app_contents(
        &self,
        app_id: &str,
        contents: &[String],
        read: bool,
        write: bool,
    ) -> Result<(App, Vec<AcceptedContent>)> {
        let accepted = self.0.apps.accept_contents(app_id, contents, read, write)?;
        let app = self
            .0
            .apps
            .get(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))?;
        let app = if app.status == AppStatus::Sandbox {
            self.set_app_status(app_id, AppStatus::Accepted)?
        } else {
            app
        };
        self.0.enforcer.forget_app(app_id);
        self.0.enforcer.announce();
        let rights = match (read, write) {
            (true, true) => "read,write",
            (true, false) => "read",
            _ => "write",
        };
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.app_id = Some(app_id.to_owned());
        record.app_name = Some(app.name.clone());
        record.interaction = Some("app-contents".into());
        record.search_criteria = Some(format!("content={}&rights={rights}", contents.join(",")));
        self.audit(record)?;
        Ok((app, accepted))
    }

    /// Registers (or refreshes) one of the server's own clients (the portal): a public client
    /// with PKCE, accepted, never shown a consent page. An existing one keeps its status, so
    /// an operator's suspension holds.
    pub fn register_first_party_client(
        &self,
        app_id: &str,
        name: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<App> {
        let app = self
            .0
            .apps
            .register_first_party(app_id, name, redirect_uri, scope)?;
        self.0.enforcer.forget_app(app_id);
        Ok(app)
    }

    /// Whether `client_id` is one of the server's own clients (no consent page).
    pub fn is_first_party(&self, client_id: &str) -> bool {
        self.0.apps.is_first_party(client_id)
    }

    // --- citizens -------------------------------------------------------------------------

    /// Identifies a person: a known citizen, or a new one who is old enough. Refuses people
    /// under the minimum age with [`AuthError::UnderAge`].
    pub fn identify(&self, hetu: &Hetu) -> Result<Identified> {
        self.0.citizens.identify(hetu)
    }

    /// Takes the service into use for an identified person who accepted the terms.
    pub fn take_into_use(&self, pending: &PendingCitizen) -> Result<Citizen> {
        self.0.citizens.take_into_use(pending)
    }

    /// Identifies and, if needed, takes into use in one step (sandbox mode, test identities).
    pub fn citizen_for_sandbox_identity(&self, hetu: &Hetu) -> Result<Citizen> {
        self.0.citizens.for_sandbox_identity(hetu)
    }

    /// Sandbox only: takes a test identity into use with a given Patient id (the demo's
    /// citizens). A known identity keeps the Patient id it has.
    pub fn enroll_sandbox_identity(&self, hetu: &Hetu, patient_id: &str) -> Result<Citizen> {
        self.0.citizens.enroll_sandbox_identity(hetu, patient_id)
    }

    /// The Patient id of the citizen with the identity code `hetu`, if they use the service;
    /// `None` as well for text that is not a valid identity code. Takes nobody into use.
    pub fn patient_of_identity(&self, hetu: &str) -> Result<Option<String>> {
        match Hetu::parse(hetu) {
            Ok(hetu) => self.0.citizens.patient_of(&hetu),
            Err(_) => Ok(None),
        }
    }

    pub fn citizen(&self, patient_id: &str) -> Result<Option<Citizen>> {
        self.0.citizens.get(patient_id)
    }

    /// The citizen's decision on sharing their data with professionals (portal).
    pub fn set_professional_sharing(&self, patient_id: &str, allowed: bool) -> Result<()> {
        self.0
            .citizens
            .set_professional_sharing(patient_id, allowed)
    }

    // --- grants ---------------------------------------------------------------------------

    fn named(&self, grant: StoredGrant) -> Result<Grant> {
        let name = self
            .0
            .apps
            .get(&grant.app_id)?
            .map(|app| app.name)
            .unwrap_or_else(|| grant.app_id.clone());
        Ok(grant.named(name))
    }

    /// Records the citizen's consent for `app_id` with the `approved` scopes and returns the
    /// active grant. A changed scope supersedes the old grant and ends its sign-ins.
    pub(crate) fn record_consent(
        &self,
        patient_id: &str,
        app_id: &str,
        approved: &ScopeSet,
    ) -> Result<Grant> {
        let recorded = self.0.grants.record_consent(patient_id, app_id, approved)?;
        if let Some(old) = &recorded.superseded {
            self.grant_ended(old, "superseded")?;
        }
        self.named(recorded.grant)
    }

    /// After a grant ended: its sign-ins end, caches forget it, other processes hear of it.
    fn grant_ended(&self, grant_id: &str, reason: &str) -> Result<()> {
        let families = self.0.tokens.revoke_families_of_grant(grant_id, reason)?;
        self.0.enforcer.forget_grant(grant_id, &families);
        self.0.enforcer.announce();
        Ok(())
    }

    pub fn active_grant(&self, patient_id: &str, app_id: &str) -> Result<Option<Grant>> {
        self.0
            .grants
            .active(patient_id, app_id)?
            .map(|g| self.named(g))
            .transpose()
    }

    /// The citizen's grants, active first, newest first (portal).
    pub fn grants_for_patient(&self, patient_id: &str) -> Result<Vec<Grant>> {
        self.0
            .grants
            .for_patient(patient_id)?
            .into_iter()
            .map(|g| self.named(g))
            .collect()
    }

    /// The citizen withdraws a grant: every token issued under it stops working now.
    pub fn withdraw_grant(&self, patient_id: &str, grant_id: &str) -> Result<()> {
        let grant = self.0.grants.withdraw(patient_id, grant_id)?;
        self.grant_ended(grant_id, "withdrawn")?;
        let mut record = AuditRecord::new(Usage::CitizenPortal, format!("Patient/{patient_id}"));
        record.patient_id = Some(patient_id.to_owned());
        record.app_id = Some(grant.app_id);
        record.interaction = Some("withdraw".into());
        self.audit(record)
    }

    /// The citizen withdraws whatever grant `app_id` has (portal "remove app").
    pub fn withdraw_app(&self, patient_id: &str, app_id: &str) -> Result<Grant> {
        let grant = self
            .active_grant(patient_id, app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("active grant for application {app_id}")))?;
        self.withdraw_grant(patient_id, &grant.grant_id)?;
        Ok(grant)
    }

    /// Operator/test helper (`phr grant withdraw --hetu … --app …`): withdraws a test
    /// citizen's grant. Sandbox mode and test identities only.
    pub fn withdraw_for_sandbox_identity(&self, hetu: &str, app_id: &str) -> Result<Grant> {
        let hetu =
            Hetu::parse(hetu).map_err(|e| AuthError::Invalid(format!("identity code: {e}")))?;
        let citizen = self.citizen_for_sandbox_identity(&hetu)?;
        self.withdraw_app(&citizen.patient_id, app_id)
    }

    /// Operator/test helper (`phr token`); see [`crate::flows::token::issue_for_cli`].
    pub fn issue_token_for_cli(
        &self,
        hetu: &str,
        app_id: &str,
        scope: &str,
    ) -> Result<crate::flows::IssuedToken> {
        crate::flows::token::issue_for_cli(self, hetu, app_id, scope)
    }

    // --- operator sign-in ------------------------------------------------------------------

    /// Operator (`phr operator login`, run where the data folder or database is): a one-time
    /// sign-in link for the operator page, good for `minutes` (1 to 60) and for one use.
    /// Returns the link's secret; only its digest is stored (as a session), so the link works
    /// on every node sharing the database. Audited.
    pub fn operator_sign_in_link(&self, minutes: i64) -> Result<String> {
        let seconds = minutes.clamp(1, 60) * 60;
        let token = self.0.sessions.create(
            crate::sessions::SessionKind::OperatorLink,
            "{}",
            seconds,
            seconds,
        )?;
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.interaction = Some("operator-link".into());
        self.audit(record)?;
        Ok(token)
    }

    /// The operator page: uses a sign-in link (once); `true` when it was good. Audited
    /// either way.
    pub fn use_operator_sign_in_link(&self, link: &str) -> Result<bool> {
        let used = self
            .0
            .sessions
            .take(crate::sessions::SessionKind::OperatorLink, link)?
            .is_some();
        let mut record = AuditRecord::new(Usage::Operator, "operator");
        record.interaction = Some("operator-sign-in".into());
        if !used {
            record.status = 403;
            record.error_detail = Some("unknown, used or expired sign-in link".into());
        }
        self.audit(record)?;
        Ok(used)
    }

    // --- sessions -------------------------------------------------------------------------

    /// The browser-session store shared by the authorization pages and the portal.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }
}

/// A started withdrawn-grant probe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    pub app_id: String,
    /// Microseconds since the epoch.
    pub started_us: i64,
    /// How many grants (citizens) it withdrew.
    pub grants_withdrawn: usize,
}

/// The setting that holds when an application's probe started.
fn probe_key(app_id: &str) -> String {
    format!("acceptance-probe:{app_id}")
}

/// The identity key of a node on a shared database: read from the configured file, which
/// must exist. Never created here (nodes creating their own would hash identity codes
/// differently) and never stored in the database (a leaked database alone must not be
/// enough to test identity codes against the stored digests).
pub fn identity_key_for_database(config: &AuthConfig) -> Result<Vec<u8>> {
    let Some(path) = &config.identity_key_file else {
        return Err(AuthError::Config(
            "with a database every node needs the same identity key file: set [auth] \
             identity_key_file or --identity-key FILE (32 or more random bytes, e.g. \
             `head -c 32 /dev/urandom > identity.key`, readable by phr only); the key is \
             never stored in the database"
                .into(),
        ));
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        Ok(_) => Err(AuthError::Config(format!(
            "identity key file {} is too short (32 bytes at least)",
            path.display()
        ))),
        Err(e) => Err(AuthError::Config(format!(
            "cannot read the identity key file {}: {e}",
            path.display()
        ))),
    }
}

/// The check value of an identity key: an HMAC of a fixed text, which tells keys apart
/// without revealing anything that helps to test identity codes.
fn identity_key_check(key: &[u8]) -> String {
    crate::secrets::keyed_digest(key, b"phr identity key check 1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records the key's check value with the first start; refuses another key afterwards.
fn check_identity_key(cluster: &dyn ClusterStore, key: &[u8], config: &AuthConfig) -> Result<()> {
    let ours = identity_key_check(key);
    let stored = cluster.setting_or_insert(IDENTITY_KEY_CHECK, &ours)?;
    if stored != ours {
        return Err(AuthError::Config(format!(
            "the identity key file {} is not the key this database's citizens were identified \
             with: give every node the same key file",
            config.identity_key_path().display()
        )));
    }
    Ok(())
}

/// Reads the 32-byte identity key, creating it (mode 0600) on first start. The key makes the
/// stored identity digests useless without this file; keep it out of database backups'
/// reach or back it up separately.
fn load_or_create_identity_key(path: &Path) -> Result<Vec<u8>> {
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
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
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

/// A traffic row with anything that parses as a personal identity code replaced.
fn redacted(mut row: TrafficRow) -> TrafficRow {
    row.detail = crate::traffic::redact_value(&row.detail);
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::ClientType;
    use crate::config::Mode;

    fn lookups(mode: Mode) -> Lookups {
        let db = Sqlite::in_memory();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::at_micros(1_000_000));
        let apps = Arc::new(Apps::new(
            Arc::new(SqliteAppStore::new(db.clone())),
            clock.clone(),
        ));
        let config = AuthConfig::sandbox(Path::new("/nonexistent"), "http://127.0.0.1:9");
        Lookups {
            grants: Arc::new(Grants::new(
                Arc::new(SqliteGrantStore::new(db.clone())),
                clock.clone(),
            )),
            citizens: Arc::new(Citizens::new(
                Arc::new(SqliteCitizenStore::new(db.clone())),
                clock.clone(),
                vec![7; 32],
                &config,
            )),
            tokens: Arc::new(Tokens::new(
                Arc::new(SqliteTokenStore::new(db)),
                clock,
                60,
                3600,
            )),
            apps,
            mode,
        }
    }

    fn register(lookups: &Lookups, id: &str, kind: AppKind, scope: &str, org: Option<&str>) {
        lookups
            .apps
            .register(
                NewApp {
                    app_id: Some(id.into()),
                    name: "Steps".into(),
                    kind,
                    client_type: ClientType::Public,
                    redirect_uris: vec!["https://app.example.fi/cb".into()],
                    scope: scope.into(),
                    contact: None,
                    jwks: None,
                    jwks_uri: None,
                    org: org.map(str::to_string),
                    certificate_oid: None,
                    supplier: None,
                    platform: None,
                    fhir_versions: None,
                },
                AppStatus::Accepted,
            )
            .unwrap();
    }

    #[test]
    fn in_production_an_app_is_served_on_its_registered_fhir_versions_only() {
        let production = lookups(Mode::Production);
        register(
            &production,
            "both",
            AppKind::Wellbeing,
            "patient/Observation.rs",
            None,
        );
        let r4_only = NewApp {
            app_id: Some("r4-only".into()),
            name: "R4".into(),
            kind: AppKind::Wellbeing,
            client_type: ClientType::Public,
            redirect_uris: vec!["https://app.example.fi/cb".into()],
            scope: "patient/Observation.rs".into(),
            contact: None,
            jwks: None,
            jwks_uri: None,
            org: None,
            certificate_oid: None,
            supplier: None,
            platform: None,
            fhir_versions: Some(crate::apps::FhirVersions::R4),
        };
        production
            .apps
            .register(r4_only.clone(), AppStatus::Accepted)
            .unwrap();
        let standing = production.app("r4-only").unwrap().unwrap();
        assert_eq!(standing.fhir_versions, Some(crate::apps::FhirVersions::R4));
        let standing = production.app("both").unwrap().unwrap();
        assert_eq!(
            standing.fhir_versions,
            Some(crate::apps::FhirVersions::BOTH)
        );
        // The sandbox serves every version to every app.
        let sandbox = lookups(Mode::Sandbox);
        sandbox.apps.register(r4_only, AppStatus::Sandbox).unwrap();
        assert_eq!(sandbox.app("r4-only").unwrap().unwrap().fhir_versions, None);
    }

    #[test]
    fn new_registrations_default_to_r4_only_in_production() {
        use crate::apps::FhirVersions;
        assert_eq!(
            FhirVersions::default_for(Mode::Production),
            FhirVersions::R4
        );
        assert_eq!(FhirVersions::default_for(Mode::Sandbox), FhirVersions::BOTH);
        assert_eq!(FhirVersions::parse("stu3,r4"), Some(FhirVersions::BOTH));
        assert_eq!(FhirVersions::parse("R4"), Some(FhirVersions::R4));
        assert_eq!(FhirVersions::parse("dstu2"), None);
        assert_eq!(FhirVersions::parse(""), None);
        for v in [FhirVersions::R4, FhirVersions::BOTH] {
            assert_eq!(FhirVersions::parse(v.code()), Some(v));
        }
    }

    #[test]
    fn in_production_a_wellbeing_app_is_limited_to_its_accepted_contents() {
        let production = lookups(Mode::Production);
        register(
            &production,
            "steps",
            AppKind::Wellbeing,
            "patient/Observation.cruds",
            None,
        );
        register(
            &production,
            "pro",
            AppKind::Professional,
            "user/Observation.rs",
            Some("1.2.3"),
        );
        let standing = production.app("steps").unwrap().unwrap();
        assert_eq!(
            standing.contents,
            Some(ContentRights::default()),
            "nothing accepted yet"
        );
        production
            .apps
            .record_round("steps", "steps", RoundOutcome::Pass, None)
            .unwrap();
        production
            .apps
            .accept_content("steps", "steps", false, true)
            .unwrap();
        let rights = production.app("steps").unwrap().unwrap().contents.unwrap();
        assert!(rights.write.contains("steps") && rights.read.is_empty());
        assert_eq!(production.app("pro").unwrap().unwrap().contents, None);
        let sandbox = lookups(Mode::Sandbox);
        register(
            &sandbox,
            "steps",
            AppKind::Wellbeing,
            "patient/Observation.cruds",
            None,
        );
        assert_eq!(sandbox.app("steps").unwrap().unwrap().contents, None);
    }
}
