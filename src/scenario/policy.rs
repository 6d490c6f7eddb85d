//! A lesson's queue policy: the keys `queue_type`, `delivery_limit`, `max_length`, `overflow`,
//! `task_ttl` and `poison`, checked like the command line's flags.

use super::{Action, Step};
use crate::app::{Mode, TaskId};
use crate::policy::{Overflow, Policy, QueueType};

/// The raw keys, as written in the file.
#[derive(Debug, Default)]
pub(super) struct RawPolicy {
    pub queue_type: Option<String>,
    pub delivery_limit: Option<u32>,
    pub max_length: Option<u32>,
    pub overflow: Option<String>,
    pub task_ttl: Option<String>,
    pub poison: Option<Vec<TaskId>>,
}

/// The checked policy. Tasks a consumer fails on need manual ack all along, and a delivery
/// limit, or they would cycle forever and the lesson would never settle.
pub(super) fn check(raw: RawPolicy, mode: Mode, steps: &[Step]) -> Result<Policy, String> {
    let queue_type = match raw.queue_type.as_deref() {
        None => QueueType::Classic,
        Some(t) => QueueType::parse(t)
            .ok_or_else(|| format!("queue_type '{t}' is neither \"classic\" nor \"quorum\""))?,
    };
    let overflow = match raw.overflow.as_deref() {
        None => Overflow::DropHead,
        Some(_) if raw.max_length.is_none() => return Err("overflow without max_length".into()),
        Some(o) => Overflow::parse(o)
            .ok_or_else(|| format!("overflow '{o}' is neither \"drop-head\" nor \"reject-publish\""))?,
    };
    let task_ttl = match &raw.task_ttl {
        Some(t) => Some(super::duration(t).map_err(|e| format!("task_ttl {e}"))?),
        None => None,
    };
    let policy = Policy {
        queue_type,
        delivery_limit: raw.delivery_limit,
        max_length: raw.max_length,
        overflow,
        task_ttl,
        poison: raw.poison.unwrap_or_default(),
    };
    let auto_ack_later = steps.iter().any(|s| s.action == Some(Action::Mode(Mode::RoundRobin)));
    let manual_ack = mode == Mode::Fair && !auto_ack_later;
    // A lesson's quorum queue is durable; a classic one is not (see play::prepare).
    policy.check(manual_ack, queue_type == QueueType::Quorum, str::to_string)?;
    if !policy.poison.is_empty() && policy.delivery_limit.is_none() {
        return Err("poison without delivery_limit: those tasks would cycle forever and the lesson \
                    would never settle; add queue_type = \"quorum\" and delivery_limit = N"
            .into());
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use crate::policy::{Overflow, QueueType};
    use crate::scenario::parse;

    const HEAD: &str = "title = \"t\"\nconsumers = [\"1s\"]\nmode = \"fair\"\n";

    fn err(extra: &str) -> String {
        parse(&format!("{HEAD}{extra}\n[[step]]\npublish = 3\n")).unwrap_err().1
    }

    #[test]
    fn the_policy_keys_parse_like_the_flags() {
        let text = format!(
            "{HEAD}queue_type = \"quorum\"\ndelivery_limit = 2\npoison = [3]\nmax_length = 4\n\
             overflow = \"reject-publish\"\ntask_ttl = \"3s\"\n[[step]]\npublish = 3\n"
        );
        let s = parse(&text).unwrap();
        let p = &s.policy;
        assert_eq!((p.queue_type, p.delivery_limit, p.max_length), (QueueType::Quorum, Some(2), Some(4)));
        assert_eq!((p.overflow, p.poison.clone()), (Overflow::RejectPublish, vec![3]));
        // --speed scales the time to live with every other duration.
        assert_eq!(s.scaled(4.0).policy.task_ttl, Some(std::time::Duration::from_millis(750)));
    }

    #[test]
    fn mistakes_in_the_policy_are_named() {
        assert_eq!(
            err("delivery_limit = 2"),
            "delivery-limit needs queue-type quorum: RabbitMQ counts deliveries only on quorum queues"
        );
        assert!(err("queue_type = \"quorum\"\npoison = [3]").starts_with("poison without delivery_limit"));
        assert!(err("queue_type = \"stream\"").contains("neither \"classic\" nor \"quorum\""));
        assert_eq!(err("overflow = \"drop-head\""), "overflow without max_length");
        assert!(err("max_length = 2\noverflow = \"reject-publish-dlx\"").contains("neither"));
        assert!(err("task_ttl = \"soon\"").starts_with("task_ttl 'soon' is not a duration"));
        let rr = "title = \"t\"\nconsumers = [\"1s\"]\nqueue_type = \"quorum\"\ndelivery_limit = 1\n\
                  poison = [1]\n[[step]]\npublish = 3\n";
        assert!(parse(rr).unwrap_err().1.starts_with("poison needs manual ack"));
    }
}
