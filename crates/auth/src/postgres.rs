//! The PostgreSQL engine of the authorization state: what several `phr` nodes on one
//! database share (applications, citizens, grants, sessions, token state, signing keys, the
//! audit chain, the status signal, job claims and node settings).
//!
//! Owns the connection pool the PostgreSQL stores share (the FHIR store's pool type, so both
//! bound their waits the same way and report an unreachable database as
//! [`AuthError::Unavailable`]) and the versioned schema. The schema is kept per module: each
//! module's `postgres.rs` declares its own ordered migrations (`SCHEMA`), and
//! `auth_schema` records how many of each module's have been applied, so a new table is one
//! new file plus one line in [`MODULES`]. A database that holds a module this program does
//! not know, or a newer version of one, is refused.
//!
//! These are not patient tables: they are small, keyed by random ids or digests, and read
//! through the enforcer's caches. Under Citus they stay ordinary tables on the coordinator
//! (Citus "local tables"): nothing joins them with the distributed citizen tables, and a
//! reference table would copy every write (sessions, refresh tokens, audit records) to every
//! worker for nothing. No triggers but the audit table's append-only guards, no foreign keys.
//!
//! Every statement on a table lives in the `postgres.rs` of the module that owns the table;
//! this file holds only the pool, the schema runner and the SQLite-to-PostgreSQL copy. Never
//! add a query on a module's table here.

use std::path::Path;
use std::sync::Arc;

use ::postgres::Row;
use ::postgres::types::{ToSql, Type};
use phr_store::postgres::pool::{Conn, Pool};
use phr_store::postgres::{PgError, PostgresConfig};

use crate::error::{AuthError, Result};

/// A statement parameter.
pub(crate) type Param<'a> = &'a (dyn ToSql + Sync);

/// Each module's migrations, in the order the modules are set up.
const MODULES: &[(&str, &[&str])] = &[
    ("cluster", crate::cluster::postgres::SCHEMA),
    ("apps", crate::apps::postgres::SCHEMA),
    ("orgs", crate::orgs::postgres::SCHEMA),
    ("citizens", crate::citizens::postgres::SCHEMA),
    ("grants", crate::grants::postgres::SCHEMA),
    ("sessions", crate::sessions::postgres::SCHEMA),
    ("tokens", crate::tokens::postgres::SCHEMA),
    ("keys", crate::keys::postgres::SCHEMA),
    ("audit", crate::audit::postgres::SCHEMA),
    ("status", crate::enforce::postgres::SCHEMA),
    ("traffic", crate::traffic::postgres::SCHEMA),
];

/// Serializes schema changes of nodes starting together (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x7068_725f_6175_7468; // "phr_auth"

/// Connections per node for the authorization state (the audit writer and the status
/// listener each hold one of their own at most).
const POOL_SIZE: usize = 8;

impl From<PgError> for AuthError {
    fn from(error: PgError) -> Self {
        match error {
            PgError::Unavailable(m) => AuthError::Unavailable(m),
            PgError::Closed => AuthError::Unavailable("the connection pool is closed".into()),
            other => AuthError::Storage(other.to_string()),
        }
    }
}

/// A driver error, classified (unreachable or not) as the FHIR store does.
pub(crate) fn db(error: ::postgres::Error) -> PgError {
    PgError::from(error)
}

/// The pool the PostgreSQL stores of one process share.
pub(crate) struct Postgres {
    pool: Pool,
}

impl Postgres {
    /// Connects and brings the schema up to date (refusing a newer one).
    pub fn open(url: &str) -> Result<Arc<Postgres>> {
        let pg = Postgres::connect(url, POOL_SIZE)?;
        pg.write(|conn| migrate(conn).map(|_| ()))?;
        Ok(Arc::new(pg))
    }

    fn connect(url: &str, pool_size: usize) -> Result<Postgres> {
        let mut config = PostgresConfig::new(url);
        config.pool_size = pool_size;
        Ok(Postgres {
            pool: Pool::new(&config)?,
        })
    }

    /// Runs a read on a pooled connection. Reads are idempotent, so one that met a broken
    /// connection (the database restarted) is tried once more on a fresh one.
    pub fn read<T>(&self, mut f: impl FnMut(&mut Conn) -> Result<T, PgError>) -> Result<T> {
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

    /// Runs statements that change something, once (never retried: the first attempt may
    /// have been applied).
    pub fn write<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, PgError>) -> Result<T> {
        let mut pooled = self.pool.get()?;
        Ok(f(pooled.conn()?)?)
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    /// Never retried.
    pub fn transaction<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, PgError>) -> Result<T> {
        self.write(|conn| in_transaction(conn, f))
    }

    /// A connection of its own, outside the pool, for a `LISTEN` that lasts.
    pub fn dedicated(&self) -> Result<::postgres::Client> {
        Ok(self.pool.connect_dedicated()?)
    }
}

/// Runs `f` between BEGIN and COMMIT (ROLLBACK when it fails).
pub(crate) fn in_transaction<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<T, PgError>,
) -> Result<T, PgError> {
    conn.client.batch_execute("BEGIN").map_err(db)?;
    match f(conn) {
        Ok(value) => {
            conn.client.batch_execute("COMMIT").map_err(db)?;
            Ok(value)
        }
        Err(e) => {
            // A failed ROLLBACK means the connection broke; the pool drops it.
            let _ = conn.client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// Statements on a pooled connection, prepared once per connection.
pub(crate) trait Sql {
    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, PgError>;
    fn row(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, PgError>;
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, PgError>;
}

impl Sql for Conn {
    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, PgError> {
        let statement = self.prepare(sql)?;
        self.client.query(&statement, params).map_err(db)
    }

    fn row(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, PgError> {
        let statement = self.prepare(sql)?;
        self.client.query_opt(&statement, params).map_err(db)
    }

    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, PgError> {
        let statement = self.prepare(sql)?;
        self.client.execute(&statement, params).map_err(db)
    }
}

/// A column of a row, as the driver converts it.
pub(crate) fn get<'a, T: ::postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, PgError> {
    row.try_get(index).map_err(db)
}

/// A count as `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// What [`migrate`] did to one module's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedModule {
    pub module: String,
    pub from: i64,
    pub to: i64,
}

/// Brings the authorization schema at `url` up to date (`phr migrate`; nodes do it when they
/// open the stores). Refuses a schema newer than this program.
pub fn migrate_database(url: &str) -> Result<Vec<MigratedModule>> {
    let pg = Postgres::connect(url, 1)?;
    pg.write(migrate)
}

fn migrate(conn: &mut Conn) -> Result<Vec<MigratedModule>, PgError> {
    in_transaction(conn, |conn| {
        conn.client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(db)?;
        conn.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS auth_schema (
                     module     TEXT PRIMARY KEY,
                     version    BIGINT NOT NULL,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .map_err(db)?;
        let applied: Vec<(String, i64)> = conn
            .client
            .query("SELECT module, version FROM auth_schema", &[])
            .map_err(db)?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect::<Result<_, PgError>>()?;
        for (module, version) in &applied {
            let known = MODULES
                .iter()
                .find(|(name, _)| name == module)
                .map(|(_, m)| m.len() as i64);
            match known {
                Some(known) if *version <= known => {}
                _ => {
                    return Err(PgError::Schema(format!(
                        "the authorization tables of module {module} are at version {version}, \
                         newer than this program knows: upgrade the program before opening the database"
                    )));
                }
            }
        }
        let mut done = Vec::new();
        for (module, migrations) in MODULES {
            let from = applied
                .iter()
                .find(|(name, _)| name == module)
                .map_or(0, |(_, v)| *v);
            let to = migrations.len() as i64;
            let skip = usize::try_from(from).unwrap_or(0);
            for (index, sql) in migrations.iter().enumerate().skip(skip) {
                conn.client.batch_execute(sql).map_err(db)?;
                if *module == "audit" && index == crate::audit::postgres::LOG_MIGRATION {
                    crate::audit::postgres::move_wide_table(conn)?;
                }
            }
            if from < to {
                conn.client
                    .execute(
                        "INSERT INTO auth_schema (module, version) VALUES ($1, $2)
                         ON CONFLICT (module) DO UPDATE SET version = excluded.version, applied_at = now()",
                        &[module, &to],
                    )
                    .map_err(db)?;
            }
            done.push(MigratedModule {
                module: (*module).to_owned(),
                from,
                to,
            });
        }
        Ok(done)
    })
}

/// A node setting (`cluster::PUBLIC_URL`, ...) of the database at `url`, for commands that
/// need nothing else of the authorization state (`phr export`).
pub fn read_setting(url: &str, key: &str) -> Result<Option<String>> {
    let pg = Postgres::open(url)?;
    crate::cluster::ClusterStore::setting(&crate::cluster::PostgresClusterStore::new(pg), key)
}

/// Tables copied from an SQLite `auth.db` by [`copy_from_sqlite`], in this order (the audit
/// tables last: the chain head is set from them).
const COPIED_TABLES: &[&str] = &[
    "organisations",
    "apps",
    "app_contents",
    "app_rounds",
    "citizens",
    "grants",
    "sessions",
    "auth_codes",
    "token_families",
    "refresh_tokens",
    "revoked_access_tokens",
    "client_assertions",
    "signing_keys",
    "audit_names",
    "audit_log",
];

/// One table copied by [`copy_from_sqlite`]: rows in the source, rows now in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: String,
    pub source: u64,
    pub copied: u64,
}

/// Copies the authorization state of an SQLite `auth.db` into the (migrated, empty) tables at
/// `url` in one transaction: every row as it is (digests, the audit records with their
/// sequence numbers, encodings and chain values), then the audit chain head. Columns are
/// matched by name; each value is converted to its PostgreSQL column's type. Refuses a
/// database that already holds any of these rows.
pub fn copy_from_sqlite(sqlite_path: &Path, url: &str) -> Result<Vec<CopiedTable>> {
    let source = rusqlite::Connection::open_with_flags(
        sqlite_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let pg = Postgres::open(url)?;
    pg.transaction(|conn| {
        let mut copied = Vec::new();
        for table in COPIED_TABLES {
            let present: i64 = get(
                &conn
                    .client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .map_err(db)?,
                0,
            )?;
            if present > 0 {
                return Err(PgError::Schema(format!(
                    "the database already holds authorization data ({present} rows in {table}): copy into a new database"
                )));
            }
            let rows = copy_table(&source, conn, table)?;
            let now: i64 = get(
                &conn
                    .client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .map_err(db)?,
                0,
            )?;
            copied.push(CopiedTable {
                table: (*table).to_owned(),
                source: rows,
                copied: count(now),
            });
        }
        crate::audit::postgres::reset_head(conn)?;
        Ok(copied)
    })
}

/// Copies one table by binary COPY; returns the rows read from SQLite.
fn copy_table(source: &rusqlite::Connection, conn: &mut Conn, table: &str) -> Result<u64, PgError> {
    let sqlite_columns: Vec<String> = {
        let mut stmt = source
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .map_err(sqlite)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sqlite)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sqlite)?
    };
    let columns: Vec<(String, Type)> = conn
        .client
        .query(
            "SELECT a.attname, a.atttypid FROM pg_attribute a
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table],
        )
        .map_err(db)?
        .iter()
        .map(|r| {
            let name: String = get(r, 0)?;
            let oid: u32 = get(r, 1)?;
            Ok((name, Type::from_oid(oid).unwrap_or(Type::TEXT)))
        })
        .collect::<Result<Vec<_>, PgError>>()?
        .into_iter()
        .filter(|(name, _)| sqlite_columns.contains(name))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
    let order = if table == "audit_log" { "seq" } else { "rowid" };
    let mut stmt = source
        .prepare(&format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            names.join(", ")
        ))
        .map_err(sqlite)?;
    let sink = conn
        .client
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .map_err(db)?;
    let mut writer = ::postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    let mut rows = stmt.query([]).map_err(sqlite)?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(sqlite)? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(types.len());
        for (i, ty) in types.iter().enumerate() {
            let value: rusqlite::types::Value = row.get(i).map_err(sqlite)?;
            values.push(convert(value, ty, table, &columns)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        writer.write(&refs).map_err(db)?;
        n += 1;
    }
    writer.finish().map_err(db)?;
    Ok(n)
}

/// An SQLite value as a value of the PostgreSQL column type `ty`.
fn convert(
    value: rusqlite::types::Value,
    ty: &Type,
    table: &str,
    columns: &[(String, Type)],
) -> Result<Box<dyn ToSql + Sync>, PgError> {
    use rusqlite::types::Value as V;
    let bad = || {
        PgError::Schema(format!(
            "{table}: a value does not fit its PostgreSQL column ({ty}) among {:?}",
            columns.iter().map(|(n, _)| n).collect::<Vec<_>>()
        ))
    };
    Ok(match (value, ty) {
        (V::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (V::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (V::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (V::Null, _) => Box::new(None::<String>),
        (V::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        (V::Integer(i), t) if *t == Type::BOOL => Box::new(i != 0),
        (V::Integer(i), t) if *t == Type::TEXT => Box::new(i.to_string()),
        (V::Text(s), t) if *t == Type::TEXT => Box::new(s),
        (V::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        (V::Text(s), t) if *t == Type::BYTEA => Box::new(s.into_bytes()),
        _ => return Err(bad()),
    })
}

fn sqlite(error: rusqlite::Error) -> PgError {
    PgError::Schema(format!(
        "reading the SQLite authorization database: {error}"
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The stores' pool on a fresh, migrated database.
    pub fn database(hint: &str) -> Arc<Postgres> {
        Postgres::open(&phr_test_postgres::database(hint)).expect("opens and migrates")
    }

    #[test]
    fn migrations_apply_once_and_a_newer_module_version_is_refused() {
        let url = phr_test_postgres::database("auth_migrate");
        let first = migrate_database(&url).unwrap();
        assert!(first.iter().all(|m| m.from == 0 && m.to >= 1), "{first:?}");
        let again = migrate_database(&url).unwrap();
        assert!(again.iter().all(|m| m.from == m.to), "{again:?}");
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .execute(
                "UPDATE auth_schema SET version = version + 1 WHERE module = 'grants'",
                &[],
            )
            .unwrap();
        let error = migrate_database(&url).unwrap_err().to_string();
        assert!(
            error.contains("module grants") && error.contains("newer"),
            "{error}"
        );
        client
            .execute(
                "UPDATE auth_schema SET version = version - 1 WHERE module = 'grants'",
                &[],
            )
            .unwrap();
        client
            .execute(
                "INSERT INTO auth_schema (module, version) VALUES ('from_the_future', 1)",
                &[],
            )
            .unwrap();
        let error = migrate_database(&url).unwrap_err().to_string();
        assert!(error.contains("from_the_future"), "{error}");
    }

    #[test]
    fn no_table_of_the_authorization_state_has_a_foreign_key() {
        let pg = database("auth_catalog");
        let n: i64 = pg
            .read(|conn| {
                get(
                    &conn
                        .client
                        .query_one(
                            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
                            &[],
                        )
                        .map_err(db)?,
                    0,
                )
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}
