//! The lines under the lanes: the recent batches (as many as there is room for, oldest first, so
//! two runs of the same workload can be compared) against what RabbitMQ's rules predict, and
//! where every task is, as a sum that visibly adds up to the published count.

use ratatui::text::{Line, Span};

use super::{dead, ids};
use crate::app::{App, Batch};
use crate::ui::{format, theme};

/// At most this many batch lines.
pub const BATCHES_MAX: usize = 3;

/// The last `batches` batch lines (why the latest split surprises, when a switch during it
/// explains that), then the ledger line, each fitted to `width`.
pub fn lines(app: &App, batches: usize, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::with_capacity(batches + 2);
    let shown = app.batches.len().min(batches.max(1));
    for b in &app.batches[app.batches.len() - shown..] {
        lines.push(format::fit(batch_line(b).spans, width));
    }
    match app.batches.last() {
        Some(b) => {
            if let Some(note) = &b.note {
                lines.push(format::fit(vec![Span::styled(format!("   ↳ {note}"), theme::WARN)], width));
            }
        }
        None => lines.push(Line::styled(" no batch yet: space publishes one task, b a burst", theme::LABEL)),
    }
    if dead::shown(app) {
        lines.push(dead::line(app, width));
    }
    lines.push(format::fit(where_line(app).spans, width));
    lines
}

/// How many lines [`lines`] gives for this app with room for `batches` batch lines.
pub fn height(app: &App, batches: usize) -> u16 {
    let shown = app.batches.len().clamp(1, batches.max(1));
    (shown + 1) as u16
        + u16::from(app.batches.last().is_some_and(|b| b.note.is_some()))
        + u16::from(dead::shown(app))
}

/// ` batch #2 · 10 tasks rr · took 45.0s · saw 4/3/3 = theory ✓ · lost 3`
fn batch_line(b: &Batch) -> Line<'static> {
    let seen = b.seen_split();
    let tasks = if b.size == 1 { "task" } else { "tasks" };
    let mut spans = vec![
        Span::styled(format!(" batch #{} ", b.id), theme::LABEL),
        Span::styled(format!("{} {tasks} {}", b.size, b.dispatch.short_label()), theme::VALUE),
        Span::styled(" · ", theme::LABEL),
    ];
    // A batch that lost tasks is never shown green: it says how many, in red, first.
    if b.lost > 0 {
        spans.push(Span::styled(format!("lost {}", b.lost), theme::ALARM));
        spans.push(Span::styled(" · ", theme::LABEL));
    }
    match b.makespan() {
        Some(d) if b.lost > 0 => {
            spans.push(Span::styled(format!("took {}", format::duration(d)), theme::ALARM))
        }
        Some(d) => spans.push(Span::styled(format!("took {}", format::duration(d)), theme::DONE)),
        None => spans.push(Span::styled(format!("{} left", b.outstanding), theme::WARN)),
    }
    spans.push(Span::styled(" · saw ", theme::LABEL));
    if let Some(why) = &b.unmodelled {
        // The model does not follow kills, new consumers or delay changes: nothing to compare.
        spans.push(Span::styled(seen, theme::VALUE));
        spans.push(Span::styled(format!(" · no theory ({why})"), theme::LABEL));
        return Line::from(spans);
    }
    let (theory, makespan) = b.theory_split();
    let finished = b.finished.is_some();
    if finished && seen == theory {
        spans.push(Span::styled(seen, theme::VALUE));
        spans.push(Span::styled(" = theory ✓", theme::DONE));
    } else {
        let differs = finished && seen != theory;
        spans.push(Span::styled(seen, if differs { theme::WARN } else { theme::VALUE }));
        spans.push(Span::styled(if differs { " ≠ theory " } else { " · theory " }, theme::LABEL));
        spans.push(Span::styled(theory, theme::VALUE));
        spans.push(Span::styled(format!(", {}", format::duration(makespan)), theme::LABEL));
    }
    Line::from(spans)
}

/// ` where: ready 0 + waiting 4 + in hand 2 + done 4 + lost 0 = published 10 ✓`
fn where_line(app: &App) -> Line<'static> {
    let t = app.ledger.totals();
    let waiting = t.unacked + t.backlog;
    let part = |label: &str, n: u64, style| {
        [Span::styled(format!("{label} "), theme::LABEL), Span::styled(n.to_string(), style)]
    };
    let plus = || Span::styled(" + ", theme::LABEL);
    let mut spans = vec![Span::styled(" where: ", theme::LABEL)];
    spans.extend(part("ready", t.at_broker, theme::VALUE));
    spans.push(plus());
    spans.extend(part("waiting", waiting, theme::backlog(t.backlog)));
    spans.push(plus());
    spans.extend(part("in hand", t.in_process, theme::VALUE));
    spans.push(plus());
    spans.extend(part("done", t.done, theme::DONE));
    spans.push(plus());
    // With a policy that takes tasks out, `dead` and `refused` are places too; `lost 0` then
    // gives way to them (the sum still holds: a part not written is zero).
    let dead = dead::shown(app);
    let refused = t.refused > 0 || app.policy.max_length.is_some() && !app.policy.dead_letters();
    if t.lost > 0 || !(dead || refused) {
        spans.extend(part("lost", t.lost, theme::alarm_if(t.lost)));
        if dead || refused {
            spans.push(plus());
        }
    }
    if dead {
        spans.extend(part("dead", t.dead, theme::VALUE));
        if refused {
            spans.push(plus());
        }
    }
    if refused {
        spans.extend(part("refused", t.refused, theme::VALUE));
    }
    if t.published == t.accounted() {
        spans.push(Span::styled(format!(" = published {} ", t.published), theme::LABEL));
        spans.push(Span::styled("✓", theme::DONE));
    } else {
        spans.push(Span::styled(format!(" ≠ published {}", t.published), theme::ALARM));
    }
    // Tasks lost while no consumer held them are named here, with why.
    if let Some((_, reason)) = app.lost_unheld.iter().last() {
        spans.push(Span::styled("  ", theme::LABEL));
        for (id, _) in app.lost_unheld.iter() {
            spans.push(Span::styled(format!("✗#{id} "), ids::style(*id)));
        }
        spans.push(Span::styled(format!("({})", reason.describe()), theme::ALARM));
    }
    Line::from(spans)
}
