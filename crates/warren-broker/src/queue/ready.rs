//! A queue's ready messages: in publish order, or, for a priority queue (x-max-priority), one
//! FIFO per priority level, highest first. A requeued message goes back to its place by publish
//! order within its level, as RabbitMQ puts it back where it was.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;

use crate::Message;

/// A ready message. `seq` is its place in publish order, kept so that a requeued message goes
/// back where it was.
#[derive(Debug)]
pub struct Ready {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// How often it was delivered before (quorum queues report it as x-delivery-count).
    pub deliveries: u32,
    /// When it expires (x-message-ttl or its `expiration`, the sooner), fixed when it was
    /// enqueued: a requeued message keeps it.
    pub expires: Option<Instant>,
    /// Its place in the data directory's log (a persistent message in a durable queue): when
    /// the message leaves the queue for good, dropping it records that.
    pub stored: Option<Box<crate::store::Ticket>>,
}

#[derive(Debug)]
pub struct ReadyStore {
    /// Index = priority level; one level for a queue without x-max-priority.
    levels: Vec<VecDeque<Ready>>,
    len: usize,
    bytes: usize,
    /// Body bytes of the ready messages: what x-max-length-bytes limits, as RabbitMQ counts.
    body_bytes: usize,
    /// Some ready message may have an expiry: queues without TTL never look for one.
    expiring: bool,
}

impl ReadyStore {
    /// `max_priority`: the queue's x-max-priority, if it has one.
    pub fn new(max_priority: Option<u8>) -> Self {
        let n = max_priority.map_or(1, |m| usize::from(m) + 1);
        Self {
            levels: (0..n).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
            body_bytes: 0,
            expiring: false,
        }
    }

    /// A message's level: its priority property, capped at the queue's maximum (as RabbitMQ
    /// treats a higher priority as the maximum); none counts as 0.
    fn level(&self, r: &Ready) -> usize {
        if self.levels.len() == 1 {
            return 0;
        }
        usize::from(r.msg.properties.priority().unwrap_or(0)).min(self.levels.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (`Message::held`) by the ready messages.
    #[cfg_attr(not(test), allow(dead_code))] // the core counts them in its held bytes
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Body bytes of the ready messages (x-max-length-bytes counts these).
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }

    /// Whether a ready message may have an expiry (false: none has).
    pub fn may_expire(&self) -> bool {
        self.expiring
    }

    fn count_in(&mut self, r: &Ready) {
        self.len += 1;
        self.bytes += r.msg.held;
        self.body_bytes += r.msg.body.len();
        self.expiring |= r.expires.is_some();
    }

    pub fn push(&mut self, r: Ready) {
        let level = self.level(&r);
        self.count_in(&r);
        self.levels[level].push_back(r);
    }

    /// The message the next delivery would take.
    pub fn front(&self) -> Option<&Ready> {
        self.levels.iter().rev().find_map(|l| l.front())
    }

    pub fn pop(&mut self) -> Option<Ready> {
        let r = self.levels.iter_mut().rev().find_map(VecDeque::pop_front)?;
        self.len -= 1;
        self.bytes -= r.msg.held;
        self.body_bytes -= r.msg.body.len();
        if self.len == 0 {
            self.expiring = false;
        }
        Some(r)
    }

    /// Put a message back at its original position (by publish order), flagged redelivered.
    pub fn requeue(&mut self, mut r: Ready) {
        r.redelivered = true;
        let level = self.level(&r);
        self.count_in(&r);
        let lane = &mut self.levels[level];
        let at = lane.partition_point(|x| x.seq < r.seq);
        lane.insert(at, r);
    }

    /// Drop every ready message; returns how many and their bytes.
    pub fn purge(&mut self) -> (usize, usize) {
        let out = (self.len, self.bytes);
        self.levels.iter_mut().for_each(VecDeque::clear);
        self.len = 0;
        self.bytes = 0;
        self.body_bytes = 0;
        self.expiring = false;
        out
    }

    /// Ready messages in delivery order.
    pub fn iter(&self) -> impl Iterator<Item = &Ready> {
        self.levels.iter().rev().flatten()
    }
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;

    use super::*;

    fn msg(seq: u64, priority: Option<u8>) -> Ready {
        let mut p = BasicProperties::default();
        if let Some(n) = priority {
            p = p.with_priority(n);
        }
        let m = Message::new("".into(), "q".into(), p, vec![0; 3]);
        Ready { seq, msg: Arc::new(m), redelivered: false, deliveries: 0, expires: None, stored: None }
    }

    fn order(s: &ReadyStore) -> Vec<(u64, bool)> {
        s.iter().map(|r| (r.seq, r.redelivered)).collect()
    }

    #[test]
    fn requeued_messages_go_back_to_their_place() {
        let mut s = ReadyStore::new(None);
        for seq in [1, 2, 3, 4] {
            s.push(msg(seq, None));
        }
        let one = s.pop().unwrap();
        let two = s.pop().unwrap();
        s.requeue(two);
        s.requeue(one);
        assert_eq!(order(&s), [(1, true), (2, true), (3, false), (4, false)]);
        assert_eq!(s.bytes(), 4 * s.front().unwrap().msg.held);
    }

    #[test]
    fn a_priority_queue_delivers_the_highest_priority_first_capped_at_its_maximum() {
        let mut s = ReadyStore::new(Some(5));
        for (seq, p) in [(1, None), (2, Some(3)), (3, Some(9)), (4, Some(3)), (5, Some(0))] {
            s.push(msg(seq, p));
        }
        // 9 counts as 5; no priority as 0; FIFO within a level.
        let got: Vec<u64> = std::iter::from_fn(|| s.pop()).map(|r| r.seq).collect();
        assert_eq!(got, [3, 2, 4, 1, 5]);
        assert_eq!((s.len(), s.bytes()), (0, 0));
    }

    #[test]
    fn without_x_max_priority_the_priority_property_is_ignored() {
        let mut s = ReadyStore::new(None);
        s.push(msg(1, Some(1)));
        s.push(msg(2, Some(9)));
        assert_eq!(s.pop().unwrap().seq, 1);
    }
}
