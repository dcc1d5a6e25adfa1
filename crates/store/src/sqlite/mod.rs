//! The SQLite engine: one database file in WAL mode, one writer thread with group commit
//! (see [`writer`]), a pool of read-only connections for reads, history and search.
//!
//! Durability: `synchronous=FULL` in WAL mode fsyncs the WAL at every commit, and a write is
//! answered only after its commit returned, so every acknowledged write survives a process
//! crash and a power loss. Group commit keeps that affordable: one fsync covers every
//! request queued while the previous commit was running.

// `cursor`, `rows` and the pure parts of `search` do not depend on SQLite: the PostgreSQL
// engine uses them too. `cursor` is public so the fuzz targets can feed the decoder signed
// bodies of any shape.
pub mod alloc;
pub mod cursor;
pub(crate) mod row_test;
pub(crate) mod rows;
pub mod schema;
pub(crate) mod search;
pub(crate) mod walk;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::{
    Atomicity, Erasure, HistoryPage, HistoryQuery, IdentifierCondition, Rejection, SearchPage,
    SearchQuery, Storage, StoreError, StoreStats, StoredResource, WriteOp, WriteOutcome,
};
use writer::{Command, Writer};

/// Errors inside the engine; callers see them as [`StoreError::Engine`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("schema: {0}")]
    Schema(String),
    #[error("corrupt stored data: {0}")]
    Corrupt(&'static str),
}

impl EngineError {
    fn to_store(&self) -> StoreError {
        StoreError::Engine(self.to_string())
    }
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        e.to_store()
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Engine(format!("sqlite: {e}"))
    }
}

/// A (resource type, token parameter, date parameter) pair kept in the `idx_code_date`
/// table so "this code in this period, by date" is one range scan. The date parameter
/// must be single-valued on that type (Observation.effective[x] is).
#[derive(Debug, Clone, PartialEq)]
pub struct CodeDatePair {
    pub resource_type: String,
    pub token_param: String,
    pub date_param: String,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How long page cursors stay valid; superseded index rows are kept this long.
    pub cursor_ttl: Duration,
    /// At most this many requests share one commit.
    pub max_batch_requests: usize,
    /// Page cache of the writer connection, MiB.
    pub writer_cache_mib: i64,
    /// Page cache of each reader connection, MiB.
    pub reader_cache_mib: i64,
    /// Most reader connections open at once; a read that finds all of them busy waits for
    /// one. Bounds the readers' page caches and statement caches together.
    pub readers: usize,
    /// Bytes of the database file each connection reads through a memory map (0: none,
    /// every page is read into the connection's page cache). Mapped pages are the kernel's
    /// page cache: they count in the process's resident memory while mapped, but are shared
    /// by all connections and given back under memory pressure.
    pub mmap_bytes: u64,
    pub code_date_pairs: Vec<CodeDatePair>,
    /// At most this many resources added by `_include` / `_revinclude` per page.
    pub include_limit: usize,
    /// `_include:iterate` rounds.
    pub include_iterations: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let pair = |t: &str, c: &str, d: &str| CodeDatePair {
            resource_type: t.into(),
            token_param: c.into(),
            date_param: d.into(),
        };
        StoreConfig {
            cursor_ttl: Duration::from_secs(3600),
            max_batch_requests: 512,
            // Measured with `phr bench` at 16 clients: against 256 / 64 MiB, these cut the
            // resident memory by about 30 % at the end of an ingest and at the peak of the
            // mixed workload, for 3-6 % of throughput; a writer cache of 32 instead of 64 MiB
            // (with `limits.body_budget_mib` 2 instead of 4) cut another 60-70 MiB at the
            // end of an ingest with the same throughput, measured side by side.
            writer_cache_mib: 32,
            reader_cache_mib: 16,
            readers: 8,
            // Reads by id at 16 clients on 200k Observations: a map of the whole file held
            // 700 MiB of it resident; 256 MiB keeps the throughput (no map at all cost 14 %).
            mmap_bytes: 256 << 20,
            code_date_pairs: vec![
                pair("Observation", "code", "date"),
                pair("MedicationAdministration", "code", "effective-time"),
            ],
            include_limit: 1000,
            include_iterations: 3,
        }
    }
}

/// Interned names as readers see them (only committed ids are ever cached; ids are never
/// reused, so a cached entry never goes stale).
#[derive(Default)]
struct NameCache {
    types: RwLock<HashMap<String, i64>>,
    type_names: RwLock<HashMap<i64, String>>,
    params: RwLock<HashMap<String, i64>>,
    systems: RwLock<HashMap<String, i64>>,
    patient_ids: RwLock<HashMap<i64, String>>,
}

pub struct SqliteStore {
    path: PathBuf,
    config: StoreConfig,
    commands: Mutex<Option<Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpoints: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    readers: ReaderPool,
    names: NameCache,
    cursor_key: Vec<u8>,
    stats: Arc<Mutex<StoreStats>>,
}

/// At most `limit` reader connections, open or idle; a caller that finds all of them in use
/// waits for one to come back. A connection that ended in an error is closed, not reused.
struct ReaderPool {
    limit: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections in existence: idle plus leased.
    open: usize,
}

/// One reader connection, lent for one read transaction. Dropping the lease without
/// [`Lease::give_back`] closes the connection and frees its place.
struct Lease<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    fn new(limit: usize) -> ReaderPool {
        ReaderPool {
            limit: limit.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lease(
        &self,
        open: impl FnOnce() -> Result<Connection, StoreError>,
    ) -> Result<Lease<'_>, StoreError> {
        let mut state = self.state.lock().map_err(|_| StoreError::Closed)?;
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.limit {
                state.open += 1;
                break;
            }
            state = self.returned.wait(state).map_err(|_| StoreError::Closed)?;
        }
        drop(state);
        // Opened outside the lock; a failed open frees its place again.
        match open() {
            Ok(conn) => Ok(Lease {
                pool: self,
                conn: Some(conn),
            }),
            Err(e) => {
                self.free_place();
                Err(e)
            }
        }
    }

    /// An idle connection, if there is one. Never waits and never opens a connection (an
    /// open reads the file), so an async worker may call it.
    fn lease_idle(&self) -> Option<Lease<'_>> {
        let conn = self.state.lock().ok()?.idle.pop()?;
        Some(Lease {
            pool: self,
            conn: Some(conn),
        })
    }

    fn free_place(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
            self.returned.notify_one();
        }
    }
}

impl Lease<'_> {
    fn connection(&self) -> &Connection {
        // Set when the lease is made; taken out only by `give_back` and `drop`, which
        // consume the lease.
        #[allow(clippy::expect_used)]
        self.conn.as_ref().expect("a lease holds its connection")
    }

    fn give_back(mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut state) = self.pool.state.lock()
        {
            state.idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn);
            self.pool.free_place();
        }
    }
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with the default configuration.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, StoreConfig::default())
    }

    pub fn open_with(path: &Path, config: StoreConfig) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = FAST;
             PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 100000;
             PRAGMA journal_size_limit = 268435456;
             PRAGMA cache_size = -{};",
            config.writer_cache_mib * 1024
        ))?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Engine(format!(
                "the database would not switch to WAL (mode {mode})"
            )));
        }
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        let cursor_key: Vec<u8> =
            conn.query_row("SELECT value FROM meta WHERE key = 'cursor_key'", [], |r| {
                r.get(0)
            })?;
        let stats = Arc::new(Mutex::new(StoreStats::default()));
        let writer = Writer::new(conn, &config, stats.clone())?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new()
            .name("phr-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Engine(format!("cannot start the writer thread: {e}")))?;
        let (stop_checkpoints, stopped) = crossbeam_channel::bounded::<()>(0);
        let checkpointer = Connection::open(path)?;
        let checkpoints = std::thread::Builder::new()
            .name("phr-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stopped))
            .map_err(|e| StoreError::Engine(format!("cannot start the checkpoint thread: {e}")))?;
        let readers = ReaderPool::new(config.readers);
        Ok(SqliteStore {
            path: path.to_owned(),
            config,
            commands: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            checkpoints: Mutex::new(Some((stop_checkpoints, checkpoints))),
            readers,
            names: NameCache::default(),
            cursor_key,
            stats,
        })
    }

    /// Stops the writer after the queued work is done. Later writes fail with `Closed`.
    pub fn close(&self) {
        if let Ok(mut commands) = self.commands.lock() {
            commands.take();
        }
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
        if let Ok(mut checkpoints) = self.checkpoints.lock()
            && let Some((stop, handle)) = checkpoints.take()
        {
            drop(stop);
            let _ = handle.join();
        }
    }

    /// Drops index rows of versions superseded longer than `older_than` ago (the writer also
    /// does this on its own once a second with the cursor lifetime); returns how many
    /// versions were pruned. Cursors pinned to an older snapshot are refused afterwards.
    pub fn prune(&self, older_than: Duration) -> Result<u64, StoreError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Command::Prune { older_than, reply })?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let commands = self.commands.lock().map_err(|_| StoreError::Closed)?;
        commands
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(command)
            .map_err(|_| StoreError::Closed)
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.execute_batch(&format!(
            "PRAGMA query_only = 1; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
            self.config.reader_cache_mib * 1024,
            self.config.mmap_bytes
        ))?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(conn)
    }

    /// Runs `f` on a pooled read-only connection inside one read transaction (one snapshot).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lease = self.readers.lease(|| self.open_reader())?;
        self.in_read_transaction(lease, f)
    }

    /// Runs `f` on `lease`'s connection inside one read transaction, and gives the connection
    /// back unless the transaction failed to end.
    fn in_read_transaction<T>(
        &self,
        lease: Lease<'_>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lease.connection();
        // Cached statements: preparing BEGIN and COMMIT anew cost about 4 % of a search.
        conn.prepare_cached("BEGIN")?.execute([])?;
        let result = f(conn);
        if conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .is_ok()
        {
            lease.give_back();
        }
        result
    }

    /// The current version of `resource_type/id`, read on `conn`.
    fn current(
        &self,
        conn: &Connection,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let Some(tid) = self.type_id(conn, resource_type)? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.tid = ?1 AND r.id = ?2"
        );
        let row = conn
            .prepare_cached(&sql)?
            .query_row(params![tid, id], VersionRow::from_row)
            .optional()?;
        row.map(|row| self.stored(conn, &row)).transpose()
    }

    fn type_id(&self, conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
        cached_lookup(
            &self.names.types,
            conn,
            "SELECT tid FROM types WHERE name = ?1",
            name,
        )
    }

    fn param_id(&self, conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
        cached_lookup(
            &self.names.params,
            conn,
            "SELECT param FROM params WHERE name = ?1",
            name,
        )
    }

    fn system_id(&self, conn: &Connection, uri: &str) -> Result<Option<i64>, StoreError> {
        cached_lookup(
            &self.names.systems,
            conn,
            "SELECT sys FROM systems WHERE uri = ?1",
            uri,
        )
    }

    /// Patient ids are not cached by name: an erased compartment's name may come back with a
    /// new pid.
    fn patient_pid(&self, conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT pid FROM patients WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn type_name(&self, conn: &Connection, tid: i64) -> Result<String, StoreError> {
        if let Some(n) = self
            .names
            .type_names
            .read()
            .ok()
            .and_then(|m| m.get(&tid).cloned())
        {
            return Ok(n);
        }
        let name: String = conn
            .prepare_cached("SELECT name FROM types WHERE tid = ?1")?
            .query_row([tid], |r| r.get(0))?;
        crate::remember(&self.names.type_names, tid, name.clone());
        Ok(name)
    }

    fn patient_name(&self, conn: &Connection, pid: i64) -> Result<Option<String>, StoreError> {
        if pid == 0 {
            return Ok(None);
        }
        if let Some(n) = self
            .names
            .patient_ids
            .read()
            .ok()
            .and_then(|m| m.get(&pid).cloned())
        {
            return Ok(Some(n));
        }
        let name: Option<String> = conn
            .prepare_cached("SELECT id FROM patients WHERE pid = ?1")?
            .query_row([pid], |r| r.get(0))
            .optional()?;
        if let Some(n) = &name {
            crate::remember(&self.names.patient_ids, pid, n.clone());
        }
        Ok(name)
    }

    /// Builds a [`StoredResource`] from a row of [`VERSION_COLUMNS`].
    fn stored(&self, conn: &Connection, row: &VersionRow) -> Result<StoredResource, StoreError> {
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

    /// Up to `limit` versions committed after `after` (a commit sequence number, 0 for the
    /// start), oldest first, with their sequence numbers: every version ever written and
    /// not erased, tombstones included (`phr migrate-store` copies them in this order).
    pub fn versions_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, StoredResource)>, StoreError> {
        self.with_reader(|conn| {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v JOIN resources r ON r.rid = v.rid
                 WHERE v.seq > ?1 ORDER BY v.seq LIMIT ?2"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(
                    rusqlite::params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                    VersionRow::from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|row| Ok((row.seq, self.stored(conn, row)?)))
                .collect()
        })
    }

    /// How many resources, versions and deleted resources are stored.
    pub fn counts(&self) -> Result<crate::StoreCounts, StoreError> {
        self.with_reader(|conn| {
            let count = |sql: &str| -> Result<u64, StoreError> {
                let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(crate::StoreCounts {
                resources: count("SELECT count(*) FROM resources")?,
                versions: count("SELECT count(*) FROM versions")?,
                deleted: count("SELECT count(*) FROM resources WHERE deleted <> 0")?,
            })
        })
    }

    /// The index rows of version `seq` (empty when it is gone).
    fn manifest(&self, conn: &Connection, seq: i64) -> Result<Vec<rows::Row>, StoreError> {
        let bytes: Option<Vec<u8>> = conn
            .prepare_cached("SELECT manifest FROM versions WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?;
        match bytes {
            Some(b) => Ok(rows::decode_manifest(&b)?),
            None => Ok(vec![]),
        }
    }

    fn fetch_version(&self, conn: &Connection, seq: i64) -> Result<Option<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN resources r ON r.rid = v.rid WHERE v.seq = ?1"
        );
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([seq], VersionRow::from_row)
            .optional()?)
    }
}

/// Copies committed WAL frames into the database file on its own connection, so the writer
/// never stalls on a checkpoint (its own automatic checkpoint is only a backstop for a WAL
/// past 400 MB). PASSIVE never blocks the writer or readers.
fn checkpoint_loop(conn: Connection, stop: crossbeam_channel::Receiver<()>) {
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        stop.recv_timeout(Duration::from_millis(200))
    {
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

fn cached_lookup(
    cache: &RwLock<HashMap<String, i64>>,
    conn: &Connection,
    sql: &str,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    if let Some(id) = cache.read().ok().and_then(|m| m.get(name).copied()) {
        return Ok(Some(id));
    }
    let id: Option<i64> = conn
        .prepare_cached(sql)?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if let Some(id) = id {
        crate::remember(cache, name.to_owned(), id);
    }
    Ok(id)
}

const VERSION_COLUMNS: &str = "v.seq, r.id, v.version, v.last_updated, v.deleted, v.body, v.pid, v.app, r.created_by, v.tid, v.manifest";

struct VersionRow {
    seq: i64,
    id: String,
    version: i64,
    last_updated: i64,
    deleted: bool,
    body: Vec<u8>,
    pid: i64,
    app: Option<String>,
    created_by: Option<String>,
    tid: i64,
    manifest: Vec<u8>,
}

impl VersionRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
        Ok(VersionRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            version: r.get(2)?,
            last_updated: r.get(3)?,
            deleted: r.get::<_, i64>(4)? != 0,
            body: r.get(5)?,
            pid: r.get(6)?,
            app: r.get(7)?,
            created_by: r.get(8)?,
            tid: r.get(9)?,
            manifest: r.get(10)?,
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl Storage for SqliteStore {
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<StoredResource>, StoreError> {
        self.with_reader(|conn| self.current(conn, resource_type, id))
    }

    /// A read by id is a few pages of two indexes, as a rule in the page cache; it runs at
    /// once when a reader connection is idle.
    fn read_now(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Option<Result<Option<StoredResource>, StoreError>> {
        let lease = self.readers.lease_idle()?;
        Some(self.in_read_transaction(lease, |conn| self.current(conn, resource_type, id)))
    }

    fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.with_reader(|conn| {
            let Some(tid) = self.type_id(conn, resource_type)? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM resources r JOIN versions v ON v.rid = r.rid
                 WHERE r.tid = ?1 AND r.id = ?2 AND v.version = ?3"
            );
            let row = conn
                .prepare_cached(&sql)?
                .query_row(params![tid, id, version as i64], VersionRow::from_row)
                .optional()?;
            row.map(|row| self.stored(conn, &row)).transpose()
        })
    }

    fn find_by_identifier(
        &self,
        resource_type: &str,
        compartment: Option<&str>,
        condition: &IdentifierCondition,
    ) -> Result<Vec<String>, StoreError> {
        self.with_reader(|conn| {
            let Some(tid) = self.type_id(conn, resource_type)? else {
                return Ok(vec![]);
            };
            let pid = match compartment {
                None if search::in_patient_compartments(resource_type) => None,
                None => Some(0),
                Some(p) => match self.patient_pid(conn, p)? {
                    Some(pid) => Some(pid),
                    None => return Ok(vec![]),
                },
            };
            let Some(param) = self.param_id(conn, "identifier")? else {
                return Ok(vec![]);
            };
            let sys = match &condition.system {
                None => None,
                Some(s) => match self.system_id(conn, s)? {
                    Some(id) => Some(id),
                    None => return Ok(vec![]),
                },
            };
            Ok(writer::live_ids_with_identifier(
                conn,
                tid,
                pid,
                param,
                sys,
                &condition.value,
            )?)
        })
    }

    fn write(
        &self,
        ops: Vec<WriteOp>,
        atomicity: Atomicity,
    ) -> Result<Vec<Result<WriteOutcome, Rejection>>, StoreError> {
        if ops.is_empty() {
            return Ok(vec![]);
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Command::Write {
            ops,
            atomicity,
            reply,
        })?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let fingerprint = cursor::fingerprint(&format!(
            "history|{:?}|{:?}|{:?}|{:?}|{}",
            query.resource_type, query.id, query.compartment, query.since, query.count
        ));
        let before = match &query.page {
            None => i64::MAX,
            Some(text) => {
                let c = cursor::decode(text, &self.cursor_key).ok_or(StoreError::BadCursor)?;
                match (c.fingerprint == fingerprint, c.keys.as_slice()) {
                    (true, [rusqlite::types::Value::Integer(seq)]) => *seq,
                    _ => return Err(StoreError::BadCursor),
                }
            }
        };
        self.with_reader(|conn| {
            let mut conds = vec!["v.seq < ?1".to_owned(), "v.last_updated >= ?2".to_owned()];
            let mut values: Vec<rusqlite::types::Value> =
                vec![before.into(), query.since.unwrap_or(i64::MIN).into()];
            if let Some(t) = &query.resource_type {
                let Some(tid) = self.type_id(conn, t)? else {
                    return Ok(HistoryPage::default());
                };
                values.push(tid.into());
                conds.push(format!("v.tid = ?{}", values.len()));
            }
            if let Some(id) = &query.id {
                values.push(id.clone().into());
                conds.push(format!("r.id = ?{}", values.len()));
            }
            if let Some(p) = &query.compartment {
                let Some(pid) = self.patient_pid(conn, p)? else {
                    return Ok(HistoryPage::default());
                };
                values.push(pid.into());
                conds.push(format!("v.pid = ?{}", values.len()));
            }
            // A literal limit: a bound one makes SQLite re-prepare on every use.
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM versions v JOIN resources r ON r.rid = v.rid
                 WHERE {} ORDER BY v.seq DESC LIMIT {}",
                conds.join(" AND "),
                query.count + 1
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows: Vec<VersionRow> = stmt
                .query_map(rusqlite::params_from_iter(values), VersionRow::from_row)?
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
                        keys: vec![last.seq.into()],
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
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Command::Erase {
            patient: patient.to_owned(),
            what: what.clone(),
            reply,
        })?;
        let erased = answer.recv().map_err(|_| StoreError::Closed)??;
        if let Ok(mut m) = self.names.patient_ids.write() {
            m.retain(|_, id| id != patient);
        }
        Ok(erased)
    }

    fn stats(&self) -> StoreStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reader_pool_tests {
    use super::*;

    fn memory() -> Result<Connection, StoreError> {
        Ok(Connection::open_in_memory()?)
    }

    #[test]
    fn a_full_pool_makes_the_next_reader_wait_for_a_returned_connection() {
        let pool = Arc::new(ReaderPool::new(2));
        let first = pool.lease(memory).unwrap();
        let second = pool.lease(memory).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let third = pool
                    .lease(|| panic!("a third connection was opened"))
                    .unwrap();
                tx.send(()).unwrap();
                third.give_back();
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "the third reader must wait while two are leased"
        );
        first.give_back();
        rx.recv().unwrap();
        waiting.join().unwrap();
        drop(second);
        let state = pool.state.lock().unwrap();
        assert_eq!(state.open, 1, "the dropped lease closed its connection");
        assert_eq!(state.idle.len(), 1);
    }

    #[test]
    fn an_idle_lease_takes_only_an_idle_connection_and_never_opens_one() {
        let pool = ReaderPool::new(2);
        assert!(
            pool.lease_idle().is_none(),
            "an empty pool has nothing idle"
        );
        let first = pool.lease(memory).unwrap();
        assert!(
            pool.lease_idle().is_none(),
            "a free place is no idle connection"
        );
        first.give_back();
        let idle = pool.lease_idle().expect("the returned connection");
        assert!(pool.lease_idle().is_none(), "it is lent once");
        idle.give_back();
        let state = pool.state.lock().unwrap();
        assert_eq!((state.open, state.idle.len()), (1, 1));
    }

    #[test]
    fn a_failed_open_frees_its_place() {
        let pool = ReaderPool::new(1);
        assert!(pool.lease(|| Err(StoreError::Closed)).is_err());
        let lease = pool.lease(memory).unwrap();
        lease.give_back();
        assert_eq!(pool.state.lock().unwrap().open, 1);
    }
}
