//! Reading and writing frames with `amq-protocol`, with the checks a server owes its peers:
//! a frame larger than frame_max, an unknown frame type or a missing end octet is a
//! connection error, never a panic or an unbounded buffer.

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::basic::gen_properties;
use amq_protocol::protocol::parse_class;
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};

use super::{AmqpError, Message};

/// Frame header (type, channel, size) plus the end octet.
const OVERHEAD: usize = 8;
const FRAME_END: u8 = 0xCE;

// Parsed frames are moved once into the handler; boxing would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    Frame(AMQPFrame, usize),
    Incomplete,
    Bad(AmqpError),
}

/// A basic.qos method frame's prefetch_size, when not 0.
fn qos_prefetch_size(kind: u8, payload: &[u8]) -> Option<u32> {
    if kind != 1 || payload.len() < 8 || payload[..4] != [0, 60, 0, 10] {
        return None;
    }
    Some(u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes"))).filter(|&n| n != 0)
}

/// One frame from the front of `buf`, if it is all there.
pub fn parse(buf: &[u8], frame_max: u32) -> Parsed {
    if buf.len() < 7 {
        return Parsed::Incomplete;
    }
    let kind = buf[0];
    if !matches!(kind, 1 | 2 | 3 | 8) {
        return Parsed::Bad(AmqpError::connection(501, format!("FRAME_ERROR - unknown frame type {kind}")));
    }
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if size + OVERHEAD > frame_max as usize {
        return Parsed::Bad(AmqpError::connection(
            501,
            format!(
                "FRAME_ERROR - frame size {} exceeds the negotiated frame_max {frame_max}",
                size + OVERHEAD
            ),
        ));
    }
    if buf.len() < size + OVERHEAD {
        return Parsed::Incomplete;
    }
    if buf[size + 7] != FRAME_END {
        return Parsed::Bad(AmqpError::connection(501, "FRAME_ERROR - frame does not end with 0xCE"));
    }
    if too_deep(kind, &buf[7..size + 7]) {
        return Parsed::Bad(AmqpError::connection(
            502,
            format!("SYNTAX_ERROR - field tables nested deeper than {MAX_NESTING} levels"),
        ));
    }
    // The frame's bounds and end are checked: its payload goes straight to the parser for its
    // type, skipping amq-protocol's whole-frame parser, whose layers moved each 320-byte frame
    // around several times on the path every task takes.
    let (channel, payload) = (u16::from_be_bytes([buf[1], buf[2]]), &buf[7..size + 7]);
    if let Some(size) = qos_prefetch_size(kind, payload) {
        // amq-protocol's parser drops basic.qos's prefetch_size, so it is read here. RabbitMQ
        // has no byte-sized windows either and closes the connection.
        return Parsed::Bad(AmqpError::connection(
            540,
            format!("NOT_IMPLEMENTED - prefetch_size!=0 ({size})"),
        ));
    }
    let frame = match kind {
        1 => match parse_class(payload) {
            Ok(([], class)) => Some(AMQPFrame::Method(channel, class)),
            _ => None,
        },
        // A content header without properties (14 bytes, property flags 0), as most clients send
        // by default: nothing for the parser to do.
        2 if payload.len() == 14 && payload[12..] == [0, 0] => {
            let header = AMQPContentHeader {
                class_id: u16::from_be_bytes([payload[0], payload[1]]),
                body_size: u64::from_be_bytes(payload[4..12].try_into().expect("8 bytes")),
                properties: BasicProperties::default(),
            };
            Some(AMQPFrame::Header(channel, header))
        }
        2 => match parse_content_header(payload) {
            Ok(([], header)) => Some(AMQPFrame::Header(channel, header)),
            _ => None,
        },
        3 => Some(AMQPFrame::Body(channel, payload.to_vec())),
        _ => parse_frame(&buf[..size + OVERHEAD]).ok().map(|(_, f)| f),
    };
    match frame {
        Some(frame) => Parsed::Frame(frame, size + OVERHEAD),
        None => Parsed::Bad(AmqpError::connection(502, "SYNTAX_ERROR - malformed frame")),
    }
}

/// How deep field tables and arrays may nest in a frame. amq-protocol parses them recursively
/// (and Clone, Debug and Drop recurse too): without this bound, one frame of nested arrays
/// (5 bytes a level, 26,000 levels in 128 KiB) overflowed a tokio worker's stack and aborted
/// the whole process. RabbitMQ has no such limit, but no real client comes near it.
const MAX_NESTING: usize = 64;

/// Whether a method or content header frame holds field tables nested deeper than MAX_NESTING.
fn too_deep(kind: u8, payload: &[u8]) -> bool {
    // Bodies, heartbeats and most methods carry no table: nothing to scan.
    let Some(table) = table_offset(kind, payload).and_then(|at| payload.get(at..)) else {
        return false;
    };
    // Each level costs a type octet 'A' or 'F': with few of those, nothing to walk.
    if table.iter().filter(|&&b| b == b'A' || b == b'F').count() <= MAX_NESTING {
        return false;
    }
    nesting(table) > MAX_NESTING
}

/// Where the field table of a method or content header payload starts, for the frames that carry
/// one (every method with a table argument, and the headers property).
fn table_offset(kind: u8, p: &[u8]) -> Option<usize> {
    let short = |at: usize| Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]));
    // The fields before the table: o octet (or packed bits), s short, S short string.
    let skip = |fields: &[u8], mut at: usize| {
        for f in fields {
            at += match f {
                b'o' => 1,
                b's' => 2,
                _ => 1 + usize::from(*p.get(at)?),
            };
        }
        Some(at)
    };
    match kind {
        1 => {
            let fields: &[u8] = match (short(0)?, short(2)?) {
                (10, 10) => b"oo",               // connection.start
                (10, 11) => b"",                 // connection.start-ok
                (40, 10) => b"sSSo",             // exchange.declare
                (40, 30) | (40, 40) => b"sSSSo", // exchange.bind, exchange.unbind
                (50, 10) => b"sSo",              // queue.declare
                (50, 20) => b"sSSSo",            // queue.bind
                (50, 50) => b"sSSS",             // queue.unbind
                (60, 20) => b"sSSo",             // basic.consume
                _ => return None,
            };
            skip(fields, 4)
        }
        2 => {
            // class, weight, body size, property flags; headers come after content-type and
            // content-encoding.
            let flags = short(12)?;
            if flags & (1 << 13) == 0 {
                return None;
            }
            let mut at = 14;
            for bit in [15, 14] {
                if flags & (1 << bit) != 0 {
                    at += 1 + usize::from(*p.get(at)?);
                }
            }
            Some(at)
        }
        _ => None,
    }
}

/// How deep the field table at the start of `buf` nests (1 for a flat table), walked without
/// recursion. It stops at the first malformed value, where the parser stops too.
fn nesting(buf: &[u8]) -> usize {
    let len_at = |at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let Some(len) = len_at(0) else { return 0 };
    // The end of each open table (true) or array (false), innermost last.
    let mut open = vec![(4 + len, true)];
    let mut at = 4;
    let mut deepest = 1;
    while let Some(&(end, table)) = open.last() {
        if deepest > MAX_NESTING || at > end {
            break;
        }
        if at == end {
            open.pop();
            continue;
        }
        if table {
            // The entry's name, a short string.
            let Some(&n) = buf.get(at) else { break };
            at += 1 + usize::from(n);
        }
        let Some(&kind) = buf.get(at) else { break };
        at += 1;
        at += match kind {
            b't' | b'b' | b'B' => 1,
            b's' | b'U' | b'u' => 2,
            b'I' | b'i' | b'f' => 4,
            b'D' => 5,
            b'L' | b'l' | b'd' | b'T' => 8,
            b'V' => 0,
            b'S' | b'x' => match len_at(at) {
                Some(n) => 4 + n,
                None => break,
            },
            b'A' | b'F' => {
                let Some(n) = len_at(at) else { break };
                if at + 4 + n > end {
                    break;
                }
                open.push((at + 4 + n, kind == b'F'));
                deepest = deepest.max(open.len());
                4
            }
            _ => break,
        };
    }
    deepest
}

/// Append a frame's bytes to `buf`.
pub fn write(frame: &AMQPFrame, buf: Vec<u8>) -> Vec<u8> {
    let fallback_len = buf.len();
    match gen_frame(frame)(WriteContext::from(buf)) {
        Ok(ctx) => ctx.write,
        // Generation only fails on an impossible write to a Vec; keep the stream intact.
        Err(_) => Vec::with_capacity(fallback_len),
    }
}

pub fn method(channel: u16, class: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(channel, class)
}

/// A method followed by its content (header and body frames cut to frame_max).
pub fn write_content(
    buf: Vec<u8>,
    channel: u16,
    class: AMQPClass,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let buf = write(&method(channel, class), buf);
    write_header_and_body(buf, channel, properties, body, frame_max)
}

/// basic.deliver and its content. Written by hand, as are the content header's fixed fields and
/// the body frames: every task delivered takes this path, and amq-protocol's generic
/// serializer cost more than all the rest of a delivery. The properties still go through
/// amq-protocol.
pub fn write_delivery(
    mut buf: Vec<u8>,
    channel: u16,
    deliver: &basic::Deliver,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let start = begin_frame(&mut buf, 1, channel);
    buf.extend_from_slice(&[0, 60, 0, 60]); // basic.deliver
    short_string(&mut buf, deliver.consumer_tag.as_str());
    buf.extend_from_slice(&deliver.delivery_tag.to_be_bytes());
    buf.push(u8::from(deliver.redelivered));
    short_string(&mut buf, deliver.exchange.as_str());
    short_string(&mut buf, deliver.routing_key.as_str());
    end_frame(&mut buf, start);
    write_header_and_body(buf, channel, properties, body, frame_max)
}

/// A content header and the body frames (cut to frame_max) after a content method.
fn write_header_and_body(
    mut buf: Vec<u8>,
    channel: u16,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let start = begin_frame(&mut buf, 2, channel);
    buf.extend_from_slice(&[0, 60, 0, 0]); // class basic, weight 0
    buf.extend_from_slice(&(body.len() as u64).to_be_bytes());
    let before = buf.len();
    buf = match gen_properties(properties)(WriteContext::from(buf)) {
        Ok(ctx) => ctx.write,
        // Only an impossible write to a Vec fails; keep the stream intact.
        Err(_) => Vec::with_capacity(before),
    };
    if buf.len() < before {
        return buf;
    }
    end_frame(&mut buf, start);
    let chunk = (frame_max as usize).saturating_sub(OVERHEAD).max(1);
    for part in body.chunks(chunk) {
        // The body is copied once, straight into the buffer.
        buf.push(3);
        buf.extend_from_slice(&channel.to_be_bytes());
        buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
        buf.extend_from_slice(part);
        buf.push(FRAME_END);
    }
    buf
}

/// Start a frame: its type and channel, and room for its size, which `end_frame` fills in.
fn begin_frame(buf: &mut Vec<u8>, kind: u8, channel: u16) -> usize {
    buf.push(kind);
    buf.extend_from_slice(&channel.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.len()
}

fn end_frame(buf: &mut Vec<u8>, payload_start: usize) {
    let size = (buf.len() - payload_start) as u32;
    buf[payload_start - 4..payload_start].copy_from_slice(&size.to_be_bytes());
    buf.push(FRAME_END);
}

/// A short string: names that came in as short strings, so at most 255 bytes.
fn short_string(buf: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() <= 255, "short string over 255 bytes");
    let s = &s.as_bytes()[..s.len().min(255)];
    buf.push(s.len() as u8);
    buf.extend_from_slice(s);
}

/// Properties for a quorum queue's delivery: the message's own plus x-delivery-count. (Other
/// deliveries send the message's own properties as they are.)
pub fn delivery_properties(msg: &Message, delivery_count: u32) -> BasicProperties {
    let props = msg.properties.clone();
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(
        "x-delivery-count".into(),
        amq_protocol::types::AMQPValue::LongLongInt(i64::from(delivery_count)),
    );
    props.with_headers(headers)
}

pub fn basic(m: basic::AMQPMethod) -> AMQPClass {
    AMQPClass::Basic(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_split_by_frame_max_and_parses_back() {
        let buf = write_content(
            Vec::new(),
            7,
            basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
            &BasicProperties::default(),
            &[42u8; 10_000],
            4096,
        );
        let mut rest = &buf[..];
        let mut bodies = Vec::new();
        while !rest.is_empty() {
            let Parsed::Frame(f, used) = parse(rest, 4096) else { panic!("whole frames") };
            if let AMQPFrame::Body(7, data) = f {
                bodies.push(data.len());
            }
            rest = &rest[used..];
        }
        assert_eq!(bodies, [4088, 4088, 1824]);
    }

    #[test]
    fn a_hand_written_delivery_reads_back_through_amq_protocol_as_written() {
        let mut headers = amq_protocol::types::FieldTable::default();
        headers.insert("k".into(), amq_protocol::types::AMQPValue::LongString("v".into()));
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_delivery_mode(2)
            .with_headers(headers)
            .with_message_id("m-1".into());
        let deliver = basic::Deliver {
            consumer_tag: "ctag".into(),
            delivery_tag: 1 << 40,
            redelivered: true,
            exchange: "ex".into(),
            routing_key: "rk".into(),
        };
        let body: Vec<u8> = (0..=255).cycle().take(5000).collect();
        let buf = write_delivery(Vec::new(), 9, &deliver, &props, &body, 4096);
        let mut rest = &buf[..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            // amq-protocol's own parser, not ours: the body fast path must not hide a bad frame.
            let (left, f) = parse_frame(rest).expect("amq-protocol reads every frame");
            frames.push(f);
            rest = left;
        }
        let [
            AMQPFrame::Method(9, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))),
            AMQPFrame::Header(9, h),
            bodies @ ..,
        ] = &frames[..]
        else {
            panic!("deliver, header, bodies: {frames:?}")
        };
        assert_eq!(d, &deliver);
        assert_eq!((h.class_id, h.body_size), (60, 5000));
        assert_eq!(h.properties, props);
        let got: Vec<u8> = bodies
            .iter()
            .flat_map(|f| match f {
                AMQPFrame::Body(9, part) => part.clone(),
                other => panic!("a body frame on channel 9, got {other:?}"),
            })
            .collect();
        assert_eq!(bodies.len(), 2, "5000 bytes in frames of at most 4088");
        assert_eq!(got, body);
    }

    #[test]
    fn a_header_without_properties_parses_as_amq_protocol_reads_it() {
        let header =
            AMQPContentHeader { class_id: 60, body_size: 1 << 33, properties: BasicProperties::default() };
        let bytes = write(&AMQPFrame::Header(5, header), Vec::new());
        assert_eq!(bytes.len(), 8 + 14, "the fast path's shape");
        let Parsed::Frame(ours, used) = parse(&bytes, 4096) else { panic!("a whole frame") };
        let (_, theirs) = parse_frame(&bytes[..]).expect("amq-protocol reads it");
        assert_eq!((ours, used), (theirs, bytes.len()));
    }

    #[test]
    fn oversized_unknown_and_unterminated_frames_are_connection_errors() {
        let code = |p: Parsed| match p {
            Parsed::Bad(e) => e.code,
            _ => 0,
        };
        assert_eq!(code(parse(&[1, 0, 1, 0, 0, 0x10, 0], 4096)), 501, "size over frame_max");
        assert_eq!(code(parse(&[9, 0, 0, 0, 0, 0, 0, 0xCE], 4096)), 501, "unknown type");
        assert_eq!(code(parse(&[8, 0, 0, 0, 0, 0, 0, 0x00], 4096)), 501, "no end octet");
        assert_eq!(code(parse(&[1, 0, 1, 0, 0, 0, 1, 0xFF, 0xCE], 4096)), 502, "garbage method");
        assert!(matches!(parse(&[8, 0, 0, 0, 0, 0, 0, 0xCE], 4096), Parsed::Frame(AMQPFrame::Heartbeat, 8)));
        assert!(matches!(parse(&[1, 0, 1, 0, 0, 0], 4096), Parsed::Incomplete));
    }
}
