//! warren's own connections negotiate small frames (a lapin connection's buffers are 32 frames
//! each way), a URL's own frame_max is respected, and a body larger than a frame still travels
//! whole, on both brokers.

mod common;

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use tokio::time::timeout;
use warren::cli::parse_url;
use warren::workload::connect;
use warren::workload::frame_size::FRAME_MAX;

const PATIENCE: Duration = Duration::from_secs(10);

async fn open(url: &str) -> Connection {
    let uri = parse_url(url).expect("the test URL parses");
    timeout(PATIENCE, connect::open(&uri, "warren frames test")).await.expect("in time").expect("connects")
}

/// The URL with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    format!("{url}{}{param}", if url.contains('?') { '&' } else { '?' })
}

async fn small_frames_unless_the_url_says(url: &str) {
    let conn = open(url).await;
    assert_eq!(conn.configuration().frame_max(), FRAME_MAX, "warren asks for the smallest frame");
    conn.close(200, "bye".into()).await.unwrap();

    let conn = open(&with_param(url, "frame_max=65536")).await;
    assert_eq!(conn.configuration().frame_max(), 65536, "the URL's frame_max is respected");
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn warren_negotiates_small_frames_unless_the_url_sets_frame_max() {
    on_every_broker!("frames_negotiated", small_frames_unless_the_url_says);
}

/// A body five frames long, published and consumed over small-frame connections: lapin cuts it,
/// the broker puts it together and cuts it again for the consumer; every byte arrives in order.
async fn a_body_larger_than_a_frame_arrives_whole(url: &str) {
    let queue = common::unique_queue("frames_big_body");
    let body: Vec<u8> = (0..5 * FRAME_MAX as usize + 123).map(|i| (i % 251) as u8).collect();
    let producer = open(url).await;
    let ch = producer.create_channel().await.unwrap();
    let opts = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), opts, FieldTable::default()).await.unwrap();

    let consumer = open(url).await;
    let cch = consumer.create_channel().await.unwrap();
    let consume = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut deliveries =
        cch.basic_consume(queue.as_str().into(), "big".into(), consume, FieldTable::default()).await.unwrap();

    let props = BasicProperties::default().with_message_id("big".into());
    ch.basic_publish("".into(), queue.as_str().into(), BasicPublishOptions::default(), &body, props)
        .await
        .unwrap();
    let got = timeout(PATIENCE, deliveries.next()).await.expect("delivered in time").expect("a delivery");
    let got = got.expect("a good delivery");
    assert_eq!(got.data.len(), body.len());
    assert!(got.data == body, "the body arrives byte for byte");
    assert_eq!(got.properties.message_id().as_ref().map(|s| s.as_str()), Some("big"));

    consumer.close(200, "bye".into()).await.unwrap();
    producer.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn a_body_larger_than_the_frame_is_split_and_arrives_whole() {
    on_every_broker!("frames_big_body", a_body_larger_than_a_frame_arrives_whole);
}
