//! One consumer: an actor that owns its own AMQP connection (like a separate worker process),
//! buffers what the broker delivers, "processes" each task by sleeping its delay, and acks under
//! manual ack. It reconnects by itself when its connection drops.
//!
//! Deliveries are pulled from lapin as soon as they arrive and kept in `waiting`, so the
//! client-side backlog is known exactly (lapin's own buffer stays empty).

use std::collections::VecDeque;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::DeliveryTag;
use lapin::{Channel, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use super::dispatch_args::consume_arguments;
use super::{Backoff, EventSink, Shared, connect, parse_task};
use crate::app::{ConsumerId, Dispatch, Event, LossReason, TaskId};

/// How long one connect-and-consume attempt may take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

pub enum ConsumerCmd {
    SetDelay(Duration),
    /// Freeze (true): start nothing, and the task in hand keeps its remaining time until the
    /// unfreeze. Deliveries are still taken in (the broker pushes them anyway).
    Pause(bool),
    /// Cancel, set qos, consume again; reply when registered (or when it will be on reconnect).
    SetDispatch(Dispatch, oneshot::Sender<()>),
    /// Graceful: take no more work, return unstarted manual-ack tasks, finish the rest.
    Remove,
    /// Crash: close without acking anything.
    Kill,
    /// warren is quitting: close cleanly now.
    Quit,
}

/// A delivered task this consumer holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: TaskId,
    weight: f64,
    tag: DeliveryTag,
    manual_ack: bool,
}

/// The live AMQP side: valid only until the connection drops.
struct Link {
    conn: Connection,
    channel: Channel,
    deliveries: lapin::Consumer,
    tag: String,
    /// The current registration is auto-ack.
    no_ack: bool,
}

pub struct ConsumerActor {
    pub id: ConsumerId,
    pub delay: Duration,
    /// Its x-priority on every basic.consume.
    pub priority: i32,
    pub dispatch: Dispatch,
    /// Start frozen (the demo is paused).
    pub paused: bool,
    pub shared: Shared,
    pub events: EventSink,
    pub commands: mpsc::UnboundedReceiver<ConsumerCmd>,
    /// Told once the first registration at the broker is done (or failed), so consumers can be
    /// registered strictly one after another and the broker's ring is in consumer order.
    pub ready: Option<oneshot::Sender<()>>,
}

impl ConsumerActor {
    pub async fn run(mut self) {
        let mut link: Option<Link> = None;
        let mut waiting: VecDeque<Held> = VecDeque::new();
        let mut current: Option<(Held, Instant)> = None;
        let mut leaving = false;
        let mut backoff = Backoff::default();
        let mut retry_at = Instant::now();
        // Frozen since then: no deadline runs, and resuming adds the frozen time to it.
        let mut paused_at = self.paused.then(Instant::now);

        loop {
            if current.is_none()
                && paused_at.is_none()
                && let Some(h) = waiting.pop_front()
            {
                let work = self.delay.mul_f64(h.weight);
                current = Some((h, Instant::now() + work));
                self.events.send(Event::Started { consumer: self.id, id: h.id, work }).await;
            }
            if leaving && current.is_none() && waiting.is_empty() {
                if let Some(l) = link.take() {
                    close(l).await;
                }
                self.events.send(Event::ConsumerGone { consumer: self.id, killed: false }).await;
                self.events.flush().await;
                return;
            }
            let deadline = current.filter(|_| paused_at.is_none()).map(|(_, d)| d);
            // A task whose time is already up is finished without a timer: tokio's timers
            // have millisecond resolution, which would cap a zero-delay consumer at ~1000/s.
            let due = deadline.is_some_and(|d| d <= Instant::now());
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    None | Some(ConsumerCmd::Quit) => {
                        self.events.flush().await;
                        if let Some(l) = link.take() {
                            close(l).await;
                        }
                        return;
                    }
                    Some(ConsumerCmd::Kill) => {
                        self.crash(link.take(), current.take().map(|(h, _)| h), &mut waiting).await;
                        return;
                    }
                    Some(ConsumerCmd::Remove) => {
                        leaving = true;
                        if let Some(l) = &mut link
                            && !drain_after_cancel(l, &mut waiting, self.id, self.shared.run, &mut self.events).await
                        {
                            let reason = "cancel did not complete".to_string();
                            self.lose_link(&mut link, &mut current, &mut waiting, reason).await;
                        }
                        if let Some(l) = &mut link {
                            // Unstarted manual-ack tasks go back to the queue for the others.
                            let (back, keep): (Vec<Held>, Vec<Held>) =
                                waiting.drain(..).partition(|h| h.manual_ack);
                            waiting.extend(keep);
                            if !back.is_empty() {
                                let ids = back.iter().map(|h| h.id).collect();
                                self.events.send(Event::Requeued { consumer: self.id, ids }).await;
                                self.events.flush().await;
                            }
                            for h in &back {
                                let opts = BasicNackOptions { multiple: false, requeue: true };
                                let _ = l.channel.basic_nack(h.tag, opts).await;
                            }
                        }
                    }
                    Some(ConsumerCmd::SetDelay(d)) => self.delay = d,
                    Some(ConsumerCmd::Pause(true)) => {
                        paused_at.get_or_insert_with(Instant::now);
                    }
                    Some(ConsumerCmd::Pause(false)) => {
                        if let Some(at) = paused_at.take()
                            && let Some((_, deadline)) = &mut current
                        {
                            *deadline += at.elapsed();
                        }
                    }
                    Some(ConsumerCmd::SetDispatch(d, done)) => {
                        self.dispatch = d;
                        if let Some(l) = &mut link
                            && !leaving
                            && !drain_after_cancel(l, &mut waiting, self.id, self.shared.run, &mut self.events).await
                        {
                            let reason = "cancel did not complete".to_string();
                            self.lose_link(&mut link, &mut current, &mut waiting, reason).await;
                            retry_at = Instant::now() + backoff.next();
                        }
                        if let Some(l) = &mut link
                            && !leaving
                        {
                            match consume(&l.channel, self.id, self.priority, &self.shared, d).await {
                                Ok((deliveries, tag)) => {
                                    l.deliveries = deliveries;
                                    l.tag = tag;
                                    l.no_ack = !d.manual_ack();
                                }
                                Err(e) => {
                                    let reason = format!("re-registering failed: {e}");
                                    self.lose_link(&mut link, &mut current, &mut waiting, reason).await;
                                    retry_at = Instant::now() + backoff.next();
                                }
                            }
                        }
                        let _ = done.send(());
                    }
                },
                delivery = next_delivery(&mut link), if link.is_some() && !leaving => match delivery {
                    Some(Ok(d)) => {
                        let manual_ack = link.as_ref().is_some_and(|l| !l.no_ack);
                        self.accept(d, manual_ack, &link, &mut waiting).await;
                    }
                    Some(Err(e)) => {
                        self.lose_link(&mut link, &mut current, &mut waiting, connect::brief(&e)).await;
                        retry_at = Instant::now() + backoff.next();
                    }
                    None => {
                        // Cancelled by the broker (queue deleted) or the channel closed.
                        let reason = "the broker cancelled the consumer".to_string();
                        self.lose_link(&mut link, &mut current, &mut waiting, reason).await;
                        retry_at = Instant::now() + backoff.next();
                    }
                },
                () = std::future::ready(()), if due => {
                    let (h, _) = current.take().expect("due implies a current task");
                    self.finish(h, &mut link, &mut current, &mut waiting, &mut retry_at, &mut backoff).await;
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && !due => {
                    let (h, _) = current.take().expect("deadline implies a current task");
                    self.finish(h, &mut link, &mut current, &mut waiting, &mut retry_at, &mut backoff).await;
                }
                // Nothing else is ready: hand the gathered events to the app now.
                () = self.events.flush(), if self.events.pending() => {}
                _ = sleep_until(retry_at), if link.is_none() && !leaving => {
                    // Bounded: lapin has no connect timeout, and commands wait meanwhile.
                    let attempt = tokio::time::timeout(REGISTER_TIMEOUT, self.register());
                    let attempt = attempt.await.unwrap_or_else(|_| Err("no answer from the broker".into()));
                    match attempt {
                        Ok(l) => {
                            link = Some(l);
                            backoff = Backoff::default();
                            self.events.send(Event::ConsumerReady { consumer: self.id }).await;
                            if let Some(r) = self.ready.take() {
                                let _ = r.send(());
                            }
                        }
                        Err(e) => {
                            let wait = backoff.next();
                            retry_at = Instant::now() + wait;
                            let reason = format!("{e}; retrying in {}", crate::units::duration(wait));
                            self.events.send(Event::ConsumerReconnecting { consumer: self.id, reason }).await;
                            if let Some(r) = self.ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Connect, open a channel, and consume with the current dispatch settings.
    async fn register(&self) -> Result<Link, String> {
        let name = format!("warren consumer C{}", self.id + 1);
        let conn = connect::open(&self.shared.uri, &name).await.map_err(|e| connect::brief(&e))?;
        let channel = conn.create_channel().await.map_err(|e| connect::brief(&e))?;
        // Like the tutorial's worker: declare the queue too, so that after a broker restart
        // the consumer does not depend on the producer having re-declared it first.
        super::producer::declare(&channel, &self.shared, false).await?;
        let (deliveries, tag) =
            consume(&channel, self.id, self.priority, &self.shared, self.dispatch).await?;
        Ok(Link { conn, channel, deliveries, tag, no_ack: !self.dispatch.manual_ack() })
    }

    async fn accept(
        &mut self,
        d: lapin::message::Delivery,
        manual_ack: bool,
        link: &Option<Link>,
        waiting: &mut VecDeque<Held>,
    ) {
        let Some(task) = parse_task(&d.data, self.shared.run) else {
            // Not ours (another program, or a previous run): say so instead of guessing.
            if manual_ack && let Some(l) = link {
                let _ = l.channel.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false }).await;
            }
            let text = format!(
                "C{} received a message that is not a task of this warren run (dropped): \
                 is another program publishing to '{}'?",
                self.id + 1,
                self.shared.queue
            );
            self.events.send(Event::Error(text)).await;
            return;
        };
        waiting.push_back(Held { id: task.id, weight: task.weight, tag: d.delivery_tag, manual_ack });
        let ev = Event::Delivered { consumer: self.id, id: task.id, manual_ack, redelivered: d.redelivered };
        self.events.send(ev).await;
    }

    async fn finish(
        &mut self,
        h: Held,
        link: &mut Option<Link>,
        current: &mut Option<(Held, Instant)>,
        waiting: &mut VecDeque<Held>,
        retry_at: &mut Instant,
        backoff: &mut Backoff,
    ) {
        if !h.manual_ack {
            self.events.send(Event::Processed { consumer: self.id, id: h.id, acked: false }).await;
            return;
        }
        if self.shared.policy.is_poison(h.id) {
            self.fail(h, link, current, waiting, retry_at, backoff).await;
            return;
        }
        let acked = match link {
            Some(l) => l.channel.basic_ack(h.tag, BasicAckOptions::default()).await,
            None => unreachable!("manual-ack tasks are dropped when the link is lost"),
        };
        match acked {
            Ok(()) => {
                self.events.send(Event::Processed { consumer: self.id, id: h.id, acked: true }).await;
            }
            Err(e) => {
                // The ack could not be sent: the broker still counts the task unacked and will
                // requeue it when it sees the connection gone.
                waiting.push_front(h);
                self.lose_link(link, current, waiting, format!("ack failed: {e}")).await;
                *retry_at = Instant::now() + backoff.next();
            }
        }
    }

    /// A poison task: the worker "crashed" on it after its time, and gives it back with
    /// basic.nack(requeue=true). The broker redelivers it (a quorum queue counts the delivery,
    /// and past x-delivery-limit dead-letters it instead).
    async fn fail(
        &mut self,
        h: Held,
        link: &mut Option<Link>,
        current: &mut Option<(Held, Instant)>,
        waiting: &mut VecDeque<Held>,
        retry_at: &mut Instant,
        backoff: &mut Backoff,
    ) {
        // Told before the nack, so the app hears of the requeue before any redelivery.
        self.events.send(Event::Requeued { consumer: self.id, ids: vec![h.id] }).await;
        self.events.flush().await;
        let nacked = match link {
            Some(l) => l.channel.basic_nack(h.tag, BasicNackOptions { multiple: false, requeue: true }).await,
            None => unreachable!("manual-ack tasks are dropped when the link is lost"),
        };
        if let Err(e) = nacked {
            // Closing the channel requeues it all the same.
            self.lose_link(link, current, waiting, format!("nack failed: {e}")).await;
            *retry_at = Instant::now() + backoff.next();
        }
    }

    /// The connection is gone. Manual-ack tasks go back to the broker (it requeues unacked
    /// deliveries of a closed channel); auto-ack tasks are ours and keep being processed.
    async fn lose_link(
        &mut self,
        link: &mut Option<Link>,
        current: &mut Option<(Held, Instant)>,
        waiting: &mut VecDeque<Held>,
        reason: String,
    ) {
        let mut requeued = Vec::new();
        if current.is_some_and(|(h, _)| h.manual_ack) {
            requeued.push(current.take().expect("checked").0.id);
        }
        waiting.retain(|h| {
            if h.manual_ack {
                requeued.push(h.id);
            }
            !h.manual_ack
        });
        if !requeued.is_empty() {
            self.events.send(Event::Requeued { consumer: self.id, ids: requeued }).await;
        }
        self.events.send(Event::ConsumerReconnecting { consumer: self.id, reason }).await;
        // Told before the close that makes the broker requeue (and maybe redeliver) them.
        self.events.flush().await;
        if let Some(l) = link.take() {
            // Make sure the broker sees this channel closed, so it requeues what we held.
            close(l).await;
        }
    }

    /// Die without acking: the broker requeues manual-ack tasks, auto-ack ones are gone.
    async fn crash(&mut self, mut link: Option<Link>, current: Option<Held>, waiting: &mut VecDeque<Held>) {
        // Deliveries lapin already holds for us die with us too. Auto-ack ones are gone from
        // the broker, so they must be reported; manual-ack ones the broker will requeue.
        if let Some(l) = &mut link {
            while let Some(Some(Ok(d))) = l.deliveries.next().now_or_never() {
                if !l.no_ack {
                    continue;
                }
                if let Some(t) = parse_task(&d.data, self.shared.run) {
                    let ev = Event::Delivered {
                        consumer: self.id,
                        id: t.id,
                        manual_ack: false,
                        redelivered: d.redelivered,
                    };
                    self.events.send(ev).await;
                    waiting.push_back(Held {
                        id: t.id,
                        weight: t.weight,
                        tag: d.delivery_tag,
                        manual_ack: false,
                    });
                }
            }
        }
        let held: Vec<Held> = current.into_iter().chain(waiting.drain(..)).collect();
        let (requeued, lost): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| h.manual_ack);
        if !requeued.is_empty() {
            let ids = requeued.iter().map(|h| h.id).collect();
            self.events.send(Event::Requeued { consumer: self.id, ids }).await;
        }
        if !lost.is_empty() {
            let ids = lost.iter().map(|h| h.id).collect();
            let ev = Event::Lost { consumer: self.id, ids, reason: LossReason::KilledUnderAutoAck };
            self.events.send(ev).await;
        }
        // Report before the broker can redeliver, so the ledger sees "requeued" first.
        self.events.flush().await;
        if let Some(l) = link {
            let _ = l.conn.close(320, "warren: consumer killed".into()).await;
        }
        self.events.send(Event::ConsumerGone { consumer: self.id, killed: true }).await;
        self.events.flush().await;
    }
}

/// basic.qos (fair mode only) then basic.consume; returns the stream and its tag.
async fn consume(
    channel: &Channel,
    id: ConsumerId,
    priority: i32,
    shared: &Shared,
    d: Dispatch,
) -> Result<(lapin::Consumer, String), String> {
    if d.manual_ack() {
        // Applies to consumers created after it on this channel: so it must come first.
        channel
            .basic_qos(d.prefetch, BasicQosOptions { global: false })
            .await
            .map_err(|e| format!("basic.qos failed: {}", connect::reply_text(&e)))?;
    }
    let tag = format!("warren-c{}-{}", id + 1, shared.next_tag());
    let opts = BasicConsumeOptions { no_ack: !d.manual_ack(), ..Default::default() };
    let deliveries = channel
        .basic_consume(shared.queue.as_str().into(), tag.as_str().into(), opts, consume_arguments(priority))
        .await
        .map_err(|e| format!("basic.consume failed: {}", connect::reply_text(&e)))?;
    Ok((deliveries, tag))
}

/// Cancel the registration and keep every delivery that was already on its way. False if the
/// stream did not end in time: the caller must then drop the link (closing the channel makes
/// the broker requeue whatever could not be drained).
async fn drain_after_cancel(
    l: &mut Link,
    waiting: &mut VecDeque<Held>,
    id: ConsumerId,
    run: u64,
    events: &mut EventSink,
) -> bool {
    let manual_ack = !l.no_ack;
    let _ = l.channel.basic_cancel(l.tag.as_str().into(), BasicCancelOptions::default()).await;
    // After cancel-ok lapin ends the stream once the deliveries before it are handed out.
    let drain = async {
        while let Some(Ok(d)) = l.deliveries.next().await {
            if let Some(task) = parse_task(&d.data, run) {
                waiting.push_back(Held { id: task.id, weight: task.weight, tag: d.delivery_tag, manual_ack });
                let ev =
                    Event::Delivered { consumer: id, id: task.id, manual_ack, redelivered: d.redelivered };
                events.send(ev).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drain).await.is_ok()
}

async fn next_delivery(link: &mut Option<Link>) -> Option<Result<lapin::message::Delivery, lapin::Error>> {
    match link {
        Some(l) => l.deliveries.next().await,
        None => std::future::pending().await,
    }
}

async fn close(l: Link) {
    let _ = tokio::time::timeout(Duration::from_secs(2), l.conn.close(200, "warren: bye".into())).await;
}
