//! The view: one render function per screen region, each borrowing `&App` and nothing else.
//!
//! ```text
//! ┌ warren ───────────────────────────────────────────────────────────────────────┐
//! │ RabbitMQ 3.10.8 at 127.0.0.1:5672//  queue warren.tasks                       │ header
//! │ mode round-robin (auto-ack)   ready 0  unacked 0   per second: 5 published …  │ (3 lines
//! └───────────────────────────────────────────────────────────────────────────────┘  if narrow)
//!  ⚠ banner: the last error, while there is one
//! ┌ Producer ──────────────────────┐┌ C1 · 1s ━━━━━━━━━━━━━┓┌ C2 · 10s ─────────────┐
//! │ keys, burst, stream, totals    │┃ working #13 ━━━━──── ┃│ idle                  │
//! └────────────────────────────────┘┃ received / processed ┃│ ...                   │
//! ┌ Distribution ──────────────────┐┃ acked / redelivered  ┃│                       │
//! │ C1 ██████████       67%  20    │┃ backlog / share      ┃│                       │
//! │ C2 ██▌              17%   5    │┃ ▁▂▅▇█▇ processed/s   ┃│                       │
//! │ recent batches and makespans   │┃ done … 4 7 10 13     ┃│                       │
//! └────────────────────────────────┘┗━━━━━━━━━━━━━━━━━━━━━━┛└───────────────────────┘
//! ┌ Where every task is ───────────┐┌ C4 · 1s ─────────────┐  panes: >= 38x10 each, as
//! │ at broker / unacked / backlog  ││                      │  many as fit, paged around
//! │ in process / done / lost       ││                      │  the selection, with a
//! │ published N = sum of the above ││                      │  "+N hidden" line if needed
//! └────────────────────────────────┘└──────────────────────┘
//!  space task  b burst  r stream  m mode  ...                              ? help  q quit
//! ```
//!
//! With `t` the timeline (one lane per consumer, see `timeline.rs`) takes the consumer panes' place.
//!
//! The help overlay is drawn last, over everything. Below [`layout::MIN_WIDTH`] x
//! [`layout::MIN_HEIGHT`] only a "terminal too small" message is drawn.

mod banner;
mod consumers;
mod distribution;
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
    if let Some(rect) = screen.banner {
        banner::render(frame, rect, app);
    }
    producer::render(frame, screen.producer, app);
    distribution::render(frame, screen.distribution, app);
    ledger::render(frame, screen.ledger, app);
    if app.show_timeline {
        timeline::render(frame, screen.grid, app, now);
    } else {
        consumers::render(frame, screen.grid, app, now);
    }
    footer::render(frame, screen.footer);
    if app.show_help {
        help::render(frame, area);
    }
}

/// Where the `--keys` overlay may draw on a screen of size `area`: the footer's hints (see
/// [`footer::hints`]); the last row when the terminal is too small for the screen.
pub fn keys_area(area: Rect, app: &App) -> Rect {
    if !layout::fits(area) {
        return Rect { y: area.bottom().saturating_sub(1), height: area.height.min(1), ..area };
    }
    footer::hints(screen(area, app).footer)
}

/// The position among visible consumers (`app.visible_consumers()`) of the pane (or timeline
/// lane) under the cell at (`column`, `row`) of a screen of size `area`, as last drawn by
/// [`render`]; for mouse clicks.
pub fn consumer_at(area: Rect, app: &App, column: u16, row: u16) -> Option<usize> {
    if !layout::fits(area) {
        return None;
    }
    let grid = screen(area, app).grid;
    if app.show_timeline {
        return timeline::lane_at(grid, app, column, row);
    }
    layout::grid(grid, app.visible_consumers().count(), selected_position(app)).at(column, row)
}

/// The one place both `render` and `consumer_at` get the regions from.
fn screen(area: Rect, app: &App) -> layout::Screen {
    layout::screen(area, app.banner.is_some() || app.lesson.is_some(), ledger::lines_needed(app))
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
