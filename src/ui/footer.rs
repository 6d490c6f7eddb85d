//! The footer: the keys that matter most, and where to find the rest.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme;

/// The main keys, most important first (on narrow screens the ones that do not fit are left out).
const MAIN: &[(&str, &str)] = &[
    ("space", "task"),
    ("b", "burst"),
    ("m", "mode"),
    ("+/-", "delay"),
    ("k", "kill"),
    ("d", "details"),
    ("t", "timeline"),
    ("z", "zoom"),
    ("p/P", "prefetch"),
    ("Tab", "select"),
    ("r", "stream"),
    ("a", "add"),
    ("x", "remove"),
];
/// Always shown, at the right.
const ALWAYS: &[(&str, &str)] = &[("?", "help"), ("q", "quit")];

/// Only warren's own broker can be restarted (the durability lesson): after `k kill`. One word,
/// so that it fits at 80 columns; the help says "restart embedded broker".
const RESTART: (&str, &str) = ("B", "restart");

/// `embedded`: the broker is warren's own, so `B` (restart it) applies and is shown.
pub fn render(frame: &mut Frame, area: Rect, embedded: bool) {
    let right = keys(ALWAYS);
    let [left_area, right_area] = split(area);
    let mut main = MAIN.to_vec();
    if embedded {
        let after_kill = main.iter().position(|(k, _)| *k == "k").map_or(main.len(), |i| i + 1);
        main.insert(after_kill, RESTART);
    }
    let fit = main.iter().scan(0, |used, pair| {
        *used += keys(&[*pair]).width();
        Some(*used)
    });
    let shown = fit.take_while(|&used| used <= usize::from(left_area.width)).count();
    frame.render_widget(Paragraph::new(keys(&main[..shown])), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

/// The footer's left part (the main keys) and its right part (`? help  q quit`).
fn split(area: Rect) -> [Rect; 2] {
    let right = keys(ALWAYS).width() as u16;
    area.layout(&Layout::horizontal([Constraint::Fill(1), Constraint::Length(right)]))
}

/// Where the `--keys` overlay goes: over the footer's main keys, never over `? help  q quit` and
/// never over a border; the hints it hides for a moment are the ones just pressed.
pub fn hints(area: Rect) -> Rect {
    split(area)[0]
}

/// ` key desc  key desc `
fn keys(pairs: &[(&'static str, &'static str)]) -> Line<'static> {
    let spans = pairs.iter().flat_map(|(key, what)| {
        [Span::raw(" "), Span::styled(*key, theme::KEY), Span::styled(format!(" {what} "), theme::LABEL)]
    });
    Line::from(spans.collect::<Vec<_>>())
}
