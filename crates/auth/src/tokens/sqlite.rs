//! The token tables in SQLite: `auth_codes`, `token_families`, `refresh_tokens`,
//! `revoked_access_tokens`, `client_assertions`.

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{NewFamily, RefreshToken, StoredRedemption, TokenStore};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteTokenStore {
    db: Arc<Sqlite>,
}

impl SqliteTokenStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteTokenStore {
        SqliteTokenStore { db }
    }
}

/// The `family_id` of a code that was replayed before it started a family: the family it
/// was about to start must not start.
const REPLAYED_BEFORE_FAMILY: &str = "";

fn revoke(
    conn: &rusqlite::Connection,
    family_id: &str,
    reason: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE token_families SET status = 'revoked', revoked_reason = ?1, revoked_at = ?2
         WHERE family_id = ?3 AND status = 'active'",
        params![reason, now, family_id],
    )?;
    Ok(changed == 1)
}

fn insert_refresh(
    conn: &rusqlite::Connection,
    digest: &[u8],
    family_id: &str,
    generation: i64,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_digest, family_id, generation, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![digest, family_id, generation, now, expires_at],
    )?;
    Ok(())
}

impl TokenStore for SqliteTokenStore {
    fn insert_code(&self, digest: &[u8], data: &str, expires_at: i64) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO auth_codes (code_digest, data, expires_at) VALUES (?1, ?2, ?3)",
                params![digest, data, expires_at],
            )?;
            Ok(())
        })
    }

    fn redeem_code(&self, digest: &[u8], now: i64) -> Result<StoredRedemption> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(String, i64, Option<i64>, Option<String>)> = tx
                .query_row(
                    "SELECT data, expires_at, used_at, family_id FROM auth_codes WHERE code_digest = ?1",
                    [digest],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let answer = match row {
                None => StoredRedemption::Unknown,
                Some((_, _, Some(_), family)) => {
                    let family_id = match family {
                        Some(id) if id != REPLAYED_BEFORE_FAMILY => {
                            revoke(&tx, &id, "code replay", now)?;
                            Some(id)
                        }
                        Some(_) => None,
                        None => {
                            tx.execute(
                                "UPDATE auth_codes SET family_id = ?1 WHERE code_digest = ?2",
                                params![REPLAYED_BEFORE_FAMILY, digest],
                            )?;
                            None
                        }
                    };
                    StoredRedemption::Replayed { family_id }
                }
                Some((data, expires_at, None, _)) => {
                    tx.execute(
                        "UPDATE auth_codes SET used_at = ?1 WHERE code_digest = ?2",
                        params![now, digest],
                    )?;
                    StoredRedemption::Fresh { data, expires_at }
                }
            };
            tx.commit()?;
            Ok(answer)
        })
    }

    fn start_family(
        &self,
        family: &NewFamily,
        token_digest: &[u8],
        now: i64,
        expires_at: i64,
        code: Option<&[u8]>,
    ) -> Result<bool> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(code) = code {
                let claimed = tx.execute(
                    "UPDATE auth_codes SET family_id = ?1 WHERE code_digest = ?2 AND family_id IS NULL",
                    params![family.family_id, code],
                )?;
                if claimed == 0 {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO token_families (family_id, grant_id, app_id, patient_id, scope, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6)",
                params![
                    family.family_id,
                    family.grant_id,
                    family.app_id,
                    family.patient_id,
                    family.scope,
                    now
                ],
            )?;
            insert_refresh(&tx, token_digest, &family.family_id, 1, now, expires_at)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn refresh_token(&self, digest: &[u8]) -> Result<Option<RefreshToken>> {
        self.db.run(|conn| {
            conn.query_row(
                "SELECT r.family_id, r.generation, r.created_at, r.expires_at, r.used_at, f.status,
                        f.app_id, f.grant_id, f.patient_id, f.scope
                 FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id
                 WHERE r.token_digest = ?1",
                [digest],
                |r| {
                    Ok(RefreshToken {
                        family_id: r.get(0)?,
                        generation: r.get(1)?,
                        created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                        used: r.get::<_, Option<i64>>(4)?.is_some(),
                        family_active: r.get::<_, String>(5)? == "active",
                        app_id: r.get(6)?,
                        grant_id: r.get(7)?,
                        patient_id: r.get(8)?,
                        scope: r.get(9)?,
                    })
                },
            )
            .optional()
        })
    }

    fn rotate_refresh(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let used = tx.execute(
                "UPDATE refresh_tokens SET used_at = ?1 WHERE token_digest = ?2 AND used_at IS NULL",
                params![now, old_digest],
            )?;
            if used == 0 {
                return Ok(false);
            }
            let (family_id, generation): (String, i64) = tx.query_row(
                "SELECT family_id, generation FROM refresh_tokens WHERE token_digest = ?1",
                [old_digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            insert_refresh(&tx, new_digest, &family_id, generation + 1, now, expires_at)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn family_active(&self, family_id: &str) -> Result<Option<bool>> {
        self.db.run(|conn| {
            let status: Option<String> = conn
                .query_row(
                    "SELECT status FROM token_families WHERE family_id = ?1",
                    [family_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(status.map(|s| s == "active"))
        })
    }

    fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> Result<bool> {
        self.db.run(|conn| revoke(conn, family_id, reason, now))
    }

    fn revoke_families_of_grant(
        &self,
        grant_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE token_families SET status = 'revoked', revoked_reason = ?1, revoked_at = ?2
                 WHERE grant_id = ?3 AND status = 'active'",
                params![reason, now, grant_id],
            )?;
            let families = {
                let mut stmt =
                    tx.prepare("SELECT family_id FROM token_families WHERE grant_id = ?1")?;
                stmt.query_map([grant_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?
            };
            tx.commit()?;
            Ok(families)
        })
    }

    fn count_refreshable(&self, now: i64) -> Result<u64> {
        self.db.run(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM token_families f
                 WHERE f.status = 'active' AND EXISTS (
                     SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.family_id
                       AND r.used_at IS NULL AND r.expires_at > ?1)",
                [now],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![jti, expires_at],
            )?;
            Ok(())
        })
    }

    fn revoked_access_tokens(&self, now: i64) -> Result<Vec<(String, i64)>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at > ?1",
            )?;
            stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn use_client_assertion(&self, app_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
        self.db.run(|conn| {
            let fresh = conn.execute(
                "INSERT INTO client_assertions (app_id, jti, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![app_id, jti, expires_at],
            )?;
            Ok(fresh == 1)
        })
    }

    fn delete_expired(&self, now: i64, codes_before: i64) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "DELETE FROM auth_codes WHERE expires_at < ?1",
                [codes_before],
            )?;
            conn.execute("DELETE FROM client_assertions WHERE expires_at < ?1", [now])?;
            conn.execute(
                "DELETE FROM revoked_access_tokens WHERE expires_at < ?1",
                [now],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(id: &str, grant: &str) -> NewFamily {
        NewFamily {
            family_id: id.into(),
            grant_id: grant.into(),
            app_id: "app".into(),
            patient_id: "p".into(),
            scope: "s".into(),
        }
    }

    #[test]
    fn codes_are_fresh_once_then_replayed() {
        let store = SqliteTokenStore::new(Sqlite::in_memory());
        store.insert_code(b"c", "{}", 100).unwrap();
        assert_eq!(
            store.redeem_code(b"c", 5).unwrap(),
            StoredRedemption::Fresh {
                data: "{}".into(),
                expires_at: 100
            }
        );
        assert!(
            store
                .start_family(&family("f", "g"), b"r1", 5, 50, Some(b"c"))
                .unwrap()
        );
        assert_eq!(
            store.redeem_code(b"c", 6).unwrap(),
            StoredRedemption::Replayed {
                family_id: Some("f".into())
            }
        );
        assert_eq!(store.family_active("f").unwrap(), Some(false));
        assert_eq!(
            store.redeem_code(b"x", 6).unwrap(),
            StoredRedemption::Unknown
        );
    }

    #[test]
    fn refresh_rows_carry_their_family() {
        let store = SqliteTokenStore::new(Sqlite::in_memory());
        store
            .start_family(&family("f", "g"), b"r1", 5, 50, None)
            .unwrap();
        let token = store.refresh_token(b"r1").unwrap().unwrap();
        assert_eq!(
            token,
            RefreshToken {
                family_id: "f".into(),
                generation: 1,
                created_at: 5,
                expires_at: 50,
                used: false,
                family_active: true,
                app_id: "app".into(),
                grant_id: "g".into(),
                patient_id: "p".into(),
                scope: "s".into(),
            }
        );
        assert!(store.rotate_refresh(b"r1", b"r2", 6, 60).unwrap());
        assert!(!store.rotate_refresh(b"r1", b"r3", 7, 70).unwrap());
        assert!(store.refresh_token(b"r3").unwrap().is_none());
        assert_eq!(store.count_refreshable(59).unwrap(), 1);
        assert_eq!(store.count_refreshable(60).unwrap(), 0, "expired");
        assert!(store.revoke_family("f", "test", 8).unwrap());
        assert!(!store.revoke_family("f", "test", 9).unwrap(), "only once");
        assert!(!store.refresh_token(b"r2").unwrap().unwrap().family_active);
    }

    #[test]
    fn revoked_ids_and_assertions_expire() {
        let store = SqliteTokenStore::new(Sqlite::in_memory());
        store.revoke_access_token("j1", 10).unwrap();
        store.revoke_access_token("j2", 20).unwrap();
        store.revoke_access_token("j2", 20).unwrap();
        assert_eq!(
            store.revoked_access_tokens(10).unwrap(),
            vec![("j2".to_string(), 20)]
        );
        assert!(store.use_client_assertion("a", "x", 10).unwrap());
        assert!(!store.use_client_assertion("a", "x", 10).unwrap());
        assert!(store.use_client_assertion("b", "x", 10).unwrap());
        store.insert_code(b"c", "{}", 10).unwrap();
        store.delete_expired(11, 10).unwrap();
        assert!(
            store.use_client_assertion("a", "x", 10).unwrap(),
            "forgotten"
        );
        assert_eq!(
            store.redeem_code(b"c", 11).unwrap(),
            StoredRedemption::Fresh {
                data: "{}".into(),
                expires_at: 10
            },
            "kept for its grace period"
        );
        store.delete_expired(11, 11).unwrap();
        assert_eq!(
            store.redeem_code(b"c", 11).unwrap(),
            StoredRedemption::Unknown
        );
    }

    #[test]
    fn ending_a_grant_revokes_all_its_families() {
        let store = SqliteTokenStore::new(Sqlite::in_memory());
        store
            .start_family(&family("f1", "g"), b"r1", 5, 50, None)
            .unwrap();
        store
            .start_family(&family("f2", "g"), b"r2", 5, 50, None)
            .unwrap();
        store
            .start_family(&family("f3", "other"), b"r3", 5, 50, None)
            .unwrap();
        let mut ended = store.revoke_families_of_grant("g", "withdrawn", 6).unwrap();
        ended.sort();
        assert_eq!(ended, ["f1", "f2"]);
        assert_eq!(store.family_active("f1").unwrap(), Some(false));
        assert_eq!(store.family_active("f3").unwrap(), Some(true));
        assert_eq!(store.family_active("none").unwrap(), None);
    }
}
