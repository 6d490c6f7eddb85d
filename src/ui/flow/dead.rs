//! The dead-letter queue's line, under the lanes: the tasks the broker took out of the task
//! queue (delivery limit, length cap, TTL), each with the reason its `x-death` header gives.
//!
//! ```text
//!  Dead      2 in q.dead: #3 #7 delivery_limit · #9 expired
//! ```

use ratatui::text::{Line, Span};

use super::ids;
use crate::app::App;
use crate::policy::Policy;
use crate::ui::{format, theme};

/// Shown when the queue's policy can dead-letter tasks, or when some were.
pub fn shown(app: &App) -> bool {
    app.policy.dead_letters() || app.ledger.totals().dead > 0
}

/// ` Dead      5 in warren.lesson.dead: #3 #4 #5 maxlen · #9 expired`, newest last; the oldest
/// ids give way to the `+N` when the width ends.
pub fn line(app: &App, width: usize) -> Line<'static> {
    let dead = app.ledger.totals().dead;
    let mut spans = vec![Span::styled(" Dead      ", theme::VALUE)];
    if dead == 0 {
        let queue = Policy::dead_queue(&app.queue);
        spans.push(Span::styled(format!("0 in {queue} (none yet)"), theme::LABEL));
        return format::fit(spans, width);
    }
    spans.push(Span::styled(format!("{dead}: "), theme::VALUE));
    let used: usize = spans.iter().map(Span::width).sum();
    // The newest that fit (each id takes at least 3 columns), oldest first, grouped by reason.
    let all: Vec<_> = app.dead_letters.iter().copied().collect();
    let mut k = all.len().min(width.saturating_sub(used) / 3);
    loop {
        let hidden = dead.saturating_sub(k as u64);
        let tail = grouped(&all[all.len() - k..], hidden);
        if k == 0 || used + tail.iter().map(Span::width).sum::<usize>() <= width {
            spans.extend(tail);
            break;
        }
        k -= 1;
    }
    format::fit(spans, width)
}

/// `+2 #3 #4 maxlen · #9 expired`: `hidden` older ones counted first.
fn grouped(kept: &[(crate::app::TaskId, crate::policy::DeathReason)], hidden: u64) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if hidden > 0 {
        spans.push(Span::styled(format!("+{hidden} "), theme::WARN));
    }
    for (i, &(id, reason)) in kept.iter().enumerate() {
        spans.push(Span::styled(format!("#{id}"), ids::style(id)));
        if kept.get(i + 1).is_none_or(|&(_, next)| next != reason) {
            spans.push(Span::styled(format!(" {}", reason.as_str()), theme::WARN));
            if i + 1 < kept.len() {
                spans.push(Span::styled(" · ", theme::LABEL));
            }
        } else {
            spans.push(Span::raw(" "));
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::registered;
    use crate::app::{Event, Mode, Msg};
    use crate::policy::DeathReason;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.to_string()).collect()
    }

    #[test]
    fn dead_ids_are_grouped_by_reason_and_the_oldest_give_way() {
        let (mut a, now) = registered(&[100], Mode::Fair);
        a.policy.task_ttl = Some(std::time::Duration::from_secs(1));
        assert_eq!(text(&line(&a, 80)).trim_end(), " Dead      0 in q.dead (none yet)");
        let _ = a.start_batch(9, now);
        for id in 1..=9 {
            a.update(Msg::Event(Event::Published { id, batch: Some(1) }), now);
        }
        for (id, reason) in [(3, DeathReason::Maxlen), (4, DeathReason::Maxlen), (9, DeathReason::Expired)] {
            a.update(Msg::Event(Event::DeadLettered { id, reason }), now);
        }
        assert_eq!(text(&line(&a, 80)).trim_end(), " Dead      3: #3 #4 maxlen · #9 expired");
        assert_eq!(text(&line(&a, 39)).trim_end(), " Dead      3: #3 #4 maxlen · #9 expired");
        assert_eq!(text(&line(&a, 38)).trim_end(), " Dead      3: +2 #9 expired");
    }
}
