//! The binary as a user meets it: bad input and broker failures give one clear line on stderr
//! and exit 1 before any UI; a headless run prints its summary and exits 0, or 2 on timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use common::{delete_queue, unique_queue};

fn warren(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(args)
        .env_remove("AMQP_URL")
        .stdin(Stdio::null())
        .output()
        .expect("warren runs")
}

/// `warren` from async tests: the broker under test may live in this process.
async fn warren_bg(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        warren(&refs)
    })
    .await
    .expect("warren ran")
}

/// Exit 1, nothing on stdout, and one stderr line that contains `want`.
fn fails_with(out: &Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(want), "wanted {want:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn nonsense_flags_are_refused_with_a_hint() {
    fails_with(&warren(&["--consumers", "0", "--headless", "--publish", "1"]), "give 1 to 64");
    fails_with(&warren(&["--delay", "quick"]), "use values like 500ms");
    fails_with(&warren(&["--url", "amqp://guest:pw@:5672"]), "expected amqp://user:password@host");
    fails_with(&warren(&["--url", "mqtt://x"]), "expected amqp://");
    fails_with(&warren(&["--headless"]), "needs --publish");
    fails_with(&warren(&["--headless", "--publish", "0"]), "--publish 0 publishes nothing");
    fails_with(&warren(&["--headless", "--publish", "3000000000"]), "more than the limit of 1000000 tasks");
}

#[test]
fn clap_usage_errors_exit_1_in_one_line_and_help_exits_0() {
    fails_with(&warren(&["--mode", "sideways"]), "[possible values: rr, fair]; see `warren --help`");
    fails_with(&warren(&["--consumers", "-1"]), "'--consumers <CONSUMERS>': not a whole number");
    fails_with(&warren(&["--prefetch", "70000"]), "70000 is not in 0..=65535; see `warren --help`");
    fails_with(
        &warren(&["--no-such-flag"]),
        "unexpected argument '--no-such-flag' found; see `warren --help`",
    );
    fails_with(&warren(&["play"]), "<FILE>; see `warren play --help`");
    let help = warren(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--headless"));
}

#[test]
fn connection_refused_says_how_to_start_rabbitmq() {
    // Bind then drop a listener: that port is now (almost surely) closed.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    fails_with(
        &warren(&["--url", &url, "--headless", "--publish", "1"]),
        "connection refused. Is RabbitMQ running?",
    );
}

#[test]
fn something_that_is_not_amqp_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut greeting = [0u8; 8];
        let _ = s.read_exact(&mut greeting);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    fails_with(&warren(&["--url", &url, "--headless", "--publish", "1"]), "is not an AMQP 0-9-1 broker");
    server.join().unwrap();
}

#[test]
fn a_port_that_accepts_and_stays_silent_is_not_called_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Hold the connection open without a word until warren has given up and gone.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let out = warren(&["--url", &url, "--headless", "--publish", "1"]);
    fails_with(
        &out,
        &format!(
            "127.0.0.1:{port} accepted the connection but sent no AMQP greeting within 5s: is it an \
             AMQP 0-9-1 broker?"
        ),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("firewall"));
    server.join().unwrap();
}

#[test]
fn a_port_that_hangs_up_at_once_is_something_else_than_amqp() {
    // An MQTT broker resets a connection that opens with an AMQP header; a web server may just
    // close it. Closing with the header unread makes the kernel send a reset.
    for reset in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut first = [0u8; 1];
            if reset {
                let _ = s.peek(&mut first);
            } else {
                let _ = s.read_exact(&mut [0u8; 8]);
            }
        });
        let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        fails_with(
            &warren(&["--url", &url, "--headless", "--publish", "1"]),
            &format!(
                "127.0.0.1:{port} closed the connection at once: something else than AMQP 0-9-1 \
                 listens there (MQTT? HTTP?)"
            ),
        );
        server.join().unwrap();
    }
}

#[test]
fn the_tui_without_a_terminal_points_to_headless() {
    fails_with(&warren(&["--url", "amqp://127.0.0.1:1/%2f"]), "use --headless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_access_refused() {
    on_every_broker!("wrong_credentials_are_access_refused", wrong_credentials_are_access_refused_on);
}

async fn wrong_credentials_are_access_refused_on(url: &str) {
    let url = url.to_string();
    let uri: lapin::uri::AMQPUri = url.parse().unwrap();
    let bad = format!("amqp://nobody:wrong@{}:{}/%2f", uri.authority.host, uri.authority.port);
    let out = warren_bg(&["--url", &bad, "--headless", "--publish", "1"]).await;
    fails_with(&out, "ACCESS_REFUSED");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong"), "no password in messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_vhost_is_named() {
    on_every_broker!("an_unknown_vhost_is_named", an_unknown_vhost_is_named_on);
}

async fn an_unknown_vhost_is_named_on(url: &str) {
    let url = url.to_string();
    let uri: lapin::uri::AMQPUri = url.parse().unwrap();
    let a = &uri.authority;
    let bad =
        format!("amqp://{}:{}@{}:{}/no-such-vhost", a.userinfo.username, a.userinfo.password, a.host, a.port);
    fails_with(&warren_bg(&["--url", &bad, "--headless", "--publish", "1"]).await, "vhost 'no-such-vhost'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_with_other_settings_is_precondition_failed() {
    on_every_broker!(
        "a_queue_declared_with_other_settings_is_precondition_failed",
        a_queue_declared_with_other_settings_is_precondition_failed_on
    );
}

async fn a_queue_declared_with_other_settings_is_precondition_failed_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("precondition");
    // Declared durable first; warren --transient then asks for a non-durable one.
    let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let opts = lapin::options::QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), opts, Default::default()).await.unwrap();
    let out =
        warren_bg(&["--url", &url, "--queue", &queue, "--transient", "--headless", "--publish", "1"]).await;
    fails_with(&out, "PRECONDITION_FAILED");
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop --transient"));
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_json_reports_the_rotation() {
    on_every_broker!("headless_json_reports_the_rotation", headless_json_reports_the_rotation_on);
}

async fn headless_json_reports_the_rotation_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("json");
    let out = warren_bg(&[
        "--url",
        &url,
        "--queue",
        &queue,
        "--transient",
        "--delay",
        "1ms,5ms,10ms",
        "--headless",
        "--publish",
        "9",
        "--json",
        "--timeout",
        "60s",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["mode"], "rr");
    assert_eq!(v["prefetch"], 1);
    for key in ["published", "confirmed", "processed"] {
        assert_eq!(v[key], 9, "{key}");
    }
    assert_eq!((v["lost"].as_u64(), v["redelivered"].as_u64()), (Some(0), Some(0)));
    assert!(v["makespan_ms"].as_u64().is_some());
    assert!(!v["broker"]["product"].as_str().unwrap().is_empty());
    assert!(v["broker"]["endpoint"].as_str().unwrap().contains(':'));
    let consumers = v["consumers"].as_array().unwrap();
    let names: Vec<&str> = consumers.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["C1", "C2", "C3"]);
    assert_eq!(consumers[0]["tasks"], serde_json::json!([1, 4, 7]));
    assert_eq!(consumers[1]["tasks"], serde_json::json!([2, 5, 8]));
    assert_eq!(consumers[2]["delay_ms"], 10);
    assert_eq!(v["timed_out"], false);
    let batches = v["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{v}");
    let b = &batches[0];
    assert_eq!(
        (b["id"].as_u64(), b["published"].as_u64(), b["processed"].as_u64()),
        (Some(1), Some(9), Some(9))
    );
    assert_eq!((b["lost"].as_u64(), b["mode"].as_str()), (Some(0), Some("rr")));
    let split: Vec<(&str, u64)> = b["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["consumer"].as_str().unwrap(), s["processed"].as_u64().unwrap()))
        .collect();
    assert_eq!(split, [("C1", 3), ("C2", 3), ("C3", 3)]);
    // One batch: the run's makespan is that batch's.
    assert_eq!(v["makespan_ms"], b["makespan_ms"]);
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_times_out_with_exit_2_and_still_prints_the_summary() {
    on_every_broker!(
        "headless_times_out_with_exit_2_and_still_prints_the_summary",
        headless_times_out_with_exit_2_and_still_prints_the_summary_on
    );
}

async fn headless_times_out_with_exit_2_and_still_prints_the_summary_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("timeout");
    let out = warren_bg(&[
        "--url",
        &url,
        "--queue",
        &queue,
        "--transient",
        "--consumers",
        "1",
        "--delay",
        "30s",
        "--headless",
        "--publish",
        "3",
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("published 3"), "{stdout}");
    assert!(stdout.contains("makespan unfinished (timed out)"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1.0s"));
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_json_says_so_and_reports_what_it_saw() {
    on_every_broker!("a_timed_out_json_says_so_and_reports_what_it_saw", a_timed_out_json_says_so_on);
}

async fn a_timed_out_json_says_so_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("timeout-json");
    // One consumer at 30s a task: in 1s it has started the first and processed none.
    let out = warren_bg(&[
        "--url",
        &url,
        "--queue",
        &queue,
        "--transient",
        "--consumers",
        "1",
        "--delay",
        "30s",
        "--headless",
        "--publish",
        "3",
        "--json",
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["timed_out"], true, "{v}");
    assert_eq!((v["published"].as_u64(), v["processed"].as_u64()), (Some(3), Some(0)), "{v}");
    assert!(v["makespan_ms"].is_null(), "no makespan for a run that did not finish: {v}");
    let b = &v["batches"][0];
    assert_eq!(
        (b["published"].as_u64(), b["processed"].as_u64(), b["lost"].as_u64()),
        (Some(3), Some(0), Some(0))
    );
    assert!(b["makespan_ms"].is_null(), "{v}");
    delete_queue(&url, &queue).await;
}
