//! What a too-small terminal shows instead of a squashed dashboard.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::{layout, theme};

pub fn render(frame: &mut Frame, area: Rect) {
    if area.is_empty() {
        return;
    }
    let text = format!(
        "Terminal too small: {}x{}. warren needs at least {}x{} — enlarge the window or shrink the font.",
        area.width,
        area.height,
        layout::MIN_WIDTH,
        layout::MIN_HEIGHT
    );
    // Wrapped at word boundaries: a line or so more than the characters alone need.
    let height = text.chars().count().div_ceil(usize::from(area.width)) as u16 + 1;
    let paragraph = Paragraph::new(Line::styled(text, theme::WARN).centered()).wrap(Wrap { trim: true });
    frame.render_widget(paragraph, layout::centered(area, area.width, height));
}
