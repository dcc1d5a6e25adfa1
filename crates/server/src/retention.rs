//! Runs sandbox retention (`phr_service::retention`) on its schedule in the background of
//! the server: sleeps until the next run on an injected clock, then erases on the blocking
//! pool. With several nodes on one database every node keeps time, and the one that claims
//! a run (by its due time) does it. The rules (when, what) are the service's; this module
//! only keeps time.

use std::sync::Arc;

use phr_service::retention::{Schedule, run_once};
use phr_store::Storage;
use time::OffsetDateTime;

/// Decides, on the blocking pool, whether this node runs the occurrence due at the given
/// Unix time (`AuthService::claim_job` across nodes; always with one node).
pub type Claim = Arc<dyn Fn(i64) -> bool + Send + Sync>;

/// Runs the job on its schedule until the process ends. `now` is the clock (injected so the
/// scheduling can be tested).
pub async fn run_scheduled(
    storage: Arc<dyn Storage>,
    schedule: Schedule,
    now: impl Fn() -> OffsetDateTime + Send + 'static,
    claim: Claim,
) {
    loop {
        let current = now();
        let Some(next) = schedule.next_after(current) else {
            return;
        };
        tracing::info!(target: "phr::retention", next_run = %next, "sandbox retention scheduled");
        // Sleep in steps of at most an hour, so a suspended machine or a changed clock does
        // not push the run far past its time.
        loop {
            let left = next - now();
            if left <= time::Duration::ZERO {
                break;
            }
            let step = left.min(time::Duration::hours(1));
            tokio::time::sleep(step.unsigned_abs()).await;
        }
        let cutoff = schedule.cutoff(next);
        let storage = storage.clone();
        let claim = claim.clone();
        let due = next.unix_timestamp();
        let result = tokio::task::spawn_blocking(move || {
            claim(due)
                .then(|| run_once(storage.as_ref(), cutoff))
                .transpose()
        })
        .await;
        match result {
            Ok(Ok(None)) => tracing::info!(
                target: "phr::retention",
                "sandbox retention ran on another node"
            ),
            Ok(Ok(Some(report))) => tracing::info!(
                target: "phr::retention",
                patients = report.patients,
                erased = report.erased,
                "sandbox retention deleted data stored before the cutoff"
            ),
            Ok(Err(e)) => {
                tracing::error!(target: "phr::retention", error = %e, "sandbox retention failed")
            }
            Err(_) => {
                tracing::error!(target: "phr::retention", "sandbox retention stopped unexpectedly")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_search::model::SearchQuery;
    use phr_service::retention::RetentionConfig;
    use phr_store::Erasure;
    use time::macros::datetime;

    fn schedule() -> Schedule {
        RetentionConfig::default()
            .schedule(true)
            .unwrap()
            .expect("on in sandbox")
    }

    #[tokio::test(start_paused = true)]
    async fn the_scheduled_job_waits_for_its_time_with_an_injected_clock() {
        // A clock that follows tokio's paused time from 28 Feb 23:00 UTC.
        let start = tokio::time::Instant::now();
        let base = datetime!(2026-02-28 23:00 UTC);
        let clock = move || base + (tokio::time::Instant::now() - start);
        let s = schedule();
        assert_eq!(s.next_after(clock()), Some(datetime!(2026-03-01 02:00 UTC)));
        // Three hours of paused time pass instantly; the job's wait must end at 02:00.
        let store = Arc::new(CountingStore::default());
        let storage: Arc<dyn Storage> = store.clone();
        let handle = tokio::spawn(run_scheduled(storage.clone(), s, clock, Arc::new(|_| true)));
        tokio::time::sleep(std::time::Duration::from_secs(2 * 3600 + 59 * 60)).await;
        tokio::task::yield_now().await;
        assert_eq!(searches(&storage), 0, "ran before 02:00");
        // Paused time moves on by itself to the job's wake-up; the job's first search says it
        // ran, and the clock says when.
        store.ran.notified().await;
        assert_eq!(clock(), datetime!(2026-03-01 02:00 UTC), "ran late");
        handle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_another_node_claimed_is_not_run_here() {
        let start = tokio::time::Instant::now();
        let base = datetime!(2026-02-28 23:00 UTC);
        let clock = move || base + (tokio::time::Instant::now() - start);
        let store = Arc::new(CountingStore::default());
        let storage: Arc<dyn Storage> = store.clone();
        let asked = Arc::new(tokio::sync::Notify::new());
        let claimed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let claim: Claim = {
            let (asked, claimed) = (asked.clone(), claimed.clone());
            Arc::new(move |due| {
                claimed.lock().unwrap().push(due);
                asked.notify_one();
                false
            })
        };
        let handle = tokio::spawn(run_scheduled(storage.clone(), schedule(), clock, claim));
        asked.notified().await;
        tokio::task::yield_now().await;
        assert_eq!(
            *claimed.lock().unwrap(),
            [datetime!(2026-03-01 02:00 UTC).unix_timestamp()],
            "claimed by its due time"
        );
        assert_eq!(searches(&storage), 0, "another node runs it");
        handle.abort();
    }

    fn searches(storage: &Arc<dyn Storage>) -> u64 {
        storage.stats().requests
    }

    /// A store that only counts searches (in `stats().requests`), tells when one happens and
    /// holds no data.
    #[derive(Default)]
    struct CountingStore {
        searches: std::sync::atomic::AtomicU64,
        ran: tokio::sync::Notify,
    }

    impl Storage for CountingStore {
        fn read(&self, _: &str, _: &str) -> phr_store::Result<Option<phr_store::StoredResource>> {
            Ok(None)
        }
        fn vread(
            &self,
            _: &str,
            _: &str,
            _: u64,
        ) -> phr_store::Result<Option<phr_store::StoredResource>> {
            Ok(None)
        }
        fn find_by_identifier(
            &self,
            _: &str,
            _: Option<&str>,
            _: &phr_store::IdentifierCondition,
        ) -> phr_store::Result<Vec<String>> {
            Ok(vec![])
        }
        fn write(
            &self,
            _: Vec<phr_store::WriteOp>,
            _: phr_store::Atomicity,
        ) -> phr_store::Result<Vec<Result<phr_store::WriteOutcome, phr_store::Rejection>>> {
            Ok(vec![])
        }
        fn history(
            &self,
            _: &phr_store::HistoryQuery,
        ) -> phr_store::Result<phr_store::HistoryPage> {
            Ok(Default::default())
        }
        fn search(
            &self,
            _: &SearchQuery,
            _: Option<&str>,
        ) -> phr_store::Result<phr_store::SearchPage> {
            self.searches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.ran.notify_one();
            Ok(Default::default())
        }
        fn erase(&self, _: &str, _: &Erasure) -> phr_store::Result<u64> {
            Ok(0)
        }
        fn stats(&self) -> phr_store::StoreStats {
            phr_store::StoreStats {
                requests: self.searches.load(std::sync::atomic::Ordering::SeqCst),
                ..Default::default()
            }
        }
    }
}
