//! The timeline view (`t`).

use super::*;

/// Timed events, applied in time order; at equal times what ends comes before what is delivered,
/// and that before what starts (then in list order).
fn play(app: &mut App, t0: Instant, mut events: Vec<(f64, Event)>) {
    let rank = |e: &Event| match e {
        Event::Processed { .. }
        | Event::Requeued { .. }
        | Event::Lost { .. }
        | Event::ConsumerGone { .. } => 0,
        Event::Started { .. } => 2,
        _ => 1,
    };
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(rank(&a.1).cmp(&rank(&b.1))));
    for (t, e) in events {
        ev(app, at(t0, t), e);
    }
}

/// Task `id` runs on `consumer` from `from` until `to` (processed there), or on past the end.
fn ran(consumer: ConsumerId, id: TaskId, from: f64, to: Option<f64>) -> Vec<(f64, Event)> {
    let work = Duration::from_secs_f64(to.unwrap_or(from + 1.0) - from);
    let mut events = vec![(from, Event::Started { consumer, id, work })];
    events.extend(to.map(|to| (to, Event::Processed { consumer, id, acked: false })));
    events
}

/// Publish `ids` as one batch at `t` and deliver them as `to` says (consumer per id).
fn dealt(
    app: &mut App,
    t: Instant,
    ids: std::ops::RangeInclusive<TaskId>,
    to: impl Fn(TaskId) -> ConsumerId,
) {
    let crate::app::Command::Publish { batch, .. } = app.start_batch(ids.clone().count() as u32, t) else {
        panic!("a batch is a publish");
    };
    let manual_ack = app.applied.mode == Mode::Fair;
    for id in ids {
        ev(app, t, Event::Published { id, batch: Some(batch) });
        ev(app, t, Event::Confirmed { id });
        let consumer = to(id);
        ev(app, t, Event::Delivered { consumer, id, manual_ack, redelivered: false });
    }
}

fn switch_to(app: &mut App, now: Instant, mode: Mode) {
    app.update(Msg::Action(Action::ToggleMode), now);
    ev(app, now, Event::DispatchApplied(Dispatch { mode, prefetch: 1 }));
    assert_eq!(app.applied.mode, mode);
}

/// C1 1s, C2 2s, C3 3s. Batch #1 (fair, prefetch 1) of six tasks packs onto whoever is free and
/// takes 4s. Then round-robin, and batch #2 of twelve (#7-#18) dealt in turn at t=10: C2 gives
/// #11 back (requeued) after a second and the broker hands it to C1, free by then; C3 is killed
/// 0.4s into #15, which is lost with #18 in its backlog. Drawn 6.8s in, C2 still on #17.
pub(super) fn timeline_demo() -> (App, Instant) {
    let t0 = Instant::now();
    let mut app = new_app(&[1000, 2000, 3000], t0);
    connect(&mut app, t0);
    switch_to(&mut app, t0, Mode::Fair);
    let deal = [(1, 0), (2, 1), (3, 2), (4, 0), (5, 0), (6, 1)];
    // Fair with prefetch 1: each task goes out when its consumer is free.
    let batch = crate::app::Command::Publish { count: 6, batch: 1, weights: vec![] };
    assert_eq!(app.start_batch(6, t0), batch);
    let mut events = Vec::new();
    for (id, from, to) in
        [(1, 0.0, 1.0), (2, 0.0, 2.0), (3, 0.0, 3.0), (4, 1.0, 2.0), (5, 2.0, 3.0), (6, 2.0, 4.0)]
    {
        let consumer = deal[id as usize - 1].1;
        events.push((0.0, Event::Published { id, batch: Some(1) }));
        events.push((from, Event::Delivered { consumer, id, manual_ack: true, redelivered: false }));
        events.extend(ran(consumer, id, from, Some(to)).into_iter().map(|(t, e)| match e {
            Event::Processed { consumer, id, .. } => (t, Event::Processed { consumer, id, acked: true }),
            e => (t, e),
        }));
    }
    play(&mut app, t0, events);
    assert_eq!(app.batches[0].makespan(), Some(Duration::from_secs(4)));

    let t10 = at(t0, 10.0);
    switch_to(&mut app, t10, Mode::RoundRobin);
    dealt(&mut app, t10, 7..=18, |id| ((id - 7) % 3) as ConsumerId);
    let mut events = Vec::new();
    for (c, id, from, to) in [
        (0, 7, 0.0, 1.0),
        (0, 10, 1.0, 2.0),
        (0, 13, 2.0, 3.0),
        (0, 16, 3.0, 4.0),
        (0, 11, 4.0, 5.0),
        (1, 8, 0.0, 2.0),
        (1, 14, 3.0, 5.0),
        (2, 9, 0.0, 3.0),
        (2, 12, 3.0, 6.0),
    ] {
        events.extend(ran(c, id, from, Some(to)));
    }
    events.extend(ran(1, 11, 2.0, None));
    events.push((3.0, Event::Requeued { consumer: 1, ids: vec![11] }));
    events.push((4.0, Event::Delivered { consumer: 0, id: 11, manual_ack: false, redelivered: true }));
    events.extend(ran(1, 17, 5.0, None));
    events.extend(ran(2, 15, 6.0, None));
    let lost = Event::Lost { consumer: 2, ids: vec![15, 18], reason: LossReason::KilledUnderAutoAck };
    events.push((6.4, lost));
    events.push((6.4, Event::ConsumerGone { consumer: 2, killed: true }));
    play(&mut app, t10, events);
    app.update(Msg::Action(Action::ToggleTimeline), t10);
    (app, at(t10, 6.8))
}

#[test]
fn timeline_demo_state_adds_up() {
    let (app, _) = timeline_demo();
    assert!(app.show_timeline);
    let t = app.ledger.totals();
    assert_eq!((t.published, t.done, t.lost, t.in_process, t.redelivered), (18, 15, 2, 1, 1));
    assert_eq!(t.accounted(), t.published);
    let lane = |c: usize| {
        app.consumers[c]
            .spans
            .iter()
            .map(|s| (s.id, s.outcome))
            .filter(|(id, _)| *id >= 7)
            .collect::<Vec<_>>()
    };
    use crate::app::SpanEnd::*;
    assert_eq!(lane(0), [(7, Done), (10, Done), (13, Done), (16, Done), (11, Done)]);
    assert_eq!(lane(1), [(8, Done), (11, Requeued), (14, Done), (17, Running)]);
    assert_eq!(lane(2), [(9, Done), (12, Done), (15, Lost)]);
    assert_eq!(app.batches[1].outstanding, 1);
}

#[test]
fn snapshot_timeline_160x45() {
    let (app, now) = timeline_demo();
    let terminal = draw(&app, now, 160, 45);
    let buffer = terminal.backend().buffer();
    let screen = text(buffer);
    for needle in [
        " Timeline (t: back to the flow) ",
        " since batch #2 was published ",
        "#1   fair/1     6 tasks  took 4.0s          C1 3  C2 2  C3 1",
        "#2   rr        12 tasks  running, 1 left    C1 5  C2 2  C3 2",
        "6.8s",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    assert!(!screen.contains("received"), "no consumer panes under the timeline");
    // Spans are coloured by task, and requeued / lost ones end in a red marker.
    // In the timeline, not in the side panels' list of the last ids published.
    let timeline = |needle: &str| {
        find_in(buffer, Rect::new(0, 0, 118, 45), needle).unwrap_or_else(|| panic!("{needle} not drawn"))
    };
    let (x, y) = timeline("#13");
    assert_eq!(buffer[(x, y)].bg, crate::ui::timeline::task_colour(13));
    assert_ne!(crate::ui::timeline::task_colour(13), crate::ui::timeline::task_colour(16));
    for marker in ["↺", "✕"] {
        let (x, y) = find(buffer, marker).unwrap_or_else(|| panic!("{marker} not drawn"));
        assert_eq!(buffer[(x, y)].bg, Color::Red, "{marker}");
    }
    // A click on a lane selects that consumer.
    let (x, y) = timeline("#14");
    assert_eq!(consumer_at(Rect::new(0, 0, 160, 45), &app, x, y), Some(1));
    insta::assert_snapshot!("timeline_160x45", terminal.backend());
}

#[test]
fn timeline_says_how_many_lanes_do_not_fit() {
    let t0 = Instant::now();
    let mut app = new_app(&[1000; 40], t0);
    connect(&mut app, t0);
    app.update(Msg::Action(Action::ToggleTimeline), t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("+20 more (Tab to scroll)"), "{screen}");
    assert!(screen.contains("C20 1.0s") && !screen.contains("C21 1.0s"), "{screen}");
    assert!(screen.contains(" the last 60s "), "{screen}");
}

#[test]
fn timeline_never_panics_at_any_size() {
    let (mut app, now) = timeline_demo();
    let (mut crowded, _) = timeline_demo();
    for _ in 0..30 {
        crowded.add_consumer(Duration::from_millis(10));
    }
    for variant in 0..3 {
        overlay_variant(&mut app, variant, now);
        for (w, h) in sizes() {
            draw(&app, now, w, h);
            draw(&crowded, now, w, h);
            // Long after, and before anything happened.
            draw(&app, now + Duration::from_secs(3600), w, h);
        }
    }
}

#[test]
fn timeline_holds_still_once_all_is_done() {
    let (mut app, now) = timeline_demo();
    ev(&mut app, now + Duration::from_millis(200), Event::Processed { consumer: 1, id: 17, acked: false });
    assert!(app.batches[1].finished.is_some());
    // Nothing runs and the batch is done: the window ends where the batch did, not at now.
    let later = now + Duration::from_secs(30);
    let screen = text(draw(&app, later, 160, 45).backend().buffer());
    assert!(screen.contains(" since batch #2 was published "), "{screen}");
    assert!(screen.contains("7.0s │") && screen.contains("took 7.0s"), "{screen}");
    // Without a batch: the last minute up to the last task.
    app.batches.clear();
    let screen = text(draw(&app, later, 160, 45).backend().buffer());
    assert!(screen.contains(" 60s up to the last task "), "{screen}");
}
