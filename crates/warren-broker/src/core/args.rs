//! Queue arguments (x-queue-type and the x-arguments RabbitMQ checks on redeclare).

use super::*;

pub(super) fn queue_type(args: &FieldTable) -> Result<QueueType, AmqpError> {
    for k in args.inner().keys() {
        let k = k.as_str();
        if matches!(
            k,
            "x-message-ttl"
                | "x-expires"
                | "x-max-length"
                | "x-max-length-bytes"
                | "x-dead-letter-exchange"
                | "x-dead-letter-routing-key"
                | "x-max-priority"
                | "x-overflow"
                | "x-single-active-consumer"
        ) {
            return Err(err(
                406,
                format!(
                    "PRECONDITION_FAILED - queue argument '{k}' is not supported by the embedded warren broker"
                ),
            ));
        }
    }
    match args.inner().get("x-queue-type") {
        None => Ok(QueueType::Classic),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"classic" => Ok(QueueType::Classic),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"quorum" => Ok(QueueType::Quorum),
        Some(v) => Err(err(
            406,
            format!(
                "PRECONDITION_FAILED - invalid arg 'x-queue-type' {v:?}: the embedded broker has classic and quorum queues"
            ),
        )),
    }
}

/// RabbitMQ checks the x-arguments it knows for equivalence on redeclare. Only the type is
/// kept of a queue's arguments (the others are refused at declare): a client's argument
/// table would otherwise be memory held for it and charged nowhere.
pub(super) fn check_equivalent_args(name: &str, have: QueueType, want: &FieldTable) -> Result<(), AmqpError> {
    let wanted = match want.inner().get("x-queue-type") {
        // A redeclare without x-queue-type matches any type, as in RabbitMQ.
        None => return Ok(()),
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(v) => format!("{v:?}"),
    };
    if wanted != have.name() {
        return Err(err(
            406,
            format!(
                "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{name}' in vhost '/': \
                 received '{wanted}' but current is '{}'",
                have.name()
            ),
        ));
    }
    Ok(())
}
