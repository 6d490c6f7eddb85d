//! What the back of the room needs: the help whole at the smallest size, themes that leave no
//! colour (mono) or only bright colour (high contrast) on a real frame, and the `--keys` overlay
//! on the footer, clear of every border.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::timeline::timeline_demo;
use super::{demo, draw, text};
use crate::app::{Action, Msg};
use crate::keymap;
use crate::record::KeyOverlay;
use crate::ui::{self, Theme, help};

/// Every entry's first line is ` key  what…` on screen, each wrapped line of its description
/// too, and the closing hint.
fn assert_help_whole(screen: &str, entries: &[(&str, &str)], area: Rect, size: &str) {
    let plan = help::plan(entries, area);
    assert!(plan.width <= area.width && plan.height <= area.height, "{size}: {plan:?}");
    let kw = plan.key_width;
    let mut seen = 0;
    for entry in plan.columns.iter().flatten() {
        let (key, what) = entries.iter().find(|(k, _)| *k == entry.key).expect("planned key is listed");
        assert_eq!(entry.what.join(" "), what.split_whitespace().collect::<Vec<_>>().join(" "));
        let first = format!(" {key:<kw$} {}", entry.what[0]);
        assert!(screen.contains(&first), "{size}: help lacks {first:?}\n{screen}");
        for more in &entry.what[1..] {
            assert!(screen.contains(&format!("{} {more}", " ".repeat(kw + 1))), "{size}: lacks {more:?}");
        }
        seen += 1;
    }
    assert_eq!(seen, entries.len(), "{size}: every key is planned once");
    assert!(screen.contains(help::CLOSING.trim()), "{size}: the closing line is cut\n{screen}");
}

#[test]
fn the_help_is_whole_at_80x24_and_100x30() {
    let (mut app, now) = demo();
    app.update(Msg::Action(Action::ToggleHelp), now);
    for (w, h) in [(80, 24), (100, 30)] {
        let screen = text(draw(&app, now, w, h).backend().buffer());
        assert_help_whole(&screen, keymap::HELP, Rect::new(0, 0, w, h), &format!("{w}x{h}"));
    }
}

#[test]
fn the_help_makes_room_for_more_keys() {
    let mut entries = keymap::HELP.to_vec();
    entries.extend([
        ("F1", "pause / resume all"),
        ("F2", "step: one more task"),
        ("F3", "restart the selected one"),
        ("F4", "details of the selected"),
        ("F5", "zoom the selected pane"),
        ("Ctrl-L", "redraw the screen"),
        // Some wording will be long: it wraps.
        ("h", "hide / show the producer and the distribution panes"),
    ]);
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| help::render_entries(f, f.area(), &entries)).unwrap();
        let screen = text(terminal.backend().buffer());
        assert_help_whole(&screen, &entries, Rect::new(0, 0, w, h), &format!("{w}x{h}"));
    }
    // Two columns are needed at 80x24 for this many; one is enough at 160x45.
    assert_eq!(help::plan(&entries, Rect::new(0, 0, 80, 24)).columns.len(), 2);
    assert_eq!(help::plan(&entries, Rect::new(0, 0, 160, 45)).columns.len(), 1);
}

#[test]
fn words_wrap_and_long_words_split() {
    assert_eq!(
        help::wrap("start / stop the continuous stream", 16),
        ["start / stop the", "continuous", "stream"]
    );
    assert_eq!(help::wrap("abcdefgh", 3), ["abc", "def", "gh"]);
    assert_eq!(help::wrap("", 5), [""]);
}

fn themed(theme: Theme, timeline: bool) -> Buffer {
    let (mut app, now) = if timeline { timeline_demo() } else { demo() };
    app.update(Msg::Action(Action::ToggleHelp), now);
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).unwrap();
    let mut keys = KeyOverlay::new();
    keys.push("space".into(), now);
    terminal
        .draw(|f| {
            ui::render(f, &app, now);
            crate::record::render(f, ui::keys_area(f.area(), &app), &keys, now);
            ui::apply_theme(f.buffer_mut(), theme);
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

fn colours(buffer: &Buffer) -> Vec<Color> {
    let mut seen: Vec<Color> =
        buffer.content.iter().flat_map(|c| [c.fg, c.bg]).filter(|&c| c != Color::Reset).collect();
    seen.sort_by_key(|c| format!("{c:?}"));
    seen.dedup();
    seen
}

#[test]
fn mono_draws_no_colour_and_the_default_theme_does() {
    for timeline in [false, true] {
        let plain = themed(Theme::Default, timeline);
        assert!(colours(&plain).len() >= 5, "the default theme colours: {:?}", colours(&plain));
        let mono = themed(Theme::Mono, timeline);
        assert_eq!(colours(&mono), [], "timeline {timeline}");
        assert_eq!(text(&mono), text(&plain), "themes change styles, never text");
        // What was red (alarms, requeued and lost ends) is reversed: still told apart.
        let reversed =
            mono.content.iter().filter(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED));
        assert!(reversed.count() > 0);
    }
}

#[test]
fn high_contrast_has_no_dim_colours() {
    let buffer = themed(Theme::HighContrast, false);
    let dim = [Color::DarkGray, Color::Red, Color::Green, Color::Yellow, Color::Cyan, Color::Blue];
    let left: Vec<Color> = colours(&buffer).into_iter().filter(|c| dim.contains(c)).collect();
    assert_eq!(left, [], "{:?}", colours(&buffer));
    assert!(buffer.content.iter().any(|c| c.fg == Color::White), "gray labels become white");
}

#[test]
fn the_keys_overlay_covers_no_border_and_keeps_help_and_quit() {
    let (app, now) = demo();
    for (w, h) in [(80, 24), (100, 30), (160, 45)] {
        let area = Rect::new(0, 0, w, h);
        let strip = ui::keys_area(area, &app);
        assert_eq!((strip.y, strip.height), (h - 1, 1), "the footer row");
        let mut keys = KeyOverlay::new();
        for k in ["space", "b", "m", "Shift-Tab", "?"] {
            keys.push(k.into(), now);
        }
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|f| {
                ui::render(f, &app, now);
                crate::record::render(f, strip, &keys, now);
            })
            .unwrap();
        let with_keys = terminal.backend().buffer().clone();
        let without = draw(&app, now, w, h).backend().buffer().clone();
        let screen = text(&with_keys);
        let last = screen.lines().last().unwrap();
        assert!(last.contains(" keys ") && last.contains(" ? "), "{w}x{h}: {last}");
        assert!(last.ends_with("? help  q quit "), "{w}x{h}: {last}");
        // Only footer cells changed.
        for y in 0..h - 1 {
            for x in 0..w {
                assert_eq!(with_keys[(x, y)], without[(x, y)], "{w}x{h}: ({x}, {y}) changed");
            }
        }
    }
}

#[test]
fn the_footer_keeps_help_and_quit_at_80_columns() {
    let (app, now) = demo();
    let screen = text(draw(&app, now, 80, 24).backend().buffer());
    let last = screen.lines().last().unwrap();
    assert!(last.ends_with("? help  q quit "), "{last}");
    assert!(last.starts_with(" space task"), "{last}");
}
