//! What nodes serving one database agree on besides the authorization tables themselves:
//! claims of scheduled jobs (each occurrence of a job runs on one node only) and node
//! settings (the public URL the nodes serve at, a check value of the identity key).
//!
//! Owns the `job_runs` and `node_settings` tables (PostgreSQL, `postgres.rs`); on SQLite the
//! settings are rows of the `meta` table and every claim succeeds, because one server owns a
//! data folder (`sqlite.rs`). Never runs a job itself: the caller claims, then runs.

pub(crate) mod postgres;
mod sqlite;

use crate::error::Result;

pub(crate) use postgres::PostgresClusterStore;
pub(crate) use sqlite::SqliteClusterStore;

/// The setting holding the public base URL the nodes serve at (the issuer of their tokens).
pub const PUBLIC_URL: &str = "public_url";
/// The setting holding a check value of the identity key (an HMAC of a fixed text): nodes
/// given a different key file refuse to start instead of hashing identity codes differently.
pub const IDENTITY_KEY_CHECK: &str = "identity_key_check";

/// Job claims and node settings.
pub trait ClusterStore: Send + Sync {
    /// Claims occurrence `slot` of `job` (e.g. its due time): `true` for exactly one caller
    /// among all nodes, `false` when another node claimed it first.
    fn claim(&self, job: &str, slot: i64, now: i64) -> Result<bool>;
    /// Forgets claims made before `before` (seconds).
    fn forget_claims_before(&self, before: i64) -> Result<()>;
    fn setting(&self, key: &str) -> Result<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    /// Stores `value` unless the key has one; returns the value stored now.
    fn setting_or_insert(&self, key: &str, value: &str) -> Result<String>;
}
