//! The log's compaction while the broker runs: a snapshot of everything live, taken under the
//! core's lock (so it agrees with every record appended before it), handed to the journal to
//! replace the log with (store/mod.rs `Journal::compact`).

use std::collections::HashSet;

use super::*;
use crate::store::{MAGIC, Record, Ticket, write_record};

impl Core {
    pub(super) fn compact_store(&mut self) {
        let Some(journal) = self.store.clone() else { return };
        let mut out = MAGIC.to_vec();
        let built_in = |name: &str| BUILT_IN_EXCHANGES.iter().any(|(n, _)| *n == name);
        for (name, x) in &self.exchanges {
            if x.durable && !built_in(name) {
                let kind = x.kind.name().to_string();
                let r = Record::Exchange {
                    name: name.clone(),
                    kind,
                    auto_delete: x.auto_delete,
                    internal: x.internal,
                };
                write_record(&mut out, &r);
            }
        }
        for (name, q) in &self.queues {
            if let Some(qid) = q.store_id {
                let args = q.stored_args.clone();
                write_record(
                    &mut out,
                    &Record::Queue { qid, name: name.clone(), auto_delete: q.auto_delete, args },
                );
            }
        }
        for (name, x) in self.exchanges.iter().filter(|(_, x)| x.durable) {
            for b in &x.bindings {
                if let Some(qid) = self.queues.get(&b.queue).and_then(|q| q.store_id) {
                    let (exchange, key, args) = (name.clone(), b.key.clone(), b.args().to_vec());
                    write_record(&mut out, &Record::Bind { exchange, qid, key, args });
                }
            }
        }
        let mut written = HashSet::new();
        for q in self.queues.values().filter(|q| q.store_id.is_some()) {
            for r in q.ready.iter() {
                if let Some(t) = &r.stored {
                    kept(&mut out, &mut written, t, &r.msg);
                }
            }
        }
        for u in self.channels.values().flat_map(|c| c.unacked.values()) {
            let Some(t) = &u.ready.stored else { continue };
            if self.queues.get(&u.queue).is_some_and(|q| q.store_id == Some(t.qid)) {
                kept(&mut out, &mut written, t, &u.ready.msg);
            }
        }
        journal.compact(out);
    }
}

/// The records of one message kept in one queue (its body once, whichever queues hold it).
fn kept(out: &mut Vec<u8>, written: &mut HashSet<u64>, t: &Ticket, msg: &Message) {
    if written.insert(t.mid) {
        let r = Record::Message {
            mid: t.mid,
            exchange: msg.exchange.to_string(),
            routing_key: msg.routing_key.to_string(),
            properties: msg.properties.clone(),
            body: msg.body.clone(),
        };
        write_record(out, &r);
    }
    write_record(out, &Record::Enqueued { qid: t.qid, mid: t.mid });
    if t.delivered {
        write_record(out, &Record::Delivered { qid: t.qid, mid: t.mid });
    }
}
