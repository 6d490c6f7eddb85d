//! A queue's consumers, as RabbitMQ's `rabbit_queue_consumers` keeps them: one round-robin
//! ring per consumer priority (`x-priority`), highest first. A message goes to the head of the
//! highest ring that has anyone in it, who then moves to its ring's tail; a consumer that cannot
//! take a message (prefetch full, flow, back-pressure) leaves its ring as "blocked" and rejoins
//! the tail when it can take again. So lower priorities get messages only while every higher
//! consumer is blocked. With every consumer at the default priority there is one ring, and
//! dispatch is the plain rotation.
//!
//! Single active consumer (`x-single-active-consumer`): only the active consumer is in a ring;
//! the others stand by. When the active one leaves, the standby with the highest priority
//! (the earliest registered among equals) takes over: RabbitMQ's classic queues pick it so
//! (`rabbit_queue_consumers:get_consumer`), and so do quorum queues since 4.0. Quorum queues
//! since 4.0 also hand over to a higher-priority consumer that registers later, once the active
//! one has no unacked messages left: until then the active one gets nothing new ("quiescing").
//! RabbitMQ 3.10's quorum queues did neither (registration order only); this follows 4.x.

use std::collections::VecDeque;

use amq_protocol::types::{AMQPValue, FieldTable};

use super::args::{integer, type_name};
use crate::{AmqpError, ConsumerKey};

/// What basic.consume's arguments ask for; other arguments are ignored, as RabbitMQ ignores
/// them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsumeArgs {
    /// x-priority: higher first; any integer (RabbitMQ takes a long), 0 by default.
    pub priority: i64,
    /// x-consumer-timeout in ms (RabbitMQ 3.12+; 3.10 ignores it).
    pub timeout_ms: Option<u64>,
}

impl ConsumeArgs {
    /// RabbitMQ's check of x-priority (3.10: `invalid arg 'x-priority' for queue 'Q' in vhost
    /// '/': "expected integer, got longstr"`, 406); x-consumer-timeout is checked the same way.
    pub fn parse(queue: &str, args: &FieldTable) -> Result<Self, AmqpError> {
        let mut out = Self::default();
        let number = |key: &str, v: &AMQPValue| {
            integer(v).ok_or_else(|| {
                AmqpError::channel(
                    406,
                    format!(
                        "PRECONDITION_FAILED - invalid arg '{key}' for queue '{queue}' in vhost '/': \
                         \"expected integer, got {}\"",
                        type_name(v)
                    ),
                )
            })
        };
        if let Some(v) = args.inner().get("x-priority") {
            out.priority = number("x-priority", v)?.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        }
        if let Some(v) = args.inner().get("x-consumer-timeout") {
            // A negative timeout counts as none rather than as "at once".
            out.timeout_ms = u64::try_from(number("x-consumer-timeout", v)?).ok();
        }
        Ok(out)
    }
}

/// The consumers of one priority, in ring order.
#[derive(Debug)]
struct Level {
    priority: i64,
    ring: VecDeque<ConsumerKey>,
}

/// A consumer waiting its turn under single active consumer.
#[derive(Debug)]
struct Standby {
    key: ConsumerKey,
    priority: i64,
    /// Registration order, for "earliest first" among equal priorities.
    seq: u64,
}

#[derive(Debug, Default)]
pub struct Consumers {
    /// Rings by priority, highest first.
    levels: Vec<Level>,
    /// Consumers skipped because they could not take a message, with their priority.
    blocked: Vec<(ConsumerKey, i64)>,
    /// Single active consumer: the others, waiting (empty otherwise).
    standby: Vec<Standby>,
    single_active: bool,
    /// Quorum single active consumer (RabbitMQ 4.x): a higher-priority consumer waits for the
    /// active one's unacked messages to drain, then takes over.
    takes_over_by_priority: bool,
    /// The active consumer and its registration order and priority (single active only).
    active: Option<(ConsumerKey, i64, u64)>,
    /// The active consumer gets nothing new: a higher-priority one waits to take over.
    quiescing: bool,
    next_seq: u64,
}

impl Consumers {
    pub fn new(single_active: bool, takes_over_by_priority: bool) -> Self {
        Self { single_active, takes_over_by_priority, ..Self::default() }
    }

    /// Every consumer, standing by or not.
    pub fn len(&self) -> usize {
        self.levels.iter().map(|l| l.ring.len()).sum::<usize>() + self.blocked.len() + self.standby.len()
    }

    /// Every consumer's key.
    pub fn keys(&self) -> impl Iterator<Item = &ConsumerKey> {
        self.levels
            .iter()
            .flat_map(|l| l.ring.iter())
            .chain(self.blocked.iter().map(|(k, _)| k))
            .chain(self.standby.iter().map(|s| &s.key))
    }

    /// Register a consumer: into its ring, or, under single active consumer when another is
    /// active, to stand by.
    pub fn add(&mut self, key: ConsumerKey, priority: i64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.single_active {
            self.push_back(key, priority);
            return;
        }
        match &self.active {
            None => self.activate(key, priority, seq),
            Some((_, active_priority, _)) => {
                if self.takes_over_by_priority && priority > *active_priority {
                    self.quiescing = true;
                }
                self.standby.push(Standby { key, priority, seq });
            }
        }
    }

    /// Take a consumer away; under single active consumer, the next one takes over if it was
    /// the active one.
    pub fn remove(&mut self, key: &ConsumerKey) {
        for l in &mut self.levels {
            l.ring.retain(|k| k != key);
        }
        self.blocked.retain(|(k, _)| k != key);
        self.standby.retain(|s| s.key != *key);
        self.levels.retain(|l| !l.ring.is_empty() || self.blocked.iter().any(|(_, p)| *p == l.priority));
        if self.active.as_ref().is_some_and(|(k, _, _)| k == key) {
            self.active = None;
            self.quiescing = false;
            self.promote();
        } else if self.quiescing && !self.standby.iter().any(|s| self.outranks_active(s)) {
            // The consumer that was to take over left before it could.
            self.quiescing = false;
        }
    }

    /// The consumer the next message is offered to, and its priority; it must be given back
    /// with `push_back` (it took one) or `block` (it could not).
    pub fn pop(&mut self) -> Option<(ConsumerKey, i64)> {
        if self.quiescing {
            return None;
        }
        self.levels.iter_mut().find_map(|l| l.ring.pop_front().map(|k| (k, l.priority)))
    }

    /// Back to the tail of its ring.
    pub fn push_back(&mut self, key: ConsumerKey, priority: i64) {
        // Highest first: the common case (one level) finds it at once.
        match self.levels.iter().position(|l| l.priority <= priority) {
            Some(i) if self.levels[i].priority == priority => self.levels[i].ring.push_back(key),
            at => {
                let level = Level { priority, ring: VecDeque::from([key]) };
                self.levels.insert(at.unwrap_or(self.levels.len()), level);
            }
        }
    }

    /// Out of the rotation until `unblock`.
    pub fn block(&mut self, key: ConsumerKey, priority: i64) {
        self.blocked.push((key, priority));
    }

    /// Move a blocked consumer back to the tail of its ring.
    pub fn unblock(&mut self, key: &ConsumerKey) -> bool {
        match self.blocked.iter().position(|(k, _)| k == key) {
            Some(i) => {
                let (k, priority) = self.blocked.remove(i);
                self.push_back(k, priority);
                true
            }
            None => false,
        }
    }

    /// The active consumer waits to hand over (see `quiescing`).
    pub fn quiescing(&self) -> Option<&ConsumerKey> {
        self.active.as_ref().filter(|_| self.quiescing).map(|(k, _, _)| k)
    }

    /// The quiescing active consumer has drained: it stands by, the highest-priority one takes
    /// over.
    pub fn hand_over(&mut self) {
        let Some((key, priority, seq)) = self.active.take() else { return };
        self.quiescing = false;
        for l in &mut self.levels {
            l.ring.retain(|k| *k != key);
        }
        self.blocked.retain(|(k, _)| *k != key);
        self.standby.push(Standby { key, priority, seq });
        self.promote();
    }

    /// Whether this consumer stands by (single active consumer).
    #[cfg(test)]
    pub fn is_standby(&self, key: &ConsumerKey) -> bool {
        self.standby.iter().any(|s| s.key == *key)
    }

    fn activate(&mut self, key: ConsumerKey, priority: i64, seq: u64) {
        self.active = Some((key.clone(), priority, seq));
        self.push_back(key, priority);
    }

    /// The highest-priority standby, earliest registered among equals, becomes active.
    fn promote(&mut self) {
        let best = self
            .standby
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| a.priority.cmp(&b.priority).then(b.seq.cmp(&a.seq)))
            .map(|(i, _)| i);
        if let Some(i) = best {
            let s = self.standby.remove(i);
            self.activate(s.key, s.priority, s.seq);
        }
    }

    fn outranks_active(&self, s: &Standby) -> bool {
        self.active.as_ref().is_some_and(|(_, p, _)| s.priority > *p)
    }
}

#[cfg(test)]
#[path = "consumers_tests.rs"]
mod tests;
