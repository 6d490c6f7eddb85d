//! The producer pane: what the keys publish, the stream, and what went out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph};

use super::{format, theme};
use crate::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let p = &app.producer;
    // Nacked by the broker (a full queue with overflow reject-publish).
    let refused = app.ledger.totals().refused;
    let block = Block::bordered().title(" Producer ").padding(Padding::horizontal(1));
    let width = usize::from(block.inner(area).width);
    let stream =
        if p.streaming { Span::styled("ON", theme::DONE) } else { Span::styled("off", theme::VALUE) };
    let lines = vec![
        Line::from(vec![
            Span::styled("space", theme::KEY),
            Span::styled(" one task  ", theme::LABEL),
            Span::styled("b", theme::KEY),
            Span::styled(" burst of ", theme::LABEL),
            Span::styled(p.burst.to_string(), theme::VALUE),
            Span::styled("  < >", theme::KEY),
        ]),
        Line::from(vec![
            Span::styled("r", theme::KEY),
            Span::styled(" stream ", theme::LABEL),
            stream,
            Span::styled(" at ", theme::LABEL),
            Span::styled(format!("{}/s", p.rate), theme::VALUE),
            Span::styled("  [ ]", theme::KEY),
        ]),
        Line::from(vec![
            Span::styled("published ", theme::LABEL),
            Span::styled(p.published.total().to_string(), theme::VALUE),
            Span::styled("  confirmed ", theme::LABEL),
            Span::styled(p.confirmed.to_string(), theme::VALUE),
            Span::styled(if refused > 0 { "  refused " } else { "" }, theme::WARN),
            Span::styled(if refused > 0 { refused.to_string() } else { String::new() }, theme::WARN),
        ]),
        Line::from(vec![
            Span::styled("last ", theme::LABEL),
            Span::styled(format::trail(p.recent.iter(), width.saturating_sub(5), 1).concat(), theme::VALUE),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
