//! Where every region goes, as pure functions of the terminal area (and a few counts), so the
//! renderer and the mouse hit-test share one answer and both can be unit tested.

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// The producer / distribution / ledger column.
pub const LEFT_WIDTH: u16 = 42;
/// The producer pane: four lines inside a border.
pub const PRODUCER_HEIGHT: u16 = 6;

/// From this width the side panels (producer, distribution, ledger) stand beside the flow.
pub const SIDE_FROM: u16 = 140;

/// The top-level regions of a screen that is big enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    /// The error banner and the lesson's caption, when there is one.
    pub notices: Option<Rect>,
    /// The flow view (or the details, on demand).
    pub body: Rect,
    /// The side panels, where there is room for them beside the flow.
    pub side: Option<Rect>,
    pub footer: Rect,
}

/// Is `area` at least [`MIN_WIDTH`] x [`MIN_HEIGHT`]?
pub fn fits(area: Rect) -> bool {
    area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT
}

/// Split the screen: `notice_lines` for the banner and caption, `side` for the side panels
/// (only taken from [`SIDE_FROM`] columns).
pub fn screen(area: Rect, header_lines: u16, notice_lines: u16, side: bool) -> Screen {
    let [header, notices, main, footer] = area.layout(&Layout::vertical([
        Constraint::Length(header_lines),
        Constraint::Length(notice_lines),
        Constraint::Fill(1),
        Constraint::Length(1),
    ]));
    let notices = (notice_lines > 0).then_some(notices);
    if side && area.width >= SIDE_FROM {
        let [body, side] =
            main.layout(&Layout::horizontal([Constraint::Fill(1), Constraint::Length(LEFT_WIDTH)]));
        return Screen { header, notices, body, side: Some(side), footer };
    }
    Screen { header, notices, body: main, side: None, footer }
}

/// The producer, distribution and ledger panels stacked in `area`; `ledger_lines` is the ledger
/// pane's text height (it grows with loss reasons).
pub fn panels(area: Rect, ledger_lines: u16) -> [Rect; 3] {
    area.layout(&Layout::vertical([
        Constraint::Length(PRODUCER_HEIGHT),
        Constraint::Min(3),
        Constraint::Length(ledger_lines + 2),
    ]))
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
        for (w, h, notices, side) in [
            (160, 45, 0, true),
            (160, 45, 3, false),
            (100, 30, 1, true),
            (80, 24, 3, true),
            (139, 30, 0, true),
        ] {
            let s = screen(area(w, h), 2, notices, side);
            assert_eq!(s.header, Rect::new(0, 0, w, 2));
            assert_eq!(s.notices.map(|n| (n.y, n.height)), (notices > 0).then_some((2, notices)));
            assert_eq!(s.footer, Rect::new(0, h - 1, w, 1));
            assert_eq!(s.body.y, 2 + notices);
            assert_eq!(s.body.bottom(), s.footer.y);
            // The side panels only where the flow keeps at least 98 columns.
            assert_eq!(s.side.is_some(), side && w >= SIDE_FROM, "{w}x{h}");
            let side_w = s.side.map_or(0, |r| r.width);
            assert_eq!(s.body.width + side_w, w);
        }
    }

    #[test]
    fn panels_stack_with_the_ledger_at_the_bottom() {
        let [producer, distribution, ledger] = panels(Rect::new(118, 2, 42, 40), 5);
        assert_eq!((producer.y, producer.height), (2, PRODUCER_HEIGHT));
        assert_eq!((ledger.height, ledger.bottom()), (7, 42));
        assert_eq!(distribution.y, producer.bottom());
        assert_eq!(distribution.bottom(), ledger.y);
    }

    #[test]
    fn popup_is_centered_and_clipped() {
        assert_eq!(centered(area(100, 30), 40, 10), Rect::new(30, 10, 40, 10));
        assert_eq!(centered(area(20, 5), 40, 10), area(20, 5));
    }
}
