//! The task queue's arguments from the policy, and the dead-letter exchange and queue warren
//! declares beside it when the broker may take tasks out by itself.

use lapin::Channel;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::{Shared, connect};
use crate::policy::{Policy, QueueType};

/// `x-queue-type`, `x-delivery-limit`, `x-max-length`, `x-overflow`, `x-message-ttl` and
/// `x-dead-letter-exchange`, as the policy says. Empty for a plain classic queue.
pub fn arguments(shared: &Shared) -> FieldTable {
    let p = &shared.policy;
    let mut t = FieldTable::default();
    let mut put = |k: &str, v: AMQPValue| {
        t.insert(ShortString::from(k), v);
    };
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    if p.queue_type == QueueType::Quorum {
        put("x-queue-type", text("quorum"));
    }
    if let Some(n) = p.delivery_limit {
        put("x-delivery-limit", AMQPValue::LongLongInt(i64::from(n)));
    }
    if let Some(n) = p.max_length {
        put("x-max-length", AMQPValue::LongLongInt(i64::from(n)));
        put("x-overflow", text(p.overflow.as_str()));
    }
    if let Some(ttl) = p.task_ttl {
        put("x-message-ttl", AMQPValue::LongLongInt(ttl.as_millis().min(u128::from(u32::MAX)) as i64));
    }
    if p.dead_letters() {
        put("x-dead-letter-exchange", text(&Policy::dead_exchange(&shared.queue)));
    }
    if shared.single_active {
        put("x-single-active-consumer", AMQPValue::Boolean(true));
    }
    t
}

/// Declare `<queue>.dlx` (fanout) and `<queue>.dead` (classic, bound to it), durable like the
/// task queue. Idempotent; RabbitMQ does not need them before the task queue names the exchange,
/// but warren wants every dead letter caught from the first one.
pub async fn declare_dead_letters(channel: &Channel, shared: &Shared) -> Result<(), String> {
    let exchange = Policy::dead_exchange(&shared.queue);
    let queue = Policy::dead_queue(&shared.queue);
    let durable = shared.durable;
    channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions { durable, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map_err(|e| {
            format!("could not declare the dead-letter exchange '{exchange}': {}", connect::reply_text(&e))
        })?;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions { durable, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map_err(|e| connect::describe_declare_error(&e, &queue, durable))?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("could not bind '{queue}' to '{exchange}': {}", connect::reply_text(&e)))?;
    Ok(())
}
