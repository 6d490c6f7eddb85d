//! The cargo-fuzz targets' checks (`warren::broker::fuzzing`, run by fuzz/) on stable, over
//! the seed sessions below, the seed files in fuzz/seeds/ and every crash the fuzzers found
//! (fuzz/regressions/, one file per crash, named after what it caught).
//!
//! `WARREN_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_regressions` rewrites fuzz/seeds/ from
//! `seed_sessions()`.

use std::path::Path;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, exchange, queue};
use amq_protocol::types::{AMQPValue, FieldTable};
use warren::broker::fuzzing::{check_frames, check_session};

fn encode(frames: &[AMQPFrame]) -> Vec<u8> {
    frames
        .iter()
        .fold(Vec::new(), |buf, f| gen_frame(f)(WriteContext::from(buf)).expect("frame encodes").write)
}

fn m(class: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(1, class)
}

fn b(method: basic::AMQPMethod) -> AMQPFrame {
    m(AMQPClass::Basic(method))
}

fn open() -> AMQPFrame {
    m(AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))
}

fn declare(name: &str) -> AMQPFrame {
    m(AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        auto_delete: false,
        ..Default::default()
    })))
}

/// basic.publish, a header with properties (a headers table included), then the body in frames
/// of at most 4088 bytes, as a client under frame_max 4096 sends it.
fn publish(exchange: &str, key: &str, body: &[u8]) -> Vec<AMQPFrame> {
    let mut headers = FieldTable::default();
    headers.insert("x-n".into(), AMQPValue::LongInt(7));
    headers.insert("x-s".into(), AMQPValue::LongString("seven".into()));
    let properties = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    let mut frames = vec![
        b(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: key.into(),
            mandatory: true,
            immediate: false,
        })),
        AMQPFrame::Header(1, AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties }),
    ];
    frames.extend(body.chunks(4088).map(|c| AMQPFrame::Body(1, c.to_vec())));
    frames
}

/// Valid sessions (after the handshake) that between them use every method the broker handles.
fn seed_sessions() -> Vec<(&'static str, Vec<AMQPFrame>)> {
    let work = [
        vec![open(), m(AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })))],
        vec![declare("q")],
        publish("", "q", b"task 1"),
        publish("", "q", &[b'x'; 5000]),
        publish("", "nowhere", b"returned"),
        vec![
            b(basic::AMQPMethod::Get(basic::Get { queue: "q".into(), no_ack: false })),
            b(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 1, multiple: false })),
            b(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
            b(basic::AMQPMethod::Consume(basic::Consume {
                queue: "q".into(),
                consumer_tag: "c1".into(),
                ..Default::default()
            })),
            b(basic::AMQPMethod::Nack(basic::Nack { delivery_tag: 2, multiple: false, requeue: true })),
            b(basic::AMQPMethod::Reject(basic::Reject { delivery_tag: 3, requeue: false })),
            b(basic::AMQPMethod::Recover(basic::Recover { requeue: true })),
            b(basic::AMQPMethod::Cancel(basic::Cancel { consumer_tag: "c1".into(), nowait: false })),
            m(AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: false }))),
            m(AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge { queue: "q".into(), nowait: false }))),
            m(AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                queue: "q".into(),
                ..Default::default()
            }))),
            m(AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            }))),
        ],
    ];
    let routing = [
        vec![open()],
        vec![m(AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
            exchange: "x".into(),
            kind: "topic".into(),
            ..Default::default()
        })))],
        vec![declare("t")],
        vec![m(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: "t".into(),
            exchange: "x".into(),
            routing_key: "a.*".into(),
            ..Default::default()
        })))],
        publish("x", "a.b", b"routed"),
        vec![
            m(AMQPClass::Queue(queue::AMQPMethod::Unbind(queue::Unbind {
                queue: "t".into(),
                exchange: "x".into(),
                routing_key: "a.*".into(),
                ..Default::default()
            }))),
            m(AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
                exchange: "x".into(),
                ..Default::default()
            }))),
        ],
    ];
    // Not implemented: refused with 540, which closes the connection.
    let exchange_bind = vec![
        open(),
        m(AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
            destination: "amq.topic".into(),
            source: "amq.fanout".into(),
            routing_key: "".into(),
            ..Default::default()
        }))),
    ];
    vec![("work", work.concat()), ("routing", routing.concat()), ("exchange_bind", exchange_bind)]
}

#[test]
fn seed_sessions_get_the_replies_a_client_expects() {
    let sessions = seed_sessions();
    let work = check_session(&encode(&sessions[0].1));
    assert_eq!(work.close_code, None);
    let expected = [
        "channel.open-ok",
        "confirm.select-ok",
        "queue.declare-ok",
        "basic.ack",
        "basic.ack",
        // mandatory and unroutable: returned, then confirmed
        "basic.return",
        "header",
        "body",
        "basic.ack",
        "basic.get-ok",
        "header",
        "body",
        "basic.qos-ok",
        "basic.consume-ok",
        // the 5000-byte task, delivered in two body frames under frame_max 4096
        "basic.deliver",
        "header",
        "body",
        "body",
    ];
    assert_eq!(work.written[..expected.len()], expected, "all: {:?}", work.written);
    assert_eq!(work.written.last().map(String::as_str), Some("channel.close-ok"), "all: {:?}", work.written);

    let routing = check_session(&encode(&sessions[1].1));
    assert_eq!(routing.close_code, None);
    assert_eq!(
        routing.written,
        [
            "channel.open-ok",
            "exchange.declare-ok",
            "queue.declare-ok",
            "queue.bind-ok",
            "queue.unbind-ok",
            "exchange.delete-ok"
        ]
    );

    let bind = check_session(&encode(&sessions[2].1));
    assert_eq!(bind.close_code, Some(540));
    assert_eq!(bind.written, ["channel.open-ok", "connection.close 540"]);
}

#[test]
fn seed_sessions_pass_the_frame_parser_checks_at_every_frame_max() {
    for (_, frames) in seed_sessions() {
        for pick in 0..3u8 {
            let mut data = vec![pick];
            data.extend(encode(&frames));
            check_frames(&data);
        }
    }
}

/// Every file under fuzz/seeds/<target>/ and fuzz/regressions/<target>/, through its target's
/// check.
#[test]
fn seeds_and_crashes_found_by_the_fuzzers_pass() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if std::env::var_os("WARREN_WRITE_FUZZ_SEEDS").is_some() {
        for (name, frames) in seed_sessions() {
            let session = encode(&frames);
            write(&fuzz.join("seeds/session").join(name), &session);
            write(&fuzz.join("seeds/frames_parse").join(name), &[&[0u8][..], &session].concat());
        }
    }
    let mut ran = 0;
    for dir in ["seeds", "regressions"] {
        for (target, check) in [
            ("frames_parse", check_frames as fn(&[u8])),
            ("session", |d: &[u8]| {
                check_session(d);
            }),
        ] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
            for entry in entries {
                let path = entry.expect("directory entry").path();
                let data = std::fs::read(&path).expect("readable file");
                eprintln!("{}", path.display());
                check(&data);
                ran += 1;
            }
        }
    }
    assert!(ran >= 4, "expected the committed seeds at least, ran {ran} files");
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
    std::fs::write(path, data).expect("write the seed");
}
