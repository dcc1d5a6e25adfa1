//! The shared behaviour suite on the SQLite engine, and SQLite-only tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use phr_search::{Prefix, SortKey, TotalMode};

use super::*;
use crate::suite::{
    DAY, Engine, GLUCOSE, JAN1, behaviour_tests, clause, code, date, query, timeline,
};

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "phr-store-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("phr.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Engine for TempDir {
    type Store = SqliteStore;

    fn new() -> Self {
        TempDir::new()
    }

    fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.db()).expect("opens")
    }

    fn close(store: &SqliteStore) {
        store.close();
    }

    fn prune(store: &SqliteStore, older_than: Duration) -> u64 {
        store.prune(older_than).expect("prunes")
    }

    fn schema_is_current(&self) -> bool {
        let version: i64 = self
            .conn()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .expect("has a schema version");
        version as usize == schema::schema_version()
    }

    fn forget_inline_values_below(&self, value: f64) -> i64 {
        self.conn()
            .execute(
                "UPDATE idx_code_date SET usys = NULL, ucode = NULL, num = NULL WHERE num < ?1",
                [value],
            )
            .expect("updates") as i64
    }

    fn index_rows_of(&self, param: &str) -> i64 {
        let conn = self.conn();
        crate::sqlite::rows::Kind::ALL
            .iter()
            .map(|kind| {
                let table = kind.table();
                conn.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE param = (SELECT param FROM params WHERE name = ?1)"),
                    [param],
                    |r| r.get::<_, i64>(0),
                )
                .expect("counts")
            })
            .sum()
    }

    fn stale_index_rows(&self) -> i64 {
        self.conn()
            .query_row(
                "SELECT count(*) FROM idx_token WHERE seq_to <> ?1",
                [schema::CURRENT],
                |r| r.get(0),
            )
            .expect("counts")
    }

    fn versions_of(&self, ids: &[&str]) -> Vec<(i64, i64)> {
        let conn = self.conn();
        let mut out = Vec::new();
        for id in ids {
            let mut stmt = conn
                .prepare(
                    "SELECT v.seq FROM versions v JOIN resources r ON r.rid = v.rid WHERE r.id = ?1",
                )
                .expect("sql");
            out.extend(
                stmt.query_map([id], |r| r.get::<_, i64>(0))
                    .expect("query")
                    .map(|r| (0, r.expect("seq"))),
            );
        }
        out
    }

    fn compartment_marker(&self, patient: &str) -> i64 {
        self.conn()
            .query_row("SELECT pid FROM patients WHERE id = ?1", [patient], |r| {
                r.get(0)
            })
            .expect("pid")
    }

    fn compartment_exists(&self, patient: &str) -> bool {
        let n: i64 = self
            .conn()
            .query_row(
                "SELECT count(*) FROM patients WHERE id = ?1",
                [patient],
                |r| r.get(0),
            )
            .expect("counts");
        n > 0
    }

    fn rows_mentioning(&self, versions: &[(i64, i64)], marker: Option<i64>) -> Vec<String> {
        let conn = self.conn();
        let mut found = Vec::new();
        for table in schema::DATA_TABLES {
            let cols: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .expect("columns")
                .query_map([], |r| r.get(0))
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("columns");
            for (_, seq) in versions {
                for col in ["seq", "seq_to"] {
                    if cols.iter().any(|c| c == col) {
                        let n: i64 = conn
                            .query_row(
                                &format!("SELECT count(*) FROM {table} WHERE {col} = ?1"),
                                [seq],
                                |r| r.get(0),
                            )
                            .expect("counts");
                        if n > 0 {
                            found.push(format!("{table}.{col}={seq}"));
                        }
                    }
                }
            }
            if let Some(pid) = marker
                && cols.iter().any(|c| c == "pid")
            {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM {table} WHERE pid = ?1"),
                        [pid],
                        |r| r.get(0),
                    )
                    .expect("counts");
                if n > 0 {
                    found.push(format!("{table}.pid={pid}"));
                }
            }
        }
        found
    }
}

impl TempDir {
    fn conn(&self) -> Connection {
        Connection::open(self.db()).expect("opens")
    }
}

behaviour_tests!(TempDir);

/// A read now needs an idle reader connection: none before the first read, one after it,
/// none while every connection is lent out.
#[test]
fn a_read_now_answers_only_with_an_idle_connection() {
    let dir = TempDir::new();
    let config = StoreConfig {
        readers: 1,
        ..StoreConfig::default()
    };
    let store = SqliteStore::open_with(&dir.db(), config).expect("opens");
    crate::suite::create(&store, crate::suite::patient("p1", "Mäkinen"));
    assert!(
        store.read_now("Patient", "p1").is_none(),
        "no connection yet"
    );
    let read = store.read("Patient", "p1").expect("reads");
    assert!(read.is_some());
    let now = store
        .read_now("Patient", "p1")
        .expect("the connection is idle");
    assert_eq!(now.expect("reads"), read);
    let lent = store.readers.lease_idle().expect("the idle connection");
    assert!(
        store.read_now("Patient", "p1").is_none(),
        "the only connection is lent out"
    );
    lent.give_back();
    assert!(store.read_now("Patient", "p1").is_some());
}

#[test]
fn portal_timeline_is_one_ordered_range_scan_of_the_pair_index() {
    let dir = TempDir::new();
    let store = dir.open();
    timeline(&store);
    for descending in [false, true] {
        let mut q = query(
            "p1",
            vec![
                clause("code", vec![code(GLUCOSE)]),
                clause("date", vec![date(Prefix::Ge, JAN1, JAN1 + DAY - 1)]),
                clause(
                    "date",
                    vec![date(Prefix::Lt, JAN1 + 2 * DAY, JAN1 + 3 * DAY - 1)],
                ),
            ],
        );
        q.sort = vec![SortKey {
            param: "date".into(),
            descending,
        }];
        q.total = TotalMode::Accurate;
        search::plans::take();
        store.search(&q, None).expect("searches");
        let plans = search::plans::take();
        assert_eq!(plans.len(), 2, "{plans:?}");
        eprintln!("{plans:?}");
        for plan in &plans {
            assert!(
                plan.contains("tparam=? AND dparam=? AND code=? AND sys=?"),
                "the pair index: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
            assert!(!plan.contains("SCAN"), "no full scan: {plan}");
        }
    }
}

/// A walk over the sort parameter's index tests each version on its own rows while the
/// matches are dense, and collects the matches first (a subquery) only once they prove
/// sparse; either way the page holds the matches in sort order.
#[test]
fn a_sorted_walk_collects_the_matches_only_when_they_are_sparse() {
    const WEIGHT: &str = crate::suite::WEIGHT;
    let dir = TempDir::new();
    let store = dir.open();
    // 3,000 readings an hour apart, every tenth a weight; a value-quantity sort orders them
    // by value, which runs against the order of time.
    let ops = (0..3000i64)
        .map(|i| WriteOp::Create {
            new: crate::suite::observation(
                &format!("o{i:04}"),
                "p1",
                if i % 10 == 0 { WEIGHT } else { GLUCOSE },
                JAN1 + i * 3_600_000_000,
                (3000 - i) as f64,
            ),
            if_none_exist: None,
        })
        .collect();
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    let from = JAN1 + 1000 * 3_600_000_000;
    // Counted or not, the walk tells dense matches from sparse ones.
    let cases = [TotalMode::None, TotalMode::Estimate]
        .into_iter()
        .flat_map(|total| [(GLUCOSE, true, total), (WEIGHT, false, total)]);
    for (code_value, dense, total) in cases {
        let mut q = query(
            "p1",
            vec![
                clause("code", vec![code(code_value)]),
                clause("date", vec![date(Prefix::Ge, from, from)]),
            ],
        );
        q.sort = vec![SortKey {
            param: "value-quantity".into(),
            descending: false,
        }];
        q.count = 10;
        q.total = total;
        search::plans::take();
        let page = store.search(&q, None).expect("searches");
        let plans = search::plans::take();
        // The smallest values are the latest readings.
        let expected: Vec<String> = (1000..3000i64)
            .rev()
            .filter(|i| (i % 10 == 0) != dense)
            .take(10)
            .map(|i| format!("o{i:04}"))
            .collect();
        assert_eq!(
            crate::suite::ids(&page),
            expected,
            "{code_value}, {total:?}"
        );
        let collected = plans.iter().filter(|p| p.contains("SUBQUERY")).count();
        if dense {
            assert_eq!(
                collected, 0,
                "dense matches are tested one by one ({total:?}): {plans:?}"
            );
        } else {
            assert!(
                collected > 0,
                "sparse matches are collected ({total:?}): {plans:?}"
            );
        }
    }
}
