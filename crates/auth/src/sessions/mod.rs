//! Browser sessions, server-side: the one store behind the authorization pages' login
//! sessions and the portal's sessions. The browser holds a random value (in a cookie the
//! server's web layer sets); only its digest is stored, keying the owner's own data
//! (JSON), so several server nodes sharing the database share the sessions.
//!
//! A session ends `idle` seconds after its last use and `lifetime` seconds after it started
//! in any case. [`SessionKind`] keeps the two users' records apart: a portal cookie value is
//! never a login session and the other way round.
//!
//! Owns the `sessions` table through [`SessionStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Knows nothing
//! of cookies or of what the data means.

pub(crate) mod postgres;
mod sqlite;

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::secrets::{digest, random_token};

pub(crate) use postgres::PostgresSessionStore;
pub(crate) use sqlite::SqliteSessionStore;

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// The authorization pages: one login (identification, terms, consent) of one
    /// authorization request.
    Login,
    /// The citizen portal (a first-party client) after its login.
    Portal,
    /// A SMART EHR launch context issued by an organisation's system, waiting for its
    /// professional application's authorization request (used once).
    Launch,
    /// The developer console: a signed-in application developer.
    Developer,
    /// A developer's sign-in attempt at their organisation's identity provider (its
    /// `state`, `nonce` and PKCE verifier), waiting for the callback (used once).
    DeveloperLogin,
    /// A one-time operator sign-in link (`phr operator login`), used once.
    OperatorLink,
    /// The operator page: a signed-in operator.
    Operator,
}

impl SessionKind {
    pub fn code(self) -> &'static str {
        match self {
            SessionKind::Login => "login",
            SessionKind::Portal => "portal",
            SessionKind::Launch => "launch",
            SessionKind::Developer => "developer",
            SessionKind::DeveloperLogin => "developer-login",
            SessionKind::OperatorLink => "operator-link",
            SessionKind::Operator => "operator",
        }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub kind: SessionKind,
    pub data: String,
    pub created_at: i64,
    pub idle_until: i64,
    pub expires_at: i64,
}

/// Where sessions are kept, by the digest of the browser's value.
pub trait SessionStore: Send + Sync {
    fn insert(&self, key: &[u8], record: &SessionRecord) -> Result<()>;
    /// The data of a live session of `kind` (idle deadline and lifetime both after `now`),
    /// moving its idle deadline to `idle_until` (never past its lifetime).
    fn touch(
        &self,
        key: &[u8],
        kind: SessionKind,
        now: i64,
        idle_until: i64,
    ) -> Result<Option<String>>;
    /// Replaces the data of a session of `kind`; `false` when there is none.
    fn update(&self, key: &[u8], kind: SessionKind, data: &str) -> Result<bool>;
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// Deletes a live session of `kind` and returns its data, in one step: of two nodes
    /// taking the same session at once, only one gets it.
    fn take(&self, key: &[u8], kind: SessionKind, now: i64) -> Result<Option<String>>;
    /// Deletes every session past its idle deadline or lifetime.
    fn delete_expired(&self, now: i64) -> Result<()>;
}

/// The session rules over a [`SessionStore`].
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>) -> Sessions {
        Sessions { store, clock }
    }

    /// Starts a session holding `data`; returns the value for the browser. It ends `idle`
    /// seconds after its last use and `lifetime` seconds from now in any case.
    pub fn create(
        &self,
        kind: SessionKind,
        data: &str,
        idle: i64,
        lifetime: i64,
    ) -> Result<String> {
        let token = random_token();
        let now = self.clock.now();
        self.store.insert(
            &digest(&token),
            &SessionRecord {
                kind,
                data: data.to_owned(),
                created_at: now,
                idle_until: now.saturating_add(idle.min(lifetime)),
                expires_at: now.saturating_add(lifetime),
            },
        )?;
        Ok(token)
    }

    /// The data of a live session, extending its idle deadline by `idle` seconds; `None`
    /// when unknown, idle too long or past its lifetime.
    pub fn get(&self, kind: SessionKind, token: &str, idle: i64) -> Result<Option<String>> {
        let now = self.clock.now();
        self.store
            .touch(&digest(token), kind, now, now.saturating_add(idle))
    }

    /// Replaces a live session's data.
    pub fn update(&self, kind: SessionKind, token: &str, data: &str) -> Result<()> {
        if !self.store.update(&digest(token), kind, data)? {
            return Err(AuthError::NotFound("session".into()));
        }
        Ok(())
    }

    /// The data of a live session, which ends now (a one-time link); `None` when unknown,
    /// expired or already used.
    pub fn take(&self, kind: SessionKind, token: &str) -> Result<Option<String>> {
        self.store.take(&digest(token), kind, self.clock.now())
    }

    /// Ends a session (logout, a login finished); unknown sessions are ignored.
    pub fn end(&self, token: &str) -> Result<()> {
        self.store.delete(&digest(token))
    }

    pub fn delete_expired(&self) -> Result<()> {
        self.store.delete_expired(self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn sessions() -> (Sessions, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let store = Arc::new(SqliteSessionStore::new(crate::sqlite::Sqlite::in_memory()));
        (Sessions::new(store, clock.clone()), clock)
    }

    #[test]
    fn sessions_end_when_idle_or_logged_out() {
        let (sessions, clock) = sessions();
        let kind = SessionKind::Portal;
        let token = sessions.create(kind, "{\"a\":1}", 60, 3600).unwrap();
        assert_eq!(
            sessions.get(kind, &token, 60).unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        sessions.update(kind, &token, "{\"a\":2}").unwrap();
        clock.advance(50);
        // Used within the idle timeout: extended.
        assert!(sessions.get(kind, &token, 60).unwrap().is_some());
        clock.advance(50);
        assert_eq!(
            sessions.get(kind, &token, 60).unwrap().as_deref(),
            Some("{\"a\":2}")
        );
        clock.advance(61);
        assert!(sessions.get(kind, &token, 60).unwrap().is_none());

        let other = sessions.create(kind, "{}", 60, 3600).unwrap();
        sessions.end(&other).unwrap();
        assert!(sessions.get(kind, &other, 60).unwrap().is_none());
        assert!(sessions.get(kind, "not-a-session", 60).unwrap().is_none());
        assert!(matches!(
            sessions.update(kind, &other, "{}"),
            Err(AuthError::NotFound(_))
        ));
    }

    #[test]
    fn sessions_end_at_their_lifetime_even_when_used() {
        let (sessions, clock) = sessions();
        let token = sessions.create(SessionKind::Portal, "{}", 60, 100).unwrap();
        // Used every 40 s, never idle for 60 s; still over at 100 s.
        let mut alive = Vec::new();
        for _ in 0..3 {
            clock.advance(40);
            alive.push(
                sessions
                    .get(SessionKind::Portal, &token, 60)
                    .unwrap()
                    .is_some(),
            );
        }
        assert_eq!(alive, vec![true, true, false]);
    }

    #[test]
    fn a_one_time_session_is_taken_once_and_not_after_its_lifetime() {
        let (sessions, clock) = sessions();
        let kind = SessionKind::OperatorLink;
        let token = sessions.create(kind, "{\"a\":1}", 60, 60).unwrap();
        assert!(
            sessions
                .take(SessionKind::Operator, &token)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            sessions.take(kind, &token).unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        assert!(sessions.take(kind, &token).unwrap().is_none(), "used once");
        let late = sessions.create(kind, "{}", 60, 60).unwrap();
        clock.advance(61);
        assert!(sessions.take(kind, &late).unwrap().is_none(), "expired");
    }

    #[test]
    fn a_session_of_one_kind_is_not_one_of_the_other() {
        let (sessions, _) = sessions();
        let token = sessions.create(SessionKind::Portal, "{}", 60, 100).unwrap();
        assert!(
            sessions
                .get(SessionKind::Login, &token, 60)
                .unwrap()
                .is_none()
        );
        assert!(sessions.update(SessionKind::Login, &token, "{}").is_err());
        assert!(
            sessions
                .get(SessionKind::Portal, &token, 60)
                .unwrap()
                .is_some()
        );
    }
}
