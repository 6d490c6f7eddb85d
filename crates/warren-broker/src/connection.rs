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
use super::core::REPLY_TO;
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

mod methods;
mod publishing;

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
        self.sync_closed_by_broker();
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
            Scope::Channel | Scope::Refused | Scope::Rejected => {
                // The core closed the channel itself while this method was on its way (a
                // consumer timeout): the client has its channel.close already.
                self.sync_closed_by_broker();
                if self.channels.get(&ch).is_some_and(|c| c.closing) {
                    return Ok(());
                }
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

    /// Channels the core closed on its own (it sent their channel.close) are closing here too:
    /// what the client sends on them until close-ok is dropped, as after a channel error.
    fn sync_closed_by_broker(&mut self) {
        let shared = &self.out.shared;
        if !shared.broker_closed_any.load(Ordering::Acquire) {
            return;
        }
        shared.broker_closed_any.store(false, Ordering::Release);
        let closed = std::mem::take(&mut *shared.closed_by_broker.lock().unwrap_or_else(|e| e.into_inner()));
        for ch in closed {
            if let Some(c) = self.channels.get_mut(&ch) {
                c.closing = true;
                if let Some(inc) = c.incoming.take() {
                    self.incoming -= inc.charged;
                    lock(&self.conn.core).release(inc.charged);
                }
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
