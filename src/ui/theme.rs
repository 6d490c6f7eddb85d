//! Colour carries meaning, the same everywhere: green done, yellow backlog and waiting states,
//! red lost and crashed, cyan the selected consumer. Labels are plain, values bold.

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
