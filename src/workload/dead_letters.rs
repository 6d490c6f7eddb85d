//! The dead-letter watcher: consumes `<queue>.dead` (auto-ack, on its own connection) and
//! reports each task the broker took out of the task queue, with the reason from its `x-death`
//! header, so the ledger accounts for it. Runs only when the policy can remove tasks.

use futures::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::{AMQPValue, FieldTable};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{Backoff, EventSink, Shared, connect, parse_task};
use crate::app::Event;
use crate::policy::{DeathReason, Policy};

pub struct Watcher {
    pub shared: Shared,
    pub events: EventSink,
    pub quit: CancellationToken,
}

impl Watcher {
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        let mut retry_at = Instant::now();
        loop {
            tokio::select! {
                () = self.quit.cancelled() => break,
                () = sleep_until(retry_at) => {}
            }
            let reason = match self.watch().await {
                Ok(()) => break,
                Err(e) => e,
            };
            let wait = backoff.next();
            retry_at = Instant::now() + wait;
            let text = format!("dead-letter queue: {reason}; retrying in {}", crate::units::duration(wait));
            self.events.send(Event::Error(text)).await;
            self.events.flush().await;
        }
        self.events.flush().await;
    }

    /// Consume until quit (Ok) or until the connection fails (Err, to retry).
    async fn watch(&mut self) -> Result<(), String> {
        let conn = connect::open(&self.shared.uri, "warren dead-letter watcher")
            .await
            .map_err(|e| connect::brief(&e))?;
        let channel = conn.create_channel().await.map_err(|e| connect::brief(&e))?;
        super::queue_args::declare_dead_letters(&channel, &self.shared).await?;
        let queue = Policy::dead_queue(&self.shared.queue);
        let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
        let mut deliveries = channel
            .basic_consume(queue.as_str().into(), "warren-dead".into(), opts, FieldTable::default())
            .await
            .map_err(|e| format!("basic.consume failed: {}", connect::reply_text(&e)))?;
        let result = loop {
            tokio::select! {
                () = self.quit.cancelled() => break Ok(()),
                d = deliveries.next() => match d {
                    Some(Ok(d)) => {
                        // Another run's leftovers are not ours to count.
                        let Some(task) = parse_task(&d.data, self.shared.run) else { continue };
                        let reason = death_reason(d.properties.headers().as_ref());
                        self.events.send(Event::DeadLettered { id: task.id, reason }).await;
                    }
                    Some(Err(e)) => break Err(connect::brief(&e)),
                    None => break Err("the broker cancelled the consumer".to_string()),
                },
                () = self.events.flush(), if self.events.pending() => {}
            }
        };
        self.events.flush().await;
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), conn.close(200, "warren: bye".into()))
                .await;
        result
    }
}

/// The reason of the newest `x-death` entry (RabbitMQ puts it first), else
/// `x-first-death-reason`; `rejected` when neither says (the only reason a client causes).
pub fn death_reason(headers: Option<&FieldTable>) -> DeathReason {
    let text = |v: &AMQPValue| match v {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    };
    let Some(h) = headers else { return DeathReason::Rejected };
    let first_entry = match h.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().first().and_then(|e| match e {
            AMQPValue::FieldTable(t) => t.inner().get("reason").and_then(text),
            _ => None,
        }),
        _ => None,
    };
    first_entry
        .or_else(|| h.inner().get("x-first-death-reason").and_then(text))
        .and_then(|r| DeathReason::parse(&r))
        .unwrap_or(DeathReason::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString, ShortString};

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert(ShortString::from(*k), v.clone());
        }
        t
    }

    #[test]
    fn the_reason_comes_from_the_newest_x_death_entry() {
        let entry =
            |r: &str| AMQPValue::FieldTable(table(&[("reason", AMQPValue::LongString(LongString::from(r)))]));
        let h = table(&[(
            "x-death",
            AMQPValue::FieldArray(FieldArray::from(vec![entry("delivery_limit"), entry("expired")])),
        )]);
        assert_eq!(death_reason(Some(&h)), DeathReason::DeliveryLimit);
        let first = table(&[("x-first-death-reason", AMQPValue::LongString(LongString::from("maxlen")))]);
        assert_eq!(death_reason(Some(&first)), DeathReason::Maxlen);
        assert_eq!(death_reason(None), DeathReason::Rejected);
    }
}
