//! The per-request enforcer: from the `Authorization` header to an [`AccessContext`] (who,
//! which app, which patient, which scopes), or an [`AccessError`] that maps to 401 or 403.
//!
//! A valid signature is not enough: the app must still be usable, the grant still active,
//! the refresh family (if any) not revoked and the token not revoked. Those checks read an
//! in-memory status cache (`status.rs`) that every change through this process invalidates
//! at once; changes made by other processes sharing the database arrive through a
//! [`StatusSignal`] (`signal.rs`), on which the whole cache is dropped. Verified tokens are
//! remembered by digest, so the hot path does no signature check and no database work once
//! warm.
//!
//! Owns the verified-token cache, the status cache and the status signal. Never writes
//! anything but the signal: what it cannot find in its caches it asks a [`StatusSource`].

pub(crate) mod postgres;
mod signal;
mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::apps::{AppStatus, ContentRights};
use crate::certificate::PresentedCertificate;
use crate::clock::Clock;
use crate::config::Mode;
use crate::error::{AccessError, Result};
use crate::keys::{KeyRing, VerifyError};
use crate::scope::{Access, Interaction, ScopeSet};
use crate::secrets::digest;
use crate::tokens::AccessClaims;

pub(crate) use postgres::PostgresStatusSignal;
pub(crate) use signal::SqliteStatusSignal;
pub use signal::StatusSignal;
use status::StatusCache;

/// Verified access tokens remembered at most (each entry is a few hundred bytes).
const VERIFIED_CACHE_LIMIT: usize = 20_000;

/// Who is calling and what they may do. Handed to the FHIR layer and the audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessContext {
    /// The Patient id whose compartment the token is confined to; `None` for backend
    /// (system) tokens.
    pub patient: Option<String>,
    /// The application id (= `client_id`, = `creatingApplication` applicationId).
    pub app_id: String,
    pub app_name: String,
    #[serde(skip)]
    pub scopes: ScopeSet,
    /// The scope string as granted.
    pub scope: String,
    pub grant_id: Option<String>,
    /// The token's `jti` (never the token itself).
    pub token_id: String,
    pub expires_at: i64,
    /// The organisation (OID) of a professional application (its professionals' tokens and
    /// its organisation's system tokens).
    pub org: Option<String>,
    /// The professional signed in to a professional application.
    pub professional: Option<Professional>,
    /// In production mode, the data contents an accepted wellbeing application may read
    /// and write (what joint testing accepted); `None` where no such limit applies (sandbox
    /// mode, professional applications). The FHIR layer enforces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<ContentRights>,
    /// In production mode, the FHIR versions the application registered for; `None` where
    /// every version is served (sandbox mode, the server's own clients). The FHIR layer
    /// enforces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fhir_versions: Option<crate::apps::FhirVersions>,
}

/// A social welfare or healthcare professional, as their token names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Professional {
    /// Their professional identifier (e.g. the register number of Valvira, or a test id).
    pub id: String,
    pub name: Option<String>,
    /// The organisation (OID) they act for.
    pub org: String,
}

impl AccessContext {
    /// Whether `interaction` on `resource_type` is allowed and under which granular filters.
    pub fn access(&self, resource_type: &str, interaction: Interaction) -> Access {
        self.scopes
            .access(resource_type, interaction, self.is_system())
    }

    /// Like [`AccessContext::access`], as a 403 error when denied.
    pub fn require(
        &self,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Access, AccessError> {
        match self.access(resource_type, interaction) {
            Access::Denied => Err(AccessError::InsufficientScope {
                resource_type: resource_type.to_owned(),
                interaction: interaction.code(),
            }),
            access => Ok(access),
        }
    }

    /// True for backend-service tokens (client_credentials, `system/` scopes).
    pub fn is_system(&self) -> bool {
        self.patient.is_none() && self.professional.is_none()
    }
}

/// Where the status checks may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Memory, then storage on a miss (and the status signal when due).
    Stored,
    /// Memory alone: an answer that needs storage is "not known".
    CachedOnly,
}

/// What a request may do, from its token's verified claims and its application's standing.
fn context(claims: AccessClaims, standing: AppStanding) -> Result<AccessContext, AccessError> {
    let scopes = ScopeSet::parse(&claims.scope).map_err(|_| AccessError::InvalidToken)?;
    let professional = match (&claims.professional, &claims.org) {
        (Some(id), Some(org)) => Some(Professional {
            id: id.clone(),
            name: claims.professional_name.clone(),
            org: org.clone(),
        }),
        (Some(_), None) => return Err(AccessError::InvalidToken),
        (None, _) => None,
    };
    if professional.is_some() && claims.patient.is_some() {
        // A professional's token names no citizen: each request names one.
        return Err(AccessError::InvalidToken);
    }
    Ok(AccessContext {
        org: claims.org,
        professional,
        patient: claims.patient,
        app_id: claims.client_id,
        app_name: standing.name,
        contents: standing.contents,
        fhir_versions: standing.fhir_versions,
        scopes,
        scope: claims.scope,
        grant_id: claims.gid,
        token_id: claims.jti,
        expires_at: claims.exp,
    })
}

/// The token from an `Authorization: Bearer …` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What a grant's status lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantState {
    pub active: bool,
    /// Whether the answer may be remembered (not when a step the grant needs, such as
    /// storing the citizen's Patient, has still to succeed).
    pub cacheable: bool,
}

/// What the enforcer needs to know of an application at each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStanding {
    pub name: String,
    pub status: AppStatus,
    /// The data contents it is limited to, where a limit applies (see
    /// [`AccessContext::contents`]).
    pub contents: Option<ContentRights>,
    /// The FHIR versions it is limited to, where a limit applies (see
    /// [`AccessContext::fhir_versions`]).
    pub fhir_versions: Option<crate::apps::FhirVersions>,
}

impl AppStanding {
    /// An application without content limits.
    pub fn new(name: impl Into<String>, status: AppStatus) -> AppStanding {
        AppStanding {
            name: name.into(),
            status,
            contents: None,
            fhir_versions: None,
        }
    }
}

/// Where the enforcer looks up what its caches do not hold.
pub trait StatusSource: Send + Sync {
    /// The application's name, status and content limits; `None` for an unknown
    /// application.
    fn app(&self, app_id: &str) -> Result<Option<AppStanding>>;
    fn grant(&self, grant_id: &str) -> Result<GrantState>;
    fn family_active(&self, family_id: &str) -> Result<bool>;
    /// Revoked access-token ids that have not expired, with their expiry.
    fn revoked_access_tokens(&self) -> Result<Vec<(String, i64)>>;
}

/// The public identity tokens must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `iss`: this server's public URL.
    pub issuer: String,
    /// `aud`: this server's FHIR base URL.
    pub audience: String,
    pub mode: Mode,
}

/// The per-request enforcer. See the module documentation.
pub struct Enforcer {
    expected: Expected,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    source: Arc<dyn StatusSource>,
    signal: Arc<dyn StatusSignal>,
    /// Access tokens whose signature, issuer and audience have been checked, by digest.
    verified: RwLock<HashMap<Vec<u8>, AccessClaims>>,
    status: StatusCache,
    /// The signal's value when this process last synchronised with it.
    seen: AtomicI64,
}

impl Enforcer {
    pub fn new(
        expected: Expected,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        source: Arc<dyn StatusSource>,
        signal: Arc<dyn StatusSignal>,
    ) -> Result<Enforcer> {
        let seen = signal.latest()?;
        let enforcer = Enforcer {
            expected,
            keys,
            clock,
            source,
            signal,
            verified: RwLock::new(HashMap::new()),
            status: StatusCache::default(),
            seen: AtomicI64::new(seen),
        };
        enforcer
            .status
            .add_revoked(enforcer.source.revoked_access_tokens()?);
        Ok(enforcer)
    }

    /// Authenticates a request from its `Authorization` header value (`None` when absent),
    /// made without a client certificate.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<AccessContext, AccessError> {
        self.authenticate_presenting(authorization, None)
    }

    /// Authenticates a request from its `Authorization` header value and the client
    /// certificate it came with: a token bound to a certificate is accepted only with that
    /// certificate.
    pub fn authenticate_presenting(
        &self,
        authorization: Option<&str>,
        certificate: Option<&PresentedCertificate>,
    ) -> Result<AccessContext, AccessError> {
        let header = authorization.ok_or(AccessError::MissingToken)?;
        let token = bearer_token(header).ok_or(AccessError::InvalidToken)?;
        let claims = self.verify(token)?;
        if let Some(confirmation) = &claims.cnf
            && let Some(why) = crate::certificate::bound_token_refusal(confirmation, certificate)
        {
            return Err(AccessError::CertificateMismatch(why));
        }
        let standing = self.check(&claims)?;
        context(claims, standing)
    }

    /// [`Enforcer::authenticate_presenting`] from what this process already knows: a token
    /// verified before, and the cached standing of its application, grant and family. `None`
    /// whenever the answer would need storage or a signature check (a new token, a cache
    /// miss, a status signal due to be read or newly changed) and whenever the request would
    /// be refused: the full check then gives the answer and its reason. So it never accepts a
    /// token the full check would refuse, and it never blocks.
    pub fn authenticate_known(
        &self,
        authorization: Option<&str>,
        certificate: Option<&PresentedCertificate>,
    ) -> Option<AccessContext> {
        let token = bearer_token(authorization?)?;
        let claims = self.verified.read().ok()?.get(&digest(token)).cloned()?;
        if let Some(confirmation) = &claims.cnf
            && crate::certificate::bound_token_refusal(confirmation, certificate).is_some()
        {
            return None;
        }
        let standing = self.standing(&claims, Lookup::CachedOnly).ok()??;
        context(claims, standing).ok()
    }

    /// Verifies one of our access tokens: signature, issuer and audience. Expiry and status
    /// are [`Enforcer::check`]'s.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AccessError> {
        // A signature check costs far more than the rest of a request's authorization, and
        // an app sends the same token many times: remember verified tokens by digest.
        let key = digest(token);
        if let Some(hit) = self.verified.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let claims: AccessClaims = match self.keys.verify(token) {
            Ok(claims) => claims,
            Err(VerifyError::UnknownKey) => {
                // Another process (`phr key rotate`, then `phr token`) may have made the key.
                match self.keys.reload_for_unknown_key(self.clock.now()) {
                    Ok(true) => self
                        .keys
                        .verify(token)
                        .map_err(|_| self.unverifiable(token))?,
                    Ok(false) => return Err(self.unverifiable(token)),
                    Err(e) => {
                        tracing::error!(error = %e, "re-reading the signing keys failed");
                        return Err(AccessError::from_storage(&e));
                    }
                }
            }
            Err(_) => return Err(AccessError::InvalidToken),
        };
        if claims.iss != self.expected.issuer {
            return Err(AccessError::WrongIssuer {
                issued_by: claims.iss,
                expected: self.expected.issuer.clone(),
            });
        }
        if claims.aud != self.expected.audience {
            return Err(AccessError::WrongAudience {
                audience: claims.aud,
                expected: self.expected.audience.clone(),
            });
        }
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= VERIFIED_CACHE_LIMIT {
                let now = self.clock.now();
                cache.retain(|_, c| c.exp > now);
                if cache.len() >= VERIFIED_CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(key, claims.clone());
        }
        Ok(claims)
    }

    /// Why a token signed with a key this server does not have is refused: when it names
    /// another issuer, that is the useful thing to say (its claims are not trusted for
    /// anything else).
    fn unverifiable(&self, token: &str) -> AccessError {
        #[derive(serde::Deserialize)]
        struct Issuer {
            iss: String,
        }
        match jsonwebtoken::dangerous::insecure_decode::<Issuer>(token) {
            Ok(data) if data.claims.iss != self.expected.issuer => AccessError::WrongIssuer {
                issued_by: data.claims.iss,
                expected: self.expected.issuer.clone(),
            },
            _ => AccessError::InvalidToken,
        }
    }

    /// Expiry, revocation, app, grant and family status of verified claims; returns the
    /// app's standing (name and content limits).
    pub fn check(&self, claims: &AccessClaims) -> Result<AppStanding, AccessError> {
        // A look-up that may read storage always comes to an answer.
        self.standing(claims, Lookup::Stored)?
            .ok_or(AccessError::Internal)
    }

    /// The checks of [`Enforcer::check`], in its order. With [`Lookup::CachedOnly`],
    /// `Ok(None)` when a status is not in memory or the status signal must be read first.
    fn standing(
        &self,
        claims: &AccessClaims,
        lookup: Lookup,
    ) -> Result<Option<AppStanding>, AccessError> {
        if claims.exp <= self.clock.now() {
            return Err(AccessError::Expired);
        }
        match lookup {
            Lookup::Stored => self.sync(),
            Lookup::CachedOnly => {
                if self.signal.latest_known() != Some(self.seen.load(Ordering::Relaxed)) {
                    return Ok(None);
                }
            }
        }
        if self.status.is_revoked(&claims.jti) {
            return Err(AccessError::Revoked);
        }
        let internal = |e: crate::error::AuthError| {
            tracing::error!(error = %e, "authorization status lookup failed");
            AccessError::from_storage(&e)
        };
        let Some(standing) = self.app(&claims.client_id, lookup).map_err(internal)? else {
            return match lookup {
                Lookup::Stored => Err(AccessError::InvalidToken),
                Lookup::CachedOnly => Ok(None),
            };
        };
        if !standing.status.is_usable(self.expected.mode) {
            return Err(AccessError::AppInactive(standing.status.code().to_owned()));
        }
        if let Some(grant) = &claims.gid {
            match self.grant_active(grant, lookup).map_err(internal)? {
                None => return Ok(None),
                Some(false) => return Err(AccessError::GrantWithdrawn),
                Some(true) => {}
            }
        }
        if let Some(family) = &claims.fid {
            match self.family_active(family, lookup).map_err(internal)? {
                None => return Ok(None),
                Some(false) => return Err(AccessError::Revoked),
                Some(true) => {}
            }
        }
        if claims.patient.is_some() && claims.gid.is_none() {
            // Patient tokens are always issued under a grant.
            return Err(AccessError::InvalidToken);
        }
        Ok(Some(standing))
    }

    /// The app's standing; `None` when it does not exist, or is not cached and `lookup`
    /// allows no read.
    fn app(&self, app_id: &str, lookup: Lookup) -> Result<Option<AppStanding>> {
        if let Some(hit) = self.status.app(app_id) {
            return Ok(Some(hit));
        }
        if lookup == Lookup::CachedOnly {
            return Ok(None);
        }
        let found = self.source.app(app_id)?;
        if let Some(found) = &found {
            self.status.set_app(app_id, found.clone());
        }
        Ok(found)
    }

    /// Whether the grant is active; `None` when it is not cached and `lookup` allows no read.
    fn grant_active(&self, grant_id: &str, lookup: Lookup) -> Result<Option<bool>> {
        if let Some(hit) = self.status.grant(grant_id) {
            return Ok(Some(hit));
        }
        if lookup == Lookup::CachedOnly {
            return Ok(None);
        }
        let state = self.source.grant(grant_id)?;
        if state.cacheable {
            self.status.set_grant(grant_id, state.active);
        }
        Ok(Some(state.active))
    }

    /// Whether the refresh family is active; `None` when it is not cached and `lookup`
    /// allows no read.
    fn family_active(&self, family_id: &str, lookup: Lookup) -> Result<Option<bool>> {
        if let Some(hit) = self.status.family(family_id) {
            return Ok(Some(hit));
        }
        if lookup == Lookup::CachedOnly {
            return Ok(None);
        }
        let active = self.source.family_active(family_id)?;
        self.status.set_family(family_id, active);
        Ok(Some(active))
    }

    /// Drops every cached status when another process changed one (as the signal tells).
    fn sync(&self) {
        let latest = match self.signal.latest() {
            Ok(latest) => latest,
            Err(e) => {
                tracing::error!(error = %e, "reading the status signal failed");
                return;
            }
        };
        if latest == self.seen.swap(latest, Ordering::Relaxed) {
            return;
        }
        self.status.forget_all();
        if let Err(e) = self.keys.reload(self.clock.now()) {
            tracing::error!(error = %e, "re-reading the signing keys failed");
        }
        match self.source.revoked_access_tokens() {
            Ok(revoked) => self.status.add_revoked(revoked),
            Err(e) => tracing::error!(error = %e, "re-reading revoked tokens failed"),
        }
    }

    /// Forgets an application's cached status (this process changed it).
    pub fn forget_app(&self, app_id: &str) {
        self.status.forget_app(app_id);
    }

    /// Forgets a grant's and its families' cached status (this process changed them).
    pub fn forget_grant(&self, grant_id: &str, families: &[String]) {
        self.status.forget_grant(grant_id);
        for family in families {
            self.status.forget_family(family);
        }
    }

    pub fn forget_family(&self, family_id: &str) {
        self.status.forget_family(family_id);
    }

    /// An access token revoked by this process.
    pub fn revoked(&self, jti: &str, expires_at: i64) {
        self.status.add_revoked([(jti.to_owned(), expires_at)]);
    }

    /// Tells other processes sharing the database that a status changed (this process has
    /// already forgotten the precise entries).
    pub fn announce(&self) {
        match self.signal.publish() {
            Ok(latest) => self.seen.store(latest, Ordering::Relaxed),
            Err(e) => tracing::error!(error = %e, "announcing a status change failed"),
        }
    }

    /// Drops revoked ids of tokens that have expired anyway.
    pub fn prune(&self) {
        self.status.prune_revoked(self.clock.now());
    }
}

#[cfg(test)]
mod tests;
