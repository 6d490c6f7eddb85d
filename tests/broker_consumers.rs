//! Who gets which message: consumer priorities and single active consumer, delivery by
//! delivery, the same assertions on both brokers; the consumer timeout on the embedded broker
//! (RabbitMQ 3.10 sets it only in rabbitmq.conf).
//!
//! Every published message is awaited at the consumer that must get it, so a message that goes
//! elsewhere fails the test by a timeout, with no wait standing in for "nothing else came".

mod common;

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use warren::broker::{BrokerConfig, Limits};
use warren::workload::connect::{reply_code, reply_text};

/// Long enough for any delivery on a loaded machine.
const WAIT: Duration = Duration::from_secs(10);

async fn connect(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default()).await.expect("connects")
}

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn priority(p: i32) -> FieldTable {
    table(&[("x-priority", AMQPValue::LongInt(p))])
}

async fn declare(ch: &Channel, queue: &str, args: &[(&str, AMQPValue)]) {
    let durable = args.iter().any(|(k, _)| *k == "x-queue-type");
    let opts = QueueDeclareOptions { durable, ..Default::default() };
    ch.queue_declare(queue.into(), opts, table(args)).await.expect("queue declared");
}

async fn publish(ch: &Channel, queue: &str, bodies: &[&str]) {
    for body in bodies {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .expect("published")
        .await
        .expect("confirmed");
    }
}

/// A consumer on its own channel (prefetch `prefetch`, 0: none), manual ack.
struct Taker {
    ch: Channel,
    consumer: Consumer,
    tag: String,
}

impl Taker {
    async fn new(conn: &Connection, queue: &str, tag: &str, prefetch: u16, args: FieldTable) -> Taker {
        let ch = conn.create_channel().await.unwrap();
        if prefetch > 0 {
            ch.basic_qos(prefetch, BasicQosOptions::default()).await.unwrap();
        }
        let consumer = ch
            .basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), args)
            .await
            .expect("consume-ok");
        Taker { ch, consumer, tag: tag.to_string() }
    }

    /// The next delivery's body and redelivered flag, and its tag for acking.
    async fn next(&mut self) -> (String, bool, u64) {
        let d = tokio::time::timeout(WAIT, self.consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} got nothing", self.tag))
            .expect("consumer still open")
            .expect("a delivery");
        (String::from_utf8_lossy(&d.data).into_owned(), d.redelivered, d.delivery_tag)
    }

    /// The next `n` bodies, each flagged redelivered or not, unacked.
    async fn take(&mut self, n: usize) -> Vec<(String, bool)> {
        let mut got = Vec::new();
        for _ in 0..n {
            let (body, redelivered, _) = self.next().await;
            got.push((body, redelivered));
        }
        got
    }

    async fn ack(&self, tag: u64) {
        self.ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    }
}

fn fresh(bodies: &[&str]) -> Vec<(String, bool)> {
    bodies.iter().map(|b| (b.to_string(), false)).collect()
}

fn again(bodies: &[&str]) -> Vec<(String, bool)> {
    bodies.iter().map(|b| (b.to_string(), true)).collect()
}

async fn priorities(url: &str) {
    let queue = common::unique_queue("priorities");
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    declare(&ch, &queue, &[]).await;
    // Registered low first: order of registration does not beat priority.
    let mut low = Taker::new(&conn, &queue, "low", 2, priority(-1)).await;
    let mut hi1 = Taker::new(&conn, &queue, "hi1", 2, priority(10)).await;
    let mut hi2 = Taker::new(&conn, &queue, "hi2", 2, priority(10)).await;
    publish(&ch, &queue, &["m1", "m2", "m3", "m4"]).await;
    // Round-robin among the highest, until both are full.
    assert_eq!(hi1.take(2).await, fresh(&["m1", "m3"]));
    let (m2, _, m2_tag) = hi2.next().await;
    assert_eq!((m2.as_str(), hi2.take(1).await), ("m2", fresh(&["m4"])));
    // Both high ones are blocked: only now does the low one get messages.
    publish(&ch, &queue, &["m5", "m6"]).await;
    let (m5, _, m5_tag) = low.next().await;
    assert_eq!((m5.as_str(), low.take(1).await), ("m5", fresh(&["m6"])));
    // A high one with room again takes the next one, although the low one has room too
    // after its ack.
    low.ack(m5_tag).await;
    hi2.ack(m2_tag).await;
    publish(&ch, &queue, &["m7"]).await;
    assert_eq!(hi2.take(1).await, fresh(&["m7"]));
    // Not an integer: refused as RabbitMQ refuses it.
    let bad = conn.create_channel().await.unwrap();
    let e = bad
        .basic_consume(
            queue.as_str().into(),
            "bad".into(),
            BasicConsumeOptions::default(),
            table(&[("x-priority", AMQPValue::LongString(LongString::from("high")))]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (reply_code(&e), reply_text(&e).replace(&queue, "Q")),
        (
            Some(406),
            "PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'Q' in vhost '/': \"expected integer, got longstr\""
                .to_string()
        )
    );
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn consumer_priorities_go_to_the_highest_with_room_first() {
    on_every_broker!("consumer_priorities_go_to_the_highest_with_room_first", priorities);
}

fn sac() -> Vec<(&'static str, AMQPValue)> {
    vec![("x-single-active-consumer", AMQPValue::Boolean(true))]
}

async fn single_active(url: &str) {
    let queue = common::unique_queue("sac");
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    declare(&ch, &queue, &sac()).await;
    // No prefetch: RabbitMQ 3.10's classic queues stall a hand-over on cancel when the next
    // consumer has a prefetch limit (fixed later); the hand-over itself is what is tested.
    let mut a = Taker::new(&conn, &queue, "a", 0, FieldTable::default()).await;
    let mut b = Taker::new(&conn, &queue, "b", 0, FieldTable::default()).await;
    let other = connect(url).await;
    let mut c = Taker::new(&other, &queue, "c", 0, FieldTable::default()).await;
    let last = connect(url).await;
    let mut d = Taker::new(&last, &queue, "d", 0, FieldTable::default()).await;
    // An exclusive consumer is refused on a single-active-consumer queue.
    let refused = conn.create_channel().await.unwrap();
    let opts = BasicConsumeOptions { exclusive: true, ..Default::default() };
    let e = refused
        .basic_consume(queue.as_str().into(), "x".into(), opts, FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(
        (reply_code(&e), reply_text(&e).replace(&queue, "Q")),
        (Some(403), "ACCESS_REFUSED - queue 'Q' in vhost '/' in exclusive use".to_string())
    );
    // Only the first registered gets anything.
    publish(&ch, &queue, &["m1", "m2"]).await;
    assert_eq!(a.take(2).await, fresh(&["m1", "m2"]));
    // Its channel closes: its unacked come back first, to the next in line.
    a.ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(b.take(2).await, again(&["m1", "m2"]));
    publish(&ch, &queue, &["m3"]).await;
    assert_eq!(b.take(1).await, fresh(&["m3"]));
    // It cancels: the next takes over at once; the cancelled one's unacked stay with its
    // channel (basic.cancel does not requeue) until that closes.
    b.ch.basic_cancel(b.tag.as_str().into(), BasicCancelOptions::default()).await.unwrap();
    publish(&ch, &queue, &["m4"]).await;
    assert_eq!(c.take(1).await, fresh(&["m4"]));
    b.ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(c.take(3).await, again(&["m1", "m2", "m3"]));
    // Its connection closes: everything it held goes to the last one, in queue order.
    other.close(200, "bye".into()).await.unwrap();
    assert_eq!(d.take(4).await, again(&["m1", "m2", "m3", "m4"]));
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = last.close(200, "bye".into()).await;
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_single_active_consumer_hands_over_in_order_with_its_unacked_first() {
    on_every_broker!("a_single_active_consumer_hands_over_in_order_with_its_unacked_first", single_active);
}

async fn single_active_priorities(url: &str) {
    let queue = common::unique_queue("sac-prio");
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    declare(&ch, &queue, &sac()).await;
    let mut a = Taker::new(&conn, &queue, "a", 0, priority(0)).await;
    let mut b = Taker::new(&conn, &queue, "b", 0, priority(0)).await;
    let mut c = Taker::new(&conn, &queue, "c", 0, priority(5)).await;
    // A classic queue keeps its active consumer when a higher-priority one registers...
    publish(&ch, &queue, &["m1"]).await;
    assert_eq!(a.take(1).await, fresh(&["m1"]));
    // ...and hands over to the highest priority standing by, not the earliest.
    a.ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(c.take(1).await, again(&["m1"]));
    c.ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(b.take(1).await, again(&["m1"]));
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_classic_single_active_consumer_hands_over_to_the_highest_priority() {
    on_every_broker!(
        "a_classic_single_active_consumer_hands_over_to_the_highest_priority",
        single_active_priorities
    );
}

/// RabbitMQ 4.x quorum queues (not 3.10's): a higher-priority consumer takes over once the
/// active one's unacked are settled; until then the active one gets nothing new.
#[tokio::test]
async fn a_quorum_single_active_consumer_yields_to_a_higher_priority_once_drained() {
    let broker = warren::broker::start(BrokerConfig::local()).await.unwrap();
    let url = broker.url("guest", "guest");
    let queue = common::unique_queue("sac-quorum");
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let mut args = sac();
    args.push(("x-queue-type", AMQPValue::LongString(LongString::from("quorum"))));
    declare(&ch, &queue, &args).await;
    let mut a = Taker::new(&conn, &queue, "a", 0, priority(0)).await;
    publish(&ch, &queue, &["m1"]).await;
    let (m1, _, m1_tag) = a.next().await;
    assert_eq!(m1, "m1");
    let mut b = Taker::new(&conn, &queue, "b", 0, priority(5)).await;
    publish(&ch, &queue, &["m2"]).await;
    a.ack(m1_tag).await;
    assert_eq!(b.take(1).await, fresh(&["m2"]));
    publish(&ch, &queue, &["m3"]).await;
    assert_eq!(b.take(1).await, fresh(&["m3"]));
    // The one it replaced stands by again and takes over when it goes.
    b.ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(a.take(2).await, again(&["m2", "m3"]));
    let _ = conn.close(200, "bye".into()).await;
    broker.stop().await;
}

/// The close a consumer's channel ended with: its code and text.
async fn closed_with(t: &mut Taker) -> (Option<u16>, String) {
    let e = match tokio::time::timeout(WAIT, t.consumer.next()).await.expect("the channel closes") {
        Some(Err(e)) => e,
        other => panic!("expected the channel's close, got {other:?}"),
    };
    (reply_code(&e), reply_text(&e))
}

fn timeout_text(channel: u16, ms: u64) -> String {
    format!(
        "PRECONDITION_FAILED - delivery acknowledgement on channel {channel} timed out. Timeout value used: \
         {ms} ms. This timeout value can be configured, see consumers doc guide to learn more"
    )
}

#[tokio::test]
async fn a_delivery_not_acked_in_time_closes_its_channel_and_is_requeued() {
    let limits = Limits { consumer_timeout: Some(Duration::from_millis(200)), ..Limits::default() };
    let broker = warren::broker::start(BrokerConfig { limits, ..BrokerConfig::local() }).await.unwrap();
    let url = broker.url("guest", "guest");
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let queue = "timeouts";
    declare(&ch, queue, &[]).await;
    // The broker's timeout: the slow consumer's channel closes, both its deliveries are
    // requeued and go to the one left, in order.
    let mut slow = Taker::new(&conn, queue, "slow", 2, FieldTable::default()).await;
    publish(&ch, queue, &["m1", "m2"]).await;
    assert_eq!(slow.take(2).await, fresh(&["m1", "m2"]));
    let mut quick = Taker::new(&conn, queue, "quick", 0, FieldTable::default()).await;
    let channel = slow.ch.id();
    assert_eq!(closed_with(&mut slow).await, (Some(406), timeout_text(channel, 200)));
    let (m1, redelivered, tag) = quick.next().await;
    assert_eq!((m1.as_str(), redelivered), ("m1", true));
    quick.ack(tag).await;
    let (m2, redelivered, tag) = quick.next().await;
    assert_eq!((m2.as_str(), redelivered), ("m2", true));
    quick.ack(tag).await;
    // Acked in time, nothing happens: the channel still serves after several timeouts.
    publish(&ch, queue, &["m3"]).await;
    let (_, _, tag) = quick.next().await;
    quick.ack(tag).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    publish(&ch, queue, &["m4"]).await;
    let (m4, redelivered, tag) = quick.next().await;
    assert_eq!((m4.as_str(), redelivered), ("m4", false));
    quick.ack(tag).await;
    // The channel number is free again once closed: a new channel there works.
    let reopened = conn.create_channel().await.unwrap();
    reopened.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
    broker.stop().await;
}

#[tokio::test]
async fn queue_and_consumer_arguments_set_their_own_consumer_timeout() {
    // The broker's own would be 30 minutes.
    let broker = warren::broker::start(BrokerConfig::local()).await.unwrap();
    let url = broker.url("guest", "guest");
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let ms = |n: i64| AMQPValue::LongLongInt(n);
    declare(&ch, "per-queue", &[("x-consumer-timeout", ms(150))]).await;
    let mut by_queue = Taker::new(&conn, "per-queue", "q", 0, FieldTable::default()).await;
    publish(&ch, "per-queue", &["m1"]).await;
    by_queue.take(1).await;
    let channel = by_queue.ch.id();
    assert_eq!(closed_with(&mut by_queue).await, (Some(406), timeout_text(channel, 150)));
    // The consumer's argument wins over the queue's.
    let own = table(&[("x-consumer-timeout", ms(250))]);
    let mut by_consumer = Taker::new(&conn, "per-queue", "c", 0, own).await;
    assert_eq!(by_consumer.take(1).await, again(&["m1"]));
    let channel = by_consumer.ch.id();
    assert_eq!(closed_with(&mut by_consumer).await, (Some(406), timeout_text(channel, 250)));
    // basic.get with ack times out too (the queue's timeout).
    let getter = conn.create_channel().await.unwrap();
    let got = getter.basic_get("per-queue".into(), Default::default()).await.unwrap();
    assert!(got.is_some(), "m1 is back in the queue");
    let mut watch = getter
        .basic_consume("per-queue".into(), "w".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let e = match tokio::time::timeout(WAIT, watch.next()).await.expect("the channel closes") {
        Some(Err(e)) => e,
        other => panic!("expected the channel's close, got {other:?}"),
    };
    assert_eq!((reply_code(&e), reply_text(&e)), (Some(406), timeout_text(getter.id(), 150)));
    let _ = conn.close(200, "bye".into()).await;
    broker.stop().await;
}
