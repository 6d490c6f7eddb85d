//! A queue: its ready messages (ready.rs) and its consumers (consumers.rs: the round-robin
//! rings by consumer priority, and single active consumer).

use super::{ConnId, ConsumerKey};

mod args;
mod consumers;
mod ready;

#[allow(unused_imports)] // DEFAULT_DELIVERY_LIMIT: for the README's and tests' sake
pub use args::{DEFAULT_DELIVERY_LIMIT, Overflow, QueueArgs, QueueType, integer, string, type_name};
pub use consumers::{ConsumeArgs, Consumers};
pub use ready::{Ready, ReadyStore};

#[derive(Debug)]
pub struct Queue {
    pub durable: bool,
    pub exclusive_owner: Option<ConnId>,
    pub auto_delete: bool,
    /// Its checked x-arguments (the type among them).
    pub args: QueueArgs,
    pub ready: ReadyStore,
    pub consumers: Consumers,
    /// An exclusive consumer (basic.consume exclusive=true) shuts others out.
    pub exclusive_consumer: bool,
    /// Auto-delete queues go when their last consumer goes, not before their first.
    pub had_consumers: bool,
    /// When the expiry timer for its head is due, if one is scheduled (core/expiry.rs).
    pub head_timer: Option<tokio::time::Instant>,
    /// Counts uses (declare, consume, get, last consumer gone) for x-expires: a timer set at a
    /// use applies only if no use came after it.
    pub uses: u64,
    /// Its id in the data directory's log, if it is kept there (durable, not exclusive).
    pub store_id: Option<u32>,
    /// Its arguments as declared, kept for the log's compaction (only with a `store_id`).
    pub stored_args: amq_protocol::types::FieldTable,
}

impl Queue {
    pub fn new(durable: bool, exclusive_owner: Option<ConnId>, auto_delete: bool, args: QueueArgs) -> Self {
        Self {
            durable,
            exclusive_owner,
            auto_delete,
            ready: ReadyStore::new(args.max_priority),
            consumers: Consumers::new(args.single_active_consumer, args.kind == QueueType::Quorum),
            args,
            exclusive_consumer: false,
            had_consumers: false,
            head_timer: None,
            uses: 0,
            store_id: None,
            stored_args: Default::default(),
        }
    }

    pub fn kind(&self) -> QueueType {
        self.args.kind
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    pub fn add_consumer(&mut self, key: ConsumerKey, priority: i64, exclusive: bool) {
        self.consumers.add(key, priority);
        self.exclusive_consumer |= exclusive;
        self.had_consumers = true;
    }

    pub fn remove_consumer(&mut self, key: &ConsumerKey) {
        self.consumers.remove(key);
        if self.consumer_count() == 0 {
            self.exclusive_consumer = false;
        }
    }

    /// Move a blocked consumer back to the tail of its ring.
    pub fn unblock(&mut self, key: &ConsumerKey) -> bool {
        self.consumers.unblock(key)
    }
}
