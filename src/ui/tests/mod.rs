//! The whole screen rendered into a `TestBackend`: snapshots, what must be on screen at the sizes
//! a projector gives, and the properties that must hold at any size. Every instant is an offset from one base, so nothing in the
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

mod exits;
mod flow;
mod roles;
mod terminal;
mod timeline;

pub(super) fn at(t0: Instant, secs: f64) -> Instant {
    t0 + Duration::from_secs_f64(secs)
}

pub(super) fn new_app(delays_ms: &[u64], t0: Instant) -> App {
    let opts = AppOptions {
        queue: "warren.tasks".into(),
        burst: 12,
        keep_history: false,
        ..crate::app::testing::options(delays_ms, Mode::RoundRobin)
    };
    App::new(opts, t0)
}

pub(super) fn ev(app: &mut App, now: Instant, e: Event) {
    app.update(Msg::Event(e), now);
}

pub(super) fn connect(app: &mut App, now: Instant) {
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
pub(super) fn burst(app: &mut App, now: Instant, ids: std::ops::RangeInclusive<TaskId>, ring: ConsumerId) {
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

pub(super) fn start(app: &mut App, now: Instant, consumer: ConsumerId, id: TaskId) {
    let work = app.consumers[consumer].delay;
    ev(app, now, Event::Started { consumer, id, work });
}

pub(super) fn done(app: &mut App, now: Instant, consumer: ConsumerId, id: TaskId) {
    ev(app, now, Event::Processed { consumer, id, acked: false });
}

pub(super) fn tick(app: &mut App, now: Instant) {
    app.update(Msg::Tick, now);
}

/// Four auto-ack consumers (1s, 10s, 15s, 2s): one task, then a burst of 12 dealt round-robin;
/// the fast C1 runs dry while C2 and C3 pile up a backlog, and C4 is killed holding two tasks.
/// Returns the app and the instant to draw it at.
pub(super) fn demo() -> (App, Instant) {
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

pub(super) fn draw(app: &App, now: Instant, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| render(frame, app, now)).expect("draw");
    terminal
}

/// The buffer's text, one line per row.
pub(super) fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| (area.left()..area.right()).map(|x| buffer[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where `needle` starts on screen (column counted in cells).
pub(super) fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    find_in(buffer, buffer.area, needle)
}

/// Where `needle` starts within `area` of the screen.
pub(super) fn find_in(buffer: &Buffer, area: Rect, needle: &str) -> Option<(u16, u16)> {
    (area.top()..area.bottom()).find_map(|y| {
        let cells: Vec<&str> = (area.left()..area.right()).map(|x| buffer[(x, y)].symbol()).collect();
        let first = needle.chars().next()?.to_string();
        (0..cells.len()).find_map(|x| {
            let rest: String = cells[x..].concat();
            (cells[x] == first && rest.starts_with(needle)).then_some((area.x + x as u16, y))
        })
    })
}

/// A sweep of terminal sizes, with the edges around the minimum and the grid's pane size.
pub(super) fn sizes() -> Vec<(u16, u16)> {
    let mut sizes: Vec<(u16, u16)> =
        (0..=200).step_by(7).flat_map(|w| (0..=60).step_by(3).map(move |h| (w, h))).collect();
    sizes.extend([(1, 1), (79, 23), (80, 24), (80, 23), (79, 24), (81, 25), (38, 10), (200, 60)]);
    sizes
}

/// Variant 0: as is; 1: with the help overlay; 2: also with a long error banner.
pub(super) fn overlay_variant(app: &mut App, variant: u8, now: Instant) {
    match variant {
        1 => app.update(Msg::Action(Action::ToggleHelp), now).map(drop).unwrap_or(()),
        2 => ev(app, now, Event::Error("a long error message ".repeat(20))),
        _ => {}
    }
}
