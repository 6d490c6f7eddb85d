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
