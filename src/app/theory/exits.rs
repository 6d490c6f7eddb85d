//! What takes a batch's tasks out of the queue otherwise than by being done, in the model:
//! poison tasks given back until the delivery limit dead-letters them, a length cap that drops
//! the oldest ready task or refuses the newest publish, and a time to live. RabbitMQ's rules
//! (rabbitmq-semantics.md): a requeued task goes back to the head (classic: its old position,
//! which is the head once everything before it was delivered; quorum: returns go first); a
//! quorum queue counts each return (`x-delivery-count`) and dead-letters the task once the count
//! exceeds `x-delivery-limit`; `x-max-length` counts ready tasks only; a ready task expires
//! `x-message-ttl` after its publish, which for a batch is one instant for all its tasks.

use std::time::Duration;

use super::TaskId;
use crate::policy::{DeathReason, Overflow, Policy};

/// The policy as the model needs it, for one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exits {
    /// Task ids (absolute) the consumers fail on; `first` is the batch's first id.
    pub poison: Vec<TaskId>,
    pub first: TaskId,
    pub delivery_limit: Option<u32>,
    pub max_length: Option<usize>,
    pub reject_publish: bool,
    pub ttl: Option<Duration>,
}

impl Exits {
    pub fn of(p: &Policy) -> Self {
        Exits {
            poison: p.poison.clone(),
            first: 1,
            delivery_limit: p.delivery_limit,
            max_length: p.max_length.map(|m| m as usize),
            reject_publish: p.overflow == Overflow::RejectPublish,
            ttl: p.task_ttl,
        }
    }

    /// Nothing leaves but by being done: the plain model.
    pub fn none(&self) -> bool {
        self.poison.is_empty() && self.max_length.is_none() && self.ttl.is_none()
    }
}

/// The model's running account of exits (indices are 0-based in the batch).
#[derive(Debug, Clone, Default)]
pub(super) struct Tracker {
    pub exits: Exits,
    /// Returns per batch task so far (its `x-delivery-count`).
    returns: Vec<u32>,
    pub dead: Vec<(TaskId, DeathReason)>,
    pub refused: Vec<TaskId>,
    pub deliveries: usize,
    /// When the last task left by an exit (part of the makespan).
    pub last_exit: Duration,
    expired: bool,
}

impl Tracker {
    pub fn new(exits: Exits, tasks: usize) -> Self {
        Tracker { exits, returns: vec![0; tasks], ..Tracker::default() }
    }

    pub fn fails(&self, i: usize) -> bool {
        !self.exits.poison.is_empty() && self.exits.poison.contains(&(self.exits.first + i as TaskId))
    }

    /// A poison task given back at `now`: true if it goes back to the queue, false if the
    /// broker dead-letters it instead (delivery limit, or its time to live is over).
    pub fn returned(&mut self, i: usize, now: Duration) -> bool {
        self.returns[i] += 1;
        if self.exits.delivery_limit.is_some_and(|l| self.returns[i] > l) {
            self.exit(i, DeathReason::DeliveryLimit, now);
            return false;
        }
        if self.exits.ttl.is_some_and(|ttl| now >= ttl) {
            self.exit(i, DeathReason::Expired, now);
            return false;
        }
        true
    }

    /// When the batch's ready tasks expire, if that is still to come and before `next` (the
    /// next completion; a completion at the same instant goes first).
    pub fn expiry_before(&self, next: Option<Duration>) -> Option<Duration> {
        let ttl = self.exits.ttl.filter(|_| !self.expired)?;
        next.is_none_or(|n| ttl < n).then_some(ttl)
    }

    pub fn exit(&mut self, i: usize, reason: DeathReason, now: Duration) {
        self.dead.push((i as TaskId + 1, reason));
        self.last_exit = self.last_exit.max(now);
    }

    pub fn refuse(&mut self, i: usize) {
        self.refused.push(i as TaskId + 1);
    }

    pub fn mark_expired(&mut self) {
        self.expired = true;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dispatch, Mode, State, predict_exits};
    use super::*;

    fn secs(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|&s| Duration::from_secs_f64(s)).collect()
    }

    fn run(delays: &[f64], tasks: usize, exits: Exits) -> super::super::Prediction {
        let state = State::idle(&secs(delays), Dispatch { mode: Mode::Fair, prefetch: 1 });
        predict_exits(&state, &vec![1.0; tasks], &[], &exits)
    }

    #[test]
    fn a_poison_task_goes_back_to_the_head_until_past_the_limit() {
        // t=0: C1<-1, C2<-2. t=1: C1<-3. t=1.6: C2<-4. t=2, 3: C1 fails #3 and, free first,
        // gets it back. t=3.2: C2<-5. t=4: third failure, past limit 2: dead; C1<-6.
        let exits = Exits { poison: vec![3], first: 1, delivery_limit: Some(2), ..Exits::default() };
        let p = run(&[1.0, 1.6], 6, exits);
        assert_eq!(p.tasks, vec![vec![1, 6], vec![2, 4, 5]]);
        assert_eq!(p.dead, vec![(3, DeathReason::DeliveryLimit)]);
        assert_eq!(p.deliveries, 8);
        assert_eq!(p.makespan, Duration::from_secs_f64(5.0));
    }

    #[test]
    fn poison_ids_count_from_the_batchs_first_task() {
        // The batch's tasks are #11 to #13: #12 is its second.
        let exits = Exits { poison: vec![12], first: 11, delivery_limit: Some(0), ..Exits::default() };
        let p = run(&[1.0], 3, exits);
        assert_eq!(p.dead, vec![(2, DeathReason::DeliveryLimit)]);
        assert_eq!(p.tasks, vec![vec![1, 3]]);
    }

    #[test]
    fn a_cap_drops_the_oldest_ready_or_refuses_the_newest() {
        let drop = Exits { max_length: Some(3), ..Exits::default() };
        let p = run(&[2.0, 2.5], 10, drop);
        let maxlen: Vec<_> = (3..=7).map(|id| (id, DeathReason::Maxlen)).collect();
        assert_eq!(p.dead, maxlen);
        assert_eq!(p.tasks, vec![vec![1, 8, 10], vec![2, 9]]);
        let refuse = Exits { max_length: Some(3), reject_publish: true, ..Exits::default() };
        let p = run(&[2.0, 2.5], 10, refuse);
        assert_eq!(p.refused, vec![6, 7, 8, 9, 10]);
        assert_eq!(p.tasks, vec![vec![1, 3, 5], vec![2, 4]]);
        assert!(p.dead.is_empty());
    }

    #[test]
    fn stale_ready_tasks_expire_at_their_ttl() {
        let exits = Exits { max_length: Some(3), ttl: Some(Duration::from_secs(3)), ..Exits::default() };
        let p = run(&[2.0, 2.5], 10, exits);
        assert_eq!(p.dead.last(), Some(&(10, DeathReason::Expired)));
        assert_eq!(p.dead.len(), 6);
        assert_eq!(p.tasks, vec![vec![1, 8], vec![2, 9]]);
        // No cap: every ready task at 3s expires at once; the ones in hand are done.
        let p = run(&[2.0], 4, Exits { ttl: Some(Duration::from_secs(3)), ..Exits::default() });
        assert_eq!(p.tasks, vec![vec![1, 2]]);
        assert_eq!(p.dead, vec![(3, DeathReason::Expired), (4, DeathReason::Expired)]);
        assert_eq!(p.makespan, Duration::from_secs(4));
    }

    #[test]
    fn the_policy_becomes_the_models_exits() {
        let policy = Policy {
            max_length: Some(3),
            overflow: Overflow::RejectPublish,
            poison: vec![2],
            ..Policy::default()
        };
        let e = Exits::of(&policy);
        assert_eq!((e.max_length, e.reject_publish, e.poison.clone()), (Some(3), true, vec![2]));
        assert!(!e.none());
        assert!(Exits::of(&Policy::default()).none());
    }
}
