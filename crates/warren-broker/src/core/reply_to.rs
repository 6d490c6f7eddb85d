//! Direct reply-to (`amq.rabbitmq.reply-to`), RabbitMQ's RPC shortcut: a channel consumes the
//! pseudo-queue in no-ack mode, its requests carry `reply_to=amq.rabbitmq.reply-to`, which the
//! broker rewrites to a name of that channel's own (`amq.rabbitmq.reply-to.<token>`), and a
//! reply published to that name on the default exchange goes straight to the consumer: no
//! queue, nothing held once written. Texts and codes are RabbitMQ 3.10's.

use std::hash::{BuildHasher, Hasher};

use super::*;

/// What a client consumes from, and puts in `reply_to` to ask for a reply name.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// The names replies are published to.
pub(super) const REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// A channel's reply consumer.
#[derive(Debug)]
pub(super) struct ReplyConsumer {
    pub(super) tag: ShortString,
    /// `amq.rabbitmq.reply-to.<token>`: the name its requests' `reply_to` is rewritten to.
    pub(super) name: String,
}

impl Core {
    /// basic.consume on `amq.rabbitmq.reply-to`.
    pub(super) fn consume_reply_to(
        &mut self,
        conn: ConnId,
        ch: u16,
        tag: &str,
        no_ack: bool,
    ) -> Result<ShortString, AmqpError> {
        let consumers = self.consumer_count();
        self.next_tag += 1;
        let n = self.next_tag;
        let chan = self.channels.get_mut(&(conn, ch)).expect("channel checked open by the connection");
        if chan.consumers.contains_key(tag) || chan.reply.as_ref().is_some_and(|r| r.tag.as_str() == tag) {
            return Err(AmqpError::connection(
                530,
                format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'"),
            ));
        }
        if chan.reply.is_some() {
            return Err(err(406, "PRECONDITION_FAILED - reply consumer already set"));
        }
        if !no_ack {
            return Err(err(406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"));
        }
        if consumers >= self.limits.max_consumers {
            return Err(full(self.limits.max_consumers, "consumers", "cancel some"));
        }
        let tag: ShortString =
            if tag.is_empty() { format!("amq.ctag-warren-{n}").into() } else { tag.into() };
        // Unguessable, as RabbitMQ's are: only whoever got the name in a request can reply.
        let secret = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let name = format!("{REPLY_PREFIX}warren-{n}-{secret:016x}");
        self.replies.insert(name.clone(), (conn, ch));
        chan.reply = Some(ReplyConsumer { tag: tag.clone(), name });
        Ok(tag)
    }

    /// The reply name a request published on this channel with `reply_to=amq.rabbitmq.reply-to`
    /// carries instead, or RabbitMQ's 406 when the channel does not consume replies.
    pub fn reply_to_name(&self, conn: ConnId, ch: u16) -> Result<String, AmqpError> {
        match self.channels.get(&(conn, ch)).and_then(|c| c.reply.as_ref()) {
            Some(r) => Ok(r.name.clone()),
            None => Err(err(406, "PRECONDITION_FAILED - fast reply consumer does not exist")),
        }
    }

    /// A channel's reply consumer goes (cancel or channel close): its name no longer routes.
    pub(super) fn drop_reply_consumer(&mut self, r: ReplyConsumer) {
        self.replies.remove(&r.name);
    }

    /// A message published to `amq.rabbitmq.reply-to.<token>` on the default exchange: straight
    /// to the reply consumer. `Ok(false)` when the name is not (or no longer) anyone's:
    /// unroutable, as in RabbitMQ. A delivered reply counts as routed, as in RabbitMQ 4 (whose
    /// default exchange routes to the reply name); 3.10 also returned a delivered mandatory
    /// reply as unroutable.
    pub(super) fn deliver_reply(&mut self, msg: Message) -> Result<bool, AmqpError> {
        let Some(&(conn, ch)) = self.replies.get(msg.routing_key.as_str()) else { return Ok(false) };
        if self.held_bytes() + msg.held > self.limits.max_held_bytes {
            return Err(held_full(self.limits.max_held_bytes));
        }
        let chan = self.channels.get_mut(&(conn, ch)).expect("a reply consumer's channel is open");
        let tag = chan.reply.as_ref().expect("a routed reply name has its consumer").tag.clone();
        chan.next_tag += 1;
        let delivery_tag = chan.next_tag;
        // No queue holds it: charged until the writer has written it, like a no-ack delivery.
        let charge = Unwritten::new(msg.held, &self.unwritten);
        if let Some(out) = self.conns.get(&conn) {
            out.send(Out::Deliver {
                charge: Some(charge),
                channel: ch,
                consumer_tag: tag,
                delivery_tag,
                redelivered: false,
                msg: Arc::new(msg),
                delivery_count: None,
            });
        }
        Ok(true)
    }

    /// queue.declare (passive or not) of the reply pseudo-queue or of a reply name answers as
    /// RabbitMQ does: one consumer, no messages; a reply name nobody holds is not found.
    /// `None`: not a reply-to name.
    pub(super) fn declare_reply_to(&self, name: &str) -> Option<Result<DeclareOk, AmqpError>> {
        let exists = name == REPLY_TO || (name.starts_with(REPLY_PREFIX) && self.replies.contains_key(name));
        if exists {
            Some(Ok((name.to_string(), 0, 1)))
        } else if name.starts_with(REPLY_PREFIX) {
            Some(Err(not_found_queue(name)))
        } else {
            None
        }
    }
}
