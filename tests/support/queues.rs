//! What the TTL, length-limit and dead-letter tests share: a client with confirms, queues
//! declared with arguments, publishes that report ack or nack, deliveries awaited with a
//! timeout, the x-death records read back, and a clock made of an expiring message (so that a
//! test waits for a broker event, never for a sleep).
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

/// Generous: these machines are shared and slow at times.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct Client {
    pub conn: Connection,
    /// With publisher confirms.
    pub ch: Channel,
    /// The queues it declared, deleted by `close`.
    queues: Vec<String>,
}

pub fn int(n: i64) -> AMQPValue {
    AMQPValue::LongLongInt(n)
}

pub fn s(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

pub fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// A message as a test looks at it.
#[derive(Debug)]
pub struct Got {
    pub body: String,
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    pub properties: BasicProperties,
    pub delivery: lapin::message::Delivery,
}

impl Got {
    fn from(d: lapin::message::Delivery) -> Self {
        Got {
            body: String::from_utf8_lossy(&d.data).into_owned(),
            exchange: d.exchange.as_str().to_string(),
            routing_key: d.routing_key.as_str().to_string(),
            redelivered: d.redelivered,
            properties: d.properties.clone(),
            delivery: d,
        }
    }

    pub fn header(&self, name: &str) -> Option<AMQPValue> {
        self.properties.headers().as_ref().and_then(|h| h.inner().get(name).cloned())
    }

    pub fn header_text(&self, name: &str) -> Option<String> {
        self.header(name).and_then(|v| text(&v))
    }

    /// The x-death records, most recent first.
    pub fn deaths(&self) -> Vec<Death> {
        match self.header("x-death") {
            Some(AMQPValue::FieldArray(a)) => a.as_slice().iter().filter_map(Death::from).collect(),
            _ => Vec::new(),
        }
    }

    /// x-delivery-count, whatever integer type carries it.
    pub fn delivery_count(&self) -> Option<i64> {
        self.header("x-delivery-count").and_then(|v| integer(&v))
    }
}

/// One x-death record: the fields both RabbitMQ 3.10 and the embedded broker write.
#[derive(Debug, PartialEq, Eq)]
pub struct Death {
    pub count: i64,
    pub reason: String,
    pub queue: String,
    pub exchange: String,
    pub routing_keys: Vec<String>,
    pub original_expiration: Option<String>,
    /// Whether `time` is a timestamp.
    pub timed: bool,
}

impl Death {
    fn from(v: &AMQPValue) -> Option<Death> {
        let AMQPValue::FieldTable(t) = v else { return None };
        let t = t.inner();
        let field = |k: &str| t.get(k).and_then(text).unwrap_or_default();
        let keys = match t.get("routing-keys") {
            Some(AMQPValue::FieldArray(a)) => a.as_slice().iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        Some(Death {
            count: t.get("count").and_then(integer).unwrap_or(-1),
            reason: field("reason"),
            queue: field("queue"),
            exchange: field("exchange"),
            routing_keys: keys,
            original_expiration: t.get("original-expiration").and_then(text),
            timed: matches!(t.get("time"), Some(AMQPValue::Timestamp(_))),
        })
    }

    /// The record a first death writes.
    pub fn first(reason: &str, queue: &str, exchange: &str, key: &str) -> Death {
        Death {
            count: 1,
            reason: reason.into(),
            queue: queue.into(),
            exchange: exchange.into(),
            routing_keys: vec![key.into()],
            original_expiration: None,
            timed: true,
        }
    }
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn integer(v: &AMQPValue) -> Option<i64> {
    Some(match v {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => return None,
    })
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        Client { conn, ch, queues: Vec::new() }
    }

    /// A fresh queue (classic, not durable) with these arguments; its name.
    pub async fn queue(&mut self, test: &str, args: &[(&str, AMQPValue)]) -> String {
        self.declare(test, false, args).await
    }

    /// A fresh quorum queue (durable) with these arguments.
    pub async fn quorum(&mut self, test: &str, args: &[(&str, AMQPValue)]) -> String {
        let mut all = vec![("x-queue-type", s("quorum"))];
        all.extend(args.iter().cloned());
        self.declare(test, true, &all).await
    }

    async fn declare(&mut self, test: &str, durable: bool, args: &[(&str, AMQPValue)]) -> String {
        let name = crate::common::unique_queue(test);
        let opts = QueueDeclareOptions { durable, ..Default::default() };
        self.ch.queue_declare(name.as_str().into(), opts, table(args)).await.expect("declare");
        self.queues.push(name.clone());
        name
    }

    /// Publish to the default exchange; true if acked, false if nacked.
    pub async fn publish(&self, queue: &str, body: &str) -> bool {
        self.publish_with(queue, body, BasicProperties::default()).await
    }

    pub async fn publish_with(&self, queue: &str, body: &str, props: BasicProperties) -> bool {
        self.publish_to("", queue, body, props).await
    }

    pub async fn publish_to(&self, exchange: &str, key: &str, body: &str, props: BasicProperties) -> bool {
        let opts = BasicPublishOptions::default();
        let confirm = self
            .ch
            .basic_publish(exchange.into(), key.into(), opts, body.as_bytes(), props)
            .await
            .expect("publish");
        confirm.await.expect("confirmed or nacked").is_ack()
    }

    /// basic.get with manual ack.
    pub async fn get(&self, queue: &str) -> Option<Got> {
        let got = self.ch.basic_get(queue.into(), BasicGetOptions { no_ack: false }).await.expect("get");
        got.map(|m| Got::from(m.delivery))
    }

    /// basic.get until a message is there (at most 10 s): for a message that arrives after an
    /// asynchronous step, as a dead letter does on RabbitMQ (the reject has no reply; the dead
    /// letter reaches its queue after the rejecting channel's next get may be answered). Each
    /// try is a round trip to the broker, so this paces itself without sleeping.
    pub async fn get_soon(&self, queue: &str) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = self.get(queue).await;
            if got.is_some() || tokio::time::Instant::now() > deadline {
                return got;
            }
        }
    }

    /// basic.get, auto-ack: the bodies left in the queue, in order.
    pub async fn drain(&self, queue: &str) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(m) =
            self.ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get")
        {
            out.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
        }
        out
    }

    /// Ready messages, by passive declare (which renews x-expires: not for those tests).
    pub async fn count(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        self.ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .expect("passive")
            .message_count()
    }

    /// A consumer on its own channel (prefetch `prefetch`, manual ack).
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Deliveries {
        let ch = self.conn.create_channel().await.expect("channel");
        ch.basic_qos(prefetch, BasicQosOptions::default()).await.expect("qos");
        let consumer = ch
            .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect("consume");
        Deliveries { ch, consumer }
    }

    /// Wait `ms` by the broker's own clock: a message with that expiration, dead-lettered into
    /// a queue the test consumes, arrives once it has expired there.
    pub async fn clock(&mut self, ms: u64) {
        let probe = self.queue("clock-probe", &[]).await;
        let timer = self
            .queue("clock", &[("x-dead-letter-exchange", s("")), ("x-dead-letter-routing-key", s(&probe))])
            .await;
        let mut probe_in = self.consume(&probe, 1).await;
        let props = BasicProperties::default().with_expiration(ms.to_string().into());
        assert!(self.publish_with(&timer, "tick", props).await);
        probe_in.next().await;
        probe_in.close().await;
    }

    pub async fn close(self) {
        for q in &self.queues {
            let _ = self.ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

pub struct Deliveries {
    pub ch: Channel,
    consumer: Consumer,
}

impl Deliveries {
    /// The next delivery, within `WAIT`.
    pub async fn next(&mut self) -> Got {
        let d = tokio::time::timeout(WAIT, self.consumer.next())
            .await
            .expect("a delivery in time")
            .expect("the consumer is open")
            .expect("a delivery");
        Got::from(d)
    }

    pub async fn close(self) {
        let _ = self.ch.close(200, "done".into()).await;
    }
}
