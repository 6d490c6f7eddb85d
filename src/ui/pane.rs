//! One consumer's pane: state and progress, counts, backlog, throughput, and the ids it did.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, LineGauge, Padding, Paragraph, Sparkline};

use super::{format, theme};
use crate::app::{Consumer, ConsumerId, ConsumerStatus, Held};

/// What a pane needs to know beyond its own consumer.
pub struct Context {
    pub selected: ConsumerId,
    pub total_processed: u64,
    /// The top of every sparkline's scale.
    pub spark_max: u64,
}

pub fn render(frame: &mut Frame, area: Rect, c: &Consumer, held: Held, ctx: &Context, now: Instant) {
    let block = block(c, ctx.selected == c.id);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // A short pane still keeps two rows for the trail: the rotation is the point of the demo.
    let spark_rows = inner.height.saturating_sub(1 + 4 + 2).clamp(1, SPARK_MAX_HEIGHT);
    let [state, counts, spark, trail] = inner.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Length(spark_rows),
        Constraint::Fill(1),
    ]));
    render_state(frame, state, c, now);
    render_counts(frame, counts, c, held, ctx);
    render_spark(frame, spark, c, ctx);
    render_trail(frame, trail, c);
}

/// The sparkline stays short; a tall pane gives its rows to the trail of ids instead.
const SPARK_MAX_HEIGHT: u16 = 3;
/// The labels left of the sparkline and the trail.
const GUTTER: u16 = 6;

/// `C1 · 1s`; thick and cyan when selected, red when crashed.
fn block(c: &Consumer, selected: bool) -> Block<'static> {
    let mut title = format!(" {} · {}", c.name(), format::duration(c.delay));
    // Zoomed in, the lane's priority and role stay in view.
    if c.priority != 0 {
        title.push_str(&format!(" · prio {}", c.priority));
    }
    if let Some(role) = c.role {
        title.push_str(&format!(" · {}", role.label()));
    }
    title.push(' ');
    let block = Block::bordered().title(Line::styled(title, theme::VALUE)).padding(Padding::horizontal(1));
    if selected {
        block.border_type(BorderType::Thick).border_style(theme::SELECTED)
    } else if c.status == ConsumerStatus::Crashed {
        block.border_style(theme::ALARM)
    } else {
        block
    }
}

/// `working #13 ━━━━━━━━─────`, `idle`, `CRASHED, 4 tasks lost`, ...
fn render_state(frame: &mut Frame, area: Rect, c: &Consumer, now: Instant) {
    let (text, style) = status_text(c);
    let width = text.chars().count() as u16 + 1;
    frame.render_widget(Paragraph::new(Span::styled(text, style)), area);
    let (Some(w), Some(ratio)) = (c.working, c.progress(now)) else { return };
    if c.status == ConsumerStatus::Crashed {
        return;
    }
    let [_, bar] = area.layout(&Layout::horizontal([Constraint::Length(width), Constraint::Fill(1)]));
    let gauge = LineGauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(Span::styled(format!("#{}", w.id), theme::VALUE))
        .filled_symbol(symbols::line::THICK_HORIZONTAL)
        .filled_style(theme::DONE)
        .unfilled_style(theme::MUTED);
    frame.render_widget(gauge, bar);
}

fn status_text(c: &Consumer) -> (String, Style) {
    match c.status {
        ConsumerStatus::Starting => ("starting…".into(), theme::LABEL),
        ConsumerStatus::Consuming if c.working.is_some() => ("working".into(), theme::VALUE),
        ConsumerStatus::Consuming => ("idle".into(), theme::LABEL),
        ConsumerStatus::Switching => ("switching…".into(), theme::WARN),
        ConsumerStatus::Reconnecting => match &c.status_note {
            Some(note) => (format!("reconnecting: {note}"), theme::WARN),
            None => ("reconnecting…".into(), theme::WARN),
        },
        ConsumerStatus::Leaving => ("leaving".into(), theme::WARN),
        ConsumerStatus::Crashed if c.lost > 0 => (format!("CRASHED, {} tasks lost", c.lost), theme::ALARM),
        ConsumerStatus::Crashed => ("CRASHED".into(), theme::ALARM),
        ConsumerStatus::Removed => ("removed".into(), theme::MUTED),
    }
}

/// Four rows of two `label value` cells.
fn render_counts(frame: &mut Frame, area: Rect, c: &Consumer, held: Held, ctx: &Context) {
    let processed = c.processed.total();
    let share = format!("{}%", format::percent(processed, ctx.total_processed));
    let redelivered = if c.redelivered > 0 { theme::WARN } else { theme::VALUE };
    let lost = if c.lost > 0 { theme::ALARM } else { theme::VALUE };
    let lines = vec![
        pair(
            ("received", c.received.to_string(), theme::VALUE),
            ("processed", processed.to_string(), theme::DONE),
        ),
        pair(
            ("acked", c.acked.to_string(), theme::VALUE),
            ("redelivered", c.redelivered.to_string(), redelivered),
        ),
        // unacked: what the broker counts against prefetch; backlog: auto-ack tasks piled up here.
        pair(
            ("unacked", held.unacked.to_string(), theme::VALUE),
            ("backlog", held.backlog.to_string(), theme::backlog(held.backlog)),
        ),
        pair(("share", share, theme::VALUE), ("lost", c.lost.to_string(), lost)),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn pair(left: (&str, String, Style), right: (&str, String, Style)) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{:<11}", left.0), theme::LABEL),
        Span::styled(format!("{:>5}", left.1), left.2),
        Span::raw("  "),
        Span::styled(format!("{:<11}", right.0), theme::LABEL),
        Span::styled(format!("{:>5}", right.1), right.2),
    ])
}

/// Processed per second, newest at the right, with the last second's figure beside it.
fn render_spark(frame: &mut Frame, area: Rect, c: &Consumer, ctx: &Context) {
    let [gutter, spark] = area.layout(&Layout::horizontal([Constraint::Length(GUTTER), Constraint::Fill(1)]));
    let rate = Line::styled(format!("{}/s", c.processed.rate()), theme::LABEL);
    frame.render_widget(Paragraph::new(rate), gutter);
    let history = c.processed.history();
    let shown = history.iter().skip(history.len().saturating_sub(usize::from(spark.width)));
    let sparkline = Sparkline::default().data(shown.copied()).max(ctx.spark_max).style(theme::DONE);
    frame.render_widget(sparkline, spark);
}

/// The ids this consumer processed, newest last: round-robin shows as 1 4 7 10 ...
fn render_trail(frame: &mut Frame, area: Rect, c: &Consumer) {
    let [gutter, ids] = area.layout(&Layout::horizontal([Constraint::Length(GUTTER), Constraint::Fill(1)]));
    frame.render_widget(Paragraph::new(Line::styled("done", theme::LABEL)), gutter);
    let lines = format::trail(c.trail.iter(), usize::from(ids.width), usize::from(ids.height));
    let lines: Vec<Line> = lines.into_iter().map(|l| Line::styled(l, theme::VALUE)).collect();
    frame.render_widget(Paragraph::new(lines), ids);
}
