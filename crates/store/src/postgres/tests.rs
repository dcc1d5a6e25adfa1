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
        self.client().query_one(sql, params).expect("counts").get(0)
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

    fn forget_inline_values_below(&self, value: f64) -> i64 {
        self.client()
            .execute(
                "UPDATE idx_code_date SET usys = NULL, ucode = NULL, num = NULL WHERE num < $1",
                &[&value],
            )
            .expect("updates") as i64
    }

    fn index_rows_of(&self, param: &str) -> i64 {
        let id = crate::postgres::names::name_id(param);
        crate::sqlite::rows::Kind::ALL
            .iter()
            .map(|kind| {
                let table = kind.table();
                self.count(
                    &format!("SELECT count(*) FROM {table} WHERE param = $1"),
                    &[&id],
                )
            })
            .sum()
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

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar};

use phr_search::{IndexEntry, IndexValue, Prefix, SortKey, Summary, TotalMode};

use crate::suite::{
    DAY, GLUCOSE, HOUR, JAN1, WEIGHT, clause, code, create, date, ids, observation, patient, query,
    timeline, token,
};

fn conditional(id: &str, patient: &str, identifier: &str) -> WriteOp {
    let mut new = observation(id, patient, GLUCOSE, JAN1, 1.0);
    new.index.retain(|e| e.param != "identifier");
    new.index.push(token("identifier", "urn:app", identifier));
    WriteOp::Create {
        new,
        if_none_exist: Some(IdentifierCondition {
            system: Some("urn:app".into()),
            value: identifier.into(),
        }),
    }
}

#[test]
fn two_nodes_racing_conditional_creates_store_each_identifier_once() {
    let db = Db::new();
    let nodes = [Arc::new(db.open()), Arc::new(db.open())];
    let n = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..16 {
            let node = nodes[t % 2].clone();
            let n = &n;
            s.spawn(move || {
                for i in 0..50 {
                    // Each thread walks the identifiers from another starting point.
                    let k = (i + t * 7) % 50;
                    let id = format!("race-{}", n.fetch_add(1, Ordering::Relaxed));
                    let results = node
                        .write(
                            vec![conditional(&id, "p1", &format!("shared-{k}"))],
                            Atomicity::Independent,
                        )
                        .expect("writes");
                    assert!(
                        matches!(
                            results[0],
                            Ok(WriteOutcome::Created { .. } | WriteOutcome::Existing { .. })
                        ),
                        "{results:?}"
                    );
                }
            });
        }
    });
    let mut q = query("p1", vec![]);
    q.summary = Summary::Count;
    assert_eq!(nodes[1].search(&q, None).expect("counts").total, Some(50));
    for k in 0..50 {
        let found = nodes[0]
            .find_by_identifier(
                "Observation",
                Some("p1"),
                &IdentifierCondition {
                    system: Some("urn:app".into()),
                    value: format!("shared-{k}"),
                },
            )
            .expect("finds");
        assert_eq!(found.len(), 1, "shared-{k}: {found:?}");
    }
}

#[test]
fn two_nodes_racing_patient_creates_with_one_identifier_store_one_patient() {
    let db = Db::new();
    let nodes = [Arc::new(db.open()), Arc::new(db.open())];
    std::thread::scope(|s| {
        for t in 0..8 {
            let node = nodes[t % 2].clone();
            s.spawn(move || {
                // Different ids (so different compartments), the same identifier.
                let mut new = patient(&format!("racer-{t}"), "Virtanen");
                new.index
                    .push(token("identifier", "urn:hetu-pseudonym", "same-person"));
                node.write(
                    vec![WriteOp::Create {
                        new,
                        if_none_exist: Some(IdentifierCondition {
                            system: Some("urn:hetu-pseudonym".into()),
                            value: "same-person".into(),
                        }),
                    }],
                    Atomicity::Independent,
                )
                .expect("writes")
            });
        }
    });
    let found = nodes[0]
        .find_by_identifier(
            "Patient",
            None,
            &IdentifierCondition {
                system: Some("urn:hetu-pseudonym".into()),
                value: "same-person".into(),
            },
        )
        .expect("finds");
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_page_cursor_from_one_node_is_followed_on_another() {
    let db = Db::new();
    let (a, b) = (db.open(), db.open());
    let ops = (0..23)
        .map(|i| WriteOp::Create {
            new: observation(
                &format!("o{i:02}"),
                "p1",
                GLUCOSE,
                JAN1 + i * 60_000_000,
                1.0,
            ),
            if_none_exist: None,
        })
        .collect();
    a.write(ops, Atomicity::AllOrNothing).expect("writes");
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    q.count = 5;
    q.total = TotalMode::Accurate;
    q.sort = vec![SortKey {
        param: "date".into(),
        descending: true,
    }];
    let mut page = a.search(&q, None).expect("first page on A");
    let mut seen = ids(&page);
    let mut on_b = true;
    while let Some(next) = page.next.clone() {
        // A write between pages does not show on later pages of the same search.
        a.write(
            vec![WriteOp::Create {
                new: observation(&format!("late-{}", seen.len()), "p1", GLUCOSE, JAN1, 1.0),
                if_none_exist: None,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
        let node = if on_b { &b } else { &a };
        page = node.search(&q, Some(&next)).expect("next page");
        assert_eq!(page.total, Some(23));
        seen.extend(ids(&page));
        on_b = !on_b;
    }
    let expected: Vec<String> = (0..23).rev().map(|i| format!("o{i:02}")).collect();
    assert_eq!(seen, expected);
    let back = b
        .search(&q, page.previous.as_deref())
        .expect("previous page on B");
    assert_eq!(ids(&back), vec!["o07", "o06", "o05", "o04", "o03"]);
}

fn acked_batch(
    store: &PostgresStore,
    thread: usize,
    batch: usize,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = (0..10).map(|i| format!("t{thread}-b{batch}-{i}")).collect();
    let ops = ids
        .iter()
        .map(|id| WriteOp::Create {
            new: observation(id, &format!("p{thread}"), GLUCOSE, JAN1, 1.0),
            if_none_exist: None,
        })
        .collect();
    let results = store.write(ops, Atomicity::AllOrNothing)?;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    Ok(ids)
}

#[test]
fn a_database_crash_during_an_ingest_gives_errors_and_loses_no_acknowledged_write() {
    let cluster = phr_test_postgres::Cluster::start();
    let url = cluster.database("crash");
    let store = PostgresStore::open_with(PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
        checkout_timeout: Duration::from_secs(5),
        ..config(&url)
    })
    .expect("opens");
    let acked = std::sync::Mutex::new(Vec::<String>::new());
    let progress = Condvar::new();
    let errors = std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (store, acked, progress) = (&store, &acked, &progress);
                s.spawn(move || {
                    for batch in 0.. {
                        match acked_batch(store, t, batch) {
                            Ok(ids) => {
                                acked.lock().expect("acks").extend(ids);
                                progress.notify_all();
                            }
                            Err(e) => return e,
                        }
                    }
                    unreachable!("writes until the database is gone")
                })
            })
            .collect();
        // Crash the server once a few hundred writes were acknowledged.
        let mut guard = acked.lock().expect("acks");
        while guard.len() < 400 {
            guard = progress.wait(guard).expect("acks");
        }
        drop(guard);
        cluster.crash();
        writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect::<Vec<_>>()
    });
    for e in &errors {
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }
    // While the server is down every call answers, with an error.
    assert!(matches!(
        store.read("Observation", "t0-b0-0"),
        Err(StoreError::Unavailable(_))
    ));
    cluster.restart();
    // The same store recovers by itself: no reopening.
    let acked = acked.into_inner().expect("acks");
    let mut q = query("p0", vec![]);
    q.summary = Summary::Count;
    store.search(&q, None).expect("searches after the restart");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| store.read("Observation", id).expect("reads").is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    acked_batch(&store, 9, 0).expect("writes after the restart");
}

#[test]
fn a_node_refuses_a_schema_newer_than_it_knows() {
    let db = Db::new();
    drop(db.open());
    db.client()
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(schema::schema_version() + 1)],
        )
        .expect("a newer migration");
    let Err(refused) = PostgresStore::open_with(config(&db.url)) else {
        panic!("refused")
    };
    assert!(refused.to_string().contains("newer"), "{refused}");
    let Err(refused) = PostgresStore::migrate(&db.url, Layout::default()) else {
        panic!("refused")
    };
    assert!(refused.to_string().contains("newer"), "{refused}");
}

#[test]
fn migrate_on_its_own_creates_the_schema_once() {
    let db = Db::new();
    let first =
        PostgresStore::migrate(&db.url, Layout::Partitioned { partitions: 3 }).expect("migrates");
    assert_eq!((first.from, first.to), (0, schema::schema_version()));
    assert_eq!(first.layout, "partitioned:3");
    let again =
        PostgresStore::migrate(&db.url, Layout::Partitioned { partitions: 9 }).expect("migrates");
    assert_eq!(again.from, schema::schema_version());
    assert_eq!(
        again.layout, "partitioned:3",
        "the layout is fixed at creation"
    );
    let partitions = db.count(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent WHERE c.relname = 'idx_token'",
        &[],
    );
    assert_eq!(partitions, 3);
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 1.0));
}

#[test]
fn schema_keeps_the_citizen_first_rules() {
    let db = Db::new();
    drop(db.open());
    let mut client = db.client();
    let patient_tables: Vec<String> = schema::PATIENT_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    // Every unique index (primary keys included) of a patient table and of each of its
    // partitions starts with pid.
    let unique = client
        .query(
            "SELECT coalesce(parent.relname, c.relname), ix.relname, a.attname::text
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_class ix ON ix.oid = i.indexrelid
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             LEFT JOIN pg_inherits h ON h.inhrelid = c.oid
             LEFT JOIN pg_class parent ON parent.oid = h.inhparent
             WHERE i.indisunique AND coalesce(parent.relname, c.relname) = ANY($1)",
            &[&patient_tables],
        )
        .expect("indexes");
    let mut with_key = HashSet::new();
    for row in &unique {
        let (table, index, first): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(
            first, "pid",
            "{table}: unique index {index} starts with {first}"
        );
        with_key.insert(table);
    }
    for table in &patient_tables {
        assert!(with_key.contains(table), "{table} has no primary key");
    }
    let count = |client: &mut ::postgres::Client, sql: &str| -> i64 {
        client.query_one(sql, &[]).expect("counts").get(0)
    };
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT t.tgisinternal AND n.nspname = 'public'"
        ),
        0,
        "no triggers"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' AND n.nspname = 'public'"
        ),
        0,
        "no sequences"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND (a.attidentity <> '' OR a.attgenerated <> '')"
        ),
        0,
        "no identity or generated columns"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval%'"
        ),
        0,
        "no sequence defaults"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
             WHERE n.nspname = 'public' AND c.contype = 'f'"
        ),
        0,
        "no foreign keys"
    );
    // Every table is either a patient table or a shared one.
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in &tables {
        assert!(
            schema::PATIENT_TABLES.contains(&table.as_str())
                || schema::SHARED_TABLES.contains(&table.as_str()),
            "{table} is neither a patient table nor a shared one"
        );
    }
    assert_eq!(
        tables.len(),
        schema::PATIENT_TABLES.len() + schema::SHARED_TABLES.len()
    );
}

#[test]
fn citus_layout_distributes_every_patient_table_by_citizen() {
    assert_eq!(
        schema::citus_statements(),
        vec![
            "SELECT create_reference_table('schema_migrations')",
            "SELECT create_reference_table('meta')",
            "SELECT create_reference_table('types')",
            "SELECT create_reference_table('params')",
            "SELECT create_reference_table('systems')",
            "SELECT create_reference_table('param_kinds')",
            "SELECT create_distributed_table('compartments', 'pid')",
            "SELECT create_distributed_table('resources', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('versions', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('superseded', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('date_spans', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_token', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_string', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_date', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_number', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_quantity', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_reference', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_uri', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_composite', 'pid', colocate_with => 'compartments')",
            "SELECT create_distributed_table('idx_code_date', 'pid', colocate_with => 'compartments')",
        ]
    );
    assert_eq!(
        schema::placement_statements(Layout::Citus, 0),
        schema::citus_statements()
    );
    assert!(schema::placement_statements(Layout::Citus, 1).is_empty());
}

#[test]
fn citus_layout_is_refused_without_the_citus_extension() {
    let db = Db::new();
    let Err(refused) = PostgresStore::migrate(&db.url, Layout::Citus) else {
        panic!("refused")
    };
    assert!(refused.to_string().contains("citus extension"), "{refused}");
    // Nothing was created.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[]
        ),
        0
    );
}

#[test]
fn portal_timeline_is_one_ordered_scan_of_the_pair_index() {
    let db = Db::new();
    let store = db.open();
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
        search::plans::start();
        let page = store.search(&q, None).expect("searches");
        let plans = search::plans::take();
        assert_eq!(page.total, Some(6));
        eprintln!("{}", plans.join("\n\n"));
        assert_eq!(plans.len(), 2, "{plans:?}");
        for plan in &plans {
            assert!(plan.contains("idx_code_date"), "the pair index: {plan}");
            assert!(!plan.contains("Sort"), "no sort step: {plan}");
            assert!(!plan.contains("Seq Scan"), "no full scan: {plan}");
            assert!(
                plan.matches("idx_code_date_p").count() <= 2,
                "one partition: {plan}"
            );
        }
    }
}

/// A search's statements are planned without sorts where an index gives the order. They
/// run generic plans, which cannot know the citizen: with one citizen's many readings
/// among many citizens' few, and statistics, PostgreSQL estimates a handful of rows per
/// citizen and would sort every reading of an OR's arm for each page. (The plans the test
/// hook shows are made with the values, so the settings are what it can check.)
#[test]
fn searches_are_planned_without_sorts_on_analyzed_tables() {
    let db = Db::new();
    let store = db.open();
    let mut ops = Vec::new();
    for n in 0..300 {
        ops.push(WriteOp::Create {
            new: observation(&format!("few{n}"), &format!("p{n}"), WEIGHT, JAN1, 70.0),
            if_none_exist: None,
        });
    }
    for h in 0..2000 {
        let code = if h % 40 == 0 { WEIGHT } else { GLUCOSE };
        ops.push(WriteOp::Create {
            new: observation(&format!("many{h}"), "heavy", code, JAN1 + h * HOUR, 5.0),
            if_none_exist: None,
        });
    }
    let results = store.write(ops, Atomicity::Independent).expect("writes");
    assert!(results.iter().all(|r| r.is_ok()));
    db.client().batch_execute("ANALYZE").expect("analyzes");
    let mut q = query(
        "heavy",
        vec![
            clause("code", vec![code(GLUCOSE), code(WEIGHT)]),
            clause("date", vec![date(Prefix::Ge, JAN1, JAN1 + DAY - 1)]),
        ],
    );
    q.sort = vec![SortKey {
        param: "date".into(),
        descending: false,
    }];
    search::plans::start();
    let page = store.search(&q, None).expect("searches");
    let plans = search::plans::take();
    assert_eq!(page.matches.len(), q.count.min(2000));
    assert!(!plans.is_empty());
    for plan in &plans {
        assert!(!plan.contains("Sort  ("), "no sort step: {plan}");
        assert!(
            plan.ends_with("enable_sort = off"),
            "planned without sorts: {plan}"
        );
    }
}

#[test]
fn unknown_compartments_and_identifiers_yield_nothing() {
    let db = Db::new();
    let store = db.open();
    let mut new = observation("o1", "p1", GLUCOSE, JAN1, 1.0);
    new.index.push(IndexEntry {
        param: "note".into(),
        value: IndexValue::String {
            normalized: "x".into(),
            exact: "x".into(),
        },
    });
    create(&store, new);
    assert!(
        ids(&store
            .search(&query("nobody", vec![]), None)
            .expect("searches"))
        .is_empty()
    );
    assert_eq!(
        store.read_in("nobody", "Observation", "o1").expect("reads"),
        None
    );
    assert!(
        store
            .history(&HistoryQuery {
                compartment: Some("nobody".into()),
                count: 10,
                ..HistoryQuery::default()
            })
            .expect("history")
            .versions
            .is_empty()
    );
    assert_eq!(
        store.erase("nobody", &Erasure::Everything).expect("erases"),
        0
    );
}

#[test]
fn pooled_connections_plan_once_and_start_no_parallel_workers() {
    let db = Db::new();
    let store = db.open();
    let mut pooled = store.pool.get().expect("a connection");
    let client = &mut pooled.conn().expect("open").client;
    let mut show = |setting: &str| -> String {
        client
            .query_one(&format!("SHOW {setting}"), &[])
            .expect("shows")
            .get(0)
    };
    assert_eq!(show("plan_cache_mode"), "force_generic_plan");
    assert_eq!(show("max_parallel_workers_per_gather"), "0");
}
