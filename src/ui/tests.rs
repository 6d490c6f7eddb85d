//! The whole screen rendered into a `TestBackend`: snapshots at two sizes, and the properties
//! that must hold at any size. Every instant is an offset from one base, so nothing in the
//! output depends on the wall clock.

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::*;

mod terminal;
use crate::app::{
    Action, AppOptions, BrokerInfo, ConsumerId, Dispatch, Event, LossReason, Mode, Msg, TaskId,
};

fn at(t0: Instant, secs: f64) -> Instant {
    t0 + Duration::from_secs_f64(secs)
}

fn new_app(delays_ms: &[u64], t0: Instant) -> App {
    let opts = AppOptions {
        queue: "warren.tasks".into(),
        delays: delays_ms.iter().map(|&d| Duration::from_millis(d)).collect(),
        dispatch: Dispatch { mode: Mode::RoundRobin, prefetch: 1 },
        burst: 12,
        rate: 5,
        keep_history: false,
    };
    App::new(opts, t0)
}

fn ev(app: &mut App, now: Instant, e: Event) {
    app.update(Msg::Event(e), now);
}

fn connect(app: &mut App, now: Instant) {
    let info = BrokerInfo {
        product: "RabbitMQ".into(),
        version: "3.10.8".into(),
        host: "127.0.0.1".into(),
        port: 5672,
        vhost: "/".into(),
    };
    ev(app, now, Event::Connected(info));
    for consumer in 0..app.consumers.len() {
        ev(app, now, Event::ConsumerReady { consumer });
    }
}

/// Publish `ids` as one batch and deliver them round-robin under auto-ack, starting at `ring`.
fn burst(app: &mut App, now: Instant, ids: std::ops::RangeInclusive<TaskId>, ring: ConsumerId) {
    let count = ids.clone().count() as u32;
    let Some(crate::app::Command::Publish { batch, .. }) =
        app.update(Msg::Action(if count == 1 { Action::PublishOne } else { Action::PublishBurst }), now)
    else {
        panic!("publishing gives a command");
    };
    let n = app.consumers.len();
    for (i, id) in ids.enumerate() {
        ev(app, now, Event::Published { id, batch: Some(batch) });
        ev(app, now, Event::Confirmed { id });
        let consumer = (ring + i) % n;
        ev(app, now, Event::Delivered { consumer, id, manual_ack: false, redelivered: false });
    }
}

fn start(app: &mut App, now: Instant, consumer: ConsumerId, id: TaskId) {
    let work = app.consumers[consumer].delay;
    ev(app, now, Event::Started { consumer, id, work });
}

fn done(app: &mut App, now: Instant, consumer: ConsumerId, id: TaskId) {
    ev(app, now, Event::Processed { consumer, id, acked: false });
}

fn tick(app: &mut App, now: Instant) {
    app.update(Msg::Tick, now);
}

/// Four auto-ack consumers (1s, 10s, 15s, 2s): one task, then a burst of 12 dealt round-robin;
/// the fast C1 runs dry while C2 and C3 pile up a backlog, and C4 is killed holding two tasks.
/// Returns the app and the instant to draw it at.
fn demo() -> (App, Instant) {
    let t0 = Instant::now();
    let mut app = new_app(&[1000, 10_000, 15_000, 2000], t0);
    connect(&mut app, t0);
    burst(&mut app, t0, 1..=1, 0);
    start(&mut app, t0, 0, 1);

    let t1 = at(t0, 1.0);
    done(&mut app, t1, 0, 1);
    tick(&mut app, t1);
    burst(&mut app, t1, 2..=13, 1);
    for (c, id) in [(1, 2), (2, 3), (3, 4), (0, 5)] {
        start(&mut app, t1, c, id);
    }
    ev(&mut app, t1, Event::QueueStats { ready: 0, consumers: 4 });

    let t2 = at(t0, 2.0);
    done(&mut app, t2, 0, 5);
    start(&mut app, t2, 0, 9);
    tick(&mut app, t2);

    let t3 = at(t0, 3.0);
    done(&mut app, t3, 0, 9);
    start(&mut app, t3, 0, 13);
    done(&mut app, t3, 3, 4);
    start(&mut app, t3, 3, 8);
    tick(&mut app, t3);

    // Select C4 and kill it: under auto-ack the task in hand and its backlog are gone.
    let t35 = at(t0, 3.5);
    for _ in 0..3 {
        app.update(Msg::Action(Action::SelectNext), t35);
    }
    app.update(Msg::Action(Action::KillConsumer), t35);
    let lost = Event::Lost { consumer: 3, ids: vec![8, 12], reason: LossReason::KilledUnderAutoAck };
    ev(&mut app, t35, lost);
    ev(&mut app, t35, Event::ConsumerGone { consumer: 3, killed: true });
    app.update(Msg::Action(Action::SelectNext), t35);

    let t4 = at(t0, 4.0);
    done(&mut app, t4, 0, 13);
    tick(&mut app, t4);
    (app, at(t0, 4.5))
}

fn draw(app: &App, now: Instant, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| render(frame, app, now)).expect("draw");
    terminal
}

/// The buffer's text, one line per row.
fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| (area.left()..area.right()).map(|x| buffer[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where `needle` starts on screen (column counted in cells).
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buffer.area;
    (area.top()..area.bottom()).find_map(|y| {
        let cells: Vec<&str> = (area.left()..area.right()).map(|x| buffer[(x, y)].symbol()).collect();
        let first = needle.chars().next()?.to_string();
        (0..cells.len()).find_map(|x| {
            let rest: String = cells[x..].concat();
            (cells[x] == first && rest.starts_with(needle)).then_some((x as u16, y))
        })
    })
}

#[test]
fn demo_state_adds_up() {
    // The snapshots below only mean something if the state is the one described.
    let (app, _) = demo();
    let t = app.ledger.totals();
    assert_eq!((t.published, t.done, t.lost, t.backlog, t.in_process), (13, 5, 2, 4, 2));
    assert_eq!(t.accounted(), t.published);
    assert_eq!(app.selected, 0);
}

#[test]
fn snapshot_160x45() {
    let (app, now) = demo();
    insta::assert_snapshot!("demo_160x45", draw(&app, now, 160, 45).backend());
}

#[test]
fn snapshot_100x30() {
    let (app, now) = demo();
    insta::assert_snapshot!("demo_100x30", draw(&app, now, 100, 30).backend());
}

#[test]
fn snapshot_help_overlay() {
    let (mut app, now) = demo();
    app.update(Msg::Action(Action::ToggleHelp), now);
    assert!(app.show_help);
    let terminal = draw(&app, now, 100, 30);
    let screen = text(terminal.backend().buffer());
    for (key, what) in crate::keymap::HELP {
        assert!(screen.contains(what), "help lacks {key}: {what}");
    }
    insta::assert_snapshot!("help_100x30", terminal.backend());
}

#[test]
fn snapshot_too_small() {
    let (app, now) = demo();
    let terminal = draw(&app, now, 60, 20);
    let screen = text(terminal.backend().buffer());
    assert!(screen.contains("Terminal too small: 60x20."), "{screen}");
    assert!(screen.contains("80x24"), "{screen}");
    assert!(!screen.contains("Producer"));
    insta::assert_snapshot!("too_small_60x20", terminal.backend());
}

#[test]
fn twelve_consumers_fit_at_160x45() {
    let t0 = Instant::now();
    let mut app = new_app(&[1000; 12], t0);
    connect(&mut app, t0);
    let terminal = draw(&app, t0, 160, 45);
    let screen = text(terminal.backend().buffer());
    for n in 1..=12 {
        assert!(screen.contains(&format!(" C{n} · 1s ")), "C{n} has no pane:\n{screen}");
    }
    assert!(!screen.contains("hidden"), "{screen}");
}

#[test]
fn too_many_consumers_say_how_many_are_hidden() {
    let t0 = Instant::now();
    let mut app = new_app(&[1000; 15], t0);
    connect(&mut app, t0);
    let screen = text(draw(&app, t0, 160, 45).backend().buffer());
    assert!(screen.contains("+6 hidden (Tab to scroll)"), "{screen}");
    assert!(screen.contains(" C9 · 1s ") && !screen.contains(" C10 · 1s "), "{screen}");
    // Selecting the last one pages to it.
    app.update(Msg::Action(Action::SelectPrev), t0);
    let screen = text(draw(&app, t0, 160, 45).backend().buffer());
    assert!(screen.contains(" C15 · 1s ") && !screen.contains(" C6 · 1s "), "{screen}");
}

#[test]
fn clicks_hit_the_pane_that_was_drawn_there() {
    let (app, now) = demo();
    for (width, height) in [(160, 45), (100, 30), (80, 24), (200, 60)] {
        let terminal = draw(&app, now, width, height);
        let buffer = terminal.backend().buffer();
        let area = Rect::new(0, 0, width, height);
        let mut seen = 0;
        for (pos, c) in app.visible_consumers().enumerate() {
            let title = format!(" {} · ", c.name());
            let Some((x, y)) = find(buffer, &title) else { continue };
            seen += 1;
            // The title sits on the top border; the pane's inside is just below it.
            assert_eq!(consumer_at(area, &app, x, y), Some(pos), "{width}x{height} {title}");
            assert_eq!(consumer_at(area, &app, x + 2, y + 3), Some(pos), "{width}x{height} {title}");
        }
        assert!(seen >= 1, "{width}x{height}: only {seen} panes");
        assert_eq!(consumer_at(area, &app, 0, 0), None, "the header is no pane");
        assert_eq!(consumer_at(area, &app, 5, height / 2), None, "the left column is no pane");
    }
    assert_eq!(consumer_at(Rect::new(0, 0, 60, 20), &app, 50, 10), None, "too small: nothing");
}

#[test]
fn colours_carry_meaning() {
    let (app, now) = demo();
    let terminal = draw(&app, now, 160, 45);
    let buffer = terminal.backend().buffer();
    let fg = |needle: &str| {
        let (x, y) = find(buffer, needle).unwrap_or_else(|| panic!("{needle} not on screen"));
        buffer[(x, y)].fg
    };
    assert_eq!(fg("CRASHED"), Color::Red);
    assert_eq!(fg("2: consumer killed under auto-ack"), Color::Red);
    assert_eq!(fg("✓"), Color::Green);
    // The selected pane (C1) has a cyan border.
    let (x, y) = find(buffer, " C1 · 1s ").expect("C1");
    assert_eq!(buffer[(x - 1, y)].fg, Color::Cyan);
}

#[test]
fn connection_trouble_is_on_screen() {
    let t0 = Instant::now();
    let mut app = new_app(&[1000, 2000], t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("connecting…"), "{screen}");
    assert!(screen.contains("ready ?"), "{screen}");
    assert!(screen.contains("starting…"), "{screen}");

    connect(&mut app, t0);
    ev(&mut app, t0, Event::ConnectionLost { reason: "connection reset".into() });
    ev(&mut app, t0, Event::ConsumerReconnecting { consumer: 1, reason: "broker closed".into() });
    app.update(Msg::Action(Action::ToggleMode), t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    for needle in [
        "disconnected — reconnecting",
        "connection lost: connection reset; reconnecting",
        "reconnecting: broker closed",
        "switching…",
        "fair (manual ack, prefetch 1)",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    assert!(!screen.contains("guest"), "never credentials");
}

#[test]
fn no_consumers_says_how_to_add_one() {
    let t0 = Instant::now();
    let app = new_app(&[], t0);
    let screen = text(draw(&app, t0, 100, 30).backend().buffer());
    assert!(screen.contains("no consumers: press a to add one"), "{screen}");
}

/// A sweep of terminal sizes, with the edges around the minimum and the grid's pane size.
fn sizes() -> Vec<(u16, u16)> {
    let mut sizes: Vec<(u16, u16)> =
        (0..=200).step_by(7).flat_map(|w| (0..=60).step_by(3).map(move |h| (w, h))).collect();
    sizes.extend([(1, 1), (79, 23), (80, 24), (80, 23), (79, 24), (81, 25), (38, 10), (200, 60)]);
    sizes
}

/// Variant 0: as is; 1: with the help overlay; 2: also with a long error banner.
fn overlay_variant(app: &mut App, variant: u8, now: Instant) {
    match variant {
        1 => app.update(Msg::Action(Action::ToggleHelp), now).map(drop).unwrap_or(()),
        2 => ev(app, now, Event::Error("a long error message ".repeat(20))),
        _ => {}
    }
}

#[test]
fn never_panics_at_any_size() {
    let (mut app, now) = demo();
    for variant in 0..3 {
        overlay_variant(&mut app, variant, now);
        for (w, h) in sizes() {
            draw(&app, now, w, h);
        }
    }
}

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
fn timeline_demo() -> (App, Instant) {
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
        " Timeline (t: back to panes) ",
        " since batch #2 was published ",
        "#1   fair/1     6 tasks  took 4.0s          C1 3  C2 2  C3 1",
        "#2   rr        12 tasks  running, 1 left    C1 5  C2 2  C3 2",
        "6.8s",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    assert!(!screen.contains("received"), "no consumer panes under the timeline");
    // Spans are coloured by task, and requeued / lost ones end in a red marker.
    let (x, y) = find(buffer, "#13").expect("#13 drawn");
    assert_eq!(buffer[(x, y)].bg, timeline::task_colour(13));
    assert_ne!(timeline::task_colour(13), timeline::task_colour(16));
    for marker in ["↺", "✕"] {
        let (x, y) = find(buffer, marker).unwrap_or_else(|| panic!("{marker} not drawn"));
        assert_eq!(buffer[(x, y)].bg, Color::Red, "{marker}");
    }
    // A click on a lane selects that consumer.
    let (x, y) = find(buffer, "#14").expect("#14 drawn");
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
    assert!(screen.contains("+21 more (Tab to scroll)"), "{screen}");
    assert!(screen.contains("C19 1s") && !screen.contains("C20 1s"), "{screen}");
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
