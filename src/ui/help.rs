//! The help overlay: every key, in a box over the middle of the screen.
//!
//! It must be whole at 80x24, the smallest screen warren draws on, with room for more keys than
//! today. So the layout adapts: one column when it fits, else two or three, with descriptions
//! wrapped inside their column (never cut); the closing hint sits in the bottom border.
//!
//! ```text
//! ┌ Keys ──────────────────────────────────────────────────────────────────────┐
//! │ space         publish one task        │ a             add a consumer       │
//! │ r             start / stop the        │ x             remove the selected  │
//! │               continuous stream       │               consumer gracefully  │
//! └───────────────────────── any key closes this help ─────────────────────────┘
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{layout, theme};
use crate::keymap;

/// The hint in the bottom border.
pub const CLOSING: &str = " any key closes this help ";
/// The most columns tried; beyond that a description would wrap into a stack of words.
const MAX_COLUMNS: usize = 3;
/// A narrower description column than this is not worth a column more.
const MIN_DESC: usize = 12;
/// Between two columns: a space, a thin rule, a space.
const GAP: usize = 3;

pub fn render(frame: &mut Frame, area: Rect) {
    render_entries(frame, area, keymap::HELP);
}

/// The overlay for any list of (key, what it does), so tests can check that it grows.
pub fn render_entries(frame: &mut Frame, area: Rect, entries: &[(&str, &str)]) {
    let plan = plan(entries, area);
    let popup = layout::centered(area, plan.width, plan.height);
    let block = Block::bordered()
        .title(Line::styled(" Keys ", theme::VALUE))
        .title_bottom(Line::styled(CLOSING, theme::LABEL).centered())
        .border_style(theme::SELECTED);
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let mut constraints = Vec::new();
    for i in 0..plan.columns.len() {
        if i > 0 {
            constraints.push(Constraint::Length(GAP as u16));
        }
        constraints.push(Constraint::Length(plan.column_width as u16));
    }
    let rects = inner.layout_vec(&Layout::horizontal(constraints));
    for (i, column) in plan.columns.iter().enumerate() {
        let lines: Vec<Line> = column.iter().flat_map(|e| e.lines(plan.key_width)).collect();
        frame.render_widget(Paragraph::new(lines), rects[2 * i]);
        if i > 0 {
            let rule = vec![Line::styled(" │", theme::MUTED); usize::from(inner.height)];
            frame.render_widget(Paragraph::new(rule), rects[2 * i - 1]);
        }
    }
}

/// One key and its description, wrapped to its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub what: Vec<String>,
}

impl Entry {
    fn lines(&self, key_width: usize) -> Vec<Line<'static>> {
        self.what
            .iter()
            .enumerate()
            .map(|(i, what)| {
                let key = if i == 0 { self.key.as_str() } else { "" };
                Line::from(vec![
                    Span::styled(format!(" {key:<key_width$} "), theme::KEY),
                    Span::styled(what.clone(), theme::VALUE),
                ])
            })
            .collect()
    }
}

/// Where every entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub columns: Vec<Vec<Entry>>,
    pub key_width: usize,
    pub column_width: usize,
    /// Of the whole box, borders included.
    pub width: u16,
    pub height: u16,
}

/// The fewest columns whose box fits in `area`; if none does, the most columns (the box is then
/// cut at the bottom, which only happens below the smallest size warren draws on).
pub fn plan(entries: &[(&str, &str)], area: Rect) -> Plan {
    let mut best = None;
    for columns in 1..=MAX_COLUMNS {
        let Some(plan) = plan_columns(entries, columns, usize::from(area.width)) else { break };
        let fits = plan.height <= area.height && plan.width <= area.width;
        best = Some(plan);
        if fits {
            break;
        }
    }
    // Even a single column narrower than MIN_DESC: let it wrap hard and be cut.
    best.unwrap_or_else(|| plan_with_width(entries, 1, usize::from(area.width.max(4) - 2)))
}

/// `columns` columns in at most `max_width` cells (borders included); `None` when a description
/// column would be narrower than [`MIN_DESC`].
fn plan_columns(entries: &[(&str, &str)], columns: usize, max_width: usize) -> Option<Plan> {
    let key_width = entries.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let what_width = entries.iter().map(|(_, w)| width(w)).max().unwrap_or(0);
    let natural = key_width + 2 + what_width + 1;
    let room = max_width.saturating_sub(2 + GAP * (columns - 1)) / columns;
    let column_width = natural.min(room);
    (column_width >= key_width + 2 + MIN_DESC).then(|| plan_with_width(entries, columns, column_width))
}

fn plan_with_width(entries: &[(&str, &str)], columns: usize, column_width: usize) -> Plan {
    let key_width = entries.iter().map(|(k, _)| width(k)).max().unwrap_or(0).min(column_width / 2);
    // One space before the key, one after it, one at the right edge.
    let what_width = column_width.saturating_sub(key_width + 3).max(1);
    let wrapped: Vec<Entry> =
        entries.iter().map(|(k, w)| Entry { key: k.to_string(), what: wrap(w, what_width) }).collect();
    // Fill columns in reading order, each up to an even share of the lines.
    let total: usize = wrapped.iter().map(|e| e.what.len()).sum();
    let share = total.div_ceil(columns);
    let mut cols: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut used = 0;
    for entry in wrapped {
        let n = entry.what.len();
        if used > 0 && used + n > share && cols.len() < columns {
            cols.push(Vec::new());
            used = 0;
        }
        used += n;
        cols.last_mut().expect("one column at least").push(entry);
    }
    let rows = cols.iter().map(|c| c.iter().map(|e| e.what.len()).sum::<usize>()).max().unwrap_or(0);
    let n = cols.len();
    let inner = (n * column_width + GAP * (n - 1)).max(width(CLOSING) + 2);
    Plan {
        columns: cols,
        key_width,
        column_width,
        width: u16::try_from(inner + 2).unwrap_or(u16::MAX),
        height: u16::try_from(rows + 2).unwrap_or(u16::MAX),
    }
}

fn width(text: &str) -> usize {
    Span::raw(text).width()
}

/// Greedy word wrap to `max` cells; a word longer than a line is split; always one line at least.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let lines = super::format::wrap_text(text, max, usize::MAX);
    if lines.is_empty() { vec![String::new()] } else { lines }
}
