//! The AMQP side, on lapin: one producer and N consumers, each an actor with its own
//! connection, steered by [`Command`]s and reporting [`Event`]s. No terminal code here.

pub mod connect;
mod consumer;
mod dead_letters;
mod dispatch_args;
pub mod frame_size;
pub mod probe;
mod producer;
mod queue_args;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::uri::AMQPUri;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{BrokerInfo, Command, ConsumerId, Dispatch, Event, TaskId};
use consumer::{ConsumerActor, ConsumerCmd};
use producer::{ProducerActor, ProducerCmd};

/// What the workload needs to know, from the checked config.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub uri: AMQPUri,
    pub queue: String,
    pub durable: bool,
    pub delays: Vec<Duration>,
    pub dispatch: Dispatch,
    pub policy: crate::policy::Policy,
    /// Per consumer, its x-priority.
    pub priorities: Vec<i32>,
    /// Declare the queue with x-single-active-consumer.
    pub single_active: bool,
}

/// Read-only facts every actor shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub uri: AMQPUri,
    pub queue: String,
    pub durable: bool,
    pub single_active: bool,
    /// Identifies this run's tasks on the wire, so leftovers of another run are recognised.
    pub run: u64,
    /// Queue arguments and the tasks consumers fail on.
    pub policy: Arc<crate::policy::Policy>,
    tags: Arc<AtomicU64>,
}

impl Shared {
    /// A fresh number for consumer tags (each re-registration gets a new tag).
    fn next_tag(&self) -> u64 {
        self.tags.fetch_add(1, Ordering::Relaxed)
    }
}

/// Where an actor reports to: events are gathered and sent as one batch when the actor has
/// nothing else ready to do (or the batch is full). At broker speed that is one channel send and
/// one wake-up of the UI per batch instead of per event. The channel is bounded: if the UI
/// falls behind, the workload waits rather than growing a queue without limit.
#[derive(Debug)]
pub struct EventSink {
    tx: mpsc::Sender<Vec<Event>>,
    buf: Vec<Event>,
}

/// Events per batch at most.
const BATCH_MAX: usize = 256;

impl Clone for EventSink {
    /// A new outbox on the same channel; pending events stay with the original.
    fn clone(&self) -> Self {
        Self::new(self.tx.clone())
    }
}

impl EventSink {
    pub fn new(tx: mpsc::Sender<Vec<Event>>) -> Self {
        Self { tx, buf: Vec::new() }
    }

    async fn send(&mut self, ev: Event) {
        self.buf.push(ev);
        if self.buf.len() >= BATCH_MAX {
            self.flush().await;
        }
    }

    /// Hand the gathered events over. Call before anything whose effect another actor could
    /// report (a publish, closing a connection) so the app hears of causes before effects.
    ///
    /// Cancel-safe: it is raced against other work in `select!`, so the batch leaves the
    /// buffer only once a slot in the channel is reserved (a cancelled `send` would lose it).
    async fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.tx.reserve().await {
            Ok(permit) => permit.send(std::mem::replace(&mut self.buf, Vec::with_capacity(32))),
            // The app is gone (warren is shutting down): nobody is left to tell.
            Err(_) => self.buf.clear(),
        }
    }

    fn pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Capacity of the event channel, in batches: large enough for bursts, bounded for memory.
pub const EVENT_CAPACITY: usize = 1024;

/// Exponential backoff for reconnecting: 100ms doubling to 5s.
#[derive(Debug, Clone, Copy)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        now
    }
}

/// The body of a task message: `warren <run> <id>`.
pub fn task_payload(run: u64, id: TaskId, weight: f64) -> String {
    format!("warren {run:x} {id} {weight}")
}

/// A task as it travels: its id and its weight (processing time = consumer delay x weight).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub weight: f64,
}

/// The task, if the body is a task of this run.
pub fn parse_task(body: &[u8], run: u64) -> Option<Task> {
    let text = std::str::from_utf8(body).ok()?;
    let mut parts = text.split(' ');
    (parts.next()? == "warren").then_some(())?;
    (u64::from_str_radix(parts.next()?, 16).ok()? == run).then_some(())?;
    let id = parts.next()?.parse().ok()?;
    let weight: f64 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && weight.is_finite() && weight >= 0.0).then_some(Task { id, weight })
}

/// What start-up found worth telling the user.
#[derive(Debug, Clone, Default)]
pub struct StartNotes {
    /// Messages left in the queue by an earlier run, purged so the demo starts clean.
    pub purged: u32,
}

/// A running workload. Dropping it does not stop the actors: call [`Engine::shutdown`].
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    quit: CancellationToken,
    task: JoinHandle<()>,
}

impl Engine {
    /// Connect (failing with one user-facing line), declare the queue, and start the producer
    /// and the consumers. Consumers register one after another, in order, so the broker's
    /// round-robin ring is C1, C2, C3...
    pub async fn start(
        cfg: WorkloadConfig,
        events: mpsc::Sender<Vec<Event>>,
    ) -> Result<(Engine, BrokerInfo, StartNotes), String> {
        let (conn, info) = connect::open_first(&cfg.uri, "warren producer").await?;
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let shared = Shared {
            uri: cfg.uri.clone(),
            queue: cfg.queue.clone(),
            durable: cfg.durable,
            single_active: cfg.single_active,
            run,
            policy: Arc::new(cfg.policy.clone()),
            tags: Arc::default(),
        };
        let channel = producer::open_channel(&conn, &shared).await?;
        let purged = purge_leftovers(&channel, &shared).await?;
        let sink = EventSink::new(events);
        let (ptx, prx) = mpsc::unbounded_channel();
        let producer = ProducerActor {
            shared: shared.clone(),
            events: sink.clone(),
            commands: prx,
            link: Some(producer::Link { conn, channel }),
        };
        let producer_task = tokio::spawn(producer.run());
        let (tx, rx) = mpsc::unbounded_channel();
        let quit = CancellationToken::new();
        // Watching from the start, so no dead letter goes unseen.
        let watcher = shared.policy.dead_letters().then(|| {
            let w =
                dead_letters::Watcher { shared: shared.clone(), events: sink.clone(), quit: quit.clone() };
            tokio::spawn(w.run())
        });
        let supervisor = Supervisor {
            quit: quit.clone(),
            shared,
            sink,
            dispatch: cfg.dispatch,
            paused: false,
            producer: ptx,
            producer_task,
            watcher,
            consumers: Vec::new(),
            priorities: cfg.priorities,
        };
        let task = tokio::spawn(supervisor.run(cfg.delays, rx));
        Ok((Engine { commands: tx, quit, task }, info, StartNotes { purged }))
    }

    pub fn send(&self, cmd: Command) {
        // If the supervisor is gone there is nothing left to steer.
        let _ = self.commands.send(cmd);
    }

    /// Stop everything: consumers close their channels (the broker requeues what they held
    /// unacked), the producer closes its connection. Drop the event receiver first, so no
    /// actor waits for room in a channel nobody reads.
    pub async fn shutdown(self) {
        self.quit.cancel();
        let _ = self.commands.send(Command::Quit);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn purge_leftovers(channel: &lapin::Channel, shared: &Shared) -> Result<u32, String> {
    let q = producer::declare(channel, shared, true).await?;
    if q.consumer_count() > 0 {
        // Another warren (or a real worker) would take our tasks, and we would drop theirs.
        return Err(format!(
            "queue '{}' already has {} consumer(s), perhaps another warren: give this one its own \
             queue with --queue NAME",
            shared.queue,
            q.consumer_count()
        ));
    }
    if shared.policy.dead_letters() {
        // An earlier run's dead letters are not this run's: start the dead-letter queue empty.
        let dead = crate::policy::Policy::dead_queue(&shared.queue);
        purge(channel, &dead).await?;
    }
    if q.message_count() == 0 {
        return Ok(0);
    }
    purge(channel, &shared.queue).await
}

async fn purge(channel: &lapin::Channel, queue: &str) -> Result<u32, String> {
    channel
        .queue_purge(queue.into(), lapin::options::QueuePurgeOptions::default())
        .await
        .map_err(|e| format!("could not purge leftovers from '{queue}': {}", connect::reply_text(&e)))
}

struct ConsumerHandle {
    commands: mpsc::UnboundedSender<ConsumerCmd>,
    task: JoinHandle<()>,
}

/// Owns the actors and turns app commands into actor commands, in order.
struct Supervisor {
    /// Cancelled on quit, so a wait for a slow consumer does not hold the quit up.
    quit: CancellationToken,
    shared: Shared,
    sink: EventSink,
    dispatch: Dispatch,
    /// The demo is frozen: consumers started meanwhile start frozen too.
    paused: bool,
    producer: mpsc::UnboundedSender<ProducerCmd>,
    producer_task: JoinHandle<()>,
    /// The dead-letter watcher, when the policy can remove tasks.
    watcher: Option<JoinHandle<()>>,
    consumers: Vec<Option<ConsumerHandle>>,
    /// Per consumer, its x-priority (kept for a restart).
    priorities: Vec<i32>,
}

impl Supervisor {
    async fn run(mut self, delays: Vec<Duration>, mut commands: mpsc::UnboundedReceiver<Command>) {
        for (id, delay) in delays.into_iter().enumerate() {
            self.add_consumer(id, delay).await;
        }
        while let Some(cmd) = commands.recv().await {
            if self.quit.is_cancelled() {
                break;
            }
            match cmd {
                Command::Publish { count, batch, weights } => {
                    let _ = self.producer.send(ProducerCmd::Publish { count, batch: Some(batch), weights });
                }
                Command::Stream { per_second } => {
                    let _ = self.producer.send(ProducerCmd::Stream(per_second));
                }
                Command::SetDispatch(d) => {
                    self.dispatch = d;
                    // One at a time, in order, so the ring keeps its order after the switch.
                    for handle in self.consumers.iter().flatten() {
                        let (done, wait) = oneshot::channel();
                        if handle.commands.send(ConsumerCmd::SetDispatch(d, done)).is_ok() {
                            self.bounded_wait(wait).await;
                        }
                    }
                    self.sink.send(Event::DispatchApplied(d)).await;
                    self.sink.flush().await;
                }
                Command::SetDelay { consumer, delay } => self.tell(consumer, ConsumerCmd::SetDelay(delay)),
                Command::AddConsumer { consumer, delay, priority } => {
                    if self.priorities.len() <= consumer {
                        self.priorities.resize(consumer + 1, 0);
                    }
                    self.priorities[consumer] = priority;
                    self.add_consumer(consumer, delay).await;
                }
                Command::RemoveConsumer { consumer } => self.tell(consumer, ConsumerCmd::Remove),
                Command::KillConsumer { consumer } => self.tell(consumer, ConsumerCmd::Kill),
                Command::RestartConsumer { consumer, delay } => {
                    // The crashed actor reports its end first, so the app never takes its
                    // last words for the new one's.
                    if let Some(old) = self.consumers.get_mut(consumer).and_then(Option::take) {
                        self.bounded_end(old.task).await;
                    }
                    self.add_consumer(consumer, delay).await;
                }
                Command::Pause(paused) => {
                    self.paused = paused;
                    let _ = self.producer.send(ProducerCmd::Pause(paused));
                    for h in self.consumers.iter().flatten() {
                        let _ = h.commands.send(ConsumerCmd::Pause(paused));
                    }
                }
                // The event loop restarts the broker itself (it owns it); nothing to do here.
                Command::RestartBroker => {}
                Command::Quit => break,
            }
        }
        self.stop().await;
    }

    fn tell(&self, consumer: ConsumerId, cmd: ConsumerCmd) {
        if let Some(Some(h)) = self.consumers.get(consumer) {
            let _ = h.commands.send(cmd);
        }
    }

    async fn add_consumer(&mut self, id: ConsumerId, delay: Duration) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready, registered) = oneshot::channel();
        let actor = ConsumerActor {
            id,
            delay,
            priority: self.priorities.get(id).copied().unwrap_or(0),
            dispatch: self.dispatch,
            paused: self.paused,
            shared: self.shared.clone(),
            events: self.sink.clone(),
            commands: rx,
            ready: Some(ready),
        };
        let task = tokio::spawn(actor.run());
        if self.consumers.len() <= id {
            self.consumers.resize_with(id + 1, || None);
        }
        self.consumers[id] = Some(ConsumerHandle { commands: tx, task });
        // Wait for basic.consume-ok before the next one registers (bounded: a dead broker must
        // not stall the supervisor; the consumer goes on retrying by itself).
        self.bounded_wait(registered).await;
    }

    /// Wait for a consumer's answer, at most 10s, and not at all once quitting.
    async fn bounded_wait(&self, answer: oneshot::Receiver<()>) {
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(10), answer) => {}
            () = self.quit.cancelled() => {}
        }
    }

    /// Wait for an actor to end, at most 10s (then it is aborted), and not at all once quitting.
    async fn bounded_end(&self, mut task: JoinHandle<()>) {
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(10), &mut task) => {}
            () = self.quit.cancelled() => {}
        }
        task.abort();
    }

    async fn stop(self) {
        let _ = self.producer.send(ProducerCmd::Quit);
        let mut tasks = vec![self.producer_task];
        tasks.extend(self.watcher);
        for h in self.consumers.into_iter().flatten() {
            let _ = h.commands.send(ConsumerCmd::Quit);
            tasks.push(h.task);
        }
        let _ = tokio::time::timeout(Duration::from_secs(4), futures::future::join_all(tasks)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_payloads_round_trip_and_foreign_bodies_are_refused() {
        let body = task_payload(0xabc, 42, 2.5);
        assert_eq!(parse_task(body.as_bytes(), 0xabc), Some(Task { id: 42, weight: 2.5 }));
        assert_eq!(parse_task(body.as_bytes(), 0xabd), None, "another run's task");
        assert_eq!(parse_task(b"hello", 0xabc), None);
        assert_eq!(parse_task(b"warren abc 42 1 extra", 0xabc), None);
        assert_eq!(parse_task(b"warren abc 42 -1", 0xabc), None, "negative weight");
        assert_eq!(parse_task(b"warren abc 42 NaN", 0xabc), None);
        assert_eq!(parse_task(&[0xff, 0xfe], 0xabc), None);
    }

    #[tokio::test]
    async fn a_flush_that_loses_a_race_keeps_its_events() {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(vec![]).await.unwrap(); // the channel is full: flush must wait
        let mut sink = EventSink::new(tx);
        sink.send(Event::Confirmed { id: 1 }).await;
        for _ in 0..3 {
            tokio::select! {
                biased;
                () = std::future::ready(()) => {}
                () = sink.flush() => panic!("no room yet"),
            }
        }
        assert!(sink.pending(), "the cancelled flushes kept the batch");
        rx.recv().await.unwrap();
        sink.flush().await;
        assert_eq!(rx.recv().await.unwrap(), vec![Event::Confirmed { id: 1 }]);
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..8).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
