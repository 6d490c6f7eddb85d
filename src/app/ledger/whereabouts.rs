//! Which task ids are where, in the order they will be handled: the ready queue in queue order
//! and each consumer's waiting tasks in delivery order. The ledger counts places; this keeps the
//! ids the flow view draws (`#11 #12 #13 … +40`), so nobody has to scan every open task per frame.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{Place, TaskId};
use crate::app::ConsumerId;

/// A task id and whether it was handed out before (requeued, then ready or delivered again).
pub type Marked = (TaskId, bool);

#[derive(Debug, Default)]
pub struct Whereabouts {
    /// Ready at the broker, in queue order: RabbitMQ puts a requeued message back at its
    /// original position, so queue order is id order. The flag says it was requeued.
    ready: BTreeMap<TaskId, bool>,
    /// Per consumer, delivered and not yet started, in delivery order (the order it will start
    /// them: lapin hands deliveries over in order).
    waiting: Vec<VecDeque<Marked>>,
    /// How often each open task went back to the queue (nacked with requeue, or held by a
    /// channel that closed): a poison task cycling shows `↻3#7`. Only requeued tasks are here.
    returns: HashMap<TaskId, u32>,
}

/// A task id and how often it went back to the queue (0: never), for drawing.
pub type Counted = (TaskId, u32);

impl Whereabouts {
    /// Ready tasks in queue order.
    pub fn ready(&self) -> impl Iterator<Item = Marked> + '_ {
        self.ready.iter().map(|(id, again)| (*id, *again))
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// What `consumer` holds and has not started, in the order it will start them.
    pub fn waiting(&self, consumer: ConsumerId) -> impl Iterator<Item = Marked> + '_ {
        self.waiting.get(consumer).into_iter().flatten().copied()
    }

    /// Ready tasks in queue order, with how often each went back.
    pub fn ready_counted(&self) -> impl Iterator<Item = Counted> + '_ {
        self.ready().map(|m| self.counted(m))
    }

    /// What `consumer` waits to start, with how often each went back.
    pub fn waiting_counted(&self, consumer: ConsumerId) -> impl Iterator<Item = Counted> + '_ {
        self.waiting(consumer).map(|m| self.counted(m))
    }

    /// How often this open task went back to the queue.
    pub fn returns(&self, id: TaskId) -> u32 {
        if self.returns.is_empty() { 0 } else { self.returns.get(&id).copied().unwrap_or(0) }
    }

    /// A task handed out again without a requeue seen here (redelivered after a reconnect)
    /// counts once.
    fn counted(&self, (id, again): Marked) -> Counted {
        (id, self.returns(id).max(u32::from(again)))
    }

    pub(super) fn returned(&mut self, id: TaskId) {
        *self.returns.entry(id).or_default() += 1;
    }

    /// The task is finished (done, lost or dead-lettered): nothing to count any more.
    pub(super) fn forget(&mut self, id: TaskId) {
        if !self.returns.is_empty() {
            self.returns.remove(&id);
        }
    }

    pub(super) fn enter(&mut self, id: TaskId, place: Place, again: bool) {
        match place {
            Place::AtBroker => {
                self.ready.insert(id, again);
            }
            Place::Unacked(c) | Place::Backlog(c) => {
                if self.waiting.len() <= c {
                    self.waiting.resize_with(c + 1, VecDeque::new);
                }
                self.waiting[c].push_back((id, again));
            }
            Place::InProcess { .. } => {}
        }
    }

    pub(super) fn leave(&mut self, id: TaskId, place: Place) {
        match place {
            Place::AtBroker => {
                self.ready.remove(&id);
            }
            Place::Unacked(c) | Place::Backlog(c) => {
                let Some(queue) = self.waiting.get_mut(c) else { return };
                // Tasks start in delivery order: the one leaving is almost always the front.
                if let Some(i) = queue.iter().position(|(t, _)| *t == id) {
                    queue.remove(i);
                }
            }
            Place::InProcess { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_in_queue_order_and_waiting_in_delivery_order() {
        let mut w = Whereabouts::default();
        for id in [3, 1, 2] {
            w.enter(id, Place::AtBroker, false);
        }
        w.enter(9, Place::Backlog(1), false);
        w.enter(4, Place::Backlog(1), true);
        assert_eq!(w.ready().collect::<Vec<_>>(), [(1, false), (2, false), (3, false)]);
        assert_eq!(w.waiting(1).collect::<Vec<_>>(), [(9, false), (4, true)]);
        assert_eq!(w.waiting(0).count() + w.waiting(7).count(), 0);
        w.leave(2, Place::AtBroker);
        w.leave(4, Place::Backlog(1));
        assert_eq!(w.ready().map(|m| m.0).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(w.waiting(1).collect::<Vec<_>>(), [(9, false)]);
        assert_eq!(w.ready_len(), 2);
    }
}
