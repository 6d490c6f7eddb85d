//! An independent client against `warren broker`: pika (Python) runs the work-queue tutorial's
//! rules (tests/pika/work_queue.py) and tutorial 6's RPC with direct reply-to (tests/pika/rpc.py,
//! on RabbitMQ too when WARREN_TEST_AMQP_URL is set) against the real binary. Skipped with a note when pika is not
//! installed, unless WARREN_REQUIRE_PIKA=1 (as in CI), where that is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/work_queue.py");
const RPC_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/rpc.py");
/// The broker prints its address at once; allow for a loaded CI machine.
const STARTUP: Duration = Duration::from_secs(30);
/// The script bounds itself at 120 s; this is the backstop.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);
const LISTENING: &str = "warren broker listening on ";

/// Whether `python3 -c "import pika"` works; what went wrong when not.
fn pika_available() -> Result<(), String> {
    match Command::new("python3").args(["-c", "import pika"]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("").to_string()),
        Err(e) => Err(format!("python3 does not run: {e}")),
    }
}

/// `warren broker` as a child; SIGKILLed on drop if the test did not stop it.
struct Broker {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Broker {
    fn start() -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(["broker", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("warren broker starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut broker = Self { child, lines };
        // A line on the open-files room comes first.
        let line = loop {
            let line = broker.next_line(STARTUP).unwrap_or_else(|e| panic!("no listening line: {e}"));
            if !line.starts_with("warren broker: room for ") {
                break line;
            }
        };
        let addr = line
            .strip_prefix(LISTENING)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line from warren broker: {line:?}"))
            .to_string();
        assert!(
            !addr.ends_with(":0"),
            "the broker printed the port it asked for, not the one it got: {line}"
        );
        (broker, addr)
    }

    fn next_line(&mut self, wait: Duration) -> Result<String, String> {
        self.lines.recv_timeout(wait).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("nothing on stdout within {wait:?}"),
            mpsc::RecvTimeoutError::Disconnected => {
                format!("stdout closed; the broker exited with {:?}", self.child.try_wait())
            }
        })
    }

    /// SIGTERM, then the broker must say it stopped and exit 0.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let line = self.next_line(Duration::from_secs(10)).unwrap_or_else(|e| panic!("after SIGTERM: {e}"));
        assert_eq!(line, "warren broker stopped", "after SIGTERM");
        // stdout is closed once the process is gone, so its status is ready (or nearly).
        let _ = self.next_line(Duration::from_secs(10));
        let status = self.child.wait().expect("broker exit status");
        assert!(status.success(), "warren broker exited with {status} after SIGTERM");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
    let (broker, addr) = Broker::start();
    expect_checks_pass(SCRIPT, &format!("amqp://guest:guest@{addr}/%2f"), "pika: ");
    broker.terminate();
}

#[test]
fn pika_runs_rpc_with_direct_reply_to_on_both_brokers() {
    if !pika_or_skip("pika rpc") {
        return;
    }
    let (broker, addr) = Broker::start();
    expect_checks_pass(RPC_SCRIPT, &format!("amqp://guest:guest@{addr}/%2f"), "pika rpc: ");
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
