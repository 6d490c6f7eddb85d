//! Small text helpers shared by the panes.

// Durations are written one way everywhere (panes, headless, play): see `crate::units`.
pub use crate::units::duration;

/// Whole percent of `part` in `total` (0 when there is no total).
pub fn percent(part: u64, total: u64) -> u64 {
    (part * 100 + total / 2).checked_div(total).unwrap_or(0)
}

/// The newest ids that fit in `rows` lines of `width` columns, oldest first, wrapped at
/// spaces, starting with `…` when older ones are cut.
pub fn trail<'a>(ids: impl Iterator<Item = &'a u64>, width: usize, rows: usize) -> Vec<String> {
    let ids: Vec<String> = ids.map(u64::to_string).collect();
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
    fn percent_rounds() {
        assert_eq!([percent(1, 3), percent(2, 3), percent(0, 0), percent(5, 5)], [33, 67, 0, 100]);
    }

    #[test]
    fn trail_keeps_the_newest_that_fit() {
        let ids: Vec<u64> = vec![1, 4, 7, 10, 13];
        for (width, rows, want) in [
            (40, 1, vec!["1 4 7 10 13"]),
            (11, 1, vec!["1 4 7 10 13"]),
            (10, 1, vec!["… 7 10 13"]),
            (9, 1, vec!["… 7 10 13"]),
            (8, 1, vec!["… 10 13"]),
            (4, 1, vec!["… 13"]),
            (3, 1, vec!["…"]),
            (0, 1, vec![]),
            (6, 2, vec!["1 4 7", "10 13"]),
            (4, 2, vec!["… 10", "13"]),
            (3, 3, vec!["… 7", "10", "13"]),
            (5, 0, vec![]),
        ] {
            assert_eq!(trail(ids.iter(), width, rows), want, "{width}x{rows}");
        }
        assert!(trail([].iter(), 10, 2).is_empty());
    }
}
