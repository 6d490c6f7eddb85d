//! The ledger pane: where every published task is right now, and the check that they add up.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph};

use super::theme;
use crate::app::App;

/// Lines of text the pane needs for this app (the layout sizes the pane by it).
pub fn lines_needed(app: &App) -> u16 {
    6 + app.ledger.lost_by_reason().values().filter(|n| **n > 0).count() as u16 + u16::from(exits_shown(app))
}

/// Dead-lettered and refused tasks get their line when the policy can make them, or there are.
fn exits_shown(app: &App) -> bool {
    let t = app.ledger.totals();
    app.policy.dead_letters() || app.policy.max_length.is_some() || t.dead + t.refused > 0
}

/// The same places and words as the flow view's `where:` line and the header's unacked sum.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.ledger.totals();
    let anomalies = app.ledger.anomalies().len() as u64;
    let waiting = t.unacked + t.backlog;
    let mut lines = vec![
        pair(("ready", t.at_broker, theme::VALUE), ("in hand", t.in_process, theme::VALUE)),
        pair(("waiting", waiting, theme::backlog(t.backlog)), ("done", t.done, theme::DONE)),
        pair(("redelivered", t.redelivered, theme::VALUE), ("lost", t.lost, theme::alarm_if(t.lost))),
    ];
    for (reason, n) in app.ledger.lost_by_reason().iter().filter(|(_, n)| **n > 0) {
        lines.push(Line::styled(format!(" ↳ {n}: {}", reason.describe()), theme::ALARM));
    }
    if exits_shown(app) {
        lines.push(pair(("dead", t.dead, theme::VALUE), ("refused", t.refused, theme::VALUE)));
    }
    // The two kinds of waiting: auto-ack backlog in the clients, and manual-ack unacked, which
    // the broker counts with the tasks in hand; the next line shows that sum.
    let unacked = app.ledger.broker_unacked();
    lines.push(pair(("backlog", t.backlog, theme::backlog(t.backlog)), ("unacked", unacked, theme::VALUE)));
    let extra = if unacked > 0 {
        Line::styled(
            format!("unacked = {} waiting + {} in hand", t.unacked, unacked - t.unacked),
            theme::LABEL,
        )
    } else if t.duplicates > 0 {
        // Processed twice because an ack was lost with a connection (at-least-once delivery).
        Line::from(cell(("duplicates", t.duplicates, theme::WARN)).to_vec())
    } else if anomalies > 0 {
        Line::from(cell(("anomalies", anomalies, theme::ALARM)).to_vec())
    } else {
        Line::default()
    };
    lines.push(extra);
    lines.push(check(t.published, t.accounted()));
    let block = Block::bordered().title(" Where every task is ").padding(Padding::horizontal(1));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

type Cell = (&'static str, u64, Style);

fn pair(left: Cell, right: Cell) -> Line<'static> {
    let [a, b] = cell(left);
    let [c, d] = cell(right);
    Line::from(vec![a, b, Span::raw("  "), c, d])
}

/// `label       value`, 18 columns, so two fit side by side in the left column.
fn cell((label, value, style): Cell) -> [Span<'static>; 2] {
    [Span::styled(format!("{label:<11}"), theme::LABEL), Span::styled(format!("{value:>7}"), style)]
}

/// Every published task is in exactly one place: say so, or say it is not.
fn check(published: u64, accounted: u64) -> Line<'static> {
    if published == accounted {
        Line::from(vec![
            Span::styled(format!("published {published} = the sum above "), theme::LABEL),
            Span::styled("✓", theme::DONE),
        ])
    } else {
        Line::styled(format!("published {published} ≠ {accounted} accounted for"), theme::ALARM)
    }
}
