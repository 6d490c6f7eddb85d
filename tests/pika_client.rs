//! An independent client against `warren broker`: pika (Python) runs the work-queue tutorial's
//! rules (tests/pika/work_queue.py) and tutorial 6's RPC with direct reply-to (tests/pika/rpc.py,
//! on RabbitMQ too when WARREN_TEST_AMQP_URL is set) against the real binary. Skipped with a note when pika is not
//! installed, unless WARREN_REQUIRE_PIKA=1 (as in CI), where that is a failure.

#![cfg(unix)]

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/work_queue.py");
const RPC_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/rpc.py");
/// The script bounds itself at 120 s; this is the backstop.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);

/// Whether `python3 -c "import pika"` works; what went wrong when not.
fn pika_available() -> Result<(), String> {
    match Command::new("python3").args(["-c", "import pika"]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("").to_string()),
        Err(e) => Err(format!("python3 does not run: {e}")),
    }
}

/// Run the script with a bounded wait; on timeout kill it and fail.
fn run_script(script: &str, url: &str) -> Output {
    let child = Command::new("python3")
        .args(["-u", script, url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(SCRIPT_LIMIT) {
        Ok(out) => out.expect("python3 ran"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{script} did not finish within {SCRIPT_LIMIT:?}");
        }
    }
}

/// Whether pika can run; when it cannot, a visible note (or a failure under
/// WARREN_REQUIRE_PIKA=1, as in CI).
fn pika_or_skip(test: &str) -> bool {
    let Err(why) = pika_available() else { return true };
    if std::env::var("WARREN_REQUIRE_PIKA").is_ok_and(|v| v == "1") {
        panic!("WARREN_REQUIRE_PIKA=1 but pika is not usable ({why}): python3 -m pip install pika");
    }
    use std::io::Write;
    // Straight to the stderr handle: the harness would swallow eprintln! of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: pika is not installed (pip install pika) — {why}");
    false
}

/// Run `script` against `url`; it must exit 0 with its "N checks passed" line last.
fn expect_checks_pass(script: &str, url: &str, prefix: &str) {
    let out = run_script(script, url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown on failure (and with --nocapture): every check the script made.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "{script} against {url} exited with {}:\n{stdout}\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with(prefix) && last.ends_with(" checks passed"), "last line: {last:?}");
}

#[test]
fn pika_runs_the_work_queue_tutorial_against_warren_broker() {
    if !pika_or_skip("pika_client") {
        return;
    }
    let broker = common::process::WarrenBroker::start();
    expect_checks_pass(SCRIPT, &broker.url(), "pika: ");
    broker.terminate();
}

#[test]
fn pika_runs_rpc_with_direct_reply_to_on_both_brokers() {
    if !pika_or_skip("pika rpc") {
        return;
    }
    let broker = common::process::WarrenBroker::start();
    expect_checks_pass(RPC_SCRIPT, &broker.url(), "pika rpc: ");
    broker.terminate();
    match std::env::var("WARREN_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => expect_checks_pass(RPC_SCRIPT, &url, "pika rpc: "),
        _ => {
            use std::io::Write;
            let _ =
                writeln!(std::io::stderr(), "SKIPPED pika rpc on RabbitMQ: WARREN_TEST_AMQP_URL is not set");
        }
    }
}
