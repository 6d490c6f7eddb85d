//! The distribution pane: who processed what share (removed consumers too), and how long
//! recent batches took in which mode, the numbers to compare round-robin and fair dispatch by.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Wrap};

use super::{format, theme};
use crate::app::{App, Batch, Consumer, ConsumerStatus};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(" Distribution of processed tasks ").padding(Padding::horizontal(1));
    let width = usize::from(block.inner(area).width);
    let mut lines = bars(app, width);
    if app.consumers.is_empty() {
        lines.push(Line::styled("no consumers yet", theme::LABEL));
    }
    let mut batches = app.recent_batches().peekable();
    if batches.peek().is_some() {
        lines.push(Line::default());
        lines.push(Line::styled("recent batches", theme::LABEL));
        for b in batches {
            lines.push(batch_line(b));
            // Right under its batch, before the theory: in a short pane this is what stays.
            if b.lost > 0 {
                lines.push(lost_line(b.lost));
            }
            lines.push(theory_line(b));
            // Why a switch made the split what it is (e.g. C1 took everything ready).
            if let Some(note) = &b.note {
                lines.push(Line::styled(format!("   {note}"), theme::LABEL));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

/// `C1 ██████▍       33%  12`, one per consumer ever started.
fn bars(app: &App, width: usize) -> Vec<Line<'static>> {
    let total = app.total_processed();
    let name_w = app.consumers.iter().map(|c| c.name().len()).max().unwrap_or(2);
    let count_w = app.consumers.iter().map(|c| c.processed.total().to_string().len()).max().unwrap_or(1);
    let bar_w = width.saturating_sub(name_w + count_w + 7);
    app.consumers
        .iter()
        .map(|c| {
            let n = c.processed.total();
            Line::from(vec![
                Span::styled(format!("{:<name_w$} ", c.name()), name_style(app, c)),
                Span::styled(bar(n, total, bar_w), theme::DONE),
                Span::styled(format!(" {:>3}%", format::percent(n, total)), theme::VALUE),
                Span::styled(format!(" {n:>count_w$}"), theme::LABEL),
            ])
        })
        .collect()
}

fn name_style(app: &App, c: &Consumer) -> Style {
    match c.status {
        ConsumerStatus::Crashed => theme::ALARM,
        ConsumerStatus::Removed => theme::MUTED,
        _ if app.selected == c.id => theme::SELECTED,
        _ => theme::VALUE,
    }
}

/// A bar `width` columns long at 100%, in eighths of a column.
fn bar(part: u64, total: u64, width: usize) -> String {
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (part * width as u64 * 8 + total / 2).checked_div(total).unwrap_or(0) as usize;
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTIAL[eighths % 8]);
    let drawn = eighths / 8 + usize::from(!eighths.is_multiple_of(8));
    s.push_str(&" ".repeat(width.saturating_sub(drawn)));
    s
}

/// `#3   10 tasks fair/1 took 12.3s`
/// `   saw 8/1/1  theory 8/1/1 15.0s`: what RabbitMQ's rules predict for this batch (from the
/// state it started from, following switches), next to what happened; yellow when a finished
/// batch differs.
fn theory_line(b: &Batch) -> Line<'static> {
    let seen = b.seen_split();
    if let Some(why) = &b.unmodelled {
        // The model does not follow kills, new consumers or delay changes: no prediction to show.
        return Line::from(vec![
            Span::styled("   saw ", theme::LABEL),
            Span::styled(seen, theme::VALUE),
            Span::styled(format!("  no theory ({why})"), theme::LABEL),
        ]);
    }
    let (theory, makespan) = b.theory_split();
    let differs = b.finished.is_some() && seen != theory;
    Line::from(vec![
        Span::styled("   saw ", theme::LABEL),
        Span::styled(seen, if differs { theme::WARN } else { theme::VALUE }),
        Span::styled("  theory ", theme::LABEL),
        Span::styled(theory, theme::VALUE),
        Span::styled(format!(" {}", format::duration(makespan)), theme::LABEL),
    ])
}

/// `#3   10 tasks fair/1 took 12.3s`: green only when every task of it was processed.
fn batch_line(b: &Batch) -> Line<'static> {
    let mode = b.dispatch.short_label();
    let outcome = match b.makespan() {
        Some(d) if b.lost == 0 => Span::styled(format!("took {}", format::duration(d)), theme::DONE),
        // Finished, but not every task was done: the time is no success to show in green.
        Some(d) => Span::styled(format!("took {}", format::duration(d)), theme::ALARM),
        None => Span::styled(format!("{} left", b.outstanding), theme::WARN),
    };
    // Short enough for the narrowest pane (38 columns inside, in the details at 80 columns).
    Line::from(vec![
        Span::styled(format!("batch #{} ", b.id), theme::LABEL),
        Span::styled(b.size.to_string(), theme::VALUE),
        Span::styled(if b.size == 1 { " task " } else { " tasks " }, theme::LABEL),
        Span::styled(format!("{mode} "), theme::SELECTED),
        outcome,
    ])
}

/// `   lost 3 never processed`: its own line, as the batch line is full in a 40-column pane,
/// and the words say it where colour cannot (NO_COLOR, monochrome).
fn lost_line(lost: u32) -> Line<'static> {
    Line::from(vec![
        Span::styled("   ", theme::LABEL),
        Span::styled(format!("lost {lost}"), theme::ALARM),
        Span::styled(" never processed", theme::LABEL),
    ])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;

    use super::*;
    use crate::app::{Command, Event, LossReason, Mode, Msg};

    /// Three auto-ack consumers, ten tasks dealt in rotation; C2 is killed holding #2, #5, #8
    /// and the others process the rest: the issue's `saw 4/0/3` batch, which lost 3 tasks.
    fn lossy_batch() -> App {
        let t0 = Instant::now();
        let opts = crate::app::testing::options(&[1000; 3], Mode::RoundRobin);
        let mut app = App::new(opts, t0);
        let Command::Publish { batch, .. } = app.start_batch(10, t0) else { panic!("a batch publishes") };
        let ev =
            |app: &mut App, secs: u64, e: Event| app.update(Msg::Event(e), t0 + Duration::from_secs(secs));
        for consumer in 0..3 {
            ev(&mut app, 0, Event::ConsumerReady { consumer });
        }
        for id in 1..=10 {
            ev(&mut app, 0, Event::Published { id, batch: Some(batch) });
            ev(
                &mut app,
                0,
                Event::Delivered {
                    consumer: (id as usize - 1) % 3,
                    id,
                    manual_ack: false,
                    redelivered: false,
                },
            );
        }
        ev(
            &mut app,
            1,
            Event::Lost { consumer: 1, ids: vec![2, 5, 8], reason: LossReason::KilledUnderAutoAck },
        );
        ev(&mut app, 1, Event::ConsumerGone { consumer: 1, killed: true });
        for (n, id) in [1, 3, 4, 6, 7, 9, 10].into_iter().enumerate() {
            let consumer = (id as usize - 1) % 3;
            let secs = 2 + n as u64;
            ev(&mut app, secs, Event::Started { consumer, id, work: Duration::from_secs(1) });
            ev(&mut app, secs, Event::Processed { consumer, id, acked: false });
        }
        app
    }

    #[test]
    fn a_batch_that_lost_tasks_says_so_in_red_and_is_never_green() {
        let app = lossy_batch();
        let b = &app.batches[0];
        assert_eq!((b.lost, b.outstanding, b.finished.is_some()), (3, 0, true));
        let mut terminal = Terminal::new(TestBackend::new(40, 16)).expect("test terminal");
        terminal.draw(|f| render(f, f.area(), &app)).expect("draw");
        let buf = terminal.backend().buffer();
        let rows: Vec<String> = (0..buf.area.height)
            .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
            .collect();
        let find = |needle: &str| {
            rows.iter().enumerate().find_map(|(y, row)| {
                let x = row.find(needle)?;
                Some((row[..x].chars().count() as u16, y as u16))
            })
        };
        let screen = rows.join("\n");
        let (x, y) = find("lost 3").unwrap_or_else(|| panic!("no lost 3:\n{screen}"));
        assert_eq!(buf[(x, y)].fg, Color::Red, "{screen}");
        assert!(screen.contains("saw 4/0/3"), "{screen}");
        let (x, y) = find("took 8.0s").unwrap_or_else(|| panic!("no makespan:\n{screen}"));
        assert_ne!(buf[(x, y)].fg, Color::Green, "a lossy batch is no success:\n{screen}");
        // Nothing about this batch is green (the share bars above may be).
        for x in 0..buf.area.width {
            assert_ne!(buf[(x, y)].fg, Color::Green, "green at {x},{y}:\n{screen}");
        }
    }

    #[test]
    fn bars_scale_to_the_total_in_eighths() {
        for (part, total, width, want) in [
            (0, 0, 4, "    "),
            (1, 1, 4, "████"),
            (1, 2, 4, "██  "),
            (1, 3, 4, "█▍  "),
            (1, 16, 2, "▏ "),
            (5, 5, 0, ""),
        ] {
            assert_eq!(bar(part, total, width), want, "{part}/{total} in {width}");
        }
    }
}

#[cfg(test)]
mod note_tests {
    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::{Event, Mode, Msg};

    use super::*;

    #[test]
    fn a_batch_note_is_shown_whole_under_its_theory_line() {
        let t0 = Instant::now();
        let opts = crate::app::testing::options(&[1000; 3], Mode::Fair);
        let mut app = App::new(opts, t0);
        let ev = |app: &mut App, e| app.update(Msg::Event(e), t0);
        for consumer in 0..3 {
            ev(&mut app, Event::ConsumerReady { consumer });
        }
        app.start_batch(10, t0);
        for id in 1..=10 {
            ev(&mut app, Event::Published { id, batch: Some(1) });
        }
        for (consumer, id) in [(0, 1), (1, 2), (2, 3)] {
            ev(&mut app, Event::Delivered { consumer, id, manual_ack: true, redelivered: false });
        }
        app.set_mode(Mode::RoundRobin, t0 + Duration::from_millis(500));
        let mut term = Terminal::new(TestBackend::new(40, 20)).unwrap();
        term.draw(|f| render(f, f.area(), &app)).unwrap();
        let buf = term.backend().buffer();
        let rows: Vec<String> = (0..buf.area.height)
            .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect();
        let text = rows.iter().map(|r| r.trim_matches(['│', ' '])).collect::<Vec<_>>().join(" ");
        assert!(text.contains("theory 8/1/1"), "{rows:#?}");
        let words = "C1 re-subscribed first with no prefetch limit and took all 7 ready tasks";
        let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(squeezed.contains(words), "{rows:#?}");
    }
}
