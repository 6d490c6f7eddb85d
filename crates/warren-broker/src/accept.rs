//! The accept loop, and what it does when the process runs out of file descriptors: a spare
//! descriptor is given up so that the waiting client can be accepted and refused with 530 at
//! connection.open (where RabbitMQ refuses a connection over its limit), and with no spare
//! left it pauses (10 ms doubling to 1 s) instead of retrying an accept that fails at once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::auth::server_properties;
use super::fds::{self, Backoff, Reserve};
use super::frames::{self, Parsed};
use super::{BrokerConfig, Core, SocketSlot, connection as conn};

/// A refusal (handshake up to connection.open, then close 530) must be over in this time: it
/// holds one of the few spare descriptors.
const REFUSAL_TIME: Duration = Duration::from_secs(5);
/// Frames are at most this large during a refusal (the spec's minimum frame_max).
const REFUSAL_FRAME_MAX: u32 = 4096;
const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

pub(super) async fn run(
    listener: TcpListener,
    core: Arc<Mutex<Core>>,
    cfg: Arc<BrokerConfig>,
    token: CancellationToken,
    mut reserve: Reserve,
    limit: Option<u64>,
) {
    let next_id = AtomicU64::new(1);
    let sockets = Arc::new(AtomicUsize::new(0));
    let max_sockets = cfg.limits.max_connections.saturating_add(cfg.limits.max_handshaking);
    let mut backoff = Backoff::new();
    let mut short = Short::default();
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let pause = match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                // A spare missing that cannot be reopened: this client took the last descriptor.
                reserve.refill();
                if !reserve.is_full() {
                    short.begin(&sockets, limit);
                    refuse_in_task(stream, limit, &token);
                    continue;
                }
                short.end();
                // Dropping the stream closes it: nothing can be said before the handshake.
                let Some(slot) = SocketSlot::take(&sockets, max_sockets) else { continue };
                let _ = stream.set_nodelay(true);
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let conn =
                    conn::Connection::new(id, peer, Arc::clone(&core), Arc::clone(&cfg), token.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    conn.run(stream).await;
                });
                continue;
            }
            Err(e) if fds::transient(&e) => continue,
            // accept takes a descriptor before it looks for a client, so this comes whether or
            // not one waits. Give up a spare: the next accept then waits for a client, and
            // the client it takes is refused (above). With no spare left (refusals hold them
            // all), pause: the accept would fail again at once.
            Err(e) if fds::exhausted(&e) => {
                short.begin(&sockets, limit);
                reserve.refill();
                if reserve.release() {
                    continue;
                }
                backoff.next_pause()
            }
            Err(e) => {
                fds::log(&format!("accept failed: {e}"));
                backoff.next_pause()
            }
        };
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Out of descriptors since the last accept that worked. Said on stderr when it starts and
/// when it ends, at most once a minute: a broker that hovers at the limit would otherwise
/// print two lines for every connection that closes.
#[derive(Default)]
struct Short {
    now: bool,
    said: bool,
    said_at: Option<Instant>,
}

const SAY_EVERY: Duration = Duration::from_secs(60);

impl Short {
    fn begin(&mut self, sockets: &AtomicUsize, limit: Option<u64>) {
        if self.starts(Instant::now()) {
            fds::log(&format!(
                "out of file descriptors ({}, {} connections open): refusing new ones with 530 until some close",
                limit_text(limit),
                sockets.load(Ordering::Relaxed)
            ));
        }
    }

    fn end(&mut self) {
        if self.ends() {
            fds::log("file descriptors are free again: accepting connections");
        }
    }

    /// Whether to say that it starts.
    fn starts(&mut self, now: Instant) -> bool {
        if self.now {
            return false;
        }
        self.now = true;
        if self.said_at.is_some_and(|t| now.duration_since(t) < SAY_EVERY) {
            return false;
        }
        self.said = true;
        self.said_at = Some(now);
        true
    }

    /// Whether to say that it ended (only if its start was said).
    fn ends(&mut self) -> bool {
        std::mem::take(&mut self.now) && std::mem::take(&mut self.said)
    }
}

fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "open-files limit".to_string(), |l| format!("open-files limit {l}"))
}

/// Refuse `stream` in its own task, in at most REFUSAL_TIME.
fn refuse_in_task(stream: TcpStream, limit: Option<u64>, token: &CancellationToken) {
    let text = format!(
        "NOT_ALLOWED - connection refused: the broker is out of file descriptors ({}); \
         close connections or raise its ulimit -n",
        limit_text(limit)
    );
    let token = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = token.cancelled() => {}
            _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream, &text)) => {}
        }
    });
}

/// The handshake as far as connection.open, then connection.close 530 with `text`: the same
/// place and code as the connection limit, so that clients report it as a refusal.
async fn refuse(mut stream: TcpStream, text: &str) -> Option<()> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.ok()?;
    if &header != PROTOCOL_HEADER {
        return stream.write_all(PROTOCOL_HEADER).await.ok();
    }
    let mut rd = Reader { buf: Vec::with_capacity(REFUSAL_FRAME_MAX as usize) };
    send(
        &mut stream,
        connection::AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(),
            mechanisms: "PLAIN AMQPLAIN".into(),
            locales: "en_US".into(),
        }),
    )
    .await?;
    rd.expect(&mut stream, |m| matches!(m, connection::AMQPMethod::StartOk(_))).await?;
    send(
        &mut stream,
        connection::AMQPMethod::Tune(connection::Tune {
            channel_max: 1,
            frame_max: REFUSAL_FRAME_MAX,
            heartbeat: 0,
        }),
    )
    .await?;
    rd.expect(&mut stream, |m| matches!(m, connection::AMQPMethod::TuneOk(_))).await?;
    rd.expect(&mut stream, |m| matches!(m, connection::AMQPMethod::Open(_))).await?;
    send(
        &mut stream,
        connection::AMQPMethod::Close(connection::Close {
            reply_code: 530,
            reply_text: text.into(),
            class_id: 10,
            method_id: 40,
        }),
    )
    .await?;
    let close_ok = rd.expect(&mut stream, |m| matches!(m, connection::AMQPMethod::CloseOk(_)));
    let _ = tokio::time::timeout(Duration::from_secs(1), close_ok).await;
    Some(())
}

async fn send(stream: &mut TcpStream, method: connection::AMQPMethod) -> Option<()> {
    let bytes = frames::write(&frames::method(0, AMQPClass::Connection(method)), Vec::new());
    stream.write_all(&bytes).await.ok()
}

struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// The next connection method, skipping heartbeats; None on anything else or a bad frame.
    async fn expect(
        &mut self,
        stream: &mut TcpStream,
        want: impl Fn(&connection::AMQPMethod) -> bool,
    ) -> Option<()> {
        loop {
            match frames::parse(&self.buf, REFUSAL_FRAME_MAX) {
                Parsed::Frame(frame, used) => {
                    self.buf.drain(..used);
                    match frame {
                        AMQPFrame::Heartbeat => continue,
                        AMQPFrame::Method(0, AMQPClass::Connection(m)) if want(&m) => return Some(()),
                        _ => return None,
                    }
                }
                Parsed::Bad(_) => return None,
                Parsed::Incomplete => {}
            }
            // parse() bounds a frame by REFUSAL_FRAME_MAX, so the buffer never grows past it.
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortage_is_said_once_a_minute_with_its_end() {
        let t0 = Instant::now();
        let mut short = Short::default();
        assert!(!short.ends(), "nothing to end yet");
        assert!(short.starts(t0));
        assert!(!short.starts(t0), "said once while it lasts");
        assert!(short.ends());
        // Hovering at the limit: the next start and end within the minute stay quiet.
        assert!(!short.starts(t0 + Duration::from_secs(10)));
        assert!(!short.ends());
        assert!(short.starts(t0 + SAY_EVERY));
        assert!(short.ends());
    }
}
