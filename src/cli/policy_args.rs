//! The flags for the queue's policy (`--queue-type`, `--delivery-limit`, `--max-length`,
//! `--overflow`, `--task-ttl`, `--poison`), turned into a checked [`Policy`].

use clap::ValueEnum;

use crate::policy::{Overflow, Policy, QueueType, parse_ids};

#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Queue type: classic, or quorum (durable; x-queue-type=quorum, as RabbitMQ 4.x tutorials).
    #[arg(long, value_enum, default_value_t = QueueTypeArg::Classic)]
    pub queue_type: QueueTypeArg,

    /// Quorum only: dead-letter a task after this many redeliveries (x-delivery-limit).
    #[arg(long, value_name = "N")]
    pub delivery_limit: Option<u32>,

    /// At most N ready tasks in the queue (x-max-length); see --overflow.
    #[arg(long, value_name = "N")]
    pub max_length: Option<u32>,

    /// What a full queue does: drop-head (dead-letter the oldest) or reject-publish (nack the new).
    #[arg(long, value_enum, requires = "max_length", default_value_t = OverflowArg::DropHead)]
    pub overflow: OverflowArg,

    /// A ready task older than this expires and is dead-lettered (x-message-ttl), e.g. 3s.
    #[arg(long, value_name = "DURATION")]
    pub task_ttl: Option<String>,

    /// Task ids every consumer fails on (nack with requeue, like a worker crashing on that
    /// input), e.g. 3,7. Needs --mode fair.
    #[arg(long, value_name = "IDS")]
    pub poison: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueTypeArg {
    Classic,
    Quorum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverflowArg {
    DropHead,
    RejectPublish,
}

impl PolicyArgs {
    /// The checked policy; `manual_ack` and `durable` as the rest of the flags say.
    pub fn into_policy(self, manual_ack: bool, durable: bool) -> Result<Policy, String> {
        let task_ttl = match &self.task_ttl {
            Some(text) => Some(
                humantime::parse_duration(text)
                    .map_err(|e| format!("--task-ttl '{text}' is not a duration ({e}): try 500ms or 3s"))?,
            ),
            None => None,
        };
        let poison = match &self.poison {
            Some(text) => parse_ids(text).map_err(|e| format!("--poison {e}: give ids like 3,7"))?,
            None => Vec::new(),
        };
        let policy = Policy {
            queue_type: match self.queue_type {
                QueueTypeArg::Classic => QueueType::Classic,
                QueueTypeArg::Quorum => QueueType::Quorum,
            },
            delivery_limit: self.delivery_limit,
            max_length: self.max_length,
            overflow: match self.overflow {
                OverflowArg::DropHead => Overflow::DropHead,
                OverflowArg::RejectPublish => Overflow::RejectPublish,
            },
            task_ttl,
            poison,
        };
        policy.check(manual_ack, durable, |name| format!("--{name}"))?;
        Ok(policy)
    }
}
