//! The banner line: an error (red, until it times out), or else a notice (for a few seconds),
//! or else the lesson's caption.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::theme;
use crate::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(banner) = &app.banner {
        let text = format!(" ⚠ {}", banner.text);
        frame.render_widget(Paragraph::new(text).style(theme::BANNER), area);
    } else if let Some(notice) = &app.notice {
        // Information, not an error: why a key did not apply, or what it left for later.
        let text = format!(" ℹ {}", notice.text);
        frame.render_widget(Paragraph::new(text).style(theme::WARN), area);
    } else if let Some(lesson) = &app.lesson {
        let state = if lesson.paused {
            " ‖ paused (Enter resumes)"
        } else if lesson.waiting {
            " … waiting for the queue to settle"
        } else {
            ""
        };
        let (done, all) = lesson.step;
        let text = format!(
            " ▶ {} · step {done}/{all}{state} · {}",
            lesson.title,
            lesson.caption.as_deref().unwrap_or("")
        );
        frame.render_widget(Paragraph::new(text).style(theme::SELECTED), area);
    }
}
