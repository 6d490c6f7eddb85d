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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::{Action, App, AppOptions, Dispatch, Event, Mode, Msg};

    /// The whole screen at the smallest size that matters, as text.
    fn screen(app: &App, now: Instant) -> String {
        let mut t = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
        t.draw(|f| crate::ui::render(f, app, now)).expect("draws");
        let buf = t.backend().buffer();
        let rows = buf.content.chunks(usize::from(buf.area.width));
        rows.map(|row| row.iter().map(|c| c.symbol()).collect::<String>()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_header_says_paused_and_switching_only_while_a_switch_is_under_way() {
        let now = Instant::now();
        let opts = AppOptions {
            queue: "q".into(),
            delays: vec![Duration::from_secs(1); 2],
            dispatch: Dispatch { mode: Mode::RoundRobin, prefetch: 1 },
            burst: 10,
            rate: 5,
            keep_history: false,
        };
        let mut app = App::new(opts, now);
        app.update(Msg::Action(Action::PrefetchUp), now);
        let s = screen(&app, now);
        assert!(!s.contains("switching"), "a noted prefetch is no switch:\n{s}");
        assert!(s.contains("prefetch 2 noted; it applies in fair mode, m switches"), "{s}");
        app.update(Msg::Action(Action::ToggleMode), now);
        assert!(screen(&app, now).contains("switching…"));
        let applied = app.dispatch;
        app.update(Msg::Event(Event::DispatchApplied(applied)), now);
        assert!(!screen(&app, now).contains("switching"));
        assert!(!screen(&app, now).contains("PAUSED"));
        app.update(Msg::Action(Action::PlayPause), now);
        assert!(screen(&app, now).contains("‖ PAUSED"));
    }
}
