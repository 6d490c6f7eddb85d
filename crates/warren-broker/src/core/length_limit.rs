//! Length limits (RabbitMQ's maxlength.md): x-max-length counts ready messages, and
//! x-max-length-bytes their bodies (unacked ones count for neither, as in RabbitMQ). When a
//! message would pass a limit, x-overflow decides: drop-head (the default) drops or
//! dead-letters the oldest ready messages (reason `maxlen`) once the new one is in, before any
//! delivery (so a queue limited to 0 keeps nothing, even for a waiting consumer, as 3.10 does);
//! reject-publish refuses the new one (nacked under confirms, silently dropped without);
//! reject-publish-dlx also dead-letters it.

use super::*;

/// Whether `msg` would take `q` past one of its limits.
fn would_overflow(q: &Queue, msg: &Message) -> bool {
    q.args.max_length.is_some_and(|max| q.ready.len() as u64 >= max)
        || q.args.max_length_bytes.is_some_and(|max| (q.ready.body_bytes() + msg.body.len()) as u64 > max)
}

fn over(q: &Queue) -> bool {
    q.args.max_length.is_some_and(|max| q.ready.len() as u64 > max)
        || q.args.max_length_bytes.is_some_and(|max| q.ready.body_bytes() as u64 > max)
}

/// Whether the queue limits its length at all (nothing else here runs for one that does not).
pub(super) fn limited(q: &Queue) -> bool {
    q.args.max_length.is_some() || q.args.max_length_bytes.is_some()
}

impl Core {
    /// Before `msg` goes into `queue` (which has limits): whether its overflow rule refuses it.
    /// A refused message is dead-lettered under reject-publish-dlx.
    pub(super) fn refuses(&mut self, queue: &str, msg: &Arc<Message>) -> bool {
        let Some(q) = self.queues.get(queue) else { return true };
        if q.args.overflow == Overflow::DropHead || !would_overflow(q, msg) {
            return false;
        }
        if q.args.overflow == Overflow::RejectPublishDlx {
            // Charged as if enqueued, so that dead_letter gives it back.
            self.held_bytes += msg.held;
            let r = Ready {
                seq: 0,
                msg: Arc::clone(msg),
                redelivered: false,
                deliveries: 0,
                expires: None,
                stored: None,
            };
            self.dead_letter(queue, r, Reason::Maxlen);
        }
        true
    }

    /// After a message went into `queue` (which has limits): under drop-head, the oldest ready
    /// messages go until it is within them.
    pub(super) fn drop_head(&mut self, queue: &str) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        let mut dropped = Vec::new();
        while over(q) {
            match q.ready.pop() {
                Some(r) => dropped.push(r),
                None => break,
            }
        }
        for r in dropped {
            self.dead_letter(queue, r, Reason::Maxlen);
        }
    }
}
