//! Why the broker dead-lettered a task: the `reason` of the first entry in its `x-death` header.

/// RabbitMQ's reasons (dlx.md), in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeathReason {
    /// basic.reject / basic.nack with requeue=false.
    Rejected,
    /// Its time to live ran out while it was ready in the queue.
    Expired,
    /// Dropped from the head of a full queue (x-max-length, overflow drop-head).
    Maxlen,
    /// Delivered more often than the quorum queue's x-delivery-limit allows.
    DeliveryLimit,
}

impl DeathReason {
    pub const ALL: [DeathReason; 4] =
        [DeathReason::Rejected, DeathReason::Expired, DeathReason::Maxlen, DeathReason::DeliveryLimit];

    /// From the `x-death` reason string.
    pub fn parse(text: &str) -> Option<Self> {
        DeathReason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The word RabbitMQ writes in `x-death`, also what warren shows.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_rabbitmqs_words() {
        for r in DeathReason::ALL {
            assert_eq!(DeathReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(DeathReason::parse("delivery-limit"), None);
    }
}
