//! Colour carries meaning, the same everywhere: green done, yellow backlog and waiting states,
//! red lost and crashed, cyan the selected consumer. Labels are plain, values bold.
//!
//! The styles below are the default theme. The other themes are not a second set of styles: each
//! is a transform of the finished frame ([`apply`]), so every region (and the key overlay drawn
//! over them) follows without knowing about themes.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};

/// A key the user can press.
pub const KEY: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
/// A label in front of a value; gray, not dark gray, so it survives a projector.
pub const LABEL: Style = Style::new().fg(Color::Gray);
pub const VALUE: Style = Style::new().add_modifier(Modifier::BOLD);
pub const DONE: Style = Style::new().fg(Color::Green).add_modifier(Modifier::BOLD);
pub const WARN: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
pub const ALARM: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
pub const MUTED: Style = Style::new().fg(Color::DarkGray);
pub const SELECTED: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
/// The name at the top left, and badges such as PAUSED.
pub const BADGE: Style = Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD);
pub const BANNER: Style = Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD);

/// A backlog of this many tasks is the auto-ack pile-up to point at.
pub const BACKLOG_ALARM: u64 = 10;

/// Backlog: nothing special when empty, yellow when something waits, red when it piles up.
pub fn backlog(n: u64) -> Style {
    match n {
        0 => VALUE,
        n if n < BACKLOG_ALARM => WARN,
        _ => ALARM,
    }
}

/// Red when non-zero (lost tasks, anomalies).
pub fn alarm_if(n: u64) -> Style {
    if n == 0 { VALUE } else { ALARM }
}

/// How the finished frame is coloured (`--theme`, `WARREN_THEME`, `NO_COLOR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Theme {
    /// The styles above, as drawn.
    #[default]
    Default,
    /// Bright colours on the terminal's own background, for projectors and bad eyes.
    HighContrast,
    /// No colour at all; what a colour meant becomes bold, reversed, underlined or dim.
    Mono,
}

/// Recolour every cell of a finished frame for `theme`.
pub fn apply(buf: &mut Buffer, theme: Theme) {
    if theme == Theme::Default {
        return;
    }
    for cell in &mut buf.content {
        let (fg, bg, modifier) = restyle(theme, cell.fg, cell.bg, cell.modifier);
        cell.fg = fg;
        cell.bg = bg;
        cell.modifier = modifier;
        if theme == Theme::Mono {
            cell.underline_color = Color::Reset;
        }
    }
}

/// One cell's colours and modifiers in `theme`; pure, so the table test can check every case.
pub fn restyle(theme: Theme, fg: Color, bg: Color, modifier: Modifier) -> (Color, Color, Modifier) {
    match theme {
        Theme::Default => (fg, bg, modifier),
        Theme::HighContrast if has_colour(bg) => {
            // Text on a coloured ground (banner, timeline spans, keycaps): black on bright reads
            // best, whichever colour it was.
            (Color::Black, bright(bg), modifier)
        }
        Theme::HighContrast => (bright(fg), bg, modifier),
        Theme::Mono => (Color::Reset, Color::Reset, modifier | meaning(fg, bg)),
    }
}

/// What a colour said, said without colour. A coloured ground is reversed video (banner, timeline
/// spans, keycaps); red is an alarm wherever it is.
fn meaning(fg: Color, bg: Color) -> Modifier {
    let reds = [Color::Red, Color::LightRed];
    if reds.contains(&bg) || reds.contains(&fg) {
        return Modifier::REVERSED | Modifier::BOLD;
    }
    if has_colour(bg) {
        return Modifier::REVERSED;
    }
    match fg {
        Color::Yellow | Color::LightYellow => Modifier::BOLD | Modifier::UNDERLINED,
        // Selected: values are bold already, so bold alone would not tell the selection apart.
        Color::Cyan | Color::LightCyan => Modifier::BOLD | Modifier::ITALIC,
        Color::Green | Color::LightGreen => Modifier::BOLD,
        Color::DarkGray => Modifier::DIM,
        _ => Modifier::empty(),
    }
}

/// A background someone chose, as opposed to the terminal's own.
fn has_colour(bg: Color) -> bool {
    !matches!(bg, Color::Reset | Color::Black)
}

/// The bright variant of a colour; gray becomes white and dark gray gray (a projector washes the
/// dim ones out). Black and the default stay.
fn bright(c: Color) -> Color {
    match c {
        Color::Red => Color::LightRed,
        Color::Green => Color::LightGreen,
        Color::Yellow => Color::LightYellow,
        Color::Blue => Color::LightBlue,
        Color::Magenta => Color::LightMagenta,
        Color::Cyan => Color::LightCyan,
        Color::Gray => Color::White,
        Color::DarkGray => Color::Gray,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;

    const NONE: Modifier = Modifier::empty();
    const BOLD: Modifier = Modifier::BOLD;
    /// fg, bg and modifiers of one cell.
    type Look = (Color, Color, Modifier);

    #[test]
    fn the_theme_table() {
        use Color::*;
        use Theme::*;
        let rev_bold = Modifier::REVERSED | BOLD;
        #[rustfmt::skip]
        let table: &[(Theme, Color, Color, Modifier, Look)] = &[
            (Default, Red, Reset, BOLD, (Red, Reset, BOLD)),
            // mono: the colour's meaning becomes a modifier, the ones already there stay
            (Mono, Red, Reset, BOLD, (Reset, Reset, rev_bold)),             // ALARM
            (Mono, White, Red, BOLD, (Reset, Reset, rev_bold)),             // BANNER
            (Mono, Yellow, Reset, BOLD, (Reset, Reset, BOLD | Modifier::UNDERLINED)), // KEY, WARN
            (Mono, Cyan, Reset, BOLD, (Reset, Reset, BOLD | Modifier::ITALIC)), // SELECTED
            (Mono, Green, Reset, NONE, (Reset, Reset, BOLD)),               // DONE
            (Mono, DarkGray, Reset, NONE, (Reset, Reset, Modifier::DIM)),   // MUTED
            (Mono, Gray, Reset, NONE, (Reset, Reset, NONE)),                // LABEL
            (Mono, Reset, Reset, Modifier::ITALIC, (Reset, Reset, Modifier::ITALIC)),
            (Mono, Black, Blue, BOLD, (Reset, Reset, Modifier::REVERSED | BOLD)), // timeline span
            (Mono, Black, Gray, BOLD, (Reset, Reset, Modifier::REVERSED | BOLD)), // keycap
            (Mono, Indexed(208), Rgb(1, 2, 3), NONE, (Reset, Reset, Modifier::REVERSED)),
            // high contrast: bright on the default background, black on a bright ground
            (HighContrast, Red, Reset, BOLD, (LightRed, Reset, BOLD)),
            (HighContrast, Yellow, Reset, BOLD, (LightYellow, Reset, BOLD)),
            (HighContrast, Cyan, Reset, BOLD, (LightCyan, Reset, BOLD)),
            (HighContrast, Green, Reset, BOLD, (LightGreen, Reset, BOLD)),
            (HighContrast, Gray, Reset, NONE, (White, Reset, NONE)),
            (HighContrast, DarkGray, Reset, NONE, (Gray, Reset, NONE)),
            (HighContrast, Reset, Reset, BOLD, (Reset, Reset, BOLD)),
            (HighContrast, White, Red, BOLD, (Black, LightRed, BOLD)),
            (HighContrast, White, Blue, BOLD, (Black, LightBlue, BOLD)),
        ];
        for &(theme, fg, bg, m, want) in table {
            assert_eq!(restyle(theme, fg, bg, m), want, "{theme:?} {fg:?} on {bg:?} {m:?}");
        }
    }

    #[test]
    fn mono_still_tells_the_states_apart() {
        // The styles that mean different things must still differ with no colour at all.
        let styles = [("VALUE", VALUE), ("LABEL", LABEL), ("WARN", WARN), ("ALARM", ALARM)];
        let styles = styles.into_iter().chain([("MUTED", MUTED), ("SELECTED", SELECTED)]);
        let looks: Vec<(&str, Modifier)> = styles
            .map(|(name, s)| {
                let (fg, bg) = (s.fg.unwrap_or(Color::Reset), s.bg.unwrap_or(Color::Reset));
                (name, restyle(Theme::Mono, fg, bg, s.add_modifier).2)
            })
            .collect();
        for (i, (a, look_a)) in looks.iter().enumerate() {
            for (b, look_b) in &looks[i + 1..] {
                assert_ne!(look_a, look_b, "{a} and {b} look the same in mono");
            }
        }
    }

    #[test]
    fn mono_leaves_no_colour_in_the_buffer() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 9, 1));
        buf.set_string(0, 0, "lost", ALARM);
        buf.set_string(5, 0, "ok", DONE.underline_color(Color::Blue));
        buf.set_string(8, 0, "!", BANNER);
        apply(&mut buf, Theme::Mono);
        for cell in &buf.content {
            assert_eq!((cell.fg, cell.bg, cell.underline_color), (Color::Reset, Color::Reset, Color::Reset));
        }
        assert_eq!(buf[(0, 0)].modifier, Modifier::REVERSED | BOLD);
        assert_eq!(buf[(5, 0)].modifier, BOLD);
    }
}
