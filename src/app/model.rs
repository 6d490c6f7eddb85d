//! The state the screen shows: consumers, batches, the producer, banners and the lesson line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stats::{Meter, Trail};
use super::{BatchId, ConsumerId, Dispatch, LossReason, Role, TaskId, theory};

/// How many processed ids each consumer pane remembers for its trail.
const TRAIL_LEN: usize = 48;
/// How many lost ids each consumer remembers to show.
pub const LOST_KEPT: usize = 16;
/// Dead-lettered and refused tasks remembered by id (the screen shows the last few; a report
/// lists them all up to this many).
pub const EXITS_KEPT: usize = 1000;
/// How many task runs each consumer remembers for the timeline (the oldest are dropped).
pub const SPANS_KEPT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    /// Connecting and registering at the broker.
    Starting,
    /// Registered and taking work (idle or working: see `current`).
    Consuming,
    /// Cancelled to re-register with new dispatch settings.
    Switching,
    Reconnecting,
    /// Removed by the user: no new work, finishing or returning what it holds.
    Leaving,
    /// Killed: crashed without acking.
    Crashed,
    /// Left gracefully; kept only for the distribution chart.
    Removed,
}

/// The task a consumer is working on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Working {
    pub id: TaskId,
    /// It was handed out before (requeued, then redelivered here): drawn `↻#k`.
    pub again: bool,
    pub since: Instant,
    pub delay: Duration,
    /// Since when the demo is paused: progress stands still at this instant.
    pub frozen: Option<Instant>,
}

/// How a task's run on a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanEnd {
    Running,
    Done,
    /// Went back to the broker (nacked, or the channel closed with it unacked).
    Requeued,
    Lost,
}

/// One task's run on one consumer, for the timeline: from `Started` until it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpan {
    pub id: TaskId,
    pub start: Instant,
    /// `None` while it runs.
    pub end: Option<Instant>,
    pub outcome: SpanEnd,
}

/// Where a consumer lane comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// One of warren's simulated consumers: warren runs it and knows everything it does.
    Own,
    /// A client warren did not start, seen at warren's embedded broker through its observation
    /// stream: `label` from its client properties (connection name, or product and version),
    /// `peer` its address.
    External { label: String, peer: String },
    /// A consumer RabbitMQ's management API lists on the task queue: only what the API gives,
    /// at its sampling interval.
    Listed { label: String, peer: String },
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub id: ConsumerId,
    pub origin: Origin,
    pub delay: Duration,
    /// Its `x-priority` (0, RabbitMQ's default, unless given).
    pub priority: i32,
    /// Active or standing by, on a single-active-consumer queue.
    pub role: Option<Role>,
    pub status: ConsumerStatus,
    pub status_note: Option<String>,
    pub received: u64,
    pub redelivered: u64,
    pub processed: Meter,
    pub acked: u64,
    pub lost: u64,
    pub working: Option<Working>,
    pub trail: Trail<TaskId>,
    /// Of the ids in `trail`, those that came here redelivered.
    pub trail_again: Trail<TaskId>,
    /// The last tasks lost here, and why the last of them was lost.
    pub lost_ids: Trail<TaskId>,
    pub last_loss: Option<LossReason>,
    /// What ran here when, oldest first; at most [`SPANS_KEPT`], only the last can be running.
    pub spans: VecDeque<RunSpan>,
    /// Every processed id in order; kept only when asked (headless), as it grows without bound.
    pub history: Option<Vec<TaskId>>,
    /// Its actor reported its end (ConsumerGone): a crashed one can start again.
    pub(super) ended: bool,
}

impl Consumer {
    pub fn new(id: ConsumerId, delay: Duration, keep_history: bool) -> Self {
        Self {
            id,
            origin: Origin::Own,
            delay,
            priority: 0,
            role: None,
            status: ConsumerStatus::Starting,
            status_note: None,
            received: 0,
            redelivered: 0,
            processed: Meter::default(),
            acked: 0,
            lost: 0,
            working: None,
            trail: Trail::new(TRAIL_LEN),
            trail_again: Trail::new(TRAIL_LEN),
            lost_ids: Trail::new(LOST_KEPT),
            last_loss: None,
            spans: VecDeque::new(),
            history: keep_history.then(Vec::new),
            ended: false,
        }
    }

    pub fn name(&self) -> String {
        format!("C{}", self.id + 1)
    }

    /// Still shown as a pane (removed consumers only stay in the distribution chart).
    pub fn visible(&self) -> bool {
        self.status != ConsumerStatus::Removed
    }

    /// Crashed and not restarted: its pane can be removed (`x`) or it can start again (`s`).
    pub fn crashed(&self) -> bool {
        self.status == ConsumerStatus::Crashed
    }

    /// Crashed, and its end reported: `s` can start it again now.
    pub fn restartable(&self) -> bool {
        self.crashed() && self.ended
    }

    /// Can still be told to do things (not crashed, not gone, not already leaving).
    pub fn alive(&self) -> bool {
        !matches!(self.status, ConsumerStatus::Crashed | ConsumerStatus::Removed | ConsumerStatus::Leaving)
    }

    /// A task starts here: a new running span (a still-running one ends now, as the consumer
    /// moved on without saying how it ended).
    pub(super) fn span_started(&mut self, id: TaskId, now: Instant) {
        if let Some(open) = self.spans.back().filter(|s| s.end.is_none()).map(|s| s.id) {
            self.span_ended(&[open], SpanEnd::Done, now);
        }
        if self.spans.len() >= SPANS_KEPT {
            self.spans.pop_front();
        }
        self.spans.push_back(RunSpan { id, start: now, end: None, outcome: SpanEnd::Running });
    }

    /// The running span ends as `outcome`, if it runs one of `ids`.
    pub(super) fn span_ended(&mut self, ids: &[TaskId], outcome: SpanEnd, now: Instant) {
        if let Some(s) = self.spans.back_mut()
            && s.end.is_none()
            && ids.contains(&s.id)
        {
            s.end = Some(now);
            s.outcome = outcome;
        }
    }

    /// Fraction of the current task done, for the progress bar.
    pub fn progress(&self, now: Instant) -> Option<f64> {
        let w = self.working?;
        if w.delay.is_zero() {
            return Some(1.0);
        }
        let now = w.frozen.unwrap_or(now);
        Some((now.saturating_duration_since(w.since).as_secs_f64() / w.delay.as_secs_f64()).min(1.0))
    }
}

/// Tasks published together, and how long until all were processed.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: BatchId,
    pub size: u32,
    pub dispatch: Dispatch,
    pub started: Instant,
    pub outstanding: u32,
    /// Tasks of this batch that settled as lost (never processed): a finished batch with
    /// losses is not a success, and every report says so.
    pub lost: u32,
    /// Tasks of this batch the broker dead-lettered or refused at publish: they left
    /// otherwise than by being done, as the queue's policy says they may.
    pub dead: u32,
    pub refused: u32,
    pub finished: Option<Instant>,
    /// The first and last task id published so far for this batch.
    pub ids: Option<(TaskId, TaskId)>,
    /// Tasks of this batch each consumer processed, by consumer id.
    pub done_by: Vec<u32>,
    /// The task weights (repeating) and the live consumers' (id, delay) when it was
    /// published: what the theory model needs to predict it.
    pub weights: Vec<f64>,
    pub consumers: Vec<(ConsumerId, Duration)>,
    /// Where things stood when it was published (`consumers` in the same order); None = idle.
    pub start: Option<theory::State>,
    /// Dispatch switches asked for while it ran, in order.
    pub switches: Vec<theory::Switch>,
    /// What the queue's policy lets take its tasks out (poison, cap, TTL), for the model.
    pub exits: theory::Exits,
    /// Consumers killed while it ran (indices into `consumers`), in order.
    pub kills: Vec<theory::Kill>,
    /// One line on a split a switch made surprising (a consumer that re-subscribed first took
    /// the ready tasks at once).
    pub note: Option<String>,
    /// What happened during it that the theory model does not follow (a consumer killed,
    /// removed, added, restarted or made slower or faster): its prediction is not shown.
    pub unmodelled: Option<String>,
}

/// ` +2 dead +5 refused` after a split, when tasks left otherwise than by being done.
fn exits_text(dead: u32, refused: u32) -> String {
    let mut s = String::new();
    if dead > 0 {
        s.push_str(&format!(" +{dead} dead"));
    }
    if refused > 0 {
        s.push_str(&format!(" +{refused} refused"));
    }
    s
}

impl Batch {
    /// What RabbitMQ's rules predict for this batch from where things stood when it was
    /// published, following the switches made during it: tasks per consumer (by consumer id)
    /// and the makespan from its start.
    pub fn predicted(&self) -> (Vec<(ConsumerId, usize)>, Duration) {
        let p = self.prediction();
        let counts = self.consumers.iter().map(|(id, _)| *id).zip(p.counts()).collect();
        (counts, p.makespan)
    }

    /// `4/3/3`: what each consumer present at its publish processed of it, in their order.
    pub fn seen_split(&self) -> String {
        let seen: Vec<String> = self
            .consumers
            .iter()
            .map(|(id, _)| self.done_by.get(*id).copied().unwrap_or(0).to_string())
            .collect();
        seen.join("/") + &exits_text(self.dead, self.refused)
    }

    /// `4/3/3` as RabbitMQ's rules predict it, with the makespan.
    pub fn theory_split(&self) -> (String, Duration) {
        let p = self.prediction();
        let theory: Vec<String> =
            p.counts().iter().take(self.consumers.len()).map(usize::to_string).collect();
        (theory.join("/") + &exits_text(p.dead.len() as u32, p.refused.len() as u32), p.makespan)
    }

    /// The whole prediction: per consumer the batch's tasks in order, and the grab if any.
    pub fn prediction(&self) -> theory::Prediction {
        let weights: Vec<f64> = (0..self.size as usize)
            .map(|i| if self.weights.is_empty() { 1.0 } else { self.weights[i % self.weights.len()] })
            .collect();
        let delays: Vec<Duration> = self.consumers.iter().map(|(_, d)| *d).collect();
        let idle;
        let state = match &self.start {
            Some(s) => s,
            None => {
                idle = theory::State::idle(&delays, self.dispatch);
                &idle
            }
        };
        let exits = theory::Exits { first: self.ids.map_or(1, |(first, _)| first), ..self.exits.clone() };
        theory::predict_batch(state, &weights, &self.switches, &self.kills, &exits)
    }

    /// Consumer `id` was killed at `now`: the model follows it if it was one of this batch's.
    pub(super) fn killed(&mut self, id: ConsumerId, now: Instant) -> bool {
        let Some(consumer) = self.consumers.iter().position(|(c, _)| *c == id) else { return false };
        self.kills.push(theory::Kill { at: now.saturating_duration_since(self.started), consumer });
        true
    }

    /// A switch to `dispatch` was asked for at `now`: follow it, and explain a grab it causes.
    pub(super) fn switched(&mut self, dispatch: Dispatch, now: Instant) {
        self.switches.push(theory::Switch { at: now.saturating_duration_since(self.started), dispatch });
        self.note = self.prediction().grab.map(|g| {
            let name = match self.consumers.get(g.consumer) {
                Some((id, _)) => format!("C{}", id + 1),
                None => "a consumer".to_string(),
            };
            let when = if g.first { "first" } else { "before the others" };
            let took = g.took;
            match g.window {
                None => format!(
                    "{name} re-subscribed {when} with no prefetch limit and took all {took} ready tasks"
                ),
                Some(w) => format!(
                    "{name} re-subscribed {when} with a fresh prefetch window of {w} and took {took} ready \
                     tasks at once"
                ),
            }
        });
    }
}

impl Batch {
    pub fn makespan(&self) -> Option<Duration> {
        Some(self.finished?.saturating_duration_since(self.started))
    }
}

/// The producer's settings and counts.
#[derive(Debug, Clone)]
pub struct Producer {
    pub burst: u32,
    pub rate: u32,
    pub streaming: bool,
    pub published: Meter,
    pub confirmed: u64,
    /// Publishes whose confirm was lost with the connection.
    pub unconfirmed: u64,
    pub recent: Trail<TaskId>,
}

#[derive(Debug, Clone)]
pub struct Banner {
    pub text: String,
    pub since: Instant,
}

/// Start-up values for the app, from the checked CLI config.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub queue: String,
    pub delays: Vec<Duration>,
    pub dispatch: Dispatch,
    pub burst: u32,
    pub rate: u32,
    /// Keep every consumer's full processing order (headless JSON needs it).
    pub keep_history: bool,
    /// Queue type, limits and poison tasks.
    pub policy: crate::policy::Policy,
    /// Per consumer, its `x-priority` (missing ones: 0).
    pub priorities: Vec<i32>,
    /// The queue is declared with `x-single-active-consumer`.
    pub single_active: bool,
}

/// A scenario being played, as the screen shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lesson {
    pub title: String,
    pub caption: Option<String>,
    pub paused: bool,
    pub waiting: bool,
    pub step: (usize, usize),
}
