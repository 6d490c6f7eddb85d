//! The theory model against the real engine on both brokers, for batches that start on a busy
//! broker or see a dispatch switch: what RabbitMQ's rules predict is what was observed.
//!
//! Delays are 300/700/1100ms rather than the demo's usual 300/600/900ms: with those, two
//! consumers free up within a few ms of each other for the second burst's last task, so either
//! split is right and a real run picks one by chance. With 300/700/1100 no two events that decide
//! a split come within ~50ms of each other whatever the second burst's start (940..1100ms) and
//! per-task overhead (up to 20ms): see `the_demo_splits_hold_under_jitter` in src/app/theory.

mod common;

use std::time::Duration;

use common::{PATIENCE, delete_queue, start, unique_queue};
use warren::app::{Action, App, Batch, Mode, theory};

const DELAYS: &str = "300ms,700ms,1100ms";

/// (observed, predicted) tasks per consumer of one batch.
fn split(b: &Batch) -> (Vec<usize>, Vec<usize>) {
    let saw = b.consumers.iter().map(|(id, _)| b.done_by.get(*id).copied().unwrap_or(0) as usize).collect();
    (saw, b.predicted().0.into_iter().map(|(_, n)| n).collect())
}

/// What the old model (idle consumers, empty queue) predicts for the batch.
fn idle_split(b: &Batch) -> Vec<usize> {
    let w = theory::Workload {
        delays: b.consumers.iter().map(|(_, d)| *d).collect(),
        weights: vec![1.0; b.size as usize],
        dispatch: b.dispatch,
    };
    theory::predict(&w).counts()
}

fn all_done(a: &App, n: u64) -> bool {
    a.settled() && a.ledger.totals().published == n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_switch_burst_is_predicted_from_the_busy_state() {
    on_every_broker!("burst_switch_burst_is_predicted_from_the_busy_state", burst_switch_burst_on);
}

async fn burst_switch_burst_on(url: &str) {
    let queue = unique_queue("theory-demo");
    let mut d = start(url, &queue, &["--mode", "rr", "--consumers", "3", "--delay", DELAYS]).await;
    d.act(Action::PublishBurst);
    // The demo: a second of watching (the app follows every event meanwhile), then `m` and `b`.
    d.wait_until(Duration::from_secs(1), |_| false).await;
    d.act(Action::ToggleMode);
    d.act(Action::PublishBurst);
    assert!(d.wait_until(PATIENCE, |a| all_done(a, 20)).await, "20 tasks processed");
    let [first, second] = &d.app.batches[..] else { panic!("two batches: {:?}", d.app.batches.len()) };
    assert_eq!(split(first), (vec![4, 3, 3], vec![4, 3, 3]), "the first burst rotates");
    assert_eq!(second.dispatch.mode, Mode::Fair);
    // C1 finished its backlog first and takes most; C3 is still on its old tasks.
    assert_eq!(split(second), (vec![7, 2, 1], vec![7, 2, 1]), "the second burst, from the busy state");
    assert_ne!(idle_split(second), vec![7, 2, 1], "an idle start would predict something else");
    assert_eq!((first.note.as_deref(), second.note.as_deref()), (None, None));
    d.shutdown().await;
    delete_queue(url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_to_round_robin_mid_burst_is_predicted_and_explained() {
    on_every_broker!("fair_to_round_robin_mid_burst_is_predicted_and_explained", fair_to_rr_mid_burst_on);
}

async fn fair_to_rr_mid_burst_on(url: &str) {
    let queue = unique_queue("theory-switch");
    let mut d =
        start(url, &queue, &["--mode", "fair", "--prefetch", "1", "--consumers", "3", "--delay", DELAYS])
            .await;
    d.publish(10);
    // Switch once C1 has acked its first task (at 300ms, and taken task 4); C2 acks at 700ms.
    assert!(d.wait_until(PATIENCE, |a| a.ledger.totals().done >= 1).await, "C1 acked a task");
    d.act(Action::ToggleMode);
    assert!(d.wait_until(PATIENCE, |a| all_done(a, 10)).await, "10 tasks processed");
    let b = &d.app.batches[0];
    assert_eq!(split(b), (vec![8, 1, 1], vec![8, 1, 1]));
    assert_eq!(
        b.note.as_deref(),
        Some("C1 re-subscribed first with no prefetch limit and took all 6 ready tasks")
    );
    assert_eq!(idle_split(b), vec![5, 3, 2], "without the switch C1 would do less");
    d.shutdown().await;
    delete_queue(url, &queue).await;
}
