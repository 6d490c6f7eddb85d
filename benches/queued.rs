//! Memory per queued task: what a task that waits costs warren, to size the --publish limit
//! (`cargo bench --bench queued`; WARREN_BENCH_TASKS sets the count, default 1000000).
//!
//! Two rows, each in a fresh process of its own so one row's freed heap does not hide the next
//! one's growth (resident memory from /proc/self/statm, before and after):
//! - ledger: the App alone, fed a Published event per task, as in a run against RabbitMQ, where
//!   the queue lives in the broker's process;
//! - embedded: a headless run on the embedded broker with one consumer that never finishes its
//!   first task (fair, prefetch 1, 1h per task): every task is published, confirmed and waits in
//!   the broker's queue in this process, so the row counts the ledger, the producer and the queue.

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use warren::app::{App, Event, Msg};
use warren::cli::Cli;
use warren::headless::{Driver, app_options};

const ROW: &str = "WARREN_BENCH_QUEUED_ROW";

fn tasks() -> u32 {
    std::env::var("WARREN_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn config() -> warren::cli::Config {
    let queue = format!("warren.bench.queued.{}", std::process::id());
    let args = [
        "warren",
        "--broker",
        "embedded",
        "--consumers",
        "1",
        "--delay",
        "1h",
        "--mode",
        "fair",
        "--prefetch",
        "1",
        "--transient",
        "--queue",
        &queue,
    ];
    Cli::try_parse_from(args).expect("flags").into_config().expect("config")
}

/// The App alone: one Published event per task, none consumed.
fn ledger(n: u32) -> (u64, Duration) {
    let cfg = config();
    let now = Instant::now();
    let mut app = App::new(app_options(&cfg, true), now);
    let before = rss_bytes();
    let started = Instant::now();
    let _ = app.start_batch(n, now);
    for id in 0..u64::from(n) {
        app.update(Msg::Event(Event::Published { id, batch: Some(0) }), now);
    }
    let grown = rss_bytes().saturating_sub(before);
    assert_eq!(app.ledger.totals().published, u64::from(n));
    (grown, started.elapsed())
}

/// The whole headless run on the embedded broker, until every publish is confirmed.
fn embedded(n: u32) -> (u64, Duration) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let cfg = config();
        let mut driver = Driver::start(&cfg, true).await.expect("embedded broker");
        let before = rss_bytes();
        let started = Instant::now();
        driver.publish(n);
        let want = u64::from(n);
        let done = driver
            .wait_until(Duration::from_secs(600), |app| {
                app.producer.confirmed + app.producer.unconfirmed >= want
            })
            .await;
        assert!(done, "every publish answered within 10 min");
        // A refused publish would not wait in the queue: the figure would be too low.
        assert_eq!(driver.app.producer.confirmed, want, "every task confirmed, none refused");
        let grown = rss_bytes().saturating_sub(before);
        let took = started.elapsed();
        driver.shutdown().await;
        (grown, took)
    })
}

fn main() {
    let n = tasks();
    if let Ok(row) = std::env::var(ROW) {
        let (grown, took) = if row == "ledger" { ledger(n) } else { embedded(n) };
        println!(
            "{row:<9} {n:>9} tasks  +{:>7.1} MiB resident  {:>6.1} bytes/task  ({:.1}s)",
            grown as f64 / (1024.0 * 1024.0),
            grown as f64 / f64::from(n),
            took.as_secs_f64()
        );
        return;
    }
    let me = std::env::current_exe().expect("the bench's own path");
    for row in ["ledger", "embedded"] {
        let status = Command::new(&me).env(ROW, row).status().expect("the bench runs itself");
        assert!(status.success(), "row {row} failed");
    }
}
