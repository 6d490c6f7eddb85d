//! exchange.*, queue.* and basic.* methods (all but publishing): checked, applied to the core,
//! answered.

use super::*;

impl Session<'_> {
    pub(super) fn exchange_method(&mut self, ch: u16, m: exchange::AMQPMethod) -> Result<(), AmqpError> {
        let reply = |s: &Self, m| s.send_method(ch, AMQPClass::Exchange(m));
        match m {
            exchange::AMQPMethod::Declare(d) => {
                lock(&self.conn.core).exchange_declare(
                    d.exchange.as_str(),
                    d.kind.as_str(),
                    d.passive,
                    d.durable,
                    d.auto_delete,
                    d.internal,
                )?;
                if !d.nowait {
                    reply(self, exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}));
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                lock(&self.conn.core).exchange_delete(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    reply(self, exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}));
                }
            }
            exchange::AMQPMethod::Bind(_) | exchange::AMQPMethod::Unbind(_) => {
                return Err(AmqpError::connection(
                    540,
                    "NOT_IMPLEMENTED - exchange-to-exchange bindings are not supported by the embedded warren broker",
                ));
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected exchange method")),
        }
        Ok(())
    }

    pub(super) fn queue_method(&mut self, ch: u16, m: queue::AMQPMethod) -> Result<(), AmqpError> {
        let id = self.conn.id;
        let reply = |s: &Self, m| s.send_method(ch, AMQPClass::Queue(m));
        match m {
            queue::AMQPMethod::Declare(d) => {
                let (name, messages, consumers) = lock(&self.conn.core).queue_declare(
                    id,
                    d.queue.as_str(),
                    d.passive,
                    d.durable,
                    d.exclusive,
                    d.auto_delete,
                    &d.arguments,
                )?;
                if !d.nowait {
                    let ok = queue::DeclareOk {
                        queue: name.into(),
                        message_count: messages,
                        consumer_count: consumers,
                    };
                    reply(self, queue::AMQPMethod::DeclareOk(ok));
                }
            }
            queue::AMQPMethod::Bind(q) => {
                let key = q.routing_key.as_str();
                let (queue, exchange) = (q.queue.as_str(), q.exchange.as_str());
                lock(&self.conn.core).queue_bind(id, queue, exchange, key, &q.arguments, true)?;
                if !q.nowait {
                    reply(self, queue::AMQPMethod::BindOk(queue::BindOk {}));
                }
            }
            queue::AMQPMethod::Unbind(q) => {
                let key = q.routing_key.as_str();
                let (queue, exchange) = (q.queue.as_str(), q.exchange.as_str());
                lock(&self.conn.core).queue_bind(id, queue, exchange, key, &q.arguments, false)?;
                reply(self, queue::AMQPMethod::UnbindOk(queue::UnbindOk {}));
            }
            queue::AMQPMethod::Purge(p) => {
                let n = lock(&self.conn.core).queue_purge(id, p.queue.as_str())?;
                if !p.nowait {
                    reply(self, queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n }));
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let n = lock(&self.conn.core).queue_delete(id, d.queue.as_str(), d.if_unused, d.if_empty)?;
                if !d.nowait {
                    reply(self, queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: n }));
                }
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected queue method")),
        }
        Ok(())
    }

    pub(super) fn basic_method(&mut self, ch: u16, m: basic::AMQPMethod) -> Result<(), AmqpError> {
        let id = self.conn.id;
        match m {
            basic::AMQPMethod::Qos(q) => {
                // prefetch_size != 0 was refused as the frame was read (see frames::parse).
                lock(&self.conn.core).qos(id, ch, q.prefetch_count, q.global);
                self.send_method(ch, b(basic::AMQPMethod::QosOk(basic::QosOk {})));
            }
            basic::AMQPMethod::Consume(c) => {
                let mut core = lock(&self.conn.core);
                let (queue, tag) = (c.queue.as_str(), c.consumer_tag.as_str());
                let tag = core.consume(id, ch, queue, tag, c.no_ack, c.exclusive, &c.arguments)?;
                // consume-ok goes out before the first delivery: both are queued under the lock.
                if !c.nowait {
                    self.send_method(
                        ch,
                        b(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: tag })),
                    );
                }
                core.kick(c.queue.as_str());
            }
            basic::AMQPMethod::Cancel(c) => {
                lock(&self.conn.core).cancel(id, ch, c.consumer_tag.as_str());
                if !c.nowait {
                    let ok = basic::CancelOk { consumer_tag: c.consumer_tag };
                    self.send_method(ch, b(basic::AMQPMethod::CancelOk(ok)));
                }
            }
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - immediate=true"));
                }
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.incoming = Some(Incoming {
                        exchange: p.exchange,
                        routing_key: p.routing_key,
                        mandatory: p.mandatory,
                        properties: None,
                        size: 0,
                        body: Vec::new(),
                        held: 0,
                        charged: 0,
                        refused: None,
                        dropped: 0,
                    });
                }
            }
            basic::AMQPMethod::Get(g) => {
                let got = lock(&self.conn.core).get(id, ch, g.queue.as_str(), g.no_ack)?;
                match got {
                    Some(out) => self.out.send(out),
                    None => self.send_method(ch, b(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))),
                }
            }
            basic::AMQPMethod::Ack(a) => lock(&self.conn.core).ack(id, ch, a.delivery_tag, a.multiple)?,
            basic::AMQPMethod::Nack(n) => {
                lock(&self.conn.core).nack(id, ch, n.delivery_tag, n.multiple, n.requeue)?;
            }
            basic::AMQPMethod::Reject(r) => {
                lock(&self.conn.core).nack(id, ch, r.delivery_tag, false, r.requeue)?
            }
            basic::AMQPMethod::Recover(r) => {
                if !r.requeue {
                    return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - basic.recover requeue=false"));
                }
                lock(&self.conn.core).recover(id, ch);
                self.send_method(ch, b(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
            }
            basic::AMQPMethod::RecoverAsync(_) => {
                return Err(AmqpError::connection(540, "NOT_IMPLEMENTED - basic.recover-async"));
            }
            _ => return Err(AmqpError::connection(503, "COMMAND_INVALID - unexpected basic method")),
        }
        Ok(())
    }
}
