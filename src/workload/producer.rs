//! The producer: publishes tasks with publisher confirms on its own connection, streams at a
//! rate when asked, polls the queue depth, and reconnects by itself.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval, sleep_until};

use super::{Backoff, EventSink, Shared, connect, task_payload};
use crate::app::{BatchId, Event, TaskId};

pub enum ProducerCmd {
    /// `weights` repeat over the batch (empty: every task weighs 1).
    Publish {
        count: u32,
        batch: Option<BatchId>,
        weights: Vec<f64>,
    },
    Stream(Option<u32>),
    /// Freeze (true) or unfreeze the stream; explicit publishes still go out.
    Pause(bool),
    Quit,
}

/// How often the queue depth is asked for (a passive queue.declare).
const STATS_EVERY: Duration = Duration::from_millis(500);
/// Publishes per turn of the loop, so commands and confirms are not starved by a huge batch.
const CHUNK: u32 = 256;

type ConfirmFuture = Pin<Box<dyn Future<Output = (TaskId, Result<Confirmation, lapin::Error>)> + Send>>;

/// A publish request in progress.
struct Pending {
    batch: Option<BatchId>,
    count: u32,
    done: u32,
    weights: Vec<f64>,
}

impl Pending {
    /// The weight of the batch's `i`-th task: the pattern repeats.
    fn weight(&self, i: u32) -> f64 {
        if self.weights.is_empty() { 1.0 } else { self.weights[i as usize % self.weights.len()] }
    }
}

pub struct Link {
    pub conn: Connection,
    pub channel: Channel,
}

/// Open the producer's channel: confirms on, queue declared (idempotent).
pub async fn open_channel(conn: &Connection, shared: &Shared) -> Result<Channel, String> {
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("confirm.select failed: {}", connect::reply_text(&e)))?;
    if shared.policy.dead_letters() {
        super::queue_args::declare_dead_letters(&channel, shared).await?;
    }
    declare(&channel, shared, false).await?;
    Ok(channel)
}

/// Declare the task queue; `passive` only asks for its counts.
pub async fn declare(channel: &Channel, shared: &Shared, passive: bool) -> Result<lapin::Queue, String> {
    let opts = QueueDeclareOptions { durable: shared.durable, passive, ..Default::default() };
    channel
        .queue_declare(shared.queue.as_str().into(), opts, super::queue_args::arguments(shared))
        .await
        .map_err(|e| {
            super::dispatch_args::single_active_mismatch(&e, shared)
                .unwrap_or_else(|| connect::describe_declare_error(&e, &shared.queue, shared.durable))
        })
}

pub struct ProducerActor {
    pub shared: Shared,
    pub events: EventSink,
    pub commands: mpsc::UnboundedReceiver<ProducerCmd>,
    pub link: Option<Link>,
}

impl ProducerActor {
    pub async fn run(mut self) {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut next_id: TaskId = 1;
        let mut confirms: FuturesUnordered<ConfirmFuture> = FuturesUnordered::new();
        let mut stream: Option<Interval> = None;
        let mut stats = interval(STATS_EVERY);
        stats.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut backoff = Backoff::default();
        let mut retry_at = Instant::now();
        let mut paused = false;

        loop {
            let can_publish = self.link.is_some() && !pending.is_empty();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    None | Some(ProducerCmd::Quit) => break,
                    Some(ProducerCmd::Publish { count, batch, weights }) => {
                        pending.push_back(Pending { batch, count, done: 0, weights });
                    }
                    Some(ProducerCmd::Stream(rate)) => {
                        stream = rate.map(|r| {
                            let mut i = interval(Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
                            i.set_missed_tick_behavior(MissedTickBehavior::Burst);
                            i
                        });
                    }
                    Some(ProducerCmd::Pause(p)) => {
                        if paused && !p && let Some(i) = &mut stream {
                            // The next tick one period from now, not a burst for the pause.
                            i.reset();
                        }
                        paused = p;
                    }
                },
                Some((id, res)) = confirms.next(), if !confirms.is_empty() => match res {
                    // Refused: a full queue with overflow reject-publish (or a broker out of room).
                    Ok(Confirmation::Nack(_)) => self.events.send(Event::Refused { id }).await,
                    Ok(_) => self.events.send(Event::Confirmed { id }).await,
                    // Connection lost before the confirm: the broker may or may not have it.
                    // The ledger keeps it at the broker; the app reconciles after reconnecting.
                    Err(_) => self.events.send(Event::Unconfirmed { id }).await,
                },
                () = std::future::ready(()), if can_publish => {
                    let mut p = pending.pop_front().expect("can_publish");
                    let now = (p.count - p.done).min(CHUNK);
                    let first = p.done;
                    p.done += now;
                    let batch = p.batch;
                    // The app hears of the whole chunk before any of it is published, so it
                    // knows every task before a consumer can report it.
                    let ids = next_id..next_id + u64::from(now);
                    next_id = ids.end;
                    for id in ids.clone() {
                        self.events.send(Event::Published { id, batch }).await;
                    }
                    self.events.flush().await;
                    let weights: Vec<f64> = (first..p.done).map(|i| p.weight(i)).collect();
                    if p.done < p.count {
                        pending.push_front(p);
                    }
                    let mut ids = ids.into_iter().zip(weights);
                    while let Some((id, weight)) = ids.next() {
                        if let Err(reason) = self.publish(id, weight, &mut confirms).await {
                            self.events.send(Event::PublishFailed { id, reason: reason.clone() }).await;
                            for (never_sent, _) in ids.by_ref() {
                                let reason = "not sent: the connection was lost".to_string();
                                self.events.send(Event::PublishFailed { id: never_sent, reason }).await;
                            }
                            self.lose_link(reason).await;
                            retry_at = Instant::now() + backoff.next();
                            break;
                        }
                    }
                }
                // No ticks while disconnected: a stream must not pile up tasks during an outage.
                // Nor while the demo is paused.
                _ = tick(&mut stream), if stream.is_some() && self.link.is_some() && !paused => {
                    pending.push_back(Pending { batch: None, count: 1, done: 0, weights: Vec::new() });
                }
                _ = stats.tick() => {
                    if let Some(link) = &self.link {
                        match declare(&link.channel, &self.shared, true).await {
                            Ok(q) => {
                                let ev = Event::QueueStats { ready: q.message_count(), consumers: q.consumer_count() };
                                self.events.send(ev).await;
                            }
                            Err(e) => {
                                self.lose_link(e).await;
                                retry_at = Instant::now() + backoff.next();
                            }
                        }
                    }
                }
                // Nothing else is ready: hand the gathered events to the app now.
                () = self.events.flush(), if self.events.pending() => {}
                _ = sleep_until(retry_at), if self.link.is_none() => {
                    match self.reconnect().await {
                        Ok(info) => {
                            backoff = Backoff::default();
                            if let Some(i) = &mut stream {
                                i.reset();
                            }
                            self.events.send(Event::Connected(info)).await;
                        }
                        Err(e) => {
                            let wait = backoff.next();
                            retry_at = Instant::now() + wait;
                            // The first clause ("cannot connect to host:port: connection refused")
                            // fits a banner; the advice after it was for start-up.
                            let what = e.split(". ").next().unwrap_or(&e);
                            let text = format!("producer: {what}; retrying in {}", crate::units::duration(wait));
                            self.events.send(Event::Error(text)).await;
                        }
                    }
                }
            }
        }
        self.events.flush().await;
        if let Some(link) = self.link.take() {
            let close = link.conn.close(200, "warren: bye".into());
            let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
        }
    }

    async fn publish(
        &self,
        id: TaskId,
        weight: f64,
        confirms: &mut FuturesUnordered<ConfirmFuture>,
    ) -> Result<(), String> {
        let link = self.link.as_ref().expect("publish needs a link");
        let props = BasicProperties::default()
            .with_delivery_mode(if self.shared.durable { 2 } else { 1 })
            .with_message_id(id.to_string().into());
        let payload = task_payload(self.shared.run, id, weight);
        let confirm = link
            .channel
            .basic_publish(
                "".into(),
                self.shared.queue.as_str().into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                props,
            )
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        confirms.push(Box::pin(async move { (id, confirm.await) }));
        Ok(())
    }

    async fn lose_link(&mut self, reason: String) {
        if let Some(link) = self.link.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                link.conn.close(200, "warren: reconnecting".into()),
            )
            .await;
        }
        self.events.send(Event::ConnectionLost { reason }).await;
        self.events.flush().await;
    }

    async fn reconnect(&mut self) -> Result<crate::app::BrokerInfo, String> {
        let (conn, info) = connect::open_first(&self.shared.uri, "warren producer").await?;
        let channel = open_channel(&conn, &self.shared).await?;
        self.link = Some(Link { conn, channel });
        Ok(info)
    }
}

async fn tick(stream: &mut Option<Interval>) {
    match stream {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
