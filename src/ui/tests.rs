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

#[test]
fn never_panics_at_any_size() {
    let (mut app, now) = demo();
    let mut sizes: Vec<(u16, u16)> =
        (0..=200).step_by(7).flat_map(|w| (0..=60).step_by(3).map(move |h| (w, h))).collect();
    sizes.extend([(1, 1), (79, 23), (80, 24), (80, 23), (79, 24), (81, 25), (38, 10), (200, 60)]);
    for variant in 0..3 {
        match variant {
            1 => app.update(Msg::Action(Action::ToggleHelp), now).map(drop).unwrap_or(()),
            2 => ev(&mut app, now, Event::Error("a long error message ".repeat(20))),
            _ => {}
        }
        for &(w, h) in &sizes {
            draw(&app, now, w, h);
        }
    }
}
