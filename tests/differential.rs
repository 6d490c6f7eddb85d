//! The same scripted workloads on RabbitMQ and on the embedded broker, compared delivery by
//! delivery: which consumer got which task, in which order, with which redelivered flag.
//! Acks are scripted, so dispatch decisions do not depend on timing.
//! Last, one topology rule checked the same way on both: auto-delete exchanges.

mod common;

use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use warren::workload::connect::reply_code;

/// One delivery as seen by a consumer: (consumer index, task body, redelivered).
type Seen = (usize, String, bool);

enum Step {
    /// Publish these tasks (confirmed one by one).
    Publish(&'static [&'static str]),
    /// Wait for exactly this many deliveries, across all consumers.
    Expect(usize),
    /// Consumer `n` acks the delivery of this task.
    Ack(usize, &'static str),
    /// Consumer `n` crashes: its connection closes without acking.
    Kill(usize),
}

struct Consumer {
    conn: Option<Connection>,
    channel: Channel,
    /// delivery tags of what it holds, by body
    held: Vec<(String, u64)>,
}

/// Run `steps` with consumers registered in order; returns every delivery, each `Expect`'s
/// batch sorted (deliveries on different connections may arrive in either order).
async fn run(url: &str, consumers: usize, no_ack: bool, prefetch: u16, steps: &[Step]) -> Vec<Seen> {
    let queue = common::unique_queue("diff");
    let producer = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let pch = producer.create_channel().await.unwrap();
    pch.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    pch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut cs = Vec::new();
    let mut streams: SelectAll<BoxStream<'static, (usize, lapin::message::Delivery)>> = SelectAll::new();
    for i in 0..consumers {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        if !no_ack {
            ch.basic_qos(prefetch, BasicQosOptions::default()).await.unwrap();
        }
        let opts = BasicConsumeOptions { no_ack, ..Default::default() };
        let consumer =
            ch.basic_consume(queue.as_str().into(), "".into(), opts, FieldTable::default()).await.unwrap();
        streams.push(consumer.filter_map(move |d| async move { d.ok().map(|d| (i, d)) }).boxed());
        cs.push(Consumer { conn: Some(conn), channel: ch, held: Vec::new() });
    }
    let mut seen = Vec::new();
    for step in steps {
        match step {
            Step::Publish(bodies) => {
                for body in *bodies {
                    let opts = BasicPublishOptions::default();
                    let props = BasicProperties::default();
                    let confirm = pch
                        .basic_publish("".into(), queue.as_str().into(), opts, body.as_bytes(), props)
                        .await
                        .unwrap();
                    confirm.await.unwrap();
                }
            }
            Step::Expect(n) => {
                let mut batch = Vec::new();
                for _ in 0..*n {
                    let (i, d) = tokio::time::timeout(Duration::from_secs(5), streams.next())
                        .await
                        .expect("a delivery within 5s")
                        .expect("consumers still open");
                    let body = String::from_utf8(d.data.clone()).unwrap();
                    cs[i].held.push((body.clone(), d.delivery_tag));
                    batch.push((i, body, d.redelivered));
                }
                batch.sort();
                seen.extend(batch);
            }
            Step::Ack(i, body) => {
                let c = &mut cs[*i];
                let at = c.held.iter().position(|(b, _)| b == body).expect("the consumer holds that task");
                let (_, tag) = c.held.remove(at);
                c.channel.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
                // Acks on different connections may reach the broker in either order: a round
                // trip on the same channel (handled in order) makes sure this one has landed.
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                c.channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await.unwrap();
            }
            Step::Kill(i) => {
                if let Some(conn) = cs[*i].conn.take() {
                    conn.close(320, "killed".into()).await.unwrap();
                }
            }
        }
    }
    let _ = pch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    for c in cs {
        if let Some(conn) = c.conn {
            let _ = conn.close(200, "bye".into()).await;
        }
    }
    let _ = producer.close(200, "bye".into()).await;
    seen
}

async fn compare(
    test: &str,
    consumers: usize,
    no_ack: bool,
    prefetch: u16,
    steps: &[Step],
    expected: &[Seen],
) {
    let mut results = Vec::new();
    for b in common::brokers(test).await {
        let seen = run(&b.url, consumers, no_ack, prefetch, steps).await;
        // Both must match the rules as written down, not only each other.
        assert_eq!(seen, expected, "{test} on {}", b.name);
        results.push((b.name, seen));
        b.stop().await;
    }
    if let [(_, embedded), (_, rabbit)] = &results[..] {
        assert_eq!(embedded, rabbit, "{test}: the embedded broker differs from RabbitMQ");
    }
}

fn s(i: usize, body: &str, redelivered: bool) -> Seen {
    (i, body.to_string(), redelivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_auto_ack() {
    let steps = [Step::Publish(&["t1", "t2", "t3", "t4", "t5", "t6", "t7"]), Step::Expect(7)];
    let want = [
        s(0, "t1", false),
        s(0, "t4", false),
        s(0, "t7", false),
        s(1, "t2", false),
        s(1, "t5", false),
        s(2, "t3", false),
        s(2, "t6", false),
    ];
    compare("round_robin_auto_ack", 3, true, 0, &steps, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_one_skips_busy_consumers_and_rejoins_them_at_the_tail() {
    use Step::*;
    let steps = [
        Publish(&["t1", "t2", "t3", "t4"]),
        Expect(3), // C1 t1, C2 t2, C3 t3; t4 waits: everyone is full
        Ack(2, "t3"),
        Expect(1), // only C3 has room: t4
        Ack(1, "t2"),
        Ack(0, "t1"), // ring now: C3 (got t4), C2, C1
        Publish(&["t5", "t6"]),
        Expect(2), // C3 is full (t4): skipped; t5 to C2, t6 to C1
    ];
    let want = [
        s(0, "t1", false),
        s(1, "t2", false),
        s(2, "t3", false),
        s(2, "t4", false),
        s(0, "t6", false),
        s(1, "t5", false),
    ];
    compare("prefetch_one", 3, false, 1, &steps, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_three_fills_each_window_in_turn() {
    use Step::*;
    let steps = [
        Publish(&["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]),
        Expect(6), // C1 t1 t3 t5, C2 t2 t4 t6; t7, t8 wait
        Ack(1, "t4"),
        Expect(1), // C2 has room: t7
        Ack(0, "t1"),
        Expect(1), // C1: t8
    ];
    let want = [
        s(0, "t1", false),
        s(0, "t3", false),
        s(0, "t5", false),
        s(1, "t2", false),
        s(1, "t4", false),
        s(1, "t6", false),
        s(1, "t7", false),
        s(0, "t8", false),
    ];
    compare("prefetch_three", 2, false, 3, &steps, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumers_tasks_are_redelivered_in_their_original_order() {
    use Step::*;
    let steps = [
        Publish(&["t1", "t2", "t3", "t4", "t5"]),
        Expect(4), // C1 t1 t3, C2 t2 t4 (prefetch 2); t5 waits
        Kill(0),   // t1 and t3 go back in front of t5, flagged redelivered
        Ack(1, "t2"),
        Expect(1), // C2: t1 (redelivered), the head of the queue
        Ack(1, "t4"),
        Expect(1), // C2: t3 (redelivered)
        Ack(1, "t1"),
        Expect(1), // C2: t5
    ];
    let want = [
        s(0, "t1", false),
        s(0, "t3", false),
        s(1, "t2", false),
        s(1, "t4", false),
        s(1, "t1", true),
        s(1, "t3", true),
        s(1, "t5", false),
    ];
    compare("kill_and_redeliver", 2, false, 2, &steps, &want).await;
}

/// An auto-delete exchange outlives having no bindings yet, and goes with its last binding,
/// whether that is unbound or goes with its queue: the same on both brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_delete_exchange_goes_with_its_last_binding() {
    on_every_broker!("an_auto_delete_exchange_goes_with_its_last_binding", auto_delete_exchange_on);
}

async fn auto_delete_exchange_on(url: &str) {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
    let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let x = common::unique_queue("auto-delete-x");
    let auto_delete = ExchangeDeclareOptions { auto_delete: true, ..Default::default() };
    let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
    let declare = |ch: Channel, options| {
        let x = x.clone();
        async move {
            ch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Fanout,
                options,
                FieldTable::default(),
            )
            .await
        }
    };
    declare(ch.clone(), auto_delete).await.expect("declare");
    declare(ch.clone(), passive).await.expect("no binding yet: the exchange stays");
    let bind = |ch: Channel, queue: ShortString| {
        let x = x.clone();
        async move {
            ch.queue_bind(
                queue,
                x.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        }
    };
    let mut queues = Vec::new();
    for _ in 0..2 {
        let options = QueueDeclareOptions { exclusive: true, ..Default::default() };
        let q = ch.queue_declare("".into(), options, FieldTable::default()).await.expect("queue");
        bind(ch.clone(), q.name().clone()).await;
        queues.push(q.name().clone());
    }
    ch.queue_unbind(queues[0].clone(), x.as_str().into(), "".into(), FieldTable::default())
        .await
        .expect("unbind");
    declare(ch.clone(), passive).await.expect("one binding left: the exchange stays");
    ch.queue_delete(queues[1].clone(), QueueDeleteOptions::default()).await.expect("delete the queue");
    let ch = expect_gone(&conn, ch, &x, "its last binding went with its queue").await;
    // Again, the last binding unbound this time.
    declare(ch.clone(), auto_delete).await.expect("declare again");
    bind(ch.clone(), queues[0].clone()).await;
    ch.queue_unbind(queues[0].clone(), x.as_str().into(), "".into(), FieldTable::default())
        .await
        .expect("unbind");
    expect_gone(&conn, ch, &x, "its last binding was unbound").await;
    // lapin may still be closing the channels the 404s closed: its close error says nothing here.
    let _ = conn.close(200, "bye".into()).await;
}

/// A passive declare of exchange `x` on `ch` is NOT_FOUND; returns a fresh channel (the 404
/// closed this one). If the exchange is still there, it is deleted before failing.
async fn expect_gone(conn: &Connection, ch: Channel, x: &str, after: &str) -> Channel {
    use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions};
    let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
    let found =
        ch.exchange_declare(x.into(), lapin::ExchangeKind::Fanout, passive, FieldTable::default()).await;
    let fresh = conn.create_channel().await.expect("channel");
    match found {
        Err(e) => assert_eq!(reply_code(&e), Some(404), "after {after}: {e}"),
        Ok(()) => {
            let _ = fresh.exchange_delete(x.into(), ExchangeDeleteOptions::default()).await;
            panic!("the auto-delete exchange is still there after {after}");
        }
    }
    fresh
}

/// A quorum queue tells how often a message was delivered before, in x-delivery-count: nothing
/// the first time, 1 after one requeue. The same on both brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_counts_earlier_deliveries() {
    on_every_broker!("a_quorum_queue_counts_earlier_deliveries", quorum_delivery_count_on);
}

async fn quorum_delivery_count_on(url: &str) {
    use lapin::options::BasicNackOptions;
    use lapin::types::AMQPValue;
    let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let queue = common::unique_queue("quorum-count");
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), durable, args).await.expect("declare a quorum queue");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    ch.basic_publish(
        "".into(),
        queue.as_str().into(),
        BasicPublishOptions::default(),
        b"t1",
        BasicProperties::default(),
    )
    .await
    .expect("publish")
    .await
    .expect("confirmed");
    ch.basic_qos(1, BasicQosOptions::default()).await.expect("qos");
    let mut deliveries = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut counts = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
            .await
            .expect("a delivery in time")
            .expect("the consumer is open")
            .expect("a delivery");
        counts.push(d.properties.headers().as_ref().and_then(|h| h.inner().get("x-delivery-count").cloned()));
        d.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.expect("nack");
    }
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.expect("delete");
    conn.close(200, "bye".into()).await.expect("close");
    assert_eq!(counts[0], None, "the first delivery has no x-delivery-count");
    assert!(
        matches!(counts[1], Some(AMQPValue::LongLongInt(1) | AMQPValue::LongInt(1) | AMQPValue::LongUInt(1))),
        "the second delivery has x-delivery-count 1: {:?}",
        counts[1]
    );
}
