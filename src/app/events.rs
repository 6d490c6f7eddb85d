//! What the workload reports, applied to the app: the ledger, the consumers' lanes, the batches,
//! and the check that tasks the broker should hold have not vanished after an incident.

use std::time::Instant;

use super::*;

impl App {
    pub(super) fn on_event(&mut self, event: Event, now: Instant) {
        self.ring.observe(&event, self.dispatch);
        self.observe_single_active(&event, now);
        match event {
            Event::Connected(info) => {
                self.broker = Some(info);
                self.connected = true;
                self.banner = None;
            }
            Event::ConnectionLost { reason } => {
                self.connected = false;
                self.suspect_upto = Some(self.last_published);
                self.set_banner(format!("connection lost: {reason}; reconnecting"), now);
            }
            Event::Published { id, batch } => {
                self.ledger.published(id);
                self.last_published = self.last_published.max(id);
                self.producer.published.add(1);
                self.producer.recent.push(id);
                // A batch's tasks are published one after another: its ids form a range.
                if let Some(batch) = batch
                    && let Some(b) = self.batches.iter_mut().rev().find(|b| b.id == batch)
                {
                    b.ids = Some(b.ids.map_or((id, id), |(first, _)| (first, id)));
                }
            }
            Event::Confirmed { .. } => self.producer.confirmed += 1,
            Event::Unconfirmed { .. } => self.producer.unconfirmed += 1,
            Event::Refused { id } => {
                if self.ledger.refused(id) {
                    self.refused.push(id);
                    if let Some(b) = self.batch_of(id) {
                        b.refused += 1;
                    }
                    self.task_settled(id, now);
                }
            }
            Event::DeadLettered { id, reason } => self.dead_lettered(id, reason, now),
            Event::PublishFailed { id, reason } => {
                self.ledger.lost_unheld(id, LossReason::PublishFailed);
                self.lost_unheld.push((id, LossReason::PublishFailed));
                self.task_lost(id, now);
                self.set_banner(format!("task #{id} was not published: {reason}"), now);
            }
            Event::QueueStats { ready, consumers } => {
                self.queue_ready = Some(ready);
                self.queue_consumers = Some(consumers);
                self.reconcile(now);
            }
            Event::ConsumerReady { consumer } => {
                if let Some(c) = self.consumer(consumer)
                    && c.alive()
                {
                    c.status = ConsumerStatus::Consuming;
                    c.status_note = None;
                }
            }
            Event::ConsumerReconnecting { consumer, reason } => {
                self.suspect_upto = Some(self.last_published);
                if let Some(c) = self.consumer(consumer)
                    && c.alive()
                {
                    c.status = ConsumerStatus::Reconnecting;
                    c.status_note = Some(reason);
                }
            }
            Event::Delivered { consumer, id, manual_ack, redelivered } => {
                if let Some(previous) = self.ledger.delivered(id, consumer, manual_ack, redelivered) {
                    self.release(previous, &[id], SpanEnd::Requeued, now);
                }
                self.delivered.add(1);
                if let Some(c) = self.consumer(consumer) {
                    c.received += 1;
                    c.redelivered += u64::from(redelivered);
                }
            }
            Event::Started { consumer, id, work } => {
                // Whether it came redelivered is known only while it waits: ask before it starts.
                let again = self.ledger.whereabouts().waiting(consumer).any(|(t, again)| t == id && again);
                self.ledger.started(id, consumer);
                let frozen = self.paused_since.map(|_| now);
                if let Some(c) = self.consumer(consumer) {
                    c.working = Some(Working { id, again, since: now, delay: work, frozen });
                    c.span_started(id, now);
                }
            }
            Event::Processed { consumer, id, acked } => {
                let first_time = self.ledger.done(id);
                if acked {
                    self.acked.add(1);
                }
                if let Some(c) = self.consumer(consumer) {
                    if c.working.take().is_some_and(|w| w.id == id && w.again) {
                        c.trail_again.push(id);
                    }
                    c.span_ended(&[id], SpanEnd::Done, now);
                    c.processed.add(1);
                    c.acked += u64::from(acked);
                    c.trail.push(id);
                    if let Some(h) = &mut c.history {
                        h.push(id);
                    }
                }
                // A duplicate (processed again after a lost ack) does not settle anything twice.
                if first_time {
                    self.count_for_batch(id, consumer);
                    self.task_settled(id, now);
                }
            }
            Event::Requeued { consumer, ids } => {
                let moved: Vec<TaskId> =
                    ids.into_iter().filter(|&id| self.ledger.requeued(id, consumer)).collect();
                self.release(consumer, &moved, SpanEnd::Requeued, now);
            }
            Event::Lost { consumer, ids, reason } => {
                let lost: Vec<TaskId> =
                    ids.into_iter().filter(|&id| self.ledger.lost(id, consumer, reason)).collect();
                for &id in &lost {
                    self.task_lost(id, now);
                }
                self.release(consumer, &lost, SpanEnd::Lost, now);
                if let Some(c) = self.consumer(consumer)
                    && !lost.is_empty()
                {
                    c.lost += lost.len() as u64;
                    c.last_loss = Some(reason);
                    lost.iter().for_each(|&id| c.lost_ids.push(id));
                }
            }
            Event::ConsumerGone { consumer, killed } => {
                if killed {
                    self.suspect_upto = Some(self.last_published);
                }
                // A task still running here without a Requeued or Lost before: back at the broker
                // (or already with another consumer) it was requeued, otherwise it is gone.
                let running = self.consumer(consumer).and_then(|c| c.working).map(|w| w.id);
                let outcome = match running.and_then(|id| self.ledger.place(id)) {
                    Some(place) if place.holder() != Some(consumer) => SpanEnd::Requeued,
                    _ => SpanEnd::Lost,
                };
                if let Some(c) = self.consumer(consumer) {
                    c.status = if killed { ConsumerStatus::Crashed } else { ConsumerStatus::Removed };
                    c.ended = true;
                    c.working = None;
                    if let Some(id) = running {
                        c.span_ended(&[id], outcome, now);
                    }
                }
                if !killed && self.selected == consumer {
                    self.select_step(1);
                }
            }
            Event::DispatchApplied(d) => {
                self.applied = d;
                self.switches_in_flight = self.switches_in_flight.saturating_sub(1);
                for c in self.consumers.iter_mut().filter(|c| c.status == ConsumerStatus::Switching) {
                    c.status = ConsumerStatus::Consuming;
                }
            }
            Event::Error(text) => self.set_banner(text, now),
            Event::BrokerRestarted { durable } => self.broker_restarted(durable, now),
        }
        if self.ledger.totals().at_broker > 0 {
            self.ring.queue_waits();
        }
    }

    /// A consumer no longer holds these tasks (they went back to the broker or were lost);
    /// the ledger already moved them, the pane must stop showing one as in progress and the
    /// timeline ends its span as `outcome`.
    fn release(&mut self, consumer: ConsumerId, ids: &[TaskId], outcome: SpanEnd, now: Instant) {
        if let Some(c) = self.consumer(consumer)
            && c.working.is_some_and(|w| ids.contains(&w.id))
        {
            c.working = None;
            c.span_ended(ids, outcome, now);
        }
    }

    /// The batch a task belongs to (recent batches first: that is where tasks settle).
    pub(super) fn batch_of(&mut self, id: TaskId) -> Option<&mut Batch> {
        self.batches
            .iter_mut()
            .rev()
            .find(|b| b.ids.is_some_and(|(first, last)| (first..=last).contains(&id)))
    }

    fn count_for_batch(&mut self, id: TaskId, consumer: ConsumerId) {
        if let Some(b) = self.batch_of(id) {
            if b.done_by.len() <= consumer {
                b.done_by.resize(consumer + 1, 0);
            }
            b.done_by[consumer] += 1;
        }
    }

    pub(super) fn task_settled(&mut self, id: TaskId, now: Instant) {
        if let Some(b) = self.batch_of(id) {
            b.outstanding = b.outstanding.saturating_sub(1);
            if b.outstanding == 0 {
                b.finished = Some(now);
            }
        }
    }

    /// A task settled without being processed: its batch counts it as lost.
    fn task_lost(&mut self, id: TaskId, now: Instant) {
        if let Some(b) = self.batch_of(id) {
            b.lost += 1;
        }
        self.task_settled(id, now);
    }

    /// After a crash or a lost connection, tasks the ledger places at the broker may be gone:
    /// auto-ack deliveries in flight to a consumer that died, a non-durable queue of a
    /// restarted broker, publishes that never arrived. When the broker reports its queue empty
    /// for long enough that no delivery can still be on its way, such tasks (published before
    /// the incident) are declared lost rather than waited for forever.
    fn reconcile(&mut self, now: Instant) {
        let Some(upto) = self.suspect_upto else { return };
        let broker_empty = self.queue_ready == Some(0) && self.connected;
        // One scan of the open tasks per poll: the suspects, kept for the verdict below.
        let ids: Vec<TaskId> = self.ledger.at_broker_ids().into_iter().filter(|&id| id <= upto).collect();
        if ids.is_empty() {
            self.suspect_upto = None;
            self.missing_since = None;
            return;
        }
        if !broker_empty {
            self.missing_since = None;
            return;
        }
        let since = *self.missing_since.get_or_insert(now);
        if now.duration_since(since) < MISSING_AFTER {
            return;
        }
        let reason = self.restart_loss.take().unwrap_or(LossReason::Vanished);
        for &id in &ids {
            self.ledger.lost_unheld(id, reason);
            self.lost_unheld.push((id, reason));
            self.task_lost(id, now);
        }
        self.suspect_upto = None;
        self.missing_since = None;
        if reason == LossReason::NotPersistent {
            let text = format!(
                "{} tasks lost, {} (a non-durable queue, delivery mode 1)",
                ids.len(),
                reason.describe()
            );
            self.set_banner(text, now);
            return;
        }
        self.set_banner(
            format!(
                "{} tasks are no longer at the broker (in flight to a crashed auto-ack consumer, \
                 or a queue lost in a restart): counted as lost",
                ids.len()
            ),
            now,
        );
    }
}
