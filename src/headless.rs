//! The same run without a terminal: start the consumers, publish N tasks, wait until every one
//! is processed, print a summary table or one JSON object. [`Driver`] is also what the
//! integration tests use to steer a real workload step by step.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::app::{Action, App, AppOptions, Batch, ConsumerStatus, Event, LossReason, Mode, Msg};
use crate::cli::Config;
use crate::endpoint::Endpoint;
use crate::signal::{Signal, Signals};
use crate::units;
use crate::workload::{EVENT_CAPACITY, Engine, StartNotes, WorkloadConfig};

mod exits;
pub use exits::DeadLetter;

/// An App wired to a running workload, without a terminal.
pub struct Driver {
    pub app: App,
    pub notes: StartNotes,
    endpoint: Endpoint,
    engine: Engine,
    events: mpsc::Receiver<Vec<Event>>,
    /// Received but not yet applied, newest first (so `pop` takes the oldest).
    buf: Vec<Event>,
    batches: Vec<Vec<Event>>,
    /// The queue is durable and the tasks persistent (what a broker restart keeps).
    durable: bool,
}

impl Driver {
    /// Connect and start the consumers; returns once every consumer is registered (or failed
    /// to, in which case it keeps retrying on its own).
    pub async fn start(cfg: &Config, keep_history: bool) -> Result<Self, String> {
        let endpoint = Endpoint::resolve(&cfg.target).await?;
        let (tx, events) = mpsc::channel(EVENT_CAPACITY);
        let (engine, info, notes) = match Engine::start(workload_config(cfg, &endpoint), tx).await {
            Ok(started) => started,
            Err(e) => {
                endpoint.stop().await;
                return Err(e);
            }
        };
        let now = Instant::now();
        let mut app = App::new(app_options(cfg, keep_history), now);
        app.update(Msg::Event(Event::Connected(info)), now);
        let mut driver = Driver {
            app,
            notes,
            endpoint,
            engine,
            events,
            buf: Vec::with_capacity(1024),
            batches: Vec::new(),
            durable: cfg.durable,
        };
        driver
            .wait_until(Duration::from_secs(30), |app| {
                app.consumers.iter().all(|c| c.status != ConsumerStatus::Starting)
            })
            .await;
        Ok(driver)
    }

    /// Hand a command to the workload (a broker restart is done here: the driver owns it).
    pub async fn send(&mut self, cmd: crate::app::Command) {
        match cmd {
            crate::app::Command::RestartBroker => {
                restart_broker(&mut self.endpoint, &mut self.app, self.durable).await;
            }
            cmd => self.engine.send(cmd),
        }
    }

    /// Apply an action as if the user pressed its key.
    pub fn act(&mut self, action: Action) {
        if let Some(cmd) = self.app.update(Msg::Action(action), Instant::now()) {
            self.engine.send(cmd);
        }
    }

    /// Publish a batch of `count` tasks.
    pub fn publish(&mut self, count: u32) {
        let cmd = self.app.start_batch(count, Instant::now());
        self.engine.send(cmd);
    }

    /// Feed events to the app until `done(&app)` holds; false on timeout. Checks after every
    /// event, so the caller sees the exact state in which the condition first became true.
    pub async fn wait_until(&mut self, timeout: Duration, done: impl Fn(&App) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.app.update(Msg::Tick, Instant::now());
            if done(&self.app) {
                return true;
            }
            if let Some(ev) = self.buf.pop() {
                self.app.update(Msg::Event(ev), Instant::now());
                continue;
            }
            let got = tokio::select! {
                n = self.events.recv_many(&mut self.batches, 64) => n,
                () = tokio::time::sleep_until(deadline) => return done(&self.app),
                // Wake now and then so time-based state (per-second meters) moves on.
                () = tokio::time::sleep(Duration::from_millis(250)) => continue,
            };
            if got == 0 {
                return done(&self.app);
            }
            self.buf.extend(self.batches.drain(..).flatten());
            // Arrival order; pop() takes from the back, so reverse.
            self.buf.reverse();
        }
    }

    /// [`Driver::start`], printing the one-line error for the CLI.
    pub async fn start_or_report(cfg: &Config, keep_history: bool) -> Option<Self> {
        match Driver::start(cfg, keep_history).await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("warren: {e}");
                None
            }
        }
    }

    pub async fn shutdown(self) {
        drop(self.events);
        self.engine.shutdown().await;
        self.endpoint.stop().await;
    }
}

/// Restart the embedded broker (`B`, a lesson's `restart_broker` step) and tell the app how
/// it went; the workload's actors see their connections drop and reconnect by themselves.
pub async fn restart_broker(endpoint: &mut Endpoint, app: &mut App, durable: bool) {
    let event = match endpoint.restart().await {
        Ok(()) => Event::BrokerRestarted { durable },
        Err(e) => Event::Error(e),
    };
    app.update(Msg::Event(event), Instant::now());
}

pub fn workload_config(cfg: &Config, endpoint: &Endpoint) -> WorkloadConfig {
    WorkloadConfig {
        uri: endpoint.uri.clone(),
        queue: cfg.queue.clone(),
        durable: cfg.durable,
        delays: cfg.delays.clone(),
        dispatch: cfg.dispatch,
        policy: cfg.policy.clone(),
        priorities: cfg.priorities.clone(),
        single_active: cfg.single_active,
    }
}

pub fn app_options(cfg: &Config, keep_history: bool) -> AppOptions {
    AppOptions {
        queue: cfg.queue.clone(),
        delays: cfg.delays.clone(),
        dispatch: cfg.dispatch,
        burst: cfg.burst,
        rate: cfg.rate,
        keep_history,
        policy: cfg.policy.clone(),
        priorities: cfg.priorities.clone(),
        single_active: cfg.single_active,
    }
}

/// The JSON document `--headless --json` prints (and `play --headless --json`, which adds to
/// it); field names are a public interface, described in the README's Headless section.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub broker: BrokerSummary,
    pub mode: Mode,
    pub prefetch: u16,
    pub published: u64,
    pub confirmed: u64,
    pub processed: u64,
    pub lost: u64,
    /// Why tasks were lost, e.g. {"consumer killed under auto-ack": 3}.
    pub lost_reasons: std::collections::BTreeMap<String, u64>,
    pub redelivered: u64,
    /// Dead-lettered by the broker (seen in `<queue>.dead`), by the reason in `x-death`, and
    /// each (the first 1000) with its reason: {"id":3,"reason":"delivery_limit"}.
    pub dead: u64,
    pub dead_reasons: std::collections::BTreeMap<String, u64>,
    pub dead_letters: Vec<DeadLetter>,
    /// Refused at publish (basic.nack: a full queue with overflow reject-publish), and which.
    pub refused: u64,
    pub refused_ids: Vec<u64>,
    /// From the first batch's publish to the last task settled (processed or lost), across
    /// all batches; `null` while a batch is unfinished (a timed-out run).
    pub makespan_ms: Option<u64>,
    /// The run gave up at `--timeout`: what follows is what it saw until then.
    pub timed_out: bool,
    /// A signal ended the run early: which, and how much was unsettled. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
    pub consumers: Vec<ConsumerSummary>,
    pub batches: Vec<BatchSummary>,
}

/// `{"signal":"SIGINT","in_flight":8}`
#[derive(Debug, Clone, Serialize)]
pub struct Interrupted {
    pub signal: String,
    /// Published but neither processed nor lost yet: in the queue or in a consumer's hands.
    pub in_flight: u64,
}

impl Interrupted {
    pub fn new(signal: Signal, s: &Summary) -> Self {
        Interrupted {
            signal: signal.to_string(),
            in_flight: s.published.saturating_sub(s.processed + s.lost + s.dead + s.refused),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokerSummary {
    pub product: String,
    pub version: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerSummary {
    pub name: String,
    pub delay_ms: u64,
    pub processed: u64,
    pub tasks: Vec<u64>,
}

/// One batch (tasks published together): what became of its tasks.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub id: u64,
    pub mode: Mode,
    pub prefetch: u16,
    pub published: u64,
    pub processed: u64,
    /// Tasks of this batch never processed (killed under auto-ack, vanished, not published).
    pub lost: u64,
    /// Tasks of this batch dead-lettered, and refused at publish.
    pub dead: u64,
    pub refused: u64,
    /// Which, in the order seen (empty unless the queue's policy can take tasks out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<DeadLetter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_ids: Vec<u64>,
    /// From its publish to its last task settled; `null` while unfinished.
    pub makespan_ms: Option<u64>,
    /// Its processed tasks per consumer: those live when it was published, in consumer order,
    /// then any that joined and took some.
    pub split: Vec<Share>,
    /// `play` adds what RabbitMQ's rules predict for it.
    #[serde(flatten)]
    pub theory: Option<Theory>,
}

/// `{"consumer":"C1","processed":4}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    pub consumer: String,
    pub processed: u64,
}

/// What the theory model predicts for a batch, from where things stood at its publish.
#[derive(Debug, Clone, Serialize)]
pub struct Theory {
    pub predicted: Vec<Share>,
    pub predicted_makespan_ms: u64,
    /// Under a queue policy that takes tasks out: which the rules dead-letter (and why), which
    /// they refuse at publish, and how many deliveries the batch's tasks get in all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub predicted_dead: Vec<DeadLetter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub predicted_refused: Vec<u64>,
    pub predicted_deliveries: u64,
    /// What happened during the batch that the model does not follow (a kill, a new consumer,
    /// a delay change): the prediction is then no yardstick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_modelled: Option<String>,
}

impl BatchSummary {
    pub fn of(b: &Batch) -> Self {
        let mut ids: Vec<usize> = b.consumers.iter().map(|(id, _)| *id).collect();
        let joined: Vec<usize> =
            (0..b.done_by.len()).filter(|id| b.done_by[*id] > 0 && !ids.contains(id)).collect();
        ids.extend(joined);
        let split = ids
            .iter()
            .map(|id| Share {
                consumer: format!("C{}", id + 1),
                processed: u64::from(b.done_by.get(*id).copied().unwrap_or(0)),
            })
            .collect();
        BatchSummary {
            id: b.id,
            mode: b.dispatch.mode,
            prefetch: b.dispatch.prefetch,
            published: b.ids.map_or(0, |(first, last)| last - first + 1),
            processed: b.done_by.iter().map(|&n| u64::from(n)).sum(),
            lost: u64::from(b.lost),
            dead: u64::from(b.dead),
            refused: u64::from(b.refused),
            dead_letters: Vec::new(),
            refused_ids: Vec::new(),
            makespan_ms: b.makespan().map(units::ms),
            split,
            theory: None,
        }
    }

    /// `#2   10 tasks rr/1  took 45.0s  C1 4  C2 0  C3 3  lost 3`
    fn line(&self) -> String {
        let took =
            self.makespan_ms.map_or("unfinished".to_string(), |ms| format!("took {}", units::millis(ms)));
        let split: Vec<String> =
            self.split.iter().map(|s| format!("{} {}", s.consumer, s.processed)).collect();
        let mut lost = if self.lost > 0 { format!("  lost {}", self.lost) } else { String::new() };
        if self.dead > 0 {
            lost.push_str(&format!("  dead {}", self.dead));
        }
        if self.refused > 0 {
            lost.push_str(&format!("  refused {}", self.refused));
        }
        format!(
            "#{:<3} {:>5} tasks {:<7} {:<17} {}{lost}",
            self.id,
            self.published,
            crate::app::Dispatch { mode: self.mode, prefetch: self.prefetch }.short_label(),
            took,
            split.join("  ")
        )
    }
}

/// From the first batch's publish to the last one's end, if every batch finished.
fn makespan(batches: &[Batch]) -> Option<Duration> {
    let start = batches.iter().map(|b| b.started).min()?;
    let end = batches.iter().map(|b| b.finished).collect::<Option<Vec<_>>>()?.into_iter().max()?;
    Some(end.saturating_duration_since(start))
}

impl Summary {
    pub fn of(app: &App, timed_out: bool) -> Self {
        let t = app.ledger.totals();
        let broker = app.broker.clone().map_or(
            BrokerSummary { product: "unknown".into(), version: "unknown".into(), endpoint: String::new() },
            |b| BrokerSummary { endpoint: b.endpoint(), product: b.product, version: b.version },
        );
        Summary {
            broker,
            mode: app.applied.mode,
            prefetch: app.applied.prefetch,
            published: t.published,
            confirmed: app.producer.confirmed,
            processed: t.done,
            lost: t.lost,
            lost_reasons: app
                .ledger
                .lost_by_reason()
                .iter()
                .map(|(reason, n)| (reason.describe().to_string(), *n))
                .collect(),
            redelivered: t.redelivered,
            dead: t.dead,
            dead_reasons: app.dead_reasons(),
            dead_letters: exits::dead_letters(app, |_| true),
            refused: t.refused,
            refused_ids: exits::refused_ids(app, |_| true),
            makespan_ms: makespan(&app.batches).map(units::ms),
            timed_out,
            interrupted: None,
            consumers: app
                .consumers
                .iter()
                .map(|c| ConsumerSummary {
                    name: c.name(),
                    delay_ms: units::ms(c.delay),
                    processed: c.processed.total(),
                    tasks: c.history.clone().unwrap_or_default(),
                })
                .collect(),
            batches: app.batches.iter().map(|b| BatchSummary::of(b).with_exits(b, app)).collect(),
        }
    }

    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mode = match self.mode {
            Mode::RoundRobin => "round-robin (auto-ack)".to_string(),
            Mode::Fair if self.prefetch == 0 => "fair (manual ack, prefetch unlimited)".to_string(),
            Mode::Fair => format!("fair (manual ack, prefetch {})", self.prefetch),
        };
        let broker = if self.broker.product == crate::broker::PRODUCT {
            format!("embedded warren broker at {}", self.broker.endpoint)
        } else {
            format!("{} {} at {}", self.broker.product, self.broker.version, self.broker.endpoint)
        };
        let _ = writeln!(out, "{broker} · {mode}");
        let makespan = match (self.makespan_ms, self.timed_out) {
            (Some(ms), _) => units::millis(ms),
            (None, _) if self.interrupted.is_some() => "unfinished (interrupted)".to_string(),
            (None, true) => "unfinished (timed out)".to_string(),
            (None, false) => "unfinished".to_string(),
        };
        let _ = writeln!(
            out,
            "published {}  confirmed {}  processed {}  lost {}  redelivered {}  makespan {makespan}",
            self.published, self.confirmed, self.processed, self.lost, self.redelivered,
        );
        for (reason, n) in &self.lost_reasons {
            let _ = writeln!(out, "  lost {n}: {reason}");
        }
        out.push_str(&self.exits_lines());
        if let Some(i) = &self.interrupted {
            let _ = writeln!(
                out,
                "interrupted by {}: {} tasks still in flight (published, not yet processed)",
                i.signal, i.in_flight
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<8} {:>8} {:>9} {:>6}  tasks", "consumer", "delay", "processed", "share");
        let total = self.processed.max(1);
        for c in &self.consumers {
            let shown: Vec<String> = c.tasks.iter().take(24).map(|id| format!("#{id}")).collect();
            let more =
                if c.tasks.len() > 24 { format!(" … (+{})", c.tasks.len() - 24) } else { String::new() };
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:>9} {:>5}%  {}{}",
                c.name,
                units::millis(c.delay_ms),
                c.processed,
                c.processed * 100 / total,
                shown.join(" "),
                more
            );
        }
        if !self.batches.is_empty() {
            let _ = writeln!(out, "\nbatches");
            for b in &self.batches {
                let _ = writeln!(out, "  {}", b.line());
            }
        }
        out
    }
}

/// Process exit codes of a headless run.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_TIMEOUT: u8 = 2;
// A signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) exits with 128 + its number: see Signal::exit_code.

/// A signal arrived while connecting: nothing ran, so there is no summary, only its exit code.
pub fn interrupted_early(s: Signal) -> u8 {
    eprintln!("warren: stopped by {s} while connecting: nothing was published");
    s.exit_code()
}

/// Print the summary of a run a signal cut short, then close its connections (a second signal
/// ends at once: the summary is out already). Returns the signal's exit code.
pub async fn report_interrupted(
    driver: Driver,
    mut summary: Summary,
    json_out: bool,
    s: Signal,
    signals: Signals,
) -> u8 {
    let interrupted = Interrupted::new(s, &summary);
    eprintln!(
        "warren: stopped by {s}: {} of {} published tasks processed, {} lost, {} still in flight",
        summary.processed, summary.published, summary.lost, interrupted.in_flight
    );
    summary.interrupted = Some(interrupted);
    if json_out {
        crate::out::line(serde_json::to_string(&summary).expect("summary serialises"));
    } else {
        crate::out::text(&summary.table());
    }
    signals.exit_on_next(s);
    driver.shutdown().await;
    s.exit_code()
}

/// `warren --headless`: returns the exit code: 0 when every task was processed, 1 on an error
/// or when tasks were lost, 2 on timeout, 128 + n on signal n (summary printed first).
pub async fn run(cfg: Config) -> u8 {
    let h = cfg.headless.clone().expect("headless config");
    let started = Instant::now();
    let mut signals = Signals::new();
    let start = tokio::select! {
        d = Driver::start_or_report(&cfg, true) => d,
        s = signals.recv() => return interrupted_early(s),
    };
    let Some(mut driver) = start else { return EXIT_ERROR };
    if driver.notes.purged > 0 {
        eprintln!("warren: purged {} leftover messages from '{}'", driver.notes.purged, cfg.queue);
    }
    driver.publish(h.publish);
    let want = u64::from(h.publish);
    let remaining = h.timeout.saturating_sub(started.elapsed());
    let done = driver.wait_until(remaining, |app| {
        let t = app.ledger.totals();
        // Everything published and settled, and every publish answered: confirmed, refused,
        // or its confirm lost with a connection.
        let failed = app.ledger.lost_by_reason().get(&LossReason::PublishFailed).copied().unwrap_or(0);
        let answered = app.producer.confirmed + app.producer.unconfirmed + failed + t.refused;
        t.published == want && app.settled() && answered >= want
    });
    let finished = tokio::select! {
        finished = done => finished,
        s = signals.recv() => {
            let summary = Summary::of(&driver.app, false);
            return report_interrupted(driver, summary, h.json, s, signals).await;
        }
    };
    let summary = Summary::of(&driver.app, !finished);
    driver.shutdown().await;
    if h.json {
        crate::out::line(serde_json::to_string(&summary).expect("summary serialises"));
    } else {
        crate::out::text(&summary.table());
    }
    if finished && summary.lost > 0 {
        eprintln!(
            "warren: {} of {} tasks were lost, not processed (the summary says why; see the ledger in the TUI)",
            summary.lost, h.publish
        );
        EXIT_ERROR
    } else if finished {
        EXIT_OK
    } else {
        let t = summary.processed + summary.lost + summary.dead + summary.refused;
        eprintln!(
            "warren: timed out after {}: {t} of {} tasks processed, lost, dead-lettered or refused, {} published, {} confirmed \
             (raise --timeout, or check the consumers' delays)",
            units::duration(h.timeout),
            h.publish,
            summary.published,
            summary.confirmed
        );
        EXIT_TIMEOUT
    }
}
