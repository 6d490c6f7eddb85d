//! Small text helpers shared by the panes.

use ratatui::text::{Line, Span};

// Durations are written one way everywhere (panes, headless, play): see `crate::units`.
pub use crate::units::duration;

/// The spans that fit in `width` columns as one line, the last one cut and ended with `…`, so
/// nothing wraps or spills into the next region.
pub fn fit(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let mut out = Vec::new();
    let mut used = 0;
    let total: usize = spans.iter().map(Span::width).sum();
    for s in spans {
        let w = s.width();
        if total <= width || used + w < width {
            used += w;
            out.push(s);
        } else {
            let keep: String = s.content.chars().take(width.saturating_sub(used + 1)).collect();
            out.push(Span::styled(format!("{keep}…"), s.style));
            break;
        }
    }
    Line::from(out)
}

/// Whole percent of `part` in `total` (0 when there is no total).
pub fn percent(part: u64, total: u64) -> u64 {
    (part * 100 + total / 2).checked_div(total).unwrap_or(0)
}

/// The newest ids that fit in `rows` lines of `width` columns, oldest first, wrapped at
/// spaces, starting with `…` when older ones are cut.
pub fn trail<'a>(ids: impl Iterator<Item = &'a u64>, width: usize, rows: usize) -> Vec<String> {
    let ids: Vec<String> = ids.map(|id| format!("#{id}")).collect();
    if width == 0 || rows == 0 {
        return Vec::new();
    }
    // The oldest start that fits (the trail is short: trying each start is cheap).
    for skip in 0..ids.len() {
        let words = (skip > 0).then(|| "…".to_string()).into_iter().chain(ids[skip..].iter().cloned());
        if let Some(lines) = wrap(words, width, rows) {
            return lines;
        }
    }
    if ids.is_empty() { Vec::new() } else { vec!["…".to_string()] }
}

/// `text` wrapped at spaces into lines of `width` cells, at most `rows` lines; a word longer than
/// a line is split. When the text needs more lines, the last one ends with `…` (the lessons are
/// written so that this never happens at 80 columns; a test holds them to it).
pub fn wrap_text(text: &str, width: usize, rows: usize) -> Vec<String> {
    let cells = |s: &str| Span::raw(s).width();
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut words: std::collections::VecDeque<String> = text.split_whitespace().map(str::to_string).collect();
    while let Some(word) = words.pop_front() {
        let sep = usize::from(!cur.is_empty());
        if cells(&cur) + sep + cells(&word) <= width {
            if sep == 1 {
                cur.push(' ');
            }
            cur.push_str(&word);
        } else if cur.is_empty() {
            // A word longer than the whole line: split it.
            let cut = width.max(1);
            cur = word.chars().take(cut).collect();
            words.push_front(word.chars().skip(cut).collect());
            lines.push(std::mem::take(&mut cur));
        } else {
            lines.push(std::mem::take(&mut cur));
            words.push_front(word);
        }
        if lines.len() == rows && rows > 0 {
            break;
        }
    }
    if !cur.is_empty() && lines.len() < rows {
        lines.push(cur);
    }
    if (!words.is_empty())
        && let Some(last) = lines.last_mut()
    {
        let keep = width.saturating_sub(1);
        if last.chars().count() > keep {
            *last = last.chars().take(keep).collect();
        }
        last.push('…');
    }
    lines
}

/// Greedy word wrap into at most `rows` lines; `None` if the words do not fit.
fn wrap(words: impl Iterator<Item = String>, width: usize, rows: usize) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for word in words {
        let len = word.chars().count();
        let room = lines.last().map(|line| width - line.chars().count());
        match room {
            Some(room) if room > len => {
                let line = lines.last_mut().expect("a last line");
                line.push(' ');
                line.push_str(&word);
            }
            _ if len <= width && lines.len() < rows => lines.push(word),
            _ => return None,
        }
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_and_marks_what_does_not_fit() {
        let t = "one two three four five";
        assert_eq!(wrap_text(t, 9, 3), ["one two", "three", "four five"]);
        assert_eq!(wrap_text(t, 9, 2), ["one two", "three…"]);
        assert_eq!(wrap_text("abcdefghij", 4, 3), ["abcd", "efgh", "ij"]);
        assert!(wrap_text("", 10, 3).is_empty());
    }

    #[test]
    fn percent_rounds() {
        assert_eq!([percent(1, 3), percent(2, 3), percent(0, 0), percent(5, 5)], [33, 67, 0, 100]);
    }

    #[test]
    fn trail_keeps_the_newest_that_fit() {
        let ids: Vec<u64> = vec![1, 4, 7, 10, 13];
        for (width, rows, want) in [
            (40, 1, vec!["#1 #4 #7 #10 #13"]),
            (16, 1, vec!["#1 #4 #7 #10 #13"]),
            (15, 1, vec!["… #4 #7 #10 #13"]),
            (12, 1, vec!["… #7 #10 #13"]),
            (9, 1, vec!["… #10 #13"]),
            (5, 1, vec!["… #13"]),
            (4, 1, vec!["…"]),
            (0, 1, vec![]),
            (9, 2, vec!["#1 #4 #7", "#10 #13"]),
            (5, 2, vec!["… #10", "#13"]),
            (4, 3, vec!["… #7", "#10", "#13"]),
            (5, 0, vec![]),
        ] {
            assert_eq!(trail(ids.iter(), width, rows), want, "{width}x{rows}");
        }
        assert!(trail([].iter(), 10, 2).is_empty());
    }
}
