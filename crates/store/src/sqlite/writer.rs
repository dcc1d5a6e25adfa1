//! The single writer thread and its group commit.
//!
//! Every `write()` / `erase()` call sends a command over a channel and waits. The writer
//! takes everything queued (up to a bound), opens one transaction, applies each request in
//! it (an all-or-nothing request inside a SAVEPOINT, rolled back whole when any op is
//! rejected; in an independent request a rejected op has written nothing), commits once and
//! only then answers every caller. A request that fails is answered with its error and the
//! group is applied again without it. With `journal_mode=WAL` and `synchronous=FULL` the commit
//! fsyncs the WAL, so an answered write survives a crash or power loss; many requests share
//! that one fsync. Conditional creates and version checks run here, serialized, so two
//! racing requests can never both succeed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, Interner, Kind, Row};
use super::schema::CURRENT;
use super::{EngineError, StoreConfig, now_micros};
use crate::{
    Atomicity, Erasure, IdentifierCondition, NewVersion, Rejection, StoreError, StoreStats,
    WriteOp, WriteOutcome,
};

pub type WriteReply = Result<Vec<Result<WriteOutcome, Rejection>>, StoreError>;

pub enum Command {
    Write {
        ops: Vec<WriteOp>,
        atomicity: Atomicity,
        reply: Sender<WriteReply>,
    },
    Erase {
        patient: String,
        what: Erasure,
        reply: Sender<Result<u64, StoreError>>,
    },
    /// Drops index rows of versions superseded more than `older_than` ago.
    Prune {
        older_than: Duration,
        reply: Sender<Result<u64, StoreError>>,
    },
}

impl Command {
    /// Write operations in this command, for the statistics.
    fn ops(&self) -> u64 {
        match self {
            Command::Write { ops, .. } => ops.len() as u64,
            Command::Erase { .. } | Command::Prune { .. } => 0,
        }
    }

    /// Where this command is answered; the work it carried is freed.
    fn into_reply(self) -> Reply {
        match self {
            Command::Write { reply, .. } => Reply::Write(reply),
            Command::Erase { reply, .. } | Command::Prune { reply, .. } => Reply::Count(reply),
        }
    }
}

/// Where a command is answered.
enum Reply {
    Write(Sender<WriteReply>),
    Count(Sender<Result<u64, StoreError>>),
}

impl Reply {
    fn answer(self, outcome: Outcome) {
        match (self, outcome) {
            (Reply::Write(reply), Outcome::Write(results)) => drop(reply.send(Ok(results))),
            (Reply::Count(reply), Outcome::Count(n)) => drop(reply.send(Ok(n))),
            (reply, _) => reply.fail(StoreError::Engine(
                "the writer answered a request with another kind's outcome".into(),
            )),
        }
    }

    fn fail(self, error: StoreError) {
        match self {
            Reply::Write(reply) => drop(reply.send(Err(error))),
            Reply::Count(reply) => drop(reply.send(Err(error))),
        }
    }
}

/// What an applied command came to; it is sent once the group has committed.
enum Outcome {
    Write(Vec<Result<WriteOutcome, Rejection>>),
    Count(u64),
}

/// Why a group's transaction was given up: it could not begin, or the command at this
/// index failed (and the transaction was rolled back).
enum Stopped {
    Begin(EngineError),
    Failed(usize, EngineError),
}

/// Interned-name caches with an undo journal: names interned inside a savepoint that is
/// rolled back must leave the caches too, or a later write would reuse a vanished id.
#[derive(Default)]
struct Caches {
    types: HashMap<String, i64>,
    params: HashMap<String, i64>,
    systems: HashMap<String, i64>,
    patients: HashMap<String, i64>,
    kinds: HashSet<(i64, i64, Kind)>,
    /// Widest date span written per (pid, tid, param), as stored in `date_spans`.
    spans: HashMap<(i64, i64, i64), i64>,
    journal: Vec<Undo>,
}

enum Undo {
    Type(String),
    Param(String),
    System(String),
    Patient(String),
    Kind(i64, i64, Kind),
    Span((i64, i64, i64), Option<i64>),
}

impl Caches {
    fn undo_to(&mut self, mark: usize) {
        while self.journal.len() > mark {
            match self.journal.pop() {
                Some(Undo::Type(n)) => {
                    self.types.remove(&n);
                }
                Some(Undo::Param(n)) => {
                    self.params.remove(&n);
                }
                Some(Undo::System(n)) => {
                    self.systems.remove(&n);
                }
                Some(Undo::Patient(n)) => {
                    self.patients.remove(&n);
                }
                Some(Undo::Kind(t, p, k)) => {
                    self.kinds.remove(&(t, p, k));
                }
                Some(Undo::Span(key, previous)) => match previous {
                    Some(v) => {
                        self.spans.insert(key, v);
                    }
                    None => {
                        self.spans.remove(&key);
                    }
                },
                None => break,
            }
        }
    }
}

struct Names<'a> {
    conn: &'a Connection,
    caches: &'a mut Caches,
}

/// One interned-name table: its name, id column, name column and undo entry.
struct NameTable {
    table: &'static str,
    key: &'static str,
    name: &'static str,
    undo: fn(String) -> Undo,
}

const TYPES: NameTable = NameTable {
    table: "types",
    key: "tid",
    name: "name",
    undo: Undo::Type,
};
const PARAMS: NameTable = NameTable {
    table: "params",
    key: "param",
    name: "name",
    undo: Undo::Param,
};
const SYSTEMS: NameTable = NameTable {
    table: "systems",
    key: "sys",
    name: "uri",
    undo: Undo::System,
};
const PATIENTS: NameTable = NameTable {
    table: "patients",
    key: "pid",
    name: "id",
    undo: Undo::Patient,
};

fn intern(
    conn: &Connection,
    map: &mut HashMap<String, i64>,
    journal: &mut Vec<Undo>,
    t: &NameTable,
    name: &str,
) -> Result<i64, EngineError> {
    if let Some(id) = map.get(name) {
        return Ok(*id);
    }
    let select = format!("SELECT {} FROM {} WHERE {} = ?1", t.key, t.table, t.name);
    let id = match conn
        .prepare_cached(&select)?
        .query_row([name], |r| r.get::<_, i64>(0))
        .optional()?
    {
        Some(id) => id,
        None => {
            let insert = format!("INSERT INTO {} ({}) VALUES (?1)", t.table, t.name);
            conn.prepare_cached(&insert)?.execute([name])?;
            journal.push((t.undo)(name.to_owned()));
            conn.last_insert_rowid()
        }
    };
    map.insert(name.to_owned(), id);
    Ok(id)
}

impl Interner for Names<'_> {
    fn param(&mut self, name: &str) -> Result<i64, EngineError> {
        let c = &mut *self.caches;
        intern(self.conn, &mut c.params, &mut c.journal, &PARAMS, name)
    }

    fn system(&mut self, uri: Option<&str>) -> Result<i64, EngineError> {
        match uri {
            None => Ok(0),
            Some(uri) => {
                let c = &mut *self.caches;
                intern(self.conn, &mut c.systems, &mut c.journal, &SYSTEMS, uri)
            }
        }
    }

    fn resource_type(&mut self, name: &str) -> Result<i64, EngineError> {
        let c = &mut *self.caches;
        intern(self.conn, &mut c.types, &mut c.journal, &TYPES, name)
    }
}

impl Names<'_> {
    fn patient(&mut self, id: Option<&str>) -> Result<i64, EngineError> {
        match id {
            None => Ok(0),
            Some(id) => {
                let c = &mut *self.caches;
                intern(self.conn, &mut c.patients, &mut c.journal, &PATIENTS, id)
            }
        }
    }

    fn kind(&mut self, tid: i64, param: i64, kind: Kind) -> Result<(), EngineError> {
        if self.caches.kinds.insert((tid, param, kind)) {
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO param_kinds (tid, param, kind) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![tid, param, kind as i64])?;
            self.caches.journal.push(Undo::Kind(tid, param, kind));
        }
        Ok(())
    }
}

/// The resource's current state, as the writer checks it.
struct Current {
    rid: i64,
    version: u64,
    seq: i64,
    deleted: bool,
    pid: i64,
    tid: i64,
}

pub struct Writer {
    conn: Connection,
    next_seq: i64,
    caches: Caches,
    /// Per type id: (token param id, date param id) pairs kept in `idx_code_date`.
    pairs: HashMap<i64, Vec<(i64, i64)>>,
    id_param: i64,
    last_updated_param: i64,
    stats: Arc<Mutex<StoreStats>>,
    max_batch: usize,
    cursor_ttl: Duration,
    last_prune: Instant,
}

impl Writer {
    pub fn new(
        mut conn: Connection,
        config: &StoreConfig,
        stats: Arc<Mutex<StoreStats>>,
    ) -> Result<Writer, EngineError> {
        let next_seq =
            conn.query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                r.get::<_, i64>(0)
            })? + 1;
        let mut caches = Caches::default();
        let mut pairs: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        let (id_param, last_updated_param);
        {
            let tx = conn.transaction()?;
            let mut names = Names {
                conn: &tx,
                caches: &mut caches,
            };
            id_param = names.param("_id")?;
            last_updated_param = names.param("_lastUpdated")?;
            for pair in &config.code_date_pairs {
                let tid = names.resource_type(&pair.resource_type)?;
                let t = names.param(&pair.token_param)?;
                let d = names.param(&pair.date_param)?;
                pairs.entry(tid).or_default().push((t, d));
            }
            tx.commit()?;
        }
        caches.journal.clear();
        Ok(Writer {
            conn,
            next_seq,
            caches,
            pairs,
            id_param,
            last_updated_param,
            stats,
            max_batch: config.max_batch_requests.max(1),
            cursor_ttl: config.cursor_ttl,
            last_prune: Instant::now(),
        })
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match commands.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.commit_group(batch);
            if self.last_prune.elapsed() > Duration::from_secs(1) {
                self.last_prune = Instant::now();
                let _ = self.prune_in_transaction(self.cursor_ttl);
            }
        }
    }

    /// Applies `batch` in one transaction and answers every caller once its fate is known.
    ///
    /// A request whose work fails (an engine error, not a rejection) may have written part
    /// of itself: its caller gets the error, the transaction is rolled back, and the other
    /// requests are applied again in a new one. Every attempt drops one request, so this
    /// ends. Requests need no savepoint of their own, which SQLite would pay for by copying
    /// each page a request touches into its statement journal first (a fifth of the
    /// writer's time in a Bundle ingest).
    fn commit_group(&mut self, mut batch: Vec<Command>) {
        let (outcomes, first_seq) = loop {
            match self.apply_group(&batch) {
                Ok(applied) => break applied,
                Err(Stopped::Begin(e)) => {
                    for command in batch {
                        command.into_reply().fail(e.to_store());
                    }
                    return;
                }
                Err(Stopped::Failed(index, e)) => {
                    batch.remove(index).into_reply().fail(e.to_store());
                    if batch.is_empty() {
                        return;
                    }
                }
            }
        };
        let requests = batch.len() as u64;
        let ops_count = batch.iter().map(Command::ops).sum::<u64>();
        // The work is done: free it before the commit, not while callers wait for answers.
        let replies: Vec<Reply> = batch.into_iter().map(Command::into_reply).collect();
        let started = Instant::now();
        let committed = (|| -> Result<(), EngineError> {
            // A group that stored no version (conditional creates that all matched, an app
            // sending its data again) must write nothing, so its commit costs no fsync.
            // (SQLite would also skip rewriting a row with identical bytes; this does not
            // rely on it.)
            if self.next_seq != first_seq {
                self.conn
                    .prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_seq'")?
                    .execute([self.next_seq - 1])?;
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        let commit_micros = started.elapsed().as_micros() as u64;
        if let Err(e) = committed {
            let _ = self.conn.execute_batch("ROLLBACK");
            // Nothing of this group is stored: forget what it interned and reload the sequence.
            self.caches = Caches::default();
            self.reload_seq();
            for reply in replies {
                reply.fail(e.to_store());
            }
            return;
        }
        self.caches.journal.clear();
        if let Ok(mut stats) = self.stats.lock() {
            stats.commits += 1;
            stats.requests += requests;
            stats.ops += ops_count;
            stats.max_batch = stats.max_batch.max(requests);
            stats.commit_micros += commit_micros;
            let bucket = (63 - requests.max(1).leading_zeros()) as usize;
            if let Some(count) = stats.batch_histogram.get_mut(bucket.min(7)) {
                *count += 1;
            }
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            reply.answer(outcome);
        }
    }

    /// Opens the group's transaction and applies each command in it: their outcomes, and
    /// the first sequence number the group could take. When one fails, the transaction is
    /// rolled back with everything it interned, and the failure names it.
    fn apply_group(&mut self, batch: &[Command]) -> Result<(Vec<Outcome>, i64), Stopped> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| Stopped::Begin(e.into()))?;
        // Another process (an operator command such as `phr care add` or `phr consent give`
        // while this server runs) may have written since: continue after its versions.
        // Cheap under the write lock just taken.
        self.reload_seq();
        let first_seq = self.next_seq;
        let mark = self.caches.journal.len();
        let mut outcomes = Vec::with_capacity(batch.len());
        for (index, command) in batch.iter().enumerate() {
            let outcome = match command {
                Command::Write { ops, atomicity, .. } => {
                    self.apply_request(ops, *atomicity).map(Outcome::Write)
                }
                Command::Erase { patient, what, .. } => {
                    self.erase(patient, what).map(Outcome::Count)
                }
                Command::Prune { older_than, .. } => self.prune(*older_than).map(Outcome::Count),
            };
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.caches.undo_to(mark);
                    return Err(Stopped::Failed(index, e));
                }
            }
        }
        Ok((outcomes, first_seq))
    }

    /// Continues the sequence after the last one stored, whoever stored it.
    fn reload_seq(&mut self) {
        if let Ok(last) =
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                    r.get::<_, i64>(0)
                })
        {
            self.next_seq = self.next_seq.max(last + 1);
        }
    }

    fn apply_request(
        &mut self,
        ops: &[WriteOp],
        atomicity: Atomicity,
    ) -> Result<Vec<Result<WriteOutcome, Rejection>>, EngineError> {
        match atomicity {
            Atomicity::AllOrNothing => {
                // A rejected op undoes the ops before it, and only those: a savepoint.
                let mark = self.caches.journal.len();
                self.exec("SAVEPOINT request")?;
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    results.push(self.apply_op(op)?);
                }
                if results.iter().any(|r| r.is_err()) {
                    self.conn
                        .execute_batch("ROLLBACK TO request; RELEASE request")?;
                    self.caches.undo_to(mark);
                } else {
                    self.exec("RELEASE request")?;
                }
                Ok(results)
            }
            // `apply_op` decides every rejection before it writes anything (only names it
            // interned stay, which are kept anyway), so a rejected op leaves nothing to undo.
            Atomicity::Independent => ops.iter().map(|op| self.apply_op(op)).collect(),
        }
    }

    fn apply_op(&mut self, op: &WriteOp) -> Result<Result<WriteOutcome, Rejection>, EngineError> {
        match op {
            WriteOp::Create { new, if_none_exist } => {
                let tid = self.names().resource_type(&new.resource_type)?;
                let pid = self.names().patient(new.patient.as_deref())?;
                if let Some(condition) = if_none_exist {
                    // A new Patient's compartment is its own new id: look for the identifier
                    // among every Patient.
                    let scope = (new.resource_type != "Patient").then_some(pid);
                    let ids = self.live_ids_with_identifier(tid, scope, condition)?;
                    if !ids.is_empty() {
                        return Ok(Ok(WriteOutcome::Existing { ids }));
                    }
                }
                if new.version != 1 {
                    if self.current(tid, &new.id)?.is_some() {
                        return Ok(Err(already_exists(new)));
                    }
                    return Ok(Err(Rejection::VersionConflict {
                        expected: Some(new.version.saturating_sub(1)),
                        current: None,
                    }));
                }
                // The insert itself finds a taken id, without a lookup of its own first.
                if !self.insert_new(tid, pid, new)? {
                    return Ok(Err(already_exists(new)));
                }
                Ok(Ok(WriteOutcome::Created { version: 1 }))
            }
            WriteOp::Update {
                new,
                create_if_missing,
            } => {
                let tid = self.names().resource_type(&new.resource_type)?;
                let pid = self.names().patient(new.patient.as_deref())?;
                match self.current(tid, &new.id)? {
                    None if *create_if_missing && new.version == 1 => {
                        if !self.insert_new(tid, pid, new)? {
                            return Ok(Err(already_exists(new)));
                        }
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
                        let seq = self.take_seq();
                        self.supersede(&cur, seq)?;
                        self.store_version(cur.rid, tid, pid, seq, new)?;
                        self.conn
                            .prepare_cached("UPDATE resources SET version = ?1, seq = ?2, deleted = 0, pid = ?3 WHERE rid = ?4")?
                            .execute(params![new.version as i64, seq, pid, cur.rid])?;
                        Ok(Ok(WriteOutcome::Updated {
                            version: new.version,
                        }))
                    }
                }
            }
            WriteOp::Delete {
                resource_type,
                id,
                version,
                last_updated,
                app,
            } => {
                let tid = self.names().resource_type(resource_type)?;
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
                        let seq = self.take_seq();
                        self.supersede(&cur, seq)?;
                        self.conn
                            .prepare_cached(
                                "INSERT INTO versions (seq, rid, version, tid, pid, last_updated, deleted, app, body, manifest)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, X'', X'')",
                            )?
                            .execute(params![seq, cur.rid, *version as i64, tid, cur.pid, last_updated, app])?;
                        self.conn
                            .prepare_cached("UPDATE resources SET version = ?1, seq = ?2, deleted = 1 WHERE rid = ?3")?
                            .execute(params![*version as i64, seq, cur.rid])?;
                        Ok(Ok(WriteOutcome::Deleted { version: *version }))
                    }
                }
            }
        }
    }

    /// Runs a statement without results through the statement cache.
    fn exec(&self, sql: &str) -> Result<(), EngineError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn names(&mut self) -> Names<'_> {
        Names {
            conn: &self.conn,
            caches: &mut self.caches,
        }
    }

    fn take_seq(&mut self) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn current(&self, tid: i64, id: &str) -> Result<Option<Current>, EngineError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT rid, version, seq, deleted, pid FROM resources WHERE tid = ?1 AND id = ?2",
            )?
            .query_row(params![tid, id], |r| {
                Ok(Current {
                    rid: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    seq: r.get(2)?,
                    deleted: r.get::<_, i64>(3)? != 0,
                    pid: r.get(4)?,
                    tid,
                })
            })
            .optional()?)
    }

    fn live_ids_with_identifier(
        &mut self,
        tid: i64,
        pid: Option<i64>,
        condition: &IdentifierCondition,
    ) -> Result<Vec<String>, EngineError> {
        let param = self.names().param("identifier")?;
        let sys = match &condition.system {
            Some(s) => Some(self.names().system(Some(s))?),
            None => None,
        };
        live_ids_with_identifier(&self.conn, tid, pid, param, sys, &condition.value)
    }

    /// Stores a new resource with its first version. False, and nothing written, when its
    /// id is taken.
    fn insert_new(&mut self, tid: i64, pid: i64, new: &NewVersion) -> Result<bool, EngineError> {
        let seq = self.next_seq;
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO resources (tid, id, pid, version, seq, deleted, created_by) VALUES (?1, ?2, ?3, 1, ?4, 0, ?5)
                 ON CONFLICT (tid, id) DO NOTHING",
            )?
            .execute(params![tid, new.id, pid, seq, new.app])?;
        if inserted == 0 {
            return Ok(false);
        }
        self.take_seq();
        let rid = self.conn.last_insert_rowid();
        self.store_version(rid, tid, pid, seq, new)?;
        Ok(true)
    }

    /// Writes the version row and its index rows.
    fn store_version(
        &mut self,
        rid: i64,
        tid: i64,
        pid: i64,
        seq: i64,
        new: &NewVersion,
    ) -> Result<(), EngineError> {
        let rows = self.rows_for(tid, new)?;
        for row in &rows {
            if let Some((param, kind)) = row.param_kind() {
                self.names().kind(tid, param, kind)?;
            }
            if let Row::Date { param, low, high } = row
                && low <= high
            {
                self.widen_span((pid, tid, *param), high.saturating_sub(*low))?;
            }
            rows::insert(&self.conn, pid, tid, seq, row)?;
        }
        let manifest = rows::encode_manifest(&rows);
        self.conn
            .prepare_cached(
                "INSERT INTO versions (seq, rid, version, tid, pid, last_updated, deleted, app, body, manifest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
            )?
            .execute(params![seq, rid, new.version as i64, tid, pid, new.last_updated, new.app, new.body, manifest])?;
        Ok(())
    }

    fn rows_for(&mut self, tid: i64, new: &NewVersion) -> Result<Vec<Row>, EngineError> {
        let (id_param, last_updated_param) = (self.id_param, self.last_updated_param);
        let pairs = self.pairs.get(&tid).cloned().unwrap_or_default();
        rows::version_rows(new, id_param, last_updated_param, &pairs, &mut self.names())
    }

    /// Records that a date period of `span` was indexed (see `date_spans`).
    fn widen_span(&mut self, key: (i64, i64, i64), span: i64) -> Result<(), EngineError> {
        let previous = self.caches.spans.get(&key).copied();
        if previous.is_some_and(|p| p >= span) {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT INTO date_spans (pid, tid, param, span) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pid, tid, param) DO UPDATE SET span = max(span, excluded.span)",
            )?
            .execute(params![key.0, key.1, key.2, span])?;
        let stored: i64 = self
            .conn
            .prepare_cached(
                "SELECT span FROM date_spans WHERE pid = ?1 AND tid = ?2 AND param = ?3",
            )?
            .query_row(params![key.0, key.1, key.2], |r| r.get(0))?;
        self.caches.spans.insert(key, stored);
        self.caches.journal.push(Undo::Span(key, previous));
        Ok(())
    }

    /// Marks the current version's index rows as replaced by `seq_to`.
    fn supersede(&mut self, cur: &Current, seq_to: i64) -> Result<(), EngineError> {
        if cur.deleted {
            return Ok(());
        }
        let manifest: Vec<u8> = self
            .conn
            .prepare_cached("SELECT manifest FROM versions WHERE seq = ?1")?
            .query_row([cur.seq], |r| r.get(0))?;
        for row in rows::decode_manifest(&manifest)? {
            rows::supersede(&self.conn, cur.pid, cur.tid, cur.seq, &row, seq_to)?;
        }
        self.conn
            .prepare_cached("INSERT INTO superseded (seq_to, seq, at) VALUES (?1, ?2, ?3)")?
            .execute(params![seq_to, cur.seq, now_micros()])?;
        Ok(())
    }

    fn erase(&mut self, patient: &str, what: &Erasure) -> Result<u64, EngineError> {
        let Some(pid) = self
            .conn
            .prepare_cached("SELECT pid FROM patients WHERE id = ?1")?
            .query_row([patient], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(0);
        };
        let rids: Vec<i64> = match what {
            Erasure::One { resource_type, id } => {
                let tid = self.names().resource_type(resource_type)?;
                match self.current(tid, id)? {
                    Some(cur) if cur.pid == pid => vec![cur.rid],
                    _ => vec![],
                }
            }
            Erasure::FromApp { app } => collect_ids(
                &self.conn,
                "SELECT DISTINCT v.rid FROM versions v JOIN resources r ON r.rid = v.rid
                 WHERE v.pid = ?1 AND r.created_by = ?2",
                params![pid, app],
            )?,
            Erasure::Everything => collect_ids(
                &self.conn,
                "SELECT DISTINCT rid FROM versions WHERE pid = ?1",
                params![pid],
            )?,
        };
        for &rid in &rids {
            let versions: Vec<(i64, i64, i64, Vec<u8>)> = {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT seq, pid, tid, manifest FROM versions WHERE rid = ?1 ORDER BY seq",
                )?;
                let rows =
                    stmt.query_map([rid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (i, (seq, vpid, tid, manifest)) in versions.iter().enumerate() {
                for row in rows::decode_manifest(manifest)? {
                    rows::delete(&self.conn, *vpid, *tid, *seq, &row)?;
                }
                if let Some((next_seq, ..)) = versions.get(i + 1) {
                    self.conn
                        .prepare_cached("DELETE FROM superseded WHERE seq_to = ?1 AND seq = ?2")?
                        .execute(params![next_seq, seq])?;
                }
            }
            self.conn
                .prepare_cached("DELETE FROM versions WHERE rid = ?1")?
                .execute([rid])?;
            self.conn
                .prepare_cached("DELETE FROM resources WHERE rid = ?1")?
                .execute([rid])?;
        }
        if matches!(what, Erasure::Everything) {
            self.conn
                .prepare_cached("DELETE FROM patients WHERE pid = ?1")?
                .execute([pid])?;
            self.conn
                .prepare_cached("DELETE FROM date_spans WHERE pid = ?1")?
                .execute([pid])?;
            self.caches.patients.remove(patient);
            self.caches.spans.retain(|key, _| key.0 != pid);
        }
        Ok(rids.len() as u64)
    }

    fn prune_in_transaction(&mut self, older_than: Duration) -> Result<u64, EngineError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match self.prune(older_than) {
            Ok(n) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(n)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Deletes the index rows of versions superseded before `now - older_than`: no valid
    /// cursor can still need them. Cursors pinned before the newest pruned supersession are
    /// refused from then on (`pruned_through`).
    fn prune(&mut self, older_than: Duration) -> Result<u64, EngineError> {
        let cutoff = now_micros() - older_than.as_micros() as i64;
        let due: Vec<(i64, i64)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT seq_to, seq FROM superseded WHERE at <= ?1 ORDER BY seq_to LIMIT 10000",
            )?;
            let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut through = 0;
        for &(seq_to, seq) in &due {
            let version: Option<(i64, i64, Vec<u8>)> = self
                .conn
                .prepare_cached("SELECT pid, tid, manifest FROM versions WHERE seq = ?1")?
                .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((pid, tid, manifest)) = version {
                for row in rows::decode_manifest(&manifest)? {
                    rows::delete(&self.conn, pid, tid, seq, &row)?;
                }
            }
            self.conn
                .prepare_cached("DELETE FROM superseded WHERE seq_to = ?1 AND seq = ?2")?
                .execute(params![seq_to, seq])?;
            through = through.max(seq_to);
        }
        if through > 0 {
            self.conn
                .prepare_cached(
                    "UPDATE meta SET value = max(value, ?1) WHERE key = 'pruned_through'",
                )?
                .execute([through])?;
        }
        Ok(due.len() as u64)
    }
}

/// The rejection of a new resource whose id is taken.
fn already_exists(new: &NewVersion) -> Rejection {
    Rejection::AlreadyExists {
        resource_type: new.resource_type.clone(),
        id: new.id.clone(),
    }
}

fn collect_ids(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<i64>, EngineError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, i64>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ids of live resources of type `tid` in compartment `pid` with identifier `value`
/// (in system `sys` when given).
/// Ids of current, live resources of type `tid` with this identifier, in compartment `pid`
/// (every compartment when None).
pub fn live_ids_with_identifier(
    conn: &Connection,
    tid: i64,
    pid: Option<i64>,
    param: i64,
    sys: Option<i64>,
    value: &str,
) -> Result<Vec<String>, EngineError> {
    let sql = if pid.is_some() {
        "SELECT DISTINCT r.id FROM idx_token t JOIN versions v ON v.seq = t.seq JOIN resources r ON r.rid = v.rid
         WHERE t.pid = ?1 AND t.tid = ?2 AND t.param = ?3 AND t.code = ?4 AND t.seq_to = ?5
           AND (?6 IS NULL OR t.sys = ?6)
         ORDER BY r.id"
    } else {
        "SELECT DISTINCT r.id FROM idx_token t JOIN versions v ON v.seq = t.seq JOIN resources r ON r.rid = v.rid
         WHERE t.pid >= ?1 AND t.tid = ?2 AND t.param = ?3 AND t.code = ?4 AND t.seq_to = ?5
           AND (?6 IS NULL OR t.sys = ?6)
         ORDER BY r.id"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![pid.unwrap_or(0), tid, param, value, CURRENT, sys],
        |r| r.get::<_, String>(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::TempDir;
    use crate::suite::{GLUCOSE, JAN1, observation};

    fn writer(dir: &TempDir) -> Writer {
        let mut conn = Connection::open(dir.db()).expect("opens");
        super::super::schema::migrate(&mut conn).expect("migrates");
        Writer::new(conn, &StoreConfig::default(), Arc::default()).expect("starts")
    }

    fn write(ids: &[(&str, &str)], atomicity: Atomicity) -> (Command, Receiver<WriteReply>) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let ops = ids
            .iter()
            .map(|(id, patient)| WriteOp::Create {
                new: observation(id, patient, GLUCOSE, JAN1, 5.5),
                if_none_exist: None,
            })
            .collect();
        let command = Command::Write {
            ops,
            atomicity,
            reply,
        };
        (command, answer)
    }

    fn stored(writer: &Writer) -> Vec<(String, String)> {
        let mut stmt = writer
            .conn
            .prepare("SELECT r.id, p.id FROM resources r JOIN patients p USING (pid) ORDER BY r.id")
            .expect("prepares");
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queries");
        rows.collect::<Result<_, _>>().expect("reads")
    }

    /// Makes the database fail every insert into `target` (a table, and optionally the
    /// trigger's `WHEN` condition): an engine failure, not a rejection.
    fn refuse_inserts(writer: &Writer, target: &str) {
        writer
            .conn
            .execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON {target}
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;"
            ))
            .expect("creates the trigger");
    }

    fn created(answer: &Receiver<WriteReply>) -> usize {
        let results = answer.recv().expect("answered").expect("succeeded");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(WriteOutcome::Created { .. })))
        );
        results.len()
    }

    #[test]
    fn a_failing_request_leaves_nothing_and_the_rest_of_its_group_is_stored() {
        let dir = TempDir::new();
        let mut writer = writer(&dir);
        // The database itself refuses one resource: an engine failure halfway through a
        // request, after its first resource and a new compartment were written.
        refuse_inserts(&writer, "resources WHEN NEW.id = 'poison'");
        let (a, a_answer) = write(&[("a1", "pa"), ("a2", "pa")], Atomicity::Independent);
        let (b, b_answer) = write(&[("b1", "pb"), ("poison", "pb")], Atomicity::Independent);
        let (c, c_answer) = write(&[("c1", "pc")], Atomicity::AllOrNothing);
        writer.commit_group(vec![a, b, c]);

        assert_eq!(created(&a_answer), 2);
        assert!(matches!(b_answer.recv(), Ok(Err(StoreError::Engine(_)))));
        assert_eq!(created(&c_answer), 1);
        let pair = |r: &str, p: &str| (r.to_owned(), p.to_owned());
        assert_eq!(
            stored(&writer),
            vec![pair("a1", "pa"), pair("a2", "pa"), pair("c1", "pc")]
        );

        // The writer forgot the compartment the failed request interned: writing into it
        // again creates it, rather than pointing at a patient row that was rolled back.
        let (d, d_answer) = write(&[("b1", "pb")], Atomicity::Independent);
        writer.commit_group(vec![d]);
        assert_eq!(created(&d_answer), 1);
        assert!(stored(&writer).contains(&pair("b1", "pb")));
    }

    #[test]
    fn a_group_that_stores_nothing_changes_nothing_in_the_database() {
        let dir = TempDir::new();
        let mut writer = writer(&dir);
        let (a, a_answer) = write(&[("a1", "pa")], Atomicity::Independent);
        writer.commit_group(vec![a]);
        assert_eq!(created(&a_answer), 1);
        let other = Connection::open(dir.db()).expect("opens");
        let data_version = || {
            other
                .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                .expect("reads")
        };
        let before = data_version();
        // Sent again: rejected, nothing to store, so no change to commit (and no fsync).
        let (again, again_answer) = write(&[("a1", "pa")], Atomicity::Independent);
        writer.commit_group(vec![again]);
        let results = again_answer.recv().expect("answered").expect("succeeded");
        assert!(matches!(
            results[..],
            [Err(Rejection::AlreadyExists { .. })]
        ));
        assert_eq!(data_version(), before);
        let (b, b_answer) = write(&[("b1", "pa")], Atomicity::Independent);
        writer.commit_group(vec![b]);
        assert_eq!(created(&b_answer), 1);
        assert_ne!(data_version(), before);
    }

    #[test]
    fn a_group_whose_every_request_fails_answers_each_and_stores_nothing() {
        let dir = TempDir::new();
        let mut writer = writer(&dir);
        refuse_inserts(&writer, "versions");
        let (a, a_answer) = write(&[("a1", "pa")], Atomicity::Independent);
        let (b, b_answer) = write(&[("b1", "pb")], Atomicity::AllOrNothing);
        writer.commit_group(vec![a, b]);
        assert!(matches!(a_answer.recv(), Ok(Err(StoreError::Engine(_)))));
        assert!(matches!(b_answer.recv(), Ok(Err(StoreError::Engine(_)))));
        assert!(stored(&writer).is_empty());
    }
}
