//! The header: which broker, which queue, how it dispatches, and how busy it is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph};

use super::{layout, theme};
use crate::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines = vec![broker_line(app)];
    let mut mode = mode_spans(app);
    if layout::header_lines(area.width) == 2 {
        mode.push(Span::raw("    "));
        mode.extend(traffic_spans(app));
        lines.push(Line::from(mode));
    } else {
        lines.push(Line::from(mode));
        lines.push(Line::from(traffic_spans(app)));
    }
    let mut block =
        Block::bordered().title(Line::from(" warren ").style(theme::VALUE)).padding(Padding::horizontal(1));
    if app.broker.is_some() && !app.connected {
        // On the border, so it shows at any width.
        block = block.title(Line::styled(" disconnected — reconnecting ", theme::ALARM).right_aligned());
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Product, version, endpoint, queue, and whether we are connected.
fn broker_line(app: &App) -> Line<'static> {
    let mut spans = match &app.broker {
        None => vec![Span::styled("connecting…", theme::WARN)],
        Some(b) if b.product == crate::broker::PRODUCT => vec![
            Span::styled("embedded warren broker, in memory", theme::VALUE),
            Span::styled(" at ", theme::LABEL),
            Span::styled(b.endpoint(), theme::VALUE),
        ],
        Some(b) => vec![
            Span::styled(format!("{} {}", b.product, b.version), theme::VALUE),
            Span::styled(" at ", theme::LABEL),
            Span::styled(format!("{}:{}", b.host, b.port), theme::VALUE),
            Span::styled(" vhost ", theme::LABEL),
            Span::styled(b.vhost.clone(), theme::VALUE),
        ],
    };
    spans.push(Span::styled("  queue ", theme::LABEL));
    spans.push(Span::styled(app.queue.clone(), theme::VALUE));
    Line::from(spans)
}

fn mode_spans(app: &App) -> Vec<Span<'static>> {
    let mut spans =
        vec![Span::styled("mode ", theme::LABEL), Span::styled(app.dispatch.to_string(), theme::SELECTED)];
    // Only while a switch is under way: a prefetch change noted in round-robin is none.
    if app.switching() {
        spans.push(Span::styled("  switching…", theme::WARN));
    }
    if app.paused() {
        spans.push(Span::styled("  ‖ PAUSED", theme::WARN));
    }
    spans
}

/// Queue depth as the broker reports it, then per-second rates.
fn traffic_spans(app: &App) -> Vec<Span<'static>> {
    let ready = app.queue_ready.map_or_else(|| "?".to_string(), |n| n.to_string());
    let unacked = app.ledger.broker_unacked();
    vec![
        Span::styled("ready ", theme::LABEL),
        Span::styled(ready, theme::VALUE),
        Span::styled("  unacked ", theme::LABEL),
        Span::styled(unacked.to_string(), theme::VALUE),
        Span::styled("    per second: ", theme::LABEL),
        Span::styled(app.producer.published.rate().to_string(), theme::VALUE),
        Span::styled(" published  ", theme::LABEL),
        Span::styled(app.delivered.rate().to_string(), theme::VALUE),
        Span::styled(" delivered  ", theme::LABEL),
        Span::styled(app.acked.rate().to_string(), theme::VALUE),
        Span::styled(" acked", theme::LABEL),
    ]
}
