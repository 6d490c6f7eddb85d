//! The observation stream: what the broker does, as it does it (connections and consumers
//! coming and going, messages entering a queue, delivered, acked, requeued, leaving), for a
//! program that embeds the broker and wants to show clients it did not start. warren's TUI
//! draws a lane per consumer from it.
//!
//! Events are sent from under the core's lock with `try_send` into a bounded channel, so an
//! observer that falls behind never slows the broker nor grows its memory: what does not fit is
//! counted and reported as one [`Observation::Lagged`] once there is room again. With nobody
//! observing, each would-be event costs one branch.

use std::net::SocketAddr;

use tokio::sync::mpsc;

/// Events an observer may hold before the broker starts counting them as missed.
pub const OBSERVATION_BUFFER: usize = 65_536;

/// Which queues' message events to report (connection and consumer events are reported for
/// every queue: there are few of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Message events of every queue.
    AllQueues,
    /// Message events of these queues only.
    Queues(Vec<String>),
}

/// A consumer, as the broker knows it: its connection, its channel and its tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerRef {
    pub connection: u64,
    pub channel: u16,
    pub tag: String,
}

/// The broker's number for a message in one queue: unchanged while the message stays in that
/// queue (requeues included), never reused by the same broker for that queue. A message routed
/// to two queues has a number in each.
pub type MessageRef = u64;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The client sent connection.close.
    ClientClosed,
    /// Nothing came from the client for two heartbeat intervals (a laptop off the network).
    HeartbeatTimeout,
    /// The socket closed or failed without connection.close (a killed process, a reset):
    /// the text says what the socket reported.
    SocketClosed(String),
    /// The broker closed it: an error the client made (code and RabbitMQ's text), or the
    /// broker stopping (320).
    ClosedByBroker { code: u16, text: String },
}

/// Why a consumer stopped consuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerEnd {
    /// basic.cancel from the client.
    Cancelled,
    /// Its channel closed (by the client or the broker).
    ChannelClosed,
    /// Its connection ended (see the [`Observation::ConnectionClosed`] sent before this).
    ConnectionClosed,
    /// Its queue was deleted.
    QueueDeleted,
}

/// Why an unacked message went back to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueCause {
    /// basic.nack or basic.reject with requeue, or basic.recover.
    Nacked,
    /// Its channel or connection closed with the message unacked.
    ChannelClosed,
    /// Its consumer timeout fired (the channel is closed with 406).
    ConsumerTimeout,
}

/// Why a message left its queue other than by an ack or an auto-ack delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveCause {
    /// Rejected or nacked without requeue.
    Rejected,
    /// Its TTL ran out.
    Expired,
    /// Dropped from the head by x-max-length / x-max-length-bytes.
    MaxLength,
    /// A quorum queue's delivery limit was reached.
    DeliveryLimit,
    /// The queue was purged or deleted.
    Purged,
}

/// One thing the broker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A client finished the handshake (connection.open accepted).
    ConnectionOpened {
        connection: u64,
        peer: SocketAddr,
        user: String,
        /// From the client's properties: `connection_name`, `product`, `version`,
        /// `platform`, where it sent them as strings.
        name: Option<String>,
        product: Option<String>,
        version: Option<String>,
        platform: Option<String>,
    },
    ConnectionClosed {
        connection: u64,
        end: ConnectionEnd,
    },
    /// basic.consume accepted. `prefetch`: the channel's per-consumer limit when it
    /// subscribed (0: none); a later basic.qos is reported as [`Observation::PrefetchChanged`].
    ConsumerAdded {
        consumer: ConsumerRef,
        queue: String,
        manual_ack: bool,
        prefetch: u16,
        exclusive: bool,
        priority: i32,
    },
    /// basic.qos on a channel that has consumers (it applies to consumers created after it,
    /// as in RabbitMQ; the new value is reported for the channel).
    PrefetchChanged {
        connection: u64,
        channel: u16,
        prefetch: u16,
        global: bool,
    },
    ConsumerRemoved {
        consumer: ConsumerRef,
        queue: String,
        end: ConsumerEnd,
    },
    /// A message entered the queue (published, or dead-lettered into it). `publisher`: the
    /// connection that published it (`None` when the broker put it there: a dead letter).
    Enqueued {
        queue: String,
        message: MessageRef,
        publisher: Option<u64>,
        /// Its `message_id` and `app_id` properties, and its body's first bytes (at most 64),
        /// which is how an observer recognises messages it published itself.
        message_id: Option<String>,
        app_id: Option<String>,
        body_head: Vec<u8>,
        body_len: usize,
    },
    /// A message went to a consumer (basic.deliver). Under auto-ack (`manual_ack` false) it
    /// left the queue with this.
    Delivered {
        consumer: ConsumerRef,
        queue: String,
        message: MessageRef,
        delivery_tag: u64,
        redelivered: bool,
        manual_ack: bool,
    },
    /// A message was taken by basic.get (no consumer).
    Got {
        connection: u64,
        channel: u16,
        queue: String,
        message: MessageRef,
        manual_ack: bool,
    },
    /// An unacked message was acked (a multiple ack is reported message by message).
    /// `consumer`: the tag it was delivered to (`None` for basic.get).
    Acked {
        connection: u64,
        channel: u16,
        consumer: Option<String>,
        queue: String,
        message: MessageRef,
    },
    /// An unacked message went back to its queue.
    Requeued {
        connection: u64,
        channel: u16,
        consumer: Option<String>,
        queue: String,
        message: MessageRef,
        cause: RequeueCause,
    },
    /// A message left its queue without being acked (dead-lettered, if the queue has a
    /// dead-letter exchange; the copy's arrival elsewhere is a new `Enqueued`).
    Removed {
        queue: String,
        message: MessageRef,
        cause: RemoveCause,
    },
    /// This many events did not fit in the observer's buffer and were dropped: what the
    /// observer shows may be incomplete from here on.
    Lagged {
        missed: u64,
    },
}

/// The receiving end, from [`crate::RunningBroker::observe`]. Dropping it stops the reports.
pub struct Observations {
    pub(crate) rx: mpsc::Receiver<Observation>,
}

impl Observations {
    /// The next event; `None` once the broker has stopped.
    pub async fn recv(&mut self) -> Option<Observation> {
        self.rx.recv().await
    }

    /// Up to `limit` events into `buf`, waiting for the first; 0 once the broker has stopped.
    pub async fn recv_many(&mut self, buf: &mut Vec<Observation>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }

    /// An event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Observation> {
        self.rx.try_recv().ok()
    }
}
