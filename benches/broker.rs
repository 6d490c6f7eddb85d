//! The embedded broker against RabbitMQ, same lapin workload, same run
//! (`cargo bench --bench broker`; RabbitMQ from WARREN_BENCH_AMQP_URL, else
//! WARREN_TEST_AMQP_URL, else skipped). 1 producer, 4 consumers, 64-byte tasks, each on its
//! own connection; timed from the first publish until the last task is consumed (and acked).
//! Prints msg/s per row and the ratio embedded / RabbitMQ. Also prints the embedded broker's
//! peak resident memory growth as a bound check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren::broker::{BrokerConfig, start};

mod common;

const CONSUMERS: usize = 4;

#[derive(Clone, Copy)]
enum Row {
    AutoAck,
    Prefetch(u16),
}

impl Row {
    fn name(self) -> String {
        match self {
            Row::AutoAck => "auto-ack".into(),
            Row::Prefetch(n) => format!("prefetch {n}"),
        }
    }
}

fn main() {
    let n: u64 = std::env::var("WARREN_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rabbit =
        std::env::var("WARREN_BENCH_AMQP_URL").or_else(|_| std::env::var("WARREN_TEST_AMQP_URL")).ok();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // The broker runs on a runtime of its own, as RabbitMQ runs in a process of its own: the
    // clients' tasks do not queue behind it, nor it behind them.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let broker_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // This thread's id, so its CPU time can be read from /proc while the rows run.
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()));
        broker_rt.block_on(async {
            let running = start(BrokerConfig::local()).await.expect("embedded broker");
            tx.send((running.url("guest", "guest"), tid)).expect("bench waits for the URL");
            running.wait().await;
        });
    });
    let (embedded_url, broker_tid) = rx.recv().expect("embedded broker started");
    let broker_cpu = || broker_tid.map_or(0.0, |t| common::cpu_seconds(&format!("/proc/self/task/{t}/stat")));
    let rabbit_cpu = || beam_pid().map_or(0.0, |p| common::cpu_seconds(&format!("/proc/{p}/stat")));
    println!("broker bench: {n} tasks of 64 bytes, 1 producer, {CONSUMERS} consumers");
    println!(
        "{:<14} {:>14} {:>14} {:>7}   {:>22}",
        "", "embedded", "RabbitMQ", "ratio", "broker CPU per message"
    );
    let rss_before = rss_kib();
    for row in [Row::AutoAck, Row::Prefetch(1), Row::Prefetch(100)] {
        let c = broker_cpu();
        let ours = rt.block_on(run(&embedded_url, row, n));
        let ours_us = (broker_cpu() - c) * 1e6 / n as f64;
        let c = rabbit_cpu();
        let theirs = rabbit.as_deref().map(|url| rt.block_on(run(url, row, n)));
        let theirs_us = (rabbit_cpu() - c) * 1e6 / n as f64;
        match theirs {
            Some(t) => println!(
                "{:<14} {:>10.0} msg/s {:>8.0} msg/s {:>6.1}x   {:>5.1} us vs {:>5.1} us",
                row.name(),
                ours,
                t,
                ours / t,
                ours_us,
                theirs_us
            ),
            None => {
                println!(
                    "{:<14} {:>10.0} msg/s {:>14} {:>7}   {:>5.1} us",
                    row.name(),
                    ours,
                    "(not set)",
                    "-",
                    ours_us
                )
            }
        }
    }
    println!(
        "peak resident memory of the bench process (clients and embedded broker) grew by {} MiB",
        rss_kib().saturating_sub(rss_before) / 1024
    );
}

async fn run(url: &str, row: Row, n: u64) -> f64 {
    let queue = format!("warren.bench.broker.{}", std::process::id());
    let producer = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let pch = producer.create_channel().await.unwrap();
    pch.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let consumed = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut conns = Vec::new();
    for i in 0..CONSUMERS {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        let no_ack = matches!(row, Row::AutoAck);
        if let Row::Prefetch(p) = row {
            ch.basic_qos(p, BasicQosOptions::default()).await.unwrap();
        }
        let opts = BasicConsumeOptions { no_ack, ..Default::default() };
        let tag = format!("bench-{i}");
        let mut consumer = ch
            .basic_consume(queue.as_str().into(), tag.as_str().into(), opts, FieldTable::default())
            .await
            .unwrap();
        let consumed = Arc::clone(&consumed);
        let done = done_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                if !no_ack {
                    let _ = d.ack(BasicAckOptions::default()).await;
                }
                if consumed.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    let _ = done.send(()).await;
                }
            }
        });
        conns.push(conn);
    }
    let body = [b'x'; 64];
    let start = Instant::now();
    for _ in 0..n {
        pch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(600), done_rx.recv()).await.expect("all consumed in time");
    let took = start.elapsed();
    let _ = pch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    for c in conns {
        let _ = c.close(200, "bye".into()).await;
    }
    let _ = producer.close(200, "bye".into()).await;
    n as f64 / took.as_secs_f64()
}

/// RabbitMQ's Erlang VM on this machine, if it runs here.
fn beam_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        comm.trim().starts_with("beam").then_some(pid)
    })
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
