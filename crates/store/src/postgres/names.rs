//! Interned names without coordination: the id of a resource type, search parameter, code
//! system or citizen compartment is a 63-bit hash of its name, so every node computes it
//! without a round trip, no sequence is needed, and a cached id never goes stale (also after
//! an erasure, or on another node).
//!
//! The name tables (`types`, `params`, `systems`, `param_kinds`) exist for reading names
//! back and for sorting and `:missing`; rows are added, committed, before the transaction
//! that uses them, and never removed (they hold no citizen data). Two names with the same
//! hash would be refused with an error, never mixed up. Compartment rows are the writer's.

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::PgError;
use super::pool::Conn;
use crate::sqlite::rows::Kind;

/// The id of a name: the first 63 bits of its SHA-256, never 0 (0 means "none").
pub fn name_id(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    let id = (u64::from_be_bytes(first) >> 1) as i64;
    if id == 0 { 1 } else { id }
}

/// The compartment key of a citizen (0: outside every compartment).
pub fn compartment_key(patient: Option<&str>) -> i64 {
    patient.map_or(0, name_id)
}

/// Names a write needs in the name tables.
#[derive(Default)]
pub struct Needed {
    pub types: Vec<(i64, String)>,
    pub params: Vec<(i64, String)>,
    pub systems: Vec<(i64, String)>,
    pub kinds: Vec<(i64, i64, Kind)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Entry {
    Type(i64),
    Param(i64),
    System(i64),
    Kind(i64, i64, i64),
}

/// Which names this node has seen committed.
#[derive(Default)]
pub struct Known(Mutex<HashSet<Entry>>);

impl Known {
    /// Makes sure every name in `needed` is in its table, committing new ones now (each in
    /// its own statement: a name is harmless without data, and with Citus the reference
    /// tables are then never written inside a citizen's transaction).
    pub fn ensure(&self, conn: &mut Conn, needed: &Needed) -> Result<(), PgError> {
        let known = |e: &Entry| self.0.lock().map(|k| k.contains(e)).unwrap_or(false);
        let mut added = Vec::new();
        for (id, name) in &needed.types {
            let e = Entry::Type(*id);
            if !known(&e) {
                insert_name(conn, "types", "tid", "name", *id, name)?;
                added.push(e);
            }
        }
        for (id, name) in &needed.params {
            let e = Entry::Param(*id);
            if !known(&e) {
                insert_name(conn, "params", "param", "name", *id, name)?;
                added.push(e);
            }
        }
        for (id, name) in &needed.systems {
            let e = Entry::System(*id);
            if !known(&e) {
                insert_name(conn, "systems", "sys", "uri", *id, name)?;
                added.push(e);
            }
        }
        for (tid, param, kind) in &needed.kinds {
            let k = *kind as i64;
            let e = Entry::Kind(*tid, *param, k);
            if !known(&e) {
                conn.execute(
                    "INSERT INTO param_kinds (tid, param, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[tid, param, &k],
                )?;
                added.push(e);
            }
        }
        if let Ok(mut k) = self.0.lock() {
            k.extend(added);
        }
        Ok(())
    }
}

fn insert_name(
    conn: &mut Conn,
    table: &str,
    key: &str,
    column: &str,
    id: i64,
    name: &str,
) -> Result<(), PgError> {
    conn.execute(
        &format!("INSERT INTO {table} ({key}, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
        &[&id, &name],
    )?;
    let stored: Option<String> = conn
        .query_opt(
            &format!("SELECT {column} FROM {table} WHERE {key} = $1"),
            &[&id],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    if stored.as_deref() != Some(name) {
        return Err(PgError::Schema(format!(
            "two names in {table} share the id {id}; refusing to mix them up"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_positive_and_never_zero() {
        assert_eq!(name_id("Observation"), name_id("Observation"));
        assert_ne!(name_id("Observation"), name_id("Patient"));
        for name in ["", "a", "Observation", "http://loinc.org"] {
            assert!(name_id(name) > 0, "{name}");
        }
        assert_eq!(compartment_key(None), 0);
        assert_eq!(compartment_key(Some("p1")), name_id("p1"));
    }
}
