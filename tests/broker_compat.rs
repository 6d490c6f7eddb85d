//! RabbitMQ features beyond plain work queues, asserted the same way on the embedded broker
//! and on RabbitMQ 3.10: the headers exchange's matching, direct reply-to (the RPC pattern of
//! tutorial 6), idempotent deletes, and the exact codes and texts of a few refusals.

mod common;

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, parse_frame};
use amq_protocol::protocol::{AMQPClass, connection};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren::broker::REPLY_TO;
use warren::workload::connect::{reply_code, reply_text};

/// Generous: a loaded CI machine, never a stand-in for an event.
const WAIT: Duration = Duration::from_secs(20);

async fn connect(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

fn table(fields: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in fields {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

/// The code and text an operation failed with.
fn refusal<T: std::fmt::Debug>(r: Result<T, lapin::Error>) -> (u16, String) {
    let e = r.expect_err("refused");
    (reply_code(&e).unwrap_or_else(|| panic!("not a protocol error: {e}")), reply_text(&e))
}

/// Everything in `queue` now, by body, taken with basic.get.
async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
        got.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
    }
    got
}

async fn exclusive_queue(ch: &Channel) -> String {
    let options = QueueDeclareOptions { exclusive: true, ..Default::default() };
    ch.queue_declare("".into(), options, FieldTable::default()).await.expect("queue").name().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headers_exchange_matches_as_rabbitmq_does() {
    on_every_broker!("the_headers_exchange_matches_as_rabbitmq_does", headers_exchange_on);
}

async fn headers_exchange_on(url: &str) {
    let (conn, ch) = connect(url).await;
    let x = common::unique_queue("headers-x");
    let auto_delete = ExchangeDeclareOptions { auto_delete: true, ..Default::default() };
    ch.exchange_declare(x.as_str().into(), ExchangeKind::Headers, auto_delete, FieldTable::default())
        .await
        .expect("a headers exchange");
    let one = AMQPValue::LongLongInt(1);
    let patterns = [
        ("all", table(&[("x-match", s("all")), ("a", one.clone()), ("b", s("x"))])),
        ("any", table(&[("x-match", s("any")), ("a", one.clone()), ("b", s("x"))])),
        ("default all", table(&[("a", one.clone())])),
        ("all-with-x", table(&[("x-match", s("all-with-x")), ("x-k", s("v"))])),
        ("any-with-x", table(&[("x-match", s("any-with-x")), ("x-k", s("v")), ("a", AMQPValue::LongInt(2))])),
        ("all ignores x-", table(&[("x-match", s("all")), ("x-k", s("v"))])),
        ("any ignores x-", table(&[("x-match", s("any")), ("x-k", s("v"))])),
        ("present", table(&[("a", AMQPValue::Void)])),
    ];
    let mut queues = Vec::new();
    for (name, args) in &patterns {
        let q = exclusive_queue(&ch).await;
        ch.queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            "ignored".into(),
            QueueBindOptions::default(),
            args.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("bind {name}: {e}"));
        queues.push((*name, q));
    }
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let messages: [(&str, Option<FieldTable>); 9] = [
        ("m1", Some(table(&[("a", one.clone()), ("b", s("x"))]))),
        ("m2", Some(table(&[("a", AMQPValue::ShortShortUInt(1))]))),
        ("m3", Some(table(&[("b", s("x")), ("c", AMQPValue::LongInt(3))]))),
        ("m4", None),
        ("m5", Some(table(&[("x-k", s("v"))]))),
        ("m6", Some(table(&[("a", s("1"))]))),
        ("m7", Some(table(&[("a", AMQPValue::LongInt(2))]))),
        ("m8", Some(table(&[("a", AMQPValue::Boolean(true))]))),
        ("m9", Some(table(&[("a", AMQPValue::Void)]))),
    ];
    for (body, headers) in messages {
        let props = match headers {
            Some(h) => BasicProperties::default().with_headers(h),
            None => BasicProperties::default(),
        };
        // The routing key is not looked at by a headers exchange.
        ch.basic_publish(
            x.as_str().into(),
            "whatever".into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props,
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
    }
    let want: [(&str, &[&str]); 8] = [
        ("all", &["m1"]),
        ("any", &["m1", "m2", "m3"]),
        ("default all", &["m1", "m2"]),
        ("all-with-x", &["m5"]),
        ("any-with-x", &["m5", "m7"]),
        ("all ignores x-", &["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]),
        ("any ignores x-", &[]),
        ("present", &["m1", "m2", "m6", "m7", "m8", "m9"]),
    ];
    for ((name, q), (want_name, want)) in queues.iter().zip(want) {
        assert_eq!(*name, want_name);
        assert_eq!(drain(&ch, q).await, want, "binding {name}");
    }
    // x-match must be one of the four, as a string.
    let q = &queues[0].1;
    let bind = |args: FieldTable| {
        let (x, q) = (x.clone(), q.clone());
        let conn = &conn;
        async move {
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_bind(q.as_str().into(), x.as_str().into(), "".into(), QueueBindOptions::default(), args)
                .await
        }
    };
    assert_eq!(
        refusal(bind(table(&[("x-match", s("foo"))])).await),
        (
            406,
            "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, any, all-with-x, or any-with-x"
                .into()
        )
    );
    assert_eq!(
        refusal(bind(table(&[("x-match", AMQPValue::LongInt(5))])).await),
        (
            406,
            "PRECONDITION_FAILED - Invalid x-match field type signedint (value 5); expected longstr".into()
        )
    );
    let _ = conn.close(200, "bye".into()).await;
}

/// A binding is known by its arguments too: the same queue and key bound twice with other
/// arguments is two bindings (a message still goes once), and unbind takes off only the one
/// whose arguments it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_differ_by_their_arguments() {
    on_every_broker!("bindings_differ_by_their_arguments", binding_arguments_on);
}

async fn binding_arguments_on(url: &str) {
    let (conn, ch) = connect(url).await;
    let q = exclusive_queue(&ch).await;
    let key = common::unique_queue("args-key");
    let p = |n| table(&[("p", AMQPValue::LongInt(n))]);
    for args in [p(1), p(2)] {
        ch.queue_bind(
            q.as_str().into(),
            "amq.direct".into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            args,
        )
        .await
        .expect("bind");
    }
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let publish = |body: &'static str| {
        let (ch, key) = (ch.clone(), key.clone());
        async move {
            ch.basic_publish(
                "amq.direct".into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirmed");
        }
    };
    let unbind = |args: FieldTable| {
        let (ch, q, key) = (ch.clone(), q.clone(), key.clone());
        async move {
            ch.queue_unbind(q.as_str().into(), "amq.direct".into(), key.as_str().into(), args)
                .await
                .expect("unbind");
        }
    };
    // Unbinding a binding that does not exist (no arguments) is no error and changes nothing.
    unbind(FieldTable::default()).await;
    publish("d1").await;
    unbind(p(1)).await;
    publish("d2").await;
    unbind(p(2)).await;
    publish("d3").await;
    assert_eq!(drain(&ch, &q).await, ["d1", "d2"]);
    let _ = conn.close(200, "bye".into()).await;
}

/// Tutorial 6's RPC with direct reply-to: the client consumes amq.rabbitmq.reply-to (no-ack),
/// its requests carry a reply name of its own, and the server's replies, published to that name
/// on the default exchange, come back to it in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reply_to_answers_rpc_requests() {
    on_every_broker!("direct_reply_to_answers_rpc_requests", direct_reply_to_on);
}

async fn direct_reply_to_on(url: &str) {
    let rpc_queue = common::unique_queue("rpc");
    let (server_conn, server) = connect(url).await;
    let auto_delete = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    server
        .queue_declare(rpc_queue.as_str().into(), auto_delete, FieldTable::default())
        .await
        .expect("rpc queue");
    let mut requests = server
        .basic_consume(
            rpc_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("server consumes");
    let (client_conn, client) = connect(url).await;
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut replies = client
        .basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default())
        .await
        .expect("consume replies");
    let mut names = Vec::new();
    for n in 1..=3 {
        let request = BasicProperties::default()
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(format!("c{n}").into());
        client
            .basic_publish(
                "".into(),
                rpc_queue.as_str().into(),
                BasicPublishOptions::default(),
                format!("{n}").as_bytes(),
                request,
            )
            .await
            .expect("request");
        let d =
            tokio::time::timeout(WAIT, requests.next()).await.expect("a request in time").unwrap().unwrap();
        let name = d.properties.reply_to().clone().expect("reply_to").to_string();
        assert!(name.starts_with("amq.rabbitmq.reply-to.") && name.len() > REPLY_TO.len() + 1, "{name}");
        names.push(name.clone());
        d.ack(Default::default()).await.expect("ack the request");
        let answer =
            BasicProperties::default().with_correlation_id(d.properties.correlation_id().clone().unwrap());
        let body = format!("fib({n})");
        server
            .basic_publish(
                "".into(),
                name.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                answer,
            )
            .await
            .expect("reply");
        let r =
            tokio::time::timeout(WAIT, replies.next()).await.expect("the reply in time").unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&r.data), body);
        assert_eq!(r.properties.correlation_id().as_ref().map(|c| c.to_string()), Some(format!("c{n}")));
        assert_eq!(r.routing_key.as_str(), name);
        assert_eq!(r.exchange.as_str(), "");
    }
    // One name per channel, the same for each request.
    assert!(names.windows(2).all(|w| w[0] == w[1]), "{names:?}");
    // The pseudo-queue and the reply name can be declared (passively too): one consumer each.
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    for name in [REPLY_TO, names[0].as_str()] {
        let ok = server.queue_declare(name.into(), passive, FieldTable::default()).await.expect("declare");
        assert_eq!((ok.message_count(), ok.consumer_count()), (0, 1), "{name}");
    }
    let bogus = "amq.rabbitmq.reply-to.nobody";
    let ch = server_conn.create_channel().await.expect("channel");
    assert_eq!(
        refusal(ch.queue_declare(bogus.into(), passive, FieldTable::default()).await),
        (404, format!("NOT_FOUND - no queue '{bogus}' in vhost '/'"))
    );
    // Once the client's channel is closed, its reply name reaches nobody: a mandatory reply
    // comes back as unroutable (RabbitMQ 3.10 returns every mandatory reply; see the README).
    client.close(200, "bye".into()).await.expect("close the client's channel");
    let ch = server_conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
    let confirmation = ch
        .basic_publish("".into(), names[0].as_str().into(), mandatory, b"late", BasicProperties::default())
        .await
        .expect("late reply")
        .await
        .expect("confirmed");
    let returned = confirmation.take_message().expect("returned as unroutable");
    assert_eq!((returned.reply_code, returned.reply_text.as_str()), (312, "NO_ROUTE"));
    let _ = client_conn.close(200, "bye".into()).await;
    let _ = server.queue_delete(rpc_queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = server_conn.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reply_to_refuses_as_rabbitmq_does() {
    on_every_broker!("direct_reply_to_refuses_as_rabbitmq_does", direct_reply_to_refusals_on);
}

async fn direct_reply_to_refusals_on(url: &str) {
    let (conn, ch) = connect(url).await;
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    assert_eq!(
        refusal(
            ch.basic_consume(
                REPLY_TO.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default()
            )
            .await
        ),
        (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge".into())
    );
    let ch = conn.create_channel().await.expect("channel");
    // Kept: lapin cancels a consumer it drops.
    let _replies = ch
        .basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default())
        .await
        .expect("consume replies");
    assert_eq!(
        refusal(ch.basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default()).await),
        (406, "PRECONDITION_FAILED - reply consumer already set".into())
    );
    // A cancelled reply consumer is gone: asking for a reply then closes the channel too.
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let replies =
        ch.basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default()).await.expect("consume");
    ch.basic_cancel(replies.tag(), Default::default()).await.expect("cancel");
    let request = BasicProperties::default().with_reply_to(REPLY_TO.into());
    let confirm = ch
        .basic_publish("".into(), "nowhere".into(), BasicPublishOptions::default(), b"?", request)
        .await
        .expect("publish is sent");
    assert_eq!(
        refusal(confirm.await),
        (406, "PRECONDITION_FAILED - fast reply consumer does not exist".into())
    );
    // Asking for a reply on a channel that does not consume replies closes it (the confirm
    // that will not come fails with the channel's close).
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let request = BasicProperties::default().with_reply_to(REPLY_TO.into());
    let confirm = ch
        .basic_publish("".into(), "nowhere".into(), BasicPublishOptions::default(), b"?", request)
        .await
        .expect("publish is sent");
    assert_eq!(
        refusal(confirm.await),
        (406, "PRECONDITION_FAILED - fast reply consumer does not exist".into())
    );
    // Not a queue for anything else.
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        refusal(ch.basic_get(REPLY_TO.into(), BasicGetOptions::default()).await),
        (404, format!("NOT_FOUND - no queue '{REPLY_TO}' in vhost '/'"))
    );
    let _ = conn.close(200, "bye".into()).await;
}

/// Deleting a queue or an exchange that is not there succeeds (delete-ok, 0 messages), so
/// clean-up scripts can run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_what_is_not_there_succeeds() {
    on_every_broker!("deleting_what_is_not_there_succeeds", idempotent_deletes_on);
}

async fn idempotent_deletes_on(url: &str) {
    let (conn, ch) = connect(url).await;
    let name = common::unique_queue("never-declared");
    for options in [
        QueueDeleteOptions::default(),
        QueueDeleteOptions { if_unused: true, if_empty: true, ..Default::default() },
    ] {
        let n = ch.queue_delete(name.as_str().into(), options).await.expect("queue delete-ok");
        assert_eq!(n, 0);
    }
    ch.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("exchange delete-ok");
    // The channel is still open: the deletes were answered, not refused.
    ch.basic_qos(1, BasicQosOptions::default()).await.expect("channel still open");
    let _ = conn.close(200, "bye".into()).await;
}

/// Refusals with RabbitMQ's exact codes and texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_use_rabbitmqs_words() {
    on_every_broker!("refusals_use_rabbitmqs_words", refusals_on);
}

async fn refusals_on(url: &str) {
    // An exclusive queue, seen from another connection: both of RabbitMQ's sentences.
    let (owner, ch) = connect(url).await;
    let q = common::unique_queue("locked");
    let exclusive = QueueDeclareOptions { exclusive: true, ..Default::default() };
    ch.queue_declare(q.as_str().into(), exclusive, FieldTable::default()).await.expect("exclusive queue");
    let (other, ch2) = connect(url).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    assert_eq!(
        refusal(ch2.queue_declare(q.as_str().into(), passive, FieldTable::default()).await),
        (
            405,
            format!(
                "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. \
                 It could be originally declared on another connection or the exclusive property value \
                 does not match that of the original declaration."
            )
        )
    );
    let _ = other.close(200, "bye".into()).await;
    let _ = owner.close(200, "bye".into()).await;

    // An unknown exchange type closes the connection.
    let (conn, ch) = connect(url).await;
    let x = common::unique_queue("odd-type");
    let kind = ExchangeKind::Custom("nonsense".into());
    assert_eq!(
        refusal(
            ch.exchange_declare(
                x.as_str().into(),
                kind,
                ExchangeDeclareOptions::default(),
                FieldTable::default()
            )
            .await
        ),
        (503, "COMMAND_INVALID - unknown exchange type 'nonsense'".into())
    );
    drop(conn);

    // Global qos, then a consumer on a quorum queue: the connection closes, naming the queue.
    let (conn, ch) = connect(url).await;
    let quorum = common::unique_queue("quorum-global-qos");
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(quorum.as_str().into(), durable, table(&[("x-queue-type", s("quorum"))]))
        .await
        .expect("quorum queue");
    ch.basic_qos(10, BasicQosOptions { global: true }).await.expect("global qos");
    assert_eq!(
        refusal(
            ch.basic_consume(
                quorum.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default()
            )
            .await
        ),
        (540, format!("NOT_IMPLEMENTED - queue '{quorum}' in vhost '/' does not support global qos"))
    );
    assert!(!conn.status().connected(), "the whole connection closed, not just the channel");
    common::delete_queue(url, &quorum).await;

    // prefetch_size != 0 (lapin cannot send it: a raw frame does).
    assert_eq!(
        qos_with_prefetch_size(url, 1024).await,
        (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1024)".into())
    );
}

/// Log in over a raw socket (step by step, as RabbitMQ wants), open channel 1, send basic.qos
/// with this prefetch_size and return the code and text of the connection.close that answers.
async fn qos_with_prefetch_size(url: &str, prefetch_size: u32) -> (u16, String) {
    use common::frames::{HEADER, channel_open, conn, encode, open, start_ok};
    let addr = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port in the URL");
    let mut raw =
        Raw { socket: tokio::net::TcpStream::connect(addr).await.expect("connect"), buf: Vec::new() };
    let mut qos = vec![1, 0, 1, 0, 0, 0, 11, 0, 60, 0, 10];
    qos.extend_from_slice(&prefetch_size.to_be_bytes());
    qos.extend_from_slice(&[0, 0, 0, 0xCE]);
    raw.send(HEADER).await;
    raw.next().await; // connection.start
    raw.send(&encode(&[start_ok("guest", "guest")])).await;
    raw.next().await; // connection.tune
    // RabbitMQ drops a client that answers channel_max 0 ("no limit" above its own).
    let tune_ok = conn(connection::AMQPMethod::TuneOk(connection::TuneOk {
        channel_max: 2047,
        frame_max: 131_072,
        heartbeat: 0,
    }));
    raw.send(&encode(&[tune_ok, open("/")])).await;
    raw.next().await; // connection.open-ok
    raw.send(&encode(&[channel_open(1)])).await;
    raw.next().await; // channel.open-ok
    raw.send(&qos).await;
    loop {
        if let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) =
            raw.next().await
        {
            return (c.reply_code, c.reply_text.to_string());
        }
    }
}

/// A client socket that reads whole frames.
struct Raw {
    socket: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.expect("send");
    }

    async fn next(&mut self) -> AMQPFrame {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok((rest, frame)) = parse_frame(self.buf.as_slice()) {
                    let used = self.buf.len() - rest.len();
                    self.buf.drain(..used);
                    return frame;
                }
                let mut chunk = [0u8; 4096];
                let n = self
                    .socket
                    .read(&mut chunk)
                    .await
                    .unwrap_or_else(|e| panic!("read after {:?}: {e}", self.buf));
                assert!(n > 0, "the broker closed the socket without a word");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("a frame in time")
    }
}

/// Where RabbitMQ 4 and 3.10 differ, the embedded broker follows 4: a mandatory reply that
/// reaches its reply consumer is routed, not returned (3.10 returns it as unroutable and
/// delivers it too). Embedded broker only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_mandatory_reply_is_not_returned() {
    let broker = warren::broker::start(warren::broker::BrokerConfig::local()).await.expect("broker starts");
    let (conn, client) = connect(&broker.url("guest", "guest")).await;
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut replies = client
        .basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default())
        .await
        .expect("consume");
    let q = exclusive_queue(&client).await;
    client.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let request = BasicProperties::default().with_reply_to(REPLY_TO.into());
    client
        .basic_publish("".into(), q.as_str().into(), BasicPublishOptions::default(), b"?", request)
        .await
        .expect("request")
        .await
        .expect("confirmed");
    let got = client.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get");
    let name = got.expect("the request").delivery.properties.reply_to().clone().expect("reply_to");
    let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
    let confirmation = client
        .basic_publish("".into(), name.clone(), mandatory, b"!", BasicProperties::default())
        .await
        .expect("reply")
        .await
        .expect("confirmed");
    assert!(confirmation.take_message().is_none(), "a delivered reply is not returned");
    let r = tokio::time::timeout(WAIT, replies.next()).await.expect("the reply in time").unwrap().unwrap();
    assert_eq!((r.data.as_slice(), r.routing_key.as_str()), (&b"!"[..], name.as_str()));
    let _ = conn.close(200, "bye".into()).await;
    broker.stop().await;
}
