//! What RabbitMQ's dispatch rules predict for one batch, computed without a broker, so warren can
//! show theory next to what it observed (and tests can hold real runs to it).
//!
//! The model is the classic-queue consumer ring (`rabbit_queue_consumers.erl`, see
//! `shared/rabbitmq-semantics.md`): consumers sit in a ring in registration order, the next ready
//! message goes to the consumer at the head, which then moves to the tail. A consumer whose prefetch
//! window is full is dropped from the ring when it reaches the head ("blocked") and rejoins at the
//! tail when it acks. Auto-ack consumers (round-robin) are never full, so they rotate strictly and
//! pile up a client-side backlog that they work through one task after another.
//!
//! Time is kept as integer nanoseconds ([`Duration`]) so that sums and ties are exact.
//!
//! Tie rule: completions due at the same instant are handled in rounds. A round takes every
//! consumer whose running task ends at that instant, in consumer index order, and for each one acks,
//! lets it rejoin the ring if it was blocked, and dispatches. A task started during the round that
//! also ends at that instant (a zero-length task) belongs to the next round: it cannot be acked
//! before it was delivered. This keeps zero-delay runs in ring order instead of letting C1, which
//! acks first, take everything.
//!
//! A batch rarely starts on an idle broker: [`predict_from`] starts from a [`State`] (what each
//! consumer holds, what is still queued, where the ring stands) and follows dispatch switches
//! made while the batch runs ([`Switch`]). Earlier tasks take their place in the queue and in the
//! consumers' buffers first; only the batch's own tasks are counted.
//!
//! A switch is modelled as the workload performs it (src/workload: each consumer in turn cancels,
//! sets qos, consumes again) but all at the instant the app asked: the re-subscriptions really
//! follow within milliseconds, far less than any task takes. Between two consumers' steps the
//! broker dispatches whatever is ready, so the first consumer to re-subscribe without a limit takes
//! every ready task while the others are still blocked or not yet re-subscribed. Cancelling keeps
//! what a consumer holds (it finishes and acks it), but a new registration starts with an empty
//! prefetch window: RabbitMQ and the embedded broker count unacked deliveries per consumer tag.
//! Completions due at the switch instant are handled before it.
//!
//! A consumer killed during the batch ([`Kill`]) is followed the same way, at the instant the app
//! asked: its channel closes, so the broker requeues what it held unacked at the head of the
//! queue (their original place: nothing published later was delivered before them) and forgets
//! its auto-ack tasks, which are lost. Then the queue goes to the others (or, on a
//! single-active queue, to the consumer that takes over).
//!
//! Consumer priorities and single active consumer change who is eligible, not how a delivery
//! works (`priority.rs`): with priorities the ring is served highest priority first, and a
//! single-active queue delivers only to its active consumer.

use std::time::Duration;

use super::{Dispatch, Mode, TaskId};

mod exits;
mod priority;
mod sim;
pub use exits::Exits;
pub use priority::SingleActive;
use sim::Sim;

/// One batch: every task published at t=0 into an empty queue, consumers registered C1..Cn in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Per consumer, its processing time for a task of weight 1.0.
    pub delays: Vec<Duration>,
    /// Per task in publish order (task ids are 1..=len); time = delay * weight. Weights must be
    /// finite and non-negative ([`Duration::mul_f64`] panics otherwise).
    pub weights: Vec<f64>,
    /// Mode and prefetch (0 = unlimited; ignored in round-robin, as for auto-ack consumers).
    pub dispatch: Dispatch,
}

/// A task a consumer already holds when the batch starts (from an earlier batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldTask {
    /// Time it still takes on this consumer (for the task in hand: what is left of it).
    pub time: Duration,
    /// Delivered under the consumer's current manual-ack registration: it fills a prefetch slot
    /// until acked. False for auto-ack deliveries and for those of a cancelled registration.
    pub in_window: bool,
}

/// One consumer when the batch starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerState {
    /// Processing time for a task of weight 1.0.
    pub delay: Duration,
    /// What it holds, in processing order; the first is in hand (already started).
    pub held: Vec<HeldTask>,
    /// Registered at the broker (in the ring, or blocked out of it with a full window). Only
    /// registered consumers take tasks and re-subscribe on a switch.
    pub registered: bool,
}

/// Where everything stands when a batch starts.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub consumers: Vec<ConsumerState>,
    /// The ring, head first (indices into `consumers`). A registered consumer missing from it is
    /// blocked: its window is full and it rejoins at the tail when it acks.
    pub ring: Vec<usize>,
    /// Weights of earlier tasks still ready in the queue, in queue order; they go out first.
    pub queued: Vec<f64>,
    /// What the current registrations run with.
    pub dispatch: Dispatch,
    /// Per consumer, its `x-priority` (missing entries are 0, RabbitMQ's default).
    pub priorities: Vec<i32>,
    /// The queue has `x-single-active-consumer`: who is active and who stands by.
    pub single_active: Option<SingleActive>,
}

impl State {
    /// Every consumer idle and registered in order, the queue empty: what [`predict`] assumes.
    pub fn idle(delays: &[Duration], dispatch: Dispatch) -> Self {
        let consumers =
            delays.iter().map(|&delay| ConsumerState { delay, held: Vec::new(), registered: true }).collect();
        Self {
            consumers,
            ring: (0..delays.len()).collect(),
            queued: Vec::new(),
            dispatch,
            priorities: Vec::new(),
            single_active: None,
        }
    }
}

/// A dispatch switch asked for `at` after the batch started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub at: Duration,
    pub dispatch: Dispatch,
}

/// A consumer (index into the state's consumers) killed `at` after the batch started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub at: Duration,
    pub consumer: usize,
}

/// Why a switch gave a split nobody would guess: a consumer re-subscribed before the others and
/// took several of the batch's ready tasks at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grab {
    /// Index into the state's consumers.
    pub consumer: usize,
    /// How many of the batch's tasks it took at its re-subscription.
    pub took: usize,
    /// Its new prefetch window (None = no limit: auto-ack, or prefetch 0).
    pub window: Option<usize>,
    /// It was the first to re-subscribe.
    pub first: bool,
}

/// The predicted outcome of a [`Workload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// Per consumer, the batch's task ids (1-based, in publish order) in processing order.
    pub tasks: Vec<Vec<TaskId>>,
    /// Per consumer, when it finished its last task of the batch (ZERO if it got none).
    pub finish: Vec<Duration>,
    /// The latest of `finish`: when the whole batch is done.
    pub makespan: Duration,
    /// The first re-subscription that grabbed several tasks (see [`Grab`]).
    pub grab: Option<Grab>,
    /// The batch's tasks (1-based) the broker dead-letters, in that order, and why; those it
    /// refuses at publish; and how many deliveries its tasks get in all (see [`Exits`]).
    pub dead: Vec<(TaskId, crate::policy::DeathReason)>,
    pub refused: Vec<TaskId>,
    pub deliveries: usize,
}

impl Prediction {
    /// How many tasks each consumer processed.
    pub fn counts(&self) -> Vec<usize> {
        self.tasks.iter().map(Vec::len).collect()
    }
}

/// Fraction of the batch each consumer processed (all zeros for an empty batch, never NaN).
pub fn shares(p: &Prediction) -> Vec<f64> {
    let counts = p.counts();
    let total: usize = counts.iter().sum();
    counts.iter().map(|&c| if total == 0 { 0.0 } else { c as f64 / total as f64 }).collect()
}

/// Simulate the batch from idle. With no consumers nothing is delivered and the prediction is empty.
pub fn predict(w: &Workload) -> Prediction {
    predict_from(&State::idle(&w.delays, w.dispatch), &w.weights, &[])
}

/// Simulate a batch of tasks weighing `weights`, published at t=0 onto `state`, with `switches`
/// (in time order) made while it runs. Ring entries that name no consumer are ignored.
pub fn predict_from(state: &State, weights: &[f64], switches: &[Switch]) -> Prediction {
    predict_batch(state, weights, switches, &[], &Exits::default())
}

/// [`predict_from`] under a queue policy that can take tasks out (see [`Exits`]).
pub fn predict_exits(state: &State, weights: &[f64], switches: &[Switch], exits: &Exits) -> Prediction {
    predict_batch(state, weights, switches, &[], exits)
}

/// [`predict_from`], also following consumers killed during the batch (`kills` in time order).
pub fn predict_with(state: &State, weights: &[f64], switches: &[Switch], kills: &[Kill]) -> Prediction {
    predict_batch(state, weights, switches, kills, &Exits::default())
}

/// [`predict_from`] with everything that can happen during a batch: mode switches and kills
/// (each in time order), and a queue policy that can take tasks out.
pub fn predict_batch(
    state: &State,
    weights: &[f64],
    switches: &[Switch],
    kills: &[Kill],
    exits: &Exits,
) -> Prediction {
    let mut sim = Sim::new(state, weights, exits);
    sim.dispatch(Duration::ZERO);
    sim.arrive(weights);
    let mut switches = switches.iter().peekable();
    let mut kills = kills.iter().peekable();
    // Once the batch is done, nothing later changes its prediction.
    while !sim.batch_done() {
        let next_end = sim.next_end();
        if let Some(at) = sim.exits.expiry_before(next_end) {
            sim.expire(at);
            continue;
        }
        // Completions at the instant of a switch or a kill go first (see the module docs).
        let before_end = |at: Duration| next_end.is_none_or(|e| at < e);
        let kill_at = kills.peek().map(|k| k.at);
        if let Some(s) = switches.next_if(|s| before_end(s.at) && kill_at.is_none_or(|k| s.at <= k)) {
            sim.switch(s.at, s.dispatch);
            continue;
        }
        if let Some(k) = kills.next_if(|k| before_end(k.at)) {
            sim.kill(k.at, k.consumer);
            continue;
        }
        let Some(now) = next_end else { break };
        sim.complete_round(now);
    }
    sim.into_prediction()
}

/// The prefetch window a registration with these settings gets (`usize::MAX` = unlimited).
pub(super) fn window_of(d: Dispatch) -> usize {
    // Round-robin and prefetch 0 are the same machine with an infinite window: everything is
    // delivered at once in strict rotation, and each consumer then works through its backlog.
    match d {
        Dispatch { mode: Mode::Fair, prefetch } if prefetch > 0 => usize::from(prefetch),
        _ => usize::MAX,
    }
}

#[cfg(test)]
mod tests;
