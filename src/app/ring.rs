//! The broker's consumer ring as the app can know it, mirrored from events, so that a batch's
//! prediction starts from where things stand (see `theory::State`).
//!
//! The rules mirrored (`shared/rabbitmq-semantics.md`): a consumer joins the ring's tail when it
//! registers (basic.consume, also the re-subscription of a dispatch switch); each delivery moves
//! the receiving consumer to the tail; a consumer whose window is full is skipped when it reaches
//! the head, leaves the ring ("blocked") and rejoins at the tail when an ack frees a slot.
//!
//! Events of different consumers reach the app in batches and need not arrive in the broker's
//! order, so the ring order is not kept as a list but as a key per consumer: the time it last
//! joined the tail, measured in task ids. A ready queue is delivered in id order, so a delivery of
//! task k comes after every delivery of a lower id whatever order the events arrive in; joining
//! by registration or unblocking counts as just after the highest delivery seen so far.

use std::collections::VecDeque;
use std::time::Instant;

use super::{App, ConsumerId, Dispatch, Event, TaskId, theory};

/// When a consumer last joined the ring's tail: (task id, arrival order among equal ids).
type Key = (TaskId, u64);

#[derive(Debug, Clone, Default)]
struct Slot {
    registered: bool,
    /// Its registration's window (`usize::MAX` = none).
    limit: usize,
    /// Manual-ack deliveries of the current registration not yet acked: the window in use.
    window: Vec<TaskId>,
    blocked: bool,
    key: Key,
    /// Delivered and not yet started, in delivery order.
    waiting: VecDeque<TaskId>,
}

#[derive(Debug, Clone, Default)]
pub struct Ring {
    slots: Vec<Slot>,
    max_delivered: TaskId,
    arrivals: u64,
}

impl Ring {
    fn slot(&mut self, c: ConsumerId) -> &mut Slot {
        if self.slots.len() <= c {
            self.slots.resize_with(c + 1, Slot::default);
        }
        &mut self.slots[c]
    }

    fn tail_key(&mut self) -> Key {
        self.arrivals += 1;
        (self.max_delivered, self.arrivals)
    }

    /// `c` (re-)registers with `d`: a fresh, empty window at the tail of the ring.
    fn register(&mut self, c: ConsumerId, d: Dispatch) {
        let key = self.tail_key();
        let s = self.slot(c);
        *s = Slot {
            registered: true,
            limit: theory::window_of(d),
            key,
            waiting: std::mem::take(&mut s.waiting),
            ..Slot::default()
        };
    }

    /// A switch was asked for: every registered consumer re-subscribes, in consumer order.
    pub fn switched(&mut self, d: Dispatch) {
        for c in 0..self.slots.len() {
            if self.slots[c].registered {
                self.register(c, d);
            }
        }
    }

    /// Follow one event; `dispatch` is what a consumer registering now gets.
    pub fn observe(&mut self, event: &Event, dispatch: Dispatch) {
        match *event {
            Event::ConsumerReady { consumer } => self.register(consumer, dispatch),
            Event::ConsumerReconnecting { consumer, .. } | Event::ConsumerGone { consumer, .. } => {
                let s = self.slot(consumer);
                s.registered = false;
                s.window.clear();
            }
            Event::Delivered { consumer, id, manual_ack, redelivered } => {
                let key = self.slot(consumer).key;
                // Every full consumer ahead of the receiver was skipped at the head: blocked.
                for (c, s) in self.slots.iter_mut().enumerate() {
                    if c != consumer && s.registered && s.key < key && s.window.len() >= s.limit {
                        s.blocked = true;
                    }
                }
                self.arrivals += 1;
                // A redelivery breaks the id order: it counts as the latest delivery.
                let key = if redelivered { (self.max_delivered, self.arrivals) } else { (id, self.arrivals) };
                self.max_delivered = self.max_delivered.max(id);
                let s = self.slot(consumer);
                s.key = key;
                s.blocked = false;
                if manual_ack {
                    s.window.push(id);
                }
                s.waiting.push_back(id);
            }
            Event::Started { consumer, id, .. } => self.slot(consumer).waiting.retain(|&t| t != id),
            Event::Processed { consumer, id, acked: true } => self.freed(consumer, &[id]),
            Event::Requeued { consumer, ref ids } | Event::Lost { consumer, ref ids, .. } => {
                self.slot(consumer).waiting.retain(|t| !ids.contains(t));
                self.freed(consumer, ids);
            }
            _ => {}
        }
    }

    /// Tasks wait at the broker (after the event just observed): it has offered them round the
    /// whole ring, so every full consumer was skipped at the head and is blocked.
    pub fn queue_waits(&mut self) {
        for s in self.slots.iter_mut().filter(|s| s.registered && s.window.len() >= s.limit) {
            s.blocked = true;
        }
    }

    /// These tasks left `c`'s window (acked or given back): a blocked consumer rejoins the tail.
    fn freed(&mut self, c: ConsumerId, ids: &[TaskId]) {
        let s = self.slot(c);
        let before = s.window.len();
        s.window.retain(|t| !ids.contains(t));
        if s.window.len() < before && s.blocked {
            let key = self.tail_key();
            let s = self.slot(c);
            s.blocked = false;
            s.key = key;
        }
    }
}

impl App {
    /// Where everything stands for a batch published now to `consumers`: what each holds (the
    /// task in hand with what is left of it), what is still queued, where the ring stands.
    pub(super) fn theory_state(
        &self,
        consumers: &[(ConsumerId, std::time::Duration)],
        now: Instant,
    ) -> theory::State {
        let empty = Slot::default();
        let starting = |id: ConsumerId| {
            self.consumers.get(id).is_some_and(|c| c.status == super::ConsumerStatus::Starting)
        };
        let mut states = Vec::new();
        for &(id, delay) in consumers {
            let slot = self.ring.slots.get(id).unwrap_or(&empty);
            let in_window = |t: TaskId| slot.window.contains(&t);
            let mut held = Vec::new();
            if let Some(w) = self.consumers.get(id).and_then(|c| c.working) {
                let left = w.delay.saturating_sub(now.saturating_duration_since(w.since));
                held.push(theory::HeldTask { time: left, in_window: in_window(w.id) });
            }
            for &t in &slot.waiting {
                held.push(theory::HeldTask {
                    time: delay.mul_f64(self.weight_of(t)),
                    in_window: in_window(t),
                });
            }
            states.push(theory::ConsumerState { delay, held, registered: slot.registered || starting(id) });
        }
        let mut ring: Vec<usize> = (0..consumers.len())
            .filter(|&i| self.ring.slots.get(consumers[i].0).is_some_and(|s| s.registered && !s.blocked))
            .collect();
        ring.sort_by_key(|&i| self.ring.slots[consumers[i].0].key);
        // Consumers still starting register within milliseconds, one after another: they join
        // the tail in that order (a batch published at start-up is not predicted onto nobody).
        ring.extend((0..consumers.len()).filter(|&i| {
            starting(consumers[i].0) && !self.ring.slots.get(consumers[i].0).is_some_and(|s| s.registered)
        }));
        // Ready at the broker: published and not delivered, then earlier batches' tasks not yet
        // published (the producer publishes batches in order).
        let mut queued: Vec<f64> =
            self.ledger.at_broker_ids().into_iter().map(|t| self.weight_of(t)).collect();
        for b in &self.batches {
            let published = b.ids.map_or(0, |(first, last)| last + 1 - first);
            queued.extend((published..u64::from(b.size)).map(|i| weight_at(&b.weights, i)));
        }
        theory::State {
            consumers: states,
            ring,
            queued,
            dispatch: self.dispatch,
            priorities: consumers
                .iter()
                .map(|(id, _)| self.consumers.get(*id).map_or(0, |c| c.priority))
                .collect(),
            single_active: self.single_active_state(consumers),
        }
    }

    /// A task's weight, from the batch it belongs to (1.0 if that batch is no longer kept).
    fn weight_of(&self, t: TaskId) -> f64 {
        self.batches
            .iter()
            .rev()
            .find_map(|b| {
                b.ids.filter(|&(first, last)| (first..=last).contains(&t)).map(|(first, _)| (b, t - first))
            })
            .map_or(1.0, |(b, i)| weight_at(&b.weights, i))
    }
}

fn weight_at(weights: &[f64], i: u64) -> f64 {
    if weights.is_empty() { 1.0 } else { weights[(i % weights.len() as u64) as usize] }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::{Event, Mode, Msg};
    use super::*;

    fn app(mode: Mode, delays: &[u64]) -> (App, Instant) {
        super::super::testing::registered(delays, mode)
    }

    fn ev(a: &mut App, now: Instant, e: Event) {
        a.update(Msg::Event(e), now);
    }

    fn deliver(a: &mut App, now: Instant, consumer: ConsumerId, id: TaskId, manual_ack: bool) {
        ev(a, now, Event::Delivered { consumer, id, manual_ack, redelivered: false });
    }

    fn ring_now(a: &App, now: Instant) -> Vec<usize> {
        let consumers: Vec<_> = a.consumers.iter().map(|c| (c.id, c.delay)).collect();
        a.theory_state(&consumers, now).ring
    }

    #[test]
    fn consumers_still_starting_join_the_ring_in_order() {
        let (mut a, now) = app(Mode::RoundRobin, &[100, 100, 100]);
        a.add_consumer(Duration::from_millis(100));
        assert_eq!(ring_now(&a, now), vec![0, 1, 2, 3]);
        let (mut a, now) = super::super::testing::app(&[100, 100], Mode::RoundRobin);
        ev(&mut a, now, Event::ConsumerReady { consumer: 1 });
        assert_eq!(ring_now(&a, now), vec![1, 0], "C2 registered, C1 still starting");
    }

    #[test]
    fn deliveries_move_the_ring_whatever_order_their_events_arrive_in() {
        let (mut a, now) = app(Mode::RoundRobin, &[100, 100, 100]);
        assert_eq!(ring_now(&a, now), vec![0, 1, 2], "registration order");
        let cmd = a.start_batch(5, now);
        assert!(matches!(cmd, super::super::Command::Publish { count: 5, .. }));
        for id in 1..=5 {
            ev(&mut a, now, Event::Published { id, batch: Some(1) });
        }
        // The broker dealt 1..5 as C1 C2 C3 C1 C2; C2's events happen to arrive first.
        for (c, id) in [(1, 2), (1, 5), (0, 1), (0, 4), (2, 3)] {
            deliver(&mut a, now, c, id, false);
        }
        assert_eq!(ring_now(&a, now), vec![2, 0, 1], "C3 is next, C2 went last");
    }

    #[test]
    fn a_snapshot_holds_the_task_in_hand_the_backlog_and_the_queue() {
        let (mut a, t0) = app(Mode::RoundRobin, &[1000, 2000]);
        a.start_batch(5, t0);
        for id in 1..=5 {
            ev(&mut a, t0, Event::Published { id, batch: Some(1) });
        }
        for (c, id) in [(0, 1), (1, 2), (0, 3)] {
            deliver(&mut a, t0, c, id, false);
        }
        ev(&mut a, t0, Event::Started { consumer: 0, id: 1, work: Duration::from_millis(1000) });
        let now = t0 + Duration::from_millis(400);
        let consumers: Vec<_> = a.consumers.iter().map(|c| (c.id, c.delay)).collect();
        let s = a.theory_state(&consumers, now);
        let held = |c: usize| s.consumers[c].held.iter().map(|h| h.time.as_millis()).collect::<Vec<_>>();
        assert_eq!(held(0), vec![600, 1000], "600ms left of #1, then #3");
        assert_eq!(held(1), vec![2000], "#2 not started yet");
        assert_eq!(s.queued, vec![1.0, 1.0], "#4 and #5 still at the broker");
        assert_eq!(s.ring, vec![1, 0]);
    }

    #[test]
    fn a_full_consumer_skipped_at_the_head_rejoins_at_the_tail_on_ack() {
        let (mut a, now) = app(Mode::Fair, &[100, 100, 100]);
        a.start_batch(5, now);
        for id in 1..=5 {
            ev(&mut a, now, Event::Published { id, batch: Some(1) });
        }
        for (c, id) in [(0, 1), (1, 2), (2, 3)] {
            deliver(&mut a, now, c, id, true);
        }
        // #4 and #5 wait: everyone is full, so everyone is blocked and out of the ring.
        assert_eq!(ring_now(&a, now), Vec::<usize>::new());
        ev(&mut a, now, Event::Started { consumer: 1, id: 2, work: Duration::ZERO });
        ev(&mut a, now, Event::Processed { consumer: 1, id: 2, acked: true });
        deliver(&mut a, now, 1, 4, true);
        ev(&mut a, now, Event::Started { consumer: 2, id: 3, work: Duration::ZERO });
        ev(&mut a, now, Event::Processed { consumer: 2, id: 3, acked: true });
        // C3 rejoins; #5 is still queued here (its delivery not yet seen), C3 is in the ring.
        assert_eq!(ring_now(&a, now), vec![2]);
        deliver(&mut a, now, 2, 5, true);
        // C1 acks last and rejoins behind C3, although it was ahead of it before; C2 got #4
        // while #5 waited, so it was skipped full at the head and is blocked.
        ev(&mut a, now, Event::Started { consumer: 0, id: 1, work: Duration::ZERO });
        ev(&mut a, now, Event::Processed { consumer: 0, id: 1, acked: true });
        assert_eq!(ring_now(&a, now), vec![2, 0]);
        // A switch re-registers everyone in order with fresh windows.
        a.set_mode(Mode::RoundRobin, now);
        assert_eq!(ring_now(&a, now), vec![0, 1, 2]);
    }
}
