//! The task ledger: every published task is in exactly one place at any moment.
//!
//! The ledger is fed only by workload events, so it is what the client side *knows*; RabbitMQ
//! cannot report per-consumer unacked counts over AMQP, which is why warren keeps this itself.
//! Finished tasks are only counted (not stored) so a long run keeps bounded memory.

use std::collections::BTreeMap;

mod open_tasks;
mod whereabouts;

use open_tasks::OpenTasks;
pub use whereabouts::{Counted, Whereabouts};

use super::{ConsumerId, TaskId};
use crate::policy::DeathReason;

/// Where one task is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Published and, as far as the client knows, ready in the broker's queue.
    AtBroker,
    /// Delivered under manual ack, waiting in the consumer's buffer; the broker counts it unacked.
    Unacked(ConsumerId),
    /// Delivered under auto-ack, waiting in the consumer's buffer; the broker has forgotten it.
    Backlog(ConsumerId),
    /// Being processed by a consumer.
    InProcess { consumer: ConsumerId, manual_ack: bool },
}

impl Place {
    /// The consumer holding the task, if one does.
    pub fn holder(self) -> Option<ConsumerId> {
        match self {
            Place::AtBroker => None,
            Place::Unacked(c) | Place::Backlog(c) | Place::InProcess { consumer: c, .. } => Some(c),
        }
    }
}

/// Why a task was lost. Shown on screen and counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossReason {
    /// An auto-ack consumer crashed holding it: the broker had already forgotten it.
    KilledUnderAutoAck,
    /// The broker refused the publish (basic.nack from publisher confirms) or it never arrived.
    PublishFailed,
    /// The broker no longer had it after a crash or a reconnect: in flight to an auto-ack
    /// consumer that died, in a non-durable queue of a restarted broker, or never arrived.
    Vanished,
    /// A non-durable queue or a transient task: the broker restarted and kept nothing of it.
    NotPersistent,
}

impl LossReason {
    pub fn describe(self) -> &'static str {
        match self {
            LossReason::KilledUnderAutoAck => "consumer killed under auto-ack",
            LossReason::PublishFailed => "publish refused or failed",
            LossReason::Vanished => "gone from the broker (crash/reconnect)",
            LossReason::NotPersistent => "not persistent: gone with the broker restart",
        }
    }
}

/// Counts of tasks per place; `published == sum of the rest` at all times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub published: u64,
    pub at_broker: u64,
    pub unacked: u64,
    pub backlog: u64,
    pub in_process: u64,
    pub done: u64,
    pub lost: u64,
    /// Dead-lettered by the broker (delivery limit, length cap, TTL) and seen in the
    /// dead-letter queue warren watches.
    pub dead: u64,
    /// Refused at publish: the broker nacked it (a full queue with overflow reject-publish).
    pub refused: u64,
    /// Deliveries that carried the redelivered flag (not a place: a task can be redelivered often).
    pub redelivered: u64,
    /// Redeliveries of tasks already done: the ack was lost with a connection, so the broker
    /// delivered again (at-least-once). Processed again, but counted once in `done`.
    pub duplicates: u64,
}

impl Totals {
    /// The sum of the places; equals `published` when the ledger is consistent.
    pub fn accounted(&self) -> u64 {
        self.at_broker
            + self.unacked
            + self.backlog
            + self.in_process
            + self.done
            + self.lost
            + self.dead
            + self.refused
    }

    /// Unacked from the broker's point of view: manual-ack tasks held by consumers.
    pub fn broker_unacked(&self, in_process_manual: u64) -> u64 {
        self.unacked + in_process_manual
    }
}

/// What one consumer holds right now, as the broker would count it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Manual-ack deliveries, waiting or in process: the broker's unacked count for this consumer.
    pub unacked: u64,
    /// Auto-ack deliveries waiting in the client: the pile-up round-robin causes.
    pub backlog: u64,
    /// Waiting, whichever the ack mode (not yet started).
    pub waiting: u64,
}

/// A contradiction between an event and the ledger (e.g. a delivery for a task never published).
/// Kept as data so the UI can show it; it would mean a bug or a foreign publisher on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly(pub String);

#[derive(Debug, Default)]
pub struct Ledger {
    open: OpenTasks,
    whereabouts: Whereabouts,
    totals: Totals,
    in_process_manual: u64,
    held: Vec<Held>,
    /// The highest id published so far: ids are handed out in order from 1.
    max_published: TaskId,
    /// Duplicates being processed now (see `Totals::duplicates`).
    duplicates: std::collections::HashSet<TaskId>,
    lost_by_reason: BTreeMap<LossReason, u64>,
    dead_by_reason: BTreeMap<DeathReason, u64>,
    anomalies: Vec<Anomaly>,
}

impl Ledger {
    pub fn totals(&self) -> Totals {
        self.totals
    }

    pub fn broker_unacked(&self) -> u64 {
        self.totals.broker_unacked(self.in_process_manual)
    }

    /// What `consumer` holds now.
    pub fn held_by(&self, consumer: ConsumerId) -> Held {
        self.held.get(consumer).copied().unwrap_or_default()
    }

    pub fn lost_by_reason(&self) -> &BTreeMap<LossReason, u64> {
        &self.lost_by_reason
    }

    /// Why tasks were dead-lettered, e.g. {delivery_limit: 2}.
    pub fn dead_by_reason(&self) -> &BTreeMap<DeathReason, u64> {
        &self.dead_by_reason
    }

    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// The ids in each place, in the order they will be handled (for the flow view).
    pub fn whereabouts(&self) -> &Whereabouts {
        &self.whereabouts
    }

    pub fn place(&self, id: TaskId) -> Option<Place> {
        self.open.get(&id).copied()
    }

    /// Ids still at the broker, in id order (used to reconcile after a reconnect).
    pub fn at_broker_ids(&self) -> Vec<TaskId> {
        self.whereabouts.ready().map(|(id, _)| id).collect()
    }

    pub fn published(&mut self, id: TaskId) {
        if self.open.get(&id).is_some() {
            self.anomaly(format!("task #{id} published twice"));
            return;
        }
        self.totals.published += 1;
        self.max_published = self.max_published.max(id);
        self.enter(id, Place::AtBroker, false);
    }

    /// Returns the consumer that held the task before, when the broker redelivered it before
    /// that consumer reported giving it back (events of different connections can cross).
    pub fn delivered(
        &mut self,
        id: TaskId,
        consumer: ConsumerId,
        manual_ack: bool,
        redelivered: bool,
    ) -> Option<ConsumerId> {
        if redelivered {
            self.totals.redelivered += 1;
        }
        let place = if manual_ack { Place::Unacked(consumer) } else { Place::Backlog(consumer) };
        match self.open.get(&id).copied() {
            Some(Place::AtBroker) => {
                self.transition(id, place, redelivered, "delivered");
                None
            }
            // The broker redelivered it before the old holder's report reached us.
            Some(p) if redelivered && p.holder() != Some(consumer) => {
                self.transition(id, place, redelivered, "delivered");
                p.holder()
            }
            Some(_) => {
                self.anomaly(format!("task #{id} delivered to C{} while another holds it", consumer + 1));
                None
            }
            None if redelivered && id <= self.max_published => {
                self.totals.duplicates += 1;
                self.duplicates.insert(id);
                None
            }
            None => {
                self.anomaly(format!("task #{id} delivered but the ledger does not hold it"));
                None
            }
        }
    }

    pub fn started(&mut self, id: TaskId, consumer: ConsumerId) {
        if !self.duplicates.is_empty() && self.duplicates.contains(&id) {
            return;
        }
        let manual_ack = matches!(self.open.get(&id), Some(Place::Unacked(_)));
        self.transition(id, Place::InProcess { consumer, manual_ack }, false, "started");
    }

    /// Processed (and acked, for a manual-ack task): the task is done.
    /// True when this finished the task (false for a duplicate or an unknown id).
    pub fn done(&mut self, id: TaskId) -> bool {
        if !self.duplicates.is_empty() && self.duplicates.remove(&id) {
            return false;
        }
        let finished = self.leave(id, "finished").is_some();
        if finished {
            self.totals.done += 1;
            self.whereabouts.forget(id);
        }
        finished
    }

    /// The broker has it again: the holding channel closed or the consumer nacked with requeue.
    /// Ignored (false) when `consumer` no longer holds it: it was already redelivered elsewhere.
    pub fn requeued(&mut self, id: TaskId, consumer: ConsumerId) -> bool {
        if self.duplicates.remove(&id) {
            return false;
        }
        if self.holder(id) != Some(consumer) {
            return false;
        }
        self.transition(id, Place::AtBroker, true, "requeued");
        self.whereabouts.returned(id);
        true
    }

    /// The broker dead-lettered it (the dead-letter queue warren watches received it), from
    /// wherever the ledger had it: usually ready at the broker. False if it was not open.
    pub fn dead(&mut self, id: TaskId, reason: DeathReason) -> bool {
        if self.open.get(&id).is_none() {
            self.anomaly(format!(
                "task #{id} dead-lettered ({}) but the ledger does not hold it",
                reason.as_str()
            ));
            return false;
        }
        self.leave(id, "dead-lettered");
        self.whereabouts.forget(id);
        self.totals.dead += 1;
        *self.dead_by_reason.entry(reason).or_default() += 1;
        true
    }

    /// The broker refused the publish (basic.nack): it never entered the queue.
    pub fn refused(&mut self, id: TaskId) -> bool {
        if self.leave(id, "refused").is_none() {
            return false;
        }
        self.totals.refused += 1;
        true
    }

    /// A consumer lost a task it held (false if it did not hold it).
    pub fn lost(&mut self, id: TaskId, consumer: ConsumerId, reason: LossReason) -> bool {
        if self.duplicates.remove(&id) {
            return false;
        }
        if self.holder(id) != Some(consumer) {
            return false;
        }
        self.lose(id, reason);
        true
    }

    /// The task never reached a consumer (refused publish, or missing after a reconnect).
    pub fn lost_unheld(&mut self, id: TaskId, reason: LossReason) {
        self.lose(id, reason);
    }

    fn lose(&mut self, id: TaskId, reason: LossReason) {
        if self.leave(id, "lost").is_some() {
            self.whereabouts.forget(id);
            self.totals.lost += 1;
            *self.lost_by_reason.entry(reason).or_default() += 1;
        }
    }

    fn holder(&self, id: TaskId) -> Option<ConsumerId> {
        self.open.get(&id).and_then(|p| p.holder())
    }

    /// `again`: the task was handed out before (requeued, or redelivered).
    fn transition(&mut self, id: TaskId, to: Place, again: bool, what: &str) {
        if self.leave(id, what).is_some() {
            self.enter(id, to, again);
        }
    }

    fn enter(&mut self, id: TaskId, place: Place, again: bool) {
        self.whereabouts.enter(id, place, again);
        *self.counter(place) += 1;
        if let Place::InProcess { manual_ack: true, .. } = place {
            self.in_process_manual += 1;
        }
        self.adjust_held(place, 1);
        self.open.insert(id, place);
    }

    /// Keep the per-consumer counts in step with the place counts (`delta` is +1 or -1).
    fn adjust_held(&mut self, place: Place, delta: i64) {
        let Some(consumer) = place.holder() else { return };
        if self.held.len() <= consumer {
            self.held.resize(consumer + 1, Held::default());
        }
        let h = &mut self.held[consumer];
        let bump = |v: &mut u64| *v = v.saturating_add_signed(delta);
        match place {
            Place::Unacked(_) => {
                bump(&mut h.unacked);
                bump(&mut h.waiting);
            }
            Place::Backlog(_) => {
                bump(&mut h.backlog);
                bump(&mut h.waiting);
            }
            Place::InProcess { manual_ack: true, .. } => bump(&mut h.unacked),
            Place::InProcess { .. } | Place::AtBroker => {}
        }
    }

    fn leave(&mut self, id: TaskId, what: &str) -> Option<Place> {
        let Some(place) = self.open.remove(&id) else {
            self.anomaly(format!("task #{id} {what} but the ledger does not hold it"));
            return None;
        };
        *self.counter(place) -= 1;
        self.whereabouts.leave(id, place);
        if let Place::InProcess { manual_ack: true, .. } = place {
            self.in_process_manual -= 1;
        }
        self.adjust_held(place, -1);
        Some(place)
    }

    fn counter(&mut self, place: Place) -> &mut u64 {
        match place {
            Place::AtBroker => &mut self.totals.at_broker,
            Place::Unacked(_) => &mut self.totals.unacked,
            Place::Backlog(_) => &mut self.totals.backlog,
            Place::InProcess { .. } => &mut self.totals.in_process,
        }
    }

    fn anomaly(&mut self, text: String) {
        // Keep the first few only: one bug must not grow memory without bound.
        if self.anomalies.len() < 32 {
            self.anomalies.push(Anomaly(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consistent(l: &Ledger) {
        let t = l.totals();
        assert_eq!(t.published, t.accounted(), "{t:?}");
    }

    #[test]
    fn a_task_walks_through_every_place_once() {
        let mut l = Ledger::default();
        l.published(1);
        assert_eq!(l.place(1), Some(Place::AtBroker));
        l.delivered(1, 0, true, false);
        assert_eq!(l.place(1), Some(Place::Unacked(0)));
        assert_eq!(l.broker_unacked(), 1);
        l.started(1, 0);
        assert_eq!(l.place(1), Some(Place::InProcess { consumer: 0, manual_ack: true }));
        assert_eq!(l.broker_unacked(), 1);
        assert_eq!(l.held_by(0), Held { unacked: 1, backlog: 0, waiting: 0 });
        l.done(1);
        assert_eq!(l.held_by(0), Held::default());
        assert_eq!(l.place(1), None);
        assert_eq!(l.totals().done, 1);
        assert_eq!(l.broker_unacked(), 0);
        consistent(&l);
    }

    #[test]
    fn auto_ack_tasks_pile_up_as_backlog_not_unacked() {
        let mut l = Ledger::default();
        for id in 1..=3 {
            l.published(id);
            l.delivered(id, 2, false, false);
        }
        l.started(1, 2);
        let t = l.totals();
        assert_eq!((t.backlog, t.in_process, t.unacked), (2, 1, 0));
        assert_eq!(l.held_by(2), Held { unacked: 0, backlog: 2, waiting: 2 });
        assert_eq!(l.held_by(0), Held::default());
        assert_eq!(l.broker_unacked(), 0);
        consistent(&l);
    }

    #[test]
    fn requeue_and_redelivery_are_counted_and_totals_still_add_up() {
        let mut l = Ledger::default();
        l.published(7);
        l.delivered(7, 0, true, false);
        l.started(7, 0);
        assert!(l.requeued(7, 0));
        assert!(!l.requeued(7, 0), "not held any more");
        assert_eq!(l.place(7), Some(Place::AtBroker));
        l.delivered(7, 1, true, true);
        l.started(7, 1);
        l.done(7);
        let t = l.totals();
        assert_eq!((t.done, t.redelivered, t.lost), (1, 1, 0));
        consistent(&l);
    }

    #[test]
    fn a_redelivery_that_overtakes_the_requeue_report_moves_the_task() {
        let mut l = Ledger::default();
        l.published(3);
        l.delivered(3, 0, true, false);
        l.started(3, 0);
        // C2 gets it redelivered before C1's "requeued" arrives.
        assert_eq!(l.delivered(3, 1, true, true), Some(0));
        assert_eq!(l.place(3), Some(Place::Unacked(1)));
        assert!(!l.requeued(3, 0), "the late report is ignored");
        assert_eq!(l.place(3), Some(Place::Unacked(1)));
        assert_eq!(l.broker_unacked(), 1);
        consistent(&l);
    }

    #[test]
    fn a_done_task_delivered_again_is_a_duplicate_not_a_second_task() {
        let mut l = Ledger::default();
        l.published(1);
        l.delivered(1, 0, true, false);
        l.started(1, 0);
        l.done(1);
        // The ack was lost with the connection: the broker delivers it again.
        assert_eq!(l.delivered(1, 1, true, true), None);
        l.started(1, 1);
        l.done(1);
        let t = l.totals();
        assert_eq!((t.done, t.duplicates, t.redelivered), (1, 1, 1));
        assert!(l.anomalies().is_empty(), "{:?}", l.anomalies());
        consistent(&l);
    }

    #[test]
    fn a_stale_first_delivery_does_not_steal_a_held_task() {
        let mut l = Ledger::default();
        l.published(2);
        l.delivered(2, 0, true, false);
        l.delivered(2, 1, true, false);
        assert_eq!(l.place(2), Some(Place::Unacked(0)));
        assert_eq!(l.anomalies().len(), 1);
        consistent(&l);
    }

    #[test]
    fn lost_tasks_keep_their_reason() {
        let mut l = Ledger::default();
        l.published(1);
        l.delivered(1, 0, false, false);
        assert!(!l.lost(1, 5, LossReason::KilledUnderAutoAck), "C6 never held it");
        assert!(l.lost(1, 0, LossReason::KilledUnderAutoAck));
        assert_eq!(l.lost_by_reason().get(&LossReason::KilledUnderAutoAck), Some(&1));
        consistent(&l);
    }

    #[test]
    fn a_poison_task_cycles_then_lands_dead_and_the_sum_still_holds() {
        let mut l = Ledger::default();
        for id in 1..=2 {
            l.published(id);
        }
        // #1 fails three times (three deliveries, two redelivered), then the broker drops it.
        for (n, consumer) in [0, 1, 0].into_iter().enumerate() {
            l.delivered(1, consumer, true, n > 0);
            l.started(1, consumer);
            assert!(l.requeued(1, consumer));
            assert_eq!(l.whereabouts().returns(1), n as u32 + 1);
        }
        assert_eq!(l.whereabouts().ready_counted().collect::<Vec<_>>(), [(1, 3), (2, 0)]);
        assert!(l.dead(1, DeathReason::DeliveryLimit));
        assert!(!l.dead(1, DeathReason::DeliveryLimit), "only once");
        assert_eq!(l.whereabouts().returns(1), 0, "forgotten once settled");
        assert!(l.refused(2));
        let t = l.totals();
        assert_eq!((t.dead, t.refused, t.redelivered, t.at_broker), (1, 1, 2, 0));
        assert_eq!(l.dead_by_reason().get(&DeathReason::DeliveryLimit), Some(&1));
        assert_eq!(l.anomalies().len(), 1, "the second dead letter is an anomaly: {:?}", l.anomalies());
        consistent(&l);
    }

    #[test]
    fn contradictions_are_recorded_not_panicked_on() {
        let mut l = Ledger::default();
        l.delivered(99, 0, true, false);
        l.done(5);
        l.published(1);
        l.published(1);
        assert_eq!(l.anomalies().len(), 3);
        assert_eq!(l.totals().published, 1);
        consistent(&l);
    }
}
