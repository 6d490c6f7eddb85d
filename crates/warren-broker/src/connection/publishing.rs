//! basic.publish: the method, its content header and body frames, and the confirm or return
//! that answers it.

use super::*;

impl Session<'_> {
    pub(super) fn content_header(
        &mut self,
        ch: u16,
        size: u64,
        properties: BasicProperties,
    ) -> Result<(), AmqpError> {
        let limits = &self.conn.cfg.limits;
        let (max, per_connection) = (limits.max_message, limits.max_incoming_per_connection);
        let Some(c) = self.channels.get_mut(&ch).filter(|c| !c.closing) else {
            return if self.channels.contains_key(&ch) {
                Ok(())
            } else {
                Err(AmqpError::connection(504, format!("CHANNEL_ERROR - content on unopened channel {ch}")))
            };
        };
        let Some(inc) = c.incoming.as_mut().filter(|i| i.properties.is_none()) else {
            return Err(AmqpError::connection(
                505,
                "UNEXPECTED_FRAME - content header without basic.publish",
            ));
        };
        if size > max as u64 {
            return Err(AmqpError::channel(
                406,
                format!("PRECONDITION_FAILED - message size {size} is larger than configured max size {max}"),
            ));
        }
        inc.size = size as usize;
        // Charged at its announced size and its parsed properties before any body comes, so
        // that unfinished messages (a header, then silence) are bounded like whole ones.
        let charge = Message::held_for(&inc.exchange, &inc.routing_key, &properties, inc.size);
        // The common case: the whole body came in the same read, in one frame, and is
        // published next, before anything else is read; the core's check at publish is then
        // enough, and its lock is taken once per message, not twice.
        let rest = &self.buf[self.start..];
        let body_read = size == 0
            || (rest.len() > 7 + inc.size
                && rest[0] == 3
                && rest[1..3] == ch.to_be_bytes()
                && rest[3..7] == (size as u32).to_be_bytes());
        let refused = if body_read {
            None
        } else if self.incoming + charge > per_connection {
            Some(AmqpError::refused(format!(
                "unfinished messages on this connection would hold more than {per_connection} bytes: \
                 finish publishing them first"
            )))
        } else {
            lock(&self.conn.core).reserve(charge).err()
        };
        match refused {
            None => {
                inc.properties = Some(properties);
                inc.held = charge;
                if !body_read {
                    inc.charged = charge;
                    self.incoming += charge;
                }
            }
            // Without confirms the channel closes now (406), and the body frames that follow
            // on it are ignored.
            Some(e) if !c.confirm => return Err(e),
            // Under confirms it is nacked in its turn, once its body is read (and dropped: the
            // properties too, which were not charged).
            Some(e) => {
                inc.properties = Some(BasicProperties::default());
                inc.refused = Some(e);
            }
        }
        if size == 0 {
            return self.publish(ch);
        }
        Ok(())
    }

    pub(super) fn content_body(&mut self, ch: u16, data: Vec<u8>) -> Result<(), AmqpError> {
        let Some(c) = self.channels.get_mut(&ch).filter(|c| !c.closing) else {
            return if self.channels.contains_key(&ch) {
                Ok(())
            } else {
                Err(AmqpError::connection(504, format!("CHANNEL_ERROR - content on unopened channel {ch}")))
            };
        };
        let Some(inc) = c.incoming.as_mut().filter(|i| i.properties.is_some()) else {
            return Err(AmqpError::connection(505, "UNEXPECTED_FRAME - content body without header"));
        };
        let received = inc.body.len() + inc.dropped;
        if received + data.len() > inc.size {
            return Err(AmqpError::connection(501, "FRAME_ERROR - content body longer than its header said"));
        }
        if inc.refused.is_some() {
            inc.dropped += data.len();
        } else if inc.body.is_empty() && data.len() == inc.size {
            inc.body = data; // the common one-frame body: no copy
        } else {
            // The whole announced size is charged already: allocate it once, exactly, rather
            // than doubling (which could hold up to twice the size).
            if inc.body.is_empty() {
                inc.body.reserve_exact(inc.size);
            }
            inc.body.extend_from_slice(&data);
        }
        if inc.body.len() + inc.dropped == inc.size {
            return self.publish(ch);
        }
        Ok(())
    }

    /// A whole message arrived: route it, return it if unroutable and mandatory, confirm it.
    pub(super) fn publish(&mut self, ch: u16) -> Result<(), AmqpError> {
        let c = self.channels.get_mut(&ch).expect("publishing on an open channel");
        let inc = c.incoming.take().expect("publishing an assembled message");
        let confirm = c.confirm;
        if confirm {
            c.publish_seq += 1;
        }
        let seq = c.publish_seq;
        self.incoming -= inc.charged;
        if let Some(e) = inc.refused {
            return self.refuse(ch, confirm, seq, e);
        }
        let mandatory = inc.mandatory;
        let mut properties = inc.properties.unwrap_or_default();
        let mut held = inc.held;
        // Direct reply-to: a request asking for a reply carries this channel's reply name.
        if properties.reply_to().as_ref().is_some_and(|r| r.as_str() == REPLY_TO) {
            let mut core = lock(&self.conn.core);
            let name = match core.reply_to_name(self.conn.id, ch) {
                Ok(name) => name,
                Err(e) => {
                    core.release(inc.charged);
                    return Err(e);
                }
            };
            held += name.len() - REPLY_TO.len();
            properties = properties.with_reply_to(name.into());
        }
        // Its held size was reckoned at its header (all of its announced size came): its
        // headers are not walked a second time.
        let msg = Message {
            exchange: inc.exchange,
            routing_key: inc.routing_key,
            properties,
            body: inc.body,
            held,
        };
        // Kept for basic.return; cheap next to the body only when it is needed.
        let returned = mandatory.then(|| Message {
            exchange: msg.exchange.clone(),
            routing_key: msg.routing_key.clone(),
            properties: msg.properties.clone(),
            body: msg.body.clone(),
            held: msg.held,
        });
        let (routed, synced) = {
            let mut core = lock(&self.conn.core);
            // From here the message is charged as a message (if a queue takes it).
            core.release(inc.charged);
            let routed = core.publish(msg);
            // A persistent message in a durable queue is confirmed once it is on disk; asked
            // under the same lock, so the sync that writes it also sends its confirm.
            let synced = confirm && routed == Ok(true) && core.confirm_after_sync(&self.out, ch, seq);
            (routed, synced)
        };
        match routed {
            Ok(true) if synced => return Ok(()),
            Ok(true) => {}
            Ok(false) => {
                if let Some(m) = returned {
                    let charge = lock(&self.conn.core).unwritten(m.held);
                    self.out.send(Out::Return { channel: ch, msg: Arc::new(m), charge });
                }
            }
            Err(e) => return self.refuse(ch, confirm, seq, e),
        }
        if confirm {
            self.send_method(
                ch,
                b(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: seq, multiple: false })),
            );
        }
        Ok(())
    }
}

impl Session<'_> {
    /// A publish refused by a limit is nacked under confirms; one a full queue rejected
    /// (x-overflow) is nacked under confirms and otherwise dropped silently; any other error
    /// (or a limit's refusal without confirms) closes the channel or the connection.
    pub(super) fn refuse(&mut self, ch: u16, confirm: bool, seq: u64, e: AmqpError) -> Result<(), AmqpError> {
        if e.scope == Scope::Rejected {
            if confirm {
                let nack = basic::Nack { delivery_tag: seq, multiple: false, requeue: false };
                self.send_method(ch, b(basic::AMQPMethod::Nack(nack)));
            }
            return Ok(());
        }
        if e.scope == Scope::Refused && confirm {
            let nack = basic::Nack { delivery_tag: seq, multiple: false, requeue: false };
            self.send_method(ch, b(basic::AMQPMethod::Nack(nack)));
            return Ok(());
        }
        Err(e)
    }
}
