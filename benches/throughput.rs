//! Headless warren against a plain lapin publish/consume loop, same broker, same run.
//!
//! `cargo bench --bench throughput` (broker: WARREN_BENCH_AMQP_URL, else WARREN_TEST_AMQP_URL,
//! else the local default). Both sides: 3 auto-ack consumers, zero processing delay, publisher
//! confirms on, a transient queue; timed from the first publish until every task is consumed.
//! Prints msg/s for each round and the ratio warren / plain (goal: at least 0.9).

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren::cli::Cli;
use warren::headless::Driver;

mod common;

const CONSUMERS: usize = 3;

fn main() {
    let url = std::env::var("WARREN_BENCH_AMQP_URL")
        .or_else(|_| std::env::var("WARREN_TEST_AMQP_URL"))
        .unwrap_or_else(|_| warren::cli::DEFAULT_URL.to_string());
    let tasks: u32 = std::env::var("WARREN_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000);
    // The broker's speed drifts from run to run: several rounds, each side going first in turn,
    // and medians compared.
    let rounds: u32 = 5;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!("throughput: {tasks} tasks, {CONSUMERS} auto-ack consumers, zero delay, confirms on");
    let (mut plain, mut ours) = (Vec::new(), Vec::new());
    let (mut plain_cpu, mut ours_cpu) = (0.0, 0.0);
    for round in 1..=rounds {
        let mut run_plain = || {
            let c = common::cpu_seconds("/proc/self/stat");
            let d = rt.block_on(plain_lapin(&url, tasks));
            plain_cpu += common::cpu_seconds("/proc/self/stat") - c;
            d
        };
        let (p, w) = if round % 2 == 1 {
            let p = run_plain();
            let c = common::cpu_seconds("/proc/self/stat");
            let w = rt.block_on(warren_headless(&url, tasks));
            ours_cpu += common::cpu_seconds("/proc/self/stat") - c;
            (p, w)
        } else {
            let c = common::cpu_seconds("/proc/self/stat");
            let w = rt.block_on(warren_headless(&url, tasks));
            ours_cpu += common::cpu_seconds("/proc/self/stat") - c;
            (run_plain(), w)
        };
        println!(
            "  round {round}: plain lapin {:>8.0} msg/s   warren {:>8.0} msg/s",
            rate(tasks, p),
            rate(tasks, w)
        );
        plain.push(rate(tasks, p));
        ours.push(rate(tasks, w));
    }
    let (p, w) = (median(&mut plain), median(&mut ours));
    println!("median: plain lapin {p:.0} msg/s, warren {w:.0} msg/s, ratio {:.2}", w / p);
    let per_task = |cpu: f64| cpu * 1e6 / f64::from(tasks * rounds);
    println!(
        "client CPU per task (this process): plain lapin {:.1} us, warren {:.1} us",
        per_task(plain_cpu),
        per_task(ours_cpu)
    );
}

fn rate(n: u32, d: Duration) -> f64 {
    f64::from(n) / d.as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn queue_name(kind: &str) -> String {
    format!("warren.bench.{kind}.{}", std::process::id())
}

async fn plain_lapin(url: &str, n: u32) -> Duration {
    let queue = queue_name("plain");
    let producer = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = producer.create_channel().await.unwrap();
    ch.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut conns = Vec::new();
    for i in 0..CONSUMERS {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
        let cch = conn.create_channel().await.unwrap();
        let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
        let mut consumer = cch
            .basic_consume(
                queue.as_str().into(),
                format!("plain-{i}").as_str().into(),
                opts,
                FieldTable::default(),
            )
            .await
            .unwrap();
        let tx = done_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(_)) = consumer.next().await {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        conns.push(conn);
    }
    let start = Instant::now();
    let mut confirms = Vec::with_capacity(n as usize);
    for id in 1..=n {
        let body = format!("task {id}");
        let c = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        confirms.push(c);
    }
    for _ in 0..n {
        done_rx.recv().await.unwrap();
    }
    for c in confirms {
        c.await.unwrap();
    }
    let took = start.elapsed();
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    for c in conns {
        let _ = c.close(200, "bye".into()).await;
    }
    let _ = producer.close(200, "bye".into()).await;
    took
}

async fn warren_headless(url: &str, n: u32) -> Duration {
    let queue = queue_name("warren");
    let cli = Cli::try_parse_from([
        "warren",
        "--url",
        url,
        "--queue",
        &queue,
        "--transient",
        "--delay",
        "0s",
        "--consumers",
        "3",
    ])
    .unwrap();
    let cfg = cli.into_config().unwrap();
    let mut d = Driver::start(&cfg, false).await.expect("warren starts");
    let start = Instant::now();
    d.publish(n);
    let want = u64::from(n);
    let ok = d
        .wait_until(Duration::from_secs(300), |a| {
            a.ledger.totals().done == want && a.producer.confirmed == want
        })
        .await;
    let took = start.elapsed();
    assert!(ok, "warren did not finish");
    d.shutdown().await;
    let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = conn.close(200, "bye".into()).await;
    took
}
