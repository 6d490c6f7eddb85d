//! The queue's policy: the RabbitMQ features that make tasks leave the queue otherwise than by
//! being done (a delivery limit, a length cap, a time to live) and the poison tasks that make a
//! consumer fail. Plain data, checked once, shared by the CLI, the scenarios, the workload (which
//! turns it into queue arguments) and the app (which shows the dead-letter queue).

use std::time::Duration;

use crate::app::TaskId;

mod death;
pub use death::DeathReason;

/// `x-queue-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    #[default]
    Classic,
    /// Raft-replicated, always durable; counts deliveries (`x-delivery-count`), so it alone has
    /// a delivery limit. RabbitMQ 4.x tutorials declare their task queue this way.
    Quorum,
}

/// `x-overflow`: what a full queue (`x-max-length`) does with one more task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (dead-letter) the oldest ready task: the newest wins.
    #[default]
    DropHead,
    /// Refuse the new one: the producer sees a basic.nack under publisher confirms.
    RejectPublish,
}

impl Overflow {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "drop-head" => Some(Overflow::DropHead),
            "reject-publish" => Some(Overflow::RejectPublish),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
        }
    }
}

impl QueueType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "classic" => Some(QueueType::Classic),
            "quorum" => Some(QueueType::Quorum),
            _ => None,
        }
    }
}

/// How the task queue is declared, and which tasks the consumers fail on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub queue_type: QueueType,
    /// `x-delivery-limit`: after this many redeliveries a task is dead-lettered (quorum only).
    pub delivery_limit: Option<u32>,
    /// `x-max-length`: at most this many ready tasks.
    pub max_length: Option<u32>,
    pub overflow: Overflow,
    /// `x-message-ttl`: a ready task older than this expires.
    pub task_ttl: Option<Duration>,
    /// Tasks every consumer fails on: it works its time, then gives the task back with
    /// `basic.nack(requeue=true)`, as a worker that crashes on that input would.
    pub poison: Vec<TaskId>,
}

/// The longest `--task-ttl`: RabbitMQ's x-message-ttl is at most 2^32-1 ms; a day is plenty.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

impl Policy {
    /// True when the broker may take tasks out of the queue by itself (limit, cap, TTL): then
    /// warren declares a dead-letter queue and watches it, so no task vanishes unseen.
    /// reject-publish refuses at the door instead: the producer's nacks show those.
    pub fn dead_letters(&self) -> bool {
        self.delivery_limit.is_some()
            || self.task_ttl.is_some()
            || (self.max_length.is_some() && self.overflow == Overflow::DropHead)
    }

    /// Whether consumer `id` fails on this task.
    pub fn is_poison(&self, id: TaskId) -> bool {
        self.poison.contains(&id)
    }

    /// Check the combination; `flag` says how to name a setting (`--delivery-limit` on the command
    /// line, `delivery_limit` in a scenario). `manual_ack` is false when tasks are auto-acked.
    pub fn check(
        &self,
        manual_ack: bool,
        durable: bool,
        flag: impl Fn(&str) -> String,
    ) -> Result<(), String> {
        if self.delivery_limit.is_some() && self.queue_type != QueueType::Quorum {
            return Err(format!(
                "{} needs {}: RabbitMQ counts deliveries only on quorum queues",
                flag("delivery-limit"),
                flag("queue-type quorum")
            ));
        }
        if self.queue_type == QueueType::Quorum && !durable {
            return Err(format!(
                "{} is always durable: RabbitMQ refuses a non-durable one, so drop --transient",
                flag("queue-type quorum")
            ));
        }
        if self.max_length == Some(0) {
            return Err(format!("{} 0 would refuse every task: give 1 or more", flag("max-length")));
        }
        if let Some(ttl) = self.task_ttl
            && (ttl.is_zero() || ttl > MAX_TTL)
        {
            return Err(format!("{} is out of range: give more than 0s and at most 24h", flag("task-ttl")));
        }
        if !self.poison.is_empty() && !manual_ack {
            return Err(format!(
                "{} needs manual ack (mode fair): under auto-ack the broker forgot the task when it \
                 sent it, so a consumer that fails cannot give it back",
                flag("poison")
            ));
        }
        if self.poison.contains(&0) {
            return Err(format!("{}: task ids start at 1", flag("poison")));
        }
        Ok(())
    }

    /// The dead-letter queue's name for this task queue.
    pub fn dead_queue(queue: &str) -> String {
        format!("{queue}.dead")
    }

    /// The dead-letter exchange's name (a fanout bound to the dead-letter queue).
    pub fn dead_exchange(queue: &str) -> String {
        format!("{queue}.dlx")
    }
}

/// `3,7` or `3, 7`: task ids, each at least 1.
pub fn parse_ids(text: &str) -> Result<Vec<TaskId>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_start_matches('#').parse::<TaskId>().map_err(|_| format!("'{s}' is not a task id")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(name: &str) -> String {
        format!("--{name}")
    }

    #[test]
    fn only_what_can_remove_tasks_brings_a_dead_letter_queue() {
        let p = Policy::default();
        assert!(!p.dead_letters());
        let capped = |overflow| Policy { max_length: Some(3), overflow, ..Policy::default() };
        assert!(capped(Overflow::DropHead).dead_letters());
        assert!(!capped(Overflow::RejectPublish).dead_letters(), "refused at the door, not dropped");
        assert!(Policy { task_ttl: Some(Duration::from_secs(1)), ..Policy::default() }.dead_letters());
    }

    #[test]
    fn mistakes_are_named_the_way_the_user_wrote_them() {
        let limit = Policy { delivery_limit: Some(2), ..Policy::default() };
        assert_eq!(
            limit.check(true, true, cli).unwrap_err(),
            "--delivery-limit needs --queue-type quorum: RabbitMQ counts deliveries only on quorum queues"
        );
        let quorum = Policy { queue_type: QueueType::Quorum, ..Policy::default() };
        assert!(quorum.check(true, false, cli).unwrap_err().contains("drop --transient"));
        let poison = Policy { poison: vec![3], ..Policy::default() };
        assert!(poison.check(false, true, cli).unwrap_err().starts_with("--poison needs manual ack"));
        assert!(poison.check(true, true, cli).is_ok());
        let zero = Policy { max_length: Some(0), ..Policy::default() };
        assert!(zero.check(true, true, cli).is_err());
        assert_eq!(parse_ids("3, #7").unwrap(), [3, 7]);
        assert!(parse_ids("3,x").is_err());
    }
}
