//! The consumer timeout (RabbitMQ's `consumer_timeout`, consumers.md#acknowledgement-timeout):
//! a delivery not acked within its timeout closes its channel with 406 PRECONDITION_FAILED,
//! and everything unacked on the channel is requeued.
//!
//! Each unacked delivery carries its deadline (taken from one clock reading per dispatch, not
//! per message). A channel has at most one live timer, for its earliest deadline, armed when a
//! delivery comes due sooner than the one scheduled: a channel with nothing unacked costs
//! nothing, and one that keeps acking costs one timer per timeout period. When the timer fires,
//! the channel's earliest deadline decides: past, the channel closes; else the timer is armed
//! again for it.
//!
//! The timeout comes from, first to last: the consume's `x-consumer-timeout` argument, the
//! queue's `x-consumer-timeout` argument (both RabbitMQ 3.12+), the broker's
//! `Limits::consumer_timeout` (RabbitMQ's default: 30 minutes).

use amq_protocol::protocol::{AMQPClass, channel};
use tokio::time::Instant;

use super::chan::Deadline;
use super::timers::{Heap, schedule_on};
use super::*;

/// A deadline `timeout_ms` after `now`, reading the clock into `now` the first time.
pub(super) fn deadline(timeout_ms: Option<u64>, now: &mut Option<Instant>) -> Option<Deadline> {
    let timeout_ms = timeout_ms?;
    let now = *now.get_or_insert_with(Instant::now);
    // A timeout beyond what Instant can hold is no timeout.
    let at = now.checked_add(std::time::Duration::from_millis(timeout_ms))?;
    Some(Deadline { at, timeout_ms })
}

/// Schedule the channel's timer for `d` unless one is due no later (`stale` counts the one it
/// supersedes).
pub(super) fn arm(
    chan: &mut Chan,
    timers: &mut Heap,
    wake: &tokio::sync::Notify,
    stale: &mut usize,
    conn: ConnId,
    ch: u16,
    d: Deadline,
) {
    if chan.timeout_timer.is_none_or(|t| d.at < t) {
        if chan.timeout_timer.is_some() {
            *stale += 1;
        }
        chan.timeout_timer = Some(d.at);
        schedule_on(timers, wake, d.at, Timer::ConsumerTimeout { conn, ch, at: d.at });
    }
}

impl Core {
    /// The timeout, in ms, of consumers of `queue` that did not set their own.
    pub(super) fn queue_consumer_timeout(&self, queue: &str) -> Option<u64> {
        let broker =
            || self.limits.consumer_timeout.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.queues.get(queue).and_then(|q| q.args.consumer_timeout).or_else(broker)
    }

    /// The deadline of a basic.get delivery (with ack) from `queue`, taken now.
    pub(super) fn get_deadline(&self, queue: &str) -> Option<Deadline> {
        deadline(self.queue_consumer_timeout(queue), &mut None)
    }

    pub(super) fn arm_consumer_timeout(&mut self, conn: ConnId, ch: u16, d: Deadline) {
        let Core { channels, timers, timer_wake, stale_timers, .. } = self;
        if let Some(chan) = channels.get_mut(&(conn, ch)) {
            arm(chan, timers, timer_wake, stale_timers, conn, ch, d);
        }
    }

    /// A channel's timer will find nothing to do: its channel closed, or a sooner one replaced
    /// it. Such timers stay in the heap until due (30 minutes by default), so a client that
    /// opens and closes channels quickly could pile them up: once they are many and most of the
    /// heap, they are swept out (amortised: each sweep follows as many closes as it removes).
    pub(super) fn timer_went_stale(&mut self) {
        self.stale_timers += 1;
        if self.stale_timers < 1024 || self.stale_timers * 2 < self.timers.len() {
            return;
        }
        let channels = &self.channels;
        self.timers.retain(|std::cmp::Reverse((_, t))| match t {
            Timer::ConsumerTimeout { conn, ch, at } => {
                channels.get(&(*conn, *ch)).is_some_and(|c| c.timeout_timer == Some(*at))
            }
            #[allow(unreachable_patterns)] // other features' timers
            _ => true,
        });
        self.stale_timers = 0;
    }

    /// The channel's timer scheduled for `at` fired.
    pub(super) fn consumer_timeout_due(&mut self, conn: ConnId, ch: u16, at: Instant, now: Instant) {
        let Some(chan) = self.channels.get_mut(&(conn, ch)).filter(|c| c.timeout_timer == Some(at)) else {
            // Its channel closed, or a sooner one replaced it and re-armed what is left.
            self.stale_timers = self.stale_timers.saturating_sub(1);
            return;
        };
        chan.timeout_timer = None;
        let Some(first) = chan.unacked.values().filter_map(|u| u.deadline).min_by_key(|d| d.at) else {
            return;
        };
        if first.at > now {
            self.arm_consumer_timeout(conn, ch, first);
            return;
        }
        self.time_out_channel(conn, ch, first.timeout_ms);
    }

    /// Close the channel as RabbitMQ does when a delivery on it timed out: its consumers are
    /// cancelled, its unacked deliveries requeued, and the client gets channel.close.
    fn time_out_channel(&mut self, conn: ConnId, ch: u16, timeout_ms: u64) {
        self.close_channel(conn, ch);
        let Some(out) = self.conns.get(&conn) else { return };
        // Before the close is queued: the client's close-ok must find the channel marked.
        out.shared.closed_by_broker.lock().unwrap_or_else(|e| e.into_inner()).push(ch);
        out.shared.broker_closed_any.store(true, Ordering::Release);
        let close = channel::Close {
            reply_code: 406,
            reply_text: format!(
                "PRECONDITION_FAILED - delivery acknowledgement on channel {ch} timed out. Timeout value used: \
                 {timeout_ms} ms. This timeout value can be configured, see consumers doc guide to learn more"
            )
            .into(),
            class_id: 0,
            method_id: 0,
        };
        let frame = crate::frames::method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(close)));
        out.send(Out::Frame(Box::new(frame)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use amq_protocol::types::FieldTable;

    use super::*;

    #[test]
    fn a_delivery_not_acked_in_time_closes_its_channel_and_is_requeued() {
        let limits = Limits { consumer_timeout: Some(Duration::from_millis(100)), ..Limits::default() };
        let mut core = Core::new(limits);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Default::default() });
        core.open_channel(1, 1).unwrap();
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).unwrap();
        core.consume(1, 1, "q", "c", false, false, &FieldTable::default()).unwrap();
        core.publish(Message::new("".into(), "q".into(), Default::default(), b"m".to_vec())).unwrap();
        let due = core.next_due().expect("a timer for the unacked delivery");
        core.run_due(due - Duration::from_millis(1));
        assert!(core.channel_open(1, 1), "not yet");
        core.run_due(due);
        assert!(!core.channel_open(1, 1));
        assert_eq!(core.queues["q"].ready.len(), 1, "requeued");
        assert!(core.queues["q"].ready.front().unwrap().redelivered);
        let shared = &core.conns[&1].shared;
        assert_eq!(*shared.closed_by_broker.lock().unwrap(), [1]);
        let mut texts = Vec::new();
        while let Ok(o) = rx.try_recv() {
            if let Out::Frame(f) = o {
                texts.push(format!("{f:?}"));
            }
        }
        assert!(texts.last().unwrap().contains("Timeout value used: 100 ms"), "{texts:?}");
    }

    #[test]
    fn an_acked_delivery_leaves_nothing_to_time_out() {
        let limits = Limits { consumer_timeout: Some(Duration::from_millis(100)), ..Limits::default() };
        let mut core = Core::new(limits);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Default::default() });
        core.open_channel(1, 1).unwrap();
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).unwrap();
        core.consume(1, 1, "q", "c", false, false, &FieldTable::default()).unwrap();
        core.publish(Message::new("".into(), "q".into(), Default::default(), b"m".to_vec())).unwrap();
        core.ack(1, 1, 1, false).unwrap();
        let due = core.next_due().unwrap();
        core.run_due(due);
        assert!(core.channel_open(1, 1));
        assert_eq!(core.next_due(), None, "not re-armed: nothing is unacked");
    }

    #[test]
    fn timers_of_closed_channels_do_not_pile_up() {
        let mut core = Core::new(Limits::default());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Default::default() });
        core.queue_declare(1, "q", false, false, false, false, &FieldTable::default()).unwrap();
        for _ in 0..5000 {
            core.open_channel(1, 7).unwrap();
            core.consume(1, 7, "q", "c", false, false, &FieldTable::default()).unwrap();
            core.publish(Message::new("".into(), "q".into(), Default::default(), b"m".to_vec())).unwrap();
            core.close_channel(1, 7);
            core.queue_purge(1, "q").unwrap();
        }
        assert!(core.timers.len() <= 2100, "{} timers held for one open channel", core.timers.len());
    }
}
