//! Grants: the citizen's consent that one application may read and/or write the listed
//! data contents. A grant is remembered (shown in the portal) until withdrawn; withdrawing
//! stops every token issued under it at once.
//!
//! A new consent with the same scope reuses the active grant (a second device of the same
//! app keeps working); a consent with a different scope supersedes it, so tokens issued
//! under the old scope stop working.
//!
//! Owns the `grants` table through [`GrantStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`). Never ends token
//! families or touches the enforcer's cache itself: the service handle does that with the
//! grant ids this module returns.

pub(crate) mod postgres;
mod sqlite;

use std::sync::Arc;

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::scope::ScopeSet;

pub(crate) use postgres::PostgresGrantStore;
pub(crate) use sqlite::SqliteGrantStore;

/// A grant as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub grant_id: String,
    pub patient_id: String,
    pub app_id: String,
    pub app_name: String,
    pub scope: String,
    /// `active`, `withdrawn` or `superseded`.
    pub status: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// A grant as stored (the application's name lives with the application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub grant_id: String,
    pub patient_id: String,
    pub app_id: String,
    pub scope: String,
    /// `active`, `withdrawn` or `superseded`.
    pub status: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

impl StoredGrant {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The listed form, with the application's name.
    pub fn named(self, app_name: String) -> Grant {
        Grant {
            grant_id: self.grant_id,
            patient_id: self.patient_id,
            app_id: self.app_id,
            app_name,
            scope: self.scope,
            status: self.status,
            created_at: self.created_at,
            ended_at: self.ended_at,
        }
    }
}

/// What recording a consent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The active grant now.
    pub grant: StoredGrant,
    /// The grant it replaced, when the scope changed.
    pub superseded: Option<String>,
}

/// Where grants are kept.
pub trait GrantStore: Send + Sync {
    fn get(&self, grant_id: &str) -> Result<Option<StoredGrant>>;
    fn active(&self, patient_id: &str, app_id: &str) -> Result<Option<StoredGrant>>;
    /// The citizen's grants, active first, newest first.
    fn for_patient(&self, patient_id: &str) -> Result<Vec<StoredGrant>>;
    /// The application's active grants, oldest first (the sandbox probe withdraws them; not
    /// indexed by application, which only sandbox sizes afford).
    fn active_for_app(&self, app_id: &str) -> Result<Vec<StoredGrant>>;
    /// Atomically: keeps the active grant of `patient_id` for `app_id` when `keep(its
    /// scope)` says so, otherwise supersedes it (if any) with a new active grant of `scope`.
    fn record(
        &self,
        patient_id: &str,
        app_id: &str,
        scope: &str,
        at: i64,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Recorded>;
    /// Ends an active grant of the citizen; `None` when there is no such active grant.
    fn withdraw(&self, patient_id: &str, grant_id: &str, at: i64) -> Result<Option<StoredGrant>>;
    fn count_active(&self) -> Result<u64>;
}

/// The consent rules over a [`GrantStore`].
pub struct Grants {
    store: Arc<dyn GrantStore>,
    clock: Arc<dyn Clock>,
}

impl Grants {
    pub fn new(store: Arc<dyn GrantStore>, clock: Arc<dyn Clock>) -> Grants {
        Grants { store, clock }
    }

    /// Records the citizen's consent for `app_id` with the `approved` scopes.
    pub fn record_consent(
        &self,
        patient_id: &str,
        app_id: &str,
        approved: &ScopeSet,
    ) -> Result<Recorded> {
        let scope = approved.to_string();
        let same = |old: &str| ScopeSet::parse(old).ok().as_ref() == Some(approved) || old == scope;
        self.store
            .record(patient_id, app_id, &scope, self.clock.now(), &same)
    }

    pub fn get(&self, grant_id: &str) -> Result<Option<StoredGrant>> {
        self.store.get(grant_id)
    }

    pub fn active(&self, patient_id: &str, app_id: &str) -> Result<Option<StoredGrant>> {
        self.store.active(patient_id, app_id)
    }

    pub fn for_patient(&self, patient_id: &str) -> Result<Vec<StoredGrant>> {
        self.store.for_patient(patient_id)
    }

    pub fn active_for_app(&self, app_id: &str) -> Result<Vec<StoredGrant>> {
        self.store.active_for_app(app_id)
    }

    /// The citizen withdraws a grant; returns it as it was.
    pub fn withdraw(&self, patient_id: &str, grant_id: &str) -> Result<StoredGrant> {
        self.store
            .withdraw(patient_id, grant_id, self.clock.now())?
            .ok_or_else(|| AuthError::NotFound(format!("active grant {grant_id}")))
    }

    pub fn count_active(&self) -> Result<u64> {
        self.store.count_active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn grants() -> Grants {
        let store = Arc::new(sqlite::test_store());
        Grants::new(store, Arc::new(ManualClock::at_micros(5_000_000)))
    }

    fn scopes(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn the_same_scope_reuses_the_grant_and_another_supersedes_it() {
        let grants = grants();
        let first = grants
            .record_consent("p", "app", &scopes("patient/Observation.read"))
            .unwrap();
        assert_eq!(first.superseded, None);
        assert_eq!(first.grant.created_at, 5);
        // Spelled the v2 way, the same rights: the same grant.
        let again = grants
            .record_consent("p", "app", &scopes("patient/Observation.read"))
            .unwrap();
        assert_eq!(again.grant.grant_id, first.grant.grant_id);
        let wider = grants
            .record_consent(
                "p",
                "app",
                &scopes("patient/Observation.read patient/Observation.write"),
            )
            .unwrap();
        assert_eq!(
            wider.superseded.as_deref(),
            Some(first.grant.grant_id.as_str())
        );
        assert_eq!(
            grants.get(&first.grant.grant_id).unwrap().unwrap().status,
            "superseded"
        );
        assert_eq!(grants.count_active().unwrap(), 1);
    }

    #[test]
    fn an_apps_active_grants_are_found_across_citizens() {
        let grants = grants();
        let read = scopes("patient/Observation.read");
        let p = grants.record_consent("p", "app", &read).unwrap().grant;
        let q = grants.record_consent("q", "app", &read).unwrap().grant;
        grants.record_consent("p", "a", &read).unwrap();
        let ids = |list: Vec<StoredGrant>| -> Vec<String> {
            list.into_iter().map(|g| g.grant_id).collect()
        };
        let mut found = ids(grants.active_for_app("app").unwrap());
        found.sort();
        let mut expected = vec![p.grant_id.clone(), q.grant_id];
        expected.sort();
        assert_eq!(found, expected);
        grants.withdraw("p", &p.grant_id).unwrap();
        assert_eq!(grants.active_for_app("app").unwrap().len(), 1);
        assert!(grants.active_for_app("none").unwrap().is_empty());
    }

    #[test]
    fn withdrawing_ends_only_an_active_grant_of_the_citizen() {
        let grants = grants();
        let grant = grants
            .record_consent("p", "app", &scopes("patient/Observation.read"))
            .unwrap()
            .grant;
        assert!(matches!(
            grants.withdraw("q", &grant.grant_id),
            Err(AuthError::NotFound(_))
        ));
        let withdrawn = grants.withdraw("p", &grant.grant_id).unwrap();
        assert_eq!(withdrawn.app_id, "app");
        assert!(!grants.get(&grant.grant_id).unwrap().unwrap().is_active());
        assert!(grants.active("p", "app").unwrap().is_none());
        assert!(grants.withdraw("p", &grant.grant_id).is_err(), "only once");
    }
}
