//! A channel's part of the core: its unacked deliveries, its consumers and its qos.

use super::*;

/// A delivery the client has not acked yet.
#[derive(Debug)]
pub(super) struct Unacked {
    pub(super) queue: String,
    pub(super) ready: Ready,
    /// `None` for basic.get deliveries.
    pub(super) consumer: Option<ShortString>,
    /// When it times out (consumer_timeout.rs); `None`: never.
    pub(super) deadline: Option<Deadline>,
}

/// A delivery's consumer timeout: when, and the timeout it came from (the error text says it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    pub(super) at: tokio::time::Instant,
    pub(super) timeout_ms: u64,
}

#[derive(Debug)]
pub(super) struct ConsumerState {
    pub(super) queue: String,
    pub(super) no_ack: bool,
    pub(super) prefetch: u16,
    pub(super) unacked: u32,
    /// Its consumer timeout in ms (the x-consumer-timeout consume argument, else the queue's,
    /// else the broker's); `None`: none.
    pub(super) timeout_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Chan {
    pub(super) next_tag: u64,
    pub(super) unacked: BTreeMap<u64, Unacked>,
    /// basic.qos global=false: the limit for consumers created from now on (0 = none).
    pub(super) qos_consumer: u16,
    /// basic.qos global=true: one limit for all the channel's unacked deliveries (0 = none).
    pub(super) qos_global: u16,
    pub(super) consumers: HashMap<ShortString, ConsumerState>,
    /// channel.flow active=false stops deliveries to this channel.
    pub(super) paused: bool,
    /// Its direct reply-to consumer, if it has one (at most one per channel, as in RabbitMQ).
    pub(super) reply: Option<super::reply_to::ReplyConsumer>,
    /// When the consumer-timeout timer scheduled for this channel is due, if one is.
    pub(super) timeout_timer: Option<tokio::time::Instant>,
}

/// A message handed to a channel: what its basic.deliver or basic.get-ok says of it.
pub(super) struct Handed {
    pub(super) delivery_tag: u64,
    pub(super) msg: Arc<Message>,
    pub(super) redelivered: bool,
    pub(super) delivery_count: Option<u32>,
}

impl Chan {
    /// Hand a ready message to this channel under its next delivery tag, by basic.deliver (to
    /// `consumer`) or basic.get (`None`). Unless `no_ack`, it stays held here as unacked; with
    /// `no_ack` it is done, and the caller stops counting its bytes.
    pub(super) fn hand_out(
        &mut self,
        queue: &str,
        mut r: Ready,
        quorum: bool,
        no_ack: bool,
        consumer: Option<ShortString>,
        deadline: Option<Deadline>,
    ) -> Handed {
        self.next_tag += 1;
        let delivery_tag = self.next_tag;
        // Quorum queues tell how often a message was delivered before (x-delivery-count).
        let delivery_count = (quorum && r.deliveries > 0).then_some(r.deliveries);
        r.deliveries += 1;
        if let Some(t) = r.stored.as_mut().filter(|_| !no_ack) {
            t.delivered();
        }
        let handed =
            Handed { delivery_tag, msg: Arc::clone(&r.msg), redelivered: r.redelivered, delivery_count };
        if !no_ack {
            self.unacked
                .insert(delivery_tag, Unacked { queue: queue.to_string(), ready: r, consumer, deadline });
        }
        handed
    }
}
