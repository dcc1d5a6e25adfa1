//! Executes a parsed [`SearchQuery`] as SQL over the index tables.
//!
//! Plan: one *driver* range scan yields candidate versions (`c.seq`) of the searched type in
//! the compartment, visible at the snapshot, in sort order when it can; every other clause
//! becomes `c.seq [NOT] IN (subquery over one index table)`, each subquery confined to the
//! same compartment by its key prefix. The driver is, in order of preference: the code x
//! date pair table (portal timelines), a single-valued date parameter (date sorts), an
//! equality on a token or reference, or every `_id` row of the type in the compartment.
//! An OR of codes on the pairs is one ordered scan per code (arms), merged. A single sort key
//! the driver does not order by is read by walking that parameter's index instead (see
//! [`Walk`]).
//! Paging is keyset paging on the sort keys plus `seq`, pinned to a snapshot sequence
//! number carried in a signed cursor; nothing is cached on the server.

use std::collections::{HashMap, HashSet};

use phr_search::{
    Chain, Clause, Include, Modifier, Prefix, QueryValue, Registry, SortKey, Summary, TokenSystem,
    TotalMode,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use super::cursor::{self, Cursor, Direction};
use super::row_test::{self, RowTest};
use super::rows::{self, Kind, Row};
use super::walk::{Probe, Walk, WalkReader, walk_rows};
use super::{SqliteStore, VERSION_COLUMNS, VersionRow, now_micros};
use crate::{
    AggregateValue, Aggregation, Bucket, SearchPage, SearchQuery, StoreError, StoredResource,
};

pub(crate) const NEVER: &str = "0";
/// The `pid` of a search without a compartment on a type that lives in patient
/// compartments (system access: the open sandbox, backend services, operators): every
/// compartment. Resources outside any compartment have pid 0; real pids are positive.
pub(crate) const EVERY_COMPARTMENT: i64 = -1;

pub(crate) fn in_patient_compartments(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !phr_search::Registry::global()
            .patient_compartment_params(resource_type)
            .is_empty()
}

/// The SQL test of a `pid` column against one compartment (or every one).
pub(crate) fn pid_test(pid: i64, sql: &mut Sql) -> String {
    if pid == EVERY_COMPARTMENT {
        ">= 0".to_owned()
    } else {
        format!("= {}", sql.bind(pid))
    }
}
pub(crate) const ALWAYS: &str = "1";

/// Bound values and the SQL text referring to them as `?N`.
pub(crate) struct Sql {
    pub(crate) values: Vec<Value>,
}

impl Sql {
    /// `= ?N` for one id, `IN (?N, ...)` for several.
    pub(crate) fn bind_any(&mut self, ids: &[i64]) -> String {
        match ids {
            [one] => format!("= {}", self.bind(*one)),
            _ => {
                let list: Vec<String> = ids.iter().map(|id| self.bind(*id)).collect();
                format!("IN ({})", list.join(", "))
            }
        }
    }

    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        format!("?{}", self.values.len())
    }
}

/// A sort key as SQL: the expression, its direction, and whether it comes from the driver.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) expr: String,
    pub(crate) descending: bool,
}

#[derive(Clone)]
struct Plan {
    /// `FROM ... c [LEFT JOIN ...]`
    from: String,
    joins: Vec<String>,
    /// Conditions on the driver and the clauses (no keyset).
    conds: Vec<String>,
    keys: Vec<Key>,
    /// The driver as a union of arms, each one ordered range scan (an OR of codes on the
    /// code x date pairs, the units of a quantity sort): every arm's own condition, AND-ed
    /// with `conds`. A driver's arms never yield the same version twice (a walk's may: it
    /// keeps a version's first row). Empty: `conds` alone.
    arms: Vec<String>,
    /// Sorted by a parameter the driver does not order by: the page is read by walking that
    /// parameter's index instead (`from`/`conds`/`arms` above stay the unsorted plan, used
    /// for the total).
    walk: Option<Box<Walk<Plan>>>,
}

struct Ctx<'a> {
    store: &'a SqliteStore,
    conn: &'a Connection,
    sql: Sql,
    pid: i64,
    tid: i64,
    snapshot: i64,
}

pub fn run(
    store: &SqliteStore,
    query: &SearchQuery,
    page: Option<&str>,
) -> Result<SearchPage, StoreError> {
    let fingerprint = cursor::fingerprint(&format!("search|{query:?}"));
    let cursor = match page {
        None => None,
        Some(text) => {
            let c = cursor::decode(text, &store.cursor_key).ok_or(StoreError::BadCursor)?;
            let ttl = store.config.cursor_ttl.as_micros() as i64;
            if c.fingerprint != fingerprint || c.issued.saturating_add(ttl) < now_micros() {
                return Err(StoreError::BadCursor);
            }
            Some(c)
        }
    };
    store.with_reader(|conn| {
        let pruned: i64 = conn.query_row(
            "SELECT value FROM meta WHERE key = 'pruned_through'",
            [],
            |r| r.get(0),
        )?;
        let snapshot = match &cursor {
            Some(c) if c.snapshot < pruned => return Err(StoreError::BadCursor),
            Some(c) => c.snapshot,
            None => conn.query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                r.get(0)
            })?,
        };
        let start = Cursor {
            fingerprint,
            snapshot,
            issued: now_micros(),
            direction: Direction::Start,
            keys: vec![],
            total: None,
        };
        let cursor = cursor.unwrap_or(start);
        let tid = store.type_id(conn, &query.resource_type)?;
        let pid = match &query.compartment {
            None if in_patient_compartments(&query.resource_type) => Some(EVERY_COMPARTMENT),
            None => Some(0),
            Some(p) => store.patient_pid(conn, p)?,
        };
        let (Some(tid), Some(pid)) = (tid, pid) else {
            return Ok(empty_page(query, &cursor, store));
        };
        let mut ctx = Ctx {
            store,
            conn,
            sql: Sql { values: vec![] },
            pid,
            tid,
            snapshot,
        };
        let plan = ctx.plan(query)?;
        // A plan that can match nothing is answered without SQL: its text no longer refers
        // to every value bound while planning, which SQLite refuses (the count of
        // `Patient?gender=x&_summary=count` failed so, found by fuzzing).
        if plan.conds.iter().any(|c| c == NEVER) {
            return Ok(empty_page(query, &cursor, ctx.store));
        }
        execute(&mut ctx, query, plan, cursor)
    })
}

/// The search parameters holding the values an aggregate reads: composites of a code and a
/// quantity (the resource's own value, a component's value).
pub(crate) fn aggregate_value_param(value: &AggregateValue) -> &'static str {
    match value {
        AggregateValue::Value => rows::INLINE_VALUE_PARAM,
        AggregateValue::Component { .. } => "component-code-value-quantity",
    }
}

/// Checks what an aggregate can be computed for: a compartment, a sane range and interval.
pub(crate) fn check_aggregation(
    query: &SearchQuery,
    aggregation: &Aggregation,
) -> Result<(), StoreError> {
    if query.compartment.is_none() {
        return Err(StoreError::Unsupported(
            "an aggregate is computed within one patient's compartment".into(),
        ));
    }
    if aggregation.interval <= 0 || aggregation.from >= aggregation.to {
        return Err(StoreError::Unsupported(
            "an aggregate needs a range whose start is before its end and an interval longer than zero".into(),
        ));
    }
    if let Some((low, high)) = aggregation.bands
        && !(low.is_finite() && high.is_finite() && low <= high)
    {
        return Err(StoreError::Unsupported(
            "the band of an aggregate needs finite limits, the low one not above the high one"
                .into(),
        ));
    }
    Ok(())
}

/// The rows of an aggregate over a code x date driver plan (alias `c`), one per matched
/// value: its interval's index, unit system id, unit code and value (`b`, `usys`, `ucode`,
/// `x`). Values come from the matched versions' `idx_composite` rows joined by key
/// (`value_join`, alias `v`); with `inline`, a row's own value (`usys`, `ucode`, `num`) is
/// taken where it has one and only the rows without one are joined. `from_p`, `to_p` and
/// `width_p` are bound placeholders.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aggregate_rows_statement(
    from_sql: &str,
    conds: &[String],
    arms: &[String],
    value_join: &str,
    inline: bool,
    from_p: &str,
    to_p: &str,
    width_p: &str,
) -> String {
    let mut conds = conds.to_vec();
    conds.push(format!("c.low >= {from_p} AND c.low < {to_p}"));
    let where_sql = conds.join(" AND ");
    let arm = |extra: Option<&String>| {
        let extra = extra.map(|a| format!(" AND {a}")).unwrap_or_default();
        let joined = format!(
            "SELECT (c.low - {from_p}) / {width_p} AS b, v.sys2 AS usys, v.code2 AS ucode, v.num2 AS x \
             FROM {from_sql} JOIN idx_composite v ON {value_join} WHERE {where_sql}{extra}"
        );
        if !inline {
            return joined;
        }
        // Rows with their own value, then the others joined. One scan with a LEFT JOIN
        // would look the composite row up for every row, value or not.
        format!(
            "SELECT (c.low - {from_p}) / {width_p} AS b, c.usys AS usys, c.ucode AS ucode, c.num AS x \
             FROM {from_sql} WHERE {where_sql}{extra} AND c.num IS NOT NULL \
             UNION ALL {joined} AND c.num IS NULL"
        )
    };
    if arms.is_empty() {
        arm(None)
    } else {
        arms.iter()
            .map(|a| arm(Some(a)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }
}

/// Buckets folded from an aggregate's rows in one pass. SQLite hands rows over in-process,
/// so folding them here spares the sort of every value that its GROUP BY makes.
struct Fold {
    bands: Option<(f64, f64)>,
    /// The (unit system id, unit code) pairs seen: a series has one or a few.
    units: Vec<(i64, String)>,
    /// By (interval, position in `units`).
    buckets: HashMap<(i64, usize), Bucket>,
}

impl Fold {
    fn new(bands: Option<(f64, f64)>) -> Fold {
        Fold {
            bands,
            units: Vec::new(),
            buckets: HashMap::new(),
        }
    }

    fn add(&mut self, index: i64, usys: i64, unit: &str, x: f64) {
        let u = match self
            .units
            .iter()
            .position(|(sys, code)| *sys == usys && code == unit)
        {
            Some(u) => u,
            None => {
                self.units.push((usys, unit.to_string()));
                self.units.len() - 1
            }
        };
        let b = self.buckets.entry((index, u)).or_insert_with(|| Bucket {
            index,
            unit_system: String::new(),
            unit: unit.to_string(),
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            below: 0,
            within: 0,
            above: 0,
        });
        b.count += 1;
        b.min = b.min.min(x);
        b.max = b.max.max(x);
        b.sum += x;
        if let Some((low, high)) = self.bands {
            if x < low {
                b.below += 1;
            } else if x > high {
                b.above += 1;
            } else {
                b.within += 1;
            }
        }
    }

    /// The buckets, their unit systems named by `uri` (empty when unknown), ordered by
    /// interval, unit system and unit.
    fn finish(
        self,
        uri: impl Fn(i64) -> Result<String, StoreError>,
    ) -> Result<Vec<Bucket>, StoreError> {
        let uris = self
            .units
            .iter()
            .map(|(sys, _)| uri(*sys))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out: Vec<Bucket> = self
            .buckets
            .into_iter()
            .map(|((_, u), mut bucket)| {
                bucket.unit_system = uris.get(u).cloned().unwrap_or_default();
                bucket
            })
            .collect();
        out.sort_by(|a, b| {
            (a.index, &a.unit_system, &a.unit).cmp(&(b.index, &b.unit_system, &b.unit))
        });
        Ok(out)
    }
}

/// The clause of `query` an aggregate is driven by (the token parameter of one of `pairs`
/// for its type, with system|code values): its index and the pair's parameter names.
pub(crate) fn aggregate_code_clause(
    query: &SearchQuery,
    pairs: &[super::CodeDatePair],
) -> Option<(usize, String, String)> {
    pairs
        .iter()
        .filter(|p| p.resource_type == query.resource_type)
        .find_map(|p| {
            query
                .clauses
                .iter()
                .position(|c| c.param == p.token_param && is_system_codes(c))
                .map(|i| (i, p.token_param.clone(), p.date_param.clone()))
        })
}

/// One statement answering, for each of `codes` (code, system id), whether a row of the
/// pair visible at `snapshot` has it (with `range`: a date starting in `[from, to)`): a row
/// of 0/1 (false/true) columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn presence_statement(
    sql: &mut Sql,
    pid: i64,
    tid: i64,
    tparam: i64,
    dparam: i64,
    codes: &[(String, i64)],
    range: Option<(i64, i64)>,
    snapshot: i64,
) -> String {
    let (p, t, tp, dp) = (
        sql.bind(pid),
        sql.bind(tid),
        sql.bind(tparam),
        sql.bind(dparam),
    );
    let snap = sql.bind(snapshot);
    let within = match range {
        Some((from, to)) => format!(" AND low >= {} AND low < {}", sql.bind(from), sql.bind(to)),
        None => String::new(),
    };
    let columns: Vec<String> = codes
        .iter()
        .map(|(code, sys)| {
            let (c, sy) = (sql.bind(code.clone()), sql.bind(*sys));
            format!(
                "EXISTS (SELECT 1 FROM idx_code_date WHERE pid = {p} AND tid = {t} AND tparam = {tp} \
                 AND dparam = {dp} AND code = {c} AND sys = {sy}{within} \
                 AND seq <= {snap} AND seq_to > {snap})"
            )
        })
        .collect();
    format!("SELECT {}", columns.join(", "))
}

/// `query` with the values of clause `ci` kept where `keep` says so (an aggregate leaves
/// out codes the range does not hold, so the plan's arms need not exclude them row by row).
pub(crate) fn keep_codes(query: &SearchQuery, ci: usize, keep: &[bool]) -> SearchQuery {
    let mut out = query.clone();
    if let Some(clause) = out.clauses.get_mut(ci) {
        let mut flags = keep.iter();
        clause
            .values
            .retain(|_| flags.next().copied().unwrap_or(false));
    }
    out
}

/// The system|code values of a code clause.
pub(crate) fn clause_codes(clause: &Clause) -> Vec<(String, String)> {
    clause
        .values
        .iter()
        .filter_map(|v| match v {
            QueryValue::Token {
                system: Some(TokenSystem::Is(system)),
                code: Some(code),
            } => Some((system.clone(), code.clone())),
            _ => None,
        })
        .collect()
}

/// [`crate::Storage::aggregate`] on SQLite.
pub fn aggregate(
    store: &SqliteStore,
    query: &SearchQuery,
    aggregation: &Aggregation,
) -> Result<Vec<Bucket>, StoreError> {
    check_aggregation(query, aggregation)?;
    store.with_reader(|conn| {
        let snapshot: i64 =
            conn.query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                r.get(0)
            })?;
        let tid = store.type_id(conn, &query.resource_type)?;
        let pid = match &query.compartment {
            Some(p) => store.patient_pid(conn, p)?,
            None => None,
        };
        let value_param = store.param_id(conn, aggregate_value_param(&aggregation.value))?;
        let (Some(tid), Some(pid), Some(value_param)) = (tid, pid, value_param) else {
            return Ok(Vec::new());
        };
        let component = match &aggregation.value {
            AggregateValue::Value => None,
            AggregateValue::Component { system, code } => match store.system_id(conn, system)? {
                Some(sys) => Some((code.clone(), sys)),
                None => return Ok(Vec::new()),
            },
        };
        // Codes of the OR the range does not hold are left out first: the plan's arms then
        // exclude, row by row, only codes that are there.
        let Some((ci, tname, dname)) = aggregate_code_clause(query, &store.config.code_date_pairs)
        else {
            return Err(StoreError::Unsupported(
                "an aggregate needs the codes (system|code) of a code x date pair".into(),
            ));
        };
        let (Some(tparam), Some(dparam)) =
            (store.param_id(conn, &tname)?, store.param_id(conn, &dname)?)
        else {
            return Ok(Vec::new());
        };
        let asked = query.clauses.get(ci).map(clause_codes).unwrap_or_default();
        let mut known = Vec::new();
        for (system, code) in &asked {
            known.push(
                store
                    .system_id(conn, system)?
                    .map(|sys| (code.clone(), sys)),
            );
        }
        let probe: Vec<(String, i64)> = known.iter().flatten().cloned().collect();
        if probe.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql { values: vec![] };
        let text = presence_statement(
            &mut sql,
            pid,
            tid,
            tparam,
            dparam,
            &probe,
            Some((aggregation.from, aggregation.to)),
            snapshot,
        );
        let present: Vec<bool> = conn.prepare_cached(&text)?.query_row(
            rusqlite::params_from_iter(sql.values.iter()),
            |r| {
                (0..probe.len())
                    .map(|i| r.get::<_, i64>(i).map(|v| v != 0))
                    .collect()
            },
        )?;
        let mut flags = present.into_iter();
        let keep: Vec<bool> = known
            .iter()
            .map(|k| k.is_some() && flags.next().unwrap_or(false))
            .collect();
        if !keep.contains(&true) {
            return Ok(Vec::new());
        }
        let query = &keep_codes(query, ci, &keep);
        let mut ctx = Ctx {
            store,
            conn,
            sql: Sql { values: vec![] },
            pid,
            tid,
            snapshot,
        };
        let plan = ctx.plan_driver(query)?;
        if plan.conds.iter().any(|c| c == NEVER) {
            return Ok(Vec::new());
        }
        if !plan.from.starts_with("idx_code_date") {
            return Err(StoreError::Unsupported(
                "an aggregate needs the codes (system|code) of a code x date pair".into(),
            ));
        }
        let from_sql = "idx_code_date c";
        let vp = ctx.sql.bind(value_param);
        let snap = ctx.sql.bind(snapshot);
        let code_match = match component {
            None => "v.code1 = c.code AND v.sys1 = c.sys".to_owned(),
            Some((code, sys)) => format!(
                "v.code1 = {} AND v.sys1 = {}",
                ctx.sql.bind(code),
                ctx.sql.bind(sys)
            ),
        };
        let value_join = format!(
            "v.pid = c.pid AND v.tid = c.tid AND v.param = {vp} AND {code_match} AND v.seq = c.seq \
             AND v.k2 = 2 AND v.seq <= {snap} AND v.seq_to > {snap}"
        );
        let from_p = ctx.sql.bind(aggregation.from);
        let to_p = ctx.sql.bind(aggregation.to);
        let width_p = ctx.sql.bind(aggregation.interval);
        let text = aggregate_rows_statement(
            from_sql,
            &plan.conds,
            &plan.arms,
            &value_join,
            matches!(aggregation.value, AggregateValue::Value),
            &from_p,
            &to_p,
            &width_p,
        );
        let mut fold = Fold::new(aggregation.bands);
        {
            let mut stmt = conn.prepare_cached(&text)?;
            let values = &ctx.sql.values;
            let values = values.get(..stmt.parameter_count()).unwrap_or(values);
            #[cfg(test)]
            plans::record(conn, &text, values);
            let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
            while let Some(r) = rows.next()? {
                // A quantity's value is a number: JSON has no NaN to store as NULL.
                let Some(x) = r.get::<_, Option<f64>>(3)? else {
                    continue;
                };
                let usys = r.get::<_, Option<i64>>(1)?.unwrap_or(0);
                let unit = r
                    .get_ref(2)?
                    .as_str_or_null()
                    .map_err(rusqlite::Error::from)?;
                fold.add(r.get(0)?, usys, unit.unwrap_or(""), x);
            }
        }
        fold.finish(|sys| {
            Ok(conn
                .prepare_cached("SELECT uri FROM systems WHERE sys = ?1")?
                .query_row([sys], |r| r.get(0))
                .optional()?
                .unwrap_or_default())
        })
    })
}

fn empty_page(query: &SearchQuery, cursor: &Cursor, store: &SqliteStore) -> SearchPage {
    // Nothing matches: a total of 0 costs nothing.
    let wants_total = query.total != TotalMode::None || query.summary == Summary::Count;
    SearchPage {
        total: wants_total.then_some(0),
        this: Some(cursor::encode(cursor, &store.cursor_key)),
        ..SearchPage::default()
    }
}

fn execute(
    ctx: &mut Ctx<'_>,
    query: &SearchQuery,
    plan: Plan,
    cursor: Cursor,
) -> Result<SearchPage, StoreError> {
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
    let mut page = SearchPage::default();
    if query.summary == Summary::Count || query.count == 0 {
        let mut this = cursor.clone();
        this.total = total;
        page.total = total;
        page.this = Some(cursor::encode(&this, &ctx.store.cursor_key));
        return Ok(page);
    }
    let backward = cursor.direction == Direction::Before;
    let limit = query.count + 1;
    if plan.walk.is_some() && wants_total && total.is_none() {
        // Counted first: the walk weighs its two ways by the count.
        total = Some(count_plan(ctx, &plan)?);
    }
    let mut rows: Vec<Vec<Value>> = match &plan.walk {
        Some(walk) => walk_rows(&mut SqliteWalk(ctx), walk, &cursor, backward, limit, total)?,
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
    let seq_of = |row: &Vec<Value>| match row.last() {
        Some(Value::Integer(s)) => Ok(*s),
        _ => Err(StoreError::Engine(
            "search row without a sequence number".into(),
        )),
    };
    let mut versions = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(v) = ctx.store.fetch_version(ctx.conn, seq_of(row)?)? {
            versions.push(v);
        }
    }
    if wants_total && total.is_none() {
        // `estimate`: free when everything fits on the first page, else counted.
        total = if cursor.direction == Direction::Start && !more {
            Some(rows.len() as u64)
        } else {
            Some(count_plan(ctx, &plan)?)
        };
    }
    let make = |direction: Direction, keys: Vec<Value>| {
        cursor::encode(
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
    let (first, last) = (rows.first().cloned(), rows.last().cloned());
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
    page.this = Some(cursor::encode(&this, &ctx.store.cursor_key));
    page.total = total;
    let included = includes(ctx, query, &versions)?;
    for v in &versions {
        page.matches.push(ctx.store.stored(ctx.conn, v)?);
    }
    page.included = included;
    Ok(page)
}

fn where_of(conds: &[String]) -> String {
    if conds.is_empty() {
        ALWAYS.to_owned()
    } else {
        conds.join(" AND ")
    }
}

/// The matches of a plan (without keyset): one count, or one per arm summed.
fn count_plan(ctx: &Ctx<'_>, plan: &Plan) -> Result<u64, StoreError> {
    let where_sql = where_of(&plan.conds);
    // A count needs no order: the driver's order hint (a date index by the end of the
    // period, which lacks `seq_to`) would cost a table lookup per row.
    let from = plan.from.split(" INDEXED BY ").next().unwrap_or(&plan.from);
    let text = if plan.arms.is_empty() {
        format!("SELECT count(*) FROM {from} WHERE {where_sql}")
    } else {
        let parts: Vec<String> = plan
            .arms
            .iter()
            .map(|arm| format!("SELECT count(*) AS n FROM {from} WHERE {where_sql} AND {arm}"))
            .collect();
        format!("SELECT sum(n) FROM ({})", parts.join(" UNION ALL "))
    };
    let mut stmt = ctx.conn.prepare_cached(&text)?;
    // Values bound later (sort joins, other plans) are not referred to: left out.
    let values = &ctx.sql.values;
    let values = values.get(..stmt.parameter_count()).unwrap_or(values);
    #[cfg(test)]
    plans::record(ctx.conn, &text, values);
    let n: i64 = stmt.query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

/// The keys (sort keys then `seq`) of up to `limit` rows of `plan` in its order (reversed
/// when `backward`), strictly after (before) `after` when given.
fn page_rows(
    ctx: &Ctx<'_>,
    plan: &Plan,
    after: Option<&[Value]>,
    backward: bool,
    limit: usize,
) -> Result<Vec<Vec<Value>>, StoreError> {
    let mut keys = plan.keys.clone();
    let seq_desc = keys.last().is_some_and(|k| k.descending);
    keys.push(Key {
        expr: "c.seq".into(),
        descending: seq_desc,
    });
    let mut sql = Sql {
        values: ctx.sql.values.clone(),
    };
    let mut conds = vec![where_of(&plan.conds)];
    if let Some(after) = after {
        if after.len() != keys.len() {
            return Err(StoreError::BadCursor);
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
    // The limit is written into the statement, not bound: SQLite plans with a bound LIMIT's
    // value and so re-prepares the statement every time it is bound again (12 % of a timeline
    // search's CPU). A literal keeps one cached statement per page size.
    let text = if plan.arms.is_empty() {
        let order: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", k.expr, direction(k)))
            .collect();
        let select: Vec<&str> = keys.iter().map(|k| k.expr.as_str()).collect();
        format!(
            "SELECT {} FROM {} {} WHERE {} ORDER BY {} LIMIT {limit}",
            select.join(", "),
            plan.from,
            plan.joins.join(" "),
            conds.join(" AND "),
            order.join(", ")
        )
    } else {
        // Each arm is read in order up to the limit, then the arms are merged.
        let select: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} AS k{i}", k.expr))
            .collect();
        let inner_order: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", k.expr, direction(k)))
            .collect();
        let outer_order: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("k{i} {}", direction(k)))
            .collect();
        let names: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
        let parts: Vec<String> = plan
            .arms
            .iter()
            .map(|arm| {
                format!(
                    "SELECT * FROM (SELECT {} FROM {} {} WHERE {} AND {arm} ORDER BY {} LIMIT {limit})",
                    select.join(", "),
                    plan.from,
                    plan.joins.join(" "),
                    conds.join(" AND "),
                    inner_order.join(", ")
                )
            })
            .collect();
        format!(
            "SELECT {} FROM ({}) ORDER BY {} LIMIT {limit}",
            names.join(", "),
            parts.join(" UNION ALL "),
            outer_order.join(", ")
        )
    };
    let mut stmt = ctx.conn.prepare_cached(&text)?;
    let values = sql
        .values
        .get(..stmt.parameter_count())
        .unwrap_or(&sql.values);
    #[cfg(test)]
    plans::record(ctx.conn, &text, values);
    let width = keys.len();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), |r| {
            (0..width).map(|i| r.get::<_, Value>(i)).collect()
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A walk over SQLite's plans: rows are their keys, then `seq`; the manifest is read by `seq`.
struct SqliteWalk<'c, 'a>(&'c Ctx<'a>);

impl WalkReader for SqliteWalk<'_, '_> {
    type Plan = Plan;
    type Row = Vec<Value>;
    type Error = StoreError;
    fn rows(
        &mut self,
        plan: &Plan,
        after: Option<&[Value]>,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        page_rows(self.0, plan, after, backward, limit)
    }
    fn sort_width(plan: &Plan) -> usize {
        plan.keys.len()
    }
    fn keys(row: &Vec<Value>) -> &[Value] {
        row
    }
    fn with_phase(mut row: Vec<Value>, phase: i64) -> Vec<Value> {
        row.insert(0, Value::Integer(phase));
        row
    }
    fn seq(row: &Vec<Value>) -> Result<i64, StoreError> {
        match row.last() {
            Some(Value::Integer(seq)) => Ok(*seq),
            _ => Err(StoreError::Engine("a walk row without a sequence".into())),
        }
    }
    fn manifest(&mut self, row: &Vec<Value>) -> Result<Vec<Row>, StoreError> {
        self.0.store.manifest(self.0.conn, Self::seq(row)?)
    }
}

/// A version's sort key for `params` from its manifest: the columns the walk selects, of
/// the smallest row ascending or the largest descending; None without any row.
pub(crate) fn walk_key(
    rows: &[Row],
    params: &[i64],
    kind: Kind,
    descending: bool,
) -> Option<Vec<Value>> {
    let mut best: Option<Vec<Value>> = None;
    for row in rows {
        let key = match (row, kind) {
            (Row::Token { param: p, code, .. }, Kind::Token) if params.contains(p) => {
                vec![Value::Text(code.clone())]
            }
            (Row::String { param: p, norm, .. }, Kind::String) if params.contains(p) => {
                vec![Value::Text(norm.clone())]
            }
            (
                Row::Date {
                    param: p,
                    low,
                    high,
                },
                Kind::Date,
            ) if params.contains(p) => {
                vec![Value::Integer(if descending { *high } else { *low })]
            }
            (
                Row::Number {
                    param: p, value, ..
                },
                Kind::Number,
            ) if params.contains(p) => {
                vec![Value::Real(*value)]
            }
            (
                Row::Quantity {
                    param: p, value, ..
                },
                Kind::Quantity,
            ) if params.contains(p) => {
                vec![Value::Real(*value)]
            }
            (
                Row::Reference {
                    param: p,
                    target_id,
                    ttype,
                    url,
                    ..
                },
                Kind::Reference,
            ) if params.contains(p) => vec![
                Value::Text(target_id.clone()),
                Value::Integer(*ttype),
                Value::Text(url.clone()),
            ],
            (Row::Uri { param: p, uri }, Kind::Uri) if params.contains(p) => {
                vec![Value::Text(uri.clone())]
            }
            _ => continue,
        };
        let better = match &best {
            None => true,
            Some(b) => {
                let order = compare_keys(&key, b);
                if descending {
                    order == std::cmp::Ordering::Greater
                } else {
                    order == std::cmp::Ordering::Less
                }
            }
        };
        if better {
            best = Some(key);
        }
    }
    best
}

/// SQL's order of values of one type (text byte-wise, as both engines compare).
fn compare_keys(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
            (Value::Real(x), Value::Real(y)) => x.total_cmp(y),
            (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
            _ => std::cmp::Ordering::Equal,
        };
        if order != std::cmp::Ordering::Equal {
            return order;
        }
    }
    std::cmp::Ordering::Equal
}

/// `(k1, k2, ..., seq)` strictly after (or before) `values` in the keys' own directions.
pub(crate) fn keyset(sql: &mut Sql, keys: &[Key], values: &[Value], backward: bool) -> String {
    let mut alternatives = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    for (key, value) in keys.iter().zip(values) {
        let ascending = key.descending == backward;
        let p = sql.bind(value.clone());
        let op = if ascending { ">" } else { "<" };
        let mut parts = bound.clone();
        parts.push(format!("{} {op} {p}", key.expr));
        alternatives.push(format!("({})", parts.join(" AND ")));
        bound.push(format!("{} = {p}", key.expr));
    }
    let mut text = format!("({})", alternatives.join(" OR "));
    if let (Some(first), Some(v)) = (keys.first(), values.first()) {
        // Redundant, but lets the index range start at the cursor.
        let ascending = first.descending == backward;
        let p = sql.bind(v.clone());
        text = format!(
            "{} {} {p} AND {text}",
            first.expr,
            if ascending { ">=" } else { "<=" }
        );
    }
    text
}

impl row_test::Names for Ctx<'_> {
    type Error = StoreError;
    fn params(&self, resource_type: &str, name: &str) -> Result<Vec<i64>, StoreError> {
        self.stored_params(resource_type, name)
    }
    fn system(&self, uri: &str) -> Result<Option<i64>, StoreError> {
        self.store.system_id(self.conn, uri)
    }
    fn resource_type(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.store.type_id(self.conn, name)
    }
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.store.param_id(self.conn, name)
    }

    /// The ids of the parameters whose rows hold `name`'s values on `resource_type`: its
    /// own, or those a `Registry::stored_union` parameter unites; only names stored so far.
    fn stored_params(&self, resource_type: &str, name: &str) -> Result<Vec<i64>, StoreError> {
        let Some(sources) = Registry::global().stored_union(resource_type, name) else {
            return Ok(self.param(name)?.into_iter().collect());
        };
        let mut ids = Vec::with_capacity(sources.len());
        for source in sources {
            ids.extend(self.param(source)?);
        }
        Ok(ids)
    }

    /// The index tables `params` were written to on type `tid`.
    fn kinds_of_all(&self, tid: i64, params: &[i64]) -> Result<Vec<Kind>, StoreError> {
        kinds_of_each(params, |param| kinds_of(self.conn, tid, param))
    }

    /// The plan of a query: its driver and clauses; a single sort key the driver does not
    /// order by is read by walking that parameter's index.
    fn plan(&mut self, query: &SearchQuery) -> Result<Plan, StoreError> {
        let bound = self.sql.values.len();
        let plan = self.plan_driver(query)?;
        if plan.joins.is_empty() || query.sort.len() != 1 || plan.conds.iter().any(|c| c == NEVER) {
            return Ok(plan);
        }
        // The sort key came through a join: every match's key would be computed and sorted.
        self.sql.values.truncate(bound);
        match self.walk_plan(query)? {
            Some(plan) => Ok(plan),
            None => {
                self.sql.values.truncate(bound);
                self.plan_driver(query)
            }
        }
    }

    /// A walk over the sort parameter's index (see [`Walk`]), or None when its values are
    /// not in one index table.
    fn walk_plan(&mut self, query: &SearchQuery) -> Result<Option<Plan>, StoreError> {
        let Some(key) = query.sort.first() else {
            return Ok(None);
        };
        let params = self.stored_params(&query.resource_type, &key.param)?;
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
        let pid_sql = pid_test(self.pid, &mut self.sql);
        let tid_sql = self.sql.bind(self.tid);
        let snap = self.sql.bind(self.snapshot);
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
        let from = match kind {
            Kind::Date if descending => "idx_date c INDEXED BY idx_date_high".to_owned(),
            _ => format!("{} c", kind.table()),
        };
        let rows = Plan {
            from,
            joins: vec![],
            conds,
            keys,
            arms,
            walk: None,
        };
        let (pid_p, tid_p, p2) = (
            pid_test(self.pid, &mut self.sql),
            self.sql.bind(self.tid),
            self.sql.bind_any(&params),
        );
        let probe = if query.clauses.is_empty() || rows.conds.iter().any(|c| c == NEVER) {
            None
        } else {
            RowTest::of(query, self)?.map(|test| Probe {
                rows: Plan {
                    conds: bare_conds,
                    ..rows.clone()
                },
                test,
            })
        };
        let mut rest = base.clone();
        rest.conds.push(format!(
            "c.seq NOT IN (SELECT seq FROM {} WHERE pid {pid_p} AND tid = {tid_p} AND param {p2})",
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

    /// The units (system, code) a quantity parameter was stored with in the compartment:
    /// one index seek each.
    fn units(&self, param: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let pid_op = if self.pid == EVERY_COMPARTMENT {
            ">="
        } else {
            "="
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT sys, code FROM idx_quantity WHERE pid {pid_op} ?1 AND tid = ?2 AND param = ?3
               AND (sys > ?4 OR (sys = ?4 AND code > ?5)) ORDER BY sys, code LIMIT 1"
        ))?;
        let mut out: Vec<(i64, String)> = Vec::new();
        let mut last: (i64, String) = (i64::MIN, String::new());
        loop {
            let next: Option<(i64, String)> = stmt
                .query_row(
                    rusqlite::params![self.pid, self.tid, param, last.0, last.1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some(next) = next else { break };
            out.push(next.clone());
            if out.len() > MAX_CODE_ARMS {
                break;
            }
            last = next;
        }
        Ok(out)
    }

    fn plan_driver(&mut self, query: &SearchQuery) -> Result<Plan, StoreError> {
        let pid_sql = pid_test(self.pid, &mut self.sql);
        let tid_sql = self.sql.bind(self.tid);
        let snap = self.sql.bind(self.snapshot);
        // Indexes of the clauses the driving index already applies.
        let mut used: HashSet<usize> = HashSet::new();
        let mut conds = Vec::new();
        let mut natural: Vec<Key> = Vec::new();
        let mut driver_date_param: Option<String> = None;
        let mut arms: Vec<String> = Vec::new();
        let first_sort = query.sort.first();
        let single_valued_dates = self.single_valued_dates(&query.resource_type);

        // 1. code x date pairs.
        let mut from = None;
        for (tparam_name, dparam_name) in self
            .store
            .config
            .code_date_pairs
            .iter()
            .filter(|p| p.resource_type == query.resource_type)
            .map(|p| (p.token_param.clone(), p.date_param.clone()))
        {
            let Some(ci) = query
                .clauses
                .iter()
                .position(|c| c.param == tparam_name && is_system_codes(c))
            else {
                continue;
            };
            let date_clauses: Vec<(usize, &Clause)> = query
                .clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| is_plain_date(c, &dparam_name))
                .collect();
            let sorted_by_it = first_sort.is_some_and(|s| s.param == dparam_name);
            if date_clauses.is_empty() && !sorted_by_it && first_sort.is_some() {
                // Sorted by something else: the pair gives no useful order.
                continue;
            }
            let (Some(tparam), Some(dparam)) =
                (self.param(&tparam_name)?, self.param(&dparam_name)?)
            else {
                return Ok(self.nothing(&pid_sql));
            };
            // The codes of the OR, known systems only (an unknown one matches nothing).
            let mut codes: Vec<(String, i64)> = Vec::new();
            for value in query.clauses.get(ci).map_or(&[][..], |c| &c.values[..]) {
                if let QueryValue::Token {
                    system: Some(TokenSystem::Is(system)),
                    code: Some(code),
                } = value
                    && let Some(sys) = self.store.system_id(self.conn, system)?
                    && !codes.iter().any(|(c, s)| c == code && *s == sys)
                {
                    codes.push((code.clone(), sys));
                }
            }
            if codes.len() > 1 && self.pid != EVERY_COMPARTMENT {
                // An OR of codes is one arm per code, each excluding the earlier codes row by
                // row: codes the compartment does not hold are left out first, so a dense
                // code late in the list (CGM glucose, the third of its content's codes) is not
                // tested against absent ones for every row.
                let mut probe = Sql { values: vec![] };
                let text = presence_statement(
                    &mut probe,
                    self.pid,
                    self.tid,
                    tparam,
                    dparam,
                    &codes,
                    None,
                    self.snapshot,
                );
                let present: Vec<bool> = self.conn.prepare_cached(&text)?.query_row(
                    rusqlite::params_from_iter(probe.values.iter()),
                    |r| {
                        (0..codes.len())
                            .map(|i| r.get::<_, i64>(i).map(|v| v != 0))
                            .collect()
                    },
                )?;
                let mut flags = present.into_iter();
                codes.retain(|_| flags.next().unwrap_or(false));
            }
            if codes.is_empty() {
                return Ok(self.nothing(&pid_sql));
            }
            used.insert(ci);
            let (tp, dp) = (self.sql.bind(tparam), self.sql.bind(dparam));
            conds.push(format!(
                "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.tparam = {tp} AND c.dparam = {dp}"
            ));
            // One ordered range scan per code, merged (an arm); a resource carrying several
            // of the codes is kept by the first arm whose code it has.
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
            for (i, clause) in date_clauses {
                used.insert(i);
                conds.push(self.date_driver_cond(clause, span, descending));
            }
            // SQLite would rather sort than walk the high index backwards; name it.
            from = Some(if descending {
                "idx_code_date c INDEXED BY idx_code_date_high".to_owned()
            } else {
                "idx_code_date c".to_owned()
            });
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
                let Some(param) = self.param(&name)? else {
                    return Ok(self.nothing(&pid_sql));
                };
                let p = self.sql.bind(param);
                conds.push(format!(
                    "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p}"
                ));
                let span = self.span(param)?;
                let descending = first_sort.is_some_and(|k| k.param == name && k.descending);
                for (i, clause) in query.clauses.iter().enumerate() {
                    if !used.contains(&i) && is_plain_date(clause, &name) {
                        used.insert(i);
                        conds.push(self.date_driver_cond(clause, span, descending));
                    }
                }
                from = Some(if descending {
                    "idx_date c INDEXED BY idx_date_high".to_owned()
                } else {
                    "idx_date c".to_owned()
                });
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
                        let Some(param) = self.param(&clause.param)? else {
                            return Ok(self.nothing(&pid_sql));
                        };
                        let Some(sys) = self.store.system_id(self.conn, system)? else {
                            return Ok(self.nothing(&pid_sql));
                        };
                        let (p, code_p, sys_p) = (
                            self.sql.bind(param),
                            self.sql.bind(code.clone()),
                            self.sql.bind(sys),
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
                        let Some(param) = self.param(&clause.param)? else {
                            return Ok(self.nothing(&pid_sql));
                        };
                        let Some(ttype) = self.store.type_id(self.conn, t)? else {
                            return Ok(self.nothing(&pid_sql));
                        };
                        let (p, id_p, tt) = (
                            self.sql.bind(param),
                            self.sql.bind(id.clone()),
                            self.sql.bind(ttype),
                        );
                        conds.push(format!(
                            "c.pid {pid_sql} AND c.tid = {tid_sql} AND c.param = {p} AND c.target_id = {id_p} AND c.ttype = {tt} AND c.url = ''"
                        ));
                        from = Some("idx_reference c".to_owned());
                    }
                    _ => continue,
                }
                used.insert(i);
                break;
            }
        }
        // 4. every resource of the type in the compartment.
        let id_driver = from.is_none();
        let from = match from {
            Some(f) => f,
            None => {
                let Some(param) = self.param("_id")? else {
                    return Ok(self.nothing(&pid_sql));
                };
                let p = self.sql.bind(param);
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
            if used.contains(&i) {
                continue;
            }
            let scope = Scope {
                pids: vec![self.pid],
                tid: self.tid,
                resource_type: query.resource_type.clone(),
            };
            let cond = self.clause_cond(&scope, clause, "c.seq")?;
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

    /// A plan that matches nothing (an unknown code system, parameter...).
    fn nothing(&mut self, pid_sql: &str) -> Plan {
        Plan {
            from: "idx_token c".into(),
            joins: vec![],
            conds: vec![format!("c.pid {pid_sql}"), NEVER.into()],
            keys: vec![],
            arms: vec![],
            walk: None,
        }
    }

    /// Date parameters known to hold at most one value per resource: `_lastUpdated` and the
    /// date parameters of the configured code x date pairs.
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
    fn span(&self, param: i64) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(if self.pid == EVERY_COMPARTMENT {
                "SELECT max(span) FROM date_spans WHERE pid >= ?1 AND tid = ?2 AND param = ?3"
            } else {
                "SELECT max(span) FROM date_spans WHERE pid = ?1 AND tid = ?2 AND param = ?3"
            })?
            .query_row([self.pid, self.tid, param], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .unwrap_or(0))
    }

    /// A date clause evaluated on the driver row `c` directly, with bounds on `c.low` so the
    /// range scan starts and stops near the period (`span` bounds high - low).
    /// `by_high`: the driver walks the index on `high` (descending date order), so the range
    /// bounds go on `high`; otherwise on `low`. Only the bounds the index uses are emitted:
    /// the others would be evaluated on every row for nothing.
    fn date_driver_cond(&mut self, clause: &Clause, span: i64, by_high: bool) -> String {
        let mut alternatives = Vec::new();
        for value in &clause.values {
            let QueryValue::Date { prefix, low, high } = value else {
                continue;
            };
            let exact = date_cond(&mut self.sql, "c.low", "c.high", *prefix, *low, *high);
            // Redundant bounds on both ends of the stored period (high - low <= span), so
            // either date index can serve the range: by low for ascending, by high for
            // descending order.
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
            NEVER.into()
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
    ) -> Result<Option<Key>, StoreError> {
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
        let params = self.stored_params(resource_type, &key.param)?;
        let kinds = self.kinds_of_all(self.tid, &params)?;
        let Some(kind) = kinds.first().copied() else {
            return Ok(None);
        };
        let (table, column, sentinel_hi, sentinel_lo) = match kind {
            Kind::Date => (
                "idx_date",
                if descending { "high" } else { "low" },
                "9223372036854775807",
                "-9223372036854775808",
            ),
            Kind::String => ("idx_string", "norm", "char(1114111)", "''"),
            Kind::Token => ("idx_token", "code", "char(1114111)", "''"),
            Kind::Number => ("idx_number", "value", "1e308", "-1e308"),
            Kind::Quantity => ("idx_quantity", "value", "1e308", "-1e308"),
            Kind::Reference => ("idx_reference", "target_id", "char(1114111)", "''"),
            Kind::Uri => ("idx_uri", "uri", "char(1114111)", "''"),
            Kind::Composite => return Ok(None),
        };
        let agg = if descending { "max" } else { "min" };
        let p = self.sql.bind_any(&params);
        let alias = format!("s{n}");
        joins.push(format!(
            "LEFT JOIN (SELECT seq, {agg}({column}) AS k FROM {table} WHERE pid {pid_sql} AND tid = {tid_sql} AND param {p} GROUP BY seq) {alias} ON {alias}.seq = c.seq"
        ));
        // Resources without a value sort last in either direction.
        let sentinel = if descending { sentinel_lo } else { sentinel_hi };
        Ok(Some(Key {
            expr: format!("coalesce({alias}.k, {sentinel})"),
            descending,
        }))
    }

    /// The condition that `seq_expr` (a version) satisfies `clause`, within `scope`.
    fn clause_cond(
        &mut self,
        scope: &Scope,
        clause: &Clause,
        seq_expr: &str,
    ) -> Result<String, StoreError> {
        if let Some(chain) = &clause.chain {
            return self.chain_cond(scope, clause, chain, seq_expr);
        }
        let pids = scope.pids_sql(&mut self.sql);
        let tid = self.sql.bind(scope.tid);
        let params = self.stored_params(&scope.resource_type, &clause.param)?;
        if params.is_empty() {
            return Ok(match clause.modifier {
                Some(Modifier::Missing(true)) | Some(Modifier::Not) => ALWAYS.into(),
                _ => NEVER.into(),
            });
        }
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
                        "SELECT seq FROM {} WHERE pid {pids} AND tid = {tid} AND param {p}{real}",
                        k.table()
                    )
                })
                .collect();
            let not = if missing { "NOT " } else { "" };
            return Ok(format!(
                "{seq_expr} {not}IN ({})",
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
                    "SELECT x.seq FROM {} x WHERE x.pid {pids} AND x.tid = {tid} AND x.param {p} AND ({})",
                    kind.table(),
                    conds.join(" OR ")
                )
            })
            .collect();
        let not = if negate { "NOT " } else { "" };
        Ok(format!(
            "{seq_expr} {not}IN ({})",
            subqueries.join(" UNION ALL ")
        ))
    }

    fn chain_cond(
        &mut self,
        scope: &Scope,
        clause: &Clause,
        chain: &Chain,
        seq_expr: &str,
    ) -> Result<String, StoreError> {
        let snap = self.sql.bind(self.snapshot);
        let wide = Scope {
            pids: vec![scope.pids.first().copied().unwrap_or(0), 0],
            tid: 0,
            resource_type: String::new(),
        };
        let Some(id_param) = self.param("_id")? else {
            return Ok(NEVER.into());
        };
        match chain {
            Chain::Forward { target_type, inner } => {
                let Some(ttid) = self.store.type_id(self.conn, target_type)? else {
                    return Ok(NEVER.into());
                };
                let Some(param) = self.param(&clause.param)? else {
                    return Ok(NEVER.into());
                };
                let inner_cond = self.clause_cond(
                    &Scope {
                        tid: ttid,
                        resource_type: target_type.clone(),
                        ..wide.clone()
                    },
                    inner,
                    "i.seq",
                )?;
                if inner_cond == NEVER {
                    return Ok(NEVER.into());
                }
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
                    "{seq_expr} IN (SELECT r.seq FROM idx_reference r WHERE r.pid {pids} AND r.tid = {tid} AND r.param = {p}
                       AND r.ttype = {ttid_p2} AND r.target_id IN (
                         SELECT i.code FROM idx_token i WHERE i.pid {wide_pids} AND i.tid = {ttid_p} AND i.param = {idp}
                           AND i.seq <= {snap} AND i.seq_to > {snap} AND {inner_cond}))"
                ))
            }
            Chain::Reverse {
                source_type,
                reference_param,
                inner,
            } => {
                let Some(stid) = self.store.type_id(self.conn, source_type)? else {
                    return Ok(NEVER.into());
                };
                let Some(rparam) = self.param(reference_param)? else {
                    return Ok(NEVER.into());
                };
                let inner_cond = self.clause_cond(
                    &Scope {
                        tid: stid,
                        resource_type: source_type.clone(),
                        ..wide.clone()
                    },
                    inner,
                    "s.seq",
                )?;
                if inner_cond == NEVER {
                    return Ok(NEVER.into());
                }
                let (wide_pids, stid_p, rp, own) = (
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
                    "{seq_expr} IN (SELECT t.seq FROM idx_token t WHERE t.pid {pids} AND t.tid = {tid} AND t.param = {idp}
                       AND t.code IN (
                         SELECT s.target_id FROM idx_reference s WHERE s.pid {wide_pids} AND s.tid = {stid_p} AND s.param = {rp}
                           AND s.ttype = {own} AND s.seq <= {snap} AND s.seq_to > {snap} AND {inner_cond}))"
                ))
            }
        }
    }

    /// One value's condition on an index row aliased `x`, and the table it applies to.
    fn value_cond(
        &mut self,
        clause: &Clause,
        value: &QueryValue,
    ) -> Result<Option<(Kind, String)>, StoreError> {
        let modifier = match clause.modifier {
            Some(Modifier::Not) => None,
            m => m,
        };
        if let Some(m @ (Modifier::In | Modifier::NotIn | Modifier::OfType)) = modifier {
            return Err(StoreError::Unsupported(format!(
                "the {m:?} modifier needs a terminology service"
            )));
        }
        Ok(Some(match value {
            QueryValue::Token { system, code } => match modifier {
                None | Some(Modifier::Identifier) | Some(Modifier::Exact) => {
                    let Some(cond) = self.token_cond("x.sys", "x.code", system, code)? else {
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
                Some(m) => {
                    return Err(StoreError::Unsupported(format!(
                        "{m:?} on a token parameter"
                    )));
                }
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
                    Some(m) => {
                        return Err(StoreError::Unsupported(format!(
                            "{m:?} on a string parameter"
                        )));
                    }
                }
            }
            QueryValue::Date { prefix, low, high } => {
                if modifier.is_some() {
                    return Err(StoreError::Unsupported(
                        "modifiers on a date parameter".into(),
                    ));
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
                    return Err(StoreError::Unsupported(
                        "modifiers on a number parameter".into(),
                    ));
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
                    return Err(StoreError::Unsupported(
                        "modifiers on a quantity parameter".into(),
                    ));
                }
                let number = number_cond(&mut self.sql, "x.value", *prefix, *value, *low, *high);
                let Some(unit) = self.unit_cond("x.sys", "x.code", Some("x.unit"), system, code)?
                else {
                    return Ok(None);
                };
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
                    return Err(StoreError::Unsupported(format!(
                        "{m:?} on a reference parameter"
                    )));
                }
                let mut parts = Vec::new();
                if !id.is_empty() {
                    parts.push(format!("x.target_id = {}", self.sql.bind(id.clone())));
                    if let Some(t) = target_type {
                        let Some(ttype) = self.store.type_id(self.conn, t)? else {
                            return Ok(None);
                        };
                        parts.push(format!("x.ttype = {}", self.sql.bind(ttype)));
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
                Some(m) => {
                    return Err(StoreError::Unsupported(format!("{m:?} on a uri parameter")));
                }
            },
            QueryValue::Composite(parts) => {
                if modifier.is_some() {
                    return Err(StoreError::Unsupported(
                        "modifiers on a composite parameter".into(),
                    ));
                }
                let [QueryValue::Token { system, code }, second] = parts.as_slice() else {
                    return Err(StoreError::Unsupported(
                        "composites other than token + value".into(),
                    ));
                };
                let Some(first) = self.token_cond("x.sys1", "x.code1", system, code)? else {
                    return Ok(None);
                };
                let second = match second {
                    QueryValue::Token { system, code } => {
                        let Some(c) = self.token_cond("x.sys2", "x.code2", system, code)? else {
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
                        let Some(u) = self.unit_cond("x.sys2", "x.code2", None, system, code)?
                        else {
                            return Ok(None);
                        };
                        format!("x.k2 = 2 AND {n} AND {u}")
                    }
                    QueryValue::Number {
                        prefix,
                        value,
                        low,
                        high,
                    } => {
                        format!(
                            "x.k2 = 2 AND {}",
                            number_cond(&mut self.sql, "x.num2", *prefix, *value, *low, *high)
                        )
                    }
                    QueryValue::Date { prefix, low, high } => {
                        format!(
                            "x.k2 = 3 AND {}",
                            date_cond(&mut self.sql, "x.dlow2", "x.dhigh2", *prefix, *low, *high)
                        )
                    }
                    QueryValue::String(text) => {
                        let norm = rows::phr_search_normalize(text);
                        let (lo, hi) = (
                            self.sql.bind(norm.clone()),
                            self.sql.bind(format!("{norm}\u{10FFFF}")),
                        );
                        format!("x.k2 = 4 AND x.text2 >= {lo} AND x.text2 < {hi}")
                    }
                    _ => return Err(StoreError::Unsupported("this composite component".into())),
                };
                (Kind::Composite, format!("({first} AND {second})"))
            }
        }))
    }

    /// `None` when the value can match nothing (an unknown system).
    fn token_cond(
        &mut self,
        sys_col: &str,
        code_col: &str,
        system: &Option<TokenSystem>,
        code: &Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let mut parts = Vec::new();
        if let Some(code) = code {
            parts.push(format!("{code_col} = {}", self.sql.bind(code.clone())));
        }
        match system {
            Some(TokenSystem::Is(s)) => {
                let Some(sys) = self.store.system_id(self.conn, s)? else {
                    return Ok(None);
                };
                parts.push(format!("{sys_col} = {}", self.sql.bind(sys)));
            }
            Some(TokenSystem::None) => parts.push(format!("{sys_col} = 0")),
            None => {}
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!("({})", parts.join(" AND "))))
    }

    /// Unit matching for quantities: `system|code` must both match; a code without a system
    /// matches the coded unit or the unit text.
    fn unit_cond(
        &mut self,
        sys_col: &str,
        code_col: &str,
        unit_col: Option<&str>,
        system: &Option<String>,
        code: &Option<String>,
    ) -> Result<Option<String>, StoreError> {
        Ok(Some(match (system, code) {
            (None, None) => ALWAYS.into(),
            (Some(s), code) => {
                let Some(sys) = self.store.system_id(self.conn, s)? else {
                    return Ok(None);
                };
                let sys_p = self.sql.bind(sys);
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
        }))
    }
}

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
        let mut distinct: Vec<i64> = self.pids.clone();
        distinct.dedup();
        if let [one] = distinct.as_slice() {
            format!("= {}", sql.bind(*one))
        } else {
            let list: Vec<String> = distinct.iter().map(|p| sql.bind(*p)).collect();
            format!("IN ({})", list.join(", "))
        }
    }
}

fn kinds_of(conn: &Connection, tid: i64, param: i64) -> Result<Vec<Kind>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind FROM param_kinds WHERE tid = ?1 AND param = ?2 ORDER BY kind",
    )?;
    let kinds: Vec<i64> = stmt
        .query_map([tid, param], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(kinds.into_iter().filter_map(Kind::from_i64).collect())
}

/// The distinct kinds `kinds` gives for `params`, in the order first found.
pub(crate) fn kinds_of_each<E>(
    params: &[i64],
    mut kinds: impl FnMut(i64) -> Result<Vec<Kind>, E>,
) -> Result<Vec<Kind>, E> {
    let mut all = Vec::new();
    for &param in params {
        for kind in kinds(param)? {
            if !all.contains(&kind) {
                all.push(kind);
            }
        }
    }
    Ok(all)
}

/// The arms of a walk over the rows of `params`: an index is in key order within one
/// parameter, and for a quantity within one of its `units` (per parameter, when the key is a
/// quantity), so one arm per parameter of a union and per unit; none for one parameter of
/// another kind.
pub(crate) fn walk_arms(
    sql: &mut Sql,
    params: &[i64],
    units: Option<&[Vec<(i64, String)>]>,
) -> Vec<String> {
    let mut arms = Vec::new();
    for (i, &param) in params.iter().enumerate() {
        let own = (params.len() > 1).then(|| format!("c.param = {}", sql.bind(param)));
        let Some(units) = units.and_then(|u| u.get(i)) else {
            arms.extend(own);
            continue;
        };
        for (sys, code) in units {
            let unit = format!(
                "c.sys = {} AND c.code = {}",
                sql.bind(*sys),
                sql.bind(code.clone())
            );
            arms.push(match &own {
                Some(own) => format!("{own} AND {unit}"),
                None => unit,
            });
        }
    }
    arms
}

/// At most this many codes in an OR are driven by the code x date pairs (one scan each).
pub(crate) const MAX_CODE_ARMS: usize = 32;

/// A plain clause whose every value is a `system|code` (the pairs' driver takes an OR of them).
pub(crate) fn is_system_codes(clause: &Clause) -> bool {
    clause.modifier.is_none()
        && clause.chain.is_none()
        && !clause.values.is_empty()
        && clause.values.len() <= MAX_CODE_ARMS
        && clause.values.iter().all(|v| {
            matches!(
                v,
                QueryValue::Token {
                    system: Some(TokenSystem::Is(_)),
                    code: Some(_)
                }
            )
        })
}

pub(crate) fn is_single_system_code(clause: &Clause) -> bool {
    clause.modifier.is_none()
        && clause.chain.is_none()
        && matches!(
            clause.values.as_slice(),
            [QueryValue::Token {
                system: Some(TokenSystem::Is(_)),
                code: Some(_)
            }]
        )
}

pub(crate) fn is_plain_date(clause: &Clause, param: &str) -> bool {
    clause.param == param
        && clause.modifier.is_none()
        && clause.chain.is_none()
        && !clause.values.is_empty()
        && clause
            .values
            .iter()
            .all(|v| matches!(v, QueryValue::Date { .. }))
}

/// FHIR date prefixes on a stored period [low, high] against the searched period [sl, sh]
/// (both inclusive): `eq` the search period contains the value; `gt`/`lt` some of the value
/// lies after/before the search period; `ge`/`le` are those or `eq`; `sa`/`eb` the value
/// starts after / ends before it; `ap` they overlap once the search period is widened by a
/// tenth of its distance from now.
pub(crate) fn date_cond(
    sql: &mut Sql,
    low: &str,
    high: &str,
    prefix: Prefix,
    sl: i64,
    sh: i64,
) -> String {
    let (l, h) = (sql.bind(sl), sql.bind(sh));
    let eq = format!("({low} >= {l} AND {high} <= {h})");
    // `low <= high` leaves out the "no date" sentinel rows (see rows::NO_DATE_LOW).
    let cond = match prefix {
        Prefix::Eq => eq,
        Prefix::Ne => format!("NOT {eq}"),
        Prefix::Gt => format!("{high} > {h}"),
        Prefix::Lt => format!("{low} < {l}"),
        Prefix::Ge => format!("({high} > {h} OR {eq})"),
        Prefix::Le => format!("({low} < {l} OR {eq})"),
        Prefix::Sa => format!("{low} > {h}"),
        Prefix::Eb => format!("{high} < {l}"),
        Prefix::Ap => {
            let now = now_micros();
            let middle = sl / 2 + sh / 2;
            let slack = (now - middle).abs() / 10;
            let (al, ah) = (
                sql.bind(sl.saturating_sub(slack)),
                sql.bind(sh.saturating_add(slack)),
            );
            format!("({low} <= {ah} AND {high} >= {al})")
        }
    };
    format!("({low} <= {high} AND {cond})")
}

/// FHIR number prefixes: `eq`/`ne` use the search value's implied precision range
/// [low, high); the ordering prefixes compare with the value itself; `sa`/`eb` lie beyond
/// the precision range; `ap` is within 10 %.
pub(crate) fn number_cond(
    sql: &mut Sql,
    col: &str,
    prefix: Prefix,
    value: f64,
    low: f64,
    high: f64,
) -> String {
    match prefix {
        Prefix::Eq | Prefix::Ne => {
            let (l, h) = (sql.bind(low), sql.bind(high));
            let eq = format!("({col} >= {l} AND {col} < {h})");
            if prefix == Prefix::Ne {
                format!("NOT {eq}")
            } else {
                eq
            }
        }
        Prefix::Gt => format!("{col} > {}", sql.bind(value)),
        Prefix::Lt => format!("{col} < {}", sql.bind(value)),
        Prefix::Ge => format!("{col} >= {}", sql.bind(value)),
        Prefix::Le => format!("{col} <= {}", sql.bind(value)),
        Prefix::Sa => format!("{col} >= {}", sql.bind(high)),
        Prefix::Eb => format!("{col} < {}", sql.bind(low)),
        Prefix::Ap => {
            let slack = (value * 0.1).abs();
            let (l, h) = (sql.bind(value - slack), sql.bind(value + slack));
            format!("({col} >= {l} AND {col} <= {h})")
        }
    }
}

pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `http://a/b/c` -> [`http://a/b/c`, `http://a/b`, `http://a`] (for `:above`).
pub(crate) fn uri_prefixes(uri: &str) -> Vec<String> {
    let mut out = vec![uri.to_owned()];
    let start = uri.find("://").map_or(0, |i| i + 3);
    let mut rest = uri;
    while let Some(i) = rest.rfind('/') {
        if i < start {
            break;
        }
        rest = &rest[..i];
        if !rest.is_empty() {
            out.push(rest.to_owned());
        }
    }
    out
}

/// `_include` / `_revinclude` (with `:iterate` rounds), confined to the compartment and
/// resources outside any compartment, at the page's snapshot.
fn includes(
    ctx: &mut Ctx<'_>,
    query: &SearchQuery,
    matches: &[VersionRow],
) -> Result<Vec<StoredResource>, StoreError> {
    if query.include.is_empty() && query.revinclude.is_empty() {
        return Ok(vec![]);
    }
    let limit = ctx.store.config.include_limit;
    let mut seen: HashSet<i64> = matches.iter().map(|v| v.seq).collect();
    let mut out: Vec<VersionRow> = Vec::new();
    let mut frontier: Vec<usize> = Vec::new(); // indexes into `out` added in the last round
    for round in 0..=ctx.store.config.include_iterations {
        let sources: Vec<&VersionRow> = if round == 0 {
            matches.iter().collect()
        } else {
            frontier.iter().filter_map(|&i| out.get(i)).collect()
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
            if seen.insert(v.seq) {
                frontier.push(out.len());
                out.push(v);
            }
        }
    }
    out.iter().map(|v| ctx.store.stored(ctx.conn, v)).collect()
}

fn include_targets(
    ctx: &mut Ctx<'_>,
    inc: &Include,
    source: &VersionRow,
) -> Result<Vec<VersionRow>, StoreError> {
    if ctx.store.type_name(ctx.conn, source.tid)? != inc.source_type {
        return Ok(vec![]);
    }
    let Some(param) = ctx.param(&inc.param)? else {
        return Ok(vec![]);
    };
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
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.rid = r.rid
             WHERE r.tid = ?1 AND r.id = ?2 AND v.seq <= ?3 ORDER BY v.seq DESC LIMIT 1"
        );
        let found = ctx
            .conn
            .prepare_cached(&sql)?
            .query_row(
                rusqlite::params![ttype, target_id, ctx.snapshot],
                VersionRow::from_row,
            )
            .optional()?;
        if let Some(v) = found
            && !v.deleted
            && (v.pid == ctx.pid || v.pid == 0 || ctx.pid == EVERY_COMPARTMENT)
        {
            out.push(v);
        }
    }
    Ok(out)
}

fn revinclude_sources(
    ctx: &mut Ctx<'_>,
    inc: &Include,
    target: &VersionRow,
) -> Result<Vec<VersionRow>, StoreError> {
    let target_type = ctx.store.type_name(ctx.conn, target.tid)?;
    if inc.target_type.as_ref().is_some_and(|t| *t != target_type) {
        return Ok(vec![]);
    }
    let (Some(stid), Some(param)) = (
        ctx.store.type_id(ctx.conn, &inc.source_type)?,
        ctx.param(&inc.param)?,
    ) else {
        return Ok(vec![]);
    };
    // Sources live in the searched compartment or outside any (or anywhere, for a search
    // across every compartment).
    let mut stmt = ctx.conn.prepare_cached(if ctx.pid == EVERY_COMPARTMENT {
        "SELECT DISTINCT seq FROM idx_reference
         WHERE pid >= ?1 AND tid = ?2 AND param = ?3 AND target_id = ?4 AND ttype = ?5
           AND url = '' AND seq <= ?6 AND seq_to > ?6"
    } else {
        "SELECT DISTINCT seq FROM idx_reference
         WHERE pid IN (?1, 0) AND tid = ?2 AND param = ?3 AND target_id = ?4 AND ttype = ?5
           AND url = '' AND seq <= ?6 AND seq_to > ?6"
    })?;
    let seqs: Vec<i64> = stmt
        .query_map(
            rusqlite::params![ctx.pid, stid, param, target.id, target.tid, ctx.snapshot],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for seq in seqs {
        if let Some(v) = ctx.store.fetch_version(ctx.conn, seq)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Test hook: the query plans of the statements a search ran on this thread.
#[cfg(test)]
pub(crate) mod plans {
    use std::cell::RefCell;

    use rusqlite::Connection;
    use rusqlite::types::Value;

    thread_local! {
        static PLANS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    pub fn record(conn: &Connection, sql: &str, values: &[Value]) {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explains");
        let lines: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, String>(3)
            })
            .expect("explains")
            .collect::<Result<_, _>>()
            .expect("explains");
        PLANS.with(|p| p.borrow_mut().push(lines.join("\n")));
    }

    pub fn take() -> Vec<String> {
        PLANS.with(|p| std::mem::take(&mut *p.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_above_lists_every_path_prefix() {
        assert_eq!(
            uri_prefixes("http://a.fi/x/y"),
            vec!["http://a.fi/x/y", "http://a.fi/x", "http://a.fi"]
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }
}
