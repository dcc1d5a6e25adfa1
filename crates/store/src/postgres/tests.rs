//! The shared behaviour suite on PostgreSQL, and PostgreSQL-only tests: several stores
//! ("nodes") on one database, crashes of the server, the schema rules Citus needs.

use std::time::Duration;

use super::*;
use crate::suite::{Engine, behaviour_tests};

/// A fresh database on the test cluster.
pub(crate) struct Db {
    pub(crate) url: String,
}

pub(crate) fn config(url: &str) -> PostgresConfig {
    PostgresConfig {
        // Fewer partitions than the default keep creating a schema per test quick; the
        // planner and writer do not depend on the count.
        layout: Layout::Partitioned { partitions: 4 },
        ..PostgresConfig::new(url)
    }
}

impl Db {
    fn client(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.url, ::postgres::NoTls).expect("connects")
    }

    fn count(&self, sql: &str, params: &[Param<'_>]) -> i64 {
        self.client()
            .query_one(sql, params)
            .expect("counts")
            .get(0)
    }
}

impl Engine for Db {
    type Store = PostgresStore;

    fn new() -> Db {
        Db {
            url: phr_test_postgres::database("store"),
        }
    }

    fn open(&self) -> PostgresStore {
        PostgresStore::open_with(config(&self.url)).expect("opens")
    }

    fn close(store: &PostgresStore) {
        store.close();
    }

    fn prune(store: &PostgresStore, older_than: Duration) -> u64 {
        store.prune(older_than).expect("prunes")
    }

    fn schema_is_current(&self) -> bool {
        self.count("SELECT max(version) FROM schema_migrations", &[]) == schema::schema_version()
    }

    fn stale_index_rows(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM idx_token WHERE seq_to <> $1",
            &[&schema::CURRENT],
        )
    }

    fn versions_of(&self, ids: &[&str]) -> Vec<(i64, i64)> {
        let mut client = self.client();
        let mut out = Vec::new();
        for id in ids {
            for row in client
                .query("SELECT pid, seq FROM versions WHERE id = $1", &[id])
                .expect("query")
            {
                out.push((row.get(0), row.get(1)));
            }
        }
        out
    }

    fn compartment_marker(&self, patient: &str) -> i64 {
        compartment_key(Some(patient))
    }

    fn compartment_exists(&self, patient: &str) -> bool {
        self.count(
            "SELECT count(*) FROM compartments WHERE patient = $1",
            &[&patient],
        ) > 0
    }

    fn rows_mentioning(&self, versions: &[(i64, i64)], marker: Option<i64>) -> Vec<String> {
        let mut client = self.client();
        let mut found = Vec::new();
        for table in schema::PATIENT_TABLES {
            let cols: Vec<String> = client
                .query(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1",
                    &[table],
                )
                .expect("columns")
                .iter()
                .map(|r| r.get(0))
                .collect();
            for (pid, seq) in versions {
                for col in ["seq", "seq_to"] {
                    if cols.iter().any(|c| c == col) {
                        let n: i64 = client
                            .query_one(
                                &format!(
                                    "SELECT count(*) FROM {table} WHERE pid = $1 AND {col} = $2"
                                ),
                                &[pid, seq],
                            )
                            .expect("counts")
                            .get(0);
                        if n > 0 {
                            found.push(format!("{table}.{col}={seq}"));
                        }
                    }
                }
            }
            if let Some(pid) = marker {
                let n: i64 = client
                    .query_one(
                        &format!("SELECT count(*) FROM {table} WHERE pid = $1"),
                        &[&pid],
                    )
                    .expect("counts")
                    .get(0);
                if n > 0 {
                    found.push(format!("{table}.pid={pid}"));
                }
            }
        }
        found
    }
}

behaviour_tests!(Db);
