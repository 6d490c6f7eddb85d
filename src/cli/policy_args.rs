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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;
    use crate::policy::{Overflow, QueueType};

    fn config(args: &[&str]) -> Result<crate::cli::Config, String> {
        let mut argv = vec!["warren"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.into_config()
    }

    #[test]
    fn the_policy_flags_make_one_checked_policy() {
        let c = config(&[
            "--mode",
            "fair",
            "--queue-type",
            "quorum",
            "--delivery-limit",
            "2",
            "--poison",
            "3,7",
            "--max-length",
            "5",
            "--overflow",
            "reject-publish",
            "--task-ttl",
            "1500ms",
        ])
        .unwrap();
        let p = c.policy;
        assert_eq!(
            (p.queue_type, p.delivery_limit, p.poison.clone()),
            (QueueType::Quorum, Some(2), vec![3, 7])
        );
        assert_eq!((p.max_length, p.overflow), (Some(5), Overflow::RejectPublish));
        assert_eq!(p.task_ttl, Some(std::time::Duration::from_millis(1500)));
        assert!(config(&[]).unwrap().policy == crate::policy::Policy::default());
    }

    #[test]
    fn policy_mistakes_are_one_line_saying_what_to_change() {
        let e = config(&["--delivery-limit", "2"]).unwrap_err();
        assert!(e.starts_with("--delivery-limit needs --queue-type quorum"), "{e}");
        let e = config(&["--queue-type", "quorum", "--transient"]).unwrap_err();
        assert!(e.contains("drop --transient"), "{e}");
        let e = config(&["--poison", "3"]).unwrap_err();
        assert!(e.starts_with("--poison needs manual ack (mode fair)"), "{e}");
        let e = config(&["--mode", "fair", "--poison", "x"]).unwrap_err();
        assert_eq!(e, "--poison 'x' is not a task id: give ids like 3,7");
        let e = config(&["--task-ttl", "soon"]).unwrap_err();
        assert!(e.starts_with("--task-ttl 'soon' is not a duration"), "{e}");
        let e = config(&["--overflow", "reject-publish"]).unwrap_err();
        assert!(e.contains("--max-length"), "{e}");
        let e = config(&["--mode", "fair", "--poison", "3", "--headless", "--publish", "5"]).unwrap_err();
        assert!(e.starts_with("--poison without --delivery-limit cycles those tasks forever"), "{e}");
        assert!(e.lines().count() == 1);
    }
}
