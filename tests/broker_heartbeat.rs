//! Heartbeats on the embedded broker: a consumer that goes silent (no heartbeats, no frames) is
//! dropped after two heartbeat intervals, as RabbitMQ does, and its unacked task is requeued with
//! redelivered=true. The silent consumer is a raw TCP client speaking frames through
//! `amq-protocol`, so nothing sends heartbeats behind the test's back; lapin is the producer
//! and the control: it does heartbeat, and must stay connected throughout.

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, basic, channel, connection, queue};
use amq_protocol::types::FieldTable;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::{BasicProperties, ConnectionProperties};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use warren::broker::{self, BrokerConfig, Limits};

const HEARTBEAT: u16 = 1;
const QUEUE: &str = "warren.test.heartbeat";
const BODY: &[u8] = b"task for a worker that will hang";
/// Any single reply from the broker.
const REPLY: Duration = Duration::from_secs(5);
/// A silent client must be gone within this (2 heartbeats, plus slack for a loaded machine).
const DROP_WITHIN: Duration = Duration::from_secs(5);

/// A minimal AMQP client over a raw socket: it sends only what the test writes.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What a read brought: a frame, or the end of the connection.
// A handful per test, each moved once: boxing the frame would only add noise.
#[allow(clippy::large_enum_variant)]
enum Read {
    Frame(AMQPFrame),
    Closed(String),
}

impl Raw {
    async fn send(&mut self, frame: AMQPFrame) {
        let ctx = gen_frame(&frame)(WriteContext::from(Vec::new())).expect("frame encodes");
        self.stream.write_all(&ctx.write).await.expect("write to the broker");
    }

    async fn method(&mut self, channel: u16, class: AMQPClass) {
        self.send(AMQPFrame::Method(channel, class)).await;
    }

    /// The next frame, or how the connection ended; `None` if nothing came in time.
    async fn read(&mut self, wait: Duration) -> Option<Read> {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.len() >= 7 {
                let size = u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]]) as usize;
                if self.buf.len() >= size + 8 {
                    let frame = match parse_frame(&self.buf[..size + 8]) {
                        Ok((_, frame)) => frame,
                        Err(e) => panic!("the broker sent a malformed frame: {e:?}"),
                    };
                    self.buf.drain(..size + 8);
                    return Some(Read::Frame(frame));
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) => return Some(Read::Closed("end of stream".into())),
                Ok(Err(e)) => return Some(Read::Closed(format!("read error: {e}"))),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next frame that is not a heartbeat, within REPLY.
    async fn expect(&mut self, what: &str) -> AMQPFrame {
        loop {
            match self.read(REPLY).await {
                Some(Read::Frame(AMQPFrame::Heartbeat)) => continue,
                Some(Read::Frame(f)) => return f,
                Some(Read::Closed(how)) => panic!("waiting for {what}: connection ended ({how})"),
                None => panic!("waiting for {what}: nothing within {REPLY:?}"),
            }
        }
    }

    async fn expect_method(&mut self, what: &str) -> AMQPClass {
        match self.expect(what).await {
            AMQPFrame::Method(_, class) => class,
            other => panic!("waiting for {what}: got {other:?}"),
        }
    }
}

/// Handshake with heartbeat=1, channel 1 open, a queue, prefetch 1, a manual-ack consumer.
async fn silent_worker(addr: std::net::SocketAddr) -> Raw {
    let stream = timeout(REPLY, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let mut raw = Raw { stream, buf: Vec::new() };
    raw.stream.write_all(b"AMQP\x00\x00\x09\x01").await.expect("protocol header");
    let AMQPClass::Connection(connection::AMQPMethod::Start(_)) = raw.expect_method("connection.start").await
    else {
        panic!("expected connection.start")
    };
    let start_ok = connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: "PLAIN".into(),
        response: "\0guest\0guest".into(),
        locale: "en_US".into(),
    };
    raw.method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok))).await;
    let tune = match raw.expect_method("connection.tune").await {
        AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
        other => panic!("expected connection.tune, got {other:?}"),
    };
    assert_eq!(tune.heartbeat, HEARTBEAT, "the broker proposes its configured heartbeat");
    let tune_ok =
        connection::TuneOk { channel_max: tune.channel_max, frame_max: tune.frame_max, heartbeat: HEARTBEAT };
    raw.method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok))).await;
    let open = connection::Open { virtual_host: "/".into() };
    raw.method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open))).await;
    let reply = raw.expect_method("connection.open-ok").await;
    assert!(matches!(reply, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))), "{reply:?}");

    raw.method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    let reply = raw.expect_method("channel.open-ok").await;
    assert!(matches!(reply, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))), "{reply:?}");

    let declare = queue::Declare { queue: QUEUE.into(), durable: true, ..Default::default() };
    raw.method(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))).await;
    let reply = raw.expect_method("queue.declare-ok").await;
    assert!(matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))), "{reply:?}");

    let qos = basic::Qos { prefetch_count: 1, global: false };
    raw.method(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos))).await;
    let reply = raw.expect_method("basic.qos-ok").await;
    assert!(matches!(reply, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))), "{reply:?}");

    let consume = basic::Consume {
        queue: QUEUE.into(),
        consumer_tag: "silent".into(),
        no_ack: false,
        ..Default::default()
    };
    raw.method(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume))).await;
    let reply = raw.expect_method("basic.consume-ok").await;
    assert!(matches!(reply, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))), "{reply:?}");
    raw
}

// Broker, lapin and the test on their own threads: a busy test thread must not delay heartbeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_consumer_is_dropped_after_two_heartbeats_and_its_task_requeued() {
    let cfg = BrokerConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        users: vec![("guest".into(), "guest".into())],
        limits: Limits { heartbeat: HEARTBEAT, ..Default::default() },
        ..BrokerConfig::local()
    };
    let running = broker::start(cfg).await.expect("broker starts");
    let url = running.url("guest", "guest");

    // The producer (lapin heartbeats on its own) is connected first and must outlive the worker.
    let producer = timeout(REPLY, lapin::Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect("lapin connects in time")
        .expect("lapin connects");
    let ch = producer.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");

    let mut worker = silent_worker(running.addr).await;
    // From here on the worker sends nothing at all.
    let silent_since = Instant::now();

    let confirm = ch
        .basic_publish(
            "".into(),
            QUEUE.into(),
            BasicPublishOptions::default(),
            BODY,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish");
    let confirmation = timeout(REPLY, confirm).await.expect("confirm in time").expect("confirmed");
    assert!(confirmation.is_ack(), "publish confirmed: {confirmation:?}");

    let deliver = match worker.expect_method("basic.deliver").await {
        AMQPClass::Basic(basic::AMQPMethod::Deliver(d)) => d,
        other => panic!("expected basic.deliver, got {other:?}"),
    };
    assert!(!deliver.redelivered, "first delivery");
    assert!(matches!(worker.expect("content header").await, AMQPFrame::Header(1, _)));
    match worker.expect("content body").await {
        AMQPFrame::Body(1, body) => assert_eq!(body, BODY),
        other => panic!("expected the body, got {other:?}"),
    }

    // Silent, the worker only listens: the broker heartbeats it, then drops it without a word.
    let mut heartbeats = 0;
    let closed = loop {
        let left = DROP_WITHIN.saturating_sub(silent_since.elapsed());
        match worker.read(left).await {
            Some(Read::Frame(AMQPFrame::Heartbeat)) => heartbeats += 1,
            Some(Read::Frame(AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(c)),
            ))) => {
                panic!(
                    "the broker closed the connection with {} {} instead of timing out",
                    c.reply_code, c.reply_text
                )
            }
            Some(Read::Frame(other)) => panic!("unexpected frame to a silent client: {other:?}"),
            Some(Read::Closed(how)) => break how,
            None => panic!(
                "a client silent for {:?} with heartbeat={HEARTBEAT}s is still connected",
                silent_since.elapsed()
            ),
        }
    };
    let after = silent_since.elapsed();
    assert!(
        after >= Duration::from_secs(u64::from(HEARTBEAT)),
        "dropped after only {after:?} ({closed}): sooner than one heartbeat interval"
    );
    assert!(
        heartbeats >= 1,
        "the broker sent no heartbeat in {after:?} to a client that asked for {HEARTBEAT}s"
    );

    // The unacked task is back, redelivered; the heartbeating producer is still connected.
    assert!(producer.status().connected(), "lapin, which heartbeats, was dropped too");
    let q = ch
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    assert_eq!((q.message_count(), q.consumer_count()), (1, 0), "the task is ready again, no consumer left");
    let got = timeout(REPLY, ch.basic_get(QUEUE.into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("basic.get in time")
        .expect("basic.get")
        .expect("the requeued task");
    assert_eq!(got.delivery.data, BODY);
    assert!(got.delivery.redelivered, "a requeued task is flagged redelivered");
    got.delivery.ack(BasicAckOptions::default()).await.expect("ack");

    ch.queue_delete(QUEUE.into(), QueueDeleteOptions::default()).await.expect("queue.delete");
    let _ = producer.close(200, "bye".into()).await;
    running.stop().await;
}
