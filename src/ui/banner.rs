//! The lines under the header: an error banner (red, until it times out), a notice (why a key did
//! not apply, for a few seconds) and the lesson's caption, each wrapped at spaces, never cut: the
//! error and the notice up to two lines each, the caption up to three.
//!
//! ```text
//!  ‖ Classic round-robin · step 2/3  PAUSED  Enter resumes · Five tasks. Watch each lane: C1
//!    gets #1 and #4, C2 gets #2 and #5, C3 gets #3.
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{format, theme};
use crate::app::App;

/// The caption takes at most this many lines (the lessons are written to fit at 80 columns).
pub const CAPTION_MAX: usize = 3;
const BANNER_MAX: usize = 2;

/// How many lines the banner and the caption need at this width.
pub fn height(app: &App, width: u16) -> u16 {
    (banner_lines(app, width).len() + notice_lines(app, width).len() + caption_lines(app, width).len()) as u16
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines = banner_lines(app, area.width);
    lines.extend(notice_lines(app, area.width));
    lines.extend(caption_lines(app, area.width));
    frame.render_widget(Paragraph::new(lines), area);
}

fn banner_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(banner) = &app.banner else { return Vec::new() };
    let text = format!("⚠ {}", banner.text);
    let wrapped = format::wrap_text(&text, usize::from(width).saturating_sub(2), 0, BANNER_MAX);
    wrapped
        .into_iter()
        .map(|l| {
            let pad = usize::from(width).saturating_sub(l.chars().count() + 1);
            Line::styled(format!(" {l}{}", " ".repeat(pad)), theme::BANNER)
        })
        .collect()
}

/// Information, not an error: why a key did not apply, or what it left for later.
fn notice_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(notice) = &app.notice else { return Vec::new() };
    let text = format!("ℹ {}", notice.text);
    let wrapped = format::wrap_text(&text, usize::from(width).saturating_sub(2), 0, BANNER_MAX);
    wrapped.into_iter().map(|l| Line::styled(format!(" {l}"), theme::WARN)).collect()
}

/// ` ▶ Title · step 2/5 · caption text…` (`‖` and a `PAUSED` badge while paused), the caption
/// wrapped under the title.
pub fn caption_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(lesson) = &app.lesson else { return Vec::new() };
    let (done, all) = lesson.step;
    let mark = if lesson.paused { "‖" } else { "▶" };
    let mut head = vec![
        Span::raw(" "),
        Span::styled(format!("{mark} {} · step {done}/{all}", lesson.title), theme::SELECTED),
        Span::raw(" "),
    ];
    if lesson.paused {
        head.push(Span::styled(" PAUSED ", theme::BADGE));
        head.push(Span::styled(" Enter resumes · ", theme::LABEL));
    } else if lesson.waiting {
        head.push(Span::styled("· waiting for the queue to settle · ", theme::LABEL));
    } else {
        head.push(Span::styled("· ", theme::LABEL));
    }
    let head_w: usize = head.iter().map(Span::width).sum();
    let caption = lesson.caption.as_deref().unwrap_or("");
    let width = usize::from(width);
    let wrapped = format::wrap_text(caption, width.saturating_sub(3), head_w.saturating_sub(3), CAPTION_MAX);
    let mut lines = Vec::new();
    for (i, text) in wrapped.into_iter().enumerate() {
        if i == 0 {
            let mut first = head.clone();
            first.push(Span::styled(text, theme::VALUE));
            lines.push(Line::from(first));
        } else {
            lines.push(Line::from(vec![Span::raw("   "), Span::styled(text, theme::VALUE)]));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from(head));
    }
    lines
}
