//! The `apps` table in PostgreSQL.

use std::sync::Arc;

use phr_store::postgres::PgError;
use postgres::Row;
use serde_json::Value;

use super::{
    AcceptedContent, App, AppKind, AppStatus, AppStore, ClientType, FhirVersions, Platform,
    RoundOutcome, TestRound,
};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[
    r#"
CREATE TABLE apps (
    app_id            TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,             -- wellbeing | professional
    client_type       TEXT NOT NULL,             -- public | confidential | private_key_jwt
    secret_digest     BYTEA,
    jwks              TEXT,
    jwks_uri          TEXT,
    redirect_uris     TEXT NOT NULL,             -- JSON array
    scope             TEXT NOT NULL,
    status            TEXT NOT NULL,             -- sandbox | accepted | suspended | revoked
    contact           TEXT,
    created_at        BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL
);
"#,
    r#"
ALTER TABLE apps ADD COLUMN org TEXT;            -- the organisation of a professional app
"#,
    r#"
ALTER TABLE apps ADD COLUMN certificate_oid TEXT; -- Subject serialNumber of its client certificate
"#,
    r#"
ALTER TABLE apps ADD COLUMN supplier TEXT;
ALTER TABLE apps ADD COLUMN platform TEXT;        -- web | ios | android | server
CREATE TABLE app_contents (
    app_id      TEXT NOT NULL,
    content     TEXT NOT NULL,                    -- catalogue code, e.g. blood-pressure
    can_read    BOOLEAN NOT NULL,
    can_write   BOOLEAN NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, content)
);
CREATE TABLE app_rounds (
    app_id  TEXT NOT NULL,
    content TEXT NOT NULL,
    round   BIGINT NOT NULL,                      -- 1..3 per content
    at      BIGINT NOT NULL,
    outcome TEXT NOT NULL,                        -- pass | fail
    note    TEXT,
    PRIMARY KEY (app_id, content, round)
);
"#,
    r#"
ALTER TABLE apps ADD COLUMN developer TEXT;       -- who registered it in the developer console
"#,
    r#"
-- The FHIR versions an application uses; applications registered before STU3 keep both.
ALTER TABLE apps ADD COLUMN fhir_versions TEXT NOT NULL DEFAULT 'r4 stu3';
"#,
];

pub(crate) struct PostgresAppStore {
    pg: Arc<Postgres>,
}

impl PostgresAppStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresAppStore {
        PostgresAppStore { pg }
    }
}

const COLUMNS: &str = "app_id, name, kind, client_type, redirect_uris, scope, status, contact, jwks, jwks_uri, created_at, status_changed_at, org, certificate_oid, supplier, platform, developer, fhir_versions";

fn app_from_row(row: &Row) -> Result<App, PgError> {
    let text = |i: usize| get::<String>(row, i);
    let bad = |what: &str| PgError::Corrupt(format!("unknown {what} in apps"));
    let redirect_uris: Vec<String> =
        serde_json::from_str(&text(4)?).map_err(|_| bad("redirect list"))?;
    let jwks: Option<String> = get(row, 8)?;
    Ok(App {
        app_id: text(0)?,
        name: text(1)?,
        kind: AppKind::parse(&text(2)?).ok_or_else(|| bad("kind"))?,
        client_type: ClientType::parse(&text(3)?).ok_or_else(|| bad("client type"))?,
        redirect_uris,
        scope: text(5)?,
        status: AppStatus::parse(&text(6)?).ok_or_else(|| bad("status"))?,
        contact: get(row, 7)?,
        jwks: jwks.and_then(|j| serde_json::from_str(&j).ok()),
        jwks_uri: get(row, 9)?,
        created_at: get(row, 10)?,
        status_changed_at: get(row, 11)?,
        org: get(row, 12)?,
        certificate_oid: get(row, 13)?,
        supplier: get(row, 14)?,
        platform: get::<Option<String>>(row, 15)?
            .map(|p| Platform::parse(&p).ok_or_else(|| bad("platform")))
            .transpose()?,
        developer: get(row, 16)?,
        fhir_versions: FhirVersions::parse(&get::<String>(row, 17)?)
            .ok_or_else(|| bad("fhir_versions"))?,
    })
}

fn content_from_row(row: &Row) -> Result<(String, AcceptedContent), PgError> {
    Ok((
        get(row, 0)?,
        AcceptedContent {
            content: get(row, 1)?,
            read: get(row, 2)?,
            write: get(row, 3)?,
            accepted_at: get(row, 4)?,
        },
    ))
}

fn round_from_row(row: &Row) -> Result<TestRound, PgError> {
    let outcome: String = get(row, 3)?;
    let round: i64 = get(row, 1)?;
    Ok(TestRound {
        content: get(row, 0)?,
        round: u32::try_from(round)
            .map_err(|_| PgError::Corrupt("round number out of range in app_rounds".into()))?,
        at: get(row, 2)?,
        outcome: RoundOutcome::parse(&outcome)
            .ok_or_else(|| PgError::Corrupt("unknown outcome in app_rounds".into()))?,
        note: get(row, 4)?,
    })
}

fn redirect_list(app: &App) -> String {
    serde_json::to_string(&app.redirect_uris).unwrap_or_else(|_| "[]".into())
}

impl AppStore for PostgresAppStore {
    fn insert(&self, app: &App, secret_digest: Option<&[u8]>) -> Result<bool> {
        let jwks = app.jwks.as_ref().map(Value::to_string);
        let redirects = redirect_list(app);
        self.pg.write(|conn| {
            let inserted = conn.exec(
                &format!(
                    "INSERT INTO apps ({COLUMNS}, secret_digest)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                     ON CONFLICT (app_id) DO NOTHING"
                ),
                &[
                    &app.app_id,
                    &app.name,
                    &app.kind.code(),
                    &app.client_type.code(),
                    &redirects,
                    &app.scope,
                    &app.status.code(),
                    &app.contact,
                    &jwks,
                    &app.jwks_uri,
                    &app.created_at,
                    &app.status_changed_at,
                    &app.org,
                    &app.certificate_oid,
                    &app.supplier,
                    &app.platform.map(Platform::code),
                    &app.developer,
                    &app.fhir_versions.code(),
                    &secret_digest,
                ],
            )?;
            Ok(inserted == 1)
        })
    }

    fn get(&self, app_id: &str) -> Result<Option<App>> {
        self.pg.read(|conn| {
            conn.row(
                &format!("SELECT {COLUMNS} FROM apps WHERE app_id = $1"),
                &[&app_id],
            )?
            .map(|r| app_from_row(&r))
            .transpose()
        })
    }

    fn list(&self) -> Result<Vec<App>> {
        self.pg.read(|conn| {
            conn.rows(
                &format!("SELECT {COLUMNS} FROM apps ORDER BY created_at, app_id"),
                &[],
            )?
            .iter()
            .map(app_from_row)
            .collect()
        })
    }

    fn set_status(&self, app_id: &str, status: AppStatus, at: i64) -> Result<bool> {
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET status = $1, status_changed_at = $2 WHERE app_id = $3",
                &[&status.code(), &at, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn secret_digest(&self, app_id: &str) -> Result<Option<Vec<u8>>> {
        self.pg.read(|conn| {
            let row = conn.row(
                "SELECT secret_digest FROM apps WHERE app_id = $1",
                &[&app_id],
            )?;
            Ok(row
                .map(|r| get::<Option<Vec<u8>>>(&r, 0))
                .transpose()?
                .flatten())
        })
    }

    fn upsert_first_party(&self, app: &App) -> Result<()> {
        let redirects = redirect_list(app);
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO apps (app_id, name, kind, client_type, redirect_uris, scope, status, created_at, status_changed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (app_id) DO UPDATE SET name = excluded.name, client_type = excluded.client_type,
                     redirect_uris = excluded.redirect_uris, scope = excluded.scope",
                &[
                    &app.app_id,
                    &app.name,
                    &app.kind.code(),
                    &app.client_type.code(),
                    &redirects,
                    &app.scope,
                    &app.status.code(),
                    &app.created_at,
                ],
            )?;
            Ok(())
        })
    }

    fn set_listing(
        &self,
        app_id: &str,
        supplier: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<bool> {
        let platform = platform.map(Platform::code);
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET supplier = $1, platform = $2 WHERE app_id = $3",
                &[&supplier, &platform, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_redirect_uris(&self, app_id: &str, redirect_uris: &[String]) -> Result<bool> {
        let list = serde_json::to_string(redirect_uris).unwrap_or_else(|_| "[]".into());
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET redirect_uris = $1 WHERE app_id = $2",
                &[&list, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_scope(&self, app_id: &str, scope: &str) -> Result<bool> {
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET scope = $1 WHERE app_id = $2",
                &[&scope, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_keys(&self, app_id: &str, jwks: Option<&Value>, jwks_uri: Option<&str>) -> Result<bool> {
        let jwks = jwks.map(Value::to_string);
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET jwks = $1, jwks_uri = $2 WHERE app_id = $3",
                &[&jwks, &jwks_uri, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_secret_digest(&self, app_id: &str, digest: &[u8]) -> Result<bool> {
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE apps SET secret_digest = $1 WHERE app_id = $2",
                &[&digest, &app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn contents(&self, app_id: &str) -> Result<Vec<AcceptedContent>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT app_id, content, can_read, can_write, accepted_at FROM app_contents
                 WHERE app_id = $1 ORDER BY content",
                &[&app_id],
            )?
            .iter()
            .map(|r| content_from_row(r).map(|(_, c)| c))
            .collect()
        })
    }

    fn all_contents(&self) -> Result<Vec<(String, AcceptedContent)>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT app_id, content, can_read, can_write, accepted_at FROM app_contents
                 ORDER BY app_id, content",
                &[],
            )?
            .iter()
            .map(content_from_row)
            .collect()
        })
    }

    fn set_content(&self, app_id: &str, content: &AcceptedContent) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO app_contents (app_id, content, can_read, can_write, accepted_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (app_id, content) DO UPDATE
                 SET can_read = excluded.can_read, can_write = excluded.can_write",
                &[
                    &app_id,
                    &content.content,
                    &content.read,
                    &content.write,
                    &content.accepted_at,
                ],
            )?;
            Ok(())
        })
    }

    fn rounds(&self, app_id: &str) -> Result<Vec<TestRound>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT content, round, at, outcome, note FROM app_rounds
                 WHERE app_id = $1 ORDER BY content, round",
                &[&app_id],
            )?
            .iter()
            .map(round_from_row)
            .collect()
        })
    }

    fn insert_round(&self, app_id: &str, round: &TestRound) -> Result<bool> {
        let number = i64::from(round.round);
        self.pg.write(|conn| {
            let inserted = conn.exec(
                "INSERT INTO app_rounds (app_id, content, round, at, outcome, note)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (app_id, content, round) DO NOTHING",
                &[
                    &app_id,
                    &round.content,
                    &number,
                    &round.at,
                    &round.outcome.code(),
                    &round.note,
                ],
            )?;
            Ok(inserted == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_testing_and_the_public_list_on_postgres() {
        crate::apps::tests::joint_testing_and_listing(Arc::new(PostgresAppStore::new(
            crate::postgres::tests::database("auth_apps"),
        )));
    }

    #[test]
    fn developer_changes_on_postgres() {
        crate::apps::tests::developer_owned_apps_change_redirects_and_secret(Arc::new(
            PostgresAppStore::new(crate::postgres::tests::database("auth_apps_dev")),
        ));
        crate::apps::tests::developer_owned_apps_change_scope_and_keys(Arc::new(
            PostgresAppStore::new(crate::postgres::tests::database("auth_apps_keys")),
        ));
    }
}
