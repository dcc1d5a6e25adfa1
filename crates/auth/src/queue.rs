//! A writer thread for records a request leaves behind (the audit log, the sandbox traffic
//! record): it takes them from a bounded queue and appends them to their store in batches of
//! up to [`BATCH`], at most one commit per [`COMMIT_SPACING`], so records share commits and a
//! request never waits for one. Between commits the thread sleeps rather than waits on the
//! queue, so queuing a record costs the request no wake-up of another thread. Never drops
//! a record: a failed write is retried, and what cannot be written at shutdown is saved to a
//! file. Callers never wait without bound: when the queue stays full for [`QUEUE_WAIT`] (the
//! database has been out of reach for a while) a record goes to the same kind of file
//! instead, and a flush gives up after [`FLUSH_WAIT`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;

use crate::error::{AuthError, Result};

/// Appends a batch of records to their store, in one transaction.
pub(crate) type Append<R> = Box<dyn Fn(&[R]) -> Result<()> + Send>;

/// Records per write transaction at most.
const BATCH: usize = 1000;
/// Shortest time between two commits: records that arrive sooner are gathered into the next
/// one (a flush waits at most this long). Without it a busy server commits for nearly every
/// record; each commit writes the pages it touched to the WAL again, so at 2 ms the audit and
/// traffic writers took a fifth of the CPU of 7,000 authorized reads a second.
const COMMIT_SPACING: Duration = Duration::from_millis(10);
/// The pause after a failed write before the next try.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Longest a caller waits for room in a full queue before its record goes to a file.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Longest a flush waits for the queue to reach the store.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

enum Message<R> {
    Record(Box<R>),
    Flush(Sender<()>),
}

pub(crate) struct Writer<R> {
    /// What the records are (`audit`, `traffic`): names the thread, the files and errors.
    kind: &'static str,
    sender: Mutex<Option<Sender<Message<R>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Where records go that found the queue full for too long.
    overflow: Mutex<Overflow>,
}

/// One file per process for records that could not be queued, opened on first use.
struct Overflow {
    dir: PathBuf,
    file: Option<(PathBuf, std::fs::File)>,
}

impl<R: Serialize + Send + 'static> Writer<R> {
    /// Starts the thread `phr-<kind>` writing through `append`; files of records it could
    /// not write are `<kind>-unwritten-<uuid>.ndjson` in `fallback_dir`.
    pub fn start(
        kind: &'static str,
        append: Append<R>,
        capacity: usize,
        fallback_dir: PathBuf,
    ) -> Result<Writer<R>> {
        let (sender, receiver) = bounded(capacity.max(1));
        let dir = fallback_dir.clone();
        let thread = std::thread::Builder::new()
            .name(format!("phr-{kind}"))
            .spawn(move || run(kind, append, receiver, fallback_dir))?;
        Ok(Writer {
            kind,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            overflow: Mutex::new(Overflow { dir, file: None }),
        })
    }

    fn sender(&self) -> Result<Sender<Message<R>>> {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(AuthError::QueueClosed(self.kind))
    }

    /// Queues a record without waiting: `Err(record)` when the queue is full (or closed), to
    /// be handed to [`Writer::record`] where waiting is allowed.
    pub fn try_record(&self, record: R) -> std::result::Result<(), Box<R>> {
        let Ok(sender) = self.sender() else {
            return Err(Box::new(record));
        };
        match sender.try_send(Message::Record(Box::new(record))) {
            Ok(()) => Ok(()),
            Err(e) => match e.into_inner() {
                Message::Record(r) => Err(r),
                // Only records are sent here.
                Message::Flush(_) => Ok(()),
            },
        }
    }

    /// Queues a record, waiting up to [`QUEUE_WAIT`] for room before it goes to a file.
    pub fn record(&self, record: R) -> Result<()> {
        match self
            .sender()?
            .send_timeout(Message::Record(Box::new(record)), QUEUE_WAIT)
        {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::SendTimeoutError::Timeout(Message::Record(record))) => {
                self.overflow(&record)
            }
            Err(_) => Err(AuthError::QueueClosed(self.kind)),
        }
    }

    /// Appends a record the queue had no room for to this process's overflow file.
    fn overflow(&self, record: &R) -> Result<()> {
        let kind = self.kind;
        let mut overflow = self
            .overflow
            .lock()
            .map_err(|_| AuthError::QueueClosed(kind))?;
        if overflow.file.is_none() {
            let path = unwritten_file(&overflow.dir, kind);
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            tracing::error!(kind, path = %path.display(), "a record queue is full (is the database reachable?): records go to a file");
            overflow.file = Some((path, file));
        }
        if let Some((_, file)) = &mut overflow.file {
            let mut line = serde_json::to_vec(record).map_err(|e| AuthError::Io(e.into()))?;
            line.push(b'\n');
            file.write_all(&line)?;
            file.sync_data()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        let (done, wait) = bounded(1);
        let kind = self.kind;
        self.sender()?
            .send_timeout(Message::Flush(done), FLUSH_WAIT)
            .map_err(|_| {
                AuthError::Unavailable(format!("the {kind} queue is not being written"))
            })?;
        match wait.recv_timeout(FLUSH_WAIT) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(AuthError::Unavailable(
                format!("the {kind} records could not be written in time"),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(AuthError::QueueClosed(kind))
            }
        }
    }
}

impl<R> Writer<R> {
    /// Drains the queue and stops the thread.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl<R> Drop for Writer<R> {
    fn drop(&mut self) {
        self.close();
    }
}

fn run<R: Serialize>(
    kind: &'static str,
    append: Append<R>,
    receiver: Receiver<Message<R>>,
    fallback_dir: PathBuf,
) {
    let mut pending: Vec<R> = Vec::new();
    let mut waiting: Vec<Sender<()>> = Vec::new();
    let mut failures = 0u32;
    // After a failed write the next try waits for RETRY_PAUSE, however many records arrive
    // meanwhile: they are gathered, not each the cause of another try at a database that is
    // out of reach.
    let mut retry_at: Option<Instant> = None;
    let mut last_commit = Instant::now()
        .checked_sub(COMMIT_SPACING)
        .unwrap_or_else(Instant::now);
    loop {
        let first = match retry_at {
            None => match receiver.recv() {
                Ok(message) => Some(message),
                Err(_) => break,
            },
            Some(at) => match receiver.recv_deadline(at) {
                Ok(message) => Some(message),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            },
        };
        // Take what is queued, and what arrives until COMMIT_SPACING after the last commit
        // (a flush ends the gathering). The thread sleeps through the rest of that spacing
        // instead of waiting on the queue: a waiting receiver is woken by every record sent,
        // a sleeping one by none, so a busy server pays one wake-up per commit, not one per
        // record.
        let gather_until = last_commit + COMMIT_SPACING;
        let mut next = first;
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Record(record) => pending.push(*record),
                    Message::Flush(done) => waiting.push(done),
                }
                if pending.len() >= BATCH {
                    break;
                }
                next = receiver.try_recv().ok();
            }
            let now = Instant::now();
            if pending.len() >= BATCH || !waiting.is_empty() || now >= gather_until {
                break;
            }
            std::thread::sleep(gather_until - now);
            next = receiver.try_recv().ok();
            if next.is_none() {
                break;
            }
        }
        let due = retry_at.is_none_or(|at| Instant::now() >= at);
        if !pending.is_empty() && due {
            let written = append(&pending);
            last_commit = Instant::now();
            match written {
                Ok(()) => {
                    pending.clear();
                    failures = 0;
                    retry_at = None;
                }
                Err(e) => {
                    failures += 1;
                    retry_at = Some(Instant::now() + RETRY_PAUSE);
                    // The first failure, then once a minute.
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::error!(kind, error = %e, queued = pending.len(), "writing records failed; retrying");
                    }
                }
            }
        }
        if pending.is_empty() {
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }
    // Clean shutdown: write what is left, or keep it in a file.
    while let Ok(message) = receiver.try_recv() {
        if let Message::Record(record) = message {
            pending.push(*record);
        }
    }
    if !pending.is_empty() && append(&pending).is_err() {
        save_unwritten(kind, &pending, &fallback_dir);
    }
    for done in waiting {
        let _ = done.send(());
    }
}

/// A new file for records of `kind` that could not be written: `<kind>-unwritten-<uuid>.ndjson`.
fn unwritten_file(dir: &std::path::Path, kind: &str) -> PathBuf {
    dir.join(format!("{kind}-unwritten-{}.ndjson", uuid::Uuid::new_v4()))
}

fn save_unwritten<R: Serialize>(kind: &str, records: &[R], dir: &std::path::Path) {
    let path = unwritten_file(dir, kind);
    let saved = std::fs::File::create(&path).and_then(|mut file| {
        for record in records {
            serde_json::to_writer(&mut file, record)?;
            file.write_all(b"\n")?;
        }
        file.sync_all()
    });
    match saved {
        Ok(()) => {
            tracing::error!(kind, path = %path.display(), count = records.len(), "unwritten records saved to a file")
        }
        Err(e) => {
            tracing::error!(kind, error = %e, count = records.len(), "unwritten records could not be saved")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_retried_after_a_pause_not_on_every_new_record() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let reachable = std::sync::Arc::new(AtomicBool::new(false));
        let tries = std::sync::Arc::new(AtomicUsize::new(0));
        let stored = std::sync::Arc::new(Mutex::new(Vec::<u32>::new()));
        let (up, count, sink) = (reachable.clone(), tries.clone(), stored.clone());
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(
            "test",
            Box::new(move |records: &[u32]| {
                count.fetch_add(1, Ordering::SeqCst);
                if !up.load(Ordering::SeqCst) {
                    return Err(AuthError::Unavailable("down".into()));
                }
                sink.lock().unwrap().extend_from_slice(records);
                Ok(())
            }),
            1000,
            dir.path().to_path_buf(),
        )
        .unwrap();
        writer.record(0).unwrap();
        while tries.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 1..100 {
            writer.record(i).unwrap();
        }
        // Well inside the pause: the records are gathered, and no other try was made.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        reachable.store(true, Ordering::SeqCst);
        writer.flush().unwrap();
        assert_eq!(*stored.lock().unwrap(), (0..100).collect::<Vec<u32>>());
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn records_arriving_one_by_one_share_commits() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let commits = std::sync::Arc::new(AtomicUsize::new(0));
        let stored = std::sync::Arc::new(Mutex::new(Vec::<u32>::new()));
        let (count, sink) = (commits.clone(), stored.clone());
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(
            "test",
            Box::new(move |records: &[u32]| {
                count.fetch_add(1, Ordering::SeqCst);
                sink.lock().unwrap().extend_from_slice(records);
                Ok(())
            }),
            1000,
            dir.path().to_path_buf(),
        )
        .unwrap();
        // 100 records, one every 100 µs or more (without the spacing, nearly one commit each).
        let started = Instant::now();
        for i in 0..100 {
            writer.record(i).unwrap();
            std::thread::sleep(Duration::from_micros(100));
        }
        let took = started.elapsed();
        writer.flush().unwrap();
        assert_eq!(*stored.lock().unwrap(), (0..100).collect::<Vec<u32>>());
        // One commit per COMMIT_SPACING at most, plus the first and the flush's.
        let most = (took.as_micros() / COMMIT_SPACING.as_micros()) as usize + 2;
        let made = commits.load(Ordering::SeqCst);
        assert!(made <= most, "{made} commits in {took:?}");
    }

    #[test]
    fn a_full_queue_gives_the_record_back_and_nothing_is_lost() {
        let (started, wait_started) = bounded::<()>(16);
        let (release, released) = bounded::<()>(16);
        let stored = std::sync::Arc::new(Mutex::new(Vec::<u32>::new()));
        let sink = stored.clone();
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(
            "test",
            Box::new(move |records: &[u32]| {
                let _ = started.send(());
                let _ = released.recv();
                sink.lock().unwrap().extend_from_slice(records);
                Ok(())
            }),
            1,
            dir.path().to_path_buf(),
        )
        .unwrap();
        writer.record(1).unwrap();
        wait_started.recv().unwrap();
        // The thread is inside `append` with record 1; the queue holds one more.
        assert_eq!(writer.try_record(2), Ok(()));
        assert_eq!(writer.try_record(3), Err(Box::new(3)));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        writer.flush().unwrap();
        writer.record(3).unwrap();
        writer.flush().unwrap();
        assert_eq!(*stored.lock().unwrap(), vec![1, 2, 3]);
    }
}
