//! Entry points for the cargo-fuzz targets in `fuzz/` and for their regression tests
//! (`tests/fuzz_regressions.rs`): they reach the broker's frame parsing and its handling of a
//! frame sequence without a socket. Each check panics when the broker breaks a promise, so that
//! libFuzzer and `cargo test` report it the same way. Not a stable API.

use std::sync::{Arc, Mutex};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};

use super::connection::{lock, replay};
use super::frames::{Parsed, parse, write};
use super::{BrokerConfig, Core, Limits, Scope, writer};

/// Frame sizes the targets choose from with their first byte: the smallest a client may ask
/// for, warren's own, and the broker's default.
const FRAME_MAXES: [u32; 3] = [4096, 8192, 131_072];

/// Parse `data[1..]` frame by frame (frame_max chosen by `data[0]`), as the connection's reader
/// does. Checks: a frame is never longer than the buffer or frame_max, a bad frame is a
/// connection error 501 or 502, and every frame parsed is written back by the broker's own
/// encoder into bytes that parse to the same frame.
pub fn check_frames(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let frame_max = FRAME_MAXES[usize::from(pick) % FRAME_MAXES.len()];
    loop {
        match parse(rest, frame_max) {
            Parsed::Frame(frame, used) => {
                assert!((8..=rest.len()).contains(&used), "frame of {used} bytes from {} bytes", rest.len());
                assert!(used <= frame_max as usize, "frame of {used} bytes above frame_max {frame_max}");
                round_trip(&frame);
                rest = &rest[used..];
            }
            Parsed::Bad(e) => {
                // A frame error (501, 502), or basic.qos with a prefetch_size, which RabbitMQ
                // refuses with 540 as it reads it (amq-protocol drops the field, frames.rs reads it).
                let qos = e.code == 540 && e.text.starts_with("NOT_IMPLEMENTED - prefetch_size!=0");
                assert!(
                    e.scope == Scope::Connection && (matches!(e.code, 501 | 502) || qos),
                    "bad frame answered with {e:?}"
                );
                return;
            }
            Parsed::Incomplete => return,
        }
    }
}

fn round_trip(frame: &AMQPFrame) {
    let bytes = write(frame, Vec::new());
    // Re-encoding may pack a table differently; frame_max is not the point here.
    match parse(&bytes, u32::MAX) {
        // Debug, not ==, so that a NaN in a field table compares equal to itself.
        Parsed::Frame(again, used) => {
            assert_eq!(used, bytes.len(), "re-encoded frame parsed short");
            assert_eq!(format!("{again:?}"), format!("{frame:?}"), "frame changed through write and parse");
        }
        Parsed::Bad(e) => panic!("re-encoded {frame:?} does not parse: {e:?}"),
        Parsed::Incomplete => panic!("re-encoded {frame:?} is incomplete"),
    }
}

/// Limits small enough that a fuzzer reaches every refusal within a few frames.
fn small_limits() -> Limits {
    Limits {
        max_connections: 4,
        channel_max: 8,
        frame_max: 4096,
        max_message: 16 << 10,
        max_held_bytes: 64 << 10,
        max_queues: 8,
        max_exchanges: 8,
        max_bindings: 16,
        max_consumers: 8,
        ..Limits::default()
    }
}

/// What a session checked by [`check_session`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// The code of the connection.close the session ended with, if it ended with an error.
    pub close_code: Option<u16>,
    /// The frames the broker would have written, in order: `class.method` for methods,
    /// `header`, `body` or `heartbeat` otherwise; channel.close with its code.
    pub written: Vec<String>,
}

/// Hand `data` to a connection past its handshake (frame_max 4096, small limits), with the real
/// Core behind it and a writer that only encodes. Checks: the session ends, if with an error, in
/// a connection.close with a hard-error code; everything the broker would write parses back as
/// well-formed frames within frame_max; channel.close carries a soft-error code; and the
/// messages the core still holds once the connection is gone stay under the memory limit.
pub fn check_session(data: &[u8]) -> SessionReport {
    let limits = small_limits();
    let (frame_max, max_held) = (limits.frame_max, limits.max_held_bytes);
    let cfg = Arc::new(BrokerConfig { limits: limits.clone(), ..BrokerConfig::local() });
    let core = Arc::new(Mutex::new(Core::new(limits)));
    let (code, mut rx) = replay(&core, &cfg, 1, frame_max, data);
    if let Some(code) = code {
        assert!(matches!(code, 501..=506 | 530 | 540), "connection closed with code {code}");
    }
    let mut written = Vec::new();
    while let Ok(out) = rx.try_recv() {
        written = writer::encode(out, written, frame_max);
    }
    let mut rest = &written[..];
    let mut names = Vec::new();
    while !rest.is_empty() {
        match parse(rest, frame_max) {
            Parsed::Frame(frame, used) => {
                names.push(name(&frame));
                if let AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))) = &frame {
                    assert!(matches!(c.reply_code, 403..=406 | 540), "channel closed with {c:?}");
                }
                if let AMQPFrame::Method(ch, AMQPClass::Connection(connection::AMQPMethod::Close(c))) = &frame
                {
                    assert!(*ch == 0 && Some(c.reply_code) == code, "unexpected {frame:?}");
                }
                rest = &rest[used..];
            }
            Parsed::Bad(e) => {
                panic!("the broker wrote a bad frame ({e:?}) at byte {}", written.len() - rest.len())
            }
            Parsed::Incomplete => {
                panic!("the broker wrote an incomplete frame at byte {}", written.len() - rest.len())
            }
        }
    }
    let held = lock(&core).held_bytes();
    assert!(held <= max_held, "the core holds {held} bytes, above its limit of {max_held}");
    SessionReport { close_code: code, written: names }
}

fn name(frame: &AMQPFrame) -> String {
    match frame {
        AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
            format!("channel.close {}", c.reply_code)
        }
        AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            format!("connection.close {}", c.reply_code)
        }
        AMQPFrame::Method(_, class) => {
            let debug = format!("{class:?}");
            // `Queue(DeclareOk(..))` -> `queue.declare-ok`
            let mut parts = debug.split(['(', ' ', '{']).filter(|p| !p.is_empty());
            let (class, method) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            format!("{}.{}", class.to_lowercase(), kebab(method))
        }
        AMQPFrame::Header(..) => "header".into(),
        AMQPFrame::Body(..) => "body".into(),
        AMQPFrame::Heartbeat => "heartbeat".into(),
        other => format!("{other:?}"),
    }
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
