//! Exchanges and queues: declare, bind, purge, delete.

use super::*;
use crate::store::Record;

impl Core {
    // ---- exchanges ----

    #[allow(clippy::too_many_arguments)]
    pub fn exchange_declare(
        &mut self,
        name: &str,
        kind: &str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
    ) -> Result<(), AmqpError> {
        if let Some(x) = self.exchanges.get(name) {
            if passive {
                return Ok(());
            }
            if x.kind.name() != kind {
                return Err(err(
                    406,
                    format!(
                        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{name}' in vhost '/': \
                         received '{kind}' but current is '{}'",
                        x.kind.name()
                    ),
                ));
            }
            for (arg, have, want) in [
                ("durable", x.durable, durable),
                ("auto_delete", x.auto_delete, auto_delete),
                ("internal", x.internal, internal),
            ] {
                if have != want {
                    return Err(inequivalent("exchange", name, arg, want, have));
                }
            }
            return Ok(());
        }
        if passive {
            return Err(not_found_exchange(name));
        }
        if name.starts_with("amq.") {
            return Err(err(
                403,
                format!("ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let Some(k) = Kind::parse(kind) else {
            // RabbitMQ's words; plugin types (x-delayed-message, ...) are unknown here too.
            return Err(AmqpError::connection(
                503,
                format!("COMMAND_INVALID - unknown exchange type '{kind}'"),
            ));
        };
        if self.exchanges.len() - BUILT_IN_EXCHANGES.len() >= self.limits.max_exchanges {
            return Err(full(self.limits.max_exchanges, "exchanges", "delete some"));
        }
        self.exchanges.insert(name.to_string(), Exchange::new(k, durable, auto_delete, internal));
        if durable {
            self.record(|| Record::Exchange {
                name: name.to_string(),
                kind: kind.to_string(),
                auto_delete,
                internal,
            });
        }
        Ok(())
    }

    pub fn exchange_delete(&mut self, name: &str, if_unused: bool) -> Result<(), AmqpError> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(err(403, format!("ACCESS_REFUSED - operation not permitted on exchange '{name}'")));
        }
        // Deleting what is not there succeeds, as in RabbitMQ: clean-up scripts are idempotent.
        let Some(x) = self.exchanges.get(name) else { return Ok(()) };
        if if_unused && !x.bindings.is_empty() {
            return Err(err(406, format!("PRECONDITION_FAILED - exchange '{name}' in vhost '/' in use")));
        }
        self.held_bytes -= x.held();
        if x.durable {
            self.record(|| Record::ExchangeDeleted { name: name.to_string() });
        }
        self.exchanges.remove(name);
        Ok(())
    }

    // ---- queues ----

    #[allow(clippy::too_many_arguments)]
    pub fn queue_declare(
        &mut self,
        conn: ConnId,
        name: &str,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: &FieldTable,
    ) -> Result<DeclareOk, AmqpError> {
        if let Some(reply_to) = self.declare_reply_to(name) {
            return reply_to;
        }
        let server_named = name.is_empty();
        let name = if server_named {
            self.next_tag += 1;
            format!("amq.gen-warren-{}", self.next_tag)
        } else {
            name.to_string()
        };
        if let Some(q) = self.queues.get(&name) {
            if let Some(owner) = q.exclusive_owner
                && owner != conn
            {
                return Err(locked(&name));
            }
            if !passive {
                for (arg, have, want) in [
                    ("durable", q.durable, durable),
                    ("exclusive", q.exclusive_owner.is_some(), exclusive),
                    ("auto_delete", q.auto_delete, auto_delete),
                ] {
                    if have != want {
                        return Err(inequivalent("queue", &name, arg, want, have));
                    }
                }
                q.args.check_equivalent(&name, arguments)?;
            }
            // A declare is a use (x-expires), and counts what has not expired.
            self.expire_due(&name, tokio::time::Instant::now());
            self.queue_used(&name);
            let q = &self.queues[&name];
            return Ok((name, q.ready.len() as u32, q.consumer_count() as u32));
        }
        if passive {
            return Err(not_found_queue(&name));
        }
        // Only a name the client chose may not start with amq.: server-generated names are
        // amq.gen-* on purpose (checking them refused every server-named queue with 403).
        if !server_named && name.starts_with("amq.") {
            return Err(err(
                403,
                format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let args = QueueArgs::parse(&name, arguments)?;
        if args.kind == QueueType::Quorum {
            // RabbitMQ's order of checks (rabbit_quorum_queue:declare), and its words.
            let refused =
                [(auto_delete, "auto-delete"), (exclusive, "exclusive-owner"), (!durable, "non-durable")];
            if let Some((_, property)) = refused.iter().find(|(bad, _)| *bad) {
                return Err(err(
                    406,
                    format!(
                        "PRECONDITION_FAILED - invalid property '{property}' for queue '{name}' in vhost '/'"
                    ),
                ));
            }
        }
        if self.queues.len() >= self.limits.max_queues {
            return Err(full(self.limits.max_queues, "queues", "delete some"));
        }
        // The arguments live as long as the queue: charged like messages are.
        let held = args.held();
        if self.held_bytes() + held > self.limits.max_held_bytes {
            return Err(full(
                self.limits.max_held_bytes,
                "bytes of messages and queue arguments",
                "consume or purge",
            ));
        }
        self.held_bytes += held;
        let owner = exclusive.then_some(conn);
        self.queues.insert(name.clone(), Queue::new(durable, owner, auto_delete, args));
        if durable && !exclusive {
            self.durable_queue(&name, auto_delete, arguments);
        }
        self.queue_used(&name);
        Ok((name, 0, 0))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn queue_bind(
        &mut self,
        conn: ConnId,
        queue: &str,
        exchange: &str,
        key: &str,
        arguments: &FieldTable,
        bind: bool,
    ) -> Result<(), AmqpError> {
        if exchange.is_empty() {
            return Err(err(403, "ACCESS_REFUSED - operation not permitted on the default exchange"));
        }
        self.queue_for(conn, queue)?;
        let Some(x) = self.exchanges.get(exchange) else { return Err(not_found_exchange(exchange)) };
        let b = Binding::with_args(queue, key, x.kind, arguments)?;
        let kept = self.store.is_some() && x.durable && self.queues[queue].store_id.is_some();
        let present = x.bindings.contains(&b);
        if bind && !present {
            if self.binding_count() >= self.limits.max_bindings {
                return Err(full(self.limits.max_bindings, "bindings", "unbind some"));
            }
            // Arguments are memory a client makes the broker hold: charged like messages.
            if self.held_bytes() + b.held() > self.limits.max_held_bytes {
                return Err(full(
                    self.limits.max_held_bytes,
                    "bytes of messages and binding arguments",
                    "consume, purge or unbind some",
                ));
            }
            self.held_bytes += b.held();
        }
        if kept && bind != present {
            let (exchange, qid, key, args) = (
                exchange.to_string(),
                self.queues[queue].store_id.expect("kept"),
                key.to_string(),
                b.args().to_vec(),
            );
            self.record(|| match bind {
                true => Record::Bind { exchange, qid, key, args },
                false => Record::Unbind { exchange, qid, key, args },
            });
        }
        let x = self.exchanges.get_mut(exchange).expect("looked up above");
        if bind {
            x.bindings.insert(b);
        } else {
            let (gone, freed) = x.unbind(|have| *have == b);
            self.held_bytes -= freed;
            if gone {
                self.exchanges.remove(exchange);
            }
        }
        Ok(())
    }

    pub fn queue_purge(&mut self, conn: ConnId, queue: &str) -> Result<u32, AmqpError> {
        let q = self.queue_for(conn, queue)?;
        let (n, bytes) = q.ready.purge();
        self.held_bytes -= bytes;
        Ok(n as u32)
    }

    pub fn queue_delete(
        &mut self,
        conn: ConnId,
        queue: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        // Deleting what is not there succeeds, as in RabbitMQ: clean-up scripts are idempotent.
        if !self.queues.contains_key(queue) {
            return Ok(0);
        }
        let q = self.queue_for(conn, queue)?;
        if if_unused && q.consumer_count() > 0 {
            return Err(err(406, format!("PRECONDITION_FAILED - queue '{queue}' in vhost '/' in use")));
        }
        if if_empty && !q.ready.is_empty() {
            return Err(err(406, format!("PRECONDITION_FAILED - queue '{queue}' in vhost '/' is not empty")));
        }
        Ok(self.delete_queue_now(queue))
    }

    /// Remove a queue, its bindings and its consumers (told with basic.cancel).
    pub(super) fn delete_queue_now(&mut self, name: &str) -> u32 {
        let Some(mut q) = self.queues.remove(name) else { return 0 };
        if let Some(qid) = q.store_id {
            self.record(|| Record::QueueDeleted { qid });
        }
        let (n, bytes) = q.ready.purge();
        self.held_bytes -= bytes + q.args.held();
        let mut freed = 0;
        self.exchanges.retain(|_, x| {
            let (gone, held) = x.unbind(|b| b.queue == name);
            freed += held;
            !gone
        });
        self.held_bytes -= freed;
        for key in q.consumers.keys() {
            if let Some(chan) = self.channels.get_mut(&(key.conn, key.channel)) {
                chan.consumers.remove(&key.tag);
            }
            if let Some(c) = self.conns.get(&key.conn) {
                c.send(Out::Cancel { channel: key.channel, consumer_tag: key.tag.clone() });
            }
        }
        n as u32
    }

    pub(super) fn queue_for(&mut self, conn: ConnId, name: &str) -> Result<&mut Queue, AmqpError> {
        let q = self.queues.get_mut(name).ok_or_else(|| not_found_queue(name))?;
        if q.exclusive_owner.is_some_and(|o| o != conn) {
            return Err(locked(name));
        }
        Ok(q)
    }
}
