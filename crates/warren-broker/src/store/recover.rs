//! Opening a data directory: take its lock, read its log, replay the records into what
//! survives, and compact: the log is rewritten with only that (written aside, fsynced, then
//! renamed over the old one), so that it holds what is live plus what came since the start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::FieldTable;

use super::Journal;
use super::record::{self, Framed, MAGIC, Record};

const LOG: &str = "warren.log";
const LOCK: &str = "lock";
const TMP: &str = "warren.log.tmp";

pub struct QueueDef {
    pub qid: u32,
    pub name: String,
    pub auto_delete: bool,
    pub args: FieldTable,
}

pub struct StoredMessage {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

/// What a data directory kept: to be declared again in this order.
#[derive(Default)]
pub struct Recovered {
    /// name -> (type, auto_delete, internal)
    pub exchanges: BTreeMap<String, (String, bool, bool)>,
    pub queues: BTreeMap<u32, QueueDef>,
    pub bindings: BTreeSet<(String, u32, String, Vec<u8>)>,
    pub messages: HashMap<u64, StoredMessage>,
    /// Each queue's messages in publish order, and whether each was delivered before.
    pub contents: HashMap<u32, BTreeMap<u64, bool>>,
    pub next_qid: u32,
    pub next_mid: u64,
}

/// Open (or create) `dir`: lock it, recover what it holds and start its journal. Errors are one
/// line naming the file.
pub fn open(dir: &Path, compact_min: u64) -> Result<(Recovered, Arc<Journal>), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    check_foreign(dir)?;
    let lock = take_lock(&dir.join(LOCK))?;
    let log = dir.join(LOG);
    let state = match std::fs::read(&log) {
        Ok(data) => replay(&log, &data)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recovered::default(),
        Err(e) => return Err(format!("cannot read {}: {e}", log.display())),
    };
    let mut bytes = MAGIC.to_vec();
    state.records(&mut bytes);
    let file =
        replace_log(dir, &bytes).map_err(|e| format!("cannot write {}: {e}", dir.join(TMP).display()))?;
    Ok((state, Journal::start(file, lock, dir.to_path_buf(), bytes.len() as u64, compact_min)))
}

/// A directory with files warren did not write is someone else's: refused, never reset.
fn check_foreign(dir: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read data directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if ![LOG, LOCK, TMP].iter().any(|n| name == *n) {
            return Err(format!(
                "{} is not warren's: the data directory {} holds files warren did not write (use an empty directory)",
                entry.path().display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn take_lock(path: &Path) -> Result<File, String> {
    use std::os::unix::io::AsRawFd;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "{} is locked: another warren broker is using this data directory",
            path.display()
        ));
    }
    Ok(file)
}

#[cfg(not(unix))]
fn take_lock(path: &Path) -> Result<File, String> {
    // No flock here: the directory is not protected from a second broker.
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn corrupt(log: &Path, at: usize, what: &str) -> String {
    format!(
        "{} is corrupt at byte {at} ({what}): refusing to start rather than lose or invent messages",
        log.display()
    )
}

/// Read every record; a bad record at the very end is a write cut short by a crash (never
/// confirmed: dropped), anywhere else it is corruption.
fn replay(log: &Path, data: &[u8]) -> Result<Recovered, String> {
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return Err(format!("{} is not a warren data file (its header is not warren's)", log.display()));
    }
    let mut state = Recovered::default();
    let mut at = MAGIC.len();
    while at < data.len() {
        let rest = &data[at..];
        match record::frame(rest) {
            Framed::Whole { payload, len } if !payload.is_empty() => {
                let r = record::decode(payload)
                    .ok_or_else(|| corrupt(log, at, "a record warren does not write"))?;
                state.apply(r);
                at += len;
            }
            _ if torn_tail(rest) => break,
            _ => return Err(corrupt(log, at, "checksum mismatch")),
        }
    }
    state.messages.retain(|mid, _| state.contents.values().any(|c| c.contains_key(mid)));
    Ok(state)
}

/// Whether a bad record is the file's torn end: its claimed length runs past the end, or what
/// is left is zeros (a file extended but not written before a power cut).
fn torn_tail(rest: &[u8]) -> bool {
    if rest.len() < 8 || rest.iter().all(|&b| b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    8 + len >= rest.len()
}

impl Recovered {
    fn apply(&mut self, r: Record) {
        match r {
            Record::Exchange { name, kind, auto_delete, internal } => {
                self.exchanges.insert(name, (kind, auto_delete, internal));
            }
            Record::ExchangeDeleted { name } => {
                self.exchanges.remove(&name);
                self.bindings.retain(|b| b.0 != name);
            }
            Record::Queue { qid, name, auto_delete, args } => {
                self.next_qid = self.next_qid.max(qid + 1);
                self.queues.insert(qid, QueueDef { qid, name, auto_delete, args });
            }
            Record::QueueDeleted { qid } => {
                self.queues.remove(&qid);
                self.contents.remove(&qid);
                let gone: Vec<_> = self.bindings.iter().filter(|b| b.1 == qid).cloned().collect();
                self.unbound(gone);
            }
            Record::Bind { exchange, qid, key, args } => {
                self.bindings.insert((exchange, qid, key, args));
            }
            Record::Unbind { exchange, qid, key, args } => self.unbound(vec![(exchange, qid, key, args)]),
            Record::Message { mid, exchange, routing_key, properties, body } => {
                self.next_mid = self.next_mid.max(mid + 1);
                self.messages.insert(mid, StoredMessage { exchange, routing_key, properties, body });
            }
            Record::Enqueued { qid, mid } => {
                self.contents.entry(qid).or_default().insert(mid, false);
            }
            Record::Delivered { qid, mid } => {
                if let Some(d) = self.contents.get_mut(&qid).and_then(|c| c.get_mut(&mid)) {
                    *d = true;
                }
            }
            Record::Removed { qid, mid } => {
                if let Some(c) = self.contents.get_mut(&qid) {
                    c.remove(&mid);
                }
            }
        }
    }

    /// Bindings gone; an auto-delete exchange that lost its last one goes too, as the core
    /// deletes it (exchange.rs `unbind`).
    fn unbound(&mut self, gone: Vec<(String, u32, String, Vec<u8>)>) {
        for b in gone {
            if self.bindings.remove(&b)
                && !self.bindings.iter().any(|o| o.0 == b.0)
                && self.exchanges.get(&b.0).is_some_and(|x| x.1)
            {
                self.exchanges.remove(&b.0);
            }
        }
    }

    /// The records that rebuild this state.
    pub(super) fn records(&self, out: &mut Vec<u8>) {
        for (name, (kind, auto_delete, internal)) in &self.exchanges {
            let r = Record::Exchange {
                name: name.clone(),
                kind: kind.clone(),
                auto_delete: *auto_delete,
                internal: *internal,
            };
            record::write(out, &r);
        }
        for q in self.queues.values() {
            let r = Record::Queue {
                qid: q.qid,
                name: q.name.clone(),
                auto_delete: q.auto_delete,
                args: q.args.clone(),
            };
            record::write(out, &r);
        }
        for (exchange, qid, key, args) in &self.bindings {
            let r =
                Record::Bind { exchange: exchange.clone(), qid: *qid, key: key.clone(), args: args.clone() };
            record::write(out, &r);
        }
        let mut mids: Vec<&u64> = self.messages.keys().collect();
        mids.sort();
        for mid in mids {
            let m = &self.messages[mid];
            let r = Record::Message {
                mid: *mid,
                exchange: m.exchange.clone(),
                routing_key: m.routing_key.clone(),
                properties: m.properties.clone(),
                body: m.body.clone(),
            };
            record::write(out, &r);
        }
        for (qid, c) in &self.contents {
            for (mid, delivered) in c {
                record::write(out, &Record::Enqueued { qid: *qid, mid: *mid });
                if *delivered {
                    record::write(out, &Record::Delivered { qid: *qid, mid: *mid });
                }
            }
        }
    }
}

/// Write a whole log (`bytes`: the magic and the live records) beside the old one, fsync it,
/// and rename it over the old: a crash at any point leaves one whole log. Returns the new log
/// opened for appending.
pub fn replace_log(dir: &Path, bytes: &[u8]) -> std::io::Result<File> {
    let (tmp, log): (PathBuf, PathBuf) = (dir.join(TMP), dir.join(LOG));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &log)?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    OpenOptions::new().append(true).open(&log)
}
