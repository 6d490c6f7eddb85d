//! Where every region goes, as pure functions of the terminal area (and a few counts), so the
//! renderer and the mouse hit-test share one answer and both can be unit tested.

use ratatui::layout::{Constraint, Layout, Position, Rect};

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// The producer / distribution / ledger column.
pub const LEFT_WIDTH: u16 = 42;
/// The smallest consumer pane, borders included.
pub const PANE_MIN_WIDTH: u16 = 38;
pub const PANE_MIN_HEIGHT: u16 = 10;
/// From this width the header fits its facts on two lines instead of three.
pub const WIDE_HEADER: u16 = 130;
/// The producer pane: four lines inside a border.
pub const PRODUCER_HEIGHT: u16 = 6;

/// The top-level regions of a screen that is big enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub producer: Rect,
    pub distribution: Rect,
    pub ledger: Rect,
    pub grid: Rect,
    pub footer: Rect,
}

/// Is `area` at least [`MIN_WIDTH`] x [`MIN_HEIGHT`]?
pub fn fits(area: Rect) -> bool {
    area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT
}

/// Lines of text inside the header's border.
pub fn header_lines(width: u16) -> u16 {
    if width >= WIDE_HEADER { 2 } else { 3 }
}

/// Split the screen. `ledger_lines` is the ledger pane's text height (it grows with loss reasons).
pub fn screen(area: Rect, banner: bool, ledger_lines: u16) -> Screen {
    let [header, banner_area, body, footer] = area.layout(&Layout::vertical([
        Constraint::Length(header_lines(area.width) + 2),
        Constraint::Length(u16::from(banner)),
        Constraint::Fill(1),
        Constraint::Length(1),
    ]));
    let [left, grid] =
        body.layout(&Layout::horizontal([Constraint::Length(LEFT_WIDTH), Constraint::Fill(1)]));
    let [producer, distribution, ledger] = left.layout(&Layout::vertical([
        Constraint::Length(PRODUCER_HEIGHT),
        Constraint::Min(3),
        Constraint::Length(ledger_lines + 2),
    ]));
    Screen { header, banner: banner.then_some(banner_area), producer, distribution, ledger, grid, footer }
}

/// The consumer panes that fit, which consumers they show, and where the "+N hidden" line goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grid {
    /// One rect per shown consumer, in order.
    pub panes: Vec<Rect>,
    /// Position (among visible consumers) of the consumer in `panes[0]`.
    pub first: usize,
    /// Visible consumers without a pane.
    pub hidden: usize,
    /// The line that says how many are hidden, when some are.
    pub hint: Option<Rect>,
}

impl Grid {
    /// Position (among visible consumers) of the pane under this cell.
    pub fn at(&self, column: u16, row: u16) -> Option<usize> {
        let p = Position::new(column, row);
        self.panes.iter().position(|r| r.contains(p)).map(|i| self.first + i)
    }
}

/// Lay out `count` consumer panes in `area`, keeping the `selected` one (a position among
/// visible consumers) on screen: when not all fit, consumers are shown a page at a time, the page
/// that holds the selection, so panes do not jump around on every Tab.
pub fn grid(area: Rect, count: usize, selected: usize) -> Grid {
    if count == 0 {
        return Grid::default();
    }
    if area.is_empty() {
        return Grid { hidden: count, ..Grid::default() };
    }
    let max_cols = usize::from((area.width / PANE_MIN_WIDTH).max(1));
    let rows_in = |height: u16| usize::from(height / PANE_MIN_HEIGHT);
    if count <= max_cols * rows_in(area.height) {
        return Grid { panes: cells(area, count, max_cols), ..Grid::default() };
    }
    // Not all fit: keep the bottom line for the hint.
    let [body, hint] = area.layout(&Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]));
    let capacity = max_cols * rows_in(body.height);
    // The page that holds the selection; the last page is full, overlapping the one before.
    let first = (selected.min(count - 1).checked_div(capacity).unwrap_or(0) * capacity)
        .min(count.saturating_sub(capacity));
    Grid { panes: cells(body, capacity, max_cols), first, hidden: count - capacity, hint: Some(hint) }
}

/// `count` panes in balanced rows of at most `max_cols`, left to right, top to bottom.
fn cells(area: Rect, count: usize, max_cols: usize) -> Vec<Rect> {
    if count == 0 {
        return Vec::new();
    }
    let rows = count.div_ceil(max_cols);
    let cols = count.div_ceil(rows);
    let height = area.height / rows as u16;
    let columns = split_even(area.x, area.width, cols);
    (0..count)
        .map(|i| {
            let (x, width) = columns[i % cols];
            Rect::new(x, area.y + (i / cols) as u16 * height, width, height)
        })
        .collect()
}

/// Split `len` cells from `start` into `n` runs whose lengths differ by at most one.
fn split_even(start: u16, len: u16, n: usize) -> Vec<(u16, u16)> {
    let n = n as u16;
    let (base, extra) = (len / n, len % n);
    let mut at = start;
    (0..n)
        .map(|i| {
            let width = base + u16::from(i < extra);
            let run = (at, width);
            at += width;
            run
        })
        .collect()
}

/// A popup of at most `width` x `height`, centered in `area` and clipped to it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    area.centered(Constraint::Length(width.min(area.width)), Constraint::Length(height.min(area.height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(w: u16, h: u16) -> Rect {
        Rect::new(0, 0, w, h)
    }

    #[test]
    fn minimum_size() {
        for (w, h, ok) in [(80, 24, true), (79, 24, false), (80, 23, false), (0, 0, false), (300, 90, true)] {
            assert_eq!(fits(area(w, h)), ok, "{w}x{h}");
        }
    }

    #[test]
    fn screen_regions_tile_the_area() {
        for (w, h, banner) in [(160, 45, false), (160, 45, true), (100, 30, false), (80, 24, true)] {
            let s = screen(area(w, h), banner, 5);
            assert_eq!(s.header.height, header_lines(w) + 2);
            assert_eq!(s.banner.map(|b| b.height), banner.then_some(1));
            assert_eq!(s.footer, Rect::new(0, h - 1, w, 1));
            assert_eq!(s.producer.width, LEFT_WIDTH);
            assert_eq!(s.grid.x, LEFT_WIDTH);
            assert_eq!(s.grid.width, w - LEFT_WIDTH);
            assert_eq!(s.grid.bottom(), s.footer.y);
            assert_eq!(s.ledger.bottom(), s.footer.y);
            assert_eq!(s.ledger.height, 7);
            assert!(s.distribution.height >= 3, "{w}x{h}: {s:?}");
        }
    }

    #[test]
    fn twelve_panes_fit_at_160x45() {
        let s = screen(area(160, 45), false, 5);
        let g = grid(s.grid, 12, 0);
        assert_eq!((g.panes.len(), g.hidden, g.hint), (12, 0, None));
        for p in &g.panes {
            assert!(p.width >= PANE_MIN_WIDTH && p.height >= PANE_MIN_HEIGHT, "{p:?}");
            assert!(s.grid.contains(p.as_position()) && p.bottom() <= s.grid.bottom(), "{p:?}");
        }
    }

    #[test]
    fn grid_shape_adapts_to_count_and_area() {
        // (area w, h, consumers) -> (columns used, pane width, pane height)
        let cases = [
            (118, 40, 1, 1, 118, 40),
            (118, 40, 3, 3, 40, 40),
            (118, 40, 4, 2, 59, 20),
            (118, 40, 5, 3, 40, 20),
            (118, 40, 12, 3, 40, 10),
            (38, 19, 1, 1, 38, 19),
            (76, 30, 3, 2, 38, 15),
        ];
        for (w, h, n, cols, pw, ph) in cases {
            let g = grid(area(w, h), n, 0);
            assert_eq!(g.panes.len(), n, "{w}x{h} n={n}");
            let used = g.panes.iter().filter(|p| p.y == 0).count();
            assert_eq!((used, g.panes[0].width, g.panes[0].height), (cols, pw, ph), "{w}x{h} n={n}");
            // No overlaps.
            for (i, a) in g.panes.iter().enumerate() {
                for b in &g.panes[i + 1..] {
                    assert!(!a.intersects(*b), "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn too_many_panes_page_around_the_selection() {
        // 1 column, 2 rows of panes (21 lines: 20 for panes, 1 for the hint).
        let a = area(40, 21);
        // (count, selected) -> first shown
        for (n, sel, first) in [(5, 0, 0), (5, 1, 0), (5, 2, 2), (5, 3, 2), (5, 4, 3), (5, 99, 3)] {
            let g = grid(a, n, sel);
            assert_eq!((g.first, g.panes.len(), g.hidden), (first, 2, n - 2), "n={n} sel={sel}");
            assert_eq!(g.hint, Some(Rect::new(0, 20, 40, 1)));
            let shown = g.first..g.first + g.panes.len();
            assert!(shown.contains(&sel.min(n - 1)));
        }
    }

    #[test]
    fn grid_degrades_without_panicking() {
        for (w, h, n) in [(0, 0, 3), (1, 1, 3), (10, 5, 1), (37, 9, 2), (38, 9, 50), (200, 3, 7)] {
            let g = grid(area(w, h), n, n / 2);
            assert_eq!(g.panes.len() + g.hidden, n, "{w}x{h}");
        }
        assert_eq!(grid(area(100, 100), 0, 0), Grid::default());
    }

    #[test]
    fn hit_test_maps_cells_to_positions() {
        let g = grid(Rect::new(42, 4, 118, 40), 6, 0);
        // 3 columns x 2 rows starting at (42, 4), each 40 (or 39) wide and 20 high.
        for (x, y, want) in [
            (42, 4, Some(0)),
            (81, 23, Some(0)),
            (82, 4, Some(1)),
            (159, 4, Some(2)),
            (42, 24, Some(3)),
            (159, 43, Some(5)),
            (42, 44, None),
            (41, 4, None),
            (0, 0, None),
        ] {
            assert_eq!(g.at(x, y), want, "({x},{y})");
        }
        let paged = grid(area(40, 21), 5, 4);
        assert_eq!((paged.at(0, 0), paged.at(0, 10), paged.at(0, 20)), (Some(3), Some(4), None));
    }

    #[test]
    fn popup_is_centered_and_clipped() {
        assert_eq!(centered(area(100, 30), 40, 10), Rect::new(30, 10, 40, 10));
        assert_eq!(centered(area(20, 5), 40, 10), area(20, 5));
    }
}
