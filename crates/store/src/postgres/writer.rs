//! Writes, erasure and pruning on PostgreSQL.
//!
//! A `write()` is one transaction on one pooled connection:
//! 1. outside the transaction: every op's index rows are computed, and names this node has
//!    not seen are committed to the name tables (see `names.rs`);
//! 2. the rows of the compartments the ops write are locked in key order and their
//!    sequences advanced at once (`UPDATE compartments SET seq = GREATEST(seq + n, now + n)
//!    ... RETURNING seq`): the transaction owns the `n` sequence numbers below the new value
//!    in each compartment. The lock serializes a citizen's writes across nodes, which makes
//!    version checks and conditional create by identifier exactly-once; the sequence is per
//!    citizen (a hybrid clock in microseconds, so system-wide history and searches can order
//!    compartments roughly by time), never global;
//! 3. the current state of every resource the ops touch, and the live identifiers that
//!    conditional creates ask for, are read in one statement per compartment; the ops are
//!    then applied in memory, in order, each seeing the effect of the ones before;
//! 4. everything is written with one multi-row `INSERT ... SELECT FROM unnest(...)` (or
//!    `UPDATE ... FROM unnest`) per table, and committed. The call returns only after
//!    COMMIT returned, with `synchronous_commit = on`: an acknowledged write is durable.
//!
//! A rejected op writes nothing (every check runs before anything is buffered), so an
//! independent batch needs no savepoints; an all-or-nothing request with a rejection is
//! rolled back whole. Deadlocks (two requests locking compartments in different orders,
//! only possible when a resource moves or is deleted in another compartment) are retried.
//! This module must never write a row of a compartment whose lock it does not hold.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::names::{Needed, compartment_key, name_id};
use super::pool::{Conn, Pool};
use super::schema::CURRENT;
use super::{Param, PgError, PostgresConfig, PostgresStore};
use crate::sqlite::now_micros;
use crate::sqlite::rows::{self, Interner, Row, Second};
use crate::{Atomicity, Erasure, NewVersion, Rejection, WriteOp, WriteOutcome};

type Outcomes = Vec<Result<WriteOutcome, Rejection>>;

/// Attempts of a transaction that hit a deadlock or a concurrent move.
const ATTEMPTS: usize = 4;
/// Serializes pruning across nodes (session advisory lock).
const PRUNE_LOCK: i64 = 0x7068_725f_7072_756e; // "phr_prun"

// ---- step 1: rows and names, outside the transaction.

/// Collects the names entries refer to while computing their ids.
struct HashInterner<'a> {
    needed: &'a mut Needed,
    seen: HashSet<(u8, i64)>,
}

impl HashInterner<'_> {
    fn note(&mut self, table: u8, name: &str) -> i64 {
        let id = name_id(name);
        if self.seen.insert((table, id)) {
            let entry = (id, name.to_owned());
            match table {
                0 => self.needed.types.push(entry),
                1 => self.needed.params.push(entry),
                _ => self.needed.systems.push(entry),
            }
        }
        id
    }
}

impl Interner for HashInterner<'_> {
    fn param(&mut self, name: &str) -> Result<i64, crate::sqlite::EngineError> {
        Ok(self.note(1, name))
    }
    fn system(&mut self, uri: Option<&str>) -> Result<i64, crate::sqlite::EngineError> {
        Ok(uri.map_or(0, |u| self.note(2, u)))
    }
    fn resource_type(&mut self, name: &str) -> Result<i64, crate::sqlite::EngineError> {
        Ok(self.note(0, name))
    }
}

/// A new version's rows, ready before the transaction starts.
struct Prepared {
    tid: i64,
    /// The compartment the new version goes to.
    pid: i64,
    rows: Vec<Row>,
    manifest: Vec<u8>,
}

fn prepare(
    store: &PostgresStore,
    ops: &[WriteOp],
) -> Result<(Vec<Option<Prepared>>, Needed), PgError> {
    let mut needed = Needed::default();
    let mut interner = HashInterner {
        needed: &mut needed,
        seen: HashSet::new(),
    };
    let id_param = interner.note(1, "_id");
    let last_updated_param = interner.note(1, "_lastUpdated");
    for pair in &store.config.code_date_pairs {
        interner.note(1, &pair.token_param);
        interner.note(1, &pair.date_param);
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut kinds = HashSet::new();
    for op in ops {
        let new = match op {
            WriteOp::Create { new, .. } | WriteOp::Update { new, .. } => new,
            WriteOp::Delete { resource_type, .. } => {
                interner.note(0, resource_type);
                out.push(None);
                continue;
            }
        };
        let tid = interner.note(0, &new.resource_type);
        let pairs = store.pairs.get(&tid).map(Vec::as_slice).unwrap_or(&[]);
        let rows = dedup(rows::version_rows(
            new,
            id_param,
            last_updated_param,
            pairs,
            &mut interner,
        )?);
        for row in &rows {
            if let Some((param, kind)) = row.param_kind()
                && kinds.insert((tid, param, kind as i64))
            {
                interner.needed.kinds.push((tid, param, kind));
            }
        }
        let manifest = rows::encode_manifest(&rows);
        out.push(Some(Prepared {
            tid,
            pid: compartment_key(new.patient.as_deref()),
            rows,
            manifest,
        }));
    }
    Ok((out, needed))
}

/// Drops rows whose primary key repeats one before it in the same version (SQLite's
/// `INSERT OR IGNORE` keeps the first too).
fn dedup(rows: Vec<Row>) -> Vec<Row> {
    let keep: Vec<bool> = {
        let mut seen = HashSet::new();
        rows.iter().map(|row| seen.insert(row_key(row))).collect()
    };
    rows.into_iter()
        .zip(keep)
        .filter_map(|(row, keep)| keep.then_some(row))
        .collect()
}

/// The primary-key columns of a row within its version.
#[derive(Hash, PartialEq, Eq)]
enum RowKey<'a> {
    Token(i64, &'a str, i64),
    String(i64, &'a str, &'a str),
    Date(i64, i64, i64),
    Number(i64, u64, u64, u64),
    Quantity(i64, i64, &'a str, u64),
    Reference(i64, &'a str, i64, &'a str),
    Uri(i64, &'a str),
    Composite(i64, &'a str, i64, i64),
    CodeDate(i64, i64, &'a str, i64, i64, i64),
}

fn row_key(row: &Row) -> RowKey<'_> {
    match row {
        Row::Token {
            param, code, sys, ..
        } => RowKey::Token(*param, code, *sys),
        Row::String { param, norm, exact } => RowKey::String(*param, norm, exact),
        Row::Date { param, low, high } => RowKey::Date(*param, *low, *high),
        Row::Number {
            param,
            value,
            low,
            high,
        } => RowKey::Number(*param, value.to_bits(), low.to_bits(), high.to_bits()),
        Row::Quantity {
            param,
            sys,
            code,
            value,
            ..
        } => RowKey::Quantity(*param, *sys, code, value.to_bits()),
        Row::Reference {
            param,
            target_id,
            ttype,
            url,
            ..
        } => RowKey::Reference(*param, target_id, *ttype, url),
        Row::Uri { param, uri } => RowKey::Uri(*param, uri),
        Row::Composite {
            param,
            code1,
            sys1,
            ord,
            ..
        } => RowKey::Composite(*param, code1, *sys1, *ord),
        Row::CodeDate {
            tparam,
            dparam,
            code,
            sys,
            low,
            high,
            ..
        } => RowKey::CodeDate(*tparam, *dparam, code, *sys, *low, *high),
    }
}

// ---- the tables, as columns for unnest().

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    I,
    OptI,
    F,
    OptF,
    T,
    OptT,
}

impl Ty {
    fn array(self) -> &'static str {
        match self {
            Ty::I | Ty::OptI => "bigint[]",
            Ty::F | Ty::OptF => "float8[]",
            Ty::T | Ty::OptT => "text[]",
        }
    }
}

struct TableDef {
    name: &'static str,
    /// Primary-key columns.
    key: &'static [(&'static str, Ty)],
    /// The other columns; `seq_to` last.
    rest: &'static [(&'static str, Ty)],
}

const BASE: [(&str, Ty); 3] = [("pid", Ty::I), ("tid", Ty::I), ("param", Ty::I)];

const TABLES: [TableDef; 9] = [
    TableDef {
        name: "idx_token",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("code", Ty::T),
            ("seq", Ty::I),
            ("sys", Ty::I),
        ],
        rest: &[("text", Ty::OptT), ("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_string",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("norm", Ty::T),
            ("seq", Ty::I),
            ("exact", Ty::T),
        ],
        rest: &[("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_date",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("low", Ty::I),
            ("seq", Ty::I),
            ("high", Ty::I),
        ],
        rest: &[("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_number",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("value", Ty::F),
            ("seq", Ty::I),
            ("low", Ty::F),
            ("high", Ty::F),
        ],
        rest: &[("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_quantity",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("sys", Ty::I),
            ("code", Ty::T),
            ("value", Ty::F),
            ("seq", Ty::I),
        ],
        rest: &[
            ("low", Ty::F),
            ("high", Ty::F),
            ("unit", Ty::OptT),
            ("seq_to", Ty::I),
        ],
    },
    TableDef {
        name: "idx_reference",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("target_id", Ty::T),
            ("ttype", Ty::I),
            ("url", Ty::T),
            ("seq", Ty::I),
        ],
        rest: &[("version", Ty::OptT), ("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_uri",
        key: &[BASE[0], BASE[1], BASE[2], ("uri", Ty::T), ("seq", Ty::I)],
        rest: &[("seq_to", Ty::I)],
    },
    TableDef {
        name: "idx_composite",
        key: &[
            BASE[0],
            BASE[1],
            BASE[2],
            ("code1", Ty::T),
            ("sys1", Ty::I),
            ("seq", Ty::I),
            ("ord", Ty::I),
        ],
        rest: &[
            ("k2", Ty::I),
            ("sys2", Ty::OptI),
            ("code2", Ty::OptT),
            ("num2", Ty::OptF),
            ("low2", Ty::OptF),
            ("high2", Ty::OptF),
            ("dlow2", Ty::OptI),
            ("dhigh2", Ty::OptI),
            ("text2", Ty::OptT),
            ("seq_to", Ty::I),
        ],
    },
    TableDef {
        name: "idx_code_date",
        key: &[
            ("pid", Ty::I),
            ("tid", Ty::I),
            ("tparam", Ty::I),
            ("dparam", Ty::I),
            ("code", Ty::T),
            ("sys", Ty::I),
            ("low", Ty::I),
            ("seq", Ty::I),
            ("high", Ty::I),
        ],
        rest: &[
            ("seq_to", Ty::I),
            ("usys", Ty::OptI),
            ("ucode", Ty::OptT),
            ("num", Ty::OptF),
        ],
    },
];

#[derive(Debug)]
enum Val<'a> {
    I(i64),
    OptI(Option<i64>),
    F(f64),
    OptF(Option<f64>),
    T(&'a str),
    OptT(Option<&'a str>),
}

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::I(v) => v.to_sql(ty, out),
            Val::OptI(v) => v.to_sql(ty, out),
            Val::F(v) => v.to_sql(ty, out),
            Val::OptF(v) => v.to_sql(ty, out),
            Val::T(v) => v.to_sql(ty, out),
            Val::OptT(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <f64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// Which of [`TABLES`] a row goes to, and its values in key-then-rest column order.
fn row_values(pid: i64, tid: i64, seq: i64, row: &Row, seq_to: i64) -> (usize, Vec<Val<'_>>) {
    use Val::*;
    let b = |param: &i64| vec![I(pid), I(tid), I(*param)];
    match row {
        Row::Token {
            param,
            code,
            sys,
            text,
        } => {
            let mut v = b(param);
            v.extend([T(code), I(seq), I(*sys), OptT(text.as_deref()), I(seq_to)]);
            (0, v)
        }
        Row::String { param, norm, exact } => {
            let mut v = b(param);
            v.extend([T(norm), I(seq), T(exact), I(seq_to)]);
            (1, v)
        }
        Row::Date { param, low, high } => {
            let mut v = b(param);
            v.extend([I(*low), I(seq), I(*high), I(seq_to)]);
            (2, v)
        }
        Row::Number {
            param,
            value,
            low,
            high,
        } => {
            let mut v = b(param);
            v.extend([F(*value), I(seq), F(*low), F(*high), I(seq_to)]);
            (3, v)
        }
        Row::Quantity {
            param,
            sys,
            code,
            value,
            low,
            high,
            unit,
        } => {
            let mut v = b(param);
            v.extend([
                I(*sys),
                T(code),
                F(*value),
                I(seq),
                F(*low),
                F(*high),
                OptT(unit.as_deref()),
                I(seq_to),
            ]);
            (4, v)
        }
        Row::Reference {
            param,
            target_id,
            ttype,
            url,
            version,
        } => {
            let mut v = b(param);
            v.extend([
                T(target_id),
                I(*ttype),
                T(url),
                I(seq),
                OptT(version.as_deref()),
                I(seq_to),
            ]);
            (5, v)
        }
        Row::Uri { param, uri } => {
            let mut v = b(param);
            v.extend([T(uri), I(seq), I(seq_to)]);
            (6, v)
        }
        Row::Composite {
            param,
            code1,
            sys1,
            ord,
            second,
        } => {
            let mut v = b(param);
            v.extend([T(code1), I(*sys1), I(seq), I(*ord)]);
            let (k2, sys2, code2, num2, low2, high2, dlow2, dhigh2, text2) = match second {
                Second::Token { sys, code } => (
                    1,
                    Some(*sys),
                    Some(code.as_str()),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ),
                Second::Number {
                    value,
                    low,
                    high,
                    sys,
                    code,
                } => (
                    2,
                    Some(*sys),
                    Some(code.as_str()),
                    Some(*value),
                    Some(*low),
                    Some(*high),
                    None,
                    None,
                    None,
                ),
                Second::Date { low, high } => (
                    3,
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(*low),
                    Some(*high),
                    None,
                ),
                Second::Text(t) => (
                    4,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(t.as_str()),
                ),
            };
            v.extend([
                I(k2),
                OptI(sys2),
                OptT(code2),
                OptF(num2),
                OptF(low2),
                OptF(high2),
                OptI(dlow2),
                OptI(dhigh2),
                OptT(text2),
                I(seq_to),
            ]);
            (7, v)
        }
        Row::CodeDate {
            tparam,
            dparam,
            code,
            sys,
            low,
            high,
            value,
        } => (
            8,
            vec![
                I(pid),
                I(tid),
                I(*tparam),
                I(*dparam),
                T(code),
                I(*sys),
                I(*low),
                I(seq),
                I(*high),
                I(seq_to),
                OptI(value.as_ref().map(|v| v.sys)),
                OptT(value.as_ref().map(|v| v.code.as_str())),
                OptF(value.as_ref().map(|v| v.value)),
            ],
        ),
    }
}

/// One column of values for unnest().
enum Column {
    I(Vec<i64>),
    OptI(Vec<Option<i64>>),
    F(Vec<f64>),
    OptF(Vec<Option<f64>>),
    T(Vec<String>),
    OptT(Vec<Option<String>>),
}

impl Column {
    fn new(ty: Ty) -> Column {
        match ty {
            Ty::I => Column::I(vec![]),
            Ty::OptI => Column::OptI(vec![]),
            Ty::F => Column::F(vec![]),
            Ty::OptF => Column::OptF(vec![]),
            Ty::T => Column::T(vec![]),
            Ty::OptT => Column::OptT(vec![]),
        }
    }

    fn push(&mut self, v: Val<'_>) -> Result<(), PgError> {
        match (self, v) {
            (Column::I(c), Val::I(x)) => c.push(x),
            (Column::OptI(c), Val::OptI(x)) => c.push(x),
            (Column::F(c), Val::F(x)) => c.push(x),
            (Column::OptF(c), Val::OptF(x)) => c.push(x),
            (Column::T(c), Val::T(x)) => c.push(x.to_owned()),
            (Column::OptT(c), Val::OptT(x)) => c.push(x.map(str::to_owned)),
            _ => return Err(PgError::Corrupt("an index value of the wrong type".into())),
        }
        Ok(())
    }

    fn param(&self) -> Param<'_> {
        match self {
            Column::I(c) => c,
            Column::OptI(c) => c,
            Column::F(c) => c,
            Column::OptF(c) => c,
            Column::T(c) => c,
            Column::OptT(c) => c,
        }
    }
}

/// Rows of one table gathered as columns: all of them, or only the key columns (+ seq_to).
struct Batch {
    columns: Vec<Column>,
    rows: usize,
}

impl Batch {
    fn new(types: impl Iterator<Item = Ty>) -> Batch {
        Batch {
            columns: types.map(Column::new).collect(),
            rows: 0,
        }
    }

    fn push(&mut self, values: Vec<Val<'_>>) -> Result<(), PgError> {
        if values.len() != self.columns.len() {
            return Err(PgError::Corrupt("an index row of the wrong width".into()));
        }
        for (column, v) in self.columns.iter_mut().zip(values) {
            column.push(v)?;
        }
        self.rows += 1;
        Ok(())
    }

    fn params(&self) -> Vec<Param<'_>> {
        self.columns.iter().map(Column::param).collect()
    }
}

fn unnest_args(types: impl Iterator<Item = Ty>, first: usize) -> String {
    types
        .enumerate()
        .map(|(i, ty)| format!("${}::{}", first + i, ty.array()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn copy_sql(t: &TableDef) -> String {
    let cols: Vec<&str> = t.key.iter().chain(t.rest).map(|c| c.0).collect();
    format!("COPY {} ({}) FROM STDIN BINARY", t.name, cols.join(", "))
}

impl Ty {
    fn pg(self) -> Type {
        match self {
            Ty::I | Ty::OptI => Type::INT8,
            Ty::F | Ty::OptF => Type::FLOAT8,
            Ty::T | Ty::OptT => Type::TEXT,
        }
    }
}

/// Streams rows into `sql` (a `COPY ... FROM STDIN BINARY`) with one round trip.
fn copy_rows<'v>(
    conn: &mut Conn,
    sql: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<&'v (dyn ToSql + Sync)>>,
) -> Result<(), PgError> {
    let statement = conn.prepare(sql)?;
    let sink = conn.client.copy_in(&statement)?;
    let mut writer = BinaryCopyInWriter::new(sink, types);
    for row in rows {
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(())
}

/// `UPDATE ... SET seq_to` for rows named by key, all in compartment `$1`.
fn supersede_sql(t: &TableDef) -> String {
    let mut cols: Vec<&str> = t.key.iter().map(|c| c.0).collect();
    cols.push("seq_to");
    let join: Vec<String> = t
        .key
        .iter()
        .map(|c| format!("t.{0} = u.{0}", c.0))
        .collect();
    format!(
        "UPDATE {} t SET seq_to = u.seq_to FROM unnest({}) AS u({}) WHERE t.pid = $1 AND {}",
        t.name,
        unnest_args(t.key.iter().map(|c| c.1).chain([Ty::I]), 2),
        cols.join(", "),
        join.join(" AND ")
    )
}

/// `DELETE` of rows named by key, all in compartment `$1`.
fn delete_sql(t: &TableDef) -> String {
    let cols: Vec<&str> = t.key.iter().map(|c| c.0).collect();
    let join: Vec<String> = t
        .key
        .iter()
        .map(|c| format!("t.{0} = u.{0}", c.0))
        .collect();
    format!(
        "DELETE FROM {} t USING unnest({}) AS u({}) WHERE t.pid = $1 AND {}",
        t.name,
        unnest_args(t.key.iter().map(|c| c.1), 2),
        cols.join(", "),
        join.join(" AND ")
    )
}

/// Per compartment and table, key batches (with `seq_to` for supersede).
#[derive(Default)]
struct KeyBatches(HashMap<(i64, usize), Batch>);

impl KeyBatches {
    fn push(
        &mut self,
        pid: i64,
        tid: i64,
        seq: i64,
        row: &Row,
        seq_to: Option<i64>,
    ) -> Result<(), PgError> {
        let (table, mut values) = row_values(pid, tid, seq, row, seq_to.unwrap_or(CURRENT));
        let def = TABLES
            .get(table)
            .ok_or_else(|| PgError::Corrupt("index table".into()))?;
        values.truncate(def.key.len());
        let mut types: Vec<Ty> = def.key.iter().map(|c| c.1).collect();
        if let Some(s) = seq_to {
            values.push(Val::I(s));
            types.push(Ty::I);
        }
        self.0
            .entry((pid, table))
            .or_insert_with(|| Batch::new(types.into_iter()))
            .push(values)
    }

    /// Runs `sql_of(table)` once per compartment and table, with `$1` = the compartment.
    fn run(&self, conn: &mut Conn, sql_of: fn(&TableDef) -> String) -> Result<(), PgError> {
        for ((pid, table), batch) in &self.0 {
            let Some(def) = TABLES.get(*table) else {
                continue;
            };
            let mut params: Vec<Param<'_>> = vec![pid];
            params.extend(batch.params());
            conn.execute(&sql_of(def), &params)?;
        }
        Ok(())
    }
}

// ---- steps 2-4: the transaction.

/// A resource as the transaction sees it.
#[derive(Clone)]
struct Res {
    pid: i64,
    version: u64,
    seq: i64,
    deleted: bool,
    created_by: Option<String>,
    /// Manifest of the current version when it is stored (not written by this request).
    manifest: Option<Vec<u8>>,
    /// The compartment its `resources` row is stored in (None: not stored yet).
    stored_in: Option<i64>,
    dirty: bool,
}

/// A live identifier token: (compartment, version seq, type, system, code, resource id).
/// A live `identifier` token row, with its resource's id.
pub(crate) struct Ident {
    pid: i64,
    seq: i64,
    tid: i64,
    sys: i64,
    code: String,
    id: String,
}

struct PendingRow<'p> {
    pid: i64,
    tid: i64,
    seq: i64,
    row: &'p Row,
    seq_to: i64,
}

struct NewVersionRow {
    pid: i64,
    seq: i64,
    tid: i64,
    id: String,
    version: i64,
    last_updated: i64,
    deleted: bool,
    app: Option<String>,
    created_by: Option<String>,
    body: Vec<u8>,
    manifest: Vec<u8>,
}

/// Sequence numbers a transaction owns in one compartment.
struct Seqs {
    next: i64,
    last: i64,
}

struct Tx<'a, 'p> {
    conn: &'a mut Conn,
    now: i64,
    /// Sequence numbers taken per compartment: one per op is always enough.
    per_lock: i64,
    identifier_param: i64,
    locks: HashMap<i64, Seqs>,
    state: HashMap<(i64, String), Res>,
    /// (type, id) known to exist nowhere.
    absent: HashSet<(i64, String)>,
    idents: Vec<Ident>,
    pending: Vec<PendingRow<'p>>,
    /// (pid, seq) of versions written by this transaction -> their rows in `pending`.
    pending_versions: HashMap<(i64, i64), std::ops::Range<usize>>,
    supersede: KeyBatches,
    versions: Vec<NewVersionRow>,
    superseded: Vec<(i64, i64, i64)>,
    spans: HashMap<(i64, i64, i64), i64>,
}

pub fn write(
    store: &PostgresStore,
    ops: &[WriteOp],
    atomicity: Atomicity,
) -> Result<Outcomes, PgError> {
    let (prepared, needed) = prepare(store, ops)?;
    let mut names_done = false;
    let mut last_error = None;
    let mut unavailable_retried = false;
    for _ in 0..ATTEMPTS {
        let mut pooled = store.pool.get()?;
        let conn = pooled.conn()?;
        if !names_done {
            match store.known.ensure(conn, &needed) {
                Ok(()) => names_done = true,
                // The first statement on a connection the server dropped: nothing was
                // written, so one more try on a new connection is safe.
                Err(PgError::Unavailable(m)) if !unavailable_retried => {
                    unavailable_retried = true;
                    last_error = Some(PgError::Unavailable(m));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        conn.client.batch_execute("BEGIN")?;
        let mut tx = Tx {
            conn,
            now: now_micros(),
            per_lock: ops.len() as i64 + 1,
            identifier_param: name_id("identifier"),
            locks: HashMap::new(),
            state: HashMap::new(),
            absent: HashSet::new(),
            idents: Vec::new(),
            pending: Vec::new(),
            pending_versions: HashMap::new(),
            supersede: KeyBatches::default(),
            versions: Vec::new(),
            superseded: Vec::new(),
            spans: HashMap::new(),
        };
        let result = tx.run(ops, &prepared, atomicity);
        match result {
            Ok((outcomes, commit)) => {
                let started = Instant::now();
                let ended =
                    tx.conn
                        .client
                        .batch_execute(if commit { "COMMIT" } else { "ROLLBACK" });
                let commit_micros = started.elapsed().as_micros() as u64;
                ended?;
                if let Ok(mut stats) = store.stats.lock() {
                    stats.commits += 1;
                    stats.requests += 1;
                    stats.ops += ops.len() as u64;
                    stats.max_batch = stats.max_batch.max(1);
                    stats.commit_micros += commit_micros;
                    if let Some(first) = stats.batch_histogram.first_mut() {
                        *first += 1;
                    }
                }
                return Ok(outcomes);
            }
            Err(e) => {
                let _ = tx.conn.client.batch_execute("ROLLBACK");
                match e {
                    PgError::Retry(_) => last_error = Some(e),
                    other => return Err(other),
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| PgError::Retry("too many attempts".into())))
}

impl<'p> Tx<'_, 'p> {
    fn run(
        &mut self,
        ops: &'p [WriteOp],
        prepared: &'p [Option<Prepared>],
        atomicity: Atomicity,
    ) -> Result<(Outcomes, bool), PgError> {
        // Deletes name no compartment: find where their resources are first, so those
        // compartments are locked in order with the others.
        let mut deleting: Vec<(i64, String)> = Vec::new();
        for op in ops {
            if let WriteOp::Delete {
                resource_type, id, ..
            } = op
            {
                deleting.push((name_id(resource_type), id.clone()));
            }
        }
        let mut wanted: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        for (op, p) in ops.iter().zip(prepared) {
            if let (Some(p), WriteOp::Create { new, .. } | WriteOp::Update { new, .. }) = (p, op) {
                wanted
                    .entry(p.pid)
                    .or_default()
                    .push((p.tid, new.id.clone()));
            }
        }
        if !deleting.is_empty() {
            for (pid, tid, id) in self.locate(&deleting)? {
                wanted.entry(pid).or_default().push((tid, id));
            }
        }
        let order: BTreeSet<i64> = wanted.keys().copied().collect();
        let names: HashMap<i64, Option<&str>> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Create { new, .. } | WriteOp::Update { new, .. } => Some((
                    compartment_key(new.patient.as_deref()),
                    new.patient.as_deref(),
                )),
                WriteOp::Delete { .. } => None,
            })
            .collect();
        for pid in order {
            // The Patient id the compartment belongs to: known for compartments written to
            // (pid 0's is ""), unknown for those only found holding a deleted resource.
            let patient = match names.get(&pid) {
                Some(Some(p)) => Some(*p),
                Some(None) => Some(""),
                None => None,
            };
            self.lock(pid, patient)?;
            if let Some(keys) = wanted.get(&pid) {
                self.load(pid, keys)?;
            }
        }
        self.load_identifiers(ops, prepared)?;

        let mut outcomes = Vec::with_capacity(ops.len());
        for (op, p) in ops.iter().zip(prepared) {
            outcomes.push(self.apply(op, p.as_ref())?);
        }
        let rejected = outcomes.iter().any(|r| r.is_err());
        if atomicity == Atomicity::AllOrNothing && rejected {
            return Ok((outcomes, false));
        }
        self.flush()?;
        Ok((outcomes, true))
    }

    /// Where each (type, id) currently is, searching every compartment.
    fn locate(&mut self, keys: &[(i64, String)]) -> Result<Vec<(i64, i64, String)>, PgError> {
        let tids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let rows = self.conn.query(
            "SELECT pid, tid, id FROM resources WHERE tid = ANY($1) AND id = ANY($2)",
            &[&tids, &ids],
        )?;
        let wanted: HashSet<(i64, &str)> = keys.iter().map(|k| (k.0, k.1.as_str())).collect();
        let mut out = Vec::new();
        for r in rows {
            let (pid, tid, id): (i64, i64, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if wanted.contains(&(tid, id.as_str())) {
                out.push((pid, tid, id));
            }
        }
        Ok(out)
    }

    /// Locks compartment `pid` (creating its row) and takes its sequence numbers.
    /// `patient` is the Patient id the compartment must belong to, when known.
    fn lock(&mut self, pid: i64, patient: Option<&str>) -> Result<(), PgError> {
        if self.locks.contains_key(&pid) {
            return Ok(());
        }
        const ADVANCE: &str = "UPDATE compartments SET seq = GREATEST(seq + $2, $3 + $2)
                               WHERE pid = $1 RETURNING seq, patient";
        let n = self.per_lock;
        let mut row = self.conn.query_opt(ADVANCE, &[&pid, &n, &self.now])?;
        if row.is_none() {
            let Some(name) = patient else {
                // The compartment vanished (erased) since the resource was located.
                return Err(PgError::Retry("a compartment was erased meanwhile".into()));
            };
            self.conn.execute(
                "INSERT INTO compartments (pid, patient, seq, pruned_through) VALUES ($1, $2, 0, 0)
                 ON CONFLICT (pid) DO NOTHING",
                &[&pid, &name],
            )?;
            row = self.conn.query_opt(ADVANCE, &[&pid, &n, &self.now])?;
        }
        let row = row.ok_or_else(|| PgError::Retry("a compartment row vanished".into()))?;
        let (last, owner): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(name) = patient
            && name != owner
        {
            return Err(PgError::Schema(format!(
                "two Patient ids share the compartment key {pid}; refusing to mix their data"
            )));
        }
        self.locks.insert(
            pid,
            Seqs {
                next: last - n + 1,
                last,
            },
        );
        Ok(())
    }

    fn take_seq(&mut self, pid: i64) -> Result<i64, PgError> {
        let seqs = self
            .locks
            .get_mut(&pid)
            .ok_or_else(|| PgError::Corrupt("a write to a compartment it did not lock".into()))?;
        if seqs.next > seqs.last {
            return Err(PgError::Corrupt("ran out of sequence numbers".into()));
        }
        let seq = seqs.next;
        seqs.next += 1;
        Ok(seq)
    }

    /// Reads the current state of `keys` stored in compartment `pid` (locked).
    fn load(&mut self, pid: i64, keys: &[(i64, String)]) -> Result<(), PgError> {
        let tids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let rows = self.conn.query(
            "SELECT r.tid, r.id, r.version, r.seq, r.deleted, r.created_by, v.manifest
             FROM resources r LEFT JOIN versions v ON v.pid = r.pid AND v.seq = r.seq
             WHERE r.pid = $1 AND r.tid = ANY($2) AND r.id = ANY($3)",
            &[&pid, &tids, &ids],
        )?;
        let wanted: HashSet<(i64, &str)> = keys.iter().map(|k| (k.0, k.1.as_str())).collect();
        for r in rows {
            let (tid, id): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
            if !wanted.contains(&(tid, id.as_str())) || self.state.contains_key(&(tid, id.clone()))
            {
                continue;
            }
            let version: i64 = r.try_get(2)?;
            self.state.insert(
                (tid, id),
                Res {
                    pid,
                    version: version as u64,
                    seq: r.try_get(3)?,
                    deleted: r.try_get(4)?,
                    created_by: r.try_get(5)?,
                    manifest: r.try_get(6)?,
                    stored_in: Some(pid),
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// The current state of (tid, id): from what was loaded, else looked up in every
    /// compartment (a resource updated into another compartment, or deleted), locking the
    /// compartment it is found in.
    fn current(&mut self, tid: i64, id: &str) -> Result<Option<Res>, PgError> {
        let key = (tid, id.to_owned());
        if let Some(res) = self.state.get(&key) {
            return Ok(Some(res.clone()));
        }
        if self.absent.contains(&key) {
            return Ok(None);
        }
        let found = self.locate(std::slice::from_ref(&key))?;
        let Some((pid, ..)) = found.first() else {
            self.absent.insert(key);
            return Ok(None);
        };
        let pid = *pid;
        // A lock taken out of key order: a deadlock is detected by the server and retried.
        self.lock(pid, None)?;
        self.load(pid, std::slice::from_ref(&key))?;
        match self.state.get(&key) {
            Some(res) => Ok(Some(res.clone())),
            None => Err(PgError::Retry(
                "a resource moved while being located".into(),
            )),
        }
    }

    /// Reads the live identifier tokens the conditional creates ask about, after the
    /// compartments are locked (a Patient's condition covers every compartment: it is
    /// serialized by an advisory lock per identifier instead).
    fn load_identifiers(
        &mut self,
        ops: &[WriteOp],
        prepared: &[Option<Prepared>],
    ) -> Result<(), PgError> {
        let mut scoped: HashMap<Option<i64>, (Vec<i64>, Vec<String>)> = HashMap::new();
        for (op, p) in ops.iter().zip(prepared) {
            if let (
                WriteOp::Create {
                    new,
                    if_none_exist: Some(condition),
                },
                Some(p),
            ) = (op, p)
            {
                let scope = (new.resource_type != "Patient").then_some(p.pid);
                let entry = scoped.entry(scope).or_default();
                entry.0.push(p.tid);
                entry.1.push(condition.value.clone());
            }
        }
        let mut every: Vec<i64> = match scoped.get(&None) {
            Some((tids, codes)) => tids
                .iter()
                .zip(codes)
                .map(|(t, c)| name_id(&format!("{t}|{c}")))
                .collect(),
            None => vec![],
        };
        every.sort_unstable();
        every.dedup();
        for lock in every {
            self.conn
                .execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
        }
        for (scope, (tids, codes)) in scoped {
            let found = live_identifiers(self.conn, scope, &tids, &codes, self.identifier_param)?;
            self.idents.extend(found);
        }
        Ok(())
    }

    fn apply(
        &mut self,
        op: &'p WriteOp,
        prepared: Option<&'p Prepared>,
    ) -> Result<Result<WriteOutcome, Rejection>, PgError> {
        match (op, prepared) {
            (WriteOp::Create { new, if_none_exist }, Some(p)) => {
                if let Some(condition) = if_none_exist {
                    let scope = (new.resource_type != "Patient").then_some(p.pid);
                    let ids = matching_ids(&self.idents, p.tid, scope, condition);
                    if !ids.is_empty() {
                        return Ok(Ok(WriteOutcome::Existing { ids }));
                    }
                }
                if self.state.contains_key(&(p.tid, new.id.clone())) {
                    return Ok(Err(Rejection::AlreadyExists {
                        resource_type: new.resource_type.clone(),
                        id: new.id.clone(),
                    }));
                }
                if new.version != 1 {
                    return Ok(Err(Rejection::VersionConflict {
                        expected: Some(new.version.saturating_sub(1)),
                        current: None,
                    }));
                }
                self.insert_new(p, new)?;
                Ok(Ok(WriteOutcome::Created { version: 1 }))
            }
            (
                WriteOp::Update {
                    new,
                    create_if_missing,
                },
                Some(p),
            ) => match self.current(p.tid, &new.id)? {
                None if *create_if_missing && new.version == 1 => {
                    self.insert_new(p, new)?;
                    Ok(Ok(WriteOutcome::Created { version: 1 }))
                }
                None if *create_if_missing => Ok(Err(Rejection::VersionConflict {
                    expected: Some(new.version.saturating_sub(1)),
                    current: None,
                })),
                None => Ok(Err(Rejection::NotFound {
                    resource_type: new.resource_type.clone(),
                    id: new.id.clone(),
                })),
                Some(cur) if new.version != cur.version + 1 => {
                    Ok(Err(Rejection::VersionConflict {
                        expected: Some(new.version.saturating_sub(1)),
                        current: Some(cur.version),
                    }))
                }
                Some(cur) => {
                    let seq = self.take_seq(p.pid)?;
                    let seq_to = if cur.pid == p.pid {
                        seq
                    } else {
                        self.take_seq(cur.pid)?
                    };
                    self.supersede(p.tid, &cur, seq_to)?;
                    self.store_version(p, seq, new, cur.created_by.clone());
                    self.set_state(
                        p.tid,
                        &new.id,
                        Res {
                            pid: p.pid,
                            version: new.version,
                            seq,
                            deleted: false,
                            created_by: cur.created_by.clone(),
                            manifest: None,
                            stored_in: cur.stored_in,
                            dirty: true,
                        },
                    );
                    Ok(Ok(WriteOutcome::Updated {
                        version: new.version,
                    }))
                }
            },
            (
                WriteOp::Delete {
                    resource_type,
                    id,
                    version,
                    last_updated,
                    app,
                },
                _,
            ) => {
                let tid = name_id(resource_type);
                match self.current(tid, id)? {
                    None => Ok(Err(Rejection::NotFound {
                        resource_type: resource_type.clone(),
                        id: id.clone(),
                    })),
                    Some(cur) if cur.deleted => Ok(Ok(WriteOutcome::Deleted {
                        version: cur.version,
                    })),
                    Some(cur) if *version != cur.version + 1 => {
                        Ok(Err(Rejection::VersionConflict {
                            expected: Some(version.saturating_sub(1)),
                            current: Some(cur.version),
                        }))
                    }
                    Some(cur) => {
                        let seq = self.take_seq(cur.pid)?;
                        self.supersede(tid, &cur, seq)?;
                        self.versions.push(NewVersionRow {
                            pid: cur.pid,
                            seq,
                            tid,
                            id: id.clone(),
                            version: *version as i64,
                            last_updated: *last_updated,
                            deleted: true,
                            app: app.clone(),
                            created_by: cur.created_by.clone(),
                            body: vec![],
                            manifest: vec![],
                        });
                        self.set_state(
                            tid,
                            id,
                            Res {
                                version: *version,
                                seq,
                                deleted: true,
                                manifest: None,
                                dirty: true,
                                ..cur
                            },
                        );
                        Ok(Ok(WriteOutcome::Deleted { version: *version }))
                    }
                }
            }
            _ => Err(PgError::Corrupt(
                "an operation without its prepared rows".into(),
            )),
        }
    }

    fn set_state(&mut self, tid: i64, id: &str, res: Res) {
        self.absent.remove(&(tid, id.to_owned()));
        self.state.insert((tid, id.to_owned()), res);
    }

    fn insert_new(&mut self, p: &'p Prepared, new: &NewVersion) -> Result<(), PgError> {
        let seq = self.take_seq(p.pid)?;
        self.store_version(p, seq, new, new.app.clone());
        self.set_state(
            p.tid,
            &new.id,
            Res {
                pid: p.pid,
                version: 1,
                seq,
                deleted: false,
                created_by: new.app.clone(),
                manifest: None,
                stored_in: None,
                dirty: true,
            },
        );
        Ok(())
    }

    /// Buffers the version row and its index rows.
    fn store_version(
        &mut self,
        p: &'p Prepared,
        seq: i64,
        new: &NewVersion,
        created_by: Option<String>,
    ) {
        let start = self.pending.len();
        for row in &p.rows {
            if let Row::Date { param, low, high } = row
                && low <= high
            {
                let span = self.spans.entry((p.pid, p.tid, *param)).or_insert(0);
                *span = (*span).max(high.saturating_sub(*low));
            }
            if let Row::Token {
                param, code, sys, ..
            } = row
                && *param == self.identifier_param
            {
                self.idents.push(Ident {
                    pid: p.pid,
                    seq,
                    tid: p.tid,
                    sys: *sys,
                    code: code.clone(),
                    id: new.id.clone(),
                });
            }
            self.pending.push(PendingRow {
                pid: p.pid,
                tid: p.tid,
                seq,
                row,
                seq_to: CURRENT,
            });
        }
        self.pending_versions
            .insert((p.pid, seq), start..self.pending.len());
        self.versions.push(NewVersionRow {
            pid: p.pid,
            seq,
            tid: p.tid,
            id: new.id.clone(),
            version: new.version as i64,
            last_updated: new.last_updated,
            deleted: false,
            app: new.app.clone(),
            created_by,
            body: new.body.clone(),
            manifest: p.manifest.clone(),
        });
    }

    /// Marks the current version's index rows as replaced at `seq_to` (of its compartment).
    fn supersede(&mut self, tid: i64, cur: &Res, seq_to: i64) -> Result<(), PgError> {
        self.idents
            .retain(|i| !(i.pid == cur.pid && i.seq == cur.seq));
        if cur.deleted {
            return Ok(());
        }
        if let Some(range) = self.pending_versions.get(&(cur.pid, cur.seq)) {
            for row in self.pending.get_mut(range.clone()).into_iter().flatten() {
                row.seq_to = seq_to;
            }
        } else {
            let manifest = cur
                .manifest
                .as_deref()
                .ok_or_else(|| PgError::Corrupt("a current version without its manifest".into()))?;
            for row in rows::decode_manifest(manifest)? {
                self.supersede
                    .push(cur.pid, tid, cur.seq, &row, Some(seq_to))?;
            }
        }
        self.superseded.push((cur.pid, seq_to, cur.seq));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PgError> {
        self.supersede.run(self.conn, supersede_sql)?;
        // Index rows: one COPY per table.
        let mut by_table: Vec<Vec<Vec<Val<'_>>>> = TABLES.iter().map(|_| Vec::new()).collect();
        for p in &self.pending {
            let (table, values) = row_values(p.pid, p.tid, p.seq, p.row, p.seq_to);
            if let Some(rows) = by_table.get_mut(table) {
                rows.push(values);
            }
        }
        for (def, rows) in TABLES.iter().zip(&by_table) {
            if rows.is_empty() {
                continue;
            }
            let types: Vec<Type> = def.key.iter().chain(def.rest).map(|c| c.1.pg()).collect();
            copy_rows(
                self.conn,
                &copy_sql(def),
                &types,
                rows.iter()
                    .map(|r| r.iter().map(|v| v as &(dyn ToSql + Sync)).collect()),
            )?;
        }
        self.write_versions()?;
        self.write_resources()?;
        if !self.superseded.is_empty() {
            let pids: Vec<i64> = self.superseded.iter().map(|s| s.0).collect();
            let seq_tos: Vec<i64> = self.superseded.iter().map(|s| s.1).collect();
            let seqs: Vec<i64> = self.superseded.iter().map(|s| s.2).collect();
            self.conn.execute(
                "INSERT INTO superseded (pid, seq_to, seq, at)
                 SELECT u.pid, u.seq_to, u.seq, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(pid, seq_to, seq)",
                &[&pids, &seq_tos, &seqs, &self.now],
            )?;
        }
        if !self.spans.is_empty() {
            let mut cols: [Vec<i64>; 4] = Default::default();
            for ((pid, tid, param), span) in &self.spans {
                for (c, v) in cols.iter_mut().zip([*pid, *tid, *param, *span]) {
                    c.push(v);
                }
            }
            let [a, b, c, d] = &cols;
            self.conn.execute(
                "INSERT INTO date_spans (pid, tid, param, span)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (pid, tid, param) DO UPDATE SET span = excluded.span
                 WHERE date_spans.span < excluded.span",
                &[a, b, c, d],
            )?;
        }
        Ok(())
    }

    fn write_versions(&mut self) -> Result<(), PgError> {
        if self.versions.is_empty() {
            return Ok(());
        }
        let types = [
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::BOOL,
            Type::TEXT,
            Type::TEXT,
            Type::BYTEA,
            Type::BYTEA,
        ];
        let versions = std::mem::take(&mut self.versions);
        copy_rows(
            self.conn,
            "COPY versions (pid, seq, tid, id, version, last_updated, deleted, app, created_by, body, manifest)
             FROM STDIN BINARY",
            &types,
            versions.iter().map(|r| -> Vec<&(dyn ToSql + Sync)> {
                vec![
                    &r.pid,
                    &r.seq,
                    &r.tid,
                    &r.id,
                    &r.version,
                    &r.last_updated,
                    &r.deleted,
                    &r.app,
                    &r.created_by,
                    &r.body,
                    &r.manifest,
                ]
            }),
        )?;
        Ok(())
    }

    fn write_resources(&mut self) -> Result<(), PgError> {
        #[derive(Default)]
        struct ResourceColumns<'a>(
            Vec<i64>,
            Vec<i64>,
            Vec<&'a str>,
            Vec<i64>,
            Vec<i64>,
            Vec<bool>,
            Vec<Option<&'a str>>,
        );
        let mut cols = ResourceColumns::default();
        let mut moved: Vec<(i64, i64, String)> = Vec::new();
        for ((tid, id), res) in &self.state {
            if !res.dirty {
                continue;
            }
            if let Some(old) = res.stored_in
                && old != res.pid
            {
                moved.push((old, *tid, id.clone()));
            }
            cols.0.push(res.pid);
            cols.1.push(*tid);
            cols.2.push(id);
            cols.3.push(res.version as i64);
            cols.4.push(res.seq);
            cols.5.push(res.deleted);
            cols.6.push(res.created_by.as_deref());
        }
        for (pid, tid, id) in &moved {
            self.conn.execute(
                "DELETE FROM resources WHERE pid = $1 AND tid = $2 AND id = $3",
                &[pid, tid, id],
            )?;
        }
        if cols.0.is_empty() {
            return Ok(());
        }
        self.conn.execute(
            "INSERT INTO resources (pid, tid, id, version, seq, deleted, created_by)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bool[], $7::text[])
             ON CONFLICT (pid, tid, id) DO UPDATE
                 SET version = excluded.version, seq = excluded.seq, deleted = excluded.deleted",
            &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6],
        )?;
        Ok(())
    }
}

// ---- reads the writer shares with `find_by_identifier(s)`.

/// The live `identifier` rows of types `tids` with one of `codes`, in compartment `scope`
/// (every compartment when None): one statement, which the planner prunes to one partition
/// when the compartment is given.
pub(crate) fn live_identifiers(
    conn: &mut Conn,
    scope: Option<i64>,
    tids: &[i64],
    codes: &[String],
    identifier_param: i64,
) -> Result<Vec<Ident>, PgError> {
    let sql = format!(
        "SELECT t.pid, t.seq, t.tid, t.sys, t.code, v.id
         FROM idx_token t JOIN versions v ON v.pid = t.pid AND v.seq = t.seq
         WHERE t.pid {} $1 AND t.tid = ANY($2) AND t.param = $3 AND t.code = ANY($4)
           AND t.seq_to = $5",
        if scope.is_some() { "=" } else { ">=" }
    );
    let rows = conn.query(
        &sql,
        &[
            &scope.unwrap_or(0),
            &tids,
            &identifier_param,
            &codes,
            &CURRENT,
        ],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Ident {
                pid: r.try_get(0)?,
                seq: r.try_get(1)?,
                tid: r.try_get(2)?,
                sys: r.try_get(3)?,
                code: r.try_get(4)?,
                id: r.try_get(5)?,
            })
        })
        .collect()
}

/// The ids, sorted and distinct, of the rows that answer `condition` for type `tid` in
/// compartment `scope` (every compartment when None).
pub(crate) fn matching_ids(
    rows: &[Ident],
    tid: i64,
    scope: Option<i64>,
    condition: &crate::IdentifierCondition,
) -> Vec<String> {
    let sys = condition.system.as_deref().map(name_id);
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|i| {
            i.tid == tid
                && i.code == condition.value
                && scope.is_none_or(|p| i.pid == p)
                && sys.is_none_or(|s| i.sys == s)
        })
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

// ---- erasure.

pub fn erase(store: &PostgresStore, patient: &str, what: &Erasure) -> Result<u64, PgError> {
    let pid = compartment_key(Some(patient));
    let mut pooled = store.pool.get()?;
    let conn = pooled.conn()?;
    conn.client.batch_execute("BEGIN")?;
    let result = erase_in(conn, pid, patient, what);
    let ended = conn
        .client
        .batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let n = result?;
    ended?;
    Ok(n)
}

fn erase_in(conn: &mut Conn, pid: i64, patient: &str, what: &Erasure) -> Result<u64, PgError> {
    let owner: Option<String> = conn
        .query_opt(
            "SELECT patient FROM compartments WHERE pid = $1 FOR UPDATE",
            &[&pid],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    if owner.as_deref() != Some(patient) {
        return Ok(0);
    }
    let targets: Vec<(i64, String)> = match what {
        Erasure::Everything => {
            let n: i64 = conn.query_one_value(
                "SELECT count(*) FROM (SELECT DISTINCT tid, id FROM versions WHERE pid = $1) x",
                &[&pid],
            )?;
            // Everything under the key goes, the compartment row too.
            for table in super::schema::PATIENT_TABLES {
                conn.execute(&format!("DELETE FROM {table} WHERE pid = $1"), &[&pid])?;
            }
            return Ok(n as u64);
        }
        Erasure::One { resource_type, id } => {
            let tid = name_id(resource_type);
            let stored = conn
                .query_opt(
                    "SELECT 1 FROM resources WHERE pid = $1 AND tid = $2 AND id = $3",
                    &[&pid, &tid, id],
                )?
                .is_some();
            if stored {
                vec![(tid, id.clone())]
            } else {
                vec![]
            }
        }
        Erasure::FromApp { app } => conn
            .query(
                "SELECT DISTINCT tid, id FROM versions WHERE pid = $1 AND created_by = $2",
                &[&pid, app],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, PgError>>()?,
    };
    if targets.is_empty() {
        return Ok(0);
    }
    let tids: Vec<i64> = targets.iter().map(|t| t.0).collect();
    let ids: Vec<&str> = targets.iter().map(|t| t.1.as_str()).collect();
    let wanted: HashSet<(i64, &str)> = targets.iter().map(|t| (t.0, t.1.as_str())).collect();
    let rows = conn.query(
        "SELECT tid, id, seq, manifest FROM versions WHERE pid = $1 AND tid = ANY($2) AND id = ANY($3)",
        &[&pid, &tids, &ids],
    )?;
    let mut batches = KeyBatches::default();
    let mut seqs = Vec::new();
    for r in &rows {
        let (tid, id): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        if !wanted.contains(&(tid, id.as_str())) {
            continue;
        }
        let seq: i64 = r.try_get(2)?;
        let manifest: Vec<u8> = r.try_get(3)?;
        for row in rows::decode_manifest(&manifest)? {
            batches.push(pid, tid, seq, &row, None)?;
        }
        seqs.push(seq);
    }
    batches.run(conn, delete_sql)?;
    conn.execute(
        "DELETE FROM superseded WHERE pid = $1 AND (seq = ANY($2) OR seq_to = ANY($2))",
        &[&pid, &seqs],
    )?;
    conn.execute(
        "DELETE FROM versions WHERE pid = $1 AND seq = ANY($2)",
        &[&pid, &seqs],
    )?;
    conn.execute(
        "DELETE FROM resources r USING unnest($2::bigint[], $3::text[]) AS u(tid, id)
         WHERE r.pid = $1 AND r.tid = u.tid AND r.id = u.id",
        &[&pid, &tids, &ids],
    )?;
    Ok(targets.len() as u64)
}

// ---- pruning.

pub fn prune(store: &PostgresStore, older_than: Duration) -> Result<u64, PgError> {
    prune_locked(&store.pool, older_than, true)
}

/// The pruner thread's round: skipped when another node is pruning.
pub fn prune_with(
    pool: &Pool,
    _config: &PostgresConfig,
    older_than: Duration,
) -> Result<u64, PgError> {
    prune_locked(pool, older_than, false)
}

fn prune_locked(pool: &Pool, older_than: Duration, wait: bool) -> Result<u64, PgError> {
    let mut pooled = pool.get()?;
    let conn = pooled.conn()?;
    if wait {
        conn.execute("SELECT pg_advisory_lock($1)", &[&PRUNE_LOCK])?;
    } else {
        let got: bool = conn.query_one_value("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])?;
        if !got {
            return Ok(0);
        }
    }
    let result = prune_rounds(conn, older_than);
    let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK]);
    let n = result?;
    unlocked?;
    Ok(n)
}

/// Deletes the index rows of versions superseded before `now - older_than` (no valid cursor
/// can need them), one compartment per transaction, and raises the compartment's
/// `pruned_through` in the same transaction: cursors pinned before it are refused.
fn prune_rounds(conn: &mut Conn, older_than: Duration) -> Result<u64, PgError> {
    let cutoff = now_micros() - older_than.as_micros() as i64;
    let mut total = 0u64;
    loop {
        let due = conn.query(
            "SELECT pid, seq_to, seq FROM superseded WHERE at <= $1 ORDER BY pid LIMIT 5000",
            &[&cutoff],
        )?;
        if due.is_empty() {
            return Ok(total);
        }
        let mut by_pid: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for r in &due {
            by_pid
                .entry(r.try_get(0)?)
                .or_default()
                .push((r.try_get(1)?, r.try_get(2)?));
        }
        for (pid, entries) in by_pid {
            conn.client.batch_execute("BEGIN")?;
            let result = prune_compartment(conn, pid, &entries);
            let ended =
                conn.client
                    .batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
            total += result?;
            ended?;
        }
    }
}

fn prune_compartment(conn: &mut Conn, pid: i64, entries: &[(i64, i64)]) -> Result<u64, PgError> {
    let seqs: Vec<i64> = entries.iter().map(|e| e.1).collect();
    let seq_tos: Vec<i64> = entries.iter().map(|e| e.0).collect();
    let rows = conn.query(
        "SELECT seq, tid, manifest FROM versions WHERE pid = $1 AND seq = ANY($2)",
        &[&pid, &seqs],
    )?;
    let mut batches = KeyBatches::default();
    for r in &rows {
        let (seq, tid, manifest): (i64, i64, Vec<u8>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        for row in rows::decode_manifest(&manifest)? {
            batches.push(pid, tid, seq, &row, None)?;
        }
    }
    batches.run(conn, delete_sql)?;
    let deleted = conn.execute(
        "DELETE FROM superseded s USING unnest($2::bigint[], $3::bigint[]) AS u(seq_to, seq)
         WHERE s.pid = $1 AND s.seq_to = u.seq_to AND s.seq = u.seq",
        &[&pid, &seq_tos, &seqs],
    )?;
    let through = seq_tos.iter().copied().max().unwrap_or(0);
    conn.execute(
        "UPDATE compartments SET pruned_through = GREATEST(pruned_through, $2) WHERE pid = $1",
        &[&pid, &through],
    )?;
    Ok(deleted)
}

impl Conn {
    fn query_one_value<T>(&mut self, sql: &str, params: &[Param<'_>]) -> Result<T, PgError>
    where
        T: for<'r> ::postgres::types::FromSql<'r>,
    {
        let row = self
            .query_opt(sql, params)?
            .ok_or_else(|| PgError::Corrupt(format!("no row from {sql}")))?;
        Ok(row.try_get(0)?)
    }
}
