//! Time-to-live (RabbitMQ's ttl.md): messages expire (x-message-ttl, the `expiration`
//! property) and unused queues go (x-expires).
//!
//! A message's expiry is fixed when it is enqueued, the sooner of the queue's TTL and its own
//! `expiration`; it is checked only at the head of the queue, as a classic queue does: a message
//! behind one that lives longer waits for it. One timer per queue watches its head (armed when
//! the head changes, see `arm_head`), so that an expired head goes on time with no traffic.
//! Queues without TTL and without expiring messages never look (`ReadyStore::may_expire`).

use std::time::Duration;

use tokio::time::Instant;

use super::dead_letter::Reason;

use super::*;

/// The `expiration` property, checked as RabbitMQ checks it at publish (rabbit_basic:
/// parse_expiration): a non-negative integer of milliseconds, written as Erlang reads one.
pub(super) fn parse_expiration(text: &str) -> Result<u64, AmqpError> {
    let invalid = |why: String| err(406, format!("PRECONDITION_FAILED - invalid expiration '{text}': {why}"));
    let digits_from = usize::from(text.starts_with(['+', '-']));
    let digits = text[digits_from..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(invalid("no_integer".into()));
    }
    let end = digits_from + digits;
    if end < text.len() {
        return Err(invalid(format!("{{leftover_string,\"{}\"}}", &text[end..])));
    }
    let negative = text.starts_with('-');
    let magnitude = text[digits_from..end].trim_start_matches('0');
    // RabbitMQ's largest is ten years; past it, value_too_large. (For numbers of 19 digits and
    // more its text breaks onto a second line, as Erlang prints long terms; here it is one.)
    let value: Option<u64> = magnitude.parse().ok().or(magnitude.is_empty().then_some(0));
    match value {
        Some(0) => Ok(0),
        Some(n) if negative => Err(invalid(format!("{{value_negative,-{n}}}"))),
        Some(n) if n <= MAX_EXPIRY_MS => Ok(n),
        _ => Err(invalid(format!("{{value_too_large,{}}}", &text[digits_from..end]))),
    }
}

/// In dispatch, before a delivery: the head if it expired before `now` (taken once, lazily;
/// while a message is being enqueued it is that instant, so that a TTL-0 message still goes
/// to a consumer that can take it at once), moved to `expired`. Strictly before: the message
/// being enqueued expires at that very instant and is not expired yet.
pub(super) fn take_expired_head(
    ready: &mut ReadyStore,
    now: &mut Option<Instant>,
    expired: &mut Vec<Ready>,
) -> bool {
    let Some(at) = ready.front().and_then(|r| r.expires) else { return false };
    if at < *now.get_or_insert_with(Instant::now) {
        expired.push(ready.pop().expect("has a front"));
        return true;
    }
    false
}

/// The largest `expiration` RabbitMQ 3.10 accepts (ten years in ms), read off it.
const MAX_EXPIRY_MS: u64 = 315_360_000_000;

/// What "now plus this many ms" is, without overflowing on absurd TTLs.
fn after(now: Instant, ms: u64) -> Instant {
    now.checked_add(Duration::from_millis(ms)).unwrap_or_else(|| now + Duration::from_secs(1 << 40))
}

impl Core {
    /// When a message enqueued now in `queue` expires: the sooner of the queue's TTL and the
    /// message's own (`expiration`, already checked at publish).
    pub(super) fn expiry_for(q: &Queue, expiration: Option<u64>, now: Instant) -> Option<Instant> {
        let ttl = match (q.args.message_ttl, expiration) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(after(now, ttl))
    }

    /// Drop (or dead-letter, reason `expired`) the messages at the head of `queue` whose expiry
    /// is `now` or earlier, then watch the new head.
    pub(super) fn expire_due(&mut self, queue: &str, now: Instant) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        if !q.ready.may_expire() {
            return;
        }
        let mut expired = Vec::new();
        while q.ready.front().and_then(|r| r.expires).is_some_and(|at| at <= now) {
            expired.push(q.ready.pop().expect("has a front"));
        }
        for r in expired {
            self.dead_letter(queue, r, Reason::Expired);
        }
        self.arm_head(queue);
    }

    /// Make sure a timer is due when the head of `queue` expires. Timers are never cancelled:
    /// a new one is set only when the head expires sooner than the one already set.
    pub(super) fn arm_head(&mut self, queue: &str) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        let Some(at) = q.ready.front().and_then(|r| r.expires) else { return };
        if q.head_timer.is_some_and(|set| set <= at) {
            return;
        }
        q.head_timer = Some(at);
        self.schedule(at, Timer::HeadExpiry(queue.to_string()));
    }

    pub(super) fn head_timer_fired(&mut self, queue: &str, at: Instant, now: Instant) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        if q.head_timer == Some(at) {
            q.head_timer = None;
        }
        self.expire_due(queue, now);
    }

    /// A client used `queue` (declare, consume, get) or its last consumer left: with
    /// x-expires, it goes that long after its last use unless it has consumers by then.
    pub(super) fn queue_used(&mut self, queue: &str) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        let Some(ms) = q.args.expires else { return };
        q.uses += 1;
        if q.consumer_count() == 0 {
            let timer = Timer::Unused(queue.to_string(), q.uses);
            self.schedule(after(Instant::now(), ms), timer);
        }
    }

    pub(super) fn unused_timer_fired(&mut self, queue: &str, uses: u64) {
        let Some(q) = self.queues.get(queue) else { return };
        if q.uses == uses && q.consumer_count() == 0 {
            self.delete_queue_now(queue);
        }
    }

    /// Whether a timer still means something (for the heap's clean-up in timers.rs).
    pub(super) fn expiry_timer_relevant(&self, at: Instant, timer: &Timer) -> bool {
        match timer {
            Timer::HeadExpiry(name) => self.queues.get(name).is_some_and(|q| q.head_timer == Some(at)),
            Timer::Unused(name, uses) => self.queues.get(name).is_some_and(|q| q.uses == *uses),
            #[allow(unreachable_patterns)] // other features' timers
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::AMQPValue;

    use super::super::timers::SWEEP_LIMIT;
    use super::*;

    fn declare(core: &mut Core, name: &str, args: &[(&str, AMQPValue)]) {
        let mut t = FieldTable::default();
        for (k, v) in args {
            t.insert((*k).into(), v.clone());
        }
        core.queue_declare(1, name, false, false, false, false, &t).expect("declared");
    }

    /// Timers are never cancelled, but a client renewing a queue's lease over and over does not
    /// pile them up: stale ones are swept out.
    #[test]
    fn renewing_a_lease_again_and_again_keeps_the_timer_heap_bounded() {
        let mut core = Core::new(Limits::default());
        declare(&mut core, "q", &[("x-expires", AMQPValue::LongInt(3_600_000))]);
        core.open_channel(1, 1).expect("channel");
        for _ in 0..20_000 {
            assert!(core.get(1, 1, "q", true).expect("get").is_none());
        }
        assert!(core.timers.len() <= SWEEP_LIMIT + 1, "{} timers", core.timers.len());
    }

    /// A message expiring through a long chain of TTL-0 queues, each dead-lettering to the
    /// next, is routed in a loop, not by recursion: on a 256 KiB stack, where 300 nested hops
    /// would not fit. (Its x-death grows a record at each hop, as in RabbitMQ: the chain's
    /// cost is quadratic, hence no longer chain here.)
    #[test]
    fn a_long_chain_of_dead_letters_does_not_grow_the_stack() {
        let chain = || {
            let mut core = Core::new(Limits::default());
            let n = 300;
            declare(&mut core, &format!("q{n}"), &[]);
            for i in (0..n).rev() {
                let next = AMQPValue::LongString(format!("q{}", i + 1).into());
                let dl = [
                    ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                    ("x-dead-letter-routing-key", next),
                    ("x-message-ttl", AMQPValue::LongInt(0)),
                ];
                declare(&mut core, &format!("q{i}"), &dl);
            }
            let m = Message::new("".into(), "q0".into(), BasicProperties::default(), b"x".to_vec());
            core.publish(m).expect("published");
            core.queues[&format!("q{n}")].ready.len()
        };
        let small_stack = std::thread::Builder::new().stack_size(256 << 10).spawn(chain).expect("thread");
        assert_eq!(small_stack.join().expect("no stack overflow"), 1, "it went the whole way");
    }

    #[test]
    fn expirations_are_read_as_rabbitmq_reads_them() {
        let text = |s: &str| parse_expiration(s).map_err(|e| e.text);
        assert_eq!(text("60000"), Ok(60_000));
        assert_eq!(text("+5"), Ok(5));
        assert_eq!(text("-0"), Ok(0));
        assert_eq!(text("0"), Ok(0));
        assert_eq!(text("00012"), Ok(12));
        assert_eq!(text("315360000000"), Ok(MAX_EXPIRY_MS));
        let refused = [
            ("soon", "no_integer"),
            ("", "no_integer"),
            (" 5", "no_integer"),
            ("-", "no_integer"),
            ("-1", "{value_negative,-1}"),
            ("5 ", "{leftover_string,\" \"}"),
            ("1.5", "{leftover_string,\".5\"}"),
            ("-05", "{value_negative,-5}"),
            ("315360000001", "{value_too_large,315360000001}"),
            ("99999999999999999999999", "{value_too_large,99999999999999999999999}"),
        ];
        for (input, why) in refused {
            assert_eq!(
                text(input),
                Err(format!("PRECONDITION_FAILED - invalid expiration '{input}': {why}")),
                "{input:?}"
            );
        }
    }
}
