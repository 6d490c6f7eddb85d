//! Shared set-up for the tests that need a broker.
#![allow(dead_code)]

use std::time::Duration;

use clap::Parser;
use warren::cli::{Cli, Config};
use warren::headless::Driver;

/// The broker under test, or `None` (with a visible note) when none is configured.
pub fn broker_url(test: &str) -> Option<String> {
    match std::env::var("WARREN_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED {test}: WARREN_TEST_AMQP_URL is not set \
                 (e.g. WARREN_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f)"
            );
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
