//! Pausing freezes the real workload, on the embedded broker and on RabbitMQ: a consumer's task
//! in hand is neither finished nor acked while paused, and goes on with its remaining time on
//! resume; the stream publishes nothing while paused. Waiting while paused is the point here.

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, delete_queue, start, unique_queue};
use warren::app::Action;

/// Well past the consumer's delay.
const FROZEN_FOR: Duration = Duration::from_millis(2000);
const DELAY: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_freezes_the_consumers_and_resuming_goes_on() {
    on_every_broker!("pausing_freezes_the_consumers_and_resuming_goes_on", pausing_freezes_the_consumers_on);
}

async fn pausing_freezes_the_consumers_on(url: &str) {
    let queue = unique_queue("pause");
    let mut d = start(url, &queue, &["--mode", "fair", "--consumers", "1", "--delay", "800ms"]).await;
    d.publish(3);
    assert!(d.wait_until(PATIENCE, |a| a.consumers[0].working.is_some()).await, "task #1 in hand");
    d.act(Action::PlayPause);
    assert!(d.app.paused());
    let worked = d.wait_until(FROZEN_FOR, |a| a.total_processed() > 0 || a.acked.total() > 0).await;
    assert!(!worked, "nothing is processed or acked while paused");
    let c = &d.app.consumers[0];
    assert_eq!(c.working.map(|w| w.id), Some(1), "#1 still in hand");
    assert_eq!(d.app.ledger.broker_unacked(), 1, "#1 still unacked at the broker");
    // Polled twice a second: the broker still holds the other two (prefetch 1, no ack freed it).
    assert_eq!(d.app.queue_ready, Some(2));

    let resumed = Instant::now();
    d.act(Action::PlayPause);
    assert!(d.wait_until(PATIENCE, |a| a.total_processed() == 1).await);
    // Not finished at once (its time was up during the pause), but with the time it had left.
    let first = resumed.elapsed();
    assert!(first >= DELAY / 2, "#1 finished {first:?} after the resume: it kept its remaining time");
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.total_processed() == 3).await, "all finish");
    assert_eq!(d.app.consumers[0].history.as_deref(), Some(&[1, 2, 3][..]));
    assert_eq!(d.app.consumers[0].acked, 3);
    let t = d.app.ledger.totals();
    assert_eq!((t.published, t.done, t.lost), (3, 3, 0));
    d.shutdown().await;
    delete_queue(url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_stops_the_stream_and_resuming_restarts_it() {
    on_every_broker!("pausing_stops_the_stream_and_resuming_restarts_it", pausing_stops_the_stream_on);
}

async fn pausing_stops_the_stream_on(url: &str) {
    let queue = unique_queue("pause-stream");
    let mut d = start(url, &queue, &["--consumers", "1", "--delay", "0", "--rate", "20"]).await;
    let published = |a: &warren::app::App| a.ledger.totals().published;
    d.act(Action::ToggleStream);
    assert!(d.wait_until(PATIENCE, |a| published(a) >= 3).await, "the stream runs");
    d.act(Action::PlayPause);
    let at_pause = published(&d.app);
    // At 20/s the stream would publish ~40 in this time; at most a tick or two already on
    // their way when the pause came may still arrive.
    d.wait_until(FROZEN_FOR, |_| false).await;
    let during = published(&d.app) - at_pause;
    assert!(during <= 2, "{during} tasks published while paused");
    d.act(Action::PlayPause);
    let resumed_at = published(&d.app);
    assert!(d.wait_until(PATIENCE, |a| published(a) >= resumed_at + 5).await, "the stream goes on");
    d.act(Action::ToggleStream);
    assert!(d.wait_until(PATIENCE, |a| a.settled()).await, "every streamed task is processed");
    d.shutdown().await;
    delete_queue(url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumer_restarts_and_takes_work_again() {
    on_every_broker!("a_crashed_consumer_restarts_and_takes_work_again", a_crashed_consumer_restarts_on);
}

async fn a_crashed_consumer_restarts_on(url: &str) {
    let queue = unique_queue("restart");
    let mut d = start(url, &queue, &["--mode", "fair", "--consumers", "2", "--delay", "20ms"]).await;
    assert!(d.wait_until(PATIENCE, |a| a.queue_consumers == Some(2)).await);
    d.act(Action::SelectVisible(1));
    d.act(Action::KillConsumer);
    assert!(d.wait_until(PATIENCE, |a| a.consumers[1].restartable()).await, "C2 crashed");
    assert!(d.wait_until(PATIENCE, |a| a.queue_consumers == Some(1)).await, "the broker lost C2");
    d.act(Action::RestartConsumer);
    assert!(
        d.app.notice.is_none(),
        "the restart was not refused: {:?}",
        d.app.notice.as_ref().map(|n| &n.text)
    );
    let consuming = |a: &warren::app::App| a.consumers[1].status == warren::app::ConsumerStatus::Consuming;
    assert!(d.wait_until(PATIENCE, consuming).await, "C2 is back");
    assert!(d.wait_until(PATIENCE, |a| a.queue_consumers == Some(2)).await, "the broker sees it again");
    d.publish(20);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.total_processed() == 20).await);
    assert_eq!(d.app.consumers[1].name(), "C2");
    assert!(d.app.consumers[1].processed.total() > 0, "the restarted C2 took work");
    let t = d.app.ledger.totals();
    assert_eq!((t.published, t.done, t.lost), (20, 20, 0));
    d.shutdown().await;
    delete_queue(url, &queue).await;
}
