#![doc = include_str!("../README.md")]
//!
//! ## Inside
//!
//! The wire protocol is parsed and written by `amq-protocol` (the codec lapin uses); lapin is
//! only a dev-dependency, for the tests and the example above. The core is a synchronous state
//! machine behind one lock; each connection is a reader task and a writer task around it. The
//! public items besides [`start`], [`BrokerConfig`], [`Limits`], [`RunningBroker`], [`fds`] and
//! [`PRODUCT`] are warren's internals (shared with its fuzz targets), hidden here and not a
//! stable API.
//!
//! ```text
//! accept loop ──> connection (reader task) ──lock──> Core (exchanges, queues, channels)
//!                      │                                   │ deliveries
//!                      └── writer task <── Out (mpsc) <────┘
//! ```

mod accept;
mod auth;
mod connection;
mod core;
mod exchange;
pub mod fds;
mod frames;
/// For the fuzz targets in fuzz/ and their regression tests only.
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod memory;
pub mod observe;
mod queue;
mod store;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use core::{Core, REPLY_TO};

/// What the broker reports as `product` in connection.start.
pub const PRODUCT: &str = "warren";

/// Limits, each with a clear refusal when reached.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub channel_max: u16,
    pub frame_max: u32,
    pub max_message: usize,
    /// Memory held for clients across the broker: messages ready and unacked, and messages
    /// still arriving (charged at their announced size when their header comes), each with its
    /// bookkeeping and its properties at their parsed size (see `Message::held`).
    pub max_held_bytes: usize,
    /// Of those, what one connection may hold in messages still arriving: without it, one
    /// client's unfinished publishes could take the whole budget from the others.
    pub max_incoming_per_connection: usize,
    /// Open channels across all connections (each costs its state in the core and the reader).
    pub max_channels: usize,
    pub max_queues: usize,
    /// Exchanges a client may declare, on top of the built-in ones.
    pub max_exchanges: usize,
    /// Bindings across all exchanges.
    pub max_bindings: usize,
    /// Consumers across all channels.
    pub max_consumers: usize,
    /// Sockets still in the handshake, on top of `max_connections`: beyond them new sockets are
    /// closed at once, so that idle sockets cannot pile up (each holds a buffer for up to 10 s).
    pub max_handshaking: usize,
    /// Heartbeat the server proposes, in seconds.
    pub heartbeat: u16,
    /// A delivery not acked within this closes its channel (406, its unacked requeued), as
    /// RabbitMQ's `consumer_timeout` does (default 30 minutes); queues and consumers may set
    /// their own (`x-consumer-timeout`). `None`: no timeout.
    pub consumer_timeout: Option<std::time::Duration>,
    /// With a data directory: its log is compacted (rewritten with only what is live) once it
    /// has grown by this much, or by its live size if that is more.
    pub log_compact_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            channel_max: 2047,
            frame_max: 131_072,
            max_message: 16 << 20,
            max_held_bytes: 512 << 20,
            max_incoming_per_connection: 64 << 20,
            max_channels: 65_536,
            max_queues: 10_000,
            max_exchanges: 10_000,
            max_bindings: 100_000,
            max_consumers: 100_000,
            max_handshaking: 64,
            heartbeat: 60,
            consumer_timeout: Some(std::time::Duration::from_secs(30 * 60)),
            log_compact_bytes: 64 << 20,
        }
    }
}

/// Where the broker listens, whom it lets in, and its limits.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Port 0 takes a free port: [`RunningBroker::addr`] says which.
    pub listen: SocketAddr,
    /// Accepted users; `guest` is accepted only from loopback, as in RabbitMQ.
    pub users: Vec<(String, String)>,
    pub limits: Limits,
    /// Where durable exchanges and queues, their bindings and persistent messages are kept
    /// and recovered from at start (created if missing; one broker at a time: it is locked).
    /// `None`: everything is in memory and nothing survives the broker.
    pub data_dir: Option<std::path::PathBuf>,
}

pub use store::StoreError;

impl BrokerConfig {
    /// guest/guest on 127.0.0.1, any free port.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            users: vec![("guest".into(), "guest".into())],
            limits: Limits::default(),
            data_dir: None,
        }
    }
}

/// A running broker, from [`start`]. Dropping it does not stop it (it runs until its tokio
/// runtime ends): call [`RunningBroker::stop`].
pub struct RunningBroker {
    /// The address it listens on, with the port it got.
    pub addr: SocketAddr,
    /// The open-files limit (raised to the hard limit at start) and the connections it leaves
    /// room for; None where the platform does not say.
    pub open_files: Option<fds::OpenFiles>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    journal: Option<Arc<store::Journal>>,
    core: Arc<Mutex<Core>>,
}

impl RunningBroker {
    /// `amqp://user:password@addr/%2f`, for one of the configured users (percent-encoded, so
    /// any name and password make a valid URL).
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("amqp://{}:{}@{}/%2f", userinfo(user), userinfo(password), self.addr)
    }

    /// Stop accepting connections and close the open ones (320 CONNECTION_FORCED, as RabbitMQ
    /// says at shutdown); returns once the listener is closed, while the connections finish
    /// closing in their own tasks.
    /// With a data directory, what is pending is written and the directory's lock released
    /// before it returns: a broker started next on the same directory finds everything.
    pub async fn stop(self) {
        self.stop.cancel();
        self.wait().await;
    }

    /// Report what the broker does from now on (see [`observe`]): connections, consumers,
    /// and the message events of the queues `watch` names. One observer at a time: a new call
    /// replaces the previous one, whose stream ends.
    pub fn observe(&self, watch: observe::Watch) -> observe::Observations {
        let (tx, rx) = tokio::sync::mpsc::channel(observe::OBSERVATION_BUFFER);
        connection::lock(&self.core).set_observer(tx, watch);
        observe::Observations { rx }
    }

    /// A token that stops the broker when cancelled (e.g. by a signal handler).
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Wait until the broker stops (after [`RunningBroker::stopper`] is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
        if let Some(j) = self.journal {
            let _ = tokio::task::spawn_blocking(move || j.close()).await;
        }
    }
}

/// `s` percent-encoded for the user-info part of a URL: RFC 3986's unreserved characters stay.
fn userinfo(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Bind `cfg.listen` and start accepting connections, on the current tokio runtime (a
/// current-thread one, as in `#[tokio::test]`, will do). Fails only if the address cannot be
/// bound.
///
/// A broker of one's own: a user of its own (any characters: [`RunningBroker::url`] encodes
/// them) and lower limits, here at most two connections.
///
/// ```
/// use lapin::{Connection, ConnectionProperties};
/// use warren_broker::{BrokerConfig, Limits};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = BrokerConfig {
///     users: vec![("app".into(), "s3cret/:@".into())],
///     limits: Limits { max_connections: 2, ..Limits::default() },
///     ..BrokerConfig::local()
/// };
/// let broker = warren_broker::start(cfg).await?;
/// let url = broker.url("app", "s3cret/:@");
/// assert_eq!(url, format!("amqp://app:s3cret%2F%3A%40@{}/%2f", broker.addr));
///
/// let props = ConnectionProperties::default;
/// let wrong = broker.url("app", "guess");
/// let refused = Connection::connect(&wrong, props()).await.expect_err("a wrong password");
/// assert!(refused.to_string().contains("ACCESS_REFUSED"), "{refused}");
///
/// let (one, two) = (Connection::connect(&url, props()).await?, Connection::connect(&url, props()).await?);
/// let refused = Connection::connect(&url, props()).await.expect_err("a third connection");
/// assert!(refused.to_string().contains("NOT_ALLOWED"), "{refused}");
/// # one.close(200, "".into()).await?;
/// # two.close(200, "".into()).await?;
/// broker.stop().await;
/// # Ok(())
/// # }
/// ```
pub async fn start(cfg: BrokerConfig) -> std::io::Result<RunningBroker> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let mut core = Core::new(cfg.limits.clone());
    let journal = match &cfg.data_dir {
        Some(dir) => Some(store::restore(&mut core, dir, cfg.limits.log_compact_bytes).await?),
        None => None,
    };
    let core = Arc::new(Mutex::new(core));
    let cfg = Arc::new(cfg);
    // Spares first, so that the room reported counts them as taken.
    let reserve = fds::Reserve::new();
    let open_files = fds::open_files(cfg.limits.max_connections);
    let limit = open_files.map(|o| o.limit);
    tokio::spawn(timer_task(Arc::clone(&core), stop.clone()));
    let task = tokio::spawn(accept::run(listener, Arc::clone(&core), cfg, stop.clone(), reserve, limit));
    Ok(RunningBroker { addr, open_files, stop, task, journal, core })
}

/// Runs the core's timers (TTL, queue expiry, consumer timeouts) when they are due.
async fn timer_task(core: Arc<Mutex<Core>>, stop: CancellationToken) {
    let wake = connection::lock(&core).timer_wake();
    loop {
        let next = connection::lock(&core).next_due();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => connection::lock(&core).run_due(tokio::time::Instant::now()),
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One open socket, counted from accept until its connection task ends.
struct SocketSlot(Arc<AtomicUsize>);

impl SocketSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(Arc::clone(open)))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[doc(hidden)]
pub type ConnId = u64;

/// A consumer: its connection, channel and tag.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerKey {
    pub conn: ConnId,
    pub channel: u16,
    pub tag: ShortString,
}

/// A published message, shared by every queue it was routed to.
#[doc(hidden)]
#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    /// What holding it costs in memory, counted against `Limits::max_held_bytes`: the body and
    /// the bookkeeping around it, so that a flood of tiny messages is bounded too.
    pub held: usize,
}

/// Memory a held message takes besides its body, names and properties: the message itself, its
/// place in a queue and the allocations' headers.
const MESSAGE_OVERHEAD: usize = std::mem::size_of::<Message>() + 96;

impl Message {
    pub fn new(
        exchange: ShortString,
        routing_key: ShortString,
        properties: BasicProperties,
        body: Vec<u8>,
    ) -> Self {
        let held = Self::held_for(&exchange, &routing_key, &properties, body.len());
        Self { exchange, routing_key, properties, body, held }
    }

    /// What a message with this body size will hold: charged when its content header arrives,
    /// before the body does, so that unfinished messages are bounded too.
    pub fn held_for(
        exchange: &ShortString,
        routing_key: &ShortString,
        properties: &BasicProperties,
        body_size: usize,
    ) -> usize {
        MESSAGE_OVERHEAD
            + body_size
            + exchange.as_str().len()
            + routing_key.as_str().len()
            + memory::properties_heap(properties)
    }
}

/// What the core asks a connection's writer to send.
#[doc(hidden)]
#[derive(Debug)]
pub enum Out {
    Deliver {
        channel: u16,
        consumer_tag: ShortString,
        delivery_tag: u64,
        redelivered: bool,
        msg: Arc<Message>,
        delivery_count: Option<u32>,
        /// Set when no queue or channel holds the message any more (no_ack).
        charge: Option<Unwritten>,
    },
    GetOk {
        channel: u16,
        delivery_tag: u64,
        redelivered: bool,
        message_count: u32,
        msg: Arc<Message>,
        delivery_count: Option<u32>,
        charge: Option<Unwritten>,
    },
    /// basic.cancel from the server: the queue was deleted.
    Cancel { channel: u16, consumer_tag: ShortString },
    /// Any other frame, already built (boxed: it is much larger than the common Deliver).
    Frame(Box<amq_protocol::frame::AMQPFrame>),
    /// basic.return then the body (mandatory message that no queue took).
    Return { channel: u16, msg: Arc<Message>, charge: Unwritten },
    /// The writer's own heartbeat when the connection has been quiet.
    Heartbeat,
    /// Write everything queued so far, then close the socket.
    Shutdown,
}

/// A message on its way out that nothing else holds (a no_ack delivery, a get-ok without ack,
/// a basic.return) stays charged to the held-bytes limit until the writer has encoded it: a
/// client that does not read would otherwise hold up to a message and its delivery window per
/// connection outside the limit. Released when dropped, written or not, without the core's lock
/// (it may be dropped under it).
#[doc(hidden)]
#[derive(Debug)]
pub struct Unwritten {
    bytes: usize,
    counter: Arc<AtomicUsize>,
}

impl Unwritten {
    pub fn new(bytes: usize, counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(bytes, Ordering::Relaxed);
        Self { bytes, counter: Arc::clone(counter) }
    }
}

impl Drop for Unwritten {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What the core and the writer share about one connection.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct ConnShared {
    /// Bytes handed to the writer and not yet written: back-pressure for auto-ack consumers.
    pub pending: AtomicUsize,
    /// Of those, bytes the client caused by what it sent (replies, confirms, returns, get-oks):
    /// the reader stops reading while they are above REPLIES_HIGH, so a client that sends
    /// without reading what comes back cannot grow the broker's memory without bound.
    pub replies: AtomicUsize,
    /// Signalled when `replies` falls to REPLIES_LOW, and when the writer stops.
    pub replies_drained: tokio::sync::Notify,
    /// The writer has stopped (the socket is closed or failed).
    pub writer_done: std::sync::atomic::AtomicBool,
    pub frame_max: AtomicU32,
    /// Negotiated heartbeat in seconds (0: none).
    pub heartbeat: AtomicU32,
    /// Channels the core closed on its own (a consumer timeout) and sent channel.close for:
    /// the reader marks them closing, as if it had closed them for an error. Filled under the
    /// core's lock before the close is queued, so the client's close-ok always finds it here.
    pub closed_by_broker: Mutex<Vec<u16>>,
    /// Set when `closed_by_broker` has news: one load per frame instead of a lock.
    pub broker_closed_any: std::sync::atomic::AtomicBool,
}

/// Auto-ack consumers of a connection whose writer has this much unwritten are skipped.
#[doc(hidden)]
pub const HIGH_WATER: usize = 4 << 20;
/// ...and resume once it is down to this.
#[doc(hidden)]
pub const LOW_WATER: usize = 1 << 20;
/// The reader pauses while the client's unread replies exceed this...
#[doc(hidden)]
pub const REPLIES_HIGH: usize = 1 << 20;
/// ...and reads again once they are down to this.
#[doc(hidden)]
pub const REPLIES_LOW: usize = 256 << 10;

#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ConnOut {
    pub tx: mpsc::UnboundedSender<Out>,
    pub shared: Arc<ConnShared>,
}

impl ConnOut {
    /// Queue `out` for the writer, counting what it holds in `pending` (and `replies`); the
    /// writer takes the same amounts off once it is written.
    pub fn send(&self, out: Out) {
        let (pending, reply) = (out.pending_bytes(), out.reply_bytes());
        if pending > 0 {
            self.shared.pending.fetch_add(pending, Ordering::Relaxed);
        }
        if reply > 0 {
            self.shared.replies.fetch_add(reply, Ordering::Relaxed);
        }
        // A closed writer means the connection is going; the core hears of it separately.
        let _ = self.tx.send(out);
    }
}

/// An item in a writer's queue, with the queue's own bookkeeping and the allocator's.
const QUEUED_ITEM: usize = std::mem::size_of::<Out>() + 32;

impl Out {
    /// What this item adds to `ConnShared::pending`, the unwritten bytes that hold auto-ack
    /// consumers back: a delivery its body and frame headers, anything else its reply size.
    pub fn pending_bytes(&self) -> usize {
        match self {
            Out::Deliver { msg, .. } => msg.body.len() + 64,
            other => other.reply_bytes(),
        }
    }

    /// What this item adds to `ConnShared::replies` (deliveries are bounded by prefetch and
    /// HIGH_WATER instead).
    pub fn reply_bytes(&self) -> usize {
        match self {
            Out::Deliver { .. } | Out::Heartbeat | Out::Shutdown => 0,
            // What the queued item holds: itself, and the message or frame it points to.
            Out::GetOk { msg, .. } | Out::Return { msg, .. } => QUEUED_ITEM + msg.held,
            Out::Frame(_) => QUEUED_ITEM + std::mem::size_of::<amq_protocol::frame::AMQPFrame>() + 64,
            Out::Cancel { consumer_tag, .. } => QUEUED_ITEM + consumer_tag.as_str().len(),
        }
    }
}

/// An AMQP error as RabbitMQ would raise it: a channel error closes the channel, a connection
/// error the connection. `Refused` is a publish refused by a limit: nacked under confirms.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    pub code: u16,
    pub text: String,
    pub scope: Scope,
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Channel,
    Connection,
    Refused,
    /// A publish a queue refused by its own rule (x-overflow reject-publish): nacked under
    /// confirms, dropped silently without, as RabbitMQ does; never a channel error.
    Rejected,
}

impl AmqpError {
    pub fn channel(code: u16, text: impl Into<String>) -> Self {
        Self { code, text: text.into(), scope: Scope::Channel }
    }

    pub fn connection(code: u16, text: impl Into<String>) -> Self {
        Self { code, text: text.into(), scope: Scope::Connection }
    }

    pub fn rejected(text: impl Into<String>) -> Self {
        Self { code: 406, text: format!("PRECONDITION_FAILED - {}", text.into()), scope: Scope::Rejected }
    }

    pub fn refused(text: impl Into<String>) -> Self {
        Self { code: 406, text: format!("PRECONDITION_FAILED - {}", text.into()), scope: Scope::Refused }
    }
}
