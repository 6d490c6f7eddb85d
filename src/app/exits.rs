//! Tasks that leave the queue otherwise than by being done: dead-lettered by the broker (a
//! delivery limit, a length cap, a time to live) and seen in the dead-letter queue warren
//! watches. Refused publishes are handled with the other producer events.

use std::time::Instant;

use super::{App, SpanEnd, TaskId};
use crate::policy::DeathReason;

impl App {
    pub(super) fn dead_lettered(&mut self, id: TaskId, reason: DeathReason, now: Instant) {
        // Normally the task is ready at the broker (a poison task is reported requeued before
        // its last nack); should the dead letter overtake that report, the holder lets go.
        let holder = self.ledger.place(id).and_then(|p| p.holder());
        if !self.ledger.dead(id, reason) {
            return;
        }
        if let Some(consumer) = holder {
            self.release_dead(consumer, id, now);
        }
        self.dead_letters.push((id, reason));
        if let Some(b) = self.batch_of(id) {
            b.dead += 1;
        }
        self.task_settled(id, now);
    }

    fn release_dead(&mut self, consumer: usize, id: TaskId, now: Instant) {
        if let Some(c) = self.consumer(consumer)
            && c.working.is_some_and(|w| w.id == id)
        {
            c.working = None;
            c.span_ended(&[id], SpanEnd::Lost, now);
        }
    }

    /// Dead-lettered tasks by reason, in RabbitMQ's words, for the reports.
    pub fn dead_reasons(&self) -> std::collections::BTreeMap<String, u64> {
        self.ledger.dead_by_reason().iter().map(|(r, n)| (r.as_str().to_string(), *n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::app::testing::registered;
    use crate::app::{Event, Mode, Msg};
    use crate::policy::DeathReason;

    #[test]
    fn a_poison_task_goes_round_then_dead_and_its_batch_settles() {
        let (mut a, now) = registered(&[100, 100], Mode::Fair);
        let cmd = a.start_batch(2, now);
        assert!(matches!(cmd, crate::app::Command::Publish { count: 2, .. }));
        let ev = |a: &mut crate::app::App, e| {
            a.update(Msg::Event(e), now);
        };
        ev(&mut a, Event::Published { id: 1, batch: Some(1) });
        ev(&mut a, Event::Published { id: 2, batch: Some(1) });
        for (n, consumer) in [0, 1, 0].into_iter().enumerate() {
            ev(&mut a, Event::Delivered { consumer, id: 1, manual_ack: true, redelivered: n > 0 });
            ev(&mut a, Event::Started { consumer, id: 1, work: std::time::Duration::from_millis(100) });
            ev(&mut a, Event::Requeued { consumer, ids: vec![1] });
        }
        assert_eq!(a.ledger.whereabouts().returns(1), 3);
        ev(&mut a, Event::DeadLettered { id: 1, reason: DeathReason::DeliveryLimit });
        ev(&mut a, Event::Refused { id: 2 });
        let b = a.batches.last().unwrap();
        assert_eq!((b.dead, b.refused, b.outstanding, b.lost), (1, 1, 0, 0));
        assert!(b.finished.is_some(), "nothing left: the batch is over");
        let t = a.ledger.totals();
        assert_eq!((t.dead, t.refused, t.published), (2 - 1, 1, 2));
        assert_eq!(t.accounted(), t.published);
        assert_eq!(a.dead_letters.iter().copied().collect::<Vec<_>>(), [(1, DeathReason::DeliveryLimit)]);
        assert_eq!(a.refused.iter().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(a.dead_reasons().get("delivery_limit"), Some(&1));
    }

    #[test]
    fn a_dead_letter_that_overtakes_the_requeue_report_frees_the_lane() {
        let (mut a, now) = registered(&[100], Mode::Fair);
        let _ = a.start_batch(1, now);
        a.update(Msg::Event(Event::Published { id: 1, batch: Some(1) }), now);
        a.update(
            Msg::Event(Event::Delivered { consumer: 0, id: 1, manual_ack: true, redelivered: false }),
            now,
        );
        let work = std::time::Duration::from_millis(100);
        a.update(Msg::Event(Event::Started { consumer: 0, id: 1, work }), now);
        a.update(Msg::Event(Event::DeadLettered { id: 1, reason: DeathReason::Expired }), now);
        assert!(a.consumers[0].working.is_none());
        // The late report changes nothing.
        a.update(Msg::Event(Event::Requeued { consumer: 0, ids: vec![1] }), now);
        assert_eq!(a.ledger.totals().dead, 1);
        assert_eq!(a.ledger.totals().at_broker, 0);
    }
}
