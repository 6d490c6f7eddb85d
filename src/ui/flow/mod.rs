//! The flow view, the main screen: the path of every task, top to bottom.
//!
//! ```text
//!  Producer  published 57 · confirmed 57 · b burst of 10 · r stream off (5/s)
//!  Queue     ready 40: #18 #19 #20 #21 #22 #23 #24 #25 #26 #27 #28 #29 #30 #31 +26
//! ▸C1 1s    ▶#7 ━━━━━━━━━━━━━────────                                 ✓ 4 · 40%
//!           backlog 1: #10
//!           done #1 #4
//!  C2 10s   ▶#2 ━━━━━━━──────────────                                 ✓ 0 · 0%
//!           backlog 2: #5 #8
//!           done —
//!  batch #1 10 tasks rr · 6 left · saw 4/0/0 · theory 4/3/3, 45.0s
//!  where: ready 0 + waiting 4 + in hand 2 + done 4 + lost 0 = published 10 ✓
//! ```
//!
//! Lanes take one to five lines each, whatever fits; crashed consumers take one. When even one
//! line each does not fit, the lanes are paged around the selection and a line names the hidden
//! ones (`C7–C12 hidden, Tab scrolls`). The lane area can show the timeline (`t`) or the selected
//! consumer's full pane (`z`) instead.

mod dead;
mod ids;
mod lane;
mod summary;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{pane, selected_position, theme, timeline};
use crate::app::{App, Consumer, ConsumerStatus};

/// A lane never takes more lines than this: more room goes unused rather than to empty lines.
const LANE_MAX: u16 = 5;
/// The queue's ids, past its first line, start under the first id.
const QUEUE_INDENT: usize = 11;

/// Where the parts of the flow go: pure, so the renderer and the mouse hit-test agree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    pub producer: Rect,
    pub queue: Rect,
    /// The whole lane area (the timeline or a zoomed pane takes it instead of the lanes).
    pub lane_area: Rect,
    /// One rect per shown lane, in order.
    pub lanes: Vec<Rect>,
    /// Position (among visible consumers) of the consumer in `lanes[0]`.
    pub first: usize,
    /// The line naming the hidden consumers, when some are.
    pub hint: Option<Rect>,
    pub summary: Rect,
    /// How many recent batches the summary lists.
    pub batches: usize,
}

impl Flow {
    /// Position (among visible consumers) of the lane under this cell.
    pub fn at(&self, column: u16, row: u16) -> Option<usize> {
        let p = Position::new(column, row);
        self.lanes.iter().position(|r| r.contains(p)).map(|i| self.first + i)
    }
}

/// Lay out the flow in `area` for this app.
pub fn layout(area: Rect, app: &App) -> Flow {
    let visible: Vec<&Consumer> = app.visible_consumers().collect();
    let n = visible.len() as u16;
    let producer = Rect { height: area.height.min(1), ..area };
    // The queue gets a second (and third) line only when the lanes keep two lines each.
    let fixed = 1 + summary::height(app, 1);
    let spare = area.height.saturating_sub(fixed + n.max(1) * 2);
    let queue_rows = queue_rows_needed(app, area.width).min(1 + spare.min(2)).max(1);
    let queue = Rect::new(area.x, area.y + 1, area.width, queue_rows.min(area.height.saturating_sub(1)));
    // More batch lines (up to three, to compare runs) from the rows the lanes leave over: each
    // lane wants three lines (in hand, waiting, done), and takes what it gets in whole lines.
    let crashed = visible.iter().filter(|c| c.status == ConsumerStatus::Crashed).count() as u16;
    let live = n - crashed;
    let for_lanes = area.height.saturating_sub(1 + queue.height + summary::height(app, 1));
    let per_lane = for_lanes.saturating_sub(crashed).checked_div(live).unwrap_or(0).clamp(1, 3);
    let leftover = for_lanes.saturating_sub(live * per_lane + crashed);
    let batches = 1 + usize::from(leftover).min(summary::BATCHES_MAX - 1);
    let summary_h = summary::height(app, batches).min(area.height.saturating_sub(1 + queue.height));
    let summary = Rect::new(area.x, area.bottom() - summary_h, area.width, summary_h);
    let lane_area = Rect::new(area.x, queue.bottom(), area.width, summary.y.saturating_sub(queue.bottom()));
    let (lanes, first, hint) = lanes(lane_area, &visible, selected_position(app));
    Flow { producer, queue, lane_area, lanes, first, hint, summary, batches }
}

/// Lanes for `visible` in `area`, keeping the `selected` position on screen.
fn lanes(area: Rect, visible: &[&Consumer], selected: usize) -> (Vec<Rect>, usize, Option<Rect>) {
    let n = visible.len();
    if n == 0 || area.height == 0 {
        return (Vec::new(), 0, None);
    }
    let rows = usize::from(area.height);
    if n > rows {
        // Not all fit even at one line each: a page around the selection, and the hint line.
        let capacity = rows - 1;
        let first = (selected.min(n - 1).checked_div(capacity).unwrap_or(0) * capacity)
            .min(n.saturating_sub(capacity));
        let rects = (0..capacity).map(|i| Rect::new(area.x, area.y + i as u16, area.width, 1)).collect();
        let hint = Rect::new(area.x, area.bottom() - 1, area.width, 1);
        return (rects, first, Some(hint));
    }
    // Crashed consumers take one line; the others share what is left, up to LANE_MAX each.
    let crashed = visible.iter().filter(|c| c.status == ConsumerStatus::Crashed).count();
    let live = n - crashed;
    let height = (rows - crashed).checked_div(live).unwrap_or(1).clamp(1, usize::from(LANE_MAX));
    let mut y = area.y;
    let rects = visible
        .iter()
        .map(|c| {
            let h = if c.status == ConsumerStatus::Crashed { 1 } else { height as u16 };
            let r = Rect::new(area.x, y, area.width, h);
            y += h;
            r
        })
        .collect();
    (rects, 0, None)
}

/// How many lines the queue's ids would like (1 to 3).
fn queue_rows_needed(app: &App, width: u16) -> u16 {
    let (first, total) = queue_label(app);
    let w = app.ledger.whereabouts();
    ids::lines(first, w.ready_counted().take(400), total, (usize::from(width), QUEUE_INDENT), 3).len().max(1)
        as u16
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) {
    let flow = layout(area, app);
    let buf = frame.buffer_mut();
    producer_line(app).render(flow.producer, buf);
    let (first, total) = queue_label(app);
    let w = app.ledger.whereabouts();
    let room = (usize::from(flow.queue.width), QUEUE_INDENT);
    let queue = ids::lines(first, w.ready_counted().take(2000), total, room, usize::from(flow.queue.height));
    Paragraph::new(queue).render(flow.queue, buf);
    if app.show_timeline {
        let rect = Rect { height: flow.lane_area.height + flow.summary.height, ..flow.lane_area };
        // While paused the axis stands still with everything else.
        timeline::render(frame, rect, app, app.clock(now));
        return;
    }
    Paragraph::new(summary::lines(app, flow.batches, usize::from(flow.summary.width)))
        .render(flow.summary, buf);
    if app.zoom
        && let Some(c) = app.selected_consumer()
    {
        let ctx = pane::Context {
            selected: app.selected,
            total_processed: app.total_processed(),
            spark_max: c.processed.history().iter().copied().max().unwrap_or(0).max(1),
        };
        pane::render(frame, flow.lane_area, c, app.ledger.held_by(c.id), &ctx, now);
        return;
    }
    let visible: Vec<&Consumer> = app.visible_consumers().collect();
    if visible.is_empty() {
        let text = Line::styled("no consumers: press a to add one", theme::WARN).centered();
        Paragraph::new(text).render(flow.lane_area, buf);
        return;
    }
    let name_width = lane::name_width(&visible);
    let total_processed = app.total_processed();
    for (rect, c) in flow.lanes.iter().zip(&visible[flow.first..]) {
        let lane = lane::Lane {
            consumer: c,
            held: app.ledger.held_by(c.id),
            whereabouts: app.ledger.whereabouts(),
            selected: app.selected == c.id,
            paused: app.paused(),
            total_processed,
            name_width,
            now,
        };
        lane.render(*rect, buf);
    }
    if let Some(hint) = flow.hint {
        let shown = flow.first..flow.first + flow.lanes.len();
        Line::styled(hidden_hint(&visible, shown), theme::WARN).centered().render(hint, buf);
    }
}

/// `C7–C12 hidden, Tab scrolls` (or two ranges, before and after the page shown).
fn hidden_hint(visible: &[&Consumer], shown: std::ops::Range<usize>) -> String {
    let name = |i: usize| visible[i].name();
    let range = |a: usize, b: usize| if a == b { name(a) } else { format!("{}–{}", name(a), name(b)) };
    let mut parts = Vec::new();
    if shown.start > 0 {
        parts.push(range(0, shown.start - 1));
    }
    if shown.end < visible.len() {
        parts.push(range(shown.end, visible.len() - 1));
    }
    format!("{} hidden, Tab scrolls", parts.join(", "))
}

/// ` Producer  published 57 · confirmed 57 · b burst of 10 · r stream off (5/s)`
fn producer_line(app: &App) -> Line<'static> {
    let p = &app.producer;
    let stream =
        if p.streaming { format!("stream on, {}/s", p.rate) } else { format!("stream off ({}/s)", p.rate) };
    let mut spans = vec![
        Span::styled(" Producer  ", theme::VALUE),
        Span::styled("published ", theme::LABEL),
        Span::styled(p.published.total().to_string(), theme::VALUE),
        Span::styled(" · confirmed ", theme::LABEL),
        Span::styled(p.confirmed.to_string(), theme::VALUE),
    ];
    // Refused at publish (a full queue that rejects): right after the confirms, so it stays on
    // screen when the key hints do not.
    spans.extend(refused(app));
    spans.extend([
        Span::styled(" · ", theme::LABEL),
        Span::styled("b", theme::KEY),
        Span::styled(format!(" burst of {} · ", p.burst), theme::LABEL),
        Span::styled("r", theme::KEY),
        Span::styled(format!(" {stream}"), if p.streaming { theme::WARN } else { theme::LABEL }),
    ]);
    if p.unconfirmed > 0 {
        spans.push(Span::styled(format!(" · {} unconfirmed", p.unconfirmed), theme::WARN));
    }
    Line::from(spans)
}

/// ` · refused 5: #6 #7 #8` when the broker nacked publishes (the last few ids).
fn refused(app: &App) -> Vec<Span<'static>> {
    let n = app.ledger.totals().refused;
    if n == 0 {
        return Vec::new();
    }
    let mut spans = vec![Span::styled(format!(" · refused {n}:"), theme::WARN)];
    // The last five refused, in id order (confirms may come back in any order).
    let mut shown: Vec<u64> = app.refused.iter().rev().take(5).copied().collect();
    shown.sort_unstable();
    if n > shown.len() as u64 {
        spans.push(Span::styled(" …", theme::LABEL));
    }
    for id in shown {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!("#{id}"), ids::style(id)));
    }
    spans
}

/// ` Queue     ready 40:` (`ready 3 of max 3:` under a length cap) and how many ids there are.
fn queue_label(app: &App) -> (Vec<Span<'static>>, usize) {
    let ready = app.ledger.whereabouts().ready_len();
    let mut spans = vec![Span::styled(" Queue     ", theme::VALUE)];
    let cap = app.policy.max_length.map(|m| format!(" of max {m}")).unwrap_or_default();
    if ready == 0 {
        spans.push(Span::styled(format!("ready 0{cap} (empty)"), theme::LABEL));
    } else {
        spans.push(Span::styled(format!("ready {ready}{cap}:"), theme::VALUE));
    }
    (spans, ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_hidden_consumers() {
        let consumers: Vec<Consumer> =
            (0..12).map(|i| Consumer::new(i, std::time::Duration::from_secs(1), false)).collect();
        let refs: Vec<&Consumer> = consumers.iter().collect();
        assert_eq!(hidden_hint(&refs, 0..6), "C7–C12 hidden, Tab scrolls");
        assert_eq!(hidden_hint(&refs, 3..9), "C1–C3, C10–C12 hidden, Tab scrolls");
        assert_eq!(hidden_hint(&refs, 6..11), "C1–C6, C12 hidden, Tab scrolls");
    }
}
