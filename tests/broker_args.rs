//! Queue arguments on both brokers: what RabbitMQ refuses is refused with the same code and text
//! (queue name aside), what it accepts is accepted, and redeclares compare the same way.

mod common;

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties};
use warren::workload::connect::{reply_code, reply_text};

/// Arguments, whether the queue is durable, and RabbitMQ's refusal text.
type Refusal<'a> = (Vec<(&'a str, AMQPValue)>, bool, &'a str);

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

/// Declare `name` with these options and arguments on a fresh channel: None if declared, else
/// the code and text (the queue's name replaced by Q).
async fn declare(
    conn: &Connection,
    name: &str,
    durable: bool,
    args: &[(&str, AMQPValue)],
) -> Option<(u16, String)> {
    let ch = conn.create_channel().await.unwrap();
    let opts = QueueDeclareOptions { durable, ..Default::default() };
    match ch.queue_declare(name.into(), opts, table(args)).await {
        Ok(_) => {
            let _ = ch.close(200, "ok".into()).await;
            None
        }
        Err(e) => Some((reply_code(&e).unwrap_or(0), reply_text(&e).replace(name, "Q"))),
    }
}

async fn refusals_and_redeclares(url: &str) {
    let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let int = AMQPValue::LongInt;
    let refused: Vec<Refusal> = vec![
        (
            vec![("x-expires", int(0))],
            false,
            "invalid arg 'x-expires' for queue 'Q' in vhost '/': {value_zero,0}",
        ),
        (
            vec![("x-message-ttl", int(-1))],
            false,
            "invalid arg 'x-message-ttl' for queue 'Q' in vhost '/': {value_negative,-1}",
        ),
        (
            vec![("x-overflow", s("bogus"))],
            false,
            "invalid arg 'x-overflow' for queue 'Q' in vhost '/': invalid_overflow",
        ),
        (
            vec![("x-dead-letter-routing-key", s("k"))],
            false,
            "invalid arg 'x-dead-letter-routing-key' for queue 'Q' in vhost '/': routing_key_but_no_dlx_defined",
        ),
        (
            vec![("x-max-priority", int(256))],
            false,
            "invalid arg 'x-max-priority' for queue 'Q' in vhost '/': {max_value_exceeded,256}",
        ),
        (
            vec![("x-delivery-limit", int(3))],
            false,
            "invalid arg 'x-delivery-limit' for queue 'Q' in vhost '/' of queue type rabbit_classic_queue",
        ),
        (
            vec![("x-queue-type", s("quorum"))],
            false,
            "invalid property 'non-durable' for queue 'Q' in vhost '/'",
        ),
        (
            vec![("x-queue-type", s("quorum")), ("x-max-priority", int(5))],
            true,
            "invalid arg 'x-max-priority' for queue 'Q' in vhost '/' of queue type rabbit_quorum_queue",
        ),
    ];
    for (args, durable, want) in refused {
        let name = common::unique_queue("args");
        let got = declare(&conn, &name, durable, &args).await;
        assert_eq!(got, Some((406, format!("PRECONDITION_FAILED - {want}"))), "{args:?}");
    }

    // Accepted: what RabbitMQ accepts, unknown x-arguments included.
    let name = common::unique_queue("args-ok");
    let ok = [("x-message-ttl", int(60_000)), ("x-max-length", int(10)), ("x-unknown-to-both", int(1))];
    assert_eq!(declare(&conn, &name, false, &ok).await, None);
    // Redeclare: integer widths compare equal; a different value or a missing one does not.
    let same = [("x-message-ttl", AMQPValue::LongLongInt(60_000)), ("x-max-length", int(10))];
    assert_eq!(declare(&conn, &name, false, &same).await, None);
    let (code, text) = declare(&conn, &name, false, &[("x-max-length", int(10))]).await.unwrap();
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'Q' in vhost '/': \
         received none but current is the value '60000' of type 'signedint'"
    );
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await.unwrap();

    // A quorum queue redeclared without its type.
    let name = common::unique_queue("args-quorum");
    assert_eq!(declare(&conn, &name, true, &[("x-queue-type", s("quorum"))]).await, None);
    let (_, text) = declare(&conn, &name, true, &[]).await.unwrap();
    assert_eq!(
        text,
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'Q' in vhost '/': \
         received none but current is the value 'quorum' of type 'longstr'"
    );
    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn queue_arguments_are_checked_as_rabbitmq_checks_them() {
    on_every_broker!("queue_arguments_are_checked_as_rabbitmq_checks_them", refusals_and_redeclares);
}
