//! The event-driven simulation behind [`super::predict_from`].

use std::collections::VecDeque;
use std::time::Duration;

use super::exits::{Exits, Tracker};
use super::priority::{self, SingleActive};
use super::{Dispatch, Grab, Prediction, State, TaskId, window_of};
use crate::policy::DeathReason;

/// A task a consumer holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Processing time on this consumer.
    time: Duration,
    /// Index in the batch; None for an earlier task (not counted).
    ours: Option<usize>,
    /// Fills a slot of the consumer's current prefetch window until acked.
    in_window: bool,
    /// Delivered for manual ack: the broker requeues it if the consumer dies holding it.
    manual: bool,
    /// Its weight, should it go back to the queue (time = the taker's delay x weight).
    weight: f64,
}

pub(super) struct Sim {
    delays: Vec<Duration>,
    /// Ready messages in queue order: (weight, index in the batch).
    queue: VecDeque<(f64, Option<usize>)>,
    /// The consumer ring; blocked and unregistered consumers are not in it.
    ring: VecDeque<usize>,
    in_ring: Vec<bool>,
    registered: Vec<bool>,
    /// Per consumer, its registration's window (`usize::MAX` = unlimited) and the slots in use.
    limit: Vec<usize>,
    used: Vec<usize>,
    /// Per consumer, what it holds; the front one is being processed.
    held: Vec<VecDeque<Held>>,
    /// Per consumer, when its running task completes (None when idle).
    ends: Vec<Option<Duration>>,
    tasks: Vec<Vec<TaskId>>,
    finish: Vec<Duration>,
    /// Batch tasks not yet acked.
    left: usize,
    grab: Option<Grab>,
    /// Poison tasks, length cap, TTL (see `exits.rs`).
    pub(super) exits: Tracker,
    /// Per consumer, its `x-priority`.
    priorities: Vec<i32>,
    /// A single-active-consumer queue delivers to its active consumer only.
    single_active: Option<SingleActive>,
}

impl Sim {
    pub(super) fn new(state: &State, weights: &[f64], exits: &Exits) -> Self {
        // Under a length cap the batch arrives task by task (see `arrive`).
        let queued_now = if exits.max_length.is_some() { &[][..] } else { weights };
        let n = state.consumers.len();
        let limit = window_of(state.dispatch);
        let mut sim = Sim {
            delays: state.consumers.iter().map(|c| c.delay).collect(),
            queue: state
                .queued
                .iter()
                .map(|&w| (w, None))
                .chain(queued_now.iter().enumerate().map(|(i, &w)| (w, Some(i))))
                .collect(),
            ring: VecDeque::new(),
            in_ring: vec![false; n],
            registered: state.consumers.iter().map(|c| c.registered).collect(),
            limit: vec![limit; n],
            used: vec![0; n],
            held: vec![VecDeque::new(); n],
            ends: vec![None; n],
            tasks: vec![Vec::new(); n],
            finish: vec![Duration::ZERO; n],
            left: weights.len(),
            grab: None,
            exits: Tracker::new(exits.clone(), weights.len()),
            // All equal (the usual case): the ring's head is served, with no scan.
            priorities: if state.priorities.iter().all(|&p| p == 0) {
                Vec::new()
            } else {
                state.priorities.clone()
            },
            // Entries that name no consumer are ignored, as in the ring.
            single_active: state.single_active.as_ref().map(|sac| SingleActive {
                active: sac.active.filter(|&c| c < n),
                standby: sac.standby.iter().copied().filter(|&c| c < n).collect(),
            }),
        };
        for (c, cs) in state.consumers.iter().enumerate() {
            for h in &cs.held {
                // An earlier task outside the window counts as auto-ack: only its place matters.
                let delay = state.consumers[c].delay;
                let weight = if delay.is_zero() { 1.0 } else { h.time.as_secs_f64() / delay.as_secs_f64() };
                let held =
                    Held { time: h.time, ours: None, in_window: h.in_window, manual: h.in_window, weight };
                sim.held[c].push_back(held);
                sim.used[c] += usize::from(h.in_window);
            }
            sim.ends[c] = sim.held[c].front().map(|h| h.time);
        }
        for &c in &state.ring {
            if c < n && sim.registered[c] && !sim.in_ring[c] {
                sim.in_ring[c] = true;
                sim.ring.push_back(c);
            }
        }
        sim
    }

    pub(super) fn batch_done(&self) -> bool {
        self.left == 0
    }

    pub(super) fn next_end(&self) -> Option<Duration> {
        self.ends.iter().flatten().min().copied()
    }

    /// Hand queued messages round the ring until the queue is empty or every consumer is blocked.
    pub(super) fn dispatch(&mut self, now: Duration) {
        while let Some(&(weight, ours)) = self.queue.front() {
            let c = if let Some(sac) = &self.single_active {
                // Only the active consumer receives; while its window is full, nobody does.
                match sac.active {
                    Some(c) if self.registered[c] && self.used[c] < self.limit[c] => c,
                    _ => return,
                }
            } else {
                let Some(at) = priority::head(&self.ring, &self.priorities) else { return };
                let c = self.ring.remove(at).expect("head is in the ring");
                if self.used[c] >= self.limit[c] {
                    // Full at the head: leave the ring until an ack frees a slot.
                    self.in_ring[c] = false;
                    continue;
                }
                c
            };
            if self.single_active.is_none() {
                self.ring.push_back(c);
            }
            self.queue.pop_front();
            let in_window = self.limit[c] != usize::MAX;
            self.used[c] += usize::from(in_window);
            let time = self.delays[c].mul_f64(weight);
            self.held[c].push_back(Held { time, ours, in_window, manual: in_window, weight });
            self.exits.deliveries += usize::from(ours.is_some());
            if self.ends[c].is_none() {
                self.ends[c] = Some(now + time);
            }
        }
    }

    /// Every consumer whose task ends at `now`, in index order, acks it and the queue is
    /// dispatched after each (see the tie rule in the module docs).
    pub(super) fn complete_round(&mut self, now: Duration) {
        let due: Vec<usize> = (0..self.ends.len()).filter(|&c| self.ends[c] == Some(now)).collect();
        for c in due {
            self.ack(c, now);
            self.dispatch(now);
        }
    }

    /// Consumer `c` completes and acks its running task at `now`, then starts its next held one.
    fn ack(&mut self, c: usize, now: Duration) {
        let Some(task) = self.held[c].pop_front() else { return };
        match task.ours {
            // A poison task: given back (to the head), or dead-lettered past the limit.
            Some(i) if self.exits.fails(i) => {
                if self.exits.returned(i, now) {
                    self.queue.push_front((task.weight, Some(i)));
                } else {
                    self.left -= 1;
                }
            }
            Some(i) => {
                self.tasks[c].push(i as TaskId + 1);
                self.finish[c] = now;
                self.left -= 1;
            }
            None => {}
        }
        self.ends[c] = self.held[c].front().map(|h| now + h.time);
        if task.in_window {
            self.used[c] -= 1;
            if self.registered[c] && !self.in_ring[c] {
                // The ack unblocks it: back into the ring, at the tail.
                self.in_ring[c] = true;
                self.ring.push_back(c);
            }
        }
    }

    /// Every registered consumer in turn cancels and consumes again with `d`; the broker
    /// dispatches between two re-subscriptions.
    pub(super) fn switch(&mut self, now: Duration, d: Dispatch) {
        let order: Vec<usize> = (0..self.registered.len()).filter(|&c| self.registered[c]).collect();
        for (k, &c) in order.iter().enumerate() {
            // Cancel: out of the ring; what it holds stays, but no longer fills the new window.
            self.ring.retain(|&r| r != c);
            if let Some(sac) = &mut self.single_active {
                // The active one cancelling hands over (to a consumer still on its old
                // registration), and the queue goes to the new active one at once.
                if sac.leave(c, &self.priorities).is_some() {
                    self.dispatch(now);
                }
            }
            for h in &mut self.held[c] {
                h.in_window = false;
            }
            self.used[c] = 0;
            // Consume again: a fresh window, at the tail of the ring.
            self.limit[c] = window_of(d);
            self.in_ring[c] = true;
            self.ring.push_back(c);
            if let Some(sac) = &mut self.single_active {
                sac.register(c);
            }
            let before = self.ours_held(c);
            self.dispatch(now);
            let took = self.ours_held(c) - before;
            let others_waiting = k + 1 < order.len();
            if self.grab.is_none() && took >= 2 && others_waiting {
                let window = (self.limit[c] != usize::MAX).then_some(self.limit[c]);
                self.grab = Some(Grab { consumer: c, took, window, first: k == 0 });
            }
        }
    }

    /// Consumer `c` dies at `now`: its manual-ack tasks go back to the head of the queue in
    /// their order, its auto-ack ones are lost, and the queue goes to the others.
    pub(super) fn kill(&mut self, now: Duration, c: usize) {
        if c >= self.registered.len() {
            return;
        }
        self.registered[c] = false;
        self.in_ring[c] = false;
        self.ring.retain(|&r| r != c);
        self.used[c] = 0;
        self.ends[c] = None;
        let held: Vec<Held> = self.held[c].drain(..).collect();
        let (requeued, lost): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| h.manual);
        self.left -= lost.iter().filter(|h| h.ours.is_some()).count();
        for h in requeued.iter().rev() {
            self.queue.push_front((h.weight, h.ours));
        }
        if let Some(sac) = &mut self.single_active {
            sac.leave(c, &self.priorities);
        }
        self.dispatch(now);
    }

    fn ours_held(&self, c: usize) -> usize {
        self.held[c].iter().filter(|h| h.ours.is_some()).count()
    }

    /// The batch published task by task under a length cap: each is dispatched at once if a
    /// consumer has room; past the cap the oldest ready one is dropped or the new one refused.
    pub(super) fn arrive(&mut self, weights: &[f64]) {
        let Some(max) = self.exits.exits.max_length else { return };
        for (i, &w) in weights.iter().enumerate() {
            if self.exits.exits.reject_publish && self.queue.len() >= max {
                self.exits.refuse(i);
                self.left -= 1;
                continue;
            }
            self.queue.push_back((w, Some(i)));
            self.dispatch(Duration::ZERO);
            while self.queue.len() > max {
                if let Some((_, Some(j))) = self.queue.pop_front() {
                    self.exits.exit(j, DeathReason::Maxlen, Duration::ZERO);
                    self.left -= 1;
                }
            }
        }
    }

    /// The time to live ran out at `now`: every ready task of the batch is dead-lettered.
    pub(super) fn expire(&mut self, now: Duration) {
        self.exits.mark_expired();
        let mut kept = VecDeque::new();
        for (w, ours) in self.queue.drain(..) {
            match ours {
                Some(i) => {
                    self.exits.exit(i, DeathReason::Expired, now);
                    self.left -= 1;
                }
                None => kept.push_back((w, ours)),
            }
        }
        self.queue = kept;
    }

    pub(super) fn into_prediction(self) -> Prediction {
        let done = self.finish.iter().copied().max().unwrap_or(Duration::ZERO);
        let makespan = done.max(self.exits.last_exit);
        Prediction {
            tasks: self.tasks,
            finish: self.finish,
            makespan,
            grab: self.grab,
            dead: self.exits.dead,
            refused: self.exits.refused,
            deliveries: self.exits.deliveries,
        }
    }
}
