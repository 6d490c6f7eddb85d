//! The application state and its update function: plain synchronous Rust, no terminal, no
//! network. Keys become [`Action`]s, the workload reports [`Event`]s, and [`App::update`] turns
//! both into new state plus at most one [`Command`] for the workload.

mod events;
mod exits;
pub mod ledger;
mod messages;
mod model;
pub mod player;
mod presenter;
mod restart;
mod ring;
pub mod settings;
mod single_active;
pub mod stats;
pub mod theory;

use std::time::{Duration, Instant};

pub use ledger::{Counted, Held, Ledger, LossReason, Place, Totals, Whereabouts};
pub use messages::{Action, BrokerInfo, Command, Event, Msg};
pub use model::{
    AppOptions, Banner, Batch, Consumer, ConsumerStatus, Lesson, Origin, Producer, RunSpan, SPANS_KEPT,
    SpanEnd, Working,
};
pub use settings::{Dispatch, Mode};
pub use single_active::Role;
use stats::{Meter, Trail};

/// Task sequence ids, starting at 1, assigned by the producer.
pub type TaskId = u64;
/// Consumers are numbered from 0 in creation order and never renumbered; shown as C1, C2, ...
pub type ConsumerId = usize;
/// A batch is tasks published together (one key press, or a headless run).
pub type BatchId = u64;

/// How many finished batches the distribution pane lists.
const BATCHES_SHOWN: usize = 4;
/// How long the broker must look empty before tasks it should hold count as lost.
const MISSING_AFTER: Duration = Duration::from_secs(2);
/// How long an error banner stays up.
const BANNER_FOR: Duration = Duration::from_secs(15);

pub struct App {
    pub queue: String,
    pub lesson: Option<Lesson>,
    pub broker: Option<BrokerInfo>,
    pub connected: bool,
    /// What the user asked for; `applied` is what the consumers run with now.
    pub dispatch: Dispatch,
    pub applied: Dispatch,
    pub producer: Producer,
    pub consumers: Vec<Consumer>,
    /// Index into `consumers` (always a visible one when any is visible).
    pub selected: usize,
    pub ledger: Ledger,
    pub delivered: Meter,
    pub acked: Meter,
    pub queue_ready: Option<u32>,
    pub queue_consumers: Option<u32>,
    pub batches: Vec<Batch>,
    /// The last tasks lost while no consumer held them (refused publishes, gone from the broker).
    pub lost_unheld: Trail<(TaskId, LossReason)>,
    /// The queue's policy (limits, TTL, poison tasks) and what left by it: the last tasks
    /// dead-lettered, with why, and the last refused at publish.
    pub policy: crate::policy::Policy,
    pub dead_letters: Trail<(TaskId, crate::policy::DeathReason)>,
    pub refused: Trail<TaskId>,
    next_batch: BatchId,
    /// The broker's consumer ring as events tell it, for the theory's starting point.
    ring: ring::Ring,
    /// The queue has `x-single-active-consumer`: who is active and who stands by, as derived.
    single_active: Option<theory::SingleActive>,
    pub banner: Option<Banner>,
    /// Why the last key did not apply, or what it left for later (not an error; times out).
    pub notice: Option<Banner>,
    /// The demo is frozen since then (see `presenter`).
    paused_since: Option<Instant>,
    /// SetDispatch commands sent and not yet reported applied: the header's `switching…`.
    switches_in_flight: u32,
    /// After a crash or a lost connection: tasks up to this id may have vanished from the
    /// broker (see `reconcile`).
    suspect_upto: Option<TaskId>,
    /// Since when the broker has looked empty while suspect tasks are still placed there.
    missing_since: Option<Instant>,
    /// The embedded broker was restarted with a non-durable queue since the suspects were
    /// marked: what vanished is lost for that reason (see `restart`).
    restart_loss: Option<LossReason>,
    /// Embedded broker restarts so far.
    pub broker_restarts: u32,
    last_published: TaskId,
    pub show_help: bool,
    /// The timeline replaces the consumer panes.
    pub show_timeline: bool,
    /// `d`: the details (producer, ledger, distribution with the recent batches) instead of the flow.
    pub show_details: bool,
    /// `z`: the selected consumer's full pane in place of the lanes.
    pub zoom: bool,
    pub quitting: bool,
    keep_history: bool,
    last_sample: Instant,
    /// Something changed since the last draw.
    pub dirty: bool,
}

impl App {
    pub fn new(opts: AppOptions, now: Instant) -> Self {
        let consumers = opts
            .delays
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut c = Consumer::new(i, *d, opts.keep_history);
                c.priority = opts.priorities.get(i).copied().unwrap_or(0);
                c
            })
            .collect();
        Self {
            queue: opts.queue,
            lesson: None,
            broker: None,
            connected: false,
            dispatch: opts.dispatch,
            applied: opts.dispatch,
            producer: Producer {
                burst: opts.burst,
                rate: opts.rate,
                streaming: false,
                published: Meter::default(),
                confirmed: 0,
                unconfirmed: 0,
                recent: Trail::new(8),
            },
            consumers,
            selected: 0,
            ledger: Ledger::default(),
            delivered: Meter::default(),
            acked: Meter::default(),
            queue_ready: None,
            queue_consumers: None,
            batches: Vec::new(),
            lost_unheld: Trail::new(model::LOST_KEPT),
            policy: opts.policy,
            dead_letters: Trail::new(model::EXITS_KEPT),
            refused: Trail::new(model::EXITS_KEPT),
            next_batch: 1,
            ring: ring::Ring::default(),
            single_active: opts.single_active.then(theory::SingleActive::default),
            banner: None,
            notice: None,
            paused_since: None,
            switches_in_flight: 0,
            suspect_upto: None,
            missing_since: None,
            restart_loss: None,
            broker_restarts: 0,
            last_published: 0,
            show_help: false,
            show_timeline: false,
            show_details: false,
            zoom: false,
            quitting: false,
            keep_history: opts.keep_history,
            last_sample: now,
            dirty: true,
        }
    }

    pub fn update(&mut self, msg: Msg, now: Instant) -> Option<Command> {
        match msg {
            Msg::Action(action) => {
                self.dirty = true;
                self.on_action(action, now)
            }
            Msg::Event(event) => {
                // The queue depth is polled twice a second: an unchanged answer is no reason
                // to redraw, so an idle warren stays idle.
                let unchanged = matches!(&event, Event::QueueStats { ready, consumers }
                    if self.queue_ready == Some(*ready) && self.queue_consumers == Some(*consumers));
                self.dirty |= !unchanged;
                self.on_event(event, now);
                None
            }
            Msg::Tick => {
                self.on_tick(now);
                None
            }
        }
    }

    /// Start a batch of `count` tasks (used by keys and by headless runs).
    pub fn start_batch(&mut self, count: u32, now: Instant) -> Command {
        self.start_weighted_batch(count, Vec::new(), now)
    }

    /// A batch whose tasks weigh `weights` (repeating): a task takes delay x weight.
    pub fn start_weighted_batch(&mut self, count: u32, weights: Vec<f64>, now: Instant) -> Command {
        let id = self.next_batch;
        self.next_batch += 1;
        let consumers: Vec<_> =
            self.consumers.iter().filter(|c| c.alive()).map(|c| (c.id, c.delay)).collect();
        let start = Some(self.theory_state(&consumers, now));
        self.batches.push(Batch {
            id,
            size: count,
            // The workload runs commands in order: this batch is published after any switch
            // already asked for, so it runs with the requested settings.
            dispatch: self.dispatch,
            started: now,
            outstanding: count,
            lost: 0,
            dead: 0,
            refused: 0,
            finished: None,
            ids: None,
            done_by: Vec::new(),
            consumers,
            weights: weights.clone(),
            start,
            switches: Vec::new(),
            exits: theory::Exits::of(&self.policy),
            kills: Vec::new(),
            note: None,
            unmodelled: None,
        });
        // Keep only the recent batches: the screen shows a handful.
        if self.batches.len() > 64 {
            self.batches.remove(0);
        }
        Command::Publish { count, batch: id, weights }
    }

    /// A new consumer with this delay (and RabbitMQ's default priority, 0), selected.
    pub fn add_consumer(&mut self, delay: Duration) -> Command {
        self.add_consumer_with_priority(delay, 0)
    }

    /// A new consumer with this delay and `x-priority`, selected.
    pub fn add_consumer_with_priority(&mut self, delay: Duration, priority: i32) -> Command {
        let id = self.consumers.len();
        let mut c = Consumer::new(id, delay, self.keep_history);
        c.priority = priority;
        self.consumers.push(c);
        self.selected = id;
        self.unmodelled(format!("C{} joined", id + 1));
        Command::AddConsumer { consumer: id, delay, priority }
    }

    /// Set one consumer's delay (scenarios; the keys step along a ladder instead).
    pub fn set_delay(&mut self, consumer: ConsumerId, delay: Duration) -> Option<Command> {
        let c = self.consumers.get_mut(consumer).filter(|c| c.alive())?;
        c.delay = delay;
        self.unmodelled(format!("C{}'s delay changed", consumer + 1));
        Some(Command::SetDelay { consumer, delay })
    }

    /// Switch dispatch mode: every live consumer re-registers.
    pub fn set_mode(&mut self, mode: Mode, now: Instant) -> Command {
        self.dispatch.mode = mode;
        self.switch_dispatch(now)
    }

    /// Remove a consumer gracefully (selecting it, so the audience sees which one goes).
    pub fn remove_consumer(&mut self, consumer: ConsumerId) -> Option<Command> {
        if self.consumers.get(consumer).is_some_and(Consumer::crashed) {
            // Its actor is gone already: only the pane goes (the chart keeps its counts).
            self.consumers[consumer].status = ConsumerStatus::Removed;
            if self.selected == consumer {
                self.select_step(1);
            }
            return None;
        }
        let c = self.consumers.get_mut(consumer).filter(|c| c.alive())?;
        c.status = ConsumerStatus::Leaving;
        self.selected = consumer;
        // Its basic.cancel goes at once: a single active consumer hands over now.
        self.single_active_cancelled(consumer);
        self.unmodelled(format!("C{} removed", consumer + 1));
        Some(Command::RemoveConsumer { consumer })
    }

    /// Kill a consumer: it crashes without acking. The theory follows the kill in the batches
    /// it had a part in (the broker requeues or forgets what it held within milliseconds).
    pub fn kill_consumer(&mut self, consumer: ConsumerId, now: Instant) -> Option<Command> {
        let c = self.consumers.get_mut(consumer).filter(|c| c.alive())?;
        c.status = ConsumerStatus::Crashed;
        self.selected = consumer;
        for b in self.batches.iter_mut().filter(|b| b.finished.is_none() && b.unmodelled.is_none()) {
            if !b.killed(consumer, now) {
                b.unmodelled = Some(format!("C{} killed", consumer + 1));
            }
        }
        Some(Command::KillConsumer { consumer })
    }

    /// The theory model follows switches but not consumers coming, going or changing speed:
    /// batches still running when that happens say so (`what` happened during them) instead of
    /// showing a prediction.
    pub(super) fn unmodelled(&mut self, what: String) {
        for b in self.batches.iter_mut().filter(|b| b.finished.is_none() && b.unmodelled.is_none()) {
            b.unmodelled = Some(what.clone());
        }
    }

    /// Set the prefetch; consumers re-register at once in fair mode.
    pub fn set_prefetch(&mut self, prefetch: u16, now: Instant) -> Option<Command> {
        self.dispatch.prefetch = prefetch;
        (self.dispatch.mode == Mode::Fair).then(|| self.switch_dispatch(now))
    }

    pub fn selected_consumer(&self) -> Option<&Consumer> {
        self.consumers.get(self.selected).filter(|c| c.visible())
    }

    pub fn visible_consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.consumers.iter().filter(|c| c.visible())
    }

    /// All published tasks are done or lost, and no batch is still waiting to be published.
    pub fn settled(&self) -> bool {
        let t = self.ledger.totals();
        t.done + t.lost + t.dead + t.refused == t.published && self.batches.iter().all(|b| b.outstanding == 0)
    }

    pub fn total_processed(&self) -> u64 {
        self.consumers.iter().map(|c| c.processed.total()).sum()
    }

    /// Finished batches, newest first.
    pub fn recent_batches(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter().rev().take(BATCHES_SHOWN)
    }

    fn on_action(&mut self, action: Action, now: Instant) -> Option<Command> {
        if self.show_help {
            // Any key (Esc and q too) closes the help overlay and does nothing else: safe in
            // front of an audience, and nobody quits by trying to close the help.
            self.show_help = false;
            return None;
        }
        if let Some(reason) = self.refusal(action) {
            self.note(reason, now);
            return None;
        }
        // The notice answers the last key: one that applies takes an older one away.
        self.notice = None;
        let cmd = self.apply_action(action, now);
        self.explain(action, now);
        cmd
    }

    fn apply_action(&mut self, action: Action, now: Instant) -> Option<Command> {
        use Action::*;
        match action {
            PublishOne => return Some(self.start_batch(1, now)),
            PublishBurst => return Some(self.start_batch(self.producer.burst, now)),
            BurstUp => self.producer.burst = settings::step_up(settings::BURSTS, self.producer.burst),
            BurstDown => self.producer.burst = settings::step_down(settings::BURSTS, self.producer.burst),
            ToggleStream => {
                self.producer.streaming = !self.producer.streaming;
                return Some(self.stream_command());
            }
            RateUp | RateDown => {
                let steps = settings::RATES;
                self.producer.rate = if action == RateUp {
                    settings::step_up(steps, self.producer.rate)
                } else {
                    settings::step_down(steps, self.producer.rate)
                };
                if self.producer.streaming {
                    return Some(self.stream_command());
                }
            }
            ToggleMode => return Some(self.set_mode(self.dispatch.mode.toggled(), now)),
            PrefetchUp | PrefetchDown => {
                self.dispatch.prefetch = if action == PrefetchUp {
                    settings::prefetch_up(self.dispatch.prefetch)
                } else {
                    settings::prefetch_down(self.dispatch.prefetch)
                };
                // Prefetch means nothing to auto-ack consumers: keep it for the next switch.
                if self.dispatch.mode == Mode::Fair {
                    return Some(self.switch_dispatch(now));
                }
            }
            SelectNext => self.select_step(1),
            SelectPrev => self.select_step(-1),
            SelectVisible(pos) => {
                if let Some((idx, _)) =
                    self.consumers.iter().enumerate().filter(|(_, c)| c.visible()).nth(pos)
                {
                    self.selected = idx;
                }
            }
            DelayUp | DelayDown => {
                let c = self.consumers.get_mut(self.selected).filter(|c| c.alive())?;
                let delay = if action == DelayUp {
                    settings::delay_up(c.delay)
                } else {
                    settings::delay_down(c.delay)
                };
                return self.set_delay(self.selected, delay);
            }
            AddConsumer => {
                let delay = self
                    .selected_consumer()
                    .or(self.consumers.last())
                    .map_or(Duration::from_secs(1), |c| c.delay);
                return Some(self.add_consumer(delay));
            }
            RemoveConsumer => return self.remove_consumer(self.selected),
            KillConsumer => return self.kill_consumer(self.selected, now),
            RestartConsumer => return self.restart_consumer(self.selected),
            RestartBroker => return self.restart_broker(now),
            ToggleHelp => self.show_help = !self.show_help,
            ToggleTimeline => {
                self.show_timeline = !self.show_timeline;
                self.zoom = false;
            }
            ToggleDetails => self.show_details = !self.show_details,
            ToggleZoom => {
                self.zoom = !self.zoom;
                self.show_timeline = false;
            }
            PlayPause => return self.set_paused(!self.paused(), now),
            // The timeline belongs to the player, which the event loop drives.
            PlayStep | PlayRestart => {}
            Quit => {
                self.quitting = true;
                return Some(Command::Quit);
            }
        }
        None
    }

    /// Every live consumer re-registers (cancel, qos, consume) with the requested settings.
    /// The theory takes the switch as made now, at the ask (the re-subscriptions follow
    /// within milliseconds): running batches follow it.
    fn switch_dispatch(&mut self, now: Instant) -> Command {
        for c in self.consumers.iter_mut().filter(|c| c.status == ConsumerStatus::Consuming) {
            c.status = ConsumerStatus::Switching;
        }
        self.switches_in_flight += 1;
        self.ring.switched(self.dispatch);
        self.single_active_switched();
        for b in self.batches.iter_mut().filter(|b| b.finished.is_none()) {
            b.switched(self.dispatch, now);
        }
        Command::SetDispatch(self.dispatch)
    }

    fn stream_command(&self) -> Command {
        Command::Stream { per_second: self.producer.streaming.then_some(self.producer.rate) }
    }

    fn select_step(&mut self, step: isize) {
        let visible: Vec<usize> =
            self.consumers.iter().enumerate().filter(|(_, c)| c.visible()).map(|(i, _)| i).collect();
        if visible.is_empty() {
            return;
        }
        let Some(pos) = visible.iter().position(|&i| i == self.selected) else {
            // The selected one just went: its neighbour below takes its place (or the last).
            self.selected =
                visible.iter().copied().find(|&i| i > self.selected).unwrap_or(visible[visible.len() - 1]);
            return;
        };
        let next = (pos as isize + step).rem_euclid(visible.len() as isize) as usize;
        self.selected = visible[next];
    }

    fn consumer(&mut self, id: ConsumerId) -> Option<&mut Consumer> {
        self.consumers.get_mut(id)
    }

    fn set_banner(&mut self, text: String, now: Instant) {
        self.banner = Some(Banner { text, since: now });
    }

    fn on_tick(&mut self, now: Instant) {
        // Progress bars move while anyone works; the timeline's axis runs until the batch is done.
        let batch_running = self.batches.last().is_some_and(|b| b.finished.is_none());
        let working = !self.paused() && self.consumers.iter().any(|c| c.working.is_some());
        if working || (self.show_timeline && batch_running && !self.paused()) {
            self.dirty = true;
        }
        if self.banner.as_ref().is_some_and(|b| now.duration_since(b.since) > BANNER_FOR) {
            self.banner = None;
            self.dirty = true;
        }
        if self.notice.as_ref().is_some_and(|n| now.duration_since(n.since) > presenter::NOTICE_FOR) {
            self.notice = None;
            self.dirty = true;
        }
        // Whole seconds only, and catch up if frames were skipped.
        while now.duration_since(self.last_sample) >= Duration::from_secs(1) {
            self.last_sample += Duration::from_secs(1);
            // Redraw only when a rate or a sparkline would look different: a minute after the
            // last task an idle warren draws nothing at all.
            let mut moved = false;
            let meters = [&mut self.producer.published, &mut self.delivered, &mut self.acked];
            for m in meters.into_iter().chain(self.consumers.iter_mut().map(|c| &mut c.processed)) {
                moved |= m.sample_changes_view();
            }
            self.dirty |= moved;
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
