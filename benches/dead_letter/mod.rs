//! The broker bench's "quorum + DLX" row: a quorum queue with a delivery limit and a dead-letter
//! exchange, as a work queue that guards against poison tasks is declared. 1 producer and 4
//! consumers at prefetch 100, each on its own lapin connection, 64-byte tasks; the consumers
//! nack one task in ten with requeue=false (the others are acked), so the broker dead-letters a
//! tenth of the tasks into a queue bound to the dead-letter exchange, where a fifth connection
//! consumes them. Timed from the first publish until every task is settled and every rejected
//! one has arrived in the dead-letter queue.
//!
//! A broker that refuses the queue's arguments is reported as such ("refused: ..."), not as a
//! crash, so the row can stand beside RabbitMQ before the embedded broker has the feature.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm};

/// One task in this many is rejected (the ones whose number is a multiple of it).
pub const REJECT_EVERY: u64 = 10;
/// Deliveries a task may have; never reached here (nothing is requeued), but set, so the broker
/// counts deliveries as a poison-guarded queue does.
const DELIVERY_LIMIT: i32 = 3;
const PREFETCH: u16 = 100;
const CONSUMERS: usize = 4;
/// Publishes the producer keeps in flight, as in the other rows.
const WINDOW: usize = 256;

/// Tasks per second, or why the broker would not run the workload (its reply to the declare).
pub async fn run(url: &str, n: u64) -> Result<f64, String> {
    let names = Names::new();
    let producer = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let pch = producer.create_channel().await.expect("channel");
    if let Err(refused) = declare(&pch, &names).await {
        clean_up(url, &names).await;
        let _ = producer.close(200, "bye".into()).await;
        return Err(refused);
    }
    let settled = Arc::new(AtomicU64::new(0));
    let dead = Arc::new(AtomicU64::new(0));
    let rejected = n.div_ceil(REJECT_EVERY);
    // One Ok when the last task is settled, one when the last rejected task is dead-lettered;
    // an Err as soon as a consumer fails, so a broken run says why instead of timing out.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(CONSUMERS + 2);
    let mut conns = Vec::new();
    for i in 0..CONSUMERS {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await.expect("qos");
        let tag = format!("bench-{i}");
        let consumer = ch
            .basic_consume(
                names.queue.as_str().into(),
                tag.as_str().into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        tokio::spawn(settle(ch, consumer, n, Arc::clone(&settled), done_tx.clone()));
        conns.push(conn);
    }
    let dlq_conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let dch = dlq_conn.create_channel().await.expect("channel");
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut dlq = dch
        .basic_consume(names.dlq.as_str().into(), "bench-dead".into(), no_ack, FieldTable::default())
        .await
        .expect("consume the dead-letter queue");
    let (dead_count, done) = (Arc::clone(&dead), done_tx.clone());
    tokio::spawn(async move {
        while let Some(d) = dlq.next().await {
            if d.is_err() {
                break;
            }
            if dead_count.fetch_add(1, Ordering::Relaxed) + 1 == rejected {
                let _ = done.send(Ok(())).await;
            }
        }
        if dead_count.load(Ordering::Relaxed) < rejected {
            let _ = done.send(Err("the dead-letter consumer ended".into())).await;
        }
    });
    conns.push(dlq_conn);

    let bodies = bodies(n);
    let start = Instant::now();
    publish(&pch, &names.queue, &bodies).await;
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(600), done_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => panic!("quorum + DLX: a consumer failed before the end: {e}"),
            Ok(None) => unreachable!("this function holds a sender"),
            Err(_) => panic!(
                "quorum + DLX: within 600 s, {} of {n} tasks settled and {} of {rejected} dead-lettered",
                settled.load(Ordering::Relaxed),
                dead.load(Ordering::Relaxed)
            ),
        }
    }
    let took = start.elapsed();
    for c in conns {
        let _ = c.close(200, "bye".into()).await;
    }
    let _ = producer.close(200, "bye".into()).await;
    clean_up(url, &names).await;
    Ok(n as f64 / took.as_secs_f64())
}

/// This run's queue, dead-letter exchange and dead-letter queue.
struct Names {
    queue: String,
    dlx: String,
    dlq: String,
}

impl Names {
    fn new() -> Self {
        let base = format!("warren.bench.quorum-dlx.{}", std::process::id());
        Self { dlx: format!("{base}.dlx"), dlq: format!("{base}.dead"), queue: base }
    }
}

/// The dead-letter exchange and queue, then the quorum queue that uses them; the broker's reply
/// when it refuses one (on RabbitMQ none of them is refused).
async fn declare(ch: &Channel, names: &Names) -> Result<(), String> {
    let refused =
        |what: &str, e: lapin::Error| format!("{what}: {}", warren::workload::connect::reply_text(&e));
    ch.exchange_declare(
        names.dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| refused("the dead-letter exchange", e))?;
    ch.queue_declare(names.dlq.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .map_err(|e| refused("the dead-letter queue", e))?;
    ch.queue_bind(
        names.dlq.as_str().into(),
        names.dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| refused("the dead-letter binding", e))?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(DELIVERY_LIMIT));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(names.dlx.as_str().into()));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(names.queue.as_str().into(), durable, args)
        .await
        .map_err(|e| refused("the quorum queue", e))?;
    Ok(())
}

/// 64-byte tasks, numbered from 0 in their first 8 bytes (made before the clock starts).
fn bodies(n: u64) -> Vec<[u8; 64]> {
    (0..n)
        .map(|i| {
            let mut body = [b'x'; 64];
            body[..8].copy_from_slice(&i.to_le_bytes());
            body
        })
        .collect()
}

/// Publish every task, with up to WINDOW in flight.
async fn publish(ch: &Channel, queue: &str, bodies: &[[u8; 64]]) {
    let mut in_flight: FuturesUnordered<BoxFuture<lapin::Result<PublisherConfirm>>> = FuturesUnordered::new();
    for body in bodies {
        if in_flight.len() >= WINDOW {
            in_flight.next().await.expect("in flight").expect("publish");
        }
        let publish = ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        );
        in_flight.push(publish.boxed());
    }
    while let Some(r) = in_flight.next().await {
        r.expect("publish");
    }
}

/// A consumer: acks each task, or nacks it without requeue when its number says so; the acks'
/// writes complete in the background, as in the other rows.
async fn settle(
    ch: Channel,
    mut consumer: lapin::Consumer,
    n: u64,
    settled: Arc<AtomicU64>,
    done: tokio::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut pending: FuturesUnordered<BoxFuture<lapin::Result<()>>> = FuturesUnordered::new();
    let failed = loop {
        tokio::select! {
            Some(r) = pending.next(), if !pending.is_empty() => if let Err(e) = r {
                break format!("ack or nack: {e}");
            },
            d = consumer.next() => match d {
                Some(Ok(d)) => {
                    let number = d.data.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
                    if number % REJECT_EVERY == 0 {
                        let reject = BasicNackOptions { requeue: false, multiple: false };
                        pending.push(ch.basic_nack(d.delivery_tag, reject).boxed());
                    } else {
                        pending.push(ch.basic_ack(d.delivery_tag, BasicAckOptions::default()).boxed());
                    }
                    if settled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        let _ = done.send(Ok(())).await;
                    }
                }
                Some(Err(e)) => break format!("consumer: {e}"),
                None => break "the consumer stream ended".to_string(),
            },
        }
    };
    // Once every task is in, the connections close under the consumers: not a failure.
    if settled.load(Ordering::Relaxed) < n {
        let _ = done.send(Err(failed)).await;
    }
}

/// Delete what the run declared, on a connection of its own (a refusal closed the channel).
async fn clean_up(url: &str, names: &Names) {
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else { return };
    for queue in [&names.queue, &names.dlq] {
        // Each on a fresh channel: a delete the broker refuses closes its channel.
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
        }
    }
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch.exchange_delete(names.dlx.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "bye".into()).await;
}
