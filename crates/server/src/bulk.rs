//! The bulk lane: threads of lower CPU priority for Bundles, so that a citizen's read or
//! search does not queue behind another app's 300-entry upload for a core.
//!
//! On two cores, sixteen clients of which a tenth post Bundles kept about ten Bundles in
//! validation at any time (each takes a few hundred milliseconds of CPU), and reads and
//! searches, on the blocking pool beside them, waited their turn: p50 over 20 ms. Threads
//! at nice 10 get a tenth of the CPU share of the others while both want it, and all of it
//! when nothing else does, so an upload alone runs as fast as before and never starves.
//! Only the CPU is divided: a Bundle's storage commit goes through the one writer as every
//! write does.
//!
//! Lowering a thread's priority needs no privilege; raising it back would, which is why
//! these threads are kept for bulk work and not lent from the blocking pool. Where a
//! thread's priority cannot be set (other systems than Linux), the lane still runs, at
//! normal priority.

use std::sync::Arc;

use crossbeam_channel::{Sender, unbounded};

/// Threads of the lane. More than the cores: a Bundle's thread also waits for its commit,
/// and the next Bundle validates meanwhile.
const THREADS: usize = 8;
/// The nice value of the lane's threads (0 is normal, 19 the lowest).
const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A handle to the lane's threads; they end when the last handle is dropped.
#[derive(Clone)]
pub struct BulkLane {
    jobs: Arc<Sender<Job>>,
}

impl BulkLane {
    /// Starts the threads `phr-bulk-N`.
    pub fn start() -> std::io::Result<BulkLane> {
        let (jobs, queue) = unbounded::<Job>();
        for n in 0..THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("phr-bulk-{n}"))
                .spawn(move || {
                    lower_priority();
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                })?;
        }
        Ok(BulkLane {
            jobs: Arc::new(jobs),
        })
    }

    /// Runs `work` on the lane; None when it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The caller may have gone (a closed connection): nobody to answer.
            let _ = answer.send(outcome.ok());
        });
        self.jobs.send(job).ok()?;
        answered.await.ok().flatten()
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority(PRIO_PROCESS, tid) changes only the
    // nice value of this thread (Linux keeps it per thread).
    let changed = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE)
    };
    if changed != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "a bulk thread keeps normal priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lower_priority_thread_and_a_panic_is_none() {
        let lane = BulkLane::start().expect("starts");
        let (name, nice) = lane
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                // SAFETY: as in lower_priority; getpriority only reads.
                let nice = unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::getpriority(libc::PRIO_PROCESS, tid)
                };
                (name, nice)
            })
            .await
            .expect("answers");
        assert!(name.is_some_and(|n| n.starts_with("phr-bulk-")));
        // Already lower (a niced test run) counts: never raised.
        assert!(nice >= NICE, "nice {nice}");
        assert_eq!(lane.run(|| -> u8 { panic!("in bulk work") }).await, None);
        // The lane survives a panic.
        assert_eq!(lane.run(|| 7).await, Some(7));
    }
}
