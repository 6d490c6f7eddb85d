//! Single active consumer as the app can know it. AMQP never tells a client that it became the
//! active consumer, so the app derives it from RabbitMQ's rules (see `theory/priority.rs`): the
//! first consumer to register is active, the others stand by in registration order, and when
//! the active one cancels or its channel closes the one standing by with the highest priority
//! takes over. The deliveries check the derivation: a delivery to a consumer thought to stand
//! by means it is the active one.
//!
//! A dispatch switch cancels and re-consumes every consumer in order (C1, C2, ...): each
//! cancel of the active one hands over to the next, so activity passes once round the consumers
//! and comes back to the first (with equal priorities), as on RabbitMQ. Each one may take ready
//! tasks while it is briefly active; the theory model follows that too.

use std::time::Instant;

use super::theory::SingleActive;
use super::{App, ConsumerId, Event};

/// What a consumer of a single-active-consumer queue is doing, as its lane says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one the broker delivers to.
    Active,
    /// Standing by, and the one that takes over when the active one goes.
    Next,
    Standby,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Next => "standby (next)",
            Role::Standby => "standby",
        }
    }
}

impl App {
    /// Follow one event for the single active consumer (nothing unless the queue has one).
    pub(super) fn observe_single_active(&mut self, event: &Event, now: Instant) {
        if self.single_active.is_none() {
            return;
        }
        match *event {
            Event::ConsumerReady { consumer } => {
                if let Some(sac) = &mut self.single_active {
                    sac.register(consumer);
                }
            }
            Event::ConsumerReconnecting { consumer, .. } => {
                self.single_active_left(consumer, "lost its connection", now);
            }
            Event::ConsumerGone { consumer, killed } => {
                self.single_active_left(consumer, if killed { "was killed" } else { "was removed" }, now);
            }
            Event::Delivered { consumer, id, .. }
                if self.single_active.as_mut().is_some_and(|sac| sac.delivered_to(consumer)) =>
            {
                self.note(format!("C{} received #{id}: it is the active consumer now", consumer + 1), now);
            }
            _ => {}
        }
        self.refresh_roles();
    }

    /// `c` cancelled or its channel closed (`why`, in words): if it was the active one, the next
    /// takes over, and a notice says so.
    pub(super) fn single_active_left(&mut self, c: ConsumerId, why: &str, now: Instant) {
        let priorities: Vec<i32> = self.consumers.iter().map(|c| c.priority).collect();
        let Some(sac) = &mut self.single_active else { return };
        if let Some(next) = sac.leave(c, &priorities) {
            let (c, next) = (c + 1, next + 1);
            // Its unacked tasks are requeued first, so the newcomer gets them first: the lanes show it.
            self.note(format!("C{c} {why}: C{next} takes over as the active consumer"), now);
        }
        self.refresh_roles();
    }

    /// `c` cancels its registration now (removed): if it was active, the next takes over (the
    /// lanes show it; the removal itself is the news).
    pub(super) fn single_active_cancelled(&mut self, c: ConsumerId) {
        let priorities: Vec<i32> = self.consumers.iter().map(|c| c.priority).collect();
        if let Some(sac) = &mut self.single_active {
            sac.leave(c, &priorities);
        }
        self.refresh_roles();
    }

    /// A switch: every registered consumer cancels and consumes again, in consumer order.
    pub(super) fn single_active_switched(&mut self) {
        let priorities: Vec<i32> = self.consumers.iter().map(|c| c.priority).collect();
        if let Some(sac) = &mut self.single_active {
            for c in 0..priorities.len() {
                if sac.registered(c) {
                    sac.leave(c, &priorities);
                    sac.register(c);
                }
            }
        }
        self.refresh_roles();
    }

    /// On a single-active queue, the consumer active after the switch just made (what `m` tells).
    pub(super) fn single_active_after_switch(&self) -> Option<ConsumerId> {
        self.single_active.as_ref()?.active
    }

    fn priority(&self, c: ConsumerId) -> i32 {
        self.consumers.get(c).map_or(0, |c| c.priority)
    }

    fn refresh_roles(&mut self) {
        let Some(sac) = &self.single_active else { return };
        let priorities: Vec<i32> = self.consumers.iter().map(|c| c.priority).collect();
        let next = sac.next(&priorities);
        for c in &mut self.consumers {
            c.role = if sac.active == Some(c.id) {
                Some(Role::Active)
            } else if next == Some(c.id) {
                Some(Role::Next)
            } else if sac.standby.contains(&c.id) {
                Some(Role::Standby)
            } else {
                None
            };
        }
    }

    /// The single-active state for a batch's model, in the batch's consumer indices; consumers
    /// still starting register within milliseconds, in order, after those registered.
    pub(super) fn single_active_state(
        &self,
        consumers: &[(ConsumerId, std::time::Duration)],
    ) -> Option<SingleActive> {
        let sac = self.single_active.as_ref()?;
        let index = |id: ConsumerId| consumers.iter().position(|(c, _)| *c == id);
        let mut model =
            SingleActive { active: None, standby: sac.standby.iter().filter_map(|&c| index(c)).collect() };
        match sac.active.and_then(index) {
            Some(active) => model.active = Some(active),
            // The active one is going (killed or removed just now): the next takes over.
            None => {
                let priorities: Vec<i32> = consumers.iter().map(|(id, _)| self.priority(*id)).collect();
                model.active = model.next(&priorities);
                model.standby.retain(|&c| Some(c) != model.active);
            }
        }
        for (i, (id, _)) in consumers.iter().enumerate() {
            let starting =
                self.consumers.get(*id).is_some_and(|c| c.status == super::ConsumerStatus::Starting);
            if starting && !sac.registered(*id) {
                model.register(i);
            }
        }
        Some(model)
    }
}

#[cfg(test)]
#[path = "single_active_tests.rs"]
mod tests;
