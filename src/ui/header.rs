//! The header, two lines without a border (every line counts at 80x24): which broker and queue,
//! then how it dispatches and how busy it is.
//!
//! ```text
//!  warren  RabbitMQ 3.10.8 at 127.0.0.1:5672 vhost /  queue warren.tasks
//!  mode fair (manual ack, prefetch 3)  unacked 7 = 4 waiting + 3 in hand   5/s published …
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;

use super::{format, theme};
use crate::app::App;

/// Lines the header takes.
pub const HEIGHT: u16 = 2;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let width = usize::from(area.width);
    let mut first = broker_spans(app);
    if app.broker.is_some() && !app.connected {
        first.push(Span::raw("  "));
        first.push(Span::styled(" disconnected, reconnecting ", theme::BANNER));
    }
    let mut second = mode_spans(app);
    // The rates are the first thing to go when the line is too narrow.
    let rates = rate_spans(app);
    let used: usize = second.iter().map(Span::width).sum();
    if used + rates.iter().map(Span::width).sum::<usize>() <= width {
        second.extend(rates);
    }
    let lines = vec![format::fit(first, width), format::fit(second, width)];
    frame.render_widget(Paragraph::new(lines), area);
}

/// ` warren  RabbitMQ 3.10.8 at 127.0.0.1:5672 vhost /  queue warren.tasks`
fn broker_spans(app: &App) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(" warren ", theme::BADGE), Span::raw(" ")];
    match &app.broker {
        None => spans.push(Span::styled("connecting…", theme::WARN)),
        Some(b) if b.product == crate::broker::PRODUCT => spans.extend([
            Span::styled("embedded broker", theme::VALUE),
            Span::styled(" at ", theme::LABEL),
            Span::styled(b.endpoint(), theme::VALUE),
        ]),
        Some(b) => spans.extend([
            Span::styled(format!("{} {}", b.product, b.version), theme::VALUE),
            Span::styled(" at ", theme::LABEL),
            Span::styled(format!("{}:{}", b.host, b.port), theme::VALUE),
            Span::styled(" vhost ", theme::LABEL),
            Span::styled(b.vhost.clone(), theme::VALUE),
        ]),
    }
    spans.push(Span::styled("  queue ", theme::LABEL));
    spans.push(Span::styled(app.queue.clone(), theme::VALUE));
    spans
}

/// ` mode fair (manual ack, prefetch 3)  unacked 7 = 4 waiting + 3 in hand`: unacked is what
/// the broker counts against prefetch, the same sum as in the lanes and the ledger.
fn mode_spans(app: &App) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    // First, so that it is never cut; a lesson's caption carries it instead.
    if app.paused() && app.lesson.is_none() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" PAUSED ", theme::BADGE));
    }
    spans.extend([
        Span::styled(" mode ", theme::LABEL),
        Span::styled(app.applied.to_string(), theme::SELECTED),
    ]);
    // Only while consumers are re-registering: a prefetch noted in round-robin is no switch.
    if app.switching() {
        spans.push(Span::styled(format!(" ⇄ switching to {}", app.dispatch.short_label()), theme::WARN));
    }
    let unacked = app.ledger.broker_unacked();
    let waiting = app.ledger.totals().unacked;
    spans.push(Span::styled("  unacked ", theme::LABEL));
    spans.push(Span::styled(unacked.to_string(), theme::VALUE));
    if unacked > 0 {
        spans.push(Span::styled(
            format!(" = {waiting} waiting + {} in hand", unacked - waiting),
            theme::LABEL,
        ));
    }
    spans
}

/// `   5/s published  3/s delivered  2/s acked`
fn rate_spans(app: &App) -> Vec<Span<'static>> {
    let rate = |n: u64, what: &str| {
        [Span::styled(format!("  {n}/s"), theme::VALUE), Span::styled(format!(" {what}"), theme::LABEL)]
    };
    let mut spans = vec![Span::raw(" ")];
    spans.extend(rate(app.producer.published.rate(), "published"));
    spans.extend(rate(app.delivered.rate(), "delivered"));
    spans.extend(rate(app.acked.rate(), "acked"));
    spans
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::{Action, App, Event, Mode, Msg};

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
        let opts = crate::app::testing::options(&[1000; 2], Mode::RoundRobin);
        let mut app = App::new(opts, now);
        app.update(Msg::Action(Action::PrefetchUp), now);
        let s = screen(&app, now);
        assert!(!s.contains("switching"), "a noted prefetch is no switch:\n{s}");
        assert!(s.contains("prefetch 2 noted; it applies in fair mode, m switches"), "{s}");
        app.update(Msg::Action(Action::ToggleMode), now);
        assert!(screen(&app, now).contains("⇄ switching to fair/2"));
        let applied = app.dispatch;
        app.update(Msg::Event(Event::DispatchApplied(applied)), now);
        assert!(!screen(&app, now).contains("switching"));
        assert!(!screen(&app, now).contains("PAUSED"));
        app.update(Msg::Action(Action::PlayPause), now);
        assert!(screen(&app, now).contains(" PAUSED "));
    }
}
