//! How processes sharing the authorization database tell each other that a status changed
//! (an app suspended, a grant withdrawn, a token revoked, a key rotated): a counter every
//! change bumps. A process that sees a new value drops its caches.
//!
//! [`StatusSignal`] is the interface; [`SqliteStatusSignal`] keeps the counter in a row of
//! the `meta` table and re-reads it at most every [`POLL_MS`] milliseconds (by the injected
//! clock). An engine with notifications (PostgreSQL `LISTEN`/`NOTIFY`) implements
//! [`StatusSignal::latest`] from the notifications instead.
//!
//! Owns the `status_epoch` row of the `meta` table.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::OptionalExtension;

use crate::clock::Clock;
use crate::error::Result;
use crate::sqlite::Sqlite;

/// How often the SQLite signal looks for changes made by other processes.
pub const POLL_MS: i64 = 500;

/// The cross-process "a status changed" counter.
pub trait StatusSignal: Send + Sync {
    /// Records a change; returns the counter's new value.
    fn publish(&self) -> Result<i64>;
    /// The newest value this process knows of. May lag behind another process's
    /// [`StatusSignal::publish`] by the implementation's delay (documented there).
    fn latest(&self) -> Result<i64>;
    /// [`StatusSignal::latest`] when it needs no read of storage; `None` when a read is due.
    fn latest_known(&self) -> Option<i64>;
}

/// The counter in SQLite, polled.
pub(crate) struct SqliteStatusSignal {
    db: Arc<Sqlite>,
    clock: Arc<dyn Clock>,
    value: AtomicI64,
    /// When the row was last read (milliseconds); `i64::MIN` before the first read.
    read_at: AtomicI64,
}

impl SqliteStatusSignal {
    pub fn new(db: Arc<Sqlite>, clock: Arc<dyn Clock>) -> SqliteStatusSignal {
        SqliteStatusSignal {
            db,
            clock,
            value: AtomicI64::new(0),
            read_at: AtomicI64::new(i64::MIN),
        }
    }
}

impl StatusSignal for SqliteStatusSignal {
    fn publish(&self) -> Result<i64> {
        let value = self.db.run(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('status_epoch', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )?;
            conn.query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'status_epoch'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })?;
        self.value.store(value, Ordering::Relaxed);
        Ok(value)
    }

    fn latest_known(&self) -> Option<i64> {
        let read_at = self.read_at.load(Ordering::Relaxed);
        (read_at != i64::MIN && self.clock.now_millis().saturating_sub(read_at) < POLL_MS)
            .then(|| self.value.load(Ordering::Relaxed))
    }

    fn latest(&self) -> Result<i64> {
        if let Some(value) = self.latest_known() {
            return Ok(value);
        }
        let now = self.clock.now_millis();
        self.read_at.store(now, Ordering::Relaxed);
        let value: Option<i64> = self.db.run(|conn| {
            conn.query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'status_epoch'",
                [],
                |r| r.get(0),
            )
            .optional()
        })?;
        let value = value.unwrap_or(0);
        self.value.store(value, Ordering::Relaxed);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn another_process_sees_a_change_at_its_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let clock = Arc::new(ManualClock::at_micros(1_000_000_000));
        let server = SqliteStatusSignal::new(Sqlite::open(&path).unwrap(), clock.clone());
        let operator = SqliteStatusSignal::new(Sqlite::open(&path).unwrap(), clock.clone());
        assert_eq!(server.latest_known(), None, "never read yet");
        assert_eq!(server.latest().unwrap(), 0);
        assert_eq!(operator.publish().unwrap(), 1);
        // Within the poll interval the server still answers from memory…
        clock.advance_micros(POLL_MS * 1000 - 1);
        assert_eq!(server.latest_known(), Some(0));
        assert_eq!(server.latest().unwrap(), 0);
        // …and reads the row once it has passed.
        clock.advance_micros(1);
        assert_eq!(server.latest_known(), None, "a read is due");
        assert_eq!(server.latest().unwrap(), 1);
        assert_eq!(server.latest_known(), Some(1));
        // Its own changes it knows at once.
        assert_eq!(server.publish().unwrap(), 2);
        assert_eq!(server.latest().unwrap(), 2);
    }
}
