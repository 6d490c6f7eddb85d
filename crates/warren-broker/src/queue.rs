//! A classic queue: ready messages in publish order, and the consumer ring that RabbitMQ's
//! `rabbit_queue_consumers` keeps: deliver to the head, move it to the tail; a consumer that
//! cannot take a message (prefetch full) leaves the ring as "blocked" and rejoins at the tail
//! when it can take again.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{ConnId, ConsumerKey, Message};

/// `x-queue-type`: both dispatch the same way; quorum adds `x-delivery-count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    Classic,
    Quorum,
}

impl QueueType {
    /// As `x-queue-type` names it.
    pub fn name(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

/// A ready message. `seq` is its place in publish order, kept so that a requeued message goes
/// back where it was.
#[derive(Debug, Clone)]
pub struct Ready {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// How often it was delivered before (quorum queues report it as x-delivery-count).
    pub deliveries: u32,
}

#[derive(Debug)]
pub struct Queue {
    pub durable: bool,
    pub exclusive_owner: Option<ConnId>,
    pub auto_delete: bool,
    pub kind: QueueType,
    pub ready: VecDeque<Ready>,
    pub ready_bytes: usize,
    /// Consumers that can be offered a message, head first.
    pub ring: VecDeque<ConsumerKey>,
    /// Consumers skipped because they could not take a message.
    pub blocked: Vec<ConsumerKey>,
    /// An exclusive consumer (basic.consume exclusive=true) shuts others out.
    pub exclusive_consumer: bool,
    /// Auto-delete queues go when their last consumer goes, not before their first.
    pub had_consumers: bool,
}

impl Queue {
    pub fn new(durable: bool, exclusive_owner: Option<ConnId>, auto_delete: bool, kind: QueueType) -> Self {
        Self {
            durable,
            exclusive_owner,
            auto_delete,
            kind,
            ready: VecDeque::new(),
            ready_bytes: 0,
            ring: VecDeque::new(),
            blocked: Vec::new(),
            exclusive_consumer: false,
            had_consumers: false,
        }
    }

    pub fn consumer_count(&self) -> usize {
        self.ring.len() + self.blocked.len()
    }

    pub fn push(&mut self, r: Ready) {
        self.ready_bytes += r.msg.held;
        self.ready.push_back(r);
    }

    pub fn pop(&mut self) -> Option<Ready> {
        let r = self.ready.pop_front()?;
        self.ready_bytes -= r.msg.held;
        Some(r)
    }

    /// Put a message back at its original position (by publish order), flagged redelivered.
    pub fn requeue(&mut self, mut r: Ready) {
        r.redelivered = true;
        self.ready_bytes += r.msg.held;
        let at = self.ready.partition_point(|x| x.seq < r.seq);
        self.ready.insert(at, r);
    }

    /// Drop every ready message; returns how many and their bytes.
    pub fn purge(&mut self) -> (usize, usize) {
        let n = self.ready.len();
        let bytes = self.ready_bytes;
        self.ready.clear();
        self.ready_bytes = 0;
        (n, bytes)
    }

    pub fn add_consumer(&mut self, key: ConsumerKey, exclusive: bool) {
        self.ring.push_back(key);
        self.exclusive_consumer |= exclusive;
        self.had_consumers = true;
    }

    pub fn remove_consumer(&mut self, key: &ConsumerKey) {
        self.ring.retain(|k| k != key);
        self.blocked.retain(|k| k != key);
        if self.consumer_count() == 0 {
            self.exclusive_consumer = false;
        }
    }

    /// Move a blocked consumer back to the tail of the ring.
    pub fn unblock(&mut self, key: &ConsumerKey) -> bool {
        match self.blocked.iter().position(|k| k == key) {
            Some(i) => {
                let k = self.blocked.remove(i);
                self.ring.push_back(k);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> Ready {
        let m = Message::new("".into(), "q".into(), Default::default(), vec![0; 3]);
        Ready { seq, msg: Arc::new(m), redelivered: false, deliveries: 0 }
    }

    #[test]
    fn requeued_messages_go_back_to_their_place() {
        let mut q = Queue::new(false, None, false, QueueType::Classic);
        for seq in [1, 2, 3, 4] {
            q.push(msg(seq));
        }
        let one = q.pop().unwrap();
        let two = q.pop().unwrap();
        q.requeue(two);
        q.requeue(one);
        let order: Vec<(u64, bool)> = q.ready.iter().map(|r| (r.seq, r.redelivered)).collect();
        assert_eq!(order, [(1, true), (2, true), (3, false), (4, false)]);
        assert_eq!(q.ready_bytes, 4 * q.ready[0].msg.held);
    }
}
