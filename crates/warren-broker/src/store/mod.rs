//! Durability (`BrokerConfig::data_dir`): durable exchanges, durable queues with their
//! arguments, their bindings, and persistent messages in durable queues are kept in one
//! append-only log (record.rs) and recovered at start (recover.rs).
//!
//! The core stays synchronous: under its lock it only appends records to an in-memory batch
//! (`Journal::append`). A writer thread takes the whole batch, writes it and fsyncs it, then
//! sends the publisher confirms that waited for it: one fsync for everything that arrived
//! during the previous one (grouped syncs, as RabbitMQ's message store does).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use amq_protocol::protocol::{AMQPClass, basic};

use crate::{ConnOut, Out, frames};

mod record;
mod recover;
#[cfg(test)]
mod tests;

pub use record::{MAGIC, Record, write as write_record};
pub use recover::{Recovered, open};

/// The data directory cannot be used: corrupt, not warren's, locked by another broker, or not
/// writable. Its text is one line naming the file. [`crate::start`] returns it inside an
/// [`std::io::Error`] (kind `Other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Open `dir` (on a blocking thread: it reads and fsyncs) and rebuild `core` from it; the
/// journal it records into from now on.
pub async fn restore(
    core: &mut crate::Core,
    dir: &std::path::Path,
    compact_min: u64,
) -> std::io::Result<Arc<Journal>> {
    let dir = dir.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || open(&dir, compact_min))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(StoreError(e)))?;
    let (state, journal) = opened;
    core.restore(state, Arc::clone(&journal));
    Ok(journal)
}

/// A publisher confirm that goes out once its message is on disk.
struct Waiter {
    out: ConnOut,
    channel: u16,
    seq: u64,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    waiters: Vec<Waiter>,
    /// Why the log cannot be written any more (sticky: a write that failed half-way leaves the
    /// file's tail unknown, and records after it would be lost at recovery).
    failed: Option<String>,
    /// Stopped: nothing is recorded any more (the core may outlive the broker a little, and
    /// what it drops then is not an ack).
    closed: bool,
    /// The writer is writing a batch: `close` waits for it.
    writing: bool,
    /// The writer thread has closed the log and the lock file.
    done: bool,
    /// A snapshot of what is live, to replace the log with (compact.rs).
    snapshot: Option<Vec<u8>>,
}

pub struct Journal {
    batch: Mutex<Batch>,
    dir: PathBuf,
    /// The log has grown enough to be compacted: the core takes a snapshot when it sees this.
    compact_wanted: AtomicBool,
    /// The least the log grows by before it is compacted (`Limits::log_compact_bytes`).
    compact_min: u64,
    wake: Condvar,
    /// Signalled after each written batch, for `close`.
    written: Condvar,
}

impl Journal {
    /// Start the writer thread on `log` (opened for appending, its tail whole).
    /// `live`: the log's size after the last compaction.
    pub fn start(log: File, lock: File, dir: PathBuf, live: u64, compact_min: u64) -> Arc<Self> {
        let journal = Arc::new(Self {
            batch: Mutex::default(),
            dir,
            compact_wanted: AtomicBool::new(false),
            compact_min,
            wake: Condvar::new(),
            written: Condvar::new(),
        });
        let j = Arc::clone(&journal);
        std::thread::Builder::new()
            .name("warren-store".into())
            .spawn(move || j.writer(log, lock, live))
            .expect("spawning the store's writer thread");
        journal
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn append(&self, r: &Record) {
        let mut b = self.lock();
        if b.closed || b.failed.is_some() {
            return;
        }
        let wake = b.bytes.is_empty();
        record::write(&mut b.bytes, r);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Why persistent messages are refused now, if they are.
    pub fn refusal(&self) -> Option<String> {
        let b = self.lock();
        if b.closed {
            return Some("the broker is stopping".into());
        }
        b.failed.clone()
    }

    /// Confirm `seq` on `channel` once what was appended so far is on disk.
    pub fn confirm_after_sync(&self, out: &ConnOut, channel: u16, seq: u64) {
        let mut b = self.lock();
        let waiter = Waiter { out: out.clone(), channel, seq };
        if b.failed.is_some() || b.closed {
            drop(b);
            settle(vec![waiter], false);
            return;
        }
        b.waiters.push(waiter);
        self.wake.notify_one();
    }

    /// Whether the core should take a snapshot for compaction now.
    pub fn wants_compaction(&self) -> bool {
        self.compact_wanted.load(Ordering::Relaxed)
    }

    /// Replace the log with `snapshot` (the magic and the records of everything live, taken
    /// under the core's lock): what is pending is in it already, so it is dropped, and the
    /// confirms waiting for it go out once the snapshot is synced.
    pub fn compact(&self, snapshot: Vec<u8>) {
        let mut b = self.lock();
        self.compact_wanted.store(false, Ordering::Relaxed);
        if b.closed || b.failed.is_some() {
            return;
        }
        b.bytes.clear();
        b.snapshot = Some(snapshot);
        self.wake.notify_one();
    }

    fn writer(&self, mut log: File, lock: File, mut live: u64) {
        let mut size = live;
        loop {
            let (snapshot, bytes, waiters) = {
                let mut b = self.lock();
                while b.bytes.is_empty() && b.waiters.is_empty() && b.snapshot.is_none() && !b.closed {
                    b = self.wake.wait(b).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if b.closed && b.bytes.is_empty() && b.waiters.is_empty() && b.snapshot.is_none() {
                    break;
                }
                b.writing = true;
                (b.snapshot.take(), std::mem::take(&mut b.bytes), std::mem::take(&mut b.waiters))
            };
            let mut result = Ok(());
            if let Some(snap) = snapshot {
                result = recover::replace_log(&self.dir, &snap).map(|f| log = f);
                (live, size) = (snap.len() as u64, snap.len() as u64);
            }
            let result = result.and_then(|()| log.write_all(&bytes)).and_then(|()| log.sync_data());
            size += bytes.len() as u64;
            if size > live + live.max(self.compact_min) {
                self.compact_wanted.store(true, Ordering::Relaxed);
            }
            let ok = result.is_ok();
            {
                let mut b = self.lock();
                if let Err(e) = result {
                    b.failed = Some(format!(
                        "the data directory cannot be written ({e}): persistent messages are refused"
                    ));
                    b.bytes.clear();
                    settle(std::mem::take(&mut b.waiters), false);
                }
                b.writing = false;
            }
            settle(waiters, ok);
            self.written.notify_all();
        }
        // Closing the lock file releases the flock: another broker may open the directory.
        drop(log);
        drop(lock);
        let mut b = self.lock();
        b.writing = false;
        b.done = true;
        self.written.notify_all();
    }

    /// Stop recording (what is pending is still written): the core is going, and the messages
    /// it drops with it have not left their queues.
    pub fn seal(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Write what is pending, stop recording, and release the data directory (blocking).
    pub fn close(&self) {
        self.seal();
        let mut b = self.lock();
        // The writer writes what is pending, then closes the files and says so.
        while !b.done {
            b = self.written.wait(b).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(b);
    }
}

/// Send the confirms (`ok`) or nacks for `waiters`.
fn settle(waiters: Vec<Waiter>, ok: bool) {
    for w in waiters {
        let method = if ok {
            basic::AMQPMethod::Ack(basic::Ack { delivery_tag: w.seq, multiple: false })
        } else {
            basic::AMQPMethod::Nack(basic::Nack { delivery_tag: w.seq, multiple: false, requeue: false })
        };
        w.out.send(Out::Frame(Box::new(frames::method(w.channel, AMQPClass::Basic(method)))));
    }
}

/// A persistent message's place in a durable queue: when it leaves the queue for good (the
/// ticket is dropped: acked, expired, dropped, purged, dead-lettered, deleted) the log says so.
#[derive(Debug)]
pub struct Ticket {
    pub qid: u32,
    pub mid: u64,
    pub delivered: bool,
    journal: Arc<Journal>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Ticket {
    pub fn new(qid: u32, mid: u64, delivered: bool, journal: Arc<Journal>) -> Box<Self> {
        Box::new(Self { qid, mid, delivered, journal })
    }

    /// Handed to a consumer: recorded the first time, so it comes back redelivered.
    pub fn delivered(&mut self) {
        if !self.delivered {
            self.delivered = true;
            self.journal.append(&Record::Delivered { qid: self.qid, mid: self.mid });
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.journal.append(&Record::Removed { qid: self.qid, mid: self.mid });
    }
}
