//! The status signal on PostgreSQL: a counter row (`auth_status`) every change bumps, and a
//! `NOTIFY` in the same transaction. Each process keeps one connection of its own that
//! `LISTEN`s, so a change made on any node (or by an operator command) reaches every other
//! node as soon as it commits, typically within milliseconds. While that connection is down
//! (the database restarting, a network break), [`StatusSignal::latest`] falls back to
//! reading the row at most every [`POLL_MS`] milliseconds, so a change is still seen within
//! a second; the listener reconnects by itself and re-reads the row when it does.
//!
//! Owns the `auth_status` table and the listener thread. Never holds a pooled connection
//! while waiting for notifications.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::signal::{POLL_MS, StatusSignal};
use crate::clock::Clock;
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE auth_status (
    one   BOOLEAN PRIMARY KEY CHECK (one),
    epoch BIGINT NOT NULL
);
INSERT INTO auth_status VALUES (true, 0);
"#];

/// The notification channel.
const CHANNEL: &str = "phr_auth_status";
/// How long the listener waits for a notification before checking whether it should stop.
const WAIT: Duration = Duration::from_millis(250);
/// How often the listener re-reads the row anyway (a notification lost with a connection
/// that broke after delivering it to the socket, say).
const REREAD: Duration = Duration::from_secs(5);
/// Pause before reconnecting after the listening connection failed.
const RECONNECT: Duration = Duration::from_millis(500);

struct Shared {
    /// The highest counter value seen.
    value: AtomicI64,
    /// Whether the listening connection is up (then `value` is current).
    listening: AtomicBool,
    stop: AtomicBool,
}

pub(crate) struct PostgresStatusSignal {
    pg: Arc<Postgres>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    /// When the row was last polled (milliseconds, by the clock); `i64::MIN` before.
    read_at: AtomicI64,
}

impl PostgresStatusSignal {
    /// Starts the listener thread.
    pub fn start(pg: Arc<Postgres>, clock: Arc<dyn Clock>) -> Result<PostgresStatusSignal> {
        let shared = Arc::new(Shared {
            value: AtomicI64::new(0),
            listening: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let listener = (pg.clone(), shared.clone());
        std::thread::Builder::new()
            .name("phr-auth-listen".into())
            .spawn(move || listen(&listener.0, &listener.1))?;
        Ok(PostgresStatusSignal {
            pg,
            clock,
            shared,
            read_at: AtomicI64::new(i64::MIN),
        })
    }

    fn read_row(&self) -> Result<i64> {
        self.pg.read(|conn| {
            conn.row("SELECT epoch FROM auth_status WHERE one", &[])?
                .map(|r| get(&r, 0))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }
}

impl Drop for PostgresStatusSignal {
    fn drop(&mut self) {
        // The listener notices within `WAIT` and closes its connection.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl StatusSignal for PostgresStatusSignal {
    fn publish(&self) -> Result<i64> {
        let value = self.pg.transaction(|conn| {
            let row = conn.row(
                "UPDATE auth_status SET epoch = epoch + 1 WHERE one RETURNING epoch",
                &[],
            )?;
            let value: i64 = row.map(|r| get(&r, 0)).transpose()?.unwrap_or_default();
            // Delivered to every listener when this transaction commits.
            conn.exec("SELECT pg_notify($1, $2)", &[&CHANNEL, &value.to_string()])?;
            Ok(value)
        })?;
        self.shared.value.fetch_max(value, Ordering::Relaxed);
        Ok(value)
    }

    fn latest_known(&self) -> Option<i64> {
        let read_at = self.read_at.load(Ordering::Relaxed);
        (self.shared.listening.load(Ordering::Relaxed)
            || (read_at != i64::MIN && self.clock.now_millis().saturating_sub(read_at) < POLL_MS))
            .then(|| self.shared.value.load(Ordering::Relaxed))
    }

    fn latest(&self) -> Result<i64> {
        if let Some(value) = self.latest_known() {
            return Ok(value);
        }
        let now = self.clock.now_millis();
        self.read_at.store(now, Ordering::Relaxed);
        let value = self.read_row()?;
        Ok(self
            .shared
            .value
            .fetch_max(value, Ordering::Relaxed)
            .max(value))
    }
}

/// The listener thread: LISTEN on a connection of its own, note every value announced,
/// reconnect when the connection fails, until asked to stop.
fn listen(pg: &Postgres, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        if let Err(e) = listen_once(pg, shared) {
            tracing::debug!(error = %e, "status listener reconnecting");
        }
        shared.listening.store(false, Ordering::Relaxed);
        let until = Instant::now() + RECONNECT;
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(WAIT.min(until - Instant::now()));
        }
    }
}

fn listen_once(pg: &Postgres, shared: &Shared) -> Result<()> {
    let mut client = pg.dedicated()?;
    let db = crate::postgres::db;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(db)?;
    let mut reread = Instant::now();
    loop {
        if reread <= Instant::now() {
            // After LISTEN: nothing committed from here on can be missed.
            let row = client
                .query_one("SELECT epoch FROM auth_status WHERE one", &[])
                .map_err(db)?;
            let value: i64 = get(&row, 0)?;
            shared.value.fetch_max(value, Ordering::Relaxed);
            shared.listening.store(true, Ordering::Relaxed);
            reread = Instant::now() + REREAD;
        }
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(WAIT);
            while let Some(note) = waiting.next().map_err(db)? {
                if let Ok(value) = note.payload().parse::<i64>() {
                    shared.value.fetch_max(value, Ordering::Relaxed);
                }
            }
        }
        if client.is_closed() {
            return Err(crate::error::AuthError::Unavailable(
                "the status listener's connection closed".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    #[test]
    fn a_change_on_one_node_reaches_the_other_by_notification() {
        let pg = crate::postgres::tests::database("signal");
        // A clock that never moves: without the notification, the other node would not poll.
        let frozen = Arc::new(ManualClock::at_micros(1_000_000_000));
        let a = PostgresStatusSignal::start(pg.clone(), Arc::new(SystemClock)).unwrap();
        let b = PostgresStatusSignal::start(pg, frozen).unwrap();
        assert_eq!(b.latest().unwrap(), 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !b.shared.listening.load(Ordering::Relaxed) {
            assert!(Instant::now() < deadline, "the listener did not connect");
            std::thread::park_timeout(Duration::from_millis(10));
        }
        assert_eq!(a.publish().unwrap(), 1);
        assert_eq!(a.publish().unwrap(), 2);
        while b.latest().unwrap() != 2 {
            assert!(Instant::now() < deadline, "the notification did not arrive");
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    #[test]
    fn without_a_listening_connection_the_row_is_polled() {
        let pg = crate::postgres::tests::database("signal_poll");
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let a = PostgresStatusSignal::start(pg.clone(), clock.clone()).unwrap();
        let b = PostgresStatusSignal::start(pg, clock.clone()).unwrap();
        // Stop b's listener: b has only the poll left.
        b.shared.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.shared.listening.load(Ordering::Relaxed) {
            assert!(Instant::now() < deadline, "the listener did not stop");
            std::thread::park_timeout(Duration::from_millis(10));
        }
        assert_eq!(b.latest().unwrap(), 0);
        a.publish().unwrap();
        clock.advance_micros(POLL_MS * 1000 - 1);
        assert_eq!(b.latest_known(), Some(0));
        assert_eq!(b.latest().unwrap(), 0, "within the poll interval");
        clock.advance_micros(1);
        assert_eq!(b.latest_known(), None, "a read is due");
        assert_eq!(b.latest().unwrap(), 1);
    }
}
