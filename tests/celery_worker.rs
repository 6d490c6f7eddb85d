//! Celery's default worker (the versions pinned in tests/celery/requirements.txt), with no
//! option that turns anything off (gossip, mingle, heartbeats and remote control all on), on
//! `warren broker` started as a user starts it, and on RabbitMQ (`WARREN_TEST_AMQP_URL`): the
//! same steps and checks on both.
//!
//! 1. The worker starts (`celery@... ready.`); on the way it declares its pidbox, gossip and
//!    mingle reply queues with `x-expires` and `x-message-ttl`, and sets a global prefetch.
//! 2. `celery call` publishes an `acks_late` task (tests/celery/tasks.py); the worker takes it
//!    (`redelivered=False`) and the test SIGKILLs the worker and its pool processes mid-task.
//! 3. A second worker starts; the broker has requeued the unacked task, which comes back
//!    `redelivered=True` and succeeds.
//! 4. `celery inspect ping` gets the second worker's `pong`; SIGTERM stops it cleanly.
//!
//! Skipped with a note when Celery is not installed, unless WARREN_REQUIRE_CELERY=1 (as in CI),
//! where that is a failure: `python3 -m pip install -r tests/celery/requirements.txt`.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{WarrenBroker, Watched};

const TASKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/celery");
/// A worker's start: Python's imports, the connection, mingle's one-second wait for neighbours,
/// on a loaded CI machine.
const READY: Duration = Duration::from_secs(90);
/// A task's way from `celery call` to a worker, a command-line tool's whole run.
const STEP: Duration = Duration::from_secs(60);

/// Whether `python3 -c "import celery"` works; what went wrong when not.
fn celery_available() -> Result<(), String> {
    let out = Command::new("python3").args(["-c", "import celery"]).output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("").to_string()),
        Err(e) => Err(format!("python3 does not run: {e}")),
    }
}

/// False (with a note) when the test must be skipped; panics when CI requires Celery.
fn celery_usable(test: &str) -> bool {
    let Err(why) = celery_available() else { return true };
    if std::env::var("WARREN_REQUIRE_CELERY").is_ok_and(|v| v == "1") {
        panic!(
            "WARREN_REQUIRE_CELERY=1 but Celery is not usable ({why}): \
             python3 -m pip install -r tests/celery/requirements.txt"
        );
    }
    common::skipped(&format!(
        "SKIPPED {test}: Celery is not installed \
         (python3 -m pip install -r tests/celery/requirements.txt) — {why}"
    ));
    false
}

/// One run of the steps against one broker: its URL, the task queue and the names it uses.
struct Run {
    url: String,
    queue: String,
}

impl Run {
    fn new(url: String) -> Self {
        Self { url, queue: common::unique_queue("celery") }
    }

    /// `python3 -m celery -A tasks ARGS`, on this run's broker and queue.
    fn celery(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "celery", "-A", "tasks"])
            .args(args)
            .current_dir(TASKS_DIR)
            .env("PYTHONPATH", TASKS_DIR)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("WARREN_CELERY_BROKER", &self.url)
            .env("WARREN_CELERY_QUEUE", &self.queue);
        cmd
    }

    /// A worker node's name, unique to this run.
    fn node(&self, which: &str) -> String {
        format!("{which}.{}@warren-test", self.queue)
    }

    /// A default worker, once it says it is ready.
    fn worker(&self, node: &str) -> Result<Watched, String> {
        let mut cmd = self.celery(&["worker", "--loglevel=INFO", "--hostname", node]);
        let mut worker = Watched::spawn_group(&format!("celery worker {node}"), &mut cmd);
        let ready = format!("{node} ready.");
        if let Err(e) = worker.wait_for(&format!("`{ready}` line"), READY, |l| l.contains(&ready)) {
            // Celery's own one-line reason first (e.g. the broker refused a declare), then the rest.
            let fatal = worker.output().into_iter().find(|l| l.contains("Unrecoverable error"));
            return Err(fatal.map_or(e.clone(), |fatal| format!("{}\n{e}", fatal.trim())));
        }
        Ok(worker)
    }

    /// A command-line tool's run to its end: what it printed, or why it failed.
    fn cli(&self, args: &[&str]) -> Result<Vec<String>, String> {
        let name = format!("celery {}", args[0]);
        let mut tool = Watched::spawn(&name, &mut self.celery(args));
        let (status, lines) = tool.finish(STEP)?;
        if !status.success() {
            return Err(tool.failure(&format!("exited with {status}")));
        }
        Ok(lines)
    }

    /// The steps in the module's doc, each failure saying which step and what was seen.
    fn default_worker(&self) -> Result<(), String> {
        let (first, second) = (self.node("a"), self.node("b"));
        let mut worker = self.worker(&first)?;

        let token = &self.queue;
        let args = format!("[\"{token}\"]");
        let called = self.cli(&["call", "tasks.survive_kill", "--args", &args])?;
        let id = called
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| l.len() == 36 && l.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
            .ok_or_else(|| format!("`celery call` printed no task id: {called:?}"))?
            .to_string();
        let started = format!("warren-celery: {token} started, redelivered=");
        let line = worker.wait_for("task start", STEP, |l| l.contains(&started))?;
        if !line.ends_with("redelivered=False") {
            return Err(worker.failure(&format!("the first delivery was not a fresh one: {line}")));
        }
        // Mid-task, with the message unacked (acks_late): the worker and its pool die at once.
        worker.kill_group();

        let mut worker = self.worker(&second)?;
        let line = worker.wait_for("redelivery of the killed task", STEP, |l| l.contains(&started))?;
        if !line.ends_with("redelivered=True") {
            return Err(worker.failure(&format!("the task came back without redelivered: {line}")));
        }
        let succeeded = format!("Task tasks.survive_kill[{id}] succeeded");
        worker.wait_for("success of the redelivered task", STEP, |l| l.contains(&succeeded))?;

        let pong = self.cli(&["inspect", "ping", "--destination", &second, "--timeout", "30"])?;
        let ok = format!("{second}: OK");
        let answered = pong.iter().any(|l| l.starts_with("->") && l.trim_end().ends_with(&ok));
        if !answered || !pong.iter().any(|l| l.trim() == "pong") {
            return Err(format!("`celery inspect ping` got no pong from {second}: {pong:?}"));
        }

        // A warm shutdown: nothing is running, so it ends at once.
        worker.signal(libc::SIGTERM);
        let status = worker.finish(STEP)?.0;
        if !status.success() {
            return Err(worker.failure(&format!("exited with {status} after SIGTERM")));
        }
        Ok(())
    }
}

#[test]
fn celery_default_worker_on_warren_broker() {
    if !celery_usable("celery_default_worker_on_warren_broker") {
        return;
    }
    let broker = WarrenBroker::start();
    let run = Run::new(broker.url());
    if let Err(e) = run.default_worker() {
        panic!("Celery's default worker on the embedded warren broker (`warren broker`): {e}");
    }
    broker.terminate();
}

#[test]
fn celery_default_worker_on_rabbitmq() {
    let test = "celery_default_worker_on_rabbitmq";
    if !celery_usable(test) {
        return;
    }
    let Some(url) = common::broker_url(test) else { return };
    let run = Run::new(url);
    let outcome = run.default_worker();
    // The task queue and its exchange (Celery names it after the queue) are durable: remove them.
    let rt = tokio::runtime::Runtime::new().expect("a runtime for the clean-up");
    rt.block_on(async {
        common::delete_queue(&run.url, &run.queue).await;
        common::delete_exchange(&run.url, &run.queue).await;
    });
    if let Err(e) = outcome {
        panic!("Celery's default worker on RabbitMQ at {}: {e}", run.url);
    }
}
