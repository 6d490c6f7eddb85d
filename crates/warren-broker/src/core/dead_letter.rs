//! Dead-lettering (RabbitMQ's dlx.md): a message that leaves a queue without being consumed
//! (rejected without requeue, expired, dropped by a length limit, past the delivery limit) is
//! republished, with an `x-death` record, to the queue's x-dead-letter-exchange under its
//! x-dead-letter-routing-key (or its own routing key). Without a DLX, or when the DLX does not
//! exist, it is dropped, as RabbitMQ drops it. A message that would come back to a queue it
//! already died in, with no rejection on the way, is a cycle and is not delivered there.
//!
//! Dead letters are routed one after another from a list, not by recursion: one death can cause
//! another (a full queue drops its head), and a chain of queues must not grow the stack.

use std::time::{SystemTime, UNIX_EPOCH};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, LongString};

use super::*;

/// Why a message was dead-lettered: the `reason` of its x-death record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Rejected,
    Expired,
    Maxlen,
    DeliveryLimit,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

impl Core {
    /// `r` leaves `queue` for good: what it held is given back, and a copy goes to the queue's
    /// DLX if it has one.
    pub(super) fn dead_letter(&mut self, queue: &str, r: Ready, reason: Reason) {
        self.held_bytes -= r.msg.held;
        let Some(q) = self.queues.get(queue) else { return };
        let Some(dlx) = q.args.dead_letter_exchange.as_deref() else { return };
        let msg = dead_lettered(&r.msg, queue, reason, dlx, q.args.dead_letter_routing_key.as_deref());
        self.dead_letters.push_back((msg, reason));
        if self.dead_lettering {
            return; // the loop below, further up the stack, routes it
        }
        self.dead_lettering = true;
        while let Some((msg, reason)) = self.dead_letters.pop_front() {
            self.route_dead_letter(msg, reason);
        }
        self.dead_lettering = false;
    }

    fn route_dead_letter(&mut self, msg: Message, reason: Reason) {
        let (exchange, key) = (msg.exchange.as_str(), msg.routing_key.as_str());
        let mut targets = if exchange.is_empty() {
            if self.queues.contains_key(key) { vec![key.to_string()] } else { Vec::new() }
        } else {
            match self.exchanges.get(exchange) {
                Some(x) => x.route(key, msg.properties.headers().as_ref()),
                None => return, // a DLX that does not exist: dropped, as RabbitMQ drops it
            }
        };
        if reason != Reason::Rejected {
            targets.retain(|t| !is_cycle(&msg, t));
        }
        if targets.is_empty() || self.held_bytes() + msg.held * targets.len() > self.limits.max_held_bytes {
            return;
        }
        // A dead letter the log cannot take is dropped like one no queue takes.
        let Ok(mut persist) = self.persist(&msg) else { return };
        let msg = Arc::new(msg);
        for t in targets {
            self.enqueue_one(&t, &msg, None, persist.as_mut());
        }
    }
}

/// The copy of `msg` that dies in `queue`: routed to `dlx` with `key` (or its own routing key),
/// its x-death record updated, its `expiration` moved into the record (the copy does not
/// expire again for it). Charged at its new size.
fn dead_lettered(msg: &Message, queue: &str, reason: Reason, dlx: &str, key: Option<&str>) -> Message {
    let p = &msg.properties;
    let mut headers = p.headers().clone().unwrap_or_default();
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    let mut death = FieldTable::default();
    death.insert("count".into(), AMQPValue::LongLongInt(1));
    death.insert("reason".into(), text(reason.name()));
    death.insert("queue".into(), text(queue));
    death.insert("time".into(), AMQPValue::Timestamp(time));
    death.insert("exchange".into(), text(msg.exchange.as_str()));
    let keys = FieldArray::from(vec![text(msg.routing_key.as_str())]);
    death.insert("routing-keys".into(), AMQPValue::FieldArray(keys));
    if let Some(e) = p.expiration() {
        death.insert("original-expiration".into(), text(e.as_str()));
    }
    // An earlier death in the same queue for the same reason is counted up and moved to the
    // front; the others stay in order behind it (most recent first).
    let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let same =
        deaths.iter().position(|d| field_is(d, "queue", queue) && field_is(d, "reason", reason.name()));
    if let Some(i) = same {
        let earlier = deaths.remove(i);
        let count = match &earlier {
            AMQPValue::FieldTable(t) => t.inner().get("count").and_then(crate::queue::integer),
            _ => None,
        };
        let count = i64::try_from(count.unwrap_or(0)).unwrap_or(i64::MAX).saturating_add(1).max(1);
        death.insert("count".into(), AMQPValue::LongLongInt(count));
    }
    deaths.insert(0, AMQPValue::FieldTable(death));
    headers.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(deaths)));
    for (what, value) in [("reason", reason.name()), ("queue", queue), ("exchange", msg.exchange.as_str())] {
        let first = format!("x-first-death-{what}");
        if !headers.inner().contains_key(first.as_str()) {
            headers.insert(first.into(), text(value));
        }
        // As RabbitMQ 3.13 and 4.x add them (3.10 does not).
        headers.insert(format!("x-last-death-{what}").into(), text(value));
    }
    let routing_key = key.unwrap_or(msg.routing_key.as_str());
    Message::new(dlx.into(), routing_key.into(), without_expiration(p, headers), msg.body.clone())
}

/// Whether field `name` of an x-death record is the string `want` (without copying it: the
/// records are compared once for each death the message has had).
fn field_is(death: &AMQPValue, name: &str, want: &str) -> bool {
    let AMQPValue::FieldTable(t) = death else { return false };
    match t.inner().get(name) {
        Some(AMQPValue::LongString(s)) => s.as_bytes() == want.as_bytes(),
        Some(AMQPValue::ShortString(s)) => s.as_str() == want,
        _ => false,
    }
}

/// RabbitMQ's cycle rule (rabbit_dead_letter:is_cycle): the message already died in `queue`,
/// and no death since then, that one included, was a rejection.
fn is_cycle(msg: &Message, queue: &str) -> bool {
    let Some(AMQPValue::FieldArray(deaths)) =
        msg.properties.headers().as_ref().and_then(|h| h.inner().get("x-death"))
    else {
        return false;
    };
    for d in deaths.as_slice() {
        if field_is(d, "reason", "rejected") {
            return false;
        }
        if field_is(d, "queue", queue) {
            return true;
        }
    }
    false
}

/// `p` with these headers and no `expiration` (the properties have no way to unset one).
fn without_expiration(p: &BasicProperties, headers: FieldTable) -> BasicProperties {
    let mut out = BasicProperties::default().with_headers(headers);
    macro_rules! copy {
        ($($get:ident => $set:ident),*) => {$(
            if let Some(v) = p.$get() {
                out = out.$set(v.clone());
            }
        )*};
    }
    copy!(
        content_type => with_content_type, content_encoding => with_content_encoding,
        delivery_mode => with_delivery_mode, priority => with_priority,
        correlation_id => with_correlation_id, reply_to => with_reply_to,
        message_id => with_message_id, timestamp => with_timestamp, kind => with_type,
        user_id => with_user_id, app_id => with_app_id, cluster_id => with_cluster_id
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use amq_protocol::types::FieldTable;
    use tokio::sync::mpsc;

    use super::*;
    use crate::{ConnOut, ConnShared};

    fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
    }

    /// Every way out (expired, maxlen, rejected, delivery limit, reject-publish-dlx) gives
    /// back what the message held where it was, and charges its copy where it goes: once all
    /// is consumed, the broker holds only its queues' arguments again.
    #[test]
    fn dead_letters_are_charged_where_they_go_and_released_where_they_were() {
        let mut core = Core::new(Limits::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        core.register_connection(1, ConnOut { tx, shared: Arc::new(ConnShared::default()) });
        core.open_channel(1, 1).expect("channel");
        let declare = |core: &mut Core, name: &str, a: &[(&str, AMQPValue)], durable: bool| {
            core.queue_declare(1, name, false, durable, false, false, &args(a)).expect("declared");
        };
        declare(&mut core, "dlq", &[], false);
        let dl = [("x-dead-letter-exchange", text("")), ("x-dead-letter-routing-key", text("dlq"))];
        let mut ttl = dl.to_vec();
        ttl.extend([("x-message-ttl", AMQPValue::LongInt(50)), ("x-max-length", AMQPValue::LongInt(2))]);
        declare(&mut core, "ttl", &ttl, false);
        let mut full = dl.to_vec();
        full.extend([("x-max-length", AMQPValue::LongInt(0)), ("x-overflow", text("reject-publish-dlx"))]);
        declare(&mut core, "full", &full, false);
        let mut quorum = dl.to_vec();
        quorum.extend([("x-queue-type", text("quorum")), ("x-delivery-limit", AMQPValue::LongInt(0))]);
        declare(&mut core, "quorum", &quorum, true);
        let baseline = core.held_bytes();
        let msg = |key: &str| {
            let p = BasicProperties::default().with_expiration("100000".into());
            Message::new("".into(), key.into(), p, vec![7; 500])
        };
        for _ in 0..3 {
            core.publish(msg("ttl")).expect("published"); // the first is dropped (maxlen)
        }
        assert!(core.publish(msg("full")).is_err(), "rejected and dead-lettered");
        for queue in ["quorum", "ttl"] {
            core.publish(msg(queue)).expect("published");
            // Rejected from ttl; returned past its limit (0) from quorum.
            let Some(Out::GetOk { delivery_tag, .. }) = core.get(1, 1, queue, false).expect("get") else {
                panic!("a message in {queue}")
            };
            core.nack(1, 1, delivery_tag, false, queue == "quorum").expect("nacked");
        }
        // The fourth message into "ttl" dropped its oldest; the one left there expires.
        core.run_due(tokio::time::Instant::now() + Duration::from_secs(1));
        let mut reasons = Vec::new();
        while let Some(Out::GetOk { msg, .. }) = core.get(1, 1, "dlq", true).expect("get") {
            let h = msg.properties.headers().clone().unwrap_or_default();
            reasons.push(
                h.inner().get("x-first-death-reason").and_then(crate::queue::string).unwrap_or_default(),
            );
        }
        assert_eq!(reasons, ["maxlen", "maxlen", "delivery_limit", "maxlen", "rejected", "expired"]);
        while rx.try_recv().is_ok() {} // written: what no_ack handed out is released
        assert_eq!(core.held_bytes(), baseline);
    }
}
