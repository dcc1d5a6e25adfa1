//! What the server's own citizen portal needs from the authorization server.
//!
//! The portal is a *first-party client*: it logs citizens in with the same authorization
//! code + PKCE flow as any app (so the sandbox identity provider, the upstream OpenID Connect
//! provider, the terms of use and the age rule apply unchanged), but the citizen is not asked
//! to consent to their own portal. Its browser sessions live here too, server-side in
//! `auth.db` (only a digest of the cookie value is stored), so several server nodes sharing
//! the database share them. And it reads the citizen's audit records with filters, and when
//! each application last accessed their data.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::apps::App;
use crate::audit::{AuditRecord, RECORD_COLUMNS, record_from_row};
use crate::citizens::{Citizen, Identified};
use crate::error::{AuthError, Result};
use crate::hetu::Hetu;
use crate::scope::ScopeSet;
use crate::secrets::{digest, random_token};
use crate::service::AuthService;
use crate::texts::{Lang, category_name, resource_name};

/// Which of a citizen's audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records of this application.
    pub app_id: Option<String>,
    /// Only records at or after this time (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Only records before this time.
    pub until_us: Option<i64>,
}

impl AuthService {
    /// Registers (or refreshes) one of the server's own clients: a public client with PKCE,
    /// status accepted, one redirect URI. The citizen is never asked to consent to it. Its
    /// status is left alone when it already exists, so an operator's suspension holds.
    pub fn register_first_party_client(
        &self,
        app_id: &str,
        name: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<App> {
        let scopes = ScopeSet::parse(scope).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let now = self.now();
        let redirect_uris = serde_json::to_string(&[redirect_uri])
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        self.db().execute(
            "INSERT INTO apps (app_id, name, kind, client_type, redirect_uris, scope, status, created_at, status_changed_at)
             VALUES (?1, ?2, 'wellbeing', 'public', ?3, ?4, 'accepted', ?5, ?5)
             ON CONFLICT (app_id) DO UPDATE SET name = excluded.name, client_type = 'public',
                 redirect_uris = excluded.redirect_uris, scope = excluded.scope",
            params![app_id, name, redirect_uris, scopes.to_string(), now],
        )?;
        self.0.status.forget_app(app_id);
        if let Ok(mut set) = self.0.first_party.write() {
            set.insert(app_id.to_owned());
        }
        self.app(app_id)?
            .ok_or_else(|| AuthError::NotFound(format!("application {app_id}")))
    }

    /// Whether `client_id` is one of the server's own clients (no consent page).
    pub fn is_first_party(&self, client_id: &str) -> bool {
        self.0
            .first_party
            .read()
            .map(|set| set.contains(client_id))
            .unwrap_or(false)
    }

    /// Starts a browser session holding `data` (the client's own JSON); returns the cookie
    /// value. The session ends `idle_timeout` seconds after its last use, and `lifetime`
    /// seconds after it started in any case.
    pub fn create_browser_session(
        &self,
        data: &str,
        idle_timeout: i64,
        lifetime: i64,
    ) -> Result<String> {
        let token = random_token();
        let now = self.now();
        self.db().execute(
            "INSERT INTO browser_sessions (session_digest, data, created_at, idle_until, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![digest(&token), data, now, now + idle_timeout, now + lifetime],
        )?;
        Ok(token)
    }

    /// The data of a live browser session, extending its idle deadline by `idle_timeout`;
    /// None when unknown, idle too long or past its lifetime.
    pub fn browser_session(&self, token: &str, idle_timeout: i64) -> Result<Option<String>> {
        let now = self.now();
        let key = digest(token);
        let conn = self.db();
        let data: Option<String> = conn
            .query_row(
                "SELECT data FROM browser_sessions WHERE session_digest = ?1 AND idle_until > ?2 AND expires_at > ?2",
                params![key, now],
                |r| r.get(0),
            )
            .optional()?;
        if data.is_some() {
            conn.execute(
                "UPDATE browser_sessions SET idle_until = min(?1, expires_at) WHERE session_digest = ?2",
                params![now + idle_timeout, key],
            )?;
        }
        Ok(data)
    }

    /// Replaces a live session's data.
    pub fn update_browser_session(&self, token: &str, data: &str) -> Result<()> {
        let changed = self.db().execute(
            "UPDATE browser_sessions SET data = ?1 WHERE session_digest = ?2",
            params![data, digest(token)],
        )?;
        if changed == 0 {
            return Err(AuthError::NotFound("browser session".into()));
        }
        Ok(())
    }

    /// Ends a browser session (logout); unknown sessions are ignored.
    pub fn end_browser_session(&self, token: &str) -> Result<()> {
        self.db().execute(
            "DELETE FROM browser_sessions WHERE session_digest = ?1",
            [digest(token)],
        )?;
        Ok(())
    }

    /// Sandbox only: takes a test identity into use with a given Patient id, as if the person
    /// had logged in and accepted the terms (the demo's citizens, whose seeded data is stored
    /// under known pseudonyms). A known identity keeps the Patient id it has.
    pub fn enroll_sandbox_identity(&self, hetu: &Hetu, patient_id: &str) -> Result<Citizen> {
        if !self.config().mode.is_sandbox() {
            return Err(AuthError::NotAllowed("only in sandbox mode".into()));
        }
        if !hetu.is_test_identity() {
            return Err(AuthError::NotAllowed(
                "the sandbox accepts only test identities (individual number 900–999)".into(),
            ));
        }
        let identity = self.identity_digest(hetu);
        let now = self.now();
        self.db().execute(
            "INSERT INTO citizens (patient_id, identity_key, birth_date, terms_version, terms_accepted_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (identity_key) DO NOTHING",
            params![
                patient_id,
                identity,
                hetu.birth_date().to_string(),
                self.config().terms_version,
                now
            ],
        )?;
        match self.identify(hetu)? {
            Identified::Known(citizen) => Ok(citizen),
            Identified::New(_) => Err(AuthError::Invalid("the identity was not stored".into())),
        }
    }

    /// A page of the citizen's audit records, newest first, and how many match in all.
    pub fn audit_records_for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)> {
        self.flush_audit()?;
        let conn = self.db();
        let since = query.since_us.unwrap_or(i64::MIN);
        let until = query.until_us.unwrap_or(i64::MAX);
        // `?2 IS NULL OR app_id = ?2` keeps one statement for both cases.
        let filter = "patient_id = ?1 AND (?2 IS NULL OR app_id = ?2) AND recorded_us >= ?3 AND recorded_us < ?4";
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) FROM audit WHERE {filter}"),
            params![patient_id, query.app_id, since, until],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit WHERE {filter} ORDER BY recorded_us DESC, seq DESC LIMIT ?5 OFFSET ?6"
        ))?;
        let records = stmt
            .query_map(
                params![
                    patient_id,
                    query.app_id,
                    since,
                    until,
                    count as i64,
                    offset as i64
                ],
                record_from_row,
            )?
            .map(|row| row.map(|(record, _)| record))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((total.max(0) as u64, records))
    }

    /// The applications that appear in the citizen's audit records, with their names, for a
    /// filter list (sorted by name).
    pub fn audited_apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.flush_audit()?;
        let conn = self.db();
        let mut stmt = conn.prepare(
            "SELECT app_id, coalesce(max(app_name), app_id) FROM audit
             WHERE patient_id = ?1 AND app_id IS NOT NULL GROUP BY app_id ORDER BY 2",
        )?;
        let apps = stmt
            .query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(apps)
    }

    /// What a grant's scope allows, per data content, in words: `(data, rights)` pairs such
    /// as ("Mittaustiedot", "lukea, tallentaa"), for the portal's list of applications.
    pub fn scope_rights(scope: &str, lang: Lang) -> Vec<(String, String)> {
        let t = lang.texts();
        let Ok(scopes) = ScopeSet::parse(scope) else {
            return Vec::new();
        };
        scopes
            .resource_scopes()
            .iter()
            .map(|scope| {
                let mut data = match &scope.resource_type {
                    Some(rt) => resource_name(rt, lang),
                    None => t.consent_all_data.to_owned(),
                };
                if !scope.filters.is_empty() {
                    let categories: Vec<String> = scope
                        .filters
                        .iter()
                        .map(|f| category_name(&f.code, lang))
                        .collect();
                    data = format!("{data} ({})", categories.join(", "));
                }
                let mut rights = Vec::new();
                if scope.perms.reads() {
                    rights.push(t.consent_read);
                }
                if scope.perms.writes() {
                    rights.push(t.consent_write);
                }
                (data, rights.join(", "))
            })
            .collect()
    }

    /// When each application last accessed the citizen's data through the API (microseconds
    /// since the epoch), by application id.
    pub fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        self.flush_audit()?;
        let conn = self.db();
        let mut stmt = conn.prepare(
            "SELECT app_id, max(recorded_us) FROM audit
             WHERE patient_id = ?1 AND app_id IS NOT NULL AND usage = 'application' GROUP BY app_id",
        )?;
        let rows = stmt
            .query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    fn service() -> (AuthService, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("phr-auth-fp-{}", uuid::Uuid::new_v4()));
        let service =
            AuthService::open(AuthConfig::sandbox(&dir, "http://127.0.0.1:9")).expect("opens");
        (service, dir)
    }

    #[test]
    fn first_party_client_is_registered_accepted_and_marked() {
        let (auth, dir) = service();
        assert!(!auth.is_first_party("phr-portal"));
        let app = auth
            .register_first_party_client(
                "phr-portal",
                "Portal",
                "http://127.0.0.1:9/login/callback",
                "openid patient/*.read",
            )
            .unwrap();
        assert_eq!(app.status, crate::AppStatus::Accepted);
        assert_eq!(app.client_type, crate::ClientType::Public);
        assert!(auth.is_first_party("phr-portal"));
        // A new public URL replaces the redirect URI.
        let app = auth
            .register_first_party_client(
                "phr-portal",
                "Portal",
                "http://127.0.0.1:10/login/callback",
                "openid patient/*.read",
            )
            .unwrap();
        assert_eq!(
            app.redirect_uris,
            vec!["http://127.0.0.1:10/login/callback"]
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn sandbox_identities_are_enrolled_with_their_patient_once() {
        let (auth, dir) = service();
        let hetu = Hetu::parse("010190-900P").unwrap();
        let citizen = auth
            .enroll_sandbox_identity(&hetu, "demo-patient-1")
            .unwrap();
        assert_eq!(citizen.patient_id, "demo-patient-1");
        // Known already: the Patient id stays.
        let again = auth.enroll_sandbox_identity(&hetu, "other").unwrap();
        assert_eq!(again.patient_id, "demo-patient-1");
        assert!(
            matches!(auth.identify(&hetu), Ok(Identified::Known(c)) if c.patient_id == "demo-patient-1")
        );
        // Only test identities (individual number 900-999).
        let real = Hetu::parse("010190-123F");
        if let Ok(real) = real {
            assert!(auth.enroll_sandbox_identity(&real, "x").is_err());
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn browser_sessions_end_when_idle_or_logged_out() {
        let (auth, dir) = service();
        let token = auth.create_browser_session("{\"a\":1}", 60, 3600).unwrap();
        assert_eq!(
            auth.browser_session(&token, 60).unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        auth.update_browser_session(&token, "{\"a\":2}").unwrap();
        auth.advance_clock_for_tests(50);
        // Used within the idle timeout: extended.
        assert!(auth.browser_session(&token, 60).unwrap().is_some());
        auth.advance_clock_for_tests(50);
        assert_eq!(
            auth.browser_session(&token, 60).unwrap().as_deref(),
            Some("{\"a\":2}")
        );
        auth.advance_clock_for_tests(61);
        assert!(auth.browser_session(&token, 60).unwrap().is_none());

        let other = auth.create_browser_session("{}", 60, 3600).unwrap();
        auth.end_browser_session(&other).unwrap();
        assert!(auth.browser_session(&other, 60).unwrap().is_none());
        assert!(auth.browser_session("not-a-session", 60).unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn browser_sessions_end_at_their_lifetime_even_when_used() {
        let (auth, dir) = service();
        let token = auth.create_browser_session("{}", 60, 100).unwrap();
        // Used every 40 s, never idle for 60 s; still over at 100 s.
        let mut alive = Vec::new();
        for _ in 0..3 {
            auth.advance_clock_for_tests(40);
            alive.push(auth.browser_session(&token, 60).unwrap().is_some());
        }
        assert_eq!(alive, vec![true, true, false]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn audit_records_filter_by_app_and_time() {
        let (auth, dir) = service();
        let mut times = Vec::new();
        for (i, app) in ["a", "b", "a"].iter().enumerate() {
            let mut r = AuditRecord::new(crate::Usage::Application, "Patient/p");
            r.patient_id = Some("p".into());
            r.app_id = Some((*app).into());
            r.app_name = Some(format!("App {app}"));
            r.recorded_us = 1_000_000 * (i as i64 + 1);
            times.push(r.recorded_us);
            auth.audit(r).unwrap();
        }
        let mut other = AuditRecord::new(crate::Usage::Application, "Patient/q");
        other.patient_id = Some("q".into());
        other.app_id = Some("a".into());
        auth.audit(other).unwrap();

        let (total, all) = auth
            .audit_records_for_patient("p", &AuditQuery::default(), 10, 0)
            .unwrap();
        assert_eq!(total, 3);
        assert_eq!(all[0].recorded_us, times[2], "newest first");
        let only_a = AuditQuery {
            app_id: Some("a".into()),
            ..AuditQuery::default()
        };
        assert_eq!(
            auth.audit_records_for_patient("p", &only_a, 10, 0)
                .unwrap()
                .0,
            2
        );
        let window = AuditQuery {
            since_us: Some(times[1]),
            until_us: Some(times[2]),
            ..AuditQuery::default()
        };
        let (n, records) = auth.audit_records_for_patient("p", &window, 10, 0).unwrap();
        assert_eq!((n, records[0].app_id.as_deref()), (1, Some("b")));
        let apps = auth.audited_apps_for_patient("p").unwrap();
        assert_eq!(
            apps,
            vec![
                ("a".to_string(), "App a".to_string()),
                ("b".to_string(), "App b".to_string())
            ]
        );
        let last = auth.last_access_by_app("p").unwrap();
        assert_eq!(last.get("a"), Some(&times[2]));
        assert_eq!(last.get("b"), Some(&times[1]));
        std::fs::remove_dir_all(dir).ok();
    }
}
