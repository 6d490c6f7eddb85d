//! Shared set-up for the tests that need a broker.
#![allow(dead_code)]

pub mod frames;
#[cfg(unix)]
pub mod process;

use std::time::Duration;

use clap::Parser;
use warren::cli::{Cli, Config};
use warren::headless::Driver;

/// A broker a test runs against: the embedded one (always) or RabbitMQ (when configured).
pub struct TestBroker {
    pub name: &'static str,
    pub url: String,
    running: Option<warren::broker::RunningBroker>,
}

impl TestBroker {
    pub async fn stop(self) {
        if let Some(b) = self.running {
            b.stop().await;
        }
    }
}

/// Every broker the same assertions run against: the embedded broker, then RabbitMQ when
/// `WARREN_TEST_AMQP_URL` is set (otherwise that half is skipped with a visible note).
pub async fn brokers(test: &str) -> Vec<TestBroker> {
    let running =
        warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("embedded broker starts");
    let mut all =
        vec![TestBroker { name: "embedded", url: running.url("guest", "guest"), running: Some(running) }];
    if let Some(url) = broker_url(test) {
        all.push(TestBroker { name: "RabbitMQ", url, running: None });
    }
    all
}

/// Run `case` against every broker in turn.
#[macro_export]
macro_rules! on_every_broker {
    ($test:expr, $case:ident) => {
        for b in common::brokers($test).await {
            eprintln!("{} on {}", $test, b.name);
            $case(&b.url).await;
            b.stop().await;
        }
    };
}

/// The RabbitMQ under test, or `None` (with a visible note) when none is configured.
pub fn broker_url(test: &str) -> Option<String> {
    match std::env::var("WARREN_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skipped(&format!(
                "SKIPPED {test} on RabbitMQ: WARREN_TEST_AMQP_URL is not set \
                 (e.g. WARREN_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f)"
            ));
            None
        }
    }
}

/// A queue name no other test (or earlier run) uses.
pub fn unique_queue(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("warren.test.{test}.{}.{nanos:x}", std::process::id())
}

/// A checked config, built from CLI words as a user would type them.
pub fn config(url: &str, queue: &str, args: &[&str]) -> Config {
    let mut argv = vec!["warren", "--url", url, "--queue", queue, "--transient"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("flags parse").into_config().expect("flags are valid")
}

pub async fn start(url: &str, queue: &str, args: &[&str]) -> Driver {
    Driver::start(&config(url, queue, args), true).await.expect("workload starts")
}

/// Waits long enough for any of these workloads on a loaded CI machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Delete the test's queue so runs do not pile queues up on the broker.
pub async fn delete_queue(url: &str, queue: &str) {
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch.queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

/// Delete an exchange a test declared (ignoring failures, as `delete_queue` does).
pub async fn delete_exchange(url: &str, exchange: &str) {
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        let _ = ch.exchange_delete(exchange.into(), lapin::options::ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

/// Say a test was skipped where `cargo test` shows it: the harness captures `eprintln!` of
/// passing tests, but not writes to the stderr handle itself.
pub fn skipped(note: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{note}");
}
