//! The state behind OAuth tokens: one-time authorization codes, refresh-token families
//! (rotation, reuse detection), revoked access-token ids and used client-assertion ids.
//!
//! Refresh tokens and codes are random values stored as digests; each is accepted once.
//! Access tokens are stateless ES256 JWTs ([`AccessClaims`]) naming the grant (`gid`) and,
//! when refreshable, the family (`fid`), so the enforcer can cut them off when either ends.
//!
//! Owns the `auth_codes`, `token_families`, `refresh_tokens`, `revoked_access_tokens` and
//! `client_assertions` tables through [`TokenStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Decides
//! nothing about clients, grants or scopes: the OAuth flows (`crate::flows`) do.

pub(crate) mod postgres;
mod sqlite;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::secrets::{digest, random_token};

pub(crate) use postgres::PostgresTokenStore;
pub(crate) use sqlite::SqliteTokenStore;

/// Claims of the access tokens this server issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
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
    /// The grant the token was issued under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The refresh-token family, when the sign-in can be refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The organisation (OID) of a professional application's token: of the professional
    /// signed in, or of the organisation's own system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The professional signed in (their professional identifier), for a professional
    /// application's user token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professional: Option<String>,
    /// The professional's name as their identity provider gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professional_name: Option<String>,
    /// The client certificate the token is bound to (RFC 8705).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::certificate::Confirmation>,
}

/// What an authorization code stands for, stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeData {
    pub app_id: String,
    pub patient_id: String,
    pub grant_id: String,
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token request
    /// must repeat it).
    pub redirect_uri_given: bool,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    /// For a professional's sign-in (no citizen, no grant): their identifier and name.
    #[serde(default)]
    pub professional: Option<String>,
    #[serde(default)]
    pub professional_name: Option<String>,
    /// The citizen of a professional's EHR launch (`patient` context of the response).
    #[serde(default)]
    pub launch_patient: Option<String>,
}

/// A presented authorization code, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredRedemption {
    Unknown,
    /// Presented before. The family it started (if any) has been revoked.
    Replayed {
        family_id: Option<String>,
    },
    /// First presentation; now marked used.
    Fresh {
        data: String,
        expires_at: i64,
    },
}

/// A presented authorization code.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    Unknown,
    /// Presented before: whatever it produced may be in the wrong hands, and the family it
    /// started is revoked.
    Replayed {
        family_id: Option<String>,
    },
    Fresh {
        data: Box<CodeData>,
        expires_at: i64,
    },
}

/// A refresh-token family to start: one sign-in of one app under one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFamily {
    pub family_id: String,
    pub grant_id: String,
    pub app_id: String,
    pub patient_id: String,
    pub scope: String,
}

/// A refresh token with its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub family_id: String,
    pub generation: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used: bool,
    pub family_active: bool,
    pub app_id: String,
    pub grant_id: String,
    pub patient_id: String,
    pub scope: String,
}

/// Where token state is kept, by digest of each bearer secret.
pub trait TokenStore: Send + Sync {
    fn insert_code(&self, digest: &[u8], data: &str, expires_at: i64) -> Result<()>;
    /// Marks a code used and returns what it stands for. A code presented before comes back
    /// as replayed, and the family it started is revoked in the same step; if it has not
    /// started one yet, it never will ([`TokenStore::start_family`] then refuses).
    fn redeem_code(&self, digest: &[u8], now: i64) -> Result<StoredRedemption>;
    /// Starts a family with its first refresh token; with `code`, records that the code
    /// started it, and refuses (`false`, nothing stored) when the code was replayed meanwhile.
    fn start_family(
        &self,
        family: &NewFamily,
        token_digest: &[u8],
        now: i64,
        expires_at: i64,
        code: Option<&[u8]>,
    ) -> Result<bool>;
    fn refresh_token(&self, digest: &[u8]) -> Result<Option<RefreshToken>>;
    /// Marks an unused refresh token used and adds its successor, atomically; `false`
    /// (nothing changed) when it has been used meanwhile.
    fn rotate_refresh(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool>;
    /// `None` when there is no such family.
    fn family_active(&self, family_id: &str) -> Result<Option<bool>>;
    /// Revokes an active family; `false` when it was not active.
    fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> Result<bool>;
    /// Revokes every active family of a grant; returns every family of the grant.
    fn revoke_families_of_grant(
        &self,
        grant_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>>;
    /// Active families holding an unused, unexpired refresh token.
    fn count_refreshable(&self, now: i64) -> Result<u64>;
    fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()>;
    /// Revoked access-token ids whose tokens have not expired by `now`, with their expiry.
    fn revoked_access_tokens(&self, now: i64) -> Result<Vec<(String, i64)>>;
    /// Records a client assertion's `jti`; `false` when the client used it before.
    fn use_client_assertion(&self, app_id: &str, jti: &str, expires_at: i64) -> Result<bool>;
    /// Deletes what can no longer be used: codes expired before `codes_before`, revoked
    /// ids and assertion ids expired by `now`.
    fn delete_expired(&self, now: i64, codes_before: i64) -> Result<()>;
}

/// Codes are kept a day past expiry so a late replay is still recognised as one.
const CODE_GRACE: i64 = 86_400;

/// Token state over a [`TokenStore`].
pub struct Tokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    code_lifetime: i64,
    refresh_lifetime: i64,
}

impl Tokens {
    pub fn new(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        code_lifetime: i64,
        refresh_lifetime: i64,
    ) -> Tokens {
        Tokens {
            store,
            clock,
            code_lifetime,
            refresh_lifetime,
        }
    }

    /// Stores a new one-time code for `data`; returns the code.
    pub fn issue_code(&self, data: &CodeData) -> Result<String> {
        let code = random_token();
        let text = serde_json::to_string(data).map_err(|e| AuthError::Invalid(e.to_string()))?;
        self.store.insert_code(
            &digest(&code),
            &text,
            self.clock.now().saturating_add(self.code_lifetime),
        )?;
        Ok(code)
    }

    /// Burns a presented code (on every presentation, so a wrong verifier cannot be retried).
    pub fn redeem_code(&self, code: &str) -> Result<Redemption> {
        Ok(
            match self.store.redeem_code(&digest(code), self.clock.now())? {
                StoredRedemption::Unknown => Redemption::Unknown,
                StoredRedemption::Replayed { family_id } => Redemption::Replayed { family_id },
                StoredRedemption::Fresh { data, expires_at } => {
                    Redemption::Fresh {
                        data: Box::new(serde_json::from_str(&data).map_err(|_| {
                            AuthError::Storage("a stored code is unreadable".into())
                        })?),
                        expires_at,
                    }
                }
            },
        )
    }

    /// Starts a refresh-token family (for the sign-in `code` finished, if any); returns its
    /// first refresh token, or `None` when the code was replayed meanwhile.
    pub fn start_family(&self, family: &NewFamily, code: Option<&str>) -> Result<Option<String>> {
        let token = random_token();
        let now = self.clock.now();
        let code_digest = code.map(digest);
        let started = self.store.start_family(
            family,
            &digest(&token),
            now,
            now.saturating_add(self.refresh_lifetime),
            code_digest.as_deref(),
        )?;
        Ok(started.then_some(token))
    }

    pub fn refresh_token(&self, token: &str) -> Result<Option<RefreshToken>> {
        self.store.refresh_token(&digest(token))
    }

    /// Replaces a refresh token with a new one of the same family; `None` when it was used
    /// meanwhile (a concurrent presentation: treat as reuse).
    pub fn rotate_refresh(&self, token: &str) -> Result<Option<String>> {
        let next = random_token();
        let now = self.clock.now();
        let rotated = self.store.rotate_refresh(
            &digest(token),
            &digest(&next),
            now,
            now.saturating_add(self.refresh_lifetime),
        )?;
        Ok(rotated.then_some(next))
    }

    pub fn family_active(&self, family_id: &str) -> Result<bool> {
        Ok(self.store.family_active(family_id)?.unwrap_or(false))
    }

    pub fn revoke_family(&self, family_id: &str, reason: &str) -> Result<bool> {
        self.store
            .revoke_family(family_id, reason, self.clock.now())
    }

    /// Ends every sign-in under a grant; returns the grant's families.
    pub fn revoke_families_of_grant(&self, grant_id: &str, reason: &str) -> Result<Vec<String>> {
        self.store
            .revoke_families_of_grant(grant_id, reason, self.clock.now())
    }

    pub fn count_refreshable(&self) -> Result<u64> {
        self.store.count_refreshable(self.clock.now())
    }

    pub fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.store.revoke_access_token(jti, expires_at)
    }

    pub fn revoked_access_tokens(&self) -> Result<Vec<(String, i64)>> {
        self.store.revoked_access_tokens(self.clock.now())
    }

    /// Whether a client assertion is presented for the first time (and records it).
    pub fn use_client_assertion(&self, app_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
        self.store.use_client_assertion(app_id, jti, expires_at)
    }

    pub fn delete_expired(&self) -> Result<()> {
        let now = self.clock.now();
        self.store
            .delete_expired(now, now.saturating_sub(CODE_GRACE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn tokens() -> (Tokens, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let store = Arc::new(SqliteTokenStore::new(crate::sqlite::Sqlite::in_memory()));
        (Tokens::new(store, clock.clone(), 60, 3600), clock)
    }

    fn code_data() -> CodeData {
        CodeData {
            app_id: "app".into(),
            patient_id: "p".into(),
            grant_id: "g".into(),
            redirect_uri: "https://a.example/cb".into(),
            redirect_uri_given: true,
            scope: "patient/Observation.read offline_access".into(),
            code_challenge: Some("c".into()),
            nonce: None,
            auth_time: 7,
            professional: None,
            professional_name: None,
            launch_patient: None,
        }
    }

    fn family(id: &str) -> NewFamily {
        NewFamily {
            family_id: id.into(),
            grant_id: "g".into(),
            app_id: "app".into(),
            patient_id: "p".into(),
            scope: "s".into(),
        }
    }

    #[test]
    fn a_code_is_redeemed_once_and_its_replay_revokes_its_family() {
        let (tokens, _) = tokens();
        let code = tokens.issue_code(&code_data()).unwrap();
        assert_eq!(
            tokens.redeem_code(&code).unwrap(),
            Redemption::Fresh {
                data: Box::new(code_data()),
                expires_at: 1060
            }
        );
        let refresh = tokens
            .start_family(&family("f1"), Some(&code))
            .unwrap()
            .unwrap();
        assert!(tokens.family_active("f1").unwrap());
        assert_eq!(
            tokens.redeem_code(&code).unwrap(),
            Redemption::Replayed {
                family_id: Some("f1".into())
            }
        );
        assert!(!tokens.family_active("f1").unwrap());
        assert!(
            !tokens
                .refresh_token(&refresh)
                .unwrap()
                .unwrap()
                .family_active
        );
        assert_eq!(tokens.redeem_code("unknown").unwrap(), Redemption::Unknown);
    }

    #[test]
    fn a_code_replayed_before_its_family_starts_never_starts_one() {
        let (tokens, _) = tokens();
        let code = tokens.issue_code(&code_data()).unwrap();
        assert!(matches!(
            tokens.redeem_code(&code).unwrap(),
            Redemption::Fresh { .. }
        ));
        assert_eq!(
            tokens.redeem_code(&code).unwrap(),
            Redemption::Replayed { family_id: None }
        );
        assert_eq!(
            tokens.start_family(&family("f1"), Some(&code)).unwrap(),
            None
        );
        assert_eq!(tokens.store.family_active("f1").unwrap(), None);
    }

    #[test]
    fn refresh_tokens_rotate_once() {
        let (tokens, clock) = tokens();
        let first = tokens.start_family(&family("f"), None).unwrap().unwrap();
        clock.advance(10);
        let second = tokens.rotate_refresh(&first).unwrap().unwrap();
        assert_eq!(tokens.rotate_refresh(&first).unwrap(), None, "used");
        let old = tokens.refresh_token(&first).unwrap().unwrap();
        let new = tokens.refresh_token(&second).unwrap().unwrap();
        assert!(old.used && !new.used);
        assert_eq!((old.generation, new.generation), (1, 2));
        assert_eq!(new.expires_at, 1010 + 3600);
        assert_eq!(tokens.count_refreshable().unwrap(), 1);
        assert_eq!(
            tokens.revoke_families_of_grant("g", "withdrawn").unwrap(),
            vec!["f".to_string()]
        );
        assert_eq!(tokens.count_refreshable().unwrap(), 0);
    }
}
