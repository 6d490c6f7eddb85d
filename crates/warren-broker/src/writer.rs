//! A connection's writer task: serialises what the core and the session send, in order,
//! batching writes; sends heartbeats when idle; tells the core when a backed-up writer drained.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::basic;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connection::lock;
use super::frames::{self, basic as b};
use super::{ConnId, ConnShared, Core, LOW_WATER, Out, REPLIES_LOW, Unwritten};

/// Serialise what the core and the session send, in order, batching writes; send heartbeats
/// when idle; tell the core when a backed-up writer has drained.
pub(super) async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    shared: Arc<ConnShared>,
    core: Arc<Mutex<Core>>,
    id: ConnId,
) {
    let _done = WriterDone(Arc::clone(&shared));
    let unwritten = lock(&core).unwritten_counter();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_write = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let first = tokio::select! {
            o = rx.recv() => o,
            _ = tick.tick() => {
                let hb = shared.heartbeat.load(Ordering::Relaxed);
                if hb > 0 && last_write.elapsed() >= Duration::from_secs(u64::from(hb) / 2) {
                    Some(Out::Heartbeat)
                } else {
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let frame_max = shared.frame_max.load(Ordering::Relaxed);
        let mut shutdown = false;
        let (mut pending, mut replies) = (0usize, 0usize);
        let mut next = Some(first);
        while let Some(out) = next {
            match out {
                Out::Shutdown => {
                    shutdown = true;
                    break;
                }
                other => {
                    pending += other.pending_bytes();
                    replies += other.reply_bytes();
                    buf = encode(other, buf, frame_max);
                }
            }
            next = if buf.len() < 256 * 1024 { rx.try_recv().ok() } else { None };
        }
        if !buf.is_empty() {
            // Encoded bytes are a copy of what they carry: charged to the held-bytes limit
            // until written, since a client that stops reading keeps them here.
            let _charge = Unwritten::new(buf.len(), &unwritten);
            if wr.write_all(&buf).await.is_err() {
                break;
            }
            buf.clear();
            // One large message grows the buffer to its size; idle connections should not
            // keep that (1024 of them could hold 16 MiB each).
            if buf.capacity() > 1 << 20 {
                buf = Vec::with_capacity(64 * 1024);
            }
            last_write = Instant::now();
        }
        if pending > 0 {
            let before = shared.pending.fetch_sub(pending, Ordering::Relaxed);
            debug_assert!(before >= pending, "pending counted what was never added");
            if before >= LOW_WATER && before - pending < LOW_WATER {
                lock(&core).writer_drained(id);
            }
        }
        if replies > 0 {
            let before = shared.replies.fetch_sub(replies, Ordering::Relaxed);
            debug_assert!(before >= replies, "replies counted what was never added");
            if before > REPLIES_LOW && before - replies <= REPLIES_LOW {
                shared.replies_drained.notify_waiters();
            }
        }
        if shutdown {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// Tells a reader paused for this writer that it stopped, however it stops: returning,
/// panicking or being aborted.
struct WriterDone(Arc<ConnShared>);

impl Drop for WriterDone {
    fn drop(&mut self) {
        self.0.writer_done.store(true, Ordering::Release);
        self.0.replies_drained.notify_waiters();
    }
}

pub(super) fn encode(out: Out, buf: Vec<u8>, frame_max: u32) -> Vec<u8> {
    match out {
        Out::Frame(f) => frames::write(&f, buf),
        Out::Deliver { channel, consumer_tag, delivery_tag, redelivered, msg, delivery_count, .. } => {
            let m = basic::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
            };
            let counted = delivery_count.map(|n| frames::delivery_properties(&msg, n));
            let props = counted.as_ref().unwrap_or(&msg.properties);
            frames::write_delivery(buf, channel, &m, props, &msg.body, frame_max)
        }
        Out::GetOk { channel, delivery_tag, redelivered, message_count, msg, delivery_count, .. } => {
            let m = basic::GetOk {
                delivery_tag,
                redelivered,
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
                message_count,
            };
            let counted = delivery_count.map(|n| frames::delivery_properties(&msg, n));
            let props = counted.as_ref().unwrap_or(&msg.properties);
            frames::write_content(buf, channel, b(basic::AMQPMethod::GetOk(m)), props, &msg.body, frame_max)
        }
        Out::Return { channel, msg, .. } => {
            let m = basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
            };
            frames::write_content(
                buf,
                channel,
                b(basic::AMQPMethod::Return(m)),
                &msg.properties,
                &msg.body,
                frame_max,
            )
        }
        Out::Cancel { channel, consumer_tag } => {
            let m = basic::Cancel { consumer_tag, nowait: true };
            frames::write(&frames::method(channel, b(basic::AMQPMethod::Cancel(m))), buf)
        }
        Out::Heartbeat => frames::write(&AMQPFrame::Heartbeat, buf),
        Out::Shutdown => buf,
    }
}
