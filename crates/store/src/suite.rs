//! The behaviour every storage engine must show, written once and run against each engine
//! (`behaviour_tests!(Engine)` in the engine's test module): versions, history, conditional
//! create, erasure, every search feature, paging and cursors. Equivalence of the engines is
//! proven by these tests passing on both, not assumed.

use std::sync::Arc;
use std::time::Duration;

use phr_search::{
    Chain, Clause, Include, IndexEntry, IndexValue, Modifier, Prefix, QueryValue, SortKey, Summary,
    TokenSystem, TotalMode,
};

use crate::sqlite::rows;
use crate::{
    Atomicity, Erasure, HistoryQuery, IdentifierCondition, IdentifierLookup, NewVersion, Rejection,
    SearchPage, SearchQuery, Storage, StoreError, WriteOp, WriteOutcome,
};

/// An engine under test: a fresh database per instance, and the few looks inside the
/// database the behaviours need.
pub(crate) trait Engine: Sized {
    type Store: Storage + 'static;
    /// A new, empty database.
    fn new() -> Self;
    /// Opens a store on this database (again: data written before must be there).
    fn open(&self) -> Self::Store;
    fn close(store: &Self::Store);
    /// The engine's explicit pruning; returns how many superseded versions it pruned.
    fn prune(store: &Self::Store, older_than: Duration) -> u64;
    /// The database records the schema version this program writes.
    fn schema_is_current(&self) -> bool;
    /// Index rows kept only for open cursors (superseded).
    fn stale_index_rows(&self) -> i64;
    /// Index rows of the search parameter `param`, in every index table.
    fn index_rows_of(&self, param: &str) -> i64;
    /// The keys of every stored version of the resources with these ids.
    fn versions_of(&self, ids: &[&str]) -> Vec<(i64, i64)>;
    /// What identifies `patient`'s compartment in the tables.
    fn compartment_marker(&self, patient: &str) -> i64;
    fn compartment_exists(&self, patient: &str) -> bool;
    /// Rows of any data table that still belong to these versions (or to the compartment
    /// `marker`), as `table.column=value` strings.
    fn rows_mentioning(&self, versions: &[(i64, i64)], marker: Option<i64>) -> Vec<String>;
    /// Clears the inline value of every code x date row whose value is below `value`, as
    /// for rows written before they carried one; returns how many rows it cleared.
    fn forget_inline_values_below(&self, value: f64) -> i64;
}

/// `#[test]` functions running every behaviour of this module on `$engine`.
macro_rules! behaviour_tests {
    ($engine:ty) => {
        $crate::suite::behaviour_tests!(@each $engine; reads_in_a_compartment_see_only_that_compartment, a_read_now_answers_as_a_read_or_not_at_all, an_update_can_move_a_resource_to_another_compartment, create_then_read_returns_the_body_as_written, data_survives_reopening_and_the_schema_is_versioned, update_needs_the_next_version_and_keeps_every_version, update_of_a_missing_resource_creates_only_when_allowed, delete_writes_a_tombstone_and_hides_the_resource_from_search, transaction_with_a_rejected_op_stores_nothing, batch_rejects_ops_one_by_one, names_interned_by_a_rolled_back_transaction_do_not_leak_into_later_writes, conditional_create_returns_the_existing_resource_by_identifier, lookups_by_identifier_answer_in_order_as_one_by_one, racing_conditional_creates_create_only_one, history_lists_versions_newest_first_with_since_and_paging, portal_timeline_finds_one_code_in_a_period_sorted_by_date, search_never_crosses_the_compartment, date_prefixes_follow_the_fhir_definitions, quantity_prefixes_and_units_match, or_within_a_clause_and_and_across_clauses, token_modifiers_not_text_and_missing, string_and_uri_matching, references_chains_and_has, include_and_revinclude_add_referenced_resources, sort_by_several_keys_with_ties_broken_stably, totals_accurate_estimate_and_none, a_count_of_a_search_sorted_through_a_join_counts, a_search_that_can_match_nothing_counts_zero, paging_forward_and_back_visits_every_match_once, paging_under_concurrent_writes_sees_the_first_pages_snapshot, tampered_or_foreign_cursors_are_rejected, pruning_drops_superseded_rows_and_refuses_older_cursors, erasure_leaves_no_rows_in_any_table, stats_count_commits_requests_and_batches, writes_after_close_fail_with_closed, resources_without_a_date_are_found_and_sorted_last, every_sort_key_pages_like_a_naive_sort, an_or_of_codes_finds_each_match_once_in_date_order, aggregates_agree_with_a_naive_computation_of_current_versions, aggregates_keep_units_apart_honour_clauses_and_refuse_what_they_cannot, aggregates_join_the_values_a_row_does_not_carry, union_parameters_are_answered_from_the_rows_they_unite);
    };
    (@each $engine:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::$name::<$engine>()
            }
        )*
    };
}
pub(crate) use behaviour_tests;

pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const GLUCOSE: &str = "15074-8";
pub(crate) const WEIGHT: &str = "29463-7";
pub(crate) const HOUR: i64 = 3_600_000_000;
pub(crate) const DAY: i64 = 24 * HOUR;
/// 2024-01-01T00:00:00Z
pub(crate) const JAN1: i64 = 1_704_067_200_000_000;

pub(crate) fn token(param: &str, system: &str, code: &str) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Token {
            system: Some(system.into()),
            code: Some(code.into()),
            text: None,
        },
    }
}

pub(crate) fn reference(param: &str, target_type: &str, id: &str) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Reference {
            target_type: Some(target_type.into()),
            id: id.into(),
            version: None,
            url: None,
        },
    }
}

pub(crate) fn instant(param: &str, at: i64) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Date {
            low: at,
            high: at + 999_999,
        },
    }
}

pub(crate) fn quantity(param: &str, value: f64, unit: &str) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Quantity {
            value,
            low: value - 0.05,
            high: value + 0.05,
            system: Some("http://unitsofmeasure.org".into()),
            code: Some(unit.into()),
            unit: Some(unit.into()),
        },
    }
}

pub(crate) fn observation(id: &str, patient: &str, code: &str, at: i64, value: f64) -> NewVersion {
    NewVersion {
        resource_type: "Observation".into(),
        id: id.into(),
        version: 1,
        last_updated: at,
        body: format!(r#"{{"resourceType":"Observation","id":"{id}","value":{value}}}"#)
            .into_bytes(),
        patient: Some(patient.into()),
        app: Some("app-1".into()),
        index: vec![
            token("code", LOINC, code),
            token("status", "http://hl7.org/fhir/observation-status", "final"),
            token("identifier", "urn:app", &format!("obs-{id}")),
            reference("subject", "Patient", patient),
            reference("patient", "Patient", patient),
            instant("date", at),
            quantity("value-quantity", value, "mmol/L"),
            IndexEntry {
                param: "code-value-quantity".into(),
                value: IndexValue::Composite(vec![
                    IndexValue::Token {
                        system: Some(LOINC.into()),
                        code: Some(code.into()),
                        text: None,
                    },
                    IndexValue::Quantity {
                        value,
                        low: value - 0.05,
                        high: value + 0.05,
                        system: Some("http://unitsofmeasure.org".into()),
                        code: Some("mmol/L".into()),
                        unit: None,
                    },
                ]),
            },
        ],
    }
}

pub(crate) fn create(store: &dyn Storage, new: NewVersion) -> WriteOutcome {
    let mut results = store
        .write(
            vec![WriteOp::Create {
                new,
                if_none_exist: None,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    results.remove(0).expect("accepted")
}

pub(crate) fn query(patient: &str, clauses: Vec<Clause>) -> SearchQuery {
    SearchQuery {
        resource_type: "Observation".into(),
        compartment: Some(patient.into()),
        clauses,
        count: 100,
        ..SearchQuery::default()
    }
}

pub(crate) fn clause(param: &str, values: Vec<QueryValue>) -> Clause {
    Clause {
        param: param.into(),
        modifier: None,
        chain: None,
        values,
    }
}

pub(crate) fn code(c: &str) -> QueryValue {
    QueryValue::Token {
        system: Some(TokenSystem::Is(LOINC.into())),
        code: Some(c.into()),
    }
}

pub(crate) fn date(prefix: Prefix, low: i64, high: i64) -> QueryValue {
    QueryValue::Date { prefix, low, high }
}

pub(crate) fn ids(page: &SearchPage) -> Vec<String> {
    page.matches.iter().map(|m| m.id.clone()).collect()
}

pub(crate) fn search_ids(store: &dyn Storage, q: &SearchQuery) -> Vec<String> {
    let mut all = ids(&store.search(q, None).expect("searches"));
    all.sort();
    all
}

pub(crate) fn create_then_read_returns_the_body_as_written<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let new = observation("o1", "p1", GLUCOSE, JAN1, 5.5);
    assert_eq!(
        create(&store, new.clone()),
        WriteOutcome::Created { version: 1 }
    );
    let read = store
        .read("Observation", "o1")
        .expect("reads")
        .expect("exists");
    assert_eq!(read.body, new.body);
    assert_eq!(read.version, 1);
    assert_eq!(read.patient.as_deref(), Some("p1"));
    assert_eq!(read.created_by.as_deref(), Some("app-1"));
    assert!(!read.deleted);
    assert_eq!(store.read("Observation", "nope").expect("reads"), None);
    assert_eq!(store.read("NoSuchType", "o1").expect("reads"), None);
}

pub(crate) fn data_survives_reopening_and_the_schema_is_versioned<E: Engine>() {
    let db = E::new();
    {
        let store = db.open();
        create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    }
    let store = db.open();
    assert!(store.read("Observation", "o1").expect("reads").is_some());
    assert!(db.schema_is_current(), "the schema version is recorded");
    // Writes after reopening continue the sequence instead of reusing it.
    create(&store, observation("o2", "p1", GLUCOSE, JAN1 + HOUR, 6.0));
    assert_eq!(search_ids(&store, &query("p1", vec![])), vec!["o1", "o2"]);
}

pub(crate) fn update_needs_the_next_version_and_keeps_every_version<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    let mut v2 = observation("o1", "p1", GLUCOSE, JAN1, 7.5);
    v2.version = 2;
    let stale = WriteOp::Update {
        new: NewVersion {
            version: 3,
            ..v2.clone()
        },
        create_if_missing: false,
    };
    let results = store
        .write(vec![stale], Atomicity::AllOrNothing)
        .expect("writes");
    assert_eq!(
        results[0],
        Err(Rejection::VersionConflict {
            expected: Some(2),
            current: Some(1)
        })
    );
    let results = store
        .write(
            vec![WriteOp::Update {
                new: v2.clone(),
                create_if_missing: false,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Updated { version: 2 }));
    assert_eq!(
        store
            .read("Observation", "o1")
            .expect("reads")
            .expect("exists")
            .body,
        v2.body
    );
    let v1 = store
        .vread("Observation", "o1", 1)
        .expect("reads")
        .expect("kept");
    assert!(String::from_utf8_lossy(&v1.body).contains("5.5"));
    // The index follows the current version only.
    let q = query(
        "p1",
        vec![clause(
            "value-quantity",
            vec![QueryValue::Quantity {
                prefix: Prefix::Gt,
                value: 7.0,
                low: 6.95,
                high: 7.05,
                system: None,
                code: None,
            }],
        )],
    );
    assert_eq!(search_ids(&store, &q), vec!["o1"]);
    let q = query(
        "p1",
        vec![clause(
            "value-quantity",
            vec![QueryValue::Quantity {
                prefix: Prefix::Lt,
                value: 6.0,
                low: 5.95,
                high: 6.05,
                system: None,
                code: None,
            }],
        )],
    );
    assert!(search_ids(&store, &q).is_empty());
}

pub(crate) fn update_of_a_missing_resource_creates_only_when_allowed<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let new = observation("o9", "p1", GLUCOSE, JAN1, 5.0);
    let results = store
        .write(
            vec![WriteOp::Update {
                new: new.clone(),
                create_if_missing: false,
            }],
            Atomicity::Independent,
        )
        .expect("writes");
    assert!(matches!(results[0], Err(Rejection::NotFound { .. })));
    let results = store
        .write(
            vec![WriteOp::Update {
                new,
                create_if_missing: true,
            }],
            Atomicity::Independent,
        )
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Created { version: 1 }));
}

pub(crate) fn delete_writes_a_tombstone_and_hides_the_resource_from_search<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    let delete = |version| WriteOp::Delete {
        resource_type: "Observation".into(),
        id: "o1".into(),
        version,
        last_updated: JAN1 + DAY,
        app: Some("app-1".into()),
    };
    let results = store
        .write(vec![delete(5)], Atomicity::AllOrNothing)
        .expect("writes");
    assert!(matches!(results[0], Err(Rejection::VersionConflict { .. })));
    let results = store
        .write(vec![delete(2)], Atomicity::AllOrNothing)
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Deleted { version: 2 }));
    let read = store
        .read("Observation", "o1")
        .expect("reads")
        .expect("tombstone");
    assert!(read.deleted);
    assert!(read.body.is_empty());
    assert_eq!(read.version, 2);
    assert!(
        store
            .vread("Observation", "o1", 1)
            .expect("reads")
            .is_some()
    );
    assert!(
        search_ids(
            &store,
            &query("p1", vec![clause("code", vec![code(GLUCOSE)])])
        )
        .is_empty()
    );
    assert!(search_ids(&store, &query("p1", vec![])).is_empty());
    // Deleting again is a no-op that reports the current tombstone.
    let results = store
        .write(vec![delete(3)], Atomicity::AllOrNothing)
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Deleted { version: 2 }));
}

pub(crate) fn transaction_with_a_rejected_op_stores_nothing<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("exists", "p1", GLUCOSE, JAN1, 5.5));
    let ops = vec![
        WriteOp::Create {
            new: observation("t1", "p1", GLUCOSE, JAN1, 1.0),
            if_none_exist: None,
        },
        WriteOp::Create {
            new: observation("t2", "p1", GLUCOSE, JAN1, 2.0),
            if_none_exist: None,
        },
        WriteOp::Create {
            new: observation("exists", "p1", GLUCOSE, JAN1, 3.0),
            if_none_exist: None,
        },
    ];
    let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
    assert!(matches!(results[2], Err(Rejection::AlreadyExists { .. })));
    assert_eq!(store.read("Observation", "t1").expect("reads"), None);
    assert_eq!(store.read("Observation", "t2").expect("reads"), None);
    assert_eq!(search_ids(&store, &query("p1", vec![])), vec!["exists"]);
}

pub(crate) fn batch_rejects_ops_one_by_one<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("exists", "p1", GLUCOSE, JAN1, 5.5));
    let ops = vec![
        WriteOp::Create {
            new: observation("b1", "p1", GLUCOSE, JAN1, 1.0),
            if_none_exist: None,
        },
        WriteOp::Create {
            new: observation("exists", "p1", GLUCOSE, JAN1, 3.0),
            if_none_exist: None,
        },
        WriteOp::Create {
            new: observation("b2", "p1", GLUCOSE, JAN1, 2.0),
            if_none_exist: None,
        },
    ];
    let before = store
        .read("Observation", "exists")
        .expect("reads")
        .expect("exists");
    let results = store.write(ops, Atomicity::Independent).expect("writes");
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    assert_eq!(
        search_ids(&store, &query("p1", vec![])),
        vec!["b1", "b2", "exists"]
    );
    let after = store
        .read("Observation", "exists")
        .expect("reads")
        .expect("exists");
    assert_eq!(after.version, 1, "the refused create changed nothing");
    assert_eq!(after.body, before.body);
}

pub(crate) fn names_interned_by_a_rolled_back_transaction_do_not_leak_into_later_writes<
    E: Engine,
>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("exists", "p1", GLUCOSE, JAN1, 5.5));
    let mut fresh = observation("t1", "p-new", "new-code", JAN1, 1.0);
    fresh
        .index
        .push(token("brand-new-param", "urn:brand-new-system", "x"));
    let ops = vec![
        WriteOp::Create {
            new: fresh.clone(),
            if_none_exist: None,
        },
        WriteOp::Create {
            new: observation("exists", "p1", GLUCOSE, JAN1, 3.0),
            if_none_exist: None,
        },
    ];
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    // The same names written again must get ids that exist.
    create(&store, fresh);
    let q = query(
        "p-new",
        vec![clause(
            "brand-new-param",
            vec![QueryValue::Token {
                system: Some(TokenSystem::Is("urn:brand-new-system".into())),
                code: Some("x".into()),
            }],
        )],
    );
    assert_eq!(search_ids(&store, &q), vec!["t1"]);
}

pub(crate) fn conditional_create_returns_the_existing_resource_by_identifier<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    let condition = IdentifierCondition {
        system: Some("urn:app".into()),
        value: "obs-o1".into(),
    };
    let op = WriteOp::Create {
        new: observation("o2", "p1", GLUCOSE, JAN1, 5.5),
        if_none_exist: Some(condition.clone()),
    };
    let results = store
        .write(vec![op], Atomicity::AllOrNothing)
        .expect("writes");
    assert_eq!(
        results[0],
        Ok(WriteOutcome::Existing {
            ids: vec!["o1".into()]
        })
    );
    assert_eq!(store.read("Observation", "o2").expect("reads"), None);
    assert_eq!(
        store
            .find_by_identifier("Observation", Some("p1"), &condition)
            .expect("finds"),
        vec!["o1"]
    );
    // Another citizen's identical identifier is not a match.
    assert!(
        store
            .find_by_identifier("Observation", Some("p2"), &condition)
            .expect("finds")
            .is_empty()
    );
    let any_system = IdentifierCondition {
        system: None,
        value: "obs-o1".into(),
    };
    assert_eq!(
        store
            .find_by_identifier("Observation", Some("p1"), &any_system)
            .expect("finds"),
        vec!["o1"]
    );
}

pub(crate) fn lookups_by_identifier_answer_in_order_as_one_by_one<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    create(&store, observation("o2", "p2", GLUCOSE, JAN1, 6.5));
    create(&store, observation("o3", "p1", WEIGHT, JAN1, 70.0));
    let lookup = |compartment: Option<&str>, system: Option<&str>, value: &str| IdentifierLookup {
        resource_type: "Observation".into(),
        compartment: compartment.map(str::to_owned),
        condition: IdentifierCondition {
            system: system.map(str::to_owned),
            value: value.into(),
        },
    };
    let lookups = [
        lookup(Some("p1"), Some("urn:app"), "obs-o1"),
        lookup(Some("p2"), Some("urn:app"), "obs-o1"),
        lookup(Some("p2"), None, "obs-o2"),
        lookup(Some("nobody"), None, "obs-o1"),
        lookup(None, None, "obs-o3"),
        lookup(Some("p1"), Some("urn:other"), "obs-o3"),
        lookup(Some("p1"), None, "obs-o1"),
    ];
    let answers = store.find_by_identifiers(&lookups).expect("finds");
    let expected: Vec<Vec<String>> = [
        vec!["o1"],
        vec![],
        vec!["o2"],
        vec![],
        vec!["o3"],
        vec![],
        vec!["o1"],
    ]
    .iter()
    .map(|ids| ids.iter().map(|id| id.to_string()).collect())
    .collect();
    assert_eq!(answers, expected);
    let one_by_one: Vec<Vec<String>> = lookups
        .iter()
        .map(|l| {
            store
                .find_by_identifier(&l.resource_type, l.compartment.as_deref(), &l.condition)
                .expect("finds")
        })
        .collect();
    assert_eq!(answers, one_by_one);
    assert!(store.find_by_identifiers(&[]).expect("finds").is_empty());
}

pub(crate) fn racing_conditional_creates_create_only_one<E: Engine>() {
    let db = E::new();
    let store = Arc::new(db.open());
    let condition = IdentifierCondition {
        system: Some("urn:app".into()),
        value: "shared".into(),
    };
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let condition = condition.clone();
            std::thread::spawn(move || {
                let mut new = observation(&format!("race-{i}"), "p1", GLUCOSE, JAN1, 1.0);
                new.index.retain(|e| e.param != "identifier");
                new.index.push(token("identifier", "urn:app", "shared"));
                store
                    .write(
                        vec![WriteOp::Create {
                            new,
                            if_none_exist: Some(condition),
                        }],
                        Atomicity::AllOrNothing,
                    )
                    .expect("writes")
            })
        })
        .collect();
    let outcomes: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let created = outcomes
        .iter()
        .filter(|r| matches!(r[0], Ok(WriteOutcome::Created { .. })))
        .count();
    assert_eq!(created, 1);
    assert_eq!(
        store
            .find_by_identifier("Observation", Some("p1"), &condition)
            .expect("finds")
            .len(),
        1
    );
}

pub(crate) fn history_lists_versions_newest_first_with_since_and_paging<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 1.0));
    for v in 2..=5u64 {
        let mut new = observation("o1", "p1", GLUCOSE, JAN1 + v as i64 * HOUR, v as f64);
        new.version = v;
        store
            .write(
                vec![WriteOp::Update {
                    new,
                    create_if_missing: false,
                }],
                Atomicity::AllOrNothing,
            )
            .expect("writes");
    }
    create(
        &store,
        observation("o2", "p2", GLUCOSE, JAN1 + 10 * HOUR, 1.0),
    );
    let mut q = HistoryQuery {
        resource_type: Some("Observation".into()),
        id: Some("o1".into()),
        count: 2,
        ..HistoryQuery::default()
    };
    let mut versions = Vec::new();
    loop {
        let page = store.history(&q).expect("history");
        assert!(page.versions.len() <= 2);
        versions.extend(page.versions.iter().map(|v| v.version));
        match page.next {
            Some(next) => q.page = Some(next),
            None => break,
        }
    }
    assert_eq!(versions, vec![5, 4, 3, 2, 1]);
    let since = HistoryQuery {
        resource_type: Some("Observation".into()),
        id: Some("o1".into()),
        since: Some(JAN1 + 4 * HOUR),
        count: 10,
        ..HistoryQuery::default()
    };
    let page = store.history(&since).expect("history");
    assert_eq!(
        page.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![5, 4]
    );
    let by_type = HistoryQuery {
        resource_type: Some("Observation".into()),
        count: 10,
        ..HistoryQuery::default()
    };
    assert_eq!(store.history(&by_type).expect("history").versions.len(), 6);
    let compartment = HistoryQuery {
        compartment: Some("p2".into()),
        count: 10,
        ..HistoryQuery::default()
    };
    let page = store.history(&compartment).expect("history");
    assert_eq!(
        page.versions
            .iter()
            .map(|v| v.id.as_str())
            .collect::<Vec<_>>(),
        vec!["o2"]
    );
    let system = HistoryQuery {
        count: 100,
        ..HistoryQuery::default()
    };
    assert_eq!(store.history(&system).expect("history").versions.len(), 6);
    let mut forged = by_type.clone();
    forged.page = Some("AAAA".into());
    assert!(matches!(store.history(&forged), Err(StoreError::BadCursor)));
}

/// Six hourly glucose values and a weight for p1, one glucose value for p2.
pub(crate) fn timeline(store: &dyn Storage) {
    let mut ops = Vec::new();
    for h in 0..6 {
        ops.push(WriteOp::Create {
            new: observation(
                &format!("g{h}"),
                "p1",
                GLUCOSE,
                JAN1 + h * HOUR,
                5.0 + h as f64,
            ),
            if_none_exist: None,
        });
    }
    ops.push(WriteOp::Create {
        new: observation("w1", "p1", WEIGHT, JAN1 + 2 * HOUR, 80.0),
        if_none_exist: None,
    });
    ops.push(WriteOp::Create {
        new: observation("other", "p2", GLUCOSE, JAN1 + HOUR, 5.0),
        if_none_exist: None,
    });
    let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
    assert!(results.iter().all(|r| r.is_ok()));
}

pub(crate) fn portal_timeline_finds_one_code_in_a_period_sorted_by_date<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut q = query(
        "p1",
        vec![
            clause("code", vec![code(GLUCOSE)]),
            clause(
                "date",
                vec![date(Prefix::Ge, JAN1 + HOUR, JAN1 + HOUR + 999_999)],
            ),
            clause(
                "date",
                vec![date(Prefix::Lt, JAN1 + 4 * HOUR, JAN1 + 4 * HOUR + 999_999)],
            ),
        ],
    );
    q.sort = vec![SortKey {
        param: "date".into(),
        descending: false,
    }];
    assert_eq!(
        ids(&store.search(&q, None).expect("searches")),
        vec!["g1", "g2", "g3"]
    );
    q.sort[0].descending = true;
    assert_eq!(
        ids(&store.search(&q, None).expect("searches")),
        vec!["g3", "g2", "g1"]
    );
    q.summary = Summary::Count;
    let page = store.search(&q, None).expect("counts");
    assert_eq!(page.total, Some(3));
    assert!(page.matches.is_empty());
}

pub(crate) fn search_never_crosses_the_compartment<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    assert_eq!(
        search_ids(
            &store,
            &query("p2", vec![clause("code", vec![code(GLUCOSE)])])
        ),
        vec!["other"]
    );
    assert_eq!(search_ids(&store, &query("p2", vec![])), vec!["other"]);
    assert!(search_ids(&store, &query("nobody", vec![])).is_empty());
    // Without a compartment (system access) every compartment is searched.
    let mut q = query("p1", vec![]);
    q.compartment = None;
    let mut everyone = search_ids(&store, &query("p1", vec![]));
    everyone.extend(search_ids(&store, &query("p2", vec![])));
    everyone.sort();
    let mut found = search_ids(&store, &q);
    found.sort();
    assert_eq!(found, everyone);
}

pub(crate) fn date_prefixes_follow_the_fhir_definitions<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    // Search value: the hour 02:00:00.000000..02:59:59.999999 (minute precision would do too).
    let (lo, hi) = (JAN1 + 2 * HOUR, JAN1 + 3 * HOUR - 1);
    let cases: [(Prefix, &[&str]); 8] = [
        (Prefix::Eq, &["g2", "w1"]),
        (Prefix::Ne, &["g0", "g1", "g3", "g4", "g5"]),
        (Prefix::Gt, &["g3", "g4", "g5"]),
        (Prefix::Lt, &["g0", "g1"]),
        (Prefix::Ge, &["g2", "g3", "g4", "g5", "w1"]),
        (Prefix::Le, &["g0", "g1", "g2", "w1"]),
        (Prefix::Sa, &["g3", "g4", "g5"]),
        (Prefix::Eb, &["g0", "g1"]),
    ];
    for (prefix, expected) in cases {
        // Both through the driver (sorted by date) and as a plain subquery (sorted by _id).
        let mut q = query("p1", vec![clause("date", vec![date(prefix, lo, hi)])]);
        assert_eq!(search_ids(&store, &q), expected, "{prefix:?} as driver");
        q.sort = vec![SortKey {
            param: "_id".into(),
            descending: false,
        }];
        q.clauses.push(clause(
            "status",
            vec![QueryValue::Token {
                system: None,
                code: Some("final".into()),
            }],
        ));
        assert_eq!(search_ids(&store, &q), expected, "{prefix:?} as filter");
    }
    let q = query("p1", vec![clause("date", vec![date(Prefix::Ap, lo, hi)])]);
    assert!(search_ids(&store, &q).contains(&"g2".to_owned()));
}

pub(crate) fn quantity_prefixes_and_units_match<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let qv = |prefix, value: f64, system: Option<&str>, code: Option<&str>| QueryValue::Quantity {
        prefix,
        value,
        low: value - 0.5,
        high: value + 0.5,
        system: system.map(Into::into),
        code: code.map(Into::into),
    };
    let run = |v| {
        search_ids(
            &store,
            &query("p1", vec![clause("value-quantity", vec![v])]),
        )
    };
    assert_eq!(run(qv(Prefix::Eq, 7.0, None, None)), vec!["g2"]);
    assert_eq!(
        run(qv(
            Prefix::Gt,
            8.0,
            Some("http://unitsofmeasure.org"),
            Some("mmol/L")
        )),
        vec!["g4", "g5", "w1"]
    );
    assert_eq!(
        run(qv(Prefix::Le, 6.0, None, Some("mmol/L"))),
        vec!["g0", "g1"]
    );
    assert!(run(qv(Prefix::Gt, 1.0, None, Some("kg"))).is_empty());
    assert_eq!(run(qv(Prefix::Ap, 80.0, None, None)), vec!["w1"]);
    let composite = QueryValue::Composite(vec![
        code(GLUCOSE),
        qv(Prefix::Ge, 9.0, None, Some("mmol/L")),
    ]);
    assert_eq!(
        search_ids(
            &store,
            &query("p1", vec![clause("code-value-quantity", vec![composite])])
        ),
        vec!["g4", "g5"]
    );
}

pub(crate) fn or_within_a_clause_and_and_across_clauses<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let q = query(
        "p1",
        vec![clause("code", vec![code(GLUCOSE), code(WEIGHT)])],
    );
    assert_eq!(search_ids(&store, &q).len(), 7);
    let q = query(
        "p1",
        vec![
            clause("code", vec![code(GLUCOSE), code(WEIGHT)]),
            clause(
                "date",
                vec![date(Prefix::Eq, JAN1 + 2 * HOUR, JAN1 + 3 * HOUR - 1)],
            ),
        ],
    );
    assert_eq!(search_ids(&store, &q), vec!["g2", "w1"]);
}

pub(crate) fn token_modifiers_not_text_and_missing<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut noted = observation("n1", "p1", "x-1", JAN1, 1.0);
    noted.index.push(IndexEntry {
        param: "category".into(),
        value: IndexValue::Token {
            system: Some("urn:cat".into()),
            code: Some("vital-signs".into()),
            text: Some("Vital Signs".into()),
        },
    });
    create(&store, noted);
    let mut not = clause("code", vec![code(GLUCOSE)]);
    not.modifier = Some(Modifier::Not);
    assert_eq!(
        search_ids(&store, &query("p1", vec![not])),
        vec!["n1", "w1"]
    );
    let mut text = clause(
        "category",
        vec![QueryValue::Token {
            system: None,
            code: Some("sign".into()),
        }],
    );
    text.modifier = Some(Modifier::Text);
    assert_eq!(search_ids(&store, &query("p1", vec![text])), vec!["n1"]);
    let mut missing = clause("category", vec![]);
    missing.modifier = Some(Modifier::Missing(false));
    assert_eq!(
        search_ids(&store, &query("p1", vec![missing.clone()])),
        vec!["n1"]
    );
    missing.modifier = Some(Modifier::Missing(true));
    assert_eq!(search_ids(&store, &query("p1", vec![missing])).len(), 7);
    let no_system = clause(
        "code",
        vec![QueryValue::Token {
            system: None,
            code: Some(WEIGHT.into()),
        }],
    );
    assert_eq!(
        search_ids(&store, &query("p1", vec![no_system])),
        vec!["w1"]
    );
    let unknown_system = clause(
        "code",
        vec![QueryValue::Token {
            system: Some(TokenSystem::Is("urn:nope".into())),
            code: Some(WEIGHT.into()),
        }],
    );
    assert!(search_ids(&store, &query("p1", vec![unknown_system])).is_empty());
    let mut in_vs = clause("code", vec![QueryValue::Uri("http://vs".into())]);
    in_vs.modifier = Some(Modifier::In);
    assert!(matches!(
        store.search(&query("p1", vec![in_vs]), None),
        Err(StoreError::Unsupported(_))
    ));
}

pub(crate) fn patient(id: &str, family: &str) -> NewVersion {
    NewVersion {
        resource_type: "Patient".into(),
        id: id.into(),
        version: 1,
        last_updated: JAN1,
        body: format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#).into_bytes(),
        patient: Some(id.into()),
        app: None,
        index: vec![
            IndexEntry {
                param: "family".into(),
                value: IndexValue::String {
                    normalized: rows::phr_search_normalize(family),
                    exact: family.into(),
                },
            },
            token("identifier", "urn:pseudonym", &format!("{id}-uuid")),
            IndexEntry {
                param: "profile".into(),
                value: IndexValue::Uri(
                    "http://phr.kanta.fi/StructureDefinition/fiphr-patient".into(),
                ),
            },
        ],
    }
}

pub(crate) fn string_and_uri_matching<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    let run = |modifier, value: &str| {
        let mut c = clause("family", vec![QueryValue::String(value.into())]);
        c.modifier = modifier;
        let mut q = query("p1", vec![c]);
        q.resource_type = "Patient".into();
        search_ids(&store, &q)
    };
    assert_eq!(run(None, "MAK"), vec!["p1"]);
    assert!(run(None, "kinen").is_empty());
    assert_eq!(run(Some(Modifier::Contains), "KIN"), vec!["p1"]);
    assert_eq!(run(Some(Modifier::Exact), "Mäkinen"), vec!["p1"]);
    assert!(run(Some(Modifier::Exact), "makinen").is_empty());
    let uri = |modifier, value: &str| {
        let mut c = clause("profile", vec![QueryValue::Uri(value.into())]);
        c.modifier = modifier;
        let mut q = query("p1", vec![c]);
        q.resource_type = "Patient".into();
        search_ids(&store, &q)
    };
    assert_eq!(
        uri(
            None,
            "http://phr.kanta.fi/StructureDefinition/fiphr-patient"
        ),
        vec!["p1"]
    );
    assert_eq!(
        uri(
            Some(Modifier::Below),
            "http://phr.kanta.fi/StructureDefinition"
        ),
        vec!["p1"]
    );
    assert!(uri(None, "http://phr.kanta.fi/StructureDefinition").is_empty());
    assert_eq!(
        uri(
            Some(Modifier::Above),
            "http://phr.kanta.fi/StructureDefinition/fiphr-patient/extra"
        ),
        vec!["p1"]
    );
}

pub(crate) fn references_chains_and_has<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    timeline(&store);
    let by_ref = clause(
        "subject",
        vec![QueryValue::Reference {
            target_type: Some("Patient".into()),
            id: "p1".into(),
            version: None,
            url: None,
        }],
    );
    assert_eq!(search_ids(&store, &query("p1", vec![by_ref])).len(), 7);
    let chained = Clause {
        param: "subject".into(),
        modifier: None,
        chain: Some(Box::new(Chain::Forward {
            target_type: "Patient".into(),
            inner: clause(
                "identifier",
                vec![QueryValue::Token {
                    system: Some(TokenSystem::Is("urn:pseudonym".into())),
                    code: Some("p1-uuid".into()),
                }],
            ),
        })),
        values: vec![],
    };
    assert_eq!(
        search_ids(
            &store,
            &query(
                "p1",
                vec![chained.clone(), clause("code", vec![code(WEIGHT)])]
            )
        ),
        vec!["w1"]
    );
    let has = Clause {
        param: "_has".into(),
        modifier: None,
        chain: Some(Box::new(Chain::Reverse {
            source_type: "Observation".into(),
            reference_param: "subject".into(),
            inner: clause("code", vec![code(WEIGHT)]),
        })),
        values: vec![],
    };
    let mut q = query("p1", vec![has.clone()]);
    q.resource_type = "Patient".into();
    assert_eq!(search_ids(&store, &q), vec!["p1"]);
    let nothing = Clause {
        chain: Some(Box::new(Chain::Reverse {
            source_type: "Observation".into(),
            reference_param: "subject".into(),
            inner: clause("code", vec![code("no-such-code")]),
        })),
        ..has
    };
    q.clauses = vec![nothing];
    assert!(search_ids(&store, &q).is_empty());
}

pub(crate) fn include_and_revinclude_add_referenced_resources<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    create(&store, patient("p2", "Virtanen"));
    timeline(&store);
    let mut q = query("p1", vec![clause("code", vec![code(WEIGHT)])]);
    q.include = vec![Include {
        source_type: "Observation".into(),
        param: "subject".into(),
        target_type: None,
        iterate: false,
    }];
    let page = store.search(&q, None).expect("searches");
    assert_eq!(ids(&page), vec!["w1"]);
    assert_eq!(
        page.included
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec!["p1"]
    );
    let mut q = query("p1", vec![]);
    q.resource_type = "Patient".into();
    q.revinclude = vec![Include {
        source_type: "Observation".into(),
        param: "subject".into(),
        target_type: None,
        iterate: false,
    }];
    let page = store.search(&q, None).expect("searches");
    assert_eq!(ids(&page), vec!["p1"]);
    assert_eq!(page.included.len(), 7, "p1's observations, never p2's");
    assert!(
        page.included
            .iter()
            .all(|r| r.patient.as_deref() == Some("p1"))
    );
}

pub(crate) fn sort_by_several_keys_with_ties_broken_stably<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut q = query("p1", vec![]);
    q.sort = vec![
        SortKey {
            param: "code".into(),
            descending: true,
        },
        SortKey {
            param: "date".into(),
            descending: true,
        },
    ];
    assert_eq!(
        ids(&store.search(&q, None).expect("searches")),
        vec!["w1", "g5", "g4", "g3", "g2", "g1", "g0"]
    );
    q.sort = vec![SortKey {
        param: "value-quantity".into(),
        descending: false,
    }];
    assert_eq!(
        ids(&store.search(&q, None).expect("searches")),
        vec!["g0", "g1", "g2", "g3", "g4", "g5", "w1"]
    );
    q.sort = vec![
        SortKey {
            param: "_lastUpdated".into(),
            descending: true,
        },
        SortKey {
            param: "_id".into(),
            descending: false,
        },
    ];
    assert_eq!(
        ids(&store.search(&q, None).expect("searches")),
        vec!["g5", "g4", "g3", "g2", "w1", "g1", "g0"]
    );
}

pub(crate) fn totals_accurate_estimate_and_none<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    q.count = 2;
    for mode in [
        TotalMode::default(),
        TotalMode::Estimate,
        TotalMode::Accurate,
    ] {
        q.total = mode;
        let first = store.search(&q, None).expect("searches");
        assert_eq!(first.total, Some(6), "{mode:?}");
        let second = store.search(&q, first.next.as_deref()).expect("pages");
        assert_eq!(
            second.total,
            Some(6),
            "{mode:?}: later pages carry the total"
        );
    }
    q.total = TotalMode::None;
    assert_eq!(store.search(&q, None).expect("searches").total, None);
    // No page of matches read: the total alone.
    q.total = TotalMode::default();
    q.count = 0;
    let counted = store.search(&q, None).expect("searches");
    assert_eq!(counted.total, Some(6));
    assert!(counted.matches.is_empty() && counted.next.is_none());
}

pub(crate) fn a_count_of_a_search_sorted_through_a_join_counts<E: Engine>() {
    // Sorting by a parameter the driver does not carry joins a sort key in; a count needs
    // no sort and runs without that join (and its bound parameter).
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    create(&store, observation("o2", "p1", WEIGHT, JAN1 + HOUR, 80.0));
    create(
        &store,
        observation("o3", "p1", GLUCOSE, JAN1 + 2 * HOUR, 6.0),
    );
    let mut not_weight = clause("code", vec![code(WEIGHT)]);
    not_weight.modifier = Some(Modifier::Not);
    let mut q = query("p1", vec![not_weight]);
    q.sort = vec![SortKey {
        param: "value-quantity".into(),
        descending: false,
    }];
    q.summary = Summary::Count;
    let page = store.search(&q, None).expect("counts");
    assert_eq!(page.total, Some(2));
    q.summary = Summary::False;
    q.total = TotalMode::Accurate;
    let page = store.search(&q, None).expect("searches");
    assert_eq!(
        (ids(&page), page.total),
        (vec!["o1".to_owned(), "o3".to_owned()], Some(2))
    );
}

// Found by the search fuzz target: a clause that can match nothing (a parameter no resource
// was ever indexed under) made the plan drop values it had bound, and the count query of
// `Patient?gender=x&_summary=count` failed in SQLite ("wrong number of parameters").
pub(crate) fn a_search_that_can_match_nothing_counts_zero<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    for (summary, total) in [
        (Summary::Count, TotalMode::None),
        (Summary::False, TotalMode::Accurate),
        (Summary::False, TotalMode::Estimate),
    ] {
        let mut q = query("p1", vec![clause("gender", vec![code("x")])]);
        q.resource_type = "Patient".into();
        q.compartment = None;
        q.summary = summary;
        q.total = total;
        let page = store
            .search(&q, None)
            .expect("an empty answer, not an engine error");
        assert_eq!(page.total, Some(0));
        assert!(page.matches.is_empty());
    }
}

/// Walks every page forward from the first.
pub(crate) fn all_pages(store: &dyn Storage, q: &SearchQuery) -> Vec<String> {
    let mut page = store.search(q, None).expect("first page");
    let mut out = ids(&page);
    while let Some(next) = page.next.clone() {
        page = store.search(q, Some(&next)).expect("next page");
        out.extend(ids(&page));
    }
    out
}

pub(crate) fn paging_forward_and_back_visits_every_match_once<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let ops = (0..25)
        .map(|i| WriteOp::Create {
            new: observation(
                &format!("o{i:02}"),
                "p1",
                GLUCOSE,
                JAN1 + (i % 7) * HOUR,
                i as f64,
            ),
            if_none_exist: None,
        })
        .collect();
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    for sort in [
        vec![],
        vec![SortKey {
            param: "date".into(),
            descending: true,
        }],
        vec![SortKey {
            param: "value-quantity".into(),
            descending: false,
        }],
    ] {
        let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
        q.count = 4;
        q.sort = sort;
        let forward = all_pages(&store, &q);
        let mut unique = forward.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 25, "{forward:?}");
        assert_eq!(forward.len(), 25);
        // Walk back from the last page.
        let mut page = store.search(&q, None).expect("first");
        let mut pages = vec![ids(&page)];
        while let Some(next) = page.next.clone() {
            page = store.search(&q, Some(&next)).expect("next");
            pages.push(ids(&page));
        }
        let mut back = Vec::new();
        while let Some(prev) = page.previous.clone() {
            page = store.search(&q, Some(&prev)).expect("previous");
            back.push(ids(&page));
        }
        pages.pop();
        back.reverse();
        assert_eq!(back, pages);
        // `self` gives the same page again.
        let again = store.search(&q, page.this.as_deref()).expect("self");
        assert_eq!(ids(&again), ids(&page));
    }
}

pub(crate) fn paging_under_concurrent_writes_sees_the_first_pages_snapshot<E: Engine>() {
    let db = E::new();
    let store = Arc::new(db.open());
    let ops = (0..40)
        .map(|i| WriteOp::Create {
            new: observation(
                &format!("o{i:02}"),
                "p1",
                GLUCOSE,
                JAN1 + i * HOUR,
                i as f64,
            ),
            if_none_exist: None,
        })
        .collect();
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    q.count = 5;
    q.sort = vec![SortKey {
        param: "date".into(),
        descending: false,
    }];
    let mut page = store.search(&q, None).expect("first page");
    let mut seen = ids(&page);
    let mut round = 0;
    while let Some(next) = page.next.clone() {
        round += 1;
        // Between pages: new matches before and after the cursor, an update that moves a
        // later resource before the cursor, and a delete of a later resource.
        let mut ops = vec![
            WriteOp::Create {
                new: observation(
                    &format!("new-early-{round}"),
                    "p1",
                    GLUCOSE,
                    JAN1 - HOUR,
                    1.0,
                ),
                if_none_exist: None,
            },
            WriteOp::Create {
                new: observation(
                    &format!("new-late-{round}"),
                    "p1",
                    GLUCOSE,
                    JAN1 + 100 * HOUR,
                    1.0,
                ),
                if_none_exist: None,
            },
        ];
        if round == 2 {
            let mut moved = observation("o35", "p1", GLUCOSE, JAN1 - 2 * HOUR, 35.0);
            moved.version = 2;
            ops.push(WriteOp::Update {
                new: moved,
                create_if_missing: false,
            });
            ops.push(WriteOp::Delete {
                resource_type: "Observation".into(),
                id: "o36".into(),
                version: 2,
                last_updated: JAN1,
                app: None,
            });
        }
        let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        page = store.search(&q, Some(&next)).expect("next page");
        seen.extend(ids(&page));
    }
    let expected: Vec<String> = (0..40).map(|i| format!("o{i:02}")).collect();
    assert_eq!(seen, expected);
    // A fresh search sees the new state.
    let fresh = all_pages(&*store, &q);
    assert!(fresh.contains(&"new-early-1".to_owned()) && !fresh.contains(&"o36".to_owned()));
    assert_eq!(fresh.iter().position(|id| id == "o35"), Some(0));
}

pub(crate) fn tampered_or_foreign_cursors_are_rejected<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    q.count = 2;
    let page = store.search(&q, None).expect("searches");
    let next = page.next.expect("more pages");
    let mut bytes = next.clone().into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    assert!(matches!(
        store.search(&q, Some(&tampered)),
        Err(StoreError::BadCursor)
    ));
    let mut other = q.clone();
    other.compartment = Some("p2".into());
    assert!(matches!(
        store.search(&other, Some(&next)),
        Err(StoreError::BadCursor)
    ));
    // Another database has another key.
    let db2 = E::new();
    let store2 = db2.open();
    timeline(&store2);
    assert!(matches!(
        store2.search(&q, Some(&next)),
        Err(StoreError::BadCursor)
    ));
    assert!(store.search(&q, Some(&next)).is_ok());
}

pub(crate) fn pruning_drops_superseded_rows_and_refuses_older_cursors<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    q.count = 2;
    let next = store
        .search(&q, None)
        .expect("searches")
        .next
        .expect("more");
    let mut v2 = observation("g0", "p1", GLUCOSE, JAN1, 50.0);
    v2.version = 2;
    store
        .write(
            vec![WriteOp::Update {
                new: v2,
                create_if_missing: false,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    assert!(db.stale_index_rows() > 0);
    assert_eq!(E::prune(&store, Duration::ZERO), 1);
    assert_eq!(db.stale_index_rows(), 0);
    assert!(matches!(
        store.search(&q, Some(&next)),
        Err(StoreError::BadCursor)
    ));
    assert_eq!(
        search_ids(
            &store,
            &query("p1", vec![clause("code", vec![code(GLUCOSE)])])
        )
        .len(),
        6
    );
}

pub(crate) fn erasure_leaves_no_rows_in_any_table<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    timeline(&store);
    let mut from_other_app = observation("x1", "p1", WEIGHT, JAN1, 81.0);
    from_other_app.app = Some("app-2".into());
    create(&store, from_other_app);
    let mut v2 = observation("g0", "p1", GLUCOSE, JAN1, 50.0);
    v2.version = 2;
    store
        .write(
            vec![WriteOp::Update {
                new: v2,
                create_if_missing: false,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");

    let one = db.versions_of(&["g0"]);
    assert_eq!(one.len(), 2);
    assert_eq!(
        store
            .erase(
                "p1",
                &Erasure::One {
                    resource_type: "Observation".into(),
                    id: "g0".into()
                }
            )
            .expect("erases"),
        1
    );
    assert_eq!(db.rows_mentioning(&one, None), Vec::<String>::new());
    assert_eq!(store.read("Observation", "g0").expect("reads"), None);
    assert_eq!(
        store
            .erase(
                "p2",
                &Erasure::One {
                    resource_type: "Observation".into(),
                    id: "g1".into()
                }
            )
            .expect("erases"),
        0,
        "not p2's"
    );

    let app2 = db.versions_of(&["x1"]);
    assert_eq!(
        store
            .erase(
                "p1",
                &Erasure::FromApp {
                    app: "app-2".into()
                }
            )
            .expect("erases"),
        1
    );
    assert_eq!(db.rows_mentioning(&app2, None), Vec::<String>::new());
    assert!(store.read("Observation", "g1").expect("reads").is_some());

    let pid = db.compartment_marker("p1");
    let rest = db.versions_of(&["p1", "g1", "g2", "g3", "g4", "g5", "w1"]);
    assert_eq!(store.erase("p1", &Erasure::Everything).expect("erases"), 7);
    assert_eq!(db.rows_mentioning(&rest, Some(pid)), Vec::<String>::new());
    assert!(
        !db.compartment_exists("p1"),
        "the compartment itself is gone"
    );
    assert!(
        store.read("Observation", "other").expect("reads").is_some(),
        "p2 untouched"
    );
    // The compartment can be used again afterwards.
    create(&store, observation("again", "p1", GLUCOSE, JAN1, 1.0));
    assert_eq!(search_ids(&store, &query("p1", vec![])), vec!["again"]);
}

pub(crate) fn stats_count_commits_requests_and_batches<E: Engine>() {
    let db = E::new();
    let store = Arc::new(db.open());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    create(
                        &*store,
                        observation(&format!("t{t}-{i}"), "p1", GLUCOSE, JAN1 + i, 1.0),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let stats = store.stats();
    assert_eq!(stats.requests, 80);
    assert_eq!(stats.ops, 80);
    assert!(stats.commits >= 1 && stats.commits <= 80);
    assert_eq!(stats.batch_histogram.iter().sum::<u64>(), stats.commits);
    assert!(stats.max_batch >= 1);
}

pub(crate) fn writes_after_close_fail_with_closed<E: Engine>() {
    let db = E::new();
    let store = db.open();
    E::close(&store);
    let result = store.write(
        vec![WriteOp::Create {
            new: observation("o1", "p1", GLUCOSE, JAN1, 1.0),
            if_none_exist: None,
        }],
        Atomicity::AllOrNothing,
    );
    assert!(matches!(result, Err(StoreError::Closed)));
}

pub(crate) fn resources_without_a_date_are_found_and_sorted_last<E: Engine>() {
    let db = E::new();
    let store = db.open();
    timeline(&store);
    let mut undated = observation("undated", "p1", GLUCOSE, JAN1, 1.0);
    undated.index.retain(|e| e.param != "date");
    create(&store, undated);
    let mut q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    assert_eq!(search_ids(&store, &q).len(), 7);
    for descending in [false, true] {
        q.sort = vec![SortKey {
            param: "date".into(),
            descending,
        }];
        let found = ids(&store.search(&q, None).expect("searches"));
        assert_eq!(found.len(), 7);
        assert_eq!(
            found.last().map(String::as_str),
            Some("undated"),
            "descending: {descending}"
        );
    }
    let in_january = clause("date", vec![date(Prefix::Ge, JAN1, JAN1 + DAY - 1)]);
    q.clauses.push(in_january);
    assert!(!search_ids(&store, &q).contains(&"undated".to_owned()));
    let mut not_dated = clause("date", vec![date(Prefix::Ge, JAN1, JAN1 + DAY - 1)]);
    not_dated.modifier = Some(Modifier::Not);
    assert_eq!(
        search_ids(&store, &query("p1", vec![not_dated])),
        vec!["undated"]
    );
    let mut missing = clause("date", vec![]);
    missing.modifier = Some(Modifier::Missing(true));
    assert_eq!(
        search_ids(&store, &query("p1", vec![missing])),
        vec!["undated"]
    );
}

pub(crate) fn a_read_now_answers_as_a_read_or_not_at_all<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    create(&store, observation("gone", "p1", GLUCOSE, JAN1, 6.5));
    let delete = WriteOp::Delete {
        resource_type: "Observation".into(),
        id: "gone".into(),
        version: 2,
        last_updated: JAN1 + DAY,
        app: None,
    };
    let results = store
        .write(vec![delete], Atomicity::AllOrNothing)
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Deleted { version: 2 }));
    let reads = [
        ("Observation", "o1"),
        ("Observation", "gone"),
        ("Observation", "nope"),
        ("Patient", "p1"),
        ("NoSuchType", "o1"),
    ];
    for (resource_type, id) in reads {
        let read = store.read(resource_type, id).expect("reads");
        if let Some(now) = store.read_now(resource_type, id) {
            assert_eq!(now.expect("reads"), read, "{resource_type}/{id}");
        }
        for compartment in ["p1", "p2"] {
            let read = store
                .read_in(compartment, resource_type, id)
                .expect("reads");
            if let Some(now) = store.read_in_now(compartment, resource_type, id) {
                assert_eq!(
                    now.expect("reads"),
                    read,
                    "{resource_type}/{id} in {compartment}"
                );
            }
        }
    }
}

pub(crate) fn reads_in_a_compartment_see_only_that_compartment<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, patient("p1", "Mäkinen"));
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    let in_p1 = store
        .read_in("p1", "Observation", "o1")
        .expect("reads")
        .expect("in p1");
    assert_eq!(Some(in_p1), store.read("Observation", "o1").expect("reads"));
    assert_eq!(
        store.read_in("p2", "Observation", "o1").expect("reads"),
        None
    );
    assert_eq!(
        store.read_in("p1", "Observation", "nope").expect("reads"),
        None
    );
    assert!(
        store
            .read_in("p1", "Patient", "p1")
            .expect("reads")
            .is_some(),
        "a Patient is in its own compartment"
    );
    assert!(
        store
            .vread_in("p1", "Observation", "o1", 1)
            .expect("reads")
            .is_some()
    );
    assert_eq!(
        store.vread_in("p1", "Observation", "o1", 2).expect("reads"),
        None
    );
    assert_eq!(
        store.vread_in("p2", "Observation", "o1", 1).expect("reads"),
        None
    );
}

pub(crate) fn an_update_can_move_a_resource_to_another_compartment<E: Engine>() {
    let db = E::new();
    let store = db.open();
    create(&store, observation("o1", "p1", GLUCOSE, JAN1, 5.5));
    create(&store, observation("o2", "p2", GLUCOSE, JAN1, 6.5));
    let mut moved = observation("o1", "p2", GLUCOSE, JAN1 + HOUR, 7.5);
    moved.version = 2;
    let results = store
        .write(
            vec![WriteOp::Update {
                new: moved,
                create_if_missing: false,
            }],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    assert_eq!(results[0], Ok(WriteOutcome::Updated { version: 2 }));
    let current = store
        .read("Observation", "o1")
        .expect("reads")
        .expect("exists");
    assert_eq!(current.patient.as_deref(), Some("p2"));
    assert_eq!(current.created_by.as_deref(), Some("app-1"));
    assert_eq!(
        store.read_in("p1", "Observation", "o1").expect("reads"),
        None
    );
    assert!(
        store
            .read_in("p2", "Observation", "o1")
            .expect("reads")
            .is_some()
    );
    let first = store
        .vread("Observation", "o1", 1)
        .expect("reads")
        .expect("kept");
    assert_eq!(first.patient.as_deref(), Some("p1"));
    assert!(search_ids(&store, &query("p1", vec![])).is_empty());
    assert_eq!(search_ids(&store, &query("p2", vec![])), vec!["o1", "o2"]);
    let history = store
        .history(&HistoryQuery {
            resource_type: Some("Observation".into()),
            id: Some("o1".into()),
            count: 10,
            ..HistoryQuery::default()
        })
        .expect("history");
    assert_eq!(
        history
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    // It can be updated and deleted where it is now.
    let mut again = observation("o1", "p2", GLUCOSE, JAN1 + 2 * HOUR, 8.5);
    again.version = 3;
    let results = store
        .write(
            vec![
                WriteOp::Update {
                    new: again,
                    create_if_missing: false,
                },
                WriteOp::Delete {
                    resource_type: "Observation".into(),
                    id: "o1".into(),
                    version: 4,
                    last_updated: JAN1 + 3 * HOUR,
                    app: None,
                },
            ],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    assert_eq!(
        results,
        vec![
            Ok(WriteOutcome::Updated { version: 3 }),
            Ok(WriteOutcome::Deleted { version: 4 })
        ]
    );
    assert_eq!(search_ids(&store, &query("p2", vec![])), vec!["o2"]);
}

/// What the naive evaluation knows of one test Observation.
struct Naive {
    id: String,
    code: Vec<&'static str>,
    at: i64,
    values: Vec<(f64, &'static str)>,
    status: Vec<&'static str>,
    performers: Vec<String>,
    issued: Vec<i64>,
    note: Option<String>,
}

/// Observations whose sort parameters have several values, several units, ties and gaps.
fn sort_data() -> Vec<Naive> {
    (0..23)
        .map(|i: i64| {
            let code = match i % 4 {
                0 => vec![GLUCOSE],
                1 => vec![WEIGHT],
                2 => vec![GLUCOSE, WEIGHT],
                _ => vec!["8480-6"],
            };
            let values = match i % 5 {
                0 => vec![],
                1 => vec![((i * 7 % 11) as f64, "kg")],
                2 => vec![((i * 3 % 13) as f64, "mmol/L"), ((20 - i) as f64, "kg")],
                _ => vec![((i % 6) as f64, "mmol/L")],
            };
            let status = match i % 3 {
                0 => vec!["final"],
                1 => vec!["amended", "preliminary"],
                _ => vec![],
            };
            let performers = match i % 4 {
                0 => vec![format!("pr{}", i % 5)],
                1 => vec![format!("pr{}", (i * 3) % 7), format!("pr{}", (i * 5) % 7)],
                _ => vec![],
            };
            let issued = match i % 3 {
                0 => vec![JAN1 + (i % 4) * DAY],
                1 => vec![JAN1 + (i % 7) * DAY, JAN1 - (i % 5) * DAY],
                _ => vec![],
            };
            Naive {
                id: format!("s{i:02}"),
                code,
                at: JAN1 + ((i * 5) % 17) * HOUR,
                values,
                status,
                performers,
                issued,
                note: (i % 2 == 0).then(|| format!("note {}", (i * 7) % 9)),
            }
        })
        .collect()
}

fn sort_version(n: &Naive, last_updated: i64) -> NewVersion {
    let mut index = vec![
        token("identifier", "urn:app", &format!("obs-{}", n.id)),
        reference("patient", "Patient", "p1"),
        instant("date", n.at),
    ];
    for c in &n.code {
        index.push(token("code", LOINC, c));
    }
    for (v, unit) in &n.values {
        index.push(quantity("value-quantity", *v, unit));
    }
    for s in &n.status {
        index.push(token("status", "http://hl7.org/fhir/observation-status", s));
    }
    for p in &n.performers {
        index.push(reference("performer", "Practitioner", p));
    }
    for at in &n.issued {
        index.push(instant("issued", *at));
    }
    if let Some(note) = &n.note {
        index.push(IndexEntry {
            param: "note".into(),
            value: IndexValue::String {
                normalized: rows::phr_search_normalize(note),
                exact: note.clone(),
            },
        });
    }
    NewVersion {
        resource_type: "Observation".into(),
        id: n.id.clone(),
        version: 1,
        last_updated,
        body: format!(r#"{{"resourceType":"Observation","id":"{}"}}"#, n.id).into_bytes(),
        patient: Some("p1".into()),
        app: Some("app-1".into()),
        index,
    }
}

/// A sort key's value for the naive evaluation: numbers and text compare as SQL does.
#[derive(Clone, PartialEq, PartialOrd, Debug)]
enum NaiveKey {
    Number(f64),
    Text(String),
}

/// The expected order: by the smallest (largest, descending) value, ties in write order
/// (reversed descending); then the matches without a value, in any order.
fn naive_order(
    data: &[Naive],
    matching: &[&str],
    param: &str,
    descending: bool,
) -> (Vec<String>, Vec<String>) {
    let mut valued: Vec<(NaiveKey, usize, String)> = Vec::new();
    let mut rest = Vec::new();
    for (n, item) in data.iter().enumerate() {
        if !matching.contains(&item.id.as_str()) {
            continue;
        }
        let keys: Vec<NaiveKey> = match param {
            "value-quantity" => item.values.iter().map(|v| NaiveKey::Number(v.0)).collect(),
            "status" => item
                .status
                .iter()
                .map(|s| NaiveKey::Text((*s).into()))
                .collect(),
            "code" => item
                .code
                .iter()
                .map(|s| NaiveKey::Text((*s).into()))
                .collect(),
            "performer" => item
                .performers
                .iter()
                .map(|s| NaiveKey::Text(s.clone()))
                .collect(),
            "issued" => item
                .issued
                .iter()
                .map(|at| NaiveKey::Number((if descending { at + 999_999 } else { *at }) as f64))
                .collect(),
            "note" => item
                .note
                .iter()
                .map(|s| NaiveKey::Text(rows::phr_search_normalize(s)))
                .collect(),
            "_id" => vec![NaiveKey::Text(item.id.clone())],
            "_lastUpdated" => vec![NaiveKey::Number(n as f64)],
            other => panic!("no naive key for {other}"),
        };
        let best = keys.into_iter().reduce(|a, b| {
            let b_first = if descending { b > a } else { b < a };
            if b_first { b } else { a }
        });
        match best {
            Some(k) => valued.push((k, n, item.id.clone())),
            None => rest.push(item.id.clone()),
        }
    }
    valued.sort_by(|a, b| {
        let order =
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1));
        if descending { order.reverse() } else { order }
    });
    rest.sort();
    (valued.into_iter().map(|v| v.2).collect(), rest)
}

pub(crate) fn every_sort_key_pages_like_a_naive_sort<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let data = sort_data();
    let ops = data
        .iter()
        .enumerate()
        .map(|(n, item)| WriteOp::Create {
            new: sort_version(item, JAN1 + n as i64 * HOUR),
            if_none_exist: None,
        })
        .collect();
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    create(&store, observation("elsewhere", "p2", GLUCOSE, JAN1, 1.0));
    let everything: Vec<&str> = data.iter().map(|d| d.id.as_str()).collect();
    let glucose_before_noon: Vec<&str> = data
        .iter()
        .filter(|d| d.code.contains(&GLUCOSE) && d.at < JAN1 + 12 * HOUR)
        .map(|d| d.id.as_str())
        .collect();
    // Sparse among the sort parameter's rows: a page of one goes past what an engine may
    // test version by version and on with the matches collected first.
    let systolic_after_eight: Vec<&str> = data
        .iter()
        .filter(|d| d.code.contains(&"8480-6") && d.at >= JAN1 + 8 * HOUR)
        .map(|d| d.id.as_str())
        .collect();
    // A clause on values: matches collected first, whatever the engine.
    let glucose_of_three_or_more: Vec<&str> = data
        .iter()
        .filter(|d| d.code.contains(&GLUCOSE) && d.values.iter().any(|v| v.0 >= 3.0))
        .map(|d| d.id.as_str())
        .collect();
    let filters = [
        (vec![], everything),
        (
            vec![
                clause("code", vec![code(GLUCOSE)]),
                clause(
                    "date",
                    vec![date(Prefix::Lt, JAN1 + 12 * HOUR, JAN1 + 12 * HOUR)],
                ),
            ],
            glucose_before_noon,
        ),
        (
            vec![
                clause("code", vec![code("8480-6")]),
                clause(
                    "date",
                    vec![date(Prefix::Ge, JAN1 + 8 * HOUR, JAN1 + 8 * HOUR)],
                ),
            ],
            systolic_after_eight,
        ),
        (
            vec![
                clause("code", vec![code(GLUCOSE)]),
                clause("value-quantity", vec![at_least(3.0)]),
            ],
            glucose_of_three_or_more,
        ),
    ];
    for param in [
        "value-quantity",
        "status",
        "code",
        "performer",
        "issued",
        "note",
        "_id",
        "_lastUpdated",
    ] {
        for descending in [false, true] {
            for (clauses, matching) in &filters {
                let mut q = query("p1", clauses.clone());
                q.sort = vec![SortKey {
                    param: param.into(),
                    descending,
                }];
                let (valued, rest) = naive_order(&data, matching, param, descending);
                let what = format!(
                    "_sort={}{param} with {} clauses",
                    if descending { "-" } else { "" },
                    clauses.len()
                );
                for count in [100, 4, 1] {
                    q.count = count;
                    let first = store.search(&q, None).expect("searches");
                    assert_eq!(first.total, Some(matching.len() as u64), "{what}");
                    let found = all_pages(&store, &q);
                    assert_eq!(
                        found.get(..valued.len()),
                        Some(&valued[..]),
                        "{what}, pages of {count}"
                    );
                    let mut tail = found.get(valued.len()..).unwrap_or_default().to_vec();
                    tail.sort();
                    assert_eq!(tail, rest, "{what}, pages of {count}");
                }
                // Back from the last page gives the same pages.
                let mut page = store.search(&q, None).expect("first");
                let mut pages = vec![ids(&page)];
                while let Some(next) = page.next.clone() {
                    page = store.search(&q, Some(&next)).expect("next");
                    pages.push(ids(&page));
                }
                let mut back = Vec::new();
                while let Some(prev) = page.previous.clone() {
                    page = store.search(&q, Some(&prev)).expect("previous");
                    back.push(ids(&page));
                }
                pages.pop();
                back.reverse();
                assert_eq!(back, pages, "{what}, backwards");
            }
        }
    }
}

pub(crate) fn an_or_of_codes_finds_each_match_once_in_date_order<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let data = sort_data();
    let ops = data
        .iter()
        .enumerate()
        .map(|(n, item)| WriteOp::Create {
            new: sort_version(item, JAN1 + n as i64 * HOUR),
            if_none_exist: None,
        })
        .collect();
    store.write(ops, Atomicity::AllOrNothing).expect("writes");
    create(
        &store,
        observation("elsewhere", "p2", GLUCOSE, JAN1 + HOUR, 1.0),
    );
    let (from, to) = (JAN1 + 2 * HOUR, JAN1 + 15 * HOUR);
    let codes_sets: [&[&str]; 3] = [
        &[GLUCOSE, WEIGHT],
        &[WEIGHT, "8480-6", GLUCOSE, "0000-0"],
        &["0000-0", GLUCOSE],
    ];
    for codes in codes_sets {
        let mut expected: Vec<(i64, usize, String)> = data
            .iter()
            .enumerate()
            .filter(|(_, d)| d.code.iter().any(|c| codes.contains(c)) && d.at >= from && d.at < to)
            .map(|(n, d)| (d.at, n, d.id.clone()))
            .collect();
        expected.sort();
        for sort in [None, Some(false), Some(true)] {
            let mut q = query(
                "p1",
                vec![
                    clause("code", codes.iter().map(|c| code(c)).collect()),
                    clause("date", vec![date(Prefix::Ge, from, from)]),
                    clause("date", vec![date(Prefix::Lt, to, to)]),
                ],
            );
            q.sort = sort
                .map(|descending| SortKey {
                    param: "date".into(),
                    descending,
                })
                .into_iter()
                .collect();
            let what = format!("{codes:?} sorted {sort:?}");
            for count in [100, 3] {
                q.count = count;
                let first = store.search(&q, None).expect("searches");
                assert_eq!(first.total, Some(expected.len() as u64), "{what}");
                let found = all_pages(&store, &q);
                let mut in_order: Vec<String> = expected.iter().map(|e| e.2.clone()).collect();
                if sort == Some(true) {
                    // Descending by date, ties by version descending.
                    in_order.reverse();
                }
                if sort.is_some() {
                    assert_eq!(found, in_order, "{what}, pages of {count}");
                } else {
                    let mut sorted = found.clone();
                    sorted.sort();
                    let mut want = in_order.clone();
                    want.sort();
                    assert_eq!(sorted, want, "{what}, pages of {count}");
                }
            }
            let mut counted = q.clone();
            counted.summary = Summary::Count;
            assert_eq!(
                store.search(&counted, None).expect("counts").total,
                Some(expected.len() as u64),
                "{what}"
            );
        }
    }
}

/// A glucose-like observation in `unit`, optionally labelled restricted, with a component
/// (code `8480-6`, value `value * 10`) when `component` is set.
fn measured(id: &str, patient: &str, at: i64, value: f64, unit: &str) -> NewVersion {
    let mut new = observation(id, patient, GLUCOSE, at, value);
    for entry in &mut new.index {
        if let IndexValue::Composite(parts) = &mut entry.value
            && let Some(IndexValue::Quantity { code, .. }) = parts.get_mut(1)
        {
            *code = Some(unit.into());
        }
    }
    new
}

fn with_component(mut new: NewVersion, value: f64) -> NewVersion {
    new.index.push(IndexEntry {
        param: "component-code-value-quantity".into(),
        value: IndexValue::Composite(vec![
            IndexValue::Token {
                system: Some(LOINC.into()),
                code: Some("8480-6".into()),
                text: None,
            },
            IndexValue::Quantity {
                value,
                low: value - 0.5,
                high: value + 0.5,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mm[Hg]".into()),
                unit: None,
            },
        ]),
    });
    new
}

fn aggregation(from: i64, to: i64, interval: i64) -> crate::Aggregation {
    crate::Aggregation {
        from,
        to,
        interval,
        value: crate::AggregateValue::Value,
        bands: Some((3.9, 10.0)),
    }
}

/// The buckets computed naively from `(at, value)` pairs, for comparison.
fn naive_buckets(values: &[(i64, f64)], a: &crate::Aggregation) -> Vec<crate::Bucket> {
    let mut out: Vec<crate::Bucket> = Vec::new();
    let mut sorted: Vec<(i64, f64)> = values
        .iter()
        .copied()
        .filter(|(at, _)| *at >= a.from && *at < a.to)
        .collect();
    sorted.sort_by_key(|(at, _)| *at);
    for (at, v) in sorted {
        let index = (at - a.from) / a.interval;
        let (low, high) = a.bands.expect("bands");
        if out.last().is_none_or(|b| b.index != index) {
            out.push(crate::Bucket {
                index,
                unit_system: "http://unitsofmeasure.org".into(),
                unit: "mmol/L".into(),
                count: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sum: 0.0,
                below: 0,
                within: 0,
                above: 0,
            });
        }
        let b = out.last_mut().expect("a bucket");
        b.count += 1;
        b.min = b.min.min(v);
        b.max = b.max.max(v);
        b.sum += v;
        if v < low {
            b.below += 1;
        } else if v > high {
            b.above += 1;
        } else {
            b.within += 1;
        }
    }
    out
}

fn assert_buckets_agree(found: &[crate::Bucket], expected: &[crate::Bucket]) {
    assert_eq!(found.len(), expected.len(), "{found:?}\n{expected:?}");
    for (f, e) in found.iter().zip(expected) {
        assert_eq!(
            (f.index, f.count, f.below, f.within, f.above),
            (e.index, e.count, e.below, e.within, e.above),
            "{f:?} vs {e:?}"
        );
        assert_eq!((f.min, f.max), (e.min, e.max), "{f:?} vs {e:?}");
        assert!((f.sum - e.sum).abs() < 1e-9, "{f:?} vs {e:?}");
        assert_eq!((&*f.unit_system, &*f.unit), (&*e.unit_system, &*e.unit));
    }
}

pub(crate) fn aggregates_agree_with_a_naive_computation_of_current_versions<E: Engine>() {
    let db = E::new();
    let store = db.open();
    // 400 readings over ten days at pseudo-random times (fixed seed), a few exactly on a
    // day's edge; another citizen's readings at the same times never count.
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        seed >> 33
    };
    let mut values: Vec<(String, i64, f64)> = Vec::new();
    let mut ops = Vec::new();
    for i in 0..400 {
        let at = if i % 50 == 0 {
            JAN1 + (i / 50) as i64 * DAY
        } else {
            JAN1 + (next() % (10 * DAY as u64)) as i64
        };
        let value = (next() % 200) as f64 / 10.0 + 1.0;
        let id = format!("g{i}");
        values.push((id.clone(), at, value));
        ops.push(WriteOp::Create {
            new: measured(&id, "p1", at, value, "mmol/L"),
            if_none_exist: None,
        });
        ops.push(WriteOp::Create {
            new: measured(&format!("x{i}"), "p2", at, value + 100.0, "mmol/L"),
            if_none_exist: None,
        });
    }
    store.write(ops, Atomicity::Independent).expect("writes");
    // One reading deleted, one updated: only current versions count.
    let results = store
        .write(
            vec![
                WriteOp::Delete {
                    resource_type: "Observation".into(),
                    id: "g1".into(),
                    version: 2,
                    last_updated: JAN1 + 20 * DAY,
                    app: Some("app-1".into()),
                },
                WriteOp::Update {
                    new: NewVersion {
                        version: 2,
                        ..measured("g2", "p1", values[2].1, 42.0, "mmol/L")
                    },
                    create_if_missing: false,
                },
            ],
            Atomicity::AllOrNothing,
        )
        .expect("writes");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    values.retain(|(id, _, _)| id != "g1");
    if let Some(v) = values.iter_mut().find(|(id, _, _)| id == "g2") {
        v.2 = 42.0;
    }
    let pairs: Vec<(i64, f64)> = values.iter().map(|(_, at, v)| (*at, *v)).collect();
    let q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    for a in [
        aggregation(JAN1, JAN1 + 10 * DAY, DAY),
        aggregation(JAN1, JAN1 + 10 * DAY, 10 * DAY),
        aggregation(JAN1 + 3 * HOUR, JAN1 + 7 * DAY + 5, 7 * HOUR),
        aggregation(JAN1 - 5 * DAY, JAN1 + 30 * DAY, 300_000_000),
    ] {
        let found = store.aggregate(&q, &a).expect("aggregates");
        assert_buckets_agree(&found, &naive_buckets(&pairs, &a));
    }
    // One interval holds every current reading of the range.
    let whole = store
        .aggregate(&q, &aggregation(JAN1, JAN1 + 10 * DAY, 10 * DAY))
        .expect("aggregates");
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].count, 399);
    assert_eq!(whole[0].max, 42.0);
    // A reading exactly on an edge falls in the interval it starts (JAN1 + DAY: g50).
    let edge = store
        .aggregate(&q, &aggregation(JAN1 + DAY, JAN1 + 2 * DAY, DAY))
        .expect("aggregates");
    let before = store
        .aggregate(&q, &aggregation(JAN1, JAN1 + DAY, DAY))
        .expect("aggregates");
    let on_edge = values.iter().filter(|(_, at, _)| *at == JAN1 + DAY).count() as u64;
    assert!(on_edge >= 1);
    let in_day = |lo: i64| {
        values
            .iter()
            .filter(|(_, at, _)| *at >= lo && *at < lo + DAY)
            .count() as u64
    };
    assert_eq!(edge[0].count, in_day(JAN1 + DAY));
    assert_eq!(before[0].count, in_day(JAN1));
    // The other citizen's own aggregate sees only theirs.
    let other = store
        .aggregate(
            &query("p2", vec![clause("code", vec![code(GLUCOSE)])]),
            &aggregation(JAN1, JAN1 + 10 * DAY, 10 * DAY),
        )
        .expect("aggregates");
    assert_eq!(other[0].count, 400);
    assert!(other[0].min > 100.0);
}

pub(crate) fn aggregates_join_the_values_a_row_does_not_carry<E: Engine>() {
    let db = E::new();
    let store = db.open();
    // Readings whose code x date rows carry their value, the same with the value cleared
    // (as rows written before rows carried one), and one reading with two values for its
    // code, which its row cannot carry.
    let mut pairs = Vec::new();
    let mut ops = Vec::new();
    for i in 0..40 {
        let (at, value) = (JAN1 + i * HOUR, 2.0 + i as f64 / 2.0);
        pairs.push((at, value));
        ops.push(WriteOp::Create {
            new: measured(&format!("g{i}"), "p1", at, value, "mmol/L"),
            if_none_exist: None,
        });
    }
    let mut twice = measured("twice", "p1", JAN1 + 3 * HOUR, 7.0, "mmol/L");
    let mut second = twice
        .index
        .iter()
        .find(|e| e.param == "code-value-quantity")
        .cloned()
        .expect("a value entry");
    if let IndexValue::Composite(parts) = &mut second.value
        && let Some(IndexValue::Quantity {
            value, low, high, ..
        }) = parts.get_mut(1)
    {
        (*value, *low, *high) = (8.0, 8.0, 8.0);
    }
    twice.index.push(second);
    pairs.extend([(JAN1 + 3 * HOUR, 7.0), (JAN1 + 3 * HOUR, 8.0)]);
    ops.push(WriteOp::Create {
        new: twice,
        if_none_exist: None,
    });
    let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    let a = aggregation(JAN1, JAN1 + 2 * DAY, 4 * HOUR);
    let expected = naive_buckets(&pairs, &a);
    assert_buckets_agree(&store.aggregate(&q, &a).expect("aggregates"), &expected);
    // Values 2.0 to 9.5 lose theirs; "twice" had none to lose.
    assert_eq!(db.forget_inline_values_below(10.0), 16);
    assert_buckets_agree(&store.aggregate(&q, &a).expect("aggregates"), &expected);
}

pub(crate) fn aggregates_keep_units_apart_honour_clauses_and_refuse_what_they_cannot<E: Engine>() {
    let db = E::new();
    let store = db.open();
    let q = query("p1", vec![clause("code", vec![code(GLUCOSE)])]);
    let a = aggregation(JAN1, JAN1 + DAY, HOUR);
    // Nothing stored, an unknown citizen: no buckets.
    assert!(store.aggregate(&q, &a).expect("aggregates").is_empty());
    let mut hidden = measured("h", "p1", JAN1 + 2 * HOUR, 30.0, "mmol/L");
    hidden.index.push(token(
        "_security",
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "R",
    ));
    for new in [
        with_component(measured("a", "p1", JAN1 + HOUR, 5.0, "mmol/L"), 120.0),
        with_component(measured("b", "p1", JAN1 + HOUR + 1, 90.0, "mg/dL"), 140.0),
        measured("c", "p1", JAN1 + 2 * HOUR, 2.0, "mmol/L"),
        hidden,
        observation("w", "p1", WEIGHT, JAN1 + HOUR, 70.0),
    ] {
        create(&store, new);
    }
    // An empty range of an existing series.
    assert!(
        store
            .aggregate(&q, &aggregation(JAN1 + 5 * DAY, JAN1 + 6 * DAY, HOUR))
            .expect("aggregates")
            .is_empty()
    );
    let found = store.aggregate(&q, &a).expect("aggregates");
    let summary: Vec<(i64, &str, u64, f64, f64)> = found
        .iter()
        .map(|b| (b.index, b.unit.as_str(), b.count, b.min, b.max))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "mg/dL", 1, 90.0, 90.0),
            (1, "mmol/L", 1, 5.0, 5.0),
            (2, "mmol/L", 2, 2.0, 30.0),
        ]
    );
    assert_eq!((found[2].below, found[2].within, found[2].above), (1, 0, 1));
    // Security labels are excluded when the query says so, as a search would.
    let mut labelled = q.clone();
    labelled.clauses.push(Clause {
        param: "_security".into(),
        modifier: Some(Modifier::Not),
        chain: None,
        values: vec![QueryValue::Token {
            system: Some(TokenSystem::Is(
                "http://terminology.hl7.org/CodeSystem/v3-Confidentiality".into(),
            )),
            code: Some("R".into()),
        }],
    });
    let found = store.aggregate(&labelled, &a).expect("aggregates");
    assert_eq!(found.last().map(|b| (b.count, b.max)), Some((1, 2.0)));
    // A component's values.
    let mut systolic = a.clone();
    systolic.value = crate::AggregateValue::Component {
        system: LOINC.into(),
        code: "8480-6".into(),
    };
    let found = store.aggregate(&q, &systolic).expect("aggregates");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].unit.as_str(), found[0].count, found[0].sum),
        ("mm[Hg]", 2, 260.0)
    );
    // An OR of codes counts each reading once.
    let both = query(
        "p1",
        vec![clause("code", vec![code(GLUCOSE), code(WEIGHT)])],
    );
    let total: u64 = store
        .aggregate(&both, &a)
        .expect("aggregates")
        .iter()
        .map(|b| b.count)
        .sum();
    assert_eq!(total, 5);
    // A reading carrying two of the codes asked counts once; a code the range does not
    // hold changes nothing.
    let mut twice = measured("t", "p1", JAN1 + 3 * HOUR, 7.0, "mmol/L");
    // As the indexer writes it: the composite pairs every coding with the value.
    twice.index.push(token("code", LOINC, "2339-0"));
    twice.index.push(IndexEntry {
        param: "code-value-quantity".into(),
        value: IndexValue::Composite(vec![
            IndexValue::Token {
                system: Some(LOINC.into()),
                code: Some("2339-0".into()),
                text: None,
            },
            IndexValue::Quantity {
                value: 7.0,
                low: 6.95,
                high: 7.05,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mmol/L".into()),
                unit: None,
            },
        ]),
    });
    create(&store, twice);
    let or = query(
        "p1",
        vec![clause(
            "code",
            vec![code("2339-0"), code("9999-9"), code(GLUCOSE)],
        )],
    );
    let found = store.aggregate(&or, &a).expect("aggregates");
    let in_third_hour: Vec<(u64, f64)> = found
        .iter()
        .filter(|b| b.index == 3)
        .map(|b| (b.count, b.sum))
        .collect();
    assert_eq!(in_third_hour, vec![(1, 7.0)]);
    assert_eq!(found.iter().map(|b| b.count).sum::<u64>(), 5);
    // What cannot be aggregated is refused, not guessed.
    let mut everyone = q.clone();
    everyone.compartment = None;
    for (query, agg) in [
        (everyone, a.clone()),
        (query("p1", vec![]), a.clone()),
        (q.clone(), aggregation(JAN1, JAN1 + DAY, 0)),
        (q.clone(), aggregation(JAN1 + DAY, JAN1, HOUR)),
    ] {
        assert!(
            matches!(
                store.aggregate(&query, &agg),
                Err(StoreError::Unsupported(_))
            ),
            "{query:?} {agg:?}"
        );
    }
}

/// An Observation as the server stores it: its index entries extracted from its JSON.
fn extracted(id: &str, patient: &str, body: serde_json::Value) -> NewVersion {
    let mut body = body;
    body["resourceType"] = "Observation".into();
    body["id"] = id.into();
    body["subject"] = serde_json::json!({ "reference": format!("Patient/{patient}") });
    NewVersion {
        resource_type: "Observation".into(),
        id: id.into(),
        version: 1,
        last_updated: JAN1,
        index: phr_search::extract(&body).expect("an Observation"),
        body: body.to_string().into_bytes(),
        patient: Some(patient.into()),
        app: None,
    }
}

fn ucum(value: f64, unit: &str) -> serde_json::Value {
    serde_json::json!({ "value": value, "system": "http://unitsofmeasure.org", "code": unit })
}

fn at_least(value: f64) -> QueryValue {
    QueryValue::Quantity {
        prefix: Prefix::Ge,
        value,
        low: value,
        high: value,
        system: None,
        code: None,
    }
}

/// `combo-code` and the other `Registry::stored_union` parameters have no rows of their
/// own; a search on one reads the rows of the parameters it unites, finds a resource once
/// when both hold the value, and sorts and tests `:missing` over all of them.
pub(crate) fn union_parameters_are_answered_from_the_rows_they_unite<E: Engine>() {
    const SYSTOLIC: &str = "8480-6";
    const DIASTOLIC: &str = "8462-4";
    let db = E::new();
    let store = db.open();
    let coded = |c: &str| serde_json::json!({ "coding": [{ "system": LOINC, "code": c }] });
    let component = |c: &str, v: f64| serde_json::json!({ "code": coded(c), "valueQuantity": ucum(v, "mm[Hg]") });
    let panel = serde_json::json!({
        "status": "final", "code": coded("85354-9"),
        "component": [component(SYSTOLIC, 120.0), component(DIASTOLIC, 80.0)],
    });
    let systolic = serde_json::json!({
        "status": "final", "code": coded(SYSTOLIC), "valueQuantity": ucum(130.0, "mm[Hg]"),
    });
    // The same code in `code` and in `component.code`.
    let twice = serde_json::json!({
        "status": "final", "code": coded(GLUCOSE), "valueQuantity": ucum(5.5, "mmol/L"),
        "component": [{ "code": coded(GLUCOSE), "valueQuantity": ucum(6.1, "mmol/L") }],
    });
    let unvalued = serde_json::json!({ "status": "final", "code": coded(WEIGHT) });
    for (id, body) in [
        ("bp", panel),
        ("sys", systolic),
        ("glu", twice),
        ("w", unvalued),
    ] {
        let new = extracted(id, "p1", body);
        assert!(new.index.iter().any(|e| e.param == "combo-code"));
        create(&store, new);
    }
    for param in [
        "combo-code",
        "combo-value-quantity",
        "combo-code-value-quantity",
    ] {
        assert_eq!(db.index_rows_of(param), 0, "{param} has no rows of its own");
    }
    assert!(db.index_rows_of("component-code") > 0);

    let combo = |param: &str, values: Vec<QueryValue>| query("p1", vec![clause(param, values)]);
    assert_eq!(
        search_ids(&store, &combo("combo-code", vec![code(SYSTOLIC)])),
        vec!["bp", "sys"]
    );
    let mut once = combo("combo-code", vec![code(GLUCOSE)]);
    once.total = TotalMode::Accurate;
    let page = store.search(&once, None).expect("searches");
    assert_eq!(
        ids(&page),
        vec!["glu"],
        "found once though both hold the code"
    );
    assert_eq!(page.total, Some(1));
    assert_eq!(
        search_ids(
            &store,
            &combo("combo-value-quantity", vec![at_least(125.0)])
        ),
        vec!["sys"]
    );
    assert_eq!(
        search_ids(&store, &combo("combo-value-quantity", vec![at_least(6.0)])),
        vec!["bp", "glu", "sys"]
    );
    let pair = |c: &str, v: f64| QueryValue::Composite(vec![code(c), at_least(v)]);
    assert_eq!(
        search_ids(
            &store,
            &combo("combo-code-value-quantity", vec![pair(SYSTOLIC, 125.0)])
        ),
        vec!["sys"]
    );
    assert_eq!(
        search_ids(
            &store,
            &combo("combo-code-value-quantity", vec![pair(SYSTOLIC, 100.0)])
        ),
        vec!["bp", "sys"]
    );
    assert_eq!(
        search_ids(
            &store,
            &combo("combo-code-value-quantity", vec![pair(GLUCOSE, 6.0)])
        ),
        vec!["glu"]
    );
    let mut missing = clause("combo-value-quantity", vec![]);
    missing.modifier = Some(Modifier::Missing(true));
    assert_eq!(
        search_ids(&store, &query("p1", vec![missing.clone()])),
        vec!["w"]
    );
    missing.modifier = Some(Modifier::Missing(false));
    assert_eq!(
        search_ids(&store, &query("p1", vec![missing])),
        vec!["bp", "glu", "sys"]
    );

    // Sorted by the smallest value ascending and the largest descending, over both sources;
    // without a value last.
    for (descending, expected) in [
        (false, ["glu", "bp", "sys", "w"]),
        (true, ["sys", "bp", "glu", "w"]),
    ] {
        let mut sorted = query("p1", vec![]);
        sorted.sort = vec![SortKey {
            param: "combo-value-quantity".into(),
            descending,
        }];
        let page = store.search(&sorted, None).expect("searches");
        assert_eq!(ids(&page), expected, "descending: {descending}");
    }
    // Codes sort as text; a page of one at a time visits each resource once, though
    // `glu` holds its code in both united parameters.
    let status = clause(
        "status",
        vec![QueryValue::Token {
            system: None,
            code: Some("final".into()),
        }],
    );
    for (descending, expected) in [
        (false, ["glu", "w", "bp", "sys"]),
        (true, ["bp", "sys", "w", "glu"]),
    ] {
        for clauses in [vec![], vec![status.clone()]] {
            let mut sorted = query("p1", clauses);
            sorted.count = 1;
            sorted.sort = vec![SortKey {
                param: "combo-code".into(),
                descending,
            }];
            assert_eq!(
                all_pages(&store, &sorted),
                expected,
                "descending: {descending}"
            );
        }
    }

    // Reached through a reverse chain from the Patient.
    create(&store, patient("p1", "Virtanen"));
    let has = |c: &str| Clause {
        param: "_has".into(),
        modifier: None,
        chain: Some(Box::new(Chain::Reverse {
            source_type: "Observation".into(),
            reference_param: "subject".into(),
            inner: clause("combo-code", vec![code(c)]),
        })),
        values: vec![],
    };
    let mut patients = query("p1", vec![has(DIASTOLIC)]);
    patients.resource_type = "Patient".into();
    assert_eq!(search_ids(&store, &patients), vec!["p1"]);
    patients.clauses = vec![has("no-such-code")];
    assert!(search_ids(&store, &patients).is_empty());
}
