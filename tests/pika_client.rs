//! An independent client against `warren broker`: pika (Python) runs the work-queue tutorial's
//! rules (tests/pika/work_queue.py) against the real binary. Skipped with a note when pika is not
//! installed, unless WARREN_REQUIRE_PIKA=1 (as in CI), where that is a failure.

#![cfg(unix)]

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/work_queue.py");
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
fn run_script(url: &str) -> Output {
    let child = Command::new("python3")
        .args(["-u", SCRIPT, url])
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
            panic!("{SCRIPT} did not finish within {SCRIPT_LIMIT:?}");
        }
    }
}

#[test]
fn pika_runs_the_work_queue_tutorial_against_warren_broker() {
    if let Err(why) = pika_available() {
        if std::env::var("WARREN_REQUIRE_PIKA").is_ok_and(|v| v == "1") {
            panic!("WARREN_REQUIRE_PIKA=1 but pika is not usable ({why}): python3 -m pip install pika");
        }
        use std::io::Write;
        // Straight to the stderr handle: the harness would swallow eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED pika_client: pika is not installed (pip install pika) — {why}"
        );
        return;
    }
    let broker = common::process::WarrenBroker::start();
    let url = broker.url();
    let out = run_script(&url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown on failure (and with --nocapture): every check the script made.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "work_queue.py against {url} exited with {}:\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("pika: ") && last.ends_with(" checks passed"), "last line: {last:?}");
    broker.terminate();
}
