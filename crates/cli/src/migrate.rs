//! `phr migrate` (the PostgreSQL schema, before nodes start or as they do) and
//! `phr migrate-store` (an SQLite data folder copied into a new PostgreSQL database).
//!
//! `migrate-store` copies every version of every resource through the PostgreSQL engine's
//! own write path, oldest first, with its id, version number, `lastUpdated`, compartment and
//! writing application, tombstones as deletions; the index is extracted again from each
//! version. The authorization state is copied row by row (digests, the audit records with
//! their chain values). Then it counts both sides, verifies the audit chain in PostgreSQL,
//! and fails when anything differs. Never writes to the SQLite folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use phr_store::postgres::{Layout, PostgresStore};
use phr_store::sqlite::SqliteStore;
use phr_store::{Atomicity, NewVersion, Storage, StoredResource, WriteOp};

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The PostgreSQL database (postgres://user@host/db).
    #[arg(long, env = "PHR_DATABASE")]
    database: String,
    /// Create a new schema for Citus: citizen tables distributed by citizen (co-located),
    /// shared tables as reference tables. Needs `CREATE EXTENSION citus` on the coordinator.
    #[arg(long, conflicts_with = "partitions")]
    citus: bool,
    /// Hash partitions per citizen table of a new schema on plain PostgreSQL (fixed once
    /// created).
    #[arg(long, default_value_t = 16)]
    partitions: u32,
}

pub fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let layout = if args.citus {
        Layout::Citus
    } else {
        Layout::Partitioned {
            partitions: args.partitions.max(1),
        }
    };
    let place = crate::serve::redact(&args.database);
    let store = PostgresStore::migrate(&args.database, layout)
        .with_context(|| format!("migrating the FHIR store in {place}"))?;
    println!(
        "FHIR store: schema version {} (was {}), layout {}",
        store.to, store.from, store.layout
    );
    let modules = phr_auth::postgres::migrate_database(&args.database)
        .map_err(|e| anyhow::anyhow!("migrating the authorization tables in {place}: {e}"))?;
    for m in modules {
        println!(
            "authorization {}: version {} (was {})",
            m.module, m.to, m.from
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// The SQLite data folder (phr.db, auth.db, identity.key).
    #[arg(long)]
    from: PathBuf,
    /// A new PostgreSQL database (postgres://user@host/db); its schema is created as needed.
    #[arg(long)]
    to: String,
    /// Create the schema for Citus (see `phr migrate --citus`).
    #[arg(long, conflicts_with = "partitions")]
    citus: bool,
    /// Hash partitions per citizen table (plain PostgreSQL).
    #[arg(long, default_value_t = 16)]
    partitions: u32,
}

/// Versions read from SQLite per round; written in batches of at most [`WRITE_BATCH`].
const READ_BATCH: usize = 5000;
/// Versions per PostgreSQL transaction.
const WRITE_BATCH: usize = 500;

pub fn migrate_store(args: MigrateStoreArgs) -> anyhow::Result<()> {
    let from = &args.from;
    let phr_db = from.join("phr.db");
    let auth_db = from.join("auth.db");
    if !phr_db.is_file() {
        bail!("{} holds no PHR database (phr.db)", from.display());
    }
    let place = crate::serve::redact(&args.to);
    let layout = if args.citus {
        Layout::Citus
    } else {
        Layout::Partitioned {
            partitions: args.partitions.max(1),
        }
    };
    PostgresStore::migrate(&args.to, layout)
        .with_context(|| format!("creating the schema in {place}"))?;
    let source =
        SqliteStore::open(&phr_db).with_context(|| format!("opening {}", phr_db.display()))?;
    let target = PostgresStore::open(&args.to).with_context(|| format!("opening {place}"))?;
    if target.counts()?.versions > 0 {
        bail!("{place} already holds resources: copy into a new database");
    }

    let started = std::time::Instant::now();
    let copied = copy_versions(&source, &target)?;
    let (before, after) = (source.counts()?, target.counts()?);
    println!(
        "resources: {} in SQLite, {} in PostgreSQL",
        before.resources, after.resources
    );
    println!(
        "versions:  {} in SQLite, {} in PostgreSQL ({copied} copied in {:.1} s)",
        before.versions,
        after.versions,
        started.elapsed().as_secs_f64()
    );
    println!(
        "deleted:   {} in SQLite, {} in PostgreSQL",
        before.deleted, after.deleted
    );
    if before != after {
        bail!("the copy of the FHIR store does not match its source");
    }

    if auth_db.is_file() {
        copy_authorization(from, &auth_db, &args.to, &place)?;
    } else {
        println!(
            "no auth.db in {}: no authorization state copied",
            from.display()
        );
    }
    println!(
        "done: give every node --database and the identity key file {}",
        from.join("identity.key").display()
    );
    Ok(())
}

/// Copies every version, oldest first; returns how many.
fn copy_versions(source: &SqliteStore, target: &PostgresStore) -> anyhow::Result<u64> {
    let mut after = 0;
    let mut copied = 0u64;
    loop {
        let versions = source.versions_after(after, READ_BATCH)?;
        let Some((last, _)) = versions.last() else {
            return Ok(copied);
        };
        after = *last;
        for chunk in versions.chunks(WRITE_BATCH) {
            let ops = chunk
                .iter()
                .map(|(_, v)| write_op(v))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let results = target.write(ops, Atomicity::AllOrNothing)?;
            for (result, (_, version)) in results.iter().zip(chunk) {
                if let Err(rejection) = result {
                    bail!(
                        "{}/{} version {}: {rejection}",
                        version.resource_type,
                        version.id,
                        version.version
                    );
                }
            }
            copied += chunk.len() as u64;
        }
    }
}

/// The operation that stores `version` as it was: version 1 a create, a tombstone a
/// delete, any other an update; the index extracted from its body again.
fn write_op(version: &StoredResource) -> anyhow::Result<WriteOp> {
    if version.deleted {
        return Ok(WriteOp::Delete {
            resource_type: version.resource_type.clone(),
            id: version.id.clone(),
            version: version.version,
            last_updated: version.last_updated,
            app: version.app.clone(),
        });
    }
    let body: serde_json::Value = serde_json::from_slice(&version.body).with_context(|| {
        format!(
            "{}/{} version {} is not JSON",
            version.resource_type, version.id, version.version
        )
    })?;
    let index = phr_search::extract::extract(&body).with_context(|| {
        format!(
            "indexing {}/{} version {}",
            version.resource_type, version.id, version.version
        )
    })?;
    let new = NewVersion {
        resource_type: version.resource_type.clone(),
        id: version.id.clone(),
        version: version.version,
        last_updated: version.last_updated,
        body: version.body.clone(),
        patient: version.patient.clone(),
        app: version.app.clone(),
        index,
    };
    Ok(if version.version == 1 {
        WriteOp::Create {
            new,
            if_none_exist: None,
        }
    } else {
        WriteOp::Update {
            new,
            create_if_missing: false,
        }
    })
}

/// Copies `auth.db`, prints the counts, records the folder's identity key check value and
/// public URL, and verifies the audit chain in PostgreSQL.
fn copy_authorization(from: &Path, auth_db: &Path, url: &str, place: &str) -> anyhow::Result<()> {
    let key_file = from.join("identity.key");
    let tables = phr_auth::postgres::copy_from_sqlite(auth_db, url)
        .map_err(|e| anyhow::anyhow!("copying the authorization state into {place}: {e}"))?;
    let mut differs = false;
    for t in &tables {
        println!(
            "{:<22} {} in SQLite, {} in PostgreSQL",
            format!("{}:", t.table),
            t.source,
            t.copied
        );
        differs |= t.source != t.copied;
    }
    if differs {
        bail!("the copy of the authorization state does not match its source");
    }
    let mut config = phr_server::Config {
        data: from.to_path_buf(),
        database: Some(url.to_owned()),
        public_url: phr_server::config::recorded_public_url(from),
        ..phr_server::Config::default()
    };
    config.auth.identity_key_file = Some(key_file);
    // Opening the service records the key's check value (nodes with another key refuse
    // to start) and lets the chain be verified where it now is.
    let auth = phr_server::open_auth(&mut config, Arc::new(phr_auth::SystemClock), false)
        .map_err(|e| anyhow::anyhow!("opening the copied authorization state: {e}"))?;
    if let Some(public) = &config.public_url {
        auth.set_setting(phr_auth::cluster::PUBLIC_URL, public)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    match auth
        .verify_audit_chain()
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        None => println!("the audit hash chain is intact in PostgreSQL"),
        Some(record) => bail!("the audit hash chain breaks at record {record} after the copy"),
    }
    auth.flush_audit().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
