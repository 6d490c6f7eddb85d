//! The broker's shared state and every operation on it: exchanges, queues, bindings, channels'
//! unacked deliveries and consumers. Connections call in with the lock held briefly; deliveries
//! go out through each connection's outbound channel (never blocking under the lock).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use amq_protocol::types::{FieldTable, ShortString};

use super::exchange::{Binding, Exchange, Kind};
use super::queue::{Overflow, Queue, QueueArgs, QueueType, Ready, ReadyStore};
use super::{AmqpError, ConnId, ConnOut, ConsumerKey, HIGH_WATER, Limits, Message, Out, Unwritten};

mod chan;
mod consume;
mod consumer_timeout;
mod dead_letter;
mod declare;
mod expiry;
mod length_limit;
mod persist;
mod publish;
mod reply_to;
mod settle;
mod snapshot;
mod timers;

use chan::{Chan, ConsumerState, Unacked};
use dead_letter::Reason;
use publish::held_full;
pub use reply_to::REPLY_TO;
pub(crate) use timers::Timer;

type ChanKey = (ConnId, u16);

/// Exchanges every vhost has, which cannot be deleted: the default exchange and amq.*.
const BUILT_IN_EXCHANGES: [(&str, Kind); 6] = [
    ("", Kind::Direct),
    ("amq.direct", Kind::Direct),
    ("amq.fanout", Kind::Fanout),
    ("amq.topic", Kind::Topic),
    ("amq.headers", Kind::Headers),
    ("amq.match", Kind::Headers),
];

pub struct Core {
    limits: Limits,
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Queue>,
    channels: HashMap<ChanKey, Chan>,
    /// Direct reply-to: each reply name and the channel whose reply consumer it reaches.
    replies: HashMap<String, ChanKey>,
    conns: HashMap<ConnId, ConnOut>,
    next_seq: u64,
    next_tag: u64,
    /// Memory held by messages (`Message::held`): ready in queues plus delivered and unacked,
    /// and messages still arriving (`reserve`).
    held_bytes: usize,
    /// Messages handed to writers that nothing else holds, until written (`Unwritten`).
    unwritten: Arc<AtomicUsize>,
    /// Timers, soonest first (see timers.rs).
    timers: timers::Heap,
    timer_wake: Arc<tokio::sync::Notify>,
    /// The heap's size at which stale timers are swept out next (timers.rs).
    sweep_at: usize,
    /// Dead letters waiting to be routed, and whether a loop up the stack is routing them
    /// (see dead_letter.rs).
    dead_letters: VecDeque<(Message, Reason)>,
    dead_lettering: bool,
    /// The instant a message is being enqueued at, while its queue dispatches: a message with
    /// TTL 0 may still go to a consumer that can take it then (expiry.rs).
    clock: Option<tokio::time::Instant>,
    /// Consumer-timeout timers in `timers` that will find nothing to do (consumer_timeout.rs).
    stale_timers: usize,
    /// The data directory's journal, if the broker has one (persist.rs).
    store: Option<Arc<crate::store::Journal>>,
    next_qid: u32,
    next_mid: u64,
    /// The last publish wrote a message to the journal: its confirm waits for the sync.
    stored_last: bool,
    /// Who observes the broker, if anyone (observe.rs).
    observer: Option<(tokio::sync::mpsc::Sender<crate::observe::Observation>, crate::observe::Watch)>,
}

fn err(code: u16, text: impl Into<String>) -> AmqpError {
    AmqpError::channel(code, text)
}

/// A channel the core no longer has although the connection thought it open: the core closed
/// it on its own (a consumer timeout) just before. The connection has sent channel.close
/// already and does not send this one (see `Session::settle`).
fn closed_by_broker(ch: u16) -> AmqpError {
    err(504, format!("CHANNEL_ERROR - channel {ch} was closed by the broker"))
}

fn not_found_queue(name: &str) -> AmqpError {
    err(404, format!("NOT_FOUND - no queue '{name}' in vhost '/'"))
}

fn not_found_exchange(name: &str) -> AmqpError {
    err(404, format!("NOT_FOUND - no exchange '{name}' in vhost '/'"))
}

/// What queue.declare answers: name, ready messages, consumers.
pub type DeclareOk = (String, u32, u32);

impl Core {
    pub fn new(limits: Limits) -> Self {
        let mut exchanges = HashMap::new();
        for (name, kind) in BUILT_IN_EXCHANGES {
            exchanges.insert(name.to_string(), Exchange::new(kind, true, false, false));
        }
        Self {
            limits,
            exchanges,
            queues: HashMap::new(),
            channels: HashMap::new(),
            replies: HashMap::new(),
            conns: HashMap::new(),
            next_seq: 0,
            next_tag: 0,
            held_bytes: 0,
            unwritten: Arc::new(AtomicUsize::new(0)),
            timers: Default::default(),
            timer_wake: Default::default(),
            sweep_at: 0,
            dead_letters: VecDeque::new(),
            dead_lettering: false,
            clock: None,
            stale_timers: 0,
            store: None,
            next_qid: 0,
            next_mid: 0,
            stored_last: false,
            observer: None,
        }
    }

    /// Report to `tx` from now on (see observe.rs), instead of to any earlier observer.
    pub fn set_observer(
        &mut self,
        tx: tokio::sync::mpsc::Sender<crate::observe::Observation>,
        watch: crate::observe::Watch,
    ) {
        self.observer = Some((tx, watch));
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// All the held-bytes limit counts: messages held, arriving, and on their way out.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes + self.unwritten.load(Ordering::Relaxed)
    }

    /// Charge a message on its way out that nothing else holds (see `Unwritten`).
    pub fn unwritten(&self, bytes: usize) -> Unwritten {
        Unwritten::new(bytes, &self.unwritten)
    }

    /// The counter `Unwritten` charges go to, for writers to charge their encoded bytes.
    pub fn unwritten_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.unwritten)
    }

    /// Counted when asked, a scan of at most `max_exchanges` exchanges (or `max_queues` queues
    /// below) per bind or consume: a running count could drift from what queue and exchange
    /// deletions and channel closes remove.
    fn binding_count(&self) -> usize {
        self.exchanges.values().map(|x| x.bindings.len()).sum()
    }

    fn consumer_count(&self) -> usize {
        self.queues.values().map(Queue::consumer_count).sum::<usize>() + self.replies.len()
    }

    pub fn register_connection(&mut self, id: ConnId, out: ConnOut) {
        self.conns.insert(id, out);
    }

    /// The connection is gone: close its channels (requeueing what they held) and delete the
    /// queues it owned exclusively.
    pub fn drop_connection(&mut self, conn: ConnId) {
        let channels: Vec<u16> =
            self.channels.keys().filter(|(c, _)| *c == conn).map(|(_, ch)| *ch).collect();
        for ch in channels {
            self.close_channel(conn, ch);
        }
        let owned: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| q.exclusive_owner == Some(conn))
            .map(|(n, _)| n.clone())
            .collect();
        for name in owned {
            self.delete_queue_now(&name);
        }
        self.conns.remove(&conn);
    }

    pub fn channel_open(&self, conn: ConnId, ch: u16) -> bool {
        self.channels.contains_key(&(conn, ch))
    }

    pub fn open_channel(&mut self, conn: ConnId, ch: u16) -> Result<(), AmqpError> {
        if self.channels.len() >= self.limits.max_channels {
            // A connection error, as RabbitMQ's channel_max is: a channel error would leave the
            // refused channel waiting for close-ok in the connection, state the cap would not
            // count (a client could hold 2047 such per connection).
            return Err(AmqpError::connection(
                530,
                format!(
                    "NOT_ALLOWED - the embedded broker holds at most {} open channels: close some first",
                    self.limits.max_channels
                ),
            ));
        }
        self.channels.insert((conn, ch), Chan::default());
        Ok(())
    }

    /// Charge a message still arriving (`Message::held_for` its announced size) to the
    /// held-bytes limit, or refuse it as a full queue would.
    pub fn reserve(&mut self, bytes: usize) -> Result<(), AmqpError> {
        if self.held_bytes() + bytes > self.limits.max_held_bytes {
            return Err(held_full(self.limits.max_held_bytes));
        }
        self.held_bytes += bytes;
        Ok(())
    }

    /// Give back what `reserve` charged: the message was published (and is charged as such
    /// from now on) or dropped unfinished.
    pub fn release(&mut self, bytes: usize) {
        self.held_bytes -= bytes;
    }

    /// Close a channel: cancel its consumers and requeue its unacked deliveries in order.
    pub fn close_channel(&mut self, conn: ConnId, ch: u16) {
        let Some(mut chan) = self.channels.remove(&(conn, ch)) else { return };
        if let Some(r) = chan.reply.take() {
            self.drop_reply_consumer(r);
        }
        if chan.timeout_timer.is_some() {
            self.timer_went_stale();
        }
        let mut touched: Vec<String> = Vec::new();
        for (tag, c) in chan.consumers {
            let key = ConsumerKey { conn, channel: ch, tag };
            if let Some(q) = self.queues.get_mut(&c.queue) {
                q.remove_consumer(&key);
            }
            touched.push(c.queue);
        }
        // Requeue everything first, then dispatch: as RabbitMQ does, all at once.
        for (_, u) in chan.unacked {
            touched.extend(self.requeue(u));
        }
        self.after_consumers_left(&touched);
    }

    /// Put an unacked delivery back in its queue (without dispatching); the queue's name, or
    /// `None` if the queue is gone and the message with it. A quorum queue's message returned
    /// more often than its delivery limit is dead-lettered instead (reason `delivery_limit`):
    /// every return counts, nack/reject with requeue, channel close and basic.recover, as on
    /// RabbitMQ 3.10 (checked there).
    fn requeue(&mut self, u: Unacked) -> Option<String> {
        match self.queues.get_mut(&u.queue) {
            Some(q) if q.args.delivery_limit.is_some_and(|l| u.ready.deliveries > l) => {
                self.dead_letter(&u.queue, u.ready, Reason::DeliveryLimit);
                None
            }
            Some(q) => {
                q.ready.requeue(u.ready);
                Some(u.queue)
            }
            None => {
                self.held_bytes -= u.ready.msg.held;
                None
            }
        }
    }

    /// Auto-delete queues whose last consumer left go away; queues that got messages back
    /// dispatch them.
    fn after_consumers_left(&mut self, queues: &[String]) {
        let mut names: Vec<&String> = queues.iter().filter(|n| !n.is_empty()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let gone = self
                .queues
                .get(name)
                .is_some_and(|q| q.auto_delete && q.had_consumers && q.consumer_count() == 0);
            if gone {
                self.delete_queue_now(name);
            } else {
                self.dispatch(name);
                self.queue_used(name);
            }
        }
    }
}

/// A count limit reached: a channel error that says what to do, like the held-bytes limit.
fn full(max: usize, what: &str, remedy: &str) -> AmqpError {
    err(406, format!("PRECONDITION_FAILED - the embedded broker holds at most {max} {what}: {remedy} first"))
}

fn locked(name: &str) -> AmqpError {
    err(
        405,
        format!(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. \
             It could be originally declared on another connection or the exclusive property value \
             does not match that of the original declaration."
        ),
    )
}

fn inequivalent(what: &str, name: &str, arg: &str, received: bool, current: bool) -> AmqpError {
    err(
        406,
        format!(
            "PRECONDITION_FAILED - inequivalent arg '{arg}' for {what} '{name}' in vhost '/': \
             received '{received}' but current is '{current}'"
        ),
    )
}
