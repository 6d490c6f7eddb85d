//! A queue's x-arguments: checked at declare as RabbitMQ checks them (same codes, same texts),
//! kept as typed settings for the features that use them, and compared on redeclare as
//! RabbitMQ compares them (`rabbit_misc:assert_args_equivalence`: integer types are one class).
//!
//! Arguments RabbitMQ does not know are accepted and ignored, as RabbitMQ does; arguments it
//! knows are either implemented or refused with a sentence naming the feature.

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::AmqpError;

/// `x-queue-type`: both dispatch the same way; quorum adds `x-delivery-count`, the delivery
/// limit, and refuses global qos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

impl QueueType {
    /// As RabbitMQ names the module in "of queue type ..." refusals.
    fn module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
        }
    }
}

/// `x-overflow`: what a full queue (x-max-length / x-max-length-bytes) does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter, reason `maxlen`) the oldest ready messages.
    #[default]
    DropHead,
    /// Refuse the new message (nack under confirms).
    RejectPublish,
    /// Refuse it and dead-letter it.
    RejectPublishDlx,
}

/// RabbitMQ 4.0's default `x-delivery-limit` for quorum queues (3.x had none): a message
/// requeued this many times is dropped or dead-lettered instead of delivered again.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;

/// The arguments RabbitMQ checks for equivalence on redeclare (`rabbit_amqqueue:declare_args`
/// and the queue types' own); the others are ignored there and here.
const COMPARED: [&str; 21] = [
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-consumer-timeout",
    "x-initial-cluster-size",
];

/// A queue's checked arguments.
// Some settings are used only by features still to come (single active consumer, consumer
// timeout).
#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct QueueArgs {
    pub kind: QueueType,
    /// x-message-ttl, in ms.
    pub message_ttl: Option<u64>,
    /// x-expires, in ms (> 0).
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    /// x-max-priority (classic only), 0..=255.
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
    /// Quorum only: deliveries after which a requeued message is dropped or dead-lettered
    /// (`None`: no limit, x-delivery-limit = -1).
    pub delivery_limit: Option<u32>,
    /// x-consumer-timeout, in ms (RabbitMQ 3.12+).
    pub consumer_timeout: Option<u64>,
    /// The compared arguments as declared, for redeclare.
    declared: Vec<(String, AMQPValue)>,
}

/// A 406 about argument `key` of queue `queue`, RabbitMQ's text.
fn invalid(key: &str, queue: &str, why: impl std::fmt::Display) -> AmqpError {
    AmqpError::channel(
        406,
        format!("PRECONDITION_FAILED - invalid arg '{key}' for queue '{queue}' in vhost '/': {why}"),
    )
}

fn wrong_queue_type(key: &str, queue: &str, kind: QueueType) -> AmqpError {
    AmqpError::channel(
        406,
        format!(
            "PRECONDITION_FAILED - invalid arg '{key}' for queue '{queue}' in vhost '/' of queue type {}",
            kind.module()
        ),
    )
}

/// RabbitMQ's name for a field's type, as its error texts print it (queue arguments, consume
/// arguments and headers-exchange bindings alike).
pub fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// An integer field's value, whatever its width.
pub fn integer(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(n) => i128::from(*n),
        AMQPValue::ShortShortUInt(n) => i128::from(*n),
        AMQPValue::ShortInt(n) => i128::from(*n),
        AMQPValue::ShortUInt(n) => i128::from(*n),
        AMQPValue::LongInt(n) => i128::from(*n),
        AMQPValue::LongUInt(n) => i128::from(*n),
        AMQPValue::LongLongInt(n) => i128::from(*n),
        _ => return None,
    })
}

/// A string field's value (short or long string), lossily decoded.
pub fn string(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

/// How RabbitMQ prints a value in "received '...' but current is '...'".
fn shown(v: &AMQPValue) -> String {
    if let Some(n) = integer(v) {
        return n.to_string();
    }
    match v {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(d) => d.to_string(),
        _ => string(v).unwrap_or_else(|| type_name(v).to_string()),
    }
}

/// `rabbit_misc:type_class`: integers of any width are one class.
fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => type_name(a) == type_name(b) && shown(a) == shown(b),
        _ => false,
    }
}

/// A string argument (the dead-letter exchange and routing key), in RabbitMQ's words when not.
fn text_arg(key: &str, queue: &str, v: &AMQPValue) -> Result<String, AmqpError> {
    string(v).ok_or_else(|| {
        AmqpError::channel(
            406,
            format!(
                "PRECONDITION_FAILED - invalid type '{}' for arg '{key}' in queue '{queue}' in vhost '/'",
                type_name(v)
            ),
        )
    })
}

/// A non-negative integer argument (`{value_negative,N}`, `"expected integer, got T"`).
fn non_negative(key: &str, queue: &str, v: &AMQPValue) -> Result<u64, AmqpError> {
    let n = integer(v)
        .ok_or_else(|| invalid(key, queue, format!("\"expected integer, got {}\"", type_name(v))))?;
    if n < 0 {
        return Err(invalid(key, queue, format!("{{value_negative,{n}}}")));
    }
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

impl QueueArgs {
    /// Check a declare's arguments for queue `queue` (its name, for the error texts).
    pub fn parse(queue: &str, args: &FieldTable) -> Result<QueueArgs, AmqpError> {
        let table = args.inner();
        let mut a = QueueArgs { kind: queue_type(queue, table.get("x-queue-type"))?, ..QueueArgs::default() };
        if a.kind == QueueType::Quorum {
            a.delivery_limit = Some(DEFAULT_DELIVERY_LIMIT);
        }
        for (key, v) in table {
            let key = key.as_str();
            match key {
                "x-queue-type" => {}
                "x-message-ttl" => a.message_ttl = Some(non_negative(key, queue, v)?),
                "x-expires" => {
                    let n = non_negative(key, queue, v)?;
                    if n == 0 {
                        return Err(invalid(key, queue, "{value_zero,0}"));
                    }
                    a.expires = Some(n);
                }
                "x-max-length" => a.max_length = Some(non_negative(key, queue, v)?),
                "x-max-length-bytes" => a.max_length_bytes = Some(non_negative(key, queue, v)?),
                "x-consumer-timeout" => a.consumer_timeout = Some(non_negative(key, queue, v)?),
                "x-max-priority" => {
                    if a.kind == QueueType::Quorum {
                        return Err(wrong_queue_type(key, queue, a.kind));
                    }
                    let n = non_negative(key, queue, v)?;
                    let n = u8::try_from(n)
                        .map_err(|_| invalid(key, queue, format!("{{max_value_exceeded,{n}}}")))?;
                    a.max_priority = Some(n);
                }
                "x-overflow" => {
                    let s = string(v).ok_or_else(|| {
                        invalid(key, queue, format!("{{unacceptable_type,{}}}", type_name(v)))
                    })?;
                    a.overflow = match s.as_str() {
                        "drop-head" => Overflow::DropHead,
                        "reject-publish" => Overflow::RejectPublish,
                        "reject-publish-dlx" => Overflow::RejectPublishDlx,
                        _ => return Err(invalid(key, queue, "invalid_overflow")),
                    };
                }
                "x-dead-letter-exchange" => a.dead_letter_exchange = Some(text_arg(key, queue, v)?),
                "x-dead-letter-routing-key" => a.dead_letter_routing_key = Some(text_arg(key, queue, v)?),
                "x-single-active-consumer" => match v {
                    AMQPValue::Boolean(b) => a.single_active_consumer = *b,
                    _ => return Err(invalid(key, queue, format!("{{unacceptable_type,{}}}", type_name(v)))),
                },
                "x-delivery-limit" => {
                    if a.kind != QueueType::Quorum {
                        return Err(wrong_queue_type(key, queue, a.kind));
                    }
                    // RabbitMQ 4: a negative limit disables it.
                    a.delivery_limit = match integer(v) {
                        Some(n) if n < 0 => None,
                        Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                        None => {
                            return Err(invalid(
                                key,
                                queue,
                                format!("\"expected integer, got {}\"", type_name(v)),
                            ));
                        }
                    };
                }
                "x-queue-mode" => {
                    // Every classic queue pages to disk as needed since 3.12; RabbitMQ accepts
                    // the mode and ignores it, and so does this in-memory broker.
                    if a.kind == QueueType::Quorum {
                        return Err(wrong_queue_type(key, queue, a.kind));
                    }
                    match string(v).as_deref() {
                        Some("default" | "lazy") => {}
                        Some(other) => {
                            return Err(invalid(key, queue, format!("\"unsupported queue mode '{other}'\"")));
                        }
                        None => {
                            return Err(invalid(
                                key,
                                queue,
                                format!("{{unacceptable_type,{}}}", type_name(v)),
                            ));
                        }
                    }
                }
                "x-queue-version" => {
                    if a.kind == QueueType::Quorum {
                        return Err(wrong_queue_type(key, queue, a.kind));
                    }
                    match integer(v) {
                        Some(1 | 2) => {}
                        _ => {
                            return Err(invalid(
                                key,
                                queue,
                                format!("\"unsupported queue version '{}'\"", shown(v)),
                            ));
                        }
                    }
                }
                // One node, memory only: placement and replication settings change nothing.
                "x-quorum-initial-group-size"
                | "x-queue-leader-locator"
                | "x-queue-master-locator"
                | "x-max-in-memory-length"
                | "x-max-in-memory-bytes"
                | "x-dead-letter-strategy"
                | "x-initial-cluster-size" => {}
                _ => {}
            }
        }
        if a.dead_letter_routing_key.is_some() && a.dead_letter_exchange.is_none() {
            return Err(invalid("x-dead-letter-routing-key", queue, "routing_key_but_no_dlx_defined"));
        }
        a.declared =
            COMPARED.iter().filter_map(|k| table.get(*k).map(|v| (k.to_string(), v.clone()))).collect();
        Ok(a)
    }

    /// Bytes these settings hold beyond the queue itself, charged to the broker's memory budget for as long as the
    /// queue lives (a client chooses their size: an exchange name can be 128 KiB long here).
    pub fn held(&self) -> usize {
        let strings = [&self.dead_letter_exchange, &self.dead_letter_routing_key];
        let declared: usize =
            self.declared.iter().map(|(k, v)| k.len() + 64 + string(v).map_or(0, |s| s.len())).sum();
        // A queue without arguments costs what the queue count already bounds.
        declared + strings.iter().map(|s| s.as_ref().map_or(0, String::len)).sum::<usize>()
    }

    /// RabbitMQ's equivalence check when queue `queue` is declared again with `want`.
    pub fn check_equivalent(&self, queue: &str, want: &FieldTable) -> Result<(), AmqpError> {
        let want = want.inner();
        for key in COMPARED {
            let have = self.declared.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let got = want.get(key);
            // A classic queue is classic whether or not its declare said so.
            if key == "x-queue-type" && self.kind == QueueType::Classic {
                match got.and_then(string).as_deref() {
                    None | Some("classic") => continue,
                    Some(_) => {}
                }
            }
            let differs = match (have, got) {
                (None, None) => false,
                (Some(a), Some(b)) => !same_value(a, b),
                _ => true,
            };
            if !differs {
                continue;
            }
            let describe = |v: Option<&AMQPValue>| match v {
                None => "none".to_string(),
                Some(v) => format!("the value '{}' of type '{}'", shown(v), type_name(v)),
            };
            let text = match (got, have) {
                (Some(g), Some(h)) => format!("received '{}' but current is '{}'", shown(g), shown(h)),
                // A classic queue declared without x-queue-type, redeclared as another type.
                (g, h) => format!("received {} but current is {}", describe(g), describe(h)),
            };
            return Err(AmqpError::channel(
                406,
                format!(
                    "PRECONDITION_FAILED - inequivalent arg '{key}' for queue '{queue}' in vhost '/': {text}"
                ),
            ));
        }
        Ok(())
    }
}

fn queue_type(queue: &str, v: Option<&AMQPValue>) -> Result<QueueType, AmqpError> {
    let Some(v) = v else { return Ok(QueueType::Classic) };
    let key = "x-queue-type";
    match string(v).as_deref() {
        Some("classic") => Ok(QueueType::Classic),
        Some("quorum") => Ok(QueueType::Quorum),
        Some("stream") => Err(invalid(
            key,
            queue,
            "\"unsupported queue type 'stream'\" (stream queues are not implemented by the embedded warren broker: \
             use RabbitMQ for them)",
        )),
        Some(other) => Err(invalid(key, queue, format!("\"unsupported queue type '{other}'\""))),
        None => Err(invalid(key, queue, format!("{{unacceptable_type,{}}}", type_name(v)))),
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
