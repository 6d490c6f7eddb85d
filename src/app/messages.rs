//! What flows into `App::update` (keys as [`Action`]s, workload reports as [`Event`]s) and what
//! comes out of it ([`Command`]s for the workload).

use std::time::Duration;

use super::{BatchId, ConsumerId, Dispatch, LossReason, TaskId};

/// What the broker told us about itself in connection.start, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub product: String,
    pub version: String,
    pub host: String,
    pub port: u16,
    pub vhost: String,
}

impl BrokerInfo {
    /// `host:port`, plus `/vhost` unless it is the default `/`; never with credentials.
    pub fn endpoint(&self) -> String {
        if self.vhost == "/" {
            format!("{}:{}", self.host, self.port)
        } else {
            format!("{}:{}/{}", self.host, self.port, self.vhost)
        }
    }
}

/// Reports from the workload (producer, consumers, queue monitor).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Connected(BrokerInfo),
    /// The producer's connection dropped; the workload is reconnecting.
    ConnectionLost {
        reason: String,
    },
    Published {
        id: TaskId,
        batch: Option<BatchId>,
    },
    Confirmed {
        id: TaskId,
    },
    /// The connection went before the broker confirmed this publish: it may or may not be there.
    Unconfirmed {
        id: TaskId,
    },
    /// The broker nacked the publish (publisher confirms): a full queue with overflow
    /// reject-publish, or a broker out of room. The task never entered the queue.
    Refused {
        id: TaskId,
    },
    /// The dead-letter queue warren watches received this task, and the first `x-death`
    /// entry says why the broker took it out of the task queue.
    DeadLettered {
        id: TaskId,
        reason: crate::policy::DeathReason,
    },
    /// The publish could not be sent.
    PublishFailed {
        id: TaskId,
        reason: String,
    },
    QueueStats {
        ready: u32,
        consumers: u32,
    },
    /// The consumer is registered at the broker and taking work.
    ConsumerReady {
        consumer: ConsumerId,
    },
    /// The consumer lost its connection and will try again.
    ConsumerReconnecting {
        consumer: ConsumerId,
        reason: String,
    },
    Delivered {
        consumer: ConsumerId,
        id: TaskId,
        manual_ack: bool,
        redelivered: bool,
    },
    Started {
        consumer: ConsumerId,
        id: TaskId,
        /// How long this task takes here (delay x weight).
        work: Duration,
    },
    /// Processed, and acked if it was a manual-ack delivery.
    Processed {
        consumer: ConsumerId,
        id: TaskId,
        acked: bool,
    },
    /// These tasks are back at the broker (channel closed with them unacked, or nacked).
    Requeued {
        consumer: ConsumerId,
        ids: Vec<TaskId>,
    },
    Lost {
        consumer: ConsumerId,
        ids: Vec<TaskId>,
        reason: LossReason,
    },
    /// The consumer has finished for good: removed gracefully or killed.
    ConsumerGone {
        consumer: ConsumerId,
        killed: bool,
    },
    /// All consumers now consume with these settings.
    DispatchApplied(Dispatch),
    /// Something failed that the user should know about; shown as a banner.
    Error(String),
    /// warren restarted its embedded broker (every connection dropped). `durable`: the queue
    /// is durable and the tasks persistent, so they should come back; otherwise the tasks the
    /// broker held are gone with it.
    BrokerRestarted {
        durable: bool,
    },
}

/// What the user asked for (from keys or mouse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PublishOne,
    PublishBurst,
    BurstUp,
    BurstDown,
    ToggleStream,
    RateUp,
    RateDown,
    ToggleMode,
    PrefetchUp,
    PrefetchDown,
    SelectNext,
    SelectPrev,
    /// Select by position among the visible consumer panes (mouse).
    SelectVisible(usize),
    DelayUp,
    DelayDown,
    AddConsumer,
    RemoveConsumer,
    KillConsumer,
    /// Start a crashed consumer again (same name and delay, fresh connection).
    RestartConsumer,
    ToggleHelp,
    /// Show the timeline (one lane per consumer) instead of the consumer panes, or back.
    ToggleTimeline,
    /// The details (producer, distribution, ledger, the selected pane) instead of the flow.
    ToggleDetails,
    /// The selected consumer's full pane in place of the lanes, or back.
    ToggleZoom,
    Quit,
    /// Freeze or unfreeze the whole demo (work, stream, and a lesson's clock).
    PlayPause,
    /// Scenario playback: run the next step now (a paused lesson stays paused).
    PlayStep,
    /// Scenario playback: start the lesson over (fresh consumers, empty queue).
    PlayRestart,
    /// Stop the embedded broker and start it again on the same port and data directory.
    RestartBroker,
}

/// What the app asks of the workload.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `weights` repeat over the batch; empty means every task weighs 1.
    Publish {
        count: u32,
        batch: BatchId,
        weights: Vec<f64>,
    },
    /// Publish continuously at this many tasks per second; `None` stops.
    Stream {
        per_second: Option<u32>,
    },
    SetDispatch(Dispatch),
    SetDelay {
        consumer: ConsumerId,
        delay: Duration,
    },
    AddConsumer {
        consumer: ConsumerId,
        delay: Duration,
        /// Its `x-priority` (0 is RabbitMQ's default).
        priority: i32,
    },
    RemoveConsumer {
        consumer: ConsumerId,
    },
    KillConsumer {
        consumer: ConsumerId,
    },
    /// A crashed consumer starts again: a new actor with its own connection, same id and delay.
    RestartConsumer {
        consumer: ConsumerId,
        delay: Duration,
    },
    /// Freeze (true) or unfreeze the simulated work and the stream: a consumer's task in hand
    /// keeps its remaining time, nothing is acked or started, the stream publishes nothing.
    Pause(bool),
    /// Restart the embedded broker in-process (the event loop does it: it owns the broker).
    RestartBroker,
    Quit,
}

/// Everything `update` accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Action(Action),
    Event(Event),
    /// Called every frame; rolls the per-second meters and animates progress.
    Tick,
}
