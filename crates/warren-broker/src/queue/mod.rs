//! A classic queue: ready messages in publish order, and the consumer ring that RabbitMQ's
//! `rabbit_queue_consumers` keeps: deliver to the head, move it to the tail; a consumer that
//! cannot take a message (prefetch full) leaves the ring as "blocked" and rejoins at the tail
//! when it can take again.

use std::collections::VecDeque;

use super::{ConnId, ConsumerKey};

mod args;
mod ready;

#[allow(unused_imports)] // DEFAULT_DELIVERY_LIMIT: for the README's and tests' sake
pub use args::{DEFAULT_DELIVERY_LIMIT, Overflow, QueueArgs, QueueType, integer, string};
pub use ready::{Ready, ReadyStore};

#[derive(Debug)]
pub struct Queue {
    pub durable: bool,
    pub exclusive_owner: Option<ConnId>,
    pub auto_delete: bool,
    /// Its checked x-arguments (the type among them).
    pub args: QueueArgs,
    pub ready: ReadyStore,
    /// Consumers that can be offered a message, head first.
    pub ring: VecDeque<ConsumerKey>,
    /// Consumers skipped because they could not take a message.
    pub blocked: Vec<ConsumerKey>,
    /// An exclusive consumer (basic.consume exclusive=true) shuts others out.
    pub exclusive_consumer: bool,
    /// Auto-delete queues go when their last consumer goes, not before their first.
    pub had_consumers: bool,
    /// When the expiry timer for its head is due, if one is scheduled (core/expiry.rs).
    pub head_timer: Option<tokio::time::Instant>,
    /// Counts uses (declare, consume, get, last consumer gone) for x-expires: a timer set at a
    /// use applies only if no use came after it.
    pub uses: u64,
}

impl Queue {
    pub fn new(durable: bool, exclusive_owner: Option<ConnId>, auto_delete: bool, args: QueueArgs) -> Self {
        Self {
            durable,
            exclusive_owner,
            auto_delete,
            ready: ReadyStore::new(args.max_priority),
            args,
            ring: VecDeque::new(),
            blocked: Vec::new(),
            exclusive_consumer: false,
            had_consumers: false,
            head_timer: None,
            uses: 0,
        }
    }

    pub fn kind(&self) -> QueueType {
        self.args.kind
    }

    pub fn consumer_count(&self) -> usize {
        self.ring.len() + self.blocked.len()
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
