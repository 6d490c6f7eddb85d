//! The broker's shared state and every operation on it: exchanges, queues, bindings, channels'
//! unacked deliveries and consumers. Connections call in with the lock held briefly; deliveries
//! go out through each connection's outbound channel (never blocking under the lock).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

use super::exchange::{Binding, Exchange, Kind};
use super::queue::{Queue, QueueType, Ready};
use super::{AmqpError, ConnId, ConnOut, ConsumerKey, HIGH_WATER, Limits, Message, Out, Unwritten};

type ChanKey = (ConnId, u16);

/// Exchanges every vhost has, which cannot be deleted: the default exchange and amq.*.
const BUILT_IN_EXCHANGES: [(&str, Kind); 4] = [
    ("", Kind::Direct),
    ("amq.direct", Kind::Direct),
    ("amq.fanout", Kind::Fanout),
    ("amq.topic", Kind::Topic),
];

/// A delivery the client has not acked yet.
#[derive(Debug, Clone)]
struct Unacked {
    queue: String,
    ready: Ready,
    /// `None` for basic.get deliveries.
    consumer: Option<ShortString>,
}

#[derive(Debug)]
struct ConsumerState {
    queue: String,
    no_ack: bool,
    prefetch: u16,
    unacked: u32,
}

#[derive(Debug, Default)]
struct Chan {
    next_tag: u64,
    unacked: BTreeMap<u64, Unacked>,
    /// basic.qos global=false: the limit for consumers created from now on (0 = none).
    qos_consumer: u16,
    /// basic.qos global=true: one limit for all the channel's unacked deliveries (0 = none).
    qos_global: u16,
    consumers: HashMap<ShortString, ConsumerState>,
    /// channel.flow active=false stops deliveries to this channel.
    paused: bool,
}

/// A message handed to a channel: what its basic.deliver or basic.get-ok says of it.
struct Handed {
    delivery_tag: u64,
    msg: Arc<Message>,
    redelivered: bool,
    delivery_count: Option<u32>,
}

impl Chan {
    /// Hand a ready message to this channel under its next delivery tag, by basic.deliver (to
    /// `consumer`) or basic.get (`None`). Unless `no_ack`, it stays held here as unacked; with
    /// `no_ack` it is done, and the caller stops counting its bytes.
    fn hand_out(
        &mut self,
        queue: &str,
        mut r: Ready,
        quorum: bool,
        no_ack: bool,
        consumer: Option<ShortString>,
    ) -> Handed {
        self.next_tag += 1;
        let delivery_tag = self.next_tag;
        // Quorum queues tell how often a message was delivered before (x-delivery-count).
        let delivery_count = (quorum && r.deliveries > 0).then_some(r.deliveries);
        r.deliveries += 1;
        let handed =
            Handed { delivery_tag, msg: Arc::clone(&r.msg), redelivered: r.redelivered, delivery_count };
        if !no_ack {
            self.unacked.insert(delivery_tag, Unacked { queue: queue.to_string(), ready: r, consumer });
        }
        handed
    }
}

pub struct Core {
    limits: Limits,
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Queue>,
    channels: HashMap<ChanKey, Chan>,
    conns: HashMap<ConnId, ConnOut>,
    next_seq: u64,
    next_tag: u64,
    /// Memory held by messages (`Message::held`): ready in queues plus delivered and unacked,
    /// and messages still arriving (`reserve`).
    held_bytes: usize,
    /// Messages handed to writers that nothing else holds, until written (`Unwritten`).
    unwritten: Arc<AtomicUsize>,
}

fn err(code: u16, text: impl Into<String>) -> AmqpError {
    AmqpError::channel(code, text)
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
            conns: HashMap::new(),
            next_seq: 0,
            next_tag: 0,
            held_bytes: 0,
            unwritten: Arc::new(AtomicUsize::new(0)),
        }
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
        self.queues.values().map(Queue::consumer_count).sum()
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
        let Some(chan) = self.channels.remove(&(conn, ch)) else { return };
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
    /// `None` if the queue is gone and the message with it.
    fn requeue(&mut self, u: Unacked) -> Option<String> {
        match self.queues.get_mut(&u.queue) {
            Some(q) => {
                q.requeue(u.ready);
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
            }
        }
    }

    // ---- exchanges ----

    #[allow(clippy::too_many_arguments)]
    pub fn exchange_declare(
        &mut self,
        name: &str,
        kind: &str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
    ) -> Result<(), AmqpError> {
        if let Some(x) = self.exchanges.get(name) {
            if passive {
                return Ok(());
            }
            if x.kind.name() != kind {
                return Err(err(
                    406,
                    format!(
                        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{name}' in vhost '/': \
                         received '{kind}' but current is '{}'",
                        x.kind.name()
                    ),
                ));
            }
            for (arg, have, want) in [
                ("durable", x.durable, durable),
                ("auto_delete", x.auto_delete, auto_delete),
                ("internal", x.internal, internal),
            ] {
                if have != want {
                    return Err(inequivalent("exchange", name, arg, want, have));
                }
            }
            return Ok(());
        }
        if passive {
            return Err(not_found_exchange(name));
        }
        if name.starts_with("amq.") {
            return Err(err(
                403,
                format!("ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let Some(k) = Kind::parse(kind) else {
            return Err(AmqpError::connection(
                503,
                format!(
                    "COMMAND_INVALID - invalid exchange type '{kind}' (the embedded broker routes direct, fanout and topic)"
                ),
            ));
        };
        if self.exchanges.len() - BUILT_IN_EXCHANGES.len() >= self.limits.max_exchanges {
            return Err(full(self.limits.max_exchanges, "exchanges", "delete some"));
        }
        self.exchanges.insert(name.to_string(), Exchange::new(k, durable, auto_delete, internal));
        Ok(())
    }

    pub fn exchange_delete(&mut self, name: &str, if_unused: bool) -> Result<(), AmqpError> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(err(403, format!("ACCESS_REFUSED - operation not permitted on exchange '{name}'")));
        }
        let Some(x) = self.exchanges.get(name) else { return Err(not_found_exchange(name)) };
        if if_unused && !x.bindings.is_empty() {
            return Err(err(406, format!("PRECONDITION_FAILED - exchange '{name}' in vhost '/' in use")));
        }
        self.exchanges.remove(name);
        Ok(())
    }

    // ---- queues ----

    #[allow(clippy::too_many_arguments)]
    pub fn queue_declare(
        &mut self,
        conn: ConnId,
        name: &str,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: &FieldTable,
    ) -> Result<DeclareOk, AmqpError> {
        let server_named = name.is_empty();
        let name = if server_named {
            self.next_tag += 1;
            format!("amq.gen-warren-{}", self.next_tag)
        } else {
            name.to_string()
        };
        if let Some(q) = self.queues.get(&name) {
            if let Some(owner) = q.exclusive_owner
                && owner != conn
            {
                return Err(locked(&name));
            }
            if !passive {
                for (arg, have, want) in [
                    ("durable", q.durable, durable),
                    ("exclusive", q.exclusive_owner.is_some(), exclusive),
                    ("auto_delete", q.auto_delete, auto_delete),
                ] {
                    if have != want {
                        return Err(inequivalent("queue", &name, arg, want, have));
                    }
                }
                check_equivalent_args(&name, q.kind, arguments)?;
            }
            return Ok((name, q.ready.len() as u32, q.consumer_count() as u32));
        }
        if passive {
            return Err(not_found_queue(&name));
        }
        // Only a name the client chose may not start with amq.: server-generated names are
        // amq.gen-* on purpose (checking them refused every server-named queue with 403).
        if !server_named && name.starts_with("amq.") {
            return Err(err(
                403,
                format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let kind = queue_type(arguments)?;
        if kind == QueueType::Quorum && (exclusive || auto_delete || !durable) {
            return Err(err(
                406,
                format!(
                    "PRECONDITION_FAILED - invalid property 'non-durable, exclusive or auto-delete' for queue '{name}' in vhost '/'"
                ),
            ));
        }
        if self.queues.len() >= self.limits.max_queues {
            return Err(full(self.limits.max_queues, "queues", "delete some"));
        }
        let owner = exclusive.then_some(conn);
        self.queues.insert(name.clone(), Queue::new(durable, owner, auto_delete, kind));
        Ok((name, 0, 0))
    }

    pub fn queue_bind(
        &mut self,
        conn: ConnId,
        queue: &str,
        exchange: &str,
        key: &str,
        bind: bool,
    ) -> Result<(), AmqpError> {
        if exchange.is_empty() {
            return Err(err(403, "ACCESS_REFUSED - operation not permitted on the default exchange"));
        }
        self.queue_for(conn, queue)?;
        let Some(x) = self.exchanges.get(exchange) else { return Err(not_found_exchange(exchange)) };
        let b = Binding { queue: queue.to_string(), key: key.to_string() };
        if bind && !x.bindings.contains(&b) && self.binding_count() >= self.limits.max_bindings {
            return Err(full(self.limits.max_bindings, "bindings", "unbind some"));
        }
        let x = self.exchanges.get_mut(exchange).expect("looked up above");
        if bind {
            x.bindings.insert(b);
        } else if x.unbind(|have| *have == b) {
            self.exchanges.remove(exchange);
        }
        Ok(())
    }

    pub fn queue_purge(&mut self, conn: ConnId, queue: &str) -> Result<u32, AmqpError> {
        let q = self.queue_for(conn, queue)?;
        let (n, bytes) = q.purge();
        self.held_bytes -= bytes;
        Ok(n as u32)
    }

    pub fn queue_delete(
        &mut self,
        conn: ConnId,
        queue: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        let q = self.queue_for(conn, queue)?;
        if if_unused && q.consumer_count() > 0 {
            return Err(err(406, format!("PRECONDITION_FAILED - queue '{queue}' in vhost '/' in use")));
        }
        if if_empty && !q.ready.is_empty() {
            return Err(err(406, format!("PRECONDITION_FAILED - queue '{queue}' in vhost '/' is not empty")));
        }
        Ok(self.delete_queue_now(queue))
    }

    /// Remove a queue, its bindings and its consumers (told with basic.cancel).
    fn delete_queue_now(&mut self, name: &str) -> u32 {
        let Some(mut q) = self.queues.remove(name) else { return 0 };
        let (n, bytes) = q.purge();
        self.held_bytes -= bytes;
        self.exchanges.retain(|_, x| !x.unbind(|b| b.queue == name));
        for key in q.ring.iter().chain(q.blocked.iter()) {
            if let Some(chan) = self.channels.get_mut(&(key.conn, key.channel)) {
                chan.consumers.remove(&key.tag);
            }
            if let Some(c) = self.conns.get(&key.conn) {
                c.send(Out::Cancel { channel: key.channel, consumer_tag: key.tag.clone() });
            }
        }
        n as u32
    }

    fn queue_for(&mut self, conn: ConnId, name: &str) -> Result<&mut Queue, AmqpError> {
        let q = self.queues.get_mut(name).ok_or_else(|| not_found_queue(name))?;
        if q.exclusive_owner.is_some_and(|o| o != conn) {
            return Err(locked(name));
        }
        Ok(q)
    }

    // ---- consuming ----

    pub fn qos(&mut self, conn: ConnId, ch: u16, prefetch: u16, global: bool) {
        if let Some(chan) = self.channels.get_mut(&(conn, ch)) {
            if global {
                chan.qos_global = prefetch;
            } else {
                chan.qos_consumer = prefetch;
            }
        }
        if global {
            self.unblock_channel(conn, ch);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn consume(
        &mut self,
        conn: ConnId,
        ch: u16,
        queue: &str,
        tag: &str,
        no_ack: bool,
        exclusive: bool,
    ) -> Result<ShortString, AmqpError> {
        let q = self.queue_for(conn, queue)?;
        if q.exclusive_consumer || (exclusive && q.consumer_count() > 0) {
            return Err(err(403, format!("ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use")));
        }
        let quorum = q.kind == QueueType::Quorum;
        let consumers = self.consumer_count();
        let tag: ShortString = if tag.is_empty() {
            self.next_tag += 1;
            format!("amq.ctag-warren-{}", self.next_tag).into()
        } else {
            tag.into()
        };
        let chan = self.channels.get_mut(&(conn, ch)).expect("channel checked open by the connection");
        if chan.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                530,
                format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'"),
            ));
        }
        if quorum && chan.qos_global > 0 && !no_ack {
            return Err(err(540, "NOT_IMPLEMENTED - queue does not support global qos"));
        }
        if consumers >= self.limits.max_consumers {
            return Err(full(self.limits.max_consumers, "consumers", "cancel some"));
        }
        // Quorum queues cap prefetch at 2000 (RabbitMQ's credit limit).
        let prefetch = if quorum && (chan.qos_consumer == 0 || chan.qos_consumer > 2000) {
            2000
        } else {
            chan.qos_consumer
        };
        chan.consumers
            .insert(tag.clone(), ConsumerState { queue: queue.to_string(), no_ack, prefetch, unacked: 0 });
        let key = ConsumerKey { conn, channel: ch, tag: tag.clone() };
        self.queues.get_mut(queue).expect("checked above").add_consumer(key, exclusive);
        Ok(tag)
    }

    /// After consume-ok has been queued to the client: start delivering.
    pub fn kick(&mut self, queue: &str) {
        self.dispatch(queue);
    }

    pub fn cancel(&mut self, conn: ConnId, ch: u16, tag: &str) {
        let Some(chan) = self.channels.get_mut(&(conn, ch)) else { return };
        let Some(c) = chan.consumers.remove(tag) else { return };
        let key = ConsumerKey { conn, channel: ch, tag: tag.into() };
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.remove_consumer(&key);
        }
        self.after_consumers_left(&[c.queue]);
    }

    /// Route a message. `Ok(false)`: no queue took it (the caller returns it if mandatory).
    /// Route a message published to its exchange with its routing key. `Ok(false)`: it reached
    /// no queue.
    pub fn publish(&mut self, msg: Message) -> Result<bool, AmqpError> {
        let (exchange, routing_key) = (msg.exchange.as_str(), msg.routing_key.as_str());
        let targets = if exchange.is_empty() {
            // The default exchange, the work queue's: it is always there (it cannot be deleted)
            // and routes to the queue the key names, so no lookup and no list of targets.
            if !self.queues.contains_key(routing_key) {
                return Ok(false);
            }
            None
        } else {
            match self.exchanges.get(exchange) {
                None => return Err(not_found_exchange(exchange)),
                Some(x) if x.internal => {
                    return Err(err(
                        403,
                        format!("ACCESS_REFUSED - cannot publish to internal exchange '{exchange}'"),
                    ));
                }
                Some(x) => match x.route(routing_key) {
                    targets if targets.is_empty() => return Ok(false),
                    targets => Some(targets),
                },
            }
        };
        self.enqueue(targets.as_deref(), msg).map(|()| true)
    }

    /// Put a routed message in each of its (existing) queues (`None`: the queue its routing key
    /// names), unless that would pass the limit on held bytes.
    fn enqueue(&mut self, targets: Option<&[String]>, msg: Message) -> Result<(), AmqpError> {
        let size = msg.held * targets.map_or(1, <[String]>::len);
        if self.held_bytes() + size > self.limits.max_held_bytes {
            return Err(held_full(self.limits.max_held_bytes));
        }
        let msg = Arc::new(msg);
        match targets {
            Some(names) => names.iter().for_each(|name| self.enqueue_one(name, &msg)),
            None => self.enqueue_one(msg.routing_key.as_str(), &msg),
        }
        Ok(())
    }

    fn enqueue_one(&mut self, queue: &str, msg: &Arc<Message>) {
        self.next_seq += 1;
        let r = Ready { seq: self.next_seq, msg: Arc::clone(msg), redelivered: false, deliveries: 0 };
        self.held_bytes += msg.held;
        self.queues.get_mut(queue).expect("routed to an existing queue").push(r);
        self.dispatch(queue);
    }

    /// basic.get: the head message, or `None` (get-empty).
    pub fn get(
        &mut self,
        conn: ConnId,
        ch: u16,
        queue: &str,
        no_ack: bool,
    ) -> Result<Option<Out>, AmqpError> {
        let q = self.queue_for(conn, queue)?;
        let quorum = q.kind == QueueType::Quorum;
        let Some(r) = q.pop() else { return Ok(None) };
        let message_count = q.ready.len() as u32;
        let chan = self.channels.get_mut(&(conn, ch)).expect("channel checked open by the connection");
        let h = chan.hand_out(queue, r, quorum, no_ack, None);
        let charge = no_ack.then(|| {
            self.held_bytes -= h.msg.held;
            Unwritten::new(h.msg.held, &self.unwritten)
        });
        Ok(Some(Out::GetOk {
            charge,
            channel: ch,
            delivery_tag: h.delivery_tag,
            redelivered: h.redelivered,
            message_count,
            msg: h.msg,
            delivery_count: h.delivery_count,
        }))
    }

    /// basic.ack; unknown tags are a channel error, as in RabbitMQ.
    pub fn ack(&mut self, conn: ConnId, ch: u16, tag: u64, multiple: bool) -> Result<(), AmqpError> {
        for u in self.take_unacked(conn, ch, tag, multiple)? {
            self.held_bytes -= u.ready.msg.held;
        }
        self.unblock_channel(conn, ch);
        Ok(())
    }

    /// basic.nack / basic.reject: requeue at the original position, or drop.
    pub fn nack(
        &mut self,
        conn: ConnId,
        ch: u16,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<(), AmqpError> {
        let taken = self.take_unacked(conn, ch, tag, multiple)?;
        let mut touched = Vec::new();
        for u in taken {
            if requeue {
                touched.extend(self.requeue(u));
            } else {
                self.held_bytes -= u.ready.msg.held;
            }
        }
        self.unblock_channel(conn, ch);
        self.after_consumers_left(&touched);
        Ok(())
    }

    /// basic.recover requeue=true: every unacked delivery of the channel goes back.
    pub fn recover(&mut self, conn: ConnId, ch: u16) {
        let all = match self.channels.get_mut(&(conn, ch)) {
            Some(chan) => std::mem::take(&mut chan.unacked),
            None => return,
        };
        let mut touched = Vec::new();
        for (_, u) in all {
            self.release_consumer_slot(conn, ch, &u);
            touched.extend(self.requeue(u));
        }
        self.unblock_channel(conn, ch);
        self.after_consumers_left(&touched);
    }

    pub fn flow(&mut self, conn: ConnId, ch: u16, active: bool) {
        if let Some(chan) = self.channels.get_mut(&(conn, ch)) {
            chan.paused = !active;
        }
        if active {
            self.unblock_channel(conn, ch);
        }
    }

    /// The connection's writer caught up: consumers held back for it may go on.
    pub fn writer_drained(&mut self, conn: ConnId) {
        let channels: Vec<u16> =
            self.channels.keys().filter(|(c, _)| *c == conn).map(|(_, ch)| *ch).collect();
        for ch in channels {
            self.unblock_channel(conn, ch);
        }
    }

    fn take_unacked(
        &mut self,
        conn: ConnId,
        ch: u16,
        tag: u64,
        multiple: bool,
    ) -> Result<Vec<Unacked>, AmqpError> {
        let chan = self.channels.get_mut(&(conn, ch)).expect("channel checked open by the connection");
        let tags: Vec<u64> = if multiple {
            // multiple with tag 0 means "everything so far".
            let upto = if tag == 0 { u64::MAX } else { tag };
            chan.unacked.range(..=upto).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        if !multiple && !chan.unacked.contains_key(&tag)
            || multiple && tag != 0 && !chan.unacked.contains_key(&tag)
        {
            return Err(err(406, format!("PRECONDITION_FAILED - unknown delivery tag {tag}")));
        }
        let taken: Vec<Unacked> = tags.iter().filter_map(|t| chan.unacked.remove(t)).collect();
        for u in &taken {
            self.release_consumer_slot(conn, ch, u);
        }
        Ok(taken)
    }

    fn release_consumer_slot(&mut self, conn: ConnId, ch: u16, u: &Unacked) {
        if let Some(tag) = &u.consumer
            && let Some(c) = self.channels.get_mut(&(conn, ch)).and_then(|chan| chan.consumers.get_mut(tag))
        {
            c.unacked = c.unacked.saturating_sub(1);
        }
    }

    /// Consumers of this channel that were skipped may be able to take messages now.
    fn unblock_channel(&mut self, conn: ConnId, ch: u16) {
        let Some(chan) = self.channels.get(&(conn, ch)) else { return };
        let consumers: Vec<(ShortString, String)> =
            chan.consumers.iter().map(|(t, c)| (t.clone(), c.queue.clone())).collect();
        for (tag, queue) in consumers {
            let key = ConsumerKey { conn, channel: ch, tag };
            if self.can_take(&key) && self.queues.get_mut(&queue).is_some_and(|q| q.unblock(&key)) {
                self.dispatch(&queue);
            }
        }
    }

    /// Whether the consumer can be handed one more message now.
    fn can_take(&self, key: &ConsumerKey) -> bool {
        can_take(&self.channels, &self.conns, key)
    }

    /// Hand ready messages to consumers in ring order, skipping (blocking) those that are full.
    fn dispatch(&mut self, queue: &str) {
        // The fields one by one: the queue is looked up once, not again for each message.
        let Core { queues, channels, conns, held_bytes, unwritten, .. } = self;
        let Some(q) = queues.get_mut(queue) else { return };
        let quorum = q.kind == QueueType::Quorum;
        while !q.ready.is_empty() {
            let Some(key) = q.ring.pop_front() else { return };
            if !can_take(channels, conns, &key) {
                q.blocked.push(key);
                continue;
            }
            let r = q.pop().expect("not empty");
            let chan = channels.get_mut(&(key.conn, key.channel)).expect("can_take checked");
            let c = chan.consumers.get_mut(&key.tag).expect("can_take checked");
            let no_ack = c.no_ack;
            if !no_ack {
                c.unacked += 1;
            }
            let h = chan.hand_out(queue, r, quorum, no_ack, (!no_ack).then(|| key.tag.clone()));
            let charge = no_ack.then(|| {
                *held_bytes -= h.msg.held;
                Unwritten::new(h.msg.held, unwritten)
            });
            if let Some(out) = conns.get(&key.conn) {
                out.send(Out::Deliver {
                    charge,
                    channel: key.channel,
                    consumer_tag: key.tag.clone(),
                    delivery_tag: h.delivery_tag,
                    redelivered: h.redelivered,
                    msg: h.msg,
                    delivery_count: h.delivery_count,
                });
            }
            q.ring.push_back(key);
        }
    }
}

/// Whether the consumer can be handed one more message now.
fn can_take(channels: &HashMap<ChanKey, Chan>, conns: &HashMap<ConnId, ConnOut>, key: &ConsumerKey) -> bool {
    let Some(chan) = channels.get(&(key.conn, key.channel)) else { return false };
    let Some(c) = chan.consumers.get(&key.tag) else { return false };
    if chan.paused {
        return false;
    }
    if c.no_ack {
        // Like TCP back-pressure in RabbitMQ: a client that does not read is not flooded.
        return conns.get(&key.conn).is_some_and(|o| o.shared.pending.load(Ordering::Relaxed) < HIGH_WATER);
    }
    (c.prefetch == 0 || c.unacked < u32::from(c.prefetch))
        && (chan.qos_global == 0 || chan.unacked.len() < usize::from(chan.qos_global))
}

/// The held-bytes limit reached: a publish refused (nacked under confirms).
fn held_full(max: usize) -> AmqpError {
    AmqpError::refused(format!(
        // In bytes: a limit under 1 MiB read "at most 0 MiB".
        "the embedded broker holds at most {max} bytes of messages and is full: consume or purge first"
    ))
}

/// A count limit reached: a channel error that says what to do, like the held-bytes limit.
fn full(max: usize, what: &str, remedy: &str) -> AmqpError {
    err(406, format!("PRECONDITION_FAILED - the embedded broker holds at most {max} {what}: {remedy} first"))
}

fn locked(name: &str) -> AmqpError {
    err(
        405,
        format!("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'"),
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

fn queue_type(args: &FieldTable) -> Result<QueueType, AmqpError> {
    for k in args.inner().keys() {
        let k = k.as_str();
        if matches!(
            k,
            "x-message-ttl"
                | "x-expires"
                | "x-max-length"
                | "x-max-length-bytes"
                | "x-dead-letter-exchange"
                | "x-dead-letter-routing-key"
                | "x-max-priority"
                | "x-overflow"
                | "x-single-active-consumer"
        ) {
            return Err(err(
                406,
                format!(
                    "PRECONDITION_FAILED - queue argument '{k}' is not supported by the embedded warren broker"
                ),
            ));
        }
    }
    match args.inner().get("x-queue-type") {
        None => Ok(QueueType::Classic),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"classic" => Ok(QueueType::Classic),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"quorum" => Ok(QueueType::Quorum),
        Some(v) => Err(err(
            406,
            format!(
                "PRECONDITION_FAILED - invalid arg 'x-queue-type' {v:?}: the embedded broker has classic and quorum queues"
            ),
        )),
    }
}

/// RabbitMQ checks the x-arguments it knows for equivalence on redeclare. Only the type is
/// kept of a queue's arguments (the others are refused at declare): a client's argument
/// table would otherwise be memory held for it and charged nowhere.
fn check_equivalent_args(name: &str, have: QueueType, want: &FieldTable) -> Result<(), AmqpError> {
    let wanted = match want.inner().get("x-queue-type") {
        // A redeclare without x-queue-type matches any type, as in RabbitMQ.
        None => return Ok(()),
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(v) => format!("{v:?}"),
    };
    if wanted != have.name() {
        return Err(err(
            406,
            format!(
                "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{name}' in vhost '/': \
                 received '{wanted}' but current is '{}'",
                have.name()
            ),
        ));
    }
    Ok(())
}
