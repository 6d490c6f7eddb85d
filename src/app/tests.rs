//! `update` without a terminal or a broker: actions produce the right commands, events move
//! tasks through the ledger, and the numbers on screen add up.

use std::time::{Duration, Instant};

use super::*;

use super::testing::app;

fn ev(app: &mut App, now: Instant, e: Event) {
    assert_eq!(app.update(Msg::Event(e), now), None);
}

fn act(app: &mut App, now: Instant, a: Action) -> Option<Command> {
    app.update(Msg::Action(a), now)
}

/// Publish, deliver, start and finish task `id` on consumer `c`.
fn run_task(app: &mut App, now: Instant, id: TaskId, c: ConsumerId, manual_ack: bool) {
    ev(app, now, Event::Published { id, batch: None });
    ev(app, now, Event::Delivered { consumer: c, id, manual_ack, redelivered: false });
    ev(app, now, Event::Started { consumer: c, id, work: Duration::from_secs(1) });
    ev(app, now, Event::Processed { consumer: c, id, acked: manual_ack });
}

#[test]
fn keys_become_commands() {
    let (mut a, now) = app(&[1000, 2000], Mode::RoundRobin);
    assert_eq!(
        act(&mut a, now, Action::PublishOne),
        Some(Command::Publish { count: 1, batch: 1, weights: vec![] })
    );
    assert_eq!(
        act(&mut a, now, Action::PublishBurst),
        Some(Command::Publish { count: 10, batch: 2, weights: vec![] })
    );
    assert_eq!(act(&mut a, now, Action::BurstUp), None);
    assert_eq!(
        act(&mut a, now, Action::PublishBurst),
        Some(Command::Publish { count: 12, batch: 3, weights: vec![] })
    );
    assert_eq!(act(&mut a, now, Action::ToggleStream), Some(Command::Stream { per_second: Some(5) }));
    assert_eq!(act(&mut a, now, Action::RateUp), Some(Command::Stream { per_second: Some(10) }));
    assert_eq!(act(&mut a, now, Action::ToggleStream), Some(Command::Stream { per_second: None }));
    assert_eq!(act(&mut a, now, Action::RateUp), None, "rate changes while stopped are only remembered");
    assert_eq!(
        act(&mut a, now, Action::ToggleMode),
        Some(Command::SetDispatch(Dispatch { mode: Mode::Fair, prefetch: 1 }))
    );
    assert_eq!(
        act(&mut a, now, Action::PrefetchUp),
        Some(Command::SetDispatch(Dispatch { mode: Mode::Fair, prefetch: 2 }))
    );
    assert_eq!(act(&mut a, now, Action::Quit), Some(Command::Quit));
    assert!(a.quitting);
}

#[test]
fn prefetch_changes_in_round_robin_wait_for_the_switch() {
    let (mut a, now) = app(&[0], Mode::RoundRobin);
    assert_eq!(act(&mut a, now, Action::PrefetchUp), None);
    assert_eq!(
        act(&mut a, now, Action::ToggleMode),
        Some(Command::SetDispatch(Dispatch { mode: Mode::Fair, prefetch: 2 }))
    );
}

#[test]
fn mode_switch_shows_switching_until_applied() {
    let (mut a, now) = app(&[0, 0], Mode::RoundRobin);
    ev(&mut a, now, Event::ConsumerReady { consumer: 0 });
    ev(&mut a, now, Event::ConsumerReady { consumer: 1 });
    act(&mut a, now, Action::ToggleMode);
    assert!(a.consumers.iter().all(|c| c.status == ConsumerStatus::Switching));
    assert_eq!(a.applied.mode, Mode::RoundRobin);
    let requested = a.dispatch;
    ev(&mut a, now, Event::DispatchApplied(requested));
    assert!(a.consumers.iter().all(|c| c.status == ConsumerStatus::Consuming));
    assert_eq!(a.applied.mode, Mode::Fair);
}

#[test]
fn selection_wraps_and_targets_delay_and_kill() {
    let (mut a, now) = app(&[1000, 2000, 3000], Mode::Fair);
    act(&mut a, now, Action::SelectPrev);
    assert_eq!(a.selected, 2);
    act(&mut a, now, Action::SelectNext);
    assert_eq!(a.selected, 0);
    act(&mut a, now, Action::SelectVisible(1));
    assert_eq!(a.selected, 1);
    assert_eq!(
        act(&mut a, now, Action::DelayUp),
        Some(Command::SetDelay { consumer: 1, delay: Duration::from_millis(3000) })
    );
    assert_eq!(act(&mut a, now, Action::KillConsumer), Some(Command::KillConsumer { consumer: 1 }));
    assert_eq!(a.consumers[1].status, ConsumerStatus::Crashed);
    assert_eq!(act(&mut a, now, Action::KillConsumer), None, "a crashed consumer cannot be killed again");
    assert_eq!(act(&mut a, now, Action::DelayUp), None);
}

#[test]
fn add_and_remove_consumers() {
    let (mut a, now) = app(&[500], Mode::Fair);
    assert_eq!(
        act(&mut a, now, Action::AddConsumer),
        Some(Command::AddConsumer { consumer: 1, delay: Duration::from_millis(500), priority: 0 })
    );
    assert_eq!(a.selected, 1);
    assert_eq!(a.consumers[1].name(), "C2");
    assert_eq!(act(&mut a, now, Action::RemoveConsumer), Some(Command::RemoveConsumer { consumer: 1 }));
    assert_eq!(a.consumers[1].status, ConsumerStatus::Leaving);
    ev(&mut a, now, Event::ConsumerGone { consumer: 1, killed: false });
    assert!(!a.consumers[1].visible());
    assert_eq!(a.selected, 0, "selection moves off a removed consumer");
    assert_eq!(a.visible_consumers().count(), 1);
}

#[test]
fn removing_the_selected_consumer_selects_the_next_one_not_the_last() {
    let (mut a, now) = app(&[500, 500, 500], Mode::Fair);
    assert_eq!(a.selected, 0);
    act(&mut a, now, Action::RemoveConsumer);
    ev(&mut a, now, Event::ConsumerGone { consumer: 0, killed: false });
    assert_eq!(a.selected, 1, "C2 takes C1's place");
    act(&mut a, now, Action::SelectNext);
    act(&mut a, now, Action::RemoveConsumer);
    ev(&mut a, now, Event::ConsumerGone { consumer: 2, killed: false });
    assert_eq!(a.selected, 1, "the last one gone: the one before it");
}

#[test]
fn help_overlay_swallows_the_next_key() {
    let (mut a, now) = app(&[0], Mode::Fair);
    act(&mut a, now, Action::ToggleHelp);
    assert!(a.show_help);
    assert_eq!(act(&mut a, now, Action::PublishOne), None);
    assert!(!a.show_help);
    act(&mut a, now, Action::ToggleHelp);
    assert_eq!(act(&mut a, now, Action::Quit), None, "Esc closes the help, it does not quit");
    assert!(!a.show_help && !a.quitting);
}

#[test]
fn shares_trails_and_history_follow_processing() {
    let (mut a, now) = app(&[0, 0, 0], Mode::RoundRobin);
    for id in 1..=7 {
        run_task(&mut a, now, id, ((id - 1) % 3) as usize, false);
    }
    assert_eq!(a.total_processed(), 7);
    assert_eq!(a.consumers[0].history.as_deref(), Some(&[1, 4, 7][..]));
    assert_eq!(a.consumers[0].trail.iter().copied().collect::<Vec<_>>(), vec![1, 4, 7]);
    assert_eq!(a.consumers[0].acked, 0, "auto-ack: nothing to ack");
    let t = a.ledger.totals();
    assert_eq!((t.published, t.done), (7, 7));
    assert!(a.settled());
}

#[test]
fn auto_ack_backlog_is_shown_per_consumer() {
    let (mut a, now) = app(&[0, 10_000], Mode::RoundRobin);
    for id in 1..=6 {
        ev(&mut a, now, Event::Published { id, batch: None });
        ev(&mut a, now, Event::Delivered { consumer: 1, id, manual_ack: false, redelivered: false });
    }
    ev(&mut a, now, Event::Started { consumer: 1, id: 1, work: Duration::from_secs(1) });
    assert_eq!(a.ledger.held_by(1).backlog, 5);
    assert_eq!(a.ledger.totals().backlog, 5);
    assert_eq!(a.ledger.broker_unacked(), 0);
    assert_eq!(a.consumers[1].working.map(|w| w.id), Some(1));
}

#[test]
fn a_killed_manual_ack_consumer_has_its_tasks_redelivered() {
    let (mut a, now) = app(&[0, 0], Mode::Fair);
    ev(&mut a, now, Event::Published { id: 1, batch: None });
    ev(&mut a, now, Event::Delivered { consumer: 0, id: 1, manual_ack: true, redelivered: false });
    ev(&mut a, now, Event::Started { consumer: 0, id: 1, work: Duration::from_secs(1) });
    ev(&mut a, now, Event::Requeued { consumer: 0, ids: vec![1] });
    assert_eq!(a.consumers[0].working, None);
    assert_eq!(a.ledger.place(1), Some(Place::AtBroker));
    ev(&mut a, now, Event::Delivered { consumer: 1, id: 1, manual_ack: true, redelivered: true });
    ev(&mut a, now, Event::Started { consumer: 1, id: 1, work: Duration::from_secs(1) });
    ev(&mut a, now, Event::Processed { consumer: 1, id: 1, acked: true });
    let t = a.ledger.totals();
    assert_eq!((t.done, t.redelivered, t.lost), (1, 1, 0));
    assert_eq!(a.consumers[1].redelivered, 1);
}

#[test]
fn a_killed_auto_ack_consumer_loses_its_backlog() {
    let (mut a, now) = app(&[0], Mode::RoundRobin);
    for id in 1..=3 {
        ev(&mut a, now, Event::Published { id, batch: Some(1) });
        ev(&mut a, now, Event::Delivered { consumer: 0, id, manual_ack: false, redelivered: false });
    }
    ev(&mut a, now, Event::Started { consumer: 0, id: 1, work: Duration::from_secs(1) });
    ev(&mut a, now, Event::Lost { consumer: 0, ids: vec![1, 2, 3], reason: LossReason::KilledUnderAutoAck });
    ev(&mut a, now, Event::ConsumerGone { consumer: 0, killed: true });
    let t = a.ledger.totals();
    assert_eq!((t.lost, t.published, t.accounted()), (3, 3, 3));
    assert_eq!(a.consumers[0].lost, 3);
    assert_eq!(a.ledger.held_by(0), Held::default());
    assert_eq!(a.consumers[0].status, ConsumerStatus::Crashed);
    assert!(a.consumers[0].visible(), "a crashed pane stays on screen");
}

#[test]
fn a_batch_makespan_runs_from_publish_to_last_processed() {
    let (mut a, t0) = app(&[0, 0], Mode::RoundRobin);
    let Command::Publish { batch, .. } = a.start_batch(2, t0) else { panic!() };
    for id in 1..=2 {
        ev(&mut a, t0, Event::Published { id, batch: Some(batch) });
        ev(&mut a, t0, Event::Delivered { consumer: 0, id, manual_ack: false, redelivered: false });
        ev(&mut a, t0, Event::Started { consumer: 0, id, work: Duration::from_secs(1) });
    }
    ev(&mut a, t0 + Duration::from_millis(100), Event::Processed { consumer: 0, id: 1, acked: false });
    assert_eq!(a.batches[0].makespan(), None);
    ev(&mut a, t0 + Duration::from_millis(250), Event::Processed { consumer: 0, id: 2, acked: false });
    assert_eq!(a.batches[0].makespan(), Some(Duration::from_millis(250)));
    assert_eq!(a.batches[0].dispatch.mode, Mode::RoundRobin);
}

#[test]
fn meters_roll_once_a_second_and_idle_ticks_do_not_redraw() {
    let (mut a, t0) = app(&[0], Mode::RoundRobin);
    a.dirty = false;
    a.update(Msg::Tick, t0 + Duration::from_millis(500));
    assert!(!a.dirty, "nothing happened: no redraw");
    ev(&mut a, t0, Event::QueueStats { ready: 0, consumers: 1 });
    assert!(a.dirty, "first queue stats are news");
    a.dirty = false;
    ev(&mut a, t0, Event::QueueStats { ready: 0, consumers: 1 });
    assert!(!a.dirty, "the same queue stats again are not");
    run_task(&mut a, t0, 1, 0, false);
    a.update(Msg::Tick, t0 + Duration::from_millis(1001));
    assert_eq!(a.producer.published.rate(), 1);
    assert_eq!(a.consumers[0].processed.rate(), 1);
    a.update(Msg::Tick, t0 + Duration::from_millis(3001));
    assert_eq!(a.producer.published.rate(), 0);
    assert_eq!(a.producer.published.history().len(), 3, "missed seconds are caught up");
}

#[test]
fn errors_show_as_a_banner_that_expires() {
    let (mut a, t0) = app(&[0], Mode::RoundRobin);
    ev(&mut a, t0, Event::Error("boom".into()));
    assert_eq!(a.banner.as_ref().map(|b| b.text.as_str()), Some("boom"));
    a.update(Msg::Tick, t0 + Duration::from_secs(16));
    assert!(a.banner.is_none());
}

#[test]
fn tasks_gone_from_the_broker_after_an_incident_are_lost_not_awaited_forever() {
    let (mut a, t0) = app(&[0], Mode::RoundRobin);
    a.start_batch(3, t0);
    for id in 1..=3 {
        ev(&mut a, t0, Event::Published { id, batch: Some(1) });
    }
    // Without an incident an empty queue report means nothing (deliveries may be on the wire).
    ev(&mut a, t0, Event::QueueStats { ready: 0, consumers: 1 });
    ev(&mut a, t0 + Duration::from_secs(5), Event::QueueStats { ready: 0, consumers: 1 });
    assert_eq!(a.ledger.totals().lost, 0);

    ev(&mut a, t0, Event::ConnectionLost { reason: "broker restarted".into() });
    // Published after the incident: not suspect.
    ev(&mut a, t0, Event::Published { id: 4, batch: None });
    let info =
        BrokerInfo { product: "p".into(), version: "v".into(), host: "h".into(), port: 1, vhost: "/".into() };
    ev(&mut a, t0, Event::Connected(info));
    let t1 = t0 + Duration::from_secs(10);
    ev(&mut a, t1, Event::QueueStats { ready: 0, consumers: 1 });
    ev(&mut a, t1 + Duration::from_secs(1), Event::QueueStats { ready: 0, consumers: 1 });
    assert_eq!(a.ledger.totals().lost, 0, "not yet: the broker must look empty for 2s");
    ev(&mut a, t1 + Duration::from_millis(2500), Event::QueueStats { ready: 0, consumers: 1 });
    assert_eq!(a.ledger.totals().lost, 3);
    assert_eq!(a.ledger.lost_by_reason().get(&LossReason::Vanished), Some(&3));
    assert_eq!(a.ledger.place(4), Some(Place::AtBroker), "published after the incident");
    assert!(a.batches[0].finished.is_some());
    assert_eq!(a.batches[0].lost, 3, "the batch counts what vanished");
}

#[test]
fn a_batch_counts_its_lost_tasks_whatever_lost_them() {
    let (mut a, t0) = app(&[0, 0], Mode::RoundRobin);
    let Command::Publish { batch, .. } = a.start_batch(4, t0) else { panic!() };
    // The producer announces a batch's ids before it sends them; #4 is then refused.
    for id in 1..=4 {
        ev(&mut a, t0, Event::Published { id, batch: Some(batch) });
    }
    for id in 1..=3 {
        ev(&mut a, t0, Event::Delivered { consumer: 0, id, manual_ack: false, redelivered: false });
    }
    ev(&mut a, t0, Event::PublishFailed { id: 4, reason: "refused".into() });
    ev(&mut a, t0, Event::Lost { consumer: 0, ids: vec![2, 3], reason: LossReason::KilledUnderAutoAck });
    assert_eq!((a.batches[0].lost, a.batches[0].outstanding), (3, 1));
    ev(&mut a, t0, Event::Started { consumer: 0, id: 1, work: Duration::ZERO });
    ev(&mut a, t0, Event::Processed { consumer: 0, id: 1, acked: false });
    let b = &a.batches[0];
    assert_eq!((b.lost, b.done_by.iter().sum::<u32>(), b.finished.is_some()), (3, 1, true));
}

#[test]
fn the_timeline_records_what_ran_when_and_how_it_ended() {
    let (mut a, t0) = app(&[1000, 1000], Mode::Fair);
    let t = |ms: u64| t0 + Duration::from_millis(ms);
    let started = |a: &mut App, now, consumer, id| {
        ev(a, now, Event::Published { id, batch: None });
        ev(a, now, Event::Delivered { consumer, id, manual_ack: true, redelivered: false });
        ev(a, now, Event::Started { consumer, id, work: Duration::from_secs(1) });
    };
    started(&mut a, t(0), 0, 1);
    assert_eq!(
        a.consumers[0].spans.back(),
        Some(&RunSpan { id: 1, start: t(0), end: None, outcome: SpanEnd::Running })
    );
    ev(&mut a, t(1000), Event::Processed { consumer: 0, id: 1, acked: true });
    started(&mut a, t(1000), 0, 2);
    ev(&mut a, t(1500), Event::Requeued { consumer: 0, ids: vec![2] });
    started(&mut a, t(1500), 1, 3);
    ev(&mut a, t(1700), Event::Lost { consumer: 1, ids: vec![3], reason: LossReason::KilledUnderAutoAck });
    // A consumer that goes while running a task: gone with it unless it is back at the broker.
    ev(&mut a, t(1800), Event::Delivered { consumer: 1, id: 2, manual_ack: true, redelivered: true });
    ev(&mut a, t(1800), Event::Started { consumer: 1, id: 2, work: Duration::from_secs(1) });
    ev(&mut a, t(1900), Event::ConsumerGone { consumer: 1, killed: true });

    let ends = |c: &Consumer| c.spans.iter().map(|s| (s.id, s.end, s.outcome)).collect::<Vec<_>>();
    assert_eq!(
        ends(&a.consumers[0]),
        vec![(1, Some(t(1000)), SpanEnd::Done), (2, Some(t(1500)), SpanEnd::Requeued)]
    );
    assert_eq!(
        ends(&a.consumers[1]),
        vec![(3, Some(t(1700)), SpanEnd::Lost), (2, Some(t(1900)), SpanEnd::Lost)]
    );
    assert_eq!(a.consumers[1].spans[0].start, t(1500));

    // Bounded: the oldest runs are dropped.
    let (mut b, t0) = app(&[0], Mode::RoundRobin);
    for id in 1..=(SPANS_KEPT as TaskId + 10) {
        run_task(&mut b, t0, id, 0, false);
    }
    let spans = &b.consumers[0].spans;
    assert_eq!(spans.len(), SPANS_KEPT);
    assert_eq!((spans[0].id, spans.back().map(|s| s.id)), (11, Some(SPANS_KEPT as TaskId + 10)));
    assert!(spans.iter().all(|s| s.outcome == SpanEnd::Done && s.end.is_some()));
}

#[test]
fn t_toggles_the_timeline_and_redraws() {
    let (mut a, now) = app(&[0], Mode::Fair);
    a.dirty = false;
    assert_eq!(act(&mut a, now, Action::ToggleTimeline), None);
    assert!(a.show_timeline && a.dirty);
    act(&mut a, now, Action::ToggleTimeline);
    assert!(!a.show_timeline);
}
