//! amqplib (npm), an independent client, runs the work-queue features (a poison message past a
//! quorum delivery limit, consumer priorities, reject-publish, per-message TTL, single active
//! consumer, an invalid expiration) against `warren broker` and, when WARREN_TEST_AMQP_URL is
//! set, RabbitMQ: both must print the same lines. Skipped with a note when node or amqplib
//! (`npm install --prefix tests/amqplib`) is missing, unless WARREN_REQUIRE_AMQPLIB=1 (as in CI).

#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What RabbitMQ 3.10.8 printed, line by line.
const EXPECTED: [&str; 6] = [
    "poison: deliveries=3 dead=poison reason=delivery_limit",
    "priorities: high:1 high:2 high:3",
    "reject-publish: ack ack nack",
    "ttl: stale reason=expired",
    "single-active: first:1 first:2 second:3",
    "bad expiration: channel closed",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/amqplib")
}

/// Whether node can load amqplib from tests/amqplib; what went wrong when not.
fn amqplib_available() -> Result<(), String> {
    let out = Command::new("node")
        .args(["-e", "require('amqplib')"])
        .current_dir(dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("node does not run: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_string())
}

fn run(url: &str) -> Vec<String> {
    let mut child = common::process::Watched::spawn(
        "node features.js",
        Command::new("node").arg("features.js").arg(url).current_dir(dir()),
    );
    let (status, lines) = child.finish(Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "features.js against {url} exited with {status}:\n{}", lines.join("\n"));
    lines
}

#[test]
fn amqplib_sees_the_same_features_on_warren_broker_and_rabbitmq() {
    if let Err(why) = amqplib_available() {
        if std::env::var("WARREN_REQUIRE_AMQPLIB").is_ok_and(|v| v == "1") {
            panic!(
                "WARREN_REQUIRE_AMQPLIB=1 but amqplib cannot load ({why}): npm install --prefix tests/amqplib"
            );
        }
        common::skipped(&format!("SKIPPED amqplib_client: {why} (npm install --prefix tests/amqplib)"));
        return;
    }
    let broker = common::process::WarrenBroker::start();
    assert_eq!(run(&broker.url()), EXPECTED, "on warren broker");
    broker.terminate();
    if let Some(url) = common::broker_url("amqplib_client") {
        assert_eq!(run(&url), EXPECTED, "on RabbitMQ");
    }
}
