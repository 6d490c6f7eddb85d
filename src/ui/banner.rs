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
use ratatui::style::Style;
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
    let wrapped = format::wrap_text(&text, usize::from(width).saturating_sub(2), BANNER_MAX);
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
    let wrapped = format::wrap_text(&text, usize::from(width).saturating_sub(2), BANNER_MAX);
    wrapped.into_iter().map(|l| Line::styled(format!(" {l}"), theme::WARN)).collect()
}

/// ` ▶ Title · step 2/5 · caption text…` (`‖` and a `PAUSED` badge while paused), the caption
/// wrapped under the title.
fn caption_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(lesson) = &app.lesson else { return Vec::new() };
    let (done, all) = lesson.step;
    let mark = if lesson.paused { "‖" } else { "▶" };
    // Words keep their style; the head wraps with the caption, so nothing is ever cut.
    let mut words: Vec<(String, Style)> = Vec::new();
    let mut push =
        |text: &str, style: Style| words.extend(text.split_whitespace().map(|w| (w.to_string(), style)));
    push(&format!("{mark} {} · step {done}/{all}", lesson.title), theme::SELECTED);
    if lesson.paused {
        words.push((" PAUSED ".to_string(), theme::BADGE));
        words.push(("Enter resumes ·".to_string(), theme::LABEL));
    } else if lesson.waiting {
        words.push(("· waiting for the queue to settle ·".to_string(), theme::LABEL));
    } else {
        words.push(("·".to_string(), theme::LABEL));
    }
    let caption = lesson.caption.as_deref().unwrap_or("");
    words.extend(caption.split_whitespace().map(|w| (w.to_string(), theme::VALUE)));
    wrap_styled(words, usize::from(width), CAPTION_MAX)
}

/// Greedy wrap of styled words (a word with spaces inside, like a badge, stays whole) into at
/// most `rows` lines of `width`, the first starting at column 1 and the others at 3; when they
/// do not fit, the last line ends with `…`.
fn wrap_styled(words: Vec<(String, Style)>, width: usize, rows: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<(Vec<Span<'static>>, usize)> = Vec::new();
    let mut cut = false;
    for (word, style) in words {
        let len = word.chars().count();
        let count = lines.len();
        match lines.last_mut() {
            Some((spans, used)) if *used + 1 + len <= width => {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(word, style));
                *used += 1 + len;
            }
            _ if count < rows => {
                let indent = if lines.is_empty() { 1 } else { 3 };
                let word: String = word.chars().take(width.saturating_sub(indent)).collect();
                let used = indent + word.chars().count();
                lines.push((vec![Span::raw(" ".repeat(indent)), Span::styled(word, style)], used));
            }
            _ => {
                cut = true;
                break;
            }
        }
    }
    if cut && let Some((spans, _)) = lines.last_mut() {
        spans.push(Span::styled("…", theme::LABEL));
    }
    lines.into_iter().map(|(spans, _)| Line::from(spans)).collect()
}
