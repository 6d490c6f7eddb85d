//! Durability on the embedded broker (`--data-dir`): what survives a restart (durable
//! exchanges, durable queues with their arguments, bindings, persistent messages in durable
//! queues, delivered-and-unacked ones redelivered) and what does not (transient messages,
//! non-durable queues); every confirmed message survives SIGKILL; a corrupt, foreign or locked
//! directory is refused in one line. RabbitMQ cannot be restarted by a test here, so these run
//! on the embedded broker only.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{WarrenBroker, Watched};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use warren::broker::{self, BrokerConfig};

const WAIT: Duration = Duration::from_secs(15);

fn data_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-durable-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(dir: &Path) -> broker::RunningBroker {
    let cfg = BrokerConfig { data_dir: Some(dir.to_path_buf()), ..BrokerConfig::local() };
    broker::start(cfg).await.expect("the broker starts on its data directory")
}

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = tokio::time::timeout(WAIT, Connection::connect(url, ConnectionProperties::default()))
        .await
        .expect("connects in time")
        .expect("connects");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    (conn, ch)
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &str, props: BasicProperties) {
    let confirm = ch
        .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body.as_bytes(), props)
        .await
        .expect("publish");
    assert!(confirm.await.expect("confirmed").is_ack(), "{body} is confirmed");
}

/// Every message left, by basic.get: (body, redelivered).
async fn drain(ch: &Channel, queue: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
        out.push((String::from_utf8_lossy(&m.delivery.data).into_owned(), m.delivery.redelivered));
    }
    out
}

fn declare(durable: bool) -> QueueDeclareOptions {
    QueueDeclareOptions { durable, ..Default::default() }
}

fn ttl_args() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-max-length".into(), AMQPValue::LongLongInt(100));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_durable_things_and_persistent_messages_and_redelivers_the_unacked() {
    let dir = data_dir("restart");
    let b = start(&dir).await;
    let (conn, ch) = channel(&b.url("guest", "guest")).await;
    let x = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare("tasks".into(), ExchangeKind::Topic, x, FieldTable::default())
        .await
        .expect("exchange");
    ch.queue_declare("work".into(), declare(true), ttl_args()).await.expect("durable queue");
    ch.queue_declare("scratch".into(), declare(false), FieldTable::default()).await.expect("transient queue");
    ch.queue_bind(
        "work".into(),
        "tasks".into(),
        "job.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    publish(&ch, "tasks", "job.a", "p1", persistent()).await;
    publish(&ch, "", "work", "t2", BasicProperties::default()).await;
    publish(&ch, "", "work", "p3", persistent()).await;
    publish(&ch, "", "work", "p4", persistent()).await;
    publish(&ch, "", "scratch", "s5", persistent()).await;
    // p1 delivered and left unacked; p3 acked: gone for good.
    let p1 = ch.basic_get("work".into(), BasicGetOptions::default()).await.expect("get").expect("p1");
    assert_eq!(&p1.delivery.data[..], b"p1");
    let (_c2, other) = channel(&b.url("guest", "guest")).await;
    let t2 =
        other.basic_get("work".into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("t2");
    assert_eq!(&t2.delivery.data[..], b"t2");
    let p3 = other.basic_get("work".into(), BasicGetOptions::default()).await.expect("get").expect("p3");
    p3.delivery.ack(BasicAckOptions::default()).await.expect("ack");
    // A round trip on the acking channel: the broker has taken the ack (it has no reply).
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    other.queue_declare("work".into(), passive, FieldTable::default()).await.expect("passive");
    // Closed cleanly, then stopped: the core that goes with the broker drops its messages, which
    // must not be recorded as gone.
    conn.close(200, "bye".into()).await.expect("close");
    _c2.close(200, "bye".into()).await.expect("close");
    b.stop().await;

    let b = start(&dir).await;
    let (_conn, ch) = channel(&b.url("guest", "guest")).await;
    // The arguments came back: the same declare is equivalent, another is refused.
    ch.queue_declare("work".into(), declare(true), ttl_args()).await.expect("equivalent declare");
    assert_eq!(drain(&ch, "work").await, [("p1".to_string(), true), ("p4".to_string(), false)]);
    // The binding and the exchange came back.
    publish(&ch, "tasks", "job.b", "p6", persistent()).await;
    assert_eq!(drain(&ch, "work").await, [("p6".to_string(), false)]);
    let e = ch
        .queue_declare(
            "scratch".into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await;
    assert!(
        e.expect_err("a non-durable queue is gone").to_string().contains("NOT_FOUND - no queue 'scratch'")
    );
    let (_c3, ch) = channel(&b.url("guest", "guest")).await;
    let e = ch.queue_declare("work".into(), declare(true), FieldTable::default()).await;
    let e = e.expect_err("other arguments").to_string();
    assert!(e.contains("PRECONDITION_FAILED - inequivalent arg 'x-max-length'"), "{e}");
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A message's body from its number: long enough that a torn record would show.
fn body(n: u64) -> String {
    format!("task-{n:06}-{}", "x".repeat((n % 97) as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_message_survives_sigkill_at_random_moments() {
    let dir = data_dir("sigkill");
    let arg = dir.to_str().expect("utf-8 path").to_string();
    let mut confirmed = std::collections::BTreeSet::new();
    let mut next = 0u64;
    let mut seed = std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    for round in 0..5 {
        let b = WarrenBroker::start_with(&["--data-dir", &arg]);
        let (conn, ch) = channel(&b.url()).await;
        ch.queue_declare("crash".into(), declare(true), FieldTable::default()).await.expect("declare");
        let publisher = {
            let ch = ch.clone();
            let start = next;
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut n = start;
                loop {
                    // Up to 50 in flight, then their confirms.
                    let mut pending = Vec::new();
                    for _ in 0..50 {
                        let sent = ch
                            .basic_publish(
                                "".into(),
                                "crash".into(),
                                BasicPublishOptions::default(),
                                body(n).as_bytes(),
                                persistent(),
                            )
                            .await;
                        let Ok(c) = sent else { return got };
                        pending.push((n, c));
                        n += 1;
                    }
                    for (n, c) in pending {
                        match c.await {
                            Ok(c) if c.is_ack() => got.push(n),
                            Ok(_) => {}
                            Err(_) => return got,
                        }
                    }
                }
            })
        };
        // A random moment, 20-300 ms into the run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(20 + seed % 280)).await;
        b.kill();
        let got = tokio::time::timeout(WAIT, publisher)
            .await
            .expect("the publisher sees the broker go")
            .expect("task");
        next = got.iter().max().map_or(next, |m| m + 1).max(next + 10_000);
        eprintln!("round {round}: {} confirmed", got.len());
        confirmed.extend(got);
        drop(conn);
    }
    let b = WarrenBroker::start_with(&["--data-dir", &arg]);
    let (_conn, ch) = channel(&b.url()).await;
    let mut seen = std::collections::BTreeSet::new();
    for (text, _) in drain(&ch, "crash").await {
        let n: u64 = text[5..11].parse().unwrap_or_else(|_| panic!("a corrupt body: {text:?}"));
        assert_eq!(text, body(n), "message {n} exactly as sent");
        assert!(seen.insert(n), "message {n} came back twice");
    }
    let lost: Vec<_> = confirmed.difference(&seen).collect();
    assert!(lost.is_empty(), "{} confirmed messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(confirmed.len() > 100, "the test published something: {}", confirmed.len());
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `warren broker --data-dir DIR` that must refuse to start: its one line.
fn refused(dir: &Path) -> String {
    let mut p = Watched::spawn(
        "warren broker",
        std::process::Command::new(env!("CARGO_BIN_EXE_warren")).args([
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().expect("utf-8"),
        ]),
    );
    let (status, lines) = p.finish(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success(), "refused: {lines:?}");
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(lines[0].starts_with("warren: "), "{lines:?}");
    lines[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_foreign_or_locked_data_directory_is_refused_in_one_line_naming_the_file() {
    let dir = data_dir("refused");
    let b = start(&dir).await;
    let (conn, ch) = channel(&b.url("guest", "guest")).await;
    ch.queue_declare("q".into(), declare(true), FieldTable::default()).await.expect("declare");
    for n in 0..3 {
        publish(&ch, "", "q", &body(n), persistent()).await;
    }
    let line = refused(&dir);
    assert!(line.contains("lock is locked: another warren broker"), "{line}");
    drop(conn);
    b.stop().await;

    // A flipped byte in the middle of the log.
    let log = dir.join("warren.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5A;
    std::fs::write(&log, &bytes).unwrap();
    let line = refused(&dir);
    assert!(line.contains("warren.log is corrupt at byte"), "{line}");

    std::fs::write(&log, b"PK\x03\x04 a zip file, not ours").unwrap();
    let line = refused(&dir);
    assert!(line.contains("warren.log is not a warren data file"), "{line}");

    std::fs::remove_file(&log).unwrap();
    std::fs::write(dir.join("postgresql.conf"), b"").unwrap();
    let line = refused(&dir);
    assert!(line.contains("postgresql.conf is not warren's"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_compacted_while_the_broker_runs_and_recovers_the_same() {
    let dir = data_dir("compact");
    let limits = broker::Limits { log_compact_bytes: 64 << 10, ..broker::Limits::default() };
    let cfg = BrokerConfig { data_dir: Some(dir.clone()), limits, ..BrokerConfig::local() };
    let b = broker::start(cfg.clone()).await.expect("starts");
    let (_conn, ch) = channel(&b.url("guest", "guest")).await;
    ch.queue_declare("c".into(), declare(true), FieldTable::default()).await.expect("declare");
    let big = |n: u64| format!("{n:05}{}", "b".repeat(1000));
    for n in 0..500 {
        publish(&ch, "", "c", &big(n), persistent()).await;
    }
    // The first one delivered and held unacked across the compactions; 399 more consumed.
    let first = ch.basic_get("c".into(), BasicGetOptions::default()).await.expect("get").expect("0");
    assert_eq!(&first.delivery.data[..5], b"00000");
    for _ in 1..400 {
        ch.basic_get("c".into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("a message");
    }
    for n in 500..1000 {
        publish(&ch, "", "c", &big(n), persistent()).await;
    }
    // 601 kept, about 1 KB each: a log that kept every record would be over 1 MB.
    let size = std::fs::metadata(dir.join("warren.log")).expect("the log").len();
    assert!(size < 601 * 1100 + 2 * (64 << 10), "compacted: {size} bytes");
    drop(_conn);
    b.stop().await;

    let b = broker::start(cfg).await.expect("restarts");
    let (_conn, ch) = channel(&b.url("guest", "guest")).await;
    let got = drain(&ch, "c").await;
    let want: Vec<(String, bool)> =
        std::iter::once((big(0), true)).chain((400..1000).map(|n| (big(n), false))).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the first differs at {:?}", got.iter().zip(&want).position(|(a, b)| a != b));
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_and_dead_lettered_messages_leave_the_store_too() {
    let dir = data_dir("leave");
    let b = start(&dir).await;
    let (conn, ch) = channel(&b.url("guest", "guest")).await;
    ch.queue_declare("purged".into(), declare(true), FieldTable::default()).await.expect("declare");
    let mut dlx = FieldTable::default();
    dlx.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
    dlx.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString("dead".into()));
    ch.queue_declare("src".into(), declare(true), dlx.clone()).await.expect("declare");
    ch.queue_declare("dead".into(), declare(true), FieldTable::default()).await.expect("declare");
    publish(&ch, "", "purged", "a", persistent()).await;
    publish(&ch, "", "src", "r", persistent()).await;
    publish(&ch, "", "src", "k", persistent()).await;
    ch.queue_purge("purged".into(), Default::default()).await.expect("purge");
    let r = ch.basic_get("src".into(), BasicGetOptions::default()).await.expect("get").expect("r");
    r.delivery.reject(lapin::options::BasicRejectOptions { requeue: false }).await.expect("reject");
    // A round trip: the reject (which has no reply) is taken.
    ch.queue_declare("dead".into(), declare(true), FieldTable::default()).await.expect("declare");
    conn.close(200, "bye".into()).await.expect("close");
    b.stop().await;

    let b = start(&dir).await;
    let (_conn, ch) = channel(&b.url("guest", "guest")).await;
    assert_eq!(drain(&ch, "purged").await, []);
    assert_eq!(drain(&ch, "src").await, [("k".to_string(), false)]);
    assert_eq!(drain(&ch, "dead").await, [("r".to_string(), false)]);
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
