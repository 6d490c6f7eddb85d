//! `warren broker` under a low open-files limit (64, soft and hard, set in the child before
//! exec): it says how many connections fit, refuses the ones beyond with 530 and a readable
//! text instead of leaving them to time out, does not spin while full, and takes new clients
//! once connections close.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use tokio::net::TcpStream;
use warren::workload::connect::{reply_code, reply_text};

const NOFILE: libc::rlim_t = 64;
const ROOM: &str = "warren broker: room for ";
const LISTENING: &str = "warren broker listening on ";
const WAIT: Duration = Duration::from_secs(10);

/// `warren broker` as a child with RLIMIT_NOFILE 64:64; SIGKILLed on drop.
struct Broker {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

fn lines(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Broker {
    fn start() -> (Self, usize, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(["broker", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: NOFILE, rlim_max: NOFILE };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().expect("warren broker starts");
        let out = lines(child.stdout.take().expect("piped stdout"));
        let err = lines(child.stderr.take().expect("piped stderr"));
        let broker = Self { child, out, err };
        let room_line = broker.out.recv_timeout(WAIT).expect("a first line");
        let room: usize = room_line
            .strip_prefix(ROOM)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no room line first: {room_line:?}"));
        assert!(room_line.contains("open-files limit of 64"), "{room_line}");
        let listening = broker.out.recv_timeout(WAIT).expect("a listening line");
        let addr = listening
            .strip_prefix(LISTENING)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listening line: {listening:?}"))
            .to_string();
        (broker, room, format!("amqp://guest:guest@{addr}/%2f"))
    }

    /// CPU seconds (user + system) the broker has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("/proc/PID/stat");
        // Fields after the command name (which may hold spaces) start at state, field 3.
        let rest = &stat[stat.rfind(')').expect("comm ends with )") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }

    /// Every stderr line so far.
    fn errors(&self) -> Vec<String> {
        self.err.try_iter().collect()
    }

    fn terminate(mut self) {
        // SAFETY: kill only signals the child this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let line = self.out.recv_timeout(WAIT).expect("a line after SIGTERM");
        assert_eq!(line, "warren broker stopped");
        let status = self.child.wait().expect("exit status");
        assert!(status.success(), "{status}");
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

async fn connect(url: &str) -> Result<Connection, lapin::Error> {
    tokio::time::timeout(WAIT, Connection::connect(url, ConnectionProperties::default()))
        .await
        .expect("a connection attempt is answered, not left to time out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_refuses_with_530_backs_off_and_recovers() {
    let (broker, room, url) = Broker::start();
    assert!((30..=60).contains(&room), "room for {room} connections under 64 descriptors");

    // Fill every descriptor; the first connection that does not fit is refused, at once.
    let mut open = Vec::new();
    let refusal = loop {
        let t0 = Instant::now();
        match connect(&url).await {
            Ok(c) => open.push(c),
            Err(e) => break (e, t0.elapsed()),
        }
        assert!(open.len() <= room + 8, "{} connections under 64 descriptors", open.len());
    };
    let (err, took) = refusal;
    assert_eq!(reply_code(&err), Some(530), "{err}");
    let text = reply_text(&err);
    assert!(text.contains("out of file descriptors") && text.contains("open-files limit 64"), "{text}");
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    assert!(open.len() + 4 >= room, "only {} of the {room} connections announced fit", open.len());

    // warren itself, pointed at the full broker, says so in one line (not a vhost problem).
    let args = ["--headless", "--publish", "1", "--url", &url].map(String::from);
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_warren")).args(args).stdin(Stdio::null()).output()
    });
    let out =
        tokio::time::timeout(WAIT, run).await.expect("warren answers at once").unwrap().expect("warren runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", out.status);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("out of file descriptors") && !err.contains("vhost"), "{err}");

    // Clients that connect and never speak take the spare descriptors, and the ones beyond
    // wait in the backlog: accept fails with EMFILE over and over, and must not spin.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(url_addr(&url)).await.expect("TCP connect to the backlog"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu0, t0) = (broker.cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu, wall) = (broker.cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    eprintln!("broker CPU while full with 8 clients waiting: {cpu:.3} s in {wall:.3} s");
    assert!(cpu < 0.1 * wall, "the broker used {cpu:.2} s of CPU in {wall:.2} s while full");
    let said: Vec<String> = broker.errors();
    let short: Vec<&String> = said.iter().filter(|l| l.contains("out of file descriptors")).collect();
    assert_eq!(short.len(), 1, "said once while full: {said:?}");
    assert!(short[0].contains("open-files limit 64"), "{}", short[0]);

    // Free some descriptors: a new client gets in.
    drop(silent);
    for c in open.drain(..4) {
        c.close(200, "bye".into()).await.expect("close");
    }
    // The broker lets go of a closed connection's socket just after the client hears
    // close-ok, so the first tries may still be refused (at once): retry for a while.
    let deadline = Instant::now() + WAIT;
    let again = loop {
        match connect(&url).await {
            Ok(c) => break c,
            Err(e) if reply_code(&e) == Some(530) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                panic!("no new client once descriptors are free: {e}; the broker said {:?}", broker.errors())
            }
        }
    };
    let channel = again.create_channel().await.expect("and opens a channel");
    channel.close(200, "bye".into()).await.expect("close channel");
    again.close(200, "bye".into()).await.expect("close");
    for c in open {
        let _ = c.close(200, "bye".into()).await;
    }
    let said = broker.errors();
    assert!(said.iter().any(|l| l.contains("free again")), "said it recovered: {said:?}");
    broker.terminate();
}

fn url_addr(url: &str) -> String {
    url.trim_start_matches("amqp://guest:guest@").trim_end_matches("/%2f").to_string()
}
