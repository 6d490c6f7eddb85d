//! Priority queues (x-max-priority) on both brokers: the highest priority first, a priority
//! above the maximum counts as the maximum, none counts as 0, first in first out within a
//! level, and a requeued message goes back to its place in its level.

mod common;

use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

async fn publish(ch: &Channel, queue: &str, body: &str, priority: Option<u8>) {
    let mut props = BasicProperties::default();
    if let Some(p) = priority {
        props = props.with_priority(p);
    }
    ch.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body.as_bytes(), props)
        .await
        .unwrap()
        .await
        .unwrap();
}

/// basic.get until empty: the bodies in the order the queue hands them out.
async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = tokio::time::timeout(
        Duration::from_secs(10),
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get answers")
    .unwrap()
    {
        got.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
    }
    got
}

async fn priority_order(url: &str) {
    let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let queue = common::unique_queue("prio");
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::LongInt(5));
    ch.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args).await.unwrap();
    for (body, p) in
        [("a", None), ("b", Some(3)), ("c", Some(9)), ("d", Some(3)), ("e", Some(0)), ("f", Some(5))]
    {
        publish(&ch, &queue, body, p).await;
    }
    // c (9 counts as 5) and f share the top level, in publish order.
    assert_eq!(drain(&ch, &queue).await, ["c", "f", "b", "d", "a", "e"]);

    // A requeued message goes back to its place within its level.
    for (body, p) in [("x", Some(2)), ("y", Some(2)), ("z", Some(1))] {
        publish(&ch, &queue, body, p).await;
    }
    let first = ch.basic_get(queue.as_str().into(), BasicGetOptions::default()).await.unwrap().unwrap();
    assert_eq!(&first.delivery.data[..], b"x");
    first.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
    assert_eq!(drain(&ch, &queue).await, ["x", "y", "z"]);

    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn a_priority_queue_hands_out_the_highest_priority_first() {
    on_every_broker!("a_priority_queue_hands_out_the_highest_priority_first", priority_order);
}
