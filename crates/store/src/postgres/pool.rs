//! A small blocking connection pool with bounded waits, so a dead or overloaded database
//! gives an error instead of a hang.
//!
//! Every connection is opened with a connect timeout, TCP keepalives and a TCP user timeout
//! (a vanished server is noticed), and with session settings that bound server-side waits
//! (`statement_timeout`) and make every commit durable (`synchronous_commit = on`, whatever
//! the server default). Prepared statements always run their generic plan (`plan_cache_mode
//! = force_generic_plan`): the patient tables are hash-partitioned, so PostgreSQL costs a
//! generic plan over every partition and would otherwise plan each execution again (a fifth
//! of the database's CPU on reads by id); the generic plan prunes to the citizen's
//! partition when it runs. No query starts parallel workers
//! (`max_parallel_workers_per_gather = 0`): a request touches one citizen's rows, and
//! starting workers for it (PostgreSQL did, for a read by id across partitions) costs far
//! more than it saves and takes the cores other requests need. Connections that failed are
//! dropped, idle ones are checked before reuse, and new ones are opened on demand: when the
//! database comes back the pool recovers by itself. Each connection keeps its prepared
//! statements. This module must never retry a statement: callers decide what is safe to
//! retry.
//!
//! Public because the authorization state's PostgreSQL stores (`phr-auth`) use the same pool,
//! so both engines bound their waits and report an unreachable database the same way.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ::postgres::types::Type;
use ::postgres::{Client, NoTls, Statement};

use super::{PgError, PostgresConfig};

/// An open connection and its prepared statements.
pub struct Conn {
    pub client: Client,
    statements: HashMap<String, Statement>,
    idle_since: Instant,
}

impl Conn {
    /// The prepared statement for `sql` (prepared once per connection).
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, PgError> {
        self.prepare_typed(sql, &[])
    }

    /// The prepared statement for `sql` with these parameter types (the server infers the
    /// types not given).
    pub fn prepare_typed(&mut self, sql: &str, types: &[Type]) -> Result<Statement, PgError> {
        let key = if types.is_empty() {
            sql.to_owned()
        } else {
            let names: Vec<&str> = types.iter().map(Type::name).collect();
            format!("{}|{sql}", names.join(","))
        };
        if let Some(s) = self.statements.get(&key) {
            return Ok(s.clone());
        }
        if self.statements.len() >= 512 {
            // Search texts vary with the query's shape: keep the cache bounded.
            self.statements.clear();
        }
        let statement = self.client.prepare_typed(sql, types)?;
        self.statements.insert(key, statement.clone());
        Ok(statement)
    }
}

pub struct Pool {
    config: ::postgres::Config,
    connect_timeout: Duration,
    max: usize,
    checkout_timeout: Duration,
    validate_after: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Conn>,
    /// Connections open, idle or in use.
    open: usize,
    closed: bool,
}

impl Pool {
    pub fn new(config: &PostgresConfig) -> Result<Pool, PgError> {
        let mut pg: ::postgres::Config = config
            .url
            .parse()
            .map_err(|e| PgError::Config(format!("the database URL is not valid: {e}")))?;
        let statement_ms = config.statement_timeout.as_millis();
        pg.connect_timeout(config.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(config.statement_timeout + Duration::from_secs(5))
            .application_name("phr")
            .options(&format!(
                "-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={} \
                 -c synchronous_commit=on -c TimeZone=UTC -c plan_cache_mode=force_generic_plan \
                 -c max_parallel_workers_per_gather=0",
                statement_ms * 2
            ));
        Ok(Pool {
            config: pg,
            connect_timeout: config.connect_timeout,
            max: config.pool_size.max(1),
            checkout_timeout: config.checkout_timeout,
            validate_after: Duration::from_secs(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                closed: false,
            }),
            freed: Condvar::new(),
        })
    }

    /// A connection for the caller's exclusive use; back to the pool when dropped.
    pub fn get(&self) -> Result<Pooled<'_>, PgError> {
        let deadline = Instant::now() + self.checkout_timeout;
        let mut state = self.state.lock().map_err(|_| PgError::Closed)?;
        loop {
            if state.closed {
                return Err(PgError::Closed);
            }
            if let Some(conn) = state.idle.pop() {
                drop(state);
                match self.check(conn) {
                    Some(conn) => return Ok(self.pooled(conn)),
                    None => {
                        state = self.state.lock().map_err(|_| PgError::Closed)?;
                        state.open = state.open.saturating_sub(1);
                        continue;
                    }
                }
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(self.pooled(Conn {
                        client,
                        statements: HashMap::new(),
                        idle_since: Instant::now(),
                    })),
                    Err(e) => {
                        self.forget_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PgError::Unavailable(format!(
                    "no database connection became free within {} s",
                    self.checkout_timeout.as_secs()
                )));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .map_err(|_| PgError::Closed)?
                .0;
        }
    }

    /// A connection with the pool's settings that the pool does not manage (a `LISTEN`
    /// that lasts as long as its owner). Not counted against the pool's size.
    pub fn connect_dedicated(&self) -> Result<Client, PgError> {
        self.connect()
    }

    /// A new connection within the connect timeout. The driver bounds only the TCP
    /// connection attempt; a server that accepts but never finishes the start-up (one still
    /// recovering on an overloaded machine, say) would hold the caller forever, so the
    /// attempt runs on a thread of its own and is abandoned at the deadline (that thread
    /// drops whatever it gets later).
    fn connect(&self) -> Result<Client, PgError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let config = self.config.clone();
        std::thread::Builder::new()
            .name("phr-pg-connect".into())
            .spawn(move || {
                let _ = sender.send(config.connect(NoTls));
            })
            .map_err(|e| PgError::Unavailable(format!("cannot start a connection: {e}")))?;
        let wait = self.connect_timeout + Duration::from_secs(1);
        match receiver.recv_timeout(wait) {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(PgError::Unavailable(format!(
                "the database did not accept a connection within {} s",
                wait.as_secs()
            ))),
        }
    }

    /// An idle connection is usable, or `None`: closed ones are dropped, and one idle for a
    /// while is pinged first (the server may have restarted since).
    fn check(&self, mut conn: Conn) -> Option<Conn> {
        if conn.client.is_closed() {
            return None;
        }
        if conn.idle_since.elapsed() >= self.validate_after
            && conn.client.is_valid(self.checkout_timeout).is_err()
        {
            return None;
        }
        Some(conn)
    }

    fn pooled(&self, conn: Conn) -> Pooled<'_> {
        Pooled {
            pool: self,
            conn: Some(conn),
        }
    }

    fn forget_one(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn give_back(&self, mut conn: Conn) {
        if conn.client.is_closed() {
            self.forget_one();
            return;
        }
        conn.idle_since = Instant::now();
        if let Ok(mut state) = self.state.lock() {
            if state.closed {
                state.open = state.open.saturating_sub(1);
            } else {
                state.idle.push(conn);
            }
        }
        self.freed.notify_one();
    }

    /// Closes idle connections and refuses new checkouts.
    pub fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            state.open = state.open.saturating_sub(state.idle.len());
            close_off_async(std::mem::take(&mut state.idle));
        }
        self.freed.notify_all();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}

/// Closes connections on a thread of their own: closing one blocks on the driver's runtime,
/// which must not happen on an async worker (the last owner of a store may be dropped on
/// one, at a server's shutdown say).
fn close_off_async(connections: Vec<Conn>) {
    if connections.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        drop(connections);
        return;
    }
    // Only a machine out of threads fails this; nothing better can be done then.
    let _ = std::thread::Builder::new()
        .name("phr-pg-close".into())
        .spawn(move || drop(connections));
}

/// A checked-out connection.
pub struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pooled<'_> {
    pub fn conn(&mut self) -> Result<&mut Conn, PgError> {
        self.conn.as_mut().ok_or(PgError::Closed)
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
