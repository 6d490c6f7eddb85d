//! Task ids as the flow view writes them: `#12` in the task's own colour (the same as in the
//! timeline), `↻#12` when it was handed out before (`↻3#12` when it went back to the queue three
//! times, as a poison task does), and lists cut with `+N` where the room ends.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::app::TaskId;
use crate::ui::{theme, timeline};

/// `#12`, `↻#12` when it was requeued or redelivered once, `↻3#12` three times; coloured by
/// task, bold.
pub fn task(id: TaskId, returns: u32) -> Span<'static> {
    Span::styled(format!("{}#{id}", again(returns)), style(id))
}

/// The redelivery mark: nothing, `↻`, or `↻3`.
pub fn again(returns: u32) -> String {
    match returns {
        0 => String::new(),
        1 => "↻".to_string(),
        n => format!("↻{n}"),
    }
}

/// The style a task's id is written in, everywhere.
pub fn style(id: TaskId) -> Style {
    Style::new().fg(timeline::task_colour(id)).add_modifier(Modifier::BOLD)
}

/// Lay out `first` (already styled, e.g. a label) followed by the ids of `items` on at most
/// `rows` lines of `width` columns, the lines after the first indented by `indent`. `total` is
/// how many items there are in all: when not every id fits, the last line ends with `+N` for the
/// ones left out, so the count is never lost.
pub fn lines<I>(
    first: Vec<Span<'static>>,
    items: I,
    total: usize,
    (width, indent): (usize, usize),
    rows: usize,
) -> Vec<Line<'static>>
where
    I: IntoIterator<Item = (TaskId, u32)>,
{
    if rows == 0 || width == 0 {
        return Vec::new();
    }
    let mut out: Vec<Vec<Span<'static>>> = vec![first];
    let mut used = out[0].iter().map(Span::width).sum::<usize>();
    let mut shown = 0;
    for (id, returns) in items {
        let token = task(id, returns);
        let w = token.width();
        let sep = usize::from(used > 0);
        let left_after = total.saturating_sub(shown + 1);
        let last_row = out.len() == rows;
        let reserve = if last_row && left_after > 0 { more(left_after).width() + 1 } else { 0 };
        if used + sep + w + reserve <= width {
            if sep == 1 {
                out.last_mut().expect("a line").push(Span::raw(" "));
            }
            out.last_mut().expect("a line").push(token);
            used += sep + w;
            shown += 1;
        } else if !last_row && indent + w <= width {
            out.push(vec![Span::raw(" ".repeat(indent)), token]);
            used = indent + w;
            shown += 1;
        } else {
            break;
        }
    }
    let left = total.saturating_sub(shown);
    if left > 0 {
        let tag = more(left);
        let line = out.last_mut().expect("a line");
        // Only when even the `+N` does not fit (a very narrow lane) is it dropped.
        if used + 1 + tag.width() <= width {
            if used > 0 {
                line.push(Span::raw(" "));
            }
            line.push(tag);
        }
    }
    out.into_iter().map(Line::from).collect()
}

/// `+37`: how many more than are written.
fn more(n: usize) -> Span<'static> {
    Span::styled(format!("+{n}"), theme::WARN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.to_string()).collect()).collect()
    }

    fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u32)> {
        range.map(|id| (id, 0)).collect()
    }

    #[test]
    fn ids_fill_the_rows_and_count_the_rest() {
        let label = || vec![Span::raw("ready 9:")];
        for (width, rows, want) in [
            (40, 1, vec!["ready 9: #1 #2 #3 #4 #5 #6 #7 #8 #9"]),
            (20, 1, vec!["ready 9: #1 #2 #3 +6"]),
            (20, 2, vec!["ready 9: #1 #2 #3 #4", "#5 #6 #7 #8 #9"]),
            (14, 2, vec!["ready 9: #1 #2", "#3 #4 #5 #6 +3"]),
            (0, 2, vec![]),
        ] {
            assert_eq!(text(&lines(label(), ids(1..=9), 9, (width, 0), rows)), want, "{width}x{rows}");
        }
    }

    #[test]
    fn requeued_ids_are_marked_and_an_unknown_rest_is_counted() {
        let items = vec![(5, 1), (6, 0), (7, 3)];
        // 40 in all, only 3 listed: the rest is still counted.
        assert_eq!(text(&lines(Vec::new(), items, 40, (30, 0), 1)), vec!["↻#5 #6 ↻3#7 +37"]);
        // Continuation lines are indented under the label.
        let indented = lines(vec![Span::raw("ready 9:")], ids(1..=9), 9, (14, 3), 2);
        assert_eq!(text(&indented), vec!["ready 9: #1 #2", "   #3 #4 #5 +4"]);
    }
}
