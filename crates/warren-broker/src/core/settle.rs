//! Acks, nacks and basic.recover: what happens to a delivery after it was handed out.

use super::*;

impl Core {
    /// basic.ack; unknown tags are a channel error, as in RabbitMQ.
    pub fn ack(&mut self, conn: ConnId, ch: u16, tag: u64, multiple: bool) -> Result<(), AmqpError> {
        for u in self.take_unacked(conn, ch, tag, multiple)? {
            self.held_bytes -= u.ready.msg.held;
        }
        self.unblock_channel(conn, ch);
        Ok(())
    }

    /// basic.nack / basic.reject: requeue at the original position, or drop (or dead-letter).
    pub fn nack(
        &mut self,
        conn: ConnId,
        ch: u16,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<(), AmqpError> {
        let taken = self.take_unacked(conn, ch, tag, multiple)?;
        let mut touched = Vec::new();
        for u in taken {
            if requeue {
                touched.extend(self.requeue(u));
            } else {
                self.dead_letter(&u.queue, u.ready, Reason::Rejected);
            }
        }
        self.unblock_channel(conn, ch);
        self.after_consumers_left(&touched);
        Ok(())
    }

    /// basic.recover requeue=true: every unacked delivery of the channel goes back.
    pub fn recover(&mut self, conn: ConnId, ch: u16) {
        let all = match self.channels.get_mut(&(conn, ch)) {
            Some(chan) => std::mem::take(&mut chan.unacked),
            None => return,
        };
        let mut touched = Vec::new();
        for (_, u) in all {
            self.release_consumer_slot(conn, ch, &u);
            touched.extend(self.requeue(u));
        }
        self.unblock_channel(conn, ch);
        self.after_consumers_left(&touched);
    }

    pub(super) fn take_unacked(
        &mut self,
        conn: ConnId,
        ch: u16,
        tag: u64,
        multiple: bool,
    ) -> Result<Vec<Unacked>, AmqpError> {
        let chan = self.channels.get_mut(&(conn, ch)).ok_or_else(|| closed_by_broker(ch))?;
        let tags: Vec<u64> = if multiple {
            // multiple with tag 0 means "everything so far".
            let upto = if tag == 0 { u64::MAX } else { tag };
            chan.unacked.range(..=upto).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        if !multiple && !chan.unacked.contains_key(&tag)
            || multiple && tag != 0 && !chan.unacked.contains_key(&tag)
        {
            return Err(err(406, format!("PRECONDITION_FAILED - unknown delivery tag {tag}")));
        }
        let taken: Vec<Unacked> = tags.iter().filter_map(|t| chan.unacked.remove(t)).collect();
        for u in &taken {
            self.release_consumer_slot(conn, ch, u);
        }
        Ok(taken)
    }

    pub(super) fn release_consumer_slot(&mut self, conn: ConnId, ch: u16, u: &Unacked) {
        if let Some(tag) = &u.consumer
            && let Some(c) = self.channels.get_mut(&(conn, ch)).and_then(|chan| chan.consumers.get_mut(tag))
        {
            c.unacked = c.unacked.saturating_sub(1);
        }
    }
}
