//! The timeline, in place of the consumer panes (key `t`): one lane per consumer, each task drawn
//! where it ran and coloured by task, so round-robin's strict rotation and fair dispatch's packing
//! show at a glance; recent batches below, to compare the two side by side.
//!
//! ```text
//! ┌ Timeline (t: back to the flow) ─────────────────────────────── since batch #2 was published ┐
//! │ C1 1s    ▏#7     ▏#10    ▏#13    ▏#16    ▏#11                                           │
//! │          ▏       ▏       ▏       ▏       ▏                                              │
//! │                                                                                         │
//! │ C2 2s    ▏#8             ▏#11   ↺▏#14            ▏#17                                   │
//! │          ▏               ▏       ▏               ▏                                      │
//! │                                                                                         │
//! │ C3 3s    ▏#9                     ▏#12                    ▏#15 ✕                         │
//! │ crashed  ▏                       ▏                       ▏                              │
//! │          ┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬────┐ │
//! │          0s      1s      2s      3s      4s      5s      6s      7s      8s         9.5s │
//! │                                                                                         │
//! │ #2   rr        12 tasks  running, 1 left    C1 5  C2 2  C3 2                            │
//! │ #1   fair/1     6 tasks  took 4.0s          C1 3  C2 2  C3 1                            │
//! └─────────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Spans are coloured by task id (no red: a red `↺` cell ends a requeued span, a red `✕` a lost
//! one); a running span reaches the right edge. Lanes take two rows each when there is room.
//!
//! The window runs from the latest batch's publish (at most 60 s back) to now; once nothing runs
//! and the batch is done it ends at the last thing that happened, so the picture holds still.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Widget};

use super::{format, layout, selected_position, theme};
use crate::app::{App, Batch, BatchId, Consumer, ConsumerStatus, RunSpan, SpanEnd};

/// The lane labels (`C1 1s`) left of the lanes.
pub const GUTTER: u16 = 8;
/// The longest the window looks back.
pub const WINDOW_MAX: Duration = Duration::from_secs(60);
/// The shortest window: a batch that just started does not fill the lanes with its first tasks.
const WINDOW_MIN: Duration = Duration::from_secs(1);
/// Ticks on the axis are at least this many cells apart.
const TICK_SPACING: f64 = 10.0;
/// Task colours, cycled by id; no red, which marks requeued and lost tasks.
/// Bright colours: they read as text on a dark projector screen (the flow view writes ids in
/// them) and as a background under black text (the timeline's spans).
const PALETTE: [Color; 6] = [
    Color::LightBlue,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];
/// The cell that ends a requeued or a lost span.
const MARKER: Style = Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD);

/// Where the parts of the timeline go inside its border: pure, so the mouse hit-test agrees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lanes {
    /// One rect per shown lane (label gutter included), top to bottom.
    pub lanes: Vec<Rect>,
    /// Position (among visible consumers) of the consumer in `lanes[0]`.
    pub first: usize,
    /// Visible consumers without a lane, and the line that says so.
    pub hidden: usize,
    pub more: Option<Rect>,
    /// The ruler and its labels (up to two rows).
    pub axis: Rect,
    /// The recent batches' lines (empty when they do not fit).
    pub batches: Rect,
}

impl Lanes {
    /// Position (among visible consumers) of the lane under this cell.
    pub fn at(&self, column: u16, row: u16) -> Option<usize> {
        let p = Position::new(column, row);
        self.lanes.iter().position(|r| r.contains(p)).map(|i| self.first + i)
    }
}

/// Lay out `count` lanes, the axis and `batch_lines` batch lines in `area` (inside the border).
/// Lanes come first: two rows each with a blank row between when they fit, then one row each
/// with blank rows, then packed; when not even that fits, the page that holds `selected`.
pub fn lanes(area: Rect, count: usize, selected: usize, batch_lines: u16) -> Lanes {
    let axis_rows = 2.min(area.height.saturating_sub(1));
    let room = area.height - axis_rows;
    let n = u16::try_from(count).unwrap_or(u16::MAX);
    let extras =
        if batch_lines > 0 && room >= n.saturating_add(batch_lines + 1) { batch_lines + 1 } else { 0 };
    let room = room - extras;
    let (rows, gap) = if n.saturating_mul(3) <= room + 1 {
        (2, 1)
    } else if n.saturating_mul(2) <= room + 1 {
        (1, 1)
    } else {
        (1, 0)
    };
    let (shown, first) = if n <= room {
        (count, 0)
    } else {
        // Keep the last row for "+N more" (when there is a row at all).
        let capacity = usize::from(room.saturating_sub(1));
        let first = (selected.min(count - 1).checked_div(capacity).unwrap_or(0) * capacity)
            .min(count.saturating_sub(capacity));
        (capacity, first)
    };
    let pitch = rows + gap;
    let lanes: Vec<Rect> =
        (0..shown as u16).map(|i| Rect::new(area.x, area.y + i * pitch, area.width, rows)).collect();
    let mut y = lanes.last().map_or(area.y, |r| r.bottom());
    let hidden = count - shown;
    let more = (hidden > 0 && room > 0).then(|| {
        y += 1;
        Rect::new(area.x, y - 1, area.width, 1)
    });
    let axis = Rect::new(area.x, y, area.width, axis_rows);
    let batches = if extras > 0 {
        Rect::new(area.x, axis.bottom() + 1, area.width, extras - 1)
    } else {
        Rect::new(area.x, axis.bottom(), area.width, 0)
    };
    Lanes { lanes, first, hidden, more, axis, batches }
}

/// The border around the timeline, which both the renderer and the hit-test go through.
fn block(title_right: String, width: u16) -> Block<'static> {
    let title = Line::styled(" Timeline (t: back to the flow) ", theme::VALUE);
    // The window's description only where it fits beside the title, never over it.
    let fits = title.width() + title_right.chars().count() + 4 <= usize::from(width);
    let block = Block::bordered().title(title).padding(Padding::horizontal(1));
    if fits { block.title_top(Line::styled(title_right, theme::LABEL).right_aligned()) } else { block }
}

/// Lay out the timeline in `area` (the consumer grid's place) for this app.
fn lanes_in(area: Rect, app: &App) -> Lanes {
    let inner = block(String::new(), area.width).inner(area);
    lanes(inner, app.visible_consumers().count(), selected_position(app), batch_lines(app))
}

fn batch_lines(app: &App) -> u16 {
    app.recent_batches().count() as u16
}

/// Position (among visible consumers) of the lane under the cell, for mouse clicks.
pub fn lane_at(area: Rect, app: &App, column: u16, row: u16) -> Option<usize> {
    lanes_in(area, app).at(column, row)
}

/// What the lanes span: `start` at their left edge, `start + len` at their right edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    /// The batch whose publish starts the window, if one does.
    pub batch: Option<BatchId>,
}

impl Window {
    /// From the latest batch's publish, or `WINDOW_MAX` back if that is longer ago (or there is no
    /// batch), to now; to the last thing that happened once all is quiet.
    pub fn of(app: &App, now: Instant) -> Self {
        let running = app.consumers.iter().any(|c| c.spans.back().is_some_and(|s| s.end.is_none()));
        let batch = app.batches.last();
        let end = if running || batch.is_some_and(|b| b.finished.is_none()) {
            now
        } else {
            let last_span = app.consumers.iter().filter_map(|c| c.spans.back()?.end).max();
            let last_batch = batch.map(|b| b.finished.unwrap_or(b.started).max(b.started));
            last_span.max(last_batch).map_or(now, |t| t.min(now))
        };
        let limit = end.checked_sub(WINDOW_MAX).unwrap_or(end);
        match batch {
            Some(b) if b.started >= limit && b.started <= end => {
                Window { start: b.started, end, batch: Some(b.id) }
            }
            _ => Window { start: limit, end, batch: None },
        }
    }

    /// What the lane width stands for.
    pub fn len(&self) -> Duration {
        self.end.saturating_duration_since(self.start).max(WINDOW_MIN)
    }

    /// Where `t` falls on lanes `width` cells wide, in cells (fractional, unclamped).
    fn x(&self, t: Instant, width: u16) -> f64 {
        let since = if t >= self.start {
            t.duration_since(self.start).as_secs_f64()
        } else {
            -self.start.duration_since(t).as_secs_f64()
        };
        since / self.len().as_secs_f64() * f64::from(width)
    }

    /// The cells `[from, to)` a span covers on lanes `width` wide: at least one, if it is in view.
    pub fn cells(&self, span: &RunSpan, width: u16) -> Option<(u16, u16)> {
        let end = span.end.unwrap_or(self.end);
        if width == 0 || end < self.start || span.start > self.end {
            return None;
        }
        let clamp = |x: f64| x.round().clamp(0.0, f64::from(width)) as u16;
        let from = clamp(self.x(span.start, width)).min(width - 1);
        let to = clamp(self.x(end, width)).max(from + 1);
        Some((from, to))
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) {
    let window = Window::of(app, now);
    let title_right = match window.batch {
        Some(id) => format!(" since batch #{id} was published "),
        None if window.end == now => format!(" the last {}s ", WINDOW_MAX.as_secs()),
        None => format!(" {}s up to the last task ", WINDOW_MAX.as_secs()),
    };
    let block = block(title_right, area.width);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let visible: Vec<&Consumer> = app.visible_consumers().collect();
    if visible.is_empty() {
        let text = Line::styled("no consumers: press a to add one", theme::WARN).centered();
        frame.render_widget(Paragraph::new(text), layout::centered(inner, inner.width, 1));
        return;
    }
    let lanes = lanes(inner, visible.len(), selected_position(app), batch_lines(app));
    let buf = frame.buffer_mut();
    for (rect, c) in lanes.lanes.iter().zip(&visible[lanes.first..]) {
        render_lane(buf, *rect, c, app.selected == c.id, &window);
    }
    if let Some(more) = lanes.more {
        let text = format!("+{} more (Tab to scroll)", lanes.hidden);
        Line::styled(text, theme::WARN).render(more, buf);
    }
    render_axis(buf, lanes.axis, &window);
    let lines: Vec<Line> = app.recent_batches().map(batch_line).collect();
    Paragraph::new(lines).render(lanes.batches, buf);
}

/// `C1 1s  ▏#1   ▏#4 ↺ ▏#7 ...`: the label, then every span in view, later ones on top.
fn render_lane(buf: &mut Buffer, area: Rect, c: &Consumer, selected: bool, window: &Window) {
    let name_style = match c.status {
        ConsumerStatus::Crashed => theme::ALARM,
        _ if selected => theme::SELECTED,
        _ => theme::VALUE,
    };
    let label = Line::from(vec![
        Span::styled(c.name(), name_style),
        Span::styled(format!(" {}", format::duration(c.delay)), theme::LABEL),
    ]);
    let gutter = Rect { width: GUTTER.min(area.width), height: 1, ..area };
    label.render(gutter, buf);
    if area.height > 1 {
        let note = match c.status {
            ConsumerStatus::Crashed => Some(("crashed", theme::ALARM)),
            ConsumerStatus::Leaving => Some(("leaving", theme::WARN)),
            _ => None,
        };
        if let Some((text, style)) = note {
            Line::styled(text, style).render(Rect { y: area.y + 1, ..gutter }, buf);
        }
    }
    let width = area.width.saturating_sub(GUTTER + 1);
    let x0 = area.x + GUTTER + 1;
    for span in &c.spans {
        let Some((from, to)) = window.cells(span, width) else { continue };
        let colour = task_colour(span.id);
        let fill = Style::new().bg(colour).fg(Color::Black);
        let text_style = fill.fg(text_on(colour)).add_modifier(Modifier::BOLD);
        let marker = match span.outcome {
            SpanEnd::Requeued => Some("↺"),
            SpanEnd::Lost => Some("✕"),
            SpanEnd::Running | SpanEnd::Done => None,
        };
        for y in area.top()..area.bottom() {
            for x in from..to {
                // A thin dark edge starts every span, so neighbours of one colour stay apart.
                let symbol = if x == from { "▏" } else { " " };
                set(buf, x0 + x, y, symbol, fill);
            }
            if marker.is_some() {
                set(buf, x0 + to - 1, y, " ", MARKER);
            }
        }
        if let Some(m) = marker {
            set(buf, x0 + to - 1, area.y, m, MARKER);
        }
        let room = usize::from(to - from - 1 - u16::from(marker.is_some() && to - from > 1));
        let id = [format!("#{}", span.id), span.id.to_string()].into_iter().find(|s| s.len() <= room);
        if let Some(id) = id {
            buf.set_string(x0 + from + 1, area.y, id, text_style);
        }
    }
}

fn set(buf: &mut Buffer, x: u16, y: u16, symbol: &str, style: Style) {
    if let Some(cell) = buf.cell_mut(Position::new(x, y)) {
        cell.set_symbol(symbol).set_style(style);
    }
}

/// The colour task `id` is drawn in.
pub fn task_colour(id: u64) -> Color {
    PALETTE[(id.saturating_sub(1) % PALETTE.len() as u64) as usize]
}

/// Text that reads on `bg`.
fn text_on(bg: Color) -> Color {
    match bg {
        Color::Blue | Color::Magenta | Color::Red => Color::White,
        _ => Color::Black,
    }
}

/// `┬─────────┬───…──┐` and under it `0s        1s   …  8.4s`: seconds since the window's start.
fn render_axis(buf: &mut Buffer, area: Rect, window: &Window) {
    if area.height == 0 || area.width <= GUTTER + 1 {
        return;
    }
    let width = area.width - GUTTER - 1;
    let x0 = area.x + GUTTER + 1;
    let len = window.len();
    let step = tick_step(len, width);
    let end_label = format::duration(len);
    let end_at = width.saturating_sub(end_label.chars().count() as u16);
    let ruler = Style::new().fg(Color::Gray);
    for x in 0..width {
        set(buf, x0 + x, area.y, if x + 1 == width { "┐" } else { "─" }, ruler);
    }
    let labels = area.height > 1;
    let mut free = 0;
    for k in 0u32.. {
        let at = step * k;
        if at > len {
            break;
        }
        let x = (at.as_secs_f64() / len.as_secs_f64() * f64::from(width)).round() as u16;
        if x + 1 >= width {
            break;
        }
        set(buf, x0 + x, area.y, "┬", ruler);
        let label = tick_label(at);
        let end = x + label.len() as u16;
        if labels && x >= free && end < end_at {
            buf.set_string(x0 + x, area.y + 1, &label, theme::LABEL);
            free = end + 1;
        }
    }
    if labels {
        buf.set_string(x0 + end_at, area.y + 1, end_label, theme::VALUE);
    }
}

/// The roundest step that keeps ticks [`TICK_SPACING`] cells apart.
fn tick_step(len: Duration, width: u16) -> Duration {
    const STEPS_MS: [u64; 11] = [100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 20_000, 30_000, 60_000];
    let min = len.as_secs_f64() * TICK_SPACING / f64::from(width.max(1));
    let ms = STEPS_MS.into_iter().find(|&ms| ms as f64 / 1000.0 >= min).unwrap_or(60_000);
    Duration::from_millis(ms)
}

/// `0s`, `2s`, `0.5s`.
fn tick_label(at: Duration) -> String {
    let ms = at.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{:.1}s", at.as_secs_f64()) }
}

/// `#2  fair/1    9 tasks  took 3.2s   C1 5  C2 3  C3 1`
fn batch_line(b: &Batch) -> Line<'static> {
    let mode = b.dispatch.short_label();
    let outcome = match b.makespan() {
        Some(d) => {
            // Green only when every task of the batch was processed.
            let style = if b.lost == 0 { theme::DONE } else { theme::ALARM };
            Span::styled(format!("{:<17}", format!("took {}", format::duration(d))), style)
        }
        None => Span::styled(format!("{:<17}", format!("running, {} left", b.outstanding)), theme::WARN),
    };
    let mut spans = vec![
        Span::styled(format!("#{:<3} ", b.id), theme::LABEL),
        Span::styled(format!("{mode:<7}"), theme::SELECTED),
        Span::styled(format!("{:>5}", b.size), theme::VALUE),
        Span::styled(if b.size == 1 { " task   " } else { " tasks  " }, theme::LABEL),
        outcome,
    ];
    // Who did how many: the consumers there at publish, and any other that took some.
    let there = |id: usize| b.consumers.iter().any(|(c, _)| *c == id);
    let others = (0..b.done_by.len()).filter(|&id| b.done_by[id] > 0 && !there(id));
    let ids: Vec<usize> = b.consumers.iter().map(|(id, _)| *id).chain(others).collect();
    for id in ids {
        spans.push(Span::styled(format!("  C{}", id + 1), theme::LABEL));
        spans.push(Span::styled(format!(" {}", b.done_by.get(id).copied().unwrap_or(0)), theme::VALUE));
    }
    if b.lost > 0 {
        spans.push(Span::styled(format!("  lost {}", b.lost), theme::ALARM));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_get_roomier_as_height_allows() {
        let area = |h| Rect::new(0, 0, 100, h);
        // (height, lanes, batch lines) -> (rows per lane, pitch, hidden, batches shown)
        for (h, n, b, rows, pitch, hidden, batches) in [
            (20, 3, 2, 2, 3, 0, 2),
            (12, 3, 2, 1, 2, 0, 2),
            (9, 3, 2, 1, 1, 0, 2),
            (7, 3, 2, 1, 2, 0, 0),
            (6, 4, 0, 1, 1, 0, 0),
            (5, 6, 0, 1, 1, 4, 0),
        ] {
            let l = lanes(area(h), n, 0, b);
            assert_eq!(l.lanes[0].height, rows, "h={h} n={n}");
            if l.lanes.len() > 1 {
                assert_eq!(l.lanes[1].y - l.lanes[0].y, pitch, "h={h} n={n}");
            }
            assert_eq!((l.hidden, l.batches.height), (hidden, batches), "h={h} n={n}");
            assert_eq!(l.more.is_some(), hidden > 0);
            assert!(l.axis.bottom() <= h && (l.batches.height == 0 || l.batches.bottom() <= h), "{l:?}");
            assert!(l.lanes.last().is_none_or(|r| r.bottom() <= l.axis.y));
        }
        for (w, h, n) in [(0, 0, 3), (1, 1, 1), (10, 2, 5), (100, 3, 50)] {
            let l = lanes(Rect::new(0, 0, w, h), n, n - 1, 4);
            assert_eq!(l.lanes.len() + l.hidden, n, "{w}x{h}");
        }
    }

    #[test]
    fn spans_cover_at_least_a_cell_and_meet_without_overlap() {
        let t0 = Instant::now();
        let t = |ms: u64| t0 + Duration::from_millis(ms);
        let w = Window { start: t(1000), end: t(11_000), batch: None };
        let span = |from, to: Option<u64>| RunSpan {
            id: 1,
            start: t(from),
            end: to.map(t),
            outcome: if to.is_some() { SpanEnd::Done } else { SpanEnd::Running },
        };
        for (from, to, want) in [
            (1000, Some(2000), Some((0, 10))),
            (2000, Some(3500), Some((10, 25))),
            (3000, Some(3001), Some((20, 21))),
            (0, Some(1500), Some((0, 5))),
            (0, Some(500), None),
            (10_000, None, Some((90, 100))),
            (11_000, None, Some((99, 100))),
        ] {
            assert_eq!(w.cells(&span(from, to), 100), want, "{from}..{to:?}");
        }
    }

    #[test]
    fn ticks_are_round_and_spaced() {
        let s = |secs: f64, w| tick_step(Duration::from_secs_f64(secs), w).as_millis();
        assert_eq!([s(12.3, 100), s(1.0, 100), s(60.0, 110), s(5.0, 30)], [2000, 100, 10_000, 2000]);
        assert_eq!([tick_label(Duration::ZERO), tick_label(Duration::from_millis(1500))], ["0s", "1.5s"]);
    }
}
