//! Every signal that ends warren restores the terminal: the TUI (and `play`) run in a real
//! pseudo-terminal, get a signal after their first frame, and must leave the alternate screen,
//! switch mouse reporting off, show the cursor and put the tty back in canonical mode with echo.
//! A headless run prints its summary, with what was still in flight, when interrupted.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: the TUI starts an embedded broker and three consumers before its first frame.
const FIRST_FRAME: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(20);

const ALT_ON: &str = "\x1b[?1049h";
const ALT_OFF: &str = "\x1b[?1049l";
const MOUSE_ON: &str = "\x1b[?1000h";
const MOUSE_OFF: &str = "\x1b[?1000l";
const CURSOR_HIDE: &str = "\x1b[?25l";
const CURSOR_SHOW: &str = "\x1b[?25h";

/// warren running on the slave side of a fresh pseudo-terminal; the test holds the master
/// (to read what it draws) and a slave descriptor (to read the tty's modes).
struct InPty {
    child: Child,
    slave: Option<OwnedFd>,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl InPty {
    fn spawn(args: &[&str]) -> InPty {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize { ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: out-pointers to two ints; null name and termios mean the defaults (canonical
        // mode with echo), and the size is a valid winsize.
        let rc =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors that nothing else owns.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = || Stdio::from(slave.try_clone().expect("dup the pty slave"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(args).stdin(stdio()).stdout(stdio()).stderr(stdio()).env("TERM", "xterm-256color");
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pty, as a terminal emulator sets up its shell.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("warren starts");
        let (tx, output) = mpsc::channel();
        let mut reader = std::fs::File::from(master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        InPty { child, slave: Some(slave), output, seen: Vec::new() }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Read until `done(output so far)`, or panic with what was seen.
    fn read_until(&mut self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + FIRST_FRAME;
        while !done(&self.text()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => panic!("no {what} within {FIRST_FRAME:?}; the terminal got:\n{:?}", self.text()),
            }
        }
    }

    fn termios(&self) -> libc::termios {
        let fd = self.slave.as_ref().expect("slave open").as_raw_fd();
        // SAFETY: a zeroed termios is a valid out-buffer; fd is an open tty.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::tcgetattr(fd, &mut t) }, 0, "tcgetattr");
        t
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill with our own child's pid and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Wait for the exit (or kill it and panic), then close our slave so the reader sees the
    /// end, and collect everything the process wrote.
    fn wait(mut self) -> (ExitStatus, libc::termios, String) {
        let (tx, rx) = mpsc::channel();
        let mut child = self.child;
        let pid = child.id();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().expect("wait");
            let _ = tx.send(status);
        });
        let status = match rx.recv_timeout(EXIT) {
            Ok(s) => s,
            Err(_) => {
                // SAFETY: kill by pid of our child, which has not been reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!("warren did not exit within {EXIT:?} of the signal");
            }
        };
        waiter.join().expect("waiter");
        let fd = self.slave.as_ref().expect("slave open").as_raw_fd();
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as in termios(): a valid out-buffer and an open tty.
        assert_eq!(unsafe { libc::tcgetattr(fd, &mut t) }, 0, "tcgetattr");
        self.slave = None;
        while let Ok(bytes) = self.output.recv() {
            self.seen.extend(bytes);
        }
        let text = String::from_utf8_lossy(&self.seen).into_owned();
        (status, t, text)
    }
}

fn canonical_with_echo(t: &libc::termios) -> bool {
    t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
}

/// `off` was written after the last `on`: the mode it switched on is off at the end.
fn switched_off(text: &str, on: &str, off: &str) -> bool {
    match (text.rfind(on), text.rfind(off)) {
        (Some(on), Some(off)) => off > on,
        _ => false,
    }
}

/// Start warren with `args` in a pty, wait for its first frame (the footer's `q quit`), send
/// `sig`, and check the exit code and every piece of terminal state.
fn signal_restores_the_terminal(args: &[&str], sig: libc::c_int, code: i32) {
    let mut pty = InPty::spawn(args);
    pty.read_until("first frame", |t| t.contains(ALT_ON) && t.contains("quit"));
    // Raw mode is on while it runs: the check below is not true by default.
    assert!(!canonical_with_echo(&pty.termios()), "the TUI runs in raw mode");
    assert!(pty.text().contains(MOUSE_ON) && pty.text().contains(CURSOR_HIDE));
    pty.signal(sig);
    let (status, termios, text) = pty.wait();
    assert!(switched_off(&text, ALT_ON, ALT_OFF), "alternate screen left on after signal {sig}");
    assert!(switched_off(&text, MOUSE_ON, MOUSE_OFF), "mouse reporting left on after signal {sig}");
    assert!(switched_off(&text, CURSOR_HIDE, CURSOR_SHOW), "cursor left hidden after signal {sig}");
    assert!(canonical_with_echo(&termios), "tty left without ICANON/ECHO after signal {sig}");
    assert_eq!(status.code(), Some(code), "exit status {status} after signal {sig}");
}

const TUI: &[&str] = &["--broker", "embedded", "--transient", "--queue", "warren.test.signals"];

#[test]
fn sigint_to_the_tui_restores_the_terminal_and_exits_130() {
    signal_restores_the_terminal(TUI, libc::SIGINT, 130);
}

#[test]
fn sighup_to_the_tui_restores_the_terminal_and_exits_129() {
    signal_restores_the_terminal(TUI, libc::SIGHUP, 129);
}

#[test]
fn sigquit_to_the_tui_restores_the_terminal_and_exits_131() {
    signal_restores_the_terminal(TUI, libc::SIGQUIT, 131);
}

#[test]
fn sigterm_to_the_tui_restores_the_terminal_and_exits_143() {
    signal_restores_the_terminal(TUI, libc::SIGTERM, 143);
}

#[test]
fn sigint_to_a_lesson_restores_the_terminal_and_exits_130() {
    let lesson = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/scenarios/classic-round-robin.toml");
    signal_restores_the_terminal(&["play", lesson, "--broker", "embedded"], libc::SIGINT, 130);
}

/// Wait until the queue holds `ready` tasks with `consumers` consumers on it: the headless run
/// has published and its consumers hold the rest. The broker has no event to await from
/// outside, so ask it again every 20 ms, within a deadline.
async fn wait_for_queue(url: &str, queue: &str, consumers: u32, ready: u32) {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    let conn =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.expect("connect");
    let deadline = Instant::now() + FIRST_FRAME;
    let mut last = None;
    while Instant::now() < deadline {
        // A passive declare fails (and closes the channel) until the run has declared the queue.
        let channel = conn.create_channel().await.expect("channel");
        let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        if let Ok(q) = channel.queue_declare(queue.into(), options, FieldTable::default()).await {
            last = Some((q.consumer_count(), q.message_count()));
            if last == Some((consumers, ready)) {
                return;
            }
            let _ = channel.close(200, "checked".into()).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("queue {queue} never had {consumers} consumers and {ready} ready tasks; last seen {last:?}");
}

/// Run headless against `url` (2 consumers that take 30 s a task, fair with prefetch 1: two
/// tasks in hand, the rest ready), signal it once the tasks are out, and return its exit code,
/// stdout and stderr.
async fn interrupt_headless(url: &str, args: &[&str], sig: libc::c_int) -> (Option<i32>, String, String) {
    let queue = common::unique_queue("signals");
    let mut argv = vec!["--url", url, "--queue", &queue, "--transient"];
    argv.extend_from_slice(&["--consumers", "2", "--delay", "30s", "--mode", "fair", "--prefetch", "1"]);
    argv.extend_from_slice(args);
    let child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren starts");
    wait_for_queue(url, &queue, 2, 8).await;
    // SAFETY: kill with our own child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
    let out = tokio::time::timeout(EXIT, tokio::task::spawn_blocking(move || child.wait_with_output()))
        .await
        .expect("warren exits after the signal")
        .expect("waiter")
        .expect("output");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_to_headless_prints_the_summary_with_what_was_in_flight() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker");
    let url = broker.url("guest", "guest");
    let (code, out, err) = interrupt_headless(&url, &["--headless", "--publish", "10"], libc::SIGINT).await;
    assert_eq!(code, Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("published 10  confirmed 10  processed 0  lost 0"), "{out}");
    assert!(out.contains("makespan unfinished (interrupted)"), "{out}");
    assert!(out.contains("interrupted by SIGINT: 10 tasks still in flight"), "{out}");
    assert_eq!(
        err.trim(),
        "warren: stopped by SIGINT: 0 of 10 published tasks processed, 0 lost, 10 still in flight"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_to_headless_json_say_interrupted() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker");
    let url = broker.url("guest", "guest");
    for (sig, name, code) in [(libc::SIGTERM, "SIGTERM", 143), (libc::SIGHUP, "SIGHUP", 129)] {
        let args = ["--headless", "--publish", "10", "--json"];
        let (got, out, err) = interrupt_headless(&url, &args, sig).await;
        assert_eq!(got, Some(code), "{name}: stdout:\n{out}\nstderr:\n{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(v["interrupted"], serde_json::json!({"signal": name, "in_flight": 10}), "{v}");
        assert_eq!((v["published"].as_u64(), v["timed_out"].as_bool()), (Some(10), Some(false)));
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_to_a_headless_lesson_prints_its_report() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker");
    let url = broker.url("guest", "guest");
    let dir = std::env::temp_dir().join(format!("warren-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let lesson = dir.join("slow.toml");
    let queue = common::unique_queue("signals-play");
    std::fs::write(
        &lesson,
        format!(
            "title = \"slow\"\nqueue = \"{queue}\"\nconsumers = [\"30s\", \"30s\"]\nmode = \"fair\"\n\
             prefetch = 1\n\n[[step]]\nat = \"0s\"\npublish = 10\ncaption = \"ten slow tasks\"\n"
        ),
    )
    .expect("write lesson");
    let child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["play", lesson.to_str().expect("utf-8 path"), "--url", &url, "--headless"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren starts");
    wait_for_queue(&url, &queue, 2, 8).await;
    // SAFETY: kill with our own child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let out = tokio::time::timeout(EXIT, tokio::task::spawn_blocking(move || child.wait_with_output()))
        .await
        .expect("warren exits after the signal")
        .expect("waiter")
        .expect("output");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("scenario: slow\n"), "{stdout}");
    assert!(stdout.contains("interrupted by SIGINT: 10 tasks still in flight"), "{stdout}");
    assert_eq!(stderr.trim(), "warren: stopped by SIGINT with 1 of 1 steps done: 10 tasks still in flight");
    let _ = std::fs::remove_dir_all(&dir);
    broker.stop().await;
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// `warren broker` on a free port: the process, its stdout from there on, and its listening line
/// (the lines before it, how many connections fit, are information only).
fn warren_broker(stderr: Stdio) -> (std::process::Child, Lines, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["broker", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("warren broker starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines
        .by_ref()
        .map(|l| l.expect("utf-8"))
        .find(|l| l.starts_with("warren broker listening on"))
        .expect("the listening line");
    (child, lines, first)
}

#[test]
fn sighup_and_sigquit_stop_warren_broker_cleanly() {
    for sig in [libc::SIGHUP, libc::SIGQUIT] {
        let (mut child, mut lines, first) = warren_broker(Stdio::piped());
        assert!(first.starts_with("warren broker listening on 127.0.0.1:"), "{first}");
        // SAFETY: kill with our own child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let last = lines.next().expect("a line after the signal").expect("utf-8");
        assert_eq!(last, "warren broker stopped", "after signal {sig}");
        let status = child.wait().expect("wait");
        assert!(status.success(), "warren broker exited with {status} after signal {sig}");
    }
}

/// The terminal comes back before the connections close, and a second signal does not wait for
/// them: with the broker frozen (SIGSTOP), closing would take the 5 s shutdown bound.
#[test]
fn the_terminal_is_restored_before_closing_and_a_second_signal_ends_at_once() {
    let (mut broker, _lines, first) = warren_broker(Stdio::null());
    let addr = first.split_whitespace().nth(4).expect("listening on ADDR").to_string();
    let url = format!("amqp://guest:guest@{addr}/%2f");
    let mut pty = InPty::spawn(&["--url", &url, "--transient", "--queue", "warren.test.signals.frozen"]);
    pty.read_until("first frame", |t| t.contains(ALT_ON) && t.contains("quit"));
    let freeze = |sig| {
        // SAFETY: kill with our own child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(broker.id() as libc::pid_t, sig) }, 0);
    };
    freeze(libc::SIGSTOP);
    pty.signal(libc::SIGINT);
    pty.read_until("leaving the alternate screen", |t| switched_off(t, ALT_ON, ALT_OFF));
    assert!(canonical_with_echo(&pty.termios()), "tty modes restored before the connections close");
    assert!(pty.child.try_wait().expect("try_wait").is_none(), "still closing its connections");
    let second = Instant::now();
    pty.signal(libc::SIGINT);
    let (status, _, _) = pty.wait();
    let took = second.elapsed();
    freeze(libc::SIGCONT);
    let _ = broker.kill();
    let _ = broker.wait();
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(took < Duration::from_secs(3), "the second signal took {took:?} to end warren");
}
