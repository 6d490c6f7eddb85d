//! Hostile peers against the embedded broker (src/broker): garbage, truncated, oversized and
//! out-of-place frames, and every limit. Whatever one connection sends, the broker answers with
//! the right reply code or closes that connection, and never panics, hangs, or disturbs the
//! others.
//!
//! Over the wire: three proptest properties
//! (random bytes and frame-shaped junk in place of the handshake or after it; soups of valid
//! frames in any order; random mutations of a valid session), then table-driven cases that pin
//! each reply code. For longer fuzzing runs see fuzz/README.md:
//! `PROPTEST_CASES=100000 cargo test --release --test broker_hostile fuzz_`.

mod common;

use std::net::SocketAddr;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPFrame, ProtocolVersion, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection, exchange, queue, tx};
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::broker::{self, BrokerConfig, Limits, Message, RunningBroker};
use warren::workload::connect::{reply_code, reply_text};

/// How long a hostile connection may take to be answered or closed.
const WAIT: Duration = Duration::from_secs(5);
/// One fuzz case (hostile connection plus a fresh healthy round trip); a hang fails the case.
const CASE_TIMEOUT: Duration = Duration::from_secs(15);
/// connection.close codes for bad frames and methods once the handshake is done.
const AFTER_HANDSHAKE: &[u16] = &[501, 502, 503, 504, 505, 530, 540];
/// ...and while it is under way, where bad credentials are ACCESS_REFUSED.
const IN_HANDSHAKE: &[u16] = &[403, 501, 502, 503, 504, 505, 530, 540];
/// channel.close codes the broker may use (soft errors).
const CHANNEL_CODES: &[u16] = &[403, 404, 405, 406, 540];

// ---- panics anywhere outside this file are broker panics ----

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Record every panic raised outside this file (the broker, amq-protocol, tokio): a panicking
/// connection task would otherwise go unnoticed, since tokio contains it.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().ends_with("broker_hostile.rs")) {
                PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(info.to_string());
            }
            default(info);
        }));
    });
}

fn panic_count() -> usize {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Err if the broker panicked since the `since`-th panic recorded.
fn broker_panics(since: usize) -> Result<(), String> {
    let panics = PANICS.lock().unwrap_or_else(|e| e.into_inner());
    match panics.get(since..) {
        Some(new) if !new.is_empty() => Err(format!("the broker panicked: {new:?}")),
        _ => Ok(()),
    }
}

async fn start(limits: Limits) -> RunningBroker {
    watch_panics();
    let mut cfg = BrokerConfig::local();
    cfg.limits = limits;
    broker::start(cfg).await.expect("the embedded broker starts")
}

// ---- frames: see tests/common/frames.rs ----

use common::frames::*;

/// One whole frame from the broker, which must parse exactly.
fn parse_whole(bytes: &[u8]) -> Result<AMQPFrame, String> {
    match parse_frame(bytes) {
        Ok((&[], f)) => Ok(f),
        _ => Err(format!("the broker sent a malformed frame: {bytes:02x?}")),
    }
}

fn is_method(frame: &AMQPFrame, want_ch: u16, pred: impl Fn(&AMQPClass) -> bool) -> bool {
    matches!(frame, AMQPFrame::Method(ch, class) if *ch == want_ch && pred(class))
}

// ---- a raw, hostile client ----

struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect to the broker");
        Self { stream, buf: Vec::new() }
    }

    /// A guest connection through connection.open-ok, with this frame_max and heartbeat.
    async fn handshake(addr: SocketAddr, frame_max: u32, heartbeat: u16) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(&cat(&[
            HEADER,
            &encode(&[start_ok("guest", "guest"), tune_ok(frame_max, heartbeat), open("/")]),
        ]))
        .await;
        for want in ["start", "tune", "open-ok"] {
            let f = raw.expect_frame().await;
            let ok = is_method(&f, 0, |c| match c {
                AMQPClass::Connection(connection::AMQPMethod::Start(_)) => want == "start",
                AMQPClass::Connection(connection::AMQPMethod::Tune(_)) => want == "tune",
                AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)) => want == "open-ok",
                _ => false,
            });
            assert!(ok, "handshake: expected connection.{want}, got {f:?}");
        }
        raw
    }

    /// Writes may fail once the broker has hung up; what it answered is what the tests check.
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    async fn send_frames(&mut self, frames: &[AMQPFrame]) {
        self.send(&encode(frames)).await;
    }

    /// Close our sending side: the broker reads end-of-stream after what we sent.
    async fn half_close(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next frame, `Ok(None)` once the broker closed the socket, `Err` if it sent bytes that
    /// are not AMQP frames.
    async fn read_frame(&mut self) -> Result<Option<AMQPFrame>, String> {
        loop {
            if let Some(n) = frame_len(&self.buf) {
                let bytes: Vec<u8> = self.buf.drain(..n).collect();
                return parse_whole(&bytes).map(Some);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) if self.buf.is_empty() => return Ok(None),
                Ok(0) | Err(_) => return Err(format!("the stream ended inside a frame: {:02x?}", self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn next(&mut self) -> Option<AMQPFrame> {
        match tokio::time::timeout(WAIT, self.read_frame()).await {
            Ok(r) => r.unwrap_or_else(|e| panic!("{e}")),
            Err(_) => panic!("the broker neither answered nor closed the connection within {WAIT:?}"),
        }
    }

    /// The next frame other than a heartbeat; the socket must still be open.
    async fn expect_frame(&mut self) -> AMQPFrame {
        loop {
            match self.next().await {
                Some(AMQPFrame::Heartbeat) => continue,
                Some(f) => return f,
                None => panic!("the broker closed the connection unexpectedly"),
            }
        }
    }

    /// connection.close (after any start / tune / open-ok of a pipelined handshake): answer
    /// close-ok, then the broker must close the socket.
    async fn expect_connection_close(&mut self) -> connection::Close {
        loop {
            match self.next().await {
                Some(AMQPFrame::Method(0, AMQPClass::Connection(m))) => match m {
                    connection::AMQPMethod::Close(c) => {
                        self.send_frames(&[close_ok()]).await;
                        self.expect_eof().await;
                        return c;
                    }
                    connection::AMQPMethod::Start(_)
                    | connection::AMQPMethod::Tune(_)
                    | connection::AMQPMethod::OpenOk(_) => {}
                    other => panic!("expected connection.close, got {other:?}"),
                },
                Some(AMQPFrame::Heartbeat) => {}
                Some(other) => panic!("expected connection.close, got {other:?}"),
                None => panic!("the broker closed the socket without connection.close"),
            }
        }
    }

    /// channel.close on `ch`; answers close-ok.
    async fn expect_channel_close(&mut self, ch: u16) -> channel::Close {
        match self.expect_frame().await {
            AMQPFrame::Method(c, AMQPClass::Channel(channel::AMQPMethod::Close(close))) if c == ch => {
                self.send_frames(&[chan(ch, channel::AMQPMethod::CloseOk(channel::CloseOk {}))]).await;
                close
            }
            other => panic!("expected channel.close on channel {ch}, got {other:?}"),
        }
    }

    /// Nothing more but heartbeats, then the broker closes the socket.
    async fn expect_eof(&mut self) {
        loop {
            match self.next().await {
                None => return,
                Some(AMQPFrame::Heartbeat) => {}
                Some(other) => panic!("expected the connection to close, got {other:?}"),
            }
        }
    }

    async fn open_channel(&mut self, ch: u16) {
        self.send_frames(&[channel_open(ch)]).await;
        let f = self.expect_frame().await;
        assert!(
            is_method(&f, ch, |c| matches!(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))),
            "expected channel.open-ok on {ch}, got {f:?}"
        );
    }

    /// A clean connection.close / close-ok, then end of stream.
    async fn close(mut self) {
        self.send_frames(&[conn_close()]).await;
        let f = self.expect_frame().await;
        assert!(
            is_method(&f, 0, |c| matches!(c, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))),
            "expected connection.close-ok, got {f:?}"
        );
        self.expect_eof().await;
    }

    /// Everything the broker sends until it closes the socket (which it must within WAIT).
    async fn drain(&mut self) -> Result<Vec<AMQPFrame>, String> {
        let (stream, buf) = (&mut self.stream, &mut self.buf);
        let read_all = async {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) => return true,
                    // A reset (the broker closed with our bytes unread) may cut what it sent.
                    Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let clean = tokio::time::timeout(WAIT, read_all)
            .await
            .map_err(|_| format!("the broker did not close the connection within {WAIT:?}"))?;
        let mut frames = Vec::new();
        while let Some(n) = frame_len(&self.buf) {
            let bytes: Vec<u8> = self.buf.drain(..n).collect();
            frames.push(parse_whole(&bytes)?);
        }
        if clean && !self.buf.is_empty() {
            return Err(format!("the broker's output ends inside a frame: {:02x?}", self.buf));
        }
        Ok(frames)
    }
}

// ---- a healthy client (lapin) ----

async fn roundtrip(channel: &lapin::Channel, queue: &ShortString, payload: &[u8]) -> Result<(), String> {
    channel
        .basic_publish(
            "".into(),
            queue.clone(),
            BasicPublishOptions::default(),
            payload,
            BasicProperties::default(),
        )
        .await
        .map_err(|e| format!("basic.publish: {e}"))?
        .await
        .map_err(|e| format!("basic.publish: {e}"))?;
    let got = channel
        .basic_get(queue.clone(), BasicGetOptions { no_ack: true })
        .await
        .map_err(|e| format!("basic.get: {e}"))?;
    match got {
        Some(m) if m.delivery.data == payload => Ok(()),
        other => Err(format!("basic.get returned {:?}", other.map(|m| m.delivery.data))),
    }
}

async fn exclusive_queue(channel: &lapin::Channel) -> Result<ShortString, String> {
    let options = QueueDeclareOptions { exclusive: true, ..QueueDeclareOptions::default() };
    let q = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .map_err(|e| format!("queue.declare: {e}"))?;
    Ok(q.name().clone())
}

/// A brand-new well-behaved connection: connect, declare, publish, get, close.
async fn fresh_roundtrip(url: &str) -> Result<(), String> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| format!("a fresh connection failed: {e}"))?;
    let channel = conn.create_channel().await.map_err(|e| format!("channel.open: {e}"))?;
    let queue = exclusive_queue(&channel).await?;
    roundtrip(&channel, &queue, b"still serving").await?;
    conn.close(200, "bye".into()).await.map_err(|e| format!("connection.close: {e}"))
}

/// A connection opened before the hostile one, checked after each hostile act.
struct Healthy {
    _conn: lapin::Connection,
    channel: lapin::Channel,
    queue: ShortString,
    checks: u32,
}

impl Healthy {
    async fn open(url: &str) -> Self {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("the healthy connection opens");
        let channel = conn.create_channel().await.expect("the healthy channel opens");
        let queue = exclusive_queue(&channel).await.expect("the healthy queue is declared");
        Self { _conn: conn, channel, queue, checks: 0 }
    }

    async fn check(&mut self, after: &str) {
        self.checks += 1;
        let payload = format!("ok {}", self.checks);
        if let Err(e) = roundtrip(&self.channel, &self.queue, payload.as_bytes()).await {
            panic!("after {after}: the healthy connection no longer works: {e}");
        }
        if let Err(e) = broker_panics(0) {
            panic!("after {after}: {e}");
        }
    }
}

// ---- fuzzing ----

/// A hostile connection's bytes, and the connection.close codes it may earn.
#[derive(Debug, Clone)]
struct Hostile {
    bytes: Vec<u8>,
    allowed: &'static [u16],
}

/// What the broker sent a hostile connection: well-formed frames only, a protocol header only as
/// its whole answer, and close codes from the allowed set.
fn judge(frames: &[AMQPFrame], allowed: &[u16]) -> Result<(), String> {
    for f in frames {
        match f {
            AMQPFrame::ProtocolHeader(v) if frames.len() != 1 || *v != ProtocolVersion::amqp_0_9_1() => {
                return Err(format!("unexpected protocol header in {frames:?}"));
            }
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))
                if !allowed.contains(&c.reply_code) =>
            {
                let (code, text) = (c.reply_code, &c.reply_text);
                return Err(format!("connection.close {code} {text:?} is not one of {allowed:?}"));
            }
            AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c)))
                if !CHANNEL_CODES.contains(&c.reply_code) =>
            {
                let (code, text) = (c.reply_code, &c.reply_text);
                return Err(format!("channel.close {code} {text:?} is not a soft error"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One case: send, close our side, the broker must answer sensibly and hang up; then a fresh
/// connection must still work and nothing may have panicked. Returns how the hostile connection
/// ended, for the statistics (the caller bounds the case with CASE_TIMEOUT).
async fn survive(addr: SocketAddr, url: &str, h: &Hostile) -> Result<String, String> {
    // Only this case's panics, so that shrinking finds the input that causes one.
    let before = panic_count();
    let mut raw = Raw::connect(addr).await;
    raw.send(&h.bytes).await;
    raw.half_close().await;
    let frames = raw.drain().await?;
    judge(&frames, h.allowed)?;
    broker_panics(before)?;
    fresh_roundtrip(url).await?;
    broker_panics(before)?;
    let ending = frames.iter().find_map(|f| match f {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            Some(format!("connection.close {}", c.reply_code))
        }
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
            Some("connection.close-ok".into())
        }
        AMQPFrame::ProtocolHeader(_) => Some("protocol header".into()),
        _ => None,
    });
    Ok(ending.unwrap_or_else(|| "closed without a word".into()))
}

/// `default_cases` cases (PROPTEST_CASES overrides it) against one broker. It accepts at most 8
/// connections, so a connection the broker forgot to release fails the property too.
fn fuzz(name: &str, default_cases: u32, strategy: impl Strategy<Value = Hostile>) {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config.max_shrink_iters = 256;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = rt.block_on(start(Limits { max_connections: 8, ..Limits::default() }));
    let (addr, url) = (broker.addr, broker.url("guest", "guest"));
    let mut runner = TestRunner::new(config);
    let endings = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    let result = runner.run(&strategy, |h| {
        let outcome =
            rt.block_on(async { tokio::time::timeout(CASE_TIMEOUT, survive(addr, &url, &h)).await });
        match outcome {
            Ok(Ok(ending)) => {
                *endings.borrow_mut().entry(ending).or_default() += 1;
                Ok(())
            }
            Ok(Err(e)) => Err(TestCaseError::fail(e)),
            Err(_) => Err(TestCaseError::fail(format!("the case hung for {CASE_TIMEOUT:?}"))),
        }
    });
    rt.block_on(broker.stop());
    eprintln!("{name}: hostile connections ended with {:?}", endings.borrow());
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Every (class, method) of AMQP 0-9-1 and RabbitMQ's extensions.
#[rustfmt::skip]
const METHODS: &[(u16, u16)] = &[
    (10, 10), (10, 11), (10, 20), (10, 21), (10, 30), (10, 31), (10, 40), (10, 41), (10, 50), (10, 51),
    (10, 60), (10, 61), (10, 70), (10, 71), (20, 10), (20, 11), (20, 20), (20, 21), (20, 40), (20, 41),
    (30, 10), (30, 11), (40, 10), (40, 11), (40, 20), (40, 21), (40, 30), (40, 31), (40, 40), (40, 51),
    (50, 10), (50, 11), (50, 20), (50, 21), (50, 30), (50, 31), (50, 40), (50, 41), (50, 50), (50, 51),
    (60, 10), (60, 11), (60, 20), (60, 21), (60, 30), (60, 31), (60, 40), (60, 50), (60, 60), (60, 70),
    (60, 71), (60, 72), (60, 80), (60, 90), (60, 100), (60, 110), (60, 111), (60, 120), (85, 10),
    (85, 11), (90, 10), (90, 11), (90, 20), (90, 21), (90, 30), (90, 31),
];

#[derive(Debug, Clone)]
enum Size {
    Exact,
    Off(i8),
    Is(u32),
}

/// Bytes shaped like one frame: mostly a real type, a low channel, a real method id or a content
/// header, a size that mostly matches, and mostly the right end octet.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![4 => select(vec![1u8, 2, 3, 8]), 1 => any::<u8>()];
    let payload = prop_oneof![
        vec(any::<u8>(), 0..48),
        (select(METHODS), vec(any::<u8>(), 0..40)).prop_map(|((c, m), rest)| cat(&[
            &c.to_be_bytes(),
            &m.to_be_bytes(),
            &rest
        ])),
        (any::<u64>(), any::<u16>(), vec(any::<u8>(), 0..40)).prop_map(|(size, flags, rest)| cat(&[
            &[0, 60, 0, 0],
            &size.to_be_bytes(),
            &flags.to_be_bytes(),
            &rest
        ])),
    ];
    let size = prop_oneof![
        6 => Just(Size::Exact),
        1 => (-3i8..4).prop_map(Size::Off),
        1 => any::<u32>().prop_map(Size::Is),
    ];
    let end = prop_oneof![6 => Just(0xCEu8), 1 => any::<u8>()];
    (kind, 0u16..4, payload, size, end).prop_map(|(kind, ch, payload, size, end)| {
        let n = match size {
            Size::Exact => payload.len() as u32,
            Size::Off(d) => (payload.len() as i64 + i64::from(d)).max(0) as u32,
            Size::Is(n) => n,
        };
        cat(&[&[kind], &ch.to_be_bytes(), &n.to_be_bytes(), &payload, &[end]])
    })
}

/// The methods that carry a field table (connection.start and start-ok, exchange.declare, bind
/// and unbind, queue.declare, bind and unbind, basic.consume).
const TABLE_CARRIERS: &[(u16, u16)] =
    &[(10, 10), (10, 11), (40, 10), (40, 30), (40, 40), (50, 10), (50, 20), (50, 50), (60, 20)];

/// A well-framed method or content header that carries a field table, with table-like bytes:
/// many 'A' and 'F' type octets and small lengths, to reach the nesting check and the parser's
/// recursion.
fn table_frame() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => select(b"AF".to_vec()),
        3 => Just(0u8),
        2 => 1u8..10,
        1 => select(b"stSxVTIlDk".to_vec()),
        1 => any::<u8>(),
    ];
    let method = (select(TABLE_CARRIERS), vec(byte.clone(), 0..300))
        .prop_map(|((c, m), rest)| (1u8, cat(&[&c.to_be_bytes(), &m.to_be_bytes(), &rest])));
    let header = (any::<u16>(), vec(byte, 0..300)).prop_map(|(flags, rest)| {
        // Always the headers property; the others as they fall.
        let flags = flags | 1 << 13;
        (2u8, cat(&[&[0, 60, 0, 0], &[0; 8], &flags.to_be_bytes(), &rest]))
    });
    // queue.declare with arguments nested 1 to 150 deep (the limit is 64), one byte maybe changed.
    let nested =
        (1usize..150, proptest::option::of((any::<Index>(), any::<u8>()))).prop_map(|(depth, change)| {
            let mut payload = cat(&[&[0, 50, 0, 10, 0, 0, 4], b"deep", &[0], &nested_table(depth - 1)]);
            if let Some((i, v)) = change {
                let at = 12 + i.index(payload.len() - 12);
                payload[at] = v;
            }
            (1u8, payload)
        });
    (prop_oneof![method, header, nested], 0u16..2).prop_map(|((kind, payload), ch)| {
        cat(&[&[kind], &ch.to_be_bytes(), &(payload.len() as u32).to_be_bytes(), &payload, &[0xCE]])
    })
}

fn junk() -> BoxedStrategy<Vec<u8>> {
    let frames = vec(prop_oneof![3 => frame_like(), 1 => table_frame()], 1..6).prop_map(|fs| fs.concat());
    prop_oneof![vec(any::<u8>(), 0..300), frames].boxed()
}

/// Junk in place of the protocol header, after "AMQP", in place of start-ok, or after a whole
/// handshake and channel.open.
fn garbage() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..64).prop_map(|bytes| Hostile { bytes, allowed: IN_HANDSHAKE }),
        1 => junk().prop_map(|j| Hostile { bytes: cat(&[b"AMQP", &j]), allowed: IN_HANDSHAKE }),
        1 => junk().prop_map(|j| Hostile { bytes: cat(&[HEADER, &j]), allowed: IN_HANDSHAKE }),
        3 => junk().prop_map(|j| Hostile {
            bytes: cat(&[&login(), &encode(&[channel_open(1)]), &j]),
            allowed: AFTER_HANDSHAKE,
        }),
    ]
}

/// One valid frame (or publish + header + body), with parameters from small pools so that they
/// meet: mostly channels 1 and 2, mostly queues fz1 and fz2, consumer tags t1 and t2, delivery
/// tags 0-6.
fn soup_item() -> BoxedStrategy<Vec<AMQPFrame>> {
    // Mostly the open channels 1 and 2: a frame on a channel never opened ends the connection.
    let ch = || prop_oneof![30 => Just(1u16), 10 => Just(2u16), 1 => 0u16..5];
    let q = || prop_oneof![4 => select(vec!["fz1", "fz2"]), 1 => select(vec!["", "amq.nope"])];
    let x = || select(vec!["", "amq.direct", "amq.fanout", "fzx", "nope"]);
    let tag = || select(vec!["", "t1", "t2"]);
    // Weighted: what ends the connection or a channel is rarer, so that sessions get somewhere.
    let arms: Vec<(u32, BoxedStrategy<Vec<AMQPFrame>>)> = vec![
        (1, (3u16..5).prop_map(|c| vec![channel_open(c)]).boxed()),
        (1, (1u16..4).prop_map(|c| vec![channel_close(c)]).boxed()),
        (1, ch().prop_map(|c| vec![chan(c, channel::AMQPMethod::CloseOk(channel::CloseOk {}))]).boxed()),
        (
            4,
            (ch(), any::<bool>())
                .prop_map(|(c, active)| vec![chan(c, channel::AMQPMethod::Flow(channel::Flow { active }))])
                .boxed(),
        ),
        (
            4,
            (ch(), q(), any::<bool>(), any::<bool>())
                .prop_map(|(c, q, e, a)| vec![declare_with(c, q, e, a)])
                .boxed(),
        ),
        (
            1,
            (ch(), q(), any::<bool>(), any::<bool>())
                .prop_map(|(c, q, if_unused, if_empty)| {
                    let d = queue::Delete { queue: q.into(), if_unused, if_empty, nowait: false };
                    vec![AMQPFrame::Method(c, AMQPClass::Queue(queue::AMQPMethod::Delete(d)))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), q())
                .prop_map(|(c, q)| {
                    let p = queue::Purge { queue: q.into(), nowait: false };
                    vec![AMQPFrame::Method(c, AMQPClass::Queue(queue::AMQPMethod::Purge(p)))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), q(), x(), q(), any::<bool>())
                .prop_map(|(c, q, x, key, bind)| {
                    let m = if bind {
                        queue::AMQPMethod::Bind(queue::Bind {
                            queue: q.into(),
                            exchange: x.into(),
                            routing_key: key.into(),
                            nowait: false,
                            arguments: FieldTable::default(),
                        })
                    } else {
                        queue::AMQPMethod::Unbind(queue::Unbind {
                            queue: q.into(),
                            exchange: x.into(),
                            routing_key: key.into(),
                            arguments: FieldTable::default(),
                        })
                    };
                    vec![AMQPFrame::Method(c, AMQPClass::Queue(m))]
                })
                .boxed(),
        ),
        (
            1,
            (ch(), select(vec!["direct", "fanout", "topic", "headers", "bogus"]), any::<bool>())
                .prop_map(|(c, kind, delete)| {
                    let m = if delete {
                        exchange::AMQPMethod::Delete(exchange::Delete {
                            exchange: "fzx".into(),
                            if_unused: false,
                            nowait: false,
                        })
                    } else {
                        exchange::AMQPMethod::Declare(exchange::Declare {
                            exchange: "fzx".into(),
                            kind: kind.into(),
                            passive: false,
                            durable: false,
                            auto_delete: false,
                            internal: false,
                            nowait: false,
                            arguments: FieldTable::default(),
                        })
                    };
                    vec![AMQPFrame::Method(c, AMQPClass::Exchange(m))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), 0u16..3, any::<bool>())
                .prop_map(|(c, prefetch_count, global)| {
                    vec![b(c, basic::AMQPMethod::Qos(basic::Qos { prefetch_count, global }))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), q(), tag(), any::<bool>(), any::<bool>())
                .prop_map(|(c, q, t, no_ack, exclusive)| {
                    let m = basic::Consume {
                        queue: q.into(),
                        consumer_tag: t.into(),
                        no_local: false,
                        no_ack,
                        exclusive,
                        nowait: false,
                        arguments: FieldTable::default(),
                    };
                    vec![b(c, basic::AMQPMethod::Consume(m))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), tag())
                .prop_map(|(c, t)| {
                    vec![b(
                        c,
                        basic::AMQPMethod::Cancel(basic::Cancel { consumer_tag: t.into(), nowait: false }),
                    )]
                })
                .boxed(),
        ),
        (
            4,
            (
                ch(),
                x(),
                q(),
                any::<bool>(),
                vec(any::<u8>(), 0..40),
                prop_oneof![8 => Just(0i64), 1 => -1i64..2],
                0usize..3,
            )
                .prop_map(|(c, x, key, mandatory, data, skew, split)| {
                    let size = (data.len() as i64 + skew).max(0) as u64;
                    let mut frames = vec![publish_with(c, x, key, mandatory, false), header(c, size)];
                    let cut = data.len() * split / 2;
                    frames.extend(
                        [body(c, &data[..cut]), body(c, &data[cut..])]
                            .into_iter()
                            .filter(|f| !matches!(f, AMQPFrame::Body(_, d) if d.is_empty())),
                    );
                    frames
                })
                .boxed(),
        ),
        (
            4,
            (ch(), q(), any::<bool>())
                .prop_map(|(c, q, no_ack)| {
                    vec![b(c, basic::AMQPMethod::Get(basic::Get { queue: q.into(), no_ack }))]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), 0u64..7, any::<bool>(), any::<bool>(), 0u8..3)
                .prop_map(|(c, delivery_tag, multiple, requeue, which)| {
                    let m = match which {
                        0 => basic::AMQPMethod::Ack(basic::Ack { delivery_tag, multiple }),
                        1 => basic::AMQPMethod::Nack(basic::Nack { delivery_tag, multiple, requeue }),
                        _ => basic::AMQPMethod::Reject(basic::Reject { delivery_tag, requeue }),
                    };
                    vec![b(c, m)]
                })
                .boxed(),
        ),
        (
            4,
            (ch(), prop_oneof![4 => Just(true), 1 => Just(false)])
                .prop_map(|(c, requeue)| vec![b(c, basic::AMQPMethod::Recover(basic::Recover { requeue }))])
                .boxed(),
        ),
        (4, ch().prop_map(|c| vec![confirm_select(c)]).boxed()),
        (4, Just(vec![AMQPFrame::Heartbeat]).boxed()),
        (1, (ch(), 0u64..50).prop_map(|(c, n)| vec![header(c, n)]).boxed()),
        (1, (ch(), vec(any::<u8>(), 1..20)).prop_map(|(c, d)| vec![body(c, &d)]).boxed()),
        (
            1,
            ch().prop_map(|c| {
                vec![AMQPFrame::Method(c, AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})))]
            })
            .boxed(),
        ),
    ];
    Union::new_weighted(arms).boxed()
}

/// After a preamble that leaves a message in each of fz1 and fz2 (so that gets, consumes, acks
/// and recovers have something to work on), up to 24 soup items.
fn soup() -> impl Strategy<Value = Hostile> {
    let mut preamble = vec![channel_open(1), channel_open(2)];
    for q in ["fz1", "fz2"] {
        preamble.extend([declare(1, q), publish(1, q), header(1, 3), body(1, b"fz!")]);
    }
    let preamble = cat(&[&login(), &encode(&preamble)]);
    vec(soup_item(), 1..24).prop_map(move |items| Hostile {
        bytes: cat(&[&preamble, &encode(&items.concat())]),
        allowed: AFTER_HANDSHAKE,
    })
}

/// The session the mutations start from: handshake, channel, confirms, declare, publish with
/// properties, get, channel.close, connection.close.
fn valid_session() -> Vec<u8> {
    let mut headers = FieldTable::default();
    headers.insert("k".into(), AMQPValue::LongString("v".into()));
    let props = BasicProperties::default().with_content_type("text/plain".into()).with_headers(headers);
    cat(&[
        &login(),
        &encode(&[
            channel_open(1),
            confirm_select(1),
            declare(1, "fuzz.mutated"),
            publish(1, "fuzz.mutated"),
            header_with(1, 11, props),
            body(1, b"hello fuzz!"),
            get(1, "fuzz.mutated"),
            channel_close(1),
            conn_close(),
        ]),
    ])
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, u8),
    Truncate(Index),
    Repeat(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        2 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        2 => (any::<Index>(), 1u8..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Repeat(a, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match m {
            Mutation::Flip(i, bit) => bytes[i.index(len)] ^= 1 << bit,
            Mutation::Set(i, v) => bytes[i.index(len)] = *v,
            Mutation::Insert(i, v) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i.index(len);
                bytes.drain(at..(at + usize::from(*n)).min(len));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Repeat(a, b) => {
                let (x, y) = (a.index(len), b.index(len));
                let copy = bytes[x.min(y)..=x.max(y)].to_vec();
                bytes.splice(x.max(y) + 1..x.max(y) + 1, copy);
            }
        }
    }
    bytes
}

/// 1a. Random bytes and frame-shaped junk, in place of the handshake or after it.
#[test]
fn fuzz_garbage_never_panics_hangs_or_disturbs_others() {
    fuzz("garbage", 128, garbage());
}

/// 1a. Valid frames in random order and combinations (the state machine behind the parser).
#[test]
fn fuzz_frame_soups_never_panic_hang_or_disturb_others() {
    fuzz("soups", 128, soup());
}

/// 1b. A valid session with bytes flipped, set, inserted, removed, repeated or cut off.
#[test]
fn fuzz_mutated_sessions_never_panic_hang_or_disturb_others() {
    fuzz(
        "mutations",
        128,
        vec(mutation(), 1..5)
            .prop_map(|ms| Hostile { bytes: mutate(valid_session(), &ms), allowed: IN_HANDSHAKE }),
    );
}

/// The base of the mutations works as intended, so the mutations start from a real session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_the_mutations_start_from_is_valid() {
    let broker = start(Limits::default()).await;
    let mut raw = Raw::connect(broker.addr).await;
    raw.send(&valid_session()).await;
    let mut seen = Vec::new();
    while let Some(f) = raw.next().await {
        seen.push(f);
    }
    let names: Vec<String> = seen
        .iter()
        .map(|f| match f {
            AMQPFrame::Method(ch, c) => format!("{ch}:{}.{}", c.get_amqp_class_id(), c.get_amqp_method_id()),
            AMQPFrame::Header(ch, h) => format!("{ch}:header {}", h.body_size),
            AMQPFrame::Body(ch, d) => format!("{ch}:body {}", String::from_utf8_lossy(d)),
            other => format!("{other:?}"),
        })
        .collect();
    let want = [
        "0:10.10",
        "0:10.30",
        "0:10.41",
        "1:20.11",
        "1:85.11",
        "1:50.11",
        "1:60.80",
        "1:60.71",
        "1:header 11",
        "1:body hello fuzz!",
        "1:20.41",
        "0:10.51",
    ];
    assert_eq!(names, want);
    broker.stop().await;
}

// ---- table-driven cases: each reply code ----

#[derive(Debug, Clone, Copy)]
enum Before {
    /// A bare TCP connection.
    Nothing,
    /// A finished handshake with this frame_max.
    Connected(u32),
    /// A finished handshake and channel 1 open.
    Channel1,
}

#[derive(Debug, Clone, Copy)]
enum Then {
    /// connection.close with this code and text containing this.
    ConnectionClose(u16, &'static str),
    /// channel.close on channel 1 with this code and text; the connection lives on.
    ChannelClose(u16, &'static str),
    /// The broker sends its own protocol header and closes.
    TheirHeader,
    /// The broker closes without a word.
    Closed,
}

struct Case {
    name: &'static str,
    before: Before,
    send: Vec<u8>,
    /// Close our sending side after `send`.
    hang_up: bool,
    then: Then,
}

fn case(name: &'static str, before: Before, send: Vec<u8>, then: Then) -> Case {
    Case { name, before, send, hang_up: false, then }
}

fn with_end(mut frame: Vec<u8>, end: u8) -> Vec<u8> {
    *frame.last_mut().unwrap() = end;
    frame
}

/// A method frame with raw payload bytes.
fn raw_method(ch: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&[1], &ch.to_be_bytes(), &(payload.len() as u32).to_be_bytes(), payload, &[0xCE]])
}

fn cases() -> Vec<Case> {
    use Before::*;
    use Then::*;
    let declare1 = encode(&[declare(1, "hostile")]);
    // A declare frame with one byte of junk inside it, after its arguments.
    let mut trailing = declare1.clone();
    trailing.insert(trailing.len() - 1, 0);
    let size = u32::from_be_bytes([trailing[3], trailing[4], trailing[5], trailing[6]]) + 1;
    trailing[3..7].copy_from_slice(&size.to_be_bytes());
    let tx_select = AMQPFrame::Method(1, AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})));
    let recover_async = b(1, basic::AMQPMethod::RecoverAsync(basic::RecoverAsync { requeue: true }));
    let login_as = |user, password| cat(&[HEADER, &encode(&[start_ok(user, password)])]);
    let tuned = |frame_max, vhost| {
        cat(&[HEADER, &encode(&[start_ok("guest", "guest"), tune_ok(frame_max, 0), open(vhost)])])
    };
    vec![
        // Frame-level errors: 501 FRAME_ERROR (502 SYNTAX_ERROR for a bad payload).
        case(
            "a frame above the negotiated frame_max",
            Connected(8192),
            vec![3, 0, 1, 0, 0, 0x20, 0x01],
            ConnectionClose(501, "frame_max 8192"),
        ),
        case(
            "a frame claiming 4 GiB",
            Channel1,
            vec![1, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF],
            ConnectionClose(501, "FRAME_ERROR"),
        ),
        case(
            "a heartbeat without its end octet",
            Channel1,
            vec![8, 0, 0, 0, 0, 0, 0, 0x00],
            ConnectionClose(501, "0xCE"),
        ),
        case(
            "a method frame with a bad end octet",
            Channel1,
            with_end(declare1.clone(), 0xCD),
            ConnectionClose(501, "0xCE"),
        ),
        case(
            "unknown frame type 9",
            Channel1,
            vec![9, 0, 0, 0, 0, 0, 0, 0xCE],
            ConnectionClose(501, "unknown frame type 9"),
        ),
        case("frame type 0", Channel1, vec![0; 8], ConnectionClose(501, "unknown frame type 0")),
        case(
            "a protocol header after the handshake",
            Channel1,
            HEADER.to_vec(),
            ConnectionClose(501, "FRAME_ERROR"),
        ),
        case(
            "a heartbeat on channel 1",
            Channel1,
            vec![8, 0, 1, 0, 0, 0, 0, 0xCE],
            ConnectionClose(501, "FRAME_ERROR"),
        ),
        case(
            "garbage method arguments",
            Channel1,
            raw_method(1, &[0, 50, 0, 10, 0xFF]),
            ConnectionClose(502, "SYNTAX_ERROR"),
        ),
        case(
            "an unknown class and method",
            Channel1,
            raw_method(1, &[0, 99, 0, 1]),
            ConnectionClose(502, "SYNTAX_ERROR"),
        ),
        case(
            "a method with junk after its arguments",
            Channel1,
            trailing,
            ConnectionClose(502, "SYNTAX_ERROR"),
        ),
        case("an empty method frame", Channel1, raw_method(1, &[]), ConnectionClose(502, "SYNTAX_ERROR")),
        // Frames out of place: 505 UNEXPECTED_FRAME, 503 COMMAND_INVALID, 504 CHANNEL_ERROR.
        case(
            "a content body without basic.publish",
            Channel1,
            encode(&[body(1, b"x")]),
            ConnectionClose(505, "UNEXPECTED_FRAME"),
        ),
        case(
            "a content header without basic.publish",
            Channel1,
            encode(&[header(1, 1)]),
            ConnectionClose(505, "UNEXPECTED_FRAME"),
        ),
        case(
            "a second content header",
            Channel1,
            encode(&[publish(1, "q"), header(1, 5), header(1, 5)]),
            ConnectionClose(505, "UNEXPECTED_FRAME"),
        ),
        case(
            "a method between basic.publish and its content",
            Channel1,
            encode(&[publish(1, "q"), declare(1, "q")]),
            ConnectionClose(505, "UNEXPECTED_FRAME"),
        ),
        case(
            "a body longer than its header said",
            Channel1,
            encode(&[publish(1, "q"), header(1, 3), body(1, b"12345")]),
            ConnectionClose(501, "longer than its header"),
        ),
        case(
            "content on channel 0",
            Channel1,
            encode(&[body(0, b"x")]),
            ConnectionClose(503, "COMMAND_INVALID"),
        ),
        case(
            "a queue method on channel 0",
            Channel1,
            encode(&[declare(0, "q")]),
            ConnectionClose(503, "COMMAND_INVALID"),
        ),
        case(
            "a method on a channel never opened",
            Channel1,
            encode(&[declare(2, "q")]),
            ConnectionClose(504, "expected 'channel.open' on channel 2"),
        ),
        case(
            "content on a channel never opened",
            Channel1,
            encode(&[body(3, b"x")]),
            ConnectionClose(504, "unopened channel 3"),
        ),
        case(
            "connection.tune-ok after the handshake",
            Channel1,
            encode(&[tune_ok(131_072, 0)]),
            ConnectionClose(503, "COMMAND_INVALID"),
        ),
        // Channels per connection (channel_max 4 on this broker).
        case(
            "channel.open above channel_max",
            Channel1,
            encode(&[channel_open(5)]),
            ConnectionClose(530, "channel_max 4"),
        ),
        case(
            "channel.open above the channel_max the client chose",
            Nothing,
            cat(&[
                HEADER,
                &encode(&[
                    start_ok("guest", "guest"),
                    conn(connection::AMQPMethod::TuneOk(connection::TuneOk {
                        channel_max: 2,
                        frame_max: 131_072,
                        heartbeat: 0,
                    })),
                    open("/"),
                    channel_open(3),
                ]),
            ]),
            ConnectionClose(530, "channel 3 is above the negotiated channel_max 2"),
        ),
        case(
            "channel.open twice",
            Channel1,
            encode(&[channel_open(1)]),
            ConnectionClose(504, "second 'channel.open'"),
        ),
        // Message size (max_message 1024 on this broker): a channel error, as in RabbitMQ.
        case(
            "a message above max_message",
            Channel1,
            encode(&[publish(1, "q"), header(1, 2000)]),
            ChannelClose(406, "message size 2000 is larger than configured max size 1024"),
        ),
        // What the broker does not implement: 540 NOT_IMPLEMENTED.
        case("tx.select", Channel1, encode(&[tx_select]), ConnectionClose(540, "NOT_IMPLEMENTED")),
        case(
            "basic.recover-async",
            Channel1,
            encode(&[recover_async]),
            ConnectionClose(540, "NOT_IMPLEMENTED"),
        ),
        case(
            "basic.publish immediate=true",
            Channel1,
            encode(&[publish_with(1, "", "q", false, true)]),
            ConnectionClose(540, "immediate"),
        ),
        // The handshake.
        case("a wrong password", Nothing, login_as("guest", "wrong"), ConnectionClose(403, "ACCESS_REFUSED")),
        case(
            "an unknown user",
            Nothing,
            login_as("mallory", "guest"),
            ConnectionClose(403, "ACCESS_REFUSED"),
        ),
        case(
            "a malformed PLAIN response",
            Nothing,
            cat(&[HEADER, &encode(&[start_ok_with("PLAIN", "guest")])]),
            ConnectionClose(403, "malformed PLAIN"),
        ),
        case(
            "an unsupported SASL mechanism",
            Nothing,
            cat(&[HEADER, &encode(&[start_ok_with("EXTERNAL", "")])]),
            ConnectionClose(403, "EXTERNAL"),
        ),
        case(
            "an unknown vhost",
            Nothing,
            tuned(131_072, "/nope"),
            ConnectionClose(530, "vhost /nope not found"),
        ),
        case(
            "frame_max below 4096 in tune-ok",
            Nothing,
            tuned(512, "/"),
            ConnectionClose(530, "frame_max 512"),
        ),
        case(
            "frame_max above the broker's in tune-ok",
            Nothing,
            tuned(1 << 20, "/"),
            ConnectionClose(530, "frame_max 1048576"),
        ),
        case(
            "junk instead of start-ok",
            Nothing,
            cat(&[HEADER, &[0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0]]),
            ConnectionClose(501, "unknown frame type 222"),
        ),
        case(
            "channel.open instead of start-ok",
            Nothing,
            cat(&[HEADER, &encode(&[channel_open(1)])]),
            ConnectionClose(503, "expected a connection method"),
        ),
        // Other protocols: the broker answers with the header it speaks, then closes.
        case("an AMQP 0-9-0 header", Nothing, b"AMQP\x00\x00\x09\x00".to_vec(), TheirHeader),
        case("an AMQP 1.0 header", Nothing, b"AMQP\x00\x01\x00\x00".to_vec(), TheirHeader),
        case("an AMQP 0-10 header", Nothing, b"AMQP\x01\x01\x00\x0a".to_vec(), TheirHeader),
        case("an HTTP request", Nothing, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), TheirHeader),
        // Truncation: the peer goes away mid-frame.
        Case {
            hang_up: true,
            ..case("a truncated frame, then the socket closes", Channel1, declare1[..10].to_vec(), Closed)
        },
        Case {
            hang_up: true,
            ..case(
                "a truncated content body, then the socket closes",
                Channel1,
                cat(&[&encode(&[publish(1, "q"), header(1, 100)]), &encode(&[body(1, &[7; 100])])[..50]]),
                Closed,
            )
        },
        Case {
            hang_up: true,
            ..case("a truncated protocol header, then the socket closes", Nothing, b"AMQ".to_vec(), Closed)
        },
        Case {
            hang_up: true,
            ..case(
                "a truncated start-ok, then the socket closes",
                Nothing,
                cat(&[HEADER, &encode(&[start_ok("guest", "guest")])[..20]]),
                Closed,
            )
        },
        Case { hang_up: true, ..case("nothing at all, then the socket closes", Nothing, Vec::new(), Closed) },
    ]
}

/// 2. Each hostile input earns exactly its reply code, and a connection opened before it keeps
/// working after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_input_earns_its_reply_code_and_spares_other_connections() {
    let broker = start(Limits { channel_max: 4, max_message: 1024, ..Limits::default() }).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    for case in cases() {
        let mut raw = match case.before {
            Before::Nothing => Raw::connect(broker.addr).await,
            Before::Connected(frame_max) => Raw::handshake(broker.addr, frame_max, 0).await,
            Before::Channel1 => {
                let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
                raw.open_channel(1).await;
                raw
            }
        };
        raw.send(&case.send).await;
        if case.hang_up {
            raw.half_close().await;
        }
        let name = case.name;
        match case.then {
            Then::ConnectionClose(code, text) => {
                let close = raw.expect_connection_close().await;
                assert_eq!(close.reply_code, code, "{name}: {close:?}");
                assert!(
                    close.reply_text.as_str().contains(text),
                    "{name}: {close:?} should mention {text:?}"
                );
            }
            Then::ChannelClose(code, text) => {
                let close = raw.expect_channel_close(1).await;
                assert_eq!(close.reply_code, code, "{name}: {close:?}");
                assert!(
                    close.reply_text.as_str().contains(text),
                    "{name}: {close:?} should mention {text:?}"
                );
                // The connection lives on: channel 1 can be opened again and used.
                raw.open_channel(1).await;
                raw.send_frames(&[declare(1, "after-channel-error")]).await;
                let f = raw.expect_frame().await;
                assert!(
                    is_method(&f, 1, |c| matches!(c, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))),
                    "{name}: expected queue.declare-ok after the channel error, got {f:?}"
                );
                raw.close().await;
            }
            Then::TheirHeader => {
                let f = raw.next().await;
                assert_eq!(f, Some(AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1())), "{name}");
                assert_eq!(&encode(&[f.unwrap()]), HEADER, "{name}: the header the broker speaks");
                raw.expect_eof().await;
            }
            Then::Closed => loop {
                // After the broker's connection.start, if it got the protocol header.
                match raw.next().await {
                    None => break,
                    Some(f)
                        if is_method(&f, 0, |c| {
                            matches!(c, AMQPClass::Connection(connection::AMQPMethod::Start(_)))
                        }) => {}
                    Some(f) => panic!("{name}: expected the connection to close, got {f:?}"),
                }
            },
        }
        healthy.check(name).await;
    }
    broker.stop().await;
}

/// frame_max is the one negotiated in tune-ok, not the broker's: a frame of exactly 8192 bytes
/// passes on a connection that chose 8192, one byte more does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_max_is_the_negotiated_one_to_the_byte() {
    let broker = start(Limits::default()).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let mut raw = Raw::handshake(broker.addr, 8192, 0).await;
    raw.open_channel(1).await;
    let data = vec![b'x'; 8192 - 8];
    let frames =
        encode(&[declare(1, "exact"), publish(1, "exact"), header(1, data.len() as u64), body(1, &data)]);
    assert_eq!(
        frames.len() - encode(&[declare(1, "exact"), publish(1, "exact"), header(1, 8184)]).len(),
        8192
    );
    raw.send(&frames).await;
    raw.expect_frame().await; // declare-ok
    raw.send_frames(&[get(1, "exact")]).await;
    let ok = raw.expect_frame().await;
    assert!(is_method(&ok, 1, |c| matches!(c, AMQPClass::Basic(basic::AMQPMethod::GetOk(_)))), "{ok:?}");
    raw.expect_frame().await; // header
    assert_eq!(raw.expect_frame().await, body(1, &data), "the body comes back in one 8192-byte frame");
    raw.send(&encode(&[body(1, &[b'x'; 8192 - 7])])).await;
    let close = raw.expect_connection_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str()),
        (501, "FRAME_ERROR - frame size 8193 exceeds the negotiated frame_max 8192")
    );
    healthy.check("an 8193-byte frame").await;
    broker.stop().await;
}

/// max_held_bytes: under confirms the publish that would overflow is nacked and the channel
/// lives on; without confirms it is a channel error 406. The limit counts bytes held across all
/// queues (bodies plus bookkeeping), so what is consumed frees room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_bytes_limit_nacks_under_confirms_and_closes_the_channel_otherwise() {
    // Room for four of the 1000-byte messages below, the 10-byte one after them and the healthy
    // connection's check message (its queue name is at most 64 bytes), but not for a fifth.
    let held =
        |key: &str, len: usize| Message::new("".into(), key.into(), Default::default(), vec![b'k'; len]).held;
    let one = held("held", 1000);
    let limit = 4 * one + held("held", 10) + held(&"q".repeat(64), 8);
    assert!(limit < 5 * one, "the fifth 1000-byte message must not fit");
    let broker = start(Limits { max_held_bytes: limit, ..Limits::default() }).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.send_frames(&[confirm_select(1), declare(1, "held")]).await;
    raw.expect_frame().await; // select-ok
    raw.expect_frame().await; // declare-ok
    let kb = vec![b'k'; 1000];
    for tag in 1..=5u64 {
        raw.send_frames(&[publish(1, "held"), header(1, 1000), body(1, &kb)]).await;
        let f = raw.expect_frame().await;
        let want = if tag <= 4 {
            b(1, basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple: false }))
        } else {
            b(1, basic::AMQPMethod::Nack(basic::Nack { delivery_tag: tag, multiple: false, requeue: false }))
        };
        assert_eq!(f, want, "publish {tag} of {one} held bytes under a {limit}-byte limit");
    }
    // The channel is still open, and a message that fits is taken.
    raw.send_frames(&[publish(1, "held"), header(1, 10), body(1, &[b's'; 10])]).await;
    assert_eq!(
        raw.expect_frame().await,
        b(1, basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 6, multiple: false }))
    );
    healthy.check("a nacked publish").await;
    // Without confirms: channel.close 406 naming the limit.
    raw.open_channel(2).await;
    raw.send_frames(&[publish(2, "held"), header(2, 1000), body(2, &kb)]).await;
    let close = raw.expect_channel_close(2).await;
    assert_eq!(close.reply_code, 406, "{close:?}");
    assert!(close.reply_text.as_str().contains(&format!("holds at most {limit} bytes")), "{close:?}");
    healthy.check("a refused publish").await;
    // Consuming frees room: after getting one message, a 1000-byte publish fits again.
    raw.send_frames(&[get(1, "held")]).await;
    for _ in 0..3 {
        raw.expect_frame().await; // get-ok, header, body
    }
    raw.send_frames(&[publish(1, "held"), header(1, 1000), body(1, &kb)]).await;
    assert_eq!(
        raw.expect_frame().await,
        b(1, basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 7, multiple: false }))
    );
    raw.close().await;
    healthy.check("the limit").await;
    broker.stop().await;
}

/// A flood of 1-byte messages is bounded by what each costs to hold, not only by its body: under
/// a 64 KiB limit the broker takes exactly as many as their bookkeeping fits, then nacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_messages_are_bounded_by_their_bookkeeping_too() {
    let limit = 64 * 1024;
    let one = Message::new("".into(), "tiny".into(), Default::default(), vec![b't']).held;
    assert!(one > 100, "a held message counts its bookkeeping, not only its 1-byte body: {one}");
    let broker = start(Limits { max_held_bytes: limit, ..Limits::default() }).await;
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.send_frames(&[confirm_select(1), declare(1, "tiny")]).await;
    raw.expect_frame().await; // select-ok
    raw.expect_frame().await; // declare-ok
    let mut taken = 0;
    for tag in 1..=(limit as u64) {
        raw.send_frames(&[publish(1, "tiny"), header(1, 1), body(1, b"t")]).await;
        match raw.expect_frame().await {
            f if f == b(1, basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple: false })) => {
                taken += 1
            }
            f => {
                let nack = basic::Nack { delivery_tag: tag, multiple: false, requeue: false };
                assert_eq!(f, b(1, basic::AMQPMethod::Nack(nack)), "publish {tag}");
                break;
            }
        }
    }
    assert_eq!(taken, limit / one, "1-byte messages of {one} held bytes each under {limit}");
    raw.close().await;
    broker.stop().await;
}

/// Sockets that never finish the handshake are limited too: with room for 1 connection and 2
/// handshaking sockets, the fourth socket is closed at once, and a slot frees when one goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_handshake_allowance_are_closed() {
    let broker = start(Limits { max_connections: 1, max_handshaking: 2, ..Limits::default() }).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let idle = [Raw::connect(broker.addr).await, Raw::connect(broker.addr).await];
    let mut extra = Raw::connect(broker.addr).await;
    extra.send(HEADER).await;
    assert!(extra.next().await.is_none(), "a socket beyond the allowance is closed without a word");
    healthy.check("refusing a socket").await;
    drop(idle);
    // The broker sees the idle sockets close when it reads them; until then a new socket may
    // still be turned away.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = Raw::connect(broker.addr).await;
        again.send(HEADER).await;
        match again.next().await {
            Some(f)
                if is_method(&f, 0, |c| {
                    matches!(c, AMQPClass::Connection(connection::AMQPMethod::Start(_)))
                }) =>
            {
                break;
            }
            Some(f) => panic!("expected connection.start, got {f:?}"),
            None => assert!(Instant::now() < deadline, "no socket slot freed after the idle sockets closed"),
        }
    }
    broker.stop().await;
}

/// A client that sends without reading what comes back is not read either once 4 MiB of replies
/// wait for it (TCP back-pressure), so the broker's memory stays bounded; when the client reads,
/// every reply arrives and the broker reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_replies_is_not_read_either() {
    let broker = start(Limits::default()).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    let qos = encode(&[b(1, basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false }))]);
    let qos_ok = encode(&[b(1, basic::AMQPMethod::QosOk(basic::QosOk {}))]);
    // Up to 6 million requests (114 MB): far more than the broker lets wait (1 MiB of replies, a few thousand)
    // plus what the two sockets buffer (tens of MB at most). A write that cannot go on for half a
    // second means the broker stopped reading.
    let batch = qos.repeat(10_000);
    let mut sent = 0usize;
    'send: for _ in 0..600 {
        let mut off = 0;
        while off < batch.len() {
            match tokio::time::timeout(Duration::from_millis(500), raw.stream.writable()).await {
                Err(_) => {
                    sent += off;
                    break 'send;
                }
                Ok(_) => match raw.stream.try_write(&batch[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write failed: {e}"),
                },
            }
        }
        sent += batch.len();
    }
    let requests = sent.div_ceil(qos.len());
    assert!(requests < 3_000_000, "the broker read {requests} requests whose replies nobody read");
    // Finish the request cut in half (it goes through once the broker reads again) while reading
    // every reply: nothing is lost.
    let tail = qos[sent % qos.len()..].to_vec();
    let (mut rd, mut wr) = raw.stream.into_split();
    let finish = tokio::spawn(async move {
        if tail.len() < qos.len() {
            wr.write_all(&tail).await.expect("the broker reads again");
        }
        wr
    });
    let mut got = Vec::with_capacity(requests * qos_ok.len());
    while got.len() < requests * qos_ok.len() {
        let read = tokio::time::timeout(WAIT, rd.read_buf(&mut got)).await;
        assert!(matches!(read, Ok(Ok(n)) if n > 0), "replies stopped after {} bytes", got.len());
    }
    assert_eq!(got.len(), requests * qos_ok.len(), "one qos-ok per request, no more");
    assert!(got.chunks(qos_ok.len()).all(|c| c == qos_ok), "every reply is a qos-ok");
    let _wr = finish.await.expect("the last request was written");
    healthy.check("a client that did not read").await;
    broker.stop().await;
}

/// max_connections 2: the third connection is refused with 530 at connection.open; once one
/// closes, a new one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_the_extra_connection_and_frees_the_slot() {
    let broker = start(Limits { max_connections: 2, ..Limits::default() }).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let second = Raw::handshake(broker.addr, 131_072, 0).await;
    let mut third = Raw::connect(broker.addr).await;
    third.send(&login()).await;
    let close = third.expect_connection_close().await;
    assert_eq!(close.reply_code, 530, "{close:?}");
    assert!(close.reply_text.as_str().contains("at most 2 connections"), "{close:?}");
    assert_eq!((close.class_id, close.method_id), (10, 40), "refused at connection.open");
    healthy.check("a refused connection").await;
    second.close().await;
    let fourth = Raw::handshake(broker.addr, 131_072, 0).await;
    healthy.check("a freed slot").await;
    fourth.close().await;
    broker.stop().await;
}

/// A peer that stops mid-frame and stays silent is dropped after two heartbeat intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_silent_mid_frame_is_dropped_by_the_heartbeat_timeout() {
    let broker = start(Limits::default()).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let mut raw = Raw::handshake(broker.addr, 131_072, 1).await;
    raw.open_channel(1).await;
    raw.send(&encode(&[declare(1, "stall")])[..9]).await;
    let t0 = Instant::now();
    raw.expect_eof().await;
    // Two intervals of 1 s from its last byte; well before our own 5 s patience.
    let waited = t0.elapsed();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "dropped after {waited:?}"
    );
    healthy.check("a silent peer").await;
    broker.stop().await;
}

/// A field table of `depth` nested arrays: {"k": [[[...]]]}, built flat (no recursion here).
fn nested_table(depth: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(6 + 5 * depth);
    t.extend(((2 + 5 * depth) as u32).to_be_bytes());
    t.extend([1, b'k']);
    for level in 0..depth {
        t.push(b'A');
        t.extend(((5 * (depth - 1 - level)) as u32).to_be_bytes());
    }
    t
}

/// queue.declare on channel 1 with these raw arguments.
fn declare_with_arguments(name: &str, table: &[u8]) -> Vec<u8> {
    let payload = cat(&[&[0, 50, 0, 10, 0, 0, name.len() as u8], name.as_bytes(), &[0], table]);
    raw_method(1, &payload)
}

/// A content header frame on channel 1 whose headers property is this raw table.
fn header_with_table(body_size: u64, table: &[u8]) -> Vec<u8> {
    let props = cat(&[&[0, 60, 0, 0], &body_size.to_be_bytes(), &(1u16 << 13).to_be_bytes(), table]);
    cat(&[&[2, 0, 1], &(props.len() as u32).to_be_bytes(), &props, &[0xCE]])
}

/// Field tables nested as deep as a frame allows overflowed the stack of amq-protocol's
/// recursive parser, which aborted the whole process. Now 64 levels pass (in queue arguments
/// and in message headers, delivered intact) and 65 are a syntax error, in any frame that can
/// carry a table, before or after the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_field_tables_are_refused_not_a_stack_overflow() {
    let broker = start(Limits::default()).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let refused = |close: &connection::Close| {
        assert_eq!(close.reply_code, 502, "{close:?}");
        assert!(close.reply_text.as_str().contains("nested deeper than 64"), "{close:?}");
    };

    // Queue arguments: a table holding 63 nested arrays is 64 levels.
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.send(&declare_with_arguments("nested", &nested_table(63))).await;
    let f = raw.expect_frame().await;
    assert!(is_method(&f, 1, |c| matches!(c, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))), "{f:?}");
    raw.send(&declare_with_arguments("nested65", &nested_table(64))).await;
    refused(&raw.expect_connection_close().await);
    healthy.check("queue arguments nested 65 deep").await;
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.send(&declare_with_arguments("deep", &nested_table(26_000))).await;
    refused(&raw.expect_connection_close().await);
    healthy.check("queue arguments nested 26001 deep").await;

    // Message headers: 64 levels go through and come back intact; 26001 do not.
    let mut raw = Raw::handshake(broker.addr, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.send(&cat(&[
        &encode(&[publish(1, "nested")]),
        &header_with_table(2, &nested_table(63)),
        &encode(&[body(1, b"hi")]),
    ]))
    .await;
    raw.send_frames(&[get(1, "nested")]).await;
    let ok = raw.expect_frame().await;
    assert!(is_method(&ok, 1, |c| matches!(c, AMQPClass::Basic(basic::AMQPMethod::GetOk(_)))), "{ok:?}");
    let AMQPFrame::Header(1, h) = raw.expect_frame().await else { panic!("a content header") };
    let mut depth = 1;
    let mut value = h.properties.headers().as_ref().and_then(|t| t.inner().get("k")).cloned();
    while let Some(AMQPValue::FieldArray(a)) = value {
        depth += 1;
        value = a.as_slice().first().cloned();
    }
    assert_eq!(depth, 64, "the headers come back as deep as they went");
    assert_eq!(raw.expect_frame().await, body(1, b"hi"));
    raw.send(&cat(&[&encode(&[publish(1, "nested")]), &header_with_table(2, &nested_table(26_000))])).await;
    refused(&raw.expect_connection_close().await);
    healthy.check("message headers nested 26001 deep").await;

    // Client properties in connection.start-ok, before frame_max is negotiated (4096 bytes).
    let mut raw = Raw::connect(broker.addr).await;
    let payload = cat(&[
        &[0, 10, 0, 11],
        &nested_table(800),
        &[5],
        b"PLAIN",
        &[0, 0, 0, 12],
        b"\0guest\0guest",
        &[5],
        b"en_US",
    ]);
    raw.send(&cat(&[HEADER, &raw_method(0, &payload)])).await;
    refused(&raw.expect_connection_close().await);
    healthy.check("client properties nested 801 deep").await;
    broker.stop().await;
}

/// Many hostile connections at once, while a healthy one publishes and gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hostile_connections_at_once_leave_a_healthy_one_alone() {
    let broker = start(Limits::default()).await;
    let mut healthy = Healthy::open(&broker.url("guest", "guest")).await;
    let inputs: Vec<Vec<u8>> = cases().into_iter().map(|c| c.send).collect();
    let mut tasks = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let addr = broker.addr;
        tasks.push(tokio::spawn(async move {
            let mut raw = Raw::connect(addr).await;
            // Half of them after a whole handshake, half in its place.
            let bytes =
                if i % 2 == 0 { cat(&[&login(), &encode(&[channel_open(1)]), &input]) } else { input };
            raw.send(&bytes).await;
            raw.half_close().await;
            raw.drain().await.and_then(|frames| judge(&frames, IN_HANDSHAKE))
        }));
    }
    for _ in 0..20 {
        healthy.check("hostile connections in flight").await;
    }
    for t in tasks {
        t.await.expect("the hostile client task").expect("each hostile connection is answered and closed");
    }
    healthy.check("all the hostile connections").await;
    fresh_roundtrip(&broker.url("guest", "guest")).await.expect("a fresh connection works");
    broker.stop().await;
}

/// What a lapin call refused with: the reply code and text of the channel's close.
fn refusal<T: std::fmt::Debug>(what: &str, r: lapin::Result<T>) -> (u16, String) {
    match r {
        Err(e) => match reply_code(&e) {
            Some(code) => (code, reply_text(&e)),
            None => panic!("{what}: refused with {e}, not a protocol error"),
        },
        Ok(v) => panic!("{what}: accepted ({v:?}), past its limit"),
    }
}

/// Queues, exchanges, bindings and consumers are each capped: the one past the limit is refused
/// with 406 and words that say what to do; the connection stays open, and freeing one makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_past_each_count_limit_is_refused_and_freeing_one_makes_room() {
    use lapin::options::{
        BasicCancelOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
        QueueBindOptions, QueueDeleteOptions,
    };
    let limits =
        Limits { max_queues: 2, max_exchanges: 2, max_bindings: 2, max_consumers: 2, ..Limits::default() };
    let broker = start(limits).await;
    let conn =
        lapin::Connection::connect(&broker.url("guest", "guest"), lapin::ConnectionProperties::default())
            .await
            .expect("connect");
    let no_args = FieldTable::default;
    let expect_full = |(code, text): (u16, String), what: &str| {
        assert_eq!(code, 406, "{what}: {text}");
        assert!(text.contains(&format!("holds at most 2 {what}")), "{what}: {text}");
    };

    // Queues.
    let ch = conn.create_channel().await.expect("channel");
    for q in ["q1", "q2"] {
        ch.queue_declare(q.into(), QueueDeclareOptions::default(), no_args()).await.expect("declare");
    }
    let third = ch.queue_declare("q3".into(), QueueDeclareOptions::default(), no_args()).await;
    expect_full(refusal("a third queue", third), "queues");

    // Exchanges: the built-in ones do not count.
    let ch = conn.create_channel().await.expect("channel");
    let x = |name: &'static str| {
        let ch = ch.clone();
        async move {
            ch.exchange_declare(
                name.into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
        }
    };
    x("x1").await.expect("declare x1");
    x("x2").await.expect("declare x2");
    expect_full(refusal("a third exchange", x("x3").await), "exchanges");
    let ch = conn.create_channel().await.expect("channel");
    ch.exchange_delete("x2".into(), ExchangeDeleteOptions::default()).await.expect("delete x2");
    ch.exchange_declare(
        "x3".into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        no_args(),
    )
    .await
    .expect("a deleted exchange makes room");

    // Bindings: binding the same key again is not a new binding.
    let bind = |key: &'static str| {
        let ch = ch.clone();
        async move {
            ch.queue_bind(
                "q1".into(),
                "amq.direct".into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
        }
    };
    bind("a").await.expect("bind a");
    bind("b").await.expect("bind b");
    bind("a").await.expect("binding a again is the same binding");
    expect_full(refusal("a third binding", bind("c").await), "bindings");
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_unbind("q1".into(), "amq.direct".into(), "a".into(), no_args()).await.expect("unbind a");
    ch.queue_bind("q1".into(), "amq.direct".into(), "c".into(), QueueBindOptions::default(), no_args())
        .await
        .expect("an unbound key makes room");

    // Consumers, across channels. Each refusal goes to a channel of its own: a refused channel
    // closes, and its consumers with it.
    let consume = |ch: lapin::Channel, queue: &'static str, tag: &'static str| async move {
        ch.basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
    };
    let refused_consume = |tag: &'static str| {
        let conn = &conn;
        async move {
            let throwaway = conn.create_channel().await.expect("channel");
            refusal("a third consumer", consume(throwaway, "q2", tag).await)
        }
    };
    let other = conn.create_channel().await.expect("channel");
    // Kept: lapin cancels a consumer it drops.
    let _c1 = consume(ch.clone(), "q2", "c1").await.expect("consume c1");
    let _c2 = consume(other.clone(), "q2", "c2").await.expect("consume c2");
    expect_full(refused_consume("c3").await, "consumers");
    expect_full(refused_consume("c3").await, "consumers");
    other.basic_cancel("c2".into(), BasicCancelOptions::default()).await.expect("cancel c2");
    let _c3 = consume(other.clone(), "q2", "c3").await.expect("a cancelled consumer makes room");
    expect_full(refused_consume("c4").await, "consumers");

    // A deleted queue frees its place, its bindings and its consumers: q1 holds both bindings,
    // q2 both consumers.
    other.queue_delete("q1".into(), QueueDeleteOptions::default()).await.expect("delete q1");
    other.queue_declare("q3".into(), QueueDeclareOptions::default(), no_args()).await.expect("room for q3");
    for key in ["d", "e"] {
        other
            .queue_bind("q3".into(), "amq.direct".into(), key.into(), QueueBindOptions::default(), no_args())
            .await
            .expect("q1's bindings went with it");
    }
    other.queue_delete("q2".into(), QueueDeleteOptions::default()).await.expect("delete q2");
    let _c5 = consume(other.clone(), "q3", "c5").await.expect("q2's consumers went with it");
    let _c6 = consume(other.clone(), "q3", "c6").await.expect("q2's consumers went with it");
    assert!(conn.status().connected(), "channel errors left the connection open");
    conn.close(200, "bye".into()).await.expect("close");
    broker.stop().await;
}
