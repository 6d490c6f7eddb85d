//! Publishing and basic.get.

use super::*;

impl Core {
    /// Route a message. `Ok(false)`: no queue took it (the caller returns it if mandatory).
    /// Route a message published to its exchange with its routing key. `Ok(false)`: it reached
    /// no queue.
    pub fn publish(&mut self, msg: Message) -> Result<bool, AmqpError> {
        self.stored_last = false;
        // Compacted here, where every kept message is in a queue or a channel: deeper down
        // (a dead letter while a channel's unacked are requeued) some are in flight.
        if self.store.as_ref().is_some_and(|j| j.wants_compaction()) {
            self.compact_store();
        }
        // Checked before routing, as RabbitMQ does: an unroutable message with a bad
        // expiration is refused too.
        let expiration = match msg.properties.expiration() {
            Some(text) => Some(expiry::parse_expiration(text.as_str())?),
            None => None,
        };
        let (exchange, routing_key) = (msg.exchange.as_str(), msg.routing_key.as_str());
        let targets = if exchange.is_empty() {
            // The default exchange, the work queue's: it is always there (it cannot be deleted)
            // and routes to the queue the key names, so no lookup and no list of targets.
            if !self.queues.contains_key(routing_key) {
                // Checked only when no queue has the name: client-named queues cannot start
                // with amq., so a reply name is never a queue's.
                if routing_key.starts_with(reply_to::REPLY_PREFIX) {
                    return self.deliver_reply(msg);
                }
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
                Some(x) => match x.route(routing_key, msg.properties.headers().as_ref()) {
                    targets if targets.is_empty() => return Ok(false),
                    targets => Some(targets),
                },
            }
        };
        self.enqueue(targets.as_deref(), msg, expiration).map(|()| true)
    }

    /// Put a routed message in each of its (existing) queues (`None`: the queue its routing key
    /// names), unless that would pass the limit on held bytes.
    /// `expiration`: the message's own TTL, checked.
    pub(super) fn enqueue(
        &mut self,
        targets: Option<&[String]>,
        msg: Message,
        expiration: Option<u64>,
    ) -> Result<(), AmqpError> {
        let size = msg.held * targets.map_or(1, <[String]>::len);
        if self.held_bytes() + size > self.limits.max_held_bytes {
            return Err(held_full(self.limits.max_held_bytes));
        }
        let mut persist = self.persist(&msg)?;
        let msg = Arc::new(msg);
        let p = persist.as_mut();
        let taken = match targets {
            // Every queue gets its copy, whichever refused it: no short-circuit.
            Some(names) => {
                let mut p = p;
                let refused =
                    names.iter().filter(|name| !self.enqueue_one(name, &msg, expiration, p.as_deref_mut()));
                refused.count() == 0
            }
            None => self.enqueue_one(msg.routing_key.as_str(), &msg, expiration, p),
        };
        if !taken {
            // Some queue refused it (x-overflow reject-publish): nacked under confirms.
            return Err(AmqpError::rejected("a queue it was routed to is full (x-overflow reject-publish)"));
        }
        Ok(())
    }

    /// Put a message in an existing queue and dispatch; false if the queue refused it
    /// (x-overflow reject-publish). The queue is looked up once; one without TTL or limits pays
    /// a few checks for them.
    pub(super) fn enqueue_one(
        &mut self,
        queue: &str,
        msg: &Arc<Message>,
        expiration: Option<u64>,
        persist: Option<&mut persist::Persist>,
    ) -> bool {
        self.next_seq += 1;
        let seq = self.next_seq;
        // Its own lookup, only for a persistent message with a data directory.
        let stored = persist.and_then(|p| self.ticket(queue, msg, p));
        let q = self.queues.get_mut(queue).expect("routed to an existing queue");
        if length_limit::limited(q) {
            return self.enqueue_limited(queue, msg, expiration, seq, stored);
        }
        let now = push_ready(q, seq, msg, expiration, stored);
        self.held_bytes += msg.held;
        self.dispatch_arrived(queue, now);
        true
    }

    /// `enqueue_one` for a queue with a length limit.
    fn enqueue_limited(
        &mut self,
        queue: &str,
        msg: &Arc<Message>,
        expiration: Option<u64>,
        seq: u64,
        stored: Option<Box<crate::store::Ticket>>,
    ) -> bool {
        // A refused message's ticket is dropped with it: its records say it left at once.
        if self.refuses(queue, msg) {
            return false;
        }
        let q = self.queues.get_mut(queue).expect("routed to an existing queue");
        let now = push_ready(q, seq, msg, expiration, stored);
        self.held_bytes += msg.held;
        self.drop_head(queue);
        self.dispatch_arrived(queue, now);
        true
    }

    /// Dispatch after a message arrived at `now` (`Some` if it may expire).
    fn dispatch_arrived(&mut self, queue: &str, now: Option<tokio::time::Instant>) {
        match now {
            None => self.dispatch(queue),
            Some(now) => {
                let before = self.clock.replace(now);
                self.dispatch(queue);
                self.clock = before;
                // What could not be delivered at once and expired already (TTL 0) goes now.
                self.expire_due(queue, now);
            }
        }
    }

    /// basic.get: the head message, or `None` (get-empty).
    pub fn get(
        &mut self,
        conn: ConnId,
        ch: u16,
        queue: &str,
        no_ack: bool,
    ) -> Result<Option<Out>, AmqpError> {
        if !self.channels.contains_key(&(conn, ch)) {
            return Err(closed_by_broker(ch));
        }
        self.queue_for(conn, queue)?;
        self.expire_due(queue, tokio::time::Instant::now());
        self.queue_used(queue);
        let deadline = if no_ack { None } else { self.get_deadline(queue) };
        let q = self.queue_for(conn, queue)?;
        let quorum = q.kind() == QueueType::Quorum;
        let Some(r) = q.ready.pop() else { return Ok(None) };
        let message_count = q.ready.len() as u32;
        self.arm_head(queue);
        let chan = self.channels.get_mut(&(conn, ch)).ok_or_else(|| closed_by_broker(ch))?;
        let h = chan.hand_out(queue, r, quorum, no_ack, None, deadline);
        if let Some(d) = deadline {
            self.arm_consumer_timeout(conn, ch, d);
        }
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
}

/// The held-bytes limit reached: a publish refused (nacked under confirms).
pub(super) fn held_full(max: usize) -> AmqpError {
    AmqpError::refused(format!(
        // In bytes: a limit under 1 MiB read "at most 0 MiB".
        "the embedded broker holds at most {max} bytes of messages and is full: consume or purge first"
    ))
}

/// Add a message to `q`'s ready messages with its expiry; the instant it arrived if it may
/// expire (only then is the clock read).
fn push_ready(
    q: &mut Queue,
    seq: u64,
    msg: &Arc<Message>,
    expiration: Option<u64>,
    stored: Option<Box<crate::store::Ticket>>,
) -> Option<tokio::time::Instant> {
    let now = (q.args.message_ttl.is_some() || expiration.is_some()).then(tokio::time::Instant::now);
    let expires = now.and_then(|now| Core::expiry_for(q, expiration, now));
    q.ready.push(Ready { seq, msg: Arc::clone(msg), redelivered: false, deliveries: 0, expires, stored });
    now
}
