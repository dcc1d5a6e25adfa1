//! Versioned FHIR resource storage: the [`Storage`] trait the server talks to, and its
//! engines: SQLite (embedded default, [`sqlite`]) and PostgreSQL (several nodes on one
//! database, distributable by citizen with Citus, [`postgres`]).
//!
//! Every version of every resource is kept until erased. Keys start with the patient
//! compartment, so a citizen's reads never touch another citizen's rows and their cost depends
//! on that citizen's data only. This crate knows no HTTP; it never parses FHIR search URLs
//! (it executes a parsed [`phr_search::SearchQuery`]) and never validates resources (callers
//! hand it prepared, validated versions with their index entries).
//!
//! All methods block, except the `_now` reads that answer only when they need not wait; async
//! callers use `spawn_blocking`. A write returns only after its data is durable (committed).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub use phr_search::{IndexEntry, Micros, SearchQuery};

pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod suite;

/// Most entries in one of an engine's name caches (type, parameter, system and Patient
/// names by id). A full cache is emptied and refills from the database, so memory stays
/// bounded whatever the number of citizens or code systems.
pub(crate) const NAME_CACHE_LIMIT: usize = 65_536;

/// Caches `key` → `value` in a name cache bounded by [`NAME_CACHE_LIMIT`].
pub(crate) fn remember<K: std::hash::Hash + Eq, V>(
    cache: &std::sync::RwLock<std::collections::HashMap<K, V>>,
    key: K,
    value: V,
) {
    if let Ok(mut m) = cache.write() {
        if m.len() >= NAME_CACHE_LIMIT {
            m.clear();
        }
        m.insert(key, value);
    }
}

/// One stored version of a resource, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    pub last_updated: Micros,
    /// True for the tombstone version a delete writes; `body` is then empty.
    pub deleted: bool,
    /// The resource JSON exactly as written (with `meta.versionId` and `meta.lastUpdated`).
    pub body: Vec<u8>,
    /// The Patient id whose compartment holds this resource (the Patient's own id for a
    /// Patient), if any.
    pub patient: Option<String>,
    /// The application that wrote this version (`creatingApplication` application id).
    pub app: Option<String>,
    /// The application that wrote version 1: only it (or the citizen) may delete.
    pub created_by: Option<String>,
}

impl StoredResource {
    /// Whether `patient`'s compartment holds this version.
    pub fn is_in(&self, patient: &str) -> bool {
        self.patient.as_deref() == Some(patient)
    }
}

/// A new version, fully prepared by the caller: id, version number, timestamp and the final
/// JSON body are decided before the write is queued; the writer only checks preconditions
/// and stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub resource_type: String,
    pub id: String,
    /// 1 for a create; current version + 1 for an update.
    pub version: u64,
    pub last_updated: Micros,
    pub body: Vec<u8>,
    pub patient: Option<String>,
    pub app: Option<String>,
    pub index: Vec<IndexEntry>,
}

/// `If-None-Exist: identifier=[system|]value`, matched within the resource type and the new
/// version's patient compartment.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifierCondition {
    pub system: Option<String>,
    pub value: String,
}

/// One question of [`Storage::find_by_identifiers`].
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifierLookup {
    pub resource_type: String,
    pub compartment: Option<String>,
    pub condition: IdentifierCondition,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Stores version 1 of a new resource, unless `if_none_exist` matches existing ones.
    Create {
        new: NewVersion,
        if_none_exist: Option<IdentifierCondition>,
    },
    /// Stores `new.version`, which must be exactly one more than the current version (or 1
    /// when the resource does not exist and `create_if_missing` is set).
    Update {
        new: NewVersion,
        create_if_missing: bool,
    },
    /// Writes a tombstone as `version` (current + 1).
    Delete {
        resource_type: String,
        id: String,
        version: u64,
        last_updated: Micros,
        app: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    Created {
        version: u64,
    },
    /// The conditional create matched these existing resource ids; nothing was written.
    Existing {
        ids: Vec<String>,
    },
    Updated {
        version: u64,
    },
    Deleted {
        version: u64,
    },
}

/// Why one operation was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("version conflict: expected to replace version {expected:?}, current is {current:?}")]
    VersionConflict {
        expected: Option<u64>,
        current: Option<u64>,
    },
    #[error("{resource_type}/{id} already exists")]
    AlreadyExists { resource_type: String, id: String },
    #[error("{resource_type}/{id} not found")]
    NotFound { resource_type: String, id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// A transaction: if any operation is rejected, none is applied.
    AllOrNothing,
    /// A batch: each operation stands alone.
    Independent,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Engine(String),
    #[error("the page cursor is invalid or was tampered with")]
    BadCursor,
    #[error("storage is shutting down")]
    Closed,
    /// The database cannot be reached or did not answer in time; nothing is known to have
    /// been applied. Retry later (HTTP 503). The engine reconnects by itself.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The query asks for something this engine cannot evaluate (e.g. `:in` without a
    /// terminology service); FHIR says to reject such searches (400), never to ignore them.
    #[error("unsupported search: {0}")]
    Unsupported(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What `history` lists: one instance, one type, or (with `type` None) everything in a
/// compartment or the whole system. Newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    pub resource_type: Option<String>,
    pub id: Option<String>,
    pub compartment: Option<String>,
    pub since: Option<Micros>,
    pub count: usize,
    /// An opaque cursor from a previous page.
    pub page: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    pub versions: Vec<StoredResource>,
    pub next: Option<String>,
}

/// A page of search results. Cursors are opaque, tamper-proof strings pinned to the
/// snapshot of the first page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPage {
    pub matches: Vec<StoredResource>,
    /// Resources added by `_include` / `_revinclude`.
    pub included: Vec<StoredResource>,
    pub total: Option<u64>,
    pub next: Option<String>,
    pub previous: Option<String>,
    /// The cursor of this very page, for the `self` link.
    pub this: Option<String>,
}

/// What an erasure removes, always within one patient's compartment: every version and every
/// index row of the matched resources is physically deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum Erasure {
    One { resource_type: String, id: String },
    FromApp { app: String },
    Everything,
}

/// Which numeric value of the matched resources an aggregate summarizes.
#[derive(Debug, Clone, PartialEq)]
pub enum AggregateValue {
    /// The resource's own value (`Observation.valueQuantity`) for the code that matched:
    /// the `code-value-quantity` composite.
    Value,
    /// The value of the component with this code (`Observation.component` with
    /// `component.code` = system|code, its `valueQuantity`): blood pressure's systolic and
    /// diastolic values.
    Component { system: String, code: String },
}

/// An aggregate over the resources a search would match: per interval of `interval`
/// microseconds from `from` (the last one may be cut at `to`), counted by the start of the
/// resource's date (the code x date pair's date parameter), in `[from, to)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub from: Micros,
    pub to: Micros,
    /// The width of one interval, microseconds (> 0). `to - from` gives one interval.
    pub interval: Micros,
    pub value: AggregateValue,
    /// When given, `(low, high)`: the values below `low`, within `low..=high` and above
    /// `high` are counted too (time in range for glucose: 3.9, 10.0 mmol/l).
    pub bands: Option<(f64, f64)>,
}

/// One interval's aggregate for one unit (values in different units are never mixed).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The interval's index: it starts at `from + index * interval`.
    pub index: i64,
    /// The unit's system and code (UCUM: `http://unitsofmeasure.org`, `mmol/L`); empty
    /// when the quantities carry none.
    pub unit_system: String,
    pub unit: String,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// With [`Aggregation::bands`]: counts below, within and above the band (else 0).
    pub below: u64,
    pub within: u64,
    pub above: u64,
}

impl Bucket {
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

pub trait Storage: Send + Sync {
    /// The current version, including a delete tombstone, wherever it is stored. An engine
    /// that places data by citizen may have to ask every node: callers that act for one
    /// citizen use [`Storage::read_in`].
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<StoredResource>>;
    /// [`Storage::read`] if the engine can answer at once: with a connection that is free
    /// now, no network and no lock to wait for. `None` when it cannot; the caller then reads
    /// with [`Storage::read`] on a thread that may block. Lets an async worker answer a read
    /// by id itself instead of handing it to another thread and back.
    fn read_now(&self, _resource_type: &str, _id: &str) -> Option<Result<Option<StoredResource>>> {
        None
    }
    fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<StoredResource>>;
    /// [`Storage::read`] confined to `patient`'s compartment: the current version only when
    /// it is in that compartment (`StoredResource::patient == Some(patient)`), else `None`.
    /// Engines that place data by citizen answer it from that citizen's data alone.
    fn read_in(
        &self,
        patient: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>> {
        Ok(self.read(resource_type, id)?.filter(|r| r.is_in(patient)))
    }
    /// [`Storage::read_in`] if the engine can answer at once, as [`Storage::read_now`].
    fn read_in_now(
        &self,
        patient: &str,
        resource_type: &str,
        id: &str,
    ) -> Option<Result<Option<StoredResource>>> {
        let read = self.read_now(resource_type, id)?;
        Some(read.map(|found| found.filter(|r| r.is_in(patient))))
    }
    /// [`Storage::vread`] confined to `patient`'s compartment: the version only when it was
    /// written in that compartment.
    fn vread_in(
        &self,
        patient: &str,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredResource>> {
        Ok(self
            .vread(resource_type, id, version)?
            .filter(|r| r.is_in(patient)))
    }
    /// Ids of live resources of `resource_type` in `compartment` with this identifier.
    fn find_by_identifier(
        &self,
        resource_type: &str,
        compartment: Option<&str>,
        condition: &IdentifierCondition,
    ) -> Result<Vec<String>>;
    /// [`Storage::find_by_identifier`] for several lookups (a transaction's conditional
    /// creates), answered in order. An engine that pays a round trip per query answers them
    /// together.
    fn find_by_identifiers(&self, lookups: &[IdentifierLookup]) -> Result<Vec<Vec<String>>> {
        lookups
            .iter()
            .map(|l| {
                self.find_by_identifier(&l.resource_type, l.compartment.as_deref(), &l.condition)
            })
            .collect()
    }
    /// Applies `ops` in order; one result per op. With `AllOrNothing`, either every result is
    /// `Ok` and all is stored, or nothing is stored.
    fn write(
        &self,
        ops: Vec<WriteOp>,
        atomicity: Atomicity,
    ) -> Result<Vec<Result<WriteOutcome, Rejection>>>;
    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage>;
    /// The first page of `query`, or the page `page` (a cursor from an earlier page of the
    /// same query) points at.
    fn search(&self, query: &SearchQuery, page: Option<&str>) -> Result<SearchPage>;
    /// Aggregates the numeric values of the current versions `query` matches, per interval
    /// and unit, from one SQL statement over the index. The query must name a compartment and a
    /// token parameter of a configured code x date pair with system|code values (say
    /// `Observation?patient=p&code=http://loinc.org|15074-8`); its other clauses (security
    /// labels, profiles, a caller's scope filters) hold as in a search. Buckets come ordered
    /// by index, then unit; intervals without values are left out.
    fn aggregate(&self, query: &SearchQuery, aggregation: &Aggregation) -> Result<Vec<Bucket>> {
        let _ = (query, aggregation);
        Err(StoreError::Unsupported(
            "this storage engine computes no aggregates".into(),
        ))
    }
    /// Physically removes data from `patient`'s compartment; returns how many resources.
    fn erase(&self, patient: &str, what: &Erasure) -> Result<u64>;
    /// Counters for `/metrics` (group commit: commits, fsyncs, batch sizes).
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
    /// The size of the database in bytes, when the engine measures it itself (a database
    /// server); `None` when the caller measures the files (SQLite).
    fn size_bytes(&self) -> Option<u64> {
        None
    }
}

/// What an engine holds, for checking a copy between engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    /// Resources (current versions, deleted ones included).
    pub resources: u64,
    /// Versions of every resource, tombstones included.
    pub versions: u64,
    /// Resources whose current version is a deletion.
    pub deleted: u64,
}

/// Writer counters since the store was opened. With SQLite, `commits` equals the number of
/// WAL fsyncs made for writes (each commit is one fsync with `synchronous=FULL`) and
/// requests / commits is the average group-commit batch; with PostgreSQL every request is
/// its own transaction (the server groups concurrent WAL flushes itself).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Write transactions committed (one fsync each).
    pub commits: u64,
    /// `write()` calls answered.
    pub requests: u64,
    /// Operations applied or rejected.
    pub ops: u64,
    /// Requests per commit: `batch_histogram[i]` counts commits holding
    /// `2^i ..= 2^(i+1)-1` requests (last bucket: 128 and more).
    pub batch_histogram: [u64; 8],
    /// The largest number of requests committed together.
    pub max_batch: u64,
    /// Microseconds spent inside COMMIT (the fsync), summed.
    pub commit_micros: u64,
}
