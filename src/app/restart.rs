//! Restarting the embedded broker: the lesson of durability. Every connection drops; what the
//! broker kept comes back (a durable queue's persistent tasks, unacked ones redelivered), and
//! what it did not keep is accounted for as lost "not persistent: gone with the broker restart".

use std::time::Instant;

use super::*;

impl App {
    /// `B` or a lesson's `restart_broker = true`: only warren's own broker can be restarted.
    pub fn restart_broker(&mut self, now: Instant) -> Option<Command> {
        if let Some(why) = self.broker_restart_refusal() {
            self.note(why, now);
            return None;
        }
        self.unmodelled("the broker restarted".to_string());
        self.note("restarting the embedded broker: every connection drops", now);
        Some(Command::RestartBroker)
    }

    /// Why `B` cannot restart this broker, if it cannot: one line.
    pub fn broker_restart_refusal(&self) -> Option<String> {
        match &self.broker {
            Some(b) if b.product == crate::broker::PRODUCT => None,
            Some(b) => Some(format!(
                "B restarts only warren's embedded broker, not {} {} at {} (restart that one \
                 with rabbitmqctl)",
                b.product,
                b.version,
                b.endpoint()
            )),
            None => Some("B restarts the embedded broker; warren is not connected yet".into()),
        }
    }

    /// The broker is back. Tasks the ledger places at the broker (ready, or requeued by a
    /// consumer whose connection dropped) are now suspects: the next empty queue reports
    /// settle them, as after any incident (`reconcile`), but for a transient queue the reason
    /// is known: the broker kept nothing of it.
    pub(super) fn broker_restarted(&mut self, durable: bool, now: Instant) {
        self.broker_restarts += 1;
        self.suspect_upto = Some(self.last_published);
        self.missing_since = None;
        self.restart_loss = (!durable).then_some(LossReason::NotPersistent);
        let text = if durable {
            "embedded broker restarted: the durable queue's persistent tasks come back \
             (unacked ones redelivered); reconnecting"
        } else {
            "embedded broker restarted: a non-durable queue and transient tasks do not survive it; \
             reconnecting"
        };
        // A note, not the banner: the banner belongs to the connections dropping and coming
        // back, and the reconnect clears it.
        self.note(text, now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::app::testing::registered;

    fn ev(app: &mut App, now: Instant, e: Event) {
        assert_eq!(app.update(Msg::Event(e), now), None);
    }

    fn info(product: &str) -> BrokerInfo {
        BrokerInfo {
            product: product.into(),
            version: "3.10.8".into(),
            host: "127.0.0.1".into(),
            port: 5672,
            vhost: "/".into(),
        }
    }

    /// Six tasks under fair dispatch: C1 holds #1 and C2 #2 unacked, #3..#6 wait at the
    /// broker; #1 and #2 are requeued when their connections drop.
    fn six_tasks_then_restart(durable: bool) -> (App, Instant) {
        let (mut a, t0) = registered(&[1000, 1000], Mode::Fair);
        ev(&mut a, t0, Event::Connected(info(crate::broker::PRODUCT)));
        a.start_batch(6, t0);
        for id in 1..=6 {
            ev(&mut a, t0, Event::Published { id, batch: Some(1) });
        }
        for (c, id) in [(0, 1), (1, 2)] {
            ev(&mut a, t0, Event::Delivered { consumer: c, id, manual_ack: true, redelivered: false });
            ev(&mut a, t0, Event::Started { consumer: c, id, work: Duration::from_secs(1) });
        }
        assert_eq!(a.update(Msg::Action(Action::RestartBroker), t0), Some(Command::RestartBroker));
        ev(&mut a, t0, Event::ConnectionLost { reason: "CONNECTION_FORCED".into() });
        for (c, id) in [(0, 1), (1, 2)] {
            ev(&mut a, t0, Event::Requeued { consumer: c, ids: vec![id] });
        }
        ev(&mut a, t0, Event::BrokerRestarted { durable });
        ev(&mut a, t0, Event::Connected(info(crate::broker::PRODUCT)));
        (a, t0)
    }

    #[test]
    fn a_transient_queue_loses_every_task_the_broker_held_with_the_restart_as_the_reason() {
        let (mut a, t0) = six_tasks_then_restart(false);
        ev(&mut a, t0, Event::QueueStats { ready: 0, consumers: 2 });
        assert_eq!(a.ledger.totals().lost, 0, "not before the queue looked empty for a while");
        ev(&mut a, t0 + Duration::from_secs(3), Event::QueueStats { ready: 0, consumers: 2 });
        let totals = a.ledger.totals();
        assert_eq!((totals.lost, totals.at_broker, totals.published), (6, 0, 6));
        assert_eq!(a.ledger.lost_by_reason().get(&LossReason::NotPersistent), Some(&6));
        assert_eq!(LossReason::NotPersistent.describe(), "not persistent: gone with the broker restart");
        assert_eq!(a.batches[0].lost, 6);
        assert!(a.batches[0].finished.is_some(), "the batch is settled: every task accounted for");
        assert!(
            a.banner.as_ref().is_some_and(|b| b
                .text
                .contains("6 tasks lost, not persistent: gone with the broker restart")),
            "{:?}",
            a.banner
        );
        assert_eq!(a.broker_restarts, 1);
    }

    #[test]
    fn a_durable_queue_gets_its_tasks_back_and_the_unacked_ones_redelivered() {
        let (mut a, t0) = six_tasks_then_restart(true);
        ev(&mut a, t0, Event::QueueStats { ready: 6, consumers: 2 });
        for (c, id) in [(0, 1), (1, 2)] {
            ev(&mut a, t0, Event::Delivered { consumer: c, id, manual_ack: true, redelivered: true });
        }
        ev(&mut a, t0 + Duration::from_secs(3), Event::QueueStats { ready: 4, consumers: 2 });
        let totals = a.ledger.totals();
        assert_eq!((totals.lost, totals.at_broker, totals.unacked, totals.redelivered), (0, 4, 2, 2));
    }

    #[test]
    fn after_a_durable_restart_tasks_the_broker_did_not_keep_are_lost_but_not_blamed_on_persistence() {
        // A broker without persistence loses even durable tasks: counted, with the generic reason.
        let (mut a, t0) = six_tasks_then_restart(true);
        ev(&mut a, t0, Event::QueueStats { ready: 0, consumers: 2 });
        ev(&mut a, t0 + Duration::from_secs(3), Event::QueueStats { ready: 0, consumers: 2 });
        assert_eq!(a.ledger.lost_by_reason().get(&LossReason::Vanished), Some(&6));
        assert_eq!(a.ledger.lost_by_reason().get(&LossReason::NotPersistent), None);
    }

    #[test]
    fn the_key_says_in_one_line_why_it_cannot_restart_rabbitmq() {
        let (mut a, t0) = registered(&[1000], Mode::Fair);
        assert_eq!(a.update(Msg::Action(Action::RestartBroker), t0), None, "not connected yet");
        ev(&mut a, t0, Event::Connected(info("RabbitMQ")));
        assert_eq!(a.update(Msg::Action(Action::RestartBroker), t0), None);
        let note = a.notice.as_ref().expect("a note says why").text.clone();
        assert!(note.contains("only warren's embedded broker") && note.contains("RabbitMQ 3.10.8"), "{note}");
        assert!(!note.contains('\n'));
        assert_eq!(a.broker_restarts, 0);
    }
}
