//! Each refusal's text as RabbitMQ 3.10.8 gave it (read off the broker with pika), and the
//! equivalence rules on redeclare.

use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::*;

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn s(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

fn refusal(pairs: &[(&str, AMQPValue)]) -> String {
    let e = QueueArgs::parse("q", &table(pairs)).expect_err("refused");
    assert_eq!(e.code, 406);
    e.text.strip_prefix("PRECONDITION_FAILED - ").unwrap_or(&e.text).to_string()
}

#[test]
fn refusals_read_as_rabbitmq_words_them() {
    let int = AMQPValue::LongInt;
    let cases: Vec<(Vec<(&str, AMQPValue)>, &str)> = vec![
        (vec![("x-expires", int(0))], "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"),
        (
            vec![("x-expires", int(-1))],
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_negative,-1}",
        ),
        (
            vec![("x-expires", s("abc"))],
            "invalid arg 'x-expires' for queue 'q' in vhost '/': \"expected integer, got longstr\"",
        ),
        (
            vec![("x-message-ttl", int(-1))],
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}",
        ),
        (
            vec![("x-max-length-bytes", int(-5))],
            "invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-5}",
        ),
        (
            vec![("x-overflow", s("bogus"))],
            "invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow",
        ),
        (
            vec![("x-overflow", int(1))],
            "invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}",
        ),
        (
            vec![("x-dead-letter-exchange", int(5))],
            "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'",
        ),
        (
            vec![("x-dead-letter-routing-key", s("k"))],
            "invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined",
        ),
        (
            vec![("x-max-priority", int(256))],
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}",
        ),
        (
            vec![("x-single-active-consumer", s("yes"))],
            "invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}",
        ),
        (
            vec![("x-queue-mode", s("bogus"))],
            "invalid arg 'x-queue-mode' for queue 'q' in vhost '/': \"unsupported queue mode 'bogus'\"",
        ),
        (
            vec![("x-queue-type", s("bogus"))],
            "invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'bogus'\"",
        ),
        (
            vec![("x-queue-type", int(5))],
            "invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}",
        ),
        (
            vec![("x-delivery-limit", int(3))],
            "invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue",
        ),
        (
            vec![("x-queue-type", s("quorum")), ("x-max-priority", int(5))],
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(refusal(&args), want, "{args:?}");
    }
    assert!(refusal(&[("x-queue-type", s("stream"))]).contains("stream queues are not implemented"));
}

#[test]
fn settings_are_typed_and_quorum_queues_default_to_rabbitmq_4s_delivery_limit() {
    let a = QueueArgs::parse(
        "q",
        &table(&[
            ("x-message-ttl", AMQPValue::LongLongInt(1500)),
            ("x-overflow", s("reject-publish")),
            ("x-dead-letter-exchange", s("dlx")),
            ("x-unknown-to-rabbitmq", AMQPValue::Boolean(true)),
        ]),
    )
    .unwrap();
    assert_eq!(
        (a.message_ttl, a.overflow, a.dead_letter_exchange.as_deref()),
        (Some(1500), Overflow::RejectPublish, Some("dlx"))
    );
    assert_eq!(a.delivery_limit, None);
    let q = QueueArgs::parse("q", &table(&[("x-queue-type", s("quorum"))])).unwrap();
    assert_eq!(q.delivery_limit, Some(DEFAULT_DELIVERY_LIMIT));
    let off = QueueArgs::parse(
        "q",
        &table(&[("x-queue-type", s("quorum")), ("x-delivery-limit", AMQPValue::LongInt(-1))]),
    )
    .unwrap();
    assert_eq!(off.delivery_limit, None);
}

#[test]
fn redeclares_compare_as_rabbitmq_does() {
    let declared = |pairs: &[(&str, AMQPValue)]| QueueArgs::parse("q", &table(pairs)).unwrap();
    let text = |a: &QueueArgs, pairs: &[(&str, AMQPValue)]| {
        a.check_equivalent("q", &table(pairs))
            .err()
            .map(|e| e.text.replace("PRECONDITION_FAILED - inequivalent arg ", ""))
    };
    let ttl = declared(&[("x-message-ttl", AMQPValue::LongInt(100))]);
    // Integer widths are one class.
    assert_eq!(text(&ttl, &[("x-message-ttl", AMQPValue::LongLongInt(100))]), None);
    assert_eq!(
        text(&ttl, &[("x-message-ttl", AMQPValue::LongInt(200))]).unwrap(),
        "'x-message-ttl' for queue 'q' in vhost '/': received '200' but current is '100'"
    );
    assert_eq!(
        text(&ttl, &[]).unwrap(),
        "'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '100' of type 'signedint'"
    );
    let quorum = declared(&[("x-queue-type", s("quorum"))]);
    assert_eq!(
        text(&quorum, &[]).unwrap(),
        "'x-queue-type' for queue 'q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"
    );
    let classic = declared(&[]);
    assert_eq!(text(&classic, &[("x-queue-type", s("classic"))]), None);
    assert_eq!(
        text(&classic, &[("x-queue-type", s("quorum"))]).unwrap(),
        "'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"
    );
    // Arguments RabbitMQ does not compare may differ.
    assert_eq!(text(&classic, &[("x-foo", AMQPValue::LongInt(2))]), None);
}
