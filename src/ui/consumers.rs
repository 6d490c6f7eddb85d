//! The consumer grid: one pane per visible consumer, as many as fit, paged around the selection.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{layout, pane, selected_position, theme};
use crate::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App, now: Instant) {
    let visible: Vec<_> = app.visible_consumers().collect();
    if visible.is_empty() {
        let text = Line::styled("no consumers: press a to add one", theme::WARN).centered();
        frame.render_widget(Paragraph::new(text), layout::centered(area, area.width, 1));
        return;
    }
    let grid = layout::grid(area, visible.len(), selected_position(app));
    let ctx = pane::Context {
        selected: app.selected,
        total_processed: app.total_processed(),
        // One scale for every sparkline, so heights compare across panes.
        spark_max: visible
            .iter()
            .flat_map(|c| c.processed.history().iter().copied())
            .max()
            .unwrap_or(0)
            .max(1),
    };
    for (rect, consumer) in grid.panes.iter().zip(&visible[grid.first..]) {
        pane::render(frame, *rect, consumer, app.ledger.held_by(consumer.id), &ctx, now);
    }
    if let Some(hint) = grid.hint {
        let text = format!("+{} hidden (Tab to scroll)", grid.hidden);
        frame.render_widget(Paragraph::new(Line::styled(text, theme::WARN).centered()), hint);
    }
}
