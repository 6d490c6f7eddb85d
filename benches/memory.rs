//! Resident memory of warren's own process with 3 and 64 consumers (`cargo bench --bench memory`):
//! the in-process engine and App, as the TUI and headless runs hold them, connected to the
//! embedded broker running as `warren broker` in a process of its own, so the broker's memory is
//! not counted in warren's and is reported beside it.
//!
//! Each case runs in a fresh child process (this bench's own executable), because freed memory
//! is not always handed back to the system and one case would inflate the next. The child reads
//! its VmRSS from /proc at three points: the runtime started and nothing connected (the base),
//! every consumer connected and registered and idle, and after a burst of BURST zero-delay tasks
//! has been processed; and its peak (VmHWM). In round-robin (auto-ack) mode RabbitMQ pushes the
//! whole burst to the consumers at once, so lapin holds the deliveries not yet processed: that,
//! not the frames, is what the burst adds on RabbitMQ. The same cases run with `?frame_max=0` in the URL ("take the server's"),
//! as warren connected before: both brokers offer 131072, and lapin, having started with
//! buffers of 32 minimal frames each way, grows them to 32 negotiated frames and fills them with
//! zeros, so 8 MiB per connection are resident at once. (A frame_max given up front is
//! allocated zeroed by the allocator and only becomes resident as it is used.)

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use warren::cli::Cli;
use warren::headless::Driver;

const CHILD: &str = "WARREN_MEMORY_BENCH_CHILD";
const BURST: u32 = 10_000;
const PATIENCE: Duration = Duration::from_secs(120);

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    println!(
        "resident memory of warren's process (engine + App, broker in its own process); \
         burst = {BURST} tasks, zero delay"
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>12} {:>9} {:>14}",
        "frames", "consumers", "base", "idle", "after burst", "peak", "broker after"
    );
    let rabbit =
        std::env::var("WARREN_BENCH_AMQP_URL").or_else(|_| std::env::var("WARREN_TEST_AMQP_URL")).ok();
    let mut cases =
        vec![("warren's (frame_max 4096)", None, ""), ("before (server's, 131072)", None, "?frame_max=0")];
    if let Some(url) = &rabbit {
        cases.push(("warren's, on RabbitMQ", Some(url.as_str()), ""));
    }
    for (label, rabbit_url, query) in cases {
        let mut idle = Vec::new();
        for consumers in [3, 64] {
            // A fresh embedded broker per case, so its figure is this case's alone.
            let (broker, url) = match rabbit_url {
                Some(url) => (None, url.to_string()),
                None => {
                    let (b, url) = start_broker();
                    (Some(b), url)
                }
            };
            let sep = if query.is_empty() || !url.contains('?') { "" } else { "&" };
            let query = if sep.is_empty() { query.to_string() } else { query.replacen('?', "", 1) };
            let [base, idle_kib, burst, peak] = run_child(consumers, &format!("{url}{sep}{query}"));
            let broker_mem = match &broker {
                Some(b) => mb(rss_kib(&format!("/proc/{}/status", b.0.id()))),
                None => "(RabbitMQ)".into(),
            };
            idle.push(idle_kib);
            println!(
                "{label:<30} {consumers:>9} {:>9} {:>9} {:>12} {:>9} {broker_mem:>14}",
                mb(base),
                mb(idle_kib),
                mb(burst),
                mb(peak)
            );
        }
        // The 61 consumers between the two cases, each with its own connection and channel.
        let each = idle[1].saturating_sub(idle[0]) as f64 / 61.0;
        println!("{label:<30} each consumer beyond 3 adds {each:.0} KiB idle");
    }
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

/// `warren broker` on a free loopback port; killed when dropped.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker() -> (Broker, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["broker", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start warren broker");
    // The reader ends with this function; the broker keeps writing to a closed pipe harmlessly.
    let url = common::broker_url(child.stdout.take().expect("piped"));
    (Broker(child), url)
}

/// Run one case in a fresh process; its last stdout line is "base idle burst peak" in KiB.
fn run_child(consumers: usize, url: &str) -> [u64; 4] {
    let out = Command::new(std::env::current_exe().expect("the bench's own path"))
        .env(CHILD, format!("{consumers} {url}"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<u64> =
        text.lines().last().unwrap_or("").split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match figures[..] {
        [a, b, c, d] if out.status.success() => [a, b, c, d],
        _ => panic!("the child failed ({}): {text}", out.status),
    }
}

fn child(spec: &str) {
    let (consumers, url) = spec.split_once(' ').expect("'<consumers> <url>'");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let base = rss_kib("/proc/self/status");
    let (idle, burst, peak) = rt.block_on(async {
        // One name for every run: warren purges it at start, so nothing piles up on RabbitMQ.
        let queue = "warren.bench.memory";
        let argv = ["warren", "--url", url, "--queue", queue, "--transient", "--consumers", consumers];
        let cfg = Cli::try_parse_from(argv.into_iter().chain(["--delay", "0ms"]))
            .expect("flags parse")
            .into_config()
            .expect("flags are valid");
        let mut d = Driver::start(&cfg, false).await.expect("the workload starts");
        let idle = rss_kib("/proc/self/status");
        d.publish(BURST);
        let done =
            d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().done == u64::from(BURST)).await;
        assert!(done, "the burst was processed in time");
        let burst = rss_kib("/proc/self/status");
        let peak = status_kib("/proc/self/status", "VmHWM:");
        d.shutdown().await;
        (idle, burst, peak)
    });
    println!("{base} {idle} {burst} {peak}");
}

/// VmRSS in KiB from a /proc status file (0 if unreadable).
fn rss_kib(status_path: &str) -> u64 {
    status_kib(status_path, "VmRSS:")
}

/// A field in KiB from a /proc status file (0 if unreadable): VmRSS, VmHWM (the peak).
fn status_kib(status_path: &str, field: &str) -> u64 {
    std::fs::read_to_string(status_path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
