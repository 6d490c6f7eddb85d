//! AMQP frames built by hand, for the tests that speak to the embedded broker as a raw client
//! (hostile input, memory limits): the frames the protocol allows, and the handshake.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, connection, queue};
use amq_protocol::types::FieldTable;

/// The AMQP 0-9-1 protocol header.
pub const HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

pub fn encode(frames: &[AMQPFrame]) -> Vec<u8> {
    frames
        .iter()
        .fold(Vec::new(), |buf, f| gen_frame(f)(WriteContext::from(buf)).expect("frame encodes").write)
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn conn(m: connection::AMQPMethod) -> AMQPFrame {
    AMQPFrame::Method(0, AMQPClass::Connection(m))
}

pub fn start_ok_with(mechanism: &str, response: &str) -> AMQPFrame {
    conn(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: mechanism.into(),
        response: response.into(),
        locale: "en_US".into(),
    }))
}

pub fn start_ok(user: &str, password: &str) -> AMQPFrame {
    start_ok_with("PLAIN", &format!("\0{user}\0{password}"))
}

pub fn tune_ok(frame_max: u32, heartbeat: u16) -> AMQPFrame {
    conn(connection::AMQPMethod::TuneOk(connection::TuneOk { channel_max: 0, frame_max, heartbeat }))
}

pub fn open(vhost: &str) -> AMQPFrame {
    conn(connection::AMQPMethod::Open(connection::Open { virtual_host: vhost.into() }))
}

pub fn close_ok() -> AMQPFrame {
    conn(connection::AMQPMethod::CloseOk(connection::CloseOk {}))
}

pub fn conn_close() -> AMQPFrame {
    conn(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }))
}

pub fn chan(ch: u16, m: channel::AMQPMethod) -> AMQPFrame {
    AMQPFrame::Method(ch, AMQPClass::Channel(m))
}

pub fn channel_open(ch: u16) -> AMQPFrame {
    chan(ch, channel::AMQPMethod::Open(channel::Open {}))
}

pub fn channel_close(ch: u16) -> AMQPFrame {
    chan(
        ch,
        channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        }),
    )
}

pub fn b(ch: u16, m: basic::AMQPMethod) -> AMQPFrame {
    AMQPFrame::Method(ch, AMQPClass::Basic(m))
}

pub fn declare_with(ch: u16, name: &str, exclusive: bool, auto_delete: bool) -> AMQPFrame {
    declare_full(ch, name, exclusive, auto_delete, FieldTable::default())
}

/// A plain queue.declare with these arguments.
pub fn declare_args(ch: u16, name: &str, arguments: FieldTable) -> AMQPFrame {
    declare_full(ch, name, false, false, arguments)
}

fn declare_full(ch: u16, name: &str, exclusive: bool, auto_delete: bool, arguments: FieldTable) -> AMQPFrame {
    AMQPFrame::Method(
        ch,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: name.into(),
            passive: false,
            durable: false,
            exclusive,
            auto_delete,
            nowait: false,
            arguments,
        })),
    )
}

pub fn declare(ch: u16, name: &str) -> AMQPFrame {
    declare_with(ch, name, false, false)
}

pub fn confirm_select(ch: u16) -> AMQPFrame {
    AMQPFrame::Method(ch, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })))
}

pub fn publish_with(ch: u16, exchange: &str, key: &str, mandatory: bool, immediate: bool) -> AMQPFrame {
    b(
        ch,
        basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: key.into(),
            mandatory,
            immediate,
        }),
    )
}

pub fn publish(ch: u16, key: &str) -> AMQPFrame {
    publish_with(ch, "", key, false, false)
}

pub fn header_with(ch: u16, body_size: u64, properties: BasicProperties) -> AMQPFrame {
    AMQPFrame::Header(ch, AMQPContentHeader { class_id: 60, body_size, properties })
}

pub fn header(ch: u16, body_size: u64) -> AMQPFrame {
    header_with(ch, body_size, BasicProperties::default())
}

pub fn body(ch: u16, data: &[u8]) -> AMQPFrame {
    AMQPFrame::Body(ch, data.to_vec())
}

pub fn get(ch: u16, queue: &str) -> AMQPFrame {
    b(ch, basic::AMQPMethod::Get(basic::Get { queue: queue.into(), no_ack: true }))
}

/// Protocol header and the whole handshake as guest, pipelined (the broker reads them in order).
pub fn login() -> Vec<u8> {
    cat(&[HEADER, &encode(&[start_ok("guest", "guest"), tune_ok(131_072, 0), open("/")])])
}

/// Length of the first frame in `buf`, if all of it is there.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.first() == Some(&b'A') {
        return (buf.len() >= 8).then_some(8);
    }
    if buf.len() < 7 {
        return None;
    }
    let n = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize + 8;
    (buf.len() >= n).then_some(n)
}
