//! Length limits (x-max-length, x-max-length-bytes) and x-overflow, with the same assertions on
//! the embedded broker and on RabbitMQ: which messages stay, which are dropped or
//! dead-lettered (reason `maxlen`, oldest first), which publishes are nacked.

mod common;
#[path = "support/queues.rs"]
mod queues;

use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use queues::{Client, Death, int, s};

fn to_dlq(dlq: &str) -> Vec<(&'static str, lapin::types::AMQPValue)> {
    vec![("x-dead-letter-exchange", s("")), ("x-dead-letter-routing-key", s(dlq))]
}

async fn drop_head(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("maxlen-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.push(("x-max-length", int(2)));
    let src = c.queue("maxlen-src", &args).await;
    for body in ["1", "2", "3", "4", "5"] {
        assert!(c.publish(&src, body).await, "drop-head takes every publish");
    }
    let mut dead = c.consume(&dlq, 10).await;
    for body in ["1", "2", "3"] {
        let d = dead.next().await;
        assert_eq!(d.body, body, "the oldest go first");
        assert_eq!(d.deaths(), vec![Death::first("maxlen", &src, "", &src)]);
    }
    assert_eq!(c.drain(&src).await, ["4", "5"]);
    assert_eq!(c.count(&dlq).await, 0);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_dead_letters_the_oldest_messages() {
    on_every_broker!("drop_head_dead_letters_the_oldest_messages", drop_head);
}

async fn max_bytes(url: &str) {
    let mut c = Client::connect(url).await;
    // Bodies count, not headers or properties: 4 + 4 fit in 10, a third 4 does not.
    let src = c.queue("maxbytes", &[("x-max-length-bytes", int(10))]).await;
    let big_headers = BasicProperties::default().with_message_id("m".repeat(200).into());
    assert!(c.publish_with(&src, "aaaa", big_headers).await);
    assert!(c.publish(&src, "bbbb").await);
    assert_eq!(c.count(&src).await, 2);
    assert!(c.publish(&src, "cccc").await);
    assert_eq!(c.drain(&src).await, ["bbbb", "cccc"]);
    // A body larger than the limit on its own does not stay either.
    assert!(c.publish(&src, "0123456789ab").await);
    assert_eq!(c.drain(&src).await, Vec::<String>::new());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_length_bytes_counts_message_bodies() {
    on_every_broker!("max_length_bytes_counts_message_bodies", max_bytes);
}

async fn reject_publish(url: &str) {
    let mut c = Client::connect(url).await;
    let src =
        c.queue("reject-publish", &[("x-max-length", int(2)), ("x-overflow", s("reject-publish"))]).await;
    assert!(c.publish(&src, "1").await);
    assert!(c.publish(&src, "2").await);
    assert!(!c.publish(&src, "3").await, "nacked: the queue is full");
    // Only ready messages count: one taken (unacked) makes room for one.
    let one = c.get(&src).await.expect("1");
    assert_eq!(one.body, "1");
    assert!(c.publish(&src, "4").await);
    assert!(!c.publish(&src, "5").await);
    // Without confirms the refused publish is dropped silently: no channel error.
    let plain = c.conn.create_channel().await.expect("channel");
    plain
        .basic_publish(
            "".into(),
            src.as_str().into(),
            BasicPublishOptions::default(),
            b"6",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    // A round trip on the same channel: it is still open, and the queue still holds 2.
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let ok = plain.queue_declare(src.as_str().into(), passive, FieldTable::default()).await;
    assert_eq!(ok.expect("the channel stays open").message_count(), 2);
    one.delivery.ack(BasicAckOptions::default()).await.expect("ack");
    assert_eq!(c.drain(&src).await, ["2", "4"]);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_nacks_what_a_full_queue_refuses() {
    on_every_broker!("reject_publish_nacks_what_a_full_queue_refuses", reject_publish);
}

async fn reject_publish_dlx(url: &str) {
    let mut c = Client::connect(url).await;
    let dlq = c.queue("reject-dlx-dlq", &[]).await;
    let mut args = to_dlq(&dlq);
    args.extend([("x-max-length", int(1)), ("x-overflow", s("reject-publish-dlx"))]);
    let src = c.queue("reject-dlx-src", &args).await;
    assert!(c.publish(&src, "1").await);
    assert!(!c.publish(&src, "2").await, "nacked, and dead-lettered");
    let mut dead = c.consume(&dlq, 10).await;
    let d = dead.next().await;
    assert_eq!(d.body, "2");
    assert_eq!(d.deaths(), vec![Death::first("maxlen", &src, "", &src)]);
    assert_eq!(c.drain(&src).await, ["1"]);
    dead.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_dlx_nacks_and_dead_letters_the_new_message() {
    on_every_broker!("reject_publish_dlx_nacks_and_dead_letters_the_new_message", reject_publish_dlx);
}
