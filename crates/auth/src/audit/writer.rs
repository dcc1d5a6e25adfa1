//! The audit writer thread: takes records from a bounded queue and appends them to the store
//! in batches of up to [`BATCH`]. Never drops a record: a failed write is retried, and what
//! cannot be written at shutdown is saved to a file. Callers never wait without bound: when
//! the queue stays full for [`QUEUE_WAIT`] (the database has been out of reach for a while)
//! a record goes to the same kind of file instead, and a flush gives up after
//! [`FLUSH_WAIT`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::{AuditRecord, AuditStore};
use crate::error::{AuthError, Result};

/// Records per write transaction at most.
const BATCH: usize = 1000;
/// Longest a caller waits for room in a full queue before its record goes to a file.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Longest a flush waits for the queue to reach the store.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

enum Message {
    Record(Box<AuditRecord>),
    Flush(Sender<()>),
}

pub(super) struct Writer {
    sender: Mutex<Option<Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Where records go that found the queue full for too long.
    overflow: Mutex<Overflow>,
}

/// One file per process for records that could not be queued, opened on first use.
struct Overflow {
    dir: PathBuf,
    file: Option<(PathBuf, std::fs::File)>,
}

impl Writer {
    pub fn start(
        store: Arc<dyn AuditStore>,
        capacity: usize,
        fallback_dir: PathBuf,
    ) -> Result<Writer> {
        let (sender, receiver) = bounded(capacity.max(1));
        let dir = fallback_dir.clone();
        let thread = std::thread::Builder::new()
            .name("phr-audit".into())
            .spawn(move || run(store.as_ref(), receiver, fallback_dir))?;
        Ok(Writer {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            overflow: Mutex::new(Overflow { dir, file: None }),
        })
    }

    fn sender(&self) -> Result<Sender<Message>> {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(AuthError::AuditClosed)
    }

    pub fn record(&self, record: AuditRecord) -> Result<()> {
        match self
            .sender()?
            .send_timeout(Message::Record(Box::new(record)), QUEUE_WAIT)
        {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::SendTimeoutError::Timeout(Message::Record(record))) => {
                self.overflow(&record)
            }
            Err(_) => Err(AuthError::AuditClosed),
        }
    }

    /// Appends a record the queue had no room for to this process's overflow file.
    fn overflow(&self, record: &AuditRecord) -> Result<()> {
        let mut overflow = self.overflow.lock().map_err(|_| AuthError::AuditClosed)?;
        if overflow.file.is_none() {
            let path = overflow
                .dir
                .join(format!("audit-unwritten-{}.ndjson", uuid::Uuid::new_v4()));
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            tracing::error!(path = %path.display(), "the audit queue is full (is the database reachable?): records go to a file");
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
        self.sender()?
            .send_timeout(Message::Flush(done), FLUSH_WAIT)
            .map_err(|_| AuthError::Unavailable("the audit log is not being written".into()))?;
        match wait.recv_timeout(FLUSH_WAIT) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(AuthError::Unavailable(
                "the audit log could not be written in time".into(),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(AuthError::AuditClosed),
        }
    }

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

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(store: &dyn AuditStore, receiver: Receiver<Message>, fallback_dir: PathBuf) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut waiting: Vec<Sender<()>> = Vec::new();
    let mut failures = 0u32;
    loop {
        let first = if pending.is_empty() {
            match receiver.recv() {
                Ok(message) => Some(message),
                Err(_) => break,
            }
        } else {
            // Earlier write failed: retry after a pause, still accepting new records.
            match receiver.recv_timeout(Duration::from_secs(1)) {
                Ok(message) => Some(message),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut next = first;
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
        if !pending.is_empty() {
            match store.append(&pending) {
                Ok(()) => {
                    pending.clear();
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::error!(error = %e, queued = pending.len(), "writing audit records failed; retrying");
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
    if !pending.is_empty() && store.append(&pending).is_err() {
        save_unwritten(&pending, &fallback_dir);
    }
    for done in waiting {
        let _ = done.send(());
    }
}

fn save_unwritten(records: &[AuditRecord], dir: &std::path::Path) {
    let path = dir.join(format!("audit-unwritten-{}.ndjson", uuid::Uuid::new_v4()));
    let saved = std::fs::File::create(&path).and_then(|mut file| {
        for record in records {
            serde_json::to_writer(&mut file, record)?;
            file.write_all(b"\n")?;
        }
        file.sync_all()
    });
    match saved {
        Ok(()) => {
            tracing::error!(path = %path.display(), count = records.len(), "audit records saved to a file")
        }
        Err(e) => {
            tracing::error!(error = %e, count = records.len(), "audit records could not be saved")
        }
    }
}
