//! The time every decision of the authorization service is made at: token expiry, session
//! idle deadlines, the age rule, key rotation, audit timestamps and how often the enforcer
//! looks for status changes made by other processes.
//!
//! It is injected ([`AuthService::open_with_clock`](crate::AuthService::open_with_clock)):
//! the server runs on [`SystemClock`], tests on a [`ManualClock`] they move forward instead of
//! sleeping. Nothing in the crate reads the system time any other way.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_micros().div_euclid(1_000_000)
    }

    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64 {
        self.now_micros().div_euclid(1_000)
    }

    /// Today's date (UTC).
    fn today(&self) -> time::Date {
        time::OffsetDateTime::from_unix_timestamp(self.now())
            .map(|t| t.date())
            .unwrap_or(time::Date::MIN)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        i64::try_from(nanos / 1000).unwrap_or(i64::MAX)
    }
}

/// A clock that stands still until it is moved: tests of expiry, idle timeouts and status
/// polling advance it instead of sleeping.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `micros` since the epoch.
    pub fn at_micros(micros: i64) -> ManualClock {
        ManualClock {
            micros: AtomicI64::new(micros),
        }
    }

    /// A clock standing at the system time of its creation.
    pub fn starting_now() -> ManualClock {
        ManualClock::at_micros(SystemClock.now_micros())
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.advance_micros(seconds.saturating_mul(1_000_000));
    }

    /// Moves the clock forward by `micros`.
    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_micros(1_700_000_000_500_000);
        assert_eq!(clock.now(), 1_700_000_000);
        assert_eq!(clock.now_millis(), 1_700_000_000_500);
        assert_eq!(clock.now(), 1_700_000_000);
        clock.advance(2);
        assert_eq!(clock.now(), 1_700_000_002);
        assert_eq!(
            clock.today(),
            time::macros::date!(2023 - 11 - 14),
            "1 700 000 002 s is 14 November 2023"
        );
    }

    #[test]
    fn seconds_round_down_before_the_epoch_too() {
        assert_eq!(ManualClock::at_micros(-1).now(), -1);
    }
}
