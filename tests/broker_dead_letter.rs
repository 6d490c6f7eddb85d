//! Dead-lettering and the quorum delivery limit, with the same assertions on the embedded
//! broker and on RabbitMQ wherever 3.10 shares the behaviour: where a dead letter goes, its
//! x-death records and first-death headers, cycles dropped, a missing DLX dropping, and poison
//! messages leaving a quorum queue after their delivery limit. Then what only the embedded
//! broker can be asked: RabbitMQ 4's default limit, and hostile x-death headers.

mod common;
#[path = "support/queues.rs"]
mod queues;

use lapin::options::{
    BasicNackOptions, BasicRejectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use queues::{Client, Death, int, s, table};

fn to_dlq(dlq: &str) -> Vec<(&'static str, AMQPValue)> {
    vec![("x-dead-letter-exchange", s("")), ("x-dead-letter-routing-key", s(dlq))]
}

async fn reject(got: queues::Got) {
    got.delivery.reject(BasicRejectOptions { requeue: false }).await.expect("reject");
}

async fn rejected_twice(url: &str) {
    let mut c = Client::connect(url).await;
    let entry = common::unique_queue("dlx-entry");
    let dlx = common::unique_queue("dlx-fanout");
    c.ch.exchange_declare(
        entry.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("entry exchange");
    c.ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("dlx");
    let dlq = c.queue("dlx-last", &[]).await;
    let mid = c.queue("dlx-mid", &to_dlq(&dlq)).await;
    // No dead-letter routing key: the message keeps its own ("k").
    let src = c.queue("dlx-src", &[("x-dead-letter-exchange", s(&dlx))]).await;
    c.ch.queue_bind(
        src.as_str().into(),
        entry.as_str().into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind src");
    c.ch.queue_bind(
        mid.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind mid");
    let props = BasicProperties::default()
        .with_expiration("60000".into())
        .with_headers(table(&[("app", s("kept"))]))
        .with_message_id("id-1".into());
    assert!(c.publish_to(&entry, "k", "poison", props).await);
    reject(c.get(&src).await.expect("in src")).await;
    // Awaited as a delivery: RabbitMQ dead-letters after the reject's reply.
    let mut mid_in = c.consume(&mid, 1).await;
    let at_mid = mid_in.next().await;
    assert_eq!((at_mid.exchange.as_str(), at_mid.routing_key.as_str()), (dlx.as_str(), "k"));
    assert_eq!(at_mid.properties.expiration(), &None, "the expiration moves into x-death");
    let first =
        Death { original_expiration: Some("60000".into()), ..Death::first("rejected", &src, &entry, "k") };
    assert_eq!(at_mid.deaths(), vec![first]);
    reject(at_mid).await;
    mid_in.close().await;
    let mut dead = c.consume(&dlq, 10).await;
    let d = dead.next().await;
    assert_eq!((d.body.as_str(), d.exchange.as_str(), d.routing_key.as_str()), ("poison", "", dlq.as_str()));
    let first =
        Death { original_expiration: Some("60000".into()), ..Death::first("rejected", &src, &entry, "k") };
    assert_eq!(d.deaths(), vec![Death::first("rejected", &mid, &dlx, "k"), first], "most recent first");
    assert_eq!(d.header_text("x-first-death-queue"), Some(src.clone()));
    assert_eq!(d.header_text("x-first-death-exchange"), Some(entry.clone()));
    assert_eq!(d.header_text("x-first-death-reason").as_deref(), Some("rejected"));
    assert_eq!(d.header_text("app").as_deref(), Some("kept"));
    assert_eq!(d.properties.message_id().as_ref().map(|m| m.as_str()), Some("id-1"));
    dead.close().await;
    for x in [&entry, &dlx] {
        c.ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("delete exchange");
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_rejected_twice_carries_both_deaths() {
    on_every_broker!("a_message_rejected_twice_carries_both_deaths", rejected_twice);
}

async fn counted_and_cycles(url: &str) {
    let mut c = Client::connect(url).await;
    // Rejected back into its own queue: not a cycle (a client decided each time), counted.
    let again = c.queue("dlx-again", &[("x-dead-letter-exchange", s(""))]).await;
    assert!(c.publish(&again, "r").await);
    // Awaited as deliveries: RabbitMQ dead-letters after the nack's reply, so a get could
    // come too early.
    let mut worker = c.consume(&again, 1).await;
    for count in 1..=3 {
        let m = worker.next().await;
        if count > 1 {
            let d = Death { count: count - 1, ..Death::first("rejected", &again, "", &again) };
            assert_eq!(m.deaths(), vec![d], "one record, counted");
        }
        m.delivery.nack(BasicNackOptions { requeue: false, ..Default::default() }).await.expect("nack");
    }
    worker.close().await;
    // Expired back into its own queue, or round two queues: a cycle with no rejection in it,
    // dropped.
    let own =
        c.queue("dlx-cycle-own", &[("x-dead-letter-exchange", s("")), ("x-message-ttl", int(100))]).await;
    let b = common::unique_queue("dlx-cycle-b");
    let a = c
        .queue(
            "dlx-cycle-a",
            &[
                ("x-dead-letter-exchange", s("")),
                ("x-dead-letter-routing-key", s(&b)),
                ("x-message-ttl", int(100)),
            ],
        )
        .await;
    let b_args = [
        ("x-dead-letter-exchange", s("")),
        ("x-dead-letter-routing-key", s(&a)),
        ("x-message-ttl", int(100)),
    ];
    let opts = lapin::options::QueueDeclareOptions::default();
    c.ch.queue_declare(b.as_str().into(), opts, table(&b_args)).await.expect("declare b");
    assert!(c.publish(&own, "o").await);
    assert!(c.publish(&a, "ab").await);
    c.clock(1000).await;
    let counts = (c.count(&own).await, c.count(&a).await, c.count(&b).await);
    assert_eq!(counts, (0, 0, 0), "cycles are dropped");
    let _ = c.ch.queue_delete(b.as_str().into(), Default::default()).await;
    // A DLX that does not exist: dropped, and nothing else happens.
    let lost = c
        .queue("dlx-missing", &[("x-dead-letter-exchange", s(&common::unique_queue("no-such-exchange")))])
        .await;
    assert!(c.publish(&lost, "m").await);
    reject(c.get(&lost).await.expect("m")).await;
    assert_eq!(c.count(&lost).await, 0);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deaths_are_counted_cycles_and_missing_exchanges_drop() {
    on_every_broker!("deaths_are_counted_cycles_and_missing_exchanges_drop", counted_and_cycles);
}

async fn delivery_limit(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("poison-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.push(("x-delivery-limit", int(2)));
    let src = c.quorum("poison", &args).await;
    assert!(c.publish(&src, "poison").await);
    assert!(c.publish(&src, "fine").await);
    // A consumer that nacks "poison" with requeue: 3 deliveries (limit 2), then it is gone.
    let mut worker = c.consume(&src, 1).await;
    let mut seen = Vec::new();
    loop {
        let d = worker.next().await;
        seen.push((d.body.clone(), d.redelivered));
        if d.body == "fine" {
            d.delivery.ack(Default::default()).await.expect("ack");
            break;
        }
        if seen.len() > 1 {
            assert_eq!(d.delivery_count(), Some(seen.len() as i64 - 1));
        }
        d.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.expect("nack");
    }
    let want: Vec<(String, bool)> = [("poison", false), ("poison", true), ("poison", true), ("fine", false)]
        .map(|(b, r)| (b.into(), r))
        .into();
    assert_eq!(seen, want);
    let mut dead = c.consume(&dlq, 10).await;
    let d = dead.next().await;
    assert_eq!(d.body, "poison");
    assert_eq!(d.deaths(), vec![Death::first("delivery_limit", &src, "", &src)]);
    worker.close().await;
    // A channel closed with the message unacked counts as a return too: a consumer takes it
    // and its channel closes, twice; the second return passes the limit (1).
    let mut once_args = to_dlq(&dlq);
    once_args.push(("x-delivery-limit", int(1)));
    let once = c.quorum("poison-close", &once_args).await;
    assert!(c.publish(&once, "crash").await);
    for _ in 0..2 {
        let mut crashing = c.consume(&once, 1).await;
        assert_eq!(crashing.next().await.body, "crash");
        crashing.close().await;
    }
    let d = dead.next().await;
    assert_eq!(d.body, "crash");
    assert_eq!(d.deaths(), vec![Death::first("delivery_limit", &once, "", &once)]);
    assert_eq!(c.count(&once).await, 0);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_dead_letters_a_message_past_its_delivery_limit() {
    on_every_broker!("a_quorum_queue_dead_letters_a_message_past_its_delivery_limit", delivery_limit);
}

/// RabbitMQ 4's default (20) on a quorum queue declared without x-delivery-limit; 3.10 has
/// none, so this runs on the embedded broker only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_has_rabbitmq_4s_default_delivery_limit() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker");
    let mut c = Client::connect(&broker.url("guest", "guest")).await;
    let src = c.quorum("default-limit", &[]).await;
    assert!(c.publish(&src, "poison").await);
    let mut deliveries = 0;
    while let Some(m) = c.get(&src).await {
        deliveries += 1;
        m.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.expect("nack");
    }
    assert_eq!(deliveries, 21, "delivered once, then returned 20 times");
    c.close().await;
    broker.stop().await;
}

/// Whatever a client puts in x-death, dead-lettering neither panics nor fails: the broker's
/// record goes first, the client's values stay as they were (RabbitMQ 3.10 answers some of
/// these by closing the channel, so this runs on the embedded broker only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_x_death_headers_are_survived() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker");
    let mut c = Client::connect(&broker.url("guest", "guest")).await;
    let dlq = c.queue("hostile-dlq", &[]).await;
    let src = c.queue("hostile-src", &to_dlq(&dlq)).await;
    let huge = "q".repeat(2_000);
    let entry = |count: AMQPValue, queue: &str| {
        AMQPValue::FieldTable(table(&[("count", count), ("queue", s(queue)), ("reason", s("rejected"))]))
    };
    let cases: Vec<AMQPValue> = vec![
        s("not an array"),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Void, int(5), s("x")])),
        AMQPValue::FieldArray(FieldArray::from(vec![entry(int(i64::MAX), &src)])),
        AMQPValue::FieldArray(FieldArray::from(vec![entry(s("many"), &src)])),
        AMQPValue::FieldArray(FieldArray::from(vec![entry(int(-7), &src)])),
        AMQPValue::FieldArray(FieldArray::from(vec![entry(int(1), &huge); 50])),
    ];
    for (i, x_death) in cases.into_iter().enumerate() {
        let props = BasicProperties::default()
            .with_headers(table(&[("x-death", x_death), ("x-first-death-queue", int(3))]));
        assert!(c.publish_with(&src, &i.to_string(), props).await);
        reject(c.get(&src).await.expect("in src")).await;
        let d = c.get_soon(&dlq).await.expect("dead-lettered");
        assert_eq!(d.body, i.to_string());
        let mine = d.deaths().into_iter().next().expect("a record");
        assert_eq!((mine.reason.as_str(), mine.queue.as_str()), ("rejected", src.as_str()), "case {i}");
        assert!(mine.count >= 1, "case {i}: {}", mine.count);
        assert_eq!(d.header("x-first-death-queue"), Some(int(3)), "a first death is never overwritten");
        d.delivery.ack(Default::default()).await.expect("ack");
    }
    c.close().await;
    broker.stop().await;
}
