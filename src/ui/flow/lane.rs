//! One consumer's lane in the flow view: its name and delay, the task in hand with its progress,
//! the tasks delivered to it and not started (the auto-ack backlog, or the manual-ack unacked
//! window), what it finished and what it lost. One to four lines, whatever room there is:
//!
//! ```text
//! ▸C1 1s    ▶#7 ━━━━━━━━━━━━━────────                               ✓ 4 · 40%
//!           backlog 1: #10
//!           done #1 #4
//!           received 4 · acked 0 · redelivered 0
//! ```
//! and on one line: `▸C1 1s  ▶#7 ━━━──  backlog 1: #10        ✓ 4 · 40%`.
//!
//! A consumer with a priority says it after its delay (`C1 1s prio 10`); on a single-active
//! queue the state says `active`, `standby (next)` or `standby`.

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::ids;
use crate::app::{Consumer, ConsumerStatus, Held, Role, Whereabouts};
use crate::ui::{format, theme};

/// What a lane needs besides its consumer.
pub struct Lane<'a> {
    pub consumer: &'a Consumer,
    pub held: Held,
    pub whereabouts: &'a Whereabouts,
    pub selected: bool,
    /// The demo is frozen: a consumer with nothing in hand is paused, not idle.
    pub paused: bool,
    /// All tasks processed by anyone, for the share.
    pub total_processed: u64,
    /// Width of the name column (the widest `C12 1.5s`), so lanes line up.
    pub name_width: usize,
    pub now: Instant,
}

/// The progress bar never gets wider than this (a wide lane gives the room to the ids).
const BAR_MAX: usize = 24;

impl Lane<'_> {
    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        let rows = usize::from(area.height);
        let width = usize::from(area.width);
        let gutter = self.name_width + 3;
        let c = self.consumer;
        let mut lines = Vec::with_capacity(rows);
        if c.status == ConsumerStatus::Crashed {
            lines.push(self.crashed_line(width));
        } else if rows == 1 {
            lines.push(self.one_line(width));
        } else {
            let mut head = self.name();
            head.extend(self.state(width.saturating_sub(gutter) / 2));
            let right = self.counts();
            lines.push(with_right(head, right, width));
            // The waiting ids take the middle lines (as many as they need, leaving one for the
            // trail of what it finished and lost when there are three lines or more).
            let trail_row = usize::from(rows >= 3);
            let (label, items, total) = self.waiting();
            let mut first = vec![Span::raw(" ".repeat(gutter))];
            first.extend(label);
            lines.extend(ids::lines(first, items, total, (width, gutter), rows - 1 - trail_row));
            if trail_row == 1 {
                let mut trail = vec![Span::raw(" ".repeat(gutter))];
                trail.extend(self.trail(width.saturating_sub(gutter)));
                lines.push(Line::from(trail));
            }
            // With a line to spare, the counters the broker would report for it.
            if rows >= 4 && lines.len() < rows {
                let mut counts = vec![Span::raw(" ".repeat(gutter))];
                counts.extend(self.counters());
                lines.push(format::fit(counts, width));
            }
        }
        for (i, line) in lines.into_iter().take(rows).enumerate() {
            let row = Rect::new(area.x, area.y + i as u16, area.width, 1);
            line.render(row, buf);
        }
        if self.selected {
            // A visible mark beyond colour: the whole lane is underlined on its first line.
            for x in area.x..area.right() {
                if let Some(cell) = buf.cell_mut((x, area.y)) {
                    cell.modifier.insert(ratatui::style::Modifier::UNDERLINED);
                }
            }
        }
    }

    /// `▸C1 1s  ▶#7 ━━━──  backlog 1: #10        ✓ 4 · 40%`
    fn one_line(&self, width: usize) -> Line<'static> {
        let mut spans = self.name();
        spans.extend(self.state(16));
        spans.push(Span::raw("  "));
        let right = self.counts();
        let right_w: usize = right.iter().map(Span::width).sum::<usize>() + 1;
        let used: usize = spans.iter().map(Span::width).sum();
        let (label, items, total) = self.waiting();
        let room = width.saturating_sub(used + right_w);
        let waiting = ids::lines(label, items, total, (room, 0), 1);
        if let Some(line) = waiting.into_iter().next() {
            spans.extend(line.spans);
        }
        with_right(spans, right, width)
    }

    /// `✗C2 10s  crashed · lost 3: #2 #5 #8 (consumer killed under auto-ack)`
    fn crashed_line(&self, width: usize) -> Line<'static> {
        let c = self.consumer;
        let mut spans = self.name();
        spans.push(Span::styled("✗ crashed", theme::ALARM));
        if c.lost > 0 {
            spans.push(Span::styled(format!(" · lost {}:", c.lost), theme::ALARM));
            for &id in c.lost_ids.iter() {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(format!("✗#{id}"), ids::style(id)));
            }
            if let Some(reason) = c.last_loss {
                spans.push(Span::styled(format!(" ({})", reason.describe()), theme::LABEL));
            }
        } else {
            spans.push(Span::styled(" · what it held went back to the queue", theme::LABEL));
        }
        format::fit(spans, width)
    }

    /// `▸C1 1s  `: the selection mark, the name (coloured by state) and the delay.
    fn name(&self) -> Vec<Span<'static>> {
        let c = self.consumer;
        let (mark, style) = match c.status {
            ConsumerStatus::Crashed => ("✗", theme::ALARM),
            _ if self.selected => ("▸", theme::SELECTED),
            _ => (" ", theme::VALUE),
        };
        let name = title(c);
        vec![Span::styled(mark, style), Span::styled(format!("{name:<w$}  ", w = self.name_width), style)]
    }

    /// What it is doing: `▶#7 ━━━━───`, `idle`, or a state such as `⇄ switching`.
    fn state(&self, room: usize) -> Vec<Span<'static>> {
        let c = self.consumer;
        let mut spans = Vec::new();
        let tag = match c.status {
            ConsumerStatus::Starting => Some(("starting…", theme::LABEL)),
            ConsumerStatus::Switching => Some(("⇄ switching", theme::WARN)),
            ConsumerStatus::Reconnecting => Some(("⟳ reconnecting", theme::WARN)),
            ConsumerStatus::Leaving => Some(("⏏ leaving", theme::WARN)),
            ConsumerStatus::Crashed => Some(("✗ crashed", theme::ALARM)),
            ConsumerStatus::Removed => Some(("removed", theme::MUTED)),
            ConsumerStatus::Consuming => None,
        };
        // On a single-active queue: who receives, and who takes over.
        let role = c.role.filter(|_| c.status == ConsumerStatus::Consuming);
        match role {
            Some(Role::Active) => spans.push(Span::styled("active ", theme::DONE)),
            Some(r) if c.working.is_none() => {
                spans.push(Span::styled(r.label(), theme::LABEL));
                return spans;
            }
            Some(r) => spans.push(Span::styled(format!("{} ", r.label()), theme::LABEL)),
            None => {}
        }
        if let Some((text, style)) = tag {
            spans.push(Span::styled(text, style));
            if let (ConsumerStatus::Reconnecting, Some(note)) = (c.status, &c.status_note) {
                spans.push(Span::styled(format!(": {note}"), style));
            }
            spans.push(Span::raw(" "));
        }
        match (c.working, c.progress(self.now)) {
            (Some(w), Some(ratio)) => {
                // A poison task cycling says how often it went back: `▶↻3#7`.
                let returns = if w.again { self.whereabouts.returns(w.id).max(1) } else { 0 };
                let label = format!("▶{}#{}", ids::again(returns), w.id);
                // What is left of it, in its own time: a delay changed meanwhile applies to the
                // next task, and the lane's title already shows the new one.
                let left = w.delay.mul_f64(1.0 - ratio.clamp(0.0, 1.0));
                let left = format!(" {} left", format::duration(left));
                let used = label.chars().count() + 1 + tag_width(&spans);
                let show_left = room >= used + left.chars().count() + 6;
                let bar =
                    room.saturating_sub(used + if show_left { left.chars().count() } else { 0 }).min(BAR_MAX);
                spans.push(Span::styled(label, ids::style(w.id)));
                if bar >= 3 {
                    let filled = ((ratio.clamp(0.0, 1.0) * bar as f64).round() as usize).min(bar);
                    spans.push(Span::raw(" "));
                    spans.push(Span::styled("━".repeat(filled), theme::DONE));
                    spans.push(Span::styled("─".repeat(bar - filled), theme::MUTED));
                }
                if show_left {
                    spans.push(Span::styled(left, theme::LABEL));
                }
            }
            // Paused, nothing starts: "idle" would say it has nothing to do.
            _ if tag.is_none() && self.paused => spans.push(Span::styled("‖ paused", theme::WARN)),
            _ if tag.is_none() => spans.push(Span::styled("idle", theme::LABEL)),
            _ => {}
        }
        spans
    }

    /// The label and the ids delivered here and not started, in the order it will start them.
    /// Manual ack: `unacked 3 = ▶ + 2:` (the broker counts the task in hand too); auto-ack:
    /// `backlog 2:` (the broker has forgotten them).
    fn waiting(&self) -> (Vec<Span<'static>>, impl Iterator<Item = (u64, u32)> + '_, usize) {
        let h = self.held;
        let manual_waiting = h.waiting.saturating_sub(h.backlog);
        let in_hand_unacked = h.unacked.saturating_sub(manual_waiting);
        let label = if h.backlog > 0 && manual_waiting > 0 {
            // Right after a mode switch it holds both kinds: say so, and that they add up.
            Span::styled(
                format!("waiting {} = backlog {} + unacked {manual_waiting}:", h.waiting, h.backlog),
                theme::backlog(h.backlog),
            )
        } else if h.backlog > 0 {
            Span::styled(format!("backlog {}:", h.backlog), theme::backlog(h.backlog))
        } else if h.unacked > 0 && in_hand_unacked > 0 {
            let waiting = h.unacked - in_hand_unacked;
            let colon = if waiting > 0 { ":" } else { "" };
            Span::styled(format!("unacked {} = ▶ + {waiting} waiting{colon}", h.unacked), theme::VALUE)
        } else if h.unacked > 0 {
            Span::styled(format!("unacked {}:", h.unacked), theme::VALUE)
        } else {
            Span::styled("nothing waiting", theme::MUTED)
        };
        let items = self.whereabouts.waiting_counted(self.consumer.id);
        (vec![label], items, h.waiting as usize)
    }

    /// `received 4 · acked 3 · redelivered 1`: deliveries it got, acks it sent, and how many of
    /// the deliveries were flagged redelivered.
    fn counters(&self) -> Vec<Span<'static>> {
        let c = self.consumer;
        let redelivered = if c.redelivered > 0 { theme::WARN } else { theme::LABEL };
        vec![
            Span::styled("received ", theme::MUTED),
            Span::styled(c.received.to_string(), theme::LABEL),
            Span::styled(" · acked ", theme::MUTED),
            Span::styled(c.acked.to_string(), theme::LABEL),
            Span::styled(" · redelivered ", theme::MUTED),
            Span::styled(c.redelivered.to_string(), redelivered),
        ]
    }

    /// `✓ 4 · 40%`, and `✗ 3` when it lost tasks.
    fn counts(&self) -> Vec<Span<'static>> {
        let c = self.consumer;
        let done = c.processed.total();
        let mut spans = vec![
            Span::styled("✓ ", theme::DONE),
            Span::styled(done.to_string(), theme::VALUE),
            Span::styled(format!(" · {}%", format::percent(done, self.total_processed)), theme::LABEL),
        ];
        if c.lost > 0 {
            spans.push(Span::styled(format!("  ✗ {} lost", c.lost), theme::ALARM));
        }
        spans
    }

    /// `done #1 #4 #7` (newest last), then `lost ✗#5 ✗#8` if it lost any.
    fn trail(&self, width: usize) -> Vec<Span<'static>> {
        let c = self.consumer;
        let mut spans = Vec::new();
        let lost_w: usize = c.lost_ids.iter().map(|id| format!(" ✗#{id}").chars().count()).sum::<usize>()
            + if c.lost_ids.is_empty() { 0 } else { 6 };
        let room = width.saturating_sub(lost_w + 5);
        let ids = format::trail(c.trail.iter(), room, 1);
        spans.push(Span::styled("done ", theme::LABEL));
        match ids.first() {
            Some(text) => {
                for (i, word) in text.split(' ').enumerate() {
                    if i > 0 {
                        spans.push(Span::raw(" "));
                    }
                    match word.trim_start_matches('#').parse::<u64>() {
                        Ok(id) => {
                            let again = c.trail_again.iter().any(|&t| t == id);
                            spans.push(ids::task(id, u32::from(again)));
                        }
                        Err(_) => spans.push(Span::styled(word.to_string(), theme::LABEL)),
                    }
                }
            }
            None => spans.push(Span::styled("—", theme::MUTED)),
        }
        if !c.lost_ids.is_empty() {
            spans.push(Span::styled("  lost", theme::ALARM));
            for &id in c.lost_ids.iter() {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(format!("✗#{id}"), ids::style(id)));
            }
        }
        spans
    }
}

fn tag_width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

/// `left` then `right` flush with the right edge; `right` is dropped when both do not fit.
fn with_right(mut left: Vec<Span<'static>>, right: Vec<Span<'static>>, width: usize) -> Line<'static> {
    // One column kept free at the right, so the counts never touch a panel's border beside.
    let width = width.saturating_sub(1);
    let used: usize = left.iter().map(Span::width).sum();
    let right_w: usize = right.iter().map(Span::width).sum();
    if used + 1 + right_w <= width {
        left.push(Span::raw(" ".repeat(width - used - right_w)));
        left.extend(right);
    }
    Line::from(left)
}

/// `C1 1.0s`, and `C1 1.0s prio 10` for a consumer with a priority.
fn title(c: &Consumer) -> String {
    let delay = format::duration(c.delay);
    match c.priority {
        0 => format!("{} {delay}", c.name()),
        p => format!("{} {delay} prio {p}", c.name()),
    }
}

/// The widest `C12 1.5s` of these consumers: the lanes' name column.
pub fn name_width(consumers: &[&Consumer]) -> usize {
    consumers.iter().map(|c| title(c).chars().count()).max().unwrap_or(2)
}
