//! `job_runs` and `node_settings` in PostgreSQL.

use std::sync::Arc;

use super::ClusterStore;
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
-- One row per claimed occurrence of a scheduled job: the node whose insert succeeded runs it.
CREATE TABLE job_runs (
    job        TEXT NOT NULL,
    slot       BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (job, slot)
);
CREATE INDEX job_runs_by_time ON job_runs (claimed_at);

CREATE TABLE node_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#];

pub(crate) struct PostgresClusterStore {
    pg: Arc<Postgres>,
}

impl PostgresClusterStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresClusterStore {
        PostgresClusterStore { pg }
    }
}

impl ClusterStore for PostgresClusterStore {
    fn claim(&self, job: &str, slot: i64, now: i64) -> Result<bool> {
        self.pg.write(|conn| {
            let inserted = conn.exec(
                "INSERT INTO job_runs (job, slot, claimed_at) VALUES ($1, $2, $3)
                 ON CONFLICT (job, slot) DO NOTHING",
                &[&job, &slot, &now],
            )?;
            Ok(inserted == 1)
        })
    }

    fn forget_claims_before(&self, before: i64) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec("DELETE FROM job_runs WHERE claimed_at < $1", &[&before])?;
            Ok(())
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.pg.read(|conn| {
            conn.row("SELECT value FROM node_settings WHERE key = $1", &[&key])?
                .map(|r| get(&r, 0))
                .transpose()
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO node_settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO node_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )?;
            let row = conn.row("SELECT value FROM node_settings WHERE key = $1", &[&key])?;
            row.map(|r| get(&r, 0)).transpose().map(Option::unwrap_or_default)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_occurrence_of_a_job_is_claimed_once_across_nodes() {
        let pg = crate::postgres::tests::database("cluster_claims");
        let a = PostgresClusterStore::new(pg.clone());
        let b = PostgresClusterStore::new(pg);
        assert!(a.claim("rotate", 10, 100).unwrap());
        assert!(!b.claim("rotate", 10, 100).unwrap());
        assert!(b.claim("rotate", 11, 160).unwrap());
        assert!(b.claim("retention", 10, 100).unwrap());
        a.forget_claims_before(150).unwrap();
        assert!(a.claim("rotate", 10, 200).unwrap(), "forgotten");
        assert_eq!(a.setting_or_insert("k", "x").unwrap(), "x");
        assert_eq!(b.setting_or_insert("k", "y").unwrap(), "x");
        b.set_setting("public_url", "https://phr.example.fi")
            .unwrap();
        assert_eq!(
            a.setting("public_url").unwrap().as_deref(),
            Some("https://phr.example.fi")
        );
    }
}
