//! Child processes a test drives by what they print, as a user would watch them: `warren broker`
//! started as a user starts it, and independent clients (pika scripts, Celery's worker). Their
//! stdout and stderr arrive as lines in one channel; every wait has a timeout and, when it
//! fails, says what the process printed last and whether it exited, so a failure reads as what
//! went wrong rather than as a hang.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How many of the last lines a failed wait shows.
const TAIL: usize = 25;

/// A child process whose output lines are read as they come. Killed on drop (its whole process
/// group when it has one of its own), so a failing test leaves nothing running.
pub struct Watched {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    own_group: bool,
}

impl Watched {
    /// Start `cmd` with stdin closed and stdout and stderr read line by line.
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        Self::start(name, cmd, false)
    }

    /// The same, in a process group of its own, so that [`Watched::kill_group`] takes its
    /// children with it (a Celery worker's pool processes).
    pub fn spawn_group(name: &str, cmd: &mut Command) -> Self {
        cmd.process_group(0);
        Self::start(name, cmd, true)
    }

    fn start(name: &str, cmd: &mut Command, own_group: bool) -> Self {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        forward(out, tx.clone());
        forward(err, tx);
        Self { name: name.to_string(), child, lines, seen: Vec::new(), own_group }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line from now on for which `found` holds, waiting at most `wait`; otherwise
    /// why not: nothing came (or the process exited), with its last lines.
    pub fn wait_for(
        &mut self,
        what: &str,
        wait: Duration,
        found: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if found(&line) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no {what} within {wait:?}")));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(10));
                    let how = status.map_or_else(|e| e, |s| format!("exited with {s}"));
                    return Err(self.failure(&format!("no {what}: {} {how}", self.name)));
                }
            }
        }
    }

    /// Wait at most `wait` for a short-lived command to end: its exit status and every line
    /// it printed.
    pub fn finish(&mut self, wait: Duration) -> Result<(ExitStatus, Vec<String>), String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                // Both pipes are closed: the process has exited, or is about to.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("did not finish within {wait:?}")));
                }
            }
        }
        let status = self.wait_exit(Duration::from_secs(10)).map_err(|e| self.failure(&e))?;
        Ok((status, self.output()))
    }

    /// Every line so far, read or not.
    pub fn output(&mut self) -> Vec<String> {
        self.seen.extend(self.lines.try_iter());
        self.seen.clone()
    }

    /// `why`, then the process's last lines.
    pub fn failure(&mut self, why: &str) -> String {
        let all = self.output();
        let tail = &all[all.len().saturating_sub(TAIL)..];
        format!("{}: {why}; its last {} lines:\n  {}", self.name, tail.len(), tail.join("\n  "))
    }

    /// Send `signal` to the process itself (not its group).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill with our own child's pid and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}): {}", self.child.id(), std::io::Error::last_os_error());
    }

    /// SIGKILL the whole process group, as a machine losing power would, and reap the leader.
    pub fn kill_group(&mut self) {
        assert!(self.own_group, "{} was not started in a group of its own", self.name);
        // SAFETY: a negative pid signals the group this child leads (process_group(0) above).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// Its exit status, waiting at most `wait`.
    pub fn wait_exit(&mut self, wait: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + wait;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    // Polling a child's status: std has no wait with a timeout.
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return Err(format!("still running after {wait:?}")),
                Err(e) => return Err(format!("wait failed: {e}")),
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.own_group {
                // SAFETY: as in kill_group.
                unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
            } else {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

fn forward(from: impl std::io::Read + Send + 'static, tx: mpsc::Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// The broker prints its address at once; allow for a loaded CI machine.
const BROKER_STARTUP: Duration = Duration::from_secs(30);
const LISTENING: &str = "warren broker listening on ";

/// `warren broker` on a free loopback port, started as a user starts it.
pub struct WarrenBroker {
    process: Watched,
    pub addr: String,
}

impl WarrenBroker {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// `warren broker` with these flags besides --listen (e.g. --data-dir DIR).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut process = Watched::spawn(
            "warren broker",
            Command::new(env!("CARGO_BIN_EXE_warren"))
                .args(["broker", "--listen", "127.0.0.1:0"])
                .args(extra),
        );
        // A line on the open-files room comes first.
        let line = process
            .wait_for("listening line", BROKER_STARTUP, |l| l.starts_with(LISTENING))
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = line[LISTENING.len()..].split_whitespace().next().unwrap_or_default().to_string();
        assert!(
            !addr.is_empty() && !addr.ends_with(":0"),
            "the broker did not print the port it got: {line}"
        );
        Self { process, addr }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// SIGKILL, as a crash or a power cut would stop it, and reap it.
    pub fn kill(mut self) {
        self.process.signal(libc::SIGKILL);
        let _ = self.process.wait_exit(Duration::from_secs(10));
    }

    /// SIGTERM, then the broker must say it stopped and exit 0.
    pub fn terminate(mut self) {
        self.process.signal(libc::SIGTERM);
        let stopped = self
            .process
            .wait_for("`warren broker stopped`", Duration::from_secs(10), |l| l == "warren broker stopped");
        stopped.unwrap_or_else(|e| panic!("after SIGTERM: {e}"));
        let status = self.process.wait_exit(Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "warren broker exited with {status} after SIGTERM");
    }
}
