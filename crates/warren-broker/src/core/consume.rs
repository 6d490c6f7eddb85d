//! Consumers and dispatch: qos, consume, cancel, flow, and the ring that hands messages out.

use super::*;
use crate::queue::ConsumeArgs;

impl Core {
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
        arguments: &FieldTable,
    ) -> Result<ShortString, AmqpError> {
        if queue == REPLY_TO {
            return self.consume_reply_to(conn, ch, tag, no_ack);
        }
        let q = self.queue_for(conn, queue)?;
        // A single-active-consumer queue refuses exclusive consumers outright (RabbitMQ 3.10).
        if q.exclusive_consumer || (exclusive && (q.consumer_count() > 0 || q.args.single_active_consumer)) {
            return Err(err(403, format!("ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use")));
        }
        let quorum = q.kind() == QueueType::Quorum;
        let args = ConsumeArgs::parse(queue, arguments)?;
        let timeout_ms =
            if no_ack { None } else { args.timeout_ms.or_else(|| self.queue_consumer_timeout(queue)) };
        let consumers = self.consumer_count();
        let tag: ShortString = if tag.is_empty() {
            self.next_tag += 1;
            format!("amq.ctag-warren-{}", self.next_tag).into()
        } else {
            tag.into()
        };
        let chan = self.channels.get_mut(&(conn, ch)).ok_or_else(|| closed_by_broker(ch))?;
        if chan.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                530,
                format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'"),
            ));
        }
        if quorum && chan.qos_global > 0 && !no_ack {
            // A connection error in RabbitMQ, naming the queue.
            return Err(AmqpError::connection(
                540,
                format!("NOT_IMPLEMENTED - queue '{queue}' in vhost '/' does not support global qos"),
            ));
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
        let state = ConsumerState { queue: queue.to_string(), no_ack, prefetch, unacked: 0, timeout_ms };
        chan.consumers.insert(tag.clone(), state);
        let key = ConsumerKey { conn, channel: ch, tag: tag.clone() };
        let q = self.queues.get_mut(queue).expect("checked above");
        q.add_consumer(key, args.priority, exclusive);
        // Quorum single active consumer: a higher-priority newcomer takes over at once if the
        // active one holds nothing unacked (else once it has drained, see `unblock_channel`).
        if let Some(active) = q.consumers.quiescing().cloned() {
            self.hand_over_if_drained(queue, &active);
        }
        self.queue_used(queue);
        Ok(tag)
    }

    /// After consume-ok has been queued to the client: start delivering.
    pub fn kick(&mut self, queue: &str) {
        self.dispatch(queue);
    }

    pub fn cancel(&mut self, conn: ConnId, ch: u16, tag: &str) {
        let Some(chan) = self.channels.get_mut(&(conn, ch)) else { return };
        if chan.reply.as_ref().is_some_and(|r| r.tag.as_str() == tag) {
            let r = chan.reply.take().expect("checked above");
            self.drop_reply_consumer(r);
            return;
        }
        let Some(c) = chan.consumers.remove(tag) else { return };
        let key = ConsumerKey { conn, channel: ch, tag: tag.into() };
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.remove_consumer(&key);
        }
        self.after_consumers_left(&[c.queue]);
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

    /// Consumers of this channel that were skipped may be able to take messages now.
    pub(super) fn unblock_channel(&mut self, conn: ConnId, ch: u16) {
        let Some(chan) = self.channels.get(&(conn, ch)) else { return };
        let consumers: Vec<(ShortString, String)> =
            chan.consumers.iter().map(|(t, c)| (t.clone(), c.queue.clone())).collect();
        for (tag, queue) in consumers {
            let key = ConsumerKey { conn, channel: ch, tag };
            let can_take = self.can_take(&key);
            let Some(q) = self.queues.get_mut(&queue) else { continue };
            let quiescing = q.consumers.quiescing() == Some(&key);
            if can_take && q.unblock(&key) {
                self.dispatch(&queue);
            }
            if quiescing {
                self.hand_over_if_drained(&queue, &key);
            }
        }
    }

    /// A quiescing single active consumer (quorum, RabbitMQ 4.x) with nothing unacked hands
    /// over to the higher-priority one waiting.
    fn hand_over_if_drained(&mut self, queue: &str, active: &ConsumerKey) {
        let drained = self
            .channels
            .get(&(active.conn, active.channel))
            .and_then(|chan| chan.consumers.get(&active.tag))
            .is_none_or(|c| c.unacked == 0);
        if drained && let Some(q) = self.queues.get_mut(queue) {
            q.consumers.hand_over();
            self.dispatch(queue);
        }
    }

    /// Whether the consumer can be handed one more message now.
    pub(super) fn can_take(&self, key: &ConsumerKey) -> bool {
        can_take(&self.channels, &self.conns, key)
    }

    /// Hand ready messages to consumers in ring order, skipping (blocking) those that are full.
    pub(super) fn dispatch(&mut self, queue: &str) {
        // The fields one by one: the queue is looked up once, not again for each message.
        let Core {
            queues,
            channels,
            conns,
            held_bytes,
            unwritten,
            clock,
            timers,
            timer_wake,
            stale_timers,
            ..
        } = self;
        let Some(q) = queues.get_mut(queue) else { return };
        let quorum = q.kind() == QueueType::Quorum;
        let (mut now, mut expired) = (*clock, Vec::new());
        // One clock reading for the deadlines of this round's deliveries (consumer_timeout.rs).
        let mut deadline_now = None;
        while !q.ready.is_empty() {
            if q.ready.may_expire() && expiry::take_expired_head(&mut q.ready, &mut now, &mut expired) {
                continue;
            }
            let Some((key, priority)) = q.consumers.pop() else { break };
            if !can_take(channels, conns, &key) {
                q.consumers.block(key, priority);
                continue;
            }
            let r = q.ready.pop().expect("not empty");
            let chan = channels.get_mut(&(key.conn, key.channel)).expect("can_take checked");
            let c = chan.consumers.get_mut(&key.tag).expect("can_take checked");
            let no_ack = c.no_ack;
            let deadline = if no_ack {
                None
            } else {
                c.unacked += 1;
                consumer_timeout::deadline(c.timeout_ms, &mut deadline_now)
            };
            let h = chan.hand_out(queue, r, quorum, no_ack, (!no_ack).then(|| key.tag.clone()), deadline);
            if let Some(d) = deadline {
                consumer_timeout::arm(chan, timers, timer_wake, stale_timers, key.conn, key.channel, d);
            }
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
            q.consumers.push_back(key, priority);
        }
        if q.ready.may_expire() || !expired.is_empty() {
            for r in expired {
                self.dead_letter(queue, r, Reason::Expired);
            }
            self.arm_head(queue);
        }
    }
}

/// Whether the consumer can be handed one more message now.
pub(super) fn can_take(
    channels: &HashMap<ChanKey, Chan>,
    conns: &HashMap<ConnId, ConnOut>,
    key: &ConsumerKey,
) -> bool {
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
