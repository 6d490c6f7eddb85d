//! The engine end to end against a real broker: exact dispatch order, fair dispatch, mode
//! switches and crashes, with every task accounted for.

mod common;

use std::collections::BTreeSet;

use common::{PATIENCE, delete_queue, start, unique_queue};
use warren::app::{Action, App, ConsumerStatus, LossReason, Mode};

/// Every published id processed exactly once across all consumers.
fn exactly_once(app: &App, n: u64) {
    let mut seen = BTreeSet::new();
    for c in &app.consumers {
        for &id in c.history.as_deref().unwrap_or_default() {
            assert!(seen.insert(id), "task #{id} processed twice");
        }
    }
    assert_eq!(seen, (1..=n).collect::<BTreeSet<_>>(), "every task processed once");
}

fn totals_add_up(app: &App) {
    let t = app.ledger.totals();
    assert_eq!(t.published, t.accounted(), "ledger: {t:?}");
    assert!(app.ledger.anomalies().is_empty(), "{:?}", app.ledger.anomalies());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_a_strict_rotation_whatever_the_speed() {
    on_every_broker!(
        "round_robin_is_a_strict_rotation_whatever_the_speed",
        round_robin_is_a_strict_rotation_whatever_the_speed_on
    );
}

async fn round_robin_is_a_strict_rotation_whatever_the_speed_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("rr");
    let mut d = start(&url, &queue, &["--mode", "rr", "--consumers", "3", "--delay", "1ms,15ms,40ms"]).await;
    d.publish(30);
    assert!(d.wait_until(PATIENCE, |a| a.ledger.totals().done == 30).await, "30 tasks processed");
    for (k, c) in d.app.consumers.iter().enumerate() {
        let want: Vec<u64> = (0..10).map(|i| k as u64 + 1 + 3 * i).collect();
        assert_eq!(c.history.as_deref(), Some(&want[..]), "{} gets {}, {}, ...", c.name(), k + 1, k + 4);
    }
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_dispatch_gives_the_fast_consumer_most_work_and_a_shorter_makespan() {
    on_every_broker!(
        "fair_dispatch_gives_the_fast_consumer_most_work_and_a_shorter_makespan",
        fair_dispatch_gives_the_fast_consumer_most_work_and_a_shorter_makespan_on
    );
}

async fn fair_dispatch_gives_the_fast_consumer_most_work_and_a_shorter_makespan_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("fair");
    let mut d = start(&url, &queue, &["--mode", "rr", "--delay", "20ms,200ms,600ms"]).await;

    d.publish(24);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().published == 24).await);
    let rr = d.app.batches[0].makespan().expect("rr batch finished");
    let rr_counts: Vec<u64> = d.app.consumers.iter().map(|c| c.processed.total()).collect();
    assert_eq!(rr_counts, [8, 8, 8], "round-robin splits evenly whatever the speed");

    d.act(Action::ToggleMode);
    assert!(d.wait_until(PATIENCE, |a| a.applied.mode == Mode::Fair).await, "switch applied");
    d.publish(24);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().published == 48).await);
    let fair = d.app.batches[1].makespan().expect("fair batch finished");
    let fast = d.app.consumers[0].processed.total() - rr_counts[0];
    assert!(fast > 12, "the 20ms consumer did the majority of 24 under fair dispatch, did {fast}");
    assert!(fair < rr, "fair makespan {fair:?} should beat round-robin {rr:?}");
    exactly_once(&d.app, 48);
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

async fn switch_mid_batch(url: &str, from: &str) {
    let queue = unique_queue(&format!("switch-{from}"));
    let mut d = start(url, &queue, &["--mode", from, "--prefetch", "2", "--delay", "2ms,10ms,25ms"]).await;
    d.publish(90);
    assert!(d.wait_until(PATIENCE, |a| a.ledger.totals().done >= 15).await);
    d.act(Action::ToggleMode);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().published == 90).await);
    let t = d.app.ledger.totals();
    assert_eq!((t.done, t.lost), (90, 0));
    assert_ne!(d.app.applied.mode.short(), from, "the switch happened");
    exactly_once(&d.app, 90);
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(url, &queue).await;
}

async fn from_rr(url: &str) {
    switch_mid_batch(url, "rr").await;
}

async fn from_fair(url: &str) {
    switch_mid_batch(url, "fair").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_from_round_robin_to_fair_mid_batch_loses_nothing() {
    on_every_broker!("a_switch_from_round_robin_to_fair_mid_batch_loses_nothing", from_rr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_from_fair_to_round_robin_mid_batch_loses_nothing() {
    on_every_broker!("a_switch_from_fair_to_round_robin_mid_batch_loses_nothing", from_fair);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_manual_ack_consumer_has_its_task_redelivered_to_another() {
    on_every_broker!(
        "a_killed_manual_ack_consumer_has_its_task_redelivered_to_another",
        a_killed_manual_ack_consumer_has_its_task_redelivered_to_another_on
    );
}

async fn a_killed_manual_ack_consumer_has_its_task_redelivered_to_another_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("kill-fair");
    let mut d = start(&url, &queue, &["--mode", "fair", "--consumers", "2", "--delay", "30s,5ms"]).await;
    d.publish(4);
    // C1 registered first, so the broker's ring hands it task 1; it will sit on it for 30s.
    assert!(d.wait_until(PATIENCE, |a| a.consumers[0].working.is_some()).await);
    let victim_task = d.app.consumers[0].working.unwrap().id;
    d.act(Action::SelectVisible(0));
    d.act(Action::KillConsumer);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().done == 4).await);
    let c2 = &d.app.consumers[1];
    assert!(c2.history.as_ref().unwrap().contains(&victim_task), "C2 processed the redelivered task");
    assert!(c2.redelivered >= 1, "the redelivery carried the redelivered flag");
    assert_eq!(d.app.ledger.totals().lost, 0);
    assert_eq!(d.app.consumers[0].status, ConsumerStatus::Crashed);
    exactly_once(&d.app, 4);
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_auto_ack_consumer_loses_its_task_and_backlog() {
    on_every_broker!(
        "a_killed_auto_ack_consumer_loses_its_task_and_backlog",
        a_killed_auto_ack_consumer_loses_its_task_and_backlog_on
    );
}

async fn a_killed_auto_ack_consumer_loses_its_task_and_backlog_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("kill-rr");
    let mut d = start(&url, &queue, &["--mode", "rr", "--consumers", "2", "--delay", "30s,5ms"]).await;
    d.publish(6);
    // Strict rotation: C1 holds 1 (in process), 3 and 5 (backlog).
    assert!(
        d.wait_until(PATIENCE, |a| a.consumers[0].working.is_some() && a.ledger.held_by(0).backlog == 2)
            .await
    );
    d.act(Action::SelectVisible(0));
    d.act(Action::KillConsumer);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().published == 6).await);
    let t = d.app.ledger.totals();
    assert_eq!((t.done, t.lost, t.redelivered), (3, 3, 0));
    assert_eq!(d.app.ledger.lost_by_reason().get(&LossReason::KilledUnderAutoAck), Some(&3));
    assert_eq!(d.app.consumers[1].history.as_deref(), Some(&[2, 4, 6][..]));
    assert_eq!(d.app.consumers[0].lost, 3);
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_consumer_returns_unstarted_tasks_and_finishes_its_own() {
    on_every_broker!(
        "a_removed_consumer_returns_unstarted_tasks_and_finishes_its_own",
        a_removed_consumer_returns_unstarted_tasks_and_finishes_its_own_on
    );
}

async fn a_removed_consumer_returns_unstarted_tasks_and_finishes_its_own_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("remove");
    let mut d = start(
        &url,
        &queue,
        &["--mode", "fair", "--prefetch", "3", "--consumers", "2", "--delay", "300ms,5ms"],
    )
    .await;
    // With prefetch 3, C1 holds up to 3: one in process, the others unacked and waiting.
    d.publish(12);
    assert!(
        d.wait_until(PATIENCE, |a| a.consumers[0].working.is_some() && a.ledger.held_by(0).waiting >= 1)
            .await
    );
    d.act(Action::SelectVisible(0));
    d.act(Action::RemoveConsumer);
    assert!(d.wait_until(PATIENCE, |a| a.consumers[0].status == ConsumerStatus::Removed).await);
    assert!(d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().done == 12).await);
    assert_eq!(d.app.ledger.totals().lost, 0);
    exactly_once(&d.app, 12);
    assert!(d.app.ledger.totals().redelivered >= 1, "returned tasks come back redelivered");
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_auto_ack_consumer_mid_flood_still_settles_every_task() {
    on_every_broker!(
        "killing_an_auto_ack_consumer_mid_flood_still_settles_every_task",
        killing_an_auto_ack_consumer_mid_flood_still_settles_every_task_on
    );
}

async fn killing_an_auto_ack_consumer_mid_flood_still_settles_every_task_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("kill-flood");
    let mut d = start(&url, &queue, &["--mode", "rr", "--consumers", "2", "--delay", "1s,0s"]).await;
    d.publish(5000);
    // Kill C1 while deliveries are still streaming to it: some are in lapin's buffer or on the
    // wire, already forgotten by the broker. They must end up lost, not "at broker" forever.
    assert!(d.wait_until(PATIENCE, |a| a.consumers[0].received >= 1).await);
    d.act(Action::SelectVisible(0));
    d.act(Action::KillConsumer);
    assert!(
        d.wait_until(PATIENCE, |a| a.settled() && a.ledger.totals().published == 5000).await,
        "settled: {:?}",
        d.app.ledger.totals()
    );
    let t = d.app.ledger.totals();
    assert!(t.lost >= 1 && t.done + t.lost == 5000, "{t:?}");
    assert_eq!(t.done, d.app.consumers[1].processed.total() + d.app.consumers[0].processed.total());
    totals_add_up(&d.app);
    d.shutdown().await;
    delete_queue(&url, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_warren_on_the_same_queue_is_refused() {
    on_every_broker!(
        "a_second_warren_on_the_same_queue_is_refused",
        a_second_warren_on_the_same_queue_is_refused_on
    );
}

async fn a_second_warren_on_the_same_queue_is_refused_on(url: &str) {
    let url = url.to_string();
    let queue = unique_queue("shared");
    let first = start(&url, &queue, &["--consumers", "1", "--delay", "0s"]).await;
    let err = warren::headless::Driver::start(&common::config(&url, &queue, &[]), false)
        .await
        .err()
        .expect("the second one is refused");
    assert!(err.contains("already has 1 consumer(s)") && err.contains("--queue"), "{err}");
    first.shutdown().await;
    delete_queue(&url, &queue).await;
}
