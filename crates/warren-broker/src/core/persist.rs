//! The core's side of durability (store/): what it records as it changes, and how it is
//! rebuilt from a data directory at start. Without a data directory none of this runs: the
//! publish path checks one `Option`.

use amq_protocol::types::parsing::parse_field_table;

use super::*;
use crate::store::{Journal, Record, Recovered, Ticket};

/// A persistent message on its way into queues: its `mid` once its record is written (at the
/// first durable queue that takes it, so a message no durable queue takes costs nothing).
pub(super) struct Persist {
    journal: Arc<Journal>,
    mid: Option<u64>,
}

impl Drop for Core {
    /// Before its queues drop their tickets, which would record every message as gone.
    fn drop(&mut self) {
        if let Some(j) = &self.store {
            j.seal();
        }
    }
}

impl Core {
    /// Rebuild what `state` kept, then record from now on into `journal`. Delivered messages
    /// come back redelivered, as RabbitMQ's do.
    pub fn restore(&mut self, state: Recovered, journal: Arc<Journal>) {
        for (name, (kind, auto_delete, internal)) in &state.exchanges {
            let _ = self.exchange_declare(name, kind, false, true, *auto_delete, *internal);
        }
        let mut names = HashMap::new();
        for q in state.queues.values() {
            if self.queue_declare(0, &q.name, false, true, false, q.auto_delete, &q.args).is_ok() {
                let queue = self.queues.get_mut(&q.name).expect("declared");
                queue.store_id = Some(q.qid);
                queue.stored_args = q.args.clone();
                names.insert(q.qid, q.name.clone());
            }
        }
        for (exchange, qid, key, args) in &state.bindings {
            let Some(queue) = names.get(qid) else { continue };
            let table = if args.is_empty() {
                FieldTable::default()
            } else {
                match parse_field_table(args.as_slice()) {
                    Ok((_, t)) => t,
                    Err(_) => continue,
                }
            };
            let _ = self.queue_bind(0, queue, exchange, key, &table, true);
        }
        let mut shared: HashMap<u64, Arc<Message>> = HashMap::new();
        let mut contents: Vec<_> = state.contents.iter().collect();
        contents.sort_by_key(|(qid, _)| **qid);
        let mut stored = state.messages;
        for (qid, messages) in contents {
            let Some(queue) = names.get(qid) else { continue };
            for (mid, delivered) in messages {
                let msg = match shared.get(mid) {
                    Some(m) => Arc::clone(m),
                    None => {
                        let Some(m) = stored.remove(mid) else { continue };
                        let m = Message::new(m.exchange.into(), m.routing_key.into(), m.properties, m.body);
                        let m = Arc::new(m);
                        shared.insert(*mid, Arc::clone(&m));
                        m
                    }
                };
                let expiration = msg
                    .properties
                    .expiration()
                    .as_ref()
                    .and_then(|e| expiry::parse_expiration(e.as_str()).ok());
                let ticket = Ticket::new(*qid, *mid, *delivered, Arc::clone(&journal));
                self.next_seq += 1;
                let q = self.queues.get_mut(queue).expect("declared");
                let now = tokio::time::Instant::now();
                let expires = Core::expiry_for(q, expiration, now);
                q.ready.push(Ready {
                    seq: self.next_seq,
                    msg: Arc::clone(&msg),
                    redelivered: *delivered,
                    deliveries: u32::from(*delivered),
                    expires,
                    stored: Some(ticket),
                });
                self.held_bytes += msg.held;
            }
            self.arm_head(queue);
        }
        self.next_qid = state.next_qid;
        self.next_mid = state.next_mid;
        self.store = Some(journal);
    }

    pub(super) fn record(&self, r: impl FnOnce() -> Record) {
        if let Some(j) = &self.store {
            j.append(&r());
        }
    }

    /// Whether `msg` is to be kept (persistent, with a data directory), or why it is refused
    /// (the data directory cannot be written).
    pub(super) fn persist(&self, msg: &Message) -> Result<Option<Persist>, AmqpError> {
        let Some(j) = &self.store else { return Ok(None) };
        if *msg.properties.delivery_mode() != Some(2) {
            return Ok(None);
        }
        if let Some(why) = j.refusal() {
            return Err(AmqpError::refused(why));
        }
        Ok(Some(Persist { journal: Arc::clone(j), mid: None }))
    }

    /// The ticket for `msg` going into `queue` if that queue is durable, its message record
    /// written first if no queue took it before.
    pub(super) fn ticket(&mut self, queue: &str, msg: &Message, p: &mut Persist) -> Option<Box<Ticket>> {
        let qid = self.queues.get(queue)?.store_id?;
        let mid = match p.mid {
            Some(mid) => mid,
            None => {
                let mid = self.next_mid;
                self.next_mid += 1;
                p.journal.append(&Record::Message {
                    mid,
                    exchange: msg.exchange.to_string(),
                    routing_key: msg.routing_key.to_string(),
                    properties: msg.properties.clone(),
                    body: msg.body.clone(),
                });
                p.mid = Some(mid);
                mid
            }
        };
        p.journal.append(&Record::Enqueued { qid, mid });
        self.stored_last = true;
        Some(Ticket::new(qid, mid, false, Arc::clone(&p.journal)))
    }

    /// After a publish: if it went to disk, its confirm goes out once it is synced (true);
    /// otherwise the caller confirms now (false).
    pub fn confirm_after_sync(&mut self, out: &ConnOut, ch: u16, seq: u64) -> bool {
        if !std::mem::take(&mut self.stored_last) {
            return false;
        }
        match &self.store {
            Some(j) => {
                j.confirm_after_sync(out, ch, seq);
                true
            }
            None => false,
        }
    }

    /// A new durable queue's id, for its records.
    pub(super) fn durable_queue(&mut self, name: &str, auto_delete: bool, args: &FieldTable) {
        if self.store.is_none() {
            return;
        }
        let qid = self.next_qid;
        self.next_qid += 1;
        if let Some(q) = self.queues.get_mut(name) {
            q.store_id = Some(qid);
            q.stored_args = args.clone();
        }
        self.record(|| Record::Queue { qid, name: name.to_string(), auto_delete, args: args.clone() });
    }
}
