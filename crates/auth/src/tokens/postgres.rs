//! The token tables in PostgreSQL: `auth_codes`, `token_families`, `refresh_tokens`,
//! `revoked_access_tokens`, `client_assertions`. Every one-time step (a code's redemption, a
//! refresh token's rotation, a client assertion's `jti`) is decided by one conditional
//! statement or under a row lock, so two nodes can never both accept the same secret.

use std::sync::Arc;

use phr_store::postgres::PgError;
use phr_store::postgres::pool::Conn;

use super::{NewFamily, RefreshToken, StoredRedemption, TokenStore};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, count, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE auth_codes (
    code_digest BYTEA PRIMARY KEY,
    data        TEXT NOT NULL,               -- JSON CodeData
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    family_id   TEXT
);
CREATE INDEX auth_codes_by_expiry ON auth_codes (expires_at);

CREATE TABLE token_families (
    family_id      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    scope          TEXT NOT NULL,
    status         TEXT NOT NULL,            -- active | revoked
    revoked_reason TEXT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX families_by_grant ON token_families (grant_id);

CREATE TABLE refresh_tokens (
    token_digest BYTEA PRIMARY KEY,
    family_id    TEXT NOT NULL,
    generation   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX refresh_by_family ON refresh_tokens (family_id);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE client_assertions (
    app_id     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, jti)
);
"#];

pub(crate) struct PostgresTokenStore {
    pg: Arc<Postgres>,
}

impl PostgresTokenStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresTokenStore {
        PostgresTokenStore { pg }
    }
}

/// The `family_id` of a code that was replayed before it started a family.
const REPLAYED_BEFORE_FAMILY: &str = "";

fn revoke(conn: &mut Conn, family_id: &str, reason: &str, now: i64) -> Result<bool, PgError> {
    let changed = conn.exec(
        "UPDATE token_families SET status = 'revoked', revoked_reason = $1, revoked_at = $2
         WHERE family_id = $3 AND status = 'active'",
        &[&reason, &now, &family_id],
    )?;
    Ok(changed == 1)
}

fn insert_refresh(
    conn: &mut Conn,
    digest: &[u8],
    family_id: &str,
    generation: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), PgError> {
    conn.exec(
        "INSERT INTO refresh_tokens (token_digest, family_id, generation, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&digest, &family_id, &generation, &now, &expires_at],
    )?;
    Ok(())
}

impl TokenStore for PostgresTokenStore {
    fn insert_code(&self, digest: &[u8], data: &str, expires_at: i64) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO auth_codes (code_digest, data, expires_at) VALUES ($1, $2, $3)",
                &[&digest, &data, &expires_at],
            )?;
            Ok(())
        })
    }

    fn redeem_code(&self, digest: &[u8], now: i64) -> Result<StoredRedemption> {
        self.pg.transaction(|conn| {
            let row = conn.row(
                "SELECT data, expires_at, used_at, family_id FROM auth_codes
                 WHERE code_digest = $1 FOR UPDATE",
                &[&digest],
            )?;
            let Some(row) = row else {
                return Ok(StoredRedemption::Unknown);
            };
            let (data, expires_at, used_at, family): (String, i64, Option<i64>, Option<String>) =
                (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, get(&row, 3)?);
            if used_at.is_none() {
                conn.exec(
                    "UPDATE auth_codes SET used_at = $1 WHERE code_digest = $2",
                    &[&now, &digest],
                )?;
                return Ok(StoredRedemption::Fresh { data, expires_at });
            }
            let family_id = match family {
                Some(id) if id != REPLAYED_BEFORE_FAMILY => {
                    revoke(conn, &id, "code replay", now)?;
                    Some(id)
                }
                Some(_) => None,
                None => {
                    conn.exec(
                        "UPDATE auth_codes SET family_id = $1 WHERE code_digest = $2",
                        &[&REPLAYED_BEFORE_FAMILY, &digest],
                    )?;
                    None
                }
            };
            Ok(StoredRedemption::Replayed { family_id })
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
        self.pg.transaction(|conn| {
            if let Some(code) = code {
                let claimed = conn.exec(
                    "UPDATE auth_codes SET family_id = $1 WHERE code_digest = $2 AND family_id IS NULL",
                    &[&family.family_id, &code],
                )?;
                if claimed == 0 {
                    return Ok(false);
                }
            }
            conn.exec(
                "INSERT INTO token_families (family_id, grant_id, app_id, patient_id, scope, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'active', $6)",
                &[
                    &family.family_id,
                    &family.grant_id,
                    &family.app_id,
                    &family.patient_id,
                    &family.scope,
                    &now,
                ],
            )?;
            insert_refresh(conn, token_digest, &family.family_id, 1, now, expires_at)?;
            Ok(true)
        })
    }

    fn refresh_token(&self, digest: &[u8]) -> Result<Option<RefreshToken>> {
        self.pg.read(|conn| {
            conn.row(
                "SELECT r.family_id, r.generation, r.created_at, r.expires_at, r.used_at, f.status,
                        f.app_id, f.grant_id, f.patient_id, f.scope
                 FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id
                 WHERE r.token_digest = $1",
                &[&digest],
            )?
            .map(|r| {
                Ok(RefreshToken {
                    family_id: get(&r, 0)?,
                    generation: get(&r, 1)?,
                    created_at: get(&r, 2)?,
                    expires_at: get(&r, 3)?,
                    used: get::<Option<i64>>(&r, 4)?.is_some(),
                    family_active: get::<String>(&r, 5)? == "active",
                    app_id: get(&r, 6)?,
                    grant_id: get(&r, 7)?,
                    patient_id: get(&r, 8)?,
                    scope: get(&r, 9)?,
                })
            })
            .transpose()
        })
    }

    fn rotate_refresh(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        self.pg.transaction(|conn| {
            let used = conn.row(
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_digest = $2 AND used_at IS NULL
                 RETURNING family_id, generation",
                &[&now, &old_digest],
            )?;
            let Some(used) = used else {
                return Ok(false);
            };
            let (family_id, generation): (String, i64) = (get(&used, 0)?, get(&used, 1)?);
            insert_refresh(
                conn,
                new_digest,
                &family_id,
                generation + 1,
                now,
                expires_at,
            )?;
            Ok(true)
        })
    }

    fn family_active(&self, family_id: &str) -> Result<Option<bool>> {
        self.pg.read(|conn| {
            conn.row(
                "SELECT status FROM token_families WHERE family_id = $1",
                &[&family_id],
            )?
            .map(|r| Ok(get::<String>(&r, 0)? == "active"))
            .transpose()
        })
    }

    fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> Result<bool> {
        self.pg.write(|conn| revoke(conn, family_id, reason, now))
    }

    fn revoke_families_of_grant(
        &self,
        grant_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>> {
        self.pg.transaction(|conn| {
            conn.exec(
                "UPDATE token_families SET status = 'revoked', revoked_reason = $1, revoked_at = $2
                 WHERE grant_id = $3 AND status = 'active'",
                &[&reason, &now, &grant_id],
            )?;
            conn.rows(
                "SELECT family_id FROM token_families WHERE grant_id = $1",
                &[&grant_id],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
        })
    }

    fn count_refreshable(&self, now: i64) -> Result<u64> {
        self.pg.read(|conn| {
            let row = conn.row(
                "SELECT count(*) FROM token_families f
                 WHERE f.status = 'active' AND EXISTS (
                     SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.family_id
                       AND r.used_at IS NULL AND r.expires_at > $1)",
                &[&now],
            )?;
            Ok(count(row.map(|r| get(&r, 0)).transpose()?.unwrap_or(0)))
        })
    }

    fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&jti, &expires_at],
            )?;
            Ok(())
        })
    }

    fn revoked_access_tokens(&self, now: i64) -> Result<Vec<(String, i64)>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at > $1",
                &[&now],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
        })
    }

    fn use_client_assertion(&self, app_id: &str, jti: &str, expires_at: i64) -> Result<bool> {
        self.pg.write(|conn| {
            let fresh = conn.exec(
                "INSERT INTO client_assertions (app_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&app_id, &jti, &expires_at],
            )?;
            Ok(fresh == 1)
        })
    }

    fn delete_expired(&self, now: i64, codes_before: i64) -> Result<()> {
        self.pg.transaction(|conn| {
            conn.exec(
                "DELETE FROM auth_codes WHERE expires_at < $1",
                &[&codes_before],
            )?;
            conn.exec(
                "DELETE FROM client_assertions WHERE expires_at < $1",
                &[&now],
            )?;
            conn.exec(
                "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
                &[&now],
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
    fn a_code_is_fresh_once_and_a_replay_revokes_its_family() {
        let store = PostgresTokenStore::new(crate::postgres::tests::database("codes"));
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
        // A code replayed before it started a family never starts one.
        store.insert_code(b"d", "{}", 100).unwrap();
        store.redeem_code(b"d", 5).unwrap();
        assert_eq!(
            store.redeem_code(b"d", 6).unwrap(),
            StoredRedemption::Replayed { family_id: None }
        );
        assert!(
            !store
                .start_family(&family("f2", "g"), b"r2", 6, 50, Some(b"d"))
                .unwrap()
        );
        assert_eq!(
            store.redeem_code(b"x", 6).unwrap(),
            StoredRedemption::Unknown
        );
    }

    #[test]
    fn a_refresh_token_rotates_once_even_when_two_nodes_race() {
        let pg = crate::postgres::tests::database("refresh_race");
        let a = Arc::new(PostgresTokenStore::new(pg.clone()));
        let b = Arc::new(PostgresTokenStore::new(pg));
        a.start_family(&family("f", "g"), b"r1", 5, 50, None)
            .unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                std::thread::spawn(move || store.rotate_refresh(b"r1", &[b'n', i], 6, 60).unwrap())
            })
            .collect();
        let won = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(won, 1);
        assert_eq!(a.count_refreshable(59).unwrap(), 1);
        let token = b.refresh_token(b"r1").unwrap().unwrap();
        assert!(token.used && token.family_active);
        let mut ended = a.revoke_families_of_grant("g", "withdrawn", 7).unwrap();
        ended.sort();
        assert_eq!(ended, ["f"]);
        assert!(!a.revoke_family("f", "again", 8).unwrap());
    }

    #[test]
    fn revoked_ids_and_assertions_expire() {
        let store = PostgresTokenStore::new(crate::postgres::tests::database("revoked"));
        store.revoke_access_token("j1", 10).unwrap();
        store.revoke_access_token("j2", 20).unwrap();
        store.revoke_access_token("j2", 20).unwrap();
        assert_eq!(
            store.revoked_access_tokens(10).unwrap(),
            vec![("j2".to_string(), 20)]
        );
        assert!(store.use_client_assertion("a", "x", 10).unwrap());
        assert!(!store.use_client_assertion("a", "x", 10).unwrap());
        store.delete_expired(11, 11).unwrap();
        assert!(
            store.use_client_assertion("a", "x", 10).unwrap(),
            "forgotten"
        );
    }
}
