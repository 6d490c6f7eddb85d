//! The error banner: one line, red, until it times out or the connection comes back.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::theme;
use crate::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(banner) = &app.banner {
        let text = format!(" ⚠ {}", banner.text);
        frame.render_widget(Paragraph::new(text).style(theme::BANNER), area);
    }
}
