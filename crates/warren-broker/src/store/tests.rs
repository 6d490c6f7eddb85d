//! The log on disk: what recovery keeps, drops and refuses.

use std::path::PathBuf;

use amq_protocol::protocol::BasicProperties;

use super::record::{self, MAGIC, Record};
use super::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn log_of(records: &[Record]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for r in records {
        record::write(&mut bytes, r);
    }
    bytes
}

fn message(mid: u64) -> Record {
    let properties = BasicProperties::default().with_delivery_mode(2);
    Record::Message { mid, exchange: "".into(), routing_key: "q".into(), properties, body: vec![mid as u8] }
}

fn queue(qid: u32) -> Record {
    Record::Queue { qid, name: format!("q{qid}"), auto_delete: false, args: Default::default() }
}

fn recovered(d: &std::path::Path) -> Result<Recovered, String> {
    let (state, journal) = open(d, 1 << 20)?;
    journal.close();
    Ok(state)
}

#[test]
fn acked_messages_deleted_queues_and_their_bindings_do_not_come_back() {
    let d = dir("replay");
    let records = [
        Record::Exchange { name: "x".into(), kind: "direct".into(), auto_delete: false, internal: false },
        queue(0),
        queue(1),
        Record::Bind { exchange: "x".into(), qid: 0, key: "k".into(), args: vec![] },
        Record::Bind { exchange: "x".into(), qid: 1, key: "k".into(), args: vec![] },
        message(0),
        Record::Enqueued { qid: 0, mid: 0 },
        Record::Enqueued { qid: 1, mid: 0 },
        message(1),
        Record::Enqueued { qid: 0, mid: 1 },
        Record::Delivered { qid: 0, mid: 1 },
        message(2),
        Record::Enqueued { qid: 0, mid: 2 },
        Record::Removed { qid: 0, mid: 0 },
        Record::QueueDeleted { qid: 1 },
    ];
    std::fs::write(d.join("warren.log"), log_of(&records)).unwrap();
    for _ in 0..2 {
        // Twice: the compacted log recovers the same.
        let s = recovered(&d).unwrap();
        assert_eq!(s.queues.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(s.bindings.len(), 1);
        let c: Vec<(u64, bool)> = s.contents[&0].iter().map(|(m, d)| (*m, *d)).collect();
        assert_eq!(c, [(1, true), (2, false)]);
        let mut mids: Vec<u64> = s.messages.keys().copied().collect();
        mids.sort();
        assert_eq!(mids, [1, 2], "message 0 is in no queue any more");
        assert_eq!(s.next_mid, 3, "new messages come after the kept ones");
    }
}

#[test]
fn a_torn_last_record_is_dropped_and_a_corrupt_middle_refused_naming_the_file() {
    let d = dir("torn");
    let mut bytes = log_of(&[queue(0), message(0), Record::Enqueued { qid: 0, mid: 0 }]);
    let whole = bytes.len();
    record::write(&mut bytes, &message(1));
    bytes.truncate(bytes.len() - 3);
    std::fs::write(d.join("warren.log"), &bytes).unwrap();
    let s = recovered(&d).unwrap();
    assert_eq!(s.messages.len(), 1);

    let mut bytes = log_of(&[queue(0), message(0), Record::Enqueued { qid: 0, mid: 0 }]);
    bytes[whole - 30] ^= 0x40; // inside the message record, with a record after it
    std::fs::write(d.join("warren.log"), &bytes).unwrap();
    let e = recovered(&d).err().expect("refused");
    assert!(e.contains("warren.log is corrupt at byte") && e.contains("checksum"), "{e}");
    assert_eq!(e.lines().count(), 1);
}

#[test]
fn a_foreign_directory_or_file_is_refused_and_a_locked_one_too() {
    let d = dir("foreign");
    std::fs::write(d.join("notes.txt"), b"mine").unwrap();
    let e = recovered(&d).err().expect("refused");
    assert!(e.contains("notes.txt is not warren's"), "{e}");

    let d = dir("header");
    std::fs::write(d.join("warren.log"), b"SQLite format 3\0 and more").unwrap();
    let e = recovered(&d).err().expect("refused");
    assert!(e.contains("warren.log is not a warren data file"), "{e}");

    let d = dir("locked");
    let (_, journal) = open(&d, 1 << 20).unwrap();
    let e = open(&d, 1 << 20).err().expect("locked");
    assert!(e.contains("lock is locked: another warren broker"), "{e}");
    journal.close();
    assert!(open(&d, 1 << 20).is_ok(), "closing releases the lock");
}

#[test]
fn a_write_that_fails_nacks_its_confirms_and_refuses_persistent_messages_from_then_on() {
    let d = dir("readonly");
    let path = d.join("warren.log");
    std::fs::write(&path, MAGIC).unwrap();
    // A log opened read-only: every write fails, as on a full or broken disk.
    let log = std::fs::File::open(&path).unwrap();
    let lock = std::fs::File::create(d.join("lock")).unwrap();
    let journal = Journal::start(log, lock, d.clone(), 0, 1 << 20);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = crate::ConnOut { tx, shared: Default::default() };
    journal.append(&message(0));
    journal.confirm_after_sync(&out, 1, 7);
    let Some(Out::Frame(frame)) = rx.blocking_recv() else { panic!("a frame") };
    let text = format!("{frame:?}");
    assert!(text.contains("Nack") && text.contains("delivery_tag: 7"), "{text}");
    let why = journal.refusal().expect("refused from now on");
    assert!(why.starts_with("the data directory cannot be written ("), "{why}");
    // Later confirms are nacked at once.
    journal.confirm_after_sync(&out, 1, 8);
    let Some(Out::Frame(frame)) = rx.blocking_recv() else { panic!("a frame") };
    assert!(format!("{frame:?}").contains("Nack"));
    journal.close();
}
