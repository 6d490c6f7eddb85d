//! Message TTL, the `expiration` property and x-expires, with the same assertions on the
//! embedded broker and on RabbitMQ: which message expires, when (only at the head), where it
//! goes (dead-lettered with reason `expired`), and which publishes are refused.

mod common;
#[path = "support/queues.rs"]
mod queues;

use lapin::BasicProperties;
use lapin::options::{BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use queues::{Client, Death, int, s};
use warren::workload::connect::{reply_code, reply_text};

fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

/// A queue dead-lettering to a fresh queue `dlq` through the default exchange.
fn to_dlq(dlq: &str) -> Vec<(&'static str, lapin::types::AMQPValue)> {
    vec![("x-dead-letter-exchange", s("")), ("x-dead-letter-routing-key", s(dlq))]
}

async fn expired_messages_are_dead_lettered_in_order(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("ttl-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.push(("x-message-ttl", int(200)));
    let src = c.queue("ttl-src", &args).await;
    let mut dead = c.consume(&dlq, 10).await;
    assert!(c.publish(&src, "m1").await);
    assert!(c.publish(&src, "m2").await);
    for body in ["m1", "m2"] {
        let d = dead.next().await;
        assert_eq!(d.body, body);
        // Republished to the DLX ("") with the dead-letter routing key.
        assert_eq!((d.exchange.as_str(), d.routing_key.as_str()), ("", dlq.as_str()));
        assert_eq!(d.deaths(), vec![Death::first("expired", &src, "", &src)]);
        assert_eq!(d.header_text("x-first-death-reason").as_deref(), Some("expired"));
        assert_eq!(d.header_text("x-first-death-queue").as_deref(), Some(src.as_str()));
        assert_eq!(d.header_text("x-first-death-exchange").as_deref(), Some(""));
        assert_eq!(d.properties.expiration(), &None);
    }
    assert_eq!(c.count(&src).await, 0);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_are_dead_lettered_in_order_with_x_death() {
    on_every_broker!(
        "expired_messages_are_dead_lettered_in_order_with_x_death",
        expired_messages_are_dead_lettered_in_order
    );
}

async fn expiration_only_at_the_head(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("head-dlq", &[]).await;
    let src = c.queue("head-src", &to_dlq(&dlq)).await;
    assert!(c.publish(&src, "a").await);
    assert!(c.publish_with(&src, "b", expiring("100")).await);
    assert!(c.publish(&src, "c").await);
    // Long after b's 100 ms: it waits behind a, which does not expire.
    c.clock(600).await;
    assert_eq!(c.count(&dlq).await, 0, "b expires only at the head");
    assert_eq!(c.count(&src).await, 3);
    // a goes; b is at the head, expired: dead-lettered before anything else is delivered.
    let a = c.get(&src).await.expect("a");
    assert_eq!(a.body, "a");
    let mut dead = c.consume(&dlq, 10).await;
    let b = dead.next().await;
    assert_eq!(b.body, "b");
    let death = Death { original_expiration: Some("100".into()), ..Death::first("expired", &src, "", &src) };
    assert_eq!(b.deaths(), vec![death]);
    assert_eq!(c.drain(&src).await, ["c"]);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expires_only_at_the_head_of_the_queue() {
    on_every_broker!("a_message_expires_only_at_the_head_of_the_queue", expiration_only_at_the_head);
}

async fn ttl_zero(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("ttl0-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.push(("x-message-ttl", int(0)));
    let src = c.queue("ttl0-src", &args).await;
    let mut dead = c.consume(&dlq, 10).await;
    // No consumer: expired at once.
    assert!(c.publish(&src, "m1").await);
    assert_eq!(dead.next().await.body, "m1");
    // A consumer with room takes it at once; one that is full does not, and it expires.
    let mut worker = c.consume(&src, 1).await;
    assert!(c.publish(&src, "m2").await);
    let m2 = worker.next().await;
    assert_eq!((m2.body.as_str(), m2.deaths()), ("m2", vec![]));
    assert!(c.publish(&src, "m3").await);
    let m3 = dead.next().await;
    assert_eq!(m3.body, "m3");
    assert_eq!(m3.deaths(), vec![Death::first("expired", &src, "", &src)]);
    assert_eq!(c.count(&src).await, 0);
    worker.close().await;
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_zero_reaches_only_a_consumer_that_can_take_it_at_once() {
    on_every_broker!("ttl_zero_reaches_only_a_consumer_that_can_take_it_at_once", ttl_zero);
}

async fn requeued_keep_expiry(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("requeue-ttl-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.push(("x-message-ttl", int(300)));
    let src = c.queue("requeue-ttl-src", &args).await;
    let mut dead = c.consume(&dlq, 10).await;
    assert!(c.publish(&src, "m1").await);
    let m1 = c.get(&src).await.expect("m1");
    assert!(c.publish(&src, "m2").await);
    // m2 expires 300 ms after it came; m1, older, has expired by then too.
    assert_eq!(dead.next().await.body, "m2");
    m1.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.expect("nack");
    let back = dead.next().await;
    assert_eq!(back.body, "m1");
    assert_eq!(back.deaths(), vec![Death::first("expired", &src, "", &src)]);
    assert_eq!(c.count(&src).await, 0);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_message_keeps_its_expiry() {
    on_every_broker!("a_requeued_message_keeps_its_expiry", requeued_keep_expiry);
}

async fn invalid_expirations(url: &str) {
    let c = Client::connect(url).await;
    let cases = [
        ("soon", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("5 ", "{leftover_string,\" \"}"),
        ("315360000001", "{value_too_large,315360000001}"),
    ];
    for (expiration, why) in cases {
        let ch = c.conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        // Refused even where it routes nowhere: the property is checked first.
        let opts = BasicPublishOptions::default();
        let e = match ch.basic_publish("".into(), "nowhere".into(), opts, b"x", expiring(expiration)).await {
            Ok(confirm) => confirm.await.expect_err("the channel closes"),
            Err(e) => e,
        };
        assert_eq!(reply_code(&e), Some(406), "{expiration:?}");
        assert_eq!(reply_text(&e), format!("PRECONDITION_FAILED - invalid expiration '{expiration}': {why}"));
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_expiration_is_refused_at_publish() {
    on_every_broker!("an_invalid_expiration_is_refused_at_publish", invalid_expirations);
}

async fn unused_queues_expire(url: &str) {
    let mut c = Client::connect(url).await;
    let unused = c.queue("expires-unused", &[("x-expires", int(1000))]).await;
    let renewed = c.queue("expires-renewed", &[("x-expires", int(1500))]).await;
    let consumed = c.queue("expires-consumed", &[("x-expires", int(1000))]).await;
    let worker = c.consume(&consumed, 1).await;
    c.clock(800).await;
    assert!(c.get(&renewed).await.is_none(), "a get renews the lease");
    c.clock(1000).await;
    // 1800 ms on: the unused queue is gone, the renewed one (used at 800) and the consumed
    // one are not. A passive declare would renew them, so the gone one is checked first.
    let ch = c.conn.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let e = ch.queue_declare(unused.as_str().into(), passive, FieldTable::default()).await.expect_err("gone");
    assert_eq!(reply_code(&e), Some(404));
    assert_eq!(reply_text(&e), format!("NOT_FOUND - no queue '{unused}' in vhost '/'"));
    assert_eq!(c.count(&renewed).await, 0);
    assert_eq!(c.count(&consumed).await, 0);
    worker.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_unused_for_its_x_expires_is_deleted() {
    on_every_broker!("a_queue_unused_for_its_x_expires_is_deleted", unused_queues_expire);
}
