//! The embedded broker's memory stays bounded by its limits whatever clients send: each attack
//! measured against it (unfinished messages, headers that grow once parsed, queue arguments,
//! channels by the million) is driven here with raw frames against an in-process broker with
//! lowered limits. Each test checks the refusal (code and words) and that the process's resident
//! memory grew by no more than the limit allows (plus a fixed slack for buffers and the
//! allocator). The tests share one process, so they take turns: resident memory is per process.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection, queue};
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};
use common::frames::{
    chan, channel_close, channel_open, close_ok, confirm_select, conn_close, declare_args, encode, frame_len,
    header_with, login, publish,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use warren::broker::{self, BrokerConfig, Limits, RunningBroker};

const MIB: usize = 1 << 20;
/// What resident memory may grow by besides what the limit admits: read and write buffers,
/// the allocator's slack, the test's own frames.
const SLACK: usize = 24 * MIB;
const WAIT: Duration = Duration::from_secs(5);
/// Body frames stay under the negotiated 128 KiB frame_max.
const CHUNK: usize = 128 * 1024 - 8;

static TURN: Mutex<()> = Mutex::const_new(());

fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm is readable");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm's rss");
    pages * 4096
}

async fn start(limits: Limits) -> RunningBroker {
    let mut cfg = BrokerConfig::local();
    cfg.limits = limits;
    broker::start(cfg).await.expect("the embedded broker starts")
}

/// Body frames carrying `len` bytes.
fn bodies(ch: u16, len: usize) -> Vec<AMQPFrame> {
    let chunk = vec![b'm'; CHUNK];
    (0..len).step_by(CHUNK).map(|at| AMQPFrame::Body(ch, chunk[..CHUNK.min(len - at)].to_vec())).collect()
}

/// A table with one field array of `n` voids: 1 byte each on the wire, 32 once parsed.
fn voids(n: usize) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-voids".into(), AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Void; n])));
    t
}

struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn login(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect to the broker");
        let mut raw = Self { stream, buf: Vec::new() };
        raw.stream.write_all(&login()).await.expect("send the handshake");
        for _ in 0..3 {
            raw.frame().await; // start, tune, open-ok
        }
        raw
    }

    async fn send(&mut self, frames: &[AMQPFrame]) {
        self.stream.write_all(&encode(frames)).await.expect("the broker reads what we send");
    }

    async fn frame(&mut self) -> AMQPFrame {
        let read = async {
            loop {
                if let Some(n) = frame_len(&self.buf) {
                    let bytes: Vec<u8> = self.buf.drain(..n).collect();
                    let (_, f) = parse_frame(bytes.as_slice()).expect("the broker sends frames");
                    return f;
                }
                let mut chunk = [0u8; 16 * 1024];
                match self.stream.read(&mut chunk).await {
                    Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                    _ => panic!("the broker closed the connection"),
                }
            }
        };
        tokio::time::timeout(WAIT, read).await.expect("the broker answers in time")
    }

    /// connection.close, then wait for the broker to close the socket: it releases what the
    /// connection held before it does.
    async fn close(mut self) {
        self.send(&[conn_close()]).await;
        self.eof().await;
    }

    /// Wait for the broker to close the socket (it releases what the connection held first).
    async fn eof(mut self) {
        let mut sink = Vec::new();
        let eof = tokio::time::timeout(WAIT, self.stream.read_to_end(&mut sink)).await;
        assert!(eof.is_ok(), "the broker closes the socket after close-ok");
    }

    /// Frames up to and including open-ok on `ch`: a probe that everything sent before it was
    /// handled. Returns the channel.close frames seen on the way, answering each.
    async fn sync(&mut self, ch: u16) -> Vec<(u16, channel::Close)> {
        self.send(&[channel_open(ch)]).await;
        let mut closes = Vec::new();
        loop {
            match self.frame().await {
                AMQPFrame::Method(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if c == ch => {
                    return closes;
                }
                AMQPFrame::Method(c, AMQPClass::Channel(channel::AMQPMethod::Close(close))) => {
                    self.send(&[chan(c, channel::AMQPMethod::CloseOk(channel::CloseOk {}))]).await;
                    closes.push((c, close));
                }
                AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) => {}
                other => panic!("expected channel.open-ok or channel.close, got {other:?}"),
            }
        }
    }
}

/// Per connection, 8 channels each start an 8 MiB message and send all of it but one byte.
/// Unlimited, the two connections would hold 128 MiB; the limits hold them to 28 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_messages_are_charged_before_their_body_and_refused_past_the_limits() {
    let _turn = TURN.lock().await;
    let (global, per_connection) = (28 * MIB, 24 * MIB);
    let limits =
        Limits { max_held_bytes: global, max_incoming_per_connection: per_connection, ..Limits::default() };
    let broker = start(limits).await;
    let before = resident();
    let size = 8 * MIB;
    let mut attackers = Vec::new();
    let mut texts = Vec::new();
    for _ in 0..2 {
        let mut raw = Raw::login(broker.addr).await;
        for ch in 1..=8u16 {
            raw.send(&[
                channel_open(ch),
                publish(ch, "q"),
                header_with(ch, size as u64, BasicProperties::default()),
            ])
            .await;
            raw.send(&bodies(ch, size - 1)).await;
        }
        let closes = raw.sync(100).await;
        texts.push(closes.iter().map(|(_, c)| (c.reply_code, c.reply_text.to_string())).collect::<Vec<_>>());
        attackers.push(raw);
    }
    let grown = resident().saturating_sub(before);
    // The first connection holds two (16 MiB), its third would pass 24 MiB; the second
    // holds one more (24 MiB in all), its second would pass 28 MiB.
    let per_conn_text = format!(
        "PRECONDITION_FAILED - unfinished messages on this connection would hold more than {per_connection} bytes: finish publishing them first"
    );
    let global_text = format!(
        "PRECONDITION_FAILED - the embedded broker holds at most {global} bytes of messages and is full: consume or purge first"
    );
    assert_eq!(texts[0], vec![(406, per_conn_text); 6], "first connection");
    assert_eq!(texts[1], vec![(406, global_text); 7], "second connection");
    assert!(grown < global + SLACK, "resident memory grew by {} MiB", grown / MIB);
    eprintln!(
        "unfinished messages: resident memory grew by {} MiB (limit {} MiB)",
        grown / MIB,
        global / MIB
    );

    // Their connections gone, what they charged is free again: three whole 8 MiB messages fit.
    for raw in attackers {
        raw.close().await;
    }
    let mut raw = Raw::login(broker.addr).await;
    raw.sync(1).await;
    raw.send(&[confirm_select(1), declare_args(1, "q", FieldTable::default())]).await;
    raw.frame().await; // select-ok
    raw.frame().await; // declare-ok
    for tag in 1..=3 {
        raw.send(&[publish(1, "q"), header_with(1, size as u64, BasicProperties::default())]).await;
        raw.send(&bodies(1, size)).await;
        let ack = basic::Ack { delivery_tag: tag, multiple: false };
        assert_eq!(raw.frame().await, AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))));
    }
    broker.stop().await;
}

/// Headers that are small on the wire and large once parsed (an array of 120 000 voids: 120 KB
/// sent, 4 MiB held) are charged at their parsed size: under a 48 MiB limit a dozen are taken
/// and the rest nacked, where their wire size would have admitted 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_charged_at_their_parsed_size() {
    let _turn = TURN.lock().await;
    let limit = 48 * MIB;
    let broker = start(Limits { max_held_bytes: limit, ..Limits::default() }).await;
    let mut raw = Raw::login(broker.addr).await;
    raw.sync(1).await;
    raw.send(&[confirm_select(1), declare_args(1, "q", FieldTable::default())]).await;
    raw.frame().await; // select-ok
    raw.frame().await; // declare-ok
    let before = resident();
    let properties = BasicProperties::default().with_headers(voids(120_000));
    let (mut acked, mut nacked) = (0, 0);
    for tag in 1..=20u64 {
        raw.send(&[publish(1, "q"), header_with(1, 1, properties.clone()), AMQPFrame::Body(1, vec![b'h'])])
            .await;
        match raw.frame().await {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a))) if a.delivery_tag == tag => {
                assert_eq!(nacked, 0, "once full, nothing more is taken");
                acked += 1;
            }
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Nack(n))) if n.delivery_tag == tag => {
                nacked += 1;
            }
            other => panic!("expected ack or nack {tag}, got {other:?}"),
        }
    }
    let grown = resident().saturating_sub(before);
    eprintln!("parsed headers: {acked} taken, {nacked} nacked; resident memory grew by {} MiB", grown / MIB);
    // Each holds at least 120 000 * 32 bytes: at most 13 fit in 48 MiB.
    assert!((5..=13).contains(&acked), "{acked} taken");
    assert!(grown < limit + SLACK, "resident memory grew by {} MiB", grown / MIB);
    broker.stop().await;
}

/// Queue arguments are not kept beyond the queue type: 50 queues declared with 120 KB argument
/// tables (4 MiB each once parsed) leave resident memory about where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_arguments_are_not_held() {
    let _turn = TURN.lock().await;
    let broker = start(Limits::default()).await;
    let mut raw = Raw::login(broker.addr).await;
    raw.sync(1).await;
    let before = resident();
    let args = voids(120_000);
    for i in 0..50 {
        raw.send(&[declare_args(1, &format!("q{i}"), args.clone())]).await;
        match raw.frame().await {
            AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) => {
                assert_eq!(ok.queue.as_str(), format!("q{i}"));
            }
            other => panic!("expected declare-ok, got {other:?}"),
        }
    }
    let grown = resident().saturating_sub(before);
    eprintln!("queue arguments: 50 queues, resident memory grew by {} MiB", grown / MIB);
    assert!(grown < SLACK, "resident memory grew by {} MiB", grown / MIB);
    broker.stop().await;
}

/// Channels are counted across connections: past the limit channel.open is refused with 530
/// naming it (closing that connection, as RabbitMQ's channel_max does), and closing one makes
/// room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_channels_are_capped_across_connections() {
    let _turn = TURN.lock().await;
    let broker = start(Limits { max_channels: 3, ..Limits::default() }).await;
    let mut a = Raw::login(broker.addr).await;
    assert!(a.sync(1).await.is_empty());
    assert!(a.sync(2).await.is_empty());
    let mut b = Raw::login(broker.addr).await;
    assert!(b.sync(1).await.is_empty());
    b.send(&[channel_open(2)]).await;
    match b.frame().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            assert_eq!(c.reply_code, 530);
            assert_eq!(
                c.reply_text.as_str(),
                "NOT_ALLOWED - the embedded broker holds at most 3 open channels: close some first"
            );
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    b.send(&[close_ok()]).await;
    b.eof().await;
    a.send(&[channel_close(1)]).await;
    assert!(matches!(
        a.frame().await,
        AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))
    ));
    // b's channel went with b, a's first with its close: two free.
    let mut c = Raw::login(broker.addr).await;
    assert!(c.sync(1).await.is_empty(), "closed channels make room");
    assert!(c.sync(2).await.is_empty(), "closed channels make room");
    broker.stop().await;
}
