//! The PostgreSQL engine: any number of `phr` nodes on one database (or one Citus cluster),
//! with the same observable behaviour as the SQLite engine.
//!
//! Data is placed by citizen: every table with citizen data is keyed first by `pid`, the
//! citizen's compartment key (a 63-bit hash of the Patient id, computed by every node
//! without asking the database; 0 = resources outside every compartment). Each compartment
//! has its own write sequence in `compartments.seq`; a write transaction locks and advances
//! the rows of the compartments it writes (see [`writer`]), so a citizen's writes are
//! serialized across nodes and a search page cursor is pinned to a snapshot of the
//! citizen's sequence. Nothing in the write path is global: no sequence, no counter, no
//! unique constraint across citizens.
//!
//! All methods block (the synchronous `postgres` client); async callers use
//! `spawn_blocking`. Connections come from a bounded pool ([`pool`]) with connect,
//! statement and checkout timeouts: a dead database gives [`StoreError::Unavailable`], never
//! a hang, and the pool reconnects by itself when the database is back. This module must
//! never hold a lock on a compartment row outside a write transaction.

mod names;
pub mod pool;
pub mod schema;
mod search;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::Row as PgRow;
use ::postgres::types::ToSql;

use crate::sqlite::cursor;
use crate::sqlite::search::in_patient_compartments;
use crate::sqlite::{CodeDatePair, StoreConfig, now_micros};
use crate::{
    Atomicity, Erasure, HistoryPage, HistoryQuery, IdentifierCondition, IdentifierLookup,
    Rejection, SearchPage, SearchQuery, Storage, StoreError, StoreStats, StoredResource, WriteOp,
    WriteOutcome,
};
pub use names::{compartment_key, name_id};
use pool::{Conn, Pool};
pub use schema::Layout;

/// Errors inside the engine; callers see them as [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("postgresql: {}", describe(.0))]
    Db(#[source] ::postgres::Error),
    #[error("{0}")]
    Unavailable(String),
    #[error("schema: {0}")]
    Schema(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A conflict the transaction should simply be run again for (deadlock, a resource
    /// that moved to another compartment while it was being looked up).
    #[error("transient conflict: {0}")]
    Retry(String),
    #[error("storage is shutting down")]
    Closed,
}

/// The server's message and code (the driver's own text for a database error is only
/// "db error").
fn describe(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl From<::postgres::Error> for PgError {
    fn from(e: ::postgres::Error) -> Self {
        use ::postgres::error::SqlState;
        if let Some(code) = e.code() {
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
            {
                return PgError::Retry(code.code().to_owned());
            }
            let c = code.code();
            if c.starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
            {
                return PgError::Unavailable(
                    "the database is shutting down, starting or full".into(),
                );
            }
            if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
                return PgError::Unavailable("the database did not answer in time".into());
            }
            return PgError::Db(e);
        }
        if e.is_closed() {
            return PgError::Unavailable("the connection to the database was lost".into());
        }
        // Errors without a server code: I/O (refused, reset, timed out) or a client-side
        // conversion. Only the former means the database is unreachable.
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return PgError::Unavailable(format!("cannot reach the database ({})", io.kind()));
            }
            source = s.source();
        }
        if e.to_string().contains("timed out") {
            return PgError::Unavailable("cannot reach the database (timed out)".into());
        }
        PgError::Db(e)
    }
}

impl From<crate::sqlite::EngineError> for PgError {
    fn from(e: crate::sqlite::EngineError) -> Self {
        PgError::Corrupt(e.to_string())
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Unavailable(m) => StoreError::Unavailable(m),
            PgError::Closed => StoreError::Closed,
            other => StoreError::Engine(other.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]`
    pub url: String,
    /// At most this many connections per store (per node).
    pub pool_size: usize,
    pub connect_timeout: Duration,
    /// Longest a statement may run (or wait for a lock) before the database cancels it.
    pub statement_timeout: Duration,
    /// Longest a caller waits for a free connection.
    pub checkout_timeout: Duration,
    /// Layout of a new schema (ignored when the schema exists).
    pub layout: Layout,
    /// How long page cursors stay valid; superseded index rows are kept this long.
    pub cursor_ttl: Duration,
    pub code_date_pairs: Vec<CodeDatePair>,
    pub include_limit: usize,
    pub include_iterations: usize,
    /// How often a node tries to prune index rows no cursor can need (one node at a time).
    pub prune_every: Duration,
}

impl PostgresConfig {
    pub fn new(url: &str) -> PostgresConfig {
        let search = StoreConfig::default();
        PostgresConfig {
            url: url.to_owned(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            checkout_timeout: Duration::from_secs(10),
            layout: Layout::default(),
            cursor_ttl: search.cursor_ttl,
            code_date_pairs: search.code_date_pairs,
            include_limit: search.include_limit,
            include_iterations: search.include_iterations,
            prune_every: Duration::from_secs(10),
        }
    }
}

/// Names the store reads back often: never stale, because an id is a hash of its name.
#[derive(Default)]
struct NameCache {
    type_names: RwLock<HashMap<i64, String>>,
    patients: RwLock<HashMap<i64, String>>,
}

pub struct PostgresStore {
    config: PostgresConfig,
    pool: Arc<Pool>,
    names: NameCache,
    known: names::Known,
    cursor_key: Vec<u8>,
    stats: Mutex<StoreStats>,
    closed: AtomicBool,
    pruner: Mutex<Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>>,
    /// Per type id: (token param id, date param id) pairs kept in `idx_code_date`.
    pairs: HashMap<i64, Vec<(i64, i64)>>,
}

/// Versions as read: the columns of [`VERSION_COLUMNS`].
const VERSION_COLUMNS: &str = "v.pid, v.seq, v.id, v.version, v.last_updated, v.deleted, v.body, v.app, v.created_by, v.tid, v.manifest";

#[derive(Debug, Clone)]
struct VersionRow {
    pid: i64,
    seq: i64,
    id: String,
    version: i64,
    last_updated: i64,
    deleted: bool,
    body: Vec<u8>,
    app: Option<String>,
    created_by: Option<String>,
    tid: i64,
    manifest: Vec<u8>,
}

impl VersionRow {
    fn from_row(r: &PgRow) -> Result<VersionRow, PgError> {
        VersionRow::from_row_at(r, 0)
    }

    /// The version in the columns of a row from `at` on.
    fn from_row_at(r: &PgRow, at: usize) -> Result<VersionRow, PgError> {
        Ok(VersionRow {
            pid: r.try_get(at)?,
            seq: r.try_get(at + 1)?,
            id: r.try_get(at + 2)?,
            version: r.try_get(at + 3)?,
            last_updated: r.try_get(at + 4)?,
            deleted: r.try_get(at + 5)?,
            body: r.try_get(at + 6)?,
            app: r.try_get(at + 7)?,
            created_by: r.try_get(at + 8)?,
            tid: r.try_get(at + 9)?,
            manifest: r.try_get(at + 10)?,
        })
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

impl Conn {
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<PgRow>, PgError> {
        let statement = self.prepare(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<PgRow>, PgError> {
        let statement = self.prepare(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, PgError> {
        let statement = self.prepare(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }
}

impl PostgresStore {
    /// Connects, applies the schema migrations (creating the schema with the default
    /// layout on an empty database) and starts the background pruner.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(PostgresConfig::new(url))
    }

    pub fn open_with(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let pool = Arc::new(Pool::new(&config)?);
        let cursor_key = {
            let mut pooled = pool.get()?;
            let conn = pooled.conn()?;
            schema::migrate(&mut conn.client, config.layout)?;
            let row = conn.query_opt("SELECT value FROM meta WHERE key = 'cursor_key'", &[])?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0))
                .transpose()
                .map_err(PgError::from)?
                .ok_or_else(|| PgError::Schema("the page cursor key is missing".into()))?
        };
        let mut pairs: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for pair in &config.code_date_pairs {
            pairs
                .entry(name_id(&pair.resource_type))
                .or_default()
                .push((name_id(&pair.token_param), name_id(&pair.date_param)));
        }
        let store = PostgresStore {
            config,
            pool,
            names: NameCache::default(),
            known: names::Known::default(),
            cursor_key,
            stats: Mutex::new(StoreStats::default()),
            closed: AtomicBool::new(false),
            pruner: Mutex::new(None),
            pairs,
        };
        store.start_pruner();
        Ok(store)
    }

    /// Applies the migrations without opening a store (`phr migrate`). `layout` decides how
    /// a new schema is placed; an existing schema keeps its layout.
    pub fn migrate(url: &str, layout: Layout) -> Result<schema::Migrated, StoreError> {
        let mut config = PostgresConfig::new(url);
        config.pool_size = 1;
        let pool = Pool::new(&config)?;
        let mut pooled = pool.get()?;
        Ok(schema::migrate(&mut pooled.conn()?.client, layout)?)
    }

    /// How many resources, versions and deleted resources are stored (asks every partition).
    pub fn counts(&self) -> Result<crate::StoreCounts, StoreError> {
        self.with_conn(|conn| {
            let row = conn
                .query_opt(
                    "SELECT (SELECT count(*) FROM resources), (SELECT count(*) FROM versions),
                            (SELECT count(*) FROM resources WHERE deleted)",
                    &[],
                )?
                .ok_or_else(|| PgError::Corrupt("no counts".into()))?;
            let n = |i: usize| -> Result<u64, PgError> {
                Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok(crate::StoreCounts {
                resources: n(0)?,
                versions: n(1)?,
                deleted: n(2)?,
            })
        })
    }

    /// Refuses further requests and stops the pruner. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut pruner) = self.pruner.lock()
            && let Some((stop, handle)) = pruner.take()
        {
            drop(stop);
            let _ = handle.join();
        }
        self.pool.close();
    }

    /// Drops index rows of versions superseded longer than `older_than` ago (the pruner
    /// also does this on its own with the cursor lifetime); returns how many versions were
    /// pruned. Cursors pinned to an older snapshot are refused afterwards.
    pub fn prune(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.ensure_open()?;
        Ok(writer::prune(self, older_than)?)
    }

    fn ensure_open(&self) -> Result<(), PgError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(PgError::Closed)
        } else {
            Ok(())
        }
    }

    fn start_pruner(&self) {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let config = self.config.clone();
        let pool = self.pool.clone();
        let every = self.config.prune_every;
        let spawned = std::thread::Builder::new()
            .name("phr-store-pruner".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    // Failures (a database restart...) are retried at the next round.
                    let _ = writer::prune_with(&pool, &config, config.cursor_ttl);
                }
            });
        if let (Ok(handle), Ok(mut slot)) = (spawned, self.pruner.lock()) {
            *slot = Some((stop, handle));
        }
    }

    /// Runs `f` on a pooled connection. Reads are idempotent, so one that failed because
    /// the database went away is tried once more on a fresh connection (the pool drops the
    /// broken one): a restarted database costs no request an error.
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        self.ensure_open()?;
        let mut attempt = 0;
        loop {
            let result = (|| {
                let mut pooled = self.pool.get()?;
                f(pooled.conn()?)
            })();
            match result {
                Err(PgError::Unavailable(_)) if attempt == 0 => attempt += 1,
                other => return Ok(other?),
            }
        }
    }

    /// Runs `f` inside one read-only REPEATABLE READ transaction: every statement sees the
    /// same snapshot (a search's count, page and includes agree). `settings` (`SET LOCAL`
    /// statements) and `first` (plain SQL, no parameters, `;`-separated statements) are sent
    /// with the BEGIN, in the same round trip; `f` gets the rows of each statement of
    /// `first` as text.
    fn with_snapshot<T>(
        &self,
        settings: &[&str],
        first: &str,
        mut f: impl FnMut(&mut Conn, Vec<Vec<Vec<Option<String>>>>) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        self.with_conn(|conn| {
            let mut batch = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;");
            for setting in settings {
                batch.push_str(setting);
                batch.push(';');
            }
            batch.push_str(first);
            let answer = conn.client.simple_query(&batch);
            let messages = match answer {
                Ok(m) => m,
                Err(e) => {
                    let _ = conn.client.batch_execute("ROLLBACK");
                    return Err(e.into());
                }
            };
            // The rows of each statement after BEGIN.
            let mut results: Vec<Vec<Vec<Option<String>>>> = vec![];
            let mut current = vec![];
            for m in &messages {
                match m {
                    ::postgres::SimpleQueryMessage::Row(r) => {
                        current.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    ::postgres::SimpleQueryMessage::CommandComplete(_) => {
                        results.push(std::mem::take(&mut current))
                    }
                    _ => {}
                }
            }
            // Not BEGIN's nor the settings'.
            results.drain(..results.len().min(1 + settings.len()));
            let result = f(conn, results);
            let ended =
                conn.client
                    .batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
            let value = result?;
            ended?;
            Ok(value)
        })
    }

    fn type_name(&self, conn: &mut Conn, tid: i64) -> Result<String, PgError> {
        if let Some(n) = self
            .names
            .type_names
            .read()
            .ok()
            .and_then(|m| m.get(&tid).cloned())
        {
            return Ok(n);
        }
        let row = conn
            .query_opt("SELECT name FROM types WHERE tid = $1", &[&tid])?
            .ok_or_else(|| PgError::Corrupt(format!("unknown type id {tid}")))?;
        let name: String = row.try_get(0)?;
        crate::remember(&self.names.type_names, tid, name.clone());
        Ok(name)
    }

    /// The Patient id of compartment `pid` (None for 0 or an unknown compartment).
    fn patient_name(&self, conn: &mut Conn, pid: i64) -> Result<Option<String>, PgError> {
        if pid == 0 {
            return Ok(None);
        }
        if let Some(n) = self
            .names
            .patients
            .read()
            .ok()
            .and_then(|m| m.get(&pid).cloned())
        {
            return Ok(Some(n));
        }
        let name: Option<String> = conn
            .query_opt("SELECT patient FROM compartments WHERE pid = $1", &[&pid])?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(n) = &name {
            crate::remember(&self.names.patients, pid, n.clone());
        }
        Ok(name)
    }

    /// The compartment key of `patient` when that compartment exists and is really
    /// `patient`'s (two ids with the same 63-bit hash are refused at write time; a reader
    /// never mixes them up either).
    fn compartment_of(&self, conn: &mut Conn, patient: &str) -> Result<Option<i64>, PgError> {
        let pid = compartment_key(Some(patient));
        Ok(match self.patient_name(conn, pid)? {
            Some(name) if name == patient => Some(pid),
            _ => None,
        })
    }

    fn stored(&self, conn: &mut Conn, row: &VersionRow) -> Result<StoredResource, PgError> {
        Ok(StoredResource {
            resource_type: self.type_name(conn, row.tid)?,
            id: row.id.clone(),
            version: row.version as u64,
            last_updated: row.last_updated,
            deleted: row.deleted,
            body: row.body.clone(),
            patient: self.patient_name(conn, row.pid)?,
            app: row.app.clone(),
            created_by: row.created_by.clone(),
        })
    }

    fn first_stored(
        &self,
        conn: &mut Conn,
        rows: Vec<PgRow>,
    ) -> Result<Option<StoredResource>, PgError> {
        match rows.first() {
            Some(row) => {
                let row = VersionRow::from_row(row)?;
                Ok(Some(self.stored(conn, &row)?))
            }
            None => Ok(None),
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl Storage for PostgresStore {
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<StoredResource>, StoreError> {
        let tid = name_id(resource_type);
        self.with_conn(|conn| {
            // Types outside every compartment live under key 0; the others may be anywhere.
            let rows = if in_patient_compartments(resource_type) {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.pid = r.pid AND v.seq = r.seq
                     WHERE r.tid = $1 AND r.id = $2 ORDER BY r.seq DESC LIMIT 1"
                );
                conn.query(&sql, &[&tid, &id])?
            } else {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.pid = r.pid AND v.seq = r.seq
                     WHERE r.pid = 0 AND r.tid = $1 AND r.id = $2"
                );
                conn.query(&sql, &[&tid, &id])?
            };
            self.first_stored(conn, rows)
        })
    }

    fn read_in(
        &self,
        patient: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let tid = name_id(resource_type);
        self.with_conn(|conn| {
            let Some(pid) = self.compartment_of(conn, patient)? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.pid = r.pid AND v.seq = r.seq
                 WHERE r.pid = $1 AND r.tid = $2 AND r.id = $3"
            );
            let rows = conn.query(&sql, &[&pid, &tid, &id])?;
            self.first_stored(conn, rows)
        })
    }

    fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let tid = name_id(resource_type);
        let version = version as i64;
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v
                 WHERE v.tid = $1 AND v.id = $2 AND v.version = $3 ORDER BY v.seq DESC LIMIT 1"
            );
            let rows = conn.query(&sql, &[&tid, &id, &version])?;
            self.first_stored(conn, rows)
        })
    }

    fn vread_in(
        &self,
        patient: &str,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let tid = name_id(resource_type);
        let version = version as i64;
        self.with_conn(|conn| {
            let Some(pid) = self.compartment_of(conn, patient)? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v
                 WHERE v.pid = $1 AND v.tid = $2 AND v.id = $3 AND v.version = $4"
            );
            let rows = conn.query(&sql, &[&pid, &tid, &id, &version])?;
            self.first_stored(conn, rows)
        })
    }

    fn find_by_identifier(
        &self,
        resource_type: &str,
        compartment: Option<&str>,
        condition: &IdentifierCondition,
    ) -> Result<Vec<String>, StoreError> {
        let lookup = IdentifierLookup {
            resource_type: resource_type.to_owned(),
            compartment: compartment.map(str::to_owned),
            condition: condition.clone(),
        };
        Ok(self
            .find_by_identifiers(std::slice::from_ref(&lookup))?
            .pop()
            .unwrap_or_default())
    }

    /// One statement per compartment asked about, not one per lookup.
    fn find_by_identifiers(
        &self,
        lookups: &[IdentifierLookup],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let param = name_id("identifier");
        self.with_conn(|conn| {
            // Each lookup's scope: Some(compartment key), or None for every compartment;
            // a compartment that does not exist has no answers.
            let mut scopes: Vec<Option<Option<i64>>> = Vec::with_capacity(lookups.len());
            let mut asked: HashMap<Option<i64>, (Vec<i64>, Vec<String>)> = HashMap::new();
            for lookup in lookups {
                let scope = match lookup.compartment.as_deref() {
                    None if in_patient_compartments(&lookup.resource_type) => Some(None),
                    None => Some(Some(0)),
                    Some(p) => self.compartment_of(conn, p)?.map(Some),
                };
                if let Some(scope) = scope {
                    let entry = asked.entry(scope).or_default();
                    entry.0.push(name_id(&lookup.resource_type));
                    entry.1.push(lookup.condition.value.clone());
                }
                scopes.push(scope);
            }
            let mut rows = Vec::new();
            for (scope, (tids, codes)) in &asked {
                rows.extend(writer::live_identifiers(conn, *scope, tids, codes, param)?);
            }
            Ok(lookups
                .iter()
                .zip(scopes)
                .map(|(lookup, scope)| match scope {
                    Some(scope) => writer::matching_ids(
                        &rows,
                        name_id(&lookup.resource_type),
                        scope,
                        &lookup.condition,
                    ),
                    None => Vec::new(),
                })
                .collect())
        })
    }

    fn write(
        &self,
        ops: Vec<WriteOp>,
        atomicity: Atomicity,
    ) -> Result<Vec<Result<WriteOutcome, Rejection>>, StoreError> {
        self.ensure_open()?;
        if ops.is_empty() {
            return Ok(vec![]);
        }
        Ok(writer::write(self, &ops, atomicity)?)
    }

    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let fingerprint = cursor::fingerprint(&format!(
            "history|{:?}|{:?}|{:?}|{:?}|{}",
            query.resource_type, query.id, query.compartment, query.since, query.count
        ));
        let before = match &query.page {
            None => (i64::MAX, i64::MAX),
            Some(text) => {
                let c = cursor::decode(text, &self.cursor_key).ok_or(StoreError::BadCursor)?;
                use rusqlite::types::Value;
                match (c.fingerprint == fingerprint, c.keys.as_slice()) {
                    (true, [Value::Integer(seq), Value::Integer(pid)]) => (*seq, *pid),
                    _ => return Err(StoreError::BadCursor),
                }
            }
        };
        let since = query.since.unwrap_or(i64::MIN);
        let limit = query.count as i64 + 1;
        self.with_conn(|conn| {
            let mut conds = vec![
                "(v.seq, v.pid) < ($1, $2)".to_owned(),
                "v.last_updated >= $3".to_owned(),
            ];
            let tid = query.resource_type.as_deref().map(name_id);
            let pid = match &query.compartment {
                Some(p) => match self.compartment_of(conn, p)? {
                    Some(pid) => Some(pid),
                    None => return Ok(HistoryPage::default()),
                },
                None => None,
            };
            let mut params: Vec<Param<'_>> = vec![&before.0, &before.1, &since];
            if let Some(tid) = &tid {
                params.push(tid);
                conds.push(format!("v.tid = ${}", params.len()));
            }
            if let Some(id) = &query.id {
                params.push(id);
                conds.push(format!("v.id = ${}", params.len()));
            }
            if let Some(pid) = &pid {
                params.push(pid);
                conds.push(format!("v.pid = ${}", params.len()));
            }
            params.push(&limit);
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v WHERE {} ORDER BY v.seq DESC, v.pid DESC LIMIT ${}",
                conds.join(" AND "),
                params.len()
            );
            let rows = conn.query(&sql, &params)?;
            let rows: Vec<VersionRow> = rows
                .iter()
                .map(VersionRow::from_row)
                .collect::<Result<_, _>>()?;
            let more = rows.len() > query.count;
            let mut page = HistoryPage::default();
            for row in rows.iter().take(query.count) {
                page.versions.push(self.stored(conn, row)?);
            }
            if more && let Some(last) = rows.get(query.count.saturating_sub(1)) {
                page.next = Some(cursor::encode(
                    &cursor::Cursor {
                        fingerprint,
                        snapshot: 0,
                        issued: now_micros(),
                        direction: cursor::Direction::After,
                        keys: vec![last.seq.into(), last.pid.into()],
                        total: None,
                    },
                    &self.cursor_key,
                ));
            }
            Ok(page)
        })
    }

    fn search(&self, query: &SearchQuery, page: Option<&str>) -> Result<SearchPage, StoreError> {
        search::run(self, query, page)
    }

    fn aggregate(
        &self,
        query: &SearchQuery,
        aggregation: &crate::Aggregation,
    ) -> Result<Vec<crate::Bucket>, StoreError> {
        search::aggregate(self, query, aggregation)
    }

    fn erase(&self, patient: &str, what: &Erasure) -> Result<u64, StoreError> {
        self.ensure_open()?;
        Ok(writer::erase(self, patient, what)?)
    }

    fn stats(&self) -> StoreStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn size_bytes(&self) -> Option<u64> {
        self.with_conn(|conn| {
            let row = conn.query_opt("SELECT pg_database_size(current_database())", &[])?;
            Ok(row.map(|r| r.try_get::<_, i64>(0)).transpose()?)
        })
        .ok()
        .flatten()
        .map(|n| u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests;
