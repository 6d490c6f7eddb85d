//! The view: one render function per screen region, each borrowing `&App` and nothing else.
//!
//! ```text
//!  warren  RabbitMQ 3.10.8 at 127.0.0.1:5672 vhost /  queue warren.tasks          header
//!  mode round-robin (auto-ack)  unacked 0     5/s published  3/s delivered …
//!  ⚠ banner: the last error, while there is one (wrapped, up to two lines)       notices
//!  ▶ Lesson 2/5  caption, wrapped, up to three lines
//!  Producer  published 57 · confirmed 57 · b burst of 10 · r stream off (5/s)    flow view
//!  Queue     ready 40: #18 #19 #20 … +37                                         (flow/)
//! ▸C1 1s    ▶#7 ━━━━━━━━━━━━━────────                          ✓ 4 · 40%      ┌ Producer ┐
//!           backlog 1: #10                                                     side panels
//!           done #1 #4                                                         from 140
//!  …one lane per consumer…                                                      columns
//!  batch #1 10 tasks rr · 6 left · saw 4/0/0 · theory 4/3/3, 45.0s           └ Ledger ┘
//!  where: ready 0 + waiting 4 + in hand 2 + done 4 + lost 0 = published 10 ✓
//!  space task  b burst  m mode  …                                     ? help  q quit   footer
//! ```
//!
//! `t` puts the timeline in the lanes' place, `z` the selected consumer's full pane, and `d`
//! swaps the flow for the details (producer, ledger, distribution with the recent batches) at
//! any width. The help overlay is drawn last, over everything. Below [`layout::MIN_WIDTH`] x
//! [`layout::MIN_HEIGHT`] only a "terminal too small" message is drawn.

mod banner;
mod distribution;
mod flow;
mod footer;
mod format;
mod header;
mod help;
pub mod layout;
mod ledger;
mod pane;
mod producer;
mod theme;

pub use theme::{Theme, apply as apply_theme};
mod timeline;
mod too_small;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;

use crate::app::App;

/// Draw the whole screen.
pub fn render(frame: &mut Frame, app: &App, now: Instant) {
    let area = frame.area();
    if !layout::fits(area) {
        too_small::render(frame, area);
        return;
    }
    let screen = screen(area, app);
    header::render(frame, screen.header, app);
    if let Some(rect) = screen.notices {
        banner::render(frame, rect, app);
    }
    if app.show_details {
        details(frame, screen.body, app);
    } else {
        flow::render(frame, screen.body, app, now);
    }
    if let Some(side) = screen.side {
        panels(frame, side, app);
    }
    let embedded = app.broker.as_ref().is_some_and(|b| b.product == crate::broker::PRODUCT);
    footer::render(frame, screen.footer, embedded);
    if app.show_help {
        help::render(frame, area);
    }
}

/// The producer, distribution and ledger panels, stacked.
fn panels(frame: &mut Frame, area: Rect, app: &App) {
    let [p, d, l] = layout::panels(area, ledger::lines_needed(app));
    producer::render(frame, p, app);
    distribution::render(frame, d, app);
    ledger::render(frame, l, app);
}

/// `d`: the panels at full size: the producer and the ledger on the left, the distribution with
/// its recent batches on the right (the selected consumer's full pane is `z`).
fn details(frame: &mut Frame, area: Rect, app: &App) {
    use ratatui::layout::{Constraint, Layout};
    let [left, right] =
        area.layout(&Layout::horizontal([Constraint::Length(layout::LEFT_WIDTH), Constraint::Fill(1)]));
    let [p, l, _] = left.layout(&Layout::vertical([
        Constraint::Length(layout::PRODUCER_HEIGHT),
        Constraint::Length(ledger::lines_needed(app) + 2),
        Constraint::Fill(1),
    ]));
    producer::render(frame, p, app);
    ledger::render(frame, l, app);
    distribution::render(frame, right, app);
}

/// Where the `--keys` overlay may draw on a screen of size `area`: the footer's hints (see
/// [`footer::hints`]); the last row when the terminal is too small for the screen.
pub fn keys_area(area: Rect, app: &App) -> Rect {
    if !layout::fits(area) {
        return Rect { y: area.bottom().saturating_sub(1), height: area.height.min(1), ..area };
    }
    footer::hints(screen(area, app).footer)
}

/// The position among visible consumers (`app.visible_consumers()`) of the lane (or timeline
/// lane) under the cell at (`column`, `row`) of a screen of size `area`, as last drawn by
/// [`render`]; for mouse clicks.
pub fn consumer_at(area: Rect, app: &App, column: u16, row: u16) -> Option<usize> {
    if !layout::fits(area) || app.show_details {
        return None;
    }
    let flow = flow::layout(screen(area, app).body, app);
    if app.show_timeline {
        let rect = Rect { height: flow.lane_area.height + flow.summary.height, ..flow.lane_area };
        return timeline::lane_at(rect, app, column, row);
    }
    if app.zoom {
        return None;
    }
    flow.at(column, row)
}

/// The one place both `render` and `consumer_at` get the regions from.
fn screen(area: Rect, app: &App) -> layout::Screen {
    layout::screen(area, header::HEIGHT, banner::height(app, area.width), true)
}

/// The selected consumer's position among the visible ones (0 if none is selected).
fn selected_position(app: &App) -> usize {
    app.consumers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.visible())
        .position(|(i, _)| i == app.selected)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
