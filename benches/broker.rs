//! The embedded broker against RabbitMQ: the same lapin workload, in the same run
//! (`cargo bench --bench broker`; RabbitMQ from WARREN_BENCH_AMQP_URL, else WARREN_TEST_AMQP_URL,
//! else only the embedded broker is measured).
//!
//! The workload: 1 producer and 4 consumers, each on its own lapin connection, 64-byte tasks,
//! timed from the first publish until the last task is consumed (and acked). Rows: auto-ack,
//! prefetch 1 and prefetch 100 with one ack per task, and prefetch 100 on a quorum queue with a
//! delivery limit and a dead-letter exchange ("quorum dl 100"). The producer keeps up to WINDOW publishes
//! in flight and consumers do not wait for each ack's write before taking the next delivery:
//! a client that awaited every write would measure lapin's hand-offs between its threads (about
//! 20k msg/s whatever the broker), not the broker.
//!
//! The embedded broker runs as `warren broker` in a process of its own, as RabbitMQ does, so both
//! are measured the same way: CPU per message and resident memory from /proc. Each row runs
//! WARREN_BENCH_ROUNDS times (default 3), the two brokers going first in turn; the medians are
//! compared. A last row, "prefetch 1 *", runs the prefetch 1 workload with a minimal client on
//! amq-protocol's codec (raw_amqp/), which costs next to nothing next to lapin.
//!
//! The prefetch 1 row also runs, in the same rounds, against null_broker/: a broker that does
//! nothing but one read and one write per task. At prefetch 1 every task is a round trip through
//! lapin and the broker, so what lapin reaches against it is about the most any broker could
//! reach with lapin on this machine, and so the ratio any broker could show next to RabbitMQ. Last, for each row, the broker CPU per message that 3x RabbitMQ's rate would leave
//! beside the client's.
//! The "quorum + DLX" row (dead_letter/) declares a quorum queue with a delivery limit and a
//! dead-letter exchange, and rejects a tenth of the tasks so that the dead-lettering path runs;
//! a broker that refuses those arguments gets a "refused" cell and the reason under the table.
//! The "persistent" rows publish persistent tasks (delivery_mode 2) to a durable queue under
//! publisher confirms, prefetch 100 and prefetch 1: the embedded broker runs with --data-dir, so
//! every confirm waits for an fsync on both brokers.
//! WARREN_BENCH_TASKS sets the tasks per run (default 100000); WARREN_BENCH_ROWS picks rows by
//! name (e.g. "prefetch 1,prefetch 1 *").

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

mod common;
mod dead_letter;
mod null_broker;
mod raw_amqp;

const CONSUMERS: usize = 4;
/// Publishes the producer keeps in flight.
const WINDOW: usize = 256;

#[derive(Clone, Copy)]
enum Row {
    AutoAck,
    Prefetch(u16),
    /// Prefetch 1 again with `raw_amqp`'s minimal client instead of lapin: the row lapin bounds
    /// most, with a client that costs next to nothing.
    Minimal,
    /// A quorum queue with a delivery limit and a dead-letter exchange, a tenth rejected.
    QuorumDlx,
    /// Prefetch 100 on a quorum queue with a delivery limit and a dead-letter exchange: what the
    /// poison-message features cost when no message is poisoned.
    QuorumLimited,
    /// Persistent tasks in a durable queue, under confirms, at this prefetch.
    Persistent(u16),
}

impl Row {
    fn name(self) -> String {
        match self {
            Row::AutoAck => "auto-ack".into(),
            Row::Prefetch(n) => format!("prefetch {n}"),
            Row::Minimal => "prefetch 1 *".into(),
            Row::QuorumDlx => "quorum + DLX".into(),
            Row::QuorumLimited => "quorum dl 100".into(),
            Row::Persistent(n) => format!("persistent {n}"),
        }
    }
}

/// A broker under test: where to connect and which process to read CPU and memory from.
struct Broker {
    url: String,
    pid: Option<u32>,
}

impl Broker {
    fn cpu(&self) -> f64 {
        self.pid.map_or(0.0, |p| common::cpu_seconds(&format!("/proc/{p}/stat")))
    }

    /// Resident memory in MiB: "VmRSS" now or "VmHWM" at its peak.
    fn memory_mib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
    }
}

/// Set in the environment of the child process that runs `null_broker` instead of the bench.
const NULL_BROKER_CHILD: &str = "WARREN_BENCH_NULL_BROKER_CHILD";

/// `warren broker` (or the null broker) on a free loopback port; killed when dropped.
struct Embedded(Child);

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_embedded() -> (Embedded, Broker) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    // A data directory of its own, so that the persistent rows are written and synced.
    let dir = std::env::temp_dir().join(format!("warren-bench-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cmd.args(["broker", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&dir);
    start(cmd)
}

/// This bench's own executable, serving as the null broker in a process of its own, as the
/// brokers it stands beside do.
fn start_null_broker() -> (Embedded, Broker) {
    let mut cmd = Command::new(std::env::current_exe().expect("the bench's own path"));
    cmd.env(NULL_BROKER_CHILD, "1");
    start(cmd)
}

/// Start a broker that prints its URL on its first line.
fn start(mut cmd: Command) -> (Embedded, Broker) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start the broker");
    // The reader ends with this function; the broker keeps writing to a closed pipe harmlessly.
    let url = common::broker_url(child.stdout.take().expect("piped"));
    let pid = child.id();
    (Embedded(child), Broker { url, pid: Some(pid) })
}

/// One run's figures.
#[derive(Clone, Copy)]
struct Run {
    msg_per_s: f64,
    broker_us_per_msg: f64,
    /// This process: the producer's and the consumers' connections.
    client_us_per_msg: f64,
}

fn main() {
    if std::env::var_os(NULL_BROKER_CHILD).is_some() {
        return null_broker::serve_forever();
    }
    let n: u64 = env_number("WARREN_BENCH_TASKS", 100_000);
    let rounds = env_number("WARREN_BENCH_ROUNDS", 3).max(1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_child, embedded) = start_embedded();
    let rabbit = std::env::var("WARREN_BENCH_AMQP_URL")
        .or_else(|_| std::env::var("WARREN_TEST_AMQP_URL"))
        .ok()
        .map(|url| Broker { url, pid: beam_pid() });
    println!(
        "broker bench: {n} tasks of 64 bytes, 1 producer, {CONSUMERS} consumers, lapin; \
         median of {rounds} rounds"
    );
    println!(
        "{:<14} {:>14} {:>14} {:>7}   {:>24}   {:>24}",
        "", "embedded", "RabbitMQ", "ratio", "broker CPU per message", "client CPU per message"
    );
    let mut budgets = Vec::new();
    // The prefetch 1 row also runs against the null broker, in the same rounds. Not the
    // minimal-client row: with a client that costs nothing, the null broker's own plain design
    // (one task per connection, a lock per task) limits it, and the embedded broker has beaten
    // it there.
    let null_broker = start_null_broker();
    let mut ceilings = Vec::new();
    let picked = std::env::var("WARREN_BENCH_ROWS").ok();
    let wanted =
        |row: Row| picked.as_deref().is_none_or(|p| p.split(',').any(|name| name.trim() == row.name()));
    // Why a broker would not run a row, said under the table.
    let mut refusals = Vec::new();
    for row in [
        Row::AutoAck,
        Row::Prefetch(1),
        Row::Prefetch(100),
        Row::QuorumLimited,
        Row::Persistent(100),
        Row::Persistent(1),
        Row::Minimal,
        Row::QuorumDlx,
    ] {
        if !wanted(row) {
            continue;
        }
        let (mut ours, mut theirs, mut ceiling) = (Vec::new(), Vec::new(), Vec::new());
        let mut refused = None;
        for round in 0..rounds {
            // A broker that refused the row once is not asked again.
            let mut ours_run = |b: &Broker| match (&refused, measure(&rt, b, row, n)) {
                (Some(_), _) => None,
                (None, Ok(run)) => Some(run),
                (None, Err(why)) => {
                    refused = Some(why);
                    None
                }
            };
            // Only the embedded broker may lack a feature: RabbitMQ's refusal is a broken bench.
            let their_run = |b: &Broker| match measure(&rt, b, row, n) {
                Ok(run) => run,
                Err(why) => panic!("{}: RabbitMQ refused the workload: {why}", row.name()),
            };
            // The null broker goes first in even rounds and last in odd ones, as the brokers
            // take turns too.
            let with_ceiling = matches!(row, Row::Prefetch(1));
            if with_ceiling && round % 2 == 0 {
                ceiling.push(their_run(&null_broker.1));
            }
            match &rabbit {
                Some(r) if round % 2 == 1 => {
                    theirs.push(their_run(r));
                    ours.extend(ours_run(&embedded));
                }
                Some(r) => {
                    ours.extend(ours_run(&embedded));
                    theirs.push(their_run(r));
                }
                None => ours.extend(ours_run(&embedded)),
            }
            if with_ceiling && round % 2 == 1 {
                ceiling.push(their_run(&null_broker.1));
            }
        }
        if let Some(why) = refused {
            let theirs = (!theirs.is_empty()).then(|| median(&theirs));
            println!(
                "{:<14} {:>14} {:>14} {:>7}   {:>24}   {:>24}",
                row.name(),
                "refused",
                theirs.map_or_else(|| "(not set)".to_string(), |t| format!("{:.0} msg/s", t.msg_per_s)),
                "-",
                theirs.map_or_else(String::new, |t| format!("- vs {:>6.1} us", t.broker_us_per_msg)),
                theirs.map_or_else(String::new, |t| format!("- vs {:>6.1} us", t.client_us_per_msg)),
            );
            refusals.push((row, why));
            continue;
        }
        let ours = median(&ours);
        let theirs = (!theirs.is_empty()).then(|| median(&theirs));
        if !ceiling.is_empty() {
            ceilings.push((row, ours, theirs, median(&ceiling)));
        }
        match theirs {
            Some(t) => {
                budgets.push((row, ours, budget_for_3x(ours, t)));
                println!(
                    "{:<14} {:>8.0} msg/s {:>8.0} msg/s {:>6.1}x   {:>7.1} us vs {:>6.1} us   {:>7.1} us vs {:>6.1} us",
                    row.name(),
                    ours.msg_per_s,
                    t.msg_per_s,
                    ours.msg_per_s / t.msg_per_s,
                    ours.broker_us_per_msg,
                    t.broker_us_per_msg,
                    ours.client_us_per_msg,
                    t.client_us_per_msg
                )
            }
            None => println!(
                "{:<14} {:>8.0} msg/s {:>14} {:>7}   {:>7.1} us {:>16}   {:>7.1} us",
                row.name(),
                ours.msg_per_s,
                "(not set)",
                "-",
                ours.broker_us_per_msg,
                "",
                ours.client_us_per_msg
            ),
        }
    }
    if wanted(Row::Minimal) {
        println!("* the prefetch 1 workload with a minimal client: amq-protocol frames, no lapin");
    }
    if wanted(Row::QuorumDlx) {
        println!(
            "quorum + DLX: a quorum queue with x-delivery-limit and x-dead-letter-exchange, prefetch 100, \
             1 task in {} nacked with requeue=false and consumed from the dead-letter queue",
            dead_letter::REJECT_EVERY
        );
    }
    for (row, why) in refusals {
        println!("{}: refused by the embedded broker: {why}", row.name());
    }
    if !ceilings.is_empty() {
        println!(
            "prefetch 1 against a broker that does no work (null_broker/: no queue, one read and one \
             write per task), about the most any broker could reach with lapin here:"
        );
    }
    for (row, ours, theirs, ceiling) in ceilings {
        let rabbit = theirs.map_or_else(String::new, |t| {
            format!(
                "; no broker could beat RabbitMQ by much more than {:.1}x",
                ceiling.msg_per_s / t.msg_per_s
            )
        });
        println!(
            "  {:<14} {:>6.0} msg/s ({:.1} us of CPU per message); the embedded broker reached {:.0}% of it{rabbit}",
            row.name(),
            ceiling.msg_per_s,
            ceiling.broker_us_per_msg,
            100.0 * ours.msg_per_s / ceiling.msg_per_s,
        );
    }
    if !budgets.is_empty() {
        println!(
            "broker CPU per message left for 3x RabbitMQ's rate on {} cores, beside what the client \
             spent with the embedded broker (cores / (3 x RabbitMQ msg/s) - client CPU per message):",
            cores()
        );
        for (row, ours, budget) in budgets {
            println!("  {:<14} {:>6.1} us, spent {:.1} us", row.name(), budget, ours.broker_us_per_msg);
        }
    }
    println!(
        "embedded broker resident memory: {} MiB at its peak, {} MiB now (RabbitMQ now: {})",
        embedded.memory_mib("VmHWM:").unwrap_or(0),
        embedded.memory_mib("VmRSS:").unwrap_or(0),
        rabbit
            .as_ref()
            .and_then(|r| r.memory_mib("VmRSS:"))
            .map_or_else(|| "not on this machine".to_string(), |m| format!("{m} MiB"))
    );
}

/// One run of `row` on `broker`, or the broker's reason for refusing it.
fn measure(rt: &tokio::runtime::Runtime, broker: &Broker, row: Row, n: u64) -> Result<Run, String> {
    let (cpu, client_cpu) = (broker.cpu(), common::cpu_seconds("/proc/self/stat"));
    let msg_per_s = match row {
        Row::Minimal => rt.block_on(run_minimal(&broker.url, n)),
        Row::QuorumDlx => rt.block_on(dead_letter::run(&broker.url, n))?,
        _ => rt.block_on(run(&broker.url, row, n)),
    };
    let per_msg = |seconds: f64| seconds * 1e6 / n as f64;
    Ok(Run {
        msg_per_s,
        broker_us_per_msg: per_msg(broker.cpu() - cpu),
        client_us_per_msg: per_msg(common::cpu_seconds("/proc/self/stat") - client_cpu),
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The broker CPU per message the embedded run could have spent and still reached 3x
/// RabbitMQ's rate, if broker and client kept every core busy: the rows are CPU-bound on a small
/// machine, so this says how much of a row's gap the broker could still close, and how much the
/// client's own cost rules out whatever the broker does (a negative budget).
fn budget_for_3x(ours: Run, theirs: Run) -> f64 {
    cores() as f64 * 1e6 / (3.0 * theirs.msg_per_s) - ours.client_us_per_msg
}

/// The run with the median msg/s (its CPU figure with it).
fn median(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.msg_per_s.total_cmp(&b.msg_per_s));
    sorted.get(sorted.len() / 2).copied().unwrap_or(Run {
        msg_per_s: 0.0,
        broker_us_per_msg: 0.0,
        client_us_per_msg: 0.0,
    })
}

async fn run(url: &str, row: Row, n: u64) -> f64 {
    let persistent = matches!(row, Row::Persistent(_));
    let kind = if persistent { "durable" } else { "broker" };
    let queue = format!("warren.bench.{kind}.{}", std::process::id());
    let producer = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let pch = producer.create_channel().await.expect("channel");
    let (options, arguments) = match row {
        Row::QuorumLimited => {
            let mut args = FieldTable::default();
            args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
            args.insert("x-delivery-limit".into(), AMQPValue::LongInt(20));
            args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(format!("{queue}.dead").into()),
            );
            (QueueDeclareOptions { durable: true, ..Default::default() }, args)
        }
        Row::Persistent(_) => {
            (QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        }
        _ => (QueueDeclareOptions::default(), FieldTable::default()),
    };
    // A quorum queue left by an interrupted run would refuse other arguments: start afresh
    // (on a channel of its own: deleting a missing queue may close it).
    if let Ok(scratch) = producer.create_channel().await {
        let _ = scratch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
        let _ = scratch.close(200, "clean".into()).await;
    }
    pch.queue_declare(queue.as_str().into(), options, arguments).await.expect("declare");
    let consumed = Arc::new(AtomicU64::new(0));
    // Ok when the last task is consumed; Err when a consumer fails before that, so that a
    // broken run stops at once and says why instead of waiting out the timeout.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(CONSUMERS + 1);
    let mut conns = Vec::new();
    for i in 0..CONSUMERS {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let no_ack = matches!(row, Row::AutoAck);
        let prefetch = match row {
            Row::Prefetch(p) | Row::Persistent(p) => Some(p),
            Row::QuorumLimited => Some(100),
            _ => None,
        };
        if let Some(p) = prefetch {
            ch.basic_qos(p, BasicQosOptions::default()).await.expect("qos");
        }
        let opts = BasicConsumeOptions { no_ack, ..Default::default() };
        let tag = format!("bench-{i}");
        let mut consumer = ch
            .basic_consume(queue.as_str().into(), tag.as_str().into(), opts, FieldTable::default())
            .await
            .expect("consume");
        let consumed = Arc::clone(&consumed);
        let done = done_tx.clone();
        tokio::spawn(async move {
            // One ack per task, sent at once; their writes complete in the background. At
            // prefetch 1 this changes nothing: the next delivery waits for the ack anyway.
            let mut acks: FuturesUnordered<BoxFuture<lapin::Result<()>>> = FuturesUnordered::new();
            let failed = loop {
                tokio::select! {
                    Some(r) = acks.next(), if !acks.is_empty() => if let Err(e) = r {
                        break format!("ack: {e}");
                    },
                    d = consumer.next() => match d {
                        Some(Ok(d)) => {
                            if !no_ack {
                                acks.push(ch.basic_ack(d.delivery_tag, BasicAckOptions::default()).boxed());
                            }
                            if consumed.fetch_add(1, Ordering::Relaxed) + 1 == n {
                                let _ = done.send(Ok(())).await;
                            }
                        }
                        Some(Err(e)) => break format!("consumer: {e}"),
                        None => break "the consumer stream ended".to_string(),
                    },
                }
            };
            // Once every task is in, the connections close under the consumers: not a failure.
            if consumed.load(Ordering::Relaxed) < n {
                let _ = done.send(Err(failed)).await;
            }
        });
        conns.push(conn);
    }
    let body = [b'x'; 64];
    let start = Instant::now();
    if persistent {
        pch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    }
    let props = if persistent {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    // Persistent rows wait for each confirm (a nack fails the run), the others for the write.
    let mut in_flight: FuturesUnordered<BoxFuture<lapin::Result<()>>> = FuturesUnordered::new();
    for _ in 0..n {
        if in_flight.len() >= WINDOW {
            in_flight.next().await.expect("in flight").expect("publish");
        }
        let publish = pch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            props.clone(),
        );
        in_flight.push(if persistent {
            async move {
                assert!(publish.await?.await?.is_ack(), "a persistent task was nacked");
                Ok(())
            }
            .boxed()
        } else {
            publish.map(|r| r.map(drop)).boxed()
        });
    }
    while let Some(r) = in_flight.next().await {
        r.expect("publish");
    }
    match tokio::time::timeout(Duration::from_secs(600), done_rx.recv()).await {
        Ok(Some(Ok(()))) => {}
        Ok(Some(Err(e))) => panic!("a consumer failed before the last task: {e}"),
        Ok(None) => unreachable!("this function holds a sender"),
        Err(_) => panic!("not all {n} tasks consumed within 600 s"),
    }
    let took = start.elapsed();
    let _ = pch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    for c in conns {
        let _ = c.close(200, "bye".into()).await;
    }
    let _ = producer.close(200, "bye".into()).await;
    n as f64 / took.as_secs_f64()
}

/// The prefetch 1 workload with the minimal client: 1 producer, 4 consumers, each on its own
/// connection, 64-byte tasks, one ack per task.
async fn run_minimal(url: &str, n: u64) -> f64 {
    let queue = format!("warren.bench.minimal.{}", std::process::id());
    let mut producer = raw_amqp::RawConn::open(url).await.expect("connect");
    producer.declare(&queue).await.expect("declare");
    let consumed = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let conn = raw_amqp::RawConn::open(url).await.expect("connect");
        let (consumed, done, queue) = (Arc::clone(&consumed), done_tx.clone(), queue.clone());
        consumers.push(tokio::spawn(async move {
            let _ = conn
                .consume_prefetch_1(&queue, || {
                    let total = consumed.fetch_add(1, Ordering::Relaxed) + 1;
                    if total == n {
                        let _ = done.try_send(());
                    }
                    total < n
                })
                .await;
        }));
    }
    let start = Instant::now();
    producer.publish(&queue, &[b'x'; 64], n).await.expect("publish");
    tokio::time::timeout(Duration::from_secs(600), done_rx.recv()).await.expect("all consumed in time");
    let took = start.elapsed();
    // Consumers still waiting for a delivery are dropped, which closes their connections.
    for c in consumers {
        c.abort();
    }
    let lapin = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = lapin.create_channel().await.expect("channel");
    let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = lapin.close(200, "bye".into()).await;
    drop(producer);
    n as f64 / took.as_secs_f64()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// RabbitMQ's Erlang VM on this machine, if it runs here.
fn beam_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        comm.trim().starts_with("beam").then_some(pid)
    })
}
