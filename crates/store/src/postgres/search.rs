//! Executes a parsed [`SearchQuery`] on PostgreSQL: the SQLite engine's plan (a driver range
//! scan, one subquery per other clause, sort joins, keyset paging, includes), with the
//! differences a citizen-placed schema needs:
//!
//! - a version is identified by `(pid, seq)` (sequences are per compartment), so every
//!   subquery and join correlates on both, `pid` first;
//! - a compartment search is pinned to that compartment's sequence (read once for the first
//!   page and carried in the cursor) and to the sequence of the resources outside every
//!   compartment (for `_include`, chains and `_has` that reach them); both are exact: a
//!   write to the compartment after the first page has a higher sequence. The cursor
//!   carries the second snapshot as its first key;
//! - a search across every compartment (no `compartment`, operators) is pinned to the
//!   highest sequence of any compartment when its first page was read. Compartment
//!   sequences are hybrid clocks, so that is "every write committed before the first page";
//!   a write that was still in flight then may show on a later page (a compartment search
//!   has no such gap).
//!
//! Statements are built with `?N` placeholders like the SQLite planner (sharing its pure
//! helpers) and renumbered to `$N` when run. This module never writes.

use std::collections::{HashMap, HashSet};
use std::error::Error;

use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use bytes::BytesMut;
use phr_search::{
    Chain, Clause, Include, Modifier, Prefix, QueryValue, Registry, SortKey, Summary, TokenSystem,
    TotalMode,
};
use rusqlite::types::Value;

use super::names::{compartment_key, name_id};
use super::pool::Conn;
use super::{Param, PgError, PostgresStore, VERSION_COLUMNS, VersionRow};
use crate::sqlite::cursor::{self, Cursor, Direction};
use crate::sqlite::now_micros;
use crate::sqlite::row_test::{self, RowTest};
use crate::sqlite::rows::{self, Kind, Row};
use crate::sqlite::search::{
    EVERY_COMPARTMENT, Key, MAX_CODE_ARMS, Sql, aggregate_code_clause, aggregate_rows_statement,
    aggregate_value_param, check_aggregation, clause_codes, date_cond, in_patient_compartments,
    is_plain_date, is_single_system_code, is_system_codes, keep_codes, keyset, kinds_of_each,
    like_escape, number_cond, pid_test, presence_statement, uri_prefixes, walk_arms,
};
use crate::sqlite::walk::{Probe, Walk, WalkReader, walk_rows};
use crate::{AggregateValue, Aggregation, Bucket};
use crate::{SearchPage, SearchQuery, StoreError, StoredResource};

/// What a search's statements are planned with. Statements run their generic plan (see
/// `pool`), which cannot know the citizen: once the tables have statistics, PostgreSQL
/// estimates a handful of rows for any one citizen and sorts a page's rows instead of
/// reading them in an index's order, which for a year of 5-minute glucose sorts 105,000
/// rows per page. Without sorts where an index gives the order, every year-long shape of
/// `store-bench --shapes` has p99 under 100 ms on analyzed tables (up to 460 ms with sorts).
/// Aggregates group rows, and keep sorts.
const SEARCH_SETTINGS: &[&str] = &["SET LOCAL enable_sort = off"];

/// A condition that always holds / never holds.
const ALWAYS: &str = "true";
const NEVER: &str = "false";

/// The statement of an aggregate: the values of `rows` (an `aggregate_rows_statement`)
/// grouped per (interval, unit): index, unit system, unit code, count, min, max, sum, below,
/// within, above. `low_p` and `high_p` are the band's bound placeholders. The database
/// groups them: sending every value to this process would cost more than its sort.
fn aggregate_statement(rows: &str, low_p: &str, high_p: &str) -> String {
    format!(
        "SELECT m.b, coalesce(s.uri, ''), coalesce(m.ucode, ''), count(*), min(m.x), max(m.x), sum(m.x), \
         sum(CASE WHEN m.x < {low_p} THEN 1 ELSE 0 END), \
         sum(CASE WHEN m.x >= {low_p} AND m.x <= {high_p} THEN 1 ELSE 0 END), \
         sum(CASE WHEN m.x > {high_p} THEN 1 ELSE 0 END) \
         FROM ({rows}) m LEFT JOIN systems s ON s.sys = m.usys \
         GROUP BY m.b, s.uri, m.ucode ORDER BY m.b, s.uri, m.ucode"
    )
}

/// A bound value as PostgreSQL wants it: the planner binds SQLite values; the server infers
/// each parameter's type from where it is used.
#[derive(Debug)]
struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(f) => f.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `?N` placeholders to PostgreSQL's `$N` (they only ever come from `Sql::bind`).
fn renumber(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a planner statement. Parameter types are declared from the bound values: a
/// parameter the statement does not use (a date prefix needs only one end of the period)
/// would otherwise have no type at all.
fn query_values(
    conn: &mut Conn,
    sql: &str,
    values: &[Value],
) -> Result<Vec<::postgres::Row>, PgError> {
    let bound: Vec<Bound<'_>> = values.iter().map(Bound).collect();
    let params: Vec<Param<'_>> = bound.iter().map(|b| b as Param<'_>).collect();
    let types: Vec<Type> = values
        .iter()
        .map(|v| match v {
            Value::Integer(_) => Type::INT8,
            Value::Real(_) => Type::FLOAT8,
            Value::Text(_) => Type::TEXT,
            Value::Blob(_) => Type::BYTEA,
            Value::Null => Type::UNKNOWN,
        })
        .collect();
    let text = renumber(sql);
    #[cfg(test)]
    plans::record(conn, &text, &types, &params);
    let statement = conn.prepare_typed(&text, &types)?;
    Ok(conn.client.query(&statement, &params)?)
}

/// A column of a result row as a cursor key value.
fn key_value(row: &::postgres::Row, i: usize) -> Result<Value, PgError> {
    let ty = row
        .columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| PgError::Corrupt("a search row is too short".into()))?;
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, |v| Value::Integer(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Value::Null, Value::Real),
        Type::NUMERIC => {
            return Err(PgError::Corrupt("a numeric sort key".into()));
        }
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
    })
}

/// The snapshots a page is pinned to.
#[derive(Clone, Copy)]
struct Snapshots {
    /// The searched compartment's (or every compartment's) sequence.
    own: i64,
    /// The sequence of resources outside every compartment (`pid` 0).
    shared: i64,
}

#[derive(Clone)]
struct Plan {
    from: String,
    joins: Vec<String>,
    conds: Vec<String>,
    keys: Vec<Key>,
    /// The driver as a union of ordered arms (as in the SQLite planner); compartment
    /// searches only.
    arms: Vec<String>,
    /// A walk over the sort parameter's index (as in the SQLite planner); compartment
    /// searches only.
    walk: Option<Box<Walk<Plan>>>,
}

/// Ids here are hashes of the names: every name has one, stored or not.
struct HashedNames;

impl row_test::Names for HashedNames {
    type Error = Fail;
    fn params(&self, resource_type: &str, name: &str) -> Result<Vec<i64>, Fail> {
        Ok(stored_params(resource_type, name))
    }
    fn system(&self, uri: &str) -> Result<Option<i64>, Fail> {
        Ok(Some(name_id(uri)))
    }
    fn resource_type(&self, name: &str) -> Result<Option<i64>, Fail> {
        Ok(Some(name_id(name)))
    }
}

struct Ctx<'a> {
    store: &'a PostgresStore,
    conn: &'a mut Conn,
    sql: Sql,
    pid: i64,
    tid: i64,
    snap: Snapshots,
    /// Widest indexed period per date parameter of the type in the compartment.
    spans: HashMap<i64, i64>,
}

pub fn run(
    store: &PostgresStore,
    query: &SearchQuery,
    page: Option<&str>,
) -> Result<SearchPage, StoreError> {
    let fingerprint = cursor::fingerprint(&format!("search|{query:?}"));
    let given = match page {
        None => None,
        Some(text) => {
            let c = cursor::decode(text, &store.cursor_key).ok_or(StoreError::BadCursor)?;
            let ttl = store.config.cursor_ttl.as_micros() as i64;
            if c.fingerprint != fingerprint || c.issued.saturating_add(ttl) < now_micros() {
                return Err(StoreError::BadCursor);
            }
            // The shared snapshot rides first in the keys.
            let Some((Value::Integer(shared), _)) = c.keys.split_first() else {
                return Err(StoreError::BadCursor);
            };
            let shared = *shared;
            let mut c = c;
            c.keys.remove(0);
            Some((c, shared))
        }
    };
    let tid = name_id(&query.resource_type);
    let every = query.compartment.is_none() && in_patient_compartments(&query.resource_type);
    let pid = match &query.compartment {
        _ if every => EVERY_COMPARTMENT,
        None => 0,
        Some(p) => compartment_key(Some(p)),
    };
    // The snapshots and the compartment's date spans, with the BEGIN in one round trip.
    let snapshot_sql = if pid == EVERY_COMPARTMENT {
        format!(
            "SELECT 0, coalesce(max(seq), 0), coalesce(max(pruned_through), 0), '' FROM compartments;
             SELECT param, max(span) FROM date_spans WHERE tid = {tid} GROUP BY param"
        )
    } else {
        format!(
            "SELECT pid, seq, pruned_through, patient FROM compartments WHERE pid = {pid} OR pid = 0;
             SELECT param, span FROM date_spans WHERE pid = {pid} AND tid = {tid}"
        )
    };
    let result = store.with_snapshot(SEARCH_SETTINGS, &snapshot_sql, |conn, results| {
        let (rows, span_rows) = match results.as_slice() {
            [rows, spans] => (rows, spans),
            _ => return Err(PgError::Corrupt("the snapshot statements".into())),
        };
        let mut spans = HashMap::new();
        for r in span_rows {
            let number = |i: usize| {
                r.get(i)
                    .and_then(|v| v.as_deref())
                    .and_then(|t| t.parse::<i64>().ok())
            };
            if let (Some(param), Some(span)) = (number(0), number(1)) {
                spans.insert(param, span);
            }
        }
        let Some((now, pruned)) = current_snapshots(rows, pid, query.compartment.as_deref())?
        else {
            let start = start_cursor(fingerprint, Snapshots { own: 0, shared: 0 });
            return Ok(Err(empty_page(query, start, store)));
        };
        let (cursor, snap) = match &given {
            Some((c, shared)) => {
                let snap = Snapshots {
                    own: c.snapshot,
                    shared: *shared,
                };
                if snap.own < pruned.own || snap.shared < pruned.shared {
                    return Ok(Err(Err(StoreError::BadCursor)));
                }
                (c.clone(), snap)
            }
            None => (start_cursor(fingerprint, now), now),
        };
        let mut ctx = Ctx {
            store,
            conn,
            sql: Sql { values: vec![] },
            pid,
            tid,
            snap,
            spans,
        };
        let plan = match ctx.plan(query) {
            Ok(plan) => plan,
            Err(Fail::Store(e)) => return Ok(Err(Err(e))),
            Err(Fail::Pg(e)) => return Err(e),
        };
        match execute(&mut ctx, query, plan, cursor) {
            Ok(page) => Ok(Ok(page)),
            Err(Fail::Store(e)) => Ok(Err(Err(e))),
            Err(Fail::Pg(e)) => Err(e),
        }
    })?;
    match result {
        Ok(page) => Ok(page),
        Err(answer) => answer,
    }
}

/// [`crate::Storage::aggregate`] on PostgreSQL: the compartment's plan (as a search's first
/// page, at the compartment's current sequence) aggregated in one statement.
pub fn aggregate(
    store: &PostgresStore,
    query: &SearchQuery,
    aggregation: &Aggregation,
) -> Result<Vec<Bucket>, StoreError> {
    check_aggregation(query, aggregation)?;
    let tid = name_id(&query.resource_type);
    let pid = compartment_key(query.compartment.as_deref());
    let snapshot_sql = format!(
        "SELECT pid, seq, pruned_through, patient FROM compartments WHERE pid = {pid} OR pid = 0;
         SELECT param, span FROM date_spans WHERE pid = {pid} AND tid = {tid}"
    );
    store.with_snapshot(&[], &snapshot_sql, |conn, results| {
        let rows = match results.first() {
            Some(rows) => rows,
            None => return Err(PgError::Corrupt("the snapshot statements".into())),
        };
        let Some((snap, _)) = current_snapshots(rows, pid, query.compartment.as_deref())? else {
            return Ok(Ok(Vec::new()));
        };
        // Codes of the OR the range does not hold are left out first (as on SQLite).
        let Some((ci, tname, dname)) = aggregate_code_clause(query, &store.config.code_date_pairs)
        else {
            return Ok(Err(StoreError::Unsupported(
                "an aggregate needs the codes (system|code) of a code x date pair".into(),
            )));
        };
        let asked: Vec<(String, i64)> = query
            .clauses
            .get(ci)
            .map(clause_codes)
            .unwrap_or_default()
            .into_iter()
            .map(|(system, code)| (code, name_id(&system)))
            .collect();
        if asked.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let mut sql = Sql { values: vec![] };
        let text = presence_statement(
            &mut sql,
            pid,
            tid,
            name_id(&tname),
            name_id(&dname),
            &asked,
            Some((aggregation.from, aggregation.to)),
            snap.own,
        );
        let rows = query_values(conn, &text, &sql.values)?;
        let keep: Vec<bool> = match rows.first() {
            Some(row) => (0..asked.len())
                .map(|i| row.try_get::<_, bool>(i))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if !keep.contains(&true) {
            return Ok(Ok(Vec::new()));
        }
        let query = &keep_codes(query, ci, &keep);
        let mut ctx = Ctx {
            store,
            conn,
            sql: Sql { values: vec![] },
            pid,
            tid,
            snap,
            // The aggregate bounds its own date range: no span is needed.
            spans: HashMap::new(),
        };
        let plan = match ctx.plan_driver(query) {
            Ok(plan) => plan,
            Err(Fail::Store(e)) => return Ok(Err(e)),
            Err(Fail::Pg(e)) => return Err(e),
        };
        if plan.conds.iter().any(|c| c == NEVER) {
            return Ok(Ok(Vec::new()));
        }
        if !plan.from.starts_with("idx_code_date") {
            return Ok(Err(StoreError::Unsupported(
                "an aggregate needs the codes (system|code) of a code x date pair".into(),
            )));
        }
        let vp = ctx
            .sql
            .bind(name_id(aggregate_value_param(&aggregation.value)));
        let snap_p = ctx.sql.bind(snap.own);
        let code_match = match &aggregation.value {
            AggregateValue::Value => "v.code1 = c.code AND v.sys1 = c.sys".to_owned(),
            AggregateValue::Component { system, code } => format!(
                "v.code1 = {} AND v.sys1 = {}",
                ctx.sql.bind(code.clone()),
                ctx.sql.bind(name_id(system))
            ),
        };
        let value_join = format!(
            "v.pid = c.pid AND v.tid = c.tid AND v.param = {vp} AND {code_match} AND v.seq = c.seq \
             AND v.k2 = 2 AND v.seq <= {snap_p} AND v.seq_to > {snap_p}"
        );
        let from_p = ctx.sql.bind(aggregation.from);
        let to_p = ctx.sql.bind(aggregation.to);
        let width_p = ctx.sql.bind(aggregation.interval);
        let (low, high) = match aggregation.bands {
            Some((l, h)) => (Value::Real(l), Value::Real(h)),
            None => (Value::Null, Value::Null),
        };
        let low_p = ctx.sql.bind(low);
        let high_p = ctx.sql.bind(high);
        let rows_sql = aggregate_rows_statement(
            "idx_code_date c",
            &plan.conds,
            &plan.arms,
            &value_join,
            matches!(aggregation.value, AggregateValue::Value),
            &format!("{from_p}::bigint"),
            &format!("{to_p}::bigint"),
            &format!("{width_p}::bigint"),
        );
        let text = aggregate_statement(
            &rows_sql,
            &format!("{low_p}::float8"),
            &format!("{high_p}::float8"),
        );
        let rows = query_values(ctx.conn, &text, &ctx.sql.values)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let n = |i: usize| -> Result<u64, PgError> {
                Ok(r.try_get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
            };
            out.push(Bucket {
                index: r.try_get(0)?,
                unit_system: r.try_get(1)?,
                unit: r.try_get(2)?,
                count: n(3)?,
                min: r.try_get(4)?,
                max: r.try_get(5)?,
                sum: r.try_get(6)?,
                below: n(7)?,
                within: n(8)?,
                above: n(9)?,
            });
        }
        Ok(Ok(out))
    })?
}

/// The snapshots of a first page and the pruning marks from the compartment rows, or None
/// when the compartment does not exist (or is another Patient's under the same key).
fn current_snapshots(
    rows: &[Vec<Option<String>>],
    pid: i64,
    patient: Option<&str>,
) -> Result<Option<(Snapshots, Snapshots)>, PgError> {
    let number = |v: Option<&Option<String>>| -> Result<i64, PgError> {
        v.and_then(|v| v.as_deref())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| PgError::Corrupt("a compartment row".into()))
    };
    let mut own = None;
    let mut shared = (0, 0);
    for r in rows {
        let (p, seq, pruned) = (number(r.first())?, number(r.get(1))?, number(r.get(2))?);
        let owner = r.get(3).and_then(|o| o.as_deref()).unwrap_or_default();
        if pid == EVERY_COMPARTMENT {
            return Ok(Some((
                Snapshots {
                    own: seq,
                    shared: seq,
                },
                Snapshots {
                    own: pruned,
                    shared: pruned,
                },
            )));
        }
        if p == 0 {
            shared = (seq, pruned);
        }
        if p == pid && (pid == 0 || patient == Some(owner)) {
            own = Some((seq, pruned));
        }
    }
    Ok(own.map(|(seq, pruned)| {
        (
            Snapshots {
                own: seq,
                shared: shared.0,
            },
            Snapshots {
                own: pruned,
                shared: shared.1,
            },
        )
    }))
}

fn start_cursor(fingerprint: [u8; 16], snap: Snapshots) -> Cursor {
    Cursor {
        fingerprint,
        snapshot: snap.own,
        issued: now_micros(),
        direction: Direction::Start,
        keys: vec![],
        total: None,
    }
    .with_shared(snap.shared)
}

trait WithShared {
    fn with_shared(self, shared: i64) -> Self;
}

impl WithShared for Cursor {
    /// Puts the shared snapshot in front of the position keys (how PostgreSQL cursors carry it).
    fn with_shared(mut self, shared: i64) -> Self {
        self.keys.insert(0, Value::Integer(shared));
        self
    }
}

/// A failure while planning or executing: an answer for the caller (bad cursor,
/// unsupported search), or a database error.
enum Fail {
    Store(StoreError),
    Pg(PgError),
}

impl From<PgError> for Fail {
    fn from(e: PgError) -> Self {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<::postgres::Error> for Fail {
    fn from(e: ::postgres::Error) -> Self {
        Fail::Pg(e.into())
    }
}

impl From<crate::sqlite::EngineError> for Fail {
    fn from(e: crate::sqlite::EngineError) -> Self {
        Fail::Pg(e.into())
    }
}

fn unsupported(what: String) -> Fail {
    Fail::Store(StoreError::Unsupported(what))
}

fn empty_page(
    query: &SearchQuery,
    cursor: Cursor,
    store: &PostgresStore,
) -> Result<SearchPage, StoreError> {
    let wants_total = query.total != TotalMode::None || query.summary == Summary::Count;
    Ok(SearchPage {
        total: wants_total.then_some(0),
        this: Some(cursor::encode(&cursor, &store.cursor_key)),
        ..SearchPage::default()
    })
}

fn execute(
    ctx: &mut Ctx<'_>,
    query: &SearchQuery,
    plan: Plan,
    cursor: Cursor,
) -> Result<SearchPage, Fail> {
    let shared = ctx.snap.shared;
    let wants_total = query.total != TotalMode::None || query.summary == Summary::Count;
    let mut total = cursor.total;
    // Counted up front when no page of matches will be read (`_summary=count`, `_count=0`)
    // or when asked to count.
    if wants_total
        && total.is_none()
        && (query.summary == Summary::Count
            || query.count == 0
            || query.total == TotalMode::Accurate)
    {
        total = Some(count_plan(ctx, &plan)?);
    }
    let encode = |c: &Cursor, key: &[u8]| cursor::encode(&c.clone().with_shared(shared), key);
    let mut page = SearchPage::default();
    if query.summary == Summary::Count || query.count == 0 {
        let mut this = cursor.clone();
        this.total = total;
        page.total = total;
        page.this = Some(encode(&this, &ctx.store.cursor_key));
        return Ok(page);
    }
    let backward = cursor.direction == Direction::Before;
    let limit = query.count + 1;
    if plan.walk.is_some() && wants_total && total.is_none() {
        // Counted first: the walk weighs its two ways by the count.
        total = Some(count_plan(ctx, &plan)?);
    }
    let mut rows: Vec<(Vec<Value>, VersionRow)> = match &plan.walk {
        Some(walk) => {
            let rows = walk_rows(&mut PgWalk(ctx), walk, &cursor, backward, limit, total)?;
            versions_at(ctx, rows)?
        }
        None => {
            let after = match cursor.direction {
                Direction::Start => None,
                _ => Some(cursor.keys.as_slice()),
            };
            page_rows(ctx, &plan, after, backward, limit)?
        }
    };
    let more = rows.len() > query.count;
    rows.truncate(query.count);
    if backward {
        rows.reverse();
    }
    let versions: Vec<VersionRow> = rows.iter().map(|r| r.1.clone()).collect();
    let everything_on_this_page = cursor.direction == Direction::Start && !more;
    if wants_total && total.is_none() {
        total = if everything_on_this_page {
            Some(rows.len() as u64)
        } else {
            Some(count_plan(ctx, &plan)?)
        };
    }
    let make = |direction: Direction, keys: Vec<Value>| {
        encode(
            &Cursor {
                fingerprint: cursor.fingerprint,
                snapshot: cursor.snapshot,
                issued: now_micros(),
                direction,
                keys,
                total,
            },
            &ctx.store.cursor_key,
        )
    };
    let first = rows.first().map(|r| r.0.clone());
    let last = rows.last().map(|r| r.0.clone());
    match cursor.direction {
        Direction::Start | Direction::After => {
            if more && let Some(last) = &last {
                page.next = Some(make(Direction::After, last.clone()));
            }
            if cursor.direction == Direction::After {
                page.previous = Some(make(
                    Direction::Before,
                    first.clone().unwrap_or_else(|| cursor.keys.clone()),
                ));
            }
        }
        Direction::Before => {
            if more && let Some(first) = &first {
                page.previous = Some(make(Direction::Before, first.clone()));
            }
            page.next = Some(make(
                Direction::After,
                last.clone().unwrap_or_else(|| cursor.keys.clone()),
            ));
        }
    }
    let mut this = cursor.clone();
    this.total = total;
    page.this = Some(encode(&this, &ctx.store.cursor_key));
    page.total = total;
    let included = includes(ctx, query, &versions)?;
    for v in &versions {
        page.matches.push(ctx.store.stored(ctx.conn, v)?);
    }
    page.included = included;
    Ok(page)
}

fn where_sql_of(plan: &Plan) -> String {
    if plan.conds.is_empty() {
        ALWAYS.to_owned()
    } else {
        plan.conds.join(" AND ")
    }
}

/// The matches of a plan (without keyset): one count, or one per arm summed.
fn count_plan(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<u64, PgError> {
    let where_sql = where_sql_of(plan);
    let text = if plan.arms.is_empty() {
        format!("SELECT count(*) FROM {} WHERE {where_sql}", plan.from)
    } else {
        let parts: Vec<String> = plan
            .arms
            .iter()
            .map(|arm| {
                format!(
                    "SELECT count(*) AS n FROM {} WHERE {where_sql} AND {arm}",
                    plan.from
                )
            })
            .collect();
        format!(
            "SELECT coalesce(sum(n), 0)::bigint FROM ({}) counted",
            parts.join(" UNION ALL ")
        )
    };
    let rows = query_values(ctx.conn, &text, &ctx.sql.values)?;
    let n: i64 = rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
    Ok(n as u64)
}

/// The keys (sort keys, the compartment across compartments, then `seq`) and versions of
/// up to `limit` rows of `plan` in its order (reversed when `backward`), strictly after
/// (before) `after` when given.
fn page_rows(
    ctx: &mut Ctx<'_>,
    plan: &Plan,
    after: Option<&[Value]>,
    backward: bool,
    limit: usize,
) -> Result<Vec<(Vec<Value>, VersionRow)>, Fail> {
    rows_of(
        ctx,
        plan,
        after,
        backward,
        limit,
        VERSION_COLUMNS,
        VersionRow::from_row_at,
    )
}

/// [`page_rows`] with `columns` of each row's version (aliased `v`), read by `decode` from
/// the column after the keys.
fn rows_of<T>(
    ctx: &mut Ctx<'_>,
    plan: &Plan,
    after: Option<&[Value]>,
    backward: bool,
    limit: usize,
    columns: &str,
    decode: fn(&::postgres::Row, usize) -> Result<T, PgError>,
) -> Result<Vec<(Vec<Value>, T)>, Fail> {
    let mut keys = plan.keys.clone();
    let seq_desc = keys.last().is_some_and(|k| k.descending);
    if ctx.pid == EVERY_COMPARTMENT {
        // Sequences repeat across compartments: the compartment breaks ties too.
        keys.push(Key {
            expr: "c.pid".into(),
            descending: seq_desc,
        });
    }
    keys.push(Key {
        expr: "c.seq".into(),
        descending: seq_desc,
    });
    let mut sql = Sql {
        values: ctx.sql.values.clone(),
    };
    let mut conds = vec![where_sql_of(plan)];
    if let Some(after) = after {
        if after.len() != keys.len() {
            return Err(Fail::Store(StoreError::BadCursor));
        }
        conds.push(keyset(&mut sql, &keys, after, backward));
    }
    let direction = |k: &Key| {
        if k.descending != backward {
            "DESC"
        } else {
            "ASC"
        }
    };
    let limit = sql.bind(limit as i64);
    // The versions come with the page (one round trip): the keys, then the version.
    let text = if plan.arms.is_empty() {
        let order: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", k.expr, direction(k)))
            .collect();
        let select: Vec<&str> = keys.iter().map(|k| k.expr.as_str()).collect();
        format!(
            "SELECT {}, {columns} FROM {} {} JOIN versions v ON v.pid = c.pid AND v.seq = c.seq
             WHERE {} ORDER BY {} LIMIT {limit}",
            select.join(", "),
            plan.from,
            plan.joins.join(" "),
            conds.join(" AND "),
            order.join(", ")
        )
    } else {
        let mut select: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} AS k{i}", k.expr))
            .collect();
        select.push("c.pid AS kpid".into());
        let inner_order: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", k.expr, direction(k)))
            .collect();
        let outer_order: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("u.k{i} {}", direction(k)))
            .collect();
        let names: Vec<String> = (0..keys.len()).map(|i| format!("u.k{i}")).collect();
        let seq_name = names.last().cloned().unwrap_or_default();
        let parts: Vec<String> = plan
            .arms
            .iter()
            .enumerate()
            .map(|(n, arm)| {
                format!(
                    "SELECT * FROM (SELECT {} FROM {} {} WHERE {} AND {arm} ORDER BY {} LIMIT {limit}) a{n}",
                    select.join(", "),
                    plan.from,
                    plan.joins.join(" "),
                    conds.join(" AND "),
                    inner_order.join(", ")
                )
            })
            .collect();
        format!(
            "SELECT {}, {columns} FROM ({}) u JOIN versions v ON v.pid = u.kpid AND v.seq = {seq_name}
             ORDER BY {} LIMIT {limit}",
            names.join(", "),
            parts.join(" UNION ALL "),
            outer_order.join(", ")
        )
    };
    let result = query_values(ctx.conn, &text, &sql.values)?;
    let width = keys.len();
    let mut rows = Vec::with_capacity(result.len());
    for r in &result {
        let values: Vec<Value> = (0..width)
            .map(|i| key_value(r, i))
            .collect::<Result<_, _>>()?;
        rows.push((values, decode(r, width)?));
    }
    Ok(rows)
}

/// A walk over PostgreSQL's plans. Its rows carry only what the walk reads of a version,
/// its key and manifest: most rows it reads are not kept (a version is kept at one of its
/// rows only, and the probe tests every version it meets), so the versions of the rows
/// kept are read after, in one round trip ([`versions_at`]).
struct PgWalk<'c, 'a>(&'c mut Ctx<'a>);

/// A version as a walk reads it.
struct WalkRow {
    pid: i64,
    seq: i64,
    manifest: Vec<u8>,
}

const WALK_COLUMNS: &str = "v.pid, v.seq, v.manifest";

impl WalkRow {
    fn from_row_at(r: &::postgres::Row, at: usize) -> Result<WalkRow, PgError> {
        Ok(WalkRow {
            pid: r.try_get(at)?,
            seq: r.try_get(at + 1)?,
            manifest: r.try_get(at + 2)?,
        })
    }
}

impl WalkReader for PgWalk<'_, '_> {
    type Plan = Plan;
    type Row = (Vec<Value>, WalkRow);
    type Error = Fail;
    fn rows(
        &mut self,
        plan: &Plan,
        after: Option<&[Value]>,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<Self::Row>, Fail> {
        rows_of(
            self.0,
            plan,
            after,
            backward,
            limit,
            WALK_COLUMNS,
            WalkRow::from_row_at,
        )
    }
    fn sort_width(plan: &Plan) -> usize {
        plan.keys.len()
    }
    fn keys(row: &Self::Row) -> &[Value] {
        &row.0
    }
    fn with_phase((mut keys, v): Self::Row, phase: i64) -> Self::Row {
        keys.insert(0, Value::Integer(phase));
        (keys, v)
    }
    fn seq(row: &Self::Row) -> Result<i64, Fail> {
        Ok(row.1.seq)
    }
    fn manifest(&mut self, row: &Self::Row) -> Result<Vec<Row>, Fail> {
        Ok(rows::decode_manifest(&row.1.manifest)?)
    }
}

/// The versions of a walk's rows, in their order. The search's snapshot still holds every
/// one of them.
fn versions_at(
    ctx: &mut Ctx<'_>,
    rows: Vec<(Vec<Value>, WalkRow)>,
) -> Result<Vec<(Vec<Value>, VersionRow)>, Fail> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut sql = Sql { values: vec![] };
    let pairs: Vec<String> = rows
        .iter()
        .map(|(_, w)| format!("({}, {})", sql.bind(w.pid), sql.bind(w.seq)))
        .collect();
    let text = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE (v.pid, v.seq) IN ({})",
        pairs.join(", ")
    );
    let mut found: HashMap<(i64, i64), VersionRow> = HashMap::with_capacity(rows.len());
    for r in &query_values(ctx.conn, &text, &sql.values)? {
        let v = VersionRow::from_row(r)?;
        found.insert((v.pid, v.seq), v);
    }
    rows.into_iter()
        .map(|(keys, w)| match found.remove(&(w.pid, w.seq)) {
            Some(v) => Ok((keys, v)),
            None => Err(Fail::Store(StoreError::Engine(format!(
                "version {} of compartment {} vanished within a search's snapshot",
                w.seq, w.pid
            )))),
        })
        .collect()
}

/// Compartments a subquery may look in.
#[derive(Clone)]
struct Scope {
    pids: Vec<i64>,
    tid: i64,
    /// The type `tid` names: which parameters are `Registry::stored_union`s.
    resource_type: String,
}

impl Scope {
    fn pids_sql(&self, sql: &mut Sql) -> String {
        if self.pids.contains(&EVERY_COMPARTMENT) {
            return ">= 0".to_owned();
        }
        let mut distinct = self.pids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if let [one] = distinct.as_slice() {
            format!("= {}", sql.bind(*one))
        } else {
            let list: Vec<String> = distinct.iter().map(|p| sql.bind(*p)).collect();
            format!("IN ({})", list.join(", "))
        }
    }
}

impl Ctx<'_> {
    fn pid_test(&mut self) -> String {
        pid_test(self.pid, &mut self.sql)
    }

    /// Rows of alias `a` visible at the page's snapshots, within `scope`.
    fn visible(&mut self, a: &str, scope: &Scope) -> String {
        if self.pid == EVERY_COMPARTMENT {
            let s = self.sql.bind(self.snap.own);
            return format!("{a}.seq <= {s} AND {a}.seq_to > {s}");
        }
        let mut pids = scope.pids.clone();
        pids.sort_unstable();
        pids.dedup();
        let parts: Vec<String> = pids
            .iter()
            .map(|&p| {
                let snap = if p == 0 {
                    self.snap.shared
                } else {
                    self.snap.own
                };
                let (pp, s) = (self.sql.bind(p), self.sql.bind(snap));
                format!("({a}.pid = {pp} AND {a}.seq <= {s} AND {a}.seq_to > {s})")
            })
            .collect();
        format!("({})", parts.join(" OR "))
    }

    /// As the SQLite planner: a single sort key the driver does not order by is read by
    /// walking that parameter's index (compartment searches).
    fn plan(&mut self, query: &SearchQuery) -> Result<Plan, Fail> {
        let bound = self.sql.values.len();
        let plan = self.plan_driver(query)?;
        if plan.joins.is_empty()
            || query.sort.len() != 1
            || self.pid == EVERY_COMPARTMENT
            || plan.conds.iter().any(|c| c == NEVER)
        {
            return Ok(plan);
        }
        self.sql.values.truncate(bound);
        match self.walk_plan(query)? {
            Some(plan) => Ok(plan),
            None => {
                self.sql.values.truncate(bound);
                self.plan_driver(query)
            }
        }
    }

    fn walk_plan(&mut self, query: &SearchQuery) -> Result<Option<Plan>, Fail> {
        let Some(key) = query.sort.first() else {
            return Ok(None);
        };
        let params = stored_params(&query.resource_type, &key.param);
        let kind = match self.kinds_of_all(self.tid, &params)?.as_slice() {
            [k] if *k != Kind::Composite => *k,
            _ => return Ok(None),
        };
        let unsorted = SearchQuery {
            sort: vec![],
            ..query.clone()
        };
        let base = self.plan_driver(&unsorted)?;
        if base.conds.iter().any(|c| c == NEVER) {
            return Ok(Some(base));
        }
        let descending = key.descending;
        let pid_sql = self.pid_test();
        let tid_sql = self.sql.bind(self.tid);
        let snap = self.sql.bind(self.snap.own);
        let p = self.sql.bind_any(&params);
        let mut conds = vec![
            format!("c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param {p}"),
            format!("c.seq <= {snap} AND c.seq_to > {snap}"),
        ];
        let bare_conds = conds.clone();
        if !query.clauses.is_empty() {
            // The matches, as one semi-join on the unsorted plan (its driver range scan and
            // clauses): cheaper than each clause on its own.
            let from = base.from.split(" INDEXED BY ").next().unwrap_or(&base.from);
            let where_sql = base.conds.join(" AND ");
            let matches = if base.arms.is_empty() {
                format!("SELECT c.seq FROM {from} WHERE {where_sql}")
            } else {
                base.arms
                    .iter()
                    .map(|arm| format!("SELECT c.seq FROM {from} WHERE {where_sql} AND {arm}"))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ")
            };
            conds.push(format!("c.seq IN ({matches})"));
        }
        let columns: &[&str] = match kind {
            Kind::Token => &["c.code"],
            Kind::String => &["c.norm"],
            Kind::Date if descending => &["c.high"],
            Kind::Date => &["c.low"],
            Kind::Number | Kind::Quantity => &["c.value"],
            Kind::Reference => &["c.target_id", "c.ttype", "c.url"],
            Kind::Uri => &["c.uri"],
            Kind::Composite => return Ok(None),
        };
        let keys = columns
            .iter()
            .map(|c| Key {
                expr: (*c).to_owned(),
                descending,
            })
            .collect();
        let units = if kind == Kind::Quantity {
            Some(
                params
                    .iter()
                    .map(|&param| self.units(param))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        let arms = walk_arms(&mut self.sql, &params, units.as_deref());
        if arms.len() > MAX_CODE_ARMS {
            return Ok(None);
        }
        if kind == Kind::Quantity && arms.is_empty() {
            conds.push(NEVER.into());
        }
        let rows = Plan {
            from: format!("{} c", kind.table()),
            joins: vec![],
            conds,
            keys,
            arms,
            walk: None,
        };
        let (pid_p, tid_p, p2) = (
            self.pid_test(),
            self.sql.bind(self.tid),
            self.sql.bind_any(&params),
        );
        let probe = if query.clauses.is_empty() || rows.conds.iter().any(|c| c == NEVER) {
            None
        } else {
            RowTest::of(query, &HashedNames)?.map(|test| {
                let bare = Plan {
                    conds: bare_conds,
                    ..rows.clone()
                };
                Probe { rows: bare, test }
            })
        };
        let mut rest = base.clone();
        rest.conds.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} x WHERE x.pid {pid_p} AND x.tid = {tid_p} AND x.param {p2} AND x.seq = c.seq)",
            kind.table()
        ));
        Ok(Some(Plan {
            walk: Some(Box::new(Walk {
                rows,
                params,
                kind,
                descending,
                rest,
                probe,
            })),
            ..base
        }))
    }

    /// The units (system, code) of a quantity parameter in the compartment: one index seek
    /// each.
    fn units(&mut self, param: i64) -> Result<Vec<(i64, String)>, PgError> {
        let mut out: Vec<(i64, String)> = Vec::new();
        let mut last: (i64, String) = (i64::MIN, String::new());
        loop {
            let rows = self.conn.query(
                "SELECT sys, code FROM idx_quantity WHERE pid = $1 AND tid = $2 AND param = $3
                   AND (sys, code) > ($4, $5::text) ORDER BY sys, code LIMIT 1",
                &[&self.pid, &self.tid, &param, &last.0, &last.1],
            )?;
            let Some(row) = rows.first() else { break };
            let next: (i64, String) = (row.try_get(0)?, row.try_get(1)?);
            out.push(next.clone());
            if out.len() > MAX_CODE_ARMS {
                break;
            }
            last = next;
        }
        Ok(out)
    }

    fn plan_driver(&mut self, query: &SearchQuery) -> Result<Plan, Fail> {
        let pid_sql = self.pid_test();
        let tid_sql = self.sql.bind(self.tid);
        let snap = self.sql.bind(self.snap.own);
        let mut used = vec![false; query.clauses.len()];
        let mut conds = Vec::new();
        let mut natural: Vec<Key> = Vec::new();
        let mut driver_date_param: Option<String> = None;
        let mut arms: Vec<String> = Vec::new();
        let first_sort = query.sort.first();
        let single_valued_dates = self.single_valued_dates(&query.resource_type);

        // 1. code x date pairs.
        let mut from = None;
        let pairs: Vec<(String, String)> = self
            .store
            .config
            .code_date_pairs
            .iter()
            .filter(|p| p.resource_type == query.resource_type)
            .map(|p| (p.token_param.clone(), p.date_param.clone()))
            .collect();
        for (tparam_name, dparam_name) in pairs {
            let every = self.pid == EVERY_COMPARTMENT;
            let Some(ci) = query.clauses.iter().position(|c| {
                c.param == tparam_name
                    && if every {
                        is_single_system_code(c)
                    } else {
                        is_system_codes(c)
                    }
            }) else {
                continue;
            };
            let date_clauses: Vec<usize> = query
                .clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| is_plain_date(c, &dparam_name))
                .map(|(i, _)| i)
                .collect();
            let sorted_by_it = first_sort.is_some_and(|s| s.param == dparam_name);
            if date_clauses.is_empty() && !sorted_by_it && first_sort.is_some() {
                continue;
            }
            let mut codes: Vec<(String, i64)> = Vec::new();
            for value in query.clauses.get(ci).map_or(&[][..], |c| &c.values[..]) {
                if let QueryValue::Token {
                    system: Some(TokenSystem::Is(system)),
                    code: Some(code),
                } = value
                {
                    let sys = name_id(system);
                    if !codes.iter().any(|(c, s)| c == code && *s == sys) {
                        codes.push((code.clone(), sys));
                    }
                }
            }
            if codes.is_empty() {
                continue;
            }
            let (tparam, dparam) = (name_id(&tparam_name), name_id(&dparam_name));
            if codes.len() > 1 && self.pid != EVERY_COMPARTMENT {
                // As on SQLite: codes the compartment does not hold are left out first, so no
                // arm tests its rows against them.
                let mut probe = Sql { values: vec![] };
                let text = presence_statement(
                    &mut probe,
                    self.pid,
                    self.tid,
                    tparam,
                    dparam,
                    &codes,
                    None,
                    self.snap.own,
                );
                let rows = query_values(self.conn, &text, &probe.values)?;
                let present: Vec<bool> = match rows.first() {
                    Some(row) => (0..codes.len())
                        .map(|i| row.try_get::<_, bool>(i))
                        .collect::<Result<_, _>>()
                        .map_err(PgError::from)?,
                    None => Vec::new(),
                };
                let mut flags = present.into_iter();
                codes.retain(|_| flags.next().unwrap_or(false));
                if codes.is_empty() {
                    return Ok(self.nothing(&pid_sql));
                }
            }
            if let Some(u) = used.get_mut(ci) {
                *u = true;
            }
            let (tp, dp) = (self.sql.bind(tparam), self.sql.bind(dparam));
            conds.push(format!(
                "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.tparam = {tp} AND c.dparam = {dp}"
            ));
            let bound: Vec<(String, String)> = codes
                .iter()
                .map(|(code, sys)| (self.sql.bind(code.clone()), self.sql.bind(*sys)))
                .collect();
            for (n, (code_p, sys_p)) in bound.iter().enumerate() {
                let mut arm = format!("c.code = {code_p} AND c.sys = {sys_p}");
                for (earlier_code, earlier_sys) in bound.iter().take(n) {
                    arm.push_str(&format!(
                        " AND NOT EXISTS (SELECT 1 FROM idx_code_date d WHERE d.pid = c.pid AND d.tid = c.tid AND d.tparam = c.tparam AND d.dparam = c.dparam AND d.code = {earlier_code} AND d.sys = {earlier_sys} AND d.low = c.low AND d.seq = c.seq)"
                    ));
                }
                arms.push(arm);
            }
            if let [only] = arms.as_slice() {
                conds.push(only.clone());
                arms.clear();
            }
            let span = self.span(dparam)?;
            let descending = sorted_by_it && first_sort.is_some_and(|k| k.descending);
            for &i in &date_clauses {
                if let (Some(u), Some(clause)) = (used.get_mut(i), query.clauses.get(i)) {
                    *u = true;
                    let cond = self.date_driver_cond(clause, span, descending);
                    conds.push(cond);
                }
            }
            from = Some("idx_code_date c".to_owned());
            driver_date_param = Some(dparam_name.clone());
            natural.push(Key {
                expr: "c.low".into(),
                descending: false,
            });
            break;
        }
        // 2. a single-valued date parameter that the search sorts or filters by.
        if from.is_none() {
            let date_param = match first_sort {
                Some(s) if single_valued_dates.contains(&s.param) => Some(s.param.clone()),
                Some(_) => None,
                None => query
                    .clauses
                    .iter()
                    .find(|c| single_valued_dates.iter().any(|d| is_plain_date(c, d)))
                    .map(|c| c.param.clone()),
            };
            if let Some(name) = date_param {
                let param = name_id(&name);
                let p = self.sql.bind(param);
                conds.push(format!(
                    "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p}"
                ));
                let span = self.span(param)?;
                let descending = first_sort.is_some_and(|k| k.param == name && k.descending);
                for (i, clause) in query.clauses.iter().enumerate() {
                    if let Some(u) = used.get_mut(i)
                        && !*u
                        && is_plain_date(clause, &name)
                    {
                        *u = true;
                        let cond = self.date_driver_cond(clause, span, descending);
                        conds.push(cond);
                    }
                }
                from = Some("idx_date c".to_owned());
                driver_date_param = Some(name);
                natural.push(Key {
                    expr: "c.low".into(),
                    descending: false,
                });
            }
        }
        // 3. an equality on a token or a reference.
        if from.is_none() {
            let registry = Registry::global();
            for (i, clause) in query.clauses.iter().enumerate() {
                // A union's driver would give a resource once per parameter holding the value.
                if clause.modifier.is_some()
                    || clause.chain.is_some()
                    || registry
                        .stored_union(&query.resource_type, &clause.param)
                        .is_some()
                {
                    continue;
                }
                let [value] = clause.values.as_slice() else {
                    continue;
                };
                match value {
                    QueryValue::Token {
                        system: Some(TokenSystem::Is(system)),
                        code: Some(code),
                    } => {
                        let (p, code_p, sys_p) = (
                            self.sql.bind(name_id(&clause.param)),
                            self.sql.bind(code.clone()),
                            self.sql.bind(name_id(system)),
                        );
                        conds.push(format!(
                            "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p} AND c.code = {code_p} AND c.sys = {sys_p}"
                        ));
                        from = Some("idx_token c".to_owned());
                    }
                    QueryValue::Reference {
                        target_type: Some(t),
                        id,
                        url: None,
                        ..
                    } if !id.is_empty() => {
                        let (p, id_p, tt) = (
                            self.sql.bind(name_id(&clause.param)),
                            self.sql.bind(id.clone()),
                            self.sql.bind(name_id(t)),
                        );
                        conds.push(format!(
                            "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p} AND c.target_id = {id_p} AND c.ttype = {tt} AND c.url = ''"
                        ));
                        from = Some("idx_reference c".to_owned());
                    }
                    _ => continue,
                }
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                break;
            }
        }
        // 4. every resource of the type in the compartment.
        let id_driver = from.is_none();
        let from = match from {
            Some(f) => f,
            None => {
                let p = self.sql.bind(name_id("_id"));
                conds.push(format!(
                    "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p}"
                ));
                natural.push(Key {
                    expr: "c.code".into(),
                    descending: false,
                });
                "idx_token c".to_owned()
            }
        };
        conds.push(format!("c.seq <= {snap} AND c.seq_to > {snap}"));
        for (i, clause) in query.clauses.iter().enumerate() {
            if used.get(i).copied().unwrap_or(false) {
                continue;
            }
            let scope = Scope {
                pids: vec![self.pid],
                tid: self.tid,
                resource_type: query.resource_type.clone(),
            };
            let cond = self.clause_cond(&scope, clause, "c")?;
            if cond == NEVER {
                return Ok(self.nothing(&pid_sql));
            }
            if cond != ALWAYS {
                conds.push(cond);
            }
        }
        let mut joins = Vec::new();
        let keys = if query.sort.is_empty() {
            natural
        } else {
            let mut keys = Vec::new();
            for (n, key) in query.sort.iter().enumerate() {
                if let Some(k) = self.sort_key(
                    &query.resource_type,
                    key,
                    n,
                    driver_date_param.as_deref(),
                    id_driver,
                    &pid_sql,
                    &tid_sql,
                    &mut joins,
                )? {
                    keys.push(k);
                }
            }
            keys
        };
        Ok(Plan {
            from,
            joins,
            conds,
            keys,
            arms,
            walk: None,
        })
    }

    fn nothing(&mut self, pid_sql: &str) -> Plan {
        Plan {
            from: "idx_token c".into(),
            joins: vec![],
            conds: vec![format!("c.pid {pid_sql}"), "false".into()],
            keys: vec![],
            arms: vec![],
            walk: None,
        }
    }

    fn single_valued_dates(&self, resource_type: &str) -> Vec<String> {
        let mut out = vec!["_lastUpdated".to_owned()];
        for p in &self.store.config.code_date_pairs {
            if p.resource_type == resource_type {
                out.push(p.date_param.clone());
            }
        }
        out
    }

    /// The widest period (high - low) stored for this parameter in this compartment.
    fn span(&self, param: i64) -> Result<i64, PgError> {
        Ok(self.spans.get(&param).copied().unwrap_or(0))
    }

    /// As in the SQLite planner: a date clause on the driver row, with redundant bounds so
    /// the range scan starts and stops near the period.
    fn date_driver_cond(&mut self, clause: &Clause, span: i64, by_high: bool) -> String {
        let mut alternatives = Vec::new();
        for value in &clause.values {
            let QueryValue::Date { prefix, low, high } = value else {
                continue;
            };
            let exact = date_cond(&mut self.sql, "c.low", "c.high", *prefix, *low, *high);
            let (sl, sh) = (*low, *high);
            let bounds = match prefix {
                Prefix::Eq => Some(((sl, sh), (sl, sh))),
                Prefix::Gt => Some((
                    (sh.saturating_sub(span).saturating_add(1), i64::MAX),
                    (sh.saturating_add(1), i64::MAX),
                )),
                Prefix::Ge => Some(((sl.saturating_sub(span), i64::MAX), (sl, i64::MAX))),
                Prefix::Lt => Some((
                    (i64::MIN, sl.saturating_sub(1)),
                    (i64::MIN, sl.saturating_sub(1).saturating_add(span)),
                )),
                Prefix::Eb => Some((
                    (i64::MIN, sl.saturating_sub(1)),
                    (i64::MIN, sl.saturating_sub(1)),
                )),
                Prefix::Le => Some(((i64::MIN, sh), (i64::MIN, sh.saturating_add(span)))),
                Prefix::Sa => Some((
                    (sh.saturating_add(1), i64::MAX),
                    (sh.saturating_add(1), i64::MAX),
                )),
                Prefix::Ne | Prefix::Ap => None,
            };
            let text = match bounds {
                Some(((lf, lt), (hf, ht))) => {
                    let (col, from, to) = if by_high {
                        ("c.high", hf, ht)
                    } else {
                        ("c.low", lf, lt)
                    };
                    let mut parts = Vec::new();
                    if from != i64::MIN {
                        parts.push(format!("{col} >= {}", self.sql.bind(from)));
                    }
                    if to != i64::MAX {
                        parts.push(format!("{col} <= {}", self.sql.bind(to)));
                    }
                    parts.push(exact);
                    format!("({})", parts.join(" AND "))
                }
                None => format!("({exact})"),
            };
            alternatives.push(text);
        }
        if alternatives.is_empty() {
            "false".into()
        } else {
            format!("({})", alternatives.join(" OR "))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sort_key(
        &mut self,
        resource_type: &str,
        key: &SortKey,
        n: usize,
        driver_date_param: Option<&str>,
        id_driver: bool,
        pid_sql: &str,
        tid_sql: &str,
        joins: &mut Vec<String>,
    ) -> Result<Option<Key>, Fail> {
        let descending = key.descending;
        if n == 0 && driver_date_param == Some(key.param.as_str()) {
            let expr = if descending { "c.high" } else { "c.low" };
            return Ok(Some(Key {
                expr: expr.into(),
                descending,
            }));
        }
        if n == 0 && key.param == "_id" && id_driver {
            return Ok(Some(Key {
                expr: "c.code".into(),
                descending,
            }));
        }
        let params = stored_params(resource_type, &key.param);
        let kinds = self.kinds_of_all(self.tid, &params)?;
        let Some(kind) = kinds.first().copied() else {
            return Ok(None);
        };
        let (table, column, sentinel_hi, sentinel_lo) = match kind {
            Kind::Date => (
                "idx_date",
                if descending { "high" } else { "low" },
                "9223372036854775807::bigint",
                "(-9223372036854775808)::bigint",
            ),
            Kind::String => ("idx_string", "norm", "chr(1114111)", "''"),
            Kind::Token => ("idx_token", "code", "chr(1114111)", "''"),
            Kind::Number => ("idx_number", "value", "1e308::float8", "-1e308::float8"),
            Kind::Quantity => ("idx_quantity", "value", "1e308::float8", "-1e308::float8"),
            Kind::Reference => ("idx_reference", "target_id", "chr(1114111)", "''"),
            Kind::Uri => ("idx_uri", "uri", "chr(1114111)", "''"),
            Kind::Composite => return Ok(None),
        };
        let agg = if descending { "max" } else { "min" };
        let p = self.sql.bind_any(&params);
        let alias = format!("s{n}");
        joins.push(format!(
            "LEFT JOIN (SELECT pid, seq, {agg}({column}) AS k FROM {table} WHERE pid {pid_sql} AND tid = {tid_sql} AND param {p} GROUP BY pid, seq) {alias} ON {alias}.pid = c.pid AND {alias}.seq = c.seq"
        ));
        let sentinel = if descending { sentinel_lo } else { sentinel_hi };
        Ok(Some(Key {
            expr: format!("coalesce({alias}.k, {sentinel})"),
            descending,
        }))
    }

    /// The index tables any of `params` were written to on type `tid`.
    fn kinds_of_all(&mut self, tid: i64, params: &[i64]) -> Result<Vec<Kind>, PgError> {
        kinds_of_each(params, |param| self.kinds(tid, param))
    }

    fn kinds(&mut self, tid: i64, param: i64) -> Result<Vec<Kind>, PgError> {
        let rows = self.conn.query(
            "SELECT kind FROM param_kinds WHERE tid = $1 AND param = $2 ORDER BY kind",
            &[&tid, &param],
        )?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(k) = Kind::from_i64(r.try_get(0)?) {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// The condition that version `(a.pid, a.seq)` satisfies `clause`, within `scope`.
    fn clause_cond(&mut self, scope: &Scope, clause: &Clause, a: &str) -> Result<String, Fail> {
        if let Some(chain) = &clause.chain {
            return self.chain_cond(scope, clause, chain, a);
        }
        let pids = scope.pids_sql(&mut self.sql);
        let tid = self.sql.bind(scope.tid);
        let params = stored_params(&scope.resource_type, &clause.param);
        let p = self.sql.bind_any(&params);
        if let Some(Modifier::Missing(missing)) = clause.modifier {
            let kinds = self.kinds_of_all(scope.tid, &params)?;
            if kinds.is_empty() {
                return Ok(if missing { ALWAYS.into() } else { NEVER.into() });
            }
            let union: Vec<String> = kinds
                .iter()
                .map(|k| {
                    let real = if *k == Kind::Date {
                        " AND low <= high"
                    } else {
                        ""
                    };
                    format!(
                        "SELECT pid, seq FROM {} WHERE pid {pids} AND tid = {tid} AND param {p}{real}",
                        k.table()
                    )
                })
                .collect();
            let not = if missing { "NOT " } else { "" };
            return Ok(format!(
                "({a}.pid, {a}.seq) {not}IN ({})",
                union.join(" UNION ALL ")
            ));
        }
        let negate = clause.modifier == Some(Modifier::Not);
        let mut by_table: Vec<(Kind, Vec<String>)> = Vec::new();
        for value in &clause.values {
            let Some((kind, cond)) = self.value_cond(clause, value)? else {
                continue;
            };
            match by_table.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, conds)) => conds.push(cond),
                None => by_table.push((kind, vec![cond])),
            }
        }
        if by_table.is_empty() {
            return Ok(if negate { ALWAYS.into() } else { NEVER.into() });
        }
        let subqueries: Vec<String> = by_table
            .iter()
            .map(|(kind, conds)| {
                format!(
                    "SELECT x.pid, x.seq FROM {} x WHERE x.pid {pids} AND x.tid = {tid} AND x.param {p} AND ({})",
                    kind.table(),
                    conds.join(" OR ")
                )
            })
            .collect();
        let not = if negate { "NOT " } else { "" };
        Ok(format!(
            "({a}.pid, {a}.seq) {not}IN ({})",
            subqueries.join(" UNION ALL ")
        ))
    }

    fn chain_cond(
        &mut self,
        scope: &Scope,
        clause: &Clause,
        chain: &Chain,
        a: &str,
    ) -> Result<String, Fail> {
        let own = scope.pids.first().copied().unwrap_or(self.pid);
        let wide = Scope {
            pids: vec![own, 0],
            tid: 0,
            resource_type: String::new(),
        };
        let id_param = name_id("_id");
        match chain {
            Chain::Forward { target_type, inner } => {
                let ttid = name_id(target_type);
                let param = name_id(&clause.param);
                let inner_scope = Scope {
                    tid: ttid,
                    resource_type: target_type.clone(),
                    ..wide.clone()
                };
                let inner_cond = self.clause_cond(&inner_scope, inner, "i")?;
                if inner_cond == NEVER {
                    return Ok(NEVER.into());
                }
                let visible = self.visible("i", &wide);
                let (wide_pids, ttid_p, idp) = (
                    wide.pids_sql(&mut self.sql),
                    self.sql.bind(ttid),
                    self.sql.bind(id_param),
                );
                let (pids, tid, p, ttid_p2) = (
                    scope.pids_sql(&mut self.sql),
                    self.sql.bind(scope.tid),
                    self.sql.bind(param),
                    self.sql.bind(ttid),
                );
                Ok(format!(
                    "({a}.pid, {a}.seq) IN (SELECT r.pid, r.seq FROM idx_reference r WHERE r.pid {pids} AND r.tid = {tid} AND r.param = {p}
                       AND r.ttype = {ttid_p2} AND r.target_id IN (
                         SELECT i.code FROM idx_token i WHERE i.pid {wide_pids} AND i.tid = {ttid_p} AND i.param = {idp}
                           AND {visible} AND {inner_cond}))"
                ))
            }
            Chain::Reverse {
                source_type,
                reference_param,
                inner,
            } => {
                let stid = name_id(source_type);
                let rparam = name_id(reference_param);
                let inner_scope = Scope {
                    tid: stid,
                    resource_type: source_type.clone(),
                    ..wide.clone()
                };
                let inner_cond = self.clause_cond(&inner_scope, inner, "s")?;
                if inner_cond == NEVER {
                    return Ok(NEVER.into());
                }
                let visible = self.visible("s", &wide);
                let (wide_pids, stid_p, rp, own_t) = (
                    wide.pids_sql(&mut self.sql),
                    self.sql.bind(stid),
                    self.sql.bind(rparam),
                    self.sql.bind(scope.tid),
                );
                let (pids, tid, idp) = (
                    scope.pids_sql(&mut self.sql),
                    self.sql.bind(scope.tid),
                    self.sql.bind(id_param),
                );
                Ok(format!(
                    "({a}.pid, {a}.seq) IN (SELECT t.pid, t.seq FROM idx_token t WHERE t.pid {pids} AND t.tid = {tid} AND t.param = {idp}
                       AND t.code IN (
                         SELECT s.target_id FROM idx_reference s WHERE s.pid {wide_pids} AND s.tid = {stid_p} AND s.param = {rp}
                           AND s.ttype = {own_t} AND {visible} AND {inner_cond}))"
                ))
            }
        }
    }

    /// One value's condition on an index row aliased `x`, and the table it applies to.
    fn value_cond(
        &mut self,
        clause: &Clause,
        value: &QueryValue,
    ) -> Result<Option<(Kind, String)>, Fail> {
        let modifier = match clause.modifier {
            Some(Modifier::Not) => None,
            m => m,
        };
        if let Some(m @ (Modifier::In | Modifier::NotIn | Modifier::OfType)) = modifier {
            return Err(unsupported(format!(
                "the {m:?} modifier needs a terminology service"
            )));
        }
        Ok(Some(match value {
            QueryValue::Token { system, code } => match modifier {
                None | Some(Modifier::Identifier) | Some(Modifier::Exact) => {
                    let Some(cond) = self.token_cond("x.sys", "x.code", system, code) else {
                        return Ok(None);
                    };
                    (Kind::Token, cond)
                }
                Some(Modifier::Text) => {
                    let text = rows::phr_search_normalize(code.as_deref().unwrap_or_default());
                    let (a, b) = (
                        self.sql.bind(format!("{}%", like_escape(&text))),
                        self.sql.bind(format!("% {}%", like_escape(&text))),
                    );
                    (
                        Kind::Token,
                        format!("(x.text LIKE {a} ESCAPE '\\' OR x.text LIKE {b} ESCAPE '\\')"),
                    )
                }
                Some(m) => return Err(unsupported(format!("{m:?} on a token parameter"))),
            },
            QueryValue::String(text) => {
                let norm = rows::phr_search_normalize(text);
                match modifier {
                    None => {
                        let (lo, hi) = (
                            self.sql.bind(norm.clone()),
                            self.sql.bind(format!("{norm}\u{10FFFF}")),
                        );
                        (Kind::String, format!("(x.norm >= {lo} AND x.norm < {hi})"))
                    }
                    Some(Modifier::Exact) => {
                        let (n, e) = (self.sql.bind(norm), self.sql.bind(text.clone()));
                        (Kind::String, format!("(x.norm = {n} AND x.exact = {e})"))
                    }
                    Some(Modifier::Contains) => {
                        let pattern = self.sql.bind(format!("%{}%", like_escape(&norm)));
                        (Kind::String, format!("x.norm LIKE {pattern} ESCAPE '\\'"))
                    }
                    Some(m) => return Err(unsupported(format!("{m:?} on a string parameter"))),
                }
            }
            QueryValue::Date { prefix, low, high } => {
                if modifier.is_some() {
                    return Err(unsupported("modifiers on a date parameter".into()));
                }
                (
                    Kind::Date,
                    date_cond(&mut self.sql, "x.low", "x.high", *prefix, *low, *high),
                )
            }
            QueryValue::Number {
                prefix,
                value,
                low,
                high,
            } => {
                if modifier.is_some() {
                    return Err(unsupported("modifiers on a number parameter".into()));
                }
                (
                    Kind::Number,
                    number_cond(&mut self.sql, "x.value", *prefix, *value, *low, *high),
                )
            }
            QueryValue::Quantity {
                prefix,
                value,
                low,
                high,
                system,
                code,
            } => {
                if modifier.is_some() {
                    return Err(unsupported("modifiers on a quantity parameter".into()));
                }
                let number = number_cond(&mut self.sql, "x.value", *prefix, *value, *low, *high);
                let unit = self.unit_cond("x.sys", "x.code", Some("x.unit"), system, code);
                (Kind::Quantity, format!("({number} AND {unit})"))
            }
            QueryValue::Reference {
                target_type,
                id,
                url,
                ..
            } => {
                if let Some(
                    m @ (Modifier::Above | Modifier::Below | Modifier::Contains | Modifier::Text),
                ) = modifier
                {
                    return Err(unsupported(format!("{m:?} on a reference parameter")));
                }
                let mut parts = Vec::new();
                if !id.is_empty() {
                    parts.push(format!("x.target_id = {}", self.sql.bind(id.clone())));
                    if let Some(t) = target_type {
                        parts.push(format!("x.ttype = {}", self.sql.bind(name_id(t))));
                    }
                }
                if let Some(url) = url {
                    parts.push(format!("x.url = {}", self.sql.bind(url.clone())));
                }
                if parts.is_empty() {
                    return Ok(None);
                }
                (Kind::Reference, format!("({})", parts.join(" AND ")))
            }
            QueryValue::Uri(uri) => match modifier {
                None | Some(Modifier::Exact) => {
                    (Kind::Uri, format!("x.uri = {}", self.sql.bind(uri.clone())))
                }
                Some(Modifier::Below) => {
                    let (lo, hi) = (
                        self.sql.bind(uri.clone()),
                        self.sql.bind(format!("{uri}\u{10FFFF}")),
                    );
                    (Kind::Uri, format!("(x.uri >= {lo} AND x.uri < {hi})"))
                }
                Some(Modifier::Above) => {
                    let prefixes: Vec<String> = uri_prefixes(uri)
                        .into_iter()
                        .map(|p| self.sql.bind(p))
                        .collect();
                    (Kind::Uri, format!("x.uri IN ({})", prefixes.join(", ")))
                }
                Some(m) => return Err(unsupported(format!("{m:?} on a uri parameter"))),
            },
            QueryValue::Composite(parts) => {
                if modifier.is_some() {
                    return Err(unsupported("modifiers on a composite parameter".into()));
                }
                let [QueryValue::Token { system, code }, second] = parts.as_slice() else {
                    return Err(unsupported("composites other than token + value".into()));
                };
                let Some(first) = self.token_cond("x.sys1", "x.code1", system, code) else {
                    return Ok(None);
                };
                let second = match second {
                    QueryValue::Token { system, code } => {
                        let Some(c) = self.token_cond("x.sys2", "x.code2", system, code) else {
                            return Ok(None);
                        };
                        format!("x.k2 = 1 AND {c}")
                    }
                    QueryValue::Quantity {
                        prefix,
                        value,
                        low,
                        high,
                        system,
                        code,
                    } => {
                        let n = number_cond(&mut self.sql, "x.num2", *prefix, *value, *low, *high);
                        let u = self.unit_cond("x.sys2", "x.code2", None, system, code);
                        format!("x.k2 = 2 AND {n} AND {u}")
                    }
                    QueryValue::Number {
                        prefix,
                        value,
                        low,
                        high,
                    } => format!(
                        "x.k2 = 2 AND {}",
                        number_cond(&mut self.sql, "x.num2", *prefix, *value, *low, *high)
                    ),
                    QueryValue::Date { prefix, low, high } => format!(
                        "x.k2 = 3 AND {}",
                        date_cond(&mut self.sql, "x.dlow2", "x.dhigh2", *prefix, *low, *high)
                    ),
                    QueryValue::String(text) => {
                        let norm = rows::phr_search_normalize(text);
                        let (lo, hi) = (
                            self.sql.bind(norm.clone()),
                            self.sql.bind(format!("{norm}\u{10FFFF}")),
                        );
                        format!("x.k2 = 4 AND x.text2 >= {lo} AND x.text2 < {hi}")
                    }
                    _ => return Err(unsupported("this composite component".into())),
                };
                (Kind::Composite, format!("({first} AND {second})"))
            }
        }))
    }

    /// `None` when the value names neither a code nor a system.
    fn token_cond(
        &mut self,
        sys_col: &str,
        code_col: &str,
        system: &Option<TokenSystem>,
        code: &Option<String>,
    ) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(code) = code {
            parts.push(format!("{code_col} = {}", self.sql.bind(code.clone())));
        }
        match system {
            Some(TokenSystem::Is(s)) => {
                parts.push(format!("{sys_col} = {}", self.sql.bind(name_id(s))));
            }
            Some(TokenSystem::None) => parts.push(format!("{sys_col} = 0")),
            None => {}
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!("({})", parts.join(" AND ")))
    }

    fn unit_cond(
        &mut self,
        sys_col: &str,
        code_col: &str,
        unit_col: Option<&str>,
        system: &Option<String>,
        code: &Option<String>,
    ) -> String {
        match (system, code) {
            (None, None) => ALWAYS.into(),
            (Some(s), code) => {
                let sys_p = self.sql.bind(name_id(s));
                match code {
                    Some(c) => format!(
                        "({sys_col} = {sys_p} AND {code_col} = {})",
                        self.sql.bind(c.clone())
                    ),
                    None => format!("{sys_col} = {sys_p}"),
                }
            }
            (None, Some(c)) => {
                let c = self.sql.bind(c.clone());
                match unit_col {
                    Some(u) => format!("({code_col} = {c} OR {u} = {c})"),
                    None => format!("{code_col} = {c}"),
                }
            }
        }
    }
}

/// `_include` / `_revinclude` (with `:iterate` rounds), confined to the compartment and
/// resources outside any compartment, at the page's snapshots.
fn includes(
    ctx: &mut Ctx<'_>,
    query: &SearchQuery,
    matches: &[VersionRow],
) -> Result<Vec<StoredResource>, Fail> {
    if query.include.is_empty() && query.revinclude.is_empty() {
        return Ok(vec![]);
    }
    let limit = ctx.store.config.include_limit;
    let mut seen: HashSet<(i64, i64)> = matches.iter().map(|v| (v.pid, v.seq)).collect();
    let mut out: Vec<VersionRow> = Vec::new();
    let mut frontier: Vec<usize> = Vec::new();
    for round in 0..=ctx.store.config.include_iterations {
        let sources: Vec<VersionRow> = if round == 0 {
            matches.to_vec()
        } else {
            frontier
                .iter()
                .filter_map(|&i| out.get(i).cloned())
                .collect()
        };
        if sources.is_empty() {
            break;
        }
        let mut found: Vec<VersionRow> = Vec::new();
        for inc in &query.include {
            if round > 0 && !inc.iterate {
                continue;
            }
            for source in &sources {
                found.extend(include_targets(ctx, inc, source)?);
            }
        }
        for inc in &query.revinclude {
            if round > 0 && !inc.iterate {
                continue;
            }
            for source in &sources {
                found.extend(revinclude_sources(ctx, inc, source)?);
            }
        }
        frontier.clear();
        for v in found {
            if out.len() >= limit {
                break;
            }
            if seen.insert((v.pid, v.seq)) {
                frontier.push(out.len());
                out.push(v);
            }
        }
    }
    let mut stored = Vec::with_capacity(out.len());
    for v in &out {
        stored.push(ctx.store.stored(ctx.conn, v)?);
    }
    Ok(stored)
}

/// Where referenced or referring resources may be: the compartment and outside every
/// compartment, or anywhere for a search across every compartment.
fn reach(ctx: &Ctx<'_>) -> Scope {
    Scope {
        pids: if ctx.pid == EVERY_COMPARTMENT {
            vec![EVERY_COMPARTMENT]
        } else {
            vec![ctx.pid, 0]
        },
        tid: 0,
        resource_type: String::new(),
    }
}

/// The ids of the parameters whose rows hold `name`'s values on `resource_type`: its own,
/// or those a `Registry::stored_union` parameter unites.
fn stored_params(resource_type: &str, name: &str) -> Vec<i64> {
    match Registry::global().stored_union(resource_type, name) {
        Some(sources) => sources.iter().map(|s| name_id(s)).collect(),
        None => vec![name_id(name)],
    }
}

fn include_targets(
    ctx: &mut Ctx<'_>,
    inc: &Include,
    source: &VersionRow,
) -> Result<Vec<VersionRow>, Fail> {
    if ctx.store.type_name(ctx.conn, source.tid)? != inc.source_type {
        return Ok(vec![]);
    }
    let param = name_id(&inc.param);
    let mut out = Vec::new();
    for row in rows::decode_manifest(&source.manifest)? {
        let Row::Reference {
            param: p,
            target_id,
            ttype,
            ..
        } = row
        else {
            continue;
        };
        if p != param || target_id.is_empty() || ttype == 0 {
            continue;
        }
        let type_name = ctx.store.type_name(ctx.conn, ttype)?;
        if inc.target_type.as_ref().is_some_and(|t| *t != type_name) {
            continue;
        }
        // The version of the target visible at the snapshot: its `_id` row.
        let scope = reach(ctx);
        let mut sql = Sql { values: vec![] };
        std::mem::swap(&mut sql, &mut ctx.sql);
        let visible = ctx.visible("i", &scope);
        let pids = scope.pids_sql(&mut ctx.sql);
        let (t, idp, code) = (
            ctx.sql.bind(ttype),
            ctx.sql.bind(name_id("_id")),
            ctx.sql.bind(target_id.clone()),
        );
        let text = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v WHERE (v.pid, v.seq) IN (
               SELECT i.pid, i.seq FROM idx_token i WHERE i.pid {pids} AND i.tid = {t} AND i.param = {idp}
                 AND i.code = {code} AND {visible}) LIMIT 1"
        );
        std::mem::swap(&mut sql, &mut ctx.sql);
        let rows = query_values(ctx.conn, &text, &sql.values)?;
        for r in &rows {
            out.push(VersionRow::from_row(r)?);
        }
    }
    Ok(out)
}

fn revinclude_sources(
    ctx: &mut Ctx<'_>,
    inc: &Include,
    target: &VersionRow,
) -> Result<Vec<VersionRow>, Fail> {
    let target_type = ctx.store.type_name(ctx.conn, target.tid)?;
    if inc.target_type.as_ref().is_some_and(|t| *t != target_type) {
        return Ok(vec![]);
    }
    let scope = reach(ctx);
    let mut sql = Sql { values: vec![] };
    std::mem::swap(&mut sql, &mut ctx.sql);
    let visible = ctx.visible("x", &scope);
    let pids = scope.pids_sql(&mut ctx.sql);
    let (stid, p, id, tt) = (
        ctx.sql.bind(name_id(&inc.source_type)),
        ctx.sql.bind(name_id(&inc.param)),
        ctx.sql.bind(target.id.clone()),
        ctx.sql.bind(target.tid),
    );
    let text = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE (v.pid, v.seq) IN (
           SELECT x.pid, x.seq FROM idx_reference x WHERE x.pid {pids} AND x.tid = {stid} AND x.param = {p}
             AND x.target_id = {id} AND x.ttype = {tt} AND x.url = '' AND {visible})
         ORDER BY v.pid, v.seq"
    );
    std::mem::swap(&mut sql, &mut ctx.sql);
    let rows = query_values(ctx.conn, &text, &sql.values)?;
    rows.iter()
        .map(|r| VersionRow::from_row(r).map_err(Fail::Pg))
        .collect()
}

/// Test hook: the query plans of the statements a search ran on this thread.
#[cfg(test)]
pub(crate) mod plans {
    use std::cell::RefCell;

    use super::{Conn, Param, Type};

    thread_local! {
        static PLANS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// Starts recording (plans are only taken while recording: EXPLAIN costs a round trip).
    pub fn start() {
        PLANS.with(|p| *p.borrow_mut() = Some(Vec::new()));
    }

    pub fn record(conn: &mut Conn, sql: &str, types: &[Type], params: &[Param<'_>]) {
        let recording = PLANS.with(|p| p.borrow().is_some());
        if !recording {
            return;
        }
        // Test tables are tiny: without this the planner rightly prefers reading them
        // whole, and the test could not tell whether an index gives the order.
        conn.client
            .batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
            .expect("sets");
        let explain = conn
            .client
            .prepare_typed(&format!("EXPLAIN {sql}"), types)
            .expect("explains");
        let mut lines: Vec<String> = conn
            .client
            .query(&explain, params)
            .expect("explains")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        // EXPLAIN plans with the values, so it cannot show the generic plan the statement
        // runs; what that plan may do is told by the settings it was made with.
        let sorts: String = conn
            .client
            .query_one("SHOW enable_sort", &[])
            .expect("shows")
            .get(0);
        lines.push(format!("Setting: enable_sort = {sorts}"));
        PLANS.with(|p| {
            if let Some(v) = p.borrow_mut().as_mut() {
                v.push(lines.join("\n"));
            }
        });
    }

    pub fn take() -> Vec<String> {
        PLANS.with(|p| p.borrow_mut().take().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_for_postgresql() {
        assert_eq!(
            renumber("a = ?1 AND b IN (?12, ?3) AND c LIKE ?4 ESCAPE '\\'"),
            "a = $1 AND b IN ($12, $3) AND c LIKE $4 ESCAPE '\\'"
        );
    }
}
