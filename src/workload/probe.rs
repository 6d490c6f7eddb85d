//! A raw look at the broker before lapin connects: open TCP, send the AMQP 0-9-1 protocol
//! header, read connection.start. This gives the broker's product and version (lapin does not
//! expose the server properties) and tells "not an AMQP broker" apart from other failures.

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, parsing::parse_frame};
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What connection.start said about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub product: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("connection refused")]
    Refused,
    /// The TCP connection itself did not open in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// TCP connected, but the server said nothing in time: not an AMQP broker, or a stuck one.
    #[error("no AMQP greeting within {0:?}")]
    Silent(Duration),
    /// TCP connected, then the server closed or reset it before answering a byte: another
    /// protocol (MQTT, HTTP, ...) that hangs up on an AMQP header.
    #[error("closed the connection at once")]
    Closed,
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    NotAmqp(String),
}

const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";
/// connection.start with RabbitMQ's server properties is about 500 bytes; be generous.
const MAX_START_FRAME: usize = 64 * 1024;

/// Connect and read the greeting, `timeout` for both together; which of the two did not
/// happen in time decides the error.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> Result<ServerIdentity, ProbeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = tokio::time::timeout_at(deadline, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ProbeError::Refused,
            _ => ProbeError::Io(e.to_string()),
        })?;
    tokio::time::timeout_at(deadline, greet(stream)).await.map_err(|_| ProbeError::Silent(timeout))?
}

/// A reset or hang-up before the server's first byte means "not AMQP", not a network fault.
fn hung_up(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
}

async fn greet(mut stream: TcpStream) -> Result<ServerIdentity, ProbeError> {
    let io = |e: std::io::Error| if hung_up(&e) { ProbeError::Closed } else { ProbeError::Io(e.to_string()) };
    stream.write_all(PROTOCOL_HEADER).await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 4096];
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if !buf.is_empty() => return Err(ProbeError::Io(e.to_string())),
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            return Err(if buf.is_empty() {
                ProbeError::Closed
            } else {
                ProbeError::NotAmqp("the server's answer ended before a whole AMQP frame".into())
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_start(&buf) {
            Parsed::Done(id) => return Ok(id),
            Parsed::Incomplete if buf.len() < MAX_START_FRAME => continue,
            Parsed::Incomplete => {
                return Err(ProbeError::NotAmqp("no AMQP frame in the first 64 KiB".into()));
            }
            Parsed::Wrong(why) => return Err(ProbeError::NotAmqp(why)),
        }
    }
}

enum Parsed {
    Done(ServerIdentity),
    Incomplete,
    Wrong(String),
}

fn parse_start(buf: &[u8]) -> Parsed {
    // A server that wants another protocol version answers with its own header.
    if buf.len() >= 8 && buf.starts_with(b"AMQP") {
        return Parsed::Wrong(format!("the server speaks AMQP {}.{}.{}, not 0-9-1", buf[5], buf[6], buf[7]));
    }
    if buf.len() < 8 && b"AMQP".starts_with(&buf[..buf.len().min(4)]) {
        return Parsed::Incomplete;
    }
    match parse_frame(buf) {
        Ok((_, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start))))) => {
            Parsed::Done(identity(&start.server_properties))
        }
        Ok(_) => Parsed::Wrong("the server's first frame was not connection.start".into()),
        Err(e) if e.is_incomplete() => Parsed::Incomplete,
        Err(_) => {
            let printable: String = buf
                .iter()
                .take(24)
                .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
                .collect();
            Parsed::Wrong(format!("it answered with something else: \"{printable}\""))
        }
    }
}

fn identity(props: &FieldTable) -> ServerIdentity {
    let text = |key: &str| match props.inner().get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => "unknown".to_string(),
    };
    ServerIdentity { product: text("product"), version: text("version") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_protocol_versions_and_garbage_are_named() {
        let Parsed::Wrong(w) = parse_start(b"AMQP\x00\x01\x00\x00") else { panic!() };
        assert!(w.contains("1.0.0"), "{w}");
        let Parsed::Wrong(w) = parse_start(b"HTTP/1.1 400 Bad Request\r\n\r\n") else { panic!() };
        assert!(w.contains("HTTP/1.1 400"), "{w}");
        assert!(matches!(parse_start(b"AM"), Parsed::Incomplete));
        assert!(matches!(parse_start(b"\x01\x00\x00\x00"), Parsed::Incomplete));
    }
}
