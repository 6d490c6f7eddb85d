//! How long the embedded broker takes to start on a data directory holding 1 million
//! persistent messages (`cargo bench --bench recovery`; WARREN_BENCH_TASKS changes the count),
//! and what each message takes on disk. The messages are 64-byte tasks in one durable queue,
//! published under confirms; the broker is stopped cleanly, then started again and timed until
//! it listens with every message back in its queue.

use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren::broker::{self, BrokerConfig};

const WINDOW: usize = 512;

fn main() {
    let n: usize = std::env::var("WARREN_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("warren-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // 1M messages take more than the default 512 MiB the broker holds for clients.
    let limits = broker::Limits { max_held_bytes: 4 << 30, ..broker::Limits::default() };
    let cfg = BrokerConfig { data_dir: Some(dir.clone()), limits, ..BrokerConfig::local() };
    let published = Instant::now();
    rt.block_on(async {
        let b = broker::start(cfg.clone()).await.expect("starts");
        let conn = Connection::connect(&b.url("guest", "guest"), ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare("recovery".into(), durable, FieldTable::default()).await.expect("declare");
        let props = BasicProperties::default().with_delivery_mode(2);
        let mut in_flight = FuturesUnordered::new();
        for _ in 0..n {
            if in_flight.len() >= WINDOW {
                in_flight.next().await;
            }
            let publish = ch.basic_publish(
                "".into(),
                "recovery".into(),
                BasicPublishOptions::default(),
                &[b'x'; 64],
                props.clone(),
            );
            in_flight.push(async move {
                assert!(publish.await.expect("publish").await.expect("confirm").is_ack())
            });
        }
        while in_flight.next().await.is_some() {}
        let _ = conn.close(200, "bye".into()).await;
        b.stop().await;
    });
    let took = published.elapsed();
    let bytes = std::fs::metadata(dir.join("warren.log")).expect("the log").len();
    let started = Instant::now();
    let count = rt.block_on(async {
        let b = broker::start(cfg).await.expect("restarts");
        let recovered = started.elapsed();
        let conn = Connection::connect(&b.url("guest", "guest"), ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let ok = ch.queue_declare("recovery".into(), passive, FieldTable::default()).await.expect("passive");
        b.stop().await;
        (ok.message_count(), recovered)
    });
    assert_eq!(count.0 as usize, n, "every message recovered (log: {bytes} bytes)");
    println!("recovery bench: {n} persistent 64-byte messages in one durable queue");
    println!(
        "  published under confirms in {:.1} s ({:.0} msg/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "  data directory: {:.1} MiB, {:.0} bytes per message",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / n as f64
    );
    println!(
        "  recovery (start until listening, every message in its queue): {:.2} s",
        count.1.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
