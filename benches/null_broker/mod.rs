//! A broker that does no work, for the broker bench's "prefetch 1 ceiling": it answers just the
//! methods the bench's workload sends and keeps, per queue, only a count of the tasks published
//! and not yet delivered (bodies are thrown away) and the consumers waiting for one. Each
//! consumer gets a new 64-byte delivery the moment it acks the last one, if a task is there: a
//! copy of one encoded delivery with the tag patched in. What every task costs (publish, header,
//! body, ack) is read from the raw bytes, never parsed. No routing, no unacked bookkeeping, no
//! limits: one read and one write per task, which any broker needs. What lapin reaches
//! against it is about the most any broker could reach with lapin on this machine at
//! prefetch 1.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{LazyLock, Mutex};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection, queue};
use amq_protocol::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A queue: tasks published and not yet delivered, and consumers waiting for one. A consumer
/// woken through its sender has one task set aside for it.
#[derive(Default)]
struct Queue {
    ready: u64,
    waiting: VecDeque<mpsc::UnboundedSender<()>>,
}

static QUEUES: LazyLock<Mutex<HashMap<String, Queue>>> = LazyLock::new(Mutex::default);

fn queues() -> std::sync::MutexGuard<'static, HashMap<String, Queue>> {
    QUEUES.lock().unwrap_or_else(|e| e.into_inner())
}

fn publish(queue: &str) {
    let mut queues = queues();
    let q = queues.entry(queue.to_string()).or_default();
    while let Some(consumer) = q.waiting.pop_front() {
        if consumer.send(()).is_ok() {
            return;
        }
    }
    q.ready += 1;
}

/// Take a task for a consumer, or put it in line for the next one published.
fn take_or_wait(queue: &str, me: &mpsc::UnboundedSender<()>) -> bool {
    let mut queues = queues();
    let q = queues.entry(queue.to_string()).or_default();
    if q.ready > 0 {
        q.ready -= 1;
        true
    } else {
        q.waiting.push_back(me.clone());
        false
    }
}

/// Listen on a free loopback port, print the URL on stdout, serve until killed.
pub fn serve_forever() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        println!("null broker at amqp://guest:guest@127.0.0.1:{port}/%2f");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    });
}

async fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: FieldTable::default(),
        mechanisms: "PLAIN".into(),
        locales: "en_US".into(),
    };
    let mut out = encode(Vec::new(), 0, AMQPClass::Connection(connection::AMQPMethod::Start(start)));
    let (mut buf, mut used) = (Vec::with_capacity(64 * 1024), 0);
    let (me, mut woken) = mpsc::unbounded_channel();
    // The queue this connection last published to; the one it consumes from, and how.
    let mut publishing_to = String::new();
    let mut consumer: Option<Consumer> = None;
    loop {
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        buf.drain(..used);
        used = 0;
        tokio::select! {
            read = stream.read_buf(&mut buf) => if read? == 0 {
                return Ok(());
            },
            Some(()) = woken.recv() => if let Some(c) = &mut consumer {
                c.deliver(&mut out);
            },
        }
        while let Some(size) = whole_frame(&buf[used..]) {
            let raw = &buf[used..used + size];
            used += size;
            // What every task costs is read from the raw bytes, never parsed: bodies and headers
            // are skipped, a publish's routing key and an ack are picked out by hand.
            match (raw[0], raw.get(7..11)) {
                (3, _) => {
                    publish(&publishing_to);
                    continue;
                }
                (2 | 8, _) => continue,
                (1, Some([0, 60, 0, 40])) => {
                    if let Some(key) = publish_routing_key(&raw[7..size - 1])
                        && key != publishing_to.as_bytes()
                    {
                        publishing_to = String::from_utf8_lossy(key).into_owned();
                    }
                    continue;
                }
                (1, Some([0, 60, 0, 80])) => {
                    if let Some(c) = &mut consumer
                        && take_or_wait(&c.queue, &me)
                    {
                        c.deliver(&mut out);
                    }
                    continue;
                }
                _ => {}
            }
            let (ch, class) = match parse_frame(raw) {
                Ok((_, AMQPFrame::Method(ch, class))) => (ch, class),
                Ok(_) => continue,
                Err(e) => return Err(io::Error::other(format!("bad frame from the client: {e:?}"))),
            };
            let reply = match class {
                AMQPClass::Connection(connection::AMQPMethod::StartOk(_)) => {
                    let tune = connection::Tune { channel_max: 2047, frame_max: 131_072, heartbeat: 0 };
                    AMQPClass::Connection(connection::AMQPMethod::Tune(tune))
                }
                AMQPClass::Connection(connection::AMQPMethod::Open(_)) => {
                    AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {}))
                }
                AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
                    let ok = AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
                    stream.write_all(&encode(out, 0, ok)).await?;
                    return Ok(());
                }
                AMQPClass::Channel(channel::AMQPMethod::Open(_)) => {
                    AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}))
                }
                AMQPClass::Channel(channel::AMQPMethod::Close(_)) => {
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))
                }
                AMQPClass::Queue(queue::AMQPMethod::Declare(d)) => {
                    let ok = queue::DeclareOk { queue: d.queue, message_count: 0, consumer_count: 0 };
                    AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))
                }
                AMQPClass::Queue(queue::AMQPMethod::Delete(d)) => {
                    queues().remove(d.queue.as_str());
                    AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: 0 }))
                }
                AMQPClass::Basic(basic::AMQPMethod::Qos(_)) => {
                    AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {}))
                }
                AMQPClass::Basic(basic::AMQPMethod::Consume(c)) => {
                    let ok = basic::ConsumeOk { consumer_tag: c.consumer_tag.clone() };
                    out = encode(out, ch, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
                    let c = consumer.insert(Consumer::new(ch, c.consumer_tag.as_str(), c.queue.as_str()));
                    if take_or_wait(&c.queue, &me) {
                        c.deliver(&mut out);
                    }
                    continue;
                }
                _ => continue,
            };
            out = encode(out, ch, reply);
        }
    }
}

/// A connection's one consumer, at prefetch 1.
struct Consumer {
    queue: String,
    delivery_tag: u64,
    /// One delivery of a 64-byte task (method, header, body), encoded once; each delivery is a
    /// copy with its own delivery tag at `tag_at`.
    template: Vec<u8>,
    tag_at: usize,
}

impl Consumer {
    fn new(channel: u16, tag: &str, queue: &str) -> Self {
        let d = basic::Deliver {
            consumer_tag: tag.into(),
            delivery_tag: 0,
            redelivered: false,
            exchange: "".into(),
            routing_key: queue.into(),
        };
        let template = encode(Vec::new(), channel, AMQPClass::Basic(basic::AMQPMethod::Deliver(d)));
        let header =
            AMQPContentHeader { class_id: 60, body_size: 64, properties: BasicProperties::default() };
        let template = encode_frame(template, &AMQPFrame::Header(channel, header));
        let template = encode_frame(template, &AMQPFrame::Body(channel, vec![b'x'; 64]));
        // Frame header (7 bytes), class and method (4), then the consumer tag as a short string.
        let tag_at = 7 + 4 + 1 + tag.len();
        Self { queue: queue.to_string(), delivery_tag: 0, template, tag_at }
    }

    fn deliver(&mut self, out: &mut Vec<u8>) {
        self.delivery_tag += 1;
        let at = out.len() + self.tag_at;
        out.extend_from_slice(&self.template);
        out[at..at + 8].copy_from_slice(&self.delivery_tag.to_be_bytes());
    }
}

fn encode(buf: Vec<u8>, channel: u16, method: AMQPClass) -> Vec<u8> {
    encode_frame(buf, &AMQPFrame::Method(channel, method))
}

fn encode_frame(buf: Vec<u8>, frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(buf)).expect("frame encodes").write
}

/// The size of the whole frame at the front of `buf`, if it is all there.
fn whole_frame(buf: &[u8]) -> Option<usize> {
    let size = u32::from_be_bytes(buf.get(3..7)?.try_into().ok()?) as usize + 8;
    (buf.len() >= size).then_some(size)
}

/// The routing key of a basic.publish payload: after class, method, a reserved short and the
/// exchange name.
fn publish_routing_key(payload: &[u8]) -> Option<&[u8]> {
    let exchange = usize::from(*payload.get(6)?);
    let at = 7 + exchange;
    let len = usize::from(*payload.get(at)?);
    payload.get(at + 1..at + 1 + len)
}
