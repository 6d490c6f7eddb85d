//! The help overlay: every key, in a box over the middle of the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{layout, theme};
use crate::keymap;

/// Width of the key column.
const KEY_W: usize = 16;

pub fn render(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = keymap::HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<KEY_W$}"), theme::KEY),
                Span::styled(*what, theme::VALUE),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(" any key closes this help", theme::LABEL));
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3;
    let popup = layout::centered(area, width, lines.len() as u16 + 2);
    let block = Block::bordered().title(Line::styled(" Keys ", theme::VALUE)).border_style(theme::SELECTED);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
