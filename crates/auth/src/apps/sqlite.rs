//! The `apps` table in SQLite.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use super::{
    AcceptedContent, App, AppKind, AppStatus, AppStore, ClientType, FhirVersions, Platform,
    RoundOutcome, TestRound,
};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteAppStore {
    db: Arc<Sqlite>,
}

impl SqliteAppStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteAppStore {
        SqliteAppStore { db }
    }
}

const COLUMNS: &str = "app_id, name, kind, client_type, redirect_uris, scope, status, contact, jwks, jwks_uri, created_at, status_changed_at, org, certificate_oid, supplier, platform, developer, fhir_versions";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    let text = |i: usize| row.get::<_, String>(i);
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    let redirect_uris: Vec<String> =
        serde_json::from_str(&text(4)?).map_err(|_| bad(4, "redirect list"))?;
    let jwks: Option<String> = row.get(8)?;
    Ok(App {
        app_id: text(0)?,
        name: text(1)?,
        kind: AppKind::parse(&text(2)?).ok_or_else(|| bad(2, "kind"))?,
        client_type: ClientType::parse(&text(3)?).ok_or_else(|| bad(3, "client type"))?,
        redirect_uris,
        scope: text(5)?,
        status: AppStatus::parse(&text(6)?).ok_or_else(|| bad(6, "status"))?,
        contact: row.get(7)?,
        jwks: jwks.and_then(|j| serde_json::from_str(&j).ok()),
        jwks_uri: row.get(9)?,
        created_at: row.get(10)?,
        status_changed_at: row.get(11)?,
        org: row.get(12)?,
        certificate_oid: row.get(13)?,
        supplier: row.get(14)?,
        platform: row
            .get::<_, Option<String>>(15)?
            .map(|p| Platform::parse(&p).ok_or_else(|| bad(15, "platform")))
            .transpose()?,
        developer: row.get(16)?,
        fhir_versions: FhirVersions::parse(&row.get::<_, String>(17)?)
            .ok_or_else(|| bad(17, "fhir_versions"))?,
    })
}

fn content_from_row(row: &Row<'_>) -> rusqlite::Result<(String, AcceptedContent)> {
    Ok((
        row.get(0)?,
        AcceptedContent {
            content: row.get(1)?,
            read: row.get(2)?,
            write: row.get(3)?,
            accepted_at: row.get(4)?,
        },
    ))
}

fn round_from_row(row: &Row<'_>) -> rusqlite::Result<TestRound> {
    let outcome: String = row.get(3)?;
    Ok(TestRound {
        content: row.get(0)?,
        round: row.get(1)?,
        at: row.get(2)?,
        outcome: RoundOutcome::parse(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                "unknown outcome".into(),
            )
        })?,
        note: row.get(4)?,
    })
}

fn redirect_list(app: &App) -> String {
    serde_json::to_string(&app.redirect_uris).unwrap_or_else(|_| "[]".into())
}

impl AppStore for SqliteAppStore {
    fn insert(&self, app: &App, secret_digest: Option<&[u8]>) -> Result<bool> {
        self.db.run(|conn| {
            let inserted = conn.execute(
                &format!(
                    "INSERT INTO apps ({COLUMNS}, secret_digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
                     ON CONFLICT (app_id) DO NOTHING"
                ),
                params![
                    app.app_id,
                    app.name,
                    app.kind.code(),
                    app.client_type.code(),
                    redirect_list(app),
                    app.scope,
                    app.status.code(),
                    app.contact,
                    app.jwks.as_ref().map(Value::to_string),
                    app.jwks_uri,
                    app.created_at,
                    app.status_changed_at,
                    app.org,
                    app.certificate_oid,
                    app.supplier,
                    app.platform.map(Platform::code),
                    app.developer,
                    app.fhir_versions.code(),
                    secret_digest,
                ],
            )?;
            Ok(inserted == 1)
        })
    }

    fn get(&self, app_id: &str) -> Result<Option<App>> {
        self.db.run(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM apps WHERE app_id = ?1"),
                [app_id],
                app_from_row,
            )
            .optional()
        })
    }

    fn list(&self) -> Result<Vec<App>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM apps ORDER BY created_at, app_id"
            ))?;
            stmt.query_map([], app_from_row)?.collect()
        })
    }

    fn set_status(&self, app_id: &str, status: AppStatus, at: i64) -> Result<bool> {
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET status = ?1, status_changed_at = ?2 WHERE app_id = ?3",
                params![status.code(), at, app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn secret_digest(&self, app_id: &str) -> Result<Option<Vec<u8>>> {
        self.db.run(|conn| {
            let stored: Option<Option<Vec<u8>>> = conn
                .query_row(
                    "SELECT secret_digest FROM apps WHERE app_id = ?1",
                    [app_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(stored.flatten())
        })
    }

    fn upsert_first_party(&self, app: &App) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO apps (app_id, name, kind, client_type, redirect_uris, scope, status, created_at, status_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (app_id) DO UPDATE SET name = excluded.name, client_type = excluded.client_type,
                     redirect_uris = excluded.redirect_uris, scope = excluded.scope",
                params![
                    app.app_id,
                    app.name,
                    app.kind.code(),
                    app.client_type.code(),
                    redirect_list(app),
                    app.scope,
                    app.status.code(),
                    app.created_at,
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
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET supplier = ?1, platform = ?2 WHERE app_id = ?3",
                params![supplier, platform.map(Platform::code), app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_redirect_uris(&self, app_id: &str, redirect_uris: &[String]) -> Result<bool> {
        let list = serde_json::to_string(redirect_uris).unwrap_or_else(|_| "[]".into());
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET redirect_uris = ?1 WHERE app_id = ?2",
                params![list, app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_scope(&self, app_id: &str, scope: &str) -> Result<bool> {
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET scope = ?1 WHERE app_id = ?2",
                params![scope, app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_keys(&self, app_id: &str, jwks: Option<&Value>, jwks_uri: Option<&str>) -> Result<bool> {
        let jwks = jwks.map(Value::to_string);
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET jwks = ?1, jwks_uri = ?2 WHERE app_id = ?3",
                params![jwks, jwks_uri, app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn set_secret_digest(&self, app_id: &str, digest: &[u8]) -> Result<bool> {
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE apps SET secret_digest = ?1 WHERE app_id = ?2",
                params![digest, app_id],
            )?;
            Ok(changed == 1)
        })
    }

    fn contents(&self, app_id: &str) -> Result<Vec<AcceptedContent>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT app_id, content, can_read, can_write, accepted_at FROM app_contents
                 WHERE app_id = ?1 ORDER BY content",
            )?;
            stmt.query_map([app_id], |r| content_from_row(r).map(|(_, c)| c))?
                .collect()
        })
    }

    fn all_contents(&self) -> Result<Vec<(String, AcceptedContent)>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT app_id, content, can_read, can_write, accepted_at FROM app_contents
                 ORDER BY app_id, content",
            )?;
            stmt.query_map([], content_from_row)?.collect()
        })
    }

    fn set_content(&self, app_id: &str, content: &AcceptedContent) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO app_contents (app_id, content, can_read, can_write, accepted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (app_id, content) DO UPDATE
                 SET can_read = excluded.can_read, can_write = excluded.can_write",
                params![
                    app_id,
                    content.content,
                    content.read,
                    content.write,
                    content.accepted_at
                ],
            )?;
            Ok(())
        })
    }

    fn rounds(&self, app_id: &str) -> Result<Vec<TestRound>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT content, round, at, outcome, note FROM app_rounds
                 WHERE app_id = ?1 ORDER BY content, round",
            )?;
            stmt.query_map([app_id], round_from_row)?.collect()
        })
    }

    fn insert_round(&self, app_id: &str, round: &TestRound) -> Result<bool> {
        self.db.run(|conn| {
            let inserted = conn.execute(
                "INSERT INTO app_rounds (app_id, content, round, at, outcome, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (app_id, content, round) DO NOTHING",
                params![
                    app_id,
                    round.content,
                    round.round,
                    round.at,
                    round.outcome.code(),
                    round.note
                ],
            )?;
            Ok(inserted == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, created_at: i64) -> App {
        App {
            app_id: id.into(),
            name: "Steps".into(),
            kind: AppKind::Professional,
            client_type: ClientType::PrivateKeyJwt,
            redirect_uris: vec!["https://a.example/cb".into(), "fi.example:/cb".into()],
            scope: "system/Observation.rs".into(),
            status: AppStatus::Sandbox,
            contact: None,
            jwks: Some(serde_json::json!({"keys": [{"kty": "EC"}]})),
            jwks_uri: Some("https://a.example/jwks".into()),
            created_at,
            status_changed_at: created_at,
            org: Some("1.2.246.10.1".into()),
            certificate_oid: Some("1.2.246.10.99.1".into()),
            supplier: Some("Example Oy".into()),
            platform: Some(Platform::Android),
            developer: Some("dev@example.fi".into()),
            fhir_versions: FhirVersions::R4,
        }
    }

    #[test]
    fn rows_round_trip_every_field() {
        let store = SqliteAppStore::new(Sqlite::in_memory());
        let a = app("a", 5);
        assert!(store.insert(&a, Some(b"digest")).unwrap());
        assert_eq!(store.get("a").unwrap(), Some(a.clone()));
        assert_eq!(store.secret_digest("a").unwrap(), Some(b"digest".to_vec()));
        assert_eq!(store.get("b").unwrap(), None);
        assert!(!store.insert(&app("a", 6), None).unwrap(), "id taken");
        assert_eq!(store.get("a").unwrap(), Some(a));
    }

    #[test]
    fn list_is_oldest_first_and_status_changes_are_stored() {
        let store = SqliteAppStore::new(Sqlite::in_memory());
        store.insert(&app("late", 9), None).unwrap();
        store.insert(&app("early", 1), None).unwrap();
        let ids: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|a| a.app_id)
            .collect();
        assert_eq!(ids, ["early", "late"]);
        assert!(store.set_status("early", AppStatus::Revoked, 20).unwrap());
        assert!(!store.set_status("none", AppStatus::Revoked, 20).unwrap());
        let early = store.get("early").unwrap().unwrap();
        assert_eq!(
            (early.status, early.status_changed_at),
            (AppStatus::Revoked, 20)
        );
    }

    #[test]
    fn first_party_upsert_keeps_status_and_creation_time() {
        let store = SqliteAppStore::new(Sqlite::in_memory());
        let mut portal = app("portal", 1);
        portal.status = AppStatus::Accepted;
        store.upsert_first_party(&portal).unwrap();
        store.set_status("portal", AppStatus::Suspended, 2).unwrap();
        let mut again = app("portal", 3);
        again.name = "Portal 2".into();
        again.status = AppStatus::Accepted;
        store.upsert_first_party(&again).unwrap();
        let stored = store.get("portal").unwrap().unwrap();
        assert_eq!(stored.name, "Portal 2");
        assert_eq!(
            (stored.status, stored.created_at),
            (AppStatus::Suspended, 1)
        );
    }
}
