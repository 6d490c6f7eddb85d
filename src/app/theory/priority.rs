//! Who may receive the next message: consumer priorities (RabbitMQ's consumer-priority.md) and
//! single active consumer (consumers.md#single-active-consumer). Both checked on RabbitMQ 3.10
//! with pika:
//! - priorities: the ring is served highest priority first; a lower-priority consumer gets a
//!   message only while every higher one is blocked (its prefetch window full). Auto-ack
//!   consumers are never full, so the highest-priority one takes everything.
//! - single active consumer (classic queue): the first consumer to register is active, the others
//!   stand by in registration order. When the active one cancels or its channel closes, the one
//!   standing by with the highest priority takes over (the first registered among equals), and
//!   the messages it held unacked are requeued first, so the new active one gets them first. A
//!   consumer registering later never takes over from a live active one, whatever its priority.

use std::collections::VecDeque;

/// A single-active-consumer queue: one consumer receives, the others stand by. Used by the
/// model (indices into its consumers) and by the app (consumer ids) alike.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SingleActive {
    pub active: Option<usize>,
    /// Registered consumers standing by, in registration order.
    pub standby: Vec<usize>,
}

impl SingleActive {
    /// `0..n` registered in order: the first is active.
    pub fn in_order(n: usize) -> Self {
        let mut s = Self::default();
        (0..n).for_each(|c| s.register(c));
        s
    }

    /// `c` registers (basic.consume): active if nobody is, else last in line.
    pub fn register(&mut self, c: usize) {
        if self.active == Some(c) || self.standby.contains(&c) {
            return;
        }
        if self.active.is_none() {
            self.active = Some(c);
        } else {
            self.standby.push(c);
        }
    }

    /// `c` cancels or its channel closes. If it was the active one, the next takes over: that
    /// one is returned.
    pub fn leave(&mut self, c: usize, priorities: &[i32]) -> Option<usize> {
        self.standby.retain(|&s| s != c);
        if self.active != Some(c) {
            return None;
        }
        self.active = self.next(priorities);
        self.standby.retain(|&s| Some(s) != self.active);
        self.active
    }

    /// Who would take over from the active one: the highest priority standing by, the first
    /// registered among equals.
    pub fn next(&self, priorities: &[i32]) -> Option<usize> {
        let best = self.standby.iter().map(|&c| priority_of(priorities, c)).max()?;
        self.standby.iter().copied().find(|&c| priority_of(priorities, c) == best)
    }

    /// A delivery went to `c`, standing by: it is the active one, whatever was derived before.
    /// True if that changed who is active. A consumer not registered (one that just cancelled,
    /// still receiving what was on its way) changes nothing.
    pub fn delivered_to(&mut self, c: usize) -> bool {
        if !self.standby.contains(&c) {
            return false;
        }
        self.standby.retain(|&s| s != c);
        if let Some(old) = self.active.replace(c) {
            self.standby.insert(0, old);
        }
        true
    }

    pub fn registered(&self, c: usize) -> bool {
        self.active == Some(c) || self.standby.contains(&c)
    }
}

/// A consumer's priority; consumers not listed have RabbitMQ's default, 0.
pub fn priority_of(priorities: &[i32], c: usize) -> i32 {
    priorities.get(c).copied().unwrap_or(0)
}

/// The position in the ring of the consumer offered the next message: the first of the
/// highest priority (the head itself when all are equal).
pub(super) fn head(ring: &VecDeque<usize>, priorities: &[i32]) -> Option<usize> {
    if priorities.is_empty() {
        return (!ring.is_empty()).then_some(0);
    }
    let best = ring.iter().map(|&c| priority_of(priorities, c)).max()?;
    ring.iter().position(|&c| priority_of(priorities, c) == best)
}

#[cfg(test)]
#[path = "priority_tests.rs"]
mod tests;
