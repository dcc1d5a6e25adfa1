//! Grants: the citizen's consent that one application may read and/or write the listed
//! data contents. A grant is remembered (shown in the portal) until withdrawn; withdrawing
//! stops every token issued under it at once.
//!
//! A new consent with the same scope reuses the active grant (a second device of the same
//! app keeps working); a consent with a different scope supersedes it, so tokens issued
//! under the old scope stop working.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{AuthError, Result};
use crate::scope::ScopeSet;
use crate::service::AuthService;

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

fn grant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        grant_id: row.get(0)?,
        patient_id: row.get(1)?,
        app_id: row.get(2)?,
        app_name: row.get(3)?,
        scope: row.get(4)?,
        status: row.get(5)?,
        created_at: row.get(6)?,
        ended_at: row.get(7)?,
    })
}

const GRANT_SELECT: &str =
    "SELECT g.grant_id, g.patient_id, g.app_id, a.name, g.scope, g.status, g.created_at, g.ended_at
     FROM grants g JOIN apps a ON a.app_id = g.app_id";

impl AuthService {
    /// Records the citizen's consent for `app_id` with the `approved` scopes and returns the
    /// active grant.
    pub(crate) fn record_consent(
        &self,
        patient_id: &str,
        app_id: &str,
        approved: &ScopeSet,
    ) -> Result<Grant> {
        let now = self.now();
        let scope = approved.to_string();
        let mut superseded = None;
        {
            let mut conn = self.db();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let active: Option<(String, String)> = tx
                .query_row(
                    "SELECT grant_id, scope FROM grants WHERE patient_id = ?1 AND app_id = ?2 AND status = 'active'",
                    params![patient_id, app_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let reuse = match &active {
                Some((_, old)) => {
                    ScopeSet::parse(old).ok().as_ref() == Some(approved) || old == &scope
                }
                None => false,
            };
            if !reuse {
                if let Some((old_id, _)) = &active {
                    tx.execute("UPDATE grants SET status = 'superseded', ended_at = ?1 WHERE grant_id = ?2", params![now, old_id])?;
                    revoke_families_of_grant(&tx, old_id, now, "superseded")?;
                    superseded = Some(old_id.clone());
                }
                tx.execute(
                    "INSERT INTO grants (grant_id, patient_id, app_id, scope, status, created_at) VALUES (?1, ?2, ?3, ?4, 'active', ?5)",
                    params![uuid::Uuid::new_v4().to_string(), patient_id, app_id, scope, now],
                )?;
            }
            tx.commit()?;
        }
        if let Some(old) = superseded {
            self.forget_grant_and_families(&old)?;
        }
        self.active_grant(patient_id, app_id)?
            .ok_or_else(|| AuthError::NotFound("grant just recorded".into()))
    }

    pub fn active_grant(&self, patient_id: &str, app_id: &str) -> Result<Option<Grant>> {
        Ok(self
            .db()
            .query_row(
                &format!("{GRANT_SELECT} WHERE g.patient_id = ?1 AND g.app_id = ?2 AND g.status = 'active'"),
                params![patient_id, app_id],
                grant_from_row,
            )
            .optional()?)
    }

    /// The citizen's grants, active first, newest first (portal).
    pub fn grants_for_patient(&self, patient_id: &str) -> Result<Vec<Grant>> {
        let conn = self.db();
        let mut stmt = conn.prepare(&format!(
            "{GRANT_SELECT} WHERE g.patient_id = ?1 ORDER BY g.status <> 'active', g.created_at DESC, g.rowid DESC"
        ))?;
        let grants = stmt
            .query_map([patient_id], grant_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(grants)
    }

    /// The citizen withdraws a grant: every token issued under it stops working now.
    pub fn withdraw_grant(&self, patient_id: &str, grant_id: &str) -> Result<()> {
        let now = self.now();
        {
            let mut conn = self.db();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let changed = tx.execute(
                "UPDATE grants SET status = 'withdrawn', ended_at = ?1 WHERE grant_id = ?2 AND patient_id = ?3 AND status = 'active'",
                params![now, grant_id, patient_id],
            )?;
            if changed == 0 {
                return Err(AuthError::NotFound(format!("active grant {grant_id}")));
            }
            revoke_families_of_grant(&tx, grant_id, now, "withdrawn")?;
            tx.commit()?;
        }
        self.forget_grant_and_families(grant_id)?;
        let app_id: Option<String> = self
            .db()
            .query_row(
                "SELECT app_id FROM grants WHERE grant_id = ?1",
                [grant_id],
                |r| r.get(0),
            )
            .optional()?;
        let mut record = crate::audit::AuditRecord::new(
            crate::audit::Usage::CitizenPortal,
            format!("Patient/{patient_id}"),
        );
        record.patient_id = Some(patient_id.to_owned());
        record.app_id = app_id;
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
        let hetu = crate::hetu::Hetu::parse(hetu)
            .map_err(|e| AuthError::Invalid(format!("identity code: {e}")))?;
        let citizen = self.citizen_for_sandbox_identity(&hetu)?;
        self.withdraw_app(&citizen.patient_id, app_id)
    }

    /// Whether a grant is still active, from the cache.
    pub(crate) fn grant_active_cached(&self, grant_id: &str) -> Result<bool> {
        if let Some(hit) = self
            .0
            .status
            .grants
            .read()
            .ok()
            .and_then(|m| m.get(grant_id).copied())
        {
            return Ok(hit);
        }
        let row: Option<(String, String, bool)> = self
            .db()
            .query_row(
                "SELECT g.status, g.patient_id, c.patient_stored
                 FROM grants g JOIN citizens c ON c.patient_id = g.patient_id
                 WHERE g.grant_id = ?1",
                [grant_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)),
            )
            .optional()?;
        let Some((status, patient_id, patient_stored)) = row else {
            return Ok(false);
        };
        let active = status == "active";
        if active && !patient_stored {
            // The citizen was taken into use where the FHIR store was out of reach (`phr
            // token` runs in another process than the server), or storing their Patient
            // failed at sign-up: store it before their first request is served. Not cached
            // when it fails, so the next request tries again.
            if let Err(e) = self.store_patient_of(&patient_id) {
                tracing::error!(error = %e, "storing a citizen's Patient failed");
                return Ok(active);
            }
        }
        if let Ok(mut map) = self.0.status.grants.write() {
            map.insert(grant_id.to_owned(), active);
        }
        Ok(active)
    }

    fn forget_grant_and_families(&self, grant_id: &str) -> Result<()> {
        self.0.status.forget_grant(grant_id);
        let families: Vec<String> = {
            let conn = self.db();
            let mut stmt =
                conn.prepare("SELECT family_id FROM token_families WHERE grant_id = ?1")?;
            stmt.query_map([grant_id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        for family in families {
            self.0.status.forget_family(&family);
        }
        self.bump_status_epoch();
        Ok(())
    }
}

pub(crate) fn revoke_families_of_grant(
    conn: &rusqlite::Connection,
    grant_id: &str,
    now: i64,
    reason: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE token_families SET status = 'revoked', revoked_reason = ?1, revoked_at = ?2 WHERE grant_id = ?3 AND status = 'active'",
        params![reason, now, grant_id],
    )?;
    Ok(())
}
