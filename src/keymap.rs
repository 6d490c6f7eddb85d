//! Keys to [`Action`]s. [`HELP`] lists every key for the help overlay and the README.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::Action;

/// Every key, as (key label, what it does), in the order the help overlay shows them. Kept short
/// (about 24 columns) so that two columns of them fit 80x24; the README says more.
pub const HELP: &[(&str, &str)] = &[
    ("space", "publish one task"),
    ("b", "publish a burst"),
    ("< >", "burst size down / up"),
    ("r", "stream on / off"),
    ("[ ]", "stream rate down / up"),
    ("m", "mode: round-robin / fair"),
    ("p P", "prefetch up / down"),
    ("Tab → ↓", "select the next consumer"),
    ("S-Tab ← ↑", "select the previous one"),
    ("click", "select that consumer"),
    ("+ (or =)", "selected consumer slower"),
    ("-", "selected consumer faster"),
    ("a", "add a consumer"),
    ("x", "remove selected / crashed pane"),
    ("k", "kill selected (no acks)"),
    ("s", "restart a crashed consumer"),
    ("B", "restart embedded broker"),
    ("t", "timeline: where each task ran"),
    ("z", "zoom: selected consumer in full"),
    ("d", "details: producer, distribution, ledger"),
    ("?", "show / hide this help"),
    ("Enter", "pause / resume everything"),
    ("n", "lesson: next step (stays paused)"),
    ("R", "lesson: start over"),
    ("q Esc ^C", "quit"),
];

/// The action for a key event, if it has one. Only presses count, except that holding down
/// a key that steps a value (`+ - [ ]`) repeats it.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    use Action::*;
    let ctrl = key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let action = match key.code {
        KeyCode::Char('c' | 'C') if key.modifiers.contains(KeyModifiers::CONTROL) => Quit,
        // Other Ctrl/Alt chords are not ours (e.g. the terminal's own shortcuts).
        _ if ctrl => return None,
        KeyCode::Char(' ') => PublishOne,
        KeyCode::Char('b') => PublishBurst,
        KeyCode::Char('<') => BurstDown,
        KeyCode::Char('>') => BurstUp,
        KeyCode::Char('r') => ToggleStream,
        KeyCode::Char('[') => RateDown,
        KeyCode::Char(']') => RateUp,
        KeyCode::Char('m') => ToggleMode,
        KeyCode::Char('p') => PrefetchUp,
        KeyCode::Char('P') => PrefetchDown,
        KeyCode::Tab if key.modifiers.contains(KeyModifiers::SHIFT) => SelectPrev,
        KeyCode::Tab | KeyCode::Right | KeyCode::Down => SelectNext,
        KeyCode::BackTab | KeyCode::Left | KeyCode::Up => SelectPrev,
        KeyCode::Char('+' | '=') => DelayUp,
        KeyCode::Char('-') => DelayDown,
        KeyCode::Char('a') => AddConsumer,
        KeyCode::Char('x') => RemoveConsumer,
        KeyCode::Char('k') => KillConsumer,
        KeyCode::Char('s') => RestartConsumer,
        KeyCode::Char('B') => RestartBroker,
        KeyCode::Char('t') => ToggleTimeline,
        KeyCode::Char('z') => ToggleZoom,
        KeyCode::Char('d') => ToggleDetails,
        KeyCode::Char('?') => ToggleHelp,
        KeyCode::Char('q') | KeyCode::Esc => Quit,
        KeyCode::Enter => PlayPause,
        KeyCode::Char('n') => PlayStep,
        KeyCode::Char('R') => PlayRestart,
        _ => return None,
    };
    let repeats = matches!(action, DelayUp | DelayDown | RateUp | RateDown);
    match key.kind {
        KeyEventKind::Press => Some(action),
        KeyEventKind::Repeat if repeats => Some(action),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use crossterm::event::KeyEventState;

    fn key(code: KeyCode, modifiers: KeyModifiers, kind: KeyEventKind) -> KeyEvent {
        KeyEvent { code, modifiers, kind, state: KeyEventState::NONE }
    }

    fn press(code: KeyCode) -> KeyEvent {
        key(code, KeyModifiers::NONE, KeyEventKind::Press)
    }

    const NONE: KeyModifiers = KeyModifiers::NONE;
    const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
    const CTRL: KeyModifiers = KeyModifiers::CONTROL;

    /// Every key of the brief, with the modifiers terminals really send.
    const TABLE: &[(KeyCode, KeyModifiers, Action)] = &[
        (KeyCode::Char(' '), NONE, PublishOne),
        (KeyCode::Char('b'), NONE, PublishBurst),
        (KeyCode::Char('<'), SHIFT, BurstDown),
        (KeyCode::Char('>'), SHIFT, BurstUp),
        (KeyCode::Char('<'), NONE, BurstDown),
        (KeyCode::Char('r'), NONE, ToggleStream),
        (KeyCode::Char('['), NONE, RateDown),
        (KeyCode::Char(']'), NONE, RateUp),
        (KeyCode::Char('m'), NONE, ToggleMode),
        (KeyCode::Char('p'), NONE, PrefetchUp),
        (KeyCode::Char('P'), SHIFT, PrefetchDown),
        (KeyCode::Char('P'), NONE, PrefetchDown),
        (KeyCode::Tab, NONE, SelectNext),
        (KeyCode::Right, NONE, SelectNext),
        (KeyCode::Down, NONE, SelectNext),
        (KeyCode::BackTab, SHIFT, SelectPrev),
        (KeyCode::BackTab, NONE, SelectPrev),
        (KeyCode::Tab, SHIFT, SelectPrev),
        (KeyCode::Left, NONE, SelectPrev),
        (KeyCode::Up, NONE, SelectPrev),
        (KeyCode::Char('+'), SHIFT, DelayUp),
        (KeyCode::Char('+'), NONE, DelayUp),
        (KeyCode::Char('='), NONE, DelayUp),
        (KeyCode::Char('-'), NONE, DelayDown),
        (KeyCode::Char('a'), NONE, AddConsumer),
        (KeyCode::Char('x'), NONE, RemoveConsumer),
        (KeyCode::Char('k'), NONE, KillConsumer),
        (KeyCode::Char('s'), NONE, RestartConsumer),
        (KeyCode::Char('B'), SHIFT, RestartBroker),
        (KeyCode::Char('t'), NONE, ToggleTimeline),
        (KeyCode::Char('z'), NONE, ToggleZoom),
        (KeyCode::Char('d'), NONE, ToggleDetails),
        (KeyCode::Char('?'), SHIFT, ToggleHelp),
        (KeyCode::Char('q'), NONE, Quit),
        (KeyCode::Esc, NONE, Quit),
        (KeyCode::Char('c'), CTRL, Quit),
        (KeyCode::Enter, NONE, PlayPause),
        (KeyCode::Char('n'), NONE, PlayStep),
        (KeyCode::Char('R'), SHIFT, PlayRestart),
    ];

    #[test]
    fn every_key_maps_to_its_action() {
        for &(code, modifiers, want) in TABLE {
            let got = action_for(key(code, modifiers, KeyEventKind::Press));
            assert_eq!(got, Some(want), "{code:?} {modifiers:?}");
        }
    }

    #[test]
    fn releases_never_count_and_only_steppers_repeat() {
        for &(code, modifiers, action) in TABLE {
            assert_eq!(action_for(key(code, modifiers, KeyEventKind::Release)), None, "{code:?}");
            let repeats = matches!(action, DelayUp | DelayDown | RateUp | RateDown);
            let got = action_for(key(code, modifiers, KeyEventKind::Repeat));
            assert_eq!(got, repeats.then_some(action), "{code:?} repeated");
        }
    }

    #[test]
    fn other_keys_and_chords_do_nothing() {
        for code in [KeyCode::Char('y'), KeyCode::Char('Q'), KeyCode::F(1), KeyCode::Backspace] {
            assert_eq!(action_for(press(code)), None, "{code:?}");
        }
        for (code, modifiers) in [
            (KeyCode::Char('b'), CTRL),
            (KeyCode::Char('k'), KeyModifiers::ALT),
            (KeyCode::Char('q'), CTRL),
            (KeyCode::Char('c'), NONE),
        ] {
            assert_eq!(action_for(key(code, modifiers, KeyEventKind::Press)), None, "{code:?} {modifiers:?}");
        }
    }

    #[test]
    fn help_lists_every_key_action() {
        // Each action a key can trigger is described once, and nothing is listed twice.
        let mut actions: Vec<Action> = Vec::new();
        for &(_, _, a) in TABLE {
            if !actions.contains(&a) {
                actions.push(a);
            }
        }
        // Pairs of actions that share a help row: < >, [ ], p P.
        let shared = 3;
        // `click` is the mouse's SelectVisible.
        assert_eq!(HELP.len(), actions.len() - shared + 1);
        let labels: std::collections::HashSet<_> = HELP.iter().map(|h| h.0).collect();
        assert_eq!(labels.len(), HELP.len());
        for label in ["space", "b", "r", "m", "a", "x", "k", "s", "B", "t", "?", "-", "Enter", "n"] {
            assert!(labels.contains(label), "{label} missing from HELP");
        }
    }
}
