//! The AMQP arguments behind consumer priorities and single active consumer: `x-priority` on
//! basic.consume, `x-single-active-consumer` on queue.declare (RabbitMQ's consumer-priority.md
//! and consumers.md#single-active-consumer).

use lapin::types::{AMQPValue, FieldTable};

use super::{Shared, connect};

/// The arguments of a consumer's basic.consume: its priority, unless it has the default.
pub fn consume_arguments(priority: i32) -> FieldTable {
    let mut args = FieldTable::default();
    if priority != 0 {
        args.insert("x-priority".into(), AMQPValue::LongInt(priority));
    }
    args
}

/// A 406 about `x-single-active-consumer`: the queue exists with the other setting, and what to do.
pub fn single_active_mismatch(e: &lapin::Error, shared: &Shared) -> Option<String> {
    let text = connect::reply_text(e);
    (connect::reply_code(e) == Some(406) && text.contains("inequivalent arg 'x-single-active-consumer'"))
        .then(|| {
            let (ours, flip) = if shared.single_active {
                ("with x-single-active-consumer (--single-active)", "drop --single-active")
            } else {
                ("without x-single-active-consumer", "add --single-active")
            };
            format!(
                "queue '{q}' already exists with other settings ({text}). warren declares it {ours}: \
             delete it (`rabbitmqctl delete_queue {q}`), use another --queue, or {flip}",
                q = shared.queue
            )
        })
}
