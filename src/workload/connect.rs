//! Opening connections, and turning every way that can fail into one line that says what to do.

use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ErrorKind};

use super::probe::{ProbeError, ServerIdentity, probe};
use crate::app::BrokerInfo;

/// How long the first look at the broker may take before warren gives up on it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect with a name that shows in RabbitMQ's management UI, and small frames (see
/// [`super::frame_size`]): lapin's buffers then cost 256 KiB a connection, not 8 MiB.
pub async fn open(uri: &AMQPUri, name: &str) -> Result<Connection, lapin::Error> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect_uri(super::frame_size::with_small_frames(uri), props).await
}

/// Probe the broker, then connect: errors come back as a user-facing sentence.
pub async fn open_first(uri: &AMQPUri, name: &str) -> Result<(Connection, BrokerInfo), String> {
    let host = uri.authority.host.clone();
    let port = uri.authority.port;
    let where_ = format!("{host}:{port}");
    // The probe speaks plain AMQP; over TLS the handshake itself is the first contact.
    let identity = if uri.scheme == lapin::uri::AMQPScheme::AMQPS {
        Ok(ServerIdentity { product: "AMQP broker".into(), version: "(TLS)".into() })
    } else {
        probe(&host, port, PROBE_TIMEOUT).await
    };
    let ServerIdentity { product, version } = identity.map_err(|e| match e {
        ProbeError::Refused => format!(
            "cannot connect to {where_}: connection refused. Is RabbitMQ running? \
                 Start it with `sudo systemctl start rabbitmq-server` (or `rabbitmq-server -detached`, \
                 or `docker run -d -p 5672:5672 rabbitmq:3`), or point --url at your broker"
        ),
        ProbeError::Timeout(t) => format!(
            "cannot connect to {where_}: no answer within {}s. Check the host and port in --url \
                 and any firewall in between",
            t.as_secs()
        ),
        ProbeError::Silent(t) => format!(
            "{where_} accepted the connection but sent no AMQP greeting within {}s: is it an AMQP \
                 0-9-1 broker? Check the port in --url (RabbitMQ's AMQP port is 5672)",
            t.as_secs()
        ),
        ProbeError::Closed => format!(
            "{where_} closed the connection at once: something else than AMQP 0-9-1 listens there \
                 (MQTT? HTTP?). Check the port in --url (RabbitMQ's AMQP port is 5672)"
        ),
        ProbeError::Io(e) => format!("cannot connect to {where_}: {e}. Check the host in --url"),
        ProbeError::NotAmqp(why) => format!(
            "{where_} is not an AMQP 0-9-1 broker: {why}. Check the port in --url \
                 (RabbitMQ's AMQP port is 5672)"
        ),
    })?;
    let conn = tokio::time::timeout(PROBE_TIMEOUT * 2, open(uri, name))
        .await
        .map_err(|_| format!("{where_} accepted the connection but did not finish the AMQP handshake"))?
        .map_err(|e| describe_connect_error(&e, uri))?;
    let info = BrokerInfo { product, version, host, port, vhost: uri.vhost.clone() };
    Ok((conn, info))
}

/// A few words for a pane: "connection refused", "CONNECTION_FORCED - broker forced ...".
pub fn brief(e: &lapin::Error) -> String {
    match e.kind() {
        ErrorKind::IOError(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
            _ => io.to_string(),
        },
        ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        _ => e.to_string(),
    }
}

/// The reply code of an AMQP error, if the error is one.
pub fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// The broker's own words for an AMQP error, e.g. "PRECONDITION_FAILED - inequivalent arg ...".
pub fn reply_text(e: &lapin::Error) -> String {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        _ => e.to_string(),
    }
}

fn describe_connect_error(e: &lapin::Error, uri: &AMQPUri) -> String {
    let user = &uri.authority.userinfo.username;
    let vhost = &uri.vhost;
    match reply_code(e) {
        Some(403) => format!(
            "the broker refused user '{user}' (ACCESS_REFUSED): check the user and password in --url. \
             Note that RabbitMQ's guest user may only connect from localhost"
        ),
        // 530 also refuses a connection over a limit (connections, file descriptors): only a
        // vhost refusal gets the vhost advice; the others say what the broker said.
        Some(530) if vhost_refusal(&reply_text(e)) => format!(
            "the broker refused vhost '{vhost}' (NOT_ALLOWED): it does not exist or user '{user}' \
             has no access. Create it with `rabbitmqctl add_vhost {vhost}` and \
             `rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*'`, or fix --url \
             (the default vhost is %2f)"
        ),
        Some(code) => format!("the broker closed the connection: {} ({code})", reply_text(e)),
        None => match e.kind() {
            // RabbitMQ without authentication_failure_close just drops the socket on bad login.
            ErrorKind::IOError(_) | ErrorKind::InvalidConnectionState(_) => format!(
                "the broker closed the connection during login ({e}): check the user, password and \
                 vhost in --url"
            ),
            _ => format!("could not open the AMQP connection: {e}"),
        },
    }
}

/// RabbitMQ's "vhost / not found" and "access to vhost '/' refused for user 'guest'", but not
/// its per-vhost connection limit, nor a broker's connection or file-descriptor limits.
fn vhost_refusal(text: &str) -> bool {
    text.contains("vhost") && !text.contains("limit")
}

/// For a failed queue.declare.
pub fn describe_declare_error(e: &lapin::Error, queue: &str, durable: bool) -> String {
    match reply_code(e) {
        // A broker that does not have a feature the queue's arguments ask for.
        Some(406) if reply_text(e).contains("is not supported") => {
            format!("the broker refused to declare queue '{queue}': {}", reply_text(e))
        }
        // Another argument (a TTL, a cap, the queue type): only a new queue can have it.
        Some(406) if reply_text(e).contains("inequivalent arg 'x-") => format!(
            "queue '{queue}' already exists with other arguments ({}): delete it \
             (`rabbitmqctl delete_queue {queue}`), or use another --queue",
            reply_text(e)
        ),
        Some(406) => format!(
            "queue '{queue}' already exists with other settings ({}). warren declares it {}: \
             delete it (`rabbitmqctl delete_queue {queue}`), use another --queue, or {}",
            reply_text(e),
            if durable { "durable" } else { "non-durable (--transient)" },
            if durable { "add --transient" } else { "drop --transient" }
        ),
        Some(403) => format!(
            "the broker refused to declare queue '{queue}' (ACCESS_REFUSED): give the user \
             configure permission on it, or use another --queue"
        ),
        Some(405) => format!(
            "queue '{queue}' is exclusive to another connection (RESOURCE_LOCKED): use another --queue"
        ),
        _ => format!("could not declare queue '{queue}': {}", reply_text(e)),
    }
}
