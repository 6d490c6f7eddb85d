//! One client connection: the handshake, then frames in, methods applied to the core, and
//! replies and deliveries out through the writer task. Channel errors close the channel,
//! connection errors the connection, as RabbitMQ does; bad input never panics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{
    AMQPClass, BasicProperties, access, basic, channel, confirm, connection, exchange, queue,
};
use amq_protocol::types::ShortString;
use futures::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::{parse_amqplain, parse_plain, server_properties};
use super::frames::{self, Parsed, basic as b};
use super::writer;
use super::{AmqpError, BrokerConfig, ConnId, ConnOut, ConnShared, Core, Message, Out, REPLIES_HIGH, Scope};

/// The client must send its protocol header and finish the handshake in this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// frame_max before tune-ok, and the smallest a client may ask for (AMQP's frame-min-size).
const FRAME_MIN: u32 = 4096;
const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// At least this much free buffer for each read.
const READ_CHUNK: usize = 32 * 1024;

pub struct Connection {
    id: ConnId,
    peer: SocketAddr,
    core: Arc<Mutex<Core>>,
    cfg: Arc<BrokerConfig>,
    stop: CancellationToken,
}

/// A message being assembled from publish + header + body frames.
struct Incoming {
    exchange: ShortString,
    routing_key: ShortString,
    mandatory: bool,
    properties: Option<BasicProperties>,
    size: usize,
    body: Vec<u8>,
    /// What it will hold once published (`Message::held_for` its announced size).
    held: usize,
    /// What its header charged to the core's held bytes (and to `Session::incoming`): `held`,
    /// or 0 when its whole body had already been read with it (see `content_header`).
    charged: usize,
    /// Refused by a memory limit when its header came, under confirms: the body is read and
    /// dropped, then the publish is nacked in its turn. (Without confirms the channel closes
    /// at the header.)
    refused: Option<AmqpError>,
    /// Body bytes read and dropped since it was refused.
    dropped: usize,
}

#[derive(Default)]
struct ChannelState {
    /// We sent channel.close after an error and wait for close-ok; other frames are dropped.
    closing: bool,
    confirm: bool,
    publish_seq: u64,
    incoming: Option<Incoming>,
}

/// Why a session ended.
enum End {
    /// Clean close, socket problems, or a stop: nothing more to say.
    Quiet,
    /// We must tell the client with connection.close first.
    Error(AmqpError, u16, u16),
}

pub(super) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // A panic while holding the lock would be a broker bug; keep serving the others.
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    pub fn new(
        id: ConnId,
        peer: SocketAddr,
        core: Arc<Mutex<Core>>,
        cfg: Arc<BrokerConfig>,
        stop: CancellationToken,
    ) -> Self {
        Self { id, peer, core, cfg, stop }
    }

    pub async fn run(self, stream: TcpStream) {
        let (mut rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(ConnShared::default());
        shared.frame_max.store(FRAME_MIN, Ordering::Relaxed);
        let out = ConnOut { tx, shared: Arc::clone(&shared) };
        let writer = tokio::spawn(writer::write_loop(wr, rx, shared, Arc::clone(&self.core), self.id));
        let mut session = Session {
            conn: &self,
            out: out.clone(),
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            frame_max: FRAME_MIN,
            channel_max: 0,
            heartbeat: 0,
            channels: HashMap::new(),
            registered: false,
            incoming: 0,
        };
        // A bug that panics in one connection must not leak its slot or its unacked messages:
        // the panic ends this session like an internal error, and the clean-up below still runs.
        let serve = std::panic::AssertUnwindSafe(session.serve(&mut rd)).catch_unwind();
        let end = tokio::select! {
            end = serve => end.unwrap_or_else(|_| End::Error(AmqpError::connection(541, "INTERNAL_ERROR"), 0, 0)),
            () = self.stop.cancelled() => End::Error(AmqpError::connection(320, "CONNECTION_FORCED - broker shutdown"), 0, 0),
        };
        if let End::Error(e, class_id, method_id) = end {
            session.send_method(0, connection_close(&e, class_id, method_id));
            // Give the client a moment to answer close-ok; its other frames are ignored.
            let _ = tokio::time::timeout(Duration::from_secs(1), session.await_close_ok(&mut rd)).await;
        }
        {
            let mut core = lock(&self.core);
            // Unfinished messages die with the connection: give back what their headers charged.
            core.release(session.incoming);
            if session.registered {
                core.drop_connection(self.id);
            }
        }
        out.send(Out::Shutdown);
        // A peer that stops reading must not keep the writer (and its socket) alive forever.
        let abort = writer.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), writer).await.is_err() {
            abort.abort();
        }
    }
}

struct Session<'a> {
    conn: &'a Connection,
    out: ConnOut,
    buf: Vec<u8>,
    /// Bytes of `buf` already parsed.
    start: usize,
    frame_max: u32,
    /// The lower of the broker's channel_max and the client's (0 from the client: no limit of its own).
    channel_max: u16,
    heartbeat: u16,
    channels: HashMap<u16, ChannelState>,
    registered: bool,
    /// Bytes charged for this connection's messages still arriving (`Incoming::charged`).
    incoming: usize,
}

impl Session<'_> {
    async fn serve(&mut self, rd: &mut OwnedReadHalf) -> End {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake(rd)).await {
            Ok(Ok(())) => {}
            Ok(Err(end)) => return end,
            Err(_) => return End::Quiet,
        }
        loop {
            let frame = match self.read_frame(rd, self.read_timeout()).await {
                Ok(f) => f,
                Err(end) => return end,
            };
            if let Err(end) = self.handle(frame) {
                return end;
            }
        }
    }

    /// A client silent for two heartbeat intervals is gone (RabbitMQ's rule).
    fn read_timeout(&self) -> Option<Duration> {
        (self.heartbeat > 0).then(|| Duration::from_secs(u64::from(self.heartbeat) * 2))
    }

    async fn read_frame(
        &mut self,
        rd: &mut OwnedReadHalf,
        timeout: Option<Duration>,
    ) -> Result<AMQPFrame, End> {
        loop {
            // `start` marks what was already parsed: the buffer is compacted once per read,
            // not shifted after every frame.
            match frames::parse(&self.buf[self.start..], self.frame_max) {
                Parsed::Frame(f, used) => {
                    self.start += used;
                    return Ok(f);
                }
                Parsed::Bad(e) => return Err(End::Error(e, 0, 0)),
                Parsed::Incomplete => {}
            }
            self.buf.drain(..self.start);
            self.start = 0;
            replies_read(&self.out.shared, timeout).await.map_err(|()| End::Quiet)?;
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            let read = rd.read_buf(&mut self.buf);
            let n = match timeout {
                Some(t) => match tokio::time::timeout(t, read).await {
                    Ok(r) => r,
                    Err(_) => return Err(End::Quiet),
                },
                None => read.await,
            };
            if !matches!(n, Ok(n) if n > 0) {
                return Err(End::Quiet);
            }
        }
    }

    async fn await_close_ok(&mut self, rd: &mut OwnedReadHalf) {
        while let Ok(f) = self.read_frame(rd, None).await {
            if matches!(f, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))) {
                return;
            }
        }
    }

    async fn handshake(&mut self, rd: &mut OwnedReadHalf) -> Result<(), End> {
        let mut header = [0u8; 8];
        if rd.read_exact(&mut header).await.is_err() {
            return Err(End::Quiet);
        }
        if &header != PROTOCOL_HEADER {
            // The spec: answer with the protocol header we do speak, then close.
            let ours = AMQPFrame::ProtocolHeader(amq_protocol::frame::ProtocolVersion::amqp_0_9_1());
            self.out.send(Out::Frame(Box::new(ours)));
            return Err(End::Quiet);
        }
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
                version_major: 0,
                version_minor: 9,
                server_properties: server_properties(),
                mechanisms: "PLAIN AMQPLAIN".into(),
                locales: "en_US".into(),
            })),
        );
        let start_ok = match self.expect_connection_method(rd).await? {
            connection::AMQPMethod::StartOk(s) => s,
            _ => return Err(unexpected("connection.start-ok")),
        };
        self.authenticate(&start_ok)?;
        let limits = &self.conn.cfg.limits;
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                channel_max: limits.channel_max,
                frame_max: limits.frame_max,
                heartbeat: limits.heartbeat,
            })),
        );
        let tune_ok = match self.expect_connection_method(rd).await? {
            connection::AMQPMethod::TuneOk(t) => t,
            _ => return Err(unexpected("connection.tune-ok")),
        };
        let frame_max = if tune_ok.frame_max == 0 { limits.frame_max } else { tune_ok.frame_max };
        if frame_max < FRAME_MIN || frame_max > limits.frame_max {
            return Err(End::Error(
                AmqpError::connection(
                    530,
                    format!("NOT_ALLOWED - frame_max {frame_max} outside {FRAME_MIN}..={}", limits.frame_max),
                ),
                10,
                31,
            ));
        }
        self.frame_max = frame_max;
        self.out.shared.frame_max.store(frame_max, Ordering::Relaxed);
        // The client may ask for fewer channels than offered; channel.open checked only the
        // broker's limit, so a client that chose 2 could open channel 3.
        self.channel_max = match tune_ok.channel_max {
            0 => limits.channel_max,
            asked => asked.min(limits.channel_max),
        };
        self.heartbeat = tune_ok.heartbeat;
        self.out.shared.heartbeat.store(u32::from(tune_ok.heartbeat), Ordering::Relaxed);
        let open = match self.expect_connection_method(rd).await? {
            connection::AMQPMethod::Open(o) => o,
            _ => return Err(unexpected("connection.open")),
        };
        if open.virtual_host.as_str() != "/" {
            return Err(End::Error(
                AmqpError::connection(530, format!("NOT_ALLOWED - vhost {} not found", open.virtual_host)),
                10,
                40,
            ));
        }
        {
            let mut core = lock(&self.conn.core);
            if core.connection_count() >= limits.max_connections {
                return Err(End::Error(
                    AmqpError::connection(
                        530,
                        format!(
                            "NOT_ALLOWED - the embedded broker accepts at most {} connections",
                            limits.max_connections
                        ),
                    ),
                    10,
                    40,
                ));
            }
            core.register_connection(self.conn.id, self.out.clone());
        }
        self.registered = true;
        self.send_method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})));
        Ok(())
    }

    async fn expect_connection_method(
        &mut self,
        rd: &mut OwnedReadHalf,
    ) -> Result<connection::AMQPMethod, End> {
        loop {
            match self.read_frame(rd, None).await? {
                AMQPFrame::Heartbeat => continue,
                AMQPFrame::Method(0, AMQPClass::Connection(m)) => return Ok(m),
                _ => return Err(unexpected("a connection method on channel 0")),
            }
        }
    }

    fn authenticate(&self, s: &connection::StartOk) -> Result<(), End> {
        let mechanism = s.mechanism.as_str();
        let response = s.response.as_bytes();
        let creds = match mechanism {
            "PLAIN" => parse_plain(response),
            "AMQPLAIN" => parse_amqplain(response),
            other => {
                return Err(End::Error(
                    AmqpError::connection(
                        403,
                        format!("ACCESS_REFUSED - unsupported authentication mechanism '{other}'"),
                    ),
                    10,
                    11,
                ));
            }
        };
        let refused = |text: String| End::Error(AmqpError::connection(403, text), 10, 11);
        let Some((user, password)) = creds else {
            return Err(refused(format!("ACCESS_REFUSED - malformed {mechanism} response")));
        };
        if user == "guest" && !self.conn.peer.ip().is_loopback() {
            return Err(refused("ACCESS_REFUSED - User 'guest' can only connect via localhost".into()));
        }
        if !self.conn.cfg.users.iter().any(|(u, p)| *u == user && *p == password) {
            return Err(refused(format!(
                "ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. \
                 For details see the broker logfile."
            )));
        }
        Ok(())
    }

    fn send_method(&self, channel: u16, class: AMQPClass) {
        self.out.send(Out::Frame(Box::new(frames::method(channel, class))));
    }

    /// One frame after the handshake.
    fn handle(&mut self, frame: AMQPFrame) -> Result<(), End> {
        match frame {
            AMQPFrame::Heartbeat => Ok(()),
            AMQPFrame::Method(0, AMQPClass::Connection(m)) => self.connection_method(m),
            AMQPFrame::Method(0, _) | AMQPFrame::Header(0, _) | AMQPFrame::Body(0, _) => Err(End::Error(
                AmqpError::connection(503, "COMMAND_INVALID - channel 0 carries connection methods only"),
                0,
                0,
            )),
            AMQPFrame::ProtocolHeader(_) | AMQPFrame::InvalidHeartbeat(_) => {
                Err(End::Error(AmqpError::connection(501, "FRAME_ERROR - unexpected frame"), 0, 0))
            }
            AMQPFrame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Open(_))) => self.channel_open(ch),
            AMQPFrame::Method(ch, class) => {
                let (class_id, method_id) = (class.get_amqp_class_id(), class.get_amqp_method_id());
                match self.channels.get(&ch) {
                    None => Err(End::Error(
                        AmqpError::connection(
                            504,
                            format!("CHANNEL_ERROR - expected 'channel.open' on channel {ch}"),
                        ),
                        class_id,
                        method_id,
                    )),
                    Some(c) if c.closing => {
                        if matches!(class, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) {
                            self.channels.remove(&ch);
                        }
                        Ok(())
                    }
                    Some(c) if c.incoming.is_some() => Err(End::Error(
                        AmqpError::connection(505, "UNEXPECTED_FRAME - expected content header or body"),
                        class_id,
                        method_id,
                    )),
                    Some(_) => {
                        let result = self.channel_method(ch, class);
                        self.settle(ch, result, class_id, method_id)
                    }
                }
            }
            AMQPFrame::Header(ch, header) => {
                let result = self.content_header(ch, header.body_size, header.properties);
                self.settle(ch, result, 60, 40)
            }
            AMQPFrame::Body(ch, data) => {
                let result = self.content_body(ch, data);
                self.settle(ch, result, 60, 40)
            }
        }
    }

    /// Turn a method's error into a channel close or a connection close.
    fn settle(
        &mut self,
        ch: u16,
        result: Result<(), AmqpError>,
        class_id: u16,
        method_id: u16,
    ) -> Result<(), End> {
        let Err(e) = result else { return Ok(()) };
        match e.scope {
            Scope::Connection => Err(End::Error(e, class_id, method_id)),
            Scope::Channel | Scope::Refused => {
                lock(&self.conn.core).close_channel(self.conn.id, ch);
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.closing = true;
                    if let Some(inc) = c.incoming.take() {
                        self.incoming -= inc.charged;
                        lock(&self.conn.core).release(inc.charged);
                    }
                }
                self.send_method(
                    ch,
                    AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                        reply_code: e.code,
                        reply_text: short(&e.text),
                        class_id,
                        method_id,
                    })),
                );
                Ok(())
            }
        }
    }

    fn connection_method(&mut self, m: connection::AMQPMethod) -> Result<(), End> {
        match m {
            connection::AMQPMethod::Close(_) => {
                self.send_method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                );
                Err(End::Quiet)
            }
            connection::AMQPMethod::CloseOk(_) => Err(End::Quiet),
            connection::AMQPMethod::UpdateSecret(_) => Err(End::Error(
                AmqpError::connection(540, "NOT_IMPLEMENTED - connection.update-secret"),
                10,
                70,
            )),
            _ => Err(End::Error(
                AmqpError::connection(503, "COMMAND_INVALID - unexpected connection method"),
                10,
                0,
            )),
        }
    }

    fn channel_open(&mut self, ch: u16) -> Result<(), End> {
        let max = self.channel_max;
        if ch > max {
            return Err(End::Error(
                AmqpError::connection(
                    530,
                    format!("NOT_ALLOWED - channel {ch} is above the negotiated channel_max {max}"),
                ),
                20,
                10,
            ));
        }
        if self.channels.contains_key(&ch) {
            return Err(End::Error(
                AmqpError::connection(
                    504,
                    format!("CHANNEL_ERROR - second 'channel.open' seen on channel {ch}"),
                ),
                20,
                10,
            ));
        }
        lock(&self.conn.core).open_channel(self.conn.id, ch).map_err(|e| End::Error(e, 20, 10))?;
        self.channels.insert(ch, ChannelState::default());
        self.send_method(ch, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})));
        Ok(())
    }

    fn channel_method(&mut self, ch: u16, class: AMQPClass) -> Result<(), AmqpError> {
        let id = self.conn.id;
        match class {
            AMQPClass::Channel(m) => match m {
                channel::AMQPMethod::Close(_) => {
                    lock(&self.conn.core).close_channel(id, ch);
                    self.channels.remove(&ch);
                    self.send_method(
                        ch,
                        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                    );
                }
                channel::AMQPMethod::CloseOk(_) | channel::AMQPMethod::FlowOk(_) => {}
                channel::AMQPMethod::Flow(f) => {
                    lock(&self.conn.core).flow(id, ch, f.active);
                    self.send_method(
                        ch,
                        AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: f.active })),
                    );
                }
                _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected channel method")),
            },
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                self.send_method(ch, AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})));
            }
            AMQPClass::Exchange(m) => self.exchange_method(ch, m)?,
            AMQPClass::Queue(m) => self.queue_method(ch, m)?,
            AMQPClass::Basic(m) => self.basic_method(ch, m)?,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(s)) => {
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.confirm = true;
                }
                if !s.nowait {
                    self.send_method(
                        ch,
                        AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
                    );
                }
            }
            AMQPClass::Tx(_) => {
                return Err(AmqpError::connection(
                    540,
                    "NOT_IMPLEMENTED - transactions (tx.*) are not supported by the embedded warren broker",
                ));
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected method")),
        }
        Ok(())
    }

    fn exchange_method(&mut self, ch: u16, m: exchange::AMQPMethod) -> Result<(), AmqpError> {
        let reply = |s: &Self, m| s.send_method(ch, AMQPClass::Exchange(m));
        match m {
            exchange::AMQPMethod::Declare(d) => {
                lock(&self.conn.core).exchange_declare(
                    d.exchange.as_str(),
                    d.kind.as_str(),
                    d.passive,
                    d.durable,
                    d.auto_delete,
                    d.internal,
                )?;
                if !d.nowait {
                    reply(self, exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}));
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                lock(&self.conn.core).exchange_delete(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    reply(self, exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}));
                }
            }
            exchange::AMQPMethod::Bind(_) | exchange::AMQPMethod::Unbind(_) => {
                return Err(AmqpError::connection(
                    540,
                    "NOT_IMPLEMENTED - exchange-to-exchange bindings are not supported by the embedded warren broker",
                ));
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected exchange method")),
        }
        Ok(())
    }

    fn queue_method(&mut self, ch: u16, m: queue::AMQPMethod) -> Result<(), AmqpError> {
        let id = self.conn.id;
        let reply = |s: &Self, m| s.send_method(ch, AMQPClass::Queue(m));
        match m {
            queue::AMQPMethod::Declare(d) => {
                let (name, messages, consumers) = lock(&self.conn.core).queue_declare(
                    id,
                    d.queue.as_str(),
                    d.passive,
                    d.durable,
                    d.exclusive,
                    d.auto_delete,
                    &d.arguments,
                )?;
                if !d.nowait {
                    let ok = queue::DeclareOk {
                        queue: name.into(),
                        message_count: messages,
                        consumer_count: consumers,
                    };
                    reply(self, queue::AMQPMethod::DeclareOk(ok));
                }
            }
            queue::AMQPMethod::Bind(q) => {
                let key = q.routing_key.as_str();
                lock(&self.conn.core).queue_bind(id, q.queue.as_str(), q.exchange.as_str(), key, true)?;
                if !q.nowait {
                    reply(self, queue::AMQPMethod::BindOk(queue::BindOk {}));
                }
            }
            queue::AMQPMethod::Unbind(q) => {
                let key = q.routing_key.as_str();
                lock(&self.conn.core).queue_bind(id, q.queue.as_str(), q.exchange.as_str(), key, false)?;
                reply(self, queue::AMQPMethod::UnbindOk(queue::UnbindOk {}));
            }
            queue::AMQPMethod::Purge(p) => {
                let n = lock(&self.conn.core).queue_purge(id, p.queue.as_str())?;
                if !p.nowait {
                    reply(self, queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n }));
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let n = lock(&self.conn.core).queue_delete(id, d.queue.as_str(), d.if_unused, d.if_empty)?;
                if !d.nowait {
                    reply(self, queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: n }));
                }
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected queue method")),
        }
        Ok(())
    }

    fn basic_method(&mut self, ch: u16, m: basic::AMQPMethod) -> Result<(), AmqpError> {
        let id = self.conn.id;
        match m {
            basic::AMQPMethod::Qos(q) => {
                lock(&self.conn.core).qos(id, ch, q.prefetch_count, q.global);
                self.send_method(ch, b(basic::AMQPMethod::QosOk(basic::QosOk {})));
            }
            basic::AMQPMethod::Consume(c) => {
                let mut core = lock(&self.conn.core);
                let tag =
                    core.consume(id, ch, c.queue.as_str(), c.consumer_tag.as_str(), c.no_ack, c.exclusive)?;
                // consume-ok goes out before the first delivery: both are queued under the lock.
                if !c.nowait {
                    self.send_method(
                        ch,
                        b(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: tag })),
                    );
                }
                core.kick(c.queue.as_str());
            }
            basic::AMQPMethod::Cancel(c) => {
                lock(&self.conn.core).cancel(id, ch, c.consumer_tag.as_str());
                if !c.nowait {
                    let ok = basic::CancelOk { consumer_tag: c.consumer_tag };
                    self.send_method(ch, b(basic::AMQPMethod::CancelOk(ok)));
                }
            }
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - immediate=true"));
                }
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.incoming = Some(Incoming {
                        exchange: p.exchange,
                        routing_key: p.routing_key,
                        mandatory: p.mandatory,
                        properties: None,
                        size: 0,
                        body: Vec::new(),
                        held: 0,
                        charged: 0,
                        refused: None,
                        dropped: 0,
                    });
                }
            }
            basic::AMQPMethod::Get(g) => {
                let got = lock(&self.conn.core).get(id, ch, g.queue.as_str(), g.no_ack)?;
                match got {
                    Some(out) => self.out.send(out),
                    None => self.send_method(ch, b(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))),
                }
            }
            basic::AMQPMethod::Ack(a) => lock(&self.conn.core).ack(id, ch, a.delivery_tag, a.multiple)?,
            basic::AMQPMethod::Nack(n) => {
                lock(&self.conn.core).nack(id, ch, n.delivery_tag, n.multiple, n.requeue)?;
            }
            basic::AMQPMethod::Reject(r) => {
                lock(&self.conn.core).nack(id, ch, r.delivery_tag, false, r.requeue)?
            }
            basic::AMQPMethod::Recover(r) => {
                if !r.requeue {
                    return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - basic.recover requeue=false"));
                }
                lock(&self.conn.core).recover(id, ch);
                self.send_method(ch, b(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
            }
            basic::AMQPMethod::RecoverAsync(_) => {
                return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - basic.recover-async"));
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected basic method")),
        }
        Ok(())
    }

    fn content_header(&mut self, ch: u16, size: u64, properties: BasicProperties) -> Result<(), AmqpError> {
        let limits = &self.conn.cfg.limits;
        let (max, per_connection) = (limits.max_message, limits.max_incoming_per_connection);
        let Some(c) = self.channels.get_mut(&ch).filter(|c| !c.closing) else {
            return if self.channels.contains_key(&ch) {
                Ok(())
            } else {
                Err(AmqpError::connection(504, format!("CHANNEL_ERROR - content on unopened channel {ch}")))
            };
        };
        let Some(inc) = c.incoming.as_mut().filter(|i| i.properties.is_none()) else {
            return Err(AmqpError::connection(
                505,
                "UNEXPECTED_FRAME - content header without basic.publish",
            ));
        };
        if size > max as u64 {
            return Err(AmqpError::channel(
                406,
                format!("PRECONDITION_FAILED - message size {size} is larger than configured max size {max}"),
            ));
        }
        inc.size = size as usize;
        // Charged at its announced size and its parsed properties before any body comes, so
        // that unfinished messages (a header, then silence) are bounded like whole ones.
        let charge = Message::held_for(&inc.exchange, &inc.routing_key, &properties, inc.size);
        // The common case: the whole body came in the same read, in one frame, and is
        // published next, before anything else is read; the core's check at publish is then
        // enough, and its lock is taken once per message, not twice.
        let rest = &self.buf[self.start..];
        let body_read = size == 0
            || (rest.len() > 7 + inc.size
                && rest[0] == 3
                && rest[1..3] == ch.to_be_bytes()
                && rest[3..7] == (size as u32).to_be_bytes());
        let refused = if body_read {
            None
        } else if self.incoming + charge > per_connection {
            Some(AmqpError::refused(format!(
                "unfinished messages on this connection would hold more than {per_connection} bytes: \
                 finish publishing them first"
            )))
        } else {
            lock(&self.conn.core).reserve(charge).err()
        };
        match refused {
            None => {
                inc.properties = Some(properties);
                inc.held = charge;
                if !body_read {
                    inc.charged = charge;
                    self.incoming += charge;
                }
            }
            // Without confirms the channel closes now (406), and the body frames that follow
            // on it are ignored.
            Some(e) if !c.confirm => return Err(e),
            // Under confirms it is nacked in its turn, once its body is read (and dropped: the
            // properties too, which were not charged).
            Some(e) => {
                inc.properties = Some(BasicProperties::default());
                inc.refused = Some(e);
            }
        }
        if size == 0 {
            return self.publish(ch);
        }
        Ok(())
    }

    fn content_body(&mut self, ch: u16, data: Vec<u8>) -> Result<(), AmqpError> {
        let Some(c) = self.channels.get_mut(&ch).filter(|c| !c.closing) else {
            return if self.channels.contains_key(&ch) {
                Ok(())
            } else {
                Err(AmqpError::connection(504, format!("CHANNEL_ERROR - content on unopened channel {ch}")))
            };
        };
        let Some(inc) = c.incoming.as_mut().filter(|i| i.properties.is_some()) else {
            return Err(AmqpError::connection(505, "UNEXPECTED_FRAME - content body without header"));
        };
        let received = inc.body.len() + inc.dropped;
        if received + data.len() > inc.size {
            return Err(AmqpError::connection(501, "FRAME_ERROR - content body longer than its header said"));
        }
        if inc.refused.is_some() {
            inc.dropped += data.len();
        } else if inc.body.is_empty() && data.len() == inc.size {
            inc.body = data; // the common one-frame body: no copy
        } else {
            // The whole announced size is charged already: allocate it once, exactly, rather
            // than doubling (which could hold up to twice the size).
            if inc.body.is_empty() {
                inc.body.reserve_exact(inc.size);
            }
            inc.body.extend_from_slice(&data);
        }
        if inc.body.len() + inc.dropped == inc.size {
            return self.publish(ch);
        }
        Ok(())
    }

    /// A whole message arrived: route it, return it if unroutable and mandatory, confirm it.
    fn publish(&mut self, ch: u16) -> Result<(), AmqpError> {
        let c = self.channels.get_mut(&ch).expect("publishing on an open channel");
        let inc = c.incoming.take().expect("publishing an assembled message");
        let confirm = c.confirm;
        if confirm {
            c.publish_seq += 1;
        }
        let seq = c.publish_seq;
        self.incoming -= inc.charged;
        if let Some(e) = inc.refused {
            return self.refuse(ch, confirm, seq, e);
        }
        let mandatory = inc.mandatory;
        // Its held size was reckoned at its header (all of its announced size came): its
        // headers are not walked a second time.
        let msg = Message {
            exchange: inc.exchange,
            routing_key: inc.routing_key,
            properties: inc.properties.unwrap_or_default(),
            body: inc.body,
            held: inc.held,
        };
        // Kept for basic.return; cheap next to the body only when it is needed.
        let returned = mandatory.then(|| Message {
            exchange: msg.exchange.clone(),
            routing_key: msg.routing_key.clone(),
            properties: msg.properties.clone(),
            body: msg.body.clone(),
            held: msg.held,
        });
        let routed = {
            let mut core = lock(&self.conn.core);
            // From here the message is charged as a message (if a queue takes it).
            core.release(inc.charged);
            core.publish(msg)
        };
        match routed {
            Ok(true) => {}
            Ok(false) => {
                if let Some(m) = returned {
                    let charge = lock(&self.conn.core).unwritten(m.held);
                    self.out.send(Out::Return { channel: ch, msg: Arc::new(m), charge });
                }
            }
            Err(e) => return self.refuse(ch, confirm, seq, e),
        }
        if confirm {
            self.send_method(
                ch,
                b(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: seq, multiple: false })),
            );
        }
        Ok(())
    }
}

impl Session<'_> {
    /// A publish refused by a limit is nacked under confirms; any other error (or any refusal
    /// without confirms) closes the channel or the connection.
    fn refuse(&mut self, ch: u16, confirm: bool, seq: u64, e: AmqpError) -> Result<(), AmqpError> {
        if e.scope == Scope::Refused && confirm {
            let nack = basic::Nack { delivery_tag: seq, multiple: false, requeue: false };
            self.send_method(ch, b(basic::AMQPMethod::Nack(nack)));
            return Ok(());
        }
        Err(e)
    }
}

/// A client that keeps sending without reading what comes back is not read either, as TCP
/// back-pressure would do: this waits until its unread replies are back under REPLIES_HIGH (or
/// its writer stopped). One that reads nothing at all for `timeout` (the heartbeat timeout) is
/// gone (`Err`); one that reads slowly is waited for, however long: its heartbeats queue behind
/// the unread replies, so progress is the sign of life.
async fn replies_read(shared: &ConnShared, timeout: Option<Duration>) -> Result<(), ()> {
    let mut left = shared.replies.load(Ordering::Relaxed);
    loop {
        let notified = shared.replies_drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.replies.load(Ordering::Relaxed) <= REPLIES_HIGH
            || shared.writer_done.load(Ordering::Acquire)
        {
            return Ok(());
        }
        match timeout {
            None => notified.await,
            Some(t) => {
                if tokio::time::timeout(t, notified).await.is_err() {
                    let now = shared.replies.load(Ordering::Relaxed);
                    if now >= left {
                        return Err(());
                    }
                    left = now;
                }
            }
        }
    }
}

fn unexpected(what: &str) -> End {
    End::Error(AmqpError::connection(503, format!("COMMAND_INVALID - expected {what}")), 10, 0)
}

fn connection_close(e: &AmqpError, class_id: u16, method_id: u16) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: e.code,
        reply_text: short(&e.text),
        class_id,
        method_id,
    }))
}

/// AMQP short strings hold at most 255 bytes.
fn short(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}

/// Feed `input` to a session whose handshake is done (channel_max and `frame_max` as
/// negotiated), frame by frame as the reader would, with `core` behind it; the writer's queue is
/// handed back unwritten. For the fuzz targets in fuzz/, which reach the frame handling without
/// a socket. Returns the code of the connection.close the session ended with, if any.
pub(super) fn replay(
    core: &Arc<Mutex<Core>>,
    cfg: &Arc<BrokerConfig>,
    id: ConnId,
    frame_max: u32,
    input: &[u8],
) -> (Option<u16>, mpsc::UnboundedReceiver<Out>) {
    let conn = Connection::new(
        id,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Arc::clone(core),
        Arc::clone(cfg),
        CancellationToken::new(),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let out = ConnOut { tx, shared: Arc::new(ConnShared::default()) };
    out.shared.frame_max.store(frame_max, Ordering::Relaxed);
    lock(core).register_connection(id, out.clone());
    let mut session = Session {
        conn: &conn,
        out,
        buf: Vec::new(),
        start: 0,
        frame_max,
        channel_max: cfg.limits.channel_max,
        heartbeat: 0,
        channels: HashMap::new(),
        registered: true,
        incoming: 0,
    };
    let mut at = 0;
    let end = loop {
        match frames::parse(&input[at..], frame_max) {
            Parsed::Frame(f, used) => {
                at += used;
                if let Err(end) = session.handle(f) {
                    break end;
                }
            }
            Parsed::Bad(e) => break End::Error(e, 0, 0),
            Parsed::Incomplete => break End::Quiet,
        }
    };
    let code = match end {
        End::Error(e, class_id, method_id) => {
            session.send_method(0, connection_close(&e, class_id, method_id));
            Some(e.code)
        }
        End::Quiet => None,
    };
    {
        // As when a real connection ends: unfinished messages give back what they charged.
        let mut core = lock(core);
        core.release(session.incoming);
        core.drop_connection(id);
    }
    (code, rx)
}

#[cfg(test)]
mod tests;
